//! Membership: forming a cluster, adding and removing members, and a node
//! learning that it was removed.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arca_state::{ClusterInfo, Command, Rejection};
use futures::future::join_all;
use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};

use crate::credentials;
use crate::lease::{LeaseRequest, LeaseResponse};
use crate::network::PATH_LEASE;
use crate::types::{ForwardRequest, ForwardResponse, NodeId, NodeInfo};
use crate::users::NewAccessKey;
use crate::{Node, NodeError};

impl Node {
    /// The members of `membership` other than this node, with their peer
    /// addresses.
    pub(crate) fn others(
        &self,
        membership: &openraft::Membership<NodeId, NodeInfo>,
    ) -> Vec<(NodeId, String)> {
        membership
            .nodes()
            .filter(|(id, _)| **id != self.id)
            .map(|(id, n)| (*id, n.peer_addr.clone()))
            .collect()
    }

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
}

/// The answer to a membership change: a change the cluster cannot make now
/// (another is in progress) is retriable; one it can never make (it would
/// leave no voter, or names a node that is not a learner) is the caller's
/// mistake; neither is an internal error.
pub(crate) fn membership_changed<T>(
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

/// Asks every other member for a lease, as a node that has lost its leader
/// does before it campaigns: a leader that no longer counts this node among
/// its members says so. Returns whether this node was removed.
pub(crate) async fn removed_from_cluster(node: &Arc<Node>) -> bool {
    let (term, targets): (u64, Vec<(NodeId, String)>) = {
        let m = node.raft.metrics();
        let m = m.borrow();
        let targets = node.others(m.membership_config.membership());
        (m.current_term, targets)
    };
    let req = LeaseRequest {
        node_id: node.id,
        term,
        held_commit: 0,
    };
    let timeout = node.leases.confirm_interval();
    let calls = targets.iter().map(|(id, addr)| {
        node.peers
            .call::<_, LeaseResponse>(*id, addr, PATH_LEASE, &req, timeout)
    });
    let removed = join_all(calls)
        .await
        .into_iter()
        .any(|r| matches!(r, Ok(LeaseResponse::NotAMember)));
    if removed {
        node.mark_removed();
    }
    removed
}
