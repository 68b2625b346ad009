//! Serving leases: when a node may answer requests from its own replica.
//!
//! The promise (docs/ARCHITECTURE.md, "Consistency"): once a write is
//! acknowledged, no node serves a request from state older than that write,
//! and a node cut off from the leader for longer than `bound` serves none at
//! all. The rules, with `drift(d)` = `d` plus a 2 % margin for clocks that run
//! at slightly different rates (clocks need not agree on the time):
//!
//! - **Leader evidence.** The leader of term `T` sends a confirmation request
//!   to every voter every `bound / 8`. A voter that answers with a term no
//!   newer than `T` proves that it had not voted for a newer leader when it
//!   answered, which was after the request was *sent*. When a quorum (of each
//!   configuration, during a membership change) has answered requests sent at
//!   `s` or later, no newer leader can have been elected before `s`. The
//!   leader serves, and grants leases, only until `s + bound / 2` — evidence
//!   gathered by this process in this term; neither being elected nor being
//!   restored as leader at start-up counts.
//! - **Leader read floor.** Before it serves or grants anything in term `T`,
//!   the leader must know an entry of `T` committed (every entry an earlier
//!   leader acknowledged comes before it) and have applied that index.
//! - **Followers** pull a lease from the leader every `bound / 4`. A lease
//!   taken at local time `t0` (before the request was sent) is valid until
//!   `t0 + bound`, only in the term it was granted in, and names the leader's
//!   commit index: the follower serves only once it has applied that index.
//! - **Write barrier.** Before a write at index `i` is acknowledged, every
//!   other member must confirm it has applied `i`, or have reported (in its
//!   latest lease request) a lease that names an index `>= i`, or be provably
//!   out of lease: its last grant `g` from this leader satisfies
//!   `now > g + drift(bound)`, or — with no grant from this process in this
//!   term — `now > since + drift(1.5 × bound)`, where `since` is when this
//!   process saw itself become leader of the term. Any lease or leader
//!   evidence of an older term rests on evidence sent before a quorum moved
//!   to a newer term, so before `since`; it ends at most `bound / 2 + bound`
//!   later.
//!
//! State changes only when this node's leadership changes
//! ([`Leases::begin_leading`]); every query about another term answers
//! conservatively and changes nothing.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::types::NodeId;

/// A follower's request for a lease.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaseRequest {
    pub node_id: NodeId,
    pub term: u64,
    /// The commit index named by the lease the follower holds now (0: none).
    pub held_commit: u64,
}

/// The leader's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum LeaseResponse {
    Granted {
        term: u64,
        commit_index: u64,
    },
    /// Not the leader of that term, or without evidence of a quorum.
    Refused,
}

/// A follower's request to confirm it has applied `index`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BarrierRequest {
    pub index: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BarrierResponse {
    pub applied: u64,
}

/// The leader's request to a voter: "which term are you in?"
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmRequest {
    pub term: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfirmResponse {
    /// The voter's current term (its durable vote's term).
    pub term: u64,
}

/// `d` plus the margin for clock-rate differences between nodes (2 %, far
/// above the 0.05 % an NTP-disciplined clock may be slewed by).
pub fn drift(d: Duration) -> Duration {
    d + d / 50
}

/// Why a leader may not serve yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotServing {
    /// This process does not (or no longer) lead that term.
    NotLeading,
    /// No quorum has confirmed this leadership recently enough.
    NoQuorum,
    /// No entry of this term is known committed and applied yet.
    NoReadFloor,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    term: u64,
    commit_index: u64,
    expires: Instant,
}

#[derive(Debug)]
struct Leading {
    term: u64,
    since: Instant,
    /// Per voter: the send time of the newest confirmation it answered.
    confirmed: HashMap<NodeId, Instant>,
    /// The index of an entry of this term known committed and applied here.
    floor: Option<u64>,
    grants: HashMap<NodeId, Instant>,
    /// The commit index each follower last said its held lease names.
    held: HashMap<NodeId, u64>,
}

/// Lease bookkeeping for one node, in both roles.
#[derive(Debug)]
pub struct Leases {
    bound: Duration,
    held: Mutex<Option<Held>>,
    leading: Mutex<Option<Leading>>,
}

impl Leases {
    pub fn new(bound: Duration) -> Self {
        Self {
            bound,
            held: Mutex::new(None),
            leading: Mutex::new(None),
        }
    }

    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// How often followers pull.
    pub fn pull_interval(&self) -> Duration {
        self.bound / 4
    }

    /// How often the leader asks the voters to confirm its leadership.
    pub fn confirm_interval(&self) -> Duration {
        self.bound / 8
    }

    // ---- follower side ----

    /// Records a lease granted for a request sent at `sent`.
    pub fn hold(&self, term: u64, commit_index: u64, sent: Instant) {
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        *h = Some(Held {
            term,
            commit_index,
            expires: sent + self.bound,
        });
    }

    /// The commit index this node must have applied to serve, if it holds a
    /// valid lease in `term`.
    pub fn follower_commit(&self, term: u64, now: Instant) -> Option<u64> {
        let h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        h.filter(|h| h.term == term && now < h.expires)
            .map(|h| h.commit_index)
    }

    /// The commit index of the lease this follower holds in `term` (0: none).
    pub fn held_commit(&self, term: u64) -> u64 {
        let h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        h.filter(|h| h.term == term).map_or(0, |h| h.commit_index)
    }

    // ---- leader side ----

    fn with_term<R>(&self, term: u64, f: impl FnOnce(&mut Leading) -> R) -> Option<R> {
        let mut l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        l.as_mut().filter(|l| l.term == term).map(f)
    }

    /// This process has seen itself become leader of `term` at `now`. The
    /// only call that starts a new term's bookkeeping; repeated calls for the
    /// same term change nothing. An older term never replaces a newer one.
    pub fn begin_leading(&self, term: u64, now: Instant) {
        let mut l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        if l.as_ref().is_some_and(|l| l.term >= term) {
            return;
        }
        *l = Some(Leading {
            term,
            since: now,
            confirmed: HashMap::new(),
            floor: None,
            grants: HashMap::new(),
            held: HashMap::new(),
        });
    }

    /// `voter` answered a confirmation of `term` sent at `sent`, from a term
    /// no newer than `term`.
    pub fn record_confirmed(&self, term: u64, voter: NodeId, sent: Instant) {
        self.with_term(term, |l| {
            let t = l.confirmed.entry(voter).or_insert(sent);
            *t = (*t).max(sent);
        });
    }

    /// An entry of `term` at `index` is committed and applied here.
    pub fn set_floor(&self, term: u64, index: u64) {
        self.with_term(term, |l| {
            l.floor.get_or_insert(index);
        });
    }

    pub fn has_floor(&self, term: u64) -> bool {
        self.with_term(term, |l| l.floor.is_some()).unwrap_or(false)
    }

    /// Whether this process, leading `term`, may serve from its replica now;
    /// if so, the index it must have applied first. `configs` are the voter
    /// sets (two during a membership change; a quorum of each is needed).
    pub fn leader_floor(
        &self,
        term: u64,
        me: NodeId,
        configs: &[BTreeSet<NodeId>],
        now: Instant,
    ) -> Result<u64, NotServing> {
        let l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        let l = l
            .as_ref()
            .filter(|l| l.term == term)
            .ok_or(NotServing::NotLeading)?;
        let fresh = |v: &NodeId| {
            *v == me
                || l.confirmed
                    .get(v)
                    .is_some_and(|s| now.saturating_duration_since(*s) < self.bound / 2)
        };
        let quorum = !configs.is_empty()
            && configs
                .iter()
                .all(|c| c.iter().filter(|v| fresh(v)).count() * 2 > c.len());
        if !quorum {
            return Err(NotServing::NoQuorum);
        }
        l.floor.ok_or(NotServing::NoReadFloor)
    }

    /// Records a grant to `node` (the caller has checked that it may grant),
    /// and the commit index of the lease it held when it asked.
    pub fn record_grant(&self, term: u64, node: NodeId, held_commit: u64, now: Instant) {
        self.with_term(term, |l| {
            l.grants.insert(node, now);
            l.held.insert(node, held_commit);
        });
    }

    /// Whether `node` said it holds a lease of `term` naming at least
    /// `index`: it then serves nothing older than `index`.
    pub fn holds_at_least(&self, term: u64, node: NodeId, index: u64) -> bool {
        self.with_term(term, |l| l.held.get(&node).is_some_and(|h| *h >= index))
            .unwrap_or(false)
    }

    /// Whether `node` provably holds no lease (and no leader evidence) that
    /// lets it serve state older than what this leader of `term` has now.
    /// `false` whenever it cannot be proven, e.g. for a term this process
    /// does not lead (any more).
    pub fn out_of_lease(&self, term: u64, node: NodeId, now: Instant) -> bool {
        self.with_term(term, |l| match l.grants.get(&node) {
            Some(g) => now.saturating_duration_since(*g) > drift(self.bound),
            None => now.saturating_duration_since(l.since) > drift(self.bound * 3 / 2),
        })
        .unwrap_or(false)
    }

    /// The longest a barrier can have to wait: `out_of_lease` holds at the
    /// latest `drift(1.5 × bound)` after this leader took over, or
    /// `drift(bound)` after a member's last grant; a margin covers the RPC in
    /// flight. Past it, the write is reported as not acknowledged (retriable).
    pub fn max_barrier_wait(&self) -> Duration {
        drift(self.bound * 3 / 2) + self.bound / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Duration = Duration::from_secs(2);
    const MS: Duration = Duration::from_millis(1);

    fn cfg(voters: &[NodeId]) -> BTreeSet<NodeId> {
        voters.iter().copied().collect()
    }

    fn three() -> Vec<BTreeSet<NodeId>> {
        vec![cfg(&[1, 2, 3])]
    }

    #[test]
    fn follower_lease_is_per_term_and_expires() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        assert_eq!(l.follower_commit(3, t0), None);
        l.hold(3, 42, t0);
        assert_eq!(l.follower_commit(3, t0 + B / 2), Some(42));
        assert_eq!(
            l.follower_commit(4, t0 + B / 2),
            None,
            "a new term voids it"
        );
        assert_eq!(l.follower_commit(3, t0 + B), None, "expired");
    }

    #[test]
    fn becoming_leader_is_not_evidence() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(5, t0);
        l.set_floor(5, 10);
        assert_eq!(
            l.leader_floor(5, 1, &three(), t0),
            Err(NotServing::NoQuorum),
            "elected or restored: no confirmation yet"
        );
        l.record_confirmed(5, 2, t0 + MS);
        assert_eq!(l.leader_floor(5, 1, &three(), t0 + MS), Ok(10));
    }

    #[test]
    fn evidence_runs_from_the_send_time_for_half_the_bound() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(5, t0);
        l.set_floor(5, 1);
        l.record_confirmed(5, 3, t0);
        assert!(l.leader_floor(5, 1, &three(), t0 + B / 2 - MS).is_ok());
        assert_eq!(
            l.leader_floor(5, 1, &three(), t0 + B / 2),
            Err(NotServing::NoQuorum),
            "a paused leader that resumes has no evidence"
        );
        // An older confirmation never moves the evidence back.
        l.record_confirmed(5, 3, t0 + B);
        l.record_confirmed(5, 3, t0);
        assert!(l.leader_floor(5, 1, &three(), t0 + B + B / 4).is_ok());
    }

    #[test]
    fn no_read_floor_no_service() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(5, t0);
        l.record_confirmed(5, 2, t0);
        assert_eq!(
            l.leader_floor(5, 1, &three(), t0),
            Err(NotServing::NoReadFloor)
        );
        l.set_floor(5, 7);
        l.set_floor(5, 9);
        assert_eq!(l.leader_floor(5, 1, &three(), t0), Ok(7), "set once");
    }

    #[test]
    fn a_single_voter_is_its_own_quorum_and_joint_configs_need_both() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(2, t0);
        l.set_floor(2, 1);
        assert_eq!(l.leader_floor(2, 1, &[cfg(&[1])], t0 + B * 10), Ok(1));
        let joint = vec![cfg(&[1]), cfg(&[1, 2, 3])];
        assert_eq!(l.leader_floor(2, 1, &joint, t0), Err(NotServing::NoQuorum));
        l.record_confirmed(2, 3, t0);
        assert_eq!(l.leader_floor(2, 1, &joint, t0), Ok(1));
        assert_eq!(
            l.leader_floor(2, 4, &three(), t0),
            Err(NotServing::NoQuorum),
            "a leader outside the voters counts only confirmed voters"
        );
    }

    #[test]
    fn queries_about_another_term_change_nothing() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(7, t0);
        l.set_floor(7, 3);
        l.record_confirmed(7, 2, t0);
        // A stale barrier or grant of term 6 (or a future 8) proves nothing
        // and must not reset term 7's clock.
        assert_eq!(
            l.leader_floor(6, 1, &three(), t0),
            Err(NotServing::NotLeading)
        );
        assert!(!l.out_of_lease(6, 3, t0 + B * 10));
        assert!(!l.holds_at_least(8, 3, 0));
        l.record_grant(6, 3, 100, t0);
        l.record_confirmed(8, 3, t0);
        assert!(!l.holds_at_least(7, 3, 100));
        assert!(l.out_of_lease(7, 3, t0 + drift(B * 3 / 2) + MS));
        // Only a newer term replaces the bookkeeping; an older one never does.
        l.begin_leading(6, t0 + B * 10);
        assert!(l.out_of_lease(7, 3, t0 + drift(B * 3 / 2) + MS));
        l.begin_leading(7, t0 + B * 10);
        assert!(l.out_of_lease(7, 3, t0 + drift(B * 3 / 2) + MS));
        l.begin_leading(8, t0 + B * 10);
        assert!(!l.out_of_lease(7, 3, t0 + B * 20));
        assert_eq!(
            l.leader_floor(8, 1, &three(), t0 + B * 10),
            Err(NotServing::NoQuorum)
        );
    }

    #[test]
    fn out_of_lease_is_proven_by_arithmetic_with_a_drift_margin() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(7, t0);
        assert!(!l.out_of_lease(7, 2, t0 + B * 3 / 2), "no grant: 1.5 bound");
        assert!(!l.out_of_lease(7, 2, t0 + drift(B * 3 / 2)));
        assert!(l.out_of_lease(7, 2, t0 + drift(B * 3 / 2) + MS));
        l.record_grant(7, 3, 9, t0 + B);
        assert!(l.holds_at_least(7, 3, 9));
        assert!(!l.holds_at_least(7, 3, 10));
        assert!(!l.out_of_lease(7, 3, t0 + B * 2), "exactly the bound");
        assert!(!l.out_of_lease(7, 3, t0 + B + drift(B)));
        assert!(l.out_of_lease(7, 3, t0 + B + drift(B) + MS));
        assert!(l.max_barrier_wait() > drift(B * 3 / 2));
    }
}
