//! The node's background tasks (election watchdog, root key check, serving
//! leases, the leader's scheduler) and the write barrier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_state::{Command, Outcome, Rejection};
use openraft::ServerState;

use crate::lease::{BarrierRequest, BarrierResponse, LeaseRequest, LeaseResponse};
use crate::network::{PATH_BARRIER, PATH_LEASE};
use crate::types::NodeId;
use crate::{Node, NodeError};

/// A node that joined with another root key than the cluster's learns so when
/// the cluster's info is applied; it cannot serve anything, so it says so loudly
/// and stops taking part.
pub(crate) async fn root_key_watch(node: Arc<Node>) {
    let mut rx = node.shared.applied_index();
    loop {
        if let Some(c) = node.cluster_info() {
            if c.root_check_value != node.root.check_value() {
                tracing::error!(
                    "this node's root key is not the cluster's root key: it cannot unwrap any key material. \
                     Stop it and start it with the cluster's root_key_file."
                );
                node.shutdown.cancel();
                let _ = node.raft.shutdown().await;
            }
            return;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = node.shutdown.cancelled() => return,
        }
    }
}

/// Works around openraft 0.9's election livelock: each node draws its election
/// timeout once, so two followers that time out together can split the vote
/// forever. When this node has seen no leader for several election timeouts,
/// it waits a random part of one timeout and starts an election itself, which
/// moves it out of step with its twin.
pub(crate) async fn election_watchdog(node: Arc<Node>) {
    let mut rx = node.raft.metrics();
    let patience = node.election_max * 4;
    let mut leaderless_since: Option<Instant> = None;
    loop {
        let (leader, state, voter) = {
            let m = rx.borrow_and_update();
            let voter = m
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == node.id);
            (m.current_leader, m.state, voter)
        };
        if leader.is_some() || !voter || state == ServerState::Leader {
            leaderless_since = None;
        } else {
            let since = *leaderless_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= patience {
                let mut b = [0u8; 2];
                let _ = arca_crypto::random::fill(&mut b);
                let jitter =
                    node.election_max.as_millis() as u64 * u64::from(u16::from_le_bytes(b)) / 65536;
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(jitter)) => {}
                    _ = node.shutdown.cancelled() => return,
                }
                if rx.borrow().current_leader.is_none() {
                    tracing::info!(
                        node_id = node.id,
                        "no leader for a while: starting an election"
                    );
                    let _ = node.raft.trigger().elect().await;
                }
                leaderless_since = Some(Instant::now());
            }
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = tokio::time::sleep(node.election_max) => {}
            _ = node.shutdown.cancelled() => return,
        }
    }
}

impl Node {
    /// Whether this node may answer crypto requests now, from its replica
    /// (see [`crate::lease`]). A follower whose lease asks for a commit index it
    /// has not applied yet waits for it briefly.
    pub async fn ensure_serving(&self) -> Result<(), NodeError> {
        let (state, term, voters) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            // Voters matter only to a leader; followers skip the allocation.
            let voters: Vec<NodeId> = if m.state == ServerState::Leader {
                m.membership_config.membership().voter_ids().collect()
            } else {
                Vec::new()
            };
            (m.state, m.current_term, voters)
        };
        let now = Instant::now();
        if state == ServerState::Leader {
            if self.leases.leader_has_quorum(term, self.id, &voters, now) {
                return Ok(());
            }
            return Err(NodeError::Unavailable(
                "this node has lost contact with a quorum of the cluster; retry on another node"
                    .into(),
            ));
        }
        match self.leases.follower_commit(term, now) {
            Some(commit) => {
                self.wait_applied(commit, now + self.leases.bound() / 2).await
            }
            None => Err(NodeError::Unavailable(format!(
                "this node has not heard from the Raft leader within {} ms, so its key state may be stale; retry",
                self.leases.bound().as_millis()
            ))),
        }
    }

    /// Answers a follower's lease request (peer port).
    pub async fn grant_lease(&self, req: LeaseRequest) -> LeaseResponse {
        let (state, term, voters, member) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let voters: Vec<NodeId> = membership.voter_ids().collect();
            let member = membership.get_node(&req.node_id).is_some();
            (m.state, m.current_term, voters, member)
        };
        let now = Instant::now();
        // A node removed from the cluster gets no lease, so it stops serving.
        if state != ServerState::Leader
            || !member
            || req.term != term
            || !self.leases.leader_has_quorum(term, self.id, &voters, now)
        {
            return LeaseResponse::Refused;
        }
        let commit = self
            .raft
            .with_raft_state(|s| s.committed.map(|c| c.index).unwrap_or(0))
            .await
            .unwrap_or(0);
        self.leases
            .record_grant(term, req.node_id, req.held_commit, now);
        LeaseResponse::Granted {
            term,
            commit_index: commit,
        }
    }

    /// Answers the leader's barrier (peer port): waits briefly to apply `index`.
    pub async fn barrier_reply(&self, req: BarrierRequest) -> BarrierResponse {
        let _ = self
            .wait_applied(req.index, Instant::now() + Duration::from_millis(500))
            .await;
        BarrierResponse {
            applied: *self.shared.applied_index().borrow(),
        }
    }
}

/// Followers pull a serving lease from the leader every `bound / 4`.
pub(crate) async fn lease_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(node.leases.pull_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = node.shutdown.cancelled() => return,
        }
        let (state, term, leader) = {
            let m = node.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_term, m.current_leader)
        };
        if state == ServerState::Leader {
            node.leases.note_leading(term, Instant::now());
            continue;
        }
        let Some(leader) = leader.filter(|l| *l != node.id) else {
            continue;
        };
        let Some(info) = node.leader_info(leader) else {
            continue;
        };
        let sent = Instant::now();
        let req = LeaseRequest {
            node_id: node.id,
            term,
            held_commit: node.leases.held_commit(term),
        };
        let timeout = node.leases.pull_interval();
        match node
            .peers
            .call::<_, LeaseResponse>(&info.peer_addr, PATH_LEASE, &req, timeout)
            .await
        {
            Ok(LeaseResponse::Granted {
                term: t,
                commit_index,
            }) if t == term => {
                node.leases.hold(t, commit_index, sent);
            }
            Ok(_) => {}
            Err(e) => tracing::debug!(error = %e, "lease request failed"),
        }
    }
}

/// Called by the leader after a write at `index` is applied here: returns once
/// every other member has applied it or can no longer be serving (its lease
/// from this leader has run out). Bounded by `Leases::max_barrier_wait`.
pub(crate) async fn barrier(node: &Node, index: u64) {
    let (term, members) = {
        let m = node.raft.metrics();
        let m = m.borrow();
        let members: Vec<(NodeId, String)> = m
            .membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != node.id)
            .map(|(id, n)| (*id, n.peer_addr.clone()))
            .collect();
        (m.current_term, members)
    };
    if members.is_empty() {
        return;
    }
    let deadline = Instant::now() + node.leases.max_barrier_wait();
    let waits = members.into_iter().map(|(id, addr)| async move {
        loop {
            let now = Instant::now();
            if node.leases.out_of_lease(term, id, now)
                || node.leases.holds_at_least(term, id, index, now)
            {
                return;
            }
            if now >= deadline {
                tracing::warn!(
                    node_id = id,
                    index,
                    "write barrier gave up waiting for a member"
                );
                return;
            }
            let left = deadline
                .saturating_duration_since(now)
                .min(Duration::from_millis(600));
            match node
                .peers
                .call::<_, BarrierResponse>(&addr, PATH_BARRIER, &BarrierRequest { index }, left)
                .await
            {
                Ok(r) if r.applied >= index => return,
                Ok(_) => {}
                // Unreachable: try again shortly, or until its lease runs out.
                Err(_) => {
                    let pause = Duration::from_millis(50)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                }
            }
        }
    });
    futures_join_all(waits).await;
}

/// Runs futures concurrently and waits for all of them.
async fn futures_join_all<F: std::future::Future<Output = ()>>(futs: impl Iterator<Item = F>) {
    let mut pending: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    std::future::poll_fn(|cx| {
        pending.retain_mut(|f| f.as_mut().poll(cx).is_pending());
        if pending.is_empty() {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    })
    .await
}

/// The leader proposes deletions whose date has passed and automatic
/// rotations that are due, every `scheduler_interval`.
pub(crate) async fn scheduler_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(node.scheduler_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = node.shutdown.cancelled() => return,
        }
        if node.raft.metrics().borrow().state != ServerState::Leader {
            continue;
        }
        let now = node.now_ms();
        let (deletions, rotations) = {
            let a = node.shared.read();
            (a.state.due_deletions(now), a.state.due_rotations(now))
        };
        for key_id in deletions {
            match node
                .propose(
                    None,
                    Command::DeleteKey {
                        key_id,
                        now_ms: now,
                    },
                )
                .await
            {
                Ok(Outcome::Applied) => {
                    tracing::info!(key_id = %key_id, "key deleted: its deletion date passed")
                }
                Ok(Outcome::Rejected(Rejection::NotDue(_) | Rejection::NotFound(_))) => {}
                Ok(Outcome::Rejected(r)) => {
                    tracing::warn!(key_id = %key_id, reason = %r, "scheduled deletion refused")
                }
                Err(e) => {
                    tracing::warn!(key_id = %key_id, error = %e, "scheduled deletion failed; will retry")
                }
            }
        }
        for key_id in rotations {
            let next = match node.shared.read().state.keys.get(&key_id) {
                Some(k) => k.primary().version + 1,
                None => continue,
            };
            let version = match node
                .new_version(&key_id, arca_state::KeySpec::SymmetricDefault, next, now)
                .await
            {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(key_id = %key_id, error = %e, "cannot make new key material");
                    continue;
                }
            };
            let cmd = Command::RotateKey {
                key_id,
                version,
                on_demand: false,
                now_ms: now,
            };
            match node.propose(None, cmd).await {
                Ok(Outcome::Applied) => {
                    tracing::info!(key_id = %key_id, version = next, "key rotated automatically")
                }
                Ok(Outcome::Rejected(Rejection::NotDue(_) | Rejection::NotFound(_))) => {}
                Ok(Outcome::Rejected(r)) => {
                    tracing::warn!(key_id = %key_id, reason = %r, "automatic rotation refused")
                }
                Err(e) => {
                    tracing::warn!(key_id = %key_id, error = %e, "automatic rotation failed; will retry")
                }
            }
        }
    }
}
