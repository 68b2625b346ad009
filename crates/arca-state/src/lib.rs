//! The replicated state machine: what every node agrees on, and the commands
//! that change it.
//!
//! This crate is pure: no I/O, no clock, no randomness. A [`Command`] carries
//! everything its outcome depends on (ids, timestamps, wrapped material), chosen
//! by the node that proposed it, so [`State::apply`] gives the same result on
//! every node and on every replay.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod ids;

pub use ids::KeyId;

/// What a key is for; fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyUsage {
    EncryptDecrypt,
}

impl KeyUsage {
    pub fn as_aws(&self) -> &'static str {
        match self {
            KeyUsage::EncryptDecrypt => "ENCRYPT_DECRYPT",
        }
    }
}

/// The kind of key material; fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeySpec {
    SymmetricDefault,
}

impl KeySpec {
    pub fn as_aws(&self) -> &'static str {
        match self {
            KeySpec::SymmetricDefault => "SYMMETRIC_DEFAULT",
        }
    }

    pub fn encryption_algorithms(&self) -> &'static [&'static str] {
        match self {
            KeySpec::SymmetricDefault => &["SYMMETRIC_DEFAULT"],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
}

impl KeyState {
    pub fn as_aws(&self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
        }
    }
}

/// One version of a key's material, wrapped under the root key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersion {
    pub version: u32,
    /// `RootKey::wrap` output, bound to (key id, version).
    pub wrapped: Vec<u8>,
    pub created_ms: u64,
}

impl std::fmt::Debug for KeyVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyVersion")
            .field("version", &self.version)
            .field("wrapped_len", &self.wrapped.len())
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: KeyId,
    pub description: String,
    pub created_ms: u64,
    pub usage: KeyUsage,
    pub spec: KeySpec,
    pub state: KeyState,
    /// Oldest first; never empty. The last one is the primary (used to encrypt).
    pub versions: Vec<KeyVersion>,
    /// Log index of the last command that changed this key: a key actor whose
    /// cached copy has another revision reloads before serving.
    pub revision: u64,
}

impl KeyRecord {
    pub fn primary(&self) -> &KeyVersion {
        // `versions` is never empty: CreateKey validates it, nothing removes one.
        self.versions
            .last()
            .expect("a key always has at least one version")
    }

    pub fn version(&self, v: u32) -> Option<&KeyVersion> {
        self.versions.iter().find(|x| x.version == v)
    }
}

/// An API credential. The secret is wrapped under the root key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub wrapped_secret: Vec<u8>,
    pub admin: bool,
    pub created_ms: u64,
}

impl std::fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("access_key_id", &self.access_key_id)
            .field("admin", &self.admin)
            .finish()
    }
}

/// Cluster-wide facts fixed at `cluster init`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub region: String,
    pub account_id: String,
    /// `RootKey::check_value` of the root key the cluster was created with.
    pub root_check_value: [u8; 16],
    pub created_ms: u64,
}

impl ClusterInfo {
    pub fn key_arn(&self, key_id: &KeyId) -> String {
        format!(
            "arn:aws:kms:{}:{}:key/{}",
            self.region, self.account_id, key_id
        )
    }
}

/// A change to the replicated state, as proposed to Raft.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    InitCluster {
        info: ClusterInfo,
        admin: AccessKeyRecord,
    },
    CreateKey {
        key: KeyRecord,
    },
    CreateAccessKey {
        key: AccessKeyRecord,
    },
}

impl Command {
    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::InitCluster { .. } => "InitCluster",
            Command::CreateKey { .. } => "CreateKey",
            Command::CreateAccessKey { .. } => "CreateAccessKey",
        }
    }
}

/// The outcome of applying one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied,
    Rejected(Rejection),
}

/// Why a command changed nothing. Deterministic: every node rejects alike.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("the cluster is already initialized")]
    AlreadyInitialized,
    #[error("the cluster is not initialized")]
    NotInitialized,
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("invalid command: {0}")]
    Invalid(String),
}

/// What an applied command touched, so a store can persist just that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    Cluster,
    Key(KeyId),
    AccessKey(String),
}

/// The whole replicated state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub cluster: Option<ClusterInfo>,
    pub keys: BTreeMap<KeyId, KeyRecord>,
    pub access_keys: BTreeMap<String, AccessKeyRecord>,
}

impl State {
    /// Applies `cmd`, committed at log `index`. Either the whole change is made
    /// or nothing is (`Outcome::Rejected`).
    pub fn apply(&mut self, index: u64, cmd: Command) -> (Outcome, Vec<Touched>) {
        match self.try_apply(index, cmd) {
            Ok(t) => (Outcome::Applied, t),
            Err(r) => (Outcome::Rejected(r), Vec::new()),
        }
    }

    fn try_apply(&mut self, index: u64, cmd: Command) -> Result<Vec<Touched>, Rejection> {
        match cmd {
            Command::InitCluster { info, admin } => {
                if self.cluster.is_some() {
                    return Err(Rejection::AlreadyInitialized);
                }
                if self.access_keys.contains_key(&admin.access_key_id) {
                    return Err(Rejection::AlreadyExists(admin.access_key_id));
                }
                let id = admin.access_key_id.clone();
                self.cluster = Some(info);
                self.access_keys.insert(id.clone(), admin);
                Ok(vec![Touched::Cluster, Touched::AccessKey(id)])
            }
            Command::CreateKey { mut key } => {
                self.require_init()?;
                if key.versions.is_empty() {
                    return Err(Rejection::Invalid("a key needs key material".into()));
                }
                if self.keys.contains_key(&key.key_id) {
                    return Err(Rejection::AlreadyExists(format!("key {}", key.key_id)));
                }
                key.revision = index;
                let id = key.key_id;
                self.keys.insert(id, key);
                Ok(vec![Touched::Key(id)])
            }
            Command::CreateAccessKey { key } => {
                self.require_init()?;
                if self.access_keys.contains_key(&key.access_key_id) {
                    return Err(Rejection::AlreadyExists(key.access_key_id));
                }
                let id = key.access_key_id.clone();
                self.access_keys.insert(id.clone(), key);
                Ok(vec![Touched::AccessKey(id)])
            }
        }
    }

    fn require_init(&self) -> Result<&ClusterInfo, Rejection> {
        self.cluster.as_ref().ok_or(Rejection::NotInitialized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() -> Command {
        Command::InitCluster {
            info: ClusterInfo {
                region: "us-east-1".into(),
                account_id: "111122223333".into(),
                root_check_value: [1; 16],
                created_ms: 5,
            },
            admin: AccessKeyRecord {
                access_key_id: "AKIAADMIN".into(),
                wrapped_secret: vec![1, 2, 3],
                admin: true,
                created_ms: 5,
            },
        }
    }

    fn key(id: u8) -> KeyRecord {
        KeyRecord {
            key_id: KeyId::from_bytes([id; 16]),
            description: String::new(),
            created_ms: 10,
            usage: KeyUsage::EncryptDecrypt,
            spec: KeySpec::SymmetricDefault,
            state: KeyState::Enabled,
            versions: vec![KeyVersion {
                version: 1,
                wrapped: vec![9; 8],
                created_ms: 10,
            }],
            revision: 0,
        }
    }

    #[test]
    fn create_key_needs_init_and_is_unique() {
        let mut s = State::default();
        let (o, _) = s.apply(1, Command::CreateKey { key: key(1) });
        assert_eq!(o, Outcome::Rejected(Rejection::NotInitialized));
        assert_eq!(s.apply(2, init()).0, Outcome::Applied);
        assert_eq!(
            s.apply(3, init()).0,
            Outcome::Rejected(Rejection::AlreadyInitialized)
        );
        let (o, t) = s.apply(4, Command::CreateKey { key: key(1) });
        assert_eq!(o, Outcome::Applied);
        assert_eq!(t, vec![Touched::Key(KeyId::from_bytes([1; 16]))]);
        assert_eq!(s.keys[&KeyId::from_bytes([1; 16])].revision, 4);
        let before = s.clone();
        let (o, t) = s.apply(5, Command::CreateKey { key: key(1) });
        assert!(matches!(o, Outcome::Rejected(Rejection::AlreadyExists(_))));
        assert!(t.is_empty());
        assert_eq!(s, before, "a rejected command changes nothing");
    }

    #[test]
    fn key_without_material_is_rejected() {
        let mut s = State::default();
        s.apply(1, init());
        let mut k = key(2);
        k.versions.clear();
        assert!(matches!(
            s.apply(2, Command::CreateKey { key: k }).0,
            Outcome::Rejected(Rejection::Invalid(_))
        ));
        assert!(s.keys.is_empty());
    }

    #[test]
    fn replay_is_deterministic() {
        let cmds = [
            init(),
            Command::CreateKey { key: key(1) },
            Command::CreateKey { key: key(2) },
        ];
        let run = || {
            let mut s = State::default();
            for (i, c) in cmds.iter().enumerate() {
                s.apply(i as u64 + 1, c.clone());
            }
            s
        };
        assert_eq!(run(), run());
    }

    #[test]
    fn debug_hides_wrapped_material() {
        let k = key(3);
        let out = format!("{k:?}");
        assert!(!out.contains("9, 9"));
    }
}
