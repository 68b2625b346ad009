//! A leader killed with SIGKILL and restarted comes back as leader of its old
//! term (openraft 0.9 restores it without an election), while the survivors
//! may already follow a newer leader that has acknowledged writes it has never
//! seen. It must not answer from that stale replica.
//!
//! Each round: kill the leader, let a survivor become leader, flip a key's
//! state (DisableKey / EnableKey) through the other survivor and wait for the
//! acknowledgement, then restart the old leader and send it Encrypt requests
//! at once, for longer than any grace period could last. Every answer must be
//! a retriable refusal (503) or agree with the acknowledged state. In half the
//! rounds the survivors are frozen (SIGSTOP) before the restart, so the old
//! leader cannot learn of the newer term at all — the case that a grace period
//! after start-up gets wrong every time; in the other half they keep running,
//! the race a user hits in the wild. Writes continue in the background.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::*;

const ROUNDS: usize = 8;
/// How long the restarted node is probed: longer than the stale bound (2 s).
const PROBE: Duration = Duration::from_secs(3);

/// What an Encrypt on the restarted node answered.
#[derive(Debug, PartialEq)]
enum Answer {
    Ok,
    Disabled,
    Refused,
    Other(String),
}

async fn encrypt(kms: &aws_sdk_kms::Client, key: &str) -> Answer {
    match kms
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"probe".to_vec()))
        .send()
        .await
    {
        Ok(_) => Answer::Ok,
        Err(e) => match error_code(&e).as_str() {
            "DisabledException" => Answer::Disabled,
            "DependencyTimeoutException" => Answer::Refused,
            other => Answer::Other(other.to_string()),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_leader_never_answers_from_state_older_than_an_acknowledged_write() {
    let mut c = Cluster::start(3).await;
    let first = c.wait_leader().await;
    let key = c.new_key(first).await;

    // Background writes on every node for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let writes = Arc::new(AtomicUsize::new(0));
    let writer = {
        let clients: Vec<_> = (0..3).map(|i| c.client_no_retry(i)).collect();
        let (stop, writes) = (stop.clone(), writes.clone());
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let r = clients[n % 3]
                    .create_key()
                    .description("background")
                    .send()
                    .await;
                if r.is_ok() {
                    writes.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        })
    };

    let mut enabled = true;
    let mut probes = 0usize;
    let mut refused = 0usize;
    for round in 0..ROUNDS {
        let freeze = round % 2 == 0;
        let old = c.wait_leader().await;
        c.nodes[old].kill();
        let survivors: Vec<usize> = (0..3).filter(|i| *i != old).collect();
        let new_leader = c.wait_leader().await;
        assert!(survivors.contains(&new_leader));
        let via = *survivors.iter().find(|i| **i != new_leader).unwrap();

        // Flip the key's state through the follower survivor; the SDK retries
        // while the new leader settles.
        if enabled {
            c.client(via)
                .disable_key()
                .key_id(&key)
                .send()
                .await
                .unwrap();
        } else {
            c.client(via)
                .enable_key()
                .key_id(&key)
                .send()
                .await
                .unwrap();
        }
        enabled = !enabled;

        if freeze {
            for s in &survivors {
                c.pause(*s);
            }
        }
        c.start_node(old);
        let kms = c.client_no_retry(old);
        let addr = c.nodes[old].api_addr.clone();
        wait_for("the restarted node to answer /health", DEADLINE, || {
            let addr = addr.clone();
            async move { (http_get(&addr, "/health").map(|r| r.0) == Some(200)).then_some(()) }
        })
        .await;
        let until = Instant::now() + PROBE;
        while Instant::now() < until {
            let a = encrypt(&kms, &key).await;
            probes += 1;
            match (&a, enabled) {
                (Answer::Refused, _) => refused += 1,
                (Answer::Ok, true) | (Answer::Disabled, false) => {}
                _ => panic!(
                    "round {round} (survivors {}): node {} answered {a:?} after an acknowledged {}",
                    if freeze { "frozen" } else { "running" },
                    old + 1,
                    if enabled { "EnableKey" } else { "DisableKey" },
                ),
            }
        }
        if freeze {
            for s in &survivors {
                c.resume(*s);
            }
        }
        // Once it has caught up it serves the acknowledged state.
        c.wait_ready(old).await;
        let want = if enabled {
            Answer::Ok
        } else {
            Answer::Disabled
        };
        let got = wait_for("the restarted node to serve again", DEADLINE, || {
            let (kms, key) = (kms.clone(), key.clone());
            async move {
                let a = encrypt(&kms, &key).await;
                (a != Answer::Refused).then_some(a)
            }
        })
        .await;
        assert_eq!(
            got,
            want,
            "round {round}: node {} after catching up",
            old + 1
        );
    }
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        writes.load(Ordering::Relaxed) > 0,
        "no background write succeeded"
    );
    eprintln!(
        "{ROUNDS} rounds: {probes} probes of restarted leaders, {refused} refused (503), none stale; {} background writes",
        writes.load(Ordering::Relaxed)
    );
}
