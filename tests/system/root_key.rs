//! Root-key rotation, online, on a real 3-node cluster: refused until every
//! voter holds the new key; crypto goes on without an error while every
//! secret is re-wrapped; old ciphertexts decrypt after; no data file keeps
//! anything wrapped under the old key; a node given only the old key after
//! the rotation refuses to start and names the key it lacks; a rotation
//! whose leader is killed midway is finished by the next leader; and the
//! runbook's script performs the rotation end to end.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use arca_crypto::wrap::{RootKey, RootKeyId, WrapContext};
use arca_state::Wrapped;
use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::{KeySpec, KeyUsageType, SigningAlgorithmSpec};
use arca_system_tests::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

fn key_of(path: &Path) -> RootKey {
    RootKey::from_file_contents(&std::fs::read(path).unwrap()).unwrap()
}

/// Points node `i`'s configuration at exactly these root key files.
fn set_root_keys(c: &Cluster, i: usize, files: &[&Path]) {
    let path = &c.nodes[i].config;
    let text = std::fs::read_to_string(path).unwrap();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("root_key_file") && !l.starts_with("root_key_files"))
        .collect();
    let list = files
        .iter()
        .map(|f| format!("{:?}", f.display().to_string()))
        .collect::<Vec<_>>()
        .join(", ");
    // Top-level keys go before the first section.
    let mut out = format!("root_key_files = [{list}]\n");
    out.push_str(&kept.join("\n"));
    out.push('\n');
    std::fs::write(path, out).unwrap();
}

/// Restarts the nodes one at a time with `files`, each back and ready
/// before the next goes down, as an operator's rolling restart does.
#[allow(clippy::needless_range_loop)]
async fn rolling_restart(c: &mut Cluster, files: &[&Path]) {
    for i in 0..c.nodes.len() {
        set_root_keys(c, i, files);
        c.nodes[i].stop();
        c.start_node(i);
        c.wait_healthy(i).await;
        c.wait_ready(i).await;
    }
}

fn status(c: &Cluster, i: usize) -> Option<Value> {
    let (code, v) = c.admin_call(i, "ClusterStatus", &json!({}));
    (code == 200).then_some(v)
}

/// Waits until node `i` reports the rotation to `to` finished.
async fn wait_finished(c: &Cluster, i: usize, to: &str) -> Value {
    wait_for(
        &format!("node {} to report the rotation finished", i + 1),
        WAIT,
        || {
            let done = status(c, i).filter(|s| {
                let rk = &s["root_keys"];
                rk["active"] == to && rk["rotating_to"].is_null()
            });
            async move { done }
        },
    )
    .await
}

/// Keys of several kinds, each with something made under it that must stay
/// usable: (key id, ciphertext or signature, plaintext or message).
struct Made {
    symmetric: Vec<(String, Vec<u8>, Vec<u8>)>,
    signed: (String, Vec<u8>, Vec<u8>),
    mac: (String, Vec<u8>, Vec<u8>),
}

async fn make_keys(c: &Cluster, n: usize) -> Made {
    let mut symmetric = Vec::new();
    for i in 0..n {
        let kms = c.client(i % 3);
        let id = c.new_key(i % 3).await;
        let pt = format!("old plaintext {i}").into_bytes();
        let ct = kms
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new(pt.clone()))
            .send()
            .await
            .unwrap()
            .ciphertext_blob()
            .unwrap()
            .as_ref()
            .to_vec();
        symmetric.push((id, ct, pt));
    }
    let kms = c.client(0);
    let ec = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let msg = b"signed before the rotation".to_vec();
    let sig = kms
        .sign()
        .key_id(&ec)
        .message(Blob::new(msg.clone()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap()
        .signature()
        .unwrap()
        .as_ref()
        .to_vec();
    let hmac = kms
        .create_key()
        .key_spec(KeySpec::Hmac256)
        .key_usage(KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let mac_msg = b"mac'd before the rotation".to_vec();
    let mac = kms
        .generate_mac()
        .key_id(&hmac)
        .message(Blob::new(mac_msg.clone()))
        .mac_algorithm(arca_system_tests::aws_sdk_kms::types::MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap()
        .mac()
        .unwrap()
        .as_ref()
        .to_vec();
    Made {
        symmetric,
        signed: (ec, sig, msg),
        mac: (hmac, mac, mac_msg),
    }
}

/// Everything made before the rotation still decrypts and verifies, on
/// every node; and new material can be used with the existing keys.
async fn check_made(c: &Cluster, made: &Made) {
    for i in 0..c.nodes.len() {
        let kms = c.client(i);
        for (id, ct, pt) in &made.symmetric {
            let out = kms
                .decrypt()
                .ciphertext_blob(Blob::new(ct.clone()))
                .send()
                .await
                .unwrap();
            assert_eq!(out.plaintext().unwrap().as_ref(), pt.as_slice());
            assert_eq!(out.key_id().unwrap().rsplit('/').next().unwrap(), id);
        }
        let (ec, sig, msg) = &made.signed;
        let v = kms
            .verify()
            .key_id(ec)
            .message(Blob::new(msg.clone()))
            .signature(Blob::new(sig.clone()))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .unwrap();
        assert!(v.signature_valid());
        // A new signature with the re-wrapped private key verifies too.
        let sig2 = kms
            .sign()
            .key_id(ec)
            .message(Blob::new(msg.clone()))
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .unwrap();
        assert!(sig2.signature().is_some());
        let (hmac, mac, mac_msg) = &made.mac;
        let v = kms
            .verify_mac()
            .key_id(hmac)
            .message(Blob::new(mac_msg.clone()))
            .mac(Blob::new(mac.clone()))
            .mac_algorithm(arca_system_tests::aws_sdk_kms::types::MacAlgorithmSpec::HmacSha256)
            .send()
            .await
            .unwrap();
        assert!(v.mac_valid());
    }
}

/// A client that keeps encrypting and decrypting through every node until
/// stopped; counts successes and errors.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<Vec<String>>,
}

fn start_load(c: &Cluster, key: String) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..c.nodes.len()).map(|i| c.client(i)).collect();
    let (s, o, e) = (stop.clone(), ok.clone(), errors.clone());
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut n = 0usize;
        while !s.load(Ordering::SeqCst) {
            let kms = &clients[n % clients.len()];
            let pt = format!("during the rotation {n}").into_bytes();
            let r = async {
                let ct = kms
                    .encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(pt.clone()))
                    .send()
                    .await
                    .map_err(|e| format!("Encrypt: {}", error_code(&e)))?;
                // Decrypted on the next node.
                let other = &clients[(n + 1) % clients.len()];
                let out = other
                    .decrypt()
                    .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
                    .send()
                    .await
                    .map_err(|e| format!("Decrypt: {}", error_code(&e)))?;
                if out.plaintext().unwrap().as_ref() != pt.as_slice() {
                    return Err("Decrypt returned another plaintext".to_string());
                }
                Ok::<(), String>(())
            }
            .await;
            match r {
                Ok(()) => o.fetch_add(1, Ordering::SeqCst),
                Err(m) => {
                    seen.push(m);
                    e.fetch_add(1, Ordering::SeqCst)
                }
            };
            n += 1;
        }
        seen
    });
    Load {
        stop,
        ok,
        errors,
        task,
    }
}

impl Load {
    async fn finish(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        let seen = self.task.await.unwrap();
        (
            self.ok.load(Ordering::SeqCst),
            self.errors.load(Ordering::SeqCst),
            seen,
        )
    }
}

/// Node `i` exits at start, and its log says why.
async fn refuses_to_start(c: &mut Cluster, i: usize) -> String {
    c.start_node(i);
    let proc = &mut c.nodes[i];
    wait_for(&format!("node {} to exit", i + 1), WAIT, || {
        let running = proc.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    c.nodes[i].log_text()
}

/// The wrapping context of a secret of the state (as the node wraps it).
fn context(item: &Wrapped) -> WrapContext<'_> {
    match item {
        Wrapped::KeyVersion { key_id, version } => {
            arca_node::actors::material_context(key_id, *version)
        }
        Wrapped::AccessKey { access_key_id } => arca_node::credentials::wrap_context(access_key_id),
    }
}

/// Offline, with the nodes stopped: every secret in every data directory is
/// wrapped under `new`, opens with it and not with `old`, and no file of any
/// data directory holds a blob naming `old`.
fn check_data_dirs(c: &Cluster, old: &RootKey, new: &RootKey) {
    let mut marker = vec![0x02];
    marker.extend_from_slice(&old.id().0);
    for n in &c.nodes {
        let state = arca_node::store::offline_state(&n.data_dir).unwrap();
        let mut count = 0;
        for (item, blob) in state.wrapped_secrets() {
            assert_eq!(
                state.blob_root_key(blob),
                Some(new.id()),
                "node {}: {item:?}",
                n.id
            );
            assert!(new.unwrap(blob, context(&item)).is_ok());
            assert!(old.unwrap(blob, context(&item)).is_err());
            count += 1;
        }
        assert!(count > 0);
        for p in files_under(&n.data_dir) {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !contains(&bytes, &marker),
                "{} still holds a secret wrapped under the old root key",
                p.display()
            );
        }
    }
}

fn new_root_key(c: &Cluster, name: &str) -> (PathBuf, RootKey) {
    let path = c.dir.path().join(name);
    let out = c.cli(&["root-key", "generate", "--out", path.to_str().unwrap()]);
    let key = key_of(&path);
    assert!(out.contains(&key.id().to_string()), "{out}");
    (path, key)
}

fn options(batch: usize, interval_ms: u64) -> Options {
    Options {
        extra_config: format!(
            "\n[root_keys]\nrewrap_batch = {batch}\nrewrap_interval_ms = {interval_ms}\n"
        ),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_online_under_load_then_the_old_key_is_gone() {
    let mut c = Cluster::start_with(3, options(2, 100)).await;
    c.wait_leader().await;
    let old_path = c.root_key_file.clone();
    let old = key_of(&old_path);
    let made = make_keys(&c, 8).await;
    let (new_path, new) = new_root_key(&c, "root-2.key");
    let to = new.id().to_string();

    // Refused while a voter lacks the new key, naming it.
    let (code, v) = c.admin_call(0, "RotateRootKey", &json!({ "NewRootKeyId": to }));
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["__type"], "KMSInvalidStateException", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("every voter must hold"),
        "{v}"
    );
    let (code, v) = c.admin_call(0, "RotateRootKey", &json!({ "NewRootKeyId": "xyz" }));
    assert_eq!(
        (code, v["__type"].as_str()),
        (400, Some("ValidationException"))
    );

    rolling_restart(&mut c, &[&old_path, &new_path]).await;
    c.wait_leader().await;
    let s = status(&c, 0).unwrap();
    for m in s["members"].as_array().unwrap() {
        let ids: Vec<&str> = m["root_key_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert_eq!(ids, vec![old.id().to_string(), to.clone()], "{m}");
    }
    assert_eq!(s["root_keys"]["active"], old.id().to_string());

    let load_key = made.symmetric[0].0.clone();
    let load = start_load(&c, load_key);
    // Let the load run before the rotation begins.
    wait_for("the load to run", WAIT, || {
        let n = load.ok.load(Ordering::SeqCst);
        async move { (n >= 5).then_some(()) }
    })
    .await;
    let endpoint = c.nodes[1].endpoint();
    let out = c.cli(&[
        "root-key",
        "rotate",
        "--endpoint",
        &endpoint,
        "--new-root-key-file",
        new_path.to_str().unwrap(),
    ]);
    assert!(out.contains("rotation finished"), "{out}");
    assert!(out.contains("re-wrapped"), "progress is shown: {out}");
    let (ok, errors, seen) = load.finish().await;
    assert_eq!(errors, 0, "errors during the rotation: {seen:?}");
    assert!(ok >= 5);

    for i in 0..3 {
        let s = wait_finished(&c, i, &to).await;
        assert_eq!(s["root_keys"]["in_use"], json!([to]));
    }
    check_made(&c, &made).await;
    // Keys made after the rotation work, and the old key is no longer needed.
    let after = c.new_key(2).await;
    assert!(!after.is_empty());

    // Each node shreds the old wrapping from its data file.
    for (i, n) in c.nodes.iter().enumerate() {
        wait_for(
            &format!("node {} to shred the old wrapping", i + 1),
            WAIT,
            || {
                let log = n.log_text();
                async move {
                    log.contains("the retired key's wrapping is shredded")
                        .then_some(())
                }
            },
        )
        .await;
    }
    for n in &mut c.nodes {
        n.stop();
    }
    check_data_dirs(&c, &old, &new);

    // With only the old key, a node refuses to start and names the new one.
    set_root_keys(&c, 0, &[&old_path]);
    let log = refuses_to_start(&mut c, 0).await;
    assert!(log.contains(&format!("lacks root key {to}")), "{log}");

    // With only the new key, every node starts and serves everything.
    for i in 0..3 {
        set_root_keys(&c, i, &[&new_path]);
        c.start_node(i);
    }
    for i in 0..3 {
        c.wait_healthy(i).await;
    }
    c.wait_leader().await;
    for i in 0..3 {
        c.wait_ready(i).await;
    }
    check_made(&c, &made).await;
    // A rotation back to the retired key is refused.
    let (code, v) = c.admin_call(
        0,
        "RotateRootKey",
        &json!({ "NewRootKeyId": old.id().to_string() }),
    );
    assert_eq!(code, 400, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_finishes_a_rotation_whose_leader_was_killed() {
    // One secret per entry, 300 ms apart: midway is seconds long.
    let mut c = Cluster::start_with(3, options(1, 300)).await;
    c.wait_leader().await;
    let old_path = c.root_key_file.clone();
    let made = make_keys(&c, 10).await;
    let (new_path, new) = new_root_key(&c, "root-2.key");
    let to = new.id().to_string();
    rolling_restart(&mut c, &[&old_path, &new_path]).await;
    let leader = c.wait_leader().await;

    let (code, v) = c.admin_call(leader, "RotateRootKey", &json!({ "NewRootKeyId": to }));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["rotating_to"], to.as_str());
    // The leader may have re-wrapped a batch before it answered.
    let total = v["remaining"].as_u64().unwrap() + v["rewrapped"].as_u64().unwrap();
    assert!(total >= 13, "{v}");
    // Midway: some secrets re-wrapped, most not.
    let midway = wait_for("the rotation to be midway", WAIT, || {
        let done = status(&c, leader)
            .and_then(|s| s["root_keys"]["rewrapped"].as_u64())
            .filter(|d| *d >= 2);
        async move { done }
    })
    .await;
    assert!(
        midway < total,
        "the rotation was not midway: {midway} of {total}"
    );
    c.nodes[leader].kill();
    let next = c.wait_leader().await;
    assert_ne!(next, leader);
    let s = wait_finished(&c, next, &to).await;
    assert_eq!(s["root_keys"]["in_use"], json!([to]));
    // Leadership may move again between the survivors; one of them
    // finished it.
    assert!(
        (0..3)
            .filter(|i| *i != leader)
            .any(|i| c.nodes[i].log_text().contains("root-key rotation finished")),
        "a new leader finished it"
    );
    assert!(!c.nodes[leader]
        .log_text()
        .contains("root-key rotation finished"));
    // The killed node comes back, learns the end, and serves.
    c.start_node(leader);
    c.wait_healthy(leader).await;
    c.wait_leader().await;
    c.wait_ready(leader).await;
    wait_finished(&c, leader, &to).await;
    check_made(&c, &made).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runbook_script_rotates_a_cluster() {
    let mut c = Cluster::start_with(3, options(5, 0)).await;
    c.wait_leader().await;
    let old_path = c.root_key_file.clone();
    let old = key_of(&old_path);
    let made = make_keys(&c, 4).await;
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/runbooks/root-key-rotation.sh");
    let new_path = c.dir.path().join("root-new.key");
    let endpoint = c.nodes[0].endpoint();
    let access_key_id = c.creds.access_key_id.clone();
    let secret = c.creds.secret_access_key.clone();
    let run = |args: &[&str]| {
        let out = std::process::Command::new("bash")
            .arg(&script)
            .args(args)
            .env("ARCA_BIN", arca_bin())
            .env("ARCA_ENDPOINT", &endpoint)
            .env("AWS_ACCESS_KEY_ID", &access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &secret)
            .env("AWS_REGION", "us-east-1")
            .output()
            .unwrap();
        (
            out.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    // Step 1: the new key.
    let (code, out) = run(&["generate", new_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    let new = key_of(&new_path);
    let to = new.id().to_string();
    assert!(out.contains(&to), "{out}");
    // Step 3 before step 2 is refused by the script's check: no voter holds it.
    let (code, out) = run(&["rotate", new_path.to_str().unwrap()]);
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("does not hold"), "{out}");
    // Step 2: every node gets the new key as a further key.
    rolling_restart(&mut c, &[&old_path, &new_path]).await;
    c.wait_leader().await;
    let (code, out) = run(&["check", new_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    // Step 3: rotate and wait.
    let (code, out) = run(&["rotate", new_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("rotation finished"), "{out}");
    // Step 4: the old key leaves every node; step 5: verify.
    rolling_restart(&mut c, &[&new_path]).await;
    c.wait_leader().await;
    let (code, out) = run(&["verify", new_path.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains(&format!("every node holds only root key {to}")),
        "{out}"
    );
    check_made(&c, &made).await;
    assert_ne!(old.id(), RootKeyId::from_check_value(&new.check_value()));

    // A backup after the rotation names the new key only: it verifies and
    // restores with it, and the old key alone is refused by name.
    let file = c.dir.path().join("after-rotation.backup");
    let out = c.cli(&[
        "backup",
        "--endpoint",
        &c.nodes[2].endpoint(),
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.contains(&format!("root keys:       {to}\n")), "{out}");
    let f = file.to_str().unwrap();
    let out = c.cli(&[
        "backup",
        "verify",
        f,
        "--root-key-file",
        new_path.to_str().unwrap(),
    ]);
    assert!(out.contains("OK:"), "{out}");
    let (ok, _, err) = try_cli(
        &[
            "backup",
            "verify",
            f,
            "--root-key-file",
            old_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(!ok && err.contains(&format!("lack root key {to}")), "{err}");
    let mut r = Cluster::restore_from(&file, &new_path, &c.creds, 1, Options::default()).await;
    r.wait_leader().await;
    check_made(&r, &made).await;
    assert!(
        !r.new_key(0).await.is_empty(),
        "the restored cluster takes writes"
    );
}
