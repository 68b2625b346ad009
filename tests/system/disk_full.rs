//! A full disk: writes fail with a retriable error instead of stopping the
//! node, crypto on existing keys goes on, and once space returns the node
//! continues by itself with nothing acknowledged lost. The data directory is
//! a small tmpfs (mounting one needs root, as CI runs).

use std::io::Write;

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_retriably_and_the_node_recovers_by_itself() {
    let mut c = Cluster::start_with(
        1,
        Options {
            tmpfs_data_mib: Some(24),
            write_timeout_ms: Some(2000),
            ..Options::default()
        },
    )
    .await;
    let kms = c.client_no_retry(0);
    let before = c.new_key(0).await;
    let ct = kms
        .encrypt()
        .key_id(&before)
        .plaintext(Blob::new(b"written before".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();

    // Fill the disk.
    let filler = c.nodes[0].data_dir.join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }

    // Writes fail — retriably — once the database needs space it lacks.
    let mut acknowledged = vec![before.clone()];
    let mut refused = None;
    for _ in 0..500 {
        match kms.create_key().description("on a full disk").send().await {
            Ok(r) => acknowledged.push(r.key_metadata().unwrap().key_id().to_string()),
            Err(e) => {
                refused = Some(error_code(&e));
                break;
            }
        }
    }
    assert_eq!(refused.as_deref(), Some("DependencyTimeoutException"));
    let addr = c.nodes[0].api_addr.clone();
    let (status, why) = http_get(&addr, "/ready").unwrap();
    assert_eq!(status, 503);
    assert!(why.contains("disk") && why.contains("full"), "{why}");
    assert_eq!(
        metric(&addr, "arca_storage_disk_full"),
        Some(1),
        "/metrics answered {:?}",
        http_get(&addr, "/metrics")
    );
    assert_eq!(
        http_get(&addr, "/health").map(|r| r.0),
        Some(200),
        "the core runs on"
    );
    assert!(c.nodes[0]
        .log_text()
        .contains("disk holding the data directory is full"));

    // Crypto with existing keys goes on.
    let d = kms
        .decrypt()
        .ciphertext_blob(ct.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"written before");

    // Space returns: the node continues without a restart.
    std::fs::remove_file(&filler).unwrap();
    c.wait_ready(0).await;
    assert_eq!(metric(&addr, "arca_storage_disk_full"), Some(0));
    let after = c.new_key(0).await;
    acknowledged.push(after);

    // Nothing acknowledged is lost, across a crash too.
    c.restart(0);
    c.wait_ready(0).await;
    let kms = c.client(0);
    for k in &acknowledged {
        kms.describe_key().key_id(k).send().await.unwrap();
    }
    let d = kms.decrypt().ciphertext_blob(ct).send().await.unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"written before");
}
