//! Repeated leader kills on one cluster. openraft 0.9 can livelock an
//! election after a leader dies (both survivors campaign in step forever); the
//! node's election watchdog breaks such ties. One kill proves little, so this
//! kills the leader (SIGKILL) and restarts it many times in a row, each time
//! requiring a new leader within a deadline and a write that succeeds.

use std::time::{Duration, Instant};

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::*;

const ROUNDS: usize = 20;
/// A new leader must be elected this fast, even on a busy 2-core machine.
const ELECTION_DEADLINE: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_is_killed_and_restarted_twenty_times() {
    let mut c = Cluster::start(3).await;
    let first = c.wait_leader().await;
    let key = c.new_key(first).await;
    let mut slowest = Duration::ZERO;
    for round in 0..ROUNDS {
        let leader = c.wait_leader().await;
        let killed_at = Instant::now();
        c.nodes[leader].kill();

        let survivors: Vec<(usize, String)> = (0..3)
            .filter(|i| *i != leader)
            .map(|i| (i, c.nodes[i].api_addr.clone()))
            .collect();
        let new_leader = wait_for(
            &format!(
                "round {round}: a new leader after killing node {}",
                leader + 1
            ),
            ELECTION_DEADLINE,
            || {
                let survivors = survivors.clone();
                async move {
                    survivors
                        .iter()
                        .find(|(_, a)| metric(a, "arca_raft_is_leader") == Some(1))
                        .map(|(i, _)| *i)
                }
            },
        )
        .await;
        slowest = slowest.max(killed_at.elapsed());

        // The new leader takes writes, and the key still works.
        let kms = c.client(new_leader);
        let e = kms
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(format!("round {round}").into_bytes()))
            .send()
            .await
            .unwrap();
        kms.create_key()
            .description(format!("round {round}"))
            .send()
            .await
            .unwrap();
        let other = survivors.iter().find(|(i, _)| *i != new_leader).unwrap().0;
        let d = c
            .client(other)
            .decrypt()
            .ciphertext_blob(e.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.plaintext().unwrap().as_ref(),
            format!("round {round}").as_bytes()
        );

        c.start_node(leader);
        c.wait_ready(leader).await;
    }
    let keys = c.client(0).list_keys().send().await.unwrap();
    assert_eq!(keys.keys().len(), ROUNDS + 1);
    eprintln!("slowest failover over {ROUNDS} rounds: {slowest:?}");
}
