//! The node: starts Raft over the stores, serves the peer port, runs the key
//! actors, and offers the operations the gateway calls.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::batch::WriteError;
use arca_crypto::wrap::{RootKeyId, RootKeyRing};
use arca_crypto::SecretBytes;
use arca_state::{ClusterInfo, Command, Outcome, Proposal, Rejection, RequestKey};
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{ChangeMembers, ServerState, SnapshotPolicy};
use tokio_util::sync::CancellationToken;

use crate::actors::Registry;
use crate::credentials::{self, SecretCache};
use crate::lease::Leases;
use crate::limits::{Acceptor, PortLimits};
use crate::network::{unix_now_ms, Network, PeerClient, PeerError};
use crate::peer_auth::{ClusterId, PeerAuth, ReplayGuard};
use crate::pool::RsaPool;
use crate::store::{self, LogStore, SharedState, StateMachineStore};
use crate::tasks;
use crate::types::{
    ClusterStatus, ForwardRequest, ForwardResponse, MemberStatus, NodeId, NodeInfo, Raft,
};
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

/// A write another node forwarded to this node (as the leader), for its
/// audit log: the node that received the client's request records it too.
#[derive(Debug)]
pub struct ForwardedWrite {
    /// The node that forwarded it.
    pub from: Option<NodeId>,
    /// The command's name ([`arca_state::Command::name`]).
    pub operation: &'static str,
    pub key_id: Option<String>,
    /// The client request's identity digest (hex), if it carried one.
    pub request: Option<String>,
    pub outcome: Result<(), NodeError>,
}

/// Called with every write forwarded to this node, once its outcome is known.
pub type ForwardObserver = Arc<dyn Fn(ForwardedWrite) + Send + Sync>;

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
    batcher: crate::batch::Batcher,
    pub(crate) shared: Arc<SharedState>,
    pub(crate) registry: Registry,
    pub(crate) peers: PeerClient,
    pub(crate) peer_auth: Arc<PeerAuth>,
    /// Admits each peer request once, addressed to this node and cluster.
    pub(crate) peer_guard: ReplayGuard,
    /// The cluster id, computed once the cluster's facts are applied.
    cluster_id: OnceLock<ClusterId>,
    forward_observer: RwLock<Option<ForwardObserver>>,
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
    removed: AtomicBool,
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

/// The result of creating an access key, shown to its owner once.
pub struct NewAccessKey {
    pub access_key_id: String,
    pub secret_access_key: SecretBytes,
    pub region: String,
    pub account_id: String,
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
        let leases = tokio::spawn(tasks::lease_loop(node.clone()));
        let leading = tokio::spawn(tasks::leader_loop(node.clone()));
        let settle = tokio::spawn(tasks::settle_loop(node.clone()));
        let notices = tokio::spawn(tasks::settled_notice_loop(node.clone()));
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

    pub fn cluster_info(&self) -> Option<ClusterInfo> {
        self.shared.read().state.cluster.clone()
    }

    /// The id of this node's cluster, once it has applied `cluster init`.
    pub fn cluster_id(&self) -> Option<ClusterId> {
        if let Some(c) = self.cluster_id.get() {
            return Some(*c);
        }
        let c = crate::peer_auth::cluster_id(self.shared.read().state.cluster.as_ref()?);
        Some(*self.cluster_id.get_or_init(|| c))
    }

    /// Has `observer` called with every write another node forwards to this
    /// one (the gateway audits them).
    pub fn set_forward_observer(&self, observer: ForwardObserver) {
        *self
            .forward_observer
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(observer);
    }

    // ---- Raft view ----

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

    /// Whether the leader said this node is no longer a member.
    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::Relaxed)
    }

    /// The leader's answer says this node is not a member any more: stop
    /// taking part (no more campaigns), and say so.
    pub(crate) fn mark_removed(self: &Arc<Self>) {
        if self.removed.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::error!(
            node_id = self.id,
            "this node was removed from the cluster: it stops taking part in Raft and refuses requests; stop the process"
        );
        let node = self.clone();
        tokio::spawn(async move {
            let _ = node.raft.shutdown().await;
        });
    }

    pub(crate) fn leader_info(&self, leader: NodeId) -> Option<NodeInfo> {
        let m = self.raft.metrics().borrow().clone();
        m.membership_config.membership().get_node(&leader).cloned()
    }

    /// Waits (until `deadline`) for a known leader.
    async fn wait_leader(&self, deadline: Instant) -> Result<NodeId, NodeError> {
        let mut rx = self.raft.metrics();
        loop {
            if let Some(l) = rx.borrow_and_update().current_leader {
                return Ok(l);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NodeError::Unavailable(
                    "no Raft leader is available; retry".into(),
                ));
            }
            let _ = tokio::time::timeout(left, rx.changed()).await;
        }
    }

    /// Waits until this node has applied `index`.
    pub(crate) async fn wait_applied(
        &self,
        index: u64,
        deadline: Instant,
    ) -> Result<(), NodeError> {
        if self.shared.applied() >= index {
            return Ok(());
        }
        let mut rx = self.shared.applied_index();
        let left = deadline.saturating_duration_since(Instant::now());
        let reached = tokio::time::timeout(left, rx.wait_for(|i| *i >= index))
            .await
            .map(|r| r.is_ok());
        match reached {
            Ok(true) => Ok(()),
            _ => Err(NodeError::Unavailable(format!(
                "this node has not yet applied log index {index}; retry"
            ))),
        }
    }

    /// Runs `req` on the leader: here if this node leads, else forwarded.
    /// Retries across elections until the write timeout.
    pub(crate) async fn on_leader(
        &self,
        req: ForwardRequest,
    ) -> Result<ForwardResponse, NodeError> {
        self.on_leader_until(req, Instant::now() + self.write_timeout)
            .await
    }

    async fn on_leader_until(
        &self,
        req: ForwardRequest,
        deadline: Instant,
    ) -> Result<ForwardResponse, NodeError> {
        let mut last_err = String::from("no leader");
        loop {
            let leader = self.wait_leader(deadline).await?;
            let resp = if leader == self.id {
                let left = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(left, self.handle_forward(req.clone())).await {
                    Ok(r) => r,
                    // Stalled (a full disk, say): the write may still apply;
                    // a retry with the same identity gets its outcome.
                    Err(_) => {
                        return Err(NodeError::Unavailable(
                            "the write did not complete in time; retry".into(),
                        ))
                    }
                }
            } else {
                match self.leader_info(leader) {
                    Some(info) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        // A leader that stalls (paused, partitioned) is given up
                        // as soon as another is known; a write it may still
                        // apply is deduplicated by its request identity.
                        let mut rx = self.raft.metrics();
                        tokio::select! {
                            r = self.peers.forward(leader, &info, &req, left) => match r {
                                Ok(r) => r,
                                Err(e) => {
                                    tracing::debug!(error = %e, leader, "forward to leader failed");
                                    last_err = e.to_string();
                                    ForwardResponse::NotLeader { leader: None }
                                }
                            },
                            _ = rx.wait_for(|m| m.current_leader != Some(leader)) => {
                                last_err = format!("node {leader} stopped leading");
                                ForwardResponse::NotLeader { leader: None }
                            }
                        }
                    }
                    None => ForwardResponse::NotLeader { leader: None },
                }
            };
            match resp {
                ForwardResponse::NotLeader { .. } => {
                    if Instant::now() >= deadline {
                        return Err(NodeError::Unavailable(format!(
                            "the Raft leader could not be reached ({last_err}); retry"
                        )));
                    }
                    // Let the metrics catch up with the new leader, briefly.
                    let mut rx = self.raft.metrics();
                    let _ = tokio::time::timeout(Duration::from_millis(50), rx.changed()).await;
                }
                ForwardResponse::Failed(m) => return Err(NodeError::Internal(m)),
                ForwardResponse::Unavailable(m) => return Err(NodeError::Unavailable(m)),
                ForwardResponse::Refused(r) => return Err(r.into()),
                other => return Ok(other),
            }
        }
    }

    /// Serves a [`ForwardRequest`] that node `from` sent to this one; a
    /// write is shown to the forward observer with its outcome.
    pub(crate) async fn handle_forward_from(
        &self,
        from: Option<NodeId>,
        req: ForwardRequest,
    ) -> ForwardResponse {
        let ForwardRequest::Write(p) = &req else {
            return self.handle_forward(req).await;
        };
        let observer = self
            .forward_observer
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(observer) = observer else {
            return self.handle_forward(req).await;
        };
        let operation = p.command.name();
        let key_id = p.command.key_id().map(|k| k.to_string());
        let request = p.request.map(|r| hex::encode(r.id));
        let resp = self.handle_forward(req).await;
        let outcome = match &resp {
            ForwardResponse::Written { outcome, .. } => match outcome.clone().first().0 {
                Outcome::Applied => Ok(()),
                Outcome::Rejected(r) => Err(r.into()),
                Outcome::Repeated { .. } | Outcome::Batch(_) => {
                    Err(NodeError::Internal("nested outcome".into()))
                }
            },
            ForwardResponse::NotLeader { .. } => {
                Err(NodeError::Unavailable("this node is not the leader".into()))
            }
            ForwardResponse::Unavailable(m) => Err(NodeError::Unavailable(m.clone())),
            ForwardResponse::Failed(m) => Err(NodeError::Internal(m.clone())),
            other => Err(NodeError::Internal(format!(
                "unexpected answer to a write: {other:?}"
            ))),
        };
        observer(ForwardedWrite {
            from,
            operation,
            key_id,
            request,
            outcome,
        });
        resp
    }

    /// Serves a [`ForwardRequest`] as the leader. Answers `NotLeader` if this
    /// node is not the leader (any more).
    pub async fn handle_forward(&self, req: ForwardRequest) -> ForwardResponse {
        fn not_leader<E>(e: &RaftError<NodeId, E>) -> Option<ForwardResponse>
        where
            E: std::error::Error,
        {
            match e {
                RaftError::APIError(_) => Some(ForwardResponse::NotLeader { leader: None }),
                RaftError::Fatal(_) => None,
            }
        }
        match req {
            ForwardRequest::Write(mut p) => {
                // The leader's clock stamps the entry and every time its
                // command carries; the proposer's times are not trusted.
                let now = self.now_ms();
                p.stamp_ms = now;
                p.command = p.command.stamped(now);
                match self.batcher.write(*p).await {
                    // The barrier of another write of the same entry passed.
                    Ok(r) if self.shared.safe_index() >= r.log_id.index => {
                        ForwardResponse::Written {
                            outcome: r.outcome,
                            log_index: r.log_id.index,
                        }
                    }
                    Ok(r) => {
                        // Acknowledge only when no node can serve older state.
                        match tasks::barrier(self, r.log_id.leader_id.term, r.log_id.index).await {
                            Ok(()) => {
                                self.shared.raise_safe(r.log_id.index);
                                ForwardResponse::Written {
                                    outcome: r.outcome,
                                    log_index: r.log_id.index,
                                }
                            }
                            Err(e) => ForwardResponse::Unavailable(e.to_string()),
                        }
                    }
                    Err(WriteError::Raft(e)) => match *e {
                        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                            ForwardResponse::NotLeader {
                                leader: f.leader_id,
                            }
                        }
                        e => ForwardResponse::Failed(e.to_string()),
                    },
                    Err(e) => ForwardResponse::Failed(e.to_string()),
                }
            }
            ForwardRequest::ReadIndex => match self.raft.ensure_linearizable().await {
                Ok(Some(l)) => ForwardResponse::ReadIndex(l.index),
                Ok(None) => ForwardResponse::ReadIndex(0),
                Err(e) => not_leader(&e).unwrap_or_else(|| ForwardResponse::Failed(e.to_string())),
            },
            ForwardRequest::AddNode { node_id, info } => {
                if let Err(e) = self.raft.add_learner(node_id, info, true).await {
                    return match e {
                        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => {
                            ForwardResponse::NotLeader {
                                leader: f.leader_id,
                            }
                        }
                        e => ForwardResponse::Failed(e.to_string()),
                    };
                }
                let add = ChangeMembers::AddVoterIds(BTreeSet::from([node_id]));
                membership_changed(self.raft.change_membership(add, false).await)
            }
            ForwardRequest::RemoveNode { node_id } => {
                let m = self.raft.metrics().borrow().clone();
                let membership = m.membership_config.membership().clone();
                if membership.get_node(&node_id).is_none() {
                    return ForwardResponse::Refused(Rejection::NotFound(format!(
                        "node {node_id} is not a member"
                    )));
                }
                let is_voter = membership.voter_ids().any(|v| v == node_id);
                let change = if is_voter {
                    ChangeMembers::RemoveVoters(BTreeSet::from([node_id]))
                } else {
                    ChangeMembers::RemoveNodes(BTreeSet::from([node_id]))
                };
                membership_changed(self.raft.change_membership(change, false).await)
            }
            ForwardRequest::Status => {
                if self.raft.ensure_linearizable().await.is_err() {
                    return ForwardResponse::NotLeader { leader: None };
                }
                let mut s = self.local_status().await;
                // Which root keys each member holds, as it answers now.
                for m in &mut s.members {
                    m.root_key_ids = if m.node_id == self.id {
                        Some(self.held_root_keys())
                    } else {
                        let info = NodeInfo {
                            api_addr: m.api_addr.clone(),
                            peer_addr: m.peer_addr.clone(),
                        };
                        self.ask_held_root_keys(m.node_id, &info).await.ok()
                    };
                }
                ForwardResponse::Status(s)
            }
            ForwardRequest::HeldRootKeys => ForwardResponse::HeldRootKeys(self.held_root_keys()),
            ForwardRequest::BeginRootKeyRotation { to } => self.lead_root_key_rotation(to).await,
        }
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

    /// Proposes `cmd` through the leader; returns once this node has applied
    /// it. A retry of a request applied before returns the first outcome.
    pub(crate) async fn propose(
        &self,
        request: Option<RequestKey>,
        command: Command,
    ) -> Result<Outcome, NodeError> {
        Ok(self.propose_created(request, command).await?.0)
    }

    /// Like [`Node::propose`]; also returns what the first attempt of a
    /// repeated request created (its key id, access key id or version id),
    /// which the caller reports instead of what this attempt would have.
    pub(crate) async fn propose_created(
        &self,
        request: Option<RequestKey>,
        command: Command,
    ) -> Result<(Outcome, Option<String>), NodeError> {
        let started = Instant::now();
        let p = Proposal::new(request, command);
        match self.on_leader(ForwardRequest::Write(Box::new(p))).await? {
            ForwardResponse::Written { outcome, log_index } => {
                // The leader's barrier passed for it: it is settled.
                self.shared.raise_safe(log_index);
                // Read your writes: a later request to this node sees the change.
                self.wait_applied(log_index, started + self.write_timeout)
                    .await?;
                Ok(outcome.first())
            }
            other => Err(NodeError::Internal(format!(
                "unexpected answer to a write: {other:?}"
            ))),
        }
    }

    /// Makes this node's replica at least as new as every write acknowledged
    /// before the call (a read index from the leader).
    pub async fn catch_up(&self) -> Result<(), NodeError> {
        let started = Instant::now();
        match self.on_leader(ForwardRequest::ReadIndex).await? {
            ForwardResponse::ReadIndex(i) => {
                self.wait_applied(i, started + self.write_timeout).await
            }
            other => Err(NodeError::Internal(format!(
                "unexpected answer to a read index: {other:?}"
            ))),
        }
    }

    // ---- Cluster administration ----

    /// Bootstraps a one-node cluster on this node and creates the first admin
    /// access key. Refused if the cluster is initialized already.
    pub async fn init_cluster(
        &self,
        region: String,
        account_id: String,
    ) -> Result<NewAccessKey, NodeError> {
        if self.cluster_info().is_some() {
            return Err(NodeError::AlreadyInitialized);
        }
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| NodeError::Internal(e.to_string()))?;
        if !initialized {
            let members = BTreeMap::from([(self.id, self.info.clone())]);
            self.raft
                .initialize(members)
                .await
                .map_err(|e| NodeError::Internal(format!("raft initialize: {e}")))?;
        }
        let now = self.now_ms();
        // The cluster is created under the node's first root key.
        let root = self.root.first();
        let (admin, secret) = credentials::generate(root, arca_state::BOOTSTRAP_ADMIN_USER, now)?;
        let access_key_id = admin.access_key_id.clone();
        let info = ClusterInfo {
            region: region.clone(),
            account_id: account_id.clone(),
            root_check_value: root.check_value(),
            created_ms: now,
        };
        crate::keys::applied(
            self.propose(None, Command::InitCluster { info, admin })
                .await?,
        )?;
        Ok(NewAccessKey {
            access_key_id,
            secret_access_key: secret,
            region,
            account_id,
        })
    }

    pub async fn add_node(&self, node_id: NodeId, info: NodeInfo) -> Result<(), NodeError> {
        self.on_leader(ForwardRequest::AddNode { node_id, info })
            .await
            .map(|_| ())
    }

    pub async fn remove_node(&self, node_id: NodeId) -> Result<(), NodeError> {
        self.on_leader(ForwardRequest::RemoveNode { node_id })
            .await
            .map(|_| ())
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

    // ---- Credentials ----

    /// Creates an access key for `user` (creating the user, with no identity
    /// policy, if it does not exist); its secret is returned once and kept
    /// only wrapped.
    pub async fn create_access_key(
        &self,
        rid: Option<RequestKey>,
        user: &str,
    ) -> Result<NewAccessKey, NodeError> {
        let cluster = self.cluster_info().ok_or(NodeError::NotInitialized)?;
        let (rec, secret) = credentials::generate(self.wrap_key()?, user, self.now_ms())?;
        let access_key_id = rec.access_key_id.clone();
        let (outcome, created) = self
            .propose_created(rid, Command::CreateAccessKey { key: rec })
            .await?;
        match (outcome, created) {
            (Outcome::Applied, None) => Ok(NewAccessKey {
                access_key_id,
                secret_access_key: secret,
                region: cluster.region,
                account_id: cluster.account_id,
            }),
            // A retry: the key the first attempt created, its secret unwrapped
            // from the replicated record.
            (Outcome::Applied, Some(first)) => {
                let rec = self
                    .shared
                    .read()
                    .state
                    .access_keys
                    .get(&first)
                    .cloned()
                    .ok_or_else(|| {
                        NodeError::NotFound(format!("Access key {first} does not exist"))
                    })?;
                let secret = credentials::unwrap_secret(&self.root, &rec)?;
                Ok(NewAccessKey {
                    access_key_id: first,
                    secret_access_key: secret,
                    region: cluster.region,
                    account_id: cluster.account_id,
                })
            }
            (Outcome::Rejected(r), _) => Err(r.into()),
            (Outcome::Repeated { .. } | Outcome::Batch(_), _) => {
                Err(NodeError::Internal("nested outcome".into()))
            }
        }
    }

    /// Deletes an access key: requests signed with it fail from then on.
    pub async fn delete_access_key(
        &self,
        rid: Option<RequestKey>,
        access_key_id: String,
    ) -> Result<(), NodeError> {
        crate::keys::applied(
            self.propose(rid, Command::DeleteAccessKey { access_key_id })
                .await?,
        )
    }

    /// The secret of an access key and the user it belongs to, for signature
    /// checks; `None` if unknown.
    pub fn access_key_secret(
        &self,
        access_key_id: &str,
    ) -> Result<Option<(Arc<SecretBytes>, String)>, NodeError> {
        // The state decides whether the key exists (a deleted key is refused at
        // once); the cache spares an unwrap, and a record copy, per request.
        let rec = {
            let a = self.shared.read();
            match a.state.access_keys.get(access_key_id) {
                None => return Ok(None),
                Some(r) => match self.secrets.get(access_key_id) {
                    Some(s) => return Ok(Some((s, r.user.clone()))),
                    None => r.clone(),
                },
            }
        };
        let s = self.secrets.get_or_unwrap(&self.root, &rec)?;
        Ok(Some((s, rec.user)))
    }

    /// How many access-key secrets are held unwrapped (for `/metrics`).
    pub fn cached_secrets(&self) -> usize {
        self.secrets.len()
    }

    /// Every access key: id, user, creation time (never a secret).
    pub async fn list_access_keys(&self) -> Result<Vec<(String, String, u64)>, NodeError> {
        self.ensure_serving().await?;
        Ok(self
            .shared
            .read()
            .state
            .access_keys
            .values()
            .map(|k| (k.access_key_id.clone(), k.user.clone(), k.created_ms))
            .collect())
    }

    /// Sets (`None`: removes) a user's identity policy; the caller validated it.
    pub async fn put_user_policy(
        &self,
        rid: Option<RequestKey>,
        user: String,
        policy: Option<String>,
    ) -> Result<(), NodeError> {
        crate::keys::applied(
            self.propose(rid, Command::PutUserPolicy { user, policy })
                .await?,
        )
    }

    /// A user as this node may serve it (see `ensure_serving`): every change
    /// acknowledged before is applied and settled.
    pub async fn user(&self, name: &str) -> Result<Option<arca_state::UserRecord>, NodeError> {
        self.ensure_serving().await?;
        let user = self.shared.read().state.users.get(name).cloned();
        if let Some(u) = &user {
            self.ensure_settled_index(u.revision).await?;
        }
        Ok(user)
    }

    /// A user's revision and, unless it is still `known`, its identity
    /// policy — what authorization needs per request, without a copy of
    /// what the caller holds. `None`: no such user.
    pub async fn user_policy(
        &self,
        name: &str,
        known: Option<u64>,
    ) -> Result<Option<(u64, Option<Option<String>>)>, NodeError> {
        self.ensure_serving().await?;
        self.user_policy_here(name, known).await
    }

    /// [`Self::user_policy`] from this node's own replica, however long it
    /// has been cut off from a leader: for `ClusterStatus`, which must answer
    /// an operator exactly when no leader does. It reveals no key and
    /// changes nothing.
    pub async fn user_policy_here(
        &self,
        name: &str,
        known: Option<u64>,
    ) -> Result<Option<(u64, Option<Option<String>>)>, NodeError> {
        let found = self.shared.read().state.users.get(name).map(|u| {
            (
                u.revision,
                (known != Some(u.revision)).then(|| u.policy.clone()),
            )
        });
        if let Some((revision, _)) = found {
            self.ensure_settled_index(revision).await?;
        }
        Ok(found)
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

impl From<PeerError> for NodeError {
    fn from(e: PeerError) -> Self {
        NodeError::Unavailable(e.to_string())
    }
}

/// The answer to a membership change: a change the cluster cannot make now
/// (another is in progress) is retriable; one it can never make (it would
/// leave no voter, or names a node that is not a learner) is the caller's
/// mistake; neither is an internal error.
fn membership_changed<T>(
    r: Result<T, RaftError<NodeId, ClientWriteError<NodeId, NodeInfo>>>,
) -> ForwardResponse {
    match r {
        Ok(_) => ForwardResponse::Done,
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
            ForwardResponse::NotLeader {
                leader: f.leader_id,
            }
        }
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => match e {
            ChangeMembershipError::InProgress(_) => ForwardResponse::Unavailable(format!(
                "{e}; retry when the membership change in progress is done"
            )),
            e => ForwardResponse::Refused(Rejection::Invalid(e.to_string())),
        },
        Err(e) => ForwardResponse::Failed(e.to_string()),
    }
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
