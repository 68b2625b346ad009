//! When each key was last used (GetKeyLastUsage), without a Raft write on the
//! request path.
//!
//! A successful cryptographic operation notes itself in this node's
//! [`UsageTracker`] (a lock on one of 16 shards and a map insert). Every
//! `scheduler_interval` the node reports what it noted since its last
//! report in one `Command::RecordKeyUsage`, through the leader like any
//! write; the state machine keeps the newest use per key. A node answers
//! from its replica merged with what it has noted and not yet reported, so
//! its own uses show at once and other nodes' within about one interval.
//! A node that crashes loses what it had not reported (at most one interval).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arca_state::{Command, KeyId, KeyLastUsage, Outcome};

use crate::node::Node;

const SHARDS: usize = 16;

/// Uses per report at most; more wait for the next one.
const MAX_PER_REPORT: usize = 2000;

pub struct UsageTracker {
    shards: [Mutex<HashMap<KeyId, Noted>>; SHARDS],
    /// When this node began tracking (its start).
    since_ms: u64,
}

struct Noted {
    operation: &'static str,
    at_ms: u64,
    request_id: String,
}

impl Noted {
    fn to_usage(&self) -> KeyLastUsage {
        KeyLastUsage {
            operation: self.operation.to_string(),
            at_ms: self.at_ms,
            request_id: self.request_id.clone(),
        }
    }
}

impl UsageTracker {
    pub fn new(since_ms: u64) -> Self {
        Self {
            shards: std::array::from_fn(|_| Mutex::new(HashMap::new())),
            since_ms,
        }
    }

    fn shard(&self, key: &KeyId) -> std::sync::MutexGuard<'_, HashMap<KeyId, Noted>> {
        let i = usize::from(key.as_bytes()[15]) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Notes a successful cryptographic operation with `key`.
    pub fn note(&self, key: KeyId, operation: &'static str, at_ms: u64, request_id: &str) {
        let mut shard = self.shard(&key);
        match shard.get_mut(&key) {
            Some(n) if n.at_ms > at_ms => {}
            Some(n) => {
                n.operation = operation;
                n.at_ms = at_ms;
                n.request_id.clear();
                n.request_id.push_str(request_id);
            }
            None => {
                shard.insert(
                    key,
                    Noted {
                        operation,
                        at_ms,
                        request_id: request_id.to_string(),
                    },
                );
            }
        }
    }

    /// What this node noted for `key` and has not reported yet.
    pub fn pending(&self, key: &KeyId) -> Option<KeyLastUsage> {
        self.shard(key).get(key).map(Noted::to_usage)
    }

    /// Takes up to `max` noted uses for a report.
    fn take(&self, max: usize) -> Vec<(KeyId, KeyLastUsage)> {
        let mut out = Vec::new();
        for shard in &self.shards {
            let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
            let keys: Vec<KeyId> = s.keys().take(max - out.len()).copied().collect();
            for k in keys {
                if let Some(n) = s.remove(&k) {
                    out.push((k, n.to_usage()));
                }
            }
            if out.len() >= max {
                break;
            }
        }
        out
    }

    /// Puts back uses whose report failed, unless newer ones were noted.
    fn put_back(&self, uses: Vec<(KeyId, KeyLastUsage)>) {
        for (k, u) in uses {
            let mut shard = self.shard(&k);
            if shard.get(&k).is_some_and(|n| n.at_ms >= u.at_ms) {
                continue;
            }
            let operation = operation_name(&u.operation);
            shard.insert(
                k,
                Noted {
                    operation,
                    at_ms: u.at_ms,
                    request_id: u.request_id,
                },
            );
        }
    }
}

/// The operations GetKeyLastUsage reports (AWS's list), as static names.
pub const TRACKED: [&str; 14] = [
    "Decrypt",
    "DeriveSharedSecret",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
    "Encapsulate",
    "Decapsulate",
];

fn operation_name(s: &str) -> &'static str {
    TRACKED
        .iter()
        .find(|t| **t == s)
        .copied()
        .unwrap_or("Unknown")
}

/// What GetKeyLastUsage answers for a key.
pub struct LastUsage {
    pub usage: Option<KeyLastUsage>,
    /// Since when uses of the key are tracked: its creation, or when the
    /// cluster began tracking, whichever is later.
    pub tracking_start_ms: u64,
    pub created_ms: u64,
}

impl Node {
    /// The last use of `key` this node knows of: its replica's, or one it
    /// noted and has not reported yet, whichever is newer.
    pub fn last_usage(&self, key: &KeyId) -> Result<LastUsage, crate::NodeError> {
        let (replicated, created_ms, since) = {
            let a = self.shared.read();
            let k =
                a.state.keys.get(key).ok_or_else(|| {
                    crate::NodeError::NotFound(format!("Key '{key}' does not exist"))
                })?;
            (
                a.state.key_usage.get(key).cloned(),
                k.created_ms,
                a.state.usage_since_ms,
            )
        };
        let pending = self.usage.pending(key);
        let usage = match (replicated, pending) {
            (Some(r), Some(p)) => Some(if p.at_ms > r.at_ms { p } else { r }),
            (r, p) => r.or(p),
        };
        let since = since
            .unwrap_or(self.usage.since_ms)
            .min(self.usage.since_ms);
        Ok(LastUsage {
            usage,
            tracking_start_ms: created_ms.max(since),
            created_ms,
        })
    }
}

/// Reports this node's noted uses every `scheduler_interval`.
pub(crate) async fn report_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(node.scheduler_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = node.shutdown.cancelled() => return,
        }
        if node.cluster_info().is_none() {
            continue;
        }
        loop {
            let uses = node.usage.take(MAX_PER_REPORT);
            if uses.is_empty() {
                break;
            }
            let full = uses.len() == MAX_PER_REPORT;
            let cmd = Command::RecordKeyUsage {
                since_ms: node.usage.since_ms,
                uses: uses.clone(),
            };
            match node.propose(None, cmd).await {
                Ok(Outcome::Applied | Outcome::Repeated { .. } | Outcome::Batch(_)) => {}
                Ok(Outcome::Rejected(r)) => {
                    tracing::warn!(reason = %r, "key usage report refused");
                }
                Err(e) => {
                    tracing::debug!(error = %e, "key usage report failed; will retry");
                    node.usage.put_back(uses);
                    break;
                }
            }
            if !full {
                break;
            }
        }
    }
}
