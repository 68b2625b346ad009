//! `ECC_NIST_EDWARDS25519` keys through a real 3-node cluster and the AWS SDK:
//! OpenSSL verifies `ED25519_SHA_512` signatures and reads the public keys, data
//! key pairs and certificate signing requests; `ED25519_PH_SHA_512` signatures
//! (which OpenSSL 3.0 cannot check) are checked with `ed25519-dalek`'s HashEdDSA
//! verification, the way AWS KMS defines them: Ed25519ph over the DIGEST message.

use std::path::{Path, PathBuf};

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::{
    DataKeyPairSpec, KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec,
};
use arca_system_tests::*;
use ed25519_dalek::pkcs8::DecodePublicKey;
use ed25519_dalek::Digest;
use serde_json::json;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `openssl pkeyutl -verify -rawin` with an Ed25519 SubjectPublicKeyInfo.
fn openssl_verifies(dir: &Path, spki: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let (pk, m, sg) = (
        write(dir, "pub.der", spki),
        write(dir, "msg.bin", msg),
        write(dir, "sig.bin", sig),
    );
    let (ok, err) = openssl(&[
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        s(&pk),
        "-keyform",
        "DER",
        "-rawin",
        "-in",
        s(&m),
        "-sigfile",
        s(&sg),
    ]);
    if !ok {
        eprintln!("openssl refused the Ed25519 signature: {err}");
    }
    ok
}

/// HashEdDSA (Ed25519ph, no context) verification of a signature over `message`.
fn ed25519ph_verifies(spki: &[u8], message: &[u8], sig: &[u8]) -> bool {
    let key = ed25519_dalek::VerifyingKey::from_public_key_der(spki).unwrap();
    let Ok(sig) = ed25519_dalek::Signature::from_slice(sig) else {
        return false;
    };
    let mut h = ed25519_dalek::Sha512::new();
    h.update(message);
    key.verify_prehashed_strict(h, None, &sig).is_ok()
}

fn sha512(m: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, m)
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_keys_sign_and_verify_as_aws_kms_defines_them() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let key = c
        .client(0)
        .create_key()
        .key_spec(KeySpec::EccNistEdwards25519)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let kms = c.client(1);
    let pk = kms.get_public_key().key_id(&key).send().await.unwrap();
    assert_eq!(pk.key_spec(), Some(&KeySpec::EccNistEdwards25519));
    assert_eq!(pk.key_usage(), Some(&KeyUsageType::SignVerify));
    assert_eq!(
        pk.signing_algorithms(),
        &[
            SigningAlgorithmSpec::Ed25519Sha512,
            SigningAlgorithmSpec::Ed25519PhSha512
        ]
    );
    let d = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().signing_algorithms(),
        pk.signing_algorithms()
    );
    let spki = pk.public_key().unwrap().as_ref().to_vec();
    // OpenSSL reads it as an Ed25519 key (RFC 8410: 44 bytes, id-Ed25519).
    assert_eq!(spki.len(), 44);
    let pub_path = write(dir, "key.der", &spki);
    let (ok, text) = {
        let out = std::process::Command::new("openssl")
            .args([
                "pkey",
                "-pubin",
                "-inform",
                "DER",
                "-in",
                s(&pub_path),
                "-noout",
                "-text",
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(ok && text.contains("ED25519 Public-Key"), "{text}");

    // ED25519_SHA_512 over a RAW message: PureEdDSA, which OpenSSL verifies.
    let msg = b"the message Arca signs with Ed25519".to_vec();
    let sig = kms
        .sign()
        .key_id(&key)
        .message(Blob::new(msg.clone()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sig.signing_algorithm(),
        Some(&SigningAlgorithmSpec::Ed25519Sha512)
    );
    let sig = sig.signature().unwrap().as_ref().to_vec();
    assert_eq!(sig.len(), 64);
    assert!(openssl_verifies(dir, &spki, &msg, &sig));
    let mut bad = sig.clone();
    bad[5] ^= 0x40;
    assert!(!openssl_verifies(dir, &spki, &msg, &bad));
    assert!(!openssl_verifies(dir, &spki, b"another message", &sig));
    // Verify on a third node, good and bad.
    let v = c
        .client(2)
        .verify()
        .key_id(&key)
        .message(Blob::new(msg.clone()))
        .signature(Blob::new(sig.clone()))
        .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
        .send()
        .await
        .unwrap();
    assert!(v.signature_valid());
    let e = c
        .client(2)
        .verify()
        .key_id(&key)
        .message(Blob::new(msg.clone()))
        .signature(Blob::new(bad))
        .signing_algorithm(SigningAlgorithmSpec::Ed25519Sha512)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidSignatureException");

    // ED25519_PH_SHA_512 over a DIGEST: the 64-byte digest is the message
    // HashEdDSA hashes again (FIPS 186-5 section 7.8.1).
    let digest = sha512(&msg);
    let ph = kms
        .sign()
        .key_id(&key)
        .message(Blob::new(digest.clone()))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::Ed25519PhSha512)
        .send()
        .await
        .unwrap()
        .signature()
        .unwrap()
        .as_ref()
        .to_vec();
    assert_eq!(ph.len(), 64);
    assert!(ed25519ph_verifies(&spki, &digest, &ph));
    assert!(!ed25519ph_verifies(&spki, &msg, &ph));
    assert!(!openssl_verifies(dir, &spki, &digest, &ph), "not PureEdDSA");
    let v = c
        .client(0)
        .verify()
        .key_id(&key)
        .message(Blob::new(digest.clone()))
        .message_type(MessageType::Digest)
        .signature(Blob::new(ph.clone()))
        .signing_algorithm(SigningAlgorithmSpec::Ed25519PhSha512)
        .send()
        .await
        .unwrap();
    assert!(v.signature_valid());
    // The pure signature is not a prehash one, and the reverse.
    let e = kms
        .verify()
        .key_id(&key)
        .message(Blob::new(digest.clone()))
        .message_type(MessageType::Digest)
        .signature(Blob::new(sig.clone()))
        .signing_algorithm(SigningAlgorithmSpec::Ed25519PhSha512)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidSignatureException");

    // Each algorithm takes one message type; a digest must be 64 bytes.
    for (alg, kind, m) in [
        (
            SigningAlgorithmSpec::Ed25519Sha512,
            MessageType::Digest,
            digest.clone(),
        ),
        (
            SigningAlgorithmSpec::Ed25519PhSha512,
            MessageType::Raw,
            msg.clone(),
        ),
        (
            SigningAlgorithmSpec::Ed25519PhSha512,
            MessageType::Digest,
            digest[..32].to_vec(),
        ),
        // Another spec's algorithm.
        (
            SigningAlgorithmSpec::EcdsaSha256,
            MessageType::Raw,
            msg.clone(),
        ),
    ] {
        let e = kms
            .sign()
            .key_id(&key)
            .message(Blob::new(m))
            .message_type(kind.clone())
            .signing_algorithm(alg.clone())
            .send()
            .await
            .unwrap_err();
        let want = if alg == SigningAlgorithmSpec::EcdsaSha256 {
            "InvalidKeyUsageException"
        } else {
            "ValidationException"
        };
        assert_eq!(error_code(&e), want, "{alg:?} {kind:?}");
    }
    // Ed25519 keys neither encrypt nor agree on keys.
    let e = c
        .client(0)
        .create_key()
        .key_spec(KeySpec::EccNistEdwards25519)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "ValidationException");

    // A certificate signing request, signed with PureEdDSA, that OpenSSL verifies.
    let (st, out) = c.call(
        0,
        "TrentService.GenerateCertificateSigningRequest",
        &json!({"KeyId": key, "Subject": "CN=ed.example.com,O=Example",
                "SubjectAlternativeNames": {"Dns": ["ed.example.com"]}}),
    );
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["SigningAlgorithm"], "ED25519_SHA_512");
    let pem = out["CertificateSigningRequest"].as_str().unwrap();
    let csr = write(dir, "ed.csr", pem.as_bytes());
    let verdict = std::process::Command::new("openssl")
        .args(["req", "-verify", "-noout", "-text", "-in", s(&csr)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&verdict.stderr);
    let text = String::from_utf8_lossy(&verdict.stdout);
    assert!(err.contains("self-signature verify OK"), "{err}");
    assert!(text.contains("Signature Algorithm: ED25519"), "{text}");
    assert!(text.contains("DNS:ed.example.com"), "{text}");
    let (st, out) = c.call(
        0,
        "TrentService.GenerateCertificateSigningRequest",
        &json!({"KeyId": key, "Subject": "CN=ed.example.com",
                "SigningAlgorithm": "ED25519_PH_SHA_512"}),
    );
    assert_eq!(st, 400, "{out}");
    assert_eq!(out["__type"], "ValidationException", "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ed25519_data_key_pairs_are_keys_openssl_can_use() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let wrapping = c.new_key(0).await;
    let kms = c.client(0);
    let pair = kms
        .generate_data_key_pair()
        .key_id(&wrapping)
        .key_pair_spec(DataKeyPairSpec::EccNistEdwards25519)
        .send()
        .await
        .unwrap();
    assert_eq!(
        pair.key_pair_spec(),
        Some(&DataKeyPairSpec::EccNistEdwards25519)
    );
    let private = pair.private_key_plaintext().unwrap().as_ref().to_vec();
    let public = pair.public_key().unwrap().as_ref().to_vec();
    let back = kms
        .decrypt()
        .ciphertext_blob(pair.private_key_ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), private.as_slice());
    // OpenSSL signs with the PKCS#8 private key; the public key verifies it.
    let key_path = write(dir, "priv.der", &private);
    let msg = b"signed by an Ed25519 data key pair".to_vec();
    let m = write(dir, "m.bin", &msg);
    let sig_path = dir.join("s.bin");
    let (ok, err) = openssl(&[
        "pkeyutl",
        "-sign",
        "-inkey",
        s(&key_path),
        "-keyform",
        "DER",
        "-rawin",
        "-in",
        s(&m),
        "-out",
        s(&sig_path),
    ]);
    assert!(ok, "openssl sign: {err}");
    let sig = std::fs::read(&sig_path).unwrap();
    assert!(openssl_verifies(dir, &public, &msg, &sig));
    assert!(arca_keys::verify_with_spki(
        arca_keys::KeySpec::EccNistEdwards25519,
        &public,
        arca_keys::SigningAlgorithm::Ed25519Sha512,
        &msg,
        arca_keys::MessageType::Raw,
        &sig
    )
    .unwrap());
    // The public key OpenSSL derives from the private key is the one returned.
    let (ok, _) = openssl(&[
        "pkey",
        "-inform",
        "DER",
        "-in",
        s(&key_path),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        s(&dir.join("derived.der")),
    ]);
    assert!(ok);
    assert_eq!(std::fs::read(dir.join("derived.der")).unwrap(), public);
}
