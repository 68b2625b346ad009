//! The key lifecycle through the AWS SDK on real 3-node clusters: state
//! transitions and their errors, aliases everywhere a KeyId goes, tags,
//! rotation, and deletion when the (injected) clock passes the date.

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::Tag;
use std::time::Duration;

use arca_system_tests::*;
use serde_json::Value;

const DAY_MS: u64 = 24 * 60 * 60 * 1000;

async fn encrypt(c: &Cluster, via: usize, key: &str, pt: &[u8]) -> Result<Blob, String> {
    c.client_no_retry(via)
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(pt.to_vec()))
        .send()
        .await
        .map(|r| r.ciphertext_blob().unwrap().clone())
        .map_err(|e| error_code(&e))
}

async fn decrypt(c: &Cluster, via: usize, ct: &Blob) -> Result<Vec<u8>, String> {
    c.client_no_retry(via)
        .decrypt()
        .ciphertext_blob(ct.clone())
        .send()
        .await
        .map(|r| r.plaintext().unwrap().as_ref().to_vec())
        .map_err(|e| error_code(&e))
}

async fn state_on(c: &Cluster, via: usize, key: &str) -> String {
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
        .as_str()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_transitions_and_their_errors() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let f = (leader + 1) % 3;
    let kms = c.client(f);
    let key = c.new_key(f).await;
    let ct = encrypt(&c, f, &key, b"pt").await.unwrap();

    // Disable: crypto refused with DisabledException on every node; enable again.
    kms.disable_key().key_id(&key).send().await.unwrap();
    for i in 0..3 {
        assert_eq!(state_on(&c, i, &key).await, "Disabled");
        assert_eq!(
            encrypt(&c, i, &key, b"x").await.unwrap_err(),
            "DisabledException"
        );
        assert_eq!(decrypt(&c, i, &ct).await.unwrap_err(), "DisabledException");
    }
    let d = kms.describe_key().key_id(&key).send().await.unwrap();
    assert!(!d.key_metadata().unwrap().enabled());
    kms.enable_key().key_id(&key).send().await.unwrap();
    assert_eq!(decrypt(&c, leader, &ct).await.unwrap(), b"pt");

    // Description.
    kms.update_key_description()
        .key_id(&key)
        .description("renamed")
        .send()
        .await
        .unwrap();
    let d = c
        .client(leader)
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(d.key_metadata().unwrap().description(), Some("renamed"));

    // Schedule deletion: window bounds, state, date, and what is refused.
    for bad in [6, 31] {
        let e = kms
            .schedule_key_deletion()
            .key_id(&key)
            .pending_window_in_days(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "ValidationException", "window {bad}");
    }
    let s = kms
        .schedule_key_deletion()
        .key_id(&key)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(s.key_state().unwrap().as_str(), "PendingDeletion");
    assert_eq!(s.pending_window_in_days(), Some(7));
    let date = s.deletion_date().unwrap().secs();
    let now = unix_now();
    assert!(
        (date - now - 7 * 86400).abs() < 120,
        "deletion date {date} is 7 days from {now}"
    );
    let d = c
        .client(leader)
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let m = d.key_metadata().unwrap();
    assert_eq!(m.key_state().unwrap().as_str(), "PendingDeletion");
    assert_eq!(m.pending_deletion_window_in_days(), Some(7));
    assert_eq!(m.deletion_date().unwrap().secs(), date);
    for i in 0..3 {
        assert_eq!(
            encrypt(&c, i, &key, b"x").await.unwrap_err(),
            "KMSInvalidStateException"
        );
        assert_eq!(
            decrypt(&c, i, &ct).await.unwrap_err(),
            "KMSInvalidStateException"
        );
    }
    let e = kms.enable_key().key_id(&key).send().await.unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidStateException");
    let e = kms
        .schedule_key_deletion()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidStateException");

    // Cancel: back to Disabled, as AWS; a second cancel is refused.
    let r = kms.cancel_key_deletion().key_id(&key).send().await.unwrap();
    assert!(r.key_id().unwrap().ends_with(&key));
    assert_eq!(state_on(&c, leader, &key).await, "Disabled");
    let e = kms
        .cancel_key_deletion()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "KMSInvalidStateException");
    let d = kms.describe_key().key_id(&key).send().await.unwrap();
    assert!(d.key_metadata().unwrap().deletion_date().is_none());

    // Unknown keys.
    let e = kms
        .disable_key()
        .key_id("00000000-0000-4000-8000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "NotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aliases_resolve_in_every_operation() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let f = (leader + 1) % 3;
    let kms = c.client(f);
    let key = c.new_key(leader).await;
    let other = c.new_key(leader).await;
    kms.create_alias()
        .alias_name("alias/app/prod")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    let alias_arn = format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/app/prod");

    // Every name form works on every node.
    for i in 0..3 {
        for name in ["alias/app/prod", alias_arn.as_str()] {
            let d = c
                .client(i)
                .describe_key()
                .key_id(name)
                .send()
                .await
                .unwrap();
            assert_eq!(d.key_metadata().unwrap().key_id(), key);
            let ct = encrypt(&c, i, name, b"via alias").await.unwrap();
            let back = c
                .client(i)
                .decrypt()
                .ciphertext_blob(ct.clone())
                .key_id(name)
                .send()
                .await
                .unwrap();
            assert_eq!(back.plaintext().unwrap().as_ref(), b"via alias");
            assert!(back.key_id().unwrap().ends_with(&key));
            let dk = c
                .client(i)
                .generate_data_key()
                .key_id(name)
                .number_of_bytes(32)
                .send()
                .await
                .unwrap();
            assert!(dk.key_id().unwrap().ends_with(&key));
        }
    }
    // Management operations take aliases too.
    kms.tag_resource()
        .key_id("alias/app/prod")
        .tags(
            Tag::builder()
                .tag_key("team")
                .tag_value("payments")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let t = kms.list_resource_tags().key_id(&key).send().await.unwrap();
    assert_eq!(t.tags()[0].tag_value(), "payments");

    // Rules: duplicate, reserved, malformed, unknown target, alias as target.
    let cases = [
        ("alias/app/prod", key.as_str(), "AlreadyExistsException"),
        ("alias/aws/mine", key.as_str(), "InvalidAliasNameException"),
        // AWS's model pattern and prefix come before any other rule.
        ("no-prefix", key.as_str(), "ValidationException"),
        ("alias/bad name", key.as_str(), "ValidationException"),
        (
            "alias/x",
            "00000000-0000-4000-8000-000000000000",
            "NotFoundException",
        ),
        ("alias/y", "alias/app/prod", "ValidationException"),
    ];
    for (name, target, code) in cases {
        let e = kms
            .create_alias()
            .alias_name(name)
            .target_key_id(target)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), code, "{name} → {target}");
    }

    // Update: now resolves to the other key everywhere.
    kms.update_alias()
        .alias_name("alias/app/prod")
        .target_key_id(&other)
        .send()
        .await
        .unwrap();
    for i in 0..3 {
        let d = c
            .client(i)
            .describe_key()
            .key_id("alias/app/prod")
            .send()
            .await
            .unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), other);
    }

    // List: paging, and per key.
    for n in 0..5 {
        kms.create_alias()
            .alias_name(format!("alias/page/{n}"))
            .target_key_id(&key)
            .send()
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut marker = None;
    loop {
        let r = kms
            .list_aliases()
            .limit(2)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        names.extend(
            r.aliases()
                .iter()
                .map(|a| a.alias_name().unwrap().to_string()),
        );
        if !r.truncated() {
            break;
        }
        marker = r.next_marker().map(str::to_string);
    }
    assert_eq!(names.len(), 6);
    let mine = kms.list_aliases().key_id(&key).send().await.unwrap();
    assert_eq!(mine.aliases().len(), 5);
    assert!(mine
        .aliases()
        .iter()
        .all(|a| a.target_key_id() == Some(key.as_str())));
    let a = &mine.aliases()[0];
    assert_eq!(
        a.alias_arn().unwrap(),
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:{}", a.alias_name().unwrap())
    );

    // Delete.
    kms.delete_alias()
        .alias_name("alias/app/prod")
        .send()
        .await
        .unwrap();
    let e = c
        .client(leader)
        .describe_key()
        .key_id("alias/app/prod")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "NotFoundException");
    let e = kms
        .delete_alias()
        .alias_name("alias/app/prod")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "NotFoundException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_with_aws_limits() {
    let c = Cluster::start(1).await;
    let kms = c.client(0);
    let key = kms
        .create_key()
        .tags(
            Tag::builder()
                .tag_key("env")
                .tag_value("test")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let mut req = kms.tag_resource().key_id(&key);
    for i in 0..49 {
        req = req.tags(
            Tag::builder()
                .tag_key(format!("k{i:02}"))
                .tag_value("v")
                .build()
                .unwrap(),
        );
    }
    req.send().await.unwrap();
    let e = kms
        .tag_resource()
        .key_id(&key)
        .tags(
            Tag::builder()
                .tag_key("one-too-many")
                .tag_value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "LimitExceededException");
    for (k, v) in [("aws:reserved", "v"), ("", "v")] {
        let e = kms
            .tag_resource()
            .key_id(&key)
            .tags(Tag::builder().tag_key(k).tag_value(v).build().unwrap())
            .send()
            .await
            .unwrap_err();
        assert!(
            matches!(
                error_code(&e).as_str(),
                "TagException" | "ValidationException"
            ),
            "{k}: {}",
            error_code(&e)
        );
    }
    // Paging through 50 tags.
    let mut all = Vec::new();
    let mut marker = None;
    loop {
        let r = kms
            .list_resource_tags()
            .key_id(&key)
            .limit(20)
            .set_marker(marker)
            .send()
            .await
            .unwrap();
        all.extend(r.tags().iter().map(|t| t.tag_key().to_string()));
        if !r.truncated() {
            break;
        }
        marker = r.next_marker().map(str::to_string);
    }
    assert_eq!(all.len(), 50);
    assert!(all.contains(&"env".to_string()));
    kms.untag_resource()
        .key_id(&key)
        .tag_keys("env")
        .send()
        .await
        .unwrap();
    let r = kms.list_resource_tags().key_id(&key).send().await.unwrap();
    assert_eq!(r.tags().len(), 49);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_old_ciphertexts_decryptable_on_every_node() {
    let mut c = Cluster::start_with(
        3,
        Options {
            adjustable_clock: true,
            ..Options::default()
        },
    )
    .await;
    let leader = c.wait_leader().await;
    let kms = c.client(leader);
    let key = c.new_key(leader).await;
    let before = encrypt(&c, leader, &key, b"version one").await.unwrap();

    // On demand.
    kms.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let after = encrypt(&c, (leader + 1) % 3, &key, b"version two")
        .await
        .unwrap();
    assert_ne!(
        before.as_ref()[17..21],
        after.as_ref()[17..21],
        "a new version encrypts"
    );
    for i in 0..3 {
        assert_eq!(decrypt(&c, i, &before).await.unwrap(), b"version one");
        assert_eq!(decrypt(&c, i, &after).await.unwrap(), b"version two");
    }

    // Automatic: enabled with a period, done by the leader when due.
    for bad in [89, 2561] {
        let e = kms
            .enable_key_rotation()
            .key_id(&key)
            .rotation_period_in_days(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "ValidationException");
    }
    kms.enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let st = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(st.key_rotation_enabled());
    assert_eq!(st.rotation_period_in_days(), Some(90));
    assert!(st.next_rotation_date().is_some());
    assert!(st.on_demand_rotation_start_date().is_some());

    c.advance_clock(91 * DAY_MS);
    let k = key.clone();
    let client = c.client(leader);
    wait_for("the automatic rotation", DEADLINE, || {
        let (client, k) = (client.clone(), k.clone());
        async move {
            let r = client.list_key_rotations().key_id(&k).send().await.ok()?;
            (r.rotations().len() == 2).then_some(())
        }
    })
    .await;
    let r = kms.list_key_rotations().key_id(&key).send().await.unwrap();
    let kinds: Vec<&str> = r
        .rotations()
        .iter()
        .map(|x| x.rotation_type().unwrap().as_str())
        .collect();
    assert_eq!(kinds, ["ON_DEMAND", "AUTOMATIC"]);
    let third = encrypt(&c, leader, &key, b"version three").await.unwrap();
    for i in 0..3 {
        assert_eq!(decrypt(&c, i, &before).await.unwrap(), b"version one");
        assert_eq!(decrypt(&c, i, &after).await.unwrap(), b"version two");
        assert_eq!(decrypt(&c, i, &third).await.unwrap(), b"version three");
    }

    // Disable; a disabled key cannot rotate.
    kms.disable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let st = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(!st.key_rotation_enabled());
    kms.disable_key().key_id(&key).send().await.unwrap();
    let e = kms
        .rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "DisabledException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_invocation_applies_once() {
    let c = Cluster::start(1).await;
    let key = c.new_key(0).await;
    let addr = c.nodes[0].api_addr.clone();
    let body = serde_json::to_vec(&serde_json::json!({ "KeyId": key })).unwrap();
    let invocation = "5f0c3b52-7b7a-4c39-9c38-3a8a1f1c2d11";
    for attempt in 1..=3 {
        let mut h = http::HeaderMap::new();
        h.insert("amz-sdk-invocation-id", invocation.parse().unwrap());
        h.insert(
            "amz-sdk-request",
            format!("attempt={attempt}; max=3").parse().unwrap(),
        );
        let mut signed = signed_headers(
            &addr,
            "TrentService.RotateKeyOnDemand",
            &body,
            &c.creds.access_key_id,
            &c.creds.secret_access_key,
            unix_now(),
        );
        signed.extend(h);
        let (status, text) = http_post(&addr, &signed, &body).unwrap();
        assert_eq!(status, 200, "{text}");
    }
    let r = c
        .client(0)
        .list_key_rotations()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.rotations().len(),
        1,
        "three attempts of one invocation rotate once"
    );
    // A new invocation rotates again.
    c.client(0)
        .rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let r = c
        .client(0)
        .list_key_rotations()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.rotations().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_happens_when_the_clock_passes_the_date_and_leaves_no_material() {
    let mut c = Cluster::start_with(
        3,
        Options {
            adjustable_clock: true,
            snapshot_every: 5,
            keep_after_snapshot: 0,
            ..Options::default()
        },
    )
    .await;
    let leader = c.wait_leader().await;
    let doomed = c.new_key(leader).await;
    let kept = c.new_key(leader).await;
    let kms = c.client(leader);
    kms.create_alias()
        .alias_name("alias/doomed")
        .target_key_id(&doomed)
        .send()
        .await
        .unwrap();
    let ct = encrypt(&c, leader, &kept, b"kept").await.unwrap();

    // Read the doomed key's wrapped material from a stopped follower's store.
    let f = (leader + 1) % 3;
    c.nodes[f].stop();
    let wrapped: Vec<Vec<u8>> = arca_node::store::wrapped_key_material(&c.nodes[f].data_dir)
        .unwrap()
        .into_iter()
        .filter(|(id, _, _)| id.to_string() == doomed)
        .map(|(_, _, w)| w)
        .collect();
    assert_eq!(wrapped.len(), 1);
    c.start_node(f);
    c.wait_ready(f).await;

    kms.schedule_key_deletion()
        .key_id(&doomed)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    // Not yet: six days later the key is still pending.
    c.advance_clock(6 * DAY_MS);
    let k = kms.describe_key().key_id(&doomed).send().await.unwrap();
    assert_eq!(
        k.key_metadata().unwrap().key_state().unwrap().as_str(),
        "PendingDeletion"
    );
    // Past the date: deleted on every node, with its alias.
    c.advance_clock(2 * DAY_MS);
    for i in 0..3 {
        let client = c.client(i);
        let d = doomed.clone();
        wait_for(&format!("deletion on node {}", i + 1), DEADLINE, || {
            let (client, d) = (client.clone(), d.clone());
            async move {
                let e = client.describe_key().key_id(&d).send().await.err()?;
                (error_code(&e) == "NotFoundException").then_some(())
            }
        })
        .await;
        let e = c
            .client(i)
            .describe_key()
            .key_id("alias/doomed")
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "NotFoundException");
        assert_eq!(decrypt(&c, i, &ct).await.unwrap(), b"kept");
    }
    let listed: Vec<Value> = c
        .client(leader)
        .list_keys()
        .send()
        .await
        .unwrap()
        .keys()
        .iter()
        .map(|k| Value::from(k.key_id().unwrap()))
        .collect();
    assert_eq!(listed, vec![Value::from(kept.clone())]);

    // More writes: snapshots are taken and the log behind them purged.
    for n in 0..12 {
        kms.tag_resource()
            .key_id(&kept)
            .tags(
                Tag::builder()
                    .tag_key(format!("t{n}"))
                    .tag_value("v")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let top = c.metric(leader, "arca_raft_applied_index").unwrap();
    for i in 0..3 {
        let addr = c.nodes[i].api_addr.clone();
        wait_for(
            "a snapshot past the deletion, and a purged log",
            DEADLINE,
            || {
                let addr = addr.clone();
                async move {
                    let purged = metric(&addr, "arca_raft_purged_index")?;
                    (purged + 12 >= top).then_some(())
                }
            },
        )
        .await;
    }
    // Each node rewrites its data file once the log no longer needs the deleted key.
    for i in 0..3 {
        let log = c.nodes[i].log_path().to_path_buf();
        wait_for(
            &format!("node {} to rewrite its data file", i + 1),
            DEADLINE,
            || {
                let log = log.clone();
                async move {
                    let text = std::fs::read_to_string(&log).ok()?;
                    text.contains("data file rewritten after a key deletion")
                        .then_some(())
                }
            },
        )
        .await;
    }
    for n in &mut c.nodes {
        n.stop();
    }
    for n in &c.nodes {
        for p in files_under(&n.data_dir) {
            let bytes = std::fs::read(&p).unwrap();
            for w in &wrapped {
                assert!(
                    !contains(&bytes, w),
                    "{} still holds the deleted key's wrapped material",
                    p.display()
                );
            }
        }
    }
}

/// GetKeyLastUsage: the node that served a use answers at once; every other
/// node within a report interval, and after a restart, from its replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_usage_is_recorded_without_a_write_per_request() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let f = (leader + 1) % 3;
    let other = (leader + 2) % 3;
    let key = c.new_key(leader).await;
    let unused = c.new_key(leader).await;

    let last = |c: &Cluster, via: usize, key: &str| {
        let kms = c.client(via);
        let key = key.to_string();
        async move { kms.get_key_last_usage().key_id(key).send().await.unwrap() }
    };
    let never = last(&c, f, &unused).await;
    let u = never.key_last_usage().expect("an empty object");
    assert!(
        u.operation().is_none() && u.timestamp().is_none(),
        "{never:?}"
    );
    let created = never.key_creation_date().unwrap().secs();
    assert!(never.tracking_start_date().unwrap().secs() >= created);

    // A use through a follower: that follower answers at once.
    let enc = c
        .client(f)
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    let first = last(&c, f, &key).await;
    let u = first.key_last_usage().unwrap();
    assert_eq!(u.operation().map(|o| o.as_str()), Some("Encrypt"));
    let request_id = u.kms_request_id().unwrap().to_string();
    assert!(!request_id.is_empty());
    assert_eq!(first.key_id(), Some(key.as_str()));

    // Decrypt through another node: it becomes the last use everywhere.
    c.client(other)
        .decrypt()
        .ciphertext_blob(enc.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    let decrypt_id = last(&c, other, &key)
        .await
        .key_last_usage()
        .unwrap()
        .kms_request_id()
        .unwrap()
        .to_string();
    assert_ne!(decrypt_id, request_id);
    for via in 0..3 {
        wait_for(
            "the Decrypt to be the last use on every node",
            Duration::from_secs(20),
            || {
                let fut = last(&c, via, &key);
                let want = decrypt_id.clone();
                async move {
                    let r = fut.await;
                    let u = r.key_last_usage()?;
                    (u.operation().map(|o| o.as_str()) == Some("Decrypt")
                        && u.kms_request_id() == Some(want.as_str()))
                    .then_some(())
                }
            },
        )
        .await;
    }
    // Replicated and stored: a restarted node still knows it.
    c.restart(f);
    c.wait_ready(f).await;
    let after = last(&c, f, &key).await;
    assert_eq!(
        after.key_last_usage().unwrap().kms_request_id(),
        Some(decrypt_id.as_str())
    );
    // Aliases are not taken, as in AWS.
    let kms = c.client_no_retry(leader);
    kms.create_alias()
        .alias_name("alias/last-usage")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    let e = kms
        .get_key_last_usage()
        .key_id("alias/last-usage")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "ValidationException");
}
