//! The chaos suite: a real cluster, concurrent clients on every node, and one
//! fault per round — SIGKILL of the leader or of a follower followed by a
//! restart, SIGSTOP/SIGCONT of either, or (with network namespaces, as root)
//! a network partition that isolates either. A ledger keeps what was
//! acknowledged; at the end every acknowledged key must exist on every node in
//! its last acknowledged state, every acknowledged ciphertext must decrypt on
//! every node, and each key's observed state history must be linearizable.
//!
//! Run it with `scripts/chaos.sh` (long runs, JSON report) or through the
//! `chaos` system test (a short run in CI).
//!
//! The linearizability check: each *state key* has one writer, which flips
//! it through DisableKey/EnableKey (or ScheduleKeyDeletion, CancelKeyDeletion,
//! EnableKey) and retries each write until it is acknowledged, so its writes
//! are totally ordered and write `k` takes effect at some instant `e_k` within
//! `[invoke_k, ack_k]`. Readers on every node — restarted and resumed nodes
//! included, from the moment they answer — send Encrypt and read the state
//! from the answer (success: Enabled; DisabledException: Disabled;
//! KMSInvalidStateException: PendingDeletion; 503: no observation). A read
//! `[a, b]` that saw value `x` is explained by write `k` only if `x` is write
//! `k`'s value and `[invoke_k, ack_{k+1}]` meets `[a, b]`; a read no write
//! explains is a stale (or invented) read. Reads explained by exactly one
//! write also bound the `e_k`: `e_k <= b` for reads of `k`, `e_{k+1} >= a`;
//! if some write's bounds cross, the history is not linearizable.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use serde_json::{json, Value};

use crate::{error_code, Cluster, DEADLINE};

/// What to run.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub rounds: usize,
    pub seed: u64,
    /// Keys flipped Enabled ⇄ Disabled.
    pub toggle_keys: usize,
    /// Keys cycled PendingDeletion → Disabled → Enabled.
    pub deletion_keys: usize,
    /// Reader tasks per node.
    pub readers_per_node: usize,
    /// A fault lasts a random time in this range before it is healed.
    pub fault_min: Duration,
    pub fault_max: Duration,
    /// Also cut nodes off the network (each node in its own network
    /// namespace); skipped, and said so in the report, where the machine
    /// does not allow namespaces.
    pub partitions: bool,
    /// Only these faults, by name (`kill_leader`, …); empty: all.
    pub only: Vec<String>,
}

impl Default for ChaosOptions {
    fn default() -> Self {
        Self {
            rounds: 10,
            seed: 0,
            toggle_keys: 3,
            deletion_keys: 1,
            readers_per_node: 2,
            fault_min: Duration::from_millis(500),
            fault_max: Duration::from_millis(2500),
            partitions: true,
            only: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    KillLeader,
    KillFollower,
    PauseLeader,
    PauseFollower,
    PartitionLeader,
    PartitionFollower,
}

impl Fault {
    const ALL: [Fault; 6] = [
        Fault::KillLeader,
        Fault::KillFollower,
        Fault::PauseLeader,
        Fault::PauseFollower,
        Fault::PartitionLeader,
        Fault::PartitionFollower,
    ];

    fn name(self) -> &'static str {
        match self {
            Fault::KillLeader => "kill_leader",
            Fault::KillFollower => "kill_follower",
            Fault::PauseLeader => "pause_leader",
            Fault::PauseFollower => "pause_follower",
            Fault::PartitionLeader => "partition_leader",
            Fault::PartitionFollower => "partition_follower",
        }
    }
}

/// A key state as the API shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

impl KeyState {
    fn from_api(s: &str) -> Option<Self> {
        match s {
            "Enabled" => Some(Self::Enabled),
            "Disabled" => Some(Self::Disabled),
            "PendingDeletion" => Some(Self::PendingDeletion),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Write {
    value: KeyState,
    invoke: Instant,
    ack: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Read {
    node: usize,
    value: KeyState,
    start: Instant,
    end: Instant,
}

#[derive(Default)]
struct History {
    writes: Vec<Write>,
    reads: Vec<Read>,
}

/// A small deterministic generator (xorshift64*), seeded per task.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_millis() as u64;
        lo + Duration::from_millis(if span == 0 { 0 } else { self.next() % span })
    }
}

/// Everything the clients saw, shared by the client tasks.
#[derive(Default)]
struct Ledger {
    histories: Mutex<HashMap<String, History>>,
    created: Mutex<Vec<String>>,
    /// (ciphertext, plaintext) of acknowledged Encrypts.
    ciphertexts: Mutex<Vec<(Vec<u8>, Vec<u8>)>>,
    unexpected: Mutex<BTreeMap<String, u64>>,
    wrong_plaintexts: AtomicU64,
    ops: AtomicU64,
    /// The node under a fault now (`usize::MAX`: none).
    faulted: std::sync::atomic::AtomicUsize,
    /// Encrypt reads answered / refused (503 or unreachable) by the node
    /// under a fault, and refused by the other nodes.
    faulted_answered: AtomicU64,
    faulted_refused: AtomicU64,
    healthy_refused: AtomicU64,
    healthy_why: Mutex<BTreeMap<String, u64>>,
}

impl Ledger {
    fn unexpected(&self, what: String) {
        *self.unexpected.lock().unwrap().entry(what).or_default() += 1;
    }
}

/// Errors a fault may cause: the cluster says "retry" or the node is gone.
fn retriable(code: &str) -> bool {
    matches!(code, "DependencyTimeoutException" | "ThrottlingException")
        || code.starts_with("no code")
}

fn millis(d: Duration) -> u64 {
    d.as_millis() as u64
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn stats(v: &[u64]) -> Value {
    let mut s = v.to_vec();
    s.sort_unstable();
    json!({
        "count": s.len(),
        "p50_ms": percentile(&s, 0.50),
        "p99_ms": percentile(&s, 0.99),
        "max_ms": s.last().copied().unwrap_or(0),
    })
}

/// An SDK call's result as success or its AWS error code.
fn outcome<T, E, R>(r: Result<T, aws_sdk_kms::error::SdkError<E, R>>) -> Result<(), String>
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    r.map(|_| ()).map_err(|e| error_code(&e))
}

/// The writer of one state key: one write at a time, each retried until it
/// is acknowledged, through a random node.
async fn writer(
    clients: Vec<aws_sdk_kms::Client>,
    key: String,
    cycle: Vec<KeyState>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let mut step = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let value = cycle[step % cycle.len()];
        step += 1;
        let invoke = Instant::now();
        let mut attempted = false;
        loop {
            let kms = &clients[rng.below(clients.len())];
            let r = match value {
                KeyState::Disabled if cycle.len() == 2 => {
                    outcome(kms.disable_key().key_id(&key).send().await)
                }
                KeyState::Disabled => outcome(kms.cancel_key_deletion().key_id(&key).send().await),
                KeyState::Enabled => outcome(kms.enable_key().key_id(&key).send().await),
                KeyState::PendingDeletion => outcome(
                    kms.schedule_key_deletion()
                        .key_id(&key)
                        .pending_window_in_days(7)
                        .send()
                        .await,
                ),
            };
            ledger.ops.fetch_add(1, Ordering::Relaxed);
            match r {
                Ok(()) => break,
                // An earlier attempt of this write may have applied already.
                Err(c) if c == "KMSInvalidStateException" && attempted => break,
                Err(c) if retriable(&c) => {}
                Err(c) => ledger.unexpected(format!("{value:?} write: {c}")),
            }
            attempted = true;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let ack = Instant::now();
        ledger
            .histories
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .writes
            .push(Write { value, invoke, ack });
        // Pace the writes so that reads see every state.
        tokio::time::sleep(rng.between(Duration::from_millis(30), Duration::from_millis(200)))
            .await;
    }
}

/// A reader on one node: Encrypt with a random state key, the answer read as
/// the key's state.
async fn reader(
    node: usize,
    kms: aws_sdk_kms::Client,
    keys: Vec<String>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    while !stop.load(Ordering::Relaxed) {
        let key = &keys[rng.below(keys.len())];
        let start = Instant::now();
        let r = kms
            .encrypt()
            .key_id(key)
            .plaintext(Blob::new(b"chaos".to_vec()))
            .send()
            .await;
        let end = Instant::now();
        ledger.ops.fetch_add(1, Ordering::Relaxed);
        let on_faulted = ledger.faulted.load(Ordering::Relaxed) == node;
        let answered = !matches!(&r, Err(e) if retriable(&error_code(e)));
        match (on_faulted, answered) {
            (true, true) => ledger.faulted_answered.fetch_add(1, Ordering::Relaxed),
            (true, false) => ledger.faulted_refused.fetch_add(1, Ordering::Relaxed),
            (false, false) => {
                if let Err(e) = &r {
                    use aws_sdk_kms::error::ProvideErrorMetadata;
                    let m: String = e
                        .message()
                        .unwrap_or("unreachable")
                        .chars()
                        .take(70)
                        .collect();
                    *ledger.healthy_why.lock().unwrap().entry(m).or_default() += 1;
                }
                ledger.healthy_refused.fetch_add(1, Ordering::Relaxed)
            }
            (false, true) => 0,
        };
        let value = match r {
            Ok(_) => Some(KeyState::Enabled),
            Err(e) => match error_code(&e).as_str() {
                "DisabledException" => Some(KeyState::Disabled),
                "KMSInvalidStateException" => Some(KeyState::PendingDeletion),
                c if retriable(c) => None,
                c => {
                    ledger.unexpected(format!("Encrypt read: {c}"));
                    None
                }
            },
        };
        if let Some(value) = value {
            ledger
                .histories
                .lock()
                .unwrap()
                .entry(key.clone())
                .or_default()
                .reads
                .push(Read {
                    node,
                    value,
                    start,
                    end,
                });
        } else {
            // A refused or unreachable node: try again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// CreateKey, Encrypt and Decrypt on a random node; acknowledged keys and
/// ciphertexts go into the ledger.
async fn data_client(
    clients: Vec<aws_sdk_kms::Client>,
    data_key: String,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    seed: u64,
) {
    let mut rng = Rng::new(seed);
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let kms = &clients[rng.below(clients.len())];
        ledger.ops.fetch_add(1, Ordering::Relaxed);
        match rng.below(3) {
            0 => match kms.create_key().description("chaos").send().await {
                Ok(r) => {
                    let id = r.key_metadata().map(|m| m.key_id().to_string());
                    ledger.created.lock().unwrap().extend(id);
                }
                Err(e) => {
                    let c = error_code(&e);
                    if !retriable(&c) {
                        ledger.unexpected(format!("CreateKey: {c}"));
                    }
                }
            },
            1 => {
                let pt = format!("chaos {seed} {n}").into_bytes();
                match kms
                    .encrypt()
                    .key_id(&data_key)
                    .plaintext(Blob::new(pt.clone()))
                    .send()
                    .await
                {
                    Ok(r) => {
                        if let Some(ct) = r.ciphertext_blob() {
                            let mut l = ledger.ciphertexts.lock().unwrap();
                            if l.len() < 5000 {
                                l.push((ct.as_ref().to_vec(), pt));
                            }
                        }
                    }
                    Err(e) => {
                        let c = error_code(&e);
                        if !retriable(&c) {
                            ledger.unexpected(format!("Encrypt: {c}"));
                        }
                    }
                }
            }
            _ => {
                let pick = {
                    let l = ledger.ciphertexts.lock().unwrap();
                    (!l.is_empty()).then(|| l[rng.below(l.len())].clone())
                };
                let Some((ct, pt)) = pick else { continue };
                match kms.decrypt().ciphertext_blob(Blob::new(ct)).send().await {
                    Ok(r) => {
                        if r.plaintext().map(|p| p.as_ref()) != Some(pt.as_slice()) {
                            ledger.wrong_plaintexts.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        let c = error_code(&e);
                        if !retriable(&c) {
                            ledger.unexpected(format!("Decrypt: {c}"));
                        }
                    }
                }
            }
        }
    }
}

/// Checks one key's history; returns the violations found.
fn check_history(key: &str, h: &History) -> Vec<String> {
    let mut out = Vec::new();
    let w = &h.writes;
    // Write k may hold from invoke_k until ack_{k+1}; write 0 is the state
    // the key was created in (held since before any read).
    let window = |k: usize| -> (Option<Instant>, Option<Instant>) {
        (
            if k == 0 { None } else { Some(w[k].invoke) },
            w.get(k + 1).map(|n| n.ack),
        )
    };
    let mut lo: Vec<Option<Instant>> = w.iter().map(|x| Some(x.invoke)).collect();
    let mut hi: Vec<Instant> = w.iter().map(|x| x.ack).collect();
    for r in &h.reads {
        let candidates: Vec<usize> = (0..w.len())
            .filter(|k| w[*k].value == r.value)
            .filter(|k| {
                let (from, until) = window(*k);
                from.is_none_or(|f| f <= r.end) && until.is_none_or(|u| u >= r.start)
            })
            .collect();
        match candidates.as_slice() {
            [] => out.push(format!(
                "key {key}: node {} read {:?} during [{:?}] that no acknowledged write explains",
                r.node + 1,
                r.value,
                r.end.duration_since(r.start)
            )),
            [k] => {
                // e_k <= r.end, and the next write took effect after r.start.
                if *k > 0 {
                    hi[*k] = hi[*k].min(r.end);
                }
                if let Some(next) = lo.get_mut(k + 1) {
                    *next = Some(next.map_or(r.start, |n| n.max(r.start)));
                }
            }
            _ => {}
        }
    }
    for k in 1..w.len() {
        if let Some(l) = lo[k] {
            if l > hi[k] {
                out.push(format!(
                    "key {key}: write {k} ({:?}) must take effect both after a read that saw the old state and before a read that saw the new one",
                    w[k].value
                ));
            }
        }
    }
    out
}

/// Runs the suite on a fresh 3-node cluster and returns the JSON report.
pub async fn run(opts: ChaosOptions) -> Value {
    let started = Instant::now();
    let partitions = opts.partitions && crate::netns::Netns::available();
    let mut c = Cluster::start_with(
        3,
        crate::Options {
            netns: partitions,
            ..crate::Options::default()
        },
    )
    .await;
    let n = c.nodes.len();
    let faults: Vec<Fault> = Fault::ALL
        .into_iter()
        .filter(|f| partitions || !matches!(f, Fault::PartitionLeader | Fault::PartitionFollower))
        .filter(|f| opts.only.is_empty() || opts.only.iter().any(|o| o == f.name()))
        .collect();
    assert!(!faults.is_empty(), "no fault to inject: {:?}", opts.only);
    let clients: Vec<_> = (0..n).map(|i| c.client(i)).collect();
    let ledger = Arc::new(Ledger {
        faulted: std::sync::atomic::AtomicUsize::new(usize::MAX),
        ..Ledger::default()
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut rng = Rng::new(opts.seed);

    // Keys whose state the writers flip; the initial state (Enabled) is write 0.
    let mut state_keys = Vec::new();
    let mut tasks = Vec::new();
    for i in 0..opts.toggle_keys + opts.deletion_keys {
        let key = c.new_key(i % n).await;
        let cycle = if i < opts.toggle_keys {
            vec![KeyState::Disabled, KeyState::Enabled]
        } else {
            vec![
                KeyState::PendingDeletion,
                KeyState::Disabled,
                KeyState::Enabled,
            ]
        };
        let t0 = Instant::now();
        ledger.histories.lock().unwrap().insert(
            key.clone(),
            History {
                writes: vec![Write {
                    value: KeyState::Enabled,
                    invoke: t0,
                    ack: t0,
                }],
                reads: Vec::new(),
            },
        );
        tasks.push(tokio::spawn(writer(
            clients.clone(),
            key.clone(),
            cycle,
            ledger.clone(),
            stop.clone(),
            rng.next(),
        )));
        state_keys.push(key);
    }
    for node in 0..n {
        for _ in 0..opts.readers_per_node {
            tasks.push(tokio::spawn(reader(
                node,
                c.client_no_retry(node),
                state_keys.clone(),
                ledger.clone(),
                stop.clone(),
                rng.next(),
            )));
        }
    }
    let data_key = c.new_key(0).await;
    for _ in 0..n {
        tasks.push(tokio::spawn(data_client(
            clients.clone(),
            data_key.clone(),
            ledger.clone(),
            stop.clone(),
            rng.next(),
        )));
    }

    // The faults.
    let mut resumption: BTreeMap<Fault, Vec<u64>> = BTreeMap::new();
    let mut rounds = Vec::new();
    for round in 0..opts.rounds {
        let fault = faults[round % faults.len()];
        let leader = c.wait_leader().await;
        let target = match fault {
            Fault::KillLeader | Fault::PauseLeader | Fault::PartitionLeader => leader,
            Fault::KillFollower | Fault::PauseFollower | Fault::PartitionFollower => {
                (leader + 1 + rng.below(n - 1)) % n
            }
        };
        let hold = rng.between(opts.fault_min, opts.fault_max);
        let at = Instant::now();
        ledger.faulted.store(target, Ordering::Relaxed);
        match fault {
            Fault::KillLeader | Fault::KillFollower => c.nodes[target].kill(),
            Fault::PauseLeader | Fault::PauseFollower => c.pause(target),
            Fault::PartitionLeader | Fault::PartitionFollower => c.partition(target),
        }
        let others: Vec<_> = (0..n)
            .filter(|i| *i != target)
            .map(|i| c.client_no_retry(i))
            .collect();
        let resumed = first_write_after(&others, DEADLINE).await;
        let resumed_ms = resumed.map(|t| millis(t.duration_since(at)));
        if let Some(ms) = resumed_ms {
            resumption.entry(fault).or_default().push(ms);
        }
        // Hold the fault for its drawn time (longer if writes took longer to
        // resume), then heal it.
        tokio::time::sleep(hold.saturating_sub(at.elapsed())).await;
        let healed_after = at.elapsed();
        match fault {
            Fault::KillLeader | Fault::KillFollower => c.start_node(target),
            Fault::PauseLeader | Fault::PauseFollower => c.resume(target),
            Fault::PartitionLeader | Fault::PartitionFollower => c.heal(target),
        }
        for i in 0..n {
            c.wait_ready(i).await;
        }
        ledger.faulted.store(usize::MAX, Ordering::Relaxed);
        rounds.push(json!({
            "round": round,
            "fault": fault.name(),
            "node": target + 1,
            "held_ms": millis(healed_after),
            "write_resumed_ms": resumed_ms,
        }));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    // The checks, with every node up.
    let mut lost = Vec::new();
    let mut wrong_state = Vec::new();
    let created = ledger.created.lock().unwrap().clone();
    let histories = std::mem::take(&mut *ledger.histories.lock().unwrap());
    for i in 0..n {
        let kms = c.client(i);
        for key in &created {
            if let Err(e) = kms.describe_key().key_id(key).send().await {
                lost.push(format!("node {}: {key}: {}", i + 1, error_code(&e)));
            }
        }
        for (key, h) in &histories {
            let want = h.writes.last().map(|w| w.value);
            let got = kms
                .describe_key()
                .key_id(key)
                .send()
                .await
                .ok()
                .and_then(|r| r.key_metadata().and_then(|m| m.key_state().cloned()))
                .and_then(|s| KeyState::from_api(s.as_str()));
            if got != want {
                wrong_state.push(format!("node {}: {key}: {got:?}, want {want:?}", i + 1));
            }
        }
    }
    let ciphertexts = ledger.ciphertexts.lock().unwrap().clone();
    let mut undecryptable = Vec::new();
    for (i, kms) in clients.iter().enumerate() {
        for (ct, pt) in ciphertexts.iter().step_by(ciphertexts.len() / 300 + 1) {
            match kms
                .decrypt()
                .ciphertext_blob(Blob::new(ct.clone()))
                .send()
                .await
            {
                Ok(r) if r.plaintext().map(|p| p.as_ref()) == Some(pt.as_slice()) => {}
                Ok(_) => undecryptable.push(format!("node {}: wrong plaintext", i + 1)),
                Err(e) => undecryptable.push(format!("node {}: {}", i + 1, error_code(&e))),
            }
        }
    }
    let mut stale = Vec::new();
    let mut reads = 0usize;
    let mut writes = 0usize;
    for (key, h) in &histories {
        reads += h.reads.len();
        writes += h.writes.len() - 1;
        stale.extend(check_history(key, h));
    }
    let all: Vec<u64> = resumption.values().flatten().copied().collect();
    let by_fault: serde_json::Map<String, Value> = resumption
        .iter()
        .map(|(f, v)| (f.name().to_string(), stats(v)))
        .collect();
    let unexpected = ledger.unexpected.lock().unwrap().clone();
    json!({
        "seed": opts.seed,
        "rounds": opts.rounds,
        "faults": faults.iter().map(|f| f.name()).collect::<Vec<_>>(),
        "partitions": if partitions { "on" } else { "skipped: network namespaces need root and iproute2" },
        "seconds": started.elapsed().as_secs(),
        "operations": ledger.ops.load(Ordering::Relaxed),
        "acknowledged_creates": created.len(),
        "state_writes": writes,
        "state_reads": reads,
        "ciphertexts": ciphertexts.len(),
        "lost": lost,
        "wrong_final_state": wrong_state,
        "undecryptable": undecryptable,
        "wrong_plaintexts": ledger.wrong_plaintexts.load(Ordering::Relaxed),
        "reads_on_faulted_node": {
            "answered": ledger.faulted_answered.load(Ordering::Relaxed),
            "refused": ledger.faulted_refused.load(Ordering::Relaxed),
        },
        "reads_refused_on_other_nodes": ledger.healthy_refused.load(Ordering::Relaxed),
        "reads_refused_on_other_nodes_why": ledger.healthy_why.lock().unwrap().clone(),
        "stale_reads": stale,
        "unexpected_errors": unexpected,
        "write_resumption": stats(&all),
        "write_resumption_by_fault": by_fault,
        "rounds_detail": rounds,
    })
}

/// Tries a write (CreateKey) through every node in `clients` until one is
/// acknowledged; returns when. `None` if none succeeded within `deadline`.
async fn first_write_after(clients: &[aws_sdk_kms::Client], deadline: Duration) -> Option<Instant> {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        let attempts = clients.iter().map(|kms| async move {
            tokio::time::timeout(
                Duration::from_secs(3),
                kms.create_key().description("chaos probe").send(),
            )
            .await
            .ok()
            .and_then(Result::ok)
            .map(|_| Instant::now())
        });
        let done = attempts.map(Box::pin).collect::<Vec<_>>();
        if let Some(t) = first_some(done).await {
            return Some(t);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

/// The first `Some` among futures run at once (`None` if all give `None`).
async fn first_some<F: std::future::Future<Output = Option<Instant>> + Unpin>(
    mut futs: Vec<F>,
) -> Option<Instant> {
    std::future::poll_fn(|cx| {
        let mut i = 0;
        while i < futs.len() {
            match std::pin::Pin::new(&mut futs[i]).poll(cx) {
                std::task::Poll::Ready(Some(t)) => return std::task::Poll::Ready(Some(t)),
                std::task::Poll::Ready(None) => {
                    futs.swap_remove(i);
                }
                std::task::Poll::Pending => i += 1,
            }
        }
        if futs.is_empty() {
            std::task::Poll::Ready(None)
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// The one-line summary of a report.
pub fn summary(r: &Value) -> String {
    let len = |k: &str| r[k].as_array().map_or(0, Vec::len);
    let unexpected: u64 = r["unexpected_errors"]
        .as_object()
        .map_or(0, |m| m.values().filter_map(Value::as_u64).sum());
    format!(
        "chaos: {} rounds ({}), {} ops, {} acknowledged creates, {} state writes, {} state reads: {} lost, {} wrong final state, {} undecryptable, {} stale reads, {} unexpected errors; write resumption p50 {} ms, p99 {} ms, max {} ms",
        r["rounds"],
        r["faults"]
            .as_array()
            .map(|f| f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "))
            .unwrap_or_default(),
        r["operations"],
        r["acknowledged_creates"],
        r["state_writes"],
        r["state_reads"],
        len("lost"),
        len("wrong_final_state"),
        len("undecryptable") as u64 + r["wrong_plaintexts"].as_u64().unwrap_or(0),
        len("stale_reads"),
        unexpected,
        r["write_resumption"]["p50_ms"],
        r["write_resumption"]["p99_ms"],
        r["write_resumption"]["max_ms"],
    )
}

/// Whether a report shows no lost, stale or wrong answer.
pub fn clean(r: &Value) -> bool {
    ["lost", "wrong_final_state", "undecryptable", "stale_reads"]
        .iter()
        .all(|k| r[k].as_array().is_some_and(Vec::is_empty))
        && r["wrong_plaintexts"] == 0
        && r["unexpected_errors"]
            .as_object()
            .is_some_and(|m| m.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    fn history(base: Instant) -> History {
        // Enabled from the start; Disabled written during [100, 200];
        // Enabled written during [300, 400].
        History {
            writes: vec![
                Write {
                    value: KeyState::Enabled,
                    invoke: base,
                    ack: base,
                },
                Write {
                    value: KeyState::Disabled,
                    invoke: at(base, 100),
                    ack: at(base, 200),
                },
                Write {
                    value: KeyState::Enabled,
                    invoke: at(base, 300),
                    ack: at(base, 400),
                },
            ],
            reads: Vec::new(),
        }
    }

    fn read(base: Instant, value: KeyState, start: u64, end: u64) -> Read {
        Read {
            node: 0,
            value,
            start: at(base, start),
            end: at(base, end),
        }
    }

    #[test]
    fn reads_inside_the_windows_are_linearizable() {
        let b = Instant::now();
        let mut h = history(b);
        h.reads = vec![
            read(b, KeyState::Enabled, 10, 20),
            read(b, KeyState::Enabled, 110, 120),
            read(b, KeyState::Disabled, 150, 160),
            read(b, KeyState::Disabled, 250, 260),
            read(b, KeyState::Disabled, 310, 320),
            read(b, KeyState::Enabled, 450, 460),
        ];
        assert!(check_history("k", &h).is_empty());
    }

    #[test]
    fn a_read_of_the_old_state_after_the_acknowledgement_is_stale() {
        let b = Instant::now();
        let mut h = history(b);
        h.reads = vec![read(b, KeyState::Enabled, 210, 220)];
        assert_eq!(check_history("k", &h).len(), 1);
    }

    #[test]
    fn new_then_old_within_one_write_is_not_linearizable() {
        let b = Instant::now();
        let mut h = history(b);
        // Disabled seen, ending at 130; then Enabled seen, starting at 140,
        // both inside the Disable write's interval.
        h.reads = vec![
            read(b, KeyState::Disabled, 120, 130),
            read(b, KeyState::Enabled, 140, 150),
        ];
        assert_eq!(check_history("k", &h).len(), 1);
    }
}
