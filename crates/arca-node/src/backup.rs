//! Backups of the replicated state, restoring one into a new data
//! directory, recovering the survivor of a lost quorum, and refusing a data
//! directory that was put back from an older copy.
//!
//! **The backup file** (format 1):
//!
//! ```text
//! ARCA-BACKUP\n
//! {"format":1,"cluster_id":"…","log_index":…,…}\n      the manifest, one JSON line
//! <payload_len bytes>                                  the state machine (`store::encode_state`)
//! <32 bytes>                                           SHA-256 of everything before
//! ```
//!
//! The payload is the state machine as every node holds it: key metadata,
//! key material and access-key secrets *wrapped* under the root key, policies,
//! aliases, grants, and which root keys they are wrapped under (a root-key
//! rotation may be under way). It never holds a root key; the manifest names
//! the root keys by id, so a restore can tell whether it was given the right
//! ones. The trailing digest makes any changed byte — manifest or payload —
//! visible to [`parse`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use arca_crypto::wrap::{RootKeyId, RootKeyRing};
use arca_state::State;
use aws_lc_rs::digest;
use openraft::{CommittedLeaderId, EntryPayload, Membership};
use serde::{Deserialize, Serialize};

use crate::node::{Node, StartError};
use crate::store::{self, Applied};
use crate::types::{
    ForwardRequest, ForwardResponse, LogId, NodeId, NodeInfo, StoredMembership, Vote,
};
use crate::NodeError;

/// The first line of every backup file.
pub const MAGIC: &[u8] = b"ARCA-BACKUP\n";
/// The format this release writes and reads.
pub const FORMAT: u32 = 1;
/// A manifest line is never longer.
const MAX_MANIFEST: usize = 64 * 1024;
const DIGEST_LEN: usize = 32;

/// What a backup holds, in numbers a reader can check against the payload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub keys: u64,
    pub key_versions: u64,
    pub aliases: u64,
    pub access_keys: u64,
    pub users: u64,
    pub grants: u64,
}

impl Counts {
    pub fn of(state: &State) -> Self {
        Counts {
            keys: state.keys.len() as u64,
            key_versions: state.keys.values().map(|k| k.versions.len() as u64).sum(),
            aliases: state.aliases.len() as u64,
            access_keys: state.access_keys.len() as u64,
            users: state.users.len() as u64,
            grants: state.grants.len() as u64,
        }
    }

    fn differences(&self, found: &Counts) -> Vec<String> {
        let pairs = [
            ("keys", self.keys, found.keys),
            ("key versions", self.key_versions, found.key_versions),
            ("aliases", self.aliases, found.aliases),
            ("access keys", self.access_keys, found.access_keys),
            ("users", self.users, found.users),
            ("grants", self.grants, found.grants),
        ];
        pairs
            .iter()
            .filter(|(_, m, f)| m != f)
            .map(|(what, m, f)| format!("{what}: manifest {m}, payload {f}"))
            .collect()
    }
}

/// The manifest: the backup's first JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// The id (hex) of the cluster the backup was taken from.
    pub cluster_id: String,
    /// The log index (and its term) the state is exactly as of.
    pub log_index: u64,
    pub log_term: u64,
    /// When the node served it (milliseconds since the Unix epoch).
    pub created_ms: u64,
    /// The node that served it.
    pub node_id: NodeId,
    pub counts: Counts,
    pub payload_len: u64,
    /// SHA-256 (hex) of the payload.
    pub payload_sha256: String,
    /// The ids of the root keys the payload's secrets are wrapped under:
    /// one, or two while a root-key rotation was under way.
    pub root_key_ids: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("not an Arca backup: the file does not start with \"ARCA-BACKUP\"")]
    NotABackup,
    #[error("backup format {0} is not one this release reads (it reads format {FORMAT})")]
    Format(u32),
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    #[error("the backup's SHA-256 does not match its contents: the file was changed or damaged after it was written")]
    Digest,
    #[error("the payload's SHA-256 does not match the manifest's payload_sha256")]
    PayloadDigest,
    #[error("the manifest's counts do not match the payload: {0}")]
    Counts(String),
    #[error("the root keys given ({given}) lack root key {missing}, which the data is wrapped under: give its file with --root-key-file")]
    WrongRootKey { given: String, missing: String },
    #[error("{count} wrapped item(s) do not unwrap under the root keys (first: {first})")]
    Unwrap { count: usize, first: String },
    #[error("the data directory {0} already holds data: restore seeds a new node, so name a new or empty directory")]
    NotEmpty(PathBuf),
    #[error("{0}")]
    Recover(String),
    #[error("storage: {0}")]
    Storage(String),
    #[error("{0}: {1}")]
    Io(PathBuf, std::io::Error),
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

fn storage<E: std::fmt::Display>(e: E) -> BackupError {
    BackupError::Storage(e.to_string())
}

/// The cluster id (hex) of a state, if it was initialized.
fn cluster_id_hex(state: &State) -> Option<String> {
    state
        .cluster
        .as_ref()
        .map(|c| hex::encode(crate::peer_auth::cluster_id(c)))
}

/// Writes a backup of `state`, exact as of `log_id`, served by `node_id`.
pub fn encode(
    state: &State,
    log_id: LogId,
    node_id: NodeId,
    now_ms: u64,
) -> Result<(Manifest, Vec<u8>), BackupError> {
    let payload = store::encode_state(state).map_err(storage)?;
    encode_payload(state, payload, log_id, node_id, now_ms)
}

/// [`encode`] of `state` whose encoding (`store::encode_state`) is
/// `payload`.
fn encode_payload(
    state: &State,
    payload: Vec<u8>,
    log_id: LogId,
    node_id: NodeId,
    now_ms: u64,
) -> Result<(Manifest, Vec<u8>), BackupError> {
    let cluster = state
        .cluster
        .as_ref()
        .ok_or_else(|| BackupError::Damaged("the state has no cluster".into()))?;
    let manifest = Manifest {
        format: FORMAT,
        cluster_id: hex::encode(crate::peer_auth::cluster_id(cluster)),
        log_index: log_id.index,
        log_term: log_id.leader_id.term,
        created_ms: now_ms,
        node_id,
        counts: Counts::of(state),
        payload_len: payload.len() as u64,
        payload_sha256: hex::encode(sha256(&payload)),
        root_key_ids: root_key_ids(state),
    };
    let line = serde_json::to_vec(&manifest).map_err(storage)?;
    let mut out = Vec::with_capacity(MAGIC.len() + line.len() + 1 + payload.len() + DIGEST_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&line);
    out.push(b'\n');
    out.extend_from_slice(&payload);
    let digest = sha256(&out);
    out.extend_from_slice(&digest);
    Ok((manifest, out))
}

/// Reads a backup and checks it without the root key: its format, its
/// digest, the payload's SHA-256, that the payload decodes, and that the
/// manifest's counts, cluster id and check value describe it.
pub fn parse(bytes: &[u8]) -> Result<(Manifest, State), BackupError> {
    let rest = bytes.strip_prefix(MAGIC).ok_or(BackupError::NotABackup)?;
    let end = rest
        .iter()
        .take(MAX_MANIFEST)
        .position(|b| *b == b'\n')
        .ok_or_else(|| BackupError::Damaged("no manifest line".into()))?;
    let manifest: Manifest = serde_json::from_slice(&rest[..end]).map_err(|e| {
        // Report the format first when the manifest names another one.
        BackupError::Damaged(format!("the manifest does not parse: {e}"))
    })?;
    if manifest.format != FORMAT {
        return Err(BackupError::Format(manifest.format));
    }
    let body = &rest[end + 1..];
    let expected = usize::try_from(manifest.payload_len)
        .ok()
        .and_then(|n| n.checked_add(DIGEST_LEN))
        .ok_or_else(|| BackupError::Damaged("the payload length is too large".into()))?;
    if body.len() != expected {
        return Err(BackupError::Damaged(format!(
            "the file holds {} bytes after the manifest, the manifest says {} (payload) + {DIGEST_LEN} (digest): truncated or extended",
            body.len(),
            manifest.payload_len
        )));
    }
    let (signed, digest) = bytes.split_at(bytes.len() - DIGEST_LEN);
    if sha256(signed) != digest {
        return Err(BackupError::Digest);
    }
    let payload = &body[..body.len() - DIGEST_LEN];
    if hex::encode(sha256(payload)) != manifest.payload_sha256 {
        return Err(BackupError::PayloadDigest);
    }
    let mut state: State = store::decode_state(payload)
        .map_err(|e| BackupError::Damaged(format!("the payload does not decode: {e}")))?;
    state.rebuild_indexes();
    let diff = manifest.counts.differences(&Counts::of(&state));
    if !diff.is_empty() {
        return Err(BackupError::Counts(diff.join("; ")));
    }
    if state.cluster.is_none() {
        return Err(BackupError::Damaged("the payload holds no cluster".into()));
    }
    if cluster_id_hex(&state).as_deref() != Some(manifest.cluster_id.as_str()) {
        return Err(BackupError::Damaged(
            "the manifest's cluster id is not the payload's".into(),
        ));
    }
    if root_key_ids(&state) != manifest.root_key_ids {
        return Err(BackupError::Damaged(
            "the manifest's root key ids are not the payload's".into(),
        ));
    }
    Ok((manifest, state))
}

/// What [`verify_with_root`] unwrapped.
#[derive(Debug, Default)]
pub struct Unwrapped {
    pub key_versions: u64,
    pub access_keys: u64,
}

/// The ids of the root keys `state`'s secrets are wrapped under.
fn root_key_ids(state: &State) -> Vec<String> {
    state
        .root_keys_in_use()
        .iter()
        .map(RootKeyId::to_string)
        .collect()
}

/// Checks that `root` holds every root key the backup's secrets are wrapped
/// under and that every wrapped item in it unwraps (the unwrapped bytes are
/// dropped, zeroized, at once).
pub fn verify_with_root(
    manifest: &Manifest,
    state: &State,
    root: &RootKeyRing,
) -> Result<Unwrapped, BackupError> {
    let held: Vec<String> = root.ids().iter().map(RootKeyId::to_string).collect();
    if let Some(missing) = manifest.root_key_ids.iter().find(|id| !held.contains(id)) {
        return Err(BackupError::WrongRootKey {
            given: held_ids(root),
            missing: missing.clone(),
        });
    }
    let mut done = Unwrapped::default();
    let mut failed = Vec::new();
    for k in state.keys.values() {
        for v in &k.versions {
            if v.wrapped.is_empty() {
                // A key of origin EXTERNAL waiting for its material.
                continue;
            }
            let ctx = crate::actors::material_context(&k.key_id, v.version);
            match root.unwrap(&v.wrapped, ctx) {
                Ok(_) => done.key_versions += 1,
                Err(_) => failed.push(format!("key {} version {}", k.key_id, v.version)),
            }
        }
    }
    for a in state.access_keys.values() {
        match crate::credentials::unwrap_secret(root, a) {
            Ok(_) => done.access_keys += 1,
            Err(_) => failed.push(format!("access key {}", a.access_key_id)),
        }
    }
    match failed.first() {
        None => Ok(done),
        Some(first) => Err(BackupError::Unwrap {
            count: failed.len(),
            first: first.clone(),
        }),
    }
}

impl Node {
    /// A consistent backup of the replicated state, from this node's replica
    /// once it has applied every write acknowledged before the call (a read
    /// index from the leader). Read from the file in one read transaction,
    /// as a snapshot is (`store::encode_from_file`): nothing waits for it.
    pub async fn backup(&self) -> Result<(Manifest, Vec<u8>), NodeError> {
        if self.cluster_info().is_none() {
            return Err(NodeError::NotInitialized);
        }
        self.catch_up().await?;
        let db = self.db.clone();
        let (id, now) = (self.id, self.now_ms());
        let out = tokio::task::spawn_blocking(move || {
            let (payload, last, _) = store::encode_from_file(&db.get()).map_err(storage)?;
            let last = last.ok_or_else(|| BackupError::Damaged("nothing applied yet".into()))?;
            // The manifest describes the state: its counts and root keys.
            let state = store::decode_state(&payload).map_err(storage)?;
            encode_payload(&state, payload, last, id, now)
        })
        .await
        .map_err(|e| NodeError::Internal(e.to_string()))?
        .map_err(|e| NodeError::Internal(e.to_string()))?;
        self.last_backup_ms
            .store(now, std::sync::atomic::Ordering::Relaxed);
        Ok(out)
    }

    /// Seconds since this node last served a backup (`None`: not since it
    /// started).
    pub fn backup_age_seconds(&self) -> Option<u64> {
        match self
            .last_backup_ms
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => None,
            at => Some(self.now_ms().saturating_sub(at) / 1000),
        }
    }
}

/// The one node a restored or recovered data directory makes a cluster of.
pub struct SeedNode {
    pub node_id: NodeId,
    pub info: NodeInfo,
}

/// What a restore or recovery wrote.
#[derive(Debug)]
pub struct Seeded {
    pub node_id: NodeId,
    pub log_index: u64,
    pub term: u64,
    pub counts: Counts,
    /// The new cluster's id (hex).
    pub cluster_id: String,
}

fn single_membership(node: &SeedNode, log_id: LogId) -> StoredMembership {
    StoredMembership::new(
        Some(log_id),
        Membership::new(
            vec![BTreeSet::from([node.node_id])],
            BTreeMap::from([(node.node_id, node.info.clone())]),
        ),
    )
}

/// Writes a one-node cluster holding `state` into the empty directory
/// `dir`: the node has just installed a snapshot at `index` in `term`.
fn seed(
    dir: &Path,
    node: &SeedNode,
    state: State,
    index: u64,
    term: u64,
    root_check: [u8; 16],
) -> Result<Seeded, BackupError> {
    let log_id = LogId::new(CommittedLeaderId::new(term, node.node_id), index);
    let counts = Counts::of(&state);
    let cluster_id = cluster_id_hex(&state).unwrap_or_default();
    let applied = Applied {
        state,
        last_applied: Some(log_id),
        membership: single_membership(node, log_id),
    };
    let db = store::open_database(dir).map_err(storage)?;
    store::seed_database(
        &db,
        &applied,
        &Vote::new_committed(term, node.node_id),
        &[
            (store::ROOT_CHECK, root_check.to_vec()),
            (store::NODE_ID, node.node_id.to_be_bytes().to_vec()),
        ],
    )
    .map_err(storage)?;
    Ok(Seeded {
        node_id: node.node_id,
        log_index: index,
        term,
        counts,
        cluster_id,
    })
}

/// Whether `dir` holds a database already.
fn has_data(dir: &Path) -> bool {
    std::fs::metadata(dir.join("arca.redb")).is_ok_and(|m| m.len() > 0)
}

/// Seeds `dir` (new or empty) from a backup as the only node of a new
/// cluster: the same keys, aliases, policies, grants and access keys, a new
/// cluster id. `root` must hold the keys the backup was made under; every
/// wrapped item is unwrapped once to prove it. A root-key rotation the
/// backup caught under way goes on in the new cluster.
pub fn restore(
    backup: &[u8],
    dir: &Path,
    root: &RootKeyRing,
    node: &SeedNode,
    now_ms: u64,
) -> Result<Seeded, BackupError> {
    let (manifest, mut state) = parse(backup)?;
    verify_with_root(&manifest, &state, root)?;
    if has_data(dir) {
        return Err(BackupError::NotEmpty(dir.to_path_buf()));
    }
    // A new cluster: its id is derived from the cluster facts, the creation
    // time among them.
    if let Some(c) = state.cluster.as_mut() {
        c.created_ms = now_ms.max(c.created_ms + 1);
    }
    let root_check = active_check_value(&state, root)?;
    // Key revisions are log indexes: the new log continues past them.
    seed(dir, node, state, manifest.log_index + 1, 1, root_check)
}

fn held_ids(root: &RootKeyRing) -> String {
    root.ids()
        .iter()
        .map(RootKeyId::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The check value a seeded data directory remembers: that of the root key
/// the state's new secrets are wrapped under (see `Node::start`).
fn active_check_value(state: &State, root: &RootKeyRing) -> Result<[u8; 16], BackupError> {
    match state.wrapping_root_key() {
        None => Ok(root.first().check_value()),
        Some(id) => {
            root.get(&id)
                .map(|k| k.check_value())
                .ok_or_else(|| BackupError::WrongRootKey {
                    given: held_ids(root),
                    missing: id.to_string(),
                })
        }
    }
}

/// What [`recover`] found in the surviving node's data directory.
#[derive(Debug)]
pub struct Recovered {
    pub seeded: Seeded,
    /// The members it had (they are no longer members).
    pub old_members: Vec<NodeId>,
    pub applied_before: u64,
    /// Entries past the applied index that were applied now.
    pub reapplied: u64,
}

/// Turns a stopped node's data directory into a one-node cluster with
/// everything the node had: its state machine plus every entry in its log
/// past the applied index (as etcd's `--force-new-cluster` commits its
/// whole log). The cluster keeps its id; the node leads a new term alone.
pub fn recover(dir: &Path, root: &RootKeyRing) -> Result<Recovered, BackupError> {
    let path = dir.join("arca.redb");
    if !has_data(dir) {
        return Err(BackupError::Recover(format!(
            "{} does not exist: name the data directory of the surviving node",
            path.display()
        )));
    }
    let db = redb::Database::open(&path).map_err(|e| {
        BackupError::Recover(format!(
            "cannot open {} ({e}): stop the node first (recovery runs offline)",
            path.display()
        ))
    })?;
    let node_id = store::read_local_meta(&db, store::NODE_ID)
        .map_err(storage)?
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| BackupError::Recover("the data directory names no node id".into()))?;
    let mut applied = store::load_applied(&db).map_err(storage)?;
    if applied.state.cluster.is_none() {
        return Err(BackupError::Recover(
            "this node never joined an initialized cluster: nothing to recover".into(),
        ));
    }
    let applied_before = applied.last_applied.map_or(0, |l| l.index);
    let mut membership = applied.membership.membership().clone();
    let mut last = applied.last_applied;
    let mut reapplied = 0;
    for e in store::all_log_entries(&db).map_err(storage)? {
        if Some(e.log_id.index) <= last.map(|l| l.index) {
            continue;
        }
        match e.payload {
            EntryPayload::Normal(p) => {
                let _ = applied.state.apply(e.log_id.index, p);
                reapplied += 1;
            }
            EntryPayload::Membership(m) => membership = m,
            EntryPayload::Blank => {}
        }
        last = Some(e.log_id);
    }
    // The keys the state's secrets are wrapped under, as a node checks at
    // start-up (after a rotation, not the key the directory began with).
    for id in applied.state.root_keys_in_use() {
        if !root.holds(&id) {
            return Err(BackupError::WrongRootKey {
                given: held_ids(root),
                missing: id.to_string(),
            });
        }
    }
    let check = active_check_value(&applied.state, root)?;
    let vote_term = store::stored_vote_term(&db).map_err(storage)?;
    drop(db);
    let last = last.ok_or_else(|| BackupError::Recover("the log is empty".into()))?;
    let info = membership.get_node(&node_id).cloned().ok_or_else(|| {
        BackupError::Recover(format!("node {node_id} is not in its own membership"))
    })?;
    let old_members: Vec<NodeId> = membership.nodes().map(|(id, _)| *id).collect();
    let term = vote_term.max(last.leader_id.term) + 1;

    // Write the new database beside the old one, then put it in its place.
    let work = dir.join("recover.tmp");
    let _ = std::fs::remove_dir_all(&work);
    let seeded = seed(
        &work,
        &SeedNode { node_id, info },
        applied.state,
        last.index + 1,
        term,
        check,
    )?;
    // The new snapshot's file first (its name, of the new term, is no old
    // file's; the old ones go at the next start), then the database.
    let snapshots = dir.join(store::SNAPSHOT_DIR);
    store::ensure_private_dir(&snapshots).map_err(|e| BackupError::Io(snapshots.clone(), e))?;
    let seeded_snapshots = work.join(store::SNAPSHOT_DIR);
    let files = std::fs::read_dir(&seeded_snapshots)
        .map_err(|e| BackupError::Io(seeded_snapshots.clone(), e))?;
    for f in files {
        let f = f.map_err(|e| BackupError::Io(seeded_snapshots.clone(), e))?;
        let to = snapshots.join(f.file_name());
        std::fs::rename(f.path(), &to).map_err(|e| BackupError::Io(to, e))?;
    }
    std::fs::File::open(&snapshots)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::Io(snapshots.clone(), e))?;
    std::fs::rename(work.join("arca.redb"), &path).map_err(|e| BackupError::Io(path.clone(), e))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| BackupError::Io(dir.to_path_buf(), e))?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(Recovered {
        seeded,
        old_members,
        applied_before,
        reapplied,
    })
}

/// How long [`refuse_put_back`] waits for each member's answer: a member
/// that is down refuses the connection at once; a busy leader gets time.
const PUT_BACK_ASK: Duration = Duration::from_secs(5);

/// Refuses to start on a data directory older than what the cluster knows
/// this node wrote: the leader has this node's log matched up to an index
/// past this directory's last entry. That happens when a copy of the
/// directory is put back in place; the node lost entries it acknowledged
/// (and perhaps a vote), which Raft cannot tolerate, and the leader cannot
/// replicate to it. Asks each other member for the cluster status; only the
/// leader answers with matched indexes. No answer (no quorum, no leader) is
/// no evidence, and the node starts.
pub(crate) async fn refuse_put_back(
    node_id: NodeId,
    data_dir: &Path,
    db: &store::Db,
    shared: &store::SharedState,
    peers: &crate::network::PeerClient,
) -> Result<(), StartError> {
    let st = |e: crate::types::StorageError| StartError::Storage(e.to_string());
    let last = store::last_log_id(&db.get())
        .map_err(st)?
        .map_or(0, |l| l.index);
    let others: Vec<(NodeId, NodeInfo)> = {
        let a = shared.read();
        if a.state.cluster.is_none() {
            return Ok(());
        }
        a.membership
            .membership()
            .nodes()
            .filter(|(id, _)| **id != node_id)
            .map(|(id, info)| (*id, info.clone()))
            .collect()
    };
    for (id, info) in others {
        let answer = peers
            .forward(id, &info, &ForwardRequest::Status, PUT_BACK_ASK)
            .await;
        let Ok(ForwardResponse::Status(status)) = answer else {
            continue;
        };
        let matched = status
            .members
            .iter()
            .find(|m| m.node_id == node_id)
            .and_then(|m| m.matched_index);
        // A follower's status has no matched indexes: ask the next member.
        let Some(m) = matched else {
            continue;
        };
        return if m > last {
            Err(StartError::PutBack {
                dir: data_dir.to_path_buf(),
                node_id,
                matched: m,
                last,
                leader: id,
            })
        } else {
            Ok(())
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_crypto::wrap::RootKey;
    use arca_state::ClusterInfo;

    fn state() -> State {
        State {
            cluster: Some(ClusterInfo {
                region: "us-east-1".into(),
                account_id: "111122223333".into(),
                root_check_value: [7; 16],
                created_ms: 1,
            }),
            ..State::default()
        }
    }

    fn log_id(i: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(3, 1), i)
    }

    #[test]
    fn a_backup_round_trips_and_every_changed_byte_is_caught() {
        let (m, bytes) = encode(&state(), log_id(42), 1, 1000).unwrap();
        assert_eq!(m.log_index, 42);
        assert_eq!(m.log_term, 3);
        let (back, s) = parse(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(s.cluster, state().cluster);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(parse(&bad).is_err(), "a flipped byte at {i} was not caught");
        }
        assert!(parse(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(parse(&longer).is_err());
        assert!(matches!(parse(b"hello"), Err(BackupError::NotABackup)));
    }

    #[test]
    fn a_wrong_root_key_is_named_by_its_id() {
        let (root, _) = RootKey::generate().unwrap();
        let (m, bytes) = encode(&state(), log_id(1), 1, 1).unwrap();
        let (_, s) = parse(&bytes).unwrap();
        let expected = RootKeyId::from_check_value(&[7; 16]).to_string();
        assert_eq!(m.root_key_ids, vec![expected.clone()]);
        let ring = RootKeyRing::new(vec![root]).unwrap();
        let e = verify_with_root(&m, &s, &ring).unwrap_err();
        assert!(matches!(e, BackupError::WrongRootKey { .. }), "{e}");
        assert!(e.to_string().contains(&expected), "{e}");
    }
}
