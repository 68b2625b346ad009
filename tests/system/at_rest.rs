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
