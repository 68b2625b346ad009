//! Request counters and latency histograms, rendered in the Prometheus text
//! format together with the node's Raft view.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use arca_node::counters::ServingState;
use arca_node::node::RaftView;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    /// (operation, outcome code) → count. Bounded: operations and codes are fixed sets.
    requests: BTreeMap<(&'static str, &'static str), u64>,
    latency: BTreeMap<&'static str, Histogram>,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn record(&self, op: &'static str, code: &'static str, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *m.requests.entry((op, code)).or_default() += 1;
        let h = m.latency.entry(op).or_default();
        h.count += 1;
        h.sum += secs;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.counts[i] += 1;
        }
    }

    pub fn render(&self, raft: &RaftView, active_actors: usize, audit_dropped: u64) -> String {
        let mut out = String::new();
        let m = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        out.push_str("# HELP arca_requests_total API requests by operation and result code.\n");
        out.push_str("# TYPE arca_requests_total counter\n");
        for ((op, code), n) in &m.requests {
            let _ = writeln!(
                out,
                "arca_requests_total{{operation=\"{op}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP arca_request_duration_seconds API request latency.\n");
        out.push_str("# TYPE arca_request_duration_seconds histogram\n");
        for (op, h) in &m.latency {
            let mut cum = 0;
            for (b, c) in BUCKETS.iter().zip(h.counts.iter()) {
                cum += c;
                let _ = writeln!(
                    out,
                    "arca_request_duration_seconds_bucket{{operation=\"{op}\",le=\"{b}\"}} {cum}"
                );
            }
            let _ = writeln!(
                out,
                "arca_request_duration_seconds_bucket{{operation=\"{op}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "arca_request_duration_seconds_sum{{operation=\"{op}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "arca_request_duration_seconds_count{{operation=\"{op}\"}} {}",
                h.count
            );
        }
        drop(m);
        let gauge = |out: &mut String, name: &str, help: &str, v: Option<u64>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {}", v.map(|v| v as i64).unwrap_or(-1));
        };
        gauge(
            &mut out,
            "arca_raft_term",
            "Current Raft term.",
            Some(raft.term),
        );
        gauge(
            &mut out,
            "arca_raft_leader",
            "Node id of the known leader (-1: none).",
            raft.leader,
        );
        gauge(
            &mut out,
            "arca_raft_is_leader",
            "1 if this node is the leader.",
            Some(u64::from(raft.leader == Some(raft.node_id))),
        );
        gauge(
            &mut out,
            "arca_raft_last_log_index",
            "Last log index (-1: none).",
            raft.last_log_index,
        );
        gauge(
            &mut out,
            "arca_raft_commit_index",
            "Commit index (-1: none).",
            raft.commit_index,
        );
        gauge(
            &mut out,
            "arca_raft_applied_index",
            "Applied index (-1: none).",
            raft.applied_index,
        );
        gauge(
            &mut out,
            "arca_raft_snapshot_index",
            "Last index in the current snapshot (-1: none).",
            raft.snapshot_index,
        );
        gauge(
            &mut out,
            "arca_raft_purged_index",
            "Last index purged from the log (-1: none).",
            raft.purged_index,
        );
        gauge(
            &mut out,
            "arca_key_actors",
            "Running key actors.",
            Some(active_actors as u64),
        );
        gauge(
            &mut out,
            "arca_storage_disk_full",
            "1 while a write waits for space on the data directory's disk.",
            Some(u64::from(raft.disk_full)),
        );
        out.push_str("# HELP arca_peer_refused_total Peer messages refused (replayed, addressed to another node or cluster, stale, badly signed; answers not signed for the request: response).\n");
        out.push_str("# TYPE arca_peer_refused_total counter\n");
        for (reason, n) in &raft.peer_refused {
            let _ = writeln!(out, "arca_peer_refused_total{{reason=\"{reason}\"}} {n}");
        }
        if let Some(id) = &raft.cluster_id {
            out.push_str("# HELP arca_cluster_info The cluster id peer messages are bound to.\n# TYPE arca_cluster_info gauge\n");
            let _ = writeln!(out, "arca_cluster_info{{cluster_id=\"{id}\"}} 1");
        }
        render_counters(&mut out, raft);
        out.push_str("# HELP arca_audit_dropped_total Audit records dropped because the writer was behind.\n");
        out.push_str("# TYPE arca_audit_dropped_total counter\n");
        let _ = writeln!(out, "arca_audit_dropped_total {audit_dropped}");
        out
    }
}

/// The node's event counters and its serving state.
fn render_counters(out: &mut String, raft: &RaftView) {
    let c = &raft.counters;
    let counter = |out: &mut String, name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        out,
        "arca_raft_leader_changes_total",
        "Times this node saw a new leader (a new term or leader).",
        c.leader_changes,
    );
    counter(
        out,
        "arca_raft_elections_started_total",
        "Elections this node started (after a successful pre-vote).",
        c.elections_started,
    );
    counter(
        out,
        "arca_raft_elections_won_total",
        "Elections this node won.",
        c.elections_won,
    );
    out.push_str("# HELP arca_write_barriers_total Write barriers the leader ran, by outcome (failed: the write was not acknowledged; the client retries).\n");
    out.push_str("# TYPE arca_write_barriers_total counter\n");
    let _ = writeln!(
        out,
        "arca_write_barriers_total{{outcome=\"passed\"}} {}",
        c.barriers_passed
    );
    let _ = writeln!(
        out,
        "arca_write_barriers_total{{outcome=\"failed\"}} {}",
        c.barriers_failed
    );
    let _ = writeln!(
        out,
        "# HELP arca_write_barrier_seconds_total Time writes spent waiting in write barriers.\n# TYPE arca_write_barrier_seconds_total counter\narca_write_barrier_seconds_total {}",
        c.barrier_wait_us as f64 / 1e6
    );
    counter(
        out,
        "arca_raft_writes_proposed_total",
        "Writes this node proposed as the leader.",
        c.writes_proposed,
    );
    counter(
        out,
        "arca_raft_write_entries_total",
        "Log entries that carried them (group commit: writes proposed / entries is the mean batch).",
        c.write_entries,
    );
    counter(
        out,
        "arca_snapshots_built_total",
        "Snapshots this node built of its state machine.",
        c.snapshots_built,
    );
    counter(
        out,
        "arca_snapshots_sent_total",
        "Snapshots this node (as leader) sent to a member in full.",
        c.snapshots_sent,
    );
    counter(
        out,
        "arca_snapshots_installed_total",
        "Snapshots from a leader this node installed.",
        c.snapshots_installed,
    );
    let _ = writeln!(
        out,
        "# HELP arca_serving 1 if this node serves crypto requests from its replica now.\n# TYPE arca_serving gauge\narca_serving {}",
        u64::from(raft.serving == ServingState::Serving)
    );
    out.push_str(
        "# HELP arca_serving_state 1 for this node's serving state: serving, or why not.\n",
    );
    out.push_str("# TYPE arca_serving_state gauge\n");
    for s in ServingState::ALL {
        let _ = writeln!(
            out,
            "arca_serving_state{{state=\"{}\"}} {}",
            s.label(),
            u64::from(raft.serving == s)
        );
    }
}

/// The API port's connection counters.
pub fn render_connections(out: &mut String, open: usize, refused: u64, accept_errors: u64) {
    out.push_str("# HELP arca_api_connections Open API connections.\n");
    out.push_str("# TYPE arca_api_connections gauge\n");
    let _ = writeln!(out, "arca_api_connections {open}");
    out.push_str("# HELP arca_api_connections_refused_total API connections closed at once because the port was at [limits] max_connections.\n");
    out.push_str("# TYPE arca_api_connections_refused_total counter\n");
    let _ = writeln!(out, "arca_api_connections_refused_total {refused}");
    out.push_str(
        "# HELP arca_api_accept_errors_total Failed accepts on the API port (each backs off).\n",
    );
    out.push_str("# TYPE arca_api_accept_errors_total counter\n");
    let _ = writeln!(out, "arca_api_accept_errors_total {accept_errors}");
}

/// Unwrapped access-key secrets held for signature checks.
pub fn render_secrets(out: &mut String, cached: usize) {
    out.push_str("# HELP arca_access_key_secrets_cached Access-key secrets held unwrapped for signature checks (deleted keys' are wiped within a sweep).\n");
    out.push_str("# TYPE arca_access_key_secrets_cached gauge\n");
    let _ = writeln!(out, "arca_access_key_secrets_cached {cached}");
}

/// Seconds since this node last served a backup (`arca backup`); absent
/// until it has served one since it started.
pub fn render_backup_age(out: &mut String, age: Option<u64>) {
    let Some(age) = age else { return };
    out.push_str(
        "# HELP arca_backup_age_seconds Seconds since this node last served a successful backup.\n",
    );
    out.push_str("# TYPE arca_backup_age_seconds gauge\n");
    let _ = writeln!(out, "arca_backup_age_seconds {age}");
}

/// The process's CPU time and resident memory, from its own counters (Linux
/// `/proc/self`; nothing elsewhere), so that a benchmark can report CPU time
/// per request next to its throughput.
pub fn render_process(out: &mut String) {
    if let Some(secs) = process_cpu_seconds() {
        out.push_str(
            "# HELP process_cpu_seconds_total User and system CPU time of this process.\n",
        );
        out.push_str("# TYPE process_cpu_seconds_total counter\n");
        let _ = writeln!(out, "process_cpu_seconds_total {secs}");
    }
    if let Some(bytes) = resident_bytes() {
        out.push_str("# HELP process_resident_memory_bytes Resident memory of this process.\n");
        out.push_str("# TYPE process_resident_memory_bytes gauge\n");
        let _ = writeln!(out, "process_resident_memory_bytes {bytes}");
    }
}

fn process_cpu_seconds() -> Option<f64> {
    cpu_seconds_of("/proc/self/stat")
}

/// utime + stime from a `/proc/<pid>/stat` file, in seconds (clock ticks of
/// 1/100 s, the value on every Linux platform Arca runs on).
pub fn cpu_seconds_of(stat_path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the command name (which may contain spaces) start at ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod process_tests {
    #[test]
    fn cpu_time_is_read_and_grows() {
        let Some(before) = super::process_cpu_seconds() else {
            return; // not Linux
        };
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(300) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        assert!(super::process_cpu_seconds().unwrap() > before);
        assert!(super::resident_bytes().unwrap() > 0);
    }
}
