//! Three real nodes: forwarding, replication, failover, catch-up by snapshot,
//! and a whole-cluster restart.

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::*;

async fn create(c: &Cluster, via: usize, desc: &str) -> String {
    c.client(via)
        .create_key()
        .description(desc)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string()
}

async fn encrypt(c: &Cluster, via: usize, key: &str, pt: &[u8]) -> Blob {
    c.client(via)
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(pt.to_vec()))
        .encryption_context("cluster", "test")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone()
}

async fn decrypt(c: &Cluster, via: usize, ct: &Blob) -> Vec<u8> {
    c.client(via)
        .decrypt()
        .ciphertext_blob(ct.clone())
        .encryption_context("cluster", "test")
        .send()
        .await
        .unwrap()
        .plaintext()
        .unwrap()
        .as_ref()
        .to_vec()
}

/// Key ids in a node's own replica (ListKeys is served locally).
async fn local_keys(c: &Cluster, i: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut marker = None;
    loop {
        let r = c
            .client(i)
            .list_keys()
            .limit(1000)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        out.extend(r.keys().iter().map(|k| k.key_id().unwrap().to_string()));
        if !r.truncated() {
            return out;
        }
        marker = r.next_marker().map(str::to_string);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_through_followers_and_crypto_on_every_node() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let follower = (leader + 1) % 3;
    let other = (leader + 2) % 3;

    // Created through a follower: forwarded, and visible there at once.
    let key = create(&c, follower, "via follower").await;
    let d = c
        .client(follower)
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        d.key_metadata().unwrap().description(),
        Some("via follower")
    );
    assert!(local_keys(&c, follower).await.contains(&key));

    // Encrypt on one node, decrypt on each of the others.
    let ct = encrypt(&c, other, &key, b"replicated").await;
    for i in 0..3 {
        assert_eq!(decrypt(&c, i, &ct).await, b"replicated");
    }
    // Every node's replica has the key.
    for i in 0..3 {
        let k = key.clone();
        let addr = c.nodes[i].endpoint();
        let (id, secret) = (
            c.creds.access_key_id.clone(),
            c.creds.secret_access_key.clone(),
        );
        wait_for("the key on every replica", DEADLINE, || {
            let (k, addr, id, secret) = (k.clone(), addr.clone(), id.clone(), secret.clone());
            async move {
                let r = client(&addr, &id, &secret).list_keys().send().await.ok()?;
                r.keys()
                    .iter()
                    .any(|x| x.key_id() == Some(k.as_str()))
                    .then_some(())
            }
        })
        .await;
    }

    // Status shows three voters, one leader, lag per member.
    let out = c.cli(&[
        "cluster",
        "status",
        "--endpoint",
        &c.nodes[follower].endpoint(),
        "--json",
    ]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["leader"].as_u64(), Some(c.nodes[leader].id));
    let members = s["members"].as_array().unwrap();
    assert_eq!(members.len(), 3);
    assert!(members
        .iter()
        .all(|m| m["voter"] == true && m["lag"].is_u64()));
    assert!(s["commit_index"].as_u64().unwrap() >= 3);
}

/// The runbook's bootstrap with a person's pauses between the steps (init,
/// then add-node, add-node): every node becomes ready and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_with_pauses_between_the_steps() {
    let mut c = Cluster::start_with(
        3,
        Options {
            bootstrap_pause: std::time::Duration::from_secs(3),
            ..Options::default()
        },
    )
    .await;
    let leader = c.wait_leader().await;
    let key = create(&c, (leader + 1) % 3, "after a slow bootstrap").await;
    for i in 0..3 {
        c.wait_ready(i).await;
        let ct = encrypt(&c, i, &key, b"ready").await;
        assert_eq!(decrypt(&c, (i + 1) % 3, &ct).await, b"ready");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_new_leader_elected_old_leader_catches_up() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let survivor = (leader + 1) % 3;
    let key = create(&c, leader, "before").await;
    let ct = encrypt(&c, leader, &key, b"before the crash").await;

    c.nodes[leader].kill();
    let new_leader = c.wait_leader().await;
    assert_ne!(new_leader, leader);

    // Writes succeed through the survivors; old ciphertexts still decrypt.
    let key2 = create(&c, survivor, "after").await;
    let ct2 = encrypt(&c, new_leader, &key2, b"after the crash").await;
    for i in [survivor, new_leader] {
        assert_eq!(decrypt(&c, i, &ct).await, b"before the crash");
        assert_eq!(decrypt(&c, i, &ct2).await, b"after the crash");
    }

    // The old leader comes back and catches up from the log.
    c.start_node(leader);
    c.wait_ready(leader).await;
    let (addr, id, secret) = (
        c.nodes[leader].endpoint(),
        c.creds.access_key_id.clone(),
        c.creds.secret_access_key.clone(),
    );
    let k2 = key2.clone();
    wait_for(
        "the restarted node to hold the key created while it was down",
        DEADLINE,
        || {
            let (addr, id, secret, k2) = (addr.clone(), id.clone(), secret.clone(), k2.clone());
            async move {
                let r = client(&addr, &id, &secret).list_keys().send().await.ok()?;
                r.keys()
                    .iter()
                    .any(|x| x.key_id() == Some(k2.as_str()))
                    .then_some(())
            }
        },
    )
    .await;
    assert_eq!(decrypt(&c, leader, &ct2).await, b"after the crash");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_added_after_many_writes_catches_up_by_snapshot() {
    let mut c = Cluster::start_with(
        3,
        Options {
            snapshot_every: 20,
            keep_after_snapshot: 0,
            ..Options::default()
        },
    )
    .await;
    let leader = c.wait_leader().await;
    let mut keys = Vec::new();
    for i in 0..60 {
        keys.push(create(&c, i % 3, &format!("k{i}")).await);
    }
    let ct = encrypt(&c, 0, &keys[0], b"early key").await;
    // The leader's log no longer holds the first entries: a newcomer cannot
    // replay them and must install a snapshot.
    let purged = wait_for("the leader to purge its log", DEADLINE, || {
        let p = c.metric(leader, "arca_raft_purged_index");
        async move { p.filter(|p| *p > 10) }
    })
    .await;
    assert!(purged > 10);

    // The newcomer joins from its own config file (`arca cluster join`).
    let n4 = c.join_node().await;
    c.wait_ready(n4).await;
    let mut have = local_keys(&c, n4).await;
    have.sort();
    keys.sort();
    assert_eq!(have, keys);
    assert!(
        c.metric(n4, "arca_raft_snapshot_index").unwrap() > 0,
        "the new node holds a snapshot"
    );
    // The metrics say how it got there: a leader sent it a snapshot, which it
    // installed.
    assert!(c.metric(n4, "arca_snapshots_installed_total").unwrap() >= 1);
    let sent: i64 = (0..3)
        .filter_map(|i| c.metric(i, "arca_snapshots_sent_total"))
        .sum();
    assert!(sent >= 1, "no snapshot sent");
    assert!(c.metric(leader, "arca_snapshots_built_total").unwrap() >= 1);
    assert_eq!(decrypt(&c, n4, &ct).await, b"early key");

    // Remove it again: the status lists three voters, and writes go on.
    c.remove_node(0, n4);
    let via = c.nodes[1].endpoint();
    let out = c.cli(&["cluster", "status", "--endpoint", &via, "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let members: Vec<u64> = s["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["node_id"].as_u64().unwrap())
        .collect();
    assert_eq!(members, [1, 2, 3]);
    create(&c, 1, "after removal").await;
    // The removed node, still running, gets no serving lease and stops serving.
    let removed = c.client_no_retry(n4);
    let k = keys[0].clone();
    let code = wait_for("the removed node to stop serving", DEADLINE, || {
        let (removed, k) = (removed.clone(), k.clone());
        async move {
            removed
                .encrypt()
                .key_id(k)
                .plaintext(Blob::new(b"x".to_vec()))
                .send()
                .await
                .err()
                .map(|e| error_code(&e))
        }
    })
    .await;
    assert_eq!(code, "DependencyTimeoutException");
    // It learns that it was removed, says so on /ready and in its log, and
    // stops campaigning: the cluster's term stays put.
    let addr = c.nodes[n4].api_addr.clone();
    let why = wait_for("the removed node to say so on /ready", DEADLINE, || {
        let addr = addr.clone();
        async move {
            http_get(&addr, "/ready")
                .filter(|(s, b)| *s == 503 && b.contains("removed from the cluster"))
                .map(|(_, b)| b)
        }
    })
    .await;
    assert!(why.contains("stop it"), "{why}");
    assert!(c.nodes[n4]
        .log_text()
        .contains("was removed from the cluster"));
    assert_eq!(http_get(&addr, "/health").map(|r| r.0), Some(200));
    let term = c.metric(0, "arca_raft_term").unwrap();
    let key = create(&c, 2, "terms settle").await;
    encrypt(&c, 0, &key, b"still one leader").await;
    assert_eq!(
        c.metric(0, "arca_raft_term").unwrap(),
        term,
        "no elections from the removed node"
    );

    // The status, from the leader's view: every member reachable, with its
    // last contact.
    let s: serde_json::Value =
        serde_json::from_str(&c.cli(&["cluster", "status", "--endpoint", &via, "--json"])).unwrap();
    for m in s["members"].as_array().unwrap() {
        assert_eq!(m["reachable"], true, "{m}");
        assert!(m["last_contact_ms"].as_u64().unwrap() < 5_000, "{m}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_without_a_leader_answers_at_once_with_what_the_node_knows() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);
    let key = create(&c, a, "read while the cluster is whole").await;
    c.nodes[leader].kill();
    c.nodes[b].kill();
    let via = c.nodes[a].endpoint();
    let started = std::time::Instant::now();
    let out = c.cli(&["cluster", "status", "--endpoint", &via]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(out.contains("own view"), "{out}");
    // Past the stale bound the node refuses to serve reads of keys, but
    // status, which an operator needs exactly then, still answers.
    let kms = c.client_no_retry(a);
    wait_for("node a to refuse stale reads", DEADLINE, || async {
        match kms.describe_key().key_id(&key).send().await {
            Err(e) => (error_code(&e) == "DependencyTimeoutException").then_some(()),
            Ok(_) => None,
        }
    })
    .await;
    let out = c.cli(&["cluster", "status", "--endpoint", &via]);
    assert!(out.contains("own view"), "{out}");
    // /ready says why it is not ready.
    let (status, why) = http_get(&c.nodes[a].api_addr, "/ready").unwrap();
    assert_eq!(status, 503);
    assert!(
        why.contains("no leader known") || why.contains("has not heard"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_cluster_restart_keeps_every_key() {
    let mut c = Cluster::start(3).await;
    c.wait_leader().await;
    let mut sealed = Vec::new();
    for i in 0..6 {
        let k = create(&c, i % 3, &format!("k{i}")).await;
        let ct = encrypt(&c, (i + 1) % 3, &k, format!("secret {i}").as_bytes()).await;
        sealed.push((k, ct, format!("secret {i}")));
    }
    for n in &mut c.nodes {
        n.kill();
    }
    for i in 0..3 {
        c.start_node(i);
    }
    c.wait_leader().await;
    for i in 0..3 {
        c.wait_ready(i).await;
    }
    for (i, (k, ct, pt)) in sealed.iter().enumerate() {
        let d = c
            .client(i % 3)
            .describe_key()
            .key_id(k)
            .send()
            .await
            .unwrap();
        assert_eq!(
            d.key_metadata().unwrap().description(),
            Some(format!("k{i}").as_str())
        );
        assert_eq!(decrypt(&c, (i + 2) % 3, ct).await, pt.as_bytes());
    }
    // And the cluster still takes writes.
    let k = create(&c, 1, "after restart").await;
    let ct = encrypt(&c, 2, &k, b"new").await;
    assert_eq!(decrypt(&c, 0, &ct).await, b"new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_access_key_leaves_no_secret_on_any_node() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let out = c.cli(&[
        "access-key",
        "create",
        "--endpoint",
        &c.nodes[leader].endpoint(),
        "--user",
        "app",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let (id, secret) = (
        v["AccessKeyId"].as_str().unwrap().to_string(),
        v["SecretAccessKey"].as_str().unwrap().to_string(),
    );
    let cached = |c: &Cluster, i: usize| c.metric(i, "arca_access_key_secrets_cached");
    // A signed request on each node unwraps the secret there (refused or not).
    for i in 0..3 {
        let body = b"{\"NumberOfBytes\": 8}";
        let addr = &c.nodes[i].api_addr;
        let h = signed_headers(
            addr,
            "TrentService.GenerateRandom",
            body,
            &id,
            &secret,
            unix_now(),
        );
        let (status, _) = http_post(addr, &h, body).unwrap();
        assert_eq!(status, 400, "no policy allows it yet");
        assert!(cached(&c, i).unwrap() >= 1);
    }
    let before: Vec<i64> = (0..3).map(|i| cached(&c, i).unwrap()).collect();
    c.cli(&[
        "access-key",
        "delete",
        "--endpoint",
        &c.nodes[leader].endpoint(),
        "--access-key",
        &id,
    ]);
    for (i, had) in before.iter().enumerate() {
        let addr = c.nodes[i].api_addr.clone();
        let want = had - 1;
        wait_for(
            &format!("node {} to wipe the deleted key's secret", i + 1),
            DEADLINE,
            || {
                let addr = addr.clone();
                async move {
                    (metric(&addr, "arca_access_key_secrets_cached") == Some(want)).then_some(())
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_output_into_a_closed_pipe_ends_quietly() {
    let c = Cluster::start(1).await;
    let mut child = std::process::Command::new(arca_bin())
        .args([
            "cluster",
            "status",
            "--json",
            "--endpoint",
            &c.nodes[0].endpoint(),
        ])
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", &c.creds.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &c.creds.secret_access_key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // As `| head -0` would: the reader is gone before anything is written.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(141), "{stderr}");
}

/// Membership changes the cluster cannot make are the caller's mistake, with
/// a 400 that says so, never an internal error; and they change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impossible_membership_changes_are_refused_as_client_errors() {
    let c = Cluster::start(1).await;
    let (code, status) = c.admin_call(0, "ClusterStatus", &serde_json::json!({}));
    assert_eq!(code, 200, "{status}");
    let me = status["node_id"].as_u64().expect("node_id");

    let (code, v) = c.admin_call(0, "RemoveNode", &serde_json::json!({ "NodeId": me + 40 }));
    assert_eq!(
        (code, v["__type"].as_str()),
        (400, Some("NotFoundException")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("not a member"),
        "{v}"
    );

    // Removing the only voter would leave a cluster of nobody.
    let (code, v) = c.admin_call(0, "RemoveNode", &serde_json::json!({ "NodeId": me }));
    assert_eq!(
        (code, v["__type"].as_str()),
        (400, Some("ValidationException")),
        "{v}"
    );

    // The node still serves, and is still the whole cluster.
    let key = create(&c, 0, "after refused membership changes").await;
    let ct = encrypt(&c, 0, &key, b"still here").await;
    assert_eq!(decrypt(&c, 0, &ct).await, b"still here");
    let (code, after) = c.admin_call(0, "ClusterStatus", &serde_json::json!({}));
    assert_eq!(code, 200);
    assert_eq!(
        after["members"].as_array().map(Vec::len),
        Some(1),
        "{after}"
    );
}

/// Operators add nodes to clusters in use. Under load the leader's
/// published metrics lag its core by a batch of messages, so a newcomer may
/// ask for a serving lease before they list it, although the leader already
/// replicates to it. Being told then that it is not a member would stop its
/// Raft for good, before the promotion that follows: each newcomer must
/// instead become a voter that serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_a_cluster_under_write_load() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let key = create(&c, leader, "in use while nodes join").await;
    let ct = encrypt(&c, leader, &key, b"before the newcomers").await;

    let stop = Arc::new(AtomicBool::new(false));
    let mut load = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (kms, stop) = (c.client(leader), stop.clone());
        load.spawn(async move {
            let mut created = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // A write may fail while the membership changes; the SDK
                // retries what is retriable, and the count says the load ran.
                if kms.create_key().send().await.is_ok() {
                    created += 1;
                }
            }
            created
        });
    }

    let mut newcomers = Vec::new();
    for _ in 0..2 {
        let n = c.join_node().await;
        c.wait_ready(n).await;
        newcomers.push(n);
    }
    stop.store(true, Ordering::Relaxed);
    let mut created = 0;
    while let Some(n) = load.join_next().await {
        created += n.unwrap();
    }
    assert!(created > 0, "no write succeeded during the joins");

    let via = c.nodes[leader].endpoint();
    let out = c.cli(&["cluster", "status", "--endpoint", &via, "--json"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    let voters = s["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["voter"] == true)
        .count();
    assert_eq!(voters, 5, "{s}");
    for n in newcomers {
        assert!(
            !c.nodes[n]
                .log_text()
                .contains("was removed from the cluster"),
            "node {} was told it is not a member",
            n + 1
        );
        assert_eq!(decrypt(&c, n, &ct).await, b"before the newcomers");
        let written = encrypt(&c, n, &key, b"through a newcomer").await;
        assert_eq!(decrypt(&c, leader, &written).await, b"through a newcomer");
    }
}
