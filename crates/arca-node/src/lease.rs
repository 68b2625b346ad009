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
//!   leader serves only until `s + bound` — evidence gathered by this process
//!   in this term; neither being elected nor being restored as leader at
//!   start-up counts.
//! - **Leader read floor.** Before it serves or grants anything in term `T`,
//!   the leader must know an entry of `T` committed (every entry an earlier
//!   leader acknowledged comes before it) and have applied that index.
//! - **Followers** pull a lease from the leader every `bound / 4`. The leader
//!   grants it only while it has evidence, for what is left of its evidence
//!   (at most `bound`): `valid = s + bound - now`. A lease taken at local time
//!   `t0` (before the request was sent) is valid until `t0 + valid` — also
//!   after the follower moves to a newer term, since every newer leader's
//!   barrier waits for older leases to end — and names the leader's commit
//!   index: the follower serves only once it has applied that index. So no lease outlives
//!   the leader's own evidence: everything served in a term on the strength
//!   of evidence sent at `s` ends by `s + bound`.
//! - **Write barrier.** Before a write at index `i` is acknowledged, every
//!   other member must confirm it has applied `i`, or have reported (in its
//!   latest lease request) a lease that names an index `>= i`, or be provably
//!   out of lease: its last grant from this leader, at `g` for `valid`,
//!   satisfies `now > g + drift(valid)`, or — with no grant from this process
//!   in this term — `now > since + drift(bound)`, where `since` is when this
//!   process saw itself become leader of the term. Any lease or leader
//!   evidence of an older term rests on evidence sent before a quorum moved
//!   to a newer term, so before `since`, and ends at most `bound` after it.
//!   A leader elected in this process can do better: each voter reports how
//!   long ago it last confirmed an older term — or sent a confirmation round
//!   that a voter answered, if it led one (a *quiet report*); once a
//!   quorum has reported, older evidence cannot be newer than the latest of
//!   those confirmations (an older leader's evidence needed a quorum too, and
//!   two quorums share a voter), so everything older ends `drift(bound)`
//!   after it — usually the moment the old leader died, not the later moment
//!   of the election.
//! - **Settled index.** Once the barrier passed for `i`, every entry up to `i`
//!   is *settled*: no node serves state older than it. A node shows a key
//!   whose last change is at a revision above its settled index only after
//!   learning that the revision settled (from the write's answer, a lease
//!   grant, a barrier request, or the leader's notice after each barrier), so
//!   once one node has shown a change, no node shows the state before it —
//!   not even while the write is still waiting for its acknowledgement. The
//!   leader also settles entries whose writes failed or were never
//!   acknowledged (its first entries after an election, say) in the
//!   background.
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
        /// The leader's settled index (see `SharedState::safe_index`).
        safe_index: u64,
        /// How long the lease lasts, from the follower's send time (what is
        /// left of the leader's own evidence; at most the bound).
        valid_ms: u64,
    },
    /// Not the leader of that term, or without evidence of a quorum.
    Refused,
    /// The current leader (with evidence of a quorum) does not count the
    /// requester among the cluster's members: it was removed.
    NotAMember,
}

/// A follower's request to confirm it has applied `index`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BarrierRequest {
    pub index: u64,
    /// The leader's settled index.
    pub safe_index: u64,
}

/// The leader's notice that every entry up to `index` is settled.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SettledNotice {
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

/// A new leader's question to a voter: "how long ago did you last confirm a
/// leader of a term older than mine?"
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuietRequest {
    pub term: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuietResponse {
    /// The voter's current term; the answer counts only if it is at least the
    /// asker's (then the voter confirms no older term any more).
    pub term: u64,
    /// Milliseconds since it last confirmed an older term — or since its
    /// process started, if it has not confirmed one since.
    pub quiet_ms: u64,
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

/// The confirmations this node has answered (as a voter), for quiet reports.
#[derive(Debug, Default)]
struct Answered {
    /// The newest term answered, and when it was last answered.
    term: u64,
    last: Option<Instant>,
    /// When a term older than `term` was last answered.
    older: Option<Instant>,
}

#[derive(Debug)]
struct Leading {
    term: u64,
    since: Instant,
    /// Won by an election in this process (not restored at start-up).
    elected: bool,
    /// Per voter: the latest time it can have confirmed an older term.
    quiet: HashMap<NodeId, Instant>,
    /// When every lease and leader evidence of an older term has ended, once
    /// a quorum's quiet reports prove it.
    old_end: Option<Instant>,
    /// Per voter: the send time of the newest confirmation it answered.
    confirmed: HashMap<NodeId, Instant>,
    /// The index of an entry of this term known committed and applied here.
    floor: Option<u64>,
    /// Per member: when its latest lease from this process provably ends.
    granted_until: HashMap<NodeId, Instant>,
    /// Per member: when this process last heard from it (a confirmation
    /// answered or a lease request).
    heard: HashMap<NodeId, Instant>,
    /// The commit index each follower last said its held lease names.
    held: HashMap<NodeId, u64>,
}

/// Lease bookkeeping for one node, in both roles.
#[derive(Debug)]
pub struct Leases {
    bound: Duration,
    /// When this process started: no confirmation it gave before can be later.
    started: Instant,
    held: Mutex<Option<Held>>,
    leading: Mutex<Option<Leading>>,
    answered: Mutex<Answered>,
    /// Woken when a lease, evidence or a read floor arrives, for requests
    /// that wait for one (see `Node::ensure_serving`).
    changed: tokio::sync::Notify,
}

impl Leases {
    pub fn new(bound: Duration) -> Self {
        Self::started_at(bound, Instant::now())
    }

    fn started_at(bound: Duration, started: Instant) -> Self {
        Self {
            bound,
            started,
            held: Mutex::new(None),
            leading: Mutex::new(None),
            answered: Mutex::new(Answered::default()),
            changed: tokio::sync::Notify::new(),
        }
    }

    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// When this process started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Notified whenever this node may have become able to serve.
    pub fn changed(&self) -> &tokio::sync::Notify {
        &self.changed
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

    /// Records a lease granted for `valid` (at most the bound) for a request
    /// sent at `sent`.
    pub fn hold(&self, term: u64, commit_index: u64, sent: Instant, valid: Duration) {
        let mut h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        *h = Some(Held {
            term,
            commit_index,
            expires: sent + valid.min(self.bound),
        });
        drop(h);
        self.changed.notify_waiters();
    }

    /// The commit index this node must have applied to serve, if it holds a
    /// lease that has not expired, granted in `term` or an earlier one. A
    /// lease outlives a change of term: every newer leader's barrier waits
    /// until leases of older terms have provably ended, so a node still
    /// inside one serves nothing a newer leader has acknowledged past it —
    /// which lets followers (and a new leader before its read floor) go on
    /// serving through an election.
    pub fn follower_commit(&self, term: u64, now: Instant) -> Option<u64> {
        let h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        h.filter(|h| h.term <= term && now < h.expires)
            .map(|h| h.commit_index)
    }

    /// The commit index of the lease this follower holds in `term` (0: none).
    pub fn held_commit(&self, term: u64) -> u64 {
        let h = self.held.lock().unwrap_or_else(|p| p.into_inner());
        h.filter(|h| h.term == term).map_or(0, |h| h.commit_index)
    }

    // ---- voter side ----

    /// This node answered a confirmation of `term` in a way that counts as
    /// evidence for it (its own term was not newer).
    pub fn note_answered(&self, term: u64, now: Instant) {
        let mut a = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        if term > a.term {
            a.older = a.older.max(a.last);
            a.term = term;
            a.last = Some(now);
        } else if term == a.term {
            a.last = Some(now);
        } else {
            a.older = Some(now);
        }
    }

    /// The latest time this node can have confirmed a term older than
    /// `term`, in this process or before it started — counting its own
    /// leadership of an older term: a leader's evidence is made of rounds it
    /// sent, and it counts itself in every quorum, so its report must cover
    /// the newest round a voter answered.
    pub fn quiet_since(&self, term: u64) -> Instant {
        let answered = {
            let a = self.answered.lock().unwrap_or_else(|p| p.into_inner());
            if a.term < term {
                a.older.max(a.last)
            } else {
                a.older
            }
        };
        let led = {
            let l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
            l.as_ref()
                .filter(|l| l.term < term)
                .and_then(|l| l.confirmed.values().max().copied())
        };
        answered
            .max(led)
            .map_or(self.started, |t| t.max(self.started))
    }

    // ---- leader side ----

    fn with_term<R>(&self, term: u64, f: impl FnOnce(&mut Leading) -> R) -> Option<R> {
        let mut l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        l.as_mut().filter(|l| l.term == term).map(f)
    }

    /// This process has seen itself become leader of `term` at `now`, by an
    /// election (`elected`) or restored at start-up. The only call that
    /// starts a new term's bookkeeping; repeated calls for the same term
    /// change nothing, and an older term never replaces a newer one. Returns
    /// whether it started a new term.
    pub fn begin_leading(&self, term: u64, elected: bool, now: Instant) -> bool {
        let mut l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        if l.as_ref().is_some_and(|l| l.term >= term) {
            return false;
        }
        // The rounds of a leadership this replaces still count in this
        // node's quiet reports (see `quiet_since`).
        if let Some(prev) = l.as_ref().and_then(|p| p.confirmed.values().max().copied()) {
            let mut a = self.answered.lock().unwrap_or_else(|p| p.into_inner());
            a.older = a.older.max(Some(prev));
        }
        *l = Some(Leading {
            term,
            since: now,
            elected,
            quiet: HashMap::new(),
            old_end: None,
            confirmed: HashMap::new(),
            floor: None,
            granted_until: HashMap::new(),
            heard: HashMap::new(),
            held: HashMap::new(),
        });
        true
    }

    /// A voter's quiet report: it cannot have confirmed an older term after
    /// `latest`. Once a quorum (of each configuration) has reported, every
    /// older lease and leader evidence ends by the latest of them plus
    /// `drift(bound)`: any older leader's evidence needed a quorum,
    /// which shares a voter with the reporters. Only for a term won by an
    /// election in this process: leases this leader granted in the same
    /// term before a restart are not covered.
    pub fn record_quiet(
        &self,
        term: u64,
        voter: NodeId,
        latest: Instant,
        configs: &[BTreeSet<NodeId>],
    ) {
        let bound = self.bound;
        self.with_term(term, |l| {
            if !l.elected || l.old_end.is_some() {
                return;
            }
            l.quiet.insert(voter, latest);
            let quorum = !configs.is_empty()
                && configs
                    .iter()
                    .all(|c| c.iter().filter(|v| l.quiet.contains_key(v)).count() * 2 > c.len());
            if quorum {
                let newest = l
                    .quiet
                    .iter()
                    .filter(|(v, _)| configs.iter().any(|c| c.contains(v)))
                    .map(|(_, t)| *t)
                    .max();
                l.old_end = newest.map(|t| t + drift(bound));
            }
        });
    }

    /// Whether the quiet reports of `term` have proven when older leases end.
    pub fn old_end_known(&self, term: u64) -> bool {
        self.with_term(term, |l| l.old_end.is_some())
            .unwrap_or(false)
    }

    /// `voter` answered a confirmation of `term` sent at `sent`, from a term
    /// no newer than `term`.
    pub fn record_confirmed(&self, term: u64, voter: NodeId, sent: Instant) {
        self.with_term(term, |l| {
            let t = l.confirmed.entry(voter).or_insert(sent);
            *t = (*t).max(sent);
            l.heard.insert(voter, Instant::now());
        });
        self.changed.notify_waiters();
    }

    /// When the leader of `term` (this process) last heard from `node`.
    pub fn last_heard(&self, term: u64, node: NodeId) -> Option<Instant> {
        self.with_term(term, |l| l.heard.get(&node).copied())
            .flatten()
    }

    /// An entry of `term` at `index` is committed and applied here.
    pub fn set_floor(&self, term: u64, index: u64) {
        self.with_term(term, |l| {
            l.floor.get_or_insert(index);
        });
        self.changed.notify_waiters();
    }

    pub fn has_floor(&self, term: u64) -> bool {
        self.with_term(term, |l| l.floor.is_some()).unwrap_or(false)
    }

    /// Whether this process, leading `term`, may serve from its replica now;
    /// if so, the index it must have applied first and how long its evidence
    /// lasts from `now`. `configs` are the voter sets (two during a membership
    /// change; a quorum of each is needed).
    pub fn leader_floor(
        &self,
        term: u64,
        me: NodeId,
        configs: &[BTreeSet<NodeId>],
        now: Instant,
    ) -> Result<(u64, Duration), NotServing> {
        let l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
        let l = l
            .as_ref()
            .filter(|l| l.term == term)
            .ok_or(NotServing::NotLeading)?;
        // Per configuration, the newest send time a majority has confirmed;
        // the evidence is the oldest of those.
        // Called on every request a leader serves: no allocation.
        let time_of = |v: &NodeId| {
            if *v == me {
                Some(now)
            } else {
                l.confirmed.get(v).copied()
            }
        };
        let mut evidence: Option<Instant> = None;
        for c in configs {
            let need = c.len() / 2 + 1;
            // The newest time that `need` voters confirmed at or after.
            let t = c
                .iter()
                .filter_map(time_of)
                .filter(|t| c.iter().filter_map(time_of).filter(|u| u >= t).count() >= need)
                .max()
                .ok_or(NotServing::NoQuorum)?;
            evidence = Some(evidence.map_or(t, |e| e.min(t)));
        }
        let left = evidence
            .map(|s| (s + self.bound).saturating_duration_since(now))
            .unwrap_or_default();
        if left.is_zero() {
            return Err(NotServing::NoQuorum);
        }
        l.floor.map(|f| (f, left)).ok_or(NotServing::NoReadFloor)
    }

    /// For a node that led an older term than `term` (deposed, and maybe a
    /// follower now): whether its evidence from then still lets it serve, and
    /// from which index. It does: every newer leader's barrier waits until
    /// the older leader's evidence has provably ended.
    pub fn former_leader_floor(
        &self,
        term: u64,
        me: NodeId,
        configs: &[BTreeSet<NodeId>],
        now: Instant,
    ) -> Option<u64> {
        let led = {
            let l = self.leading.lock().unwrap_or_else(|p| p.into_inner());
            l.as_ref().map(|l| l.term)
        }?;
        (led <= term)
            .then(|| self.leader_floor(led, me, configs, now).ok())
            .flatten()
            .map(|(floor, _)| floor)
    }

    /// Records a grant to `node` for `valid` (the caller has checked that it
    /// may grant), and the commit index of the lease it held when it asked.
    pub fn record_grant(
        &self,
        term: u64,
        node: NodeId,
        held_commit: u64,
        now: Instant,
        valid: Duration,
    ) {
        self.with_term(term, |l| {
            l.granted_until.insert(node, now + drift(valid));
            l.heard.insert(node, now);
            l.held.insert(node, held_commit);
        });
    }

    /// Whether `node` said it holds a lease of `term` naming at least
    /// `index`: it then serves nothing older than `index`.
    pub fn holds_at_least(&self, term: u64, node: NodeId, index: u64) -> bool {
        self.with_term(term, |l| l.held.get(&node).is_some_and(|h| *h >= index))
            .unwrap_or(false)
    }

    /// The nodes this leader of `term` granted a lease that may not have
    /// ended at `now` — members or not: a node removed from the cluster
    /// keeps what it was granted while it was a member.
    pub fn lease_holders(&self, term: u64, now: Instant) -> Vec<NodeId> {
        self.with_term(term, |l| {
            l.granted_until
                .iter()
                .filter(|(_, until)| now <= **until)
                .map(|(id, _)| *id)
                .collect()
        })
        .unwrap_or_default()
    }

    /// Whether `node` provably holds no lease (and no leader evidence) that
    /// lets it serve state older than what this leader of `term` has now.
    /// `false` whenever it cannot be proven, e.g. for a term this process
    /// does not lead (any more).
    pub fn out_of_lease(&self, term: u64, node: NodeId, now: Instant) -> bool {
        self.with_term(term, |l| match l.granted_until.get(&node) {
            Some(until) => now > *until,
            None => {
                now.saturating_duration_since(l.since) > drift(self.bound)
                    || l.old_end.is_some_and(|end| now > end)
            }
        })
        .unwrap_or(false)
    }

    /// The longest a barrier can have to wait: `out_of_lease` holds at the
    /// latest `drift(bound)` after this leader took over, or after a member's
    /// last grant; a margin covers the RPC in flight. Past it, the write is
    /// reported as not acknowledged (retriable).
    pub fn max_barrier_wait(&self) -> Duration {
        drift(self.bound) + self.bound / 2
    }

    /// How long a request waits for a change of its key to settle here: a
    /// barrier's longest wait, plus one bound — when the leader that made
    /// the change dies before its barrier passed, the next leader settles it
    /// once the old leases have ended, about a bound after the death.
    pub fn settle_wait(&self) -> Duration {
        self.max_barrier_wait() + self.bound
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
        l.hold(3, 42, t0, B);
        assert_eq!(l.follower_commit(3, t0 + B / 2), Some(42));
        assert_eq!(
            l.follower_commit(4, t0 + B / 2),
            Some(42),
            "it outlives a change of term"
        );
        assert_eq!(
            l.follower_commit(2, t0 + B / 2),
            None,
            "not an older term's"
        );
        assert_eq!(l.follower_commit(3, t0 + B), None, "expired");
        l.hold(3, 43, t0, B / 4);
        assert_eq!(l.follower_commit(3, t0 + B / 4), None, "granted for less");
        l.hold(3, 44, t0, B * 5);
        assert_eq!(l.follower_commit(3, t0 + B), None, "never past the bound");
    }

    #[test]
    fn becoming_leader_is_not_evidence() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(5, true, t0);
        l.set_floor(5, 10);
        assert_eq!(
            l.leader_floor(5, 1, &three(), t0),
            Err(NotServing::NoQuorum),
            "elected or restored: no confirmation yet"
        );
        l.record_confirmed(5, 2, t0 + MS);
        assert_eq!(l.leader_floor(5, 1, &three(), t0 + MS), Ok((10, B)));
    }

    #[test]
    fn evidence_runs_from_the_send_time_for_the_bound() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(5, true, t0);
        l.set_floor(5, 1);
        l.record_confirmed(5, 3, t0);
        assert_eq!(l.leader_floor(5, 1, &three(), t0 + B - MS), Ok((1, MS)));
        assert_eq!(
            l.leader_floor(5, 1, &three(), t0 + B),
            Err(NotServing::NoQuorum),
            "a paused leader that resumes has no evidence"
        );
        // An older confirmation never moves the evidence back.
        l.record_confirmed(5, 3, t0 + B);
        l.record_confirmed(5, 3, t0);
        assert!(l.leader_floor(5, 1, &three(), t0 + B + B / 2).is_ok());
        // The quorum's evidence is the newest time a majority confirmed.
        l.record_confirmed(5, 2, t0 + B * 2);
        assert_eq!(
            l.leader_floor(5, 1, &three(), t0 + B * 2),
            Ok((1, B)),
            "with itself, one newer voter makes the majority"
        );
    }

    #[test]
    fn no_read_floor_no_service() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(5, true, t0);
        l.record_confirmed(5, 2, t0);
        assert_eq!(
            l.leader_floor(5, 1, &three(), t0),
            Err(NotServing::NoReadFloor)
        );
        l.set_floor(5, 7);
        l.set_floor(5, 9);
        assert_eq!(l.leader_floor(5, 1, &three(), t0), Ok((7, B)), "set once");
    }

    #[test]
    fn a_single_voter_is_its_own_quorum_and_joint_configs_need_both() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(2, true, t0);
        l.set_floor(2, 1);
        assert_eq!(l.leader_floor(2, 1, &[cfg(&[1])], t0 + B * 10), Ok((1, B)));
        let joint = vec![cfg(&[1]), cfg(&[1, 2, 3])];
        assert_eq!(l.leader_floor(2, 1, &joint, t0), Err(NotServing::NoQuorum));
        l.record_confirmed(2, 3, t0);
        assert_eq!(l.leader_floor(2, 1, &joint, t0), Ok((1, B)));
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
        l.begin_leading(7, true, t0);
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
        l.record_grant(6, 3, 100, t0, B);
        l.record_confirmed(8, 3, t0);
        assert!(!l.holds_at_least(7, 3, 100));
        assert!(l.out_of_lease(7, 3, t0 + drift(B) + MS));
        // Only a newer term replaces the bookkeeping; an older one never does.
        assert!(!l.begin_leading(6, true, t0 + B * 10));
        assert!(l.out_of_lease(7, 3, t0 + drift(B) + MS));
        assert!(!l.begin_leading(7, true, t0 + B * 10));
        assert!(l.out_of_lease(7, 3, t0 + drift(B) + MS));
        assert!(l.begin_leading(8, true, t0 + B * 10));
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
        l.begin_leading(7, true, t0);
        assert!(!l.out_of_lease(7, 2, t0 + B), "no grant: the bound");
        assert!(!l.out_of_lease(7, 2, t0 + drift(B)));
        assert!(l.out_of_lease(7, 2, t0 + drift(B) + MS));
        l.record_grant(7, 3, 9, t0 + B, B / 2);
        assert!(l.holds_at_least(7, 3, 9));
        assert!(!l.holds_at_least(7, 3, 10));
        assert!(!l.out_of_lease(7, 3, t0 + B + B / 2), "exactly the grant");
        assert!(!l.out_of_lease(7, 3, t0 + B + drift(B / 2)));
        assert!(l.out_of_lease(7, 3, t0 + B + drift(B / 2) + MS));
        assert!(l.max_barrier_wait() > drift(B));
        // The holders the barrier waits out, members or not: until the
        // grant provably ends, and only for the term that granted it.
        assert_eq!(l.lease_holders(7, t0 + B + drift(B / 2)), vec![3]);
        assert!(l.lease_holders(7, t0 + B + drift(B / 2) + MS).is_empty());
        assert!(l.lease_holders(8, t0 + B).is_empty());
    }

    #[test]
    fn quiet_reports_track_confirmations_of_older_terms() {
        let t0 = Instant::now();
        let l = Leases::started_at(B, t0);
        assert_eq!(l.quiet_since(5), t0, "nothing answered: the start");
        l.note_answered(4, t0 + B);
        assert_eq!(l.quiet_since(5), t0 + B);
        assert_eq!(l.quiet_since(4), t0, "term 4 itself is not older than 4");
        l.note_answered(5, t0 + B * 2);
        assert_eq!(l.quiet_since(5), t0 + B);
        assert_eq!(l.quiet_since(6), t0 + B * 2);
        // A late answer to an older term counts as older than the newest.
        l.note_answered(3, t0 + B * 3);
        assert_eq!(l.quiet_since(5), t0 + B * 3);
    }

    #[test]
    fn a_quorum_of_quiet_reports_ends_older_leases_early() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        let cfg = three();
        assert!(l.begin_leading(9, true, t0 + B));
        assert!(
            !l.begin_leading(9, true, t0 + B * 2),
            "same term: no change"
        );
        l.record_quiet(9, 1, t0, &cfg);
        assert!(!l.old_end_known(9), "one of three");
        assert!(!l.out_of_lease(9, 3, t0 + drift(B) + MS));
        l.record_quiet(9, 2, t0 + MS, &cfg);
        assert!(l.old_end_known(9));
        // The latest report plus drift(bound), not since + drift(bound).
        assert!(!l.out_of_lease(9, 3, t0 + MS + drift(B)));
        assert!(l.out_of_lease(9, 3, t0 + MS * 2 + drift(B)));
        // A member with a grant still needs its own expiry.
        l.record_grant(9, 2, 0, t0 + B * 2, B);
        assert!(!l.out_of_lease(9, 2, t0 + B * 3));
    }

    #[test]
    fn a_restored_leader_ignores_quiet_reports() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        let cfg = three();
        l.begin_leading(9, false, t0 + B);
        l.record_quiet(9, 1, t0, &cfg);
        l.record_quiet(9, 2, t0, &cfg);
        assert!(!l.old_end_known(9));
        assert!(!l.out_of_lease(9, 3, t0 + drift(B) + MS));
    }

    #[test]
    fn a_deposed_leader_serves_until_its_evidence_ends() {
        let l = Leases::new(B);
        let t0 = Instant::now();
        l.begin_leading(4, true, t0);
        l.set_floor(4, 12);
        l.record_confirmed(4, 2, t0);
        assert_eq!(l.former_leader_floor(5, 1, &three(), t0 + B / 2), Some(12));
        assert_eq!(l.former_leader_floor(3, 1, &three(), t0 + B / 2), None);
        assert_eq!(l.former_leader_floor(5, 1, &three(), t0 + B), None, "ended");
    }

    #[test]
    fn a_former_leader_reports_its_own_rounds_as_confirmations() {
        // It counted itself in every quorum of its term: its quiet report
        // must reach the newest round a voter answered.
        let t0 = Instant::now();
        let l = Leases::started_at(B, t0);
        l.begin_leading(4, true, t0);
        l.record_confirmed(4, 2, t0 + B * 3);
        assert_eq!(l.quiet_since(5), t0 + B * 3);
        assert_eq!(l.quiet_since(4), t0, "its own term is not older");
    }

    #[test]
    fn leading_a_newer_term_keeps_the_older_rounds_in_quiet_reports() {
        let t0 = Instant::now();
        let l = Leases::started_at(B, t0);
        l.begin_leading(4, true, t0);
        l.record_confirmed(4, 2, t0 + B * 3);
        l.begin_leading(9, true, t0 + B * 4);
        assert_eq!(l.quiet_since(9), t0 + B * 3);
        assert_eq!(l.quiet_since(10), t0 + B * 3);
    }
}
