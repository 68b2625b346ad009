//! The node's housekeeping tasks: the root key check, snapshots paced by
//! size, the secret cache's sweep and the leader's scheduler (due deletions,
//! rotations and expirations). The serving tasks (leases, barrier,
//! settling) are in `serving.rs`.

use std::sync::Arc;
use std::time::Duration;

use arca_state::{Command, KeyId, Outcome, Rejection};
use openraft::ServerState;

use crate::Node;

/// A node that joined with another root key than the cluster's — or whose
/// replica learns of a finished root-key rotation to a key it was not given —
/// learns so when that is applied; it cannot serve anything, so it says so
/// loudly and stops taking part.
pub(crate) async fn root_key_watch(node: Arc<Node>) {
    let mut rx = node.shared.applied_index();
    loop {
        let missing = crate::node::missing_root_keys(&node.shared.read().state, &node.root);
        if let Some(m) = missing {
            tracing::error!("{m}; this node stops");
            node.shutdown.cancel();
            let _ = node.raft.shutdown().await;
            return;
        }
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = node.shutdown.cancelled() => return,
        }
    }
}

/// How often [`snapshot_loop`] looks whether a snapshot is due.
const SNAPSHOT_CHECK_INTERVAL: Duration = Duration::from_millis(200);

/// Builds a snapshot (and so lets Raft purge the log behind it) once at
/// least `every` entries were applied since the last one *and* the log
/// appended since then is as large as the last snapshot. A snapshot encodes
/// the whole state: built every `every` entries regardless, its cost grew
/// with the number of keys until it dominated writes (and memory) on a
/// large replica. Paced by size, each appended byte costs at most one byte
/// of snapshot encoding, and the log on disk stays within about the
/// state's size plus `every` entries. A deleted key (or a secret re-wrapped
/// by a root-key rotation) leaves the file only once the log is purged past
/// it, so while one waits, `every` entries are enough, as before.
pub(crate) async fn snapshot_loop(node: Arc<Node>, every: u64) {
    let metrics = node.raft.metrics();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(SNAPSHOT_CHECK_INTERVAL) => {}
            _ = node.shutdown.cancelled() => return,
        }
        let (applied, last) = {
            let m = metrics.borrow();
            (
                m.last_applied.map_or(0, |l| l.index),
                m.snapshot.map_or(0, |l| l.index),
            )
        };
        if applied >= last.saturating_add(every)
            && (node.db.log_outgrew_snapshot() || node.db.shred_waits_after(last))
        {
            // Ignored while a snapshot is being built.
            if node.raft.trigger().snapshot().await.is_err() {
                return;
            }
        }
    }
}

/// Wipes the cached secrets of access keys that no longer exist, on every
/// node, soon after their deletion is applied (at most one sweep per
/// [`SECRET_SWEEP_INTERVAL`]).
pub(crate) async fn secret_sweep_loop(node: Arc<Node>) {
    let mut rx = node.shared.applied_index();
    loop {
        tokio::select! {
            r = rx.changed() => if r.is_err() { return },
            _ = node.shutdown.cancelled() => return,
        }
        {
            let a = node.shared.read();
            node.secrets
                .retain(|id| a.state.access_keys.contains_key(id));
        }
        tokio::select! {
            _ = tokio::time::sleep(SECRET_SWEEP_INTERVAL) => {}
            _ = node.shutdown.cancelled() => return,
        }
    }
}

/// How often, at most, the secret cache is swept.
pub(crate) const SECRET_SWEEP_INTERVAL: Duration = Duration::from_millis(200);

/// The leader proposes deletions whose date has passed, automatic
/// rotations that are due, the deletion of imported material whose
/// `ValidTo` has passed and the forgetting of grants removed long enough
/// ago, every `scheduler_interval`.
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
        let (deletions, rotations, expirations, forget_grants) = {
            let a = node.shared.read();
            (
                a.state.due_deletions(now),
                a.state.due_rotations(now),
                a.state.due_expirations(now),
                a.state.removed_grants_due(now),
            )
        };
        if forget_grants {
            let done = "retired and revoked grants past their keeping time forgotten";
            scheduled(
                &node,
                Command::ForgetRemovedGrants,
                None,
                done,
                "forgetting removed grants",
            )
            .await;
        }
        for key_id in expirations {
            let cmd = Command::ExpireKeyMaterial { key_id };
            let done = "imported key material expired and was deleted";
            scheduled(
                &node,
                cmd,
                Some(key_id),
                done,
                "expiry of imported material",
            )
            .await;
        }
        for key_id in deletions {
            let cmd = Command::PurgeKey { key_id };
            let done = "key deleted: its deletion date passed";
            scheduled(&node, cmd, Some(key_id), done, "scheduled deletion").await;
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
            let done = format!("key rotated automatically, to version {next}");
            scheduled(&node, cmd, Some(key_id), &done, "automatic rotation").await;
        }
    }
}

/// Proposes a command the scheduler found due, and logs its outcome:
/// `done` once applied; `what` refused or failed (retried at the next tick).
/// A command no longer due, or whose key is gone, is nothing to report —
/// the state changed since the scheduler looked.
async fn scheduled(node: &Node, cmd: Command, key_id: Option<KeyId>, done: &str, what: &str) {
    let key_id = key_id.map(tracing::field::display);
    match node.propose(None, cmd).await {
        Ok(Outcome::Applied) => tracing::info!(key_id, "{done}"),
        Ok(Outcome::Rejected(Rejection::NotDue(_) | Rejection::NotFound(_)))
        | Ok(Outcome::Repeated { .. } | Outcome::Batch(_)) => {}
        Ok(Outcome::Rejected(r)) => {
            tracing::warn!(key_id, reason = %r, "{what} refused")
        }
        Err(e) => {
            tracing::warn!(key_id, error = %e, "{what} failed; will retry")
        }
    }
}
