//! Root-key rotation on the node: which root key new secrets are wrapped
//! under, the start of a rotation (only once every voter holds the new key),
//! the leader's background re-wrapping, and the shredding of the old
//! wrapping from every node's data directory once the rotation finished.
//!
//! The rotation's progress is replicated state (`arca-state` `root_keys.rs`):
//! the leader re-wraps whatever its replica says is not yet under the new key,
//! so a new leader continues where a crashed one stopped.

use std::sync::Arc;
use std::time::Duration;

use arca_crypto::wrap::{RootKey, RootKeyId, WrapContext};
use arca_crypto::CryptoError;
use arca_state::{Command, Outcome, Proposal, Rejection, Rewrapped, RootKeyStatus, Wrapped};
use openraft::ServerState;

use crate::types::{ForwardRequest, ForwardResponse};
use crate::{actors, credentials, store, Node, NodeError};

/// How long the leader waits for a voter to say which root keys it holds.
const HELD_KEYS_TIMEOUT: Duration = Duration::from_secs(2);

/// Local meta: the finishing index of the last rotation whose old wrapping
/// this data directory was shredded of.
const SHREDDED: &str = "root_key_shredded";

/// The wrapping context of a secret of the state.
fn context(item: &Wrapped) -> WrapContext<'_> {
    match item {
        Wrapped::KeyVersion { key_id, version } => actors::material_context(key_id, *version),
        Wrapped::AccessKey { access_key_id } => credentials::wrap_context(access_key_id),
    }
}

impl Node {
    /// The root key to wrap a new secret under: the cluster's, or a
    /// rotation's new key while one runs (the node's first key before the
    /// cluster is initialized).
    pub(crate) fn wrap_key(&self) -> Result<&RootKey, NodeError> {
        let id = self.shared.read().state.wrapping_root_key();
        match id {
            None => Ok(self.root.first()),
            Some(id) => self.root.get(&id).ok_or_else(|| {
                tracing::error!(root_key = %id, "this node does not hold the root key new secrets are wrapped under");
                NodeError::Unavailable(format!(
                    "this node does not hold root key {id}, which the cluster wraps new secrets under"
                ))
            }),
        }
    }

    /// The ids of the root keys this node holds.
    pub fn held_root_keys(&self) -> Vec<RootKeyId> {
        self.root.ids()
    }

    /// The root key in use and a rotation's progress, by this replica.
    pub fn root_key_status(&self) -> Option<RootKeyStatus> {
        let a = self.shared.read();
        a.state.cluster.is_some().then(|| a.state.root_key_status())
    }

    /// Begins a rotation to root key `to`: refused unless every voter holds
    /// it. Returns once this node has applied the start.
    pub async fn begin_root_key_rotation(&self, to: RootKeyId) -> Result<(), NodeError> {
        self.require_cluster()?;
        match self
            .on_leader(ForwardRequest::BeginRootKeyRotation { to })
            .await?
        {
            ForwardResponse::Written { outcome, log_index } => {
                self.shared.raise_safe(log_index);
                crate::keys::applied(outcome.first().0)?;
                self.wait_applied(log_index, std::time::Instant::now() + self.write_timeout)
                    .await
            }
            other => Err(NodeError::Internal(format!(
                "unexpected answer to a rotation: {other:?}"
            ))),
        }
    }

    /// On the leader: checks that every voter holds `to`, then proposes the
    /// start of the rotation.
    pub(crate) async fn lead_root_key_rotation(&self, to: RootKeyId) -> ForwardResponse {
        if self.raft.metrics().borrow().state != ServerState::Leader {
            return ForwardResponse::NotLeader { leader: None };
        }
        let members = {
            let m = self.raft.metrics().borrow().clone();
            let membership = m.membership_config.membership().clone();
            membership
                .voter_ids()
                .filter_map(|id| membership.get_node(&id).map(|n| (id, n.clone())))
                .collect::<Vec<_>>()
        };
        let mut lacking = Vec::new();
        for (id, info) in members {
            let held = if id == self.id {
                Ok(self.held_root_keys())
            } else {
                self.ask_held_root_keys(id, &info).await
            };
            match held {
                Ok(ids) if ids.contains(&to) => {}
                Ok(ids) => lacking.push(format!(
                    "node {id} holds only {}",
                    ids.iter()
                        .map(RootKeyId::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Err(e) => lacking.push(format!("node {id} did not answer ({e})")),
            }
        }
        if !lacking.is_empty() {
            return ForwardResponse::Refused(Rejection::InvalidState(format!(
                "every voter must hold root key {to} before the rotation starts: {}. \
                 Restart (one at a time) each of them with the new root key file added",
                lacking.join("; ")
            )));
        }
        let p = Proposal::new(None, Command::BeginRootKeyRotation { to });
        Box::pin(self.handle_forward(ForwardRequest::Write(Box::new(p)))).await
    }

    /// Asks node `id` which root keys it holds.
    pub(crate) async fn ask_held_root_keys(
        &self,
        id: crate::NodeId,
        info: &crate::NodeInfo,
    ) -> Result<Vec<RootKeyId>, String> {
        match self
            .peers
            .forward(id, info, &ForwardRequest::HeldRootKeys, HELD_KEYS_TIMEOUT)
            .await
        {
            Ok(ForwardResponse::HeldRootKeys(ids)) => Ok(ids),
            Ok(other) => Err(format!("unexpected answer {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// On the leader, while a rotation runs: re-wraps the next batch of secrets
/// not yet under the new key and proposes them; proposes the end once none
/// is left. Everything it needs is in the replica, so a new leader goes on.
pub(crate) async fn rewrap_loop(node: Arc<Node>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let running = node.shared.read().state.root_keys.rotation.is_some();
        let leading = node.raft.metrics().borrow().state == ServerState::Leader;
        if !(running && leading) {
            tokio::select! {
                _ = tick.tick() => {}
                _ = node.shutdown.cancelled() => return,
            }
            continue;
        }
        match rewrap_step(&node).await {
            Ok(()) => {
                if !node.rewrap_pause.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(node.rewrap_pause) => {}
                        _ = node.shutdown.cancelled() => return,
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "root-key rotation: a batch failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = node.shutdown.cancelled() => return,
                }
            }
        }
    }
}

async fn rewrap_step(node: &Node) -> Result<(), NodeError> {
    let (to, batch) = {
        let a = node.shared.read();
        let Some(r) = &a.state.root_keys.rotation else {
            return Ok(());
        };
        (r.to, a.state.not_wrapped_under(r.to, node.rewrap_batch))
    };
    let new = node.root.get(&to).ok_or_else(|| {
        NodeError::Unavailable(format!(
            "this leader does not hold root key {to}, the rotation's new key"
        ))
    })?;
    if batch.is_empty() {
        let outcome = node.propose(None, Command::FinishRootKeyRotation).await?;
        match outcome {
            Outcome::Applied => {
                tracing::info!(root_key = %to, "root-key rotation finished: every secret is wrapped under the new root key")
            }
            // Another batch landed first (a key created meanwhile): go on.
            Outcome::Rejected(Rejection::InvalidState(m)) => {
                tracing::debug!(reason = %m, "not finished yet")
            }
            other => tracing::warn!(outcome = ?other, "finishing the root-key rotation"),
        }
        return Ok(());
    }
    let items = batch
        .into_iter()
        .map(|(item, blob)| {
            let ctx = context(&item);
            let secret = node.root.unwrap(&blob, ctx).inspect_err(|_| {
                tracing::error!(item = ?item, "a secret does not unwrap under any root key this node holds; the rotation cannot finish until it does");
            })?;
            let wrapped = new.wrap(secret.expose(), ctx)?;
            Ok(Rewrapped { item, wrapped })
        })
        .collect::<Result<Vec<_>, CryptoError>>()?;
    let n = items.len();
    match node
        .propose(None, Command::RewrapMaterial { items })
        .await?
    {
        Outcome::Applied => {
            let s = node.shared.read().state.root_key_status();
            tracing::info!(
                root_key = %to,
                batch = n,
                rewrapped = s.rewrapped,
                remaining = s.remaining,
                "root-key rotation: secrets re-wrapped"
            );
            Ok(())
        }
        other => Err(NodeError::Internal(format!("re-wrap refused: {other:?}"))),
    }
}

/// On every node, once a rotation finished: builds a snapshot past its end
/// and purges the log up to it, which rewrites the data file (see
/// `store/db.rs` `Db::rewrite`), so no log entry, old snapshot or freed page
/// keeps a secret wrapped under the retired root key.
pub(crate) async fn shred_loop(node: Arc<Node>) {
    let mut applied = node.shared.applied_index();
    let mut metrics = node.raft.metrics();
    loop {
        let finished = node.shared.read().state.root_keys.finished_index;
        let done = store::read_local_meta(&node.db.get(), SHREDDED)
            .ok()
            .flatten()
            .and_then(|b| b.as_slice().try_into().ok().map(u64::from_be_bytes))
            .unwrap_or(0);
        if finished > done && node.shared.applied() >= finished {
            // The data directory remembers the root key it is written under
            // (checked at start-up before the replica is read): from now on,
            // the rotation's. Written before the rewrite below, so no freed
            // page keeps the old check value either.
            let active = node.shared.read().state.active_root_key();
            if let Some(key) = active.and_then(|id| node.root.get(&id)) {
                let kcv = key.check_value();
                let db = node.db.clone();
                let current = store::read_local_meta(&db.get(), store::ROOT_CHECK)
                    .ok()
                    .flatten();
                if current.as_deref() != Some(kcv.as_slice())
                    && db.write_meta(store::ROOT_CHECK, &kcv).is_err()
                {
                    tracing::warn!("could not record the new root key's check value");
                }
            }
            let m = metrics.borrow().clone();
            let snapshot = m.snapshot.map_or(0, |l| l.index);
            let purged = m.purged.map_or(0, |l| l.index);
            if snapshot < finished {
                if node.raft.trigger().snapshot().await.is_err() {
                    return;
                }
            } else if purged < finished {
                if node.raft.trigger().purge_log(finished).await.is_err() {
                    return;
                }
            } else {
                let db = node.db.clone();
                let _ = db.write_meta(SHREDDED, &finished.to_be_bytes());
                tracing::info!(upto = finished, "root-key rotation: the retired key's wrapping is shredded from this node's data file");
                continue;
            }
            // Wait for the snapshot or purge (or retry in a while).
            tokio::select! {
                _ = metrics.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = node.shutdown.cancelled() => return,
            }
            continue;
        }
        tokio::select! {
            r = applied.changed() => if r.is_err() { return },
            _ = node.shutdown.cancelled() => return,
        }
    }
}
