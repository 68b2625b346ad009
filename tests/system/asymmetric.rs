//! Every key spec and crypto operation through a real 3-node cluster and the
//! AWS SDK, with OpenSSL as the counterpart: OpenSSL verifies Arca's
//! signatures, Arca decrypts what OpenSSL encrypted with Arca's public keys,
//! and data key pairs are keys OpenSSL can use.

use std::path::{Path, PathBuf};

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, KeySpec, KeyUsageType, MacAlgorithmSpec, MessageType,
    SigningAlgorithmSpec,
};
use arca_system_tests::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;

struct Files(tempfile::TempDir);

impl Files {
    fn new() -> Self {
        Files(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// OpenSSL `pkeyutl` options for a signing algorithm (salt = digest length, as AWS).
fn openssl_sign_options(alg: &str) -> Vec<&'static str> {
    let digest = if alg.ends_with("256") {
        "sha256"
    } else if alg.ends_with("384") {
        "sha384"
    } else if alg.ends_with("512") {
        "sha512"
    } else {
        "sm3"
    };
    let mut v = vec!["-rawin", "-digest", digest];
    if alg.starts_with("RSASSA_PSS") {
        let salt = match digest {
            "sha256" => "rsa_pss_saltlen:32",
            "sha384" => "rsa_pss_saltlen:48",
            _ => "rsa_pss_saltlen:64",
        };
        v.extend(["-pkeyopt", "rsa_padding_mode:pss", "-pkeyopt", salt]);
    } else if alg.starts_with("RSASSA_PKCS1") {
        v.extend(["-pkeyopt", "rsa_padding_mode:pkcs1"]);
    } else if alg == "SM2DSA" {
        v.extend(["-pkeyopt", "distid:1234567812345678"]);
    }
    v
}

fn openssl_verifies(files: &Files, spki: &[u8], alg: &str, msg: &[u8], sig: &[u8]) -> bool {
    let (pk, m, sg) = (
        files.write("pub.der", spki),
        files.write("msg.bin", msg),
        files.write("sig.bin", sig),
    );
    let mut args = vec![
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(&pk),
        "-keyform",
        "DER",
        "-in",
        s(&m),
        "-sigfile",
        s(&sg),
    ];
    args.extend(openssl_sign_options(alg));
    let (ok, err) = openssl(&args);
    if !ok {
        eprintln!("openssl refused the signature ({alg}): {err}");
    }
    ok
}

fn digest(alg: &str, msg: &[u8]) -> Vec<u8> {
    use aws_lc_rs::digest as d;
    let a = if alg.ends_with("256") {
        &d::SHA256
    } else if alg.ends_with("384") {
        &d::SHA384
    } else {
        &d::SHA512
    };
    d::digest(a, msg).as_ref().to_vec()
}

async fn create(c: &Cluster, via: usize, spec: KeySpec, usage: KeyUsageType) -> String {
    c.client(via)
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signing_spec_and_algorithm_verifies_with_openssl() {
    let mut c = Cluster::start_with(
        3,
        Options {
            rsa_pool: 1,
            ..Options::default()
        },
    )
    .await;
    c.wait_leader().await;
    let files = Files::new();
    let msg = b"the message Arca signs and OpenSSL checks".to_vec();
    let specs = [
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::Rsa4096,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::EccSecgP256K1,
        KeySpec::Sm2,
    ];
    for (n, spec) in specs.into_iter().enumerate() {
        let via = n % 3;
        let key = create(&c, via, spec.clone(), KeyUsageType::SignVerify).await;
        let kms = c.client((via + 1) % 3);
        let pk = kms.get_public_key().key_id(&key).send().await.unwrap();
        assert_eq!(pk.key_spec(), Some(&spec));
        assert_eq!(pk.key_usage(), Some(&KeyUsageType::SignVerify));
        assert!(pk.encryption_algorithms().is_empty());
        let spki = pk.public_key().unwrap().as_ref().to_vec();
        let algs: Vec<SigningAlgorithmSpec> = pk.signing_algorithms().to_vec();
        assert!(!algs.is_empty());
        let d = kms.describe_key().key_id(&key).send().await.unwrap();
        assert_eq!(
            d.key_metadata().unwrap().signing_algorithms(),
            algs.as_slice()
        );
        for alg in algs {
            let name = alg.as_str().to_string();
            // RAW: the node hashes.
            let sig = kms
                .sign()
                .key_id(&key)
                .message(Blob::new(msg.clone()))
                .message_type(MessageType::Raw)
                .signing_algorithm(alg.clone())
                .send()
                .await
                .unwrap();
            let sig = sig.signature().unwrap().as_ref().to_vec();
            assert!(
                openssl_verifies(&files, &spki, &name, &msg, &sig),
                "OpenSSL rejects {spec:?} {name}"
            );
            let mut bad = sig.clone();
            let last = bad.len() - 1;
            bad[last] ^= 0x55;
            assert!(!openssl_verifies(&files, &spki, &name, &msg, &bad));
            // Verify through another node, good and bad.
            let v = c
                .client((via + 2) % 3)
                .verify()
                .key_id(&key)
                .message(Blob::new(msg.clone()))
                .signature(Blob::new(sig.clone()))
                .signing_algorithm(alg.clone())
                .send()
                .await
                .unwrap();
            assert!(v.signature_valid());
            let e = kms
                .verify()
                .key_id(&key)
                .message(Blob::new(msg.clone()))
                .signature(Blob::new(bad))
                .signing_algorithm(alg.clone())
                .send()
                .await
                .unwrap_err();
            assert_eq!(error_code(&e), "KMSInvalidSignatureException");
            // DIGEST: the caller hashes (SM2: SM3 over Z and the message).
            let dg = if name == "SM2DSA" {
                arca_keys::sm2_digest(&spki, &msg).unwrap().to_vec()
            } else {
                digest(&name, &msg)
            };
            let sig = kms
                .sign()
                .key_id(&key)
                .message(Blob::new(dg.clone()))
                .message_type(MessageType::Digest)
                .signing_algorithm(alg.clone())
                .send()
                .await
                .unwrap()
                .signature()
                .unwrap()
                .as_ref()
                .to_vec();
            assert!(
                openssl_verifies(&files, &spki, &name, &msg, &sig),
                "OpenSSL rejects DIGEST {name}"
            );
            let e = kms
                .sign()
                .key_id(&key)
                .message(Blob::new(dg[1..].to_vec()))
                .message_type(MessageType::Digest)
                .signing_algorithm(alg.clone())
                .send()
                .await
                .unwrap_err();
            assert_eq!(error_code(&e), "ValidationException", "short digest");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_encrypts_with_public_keys_and_arca_decrypts() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    let files = Files::new();
    let cases: [(KeySpec, &[&str]); 4] = [
        (
            KeySpec::Rsa2048,
            &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
        ),
        (
            KeySpec::Rsa3072,
            &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
        ),
        (
            KeySpec::Rsa4096,
            &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
        ),
        (KeySpec::Sm2, &["SM2PKE"]),
    ];
    for (n, (spec, algs)) in cases.into_iter().enumerate() {
        let key = create(&c, n % 3, spec.clone(), KeyUsageType::EncryptDecrypt).await;
        let kms = c.client((n + 1) % 3);
        let pk = kms.get_public_key().key_id(&key).send().await.unwrap();
        let spki = files.write("pub.der", pk.public_key().unwrap().as_ref());
        for alg in algs {
            let pt = format!("secret for {alg} under {spec:?}").into_bytes();
            let pt_path = files.write("pt.bin", &pt);
            let ct_path = files.path("ct.bin");
            let mut args = vec![
                "pkeyutl",
                "-encrypt",
                "-pubin",
                "-inkey",
                s(&spki),
                "-keyform",
                "DER",
                "-in",
                s(&pt_path),
                "-out",
                s(&ct_path),
            ];
            let md = if alg.ends_with("SHA_1") {
                "rsa_oaep_md:sha1"
            } else {
                "rsa_oaep_md:sha256"
            };
            if alg.starts_with("RSAES") {
                args.extend(["-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", md]);
            }
            let (ok, err) = openssl(&args);
            assert!(ok, "openssl encrypt: {err}");
            let ct = std::fs::read(&ct_path).unwrap();
            let d = c
                .client((n + 2) % 3)
                .decrypt()
                .key_id(&key)
                .ciphertext_blob(Blob::new(ct.clone()))
                .encryption_algorithm(EncryptionAlgorithmSpec::from(*alg))
                .send()
                .await
                .unwrap();
            assert_eq!(
                d.plaintext().unwrap().as_ref(),
                pt.as_slice(),
                "{spec:?} {alg}"
            );
            assert_eq!(d.encryption_algorithm().unwrap().as_str(), *alg);
            // Arca's own Encrypt round trip, and a tampered ciphertext.
            let e = kms
                .encrypt()
                .key_id(&key)
                .plaintext(Blob::new(pt.clone()))
                .encryption_algorithm(EncryptionAlgorithmSpec::from(*alg))
                .send()
                .await
                .unwrap();
            let own = e.ciphertext_blob().unwrap().as_ref().to_vec();
            let back = kms
                .decrypt()
                .key_id(&key)
                .ciphertext_blob(Blob::new(own.clone()))
                .encryption_algorithm(EncryptionAlgorithmSpec::from(*alg))
                .send()
                .await
                .unwrap();
            assert_eq!(back.plaintext().unwrap().as_ref(), pt.as_slice());
            let mut bad = ct.clone();
            bad[10] ^= 1;
            let err = kms
                .decrypt()
                .key_id(&key)
                .ciphertext_blob(Blob::new(bad))
                .encryption_algorithm(EncryptionAlgorithmSpec::from(*alg))
                .send()
                .await
                .unwrap_err();
            assert_eq!(error_code(&err), "InvalidCiphertextException");
        }
        // Plaintext over the spec's limit.
        let err = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(vec![1u8; 2048]))
            .encryption_algorithm(EncryptionAlgorithmSpec::from(algs[0]))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&err), "ValidationException");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hmac_keys_generate_and_verify_macs() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    let cases = [
        (KeySpec::Hmac224, MacAlgorithmSpec::HmacSha224, 28),
        (KeySpec::Hmac256, MacAlgorithmSpec::HmacSha256, 32),
        (KeySpec::Hmac384, MacAlgorithmSpec::HmacSha384, 48),
        (KeySpec::Hmac512, MacAlgorithmSpec::HmacSha512, 64),
    ];
    for (n, (spec, alg, len)) in cases.into_iter().enumerate() {
        let key = create(&c, n % 3, spec, KeyUsageType::GenerateVerifyMac).await;
        let d = c
            .client(0)
            .describe_key()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.key_metadata().unwrap().mac_algorithms(),
            std::slice::from_ref(&alg)
        );
        let mac = c
            .client((n + 1) % 3)
            .generate_mac()
            .key_id(&key)
            .message(Blob::new(b"mac me".to_vec()))
            .mac_algorithm(alg.clone())
            .send()
            .await
            .unwrap()
            .mac()
            .unwrap()
            .as_ref()
            .to_vec();
        assert_eq!(mac.len(), len);
        let ok = c
            .client((n + 2) % 3)
            .verify_mac()
            .key_id(&key)
            .message(Blob::new(b"mac me".to_vec()))
            .mac(Blob::new(mac.clone()))
            .mac_algorithm(alg.clone())
            .send()
            .await
            .unwrap();
        assert!(ok.mac_valid());
        let e = c
            .client(n % 3)
            .verify_mac()
            .key_id(&key)
            .message(Blob::new(b"mac me!".to_vec()))
            .mac(Blob::new(mac))
            .mac_algorithm(alg.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "KMSInvalidMacException");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_key_pairs_are_keys_openssl_can_use() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    let files = Files::new();
    let wrapping = c.new_key(0).await;
    let specs = [
        (DataKeyPairSpec::Rsa2048, "RSASSA_PKCS1_V1_5_SHA_256"),
        (DataKeyPairSpec::Rsa3072, "RSASSA_PSS_SHA_384"),
        (DataKeyPairSpec::Rsa4096, "RSASSA_PSS_SHA_512"),
        (DataKeyPairSpec::EccNistP256, "ECDSA_SHA_256"),
        (DataKeyPairSpec::EccNistP384, "ECDSA_SHA_384"),
        (DataKeyPairSpec::EccNistP521, "ECDSA_SHA_512"),
        (DataKeyPairSpec::EccSecgP256K1, "ECDSA_SHA_256"),
        (DataKeyPairSpec::Sm2, "SM2DSA"),
    ];
    let msg = b"signed by a data key pair".to_vec();
    for (n, (spec, alg)) in specs.into_iter().enumerate() {
        let kms = c.client(n % 3);
        let pair = kms
            .generate_data_key_pair()
            .key_id(&wrapping)
            .key_pair_spec(spec.clone())
            .encryption_context("purpose", "pair")
            .send()
            .await
            .unwrap();
        assert_eq!(pair.key_pair_spec(), Some(&spec));
        let private = pair.private_key_plaintext().unwrap().as_ref().to_vec();
        let public = pair.public_key().unwrap().as_ref().to_vec();
        // The encrypted copy decrypts to the same private key, on another node.
        let back = c
            .client((n + 1) % 3)
            .decrypt()
            .ciphertext_blob(pair.private_key_ciphertext_blob().unwrap().clone())
            .encryption_context("purpose", "pair")
            .send()
            .await
            .unwrap();
        assert_eq!(back.plaintext().unwrap().as_ref(), private.as_slice());
        // OpenSSL reads the PKCS#8 key, signs with it, and the public key verifies.
        let key_path = files.write("priv.der", &private);
        let (ok, err) = openssl(&["pkey", "-inform", "DER", "-in", s(&key_path), "-noout"]);
        assert!(ok, "openssl pkey {spec:?}: {err}");
        let m = files.write("m.bin", &msg);
        let sig = files.path("s.bin");
        let mut args = vec![
            "pkeyutl",
            "-sign",
            "-inkey",
            s(&key_path),
            "-keyform",
            "DER",
            "-in",
            s(&m),
            "-out",
            s(&sig),
        ];
        args.extend(openssl_sign_options(alg));
        let (ok, err) = openssl(&args);
        assert!(ok, "openssl sign {spec:?}: {err}");
        let sig = std::fs::read(&sig).unwrap();
        assert!(
            openssl_verifies(&files, &public, alg, &msg, &sig),
            "{spec:?}"
        );
        // And Arca's verification code accepts OpenSSL's signature with the pair's public key.
        let ks = arca_keys::KeySpec::from_aws(spec.as_str()).unwrap();
        let sa = arca_keys::SigningAlgorithm::from_aws(alg).unwrap();
        assert!(
            arca_keys::verify_with_spki(ks, &public, sa, &msg, arca_keys::MessageType::Raw, &sig)
                .unwrap(),
            "{spec:?}"
        );
        // Without plaintext.
        let np = kms
            .generate_data_key_pair_without_plaintext()
            .key_id(&wrapping)
            .key_pair_spec(spec.clone())
            .send()
            .await
            .unwrap();
        // Its encrypted private key decrypts to the private half of its public key.
        let private = c
            .client((n + 2) % 3)
            .decrypt()
            .ciphertext_blob(np.private_key_ciphertext_blob().unwrap().clone())
            .send()
            .await
            .unwrap()
            .plaintext()
            .unwrap()
            .as_ref()
            .to_vec();
        let loaded = arca_keys::PrivateKey::load(ks, &private).unwrap();
        assert_eq!(
            loaded.public_key_spki_der().unwrap(),
            np.public_key().unwrap().as_ref(),
            "{spec:?}"
        );
    }
    // A pair needs a symmetric wrapping key.
    let signer = create(&c, 0, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let e = c
        .client(1)
        .generate_data_key_pair()
        .key_id(&signer)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
    // Key specs that are not data key pair specs: ML-DSA (a KMS key spec
    // only), a symmetric one, and one AWS does not have.
    let wrapping = create(
        &c,
        0,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    for spec in ["ML_DSA_44", "SYMMETRIC_DEFAULT", "RSA_1024"] {
        let e = c
            .client(0)
            .generate_data_key_pair()
            .key_id(&wrapping)
            .key_pair_spec(DataKeyPairSpec::from(spec))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "ValidationException", "{spec}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_usage_specs_and_algorithms_are_refused() {
    let c = Cluster::start(1).await;
    let kms = c.client(0);
    // Invalid spec/usage pairs at creation.
    for (spec, usage) in [
        (KeySpec::EccNistP256, KeyUsageType::EncryptDecrypt),
        (KeySpec::Hmac256, KeyUsageType::SignVerify),
        (KeySpec::SymmetricDefault, KeyUsageType::SignVerify),
        (KeySpec::Rsa2048, KeyUsageType::GenerateVerifyMac),
    ] {
        let e = kms
            .create_key()
            .key_spec(spec.clone())
            .key_usage(usage.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "ValidationException", "{spec:?} {usage:?}");
    }
    let sym = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let signer = create(&c, 0, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let rsa_enc = create(&c, 0, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let mac = create(&c, 0, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let msg = Blob::new(b"m".to_vec());
    let cases: Vec<(String, String)> = vec![
        (
            "Sign with an encryption key".into(),
            error_code(
                &kms.sign()
                    .key_id(&rsa_enc)
                    .message(msg.clone())
                    .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
                    .send()
                    .await
                    .unwrap_err(),
            ),
        ),
        (
            "Sign with a symmetric key".into(),
            error_code(
                &kms.sign()
                    .key_id(&sym)
                    .message(msg.clone())
                    .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                    .send()
                    .await
                    .unwrap_err(),
            ),
        ),
        (
            "ECDSA_SHA_384 with a P-256 key".into(),
            error_code(
                &kms.sign()
                    .key_id(&signer)
                    .message(msg.clone())
                    .signing_algorithm(SigningAlgorithmSpec::EcdsaSha384)
                    .send()
                    .await
                    .unwrap_err(),
            ),
        ),
        (
            "Encrypt with a signing key".into(),
            error_code(
                &kms.encrypt()
                    .key_id(&signer)
                    .plaintext(msg.clone())
                    .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
                    .send()
                    .await
                    .unwrap_err(),
            ),
        ),
        (
            "SM2PKE with an RSA key".into(),
            error_code(
                &kms.encrypt()
                    .key_id(&rsa_enc)
                    .plaintext(msg.clone())
                    .encryption_algorithm(EncryptionAlgorithmSpec::Sm2Pke)
                    .send()
                    .await
                    .unwrap_err(),
            ),
        ),
        (
            "GenerateMac with a symmetric key".into(),
            error_code(
                &kms.generate_mac()
                    .key_id(&sym)
                    .message(msg.clone())
                    .mac_algorithm(MacAlgorithmSpec::HmacSha256)
                    .send()
                    .await
                    .unwrap_err(),
            ),
        ),
        (
            "HMAC_SHA_512 with an HMAC_256 key".into(),
            error_code(
                &kms.generate_mac()
                    .key_id(&mac)
                    .message(msg.clone())
                    .mac_algorithm(MacAlgorithmSpec::HmacSha512)
                    .send()
                    .await
                    .unwrap_err(),
            ),
        ),
        (
            "GenerateDataKey with an RSA key".into(),
            error_code(
                &kms.generate_data_key()
                    .key_id(&rsa_enc)
                    .number_of_bytes(32)
                    .send()
                    .await
                    .unwrap_err(),
            ),
        ),
    ];
    for (what, code) in cases {
        assert_eq!(code, "InvalidKeyUsageException", "{what}");
    }
    for k in [&sym, &mac] {
        let e = kms.get_public_key().key_id(k).send().await.unwrap_err();
        assert_eq!(error_code(&e), "UnsupportedOperationException");
    }
    // Asymmetric Encrypt without an algorithm (a wrong use of the key, as
    // AWS answers it); RAW message over 4096 bytes.
    let e = kms
        .encrypt()
        .key_id(&rsa_enc)
        .plaintext(msg.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
    let e = kms
        .sign()
        .key_id(&signer)
        .message(Blob::new(vec![0; 4097]))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "ValidationException");
    // Garbage signatures are invalid, not errors of the service.
    let e = kms
        .verify()
        .key_id(&signer)
        .message(msg)
        .signature(Blob::new(b"garbage".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidSignatureException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_encrypt_between_symmetric_and_asymmetric_keys() {
    let c = Cluster::start(1).await;
    let kms = c.client(0);
    let sym_a = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let sym_b = kms
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let rsa = create(&c, 0, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let ct = kms
        .encrypt()
        .key_id(&sym_a)
        .plaintext(Blob::new(b"moving".to_vec()))
        .encryption_context("a", "1")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    // Symmetric → symmetric, with a new context.
    let r = kms
        .re_encrypt()
        .ciphertext_blob(ct.clone())
        .source_encryption_context("a", "1")
        .destination_key_id(&sym_b)
        .destination_encryption_context("b", "2")
        .send()
        .await
        .unwrap();
    assert!(r.source_key_id().unwrap().ends_with(&sym_a));
    assert!(r.key_id().unwrap().ends_with(&sym_b));
    let d = kms
        .decrypt()
        .ciphertext_blob(r.ciphertext_blob().unwrap().clone())
        .encryption_context("b", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"moving");
    // Symmetric → RSA, then RSA → symmetric.
    let r = kms
        .re_encrypt()
        .ciphertext_blob(ct)
        .source_encryption_context("a", "1")
        .destination_key_id(&rsa)
        .destination_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.destination_encryption_algorithm().unwrap().as_str(),
        "RSAES_OAEP_SHA_256"
    );
    let r2 = kms
        .re_encrypt()
        .ciphertext_blob(r.ciphertext_blob().unwrap().clone())
        .source_key_id(&rsa)
        .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .destination_key_id(&sym_b)
        .send()
        .await
        .unwrap();
    let d = kms
        .decrypt()
        .ciphertext_blob(r2.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"moving");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_key_versions() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let f = (leader + 1) % 3;
    let key = create(&c, f, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let msg = B64.encode(b"versioned");
    let sign = |c: &Cluster, i: usize, version: Option<&str>| {
        let mut body = json!({"KeyId": key, "Message": msg, "SigningAlgorithm": "ECDSA_SHA_256"});
        if let Some(v) = version {
            body["KeyVersionId"] = json!(v);
        }
        c.call(i, "TrentService.Sign", &body)
    };
    let (st, first) = sign(&c, f, None);
    assert_eq!(st, 200, "{first}");
    let v1 = first["KeyVersionId"].as_str().unwrap().to_string();

    // A new version becomes the primary on every node.
    let (st, created) = c.call(
        leader,
        "TrentService.CreateKeyVersion",
        &json!({"KeyId": key}),
    );
    assert_eq!(st, 200, "{created}");
    let v2 = created["KeyVersionId"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    for i in 0..3 {
        let (_, s) = sign(&c, i, None);
        assert_eq!(s["KeyVersionId"], v2.as_str(), "node {}", i + 1);
    }
    let (_, listed) = c.call(f, "TrentService.ListKeyVersions", &json!({"KeyId": key}));
    let ids: Vec<&str> = listed["KeyVersions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["KeyVersionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [v1.as_str(), v2.as_str()]);
    let (st, d) = c.call(
        f,
        "TrentService.DescribeKeyVersion",
        &json!({"KeyId": key, "KeyVersionId": v1}),
    );
    assert_eq!(st, 200);
    assert_eq!(d["KeyVersion"]["Primary"], false);

    // The old version still verifies its signatures when named; the public keys differ.
    let old_sig = first["Signature"].as_str().unwrap();
    let verify = |version: Option<&str>| {
        let mut body = json!({"KeyId": key, "Message": msg, "Signature": old_sig, "SigningAlgorithm": "ECDSA_SHA_256"});
        if let Some(v) = version {
            body["KeyVersionId"] = json!(v);
        }
        c.call(leader, "TrentService.Verify", &body)
    };
    let (st, v) = verify(Some(&v1));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["KeyVersionId"], v1.as_str());
    let (st, v) = verify(None);
    assert_eq!(
        (st, v["__type"].as_str()),
        (400, Some("KMSInvalidSignatureException"))
    );
    let (_, p1) = c.call(
        f,
        "TrentService.GetPublicKey",
        &json!({"KeyId": key, "KeyVersionId": v1}),
    );
    let (_, p2) = c.call(f, "TrentService.GetPublicKey", &json!({"KeyId": key}));
    assert_ne!(p1["PublicKey"], p2["PublicKey"]);
    assert_eq!(p2["KeyVersionId"], v2.as_str());

    // Unknown versions; symmetric keys rotate instead of taking versions.
    let (st, e) = sign(&c, f, Some("00000000-0000-4000-8000-000000000000"));
    assert_eq!((st, e["__type"].as_str()), (400, Some("NotFoundException")));
    let sym = c.new_key(0).await;
    let (st, e) = c.call(0, "TrentService.CreateKeyVersion", &json!({"KeyId": sym}));
    assert_eq!(
        (st, e["__type"].as_str()),
        (400, Some("UnsupportedOperationException"))
    );
}
