//! Whether this node may serve reads from its replica: the leader's read
//! floor and confirmation rounds, followers' leases, the write barrier, and
//! the settled index (docs/ARCHITECTURE.md, "Reads").

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use openraft::ServerState;

use crate::counters::{Counters, ServingState};
use crate::lease::{
    BarrierRequest, BarrierResponse, ConfirmRequest, ConfirmResponse, LeaseRequest, LeaseResponse,
    NotServing, QuietRequest, QuietResponse, SettledNotice,
};
use crate::network::{PATH_BARRIER, PATH_CONFIRM, PATH_LEASE, PATH_QUIET, PATH_SETTLED};
use crate::types::NodeId;
use crate::{Node, NodeError};

/// Why a node may not serve: as a leader of a term, or without a lease.
enum Why {
    Leader(NotServing, u64),
    NoLease(ServerState),
}

impl Node {
    /// Whether this node may answer requests from its replica (see
    /// [`crate::lease`]). A node without a lease waits up to one stale bound
    /// for one — during a failover the new leader's first grant usually
    /// comes within it, so a client sees a slower answer, not a refusal —
    /// and a node whose lease or read floor names an index it has not
    /// applied yet waits for that briefly.
    pub async fn ensure_serving(&self) -> Result<(), NodeError> {
        // The usual case, with nothing to register or wait for.
        if let Ok(floor) = self.serving_floor(Instant::now()) {
            if self.shared.applied() >= floor {
                return Ok(());
            }
        }
        let deadline = tokio::time::Instant::now() + self.leases.bound();
        loop {
            let changed = self.leases.changed().notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let now = Instant::now();
            match self.serving_floor(now) {
                Ok(floor) => {
                    return self
                        .wait_applied(floor, now + self.leases.bound() / 2)
                        .await
                }
                Err(e) if self.is_removed() || self.shutdown.is_cancelled() => return Err(e),
                Err(e) => {
                    tokio::select! {
                        _ = changed => {}
                        _ = tokio::time::sleep_until(deadline) => return Err(e),
                        _ = self.shutdown.cancelled() => return Err(e),
                    }
                }
            }
        }
    }

    /// Like [`Self::ensure_serving`], without waiting for a lease (`/ready`
    /// reports the state as it is).
    pub(crate) async fn serving_now(&self) -> Result<(), NodeError> {
        let now = Instant::now();
        let floor = self.serving_floor(now)?;
        self.wait_applied(floor, now + self.leases.bound() / 2)
            .await
    }

    /// Whether this node serves now, or why not (`arca_serving_state`).
    /// Looks, never waits.
    pub(crate) fn serving_state(&self) -> ServingState {
        if self.is_removed() {
            return ServingState::Removed;
        }
        match self.floor_or_why(Instant::now()) {
            Ok(floor) if self.shared.applied() >= floor => ServingState::Serving,
            Ok(_) => ServingState::CatchingUp,
            Err(Why::Leader(NotServing::NoReadFloor, _)) => ServingState::LeaderNoReadFloor,
            Err(Why::Leader(_, _)) => ServingState::LeaderNoQuorum,
            Err(Why::NoLease(_)) => ServingState::NoLease,
        }
    }

    /// The index this node must have applied to serve at `now`, if its lease,
    /// evidence or a deposed leader's evidence lets it serve at all.
    fn serving_floor(&self, now: Instant) -> Result<u64, NodeError> {
        self.floor_or_why(now).map_err(|why| match why {
            Why::Leader(why, term) => NodeError::Unavailable(format!(
                "this node leads term {term} but {}; retry",
                match why {
                    NotServing::NotLeading | NotServing::NoQuorum => {
                        "cannot prove that a quorum still follows it"
                    }
                    NotServing::NoReadFloor => {
                        "has not yet applied an entry committed in its term"
                    }
                }
            )),
            Why::NoLease(state) => NodeError::Unavailable(format!(
                "this node ({state:?}) has not heard from the Raft leader within {} ms, so its key state may be stale; retry",
                self.leases.bound().as_millis()
            )),
        })
    }

    fn floor_or_why(&self, now: Instant) -> Result<u64, Why> {
        let (state, term, leader, as_follower) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let configs = m.membership_config.membership().get_joint_config();
            let leader = (m.state == ServerState::Leader).then(|| {
                self.leases
                    .leader_floor(m.current_term, self.id, configs, now)
            });
            // A follower serves on its lease, or — a deposed leader — on its
            // old evidence, which bounds newer leaders too (looked at only
            // when there is no lease).
            let as_follower = if m.state == ServerState::Leader {
                None
            } else {
                self.leases
                    .follower_commit(m.current_term, now)
                    .or_else(|| {
                        self.leases
                            .former_leader_floor(m.current_term, self.id, configs, now)
                    })
            };
            (m.state, m.current_term, leader, as_follower)
        };
        let floor = match leader {
            Some(Ok((floor, _))) => floor,
            // Newly elected, before its evidence or read floor: a lease it
            // still holds from the previous leader lets it serve meanwhile.
            Some(Err(why)) => match self.leases.follower_commit(term, now) {
                Some(commit) => commit,
                None => return Err(Why::Leader(why, term)),
            },
            None => match as_follower {
                Some(commit) => commit,
                None => return Err(Why::NoLease(state)),
            },
        };
        Ok(floor)
    }

    /// Answers a follower's lease request (peer port).
    pub async fn grant_lease(&self, req: LeaseRequest) -> LeaseResponse {
        let now = Instant::now();
        let (term, valid) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            if m.state != ServerState::Leader {
                return LeaseResponse::Refused;
            }
            let evidence = self.leases.leader_floor(
                m.current_term,
                self.id,
                membership.get_joint_config(),
                now,
            );
            let valid = if membership.get_node(&req.node_id).is_none() {
                if evidence.is_err() {
                    return LeaseResponse::Refused;
                }
                None
            } else {
                if req.term != m.current_term {
                    return LeaseResponse::Refused;
                }
                match evidence {
                    // No lease outlives the leader's own evidence.
                    Ok((_, left)) => Some(left.min(self.leases.bound())),
                    Err(_) => return LeaseResponse::Refused,
                }
            };
            (m.current_term, valid)
        };
        let Some(valid) = valid else {
            return self.not_a_member(req.node_id, term).await;
        };
        let commit = self
            .raft
            .with_raft_state(|s| s.committed.map(|c| c.index).unwrap_or(0))
            .await
            .unwrap_or(0);
        self.leases
            .record_grant(req.term, req.node_id, req.held_commit, now, valid);
        LeaseResponse::Granted {
            term: req.term,
            commit_index: commit,
            safe_index: self.shared.safe_index(),
            valid_ms: valid.as_millis() as u64,
        }
    }

    /// The answer to a lease request from `node_id`, which this leader's
    /// metrics do not count as a member. A node the leader does not count as
    /// a member was removed: it is told so, and stops taking part for good.
    /// The metrics alone cannot say so: openraft publishes them between
    /// batches of messages, so under load they can lag the core by a whole
    /// batch — a node added a moment ago is then missing from them although
    /// the core already replicates to it, and a learner told `NotAMember`
    /// on their word stopped its Raft before it could be promoted. The
    /// core's own latest membership decides, while the core still leads in
    /// `term` (the metrics' leadership may be as old as their membership);
    /// otherwise the request is refused (the follower asks again within
    /// 20 ms).
    async fn not_a_member(&self, node_id: NodeId, term: u64) -> LeaseResponse {
        let me = self.id;
        let member = self
            .raft
            .with_raft_state(move |s| {
                let vote = s.vote_ref();
                let leads = s.server_state == ServerState::Leader
                    && vote.is_committed()
                    && vote.leader_id().voted_for() == Some(me)
                    && vote.leader_id().get_term() == term;
                !leads
                    || s.membership_state
                        .effective()
                        .membership()
                        .get_node(&node_id)
                        .is_some()
            })
            .await;
        match member {
            Ok(false) => LeaseResponse::NotAMember,
            Ok(true) => {
                tracing::debug!(
                    node_id,
                    "lease request from a member the published metrics do not list yet"
                );
                LeaseResponse::Refused
            }
            Err(_) => LeaseResponse::Refused,
        }
    }

    /// Answers the leader's barrier (peer port): waits briefly to apply `index`.
    pub async fn barrier_reply(&self, req: BarrierRequest) -> BarrierResponse {
        self.shared.raise_safe(req.safe_index);
        let _ = self
            .wait_applied(req.index, Instant::now() + Duration::from_millis(500))
            .await;
        BarrierResponse {
            applied: *self.shared.applied_index().borrow(),
        }
    }

    /// Answers a leader's confirmation request (peer port) with this node's
    /// term. The term comes from the durable vote, so it never goes back.
    pub fn confirm_reply(&self, req: ConfirmRequest) -> ConfirmResponse {
        let term = self.raft.metrics().borrow().current_term;
        if term <= req.term {
            self.leases.note_answered(req.term, Instant::now());
        }
        ConfirmResponse { term }
    }

    /// Answers a new leader's quiet request (peer port).
    pub fn quiet_reply(&self, req: QuietRequest) -> QuietResponse {
        let term = self.raft.metrics().borrow().current_term;
        let since = self.leases.quiet_since(req.term);
        QuietResponse {
            term,
            quiet_ms: since.elapsed().as_millis() as u64,
        }
    }

    /// After an election won in this process: asks every voter how long ago
    /// it last confirmed an older term, until a quorum has answered from a
    /// term at least `term` (or this node no longer leads it).
    async fn quiet_round(&self, term: u64) {
        let deadline = Instant::now() + self.leases.bound() * 2;
        while Instant::now() < deadline && !self.leases.old_end_known(term) {
            let (leading, configs, targets) = {
                let m = self.raft.metrics();
                let m = m.borrow();
                let membership = m.membership_config.membership();
                let targets: Vec<(NodeId, String)> = membership
                    .voter_ids()
                    .filter(|v| *v != self.id)
                    .filter_map(|v| membership.get_node(&v).map(|n| (v, n.peer_addr.clone())))
                    .collect();
                (
                    m.state == ServerState::Leader && m.current_term == term,
                    membership.get_joint_config().clone(),
                    targets,
                )
            };
            if !leading {
                return;
            }
            self.leases
                .record_quiet(term, self.id, self.leases.quiet_since(term), &configs);
            let timeout = self.leases.confirm_interval();
            let calls = targets.into_iter().map(|(id, addr)| {
                let configs = &configs;
                async move {
                    if let Ok(r) = self
                        .peers
                        .call::<_, QuietResponse>(
                            id,
                            &addr,
                            PATH_QUIET,
                            &QuietRequest { term },
                            timeout,
                        )
                        .await
                    {
                        if r.term >= term {
                            // Received now, so the voter's confirmation was
                            // at least quiet_ms ago (less a drift margin).
                            let ago = Duration::from_millis(r.quiet_ms - r.quiet_ms / 50);
                            let latest = Instant::now()
                                .checked_sub(ago)
                                .unwrap_or(self.leases.started());
                            self.leases.record_quiet(term, id, latest, configs);
                        }
                    }
                }
            });
            join_all(calls).await;
            if !self.leases.old_end_known(term) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// The leader's notice of its settled index (peer port).
    pub fn settled_notice(&self, n: SettledNotice) {
        self.shared.raise_safe(n.index);
    }

    /// Waits until the last change of `key_id` is settled here, so that no
    /// node can still serve the key's state from before it. A key this node
    /// does not hold has nothing to wait for.
    pub(crate) async fn ensure_settled(&self, key_id: &arca_state::KeyId) -> Result<(), NodeError> {
        let revision = match self.shared.read().state.keys.get(key_id) {
            Some(k) => k.revision,
            None => return Ok(()),
        };
        self.ensure_settled_index(revision).await.map_err(|_| {
            NodeError::Unavailable(format!(
                "Key '{key_id}' is being changed and the change is not yet settled on every node; retry"
            ))
        })
    }

    /// Waits until the change at log index `revision` is settled here.
    pub(crate) async fn ensure_settled_index(&self, revision: u64) -> Result<(), NodeError> {
        if self.shared.safe_index() >= revision {
            return Ok(());
        }
        let mut rx = self.shared.safe_watch();
        let settled =
            tokio::time::timeout(self.leases.settle_wait(), rx.wait_for(|s| *s >= revision))
                .await
                .is_ok_and(|r| r.is_ok());
        match settled {
            true => Ok(()),
            false => Err(NodeError::Unavailable(
                "a change is not yet settled on every node; retry".into(),
            )),
        }
    }

    /// Sets the read floor of `term` as soon as an entry of `term` is
    /// committed and applied here (right after an election: the leader's
    /// blank entry), looking again at every applied entry; gives up when this
    /// node stops leading the term.
    async fn find_read_floor(&self, term: u64) {
        let mut applied = self.shared.applied_index();
        while !self.leases.has_floor(term) {
            let leading = {
                let m = self.raft.metrics();
                let m = m.borrow();
                m.state == ServerState::Leader && m.current_term == term
            };
            if !leading {
                return;
            }
            let committed = self
                .raft
                .with_raft_state(|s| s.committed)
                .await
                .ok()
                .flatten();
            if let Some(c) = committed.filter(|c| c.leader_id.term == term) {
                if *applied.borrow_and_update() >= c.index {
                    self.leases.set_floor(term, c.index);
                    return;
                }
            }
            tokio::select! {
                _ = applied.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                _ = self.shutdown.cancelled() => return,
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
                    .call::<_, ConfirmResponse>(id, &addr, PATH_CONFIRM, &req, timeout)
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
        join_all(calls).await;
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
        // A term newer than the vote this process started with was won by an
        // election here; an equal one may have been restored at start-up.
        let elected = term > node.startup_term;
        if node.leases.begin_leading(term, elected, round) {
            let n = node.clone();
            tokio::spawn(async move { n.find_read_floor(term).await });
            if elected {
                let n = node.clone();
                tokio::spawn(async move { n.quiet_round(term).await });
            }
        }
        node.confirm_round(term).await;
        let next = round + node.leases.confirm_interval();
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            _ = node.shutdown.cancelled() => return,
        }
    }
}

/// Followers pull a serving lease from the leader every `bound / 4` — at
/// once when the leader or term changes, and again within 20 ms when a pull
/// fails (a new leader refuses until it has evidence and its read floor), so
/// that a failover leaves as short a gap between leases as it can.
pub(crate) async fn lease_loop(node: Arc<Node>) {
    let mut rx = node.raft.metrics();
    let mut next = Instant::now();
    let mut seen: (u64, Option<NodeId>) = (0, None);
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            r = rx.changed() => {
                if r.is_err() {
                    return;
                }
                let now = {
                    let m = rx.borrow_and_update();
                    (m.current_term, m.current_leader)
                };
                if now == seen {
                    continue;
                }
            }
            _ = node.shutdown.cancelled() => return,
        }
        let (state, term, leader) = {
            let m = rx.borrow_and_update();
            (m.state, m.current_term, m.current_leader)
        };
        seen = (term, leader);
        next = Instant::now() + node.leases.pull_interval();
        if state == ServerState::Leader {
            continue;
        }
        let Some((leader, info)) = leader
            .filter(|l| *l != node.id)
            .and_then(|l| node.leader_info(l).map(|i| (l, i)))
        else {
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
            .call::<_, LeaseResponse>(leader, &info.peer_addr, PATH_LEASE, &req, timeout)
            .await
        {
            Ok(LeaseResponse::Granted {
                term: t,
                commit_index,
                safe_index,
                valid_ms,
            }) if t == term => {
                node.leases
                    .hold(t, commit_index, sent, Duration::from_millis(valid_ms));
                node.shared.raise_safe(safe_index);
                next = sent + node.leases.pull_interval();
            }
            Ok(LeaseResponse::NotAMember) => {
                node.mark_removed();
                return;
            }
            Ok(_) => next = Instant::now() + Duration::from_millis(20),
            Err(e) => {
                tracing::debug!(error = %e, "lease request failed");
                next = Instant::now() + Duration::from_millis(20);
            }
        }
    }
}

/// Called by the leader of `term` after a write at `index` is applied here:
/// returns once every other member has applied it, or reported a lease that
/// names it, or provably holds no lease that lets it serve older state —
/// and every node no longer a member that holds a lease this leader granted
/// (a node just removed gets no more entries) has seen it run out.
/// When that cannot be proven within `Leases::max_barrier_wait`, the write
/// is not acknowledged: the error is retriable, and a retry with the same
/// request id returns the write's outcome once the barrier passes.
pub(crate) async fn barrier(node: &Node, term: u64, index: u64) -> Result<(), NodeError> {
    let started = Instant::now();
    let r = barrier_wait(node, term, index).await;
    let c = &node.counters;
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    c.barrier_wait_us
        .fetch_add(us, std::sync::atomic::Ordering::Relaxed);
    Counters::bump(if r.is_ok() {
        &c.barriers_passed
    } else {
        &c.barriers_failed
    });
    r
}

async fn barrier_wait(node: &Node, term: u64, index: u64) -> Result<(), NodeError> {
    let members = node.others(node.raft.metrics().borrow().membership_config.membership());
    let deadline = Instant::now() + node.leases.max_barrier_wait();
    let proven = |id: NodeId| {
        node.leases.out_of_lease(term, id, Instant::now())
            || node.leases.holds_at_least(term, id, index)
    };
    // Removed nodes still holding a lease: they are sent no more entries,
    // so only the end of their lease (at most `drift(bound)` after their
    // last grant, within `max_barrier_wait`) proves they serve nothing
    // older than this write.
    let removed: Vec<NodeId> = node
        .leases
        .lease_holders(term, Instant::now())
        .into_iter()
        .filter(|id| *id != node.id && !members.iter().any(|(m, _)| m == id))
        .collect();
    let removed_waits = removed.into_iter().map(|id| async move {
        loop {
            if proven(id) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    node_id = id,
                    index,
                    "write barrier: a removed node's lease has not run out; the write is not acknowledged"
                );
                return Err(id);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let waits = members.into_iter().map(|(id, addr)| async move {
        loop {
            if proven(id) {
                return Ok(());
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(600));
            if left.is_zero() {
                tracing::warn!(
                    node_id = id,
                    index,
                    "write barrier: cannot prove a member has the write or is out of lease; the write is not acknowledged"
                );
                return Err(id);
            }
            let req = BarrierRequest {
                index,
                safe_index: node.shared.safe_index(),
            };
            let call = node
                .peers
                .call::<_, BarrierResponse>(id, &addr, PATH_BARRIER, &req, left);
            tokio::pin!(call);
            // While the member is silent (paused, partitioned), its lease may
            // run out: look every 20 ms without giving up on its answer.
            let answer = loop {
                tokio::select! {
                    r = &mut call => break Some(r),
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {
                        if proven(id) {
                            return Ok(());
                        }
                    }
                }
            };
            match answer {
                Some(Ok(r)) if r.applied >= index => return Ok(()),
                Some(Ok(_)) | None => {}
                // Unreachable: try again shortly, or until its lease runs out.
                Some(Err(_)) => {
                    let pause = Duration::from_millis(50)
                        .min(deadline.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                }
            }
        }
    });
    let (members_waited, removed_waited) =
        futures::future::join(join_all(waits), join_all(removed_waits)).await;
    let failed: Vec<NodeId> = members_waited
        .into_iter()
        .chain(removed_waited)
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

/// The leader settles what its writes did not: entries whose barrier failed,
/// and an election's first entries (written by an earlier leader that may
/// have died before its barrier passed). While it leads with a read floor,
/// it runs the barrier for its applied index whenever that is above the
/// settled index.
pub(crate) async fn settle_loop(node: Arc<Node>) {
    let mut applied = node.shared.applied_index();
    loop {
        let (state, term) = {
            let m = node.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_term)
        };
        let target = *applied.borrow_and_update();
        if state == ServerState::Leader
            && node.leases.has_floor(term)
            && target > node.shared.safe_index()
        {
            match barrier(&node, term, target).await {
                Ok(()) => node.shared.raise_safe(target),
                Err(e) => {
                    tracing::debug!(index = target, error = %e, "settling failed; will retry")
                }
            }
            continue;
        }
        tokio::select! {
            _ = applied.changed() => {}
            _ = tokio::time::sleep(node.leases.confirm_interval()) => {}
            _ = node.shutdown.cancelled() => return,
        }
    }
}

/// The leader tells every member each time its settled index grows
/// (coalesced: the newest value, at most every 5 ms; fire and forget — lease
/// grants and barrier requests carry it too).
pub(crate) async fn settled_notice_loop(node: Arc<Node>) {
    let mut rx = node.shared.safe_watch();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = node.shutdown.cancelled() => return,
        }
        let index = *rx.borrow_and_update();
        let members: Vec<(NodeId, String)> = {
            let m = node.raft.metrics();
            let m = m.borrow();
            if m.state != ServerState::Leader {
                continue;
            }
            node.others(m.membership_config.membership())
        };
        for (id, addr) in members {
            let node = node.clone();
            tokio::spawn(async move {
                let timeout = node.leases.pull_interval();
                let _ = node
                    .peers
                    .call::<_, ()>(id, &addr, PATH_SETTLED, &SettledNotice { index }, timeout)
                    .await;
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
