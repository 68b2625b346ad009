//! The node's background tasks (election watchdog, root key check, serving
//! leases, the leader's scheduler) and the write barrier.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_state::{Command, Outcome, Rejection};
use openraft::ServerState;

use crate::lease::{
    BarrierRequest, BarrierResponse, ConfirmRequest, ConfirmResponse, LeaseRequest, LeaseResponse,
    NotServing,
};
use crate::network::{PATH_BARRIER, PATH_CONFIRM, PATH_LEASE};
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
    /// Whether this node may answer requests now, from its replica (see
    /// [`crate::lease`]). A node whose lease or read floor asks for an index
    /// it has not applied yet waits for it briefly.
    pub async fn ensure_serving(&self) -> Result<(), NodeError> {
        let now = Instant::now();
        let (state, term, leader) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let leader = (m.state == ServerState::Leader).then(|| {
                self.leases.leader_floor(
                    m.current_term,
                    self.id,
                    m.membership_config.membership().get_joint_config(),
                    now,
                )
            });
            (m.state, m.current_term, leader)
        };
        let floor = match leader {
            Some(Ok(floor)) => floor,
            Some(Err(why)) => {
                return Err(NodeError::Unavailable(format!(
                    "this node leads term {term} but {}; retry",
                    match why {
                        NotServing::NotLeading | NotServing::NoQuorum =>
                            "cannot prove that a quorum still follows it",
                        NotServing::NoReadFloor => "has not yet applied an entry committed in its term",
                    }
                )))
            }
            None => match self.leases.follower_commit(term, now) {
                Some(commit) => commit,
                None => {
                    return Err(NodeError::Unavailable(format!(
                        "this node ({state:?}) has not heard from the Raft leader within {} ms, so its key state may be stale; retry",
                        self.leases.bound().as_millis()
                    )))
                }
            },
        };
        self.wait_applied(floor, now + self.leases.bound() / 2)
            .await
    }

    /// Answers a follower's lease request (peer port).
    pub async fn grant_lease(&self, req: LeaseRequest) -> LeaseResponse {
        let now = Instant::now();
        let may_grant = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            // A node removed from the cluster gets no lease, so it stops serving.
            m.state == ServerState::Leader
                && req.term == m.current_term
                && membership.get_node(&req.node_id).is_some()
                && self
                    .leases
                    .leader_floor(req.term, self.id, membership.get_joint_config(), now)
                    .is_ok()
        };
        if !may_grant {
            return LeaseResponse::Refused;
        }
        let commit = self
            .raft
            .with_raft_state(|s| s.committed.map(|c| c.index).unwrap_or(0))
            .await
            .unwrap_or(0);
        self.leases
            .record_grant(req.term, req.node_id, req.held_commit, now);
        LeaseResponse::Granted {
            term: req.term,
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

    /// Answers a leader's confirmation request (peer port) with this node's
    /// term. The term comes from the durable vote, so it never goes back.
    pub fn confirm_reply(&self, _req: ConfirmRequest) -> ConfirmResponse {
        ConfirmResponse {
            term: self.raft.metrics().borrow().current_term,
        }
    }

    /// Sets the read floor of `term` once an entry of `term` is committed and
    /// applied here.
    async fn try_read_floor(&self, term: u64) {
        let committed = self
            .raft
            .with_raft_state(|s| s.committed)
            .await
            .ok()
            .flatten();
        if let Some(c) = committed.filter(|c| c.leader_id.term == term) {
            if *self.shared.applied_index().borrow() >= c.index {
                self.leases.set_floor(term, c.index);
            }
        }
    }

    /// One confirmation round of `term`: asks every other voter for its term
    /// and records, per voter that is still in `term` (or older), the time
    /// this round was sent.
    async fn confirm_round(&self, term: u64) {
        let targets: Vec<(NodeId, String)> = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            membership
                .voter_ids()
                .filter(|v| *v != self.id)
                .filter_map(|v| membership.get_node(&v).map(|n| (v, n.peer_addr.clone())))
                .collect()
        };
        let sent = Instant::now();
        let timeout = self.leases.confirm_interval();
        let req = ConfirmRequest { term };
        let calls = targets.into_iter().map(|(id, addr)| {
            let req = req.clone();
            async move {
                match self
                    .peers
                    .call::<_, ConfirmResponse>(&addr, PATH_CONFIRM, &req, timeout)
                    .await
                {
                    Ok(r) if r.term <= term => self.leases.record_confirmed(term, id, sent),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::debug!(node_id = id, error = %e, "leadership confirmation failed")
                    }
                }
            }
        });
        futures_join_all(calls).await;
    }
}

/// The leader's side of the leases: notices when this node becomes leader of
/// a term (the only event that starts a term's lease bookkeeping), sets its
/// read floor, and runs a confirmation round every `bound / 8` while it
/// leads.
pub(crate) async fn leader_loop(node: Arc<Node>) {
    let mut rx = node.raft.metrics();
    loop {
        let (state, term) = {
            let m = rx.borrow_and_update();
            (m.state, m.current_term)
        };
        if state != ServerState::Leader {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = node.shutdown.cancelled() => return,
            }
            continue;
        }
        let round = Instant::now();
        node.leases.begin_leading(term, round);
        node.confirm_round(term).await;
        let next = round + node.leases.confirm_interval();
        // Until the floor is set (right after an election), look often.
        while !node.leases.has_floor(term) && Instant::now() < next {
            node.try_read_floor(term).await;
            if node.leases.has_floor(term) {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                _ = node.shutdown.cancelled() => return,
            }
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = node.shutdown.cancelled() => return,
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

/// Called by the leader of `term` after a write at `index` is applied here:
/// returns once every other member has applied it, or reported a lease that
/// names it, or provably holds no lease that lets it serve older state.
/// When that cannot be proven within `Leases::max_barrier_wait`, the write
/// is not acknowledged: the error is retriable, and a retry with the same
/// request id returns the write's outcome once the barrier passes.
pub(crate) async fn barrier(node: &Node, term: u64, index: u64) -> Result<(), NodeError> {
    let members: Vec<(NodeId, String)> = {
        let m = node.raft.metrics();
        let m = m.borrow();
        m.membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != node.id)
            .map(|(id, n)| (*id, n.peer_addr.clone()))
            .collect()
    };
    let deadline = Instant::now() + node.leases.max_barrier_wait();
    let waits = members.into_iter().map(|(id, addr)| async move {
        loop {
            let now = Instant::now();
            if node.leases.out_of_lease(term, id, now)
                || node.leases.holds_at_least(term, id, index)
            {
                return Ok(());
            }
            if now >= deadline {
                tracing::warn!(
                    node_id = id,
                    index,
                    "write barrier: cannot prove a member has the write or is out of lease; the write is not acknowledged"
                );
                return Err(id);
            }
            let left = deadline
                .saturating_duration_since(now)
                .min(Duration::from_millis(600));
            match node
                .peers
                .call::<_, BarrierResponse>(&addr, PATH_BARRIER, &BarrierRequest { index }, left)
                .await
            {
                Ok(r) if r.applied >= index => return Ok(()),
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
    let failed: Vec<NodeId> = futures_join_all(waits)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(NodeError::Unavailable(format!(
            "the write was committed, but nodes {failed:?} could not be shown to have it in time; retry with the same request to get its outcome"
        )))
    }
}

/// Runs futures concurrently and returns their outputs, in order.
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Option<std::pin::Pin<Box<F>>>> = futs.map(|f| Some(Box::pin(f))).collect();
    let mut out: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut busy = false;
        for (slot, done) in pending.iter_mut().zip(out.iter_mut()) {
            if let Some(f) = slot {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => {
                        *done = Some(v);
                        *slot = None;
                    }
                    std::task::Poll::Pending => busy = true,
                }
            }
        }
        if busy {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
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
