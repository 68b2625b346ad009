//! Repeated leader kills on one cluster. openraft 0.9 can livelock an
//! election after a leader dies (both survivors campaign in step); the node
//! starts elections itself, with a fresh random delay per attempt and a
//! pre-vote (`election.rs`). One kill proves little, so this
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

/// A follower cut off from the others for many election timeouts asks for
/// pre-votes, gets none, and so never raises its term: when the partition
/// heals it rejoins as a follower, and the leader it comes back to goes on
/// leading in the same term (without a pre-vote it would return with a
/// higher term and depose it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_follower_rejoins_without_deposing_the_leader() {
    if !netns::Netns::available() {
        eprintln!("skipped: network namespaces need root and iproute2");
        return;
    }
    let mut c = Cluster::start_with(
        3,
        Options {
            netns: true,
            ..Options::default()
        },
    )
    .await;
    let leader = c.wait_leader().await;
    let follower = (leader + 1) % 3;
    let key = c.new_key(leader).await;
    let term = c.metric(leader, "arca_raft_term").unwrap();

    c.partition(follower);
    // Cut off long enough for a dozen election timeouts, and proven cut
    // off: the follower stops serving once its lease has run out.
    let cut_at = Instant::now();
    wait_for("the cut-off follower to stop serving", DEADLINE, || {
        let addr = c.nodes[follower].api_addr.clone();
        async move { (http_get(&addr, "/ready").map(|r| r.0) == Some(503)).then_some(()) }
    })
    .await;
    let rest = Duration::from_secs(4).saturating_sub(cut_at.elapsed());
    tokio::time::sleep(rest).await; // the length of the fault, not a wait for a state
    assert_eq!(
        c.metric(follower, "arca_raft_term").unwrap(),
        term,
        "the cut-off follower raised its term"
    );
    // The majority side kept working meanwhile.
    encrypt_on(&c, leader, &key).await;

    c.heal(follower);
    c.wait_ready(follower).await;
    encrypt_on(&c, follower, &key).await;
    assert_eq!(c.wait_leader().await, leader, "the leader was deposed");
    assert_eq!(c.metric(leader, "arca_raft_term").unwrap(), term);
}

async fn encrypt_on(c: &Cluster, node: usize, key: &str) {
    c.client(node)
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"still here".to_vec()))
        .send()
        .await
        .unwrap();
}
