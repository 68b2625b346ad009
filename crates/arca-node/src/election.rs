//! Elections, timed by this node instead of openraft, behind a pre-vote.
//!
//! openraft 0.9 has two election habits that clients notice:
//! - each node draws its election timeout once, at start-up, so two
//!   survivors of a leader's death can stay in step and collide again;
//! - it has no pre-vote: a follower cut off from the leader raises its term
//!   at every timeout and, when the partition heals, its higher term deposes
//!   the healthy leader.
//!
//! So the node turns openraft's election timer off (`enable_elect = false`)
//! and runs [`election_loop`]. A voter that has heard nothing from a leader
//! for the leader lease plus a delay drawn afresh for every attempt first
//! asks the voters whether they would vote for it (`/raft/prevote`). A voter
//! says yes only if it has not heard from a leader within the lease itself,
//! the candidate's log is at least as complete as its own, and the vote the
//! candidate would ask for is one openraft would grant. Only with a yes from
//! a quorum of every voter set does the node start a real election
//! (`trigger().elect()`), which raises its term. A node that cannot reach a
//! quorum therefore never raises its term, and a refused pre-vote costs a
//! round trip, not a term.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use openraft::{ServerState, Vote};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::network::PATH_PREVOTE;
use crate::types::NodeId;
use crate::Node;

/// "Would you vote for me if I started an election now?"
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreVoteRequest {
    pub candidate: NodeId,
    /// The candidate's current term: its election would ask for `term + 1`.
    pub term: u64,
    /// The candidate's last log id, as (term, index); `None` for an empty log.
    pub last_log: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PreVoteResponse {
    Granted,
    /// Heard from a leader within the lease, leads, holds a newer vote or a
    /// more complete log, or does not count the candidate as a voter.
    Refused,
}

/// What a voter knows when it answers a pre-vote.
pub(crate) struct VoterView {
    pub leading: bool,
    pub vote: Vote<NodeId>,
    /// Time since its vote was last set or confirmed by a leader.
    pub since_vote: Duration,
    pub last_log: Option<(u64, u64)>,
    pub candidate_is_voter: bool,
}

/// The pre-vote rule, apart from I/O.
pub(crate) fn would_vote(view: &VoterView, req: &PreVoteRequest, lease: Duration) -> bool {
    if view.leading || !view.candidate_is_voter {
        return false;
    }
    // openraft refuses a vote while a committed leader's lease runs.
    if view.vote.is_committed() && view.since_vote <= lease {
        return false;
    }
    let proposed = Vote::new(req.term + 1, req.candidate);
    if !matches!(
        proposed.partial_cmp(&view.vote),
        Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
    ) {
        return false;
    }
    req.last_log >= view.last_log
}

impl Node {
    /// Answers a candidate's pre-vote (peer port).
    pub async fn prevote_reply(&self, req: PreVoteRequest) -> PreVoteResponse {
        let Ok((vote, modified)) = self
            .raft
            .with_raft_state(|s| (*s.vote_ref(), s.vote_last_modified()))
            .await
        else {
            return PreVoteResponse::Refused;
        };
        let (leading, candidate_is_voter) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let voter = m
                .membership_config
                .membership()
                .voter_ids()
                .any(|v| v == req.candidate);
            (m.state == ServerState::Leader, voter)
        };
        let view = VoterView {
            leading,
            vote,
            since_vote: modified.map_or(Duration::MAX, |t| t.elapsed()),
            last_log: self.last_log().await,
            candidate_is_voter,
        };
        if would_vote(&view, &req, self.election_max) {
            PreVoteResponse::Granted
        } else {
            PreVoteResponse::Refused
        }
    }

    /// This node's last log id as (term, index).
    async fn last_log(&self) -> Option<(u64, u64)> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || crate::store::last_log_id(&db.get()).ok().flatten())
            .await
            .ok()
            .flatten()
            .map(|id| (id.leader_id.term, id.index))
    }

    /// Asks the other voters for a pre-vote; true once a quorum of every
    /// voter set (two during a membership change) would vote for this node.
    async fn prevote_round(self: &Arc<Self>) -> bool {
        let (configs, targets, term) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            let membership = m.membership_config.membership();
            let targets = self.others(membership);
            (
                membership.get_joint_config().clone(),
                targets,
                m.current_term,
            )
        };
        let req = PreVoteRequest {
            candidate: self.id,
            term,
            last_log: self.last_log().await,
        };
        let mut granted = BTreeSet::from([self.id]);
        if quorum_of_each(&configs, &granted) {
            return true;
        }
        let timeout = self.election_min / 2;
        let mut calls = tokio::task::JoinSet::new();
        for (id, addr) in targets {
            let peers = self.peers.clone();
            let req = req.clone();
            calls.spawn(async move {
                let r = peers
                    .call::<_, PreVoteResponse>(id, &addr, PATH_PREVOTE, &req, timeout)
                    .await;
                (id, r)
            });
        }
        while let Some(done) = calls.join_next().await {
            if let Ok((id, Ok(PreVoteResponse::Granted))) = done {
                granted.insert(id);
                if quorum_of_each(&configs, &granted) {
                    return true;
                }
            }
        }
        false
    }
}

fn quorum_of_each(configs: &[BTreeSet<NodeId>], granted: &BTreeSet<NodeId>) -> bool {
    !configs.is_empty()
        && configs
            .iter()
            .all(|c| c.iter().filter(|n| granted.contains(n)).count() * 2 > c.len())
}

/// A random delay in `[0, span)`, drawn from the OS generator.
fn draw(span: Duration) -> Duration {
    let mut b = [0u8; 4];
    let _ = arca_crypto::random::fill(&mut b);
    let frac = u64::from(u32::from_le_bytes(b));
    Duration::from_micros((span.as_micros() as u64).saturating_mul(frac) >> 32)
}

/// Starts elections for this node (see the module comment). Runs until
/// shutdown, or until the leader says this node is no longer a member.
pub(crate) async fn election_loop(node: Arc<Node>) {
    let mut rx = node.raft.metrics();
    let spread = node.election_max.saturating_sub(node.election_min);
    // Drawn afresh after every attempt, so two nodes never stay in step.
    let mut delay = draw(node.election_min);
    let mut retry = node.election_min + draw(spread);
    let mut not_before = Instant::now();
    loop {
        let (voter, alone) = {
            let m = rx.borrow_and_update();
            let membership = m.membership_config.membership();
            let voter =
                m.state != ServerState::Leader && membership.voter_ids().any(|v| v == node.id);
            (voter, membership.voter_ids().count() == 1)
        };
        if !voter {
            tokio::select! {
                r = rx.changed() => if r.is_err() { return },
                _ = node.shutdown.cancelled() => return,
            }
            continue;
        }
        let Ok((committed, modified)) = node
            .raft
            .with_raft_state(|s| (s.vote_ref().is_committed(), s.vote_last_modified()))
            .await
        else {
            return;
        };
        // Quiet since the vote was last set or confirmed by a leader: a
        // follower waits out the leader lease (voters refuse before it ends)
        // and a delay; a candidate whose election failed, a retry delay.
        let quiet_from = modified.unwrap_or_else(|| Instant::from_std(node.leases.started()));
        let wait = match (alone, committed) {
            (true, _) => Duration::ZERO,
            (false, true) => node.election_max + delay,
            (false, false) => retry,
        };
        let due = (quiet_from + wait).max(not_before);
        if due > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(due) => {}
                _ = node.shutdown.cancelled() => return,
            }
            continue;
        }
        if alone || node.prevote_round().await {
            tracing::info!(node_id = node.id, "no leader: starting an election");
            crate::counters::Counters::bump(&node.counters.elections_started);
            let _ = node.raft.trigger().elect().await;
        } else if crate::membership::removed_from_cluster(&node).await {
            return;
        }
        delay = draw(node.election_min);
        retry = node.election_min + draw(spread);
        not_before = Instant::now() + retry;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(vote: Vote<NodeId>, since_ms: u64) -> VoterView {
        VoterView {
            leading: false,
            vote,
            since_vote: Duration::from_millis(since_ms),
            last_log: Some((3, 10)),
            candidate_is_voter: true,
        }
    }

    fn req(term: u64, last_log: Option<(u64, u64)>) -> PreVoteRequest {
        PreVoteRequest {
            candidate: 2,
            term,
            last_log,
        }
    }

    const LEASE: Duration = Duration::from_millis(300);

    #[test]
    fn a_voter_that_hears_its_leader_refuses() {
        let v = view(Vote::new_committed(3, 1), 100);
        assert!(!would_vote(&v, &req(3, Some((3, 10))), LEASE));
    }

    #[test]
    fn a_voter_whose_leader_is_quiet_past_the_lease_grants() {
        let v = view(Vote::new_committed(3, 1), 301);
        assert!(would_vote(&v, &req(3, Some((3, 10))), LEASE));
    }

    #[test]
    fn a_less_complete_log_is_refused() {
        let v = view(Vote::new_committed(3, 1), 400);
        assert!(!would_vote(&v, &req(3, Some((3, 9))), LEASE));
        assert!(!would_vote(&v, &req(3, Some((2, 50))), LEASE));
        assert!(!would_vote(&v, &req(3, None), LEASE));
        assert!(would_vote(&v, &req(3, Some((4, 1))), LEASE));
    }

    #[test]
    fn a_candidate_behind_in_term_is_refused() {
        // The voter already voted in term 5; term 4 + 1 cannot beat it.
        let v = view(Vote::new(5, 3), 400);
        assert!(!would_vote(&v, &req(3, Some((3, 10))), LEASE));
        assert!(would_vote(&v, &req(5, Some((3, 10))), LEASE));
    }

    #[test]
    fn a_leader_or_a_non_voter_candidate_is_refused() {
        let mut v = view(Vote::new_committed(3, 1), 400);
        v.leading = true;
        assert!(!would_vote(&v, &req(3, Some((3, 10))), LEASE));
        v.leading = false;
        v.candidate_is_voter = false;
        assert!(!would_vote(&v, &req(3, Some((3, 10))), LEASE));
    }

    #[test]
    fn quorum_needs_a_majority_of_each_voter_set() {
        let one: BTreeSet<NodeId> = [1, 2, 3].into();
        let two: BTreeSet<NodeId> = [3, 4, 5].into();
        let granted: BTreeSet<NodeId> = [1, 2].into();
        assert!(quorum_of_each(std::slice::from_ref(&one), &granted));
        assert!(!quorum_of_each(&[one.clone(), two.clone()], &granted));
        let granted: BTreeSet<NodeId> = [1, 3, 4].into();
        assert!(quorum_of_each(&[one, two], &granted));
        assert!(!quorum_of_each(&[], &granted));
    }

    #[test]
    fn draws_stay_in_range() {
        let span = Duration::from_millis(150);
        for _ in 0..1000 {
            assert!(draw(span) < span);
        }
    }
}
