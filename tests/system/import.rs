//! Imported key material ("bring your own key") on a real 3-node cluster,
//! following AWS's documented flow with the AWS SDK and the OpenSSL CLI:
//! material is generated and wrapped locally with OpenSSL under the public
//! wrapping key GetParametersForImport returned, imported through one node,
//! and used through the others. What OpenSSL signs, encrypts or MACs outside
//! with the same material, Arca verifies or decrypts inside, and the other
//! way round.

use std::path::{Path, PathBuf};

use arca_system_tests::aws_sdk_kms::primitives::{Blob, DateTime};
use arca_system_tests::aws_sdk_kms::types::{
    AlgorithmSpec, EncryptionAlgorithmSpec, ExpirationModelType, KeySpec, KeyState, KeyUsageType,
    MacAlgorithmSpec, OriginType, SigningAlgorithmSpec, WrappingKeySpec,
};
use arca_system_tests::*;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

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
    fn read(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap()
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(args: &[&str]) {
    let (ok, err) = openssl(args);
    assert!(ok, "openssl {args:?}: {err}");
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `openssl rand` bytes.
fn random(files: &Files, n: usize) -> Vec<u8> {
    let out = files.path("rand.bin");
    run(&["rand", "-out", s(&out), &n.to_string()]);
    files.read("rand.bin")
}

/// A private key from `openssl genpkey`, as unencrypted PKCS#8 DER, and its
/// public key (SPKI DER) as OpenSSL derives it.
fn key_pair(files: &Files, genpkey: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let pem = files.path("key.pem");
    let mut args = vec!["genpkey"];
    args.extend(genpkey);
    args.extend(["-out", s(&pem)]);
    run(&args);
    let der = files.path("key.der");
    run(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        s(&pem),
        "-outform",
        "DER",
        "-out",
        s(&der),
    ]);
    let public = files.path("key.pub.der");
    run(&[
        "pkey",
        "-in",
        s(&pem),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        s(&public),
    ]);
    (files.read("key.der"), files.read("key.pub.der"))
}

fn oaep_md(alg: &AlgorithmSpec) -> &'static str {
    match alg {
        AlgorithmSpec::RsaesOaepSha1 | AlgorithmSpec::RsaAesKeyWrapSha1 => "sha1",
        _ => "sha256",
    }
}

/// `openssl pkeyutl -encrypt` of `plain` under the wrapping public key, with
/// `options` (`-pkeyopt` values; none for SM2).
fn pkey_encrypt(files: &Files, wrapping_spki: &[u8], plain: &[u8], options: &[&str]) -> Vec<u8> {
    let pk = files.write("wrapping.der", wrapping_spki);
    let inp = files.write("plain.bin", plain);
    let out = files.path("encrypted.bin");
    let mut args = vec![
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        s(&pk),
        "-keyform",
        "DER",
        "-in",
        s(&inp),
        "-out",
        s(&out),
    ];
    for o in options {
        args.extend(["-pkeyopt", o]);
    }
    run(&args);
    files.read("encrypted.bin")
}

/// RSA-OAEP under the wrapping public key, as AWS documents it.
fn oaep_encrypt(files: &Files, wrapping_spki: &[u8], md: &str, plain: &[u8]) -> Vec<u8> {
    let md_opt = format!("rsa_oaep_md:{md}");
    let mgf_opt = format!("rsa_mgf1_md:{md}");
    pkey_encrypt(
        files,
        wrapping_spki,
        plain,
        &["rsa_padding_mode:oaep", &md_opt, &mgf_opt],
    )
}

/// Wraps `material` for import with `alg`, with OpenSSL: RSA-OAEP of the
/// material, RSA-OAEP of a fresh AES key followed by the material under
/// `openssl enc -id-aes256-wrap-pad` (RSA_AES_KEY_WRAP_*), or SM2
/// encryption of the material under the SM2 wrapping key (SM2PKE).
fn wrap_for_import(
    files: &Files,
    alg: &AlgorithmSpec,
    wrapping_spki: &[u8],
    material: &[u8],
) -> Vec<u8> {
    match alg {
        AlgorithmSpec::Sm2Pke => pkey_encrypt(files, wrapping_spki, material, &[]),
        AlgorithmSpec::RsaesOaepSha1 | AlgorithmSpec::RsaesOaepSha256 => {
            oaep_encrypt(files, wrapping_spki, oaep_md(alg), material)
        }
        _ => {
            let aes = random(files, 32);
            let inp = files.write("material.bin", material);
            let out = files.path("kwp.bin");
            run(&[
                "enc",
                "-id-aes256-wrap-pad",
                "-K",
                &hex(&aes),
                "-iv",
                "A65959A6",
                "-in",
                s(&inp),
                "-out",
                s(&out),
            ]);
            let mut blob = oaep_encrypt(files, wrapping_spki, oaep_md(alg), &aes);
            blob.extend(files.read("kwp.bin"));
            blob
        }
    }
}

struct Params {
    token: Vec<u8>,
    public_key: Vec<u8>,
    /// ParametersValidTo, Unix seconds.
    valid_to: i64,
}

async fn parameters(
    kms: &aws_sdk_kms::Client,
    key: &str,
    alg: AlgorithmSpec,
    spec: WrappingKeySpec,
) -> Params {
    let p = kms
        .get_parameters_for_import()
        .key_id(key)
        .wrapping_algorithm(alg)
        .wrapping_key_spec(spec)
        .send()
        .await
        .unwrap();
    assert!(p.key_id().unwrap().ends_with(key));
    Params {
        token: p.import_token().unwrap().as_ref().to_vec(),
        public_key: p.public_key().unwrap().as_ref().to_vec(),
        valid_to: p.parameters_valid_to().unwrap().secs(),
    }
}

/// Gets parameters through `via`, wraps `material` with OpenSSL and imports
/// it through `via + 1`, never expiring.
#[allow(clippy::too_many_arguments)]
async fn import(
    c: &Cluster,
    files: &Files,
    via: usize,
    key: &str,
    alg: AlgorithmSpec,
    spec: WrappingKeySpec,
    material: &[u8],
) -> Result<(), String> {
    let p = parameters(&c.client(via % 3), key, alg.clone(), spec).await;
    let encrypted = wrap_for_import(files, &alg, &p.public_key, material);
    c.client((via + 1) % 3)
        .import_key_material()
        .key_id(key)
        .import_token(Blob::new(p.token))
        .encrypted_key_material(Blob::new(encrypted))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| error_code(&e))
}

async fn create_external(c: &Cluster, via: usize, spec: KeySpec, usage: KeyUsageType) -> String {
    let k = c
        .client(via)
        .create_key()
        .origin(OriginType::External)
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap();
    let m = k.key_metadata().unwrap();
    assert_eq!(m.origin(), Some(&OriginType::External));
    assert_eq!(m.key_state(), Some(&KeyState::PendingImport));
    assert!(!m.enabled());
    assert!(m.expiration_model().is_none());
    m.key_id().to_string()
}

async fn state(c: &Cluster, via: usize, key: &str) -> KeyState {
    c.client(via)
        .describe_key()
        .key_id(key)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_state()
        .unwrap()
        .clone()
}

async fn decrypt(c: &Cluster, via: usize, ct: &[u8]) -> Result<Vec<u8>, String> {
    c.client(via)
        .decrypt()
        .ciphertext_blob(Blob::new(ct.to_vec()))
        .send()
        .await
        .map(|d| d.plaintext().unwrap().as_ref().to_vec())
        .map_err(|e| error_code(&e))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn symmetric_and_hmac_material_import_delete_reimport_and_expire() {
    let mut c = Cluster::start_with(
        3,
        Options {
            adjustable_clock: true,
            ..Options::default()
        },
    )
    .await;
    c.wait_leader().await;
    let files = Files::new();
    let key = create_external(
        &c,
        0,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;

    // Pending import: no crypto, no enabling.
    let e = c
        .client(1)
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidStateException");
    let e = c
        .client(2)
        .enable_key()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidStateException");

    // A token obtained now is past its 24 hours after the clock moves below.
    let stale = parameters(
        &c.client(2),
        &key,
        AlgorithmSpec::RsaesOaepSha256,
        WrappingKeySpec::Rsa2048,
    )
    .await;
    let left = stale.valid_to - unix_now();
    assert!(
        (23 * 3600..=24 * 3600 + 60).contains(&left),
        "valid for 24 h: {left} s"
    );
    // The public key is an RSA-2048 key OpenSSL reads.
    let spki = files.write("stale.der", &stale.public_key);
    let (ok, err) = openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        s(&spki),
        "-noout",
    ]);
    assert!(ok, "{err}");

    // Import 256 bits that OpenSSL made, wrapped with RSAES_OAEP_SHA_256.
    let material = random(&files, 32);
    import(
        &c,
        &files,
        0,
        &key,
        AlgorithmSpec::RsaesOaepSha256,
        WrappingKeySpec::Rsa2048,
        &material,
    )
    .await
    .unwrap();
    let m = c
        .client(2)
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let m = m.key_metadata().unwrap();
    assert_eq!(m.key_state(), Some(&KeyState::Enabled));
    assert_eq!(m.origin(), Some(&OriginType::External));
    assert_eq!(
        m.expiration_model(),
        Some(&ExpirationModelType::KeyMaterialDoesNotExpire)
    );
    assert!(m.valid_to().is_none());
    let ct = c
        .client(2)
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"sealed under imported material".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .as_ref()
        .to_vec();
    for i in 0..3 {
        assert_eq!(
            decrypt(&c, i, &ct).await.unwrap(),
            b"sealed under imported material"
        );
    }

    // Deleted: pending import everywhere, and nothing decrypts.
    c.client(1)
        .delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    for i in 0..3 {
        assert_eq!(state(&c, i, &key).await, KeyState::PendingImport);
        assert_eq!(
            decrypt(&c, i, &ct).await.unwrap_err(),
            "KMSInvalidStateException"
        );
    }

    // Other material is refused, in any wrapping.
    let other = random(&files, 32);
    assert_eq!(
        import(
            &c,
            &files,
            1,
            &key,
            AlgorithmSpec::RsaAesKeyWrapSha1,
            WrappingKeySpec::Rsa3072,
            &other
        )
        .await
        .unwrap_err(),
        "IncorrectKeyMaterialException"
    );
    // Material of the wrong size for the spec too.
    assert_eq!(
        import(
            &c,
            &files,
            1,
            &key,
            AlgorithmSpec::RsaesOaepSha1,
            WrappingKeySpec::Rsa2048,
            &material[..16]
        )
        .await
        .unwrap_err(),
        "IncorrectKeyMaterialException"
    );

    // The same material again, wrapped with RSA_AES_KEY_WRAP_SHA_256 under
    // a 4096-bit key, expiring in two days: the old ciphertext decrypts.
    let p = parameters(
        &c.client(0),
        &key,
        AlgorithmSpec::RsaAesKeyWrapSha256,
        WrappingKeySpec::Rsa4096,
    )
    .await;
    let encrypted = wrap_for_import(
        &files,
        &AlgorithmSpec::RsaAesKeyWrapSha256,
        &p.public_key,
        &material,
    );
    // Not with the token of another key, a forged token, or material
    // wrapped under another wrapping key.
    let other_key = create_external(
        &c,
        1,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let other_params = parameters(
        &c.client(1),
        &other_key,
        AlgorithmSpec::RsaAesKeyWrapSha256,
        WrappingKeySpec::Rsa4096,
    )
    .await;
    let mut forged = p.token.clone();
    let mid = forged.len() / 2;
    forged[mid] ^= 1;
    for (token, code) in [
        (other_params.token.clone(), "InvalidImportTokenException"),
        (forged, "InvalidImportTokenException"),
        (b"not a token".to_vec(), "InvalidImportTokenException"),
    ] {
        let e = c
            .client(1)
            .import_key_material()
            .key_id(&key)
            .import_token(Blob::new(token))
            .encrypted_key_material(Blob::new(encrypted.clone()))
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), code);
    }
    let under_other = wrap_for_import(
        &files,
        &AlgorithmSpec::RsaAesKeyWrapSha256,
        &other_params.public_key,
        &material,
    );
    let e = c
        .client(2)
        .import_key_material()
        .key_id(&key)
        .import_token(Blob::new(p.token.clone()))
        .encrypted_key_material(Blob::new(under_other))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidCiphertextException");
    // ExpirationModel and ValidTo as AWS pairs them.
    let now = unix_now();
    for (model, valid_to) in [
        (Some(ExpirationModelType::KeyMaterialExpires), None),
        (None, None),
        (
            Some(ExpirationModelType::KeyMaterialDoesNotExpire),
            Some(now + 3600),
        ),
        (
            Some(ExpirationModelType::KeyMaterialExpires),
            Some(now - 10),
        ),
        (
            Some(ExpirationModelType::KeyMaterialExpires),
            Some(now + 366 * 86_400),
        ),
    ] {
        let e = c
            .client(2)
            .import_key_material()
            .key_id(&key)
            .import_token(Blob::new(p.token.clone()))
            .encrypted_key_material(Blob::new(encrypted.clone()))
            .set_expiration_model(model.clone())
            .set_valid_to(valid_to.map(DateTime::from_secs))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            error_code(&e),
            "ValidationException",
            "{model:?} {valid_to:?}"
        );
    }
    let valid_to = now + 2 * 86_400;
    c.client(2)
        .import_key_material()
        .key_id(&key)
        .import_token(Blob::new(p.token.clone()))
        .encrypted_key_material(Blob::new(encrypted.clone()))
        .expiration_model(ExpirationModelType::KeyMaterialExpires)
        .valid_to(DateTime::from_secs(valid_to))
        .send()
        .await
        .unwrap();
    for i in 0..3 {
        let m = c
            .client(i)
            .describe_key()
            .key_id(&key)
            .send()
            .await
            .unwrap();
        let m = m.key_metadata().unwrap();
        assert_eq!(m.key_state(), Some(&KeyState::Enabled));
        assert_eq!(
            m.expiration_model(),
            Some(&ExpirationModelType::KeyMaterialExpires)
        );
        assert_eq!(m.valid_to().map(|v| v.secs()), Some(valid_to));
        assert_eq!(
            decrypt(&c, i, &ct).await.unwrap(),
            b"sealed under imported material"
        );
    }

    // HMAC: 64 bytes of OpenSSL's (longer than the digest, as AWS allows),
    // wrapped with SM2PKE under an SM2 wrapping key; a tag OpenSSL computes
    // verifies inside, and GenerateMac agrees.
    let hkey = create_external(&c, 2, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let hmac_material = random(&files, 64);
    import(
        &c,
        &files,
        2,
        &hkey,
        AlgorithmSpec::Sm2Pke,
        WrappingKeySpec::Sm2,
        &hmac_material,
    )
    .await
    .unwrap();
    let msg = files.write("msg.bin", b"a message MACed outside and inside");
    let tag_path = files.path("tag.bin");
    let hexkey = format!("hexkey:{}", hex(&hmac_material));
    run(&[
        "dgst",
        "-sha256",
        "-mac",
        "HMAC",
        "-macopt",
        &hexkey,
        "-binary",
        "-out",
        s(&tag_path),
        s(&msg),
    ]);
    let tag = files.read("tag.bin");
    for i in 0..3 {
        let v = c
            .client(i)
            .verify_mac()
            .key_id(&hkey)
            .message(Blob::new(b"a message MACed outside and inside".to_vec()))
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .mac(Blob::new(tag.clone()))
            .send()
            .await
            .unwrap();
        assert!(v.mac_valid());
    }
    let g = c
        .client(0)
        .generate_mac()
        .key_id(&hkey)
        .message(Blob::new(b"a message MACed outside and inside".to_vec()))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(g.mac().unwrap().as_ref(), tag);
    // Too short for HMAC_256.
    let hkey2 = create_external(&c, 0, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    assert_eq!(
        import(
            &c,
            &files,
            0,
            &hkey2,
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::Rsa2048,
            &hmac_material[..31]
        )
        .await
        .unwrap_err(),
        "IncorrectKeyMaterialException"
    );

    // Three days later: the material expired (the leader deleted it), and
    // the token of the first GetParametersForImport is past its 24 hours.
    c.advance_clock(3 * DAY_MS);
    for i in 0..3 {
        let client = c.client(i);
        let k = key.clone();
        wait_for(&format!("expiry on node {}", i + 1), DEADLINE, || {
            let (client, k) = (client.clone(), k.clone());
            async move {
                let m = client.describe_key().key_id(&k).send().await.ok()?;
                let m = m.key_metadata()?;
                (m.key_state() == Some(&KeyState::PendingImport) && m.valid_to().is_none())
                    .then_some(())
            }
        })
        .await;
        assert_eq!(
            decrypt(&c, i, &ct).await.unwrap_err(),
            "KMSInvalidStateException"
        );
    }
    // The HMAC key does not expire.
    assert_eq!(state(&c, 1, &hkey).await, KeyState::Enabled);
    let encrypted = wrap_for_import(
        &files,
        &AlgorithmSpec::RsaesOaepSha256,
        &stale.public_key,
        &material,
    );
    let e = c
        .client(0)
        .import_key_material()
        .key_id(&key)
        .import_token(Blob::new(stale.token))
        .encrypted_key_material(Blob::new(encrypted))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "ExpiredImportTokenException");
    // A fresh token brings the same material back.
    import(
        &c,
        &files,
        1,
        &key,
        AlgorithmSpec::RsaesOaepSha256,
        WrappingKeySpec::Rsa2048,
        &material,
    )
    .await
    .unwrap();
    assert_eq!(
        decrypt(&c, 0, &ct).await.unwrap(),
        b"sealed under imported material"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_errors_and_permissions() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let kms = c.client(0);
    // A generated key takes no import.
    let generated = c.new_key(0).await;
    let e = kms
        .get_parameters_for_import()
        .key_id(&generated)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "UnsupportedOperationException");
    let e = kms
        .delete_imported_key_material()
        .key_id(&generated)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "UnsupportedOperationException");
    let m = kms.describe_key().key_id(&generated).send().await.unwrap();
    assert_eq!(
        m.key_metadata().unwrap().origin(),
        Some(&OriginType::AwsKms)
    );

    let key = create_external(
        &c,
        0,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    for (alg, spec, code) in [
        (
            AlgorithmSpec::from("RSA_NONE"),
            WrappingKeySpec::Rsa2048,
            "ValidationException",
        ),
        (
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::from("RSA_1024"),
            "ValidationException",
        ),
        // SM2PKE takes only an SM2 wrapping key, the RSA algorithms only RSA ones.
        (
            AlgorithmSpec::Sm2Pke,
            WrappingKeySpec::Rsa2048,
            "ValidationException",
        ),
        (
            AlgorithmSpec::RsaesOaepSha256,
            WrappingKeySpec::Sm2,
            "ValidationException",
        ),
    ] {
        let e = kms
            .get_parameters_for_import()
            .key_id(&key)
            .wrapping_algorithm(alg.clone())
            .wrapping_key_spec(spec.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), code, "{alg:?} {spec:?}");
    }
    let e = kms
        .create_key()
        .origin(OriginType::AwsCloudhsm)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "UnsupportedOperationException");
    // Pending deletion: no import parameters.
    kms.schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let e = kms
        .get_parameters_for_import()
        .key_id(&key)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidStateException");
    // Canceled, a key without material is pending import again.
    kms.cancel_key_deletion().key_id(&key).send().await.unwrap();
    assert_eq!(state(&c, 0, &key).await, KeyState::PendingImport);

    // The key policy decides, action by action.
    let key2 = create_external(
        &c,
        0,
        KeySpec::SymmetricDefault,
        KeyUsageType::EncryptDecrypt,
    )
    .await;
    let endpoint = c.nodes[0].endpoint();
    let out = c.cli(&[
        "access-key",
        "create",
        "--endpoint",
        &endpoint,
        "--user",
        "importer",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let importer = client_no_retry(
        &endpoint,
        v["AccessKeyId"].as_str().unwrap(),
        v["SecretAccessKey"].as_str().unwrap(),
    );
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "Root", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
             "Action": "kms:*", "Resource": "*"},
            {"Sid": "Import", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/importer")},
             "Action": ["kms:GetParametersForImport", "kms:ImportKeyMaterial"], "Resource": "*",
             "Condition": {"StringEquals": {"kms:KeyOrigin": "EXTERNAL"}}},
            {"Sid": "NoSmallWrappingKeys", "Effect": "Deny", "Principal": {"AWS": "*"},
             "Action": "kms:GetParametersForImport", "Resource": "*",
             "Condition": {"StringEquals": {"kms:WrappingKeySpec": "RSA_2048"}}}
        ]
    });
    kms.put_key_policy()
        .key_id(&key2)
        .policy(policy.to_string())
        .send()
        .await
        .unwrap();
    let files = Files::new();
    let e = importer
        .get_parameters_for_import()
        .key_id(&key2)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "AccessDeniedException");
    let p = parameters(
        &importer,
        &key2,
        AlgorithmSpec::RsaesOaepSha256,
        WrappingKeySpec::Rsa3072,
    )
    .await;
    let material = random(&files, 32);
    let encrypted = wrap_for_import(
        &files,
        &AlgorithmSpec::RsaesOaepSha256,
        &p.public_key,
        &material,
    );
    importer
        .import_key_material()
        .key_id(&key2)
        .import_token(Blob::new(p.token))
        .encrypted_key_material(Blob::new(encrypted))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap();
    let e = importer
        .delete_imported_key_material()
        .key_id(&key2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "AccessDeniedException");
    assert_eq!(state(&c, 0, &key2).await, KeyState::Enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asymmetric_material_from_openssl_works_inside_and_out() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    let files = Files::new();

    // RSA encryption: imported with RSA_AES_KEY_WRAP_SHA_256 (an RSA
    // private key is too large for OAEP alone); OpenSSL encrypts with the
    // public key it derived from the material, Arca decrypts.
    let key = create_external(&c, 0, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let (private, public) = key_pair(
        &files,
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    import(
        &c,
        &files,
        0,
        &key,
        AlgorithmSpec::RsaAesKeyWrapSha256,
        WrappingKeySpec::Rsa3072,
        &private,
    )
    .await
    .unwrap();
    let pk = c
        .client(2)
        .get_public_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(pk.public_key().unwrap().as_ref(), public);
    let ct = oaep_encrypt(&files, &public, "sha256", b"encrypted outside");
    for i in 0..3 {
        let d = c
            .client(i)
            .decrypt()
            .key_id(&key)
            .ciphertext_blob(Blob::new(ct.clone()))
            .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
            .send()
            .await
            .unwrap();
        assert_eq!(d.plaintext().unwrap().as_ref(), b"encrypted outside");
    }
    // Other material for the same key, and material of another size.
    let (other, _) = key_pair(
        &files,
        &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
    );
    assert_eq!(
        import(
            &c,
            &files,
            1,
            &key,
            AlgorithmSpec::RsaAesKeyWrapSha1,
            WrappingKeySpec::Rsa2048,
            &other
        )
        .await
        .unwrap_err(),
        "IncorrectKeyMaterialException"
    );
    let key3072 = create_external(&c, 1, KeySpec::Rsa3072, KeyUsageType::SignVerify).await;
    assert_eq!(
        import(
            &c,
            &files,
            1,
            &key3072,
            AlgorithmSpec::RsaAesKeyWrapSha256,
            WrappingKeySpec::Rsa4096,
            &private
        )
        .await
        .unwrap_err(),
        "IncorrectKeyMaterialException"
    );
    // The same material again (after deletion) is accepted.
    c.client(2)
        .delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    import(
        &c,
        &files,
        2,
        &key,
        AlgorithmSpec::RsaAesKeyWrapSha1,
        WrappingKeySpec::Rsa4096,
        &private,
    )
    .await
    .unwrap();

    // Signing keys: Arca signs with imported material, OpenSSL verifies with
    // the public key it derived itself.
    // (spec, `openssl genpkey` options, wrapping, signing, `pkeyutl` options)
    type Case = (
        KeySpec,
        &'static [&'static str],
        AlgorithmSpec,
        SigningAlgorithmSpec,
        &'static [&'static str],
    );
    let cases: [Case; 5] = [
        (
            KeySpec::Rsa3072,
            &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072"],
            AlgorithmSpec::RsaAesKeyWrapSha256,
            SigningAlgorithmSpec::RsassaPssSha256,
            &[
                "-digest",
                "sha256",
                "-pkeyopt",
                "rsa_padding_mode:pss",
                "-pkeyopt",
                "rsa_pss_saltlen:32",
            ],
        ),
        (
            KeySpec::EccNistP256,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
            // Small enough for OAEP alone.
            AlgorithmSpec::RsaesOaepSha256,
            SigningAlgorithmSpec::EcdsaSha256,
            &["-digest", "sha256"],
        ),
        (
            KeySpec::EccNistP384,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"],
            AlgorithmSpec::RsaAesKeyWrapSha1,
            SigningAlgorithmSpec::EcdsaSha384,
            &["-digest", "sha384"],
        ),
        (
            KeySpec::EccSecgP256K1,
            &[
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:secp256k1",
            ],
            AlgorithmSpec::RsaAesKeyWrapSha256,
            SigningAlgorithmSpec::EcdsaSha256,
            &["-digest", "sha256"],
        ),
        (
            KeySpec::Sm2,
            &["-algorithm", "SM2"],
            // SM2 material under an SM2 wrapping key, as in China's regions.
            AlgorithmSpec::Sm2Pke,
            SigningAlgorithmSpec::Sm2Dsa,
            &["-digest", "sm3", "-pkeyopt", "distid:1234567812345678"],
        ),
    ];
    for (n, (spec, genpkey, alg, sign_alg, verify_opts)) in cases.into_iter().enumerate() {
        let k = create_external(&c, n % 3, spec.clone(), KeyUsageType::SignVerify).await;
        let (private, public) = key_pair(&files, genpkey);
        let wrapping = if alg == AlgorithmSpec::Sm2Pke {
            WrappingKeySpec::Sm2
        } else {
            WrappingKeySpec::Rsa2048
        };
        import(&c, &files, n, &k, alg, wrapping, &private)
            .await
            .unwrap_or_else(|e| panic!("{spec:?}: {e}"));
        let msg = format!("signed inside with imported {spec:?}").into_bytes();
        let sig = c
            .client((n + 2) % 3)
            .sign()
            .key_id(&k)
            .message(Blob::new(msg.clone()))
            .signing_algorithm(sign_alg.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("{spec:?}: {}", error_code(&e)));
        let (pk, m, sg) = (
            files.write("verify.pub.der", &public),
            files.write("verify.msg", &msg),
            files.write("verify.sig", sig.signature().unwrap().as_ref()),
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
            "-rawin",
        ];
        args.extend(verify_opts);
        let (ok, err) = openssl(&args);
        assert!(ok, "OpenSSL verifies the {spec:?} signature: {err}");
        // And material of another curve or algorithm is refused.
        let wrong = create_external(&c, n % 3, spec.clone(), KeyUsageType::SignVerify).await;
        let (p256, _) = key_pair(
            &files,
            &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-521"],
        );
        assert_eq!(
            import(
                &c,
                &files,
                n,
                &wrong,
                AlgorithmSpec::RsaAesKeyWrapSha256,
                WrappingKeySpec::Rsa2048,
                &p256
            )
            .await
            .unwrap_err(),
            "IncorrectKeyMaterialException",
            "{spec:?}"
        );
    }
}
