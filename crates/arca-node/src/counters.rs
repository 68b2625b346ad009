//! Event counters for `/metrics`: atomics bumped where the events happen
//! (elections, write barriers, snapshots), read without locks. Every label
//! set is fixed, so the metrics stay bounded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::ServerState;

use crate::types::NodeId;
use crate::Node;

/// Counters since this process started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Times this node saw a new leader (a new term with a known leader, or
    /// another leader in the same term after not knowing one).
    pub leader_changes: AtomicU64,
    /// Elections this node started (after a successful pre-vote).
    pub elections_started: AtomicU64,
    /// Times this node became leader of a newer term than it started with.
    pub elections_won: AtomicU64,
    /// Write barriers that passed / failed (the write was not acknowledged).
    pub barriers_passed: AtomicU64,
    pub barriers_failed: AtomicU64,
    /// Total time spent in write barriers, in microseconds.
    pub barrier_wait_us: AtomicU64,
    /// Writes this node proposed as the leader, and the log entries that
    /// carried them (group commit: several writes share an entry).
    pub writes_proposed: AtomicU64,
    pub write_entries: AtomicU64,
    /// Snapshots this node built from its state machine.
    pub snapshots_built: AtomicU64,
    /// Snapshots this node (as leader) sent to a follower in full.
    pub snapshots_sent: AtomicU64,
    /// Snapshots a leader sent that this node installed.
    pub snapshots_installed: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CountersView {
    pub leader_changes: u64,
    pub elections_started: u64,
    pub elections_won: u64,
    pub barriers_passed: u64,
    pub barriers_failed: u64,
    pub barrier_wait_us: u64,
    pub writes_proposed: u64,
    pub write_entries: u64,
    pub snapshots_built: u64,
    pub snapshots_sent: u64,
    pub snapshots_installed: u64,
}

impl Counters {
    pub fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub fn view(&self) -> CountersView {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CountersView {
            leader_changes: l(&self.leader_changes),
            elections_started: l(&self.elections_started),
            elections_won: l(&self.elections_won),
            barriers_passed: l(&self.barriers_passed),
            barriers_failed: l(&self.barriers_failed),
            barrier_wait_us: l(&self.barrier_wait_us),
            writes_proposed: l(&self.writes_proposed),
            write_entries: l(&self.write_entries),
            snapshots_built: l(&self.snapshots_built),
            snapshots_sent: l(&self.snapshots_sent),
            snapshots_installed: l(&self.snapshots_installed),
        }
    }
}

/// Why a node serves or does not serve crypto requests from its replica
/// (`arca_serving_state`): a fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServingState {
    /// It holds a lease (follower) or leader evidence and has applied its floor.
    Serving,
    /// It leads, but a quorum has not confirmed its leadership recently.
    LeaderNoQuorum,
    /// It leads, but has not yet applied an entry committed in its term.
    LeaderNoReadFloor,
    /// It holds no lease from a leader (cut off, or no leader).
    NoLease,
    /// It may serve once it has applied the index its lease names.
    CatchingUp,
    /// It was removed from the cluster.
    Removed,
}

impl ServingState {
    pub const ALL: [ServingState; 6] = [
        ServingState::Serving,
        ServingState::LeaderNoQuorum,
        ServingState::LeaderNoReadFloor,
        ServingState::NoLease,
        ServingState::CatchingUp,
        ServingState::Removed,
    ];

    /// The `state` label.
    pub fn label(self) -> &'static str {
        match self {
            ServingState::Serving => "serving",
            ServingState::LeaderNoQuorum => "leader_no_quorum",
            ServingState::LeaderNoReadFloor => "leader_no_read_floor",
            ServingState::NoLease => "no_lease",
            ServingState::CatchingUp => "catching_up",
            ServingState::Removed => "removed",
        }
    }
}

/// Counts leader changes and won elections from openraft's metrics, as they
/// change.
pub(crate) async fn leadership_watch(node: Arc<Node>) {
    let mut rx = node.raft.metrics();
    let mut seen: (u64, Option<NodeId>) = (0, None);
    let mut was_leader = false;
    loop {
        let (term, leader, state) = {
            let m = rx.borrow_and_update();
            (m.current_term, m.current_leader, m.state)
        };
        if leader.is_some() && (term, leader) != seen {
            Counters::bump(&node.counters.leader_changes);
            seen = (term, leader);
        }
        let leading = state == ServerState::Leader;
        if leading && !was_leader && term > node.startup_term {
            Counters::bump(&node.counters.elections_won);
        }
        was_leader = leading;
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = node.shutdown.cancelled() => return,
        }
    }
}
