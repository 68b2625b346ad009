//! What an operator runs a cluster with: JSON logs for log shippers, the
//! metrics on /metrics, the monitoring files in docs/monitoring and the
//! runbook scripts in scripts/runbooks.

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::DataKeySpec;
use arca_system_tests::*;
use base64::Engine as _;
use serde_json::Value;

/// With `log_format = "json"` every line a node writes is one JSON object
/// with a level and a message, and none holds a secret the node handled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_without_secrets() {
    let mut c = Cluster::start_with(
        1,
        Options {
            json_logs: true,
            // Debug too: a secret must not reach any level.
            log_filter: "debug,openraft=info,hyper=info,h2=info,rustls=info".into(),
            ..Default::default()
        },
    )
    .await;
    let kms = c.client(0);
    let key = c.new_key(0).await;
    let plaintext = b"json-log-plaintext-marker-0123456789";
    let ct = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(plaintext.to_vec()))
        .send()
        .await
        .unwrap();
    let back = kms
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), plaintext);
    let dk = kms
        .generate_data_key()
        .key_id(&key)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let data_key = dk.plaintext().unwrap().as_ref().to_vec();
    // A request that fails is logged too.
    let denied = client_no_retry(&c.nodes[0].endpoint(), &c.creds.access_key_id, "wrong")
        .list_keys()
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&denied), "InvalidSignatureException");
    // A graceful stop flushes and logs its last line.
    c.nodes[0].stop();

    let text = c.nodes[0].log_text();
    let b64 = base64::engine::general_purpose::STANDARD;
    let root_key = std::fs::read_to_string(&c.root_key_file).unwrap();
    let cluster_secret = std::fs::read_to_string(&c.secret_file).unwrap();
    let secrets: Vec<(&str, String)> = vec![
        ("the root key", root_key.trim().to_string()),
        ("the cluster secret", cluster_secret.trim().to_string()),
        ("the admin secret key", c.creds.secret_access_key.clone()),
        (
            "a plaintext",
            String::from_utf8(plaintext.to_vec()).unwrap(),
        ),
        ("a plaintext (base64)", b64.encode(plaintext)),
        ("a data key (base64)", b64.encode(&data_key)),
        ("a data key (hex)", hex(&data_key)),
    ];
    let mut levels = std::collections::BTreeSet::new();
    let mut messages = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("log line {} is not JSON ({e}): {line}", n + 1));
        let level = v["level"]
            .as_str()
            .unwrap_or_else(|| panic!("log line {} has no level: {line}", n + 1));
        assert!(
            ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"].contains(&level),
            "log line {} has level {level}",
            n + 1
        );
        let message = v["message"]
            .as_str()
            .unwrap_or_else(|| panic!("log line {} has no message: {line}", n + 1));
        assert!(v["timestamp"].is_string(), "log line {}: {line}", n + 1);
        levels.insert(level.to_string());
        messages.push(message.to_string());
        for (what, s) in &secrets {
            assert!(
                !line.contains(s.as_str()),
                "log line {} holds {what}: {line}",
                n + 1
            );
        }
    }
    assert!(
        levels.contains("INFO") && levels.contains("DEBUG"),
        "levels {levels:?}"
    );
    assert!(
        messages.iter().any(|m| m == "stopped"),
        "the last line of a graceful stop is missing: {messages:?}"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The counters an operator alerts on move with the events they count: a
/// killed leader shows up as a leader change on every survivor, an election
/// started and won, and every write's barrier is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_leader_changes_elections_and_barriers() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let key = c.new_key(leader).await;
    c.client(0)
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    for i in 0..3 {
        assert!(c.metric(i, "arca_raft_leader_changes_total").unwrap() >= 1);
        // Every node serves, and says so in both forms.
        let serving = wait_for("every node to serve", DEADLINE, || {
            let s = c.metric(i, "arca_serving");
            async move { s.filter(|s| *s == 1) }
        })
        .await;
        assert_eq!(serving, 1);
        assert_eq!(
            c.metric(i, "arca_serving_state{state=\"serving\"}"),
            Some(1)
        );
        assert_eq!(
            c.metric(i, "arca_serving_state{state=\"no_lease\"}"),
            Some(0)
        );
        assert_eq!(c.metric(i, "arca_audit_write_errors_total"), Some(0));
    }
    // CreateKey is a write: the leader ran its barrier and it passed.
    assert!(
        c.metric(leader, "arca_write_barriers_total{outcome=\"passed\"}")
            .unwrap()
            >= 1
    );
    assert_eq!(
        c.metric(leader, "arca_write_barriers_total{outcome=\"failed\"}"),
        Some(0)
    );
    // Every write goes through group commit: at least one, in no more log
    // entries than writes.
    let writes = c.metric(leader, "arca_raft_writes_proposed_total").unwrap();
    let entries = c.metric(leader, "arca_raft_write_entries_total").unwrap();
    assert!(
        writes >= 1 && (1..=writes).contains(&entries),
        "{writes} writes in {entries} entries"
    );

    let survivors: Vec<usize> = (0..3).filter(|i| *i != leader).collect();
    let before: Vec<i64> = survivors
        .iter()
        .map(|i| c.metric(*i, "arca_raft_leader_changes_total").unwrap())
        .collect();
    let won_before: Vec<i64> = survivors
        .iter()
        .map(|i| c.metric(*i, "arca_raft_elections_won_total").unwrap())
        .collect();
    c.nodes[leader].kill();
    let new_leader = c.wait_leader().await;
    assert_ne!(new_leader, leader);
    for (n, i) in survivors.iter().enumerate() {
        let after = c.metric(*i, "arca_raft_leader_changes_total").unwrap();
        assert!(
            after > before[n],
            "node {} saw no leader change ({} -> {after})",
            i + 1,
            before[n]
        );
    }
    let started: i64 = survivors
        .iter()
        .map(|i| c.metric(*i, "arca_raft_elections_started_total").unwrap())
        .sum();
    assert!(started >= 1, "no election started");
    let n = survivors.iter().position(|i| *i == new_leader).unwrap();
    assert!(
        c.metric(new_leader, "arca_raft_elections_won_total")
            .unwrap()
            > won_before[n]
    );
    // The old leader's absence is visible too: the new leader still serves.
    wait_for("the new leader to serve", DEADLINE, || {
        let s = c.metric(new_leader, "arca_serving");
        async move { s.filter(|s| *s == 1) }
    })
    .await;
}

/// The names a /metrics body exports: each sample's name.
fn exported_names(body: &str) -> std::collections::BTreeSet<String> {
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The metric names an expression (or any text) mentions: Arca's and the
/// process's.
fn metric_names(text: &str) -> Vec<String> {
    text.split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_' || ch == ':'))
        .filter(|t| t.starts_with("arca_") || t.starts_with("process_"))
        .map(str::to_string)
        .collect()
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// docs/monitoring's dashboard and alert rules name only metrics a real
/// node's /metrics exports, and cover what an operator watches.
/// (`promtool check rules` and `promtool test rules` run in scripts/test.sh.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitoring_files_name_only_exported_metrics() {
    let c = Cluster::start(1).await;
    // A request, so that the per-operation series exist.
    c.new_key(0).await;
    let (status, body) = http_get(&c.nodes[0].api_addr, "/metrics").unwrap();
    assert_eq!(status, 200);
    let exported = exported_names(&body);
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/monitoring");

    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("grafana-dashboard.json")).unwrap())
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    for p in panels.iter().filter(|p| p["type"] != "row") {
        let title = p["title"].as_str().expect("a panel title");
        let targets = p["targets"].as_array().map_or(0, Vec::len);
        assert!(targets > 0, "panel {title} has no query");
    }
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 20, "{} queries", exprs.len());
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();

    let mut used = std::collections::BTreeSet::new();
    for (file, text) in exprs
        .iter()
        .map(|e| ("grafana-dashboard.json", e.as_str()))
        .chain([("alerts.yml", rules.as_str())])
    {
        for name in metric_names(text) {
            assert!(
                exported.contains(&name),
                "{file} uses {name}, which /metrics does not export"
            );
            used.insert(name);
        }
    }
    // What the operator watches is all there.
    for name in [
        "arca_requests_total",
        "arca_request_duration_seconds_bucket",
        "arca_raft_term",
        "arca_raft_leader",
        "arca_raft_commit_index",
        "arca_raft_applied_index",
        "arca_raft_leader_changes_total",
        "arca_serving",
        "arca_serving_state",
        "arca_snapshots_installed_total",
        "arca_snapshots_sent_total",
        "arca_audit_failures_total",
        "arca_audit_write_errors_total",
        "arca_peer_refused_total",
        "arca_storage_disk_full",
    ] {
        assert!(used.contains(name), "nothing shows {name}");
    }
    for alert in [
        "ArcaNoLeader",
        "ArcaLeaderFlapping",
        "ArcaNodeNotServing",
        "ArcaApplyLagGrowing",
        "ArcaDiskFull",
        "ArcaAuditFailures",
        "ArcaPeerRefusals",
    ] {
        assert!(
            rules.contains(&format!("- alert: {alert}\n")),
            "no alert {alert}"
        );
    }
}

/// One runbook script at a time: each starts its own cluster.
static RUNBOOK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs scripts/runbooks/`name` against the binary under test; it must
/// succeed and say so on its last line.
fn runbook(name: &str) {
    let _one = RUNBOOK.lock().unwrap_or_else(|p| p.into_inner());
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/runbooks")
        .join(format!("{name}.sh"));
    let out = std::process::Command::new("bash")
        .arg(&script)
        .env("ARCA_BIN", arca_bin())
        .env("ARCA_RUNBOOK_PAUSE", "0.2")
        .output()
        .expect("bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{name}.sh failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.trim_end().ends_with(&format!("{name}: OK")),
        "{stdout}"
    );
}

#[test]
fn runbook_bootstrap() {
    runbook("bootstrap");
}

#[test]
fn runbook_add_node() {
    runbook("add-node");
}

#[test]
fn runbook_remove_node() {
    runbook("remove-node");
}

#[test]
fn runbook_replace_node() {
    runbook("replace-node");
}

#[test]
fn runbook_rolling_restart() {
    runbook("rolling-restart");
}

#[test]
fn runbook_cluster_secret_rotation() {
    runbook("cluster-secret-rotation");
}

/// A rolling restart as docs/runbooks/cluster.md describes it — take a node
/// out of the clients' rotation, stop it gracefully, start it, wait until
/// it is ready, put it back — while a client with the AWS SDK's default
/// retries keeps encrypting and decrypting: it sees no error at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_keeps_serving() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    let mut c = Cluster::start(3).await;
    let key = c.new_key(0).await;
    let clients: Vec<_> = (0..3).map(|i| c.client(i)).collect();
    // The nodes a load balancer would send requests to.
    let rotation = Arc::new(Mutex::new(vec![0usize, 1, 2]));
    let stop = Arc::new(AtomicBool::new(false));
    let served: Arc<Vec<AtomicU64>> = Arc::new((0..3).map(|_| AtomicU64::new(0)).collect());
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let load = {
        let (rotation, stop, served, errors) = (
            rotation.clone(),
            stop.clone(),
            served.clone(),
            errors.clone(),
        );
        tokio::spawn(async move {
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let pick = |k: usize| {
                    let r = rotation.lock().unwrap();
                    r[k % r.len()]
                };
                let (a, b) = (pick(n), pick(n + 1));
                n += 1;
                let plaintext = format!("message {n}").into_bytes();
                let ct = match clients[a]
                    .encrypt()
                    .key_id(&key)
                    .plaintext(Blob::new(plaintext.clone()))
                    .send()
                    .await
                {
                    Ok(r) => r.ciphertext_blob().unwrap().clone(),
                    Err(e) => {
                        errors
                            .lock()
                            .unwrap()
                            .push(format!("Encrypt on node {}: {e:?}", a + 1));
                        continue;
                    }
                };
                served[a].fetch_add(1, Ordering::Relaxed);
                match clients[b].decrypt().ciphertext_blob(ct).send().await {
                    Ok(r) if r.plaintext().unwrap().as_ref() == plaintext => {
                        served[b].fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => errors
                        .lock()
                        .unwrap()
                        .push(format!("Decrypt on node {}: wrong plaintext", b + 1)),
                    Err(e) => errors
                        .lock()
                        .unwrap()
                        .push(format!("Decrypt on node {}: {e:?}", b + 1)),
                }
            }
        })
    };

    for i in 0..3 {
        rotation.lock().unwrap().retain(|x| *x != i);
        c.nodes[i].stop();
        c.start_node(i);
        c.wait_ready(i).await;
        rotation.lock().unwrap().push(i);
        // Back in rotation, it serves again before the next node goes.
        let before = served[i].load(Ordering::Relaxed);
        wait_for(
            &format!("node {} to serve the client again", i + 1),
            DEADLINE,
            || {
                let now = served[i].load(Ordering::Relaxed);
                async move { (now > before).then_some(()) }
            },
        )
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let errors = errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "client-visible errors: {errors:#?}");
    let total: u64 = served.iter().map(|s| s.load(Ordering::Relaxed)).sum();
    assert!(total > 30, "only {total} requests served");
    // Every node restarted, and the cluster agrees on a leader again.
    c.wait_leader().await;
}
