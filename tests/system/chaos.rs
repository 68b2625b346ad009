//! A short run of the chaos suite (`tests/src/chaos.rs`): faults of every
//! kind against a 3-node cluster under load; nothing acknowledged may be
//! lost, no read may be stale, no fault may surface as anything but a
//! retriable error. `scripts/chaos.sh` runs the long version.

use arca_system_tests::chaos::{self, ChaosOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_fault_rounds_lose_nothing_and_read_nothing_stale() {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let report = chaos::run(ChaosOptions {
        rounds: 10,
        seed,
        ..ChaosOptions::default()
    })
    .await;
    eprintln!("{}", chaos::summary(&report));
    assert!(
        chaos::clean(&report),
        "seed {seed}: {}",
        serde_json::to_string_pretty(&report).unwrap()
    );
    // Every round's writes resumed, and the suite did real work.
    assert_eq!(report["write_resumption"]["count"], 10);
    assert!(report["state_reads"].as_u64().unwrap() > 100);
    assert!(report["state_writes"].as_u64().unwrap() > 10);
    assert!(report["acknowledged_creates"].as_u64().unwrap() > 0);
}
