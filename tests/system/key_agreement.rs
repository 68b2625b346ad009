//! KEY_AGREEMENT keys and DeriveSharedSecret through a real 3-node cluster and
//! the AWS SDK. On NIST curves the peer is OpenSSL: `openssl pkeyutl -derive`
//! with the peer's private key and the public key GetPublicKey returns gives
//! the same secret. OpenSSL 3.0 has no ECDH on the SM2 curve, so there the
//! peer is RustCrypto's `sm2` in this process.

use std::path::{Path, PathBuf};

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::{
    KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec,
};
use arca_system_tests::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn openssl_ok(args: &[&str]) {
    let (ok, err) = openssl(args);
    assert!(ok, "openssl {args:?}: {err}");
}

async fn create(c: &Cluster, spec: KeySpec, usage: KeyUsageType) -> String {
    c.client(0)
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

async fn derive(c: &Cluster, via: usize, key: &str, peer: &[u8]) -> Vec<u8> {
    let out = c
        .client(via)
        .derive_shared_secret()
        .key_id(key)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(peer.to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.key_agreement_algorithm(),
        Some(&KeyAgreementAlgorithmSpec::Ecdh)
    );
    assert!(out.key_id().unwrap().ends_with(key));
    assert_eq!(out.key_origin().map(|o| o.as_str()), Some("AWS_KMS"));
    out.shared_secret().unwrap().as_ref().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdh_secrets_match_openssl_on_every_nist_curve() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let mut keys = Vec::new();
    for (n, (spec, curve, len)) in [
        (KeySpec::EccNistP256, "P-256", 32),
        (KeySpec::EccNistP384, "P-384", 48),
        (KeySpec::EccNistP521, "P-521", 66),
    ]
    .into_iter()
    .enumerate()
    {
        let key = create(&c, spec.clone(), KeyUsageType::KeyAgreement).await;
        let pk = c
            .client(1)
            .get_public_key()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(pk.key_usage(), Some(&KeyUsageType::KeyAgreement));
        assert_eq!(
            pk.key_agreement_algorithms(),
            &[KeyAgreementAlgorithmSpec::Ecdh]
        );
        assert!(pk.signing_algorithms().is_empty());
        let d = c
            .client(2)
            .describe_key()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        let meta = d.key_metadata().unwrap();
        assert_eq!(meta.key_usage(), Some(&KeyUsageType::KeyAgreement));
        assert_eq!(
            meta.key_agreement_algorithms(),
            &[KeyAgreementAlgorithmSpec::Ecdh]
        );
        let ours = pk.public_key().unwrap().as_ref().to_vec();
        let ours_path = write(dir, &format!("kms-{n}.der"), &ours);

        // The peer: an OpenSSL key on the same curve.
        let peer_key = dir.join(format!("peer-{n}.pem"));
        openssl_ok(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            s(&peer_key),
        ]);
        let peer_pub = dir.join(format!("peer-{n}.der"));
        openssl_ok(&[
            "pkey",
            "-in",
            s(&peer_key),
            "-pubout",
            "-outform",
            "DER",
            "-out",
            s(&peer_pub),
        ]);
        let peer_spki = std::fs::read(&peer_pub).unwrap();
        let secret = derive(&c, (n + 1) % 3, &key, &peer_spki).await;
        assert_eq!(secret.len(), len, "{spec:?}");
        let theirs = dir.join(format!("secret-{n}.bin"));
        openssl_ok(&[
            "pkeyutl",
            "-derive",
            "-inkey",
            s(&peer_key),
            "-peerkey",
            s(&ours_path),
            "-peerform",
            "DER",
            "-out",
            s(&theirs),
        ]);
        assert_eq!(std::fs::read(&theirs).unwrap(), secret, "{spec:?}");
        // Every node derives the same secret.
        assert_eq!(derive(&c, (n + 2) % 3, &key, &peer_spki).await, secret);
        keys.push((key, peer_spki));
    }

    let kms = c.client(0);
    let (p256, p256_peer) = &keys[0];
    let (_, p384_peer) = &keys[1];
    // A peer key on another curve, a malformed key and a SEC1 point without its
    // SubjectPublicKeyInfo are refused as invalid input.
    let mut truncated = p256_peer.clone();
    truncated.truncate(truncated.len() - 3);
    let sec1_point = p256_peer[p256_peer.len() - 65..].to_vec();
    for (what, bad) in [
        ("wrong curve", p384_peer.clone()),
        ("truncated", truncated),
        ("SEC1 point", sec1_point),
        ("garbage", b"not a public key".to_vec()),
    ] {
        let e = kms
            .derive_shared_secret()
            .key_id(p256)
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(Blob::new(bad))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "ValidationException", "{what}");
    }
    // An unknown algorithm is a validation error.
    let e = kms
        .derive_shared_secret()
        .key_id(p256)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::from("ECDH_COFACTOR"))
        .public_key(Blob::new(p256_peer.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "ValidationException");
    // Recipient (a Nitro attestation document) is not supported, and says so.
    let (st, out) = c.call(
        0,
        "TrentService.DeriveSharedSecret",
        &json!({"KeyId": p256, "KeyAgreementAlgorithm": "ECDH",
                "PublicKey": B64.encode(p256_peer),
                "Recipient": {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                              "AttestationDocument": B64.encode(b"doc")}}),
    );
    assert_eq!(st, 400, "{out}");
    assert_eq!(out["__type"], "UnsupportedOperationException", "{out}");
    assert!(
        out["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Recipient"),
        "{out}"
    );
    // DryRun answers as AWS does, after validation.
    let e = kms
        .derive_shared_secret()
        .key_id(p256)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(p256_peer.clone()))
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "DryRunOperationException");

    // Usage is enforced both ways.
    let signer = create(&c, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let e = kms
        .derive_shared_secret()
        .key_id(&signer)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(p256_peer.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
    let e = kms
        .sign()
        .key_id(p256)
        .message(Blob::new(b"m".to_vec()))
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
    let symmetric = c.new_key(0).await;
    let e = kms
        .derive_shared_secret()
        .key_id(&symmetric)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(p256_peer.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
    // Specs without key agreement cannot be created for it.
    for spec in [KeySpec::Rsa2048, KeySpec::EccSecgP256K1, KeySpec::Hmac256] {
        let e = c
            .client(0)
            .create_key()
            .key_spec(spec.clone())
            .key_usage(KeyUsageType::KeyAgreement)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "ValidationException", "{spec:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sm2_key_agreement_matches_an_independent_peer() {
    use pkcs8::{DecodePublicKey, EncodePublicKey};
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let a = create(&c, KeySpec::Sm2, KeyUsageType::KeyAgreement).await;
    let b = create(&c, KeySpec::Sm2, KeyUsageType::KeyAgreement).await;
    let kms = c.client(0);
    let spki = |k: String| {
        let kms = kms.clone();
        async move {
            kms.get_public_key()
                .key_id(k)
                .send()
                .await
                .unwrap()
                .public_key()
                .unwrap()
                .as_ref()
                .to_vec()
        }
    };
    let (a_pub, b_pub) = (spki(a.clone()).await, spki(b.clone()).await);
    // Two keys in the service agree with each other.
    let ab = derive(&c, 0, &a, &b_pub).await;
    assert_eq!(ab.len(), 32);
    assert_eq!(derive(&c, 0, &b, &a_pub).await, ab);
    // A peer outside: its secret times our public key is the secret we derive
    // with its public key.
    let peer = loop {
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).unwrap();
        if let Ok(k) = sm2::SecretKey::from_slice(&bytes) {
            break k;
        }
    };
    let peer_spki = peer.public_key().to_public_key_der().unwrap().into_vec();
    let ours = sm2::PublicKey::from_public_key_der(&a_pub).unwrap();
    let expected = elliptic_curve::ecdh::diffie_hellman(peer.to_nonzero_scalar(), ours.as_affine());
    let got = derive(&c, 0, &a, &peer_spki).await;
    assert_eq!(got, expected.raw_secret_bytes().to_vec());
    assert_ne!(got, ab);
    // A NIST P-256 public key is not an SM2 key.
    let p256 = create(&c, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let p256_pub = spki(p256).await;
    let e = kms
        .derive_shared_secret()
        .key_id(&a)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new(p256_pub))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "ValidationException");
    // SM2 keys for key agreement neither sign nor encrypt.
    let e = kms
        .sign()
        .key_id(&a)
        .message(Blob::new(b"m".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::Sm2Dsa)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
}
