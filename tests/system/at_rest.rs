//! Nothing secret at rest: after keys are created and used on a 3-node
//! cluster, no file in any data directory (nor any log) holds raw key
//! material, a data key, or a plaintext that was encrypted.

use arca_crypto::wrap::RootKey;
use arca_node::actors::material_context;
use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::DataKeySpec;
use arca_system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_material_or_plaintext_in_data_dirs_or_logs() {
    let mut c = Cluster::start_with(
        3,
        Options {
            // Snapshots too must hold only wrapped material.
            snapshot_every: 10,
            keep_after_snapshot: 5,
            ..Options::default()
        },
    )
    .await;
    c.wait_leader().await;
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    let mut key_ids = Vec::new();
    for i in 0..12 {
        let kms = c.client(i % 3);
        let k = kms.create_key().send().await.unwrap();
        let id = k.key_metadata().unwrap().key_id().to_string();
        // Distinctive plaintexts, long enough that a chance match is impossible.
        let pt = format!("plaintext-{i}-{id}-never-at-rest").into_bytes();
        let ct = kms
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new(pt.clone()))
            .send()
            .await
            .unwrap();
        assert!(ct.ciphertext_blob().is_some());
        let dk = kms
            .generate_data_key()
            .key_id(&id)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await
            .unwrap();
        secrets.push(pt);
        secrets.push(dk.plaintext().unwrap().as_ref().to_vec());
        key_ids.push(id);
    }
    for n in &mut c.nodes {
        n.stop();
    }

    // Unwrap every key's material with the root key, from every node's data.
    let root = RootKey::from_file_contents(&std::fs::read(&c.root_key_file).unwrap()).unwrap();
    let mut materials = 0;
    for n in &c.nodes {
        let wrapped = arca_node::store::wrapped_key_material(&n.data_dir).unwrap();
        assert_eq!(wrapped.len(), key_ids.len(), "node {} has every key", n.id);
        for (id, version, w) in wrapped {
            let m = root
                .unwrap_key32(&w, material_context(&id, version))
                .unwrap();
            secrets.push(m.expose().to_vec());
            materials += 1;
        }
    }
    assert_eq!(materials, 3 * key_ids.len());

    let mut scanned = 0;
    for n in &c.nodes {
        let mut paths = files_under(&n.data_dir);
        paths.push(n.log_path().to_path_buf());
        for p in paths {
            let bytes = std::fs::read(&p).unwrap();
            scanned += bytes.len();
            for s in &secrets {
                assert!(
                    !contains(&bytes, s),
                    "{} holds a secret in the clear",
                    p.display()
                );
            }
        }
    }
    assert!(
        scanned > 10_000,
        "the scan read the stores ({scanned} bytes)"
    );
}

/// Imported material is kept like generated material: wrapped under the
/// root key, in every node's store, and never in the clear in a data
/// directory (Raft log, snapshots, state) or a log, whether the material
/// is a symmetric key, an HMAC key or a private key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_material_is_never_at_rest_in_the_clear() {
    use arca_system_tests::aws_sdk_kms::types::{
        AlgorithmSpec, ExpirationModelType, KeySpec, KeyUsageType, MacAlgorithmSpec, OriginType,
        SigningAlgorithmSpec, WrappingKeySpec,
    };

    let mut c = Cluster::start_with(
        3,
        Options {
            snapshot_every: 10,
            keep_after_snapshot: 5,
            ..Options::default()
        },
    )
    .await;
    c.wait_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let ossl = |args: &[&str]| {
        let (ok, err) = openssl(args);
        assert!(ok, "openssl {args:?}: {err}");
    };
    ossl(&["rand", "-out", &path("sym.bin"), "32"]);
    ossl(&["rand", "-out", &path("hmac.bin"), "48"]);
    ossl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &path("ec.pem"),
    ]);
    ossl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        &path("ec.pem"),
        "-outform",
        "DER",
        "-out",
        &path("ec.der"),
    ]);
    let read = |name: &str| std::fs::read(dir.path().join(name)).unwrap();
    let ec = read("ec.der");
    // The private scalar inside the PKCS#8 (ECPrivateKey: 02 01 01 04 20 <d>).
    let at = ec
        .windows(5)
        .position(|w| w == [0x02, 0x01, 0x01, 0x04, 0x20])
        .expect("an ECPrivateKey in the PKCS#8");
    let scalar = ec[at + 5..at + 37].to_vec();
    let materials = [
        (
            KeySpec::SymmetricDefault,
            KeyUsageType::EncryptDecrypt,
            read("sym.bin"),
        ),
        (
            KeySpec::Hmac384,
            KeyUsageType::GenerateVerifyMac,
            read("hmac.bin"),
        ),
        (KeySpec::EccNistP256, KeyUsageType::SignVerify, ec.clone()),
    ];
    for (n, (spec, usage, material)) in materials.iter().enumerate() {
        let kms = c.client(n % 3);
        let key = kms
            .create_key()
            .origin(OriginType::External)
            .key_spec(spec.clone())
            .key_usage(usage.clone())
            .send()
            .await
            .unwrap()
            .key_metadata()
            .unwrap()
            .key_id()
            .to_string();
        let p = kms
            .get_parameters_for_import()
            .key_id(&key)
            .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
            .wrapping_key_spec(WrappingKeySpec::Rsa2048)
            .send()
            .await
            .unwrap();
        std::fs::write(
            dir.path().join("wrap.der"),
            p.public_key().unwrap().as_ref(),
        )
        .unwrap();
        std::fs::write(dir.path().join("m.bin"), material).unwrap();
        ossl(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-inkey",
            &path("wrap.der"),
            "-keyform",
            "DER",
            "-in",
            &path("m.bin"),
            "-out",
            &path("m.enc"),
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            "rsa_oaep_md:sha256",
        ]);
        c.client((n + 1) % 3)
            .import_key_material()
            .key_id(&key)
            .import_token(p.import_token().unwrap().clone())
            .encrypted_key_material(Blob::new(read("m.enc")))
            .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
            .send()
            .await
            .unwrap();
        // Used on every node.
        for i in 0..3 {
            let kms = c.client(i);
            match spec {
                KeySpec::SymmetricDefault => {
                    kms.encrypt()
                        .key_id(&key)
                        .plaintext(Blob::new(b"x".to_vec()))
                        .send()
                        .await
                        .unwrap();
                }
                KeySpec::Hmac384 => {
                    kms.generate_mac()
                        .key_id(&key)
                        .message(Blob::new(b"x".to_vec()))
                        .mac_algorithm(MacAlgorithmSpec::HmacSha384)
                        .send()
                        .await
                        .unwrap();
                }
                _ => {
                    kms.sign()
                        .key_id(&key)
                        .message(Blob::new(b"x".to_vec()))
                        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
                        .send()
                        .await
                        .unwrap();
                }
            }
        }
    }
    for n in &mut c.nodes {
        n.stop();
    }

    // Every node holds each material wrapped under the root key.
    let root = RootKey::from_file_contents(&std::fs::read(&c.root_key_file).unwrap()).unwrap();
    for n in &c.nodes {
        let mut unwrapped: Vec<Vec<u8>> = arca_node::store::wrapped_key_material(&n.data_dir)
            .unwrap()
            .into_iter()
            .map(|(id, version, w)| {
                root.unwrap(&w, material_context(&id, version))
                    .unwrap()
                    .expose()
                    .to_vec()
            })
            .collect();
        unwrapped.sort();
        let mut expected: Vec<Vec<u8>> = materials.iter().map(|(_, _, m)| m.clone()).collect();
        expected.sort();
        assert_eq!(unwrapped, expected, "node {}", n.id);
    }

    let mut secrets: Vec<Vec<u8>> = materials.iter().map(|(_, _, m)| m.clone()).collect();
    secrets.push(scalar);
    let mut scanned = 0;
    for n in &c.nodes {
        let mut paths = files_under(&n.data_dir);
        paths.push(n.log_path().to_path_buf());
        for p in paths {
            let bytes = std::fs::read(&p).unwrap();
            scanned += bytes.len();
            for s in &secrets {
                assert!(
                    !contains(&bytes, s),
                    "{} holds imported material in the clear",
                    p.display()
                );
            }
        }
    }
    assert!(
        scanned > 10_000,
        "the scan read the stores ({scanned} bytes)"
    );
}
