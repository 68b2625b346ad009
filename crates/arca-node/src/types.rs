//! The Raft type configuration and the messages nodes exchange.

use arca_crypto::wrap::RootKeyId;
use arca_state::{Outcome, Proposal, RootKeyStatus};
use serde::{Deserialize, Serialize};

pub type NodeId = u64;

/// How to reach a node: its client API and its peer (Raft) address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    pub api_addr: String,
    pub peer_addr: String,
}

impl std::fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "api={} peer={}", self.api_addr, self.peer_addr)
    }
}

openraft::declare_raft_types!(
    pub TypeConfig:
        D = Proposal,
        R = Outcome,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type LogId = openraft::LogId<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, NodeInfo>;
pub type Snapshot = openraft::Snapshot<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Vote = openraft::Vote<NodeId>;

/// A request a node sends to the leader on behalf of a client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardRequest {
    /// Propose a command.
    Write(Box<Proposal>),
    /// Confirm leadership with a quorum and return the index a reader must
    /// have applied to see every write acknowledged so far.
    ReadIndex,
    AddNode {
        node_id: NodeId,
        info: NodeInfo,
    },
    RemoveNode {
        node_id: NodeId,
    },
    Status,
    /// Which root keys the receiving node holds (any node answers).
    HeldRootKeys,
    /// Begin a root-key rotation to this key, once every voter holds it.
    BeginRootKeyRotation {
        to: RootKeyId,
    },
}

/// The leader's answer to a [`ForwardRequest`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardResponse {
    Written {
        outcome: Outcome,
        log_index: u64,
    },
    ReadIndex(u64),
    Done,
    Status(ClusterStatus),
    HeldRootKeys(Vec<RootKeyId>),
    /// The request was refused, with the reason a client is told.
    Refused(arca_state::Rejection),
    /// The request reached a node that is not (or no longer) the leader.
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The leader cannot complete the request now (e.g. a write committed
    /// but not yet provably visible everywhere); retriable.
    Unavailable(String),
    Failed(String),
}

/// The cluster as a node sees it (the leader's view is the complete one).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClusterStatus {
    /// The node that answered.
    pub node_id: NodeId,
    pub leader: Option<NodeId>,
    pub term: u64,
    pub commit_index: Option<u64>,
    pub applied_index: Option<u64>,
    pub last_log_index: Option<u64>,
    pub members: Vec<MemberStatus>,
    /// The root keys the answering node holds.
    #[serde(default)]
    pub held_root_keys: Vec<RootKeyId>,
    /// The root key in use and a rotation's progress, by the answering
    /// node's replica (none before the cluster is initialized).
    #[serde(default)]
    pub root_keys: Option<RootKeyStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberStatus {
    pub node_id: NodeId,
    pub api_addr: String,
    pub peer_addr: String,
    /// A voter, or a learner still catching up.
    pub voter: bool,
    /// The last log index the leader knows this node holds (leader's view only).
    pub matched_index: Option<u64>,
    /// Entries this node is behind the leader's log (leader's view only).
    pub lag: Option<u64>,
    /// Milliseconds since the leader last heard from it (leader's view only).
    #[serde(default)]
    pub last_contact_ms: Option<u64>,
    /// Heard from within the stale bound (leader's view only).
    #[serde(default)]
    pub reachable: Option<bool>,
    /// The root keys it holds (leader's view only; none if it did not answer).
    #[serde(default)]
    pub root_key_ids: Option<Vec<RootKeyId>>,
}
