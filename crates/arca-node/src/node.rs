//! The node: its configuration, start-up (Raft over the stores, the peer
//! port, the key actors, the background tasks) and shutdown, its clock, and
//! its health, readiness and status. The operations the gateway calls are
//! `impl Node` blocks of their own, one concept per file: `keys.rs`,
//! `writes.rs`, `membership.rs`, `users.rs`, `serving.rs`, `grants.rs`,
//! `import.rs`, `rotation.rs`, `backup.rs`, `usage.rs`, `election.rs`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use arca_crypto::wrap::{RootKeyId, RootKeyRing};
use arca_crypto::SecretBytes;
use arca_state::ClusterInfo;
use openraft::{ServerState, SnapshotPolicy};
use tokio_util::sync::CancellationToken;

use crate::actors::Registry;
use crate::credentials::SecretCache;
use crate::lease::Leases;
use crate::limits::{Acceptor, PortLimits};
use crate::network::{unix_now_ms, Network, PeerClient};
use crate::peer_auth::{ClusterId, PeerAuth, ReplayGuard};
use crate::pool::RsaPool;
use crate::serving;
use crate::store::{self, LogStore, SharedState, StateMachineStore};
use crate::tasks;
use crate::types::{
    ClusterStatus, ForwardRequest, ForwardResponse, MemberStatus, NodeId, NodeInfo, Raft,
};
use crate::writes::ForwardObserver;
use crate::NodeError;

/// Raft timing and log compaction.
#[derive(Debug, Clone)]
pub struct RaftTuning {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Build a snapshot after at least this many applied entries — and once
    /// the log since the last snapshot is as large as that snapshot
    /// (`tasks::snapshot_loop`).
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (for followers slightly behind).
    pub keep_after_snapshot: u64,
    /// Writes the leader puts into one entry at most (group commit, see
    /// `batch.rs`); 1: every write an entry of its own.
    pub write_batch: usize,
}

impl Default for RaftTuning {
    fn default() -> Self {
        // Failover in about a second (docs/ARCHITECTURE.md, "Timings"): a
        // follower campaigns 450–600 ms after the leader's last heartbeat.
        Self {
            heartbeat_ms: 50,
            election_min_ms: 150,
            election_max_ms: 300,
            snapshot_every: 1000,
            keep_after_snapshot: 500,
            write_batch: 64,
        }
    }
}

pub struct NodeConfig {
    pub node_id: NodeId,
    /// The client API address other nodes and clients are told about.
    pub api_addr: String,
    /// The peer address to listen on and advertise.
    pub peer_addr: String,
    pub data_dir: PathBuf,
    /// redb's page cache for the data file, in bytes
    /// (`store::DEFAULT_CACHE_BYTES` unless configured).
    pub db_cache_bytes: usize,
    /// The root keys this node holds (one, or two during a root-key rotation).
    pub root_keys: RootKeyRing,
    /// Secrets re-wrapped per entry while the leader rotates the root key.
    pub rewrap_batch: usize,
    /// The leader's pause between two re-wrap entries.
    pub rewrap_pause: Duration,
    /// The contents of the cluster secret file: peer messages are signed
    /// with it.
    pub cluster_secret: SecretBytes,
    /// Further cluster secrets whose signatures are accepted (a
    /// cluster-secret rotation).
    pub accepted_cluster_secrets: Vec<SecretBytes>,
    pub raft: RaftTuning,
    pub actor_mailbox: usize,
    pub actor_idle: Duration,
    /// How long a write may wait for a leader (elections, forwarding retries).
    pub write_timeout: Duration,
    /// A node cut off from the leader longer than this stops serving crypto.
    pub stale_bound: Duration,
    /// How often the leader looks for due deletions and rotations.
    pub scheduler_interval: Duration,
    /// Allow `ArcaAdmin.AdvanceClock` (tests of scheduled deletion and rotation).
    pub adjustable_clock: bool,
    /// Pre-generated RSA keys kept per size (0: none).
    pub rsa_pool: usize,
    /// Connections and timeouts of the peer port.
    pub peer_limits: PortLimits,
    /// RSA and SM2 private-key operations and key generations in flight at
    /// most; more are refused with `ThrottlingException`.
    pub heavy_crypto: usize,
    /// Mutual TLS on the peer port (none: plain HTTP).
    pub peer_tls: Option<Arc<crate::tls::PeerTls>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot open the data directory {0}: {1}")]
    DataDir(PathBuf, String),
    #[error("the root key does not match the data in {0}: it was written under another root key (check root_key_file)")]
    WrongRootKey(PathBuf),
    #[error("{0}")]
    MissingRootKey(String),
    #[error("{0}")]
    NewerFormat(String),
    #[error("the data directory {dir} belongs to node {found}, not node {configured}")]
    WrongNodeId {
        dir: PathBuf,
        found: NodeId,
        configured: NodeId,
    },
    #[error("invalid cluster secret: {0}")]
    ClusterSecret(String),
    #[error("cannot listen on peer address {0}: {1}")]
    PeerListen(String, String),
    #[error("peer TLS: {0}")]
    PeerTls(String),
    #[error("raft failed to start: {0}")]
    Raft(String),
    #[error("storage error: {0}")]
    Storage(String),
    #[error(
        "the data directory {dir} is older than this node's log as the cluster knows it: \
         leader {leader} has it matched up to log index {matched}, the directory ends at {last}. \
         It was put back from a copy, and has lost entries (and perhaps a vote) it acknowledged. \
         Do not start node {node_id} on it. Remove the node (`arca cluster remove-node --node-id {node_id}`), \
         move this directory aside, start the node on an empty one and add it again \
         (`arca cluster add-node`): it receives a snapshot. See docs/runbooks/disaster-recovery.md."
    )]
    PutBack {
        dir: PathBuf,
        node_id: NodeId,
        matched: u64,
        last: u64,
        leader: NodeId,
    },
}

/// What `/ready` and `/metrics` report.
#[derive(Debug, Clone)]
pub struct RaftView {
    pub node_id: NodeId,
    pub state: &'static str,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub last_log_index: Option<u64>,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    /// Last log index covered by this node's current snapshot.
    pub snapshot_index: Option<u64>,
    /// Last log index removed from this node's log.
    pub purged_index: Option<u64>,
    /// A write is waiting for space on the data directory's disk.
    pub disk_full: bool,
    /// Peer messages refused since start, by reason
    /// ([`crate::peer_auth::REASONS`]).
    pub peer_refused: Vec<(&'static str, u64)>,
    /// The cluster id (hex) peer messages are bound to, once known.
    pub cluster_id: Option<String>,
    /// Event counters since this process started.
    pub counters: crate::counters::CountersView,
    /// Whether this node serves crypto requests now, or why not.
    pub serving: crate::counters::ServingState,
}

/// A node behind its commit index whose applied index has not moved for this
/// long is reported as stuck rather than catching up.
const STUCK_AFTER: Duration = Duration::from_secs(10);

/// How long [`Node::raft_view`] waits for the Raft core's own state.
const RAFT_VIEW_WAIT: Duration = Duration::from_secs(1);

/// When the applied index last moved, as `/ready` saw it.
#[derive(Default)]
struct Progress(std::sync::Mutex<Option<(u64, Instant)>>);

impl Progress {
    /// How long `applied` has been the applied index.
    fn stalled_for(&self, applied: u64) -> Duration {
        let mut p = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match *p {
            Some((a, since)) if a == applied => since.elapsed(),
            _ => {
                *p = Some((applied, Instant::now()));
                Duration::ZERO
            }
        }
    }
}

/// What `/ready` says of a node whose applied index is behind its commit
/// index, and has not moved for `still`: catching up, or stuck.
fn behind(applied: u64, commit: u64, still: Duration) -> String {
    let lag = commit - applied;
    if still > STUCK_AFTER {
        format!(
            "stuck: applied index {applied} has not moved for {} s, {lag} entries behind commit index {commit}",
            still.as_secs()
        )
    } else {
        format!("catching up: applied index {applied}, {lag} entries behind commit index {commit}")
    }
}

/// A running node.
pub struct Node {
    pub id: NodeId,
    pub info: NodeInfo,
    pub(crate) raft: Raft,
    /// Every write this node proposes as the leader goes through it.
    pub(crate) batcher: crate::batch::Batcher,
    pub(crate) shared: Arc<SharedState>,
    pub(crate) registry: Registry,
    pub(crate) peers: PeerClient,
    pub(crate) peer_auth: Arc<PeerAuth>,
    /// Admits each peer request once, addressed to this node and cluster.
    pub(crate) peer_guard: ReplayGuard,
    /// The cluster id, computed once the cluster's facts are applied.
    cluster_id: OnceLock<ClusterId>,
    /// The cluster's facts, shared once applied (fixed from `cluster init`
    /// on; every request reads them).
    cluster_info: OnceLock<Arc<ClusterInfo>>,
    pub(crate) forward_observer: RwLock<Option<ForwardObserver>>,
    pub(crate) root: Arc<RootKeyRing>,
    pub(crate) rewrap_batch: usize,
    pub(crate) rewrap_pause: Duration,
    pub(crate) secrets: SecretCache,
    pub(crate) write_timeout: Duration,
    pub(crate) election_min: Duration,
    /// Also openraft's leader lease: voters refuse votes until it passes.
    pub(crate) election_max: Duration,
    pub(crate) leases: Leases,
    /// The term of the vote this process started with (a newer term it leads
    /// was won by an election in this process).
    pub(crate) startup_term: u64,
    pub(crate) pool: Arc<RsaPool>,
    pub(crate) scheduler_interval: Duration,
    pub(crate) peer_limits: PortLimits,
    /// Mutual TLS on the peer port (none: plain HTTP).
    pub peer_tls: Option<Arc<crate::tls::PeerTls>>,
    /// Where `/cluster/init` writes the first admin key when the peer port
    /// is plain HTTP (the secret never crosses it unencrypted).
    pub(crate) data_dir: PathBuf,
    adjustable_clock: bool,
    clock_offset_ms: AtomicI64,
    /// Set once the leader said this node is not a member.
    pub(crate) removed: AtomicBool,
    pub(crate) db: Arc<store::Db>,
    /// Successful cryptographic uses of keys not yet reported (GetKeyLastUsage).
    pub usage: crate::usage::UsageTracker,
    pub(crate) counters: Arc<crate::counters::Counters>,
    progress: Progress,
    /// When this node last served a backup (ms since the epoch; 0: never).
    pub(crate) last_backup_ms: std::sync::atomic::AtomicU64,
    pub(crate) shutdown: CancellationToken,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Node {
    /// Opens the data directory, checks the root key against it, starts Raft
    /// and the peer server. Does not initialize a cluster.
    pub async fn start(cfg: NodeConfig) -> Result<Arc<Node>, StartError> {
        std::fs::create_dir_all(&cfg.data_dir)
            .map_err(|e| StartError::DataDir(cfg.data_dir.clone(), e.to_string()))?;
        let db = store::open_database_with_cache(&cfg.data_dir, cfg.db_cache_bytes)
            .map_err(|e| StartError::DataDir(cfg.data_dir.clone(), e.to_string()))?;
        let st = |e: crate::types::StorageError| StartError::Storage(e.to_string());
        // A data directory of a newer release is not read at all.
        store::check_format(&db, &cfg.data_dir)
            .map_err(st)?
            .map_err(|e| StartError::NewerFormat(e.to_string()))?;
        // The snapshot's file: moved out of a database of format 3, and
        // what a crash left while one was written removed.
        store::prepare_snapshot_dir(&db).map_err(st)?;

        // This data dir's root key and node id, checked before anything is
        // read. The data dir remembers the root key it was first written
        // under; once the replica knows the cluster's root keys
        // (`check_replicated_root`), those decide instead, since a root-key
        // rotation moves the data to another key.
        let kcv = cfg.root_keys.first().check_value();
        let first_check = store::read_local_meta(&db.get(), store::ROOT_CHECK).map_err(st)?;
        if first_check.is_none() {
            store::write_local_meta(&db.get(), store::ROOT_CHECK, &kcv).map_err(st)?;
        }
        match store::read_local_meta(&db.get(), store::NODE_ID).map_err(st)? {
            Some(found) => {
                let found = u64::from_be_bytes(found.as_slice().try_into().unwrap_or([0; 8]));
                if found != cfg.node_id {
                    return Err(StartError::WrongNodeId {
                        dir: cfg.data_dir.clone(),
                        found,
                        configured: cfg.node_id,
                    });
                }
            }
            None => store::write_local_meta(&db.get(), store::NODE_ID, &cfg.node_id.to_be_bytes())
                .map_err(st)?,
        }

        let peer_auth = Arc::new(
            PeerAuth::with_secrets(
                cfg.cluster_secret.expose(),
                &cfg.accepted_cluster_secrets
                    .iter()
                    .map(|s| s.expose())
                    .collect::<Vec<_>>(),
            )
            .map_err(StartError::ClusterSecret)?,
        );
        // Requests signed before now may have been seen by this node's
        // previous run: refused (see `ReplayGuard`).
        let peer_guard = ReplayGuard::new(cfg.node_id, unix_now_ms());
        if let Some(tls) = &cfg.peer_tls {
            match tls.own_node_id() {
                Some(id) if id == cfg.node_id => {}
                other => {
                    return Err(StartError::PeerTls(format!(
                        "the peer certificate {} is for {}, but this is node {}",
                        tls.files().cert.display(),
                        other.map_or("no node".to_string(), |n| format!("node {n}")),
                        cfg.node_id
                    )))
                }
            }
        }
        let counters = Arc::new(crate::counters::Counters::default());
        let sm = StateMachineStore::open(db.clone(), counters.clone()).map_err(st)?;
        let shared = sm.shared();
        let peers = {
            let shared = shared.clone();
            let known: Arc<OnceLock<ClusterId>> = Arc::default();
            let cluster = Arc::new(move || {
                if let Some(c) = known.get() {
                    return Some(*c);
                }
                let c = shared
                    .read()
                    .state
                    .cluster
                    .as_ref()
                    .map(crate::peer_auth::cluster_id)?;
                Some(*known.get_or_init(|| c))
            });
            PeerClient::new(
                peer_auth.clone(),
                cfg.peer_tls.clone(),
                Some(cfg.node_id),
                cluster,
                peer_guard.refusals.clone(),
            )
        };
        let root = Arc::new(cfg.root_keys);
        check_replicated_root(&shared, &root)?;
        if shared.read().state.cluster.is_none() {
            if let Some(found) = &first_check {
                if !root.keys().iter().any(|k| k.check_value()[..] == found[..]) {
                    return Err(StartError::WrongRootKey(cfg.data_dir.clone()));
                }
            }
        }
        crate::backup::refuse_put_back(cfg.node_id, &cfg.data_dir, &db, &shared, &peers).await?;

        let t = &cfg.raft;
        let raft_config = openraft::Config {
            cluster_name: "arca".into(),
            heartbeat_interval: t.heartbeat_ms,
            election_timeout_min: t.election_min_ms,
            election_timeout_max: t.election_max_ms,
            // Elections are started by `election::election_loop`, with a
            // pre-vote and a timeout drawn afresh for every attempt.
            enable_elect: false,
            install_snapshot_timeout: 2000,
            // Snapshots are paced by `tasks::snapshot_loop`.
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: t.keep_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let network = Network {
            client: peers.clone(),
            counters: counters.clone(),
        };
        // The term this process starts in: a newer term it leads was won by
        // an election here, never restored (see `lease.rs`).
        let startup_term = store::stored_vote_term(&db.get()).map_err(st)?;
        let raft = Raft::new(
            cfg.node_id,
            Arc::new(raft_config),
            network,
            LogStore::new(db.clone()),
            sm,
        )
        .await
        .map_err(|e| StartError::Raft(e.to_string()))?;

        let listener = tokio::net::TcpListener::bind(&cfg.peer_addr)
            .await
            .map_err(|e| StartError::PeerListen(cfg.peer_addr.clone(), e.to_string()))?;

        let leases = Leases::new(cfg.stale_bound);
        let batcher = crate::batch::Batcher::start(raft.clone(), t.write_batch, counters.clone());
        let node = Arc::new(Node {
            id: cfg.node_id,
            info: NodeInfo {
                api_addr: cfg.api_addr,
                peer_addr: cfg.peer_addr,
            },
            raft,
            batcher,
            registry: Registry::new(
                shared.clone(),
                root.clone(),
                cfg.actor_mailbox,
                cfg.actor_idle,
                cfg.heavy_crypto,
            )
            .with_settle_wait(leases.settle_wait()),
            shared,
            peers,
            peer_auth,
            peer_guard,
            cluster_id: OnceLock::new(),
            cluster_info: OnceLock::new(),
            forward_observer: RwLock::new(None),
            root: root.clone(),
            rewrap_batch: cfg
                .rewrap_batch
                .clamp(1, arca_state::root_keys::MAX_REWRAP_BATCH),
            rewrap_pause: cfg.rewrap_pause,
            secrets: SecretCache::default(),
            write_timeout: cfg.write_timeout,
            election_min: Duration::from_millis(t.election_min_ms),
            election_max: Duration::from_millis(t.election_max_ms),
            leases,
            startup_term,
            pool: RsaPool::new(cfg.rsa_pool, root.clone()),
            scheduler_interval: cfg.scheduler_interval,
            peer_limits: cfg.peer_limits,
            peer_tls: cfg.peer_tls.clone(),
            data_dir: cfg.data_dir.clone(),
            adjustable_clock: cfg.adjustable_clock,
            clock_offset_ms: AtomicI64::new(0),
            removed: AtomicBool::new(false),
            db: db.clone(),
            usage: crate::usage::UsageTracker::new(crate::network::unix_now_ms().max(0) as u64),
            counters,
            progress: Progress::default(),
            last_backup_ms: Default::default(),
            shutdown: CancellationToken::new(),
            tasks: Default::default(),
        });
        let peer_task = tokio::spawn(crate::peer::serve(
            Acceptor::new(listener, &cfg.peer_limits, "peer"),
            node.clone(),
            node.shutdown.clone(),
        ));
        let watchdog = tokio::spawn(crate::election::election_loop(node.clone()));
        let root_watch = tokio::spawn(tasks::root_key_watch(node.clone()));
        let leases = tokio::spawn(serving::lease_loop(node.clone()));
        let leading = tokio::spawn(serving::leader_loop(node.clone()));
        let settle = tokio::spawn(serving::settle_loop(node.clone()));
        let notices = tokio::spawn(serving::settled_notice_loop(node.clone()));
        let scheduler = tokio::spawn(tasks::scheduler_loop(node.clone()));
        let pool = tokio::spawn(node.pool.clone().refill(node.shutdown.clone()));
        let secrets = tokio::spawn(tasks::secret_sweep_loop(node.clone()));
        let usage = tokio::spawn(crate::usage::report_loop(node.clone()));
        let rewrap = tokio::spawn(crate::rotation::rewrap_loop(node.clone()));
        let shred = tokio::spawn(crate::rotation::shred_loop(node.clone()));
        let leadership = tokio::spawn(crate::counters::leadership_watch(node.clone()));
        let snapshots = tokio::spawn(tasks::snapshot_loop(node.clone(), t.snapshot_every));
        node.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend([
                peer_task, watchdog, root_watch, leases, leading, settle, notices, scheduler, pool,
                secrets, usage, rewrap, shred, leadership, snapshots,
            ]);
        Ok(node)
    }

    /// Stops the peer server and Raft; data is already durable.
    pub async fn shutdown(&self) {
        self.shutdown.cancel();
        // A write waiting for disk space gives up, so Raft can stop.
        self.db.stop();
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        let tasks: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for t in tasks {
            t.abort();
        }
    }

    /// Milliseconds since the Unix epoch, plus the test offset if enabled.
    pub fn now_ms(&self) -> u64 {
        let sys = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        (sys + self.clock_offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }

    /// Moves this node's clock forward (only with `adjustable_clock`).
    pub fn advance_clock(&self, ms: u64) -> Result<u64, NodeError> {
        if !self.adjustable_clock {
            return Err(NodeError::Unsupported(
                "this node's clock is not adjustable (set [testing] adjustable_clock)".into(),
            ));
        }
        self.clock_offset_ms
            .fetch_add(ms.min(i64::MAX as u64 / 2) as i64, Ordering::Relaxed);
        Ok(self.now_ms())
    }

    /// The cluster's facts, once this node has applied `cluster init`.
    pub fn cluster_info(&self) -> Option<Arc<ClusterInfo>> {
        if let Some(c) = self.cluster_info.get() {
            return Some(c.clone());
        }
        let c = Arc::new(self.shared.read().state.cluster.clone()?);
        Some(self.cluster_info.get_or_init(|| c).clone())
    }

    /// The id of this node's cluster, once it has applied `cluster init`.
    pub fn cluster_id(&self) -> Option<ClusterId> {
        if let Some(c) = self.cluster_id.get() {
            return Some(*c);
        }
        let c = crate::peer_auth::cluster_id(self.shared.read().state.cluster.as_ref()?);
        Some(*self.cluster_id.get_or_init(|| c))
    }

    pub async fn raft_view(&self) -> RaftView {
        let m = self.raft.metrics().borrow().clone();
        // The Raft core answers between its storage calls; one that waits
        // for disk space (see `store::Db::durable`) must not stall
        // `/metrics`: the view then has no commit index and no leader
        // heard from, which is the truth a scraper can act on.
        let (commit_index, quiet) = tokio::time::timeout(
            RAFT_VIEW_WAIT,
            self.raft.with_raft_state(|s| {
                (
                    s.committed.map(|c| c.index),
                    s.vote_last_modified().map(|t| t.elapsed()),
                )
            }),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or((None, None));
        // openraft keeps naming a leader it no longer hears from (this node
        // campaigns only after a pre-vote succeeds): past the leader lease,
        // the leader is not known.
        let lost = m.state != ServerState::Leader && quiet.is_none_or(|q| q > self.election_max);
        RaftView {
            node_id: self.id,
            state: match m.state {
                ServerState::Leader => "leader",
                ServerState::Follower => "follower",
                ServerState::Candidate => "candidate",
                ServerState::Learner => "learner",
                ServerState::Shutdown => "shutdown",
            },
            term: m.current_term,
            leader: if lost { None } else { m.current_leader },
            last_log_index: m.last_log_index,
            commit_index,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            purged_index: m.purged.map(|l| l.index),
            disk_full: self.db.waiting_for_space(),
            peer_refused: self.peer_guard.refusals.snapshot(),
            cluster_id: self.cluster_id().map(hex::encode),
            counters: self.counters.view(),
            serving: self.serving_state(),
        }
    }

    /// Live: the process runs and its Raft core has not stopped (a removed
    /// node is live; `/ready` says it was removed).
    pub fn health(&self) -> Result<(), String> {
        if self.removed.load(Ordering::Relaxed) {
            return Ok(());
        }
        match &self.raft.metrics().borrow().running_state {
            Ok(()) => Ok(()),
            Err(e) => Err(format!("the Raft core has stopped: {e}")),
        }
    }

    /// Ready: the node knows a leader, has applied all it knows is committed,
    /// and may serve. The reason says which is missing, and tells a node
    /// catching up (its applied index moves) from one that is stuck.
    pub async fn ready(&self) -> Result<(), String> {
        if self.removed.load(Ordering::Relaxed) {
            return Err("removed from the cluster: this node no longer takes part; stop it".into());
        }
        self.health()?;
        if self.db.waiting_for_space() {
            return Err(
                "the disk holding the data directory is full: writes wait for space; free some and this node continues".into(),
            );
        }
        let v = self.raft_view().await;
        if self.cluster_info().is_none() && v.leader.is_none() {
            return Err("cluster not initialized".into());
        }
        if v.leader.is_none() {
            return Err(format!("no leader known (term {}, {})", v.term, v.state));
        }
        let (applied, commit) = (v.applied_index.unwrap_or(0), v.commit_index.unwrap_or(0));
        if applied < commit {
            return Err(behind(applied, commit, self.progress.stalled_for(applied)));
        }
        self.serving_now().await.map_err(|e| e.to_string())
    }

    /// This node's view of the cluster; with replication lag when it leads.
    pub async fn local_status(&self) -> ClusterStatus {
        let v = self.raft_view().await;
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let leader_last = m.last_log_index;
        let members = membership
            .nodes()
            .map(|(id, info)| {
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id).cloned())
                    .map(|l| l.map(|l| l.index));
                let matched_index = match matched {
                    Some(x) => x,
                    None if *id == self.id => leader_last,
                    None => None,
                };
                let leading = v.leader == Some(self.id);
                let contact = if *id == self.id {
                    leading.then(Instant::now)
                } else if leading {
                    self.leases.last_heard(v.term, *id)
                } else {
                    None
                };
                let lag = if v.leader == Some(self.id) {
                    Some(
                        leader_last
                            .unwrap_or(0)
                            .saturating_sub(matched_index.unwrap_or(0)),
                    )
                } else {
                    None
                };
                MemberStatus {
                    node_id: *id,
                    api_addr: info.api_addr.clone(),
                    peer_addr: info.peer_addr.clone(),
                    voter: voters.contains(id),
                    matched_index: if v.leader == Some(self.id) {
                        matched_index
                    } else {
                        None
                    },
                    lag,
                    last_contact_ms: contact.map(|t| t.elapsed().as_millis() as u64),
                    reachable: contact.map(|t| t.elapsed() < self.leases.bound()),
                    root_key_ids: None,
                }
            })
            .collect();
        ClusterStatus {
            node_id: self.id,
            leader: v.leader,
            term: v.term,
            commit_index: v.commit_index,
            applied_index: v.applied_index,
            last_log_index: v.last_log_index,
            members,
            held_root_keys: self.held_root_keys(),
            root_keys: self.root_key_status(),
        }
    }

    /// The leader's view of the cluster; this node's own view if no leader
    /// answers within a second.
    pub async fn cluster_status(&self) -> ClusterStatus {
        let deadline = Instant::now() + Duration::from_secs(1);
        match self.on_leader_until(ForwardRequest::Status, deadline).await {
            Ok(ForwardResponse::Status(s)) => s,
            _ => self.local_status().await,
        }
    }
}

/// Refuses to run without every root key the cluster's secrets are wrapped
/// under (once the node knows them from its replica): after a root-key
/// rotation, a node started with only the old key stops here, naming the
/// key it lacks.
fn check_replicated_root(shared: &SharedState, root: &RootKeyRing) -> Result<(), StartError> {
    match missing_root_keys(&shared.read().state, root) {
        Some(m) => Err(StartError::MissingRootKey(m)),
        None => Ok(()),
    }
}

/// What is wrong if `root` lacks a root key the state's secrets are wrapped
/// under; `None` if it holds them all (or the cluster is not known yet).
pub(crate) fn missing_root_keys(state: &arca_state::State, root: &RootKeyRing) -> Option<String> {
    state.cluster.as_ref()?;
    let missing: Vec<String> = state
        .root_keys_in_use()
        .into_iter()
        .filter(|id| !root.holds(id))
        .map(|id| id.to_string())
        .collect();
    if missing.is_empty() {
        return None;
    }
    let held: Vec<String> = root.ids().iter().map(RootKeyId::to_string).collect();
    Some(format!(
        "this node lacks root key {} (it holds {}): the cluster's key material is wrapped under {}. \
         Start it with that key's file (root_key_file / root_key_files, or --root-key-file)",
        missing.join(" and "),
        held.join(", "),
        if missing.len() == 1 { "it" } else { "them" }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_behind_is_catching_up_until_its_applied_index_stops_moving() {
        let p = Progress::default();
        assert_eq!(p.stalled_for(5), Duration::ZERO);
        assert!(behind(5, 9, p.stalled_for(5))
            .starts_with("catching up: applied index 5, 4 entries behind"));
        // Moving resets the clock.
        assert_eq!(p.stalled_for(6), Duration::ZERO);
        let why = behind(6, 9, STUCK_AFTER + Duration::from_secs(1));
        assert!(
            why.starts_with(
                "stuck: applied index 6 has not moved for 11 s, 3 entries behind commit index 9"
            ),
            "{why}"
        );
    }

    #[tokio::test]
    async fn health_fails_once_the_raft_core_has_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::start(NodeConfig {
            node_id: 1,
            api_addr: "127.0.0.1:1".into(),
            peer_addr: "127.0.0.1:0".into(),
            data_dir: dir.path().to_path_buf(),
            db_cache_bytes: crate::store::DEFAULT_CACHE_BYTES,
            root_keys: RootKeyRing::new(vec![arca_crypto::wrap::RootKey::generate().unwrap().0])
                .unwrap(),
            rewrap_batch: 100,
            rewrap_pause: Duration::ZERO,
            cluster_secret: SecretBytes::new(vec![7; 32]),
            accepted_cluster_secrets: Vec::new(),
            raft: RaftTuning::default(),
            actor_mailbox: 8,
            actor_idle: Duration::from_secs(60),
            write_timeout: Duration::from_secs(1),
            stale_bound: Duration::from_secs(1),
            scheduler_interval: Duration::from_secs(10),
            adjustable_clock: false,
            rsa_pool: 0,
            peer_limits: PortLimits::PEER_DEFAULT,
            heavy_crypto: 1,
            peer_tls: None,
        })
        .await
        .unwrap();
        assert_eq!(node.health(), Ok(()));
        // What a storage failure does to openraft: its core stops.
        node.raft.shutdown().await.unwrap();
        let why = node.health().unwrap_err();
        assert!(why.contains("the Raft core has stopped"), "{why}");
        node.shutdown().await;
    }
}
