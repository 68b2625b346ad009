//! Backup, restore, disaster recovery and a data directory put back from a
//! copy, on real clusters (docs/runbooks/backup-restore.md and
//! docs/runbooks/disaster-recovery.md).

use std::path::Path;

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::*;

/// Keys with aliases and a ciphertext each, made through node `via`.
struct Made {
    /// (key id, alias, plaintext, ciphertext)
    keys: Vec<(String, String, Vec<u8>, Vec<u8>)>,
}

async fn make_keys(c: &Cluster, via: usize, n: usize, tag: &str) -> Made {
    let client = c.client(via);
    let mut keys = Vec::new();
    for k in 0..n {
        let id = c.new_key(via).await;
        let alias = format!("alias/{tag}-{k}");
        client
            .create_alias()
            .alias_name(&alias)
            .target_key_id(&id)
            .send()
            .await
            .expect("CreateAlias");
        let plaintext = format!("{tag} secret {k}").into_bytes();
        let ct = client
            .encrypt()
            .key_id(&alias)
            .plaintext(Blob::new(plaintext.clone()))
            .send()
            .await
            .expect("Encrypt")
            .ciphertext_blob()
            .expect("CiphertextBlob")
            .as_ref()
            .to_vec();
        keys.push((id, alias, plaintext, ct));
    }
    Made { keys }
}

/// Every key, alias and ciphertext of `made` works through every running
/// node of `c`.
async fn check_keys(c: &mut Cluster, made: &Made) {
    for i in 0..c.nodes.len() {
        if !c.nodes[i].is_running() {
            continue;
        }
        let client = c.client(i);
        for (id, alias, plaintext, ct) in &made.keys {
            let d = client
                .decrypt()
                .ciphertext_blob(Blob::new(ct.clone()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("Decrypt through node {}: {e:?}", i + 1));
            assert_eq!(d.plaintext().unwrap().as_ref(), plaintext.as_slice());
            let m = client
                .describe_key()
                .key_id(alias)
                .send()
                .await
                .unwrap_or_else(|e| panic!("DescribeKey {alias} through node {}: {e:?}", i + 1));
            assert_eq!(m.key_metadata().unwrap().key_id(), id);
            // The key still encrypts, by its alias.
            client
                .encrypt()
                .key_id(alias)
                .plaintext(Blob::new(b"again".to_vec()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("Encrypt {alias} through node {}: {e:?}", i + 1));
        }
    }
}

fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn manifest_line<'a>(out: &'a str, label: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {out}"))
        .trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_from_a_follower_restores_into_a_new_cluster_where_everything_works() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let follower = (0..3).find(|i| *i != leader).unwrap();
    let made = make_keys(&c, leader, 3, "before").await;

    // Any node serves a backup: a follower, from its own replica once it
    // has caught up with the leader.
    let file = c.dir.path().join("cluster.backup");
    let endpoint = c.nodes[follower].endpoint();
    let out = c.cli(&[
        "backup",
        "--endpoint",
        &endpoint,
        "--out",
        file.to_str().unwrap(),
    ]);
    assert_eq!(mode(&file), 0o600);
    assert!(
        manifest_line(&out, "contents:")
            .starts_with("3 keys (3 versions), 3 aliases, 1 access keys"),
        "{out}"
    );
    let old_cluster = manifest_line(&out, "cluster id:").to_string();
    assert!(
        c.metric(follower, "arca_backup_age_seconds")
            .is_some_and(|a| (0..60).contains(&a)),
        "the serving node reports its backup age"
    );
    // The root key never leaves the cluster, not even wrapped.
    // (The key file is `id <id>` and a line of 64 hex digits.)
    let root_text = std::fs::read_to_string(&c.root_key_file).unwrap();
    let root_hex = root_text.trim().lines().last().unwrap();
    let bytes = std::fs::read(&file).unwrap();
    assert!(!contains(&bytes, root_hex.as_bytes()));
    let mut raw_root = [0u8; 32];
    hex_decode(root_hex, &mut raw_root);
    assert!(!contains(&bytes, &raw_root));
    // An existing file is never replaced.
    let (ok, _, err) = try_cli(
        &[
            "backup",
            "--endpoint",
            &endpoint,
            "--out",
            file.to_str().unwrap(),
        ],
        Some(&c.creds),
    );
    assert!(!ok && err.contains("exists"), "{err}");

    // A key made after the backup is not in it.
    let after = c.new_key(leader).await;

    // Offline checks: without and with the root key.
    let root = c.root_key_file.display().to_string();
    let f = file.display().to_string();
    let out = c.cli(&["backup", "verify", &f]);
    assert!(out.contains("OK:"), "{out}");
    let out = c.cli(&["backup", "verify", &f, "--root-key-file", &root]);
    assert!(
        out.contains("unwrapped:       3 key versions, 1 access keys"),
        "{out}"
    );

    // Every flipped byte is caught: in the manifest and in the payload.
    let manifest_end = bytes.iter().skip(12).position(|b| *b == b'\n').unwrap() + 12;
    for at in [
        20,
        manifest_end - 3,
        manifest_end + 10,
        bytes.len() / 2,
        bytes.len() - 1,
    ] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x20;
        let p = c.dir.path().join(format!("flipped-{at}.backup"));
        std::fs::write(&p, &bad).unwrap();
        let (ok, out, err) = try_cli(&["backup", "verify", p.to_str().unwrap()], None);
        assert!(!ok, "a byte flipped at {at} was not caught: {out}");
        assert!(err.contains("does not verify"), "{err}");
    }

    // Another root key is refused by its check value.
    let other = c.dir.path().join("other.key");
    c.cli(&["root-key", "generate", "--out", other.to_str().unwrap()]);
    let (ok, _, err) = try_cli(
        &[
            "backup",
            "verify",
            &f,
            "--root-key-file",
            other.to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok && err.contains("lack root key"), "{err}");
    let (ok, _, err) = try_cli(
        &[
            "restore",
            &f,
            "--data-dir",
            c.dir.path().join("wrong-root").to_str().unwrap(),
            "--root-key-file",
            other.to_str().unwrap(),
            "--api-addr",
            "127.0.0.1:1",
            "--peer-addr",
            "127.0.0.1:2",
        ],
        None,
    );
    assert!(!ok && err.contains("lack root key"), "{err}");
    assert!(!c.dir.path().join("wrong-root/arca.redb").exists());

    // A new cluster from the backup: three nodes, the old one still running.
    let mut r =
        Cluster::restore_from(&file, &c.root_key_file, &c.creds, 3, Options::default()).await;
    r.wait_leader().await;
    check_keys(&mut r, &made).await;
    let e = r
        .client(2)
        .describe_key()
        .key_id(&after)
        .send()
        .await
        .expect_err("a key made after the backup");
    assert_eq!(error_code(&e), "NotFoundException");
    // It is a new cluster: its own id, and it takes writes.
    let again = r.dir.path().join("restored.backup");
    let out = r.cli(&[
        "backup",
        "--endpoint",
        &r.nodes[1].endpoint(),
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_ne!(manifest_line(&out, "cluster id:"), old_cluster);
    let more = make_keys(&r, 1, 1, "restored").await;
    check_keys(&mut r, &more).await;
    // A restore never writes over a data directory.
    let (ok, _, err) = try_cli(
        &[
            "restore",
            &f,
            "--config",
            r.nodes[0].config.to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok && err.contains("already holds data"), "{err}");
}

fn hex_decode(s: &str, out: &mut [u8; 32]) {
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_of_three_killed_for_good_the_survivor_recovers_and_grows_again() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let made = make_keys(&c, leader, 3, "dr").await;
    // The survivor: a follower that has applied everything committed.
    let survivor = (0..3).find(|i| *i != leader).unwrap();
    let commit = c.metric(leader, "arca_raft_commit_index").unwrap();
    wait_for("the survivor to apply every write", DEADLINE, || {
        let applied = c.metric(survivor, "arca_raft_applied_index");
        async move { (applied? >= commit).then_some(()) }
    })
    .await;
    for i in 0..3 {
        if i != survivor {
            c.nodes[i].kill();
        }
    }
    c.nodes[survivor].kill();

    let config = c.nodes[survivor].config.display().to_string();
    // Refused without the operator's confirmation.
    let (ok, _, err) = try_cli(&["cluster", "recover", "--config", &config], None);
    assert!(!ok && err.contains("--yes"), "{err}");
    let (ok, out, err) = try_cli(&["cluster", "recover", "--config", &config, "--yes"], None);
    assert!(ok, "{out}{err}");
    assert!(err.contains("FORCING A NEW ONE-NODE CLUSTER"), "{err}");
    assert!(out.contains("is now the only member"), "{out}");

    c.start_node(survivor);
    c.wait_ready(survivor).await;
    check_keys(&mut c, &made).await;
    // Two fresh nodes join as usual.
    let a = c.add_node().await;
    let b = c.add_node().await;
    c.wait_ready(a).await;
    c.wait_ready(b).await;
    check_keys(&mut c, &made).await;
    let more = make_keys(&c, a, 1, "after").await;
    check_keys(&mut c, &more).await;

    // The audit log records the recovery, and its chain verifies.
    let audit = c.nodes[survivor].data_dir.join("audit.jsonl");
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(text.contains("\"operation\":\"RecoverCluster\""), "{text}");
    c.nodes[survivor].stop();
    let root = c.root_key_file.display().to_string();
    let out = c.cli(&[
        "audit",
        "verify",
        "--root-key-file",
        &root,
        audit.to_str().unwrap(),
    ]);
    assert!(out.contains("OK"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_put_back_from_an_old_copy_never_wedges_the_node() {
    let opts = Options {
        snapshot_every: 20,
        keep_after_snapshot: 5,
        ..Options::default()
    };
    let mut c = Cluster::start_with(3, opts).await;
    let leader = c.wait_leader().await;
    let f = (0..3).find(|i| *i != leader).unwrap();
    let key = c.new_key(leader).await;

    // A copy of the stopped node's data directory.
    c.nodes[f].stop();
    let copy = c.dir.path().join("copy");
    let data = c.nodes[f].data_dir.clone();
    cp(&data, &copy);
    // The copy's log ends at or before the leader's, now.
    let copied_last = c.metric(leader, "arca_raft_last_log_index").unwrap();
    c.start_node(f);
    c.wait_ready(f).await;

    // Writes until the leader has purged its log past the copy, and the node
    // has them all.
    let client = c.client(leader);
    let mut n = 0;
    loop {
        n += 1;
        client
            .update_key_description()
            .key_id(&key)
            .description(format!("write {n}"))
            .send()
            .await
            .expect("UpdateKeyDescription");
        let purged = c.metric(leader, "arca_raft_purged_index").unwrap_or(-1);
        if purged > copied_last + 10 {
            break;
        }
        assert!(n < 500, "the leader never purged its log (purged {purged})");
    }
    let commit = c.metric(leader, "arca_raft_commit_index").unwrap();
    wait_for("the node to apply every write", DEADLINE, || {
        let applied = c.metric(f, "arca_raft_applied_index");
        async move { (applied? >= commit).then_some(()) }
    })
    .await;

    // Put the old copy back and start the node on it. It must not wedge:
    // it refuses and says what to do (the leader that matched its log
    // further still leads), or it catches up (after a leader change, the
    // new leader's replication starts afresh and sends a snapshot).
    c.nodes[f].stop();
    std::fs::remove_dir_all(&data).unwrap();
    cp(&copy, &data);
    c.start_node(f);
    let addr = c.nodes[f].api_addr.clone();
    let refused = wait_for(
        "the node to refuse its old data or catch up",
        DEADLINE,
        || {
            let running = c.nodes[f].is_running();
            let addr = addr.clone();
            async move {
                if !running {
                    return Some(true);
                }
                (http_get(&addr, "/ready").map(|r| r.0) == Some(200)).then_some(false)
            }
        },
    )
    .await;
    if refused {
        let log = c.nodes[f].log_text();
        assert!(log.contains("put back from a copy"), "{log}");
        assert!(log.contains("remove-node"), "{log}");
    }
    // The cluster keeps working meanwhile.
    client
        .update_key_description()
        .key_id(&key)
        .description("the last word")
        .send()
        .await
        .expect("a write with the node refused");

    if refused {
        // The way out it names: remove the node, start it empty, add it again.
        c.remove_node(leader, f);
        std::fs::remove_dir_all(&data).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        c.start_node(f);
        c.wait_healthy(f).await;
        let (api, peer) = (c.nodes[f].api_addr.clone(), c.nodes[f].peer_addr.clone());
        let (endpoint, id) = (c.nodes[leader].endpoint(), c.nodes[f].id.to_string());
        c.cli(&[
            "cluster",
            "add-node",
            "--endpoint",
            &endpoint,
            "--node-id",
            &id,
            "--api-addr",
            &api,
            "--peer-addr",
            &peer,
        ]);
    }
    c.wait_ready(f).await;
    let client_f = c.client(f);
    wait_for("the node to serve the last write", DEADLINE, || {
        let client_f = client_f.clone();
        let key = key.clone();
        async move {
            let m = client_f.describe_key().key_id(&key).send().await.ok()?;
            (m.key_metadata()?.description() == Some("the last word")).then_some(())
        }
    })
    .await;
}

fn cp(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}
