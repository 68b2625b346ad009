//! ML-KEM keys (FIPS 203) through real clusters and the AWS SDK: CreateKey,
//! DescribeKey, GetPublicKey, Encapsulate, Decapsulate, data key pairs, key
//! states, usage, policies, GetKeyLastUsage and the audit log. OpenSSL 3.0
//! has no ML-KEM, so the independent implementation is RustCrypto's `ml-kem`
//! in this process: it parses GetPublicKey's SubjectPublicKeyInfo and a data
//! key pair's PKCS#8 itself, encapsulates to Arca's public key and
//! decapsulates with a private key Arca generated.

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::{
    DataKeyPairSpec, EncapsulationAlgorithmSpec, KeySpec, KeyState, KeyUsageType,
    SigningAlgorithmSpec,
};
use arca_system_tests::*;
use ml_kem::kem::{Decapsulate, Encapsulate, KeyExport};
use ml_kem::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use pkcs8::der::Decode;
use serde_json::{json, Value};

const ML_KEM: EncapsulationAlgorithmSpec = EncapsulationAlgorithmSpec::MlKem;

/// The OS CSPRNG (through aws-lc-rs) as the RNG `ml-kem` encapsulates with.
struct Rng;

impl rand_core::TryRng for Rng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        aws_lc_rs::rand::fill(dst).expect("the OS CSPRNG");
        Ok(())
    }
}

impl rand_core::TryCryptoRng for Rng {}

/// (spec, OID, encapsulation key length, ciphertext length), as FIPS 203 and RFC 9935
/// give them.
fn specs() -> [(KeySpec, &'static str, usize, usize); 3] {
    [
        (KeySpec::MlKem512, "2.16.840.1.101.3.4.4.1", 800, 768),
        (KeySpec::MlKem768, "2.16.840.1.101.3.4.4.2", 1184, 1088),
        (KeySpec::MlKem1024, "2.16.840.1.101.3.4.4.3", 1568, 1568),
    ]
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

/// Encapsulate through node `via`: (ciphertext, secret).
async fn encapsulate(c: &Cluster, via: usize, key: &str) -> (Vec<u8>, Vec<u8>) {
    let out = c
        .client(via)
        .encapsulate()
        .key_id(key)
        .encapsulation_algorithm(ML_KEM)
        .send()
        .await
        .unwrap();
    assert!(out.key_id().unwrap().ends_with(key), "{out:?}");
    assert_eq!(out.encapsulation_algorithm(), Some(&ML_KEM));
    (
        out.shared_secret_ciphertext_blob()
            .unwrap()
            .as_ref()
            .to_vec(),
        out.shared_secret().unwrap().as_ref().to_vec(),
    )
}

async fn decapsulate(c: &Cluster, via: usize, key: &str, ciphertext: &[u8]) -> Vec<u8> {
    let out = c
        .client(via)
        .decapsulate()
        .key_id(key)
        .encapsulation_algorithm(ML_KEM)
        .shared_secret_ciphertext_blob(Blob::new(ciphertext.to_vec()))
        .send()
        .await
        .unwrap();
    assert!(out.key_id().unwrap().ends_with(key), "{out:?}");
    assert_eq!(out.encapsulation_algorithm(), Some(&ML_KEM));
    out.shared_secret().unwrap().as_ref().to_vec()
}

/// Encapsulates to `spki` with `ml-kem`, which parses the SPKI itself: (ciphertext, secret).
fn independent_encapsulate(spec: &KeySpec, spki: &[u8]) -> (Vec<u8>, Vec<u8>) {
    macro_rules! with {
        ($p:ty) => {{
            let ek = ml_kem::EncapsulationKey::<$p>::from_public_key_der(spki).unwrap();
            // It encodes the key back to the very bytes Arca gave.
            assert_eq!(ek.to_public_key_der().unwrap().as_bytes(), spki);
            let (ct, k) = ek.encapsulate_with_rng(&mut Rng);
            (ct.to_vec(), k.to_vec())
        }};
    }
    match spec {
        KeySpec::MlKem512 => with!(ml_kem::MlKem512),
        KeySpec::MlKem768 => with!(ml_kem::MlKem768),
        _ => with!(ml_kem::MlKem1024),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_kem_keys_encapsulate_and_decapsulate_on_every_node_and_interoperate() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    let mut keys = Vec::new();
    for (n, (spec, oid, ek_len, ct_len)) in specs().into_iter().enumerate() {
        let key = create(&c, spec.clone(), KeyUsageType::EncapsulateDecapsulate).await;
        let d = c
            .client(1)
            .describe_key()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        let meta = d.key_metadata().unwrap();
        assert_eq!(meta.key_spec(), Some(&spec));
        assert_eq!(
            meta.key_usage(),
            Some(&KeyUsageType::EncapsulateDecapsulate)
        );
        assert_eq!(meta.encapsulation_algorithms(), &[ML_KEM]);
        assert!(meta.signing_algorithms().is_empty() && meta.encryption_algorithms().is_empty());
        assert!(meta.key_agreement_algorithms().is_empty());

        let pk = c
            .client(2)
            .get_public_key()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(pk.key_spec(), Some(&spec));
        assert_eq!(pk.key_usage(), Some(&KeyUsageType::EncapsulateDecapsulate));
        assert_eq!(pk.encapsulation_algorithms(), &[ML_KEM]);
        assert!(pk.signing_algorithms().is_empty() && pk.encryption_algorithms().is_empty());
        let spki = pk.public_key().unwrap().as_ref().to_vec();
        // A SubjectPublicKeyInfo with the NIST OID, absent parameters and the raw
        // encapsulation key.
        let info = pkcs8::spki::SubjectPublicKeyInfoRef::from_der(&spki).unwrap();
        assert_eq!(info.algorithm.oid.to_string(), oid, "{spec:?}");
        assert!(info.algorithm.parameters.is_none());
        assert_eq!(
            info.subject_public_key.as_bytes().unwrap().len(),
            ek_len,
            "{spec:?}"
        );

        // Arca encapsulates on one node; every node decapsulates the same secret.
        let (ct, secret) = encapsulate(&c, n % 3, &key).await;
        assert_eq!(ct.len(), ct_len, "{spec:?}");
        assert_eq!(secret.len(), 32);
        for via in 0..3 {
            assert_eq!(decapsulate(&c, via, &key, &ct).await, secret, "node {via}");
        }
        // Fresh randomness each time.
        let (ct2, secret2) = encapsulate(&c, (n + 1) % 3, &key).await;
        assert_ne!(ct2, ct);
        assert_ne!(secret2, secret);

        // The independent side encapsulates to the public key GetPublicKey gave;
        // Arca's Decapsulate recovers its secret.
        let (their_ct, their_secret) = independent_encapsulate(&spec, &spki);
        assert_eq!(their_ct.len(), ct_len);
        assert_eq!(
            decapsulate(&c, (n + 2) % 3, &key, &their_ct).await,
            their_secret,
            "{spec:?}"
        );
        keys.push((key, ct, secret));
    }

    let kms = c.client(0);
    let (k768, ct768, secret768) = &keys[1];
    // A ciphertext of another parameter set's length, one byte short or long:
    // InvalidCiphertextException, as AWS answers a length that does not fit the spec.
    let (_, ct512, _) = &keys[0];
    let mut long = ct768.clone();
    long.push(0);
    for (what, bad) in [
        ("ML-KEM-512 ciphertext", ct512.clone()),
        ("short", ct768[..ct768.len() - 1].to_vec()),
        ("long", long),
        ("one byte", vec![0]),
    ] {
        let e = kms
            .decapsulate()
            .key_id(k768)
            .encapsulation_algorithm(ML_KEM)
            .shared_secret_ciphertext_blob(Blob::new(bad))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "InvalidCiphertextException", "{what}");
    }
    // An altered ciphertext of the right length decapsulates (implicit
    // rejection) to an unrelated secret.
    let mut altered = ct768.clone();
    altered[10] ^= 0x40;
    let other = decapsulate(&c, 0, k768, &altered).await;
    assert_eq!(other.len(), 32);
    assert_ne!(&other, secret768);
    // Missing or unknown algorithms and a missing ciphertext are validation errors.
    let (st, out) = c.call(0, "TrentService.Encapsulate", &json!({"KeyId": k768}));
    assert_eq!(
        (st, out["__type"].as_str()),
        (400, Some("ValidationException"))
    );
    let (st, out) = c.call(
        0,
        "TrentService.Encapsulate",
        &json!({"KeyId": k768, "EncapsulationAlgorithm": "ML_KEM_768"}),
    );
    assert_eq!(
        (st, out["__type"].as_str()),
        (400, Some("ValidationException"))
    );
    let (st, out) = c.call(
        0,
        "TrentService.Decapsulate",
        &json!({"KeyId": k768, "EncapsulationAlgorithm": "ML_KEM"}),
    );
    assert_eq!(
        (st, out["__type"].as_str()),
        (400, Some("ValidationException"))
    );
    // DryRun, after validation, for both.
    let e = kms
        .encapsulate()
        .key_id(k768)
        .encapsulation_algorithm(ML_KEM)
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "DryRunOperationException");
    let e = kms
        .decapsulate()
        .key_id(k768)
        .encapsulation_algorithm(ML_KEM)
        .shared_secret_ciphertext_blob(Blob::new(ct768.clone()))
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "DryRunOperationException");

    // Usage is enforced both ways.
    let symmetric = c.new_key(0).await;
    let agreement = create(&c, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    for other in [&symmetric, &agreement] {
        let e = kms
            .encapsulate()
            .key_id(other)
            .encapsulation_algorithm(ML_KEM)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "InvalidKeyUsageException");
        let e = kms
            .decapsulate()
            .key_id(other)
            .encapsulation_algorithm(ML_KEM)
            .shared_secret_ciphertext_blob(Blob::new(ct768.clone()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "InvalidKeyUsageException");
    }
    let e = kms
        .sign()
        .key_id(k768)
        .message(Blob::new(b"m".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
    let e = kms
        .encrypt()
        .key_id(k768)
        .plaintext(Blob::new(b"m".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
    // Only ML-KEM specs take ENCAPSULATE_DECAPSULATE, and they take nothing else.
    for (spec, usage) in [
        (KeySpec::MlKem768, KeyUsageType::SignVerify),
        (KeySpec::MlKem768, KeyUsageType::EncryptDecrypt),
        (KeySpec::MlKem512, KeyUsageType::KeyAgreement),
        (KeySpec::MlKem1024, KeyUsageType::GenerateVerifyMac),
        (KeySpec::Rsa2048, KeyUsageType::EncapsulateDecapsulate),
        (KeySpec::EccNistP256, KeyUsageType::EncapsulateDecapsulate),
        (
            KeySpec::SymmetricDefault,
            KeyUsageType::EncapsulateDecapsulate,
        ),
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

    // Key states: a disabled key refuses both; enabled again it works; a key
    // pending deletion refuses both.
    kms.disable_key().key_id(k768).send().await.unwrap();
    let e = kms
        .encapsulate()
        .key_id(k768)
        .encapsulation_algorithm(ML_KEM)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "DisabledException");
    let e = kms
        .decapsulate()
        .key_id(k768)
        .encapsulation_algorithm(ML_KEM)
        .shared_secret_ciphertext_blob(Blob::new(ct768.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "DisabledException");
    kms.enable_key().key_id(k768).send().await.unwrap();
    assert_eq!(&decapsulate(&c, 1, k768, ct768).await, secret768);
    let (k1024, ct1024, _) = &keys[2];
    kms.schedule_key_deletion()
        .key_id(k1024)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let d = kms.describe_key().key_id(k1024).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().key_state(),
        Some(&KeyState::PendingDeletion)
    );
    let e = kms
        .encapsulate()
        .key_id(k1024)
        .encapsulation_algorithm(ML_KEM)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidStateException");
    let e = kms
        .decapsulate()
        .key_id(k1024)
        .encapsulation_algorithm(ML_KEM)
        .shared_secret_ciphertext_blob(Blob::new(ct1024.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidStateException");

    // GetKeyLastUsage names the operation, on the node that ran it.
    let (k512, ct512, secret512) = &keys[0];
    assert_eq!(&decapsulate(&c, 2, k512, ct512).await, secret512);
    let u = c
        .client(2)
        .get_key_last_usage()
        .key_id(k512)
        .send()
        .await
        .unwrap();
    assert_eq!(
        u.key_last_usage().unwrap().operation().map(|o| o.as_str()),
        Some("Decapsulate")
    );
    encapsulate(&c, 2, k512).await;
    let u = c
        .client(2)
        .get_key_last_usage()
        .key_id(k512)
        .send()
        .await
        .unwrap();
    assert_eq!(
        u.key_last_usage().unwrap().operation().map(|o| o.as_str()),
        Some("Encapsulate")
    );

    // The audit log records both operations with their key, and never a secret.
    let audit = std::fs::read_to_string(c.nodes[2].data_dir.join("audit.jsonl")).unwrap();
    let records: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for op in ["Encapsulate", "Decapsulate"] {
        assert!(
            records
                .iter()
                .any(|r| r["operation"] == op && r["key_id"] == k512.as_str()),
            "no {op} record for {k512}"
        );
    }
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    for (_, _, secret) in &keys {
        assert!(!audit.contains(&b64.encode(secret)));
        assert!(!contains(audit.as_bytes(), secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_kem_data_key_pairs_are_seed_pkcs8_an_independent_library_reads() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let kms = c.client(0);
    let wrapping = c.new_key(0).await;
    let kem = create(&c, KeySpec::MlKem768, KeyUsageType::EncapsulateDecapsulate).await;
    for (spec, pair_spec, oid) in [
        (
            KeySpec::MlKem512,
            DataKeyPairSpec::MlKem512,
            "2.16.840.1.101.3.4.4.1",
        ),
        (
            KeySpec::MlKem768,
            DataKeyPairSpec::MlKem768,
            "2.16.840.1.101.3.4.4.2",
        ),
        (
            KeySpec::MlKem1024,
            DataKeyPairSpec::MlKem1024,
            "2.16.840.1.101.3.4.4.3",
        ),
    ] {
        let out = kms
            .generate_data_key_pair()
            .key_id(&wrapping)
            .key_pair_spec(pair_spec.clone())
            .encryption_context("purpose", "ml-kem")
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_pair_spec(), Some(&pair_spec));
        let private = out.private_key_plaintext().unwrap().as_ref().to_vec();
        let public = out.public_key().unwrap().as_ref().to_vec();
        // PKCS#8 in the seed form: [0] IMPLICIT OCTET STRING of the 64-byte seed.
        assert_eq!(private.len(), 86, "{spec:?}");
        let info = pkcs8::PrivateKeyInfoRef::from_der(&private).unwrap();
        assert_eq!(info.algorithm.oid.to_string(), oid);
        assert!(info.algorithm.parameters.is_none());
        assert_eq!(&info.private_key.as_bytes()[..2], &[0x80, 0x40]);
        // The copy under the symmetric key decrypts to the same bytes.
        let dec = kms
            .decrypt()
            .ciphertext_blob(out.private_key_ciphertext_blob().unwrap().clone())
            .encryption_context("purpose", "ml-kem")
            .send()
            .await
            .unwrap();
        assert_eq!(dec.plaintext().unwrap().as_ref(), private.as_slice());

        // `ml-kem` reads the private key, derives the public key Arca returned,
        // and decapsulates what is encapsulated to that public key.
        macro_rules! check {
            ($p:ty) => {{
                let dk = ml_kem::DecapsulationKey::<$p>::from_pkcs8_der(&private).unwrap();
                let ek = dk.encapsulation_key();
                assert_eq!(
                    ek.to_public_key_der().unwrap().as_bytes(),
                    public.as_slice()
                );
                let (ct, k) = ek.encapsulate_with_rng(&mut Rng);
                assert_eq!(dk.decapsulate(&ct), k);
                assert_eq!(dk.to_bytes().as_slice(), &info.private_key.as_bytes()[2..]);
            }};
        }
        match spec {
            KeySpec::MlKem512 => check!(ml_kem::MlKem512),
            KeySpec::MlKem768 => check!(ml_kem::MlKem768),
            _ => check!(ml_kem::MlKem1024),
        }
        let (their_ct, their_secret) = independent_encapsulate(&spec, &public);
        macro_rules! decap {
            ($p:ty) => {{
                let dk = ml_kem::DecapsulationKey::<$p>::from_pkcs8_der(&private).unwrap();
                dk.decapsulate_slice(&their_ct).unwrap().to_vec()
            }};
        }
        let got = match spec {
            KeySpec::MlKem512 => decap!(ml_kem::MlKem512),
            KeySpec::MlKem768 => decap!(ml_kem::MlKem768),
            _ => decap!(ml_kem::MlKem1024),
        };
        assert_eq!(got, their_secret);

        let without = kms
            .generate_data_key_pair_without_plaintext()
            .key_id(&wrapping)
            .key_pair_spec(pair_spec.clone())
            .send()
            .await
            .unwrap();
        assert!(without.public_key().is_some());
        let dec = kms
            .decrypt()
            .ciphertext_blob(without.private_key_ciphertext_blob().unwrap().clone())
            .send()
            .await
            .unwrap();
        let private = dec.plaintext().unwrap().as_ref().to_vec();
        assert_eq!(private.len(), 86);
        assert_ne!(
            private,
            out.private_key_plaintext().unwrap().as_ref(),
            "a fresh pair"
        );
    }
    // A data key pair needs a symmetric encryption key, not an ML-KEM key.
    let e = kms
        .generate_data_key_pair()
        .key_id(&kem)
        .key_pair_spec(DataKeyPairSpec::MlKem768)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_and_grants_name_encapsulate_and_decapsulate() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let key = create(&c, KeySpec::MlKem512, KeyUsageType::EncapsulateDecapsulate).await;
    let (ct, secret) = encapsulate(&c, 0, &key).await;
    let endpoint = c.nodes[0].endpoint();

    // An identity policy that allows everything but kms:Decapsulate.
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "kms:Decapsulate", "Resource": "*"}
    ]});
    let file = c.dir.path().join("no-decapsulate.json");
    std::fs::write(&file, policy.to_string()).unwrap();
    let user = |name: &str| {
        let out = c.cli(&[
            "access-key",
            "create",
            "--endpoint",
            &endpoint,
            "--user",
            name,
            "--json",
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let kms = client_no_retry(
            &endpoint,
            v["AccessKeyId"].as_str().unwrap(),
            v["SecretAccessKey"].as_str().unwrap(),
        );
        (v["UserArn"].as_str().unwrap().to_string(), kms)
    };
    let (_, app) = user("app");
    c.cli(&[
        "user",
        "put-policy",
        "--endpoint",
        &endpoint,
        "--user",
        "app",
        "--policy-file",
        file.to_str().unwrap(),
    ]);
    let out = app
        .encapsulate()
        .key_id(&key)
        .encapsulation_algorithm(ML_KEM)
        .send()
        .await
        .unwrap();
    assert_eq!(out.shared_secret().unwrap().as_ref().len(), 32);
    let e = app
        .decapsulate()
        .key_id(&key)
        .encapsulation_algorithm(ML_KEM)
        .shared_secret_ciphertext_blob(Blob::new(ct.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "AccessDeniedException");

    // A user with no policy at all may do what a grant allows: Decapsulate
    // only, with its grant token.
    let (grantee_arn, grantee) = user("grantee");
    let e = grantee
        .decapsulate()
        .key_id(&key)
        .encapsulation_algorithm(ML_KEM)
        .shared_secret_ciphertext_blob(Blob::new(ct.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "AccessDeniedException");
    let grant = c
        .client(0)
        .create_grant()
        .key_id(&key)
        .grantee_principal(&grantee_arn)
        .operations(arca_system_tests::aws_sdk_kms::types::GrantOperation::Decapsulate)
        .send()
        .await
        .unwrap();
    let token = grant.grant_token().unwrap().to_string();
    let out = grantee
        .decapsulate()
        .key_id(&key)
        .encapsulation_algorithm(ML_KEM)
        .shared_secret_ciphertext_blob(Blob::new(ct.clone()))
        .grant_tokens(token.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.shared_secret().unwrap().as_ref(), secret.as_slice());
    let e = grantee
        .encapsulate()
        .key_id(&key)
        .encapsulation_algorithm(ML_KEM)
        .grant_tokens(token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "AccessDeniedException");
}

/// ML-KEM material made by the independent library (the 64-byte seed in
/// PKCS#8, as Arca stores its own), imported by AWS's documented flow: Arca's
/// public key is the library's, Arca decapsulates what the library
/// encapsulates, and the library decapsulates what Arca encapsulates.
/// Another parameter set's material is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ml_kem_material_made_elsewhere_imports_and_interoperates() {
    use ml_kem::pkcs8::EncodePrivateKey;

    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let kms = c.client(0);
    let key = kms
        .create_key()
        .origin(arca_system_tests::aws_sdk_kms::types::OriginType::External)
        .key_spec(KeySpec::MlKem768)
        .key_usage(KeyUsageType::EncapsulateDecapsulate)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let mut seed = [0u8; 64];
    aws_lc_rs::rand::fill(&mut seed).unwrap();
    let theirs = ml_kem::DecapsulationKey::<ml_kem::MlKem768>::from_seed(seed.into());
    let material = theirs.to_pkcs8_der().unwrap();
    assert_eq!(material.as_bytes().len(), 86);
    let other = ml_kem::DecapsulationKey::<ml_kem::MlKem512>::from_seed(seed.into())
        .to_pkcs8_der()
        .unwrap();
    assert_eq!(
        import_material(&kms, &key, other.as_bytes()).await,
        Err("IncorrectKeyMaterialException".to_string())
    );
    assert_eq!(
        import_material(&kms, &key, &material.as_bytes()[..40]).await,
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
    let ek = theirs.encapsulation_key();
    assert_eq!(ek.to_public_key_der().unwrap().as_bytes(), spki.as_slice());

    // The library encapsulates; Arca decapsulates the same secret.
    let (ct, secret) = ek.encapsulate_with_rng(&mut Rng);
    assert_eq!(decapsulate(&c, 0, &key, &ct).await, secret.to_vec());
    // Arca encapsulates; the library decapsulates the same secret.
    let (ct, secret) = encapsulate(&c, 0, &key).await;
    assert_eq!(theirs.decapsulate_slice(&ct).unwrap().to_vec(), secret);

    // Importing the same material again is accepted (AWS's re-import).
    import_material(&kms, &key, material.as_bytes())
        .await
        .unwrap();
}
