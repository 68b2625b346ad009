//! The write path: a proposal goes to the leader (forwarded from a
//! follower over the peer port), is appended, applied and settled, and its
//! outcome comes back to the node that took the request.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_state::{Command, Outcome, Proposal, Rejection, RequestKey};
use openraft::error::{ClientWriteError, RaftError};
use openraft::ChangeMembers;

use crate::batch::WriteError;
use crate::membership::membership_changed;
use crate::network::PeerError;
use crate::serving;
use crate::types::{ForwardRequest, ForwardResponse, NodeId, NodeInfo};
use crate::{Node, NodeError};

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

impl Node {
    /// Has `observer` called with every write another node forwards to this
    /// one (the gateway audits them).
    pub fn set_forward_observer(&self, observer: ForwardObserver) {
        *self
            .forward_observer
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(observer);
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

    pub(crate) async fn on_leader_until(
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
                        match serving::barrier(self, r.log_id.leader_id.term, r.log_id.index).await
                        {
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
}

impl From<PeerError> for NodeError {
    fn from(e: PeerError) -> Self {
        NodeError::Unavailable(e.to_string())
    }
}
