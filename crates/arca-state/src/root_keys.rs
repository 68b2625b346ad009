//! Which root key the cluster's secrets are wrapped under, and the online
//! rotation from one root key to another.
//!
//! A rotation is replicated state: [`Command::BeginRootKeyRotation`] names the
//! new key, after which new secrets are wrapped under it; the leader's
//! background task re-wraps the existing ones in batches
//! ([`Command::RewrapMaterial`]), from whatever the state says is left, so a
//! new leader continues where the old one stopped; and
//! [`Command::FinishRootKeyRotation`] makes the new key the only one in use,
//! once nothing is wrapped under another. Apply only reads the headers of the
//! wrapped blobs (`arca_crypto::wrap::wrapped_under`), never opens them.

use arca_crypto::wrap::{wrapped_under, RootKeyId, WrappedUnder};
use serde::{Deserialize, Serialize};

use crate::{Command, KeyId, Rejection, State, Touched};

/// The most secrets one [`Command::RewrapMaterial`] may carry.
pub const MAX_REWRAP_BATCH: usize = 1000;

/// The cluster's root keys, as far as the replicated state knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKeys {
    /// The root key every secret is wrapped under when no rotation runs;
    /// `None`: the key the cluster was created with
    /// (`ClusterInfo::root_check_value`).
    pub active: Option<RootKeyId>,
    /// A rotation in progress.
    pub rotation: Option<RootKeyRotation>,
    /// Root keys that earlier rotations retired: nothing is wrapped under them.
    pub retired: Vec<RootKeyId>,
    /// The log index of the entry that finished the last rotation (0: none).
    pub finished_index: u64,
}

/// A rotation from one root key to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKeyRotation {
    pub from: RootKeyId,
    pub to: RootKeyId,
    /// The leader's stamp of the entry that began it.
    pub started_ms: u64,
    /// Secrets re-wrapped so far.
    pub rewrapped: u64,
}

/// A secret of the state that is wrapped under the root key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Wrapped {
    /// The material of one version of a key.
    KeyVersion { key_id: KeyId, version: u32 },
    /// An access key's secret.
    AccessKey { access_key_id: String },
}

/// A secret re-wrapped under the rotation's new root key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rewrapped {
    pub item: Wrapped,
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for Rewrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rewrapped")
            .field("item", &self.item)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

/// Progress of a rotation, as status reports show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootKeyStatus {
    /// The root key new secrets are wrapped under.
    pub active: Option<RootKeyId>,
    pub rotating_from: Option<RootKeyId>,
    pub rotating_to: Option<RootKeyId>,
    pub rewrapped: u64,
    /// Secrets still wrapped under another root key than `rotating_to`.
    pub remaining: u64,
    /// Root keys every node must hold now.
    pub in_use: Vec<RootKeyId>,
}

impl State {
    /// The root key the cluster was created with.
    pub fn original_root_key(&self) -> Option<RootKeyId> {
        self.cluster
            .as_ref()
            .map(|c| RootKeyId::from_check_value(&c.root_check_value))
    }

    /// The root key every secret is under when no rotation runs.
    pub fn active_root_key(&self) -> Option<RootKeyId> {
        self.root_keys.active.or_else(|| self.original_root_key())
    }

    /// The root key a node wraps new secrets under: the rotation's new key
    /// while one runs. `None` before the cluster is initialized.
    pub fn wrapping_root_key(&self) -> Option<RootKeyId> {
        match &self.root_keys.rotation {
            Some(r) => Some(r.to),
            None => self.active_root_key(),
        }
    }

    /// The root keys a node must hold to open every secret of this state.
    pub fn root_keys_in_use(&self) -> Vec<RootKeyId> {
        match &self.root_keys.rotation {
            Some(r) => vec![r.from, r.to],
            None => self.active_root_key().into_iter().collect(),
        }
    }

    /// The root key a blob of this state is wrapped under (`None`: not a
    /// wrapped blob).
    pub fn blob_root_key(&self, blob: &[u8]) -> Option<RootKeyId> {
        match wrapped_under(blob) {
            WrappedUnder::Key(id) => Some(id),
            WrappedUnder::Legacy => self.original_root_key(),
            WrappedUnder::Unknown => None,
        }
    }

    /// Every wrapped secret of the state, with its blob.
    pub fn wrapped_secrets(&self) -> impl Iterator<Item = (Wrapped, &[u8])> {
        let versions = self.keys.values().flat_map(|k| {
            k.versions.iter().map(move |v| {
                (
                    Wrapped::KeyVersion {
                        key_id: k.key_id,
                        version: v.version,
                    },
                    v.wrapped.as_slice(),
                )
            })
        });
        let access = self.access_keys.values().map(|a| {
            (
                Wrapped::AccessKey {
                    access_key_id: a.access_key_id.clone(),
                },
                a.wrapped_secret.as_slice(),
            )
        });
        versions.chain(access)
    }

    /// Up to `limit` secrets wrapped under another root key than `to`.
    pub fn not_wrapped_under(&self, to: RootKeyId, limit: usize) -> Vec<(Wrapped, Vec<u8>)> {
        self.wrapped_secrets()
            .filter(|(_, b)| self.blob_root_key(b).is_some_and(|id| id != to))
            .take(limit)
            .map(|(w, b)| (w, b.to_vec()))
            .collect()
    }

    fn count_not_wrapped_under(&self, to: RootKeyId) -> u64 {
        self.wrapped_secrets()
            .filter(|(_, b)| self.blob_root_key(b).is_some_and(|id| id != to))
            .count() as u64
    }

    /// The root keys and the progress of a rotation.
    pub fn root_key_status(&self) -> RootKeyStatus {
        let r = self.root_keys.rotation.as_ref();
        RootKeyStatus {
            active: self.wrapping_root_key(),
            rotating_from: r.map(|r| r.from),
            rotating_to: r.map(|r| r.to),
            rewrapped: r.map_or(0, |r| r.rewrapped),
            remaining: r.map_or(0, |r| self.count_not_wrapped_under(r.to)),
            in_use: self.root_keys_in_use(),
        }
    }

    /// Whether the secrets a command brings are wrapped under a root key in
    /// use. A node that prepared the command before it learned of a
    /// rotation's end wrapped it under the retired key: refused, retriably
    /// (and not remembered, so the client's retry is prepared afresh).
    pub(crate) fn admissible(&self, cmd: &Command) -> Result<(), Rejection> {
        if self.cluster.is_none() {
            return Ok(());
        }
        let blobs: Vec<&[u8]> = match cmd {
            Command::CreateKey { key } => {
                key.versions.iter().map(|v| v.wrapped.as_slice()).collect()
            }
            Command::RotateKey { version, .. } | Command::CreateKeyVersion { version, .. } => {
                vec![version.wrapped.as_slice()]
            }
            Command::CreateAccessKey { key } => vec![key.wrapped_secret.as_slice()],
            Command::ImportKeyMaterial { wrapped, .. } => vec![wrapped.as_slice()],
            _ => return Ok(()),
        };
        let in_use = self.root_keys_in_use();
        for b in blobs {
            if let Some(id) = self.blob_root_key(b) {
                if !in_use.contains(&id) {
                    return Err(Rejection::Busy(format!(
                        "the secret was wrapped under root key {id}, which the cluster no longer uses (a root-key rotation just ended); retry"
                    )));
                }
            }
        }
        Ok(())
    }

    pub(crate) fn begin_root_key_rotation(
        &mut self,
        to: RootKeyId,
        stamp_ms: u64,
    ) -> Result<Vec<Touched>, Rejection> {
        if let Some(r) = &self.root_keys.rotation {
            if r.to == to {
                // A repeated request: the rotation it asked for runs.
                return Ok(Vec::new());
            }
            return Err(Rejection::InvalidState(format!(
                "a rotation from root key {} to {} is in progress; wait for it to finish",
                r.from, r.to
            )));
        }
        let from = self.active_root_key().ok_or(Rejection::NotInitialized)?;
        if from == to {
            return Err(Rejection::InvalidState(format!(
                "root key {to} is already the cluster's root key"
            )));
        }
        if self.root_keys.retired.contains(&to) {
            return Err(Rejection::InvalidState(format!(
                "root key {to} was retired by an earlier rotation; rotate to a new root key"
            )));
        }
        self.root_keys.rotation = Some(RootKeyRotation {
            from,
            to,
            started_ms: stamp_ms,
            rewrapped: 0,
        });
        Ok(vec![Touched::RootKeys])
    }

    pub(crate) fn rewrap_material(
        &mut self,
        items: Vec<Rewrapped>,
    ) -> Result<Vec<Touched>, Rejection> {
        let to = match &self.root_keys.rotation {
            Some(r) => r.to,
            None => {
                return Err(Rejection::InvalidState(
                    "no root-key rotation is in progress".into(),
                ))
            }
        };
        if items.len() > MAX_REWRAP_BATCH {
            return Err(Rejection::Invalid(format!(
                "at most {MAX_REWRAP_BATCH} secrets are re-wrapped at once"
            )));
        }
        if let Some(bad) = items
            .iter()
            .find(|i| wrapped_under(&i.wrapped) != WrappedUnder::Key(to))
        {
            return Err(Rejection::Invalid(format!(
                "{:?} is not wrapped under the rotation's root key {to}",
                bad.item
            )));
        }
        let mut touched = Vec::new();
        let mut done = 0u64;
        for Rewrapped { item, wrapped } in items {
            // A secret deleted meanwhile is skipped; one already under the
            // new key (a batch proposed twice) is left alone.
            let (current, t) = match &item {
                Wrapped::KeyVersion { key_id, version } => {
                    let Some(v) = self
                        .keys
                        .get_mut(key_id)
                        .and_then(|k| k.versions.iter_mut().find(|v| v.version == *version))
                    else {
                        continue;
                    };
                    (&mut v.wrapped, Touched::Key(*key_id))
                }
                Wrapped::AccessKey { access_key_id } => {
                    let Some(a) = self.access_keys.get_mut(access_key_id) else {
                        continue;
                    };
                    (
                        &mut a.wrapped_secret,
                        Touched::AccessKey(access_key_id.clone()),
                    )
                }
            };
            if wrapped_under(current) == WrappedUnder::Key(to) {
                continue;
            }
            // The material is unchanged (only its wrapping is): the key's
            // revision stays, and a key actor's unwrapped copy stays valid.
            *current = wrapped;
            done += 1;
            if !touched.contains(&t) {
                touched.push(t);
            }
        }
        if let Some(r) = &mut self.root_keys.rotation {
            r.rewrapped += done;
        }
        touched.push(Touched::RootKeys);
        Ok(touched)
    }

    pub(crate) fn finish_root_key_rotation(
        &mut self,
        index: u64,
    ) -> Result<Vec<Touched>, Rejection> {
        let Some(r) = self.root_keys.rotation.clone() else {
            return Err(Rejection::InvalidState(
                "no root-key rotation is in progress".into(),
            ));
        };
        let left = self.count_not_wrapped_under(r.to);
        if left > 0 {
            return Err(Rejection::InvalidState(format!(
                "{left} secrets are still wrapped under another root key than {}",
                r.to
            )));
        }
        self.root_keys.active = Some(r.to);
        self.root_keys.rotation = None;
        if !self.root_keys.retired.contains(&r.from) {
            self.root_keys.retired.push(r.from);
        }
        self.root_keys.finished_index = index;
        Ok(vec![Touched::RootKeys])
    }
}

#[cfg(test)]
mod tests {
    use arca_crypto::wrap::{RootKey, WrapContext};

    use super::*;
    use crate::{
        AccessKeyRecord, ClusterInfo, KeyRecord, KeySpec, KeyUsage, KeyVersion, Outcome, Proposal,
        RequestKey, BOOTSTRAP_ADMIN_USER,
    };

    fn ctx(n: u8) -> WrapContext<'static> {
        WrapContext {
            purpose: "test",
            id: &[],
            version: u32::from(n),
        }
    }

    fn version(root: &RootKey, n: u8) -> KeyVersion {
        KeyVersion {
            version: 1,
            version_id: format!("v{n}").into(),
            public_key: None,
            wrapped: root.wrap(&[n; 32], ctx(n)).unwrap(),
            created_ms: 1,
        }
    }

    fn create(root: &RootKey, n: u8) -> Command {
        Command::CreateKey {
            key: KeyRecord::new(
                KeyId::from_bytes([n; 16]),
                String::new(),
                KeyUsage::EncryptDecrypt,
                KeySpec::SymmetricDefault,
                version(root, n),
            ),
        }
    }

    fn apply(s: &mut State, index: u64, cmd: Command) -> Outcome {
        s.apply(index, Proposal::new(None, cmd).with_stamp(1000)).0
    }

    /// A cluster created under `old` with keys 1..=3 and the admin's access key.
    fn cluster(old: &RootKey) -> State {
        let mut s = State::default();
        let init = Command::InitCluster {
            info: ClusterInfo {
                region: "us-east-1".into(),
                account_id: "111122223333".into(),
                root_check_value: old.check_value(),
                created_ms: 1,
            },
            admin: AccessKeyRecord {
                access_key_id: "AKIAADMIN".into(),
                wrapped_secret: old.wrap(b"secret", ctx(0)).unwrap(),
                user: BOOTSTRAP_ADMIN_USER.into(),
                created_ms: 1,
            },
        };
        assert_eq!(apply(&mut s, 1, init), Outcome::Applied);
        for n in 1..=3 {
            assert_eq!(
                apply(&mut s, 1 + u64::from(n), create(old, n)),
                Outcome::Applied
            );
        }
        s
    }

    /// What the leader's task does: re-wrap up to `limit` secrets.
    fn batch(s: &State, old: &RootKey, new: &RootKey, limit: usize) -> Command {
        let to = new.id();
        let items = s
            .not_wrapped_under(to, limit)
            .into_iter()
            .map(|(item, blob)| {
                let n = match &item {
                    Wrapped::KeyVersion { key_id, .. } => key_id.as_bytes()[0],
                    Wrapped::AccessKey { .. } => 0,
                };
                let secret = old.unwrap(&blob, ctx(n)).unwrap();
                Rewrapped {
                    item,
                    wrapped: new.wrap(secret.expose(), ctx(n)).unwrap(),
                }
            })
            .collect();
        Command::RewrapMaterial { items }
    }

    #[test]
    fn a_rotation_moves_every_secret_and_then_only_the_new_key_is_in_use() {
        let (old, _) = RootKey::generate().unwrap();
        let (new, _) = RootKey::generate().unwrap();
        let mut s = cluster(&old);
        assert_eq!(s.root_keys_in_use(), vec![old.id()]);
        assert_eq!(s.wrapping_root_key(), Some(old.id()));
        // Nothing to finish before a rotation began.
        assert!(matches!(
            apply(&mut s, 10, Command::FinishRootKeyRotation),
            Outcome::Rejected(Rejection::InvalidState(_))
        ));
        let begin = Command::BeginRootKeyRotation { to: new.id() };
        assert_eq!(apply(&mut s, 11, begin.clone()), Outcome::Applied);
        // Asked again: the same rotation runs, nothing changes.
        let before = s.clone();
        assert_eq!(apply(&mut s, 12, begin), Outcome::Applied);
        assert_eq!(s.root_keys, before.root_keys);
        assert_eq!(s.root_keys_in_use(), vec![old.id(), new.id()]);
        assert_eq!(s.wrapping_root_key(), Some(new.id()));
        assert_eq!(s.root_key_status().remaining, 4);
        // A key created meanwhile under either key is accepted.
        assert_eq!(apply(&mut s, 13, create(&old, 4)), Outcome::Applied);
        assert_eq!(apply(&mut s, 14, create(&new, 5)), Outcome::Applied);
        // Not finished while anything is under the old key.
        assert!(matches!(
            apply(&mut s, 15, Command::FinishRootKeyRotation),
            Outcome::Rejected(Rejection::InvalidState(_))
        ));
        let mut index = 16;
        while s.root_key_status().remaining > 0 {
            let b = batch(&s, &old, &new, 2);
            assert_eq!(apply(&mut s, index, b.clone()), Outcome::Applied);
            // The same batch again (a new leader re-proposing it) changes nothing.
            let before = s.clone();
            assert_eq!(apply(&mut s, index + 1, b), Outcome::Applied);
            assert_eq!(s.keys, before.keys);
            assert_eq!(s.root_keys, before.root_keys);
            index += 2;
        }
        assert_eq!(s.root_key_status().rewrapped, 5);
        assert_eq!(
            apply(&mut s, 99, Command::FinishRootKeyRotation),
            Outcome::Applied
        );
        assert_eq!(s.root_keys_in_use(), vec![new.id()]);
        assert_eq!(s.root_keys.finished_index, 99);
        assert_eq!(s.root_keys.retired, vec![old.id()]);
        for (_, b) in s.wrapped_secrets() {
            assert_eq!(s.blob_root_key(b), Some(new.id()));
            assert!(old.unwrap(b, ctx(0)).is_err());
        }
        // A secret a late node wrapped under the retired key is refused,
        // retriably, and its request identity is not remembered.
        let rid = RequestKey {
            id: [7; 16],
            fingerprint: [7; 16],
        };
        let late = Proposal::new(Some(rid), create(&old, 6)).with_stamp(1000);
        assert!(matches!(
            s.apply(100, late).0,
            Outcome::Rejected(Rejection::Busy(_))
        ));
        assert!(!s.dedup.entries.contains_key(&rid.id));
        let retry = Proposal::new(Some(rid), create(&new, 6)).with_stamp(1000);
        assert_eq!(s.apply(101, retry).0, Outcome::Applied);
        // The retired key cannot come back; the active one is not a rotation.
        for to in [old.id(), new.id()] {
            assert!(matches!(
                apply(&mut s, 102, Command::BeginRootKeyRotation { to }),
                Outcome::Rejected(Rejection::InvalidState(_))
            ));
        }
    }

    #[test]
    fn a_batch_must_be_under_the_new_key_and_one_rotation_runs_at_a_time() {
        let (old, _) = RootKey::generate().unwrap();
        let (new, _) = RootKey::generate().unwrap();
        let (other, _) = RootKey::generate().unwrap();
        let mut s = cluster(&old);
        // No rotation: nothing to re-wrap.
        let early = batch(&s, &old, &new, 1);
        assert!(matches!(
            apply(&mut s, 10, early),
            Outcome::Rejected(Rejection::InvalidState(_))
        ));
        apply(&mut s, 11, Command::BeginRootKeyRotation { to: new.id() });
        assert!(matches!(
            apply(&mut s, 12, Command::BeginRootKeyRotation { to: other.id() }),
            Outcome::Rejected(Rejection::InvalidState(_))
        ));
        let wrong = batch(&s, &old, &other, 1);
        let before = s.clone();
        assert!(matches!(
            apply(&mut s, 13, wrong),
            Outcome::Rejected(Rejection::Invalid(_))
        ));
        assert_eq!(s.keys, before.keys);
    }
}
