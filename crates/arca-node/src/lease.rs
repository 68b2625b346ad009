//! Serving leases: when a node may answer crypto requests from its replica.
//!
//! The promise (docs/ARCHITECTURE.md, "Consistency"): once a write is
//! acknowledged, no node in contact with the leader serves a crypto request
//! from state older than that write, and a node cut off from the leader for
//! longer than `bound` serves none at all.
//!
//! - **Followers** pull a lease from the leader every `bound / 4`. A lease
//!   taken at local time `t0` (before the request was sent) is valid until
//!   `t0 + bound`, only in the Raft term it was granted in, and carries the
//!   leader's commit index: the follower serves only once it has applied that
//!   index. Measuring from `t0` needs no synchronized clocks.
//! - **The leader** grants leases only while it has evidence of a quorum: it
//!   was elected less than `bound / 2` ago, or a majority of voters pulled a
//!   lease within `bound / 2`. It serves crypto requests under the same rule.
//! - **Write barrier**: before a write is acknowledged, the leader makes every
//!   other member either confirm it has applied the write, or report (in its
//!   next lease request) that its lease names a commit index at least the
//!   write's — it then waits to apply it before serving — or be provably out
//!   of lease: its last grant (from this leader) is older than `bound`, or —
//!   with no grant from this leader — this leader has led for longer than
//!   `1.5 × bound` (a deposed leader stops granting `bound / 2` after it lost
//!   its quorum, and its leases end `bound` after that).

use std::collections::HashMap;
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
    /// Not the leader of that term, or without a quorum.
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

    // ---- leader side ----

    fn leading(slot: &mut Option<Leading>, term: u64, now: Instant) -> &mut Leading {
        if slot.as_ref().map(|l| l.term) != Some(term) {
            *slot = Some(Leading {
                term,
                since: now,
                grants: HashMap::new(),
                held: HashMap::new(),
            });
        }
        slot.as_mut().expect("just set")
    }

    /// Notes that this node leads `term` (starting the clock on first sight).
    pub fn note_leading(&self, term: u64, now: Instant) {
        let mut l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        Self::leading(&mut l, term, now);
    }

    /// Whether the leader of `term` has evidence of a quorum now.
    /// `voters` are the voter ids, this node included if it votes.
    pub fn leader_has_quorum(
        &self,
        term: u64,
        me: NodeId,
        voters: &[NodeId],
        now: Instant,
    ) -> bool {
        let mut l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        let l = Self::leading(&mut l, term, now);
        if voters.len() <= 1 || now.duration_since(l.since) < self.bound / 2 {
            return true;
        }
        let fresh = voters
            .iter()
            .filter(|v| {
                **v == me
                    || l.grants
                        .get(v)
                        .is_some_and(|g| now.duration_since(*g) < self.bound / 2)
            })
            .count();
        fresh * 2 > voters.len()
    }

    /// Records a grant to `node` (the caller has checked leadership and
    /// quorum), and the commit index of the lease it held when it asked.
    pub fn record_grant(&self, term: u64, node: NodeId, held_commit: u64, now: Instant) {
        let mut l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        let l = Self::leading(&mut l, term, now);
        l.grants.insert(node, now);
        l.held.insert(node, held_commit);
    }

    /// Whether `node` said it holds a lease of this term naming at least
    /// `index`: it then serves nothing older than `index`.
    pub fn holds_at_least(&self, term: u64, node: NodeId, index: u64, now: Instant) -> bool {
        let mut l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        let l = Self::leading(&mut l, term, now);
        l.held.get(&node).is_some_and(|h| *h >= index)
    }

    /// The commit index of the lease this follower holds in `term` (0: none).
    pub fn held_commit(&self, term: u64) -> u64 {
        let h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        h.filter(|h| h.term == term).map_or(0, |h| h.commit_index)
    }

    /// Whether `node` can no longer hold a lease that lets it serve state
    /// older than what the leader of `term` has now.
    pub fn out_of_lease(&self, term: u64, node: NodeId, now: Instant) -> bool {
        let mut l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        let l = Self::leading(&mut l, term, now);
        match l.grants.get(&node) {
            Some(g) => now.duration_since(*g) > self.bound,
            None => now.duration_since(l.since) > self.bound * 3 / 2,
        }
    }

    /// The longest a barrier can have to wait: `out_of_lease` holds at the
    /// latest `1.5 × bound` after this leader took over, or `bound` after a
    /// member's last grant; a margin covers the RPC in flight.
    pub fn max_barrier_wait(&self) -> Duration {
        self.bound * 2 + Duration::from_secs(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Duration = Duration::from_secs(2);

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
    fn leader_quorum_from_recent_grants() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        let voters = [1, 2, 3];
        assert!(l.leader_has_quorum(5, 1, &voters, t0), "just elected");
        let later = t0 + B;
        assert!(
            !l.leader_has_quorum(5, 1, &voters, later),
            "no grants for a while"
        );
        l.record_grant(5, 2, 0, later);
        assert!(l.leader_has_quorum(5, 1, &voters, later + B / 4));
        assert!(!l.leader_has_quorum(5, 1, &voters, later + B / 2));
        assert!(
            l.leader_has_quorum(9, 1, &[1], later + B * 10),
            "single voter"
        );
    }

    #[test]
    fn out_of_lease_rules() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.note_leading(7, t0);
        assert!(
            !l.out_of_lease(7, 2, t0 + B),
            "no grant: wait 1.5 bound from election"
        );
        assert!(l.out_of_lease(7, 2, t0 + B * 3 / 2 + Duration::from_millis(1)));
        l.record_grant(7, 3, 9, t0 + B);
        assert!(l.holds_at_least(7, 3, 9, t0 + B));
        assert!(!l.holds_at_least(7, 3, 10, t0 + B));
        assert!(!l.out_of_lease(7, 3, t0 + B * 2));
        assert!(l.out_of_lease(7, 3, t0 + B * 2 + Duration::from_millis(1)));
        // A new term starts over.
        assert!(!l.out_of_lease(8, 3, t0 + B * 3));
    }
}
