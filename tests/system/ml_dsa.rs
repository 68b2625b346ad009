//! ML-DSA keys (`ML_DSA_44`, `ML_DSA_65`, `ML_DSA_87`, FIPS 204) through a real
//! 3-node cluster and the AWS SDK. OpenSSL 3.0 has no ML-DSA, so RustCrypto's
//! `ml-dsa` is the independent verifier: it reads the public keys GetPublicKey
//! returns and checks `ML_DSA_SHAKE_256` signatures over RAW messages (pure
//! ML-DSA, empty context) and over EXTERNAL_MU (the 64-byte mu it computes
//! itself), and the signatures of certificate signing requests.

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::{
    KeySpec, KeyState, KeyUsageType, MessageType, OriginType, SigningAlgorithmSpec,
};
use arca_system_tests::*;
use ml_dsa::signature::digest::Update;
use ml_dsa::signature::Verifier;
use ml_dsa::{MlDsa44, MlDsa65, MlDsa87, MlDsaParams, Signature, VerifyingKey};
use pkcs8::{DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use serde_json::json;
use x509_cert::der::{Decode, DecodePem, Encode};

type Client = arca_system_tests::aws_sdk_kms::Client;

/// The verifier of one parameter set, as the independent library sees it.
trait Independent {
    /// Verifies `sig` over `message` (pure ML-DSA, empty context).
    fn verify(&self, message: &[u8], sig: &[u8]) -> bool;
    /// mu of `message` (FIPS 204 section 6.2, empty context).
    fn mu(&self, message: &[u8]) -> Vec<u8>;
    /// Verifies `sig` over a given mu.
    fn verify_mu(&self, mu: &[u8], sig: &[u8]) -> bool;
}

impl<P: MlDsaParams> Independent for VerifyingKey<P> {
    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match Signature::<P>::try_from(sig) {
            Ok(s) => Verifier::verify(self, message, &s).is_ok(),
            Err(_) => false,
        }
    }

    fn mu(&self, message: &[u8]) -> Vec<u8> {
        self.compute_mu(
            |h| {
                h.update(message);
                Ok(())
            },
            &[],
        )
        .unwrap()
        .to_vec()
    }

    fn verify_mu(&self, mu: &[u8], sig: &[u8]) -> bool {
        let (Ok(mu), Ok(s)) = (mu.try_into(), Signature::<P>::try_from(sig)) else {
            return false;
        };
        self.verify_mu(&mu, &s)
    }
}

/// The key spec's OID (id-ml-dsa-*, RFC 9881), its signature length and the
/// independent verifier of `spki`.
fn independent(spec: &KeySpec, spki: &[u8]) -> (&'static str, usize, Box<dyn Independent>) {
    match spec {
        KeySpec::MlDsa44 => (
            "2.16.840.1.101.3.4.3.17",
            2420,
            Box::new(VerifyingKey::<MlDsa44>::from_public_key_der(spki).unwrap()),
        ),
        KeySpec::MlDsa65 => (
            "2.16.840.1.101.3.4.3.18",
            3309,
            Box::new(VerifyingKey::<MlDsa65>::from_public_key_der(spki).unwrap()),
        ),
        KeySpec::MlDsa87 => (
            "2.16.840.1.101.3.4.3.19",
            4627,
            Box::new(VerifyingKey::<MlDsa87>::from_public_key_der(spki).unwrap()),
        ),
        other => panic!("not an ML-DSA spec: {other:?}"),
    }
}

async fn sign(kms: &Client, key: &str, message: &[u8], kind: MessageType) -> Vec<u8> {
    let out = kms
        .sign()
        .key_id(key)
        .message(Blob::new(message.to_vec()))
        .message_type(kind)
        .signing_algorithm(SigningAlgorithmSpec::MlDsaShake256)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.signing_algorithm(),
        Some(&SigningAlgorithmSpec::MlDsaShake256)
    );
    out.signature().unwrap().as_ref().to_vec()
}

async fn sign_error(kms: &Client, key: &str, message: &[u8], kind: MessageType) -> String {
    let e = kms
        .sign()
        .key_id(key)
        .message(Blob::new(message.to_vec()))
        .message_type(kind)
        .signing_algorithm(SigningAlgorithmSpec::MlDsaShake256)
        .send()
        .await
        .unwrap_err();
    error_code(&e)
}

/// Verify through the cluster: `Ok(valid)`, or the error code.
async fn kms_verify(
    kms: &Client,
    key: &str,
    message: &[u8],
    kind: MessageType,
    sig: &[u8],
) -> Result<bool, String> {
    match kms
        .verify()
        .key_id(key)
        .message(Blob::new(message.to_vec()))
        .message_type(kind)
        .signature(Blob::new(sig.to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::MlDsaShake256)
        .send()
        .await
    {
        Ok(v) => Ok(v.signature_valid()),
        Err(e) if error_code(&e) == "KMSInvalidSignatureException" => Ok(false),
        Err(e) => Err(error_code(&e)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_dsa_keys_sign_as_aws_kms_defines_them() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    for spec in [KeySpec::MlDsa44, KeySpec::MlDsa65, KeySpec::MlDsa87] {
        let key = c
            .client(0)
            .create_key()
            .key_spec(spec.clone())
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
        assert_eq!(pk.key_spec(), Some(&spec));
        assert_eq!(pk.key_usage(), Some(&KeyUsageType::SignVerify));
        assert_eq!(
            pk.signing_algorithms(),
            &[SigningAlgorithmSpec::MlDsaShake256]
        );
        let d = kms.describe_key().key_id(&key).send().await.unwrap();
        let meta = d.key_metadata().unwrap();
        assert_eq!(meta.key_spec(), Some(&spec));
        assert_eq!(
            meta.signing_algorithms(),
            &[SigningAlgorithmSpec::MlDsaShake256]
        );
        // The SubjectPublicKeyInfo has the NIST OID and absent parameters.
        let spki = pk.public_key().unwrap().as_ref().to_vec();
        let parsed = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(&spki).unwrap();
        let (oid, sig_len, theirs) = independent(&spec, &spki);
        assert_eq!(parsed.algorithm.oid.to_string(), oid, "{spec:?}");
        assert!(parsed.algorithm.parameters.is_none(), "{spec:?}");

        // RAW: pure ML-DSA with an empty context, up to 4096 bytes.
        for msg in [b"an ML-DSA message".to_vec(), vec![0x5a; 4096]] {
            let sig = sign(&kms, &key, &msg, MessageType::Raw).await;
            assert_eq!(sig.len(), sig_len, "{spec:?}");
            assert!(theirs.verify(&msg, &sig), "{spec:?} RAW");
            assert!(!theirs.verify(b"another message", &sig), "{spec:?}");
            let mut bad = sig.clone();
            bad[100] ^= 1;
            assert!(!theirs.verify(&msg, &bad));
            assert_eq!(
                kms_verify(&c.client(2), &key, &msg, MessageType::Raw, &sig).await,
                Ok(true)
            );
            assert_eq!(
                kms_verify(&c.client(2), &key, &msg, MessageType::Raw, &bad).await,
                Ok(false)
            );
        }
        let too_long = vec![1u8; 4097];
        assert_eq!(
            sign_error(&kms, &key, &too_long, MessageType::Raw).await,
            "ValidationException"
        );

        // EXTERNAL_MU: a message too long for RAW, signed through its mu.
        let big = vec![0xa5u8; 100_000];
        let mu = theirs.mu(&big);
        assert_eq!(mu.len(), 64);
        let sig = sign(&kms, &key, &mu, MessageType::ExternalMu).await;
        assert_eq!(sig.len(), sig_len);
        assert!(theirs.verify(&big, &sig), "{spec:?} EXTERNAL_MU");
        assert!(theirs.verify_mu(&mu, &sig), "{spec:?} EXTERNAL_MU");
        assert!(!theirs.verify(&big[1..], &sig));
        // Either message type verifies the other's signatures.
        assert_eq!(
            kms_verify(&c.client(0), &key, &mu, MessageType::ExternalMu, &sig).await,
            Ok(true)
        );
        let small = b"signed over RAW, verified over mu".to_vec();
        let raw_sig = sign(&kms, &key, &small, MessageType::Raw).await;
        assert_eq!(
            kms_verify(
                &c.client(0),
                &key,
                &theirs.mu(&small),
                MessageType::ExternalMu,
                &raw_sig
            )
            .await,
            Ok(true)
        );
        assert_eq!(
            kms_verify(&c.client(0), &key, &mu, MessageType::ExternalMu, &raw_sig).await,
            Ok(false)
        );
        // ... and a signature over mu verifies as RAW (another backend inside).
        let mu_sig = sign(&kms, &key, &theirs.mu(&small), MessageType::ExternalMu).await;
        assert!(theirs.verify(&small, &mu_sig));
        assert_eq!(
            kms_verify(&c.client(2), &key, &small, MessageType::Raw, &mu_sig).await,
            Ok(true)
        );
        // mu is exactly 64 bytes; DIGEST does not exist for ML-DSA.
        for (m, kind) in [
            (&mu[..63], MessageType::ExternalMu),
            (&[mu.clone(), vec![0]].concat()[..], MessageType::ExternalMu),
            (&mu[..], MessageType::Digest),
            (&mu[..32], MessageType::Digest),
        ] {
            assert_eq!(
                sign_error(&kms, &key, m, kind.clone()).await,
                "ValidationException",
                "{spec:?} {kind:?} {}",
                m.len()
            );
            assert_eq!(
                kms_verify(&kms, &key, m, kind.clone(), &sig).await,
                Err("ValidationException".to_string()),
                "{spec:?} {kind:?}"
            );
        }
        // Another spec's algorithm is a wrong key usage, as for other specs.
        let e = kms
            .sign()
            .key_id(&key)
            .message(Blob::new(small.clone()))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "InvalidKeyUsageException");

        // A certificate signing request: RFC 9881 algorithm, verified independently.
        let (st, out) = c.call(
            0,
            "TrentService.GenerateCertificateSigningRequest",
            &json!({"KeyId": key, "Subject": "CN=pq.example.com,O=Example",
                    "SubjectAlternativeNames": {"Dns": ["pq.example.com"]}}),
        );
        assert_eq!(st, 200, "{out}");
        assert_eq!(out["SigningAlgorithm"], "ML_DSA_SHAKE_256");
        let pem = out["CertificateSigningRequest"].as_str().unwrap();
        let req = x509_cert::request::CertReq::from_pem(pem.as_bytes()).unwrap();
        assert_eq!(req.algorithm.oid.to_string(), oid, "{spec:?}");
        assert!(req.algorithm.parameters.is_none());
        assert_eq!(req.info.public_key.to_der().unwrap(), spki);
        let info = req.info.to_der().unwrap();
        let csr_sig = req.signature.as_bytes().unwrap();
        assert!(theirs.verify(&info, csr_sig), "{spec:?} CSR");
        assert!(!theirs.verify(&info[1..], csr_sig));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_dsa_usages_and_policy_conditions() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let kms = c.client(0);
    // SIGN_VERIFY only, refused as other invalid spec/usage pairs are.
    for usage in [
        KeyUsageType::EncryptDecrypt,
        KeyUsageType::GenerateVerifyMac,
        KeyUsageType::KeyAgreement,
    ] {
        let e = kms
            .create_key()
            .key_spec(KeySpec::MlDsa65)
            .key_usage(usage.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "ValidationException", "{usage:?}");
    }
    let key = kms
        .create_key()
        .key_spec(KeySpec::MlDsa44)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let spki = kms
        .get_public_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .public_key()
        .unwrap()
        .as_ref()
        .to_vec();
    let (_, _, theirs) = independent(&KeySpec::MlDsa44, &spki);
    // Nobody signs an external mu with this key; RAW signing stays allowed.
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow",
             "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "NoExternalMu", "Effect": "Deny", "Principal": {"AWS": "*"},
             "Action": "kms:Sign", "Resource": "*",
             "Condition": {"StringEquals": {
                 "kms:SigningAlgorithm": "ML_DSA_SHAKE_256",
                 "kms:MessageType": "EXTERNAL_MU"}}}
        ]
    });
    kms.put_key_policy()
        .key_id(&key)
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let msg = b"policy-checked message".to_vec();
    let sig = sign(&kms, &key, &msg, MessageType::Raw).await;
    assert!(theirs.verify(&msg, &sig));
    let mu = theirs.mu(&msg);
    assert_eq!(
        sign_error(&kms, &key, &mu, MessageType::ExternalMu).await,
        "AccessDeniedException"
    );
    // Verify is not denied, with either message type.
    assert_eq!(
        kms_verify(&kms, &key, &mu, MessageType::ExternalMu, &sig).await,
        Ok(true)
    );
    assert_eq!(
        kms_verify(&kms, &key, &msg, MessageType::Raw, &sig).await,
        Ok(true)
    );
}

/// A key made by the independent library, imported: Arca's public key is its
/// public key, Arca's signatures verify with it, and Arca verifies its signatures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_dsa_material_made_elsewhere_imports_and_interoperates() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let kms = c.client(0);
    let key = kms
        .create_key()
        .origin(OriginType::External)
        .key_spec(KeySpec::MlDsa65)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let mut seed = [0u8; 32];
    aws_lc_rs::rand::fill(&mut seed).unwrap();
    let theirs = ml_dsa::SigningKey::<MlDsa65>::from_seed(&seed.into());
    let material = theirs.to_pkcs8_der().unwrap();
    // The seed-only PKCS#8 (RFC 9881) of the parameter set; another set's is refused.
    assert_eq!(material.as_bytes().len(), 54);
    let other = ml_dsa::SigningKey::<MlDsa44>::from_seed(&seed.into())
        .to_pkcs8_der()
        .unwrap();
    assert_eq!(
        import_material(&kms, &key, other.as_bytes()).await,
        Err("IncorrectKeyMaterialException".to_string())
    );
    import_material(&kms, &key, material.as_bytes())
        .await
        .unwrap();
    let d = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().key_state(),
        Some(&KeyState::Enabled)
    );
    let vk = theirs.expanded_key().verifying_key();
    let spki = kms
        .get_public_key()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .public_key()
        .unwrap()
        .as_ref()
        .to_vec();
    assert_eq!(vk.to_public_key_der().unwrap().as_bytes(), spki.as_slice());
    // Arca signs; the independent library verifies.
    let msg = b"signed inside with imported ML-DSA material".to_vec();
    let sig = sign(&kms, &key, &msg, MessageType::Raw).await;
    assert!(Independent::verify(&vk, &msg, &sig));
    let sig = sign(
        &kms,
        &key,
        &Independent::mu(&vk, &msg),
        MessageType::ExternalMu,
    )
    .await;
    assert!(Independent::verify(&vk, &msg, &sig));
    // The independent library signs; Arca verifies, over RAW and over mu.
    let outside = b"signed outside with the same seed".to_vec();
    let sig = theirs
        .expanded_key()
        .sign_deterministic(&outside, &[])
        .unwrap()
        .encode()
        .to_vec();
    assert_eq!(
        kms_verify(&kms, &key, &outside, MessageType::Raw, &sig).await,
        Ok(true)
    );
    let mu = Independent::mu(&vk, &outside);
    assert_eq!(
        kms_verify(&kms, &key, &mu, MessageType::ExternalMu, &sig).await,
        Ok(true)
    );
    assert_eq!(
        kms_verify(&kms, &key, &msg, MessageType::Raw, &sig).await,
        Ok(false)
    );
}
