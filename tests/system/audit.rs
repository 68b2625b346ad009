//! The audit log of a real node: a hash chain with signed checkpoints that
//! `arca audit verify` checks offline, rotation by `mv` and SIGHUP or by
//! size, continuation across a crash, and fail-closed when the log cannot be
//! written (the log is pointed at `/dev/full`, where every write fails with
//! ENOSPC).

use std::path::{Path, PathBuf};
use std::process::Command;

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::*;
use serde_json::Value;

/// The pid of node `i`'s process, found by its (unique) config path.
fn node_pid(c: &Cluster, i: usize) -> String {
    let config = c.nodes[i].config.to_str().unwrap().as_bytes().to_vec();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = e.file_name().into_string().unwrap_or_default();
        if !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.contains(&b"server".as_slice()) && args.contains(&config.as_slice()) {
            return name;
        }
    }
    panic!("no process for node {}", i + 1);
}

fn hangup(c: &Cluster, i: usize) {
    let st = Command::new("kill")
        .args(["-HUP", &node_pid(c, i)])
        .status()
        .unwrap();
    assert!(st.success());
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `arca audit verify ARGS`: (succeeded, stdout, stderr).
fn verify(args: &[&Path]) -> (bool, String, String) {
    let out = Command::new(arca_bin())
        .args(["audit", "verify"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn some_requests(c: &Cluster, key: &str) {
    let kms = c.client(0);
    for i in 0..3 {
        kms.encrypt()
            .key_id(key)
            .plaintext(Blob::new(format!("secret {i}").into_bytes()))
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_rotates_on_sighup_verifies_and_shows_tampering() {
    let mut c = Cluster::start(1).await;
    let dir = c.nodes[0].data_dir.clone();
    let current = dir.join("audit.jsonl");
    let key = c.new_key(0).await;
    some_requests(&c, &key).await;
    // Unauthenticated, with a 100 KB X-Amz-Target: refused, recorded, capped.
    let addr = c.nodes[0].api_addr.clone();
    let mut h = http::HeaderMap::new();
    let target = format!("TrentService.{}", "A".repeat(100_000));
    h.insert("x-amz-target", target.parse().unwrap());
    let (status, _) = http_post(&addr, &h, b"{}").unwrap();
    assert_eq!(status, 403);
    // A key nobody has.
    let stranger = client(&c.nodes[0].endpoint(), "AKIAUNKNOWNUNKNOWN00", "whatever");
    stranger.list_keys().send().await.unwrap_err();

    // Rotate as an operator would.
    let rotated = dir.join("audit.1");
    std::fs::rename(&current, &rotated).unwrap();
    hangup(&c, 0);
    wait_for("the node to reopen its audit log", DEADLINE, || {
        let current = current.clone();
        async move { current.exists().then_some(()) }
    })
    .await;
    assert!(c.nodes[0].is_running(), "SIGHUP does not stop the node");
    some_requests(&c, &key).await;

    let old = lines(&rotated);
    assert!(
        old.last().unwrap()["checkpoint"].is_object(),
        "sealed on reopening"
    );
    let capped = old
        .iter()
        .find(|r| r["outcome"] == "MissingAuthenticationTokenException")
        .expect("the unauthenticated request");
    let op = capped["operation"].as_str().unwrap();
    assert!(op.len() < 200 && op.ends_with("bytes]"), "{op}");
    assert!(std::fs::metadata(&rotated).unwrap().len() < 16 * 1024);
    let new = lines(&current);
    assert_eq!(
        new[0]["seq"].as_u64().unwrap(),
        old.last().unwrap()["seq"].as_u64().unwrap() + 1,
        "the chain continues in the new file"
    );

    let root = c.root_key_file.clone();
    let flag = Path::new("--root-key-file");
    let (ok, out, err) = verify(&[flag, &root, &rotated, &current]);
    assert!(ok, "{out}{err}");
    assert!(out.starts_with("OK: "), "{out}");
    assert!(out.contains("signature verified"), "{out}");

    // A stopped node's log ends sealed.
    c.nodes[0].stop();
    let sealed = Path::new("--require-sealed");
    let (ok, out, err) = verify(&[flag, &root, sealed, &rotated, &current]);
    assert!(ok, "{out}{err}");
    assert!(!out.contains("unsealed"), "{out}");

    // Tampering with a copy. In the first file, line n holds seq n.
    let copy = c.dir.path().join("tampered.1");
    let text = std::fs::read_to_string(&rotated).unwrap();
    let ok_line = text
        .lines()
        .position(|l| l.contains("\"outcome\":\"OK\""))
        .unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == ok_line {
                l.replace(
                    "\"outcome\":\"OK\"",
                    "\"outcome\":\"AccessDeniedException\"",
                )
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&copy, edited.join("\n") + "\n").unwrap();
    let (ok, out, err) = verify(&[flag, &root, &copy, &current]);
    assert!(!ok, "{out}");
    let n = ok_line + 1;
    assert!(
        err.contains(&format!("tampered.1:{n} (seq {n}): record edited")),
        "{err}"
    );
    // A record deleted from the copy instead.
    let mut deleted: Vec<&str> = text.lines().collect();
    deleted.remove(1);
    std::fs::write(&copy, deleted.join("\n") + "\n").unwrap();
    let (ok, _, err) = verify(&[&copy, &current]);
    assert!(!ok);
    assert!(
        err.contains("tampered.1:2 (seq 3): seq jumps from 1 to 3: record 2 is missing"),
        "{err}"
    );
    // The current file alone, without the rotated one: fine, and said.
    let (ok, out, _) = verify(&[&current]);
    assert!(
        ok && out.contains("warning: the chain starts at seq"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_rotation_and_a_crash_keep_one_chain() {
    let mut c = Cluster::start_with(
        1,
        Options {
            extra_config: "[audit]\nmax_file_bytes = 1024\ncheckpoint_interval_ms = 100\n".into(),
            ..Options::default()
        },
    )
    .await;
    let dir = c.nodes[0].data_dir.clone();
    let key = c.new_key(0).await;
    for _ in 0..3 {
        some_requests(&c, &key).await;
    }
    // SIGKILL: no shutdown checkpoint. The restarted node continues the chain.
    c.restart(0);
    c.wait_ready(0).await;
    some_requests(&c, &key).await;
    c.nodes[0].stop();

    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("audit.jsonl.")
        })
        .collect();
    assert!(files.len() >= 2, "rotated by size: {files:?}");
    files.sort();
    files.push(dir.join("audit.jsonl"));
    let mut args: Vec<&Path> = vec![
        Path::new("--root-key-file"),
        &c.root_key_file,
        Path::new("--require-sealed"),
    ];
    args.extend(files.iter().map(PathBuf::as_path));
    let (ok, out, err) = verify(&args);
    assert!(ok, "{out}{err}");
    // CreateKey and 12 Encrypts.
    assert!(out.starts_with("OK: 13 records"), "{out}");
}

/// Points node 1's audit log at `/dev/full` and restarts it.
async fn on_a_full_disk(c: &mut Cluster) -> PathBuf {
    c.nodes[0].stop();
    let path = c.nodes[0].data_dir.join("audit.jsonl");
    std::fs::rename(&path, c.dir.path().join("audit.before")).unwrap();
    std::os::unix::fs::symlink("/dev/full", &path).unwrap();
    c.start_node(0);
    c.wait_ready(0).await;
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_fail_closed_when_the_log_cannot_be_written() {
    let mut c = Cluster::start(1).await;
    let key = c.new_key(0).await;
    let path = on_a_full_disk(&mut c).await;
    let addr = c.nodes[0].api_addr.clone();

    let e = c
        .client_no_retry(0)
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"unrecorded".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "DependencyTimeoutException");
    assert_eq!(metric(&addr, "arca_audit_failures_total"), Some(1));
    assert_eq!(metric(&addr, "arca_audit_dropped_total"), Some(0));
    assert!(c.nodes[0].log_text().contains("cannot write the audit log"));

    // Space again: a writable file and SIGHUP, no restart.
    std::fs::remove_file(&path).unwrap();
    hangup(&c, 0);
    wait_for("the node to reopen its audit log", DEADLINE, || {
        let path = path.clone();
        async move { path.is_file().then_some(()) }
    })
    .await;
    c.client_no_retry(0)
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"recorded".to_vec()))
        .send()
        .await
        .unwrap();
    let recs = lines(&path);
    assert!(recs.iter().any(|r| r["operation"] == "Encrypt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn best_effort_answers_and_counts_what_it_drops() {
    let mut c = Cluster::start_with(
        1,
        Options {
            extra_config: "[audit]\nmode = \"best-effort\"\n".into(),
            ..Options::default()
        },
    )
    .await;
    let key = c.new_key(0).await;
    on_a_full_disk(&mut c).await;
    let addr = c.nodes[0].api_addr.clone();
    c.client_no_retry(0)
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"unrecorded".to_vec()))
        .send()
        .await
        .unwrap();
    wait_for("the dropped record to be counted", DEADLINE, || {
        let addr = addr.clone();
        async move { (metric(&addr, "arca_audit_dropped_total")? >= 1).then_some(()) }
    })
    .await;
    assert_eq!(metric(&addr, "arca_audit_failures_total"), Some(0));
}
