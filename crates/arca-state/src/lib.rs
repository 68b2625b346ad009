//! The replicated state machine: what every node agrees on, and the commands
//! that change it.
//!
//! This crate is pure: no I/O, no clock, no randomness. A [`Proposal`] carries
//! everything its outcome depends on: ids and wrapped material chosen by the
//! node that proposed it, and the time, which the leader stamps on the entry
//! when it appends it ([`Proposal::stamp_ms`], [`Command::stamped`]). So
//! [`State::apply`] gives the same result on every node and on every replay,
//! and no proposer chooses a time the state believes.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub mod ids;
pub mod root_keys;
pub mod rules;

pub use ids::KeyId;
pub use root_keys::{Rewrapped, RootKeyRotation, RootKeyStatus, RootKeys, Wrapped};

/// What a key is for; fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyUsage {
    EncryptDecrypt,
    SignVerify,
    GenerateVerifyMac,
    // New variants go last: postcard stores the variant's index.
    KeyAgreement,
    EncapsulateDecapsulate,
}

impl KeyUsage {
    pub const ALL: [KeyUsage; 5] = [
        KeyUsage::EncryptDecrypt,
        KeyUsage::SignVerify,
        KeyUsage::GenerateVerifyMac,
        KeyUsage::KeyAgreement,
        KeyUsage::EncapsulateDecapsulate,
    ];

    pub fn as_aws(&self) -> &'static str {
        match self {
            KeyUsage::EncryptDecrypt => "ENCRYPT_DECRYPT",
            KeyUsage::SignVerify => "SIGN_VERIFY",
            KeyUsage::GenerateVerifyMac => "GENERATE_VERIFY_MAC",
            KeyUsage::KeyAgreement => "KEY_AGREEMENT",
            KeyUsage::EncapsulateDecapsulate => "ENCAPSULATE_DECAPSULATE",
        }
    }

    pub fn from_aws(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|u| u.as_aws() == s)
    }
}

/// The kind of key material; fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeySpec {
    SymmetricDefault,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EccNistP256,
    EccNistP384,
    EccNistP521,
    EccSecgP256k1,
    Sm2,
    Hmac224,
    Hmac256,
    Hmac384,
    Hmac512,
    // New variants go last: postcard stores the variant's index.
    EccNistEdwards25519,
    MlDsa44,
    MlDsa65,
    MlDsa87,
    MlKem512,
    MlKem768,
    MlKem1024,
}

const RSA_ENC: &[&str] = &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"];
const RSA_SIGN: &[&str] = &[
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
];

impl KeySpec {
    pub const ALL: [KeySpec; 20] = [
        KeySpec::SymmetricDefault,
        KeySpec::Rsa2048,
        KeySpec::Rsa3072,
        KeySpec::Rsa4096,
        KeySpec::EccNistP256,
        KeySpec::EccNistP384,
        KeySpec::EccNistP521,
        KeySpec::EccSecgP256k1,
        KeySpec::Sm2,
        KeySpec::Hmac224,
        KeySpec::Hmac256,
        KeySpec::Hmac384,
        KeySpec::Hmac512,
        KeySpec::EccNistEdwards25519,
        KeySpec::MlDsa44,
        KeySpec::MlDsa65,
        KeySpec::MlDsa87,
        KeySpec::MlKem512,
        KeySpec::MlKem768,
        KeySpec::MlKem1024,
    ];

    pub fn as_aws(&self) -> &'static str {
        match self {
            KeySpec::SymmetricDefault => "SYMMETRIC_DEFAULT",
            KeySpec::Rsa2048 => "RSA_2048",
            KeySpec::Rsa3072 => "RSA_3072",
            KeySpec::Rsa4096 => "RSA_4096",
            KeySpec::EccNistP256 => "ECC_NIST_P256",
            KeySpec::EccNistP384 => "ECC_NIST_P384",
            KeySpec::EccNistP521 => "ECC_NIST_P521",
            KeySpec::EccSecgP256k1 => "ECC_SECG_P256K1",
            KeySpec::Sm2 => "SM2",
            KeySpec::Hmac224 => "HMAC_224",
            KeySpec::Hmac256 => "HMAC_256",
            KeySpec::Hmac384 => "HMAC_384",
            KeySpec::Hmac512 => "HMAC_512",
            KeySpec::EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
            KeySpec::MlDsa44 => "ML_DSA_44",
            KeySpec::MlDsa65 => "ML_DSA_65",
            KeySpec::MlDsa87 => "ML_DSA_87",
            KeySpec::MlKem512 => "ML_KEM_512",
            KeySpec::MlKem768 => "ML_KEM_768",
            KeySpec::MlKem1024 => "ML_KEM_1024",
        }
    }

    pub fn from_aws(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_aws() == s)
    }

    /// The usages a key of this spec may be created for (AWS's table).
    pub fn usages(&self) -> &'static [KeyUsage] {
        use KeySpec::*;
        match self {
            SymmetricDefault => &[KeyUsage::EncryptDecrypt],
            Rsa2048 | Rsa3072 | Rsa4096 => &[KeyUsage::EncryptDecrypt, KeyUsage::SignVerify],
            Sm2 => &[
                KeyUsage::EncryptDecrypt,
                KeyUsage::SignVerify,
                KeyUsage::KeyAgreement,
            ],
            EccNistP256 | EccNistP384 | EccNistP521 => {
                &[KeyUsage::SignVerify, KeyUsage::KeyAgreement]
            }
            EccSecgP256k1 | EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => {
                &[KeyUsage::SignVerify]
            }
            Hmac224 | Hmac256 | Hmac384 | Hmac512 => &[KeyUsage::GenerateVerifyMac],
            MlKem512 | MlKem768 | MlKem1024 => &[KeyUsage::EncapsulateDecapsulate],
        }
    }

    pub fn allows(&self, usage: KeyUsage) -> bool {
        self.usages().contains(&usage)
    }

    pub fn is_asymmetric(&self) -> bool {
        !matches!(
            self,
            KeySpec::SymmetricDefault
                | KeySpec::Hmac224
                | KeySpec::Hmac256
                | KeySpec::Hmac384
                | KeySpec::Hmac512
        )
    }

    pub fn is_hmac(&self) -> bool {
        matches!(
            self,
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512
        )
    }

    /// EncryptionAlgorithms as DescribeKey lists them for a key of this spec and usage.
    pub fn encryption_algorithms(&self, usage: KeyUsage) -> &'static [&'static str] {
        use KeySpec::*;
        if usage != KeyUsage::EncryptDecrypt {
            return &[];
        }
        match self {
            SymmetricDefault => &["SYMMETRIC_DEFAULT"],
            Rsa2048 | Rsa3072 | Rsa4096 => RSA_ENC,
            Sm2 => &["SM2PKE"],
            _ => &[],
        }
    }

    /// SigningAlgorithms as DescribeKey lists them for a key of this spec and usage.
    pub fn signing_algorithms(&self, usage: KeyUsage) -> &'static [&'static str] {
        use KeySpec::*;
        if usage != KeyUsage::SignVerify {
            return &[];
        }
        match self {
            Rsa2048 | Rsa3072 | Rsa4096 => RSA_SIGN,
            EccNistP256 | EccSecgP256k1 => &["ECDSA_SHA_256"],
            EccNistP384 => &["ECDSA_SHA_384"],
            EccNistP521 => &["ECDSA_SHA_512"],
            Sm2 => &["SM2DSA"],
            EccNistEdwards25519 => &["ED25519_SHA_512", "ED25519_PH_SHA_512"],
            MlDsa44 | MlDsa65 | MlDsa87 => &["ML_DSA_SHAKE_256"],
            _ => &[],
        }
    }

    /// KeyAgreementAlgorithms as DescribeKey lists them for a key of this spec and usage.
    pub fn key_agreement_algorithms(&self, usage: KeyUsage) -> &'static [&'static str] {
        use KeySpec::*;
        match (usage, self) {
            (KeyUsage::KeyAgreement, EccNistP256 | EccNistP384 | EccNistP521 | Sm2) => &["ECDH"],
            _ => &[],
        }
    }

    /// EncapsulationAlgorithms as DescribeKey lists them for a key of this spec and usage.
    pub fn encapsulation_algorithms(&self, usage: KeyUsage) -> &'static [&'static str] {
        use KeySpec::*;
        match (usage, self) {
            (KeyUsage::EncapsulateDecapsulate, MlKem512 | MlKem768 | MlKem1024) => &["ML_KEM"],
            _ => &[],
        }
    }

    /// MacAlgorithms as DescribeKey lists them.
    pub fn mac_algorithms(&self) -> &'static [&'static str] {
        match self {
            KeySpec::Hmac224 => &["HMAC_SHA_224"],
            KeySpec::Hmac256 => &["HMAC_SHA_256"],
            KeySpec::Hmac384 => &["HMAC_SHA_384"],
            KeySpec::Hmac512 => &["HMAC_SHA_512"],
            _ => &[],
        }
    }

    /// Whether automatic and on-demand rotation apply (AWS: symmetric encryption keys).
    pub fn rotatable(&self) -> bool {
        matches!(self, KeySpec::SymmetricDefault)
    }
}

/// A key's lifecycle state, as AWS KMS names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
    /// A key of origin EXTERNAL without its material: created so, or its
    /// imported material was deleted or expired.
    PendingImport,
}

impl KeyState {
    pub fn as_aws(&self) -> &'static str {
        match self {
            KeyState::Enabled => "Enabled",
            KeyState::Disabled => "Disabled",
            KeyState::PendingDeletion => "PendingDeletion",
            KeyState::PendingImport => "PendingImport",
        }
    }
}

/// Where a key's material comes from; fixed at creation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// Generated by the cluster.
    #[default]
    AwsKms,
    /// Imported by the customer (`ImportKeyMaterial`).
    External,
}

impl Origin {
    pub fn as_aws(&self) -> &'static str {
        match self {
            Origin::AwsKms => "AWS_KMS",
            Origin::External => "EXTERNAL",
        }
    }
}

/// The imported material of a key of origin EXTERNAL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportInfo {
    /// Identifies the first material imported (a digest the importing node
    /// computed: of the public key for asymmetric keys, of the material
    /// otherwise, bound to the key id). Kept when the material is deleted:
    /// only the same material may be imported again.
    pub material_digest: Option<[u8; 32]>,
    /// When the current material expires; `None`: it does not (or there is
    /// none).
    pub valid_to_ms: Option<u64>,
}

/// One version of a key's material, wrapped under the root key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVersion {
    /// 1, 2, 3, … in creation order; named in every symmetric ciphertext.
    pub version: u32,
    /// The version's public id (a UUID), as KeyVersionId in the API.
    pub version_id: String,
    /// SubjectPublicKeyInfo DER of an asymmetric version (public; not wrapped).
    pub public_key: Option<Vec<u8>>,
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

/// Automatic rotation settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSchedule {
    pub period_days: u32,
    /// When the leader should next rotate the key.
    pub next_ms: u64,
}

/// A completed rotation, for ListKeyRotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationEvent {
    pub version: u32,
    pub at_ms: u64,
    pub on_demand: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key_id: KeyId,
    pub description: String,
    pub created_ms: u64,
    pub usage: KeyUsage,
    pub spec: KeySpec,
    pub state: KeyState,
    /// Set while PendingDeletion.
    pub deletion_ms: Option<u64>,
    pub pending_window_days: Option<u32>,
    /// Oldest first; never empty. The last one is the primary (used to encrypt).
    pub versions: Vec<KeyVersion>,
    pub rotation: Option<RotationSchedule>,
    pub rotations: Vec<RotationEvent>,
    pub tags: BTreeMap<String, String>,
    /// The key policy (AWS policy JSON, validated before it was proposed);
    /// `None`: AWS's default key policy for the cluster's account.
    pub policy: Option<String>,
    /// Log index of the last command that changed this key: a key actor whose
    /// cached copy has another revision reloads before serving.
    pub revision: u64,
    pub origin: Origin,
    /// Set for keys of origin EXTERNAL.
    pub import: Option<ImportInfo>,
}

impl KeyRecord {
    /// A new, enabled key with one version of material.
    pub fn new(
        key_id: KeyId,
        description: String,
        usage: KeyUsage,
        spec: KeySpec,
        first: KeyVersion,
    ) -> Self {
        Self {
            key_id,
            description,
            created_ms: first.created_ms,
            usage,
            spec,
            state: KeyState::Enabled,
            deletion_ms: None,
            pending_window_days: None,
            versions: vec![first],
            rotation: None,
            rotations: Vec::new(),
            tags: BTreeMap::new(),
            policy: None,
            revision: 0,
            origin: Origin::AwsKms,
            import: None,
        }
    }

    /// A new key of origin EXTERNAL, pending import: its one version has no
    /// material yet (`wrapped` empty) until `ImportKeyMaterial`.
    pub fn new_external(
        key_id: KeyId,
        description: String,
        usage: KeyUsage,
        spec: KeySpec,
        version_id: String,
        now_ms: u64,
    ) -> Self {
        let placeholder = KeyVersion {
            version: 1,
            version_id,
            public_key: None,
            wrapped: Vec::new(),
            created_ms: now_ms,
        };
        let mut k = Self::new(key_id, description, usage, spec, placeholder);
        k.state = KeyState::PendingImport;
        k.origin = Origin::External;
        k.import = Some(ImportInfo::default());
        k
    }

    /// Whether the key holds material: always for generated keys; for
    /// imported ones, between an import and its deletion or expiry.
    pub fn has_material(&self) -> bool {
        !self.primary().wrapped.is_empty()
    }

    pub fn primary(&self) -> &KeyVersion {
        // `versions` is never empty: CreateKey validates it, nothing removes one.
        self.versions
            .last()
            .expect("a key always has at least one version")
    }

    pub fn version_by_id(&self, id: &str) -> Option<&KeyVersion> {
        self.versions.iter().find(|x| x.version_id == id)
    }

    pub fn on_demand_rotations(&self) -> usize {
        self.rotations.iter().filter(|r| r.on_demand).count()
    }
}

/// An API credential. The secret is wrapped under the root key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub wrapped_secret: Vec<u8>,
    /// The user (principal) it belongs to.
    pub user: String,
    pub created_ms: u64,
}

/// The most grants one key may carry (AWS's limit).
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

/// What a grant constrains: the encryption context of the requests it allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantConstraints {
    /// The request's context must be exactly this.
    pub context_equals: Option<BTreeMap<String, String>>,
    /// The request's context must contain these pairs.
    pub context_subset: Option<BTreeMap<String, String>>,
}

/// A grant: `grantee` may run `operations` (AWS names, e.g. `Decrypt`) on the
/// key, within `constraints`, until it is retired or revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    pub grant_id: String,
    pub key_id: KeyId,
    pub name: Option<String>,
    pub grantee: String,
    pub retiring: Option<String>,
    pub operations: Vec<String>,
    pub constraints: Option<GrantConstraints>,
    /// The principal that created it.
    pub issuer: String,
    pub created_ms: u64,
}

impl GrantRecord {
    /// The same grant but for its id and time: a `CreateGrant` repeated with
    /// the same `Name` and fields returns the existing grant.
    pub fn same_terms(&self, other: &GrantRecord) -> bool {
        self.key_id == other.key_id
            && self.name == other.name
            && self.grantee == other.grantee
            && self.retiring == other.retiring
            && self.operations == other.operations
            && self.constraints == other.constraints
    }
}

/// A grant's row: live, or retired/revoked (kept, so that a grant token for
/// it is refused on every node once the removal is applied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrantRow {
    Active(Box<GrantRecord>),
    Removed { key_id: KeyId, removed_ms: u64 },
}

/// The user `cluster init` creates, with [`BOOTSTRAP_ADMIN_POLICY`].
pub const BOOTSTRAP_ADMIN_USER: &str = "admin";

/// The bootstrap admin's identity policy: every action.
pub const BOOTSTRAP_ADMIN_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"BootstrapAdmin","Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// A named principal of the cluster's account
/// (`arn:aws:iam::<account>:user/<name>`): its identity policy stands in for
/// IAM, which a self-hosted cluster does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub name: String,
    /// AWS policy JSON, validated before it was proposed; `None` allows nothing.
    pub policy: Option<String>,
    pub created_ms: u64,
    /// Log index of the last command that changed this user.
    pub revision: u64,
}

impl std::fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("access_key_id", &self.access_key_id)
            .field("user", &self.user)
            .finish()
    }
}

/// An alias: a friendly name for a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRecord {
    pub name: String,
    pub key_id: KeyId,
    pub created_ms: u64,
    pub updated_ms: u64,
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

    pub fn alias_arn(&self, name: &str) -> String {
        format!("arn:aws:kms:{}:{}:{}", self.region, self.account_id, name)
    }
}

/// A change to the replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    InitCluster {
        info: ClusterInfo,
        admin: AccessKeyRecord,
    },
    CreateAccessKey {
        key: AccessKeyRecord,
    },
    DeleteAccessKey {
        access_key_id: String,
    },
    /// Sets (or with `None` removes) a user's identity policy.
    PutUserPolicy {
        user: String,
        policy: Option<String>,
    },
    /// Replaces a key's key policy (validated before it was proposed).
    PutKeyPolicy {
        key_id: KeyId,
        policy: String,
    },
    CreateGrant {
        grant: Box<GrantRecord>,
    },
    /// Retires or revokes a grant (the same change; the caller's right to
    /// make it differs).
    RemoveGrant {
        key_id: KeyId,
        grant_id: String,
        now_ms: u64,
    },
    CreateKey {
        key: KeyRecord,
    },
    SetKeyEnabled {
        key_id: KeyId,
        enabled: bool,
    },
    UpdateDescription {
        key_id: KeyId,
        description: String,
    },
    /// Legacy (entries appended before leaders stamped deletions; no node
    /// proposes it now, and a leader turns one it receives into
    /// [`Command::ScheduleKeyDeletion`]). Applied as before, but a date more
    /// than [`LEGACY_TIME_GRACE_MS`] short of the shortest window after the
    /// entry's stamp is refused.
    ScheduleDeletion {
        key_id: KeyId,
        deletion_ms: u64,
        window_days: u32,
    },
    CancelDeletion {
        key_id: KeyId,
    },
    /// Legacy, like [`Command::ScheduleDeletion`] (now
    /// [`Command::PurgeKey`]): applies only if the key is still pending
    /// deletion and due at `now_ms`, and at the entry's stamp plus
    /// [`LEGACY_TIME_GRACE_MS`].
    DeleteKey {
        key_id: KeyId,
        now_ms: u64,
    },
    CreateAlias {
        name: String,
        key_id: KeyId,
        now_ms: u64,
    },
    UpdateAlias {
        name: String,
        key_id: KeyId,
        now_ms: u64,
    },
    DeleteAlias {
        name: String,
    },
    TagKey {
        key_id: KeyId,
        tags: Vec<(String, String)>,
    },
    UntagKey {
        key_id: KeyId,
        tag_keys: Vec<String>,
    },
    SetRotation {
        key_id: KeyId,
        schedule: Option<RotationSchedule>,
    },
    /// A new version (key pair) of an asymmetric key.
    CreateKeyVersion {
        key_id: KeyId,
        version: KeyVersion,
    },
    /// A new material version. On demand, or automatic (then it applies only
    /// if rotation is enabled and due at `now_ms`, so it never happens twice).
    RotateKey {
        key_id: KeyId,
        version: KeyVersion,
        on_demand: bool,
        now_ms: u64,
    },
    /// Schedules a key's deletion `window_days` (7–30) after the entry's
    /// stamp. Replaces [`Command::ScheduleDeletion`], whose date the proposer
    /// chose; the leader turns one of those into this (`stamped`).
    ScheduleKeyDeletion {
        key_id: KeyId,
        window_days: u32,
    },
    /// Purges a key pending deletion whose date is at or before the entry's
    /// stamp. Replaces [`Command::DeleteKey`], whose `now_ms` the proposer
    /// chose.
    PurgeKey {
        key_id: KeyId,
    },
    /// The last successful cryptographic uses a node saw since its last
    /// report (GetKeyLastUsage). Each node reports its own every few
    /// seconds, off the request path; a use replaces the one recorded for
    /// its key only if it is newer. The key's revision does not change:
    /// crypto never waits for a usage report to settle.
    RecordKeyUsage {
        /// When the reporting node began tracking (its start).
        since_ms: u64,
        uses: Vec<(KeyId, KeyLastUsage)>,
    },
    /// Imports (or imports again) the material of a key of origin EXTERNAL.
    /// The proposing node unwrapped it from the import wrapping key and
    /// checked it against the key spec; the entry carries it only wrapped
    /// under the root key, for (key, version 1).
    ImportKeyMaterial {
        key_id: KeyId,
        /// `RootKey::wrap` output.
        wrapped: Vec<u8>,
        /// SubjectPublicKeyInfo DER, for asymmetric keys.
        public_key: Option<Vec<u8>>,
        /// See [`ImportInfo::material_digest`].
        material_digest: [u8; 32],
        /// When the material expires (`None`: never); after the entry's stamp
        /// and at most [`rules::MAX_IMPORT_VALIDITY_DAYS`] after it.
        valid_to_ms: Option<u64>,
        /// The import token's end: refused if the entry is stamped after it.
        token_valid_to_ms: u64,
    },
    /// Deletes imported material: the key becomes PendingImport.
    DeleteImportedKeyMaterial {
        key_id: KeyId,
    },
    /// Deletes imported material whose `valid_to_ms` is at or before the
    /// entry's stamp (proposed by the leader's scheduler).
    ExpireKeyMaterial {
        key_id: KeyId,
    },
    /// Begins moving every secret to root key `to` (see `root_keys.rs`).
    BeginRootKeyRotation {
        to: arca_crypto::wrap::RootKeyId,
    },
    /// Secrets re-wrapped under the rotation's new root key.
    RewrapMaterial {
        items: Vec<Rewrapped>,
    },
    /// Ends a rotation whose secrets are all under the new root key.
    FinishRootKeyRotation,
    /// Proposals the leader put into one entry, so that concurrent writes
    /// share its append, fsync and replication (group commit). Applied in
    /// order, each as if it were an entry of its own at this index and this
    /// entry's stamp; a batch inside a batch is refused.
    Batch {
        proposals: Vec<Proposal>,
    },
}

/// The last successful cryptographic use of a key the cluster knows of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyLastUsage {
    /// The operation (`Encrypt`, `Sign`, ...).
    pub operation: String,
    pub at_ms: u64,
    /// The request id the client was given (`x-amzn-RequestId`), which
    /// also finds the request's audit record.
    pub request_id: String,
}

/// How far a legacy entry's proposer-chosen time may be from its leader's
/// stamp (see [`Command::ScheduleDeletion`] and [`Command::DeleteKey`] in
/// `State::apply`): an honest proposer's clock was within the peer
/// protocol's 5-minute window of the leader's, and a forward is retried for
/// seconds, not an hour.
pub const LEGACY_TIME_GRACE_MS: u64 = 60 * 60 * 1000;

impl Command {
    /// The command's name, as audit records and logs show it.
    pub fn name(&self) -> &'static str {
        match self {
            Command::InitCluster { .. } => "InitCluster",
            Command::CreateAccessKey { .. } => "CreateAccessKey",
            Command::DeleteAccessKey { .. } => "DeleteAccessKey",
            Command::PutUserPolicy { .. } => "PutUserPolicy",
            Command::PutKeyPolicy { .. } => "PutKeyPolicy",
            Command::CreateGrant { .. } => "CreateGrant",
            Command::RemoveGrant { .. } => "RemoveGrant",
            Command::CreateKey { .. } => "CreateKey",
            Command::SetKeyEnabled { .. } => "SetKeyEnabled",
            Command::UpdateDescription { .. } => "UpdateDescription",
            Command::ScheduleDeletion { .. } => "ScheduleDeletion",
            Command::CancelDeletion { .. } => "CancelDeletion",
            Command::DeleteKey { .. } => "DeleteKey",
            Command::CreateAlias { .. } => "CreateAlias",
            Command::UpdateAlias { .. } => "UpdateAlias",
            Command::DeleteAlias { .. } => "DeleteAlias",
            Command::TagKey { .. } => "TagKey",
            Command::UntagKey { .. } => "UntagKey",
            Command::SetRotation { .. } => "SetRotation",
            Command::CreateKeyVersion { .. } => "CreateKeyVersion",
            Command::RotateKey { .. } => "RotateKey",
            Command::ScheduleKeyDeletion { .. } => "ScheduleKeyDeletion",
            Command::PurgeKey { .. } => "PurgeKey",
            Command::RecordKeyUsage { .. } => "RecordKeyUsage",
            Command::ImportKeyMaterial { .. } => "ImportKeyMaterial",
            Command::DeleteImportedKeyMaterial { .. } => "DeleteImportedKeyMaterial",
            Command::ExpireKeyMaterial { .. } => "ExpireKeyMaterial",
            Command::BeginRootKeyRotation { .. } => "BeginRootKeyRotation",
            Command::RewrapMaterial { .. } => "RewrapMaterial",
            Command::FinishRootKeyRotation => "FinishRootKeyRotation",
            Command::Batch { .. } => "Batch",
        }
    }

    /// Whether applying it re-wraps secrets (the old wrapping is then left
    /// in freed pages and in the log, to be shredded).
    pub fn rewraps(&self) -> bool {
        match self {
            Command::RewrapMaterial { .. } | Command::FinishRootKeyRotation => true,
            Command::Batch { proposals } => proposals.iter().any(|p| p.command.rewraps()),
            _ => false,
        }
    }

    /// The key the command changes, if it changes one.
    pub fn key_id(&self) -> Option<KeyId> {
        match self {
            Command::PutKeyPolicy { key_id, .. }
            | Command::RemoveGrant { key_id, .. }
            | Command::SetKeyEnabled { key_id, .. }
            | Command::UpdateDescription { key_id, .. }
            | Command::ScheduleDeletion { key_id, .. }
            | Command::CancelDeletion { key_id }
            | Command::DeleteKey { key_id, .. }
            | Command::CreateAlias { key_id, .. }
            | Command::UpdateAlias { key_id, .. }
            | Command::TagKey { key_id, .. }
            | Command::UntagKey { key_id, .. }
            | Command::SetRotation { key_id, .. }
            | Command::CreateKeyVersion { key_id, .. }
            | Command::RotateKey { key_id, .. }
            | Command::ScheduleKeyDeletion { key_id, .. }
            | Command::PurgeKey { key_id }
            | Command::ImportKeyMaterial { key_id, .. }
            | Command::DeleteImportedKeyMaterial { key_id }
            | Command::ExpireKeyMaterial { key_id } => Some(*key_id),
            Command::CreateGrant { grant } => Some(grant.key_id),
            Command::CreateKey { key } => Some(key.key_id),
            Command::InitCluster { .. }
            | Command::CreateAccessKey { .. }
            | Command::DeleteAccessKey { .. }
            | Command::PutUserPolicy { .. }
            | Command::DeleteAlias { .. }
            | Command::RecordKeyUsage { .. }
            | Command::BeginRootKeyRotation { .. }
            | Command::RewrapMaterial { .. }
            | Command::FinishRootKeyRotation
            | Command::Batch { .. } => None,
        }
    }

    /// The command as the leader appends it at `now_ms` (its clock, the
    /// entry's stamp): every time it carries is `now_ms` or computed from it,
    /// whatever the proposer sent. A deletion is turned into the commands
    /// that carry no time ([`Command::ScheduleKeyDeletion`],
    /// [`Command::PurgeKey`]); `State::apply` judges them by the stamp.
    pub fn stamped(self, now_ms: u64) -> Command {
        let days = |d: u32| now_ms.saturating_add(u64::from(d) * rules::DAY_MS);
        match self {
            Command::InitCluster {
                mut info,
                mut admin,
            } => {
                info.created_ms = now_ms;
                admin.created_ms = now_ms;
                Command::InitCluster { info, admin }
            }
            Command::CreateAccessKey { mut key } => {
                key.created_ms = now_ms;
                Command::CreateAccessKey { key }
            }
            Command::CreateGrant { mut grant } => {
                grant.created_ms = now_ms;
                Command::CreateGrant { grant }
            }
            Command::RemoveGrant {
                key_id, grant_id, ..
            } => Command::RemoveGrant {
                key_id,
                grant_id,
                now_ms,
            },
            Command::CreateKey { mut key } => {
                key.created_ms = now_ms;
                for v in &mut key.versions {
                    v.created_ms = now_ms;
                }
                Command::CreateKey { key }
            }
            Command::ScheduleDeletion {
                key_id,
                window_days,
                ..
            } => Command::ScheduleKeyDeletion {
                key_id,
                window_days,
            },
            Command::DeleteKey { key_id, .. } => Command::PurgeKey { key_id },
            Command::CreateAlias { name, key_id, .. } => Command::CreateAlias {
                name,
                key_id,
                now_ms,
            },
            Command::UpdateAlias { name, key_id, .. } => Command::UpdateAlias {
                name,
                key_id,
                now_ms,
            },
            Command::SetRotation {
                key_id,
                mut schedule,
            } => {
                if let Some(s) = &mut schedule {
                    s.next_ms = days(s.period_days);
                }
                Command::SetRotation { key_id, schedule }
            }
            Command::CreateKeyVersion {
                key_id,
                mut version,
            } => {
                version.created_ms = now_ms;
                Command::CreateKeyVersion { key_id, version }
            }
            Command::RotateKey {
                key_id,
                mut version,
                on_demand,
                ..
            } => {
                version.created_ms = now_ms;
                Command::RotateKey {
                    key_id,
                    version,
                    on_demand,
                    now_ms,
                }
            }
            c @ (Command::DeleteAccessKey { .. }
            | Command::PutUserPolicy { .. }
            | Command::PutKeyPolicy { .. }
            | Command::SetKeyEnabled { .. }
            | Command::UpdateDescription { .. }
            | Command::CancelDeletion { .. }
            | Command::DeleteAlias { .. }
            | Command::TagKey { .. }
            | Command::UntagKey { .. }
            | Command::ScheduleKeyDeletion { .. }
            | Command::PurgeKey { .. }
            // Their times are the client's and the token's, judged against
            // the stamp when applied.
            | Command::ImportKeyMaterial { .. }
            | Command::DeleteImportedKeyMaterial { .. }
            | Command::ExpireKeyMaterial { .. }
            | Command::BeginRootKeyRotation { .. }
            | Command::RewrapMaterial { .. }
            | Command::FinishRootKeyRotation
            // Its proposals were stamped one by one.
            | Command::Batch { .. }) => c,
            // A reporting node's times are believed only up to the leader's.
            Command::RecordKeyUsage { since_ms, mut uses } => {
                for (_, u) in &mut uses {
                    u.at_ms = u.at_ms.min(now_ms);
                }
                Command::RecordKeyUsage {
                    since_ms: since_ms.min(now_ms),
                    uses,
                }
            }
        }
    }

    /// What applying this command creates that its proposer reports back: a
    /// retry of the request is answered with the first attempt's.
    pub fn created(&self) -> Option<String> {
        match self {
            Command::CreateKey { key } => Some(key.key_id.to_string()),
            Command::CreateAccessKey { key } => Some(key.access_key_id.clone()),
            Command::CreateGrant { grant } => Some(grant.grant_id.clone()),
            Command::CreateKeyVersion { version, .. } => Some(version.version_id.clone()),
            _ => None,
        }
    }
}

/// Identifies a client request, so that its retries take effect once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestKey {
    /// A digest of the principal and the client's invocation id (random when
    /// the client sent none, so such requests are never deduplicated against
    /// each other — only against the node's own forwarding retries).
    pub id: [u8; 16],
    /// A digest of the operation and the request body: a retry must match it.
    pub fingerprint: [u8; 16],
}

/// What is proposed to Raft: a command and, optionally, the identity of the
/// client request it came from. An identity seen within [`DEDUP_WINDOW_MS`]
/// returns the first outcome and changes nothing; with another fingerprint it
/// is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub request: Option<RequestKey>,
    /// The leader's clock (ms since the Unix epoch) when it appended the
    /// entry; the leader sets it, whatever the proposer sent.
    pub stamp_ms: u64,
    pub command: Command,
}

impl Proposal {
    pub fn new(request: Option<RequestKey>, command: Command) -> Self {
        Self {
            request,
            stamp_ms: 0,
            command,
        }
    }

    pub fn with_stamp(mut self, stamp_ms: u64) -> Self {
        self.stamp_ms = stamp_ms;
        self
    }
}

/// The outcome of applying one command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Applied,
    Rejected(Rejection),
    /// A retry of a request applied before: the first attempt's outcome, and
    /// what it created (a key id, access key id or key version id). This
    /// entry changed nothing.
    Repeated {
        first: Box<Outcome>,
        created: Option<String>,
    },
    /// The outcomes of a [`Command::Batch`]'s proposals, in their order.
    Batch(Vec<Outcome>),
}

impl Outcome {
    /// The outcome that counts for the client: a repeat's first outcome.
    pub fn first(self) -> (Outcome, Option<String>) {
        match self {
            Outcome::Repeated { first, created } => (*first, created),
            o => (o, None),
        }
    }
}

/// Why a command changed nothing. Deterministic: every node rejects alike.
/// Each variant maps to one AWS error code in the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("the cluster is already initialized")]
    AlreadyInitialized,
    #[error("the cluster is not initialized")]
    NotInitialized,
    #[error("{0}")]
    NotFound(String),
    /// Too many distinct requests within the deduplication window; retry later.
    #[error("{0}")]
    Busy(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The key's state does not allow the change (KMSInvalidStateException).
    #[error("{0}")]
    InvalidState(String),
    /// The key is disabled (DisabledException).
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    InvalidTag(String),
    #[error("{0}")]
    Unsupported(String),
    /// Not an error for a client: a scheduled action (deletion, automatic
    /// rotation) that is no longer due, because the key changed meanwhile.
    #[error("{0}")]
    NotDue(String),
    #[error("invalid command: {0}")]
    Invalid(String),
    /// Other material than the key's (IncorrectKeyMaterialException).
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    /// The import token ended before the entry (ExpiredImportTokenException).
    #[error("{0}")]
    ExpiredImportToken(String),
}

/// What an applied command touched, so a store can persist just that.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    Cluster,
    Key(KeyId),
    AccessKey(String),
    User(String),
    Grant(String),
    Alias(String),
    /// A key's last-usage row.
    KeyUsage(KeyId),
    /// `usage_since_ms`.
    UsageSince,
    /// A request id recorded in the dedup table.
    DedupAdded([u8; 16]),
    /// A request id forgotten from the dedup table.
    DedupEvicted([u8; 16]),
    /// The root keys' record (`State::root_keys`).
    RootKeys,
}

/// How long a request identity is remembered: far longer than any SDK's
/// retry schedule (the AWS SDKs give up within about a minute).
pub const DEDUP_WINDOW_MS: u64 = 10 * 60 * 1000;

/// The most identities remembered at once. Identities are never forgotten
/// inside their window to make room: when the table is full, new requests
/// with an identity are refused (retriable) until old ones expire.
pub const DEDUP_CAPACITY: usize = 1_000_000;

/// One remembered request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DedupEntry {
    /// The log index that first applied it (orders the table).
    pub seq: u64,
    pub fingerprint: [u8; 16],
    /// The leader's stamp of the entry that first applied it.
    pub at_ms: u64,
    pub outcome: Outcome,
    pub created: Option<String>,
}

/// Recently applied request identities and their outcomes, forgotten when
/// older than [`DEDUP_WINDOW_MS`] by the newest stamp seen.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dedup {
    /// request id → entry
    pub entries: BTreeMap<[u8; 16], DedupEntry>,
    /// log index → request id, oldest first.
    pub by_seq: BTreeMap<u64, [u8; 16]>,
    /// The newest leader stamp applied (stamps from different leaders'
    /// clocks need not be ordered; the maximum is).
    pub newest_ms: u64,
}

impl Dedup {
    /// Moves the clock to `stamp_ms` and forgets expired identities; returns them.
    fn advance(&mut self, stamp_ms: u64) -> Vec<[u8; 16]> {
        self.newest_ms = self.newest_ms.max(stamp_ms);
        let mut evicted = Vec::new();
        while let Some((&seq, &id)) = self.by_seq.first_key_value() {
            let expired = self
                .entries
                .get(&id)
                .is_none_or(|e| e.at_ms.saturating_add(DEDUP_WINDOW_MS) < self.newest_ms);
            if !expired {
                break;
            }
            self.by_seq.remove(&seq);
            self.entries.remove(&id);
            evicted.push(id);
        }
        evicted
    }

    fn record(
        &mut self,
        key: RequestKey,
        seq: u64,
        at_ms: u64,
        outcome: Outcome,
        created: Option<String>,
    ) {
        let entry = DedupEntry {
            seq,
            fingerprint: key.fingerprint,
            at_ms,
            outcome,
            created,
        };
        if let Some(old) = self.entries.insert(key.id, entry) {
            self.by_seq.remove(&old.seq);
        }
        self.by_seq.insert(seq, key.id);
    }

    /// Rebuilds the table from stored rows, with the newest stamp.
    pub fn restore(rows: impl IntoIterator<Item = ([u8; 16], DedupEntry)>, newest_ms: u64) -> Self {
        let mut d = Dedup {
            newest_ms,
            ..Dedup::default()
        };
        for (id, e) in rows {
            d.by_seq.insert(e.seq, id);
            d.entries.insert(id, e);
        }
        d
    }
}

/// The whole replicated state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub cluster: Option<ClusterInfo>,
    pub keys: BTreeMap<KeyId, KeyRecord>,
    pub access_keys: BTreeMap<String, AccessKeyRecord>,
    pub users: BTreeMap<String, UserRecord>,
    /// Grant id → grant (live or removed).
    pub grants: BTreeMap<String, GrantRow>,
    /// Key → its live grants' ids (derived from `grants`: not stored;
    /// rebuilt by `rebuild_indexes` after loading).
    #[serde(skip)]
    pub grants_by_key: BTreeMap<KeyId, BTreeSet<String>>,
    /// Key → the names of its aliases (derived from `aliases`, like
    /// `grants_by_key`).
    #[serde(skip)]
    pub aliases_by_key: BTreeMap<KeyId, BTreeSet<String>>,
    pub aliases: BTreeMap<String, AliasRecord>,
    pub dedup: Dedup,
    /// Key → its last successful cryptographic use (GetKeyLastUsage).
    pub key_usage: BTreeMap<KeyId, KeyLastUsage>,
    /// Since when the cluster tracks key usage: the start of the node that
    /// reported first.
    pub usage_since_ms: Option<u64>,
    /// The root key in use and a rotation in progress. Not in this struct's
    /// serialized form, which snapshots of earlier releases also have: a
    /// snapshot carries it after the state (`arca-node` `store/snapshot.rs` `SnapshotData`).
    #[serde(skip)]
    pub root_keys: RootKeys,
}

fn key_not_found(id: &KeyId) -> Rejection {
    Rejection::NotFound(format!("Key '{id}' does not exist"))
}

impl State {
    /// Applies a proposal committed at log `index`. Either the whole change is
    /// made or nothing is (`Outcome::Rejected`, `Outcome::Repeated`).
    pub fn apply(&mut self, index: u64, p: Proposal) -> (Outcome, Vec<Touched>) {
        if let Command::Batch { proposals } = p.command {
            let mut outcomes = Vec::with_capacity(proposals.len());
            let mut touched = Vec::new();
            for mut one in proposals {
                one.stamp_ms = p.stamp_ms;
                if matches!(one.command, Command::Batch { .. }) {
                    outcomes.push(Outcome::Rejected(Rejection::Invalid(
                        "a batch inside a batch".into(),
                    )));
                    continue;
                }
                let (o, t) = self.apply(index, one);
                outcomes.push(o);
                touched.extend(t);
            }
            return (Outcome::Batch(outcomes), touched);
        }
        let mut touched: Vec<Touched> = self
            .dedup
            .advance(p.stamp_ms)
            .into_iter()
            .map(Touched::DedupEvicted)
            .collect();
        if let Some(key) = p.request {
            if let Some(e) = self.dedup.entries.get(&key.id) {
                let outcome = if e.fingerprint == key.fingerprint {
                    Outcome::Repeated {
                        first: Box::new(e.outcome.clone()),
                        created: e.created.clone(),
                    }
                } else {
                    Outcome::Rejected(Rejection::Invalid(
                        "this invocation id (amz-sdk-invocation-id) was already used for a different request; send a new request with a new id".into(),
                    ))
                };
                return (outcome, touched);
            }
            if self.dedup.entries.len() >= DEDUP_CAPACITY {
                return (
                    Outcome::Rejected(Rejection::Busy(format!(
                        "more than {DEDUP_CAPACITY} distinct writes in the last {} minutes; retry later",
                        DEDUP_WINDOW_MS / 60_000
                    ))),
                    touched,
                );
            }
        }
        // Not remembered: the client's retry is prepared afresh.
        if let Err(r) = self.admissible(&p.command) {
            return (Outcome::Rejected(r), touched);
        }
        let created = p.command.created();
        let outcome = match self.try_apply(index, p.stamp_ms, p.command) {
            Ok(t) => {
                touched.extend(t);
                Outcome::Applied
            }
            Err(r) => Outcome::Rejected(r),
        };
        if let Some(key) = p.request {
            let created = created.filter(|_| outcome == Outcome::Applied);
            self.dedup
                .record(key, index, p.stamp_ms, outcome.clone(), created);
            touched.push(Touched::DedupAdded(key.id));
        }
        (outcome, touched)
    }

    fn unlink_grant(&mut self, key_id: &KeyId, grant_id: &str) {
        if let Some(ids) = self.grants_by_key.get_mut(key_id) {
            ids.remove(grant_id);
            if ids.is_empty() {
                self.grants_by_key.remove(key_id);
            }
        }
    }

    fn unlink_alias(&mut self, key_id: &KeyId, name: &str) {
        if let Some(names) = self.aliases_by_key.get_mut(key_id) {
            names.remove(name);
            if names.is_empty() {
                self.aliases_by_key.remove(key_id);
            }
        }
    }

    /// The names of a key's aliases.
    pub fn key_aliases(&self, key_id: &KeyId) -> impl Iterator<Item = &String> {
        self.aliases_by_key.get(key_id).into_iter().flatten()
    }

    /// Rebuilds the derived indexes (`grants_by_key`, `aliases_by_key`) from
    /// the rows (after loading them or a snapshot).
    pub fn rebuild_indexes(&mut self) {
        self.aliases_by_key.clear();
        for (name, a) in &self.aliases {
            self.aliases_by_key
                .entry(a.key_id)
                .or_default()
                .insert(name.clone());
        }
        self.grants_by_key.clear();
        for (id, row) in &self.grants {
            if let GrantRow::Active(g) = row {
                self.grants_by_key
                    .entry(g.key_id)
                    .or_default()
                    .insert(id.clone());
            }
        }
    }

    /// The live grants of a key.
    pub fn key_grants(&self, key_id: &KeyId) -> impl Iterator<Item = &GrantRecord> {
        self.grants_by_key
            .get(key_id)
            .into_iter()
            .flatten()
            .filter_map(|id| match self.grants.get(id) {
                Some(GrantRow::Active(g)) => Some(g.as_ref()),
                _ => None,
            })
    }

    fn key_mut(&mut self, id: &KeyId) -> Result<&mut KeyRecord, Rejection> {
        self.keys.get_mut(id).ok_or_else(|| key_not_found(id))
    }

    fn try_apply(
        &mut self,
        index: u64,
        stamp_ms: u64,
        cmd: Command,
    ) -> Result<Vec<Touched>, Rejection> {
        if !matches!(cmd, Command::InitCluster { .. }) {
            self.require_init()?;
        }
        match cmd {
            Command::InitCluster { info, admin } => {
                if self.cluster.is_some() {
                    return Err(Rejection::AlreadyInitialized);
                }
                if self.access_keys.contains_key(&admin.access_key_id) {
                    return Err(Rejection::AlreadyExists(admin.access_key_id));
                }
                rules::check_user_name(&admin.user)?;
                let id = admin.access_key_id.clone();
                let user = admin.user.clone();
                self.cluster = Some(info);
                self.users.insert(
                    user.clone(),
                    UserRecord {
                        name: user.clone(),
                        policy: Some(BOOTSTRAP_ADMIN_POLICY.to_string()),
                        created_ms: admin.created_ms,
                        revision: index,
                    },
                );
                self.access_keys.insert(id.clone(), admin);
                Ok(vec![
                    Touched::Cluster,
                    Touched::User(user),
                    Touched::AccessKey(id),
                ])
            }
            Command::CreateAccessKey { key } => {
                if self.access_keys.contains_key(&key.access_key_id) {
                    return Err(Rejection::AlreadyExists(key.access_key_id));
                }
                rules::check_user_name(&key.user)?;
                let id = key.access_key_id.clone();
                let user = key.user.clone();
                let mut touched = vec![Touched::AccessKey(id.clone())];
                if !self.users.contains_key(&user) {
                    // A new user starts with no identity policy: it may do
                    // nothing until one is put, or a key policy names it.
                    self.users.insert(
                        user.clone(),
                        UserRecord {
                            name: user.clone(),
                            policy: None,
                            created_ms: key.created_ms,
                            revision: index,
                        },
                    );
                    touched.push(Touched::User(user));
                }
                self.access_keys.insert(id, key);
                Ok(touched)
            }
            Command::DeleteAccessKey { access_key_id } => {
                let rec = self.access_keys.get(&access_key_id).ok_or_else(|| {
                    Rejection::NotFound(format!("Access key {access_key_id} does not exist"))
                })?;
                let admin_keys = self
                    .access_keys
                    .values()
                    .filter(|a| a.user == BOOTSTRAP_ADMIN_USER)
                    .count();
                if rec.user == BOOTSTRAP_ADMIN_USER && admin_keys == 1 {
                    return Err(Rejection::InvalidState(format!(
                        "the last access key of user {BOOTSTRAP_ADMIN_USER} cannot be deleted"
                    )));
                }
                self.access_keys.remove(&access_key_id);
                Ok(vec![Touched::AccessKey(access_key_id)])
            }
            Command::PutUserPolicy { user, policy } => {
                let u = self
                    .users
                    .get_mut(&user)
                    .ok_or_else(|| Rejection::NotFound(format!("User {user} does not exist")))?;
                u.policy = policy;
                u.revision = index;
                Ok(vec![Touched::User(user)])
            }
            Command::CreateGrant { grant } => {
                let k = self
                    .keys
                    .get(&grant.key_id)
                    .ok_or_else(|| key_not_found(&grant.key_id))?;
                rules::require_not_pending_deletion(k)?;
                let live = self.grants_by_key.get(&grant.key_id);
                if grant.name.is_some() {
                    let same =
                        live.into_iter()
                            .flatten()
                            .find_map(|id| match self.grants.get(id) {
                                Some(GrantRow::Active(g)) if g.same_terms(&grant) => {
                                    Some(id.clone())
                                }
                                _ => None,
                            });
                    if let Some(id) = same {
                        // Answered with the existing grant by the proposer.
                        return Err(Rejection::AlreadyExists(id));
                    }
                }
                if live.map_or(0, BTreeSet::len) >= MAX_GRANTS_PER_KEY {
                    return Err(Rejection::LimitExceeded(format!(
                        "key {} already has {MAX_GRANTS_PER_KEY} grants",
                        grant.key_id
                    )));
                }
                if self.grants.contains_key(&grant.grant_id) {
                    return Err(Rejection::Invalid("grant id already used".into()));
                }
                let (id, key_id) = (grant.grant_id.clone(), grant.key_id);
                self.grants_by_key
                    .entry(key_id)
                    .or_default()
                    .insert(id.clone());
                self.grants.insert(id.clone(), GrantRow::Active(grant));
                // A grant changes what the key allows: like any change of
                // the key, it settles before any node acts on it.
                self.key_mut(&key_id)?.revision = index;
                Ok(vec![Touched::Grant(id), Touched::Key(key_id)])
            }
            Command::RemoveGrant {
                key_id,
                grant_id,
                now_ms,
            } => {
                match self.grants.get(&grant_id) {
                    Some(GrantRow::Active(g)) if g.key_id == key_id => {}
                    _ => {
                        return Err(Rejection::NotFound(format!(
                            "Grant {grant_id} of key {key_id} does not exist"
                        )))
                    }
                }
                self.unlink_grant(&key_id, &grant_id);
                self.grants.insert(
                    grant_id.clone(),
                    GrantRow::Removed {
                        key_id,
                        removed_ms: now_ms,
                    },
                );
                if let Some(k) = self.keys.get_mut(&key_id) {
                    k.revision = index;
                }
                Ok(vec![Touched::Grant(grant_id), Touched::Key(key_id)])
            }
            Command::PutKeyPolicy { key_id, policy } => {
                let k = self.key_mut(&key_id)?;
                rules::require_not_pending_deletion(k)?;
                k.policy = Some(policy);
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::CreateKey { mut key } => {
                if key.versions.is_empty() {
                    return Err(Rejection::Invalid("a key needs key material".into()));
                }
                if !key.spec.allows(key.usage) {
                    return Err(Rejection::Invalid(format!(
                        "KeyUsage {} is not valid for KeySpec {}",
                        key.usage.as_aws(),
                        key.spec.as_aws()
                    )));
                }
                let external_ok = key.state == KeyState::PendingImport
                    && key.versions.len() == 1
                    && !key.has_material()
                    && key.import == Some(ImportInfo::default());
                let generated_ok = key.state == KeyState::Enabled
                    && key.import.is_none()
                    && key.versions.iter().all(|v| !v.wrapped.is_empty());
                let consistent = match key.origin {
                    Origin::External => external_ok,
                    Origin::AwsKms => generated_ok,
                };
                if !consistent {
                    return Err(Rejection::Invalid(format!(
                        "a new key of origin {} must be {}",
                        key.origin.as_aws(),
                        match key.origin {
                            Origin::External => "pending import, without material",
                            Origin::AwsKms => "enabled, with material",
                        }
                    )));
                }
                if self.keys.contains_key(&key.key_id) {
                    return Err(Rejection::AlreadyExists(format!(
                        "key {} already exists",
                        key.key_id
                    )));
                }
                rules::check_tags(&key.tags)?;
                key.revision = index;
                let id = key.key_id;
                self.keys.insert(id, key);
                Ok(vec![Touched::Key(id)])
            }
            Command::SetKeyEnabled { key_id, enabled } => {
                let k = self.key_mut(&key_id)?;
                rules::require_not_pending_deletion(k)?;
                rules::require_not_pending_import(k)?;
                k.state = if enabled {
                    KeyState::Enabled
                } else {
                    KeyState::Disabled
                };
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::UpdateDescription {
                key_id,
                description,
            } => {
                let k = self.key_mut(&key_id)?;
                rules::require_not_pending_deletion(k)?;
                k.description = description;
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::ScheduleDeletion {
                key_id,
                deletion_ms,
                window_days,
            } => {
                // Only in entries appended before leaders stamped deletions:
                // a date that no honest proposer could have chosen is refused.
                let earliest =
                    rules::earliest_deletion(stamp_ms).saturating_sub(LEGACY_TIME_GRACE_MS);
                if deletion_ms < earliest {
                    return Err(rules::deletion_too_soon(deletion_ms, stamp_ms));
                }
                self.schedule_deletion(index, key_id, deletion_ms, window_days)
            }
            Command::ScheduleKeyDeletion {
                key_id,
                window_days,
            } => {
                let deletion_ms = stamp_ms.saturating_add(u64::from(window_days) * rules::DAY_MS);
                if deletion_ms < rules::earliest_deletion(stamp_ms) {
                    return Err(rules::deletion_too_soon(deletion_ms, stamp_ms));
                }
                self.schedule_deletion(index, key_id, deletion_ms, window_days)
            }
            Command::CancelDeletion { key_id } => {
                let k = self.key_mut(&key_id)?;
                if k.state != KeyState::PendingDeletion {
                    return Err(Rejection::InvalidState(format!(
                        "{} is not pending deletion.",
                        key_arnless(&key_id)
                    )));
                }
                // As AWS: a canceled deletion leaves the key disabled (or
                // pending import, if its imported material is gone).
                k.state = if k.has_material() {
                    KeyState::Disabled
                } else {
                    KeyState::PendingImport
                };
                k.deletion_ms = None;
                k.pending_window_days = None;
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::DeleteKey { key_id, now_ms } => {
                // Only in entries appended before leaders stamped purges: due
                // by the proposer's time as before, but never more than the
                // grace ahead of the stamp.
                let judged = now_ms.min(stamp_ms.saturating_add(LEGACY_TIME_GRACE_MS));
                self.purge_key(key_id, judged, now_ms)
            }
            Command::PurgeKey { key_id } => self.purge_key(key_id, stamp_ms, stamp_ms),
            Command::RecordKeyUsage { since_ms, uses } => {
                let mut touched = Vec::new();
                if self.usage_since_ms.is_none() {
                    self.usage_since_ms = Some(since_ms);
                    touched.push(Touched::UsageSince);
                }
                for (key_id, u) in uses {
                    if !self.keys.contains_key(&key_id) {
                        continue;
                    }
                    // Newer wins; equal times are ordered by request id, so
                    // every node keeps the same one.
                    let newer = self
                        .key_usage
                        .get(&key_id)
                        .is_none_or(|old| (u.at_ms, &u.request_id) > (old.at_ms, &old.request_id));
                    if newer {
                        self.key_usage.insert(key_id, u);
                        touched.push(Touched::KeyUsage(key_id));
                    }
                }
                Ok(touched)
            }
            Command::BeginRootKeyRotation { to } => self.begin_root_key_rotation(to, stamp_ms),
            Command::RewrapMaterial { items } => self.rewrap_material(items),
            Command::FinishRootKeyRotation => self.finish_root_key_rotation(index),
            // `State::apply` opens batches; one reaches here only inside another.
            Command::Batch { .. } => Err(Rejection::Invalid("a batch inside a batch".into())),
            Command::CreateAlias {
                name,
                key_id,
                now_ms,
            } => {
                rules::check_alias_name(&name)?;
                let k = self
                    .keys
                    .get(&key_id)
                    .ok_or_else(|| key_not_found(&key_id))?;
                rules::require_not_pending_deletion(k)?;
                if self.aliases.contains_key(&name) {
                    return Err(Rejection::AlreadyExists(format!(
                        "An alias with the name {name} already exists"
                    )));
                }
                if self.aliases.len() >= rules::MAX_ALIASES {
                    return Err(Rejection::LimitExceeded(format!(
                        "at most {} aliases per account",
                        rules::MAX_ALIASES
                    )));
                }
                self.aliases.insert(
                    name.clone(),
                    AliasRecord {
                        name: name.clone(),
                        key_id,
                        created_ms: now_ms,
                        updated_ms: now_ms,
                    },
                );
                self.aliases_by_key
                    .entry(key_id)
                    .or_default()
                    .insert(name.clone());
                Ok(vec![Touched::Alias(name)])
            }
            Command::UpdateAlias {
                name,
                key_id,
                now_ms,
            } => {
                let current = self
                    .aliases
                    .get(&name)
                    .ok_or_else(|| Rejection::NotFound(format!("Alias {name} is not found.")))?
                    .key_id;
                let new = self
                    .keys
                    .get(&key_id)
                    .ok_or_else(|| key_not_found(&key_id))?;
                rules::require_not_pending_deletion(new)?;
                if let Some(old) = self.keys.get(&current) {
                    if old.usage != new.usage || old.spec != new.spec {
                        return Err(Rejection::Invalid(format!(
                            "{name} points to a key of another type or usage; an alias can only move \
                             to a key of the same key spec and key usage"
                        )));
                    }
                }
                if let Some(a) = self.aliases.get_mut(&name) {
                    a.key_id = key_id;
                    a.updated_ms = now_ms;
                }
                self.unlink_alias(&current, &name);
                self.aliases_by_key
                    .entry(key_id)
                    .or_default()
                    .insert(name.clone());
                Ok(vec![Touched::Alias(name)])
            }
            Command::DeleteAlias { name } => {
                let Some(old) = self.aliases.remove(&name) else {
                    return Err(Rejection::NotFound(format!("Alias {name} is not found.")));
                };
                self.unlink_alias(&old.key_id, &name);
                Ok(vec![Touched::Alias(name)])
            }
            Command::TagKey { key_id, tags } => {
                let k = self.key_mut(&key_id)?;
                rules::require_not_pending_deletion(k)?;
                let mut next = k.tags.clone();
                for (tk, tv) in tags {
                    next.insert(tk, tv);
                }
                rules::check_tags(&next)?;
                k.tags = next;
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::UntagKey { key_id, tag_keys } => {
                let k = self.key_mut(&key_id)?;
                rules::require_not_pending_deletion(k)?;
                for t in &tag_keys {
                    k.tags.remove(t);
                }
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::SetRotation { key_id, schedule } => {
                let k = self.key_mut(&key_id)?;
                rules::require_usable_for_rotation(k)?;
                if let Some(s) = &schedule {
                    if !(rules::MIN_ROTATION_DAYS..=rules::MAX_ROTATION_DAYS)
                        .contains(&s.period_days)
                    {
                        return Err(Rejection::Invalid(format!(
                            "RotationPeriodInDays {} is out of range",
                            s.period_days
                        )));
                    }
                }
                k.rotation = schedule;
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::CreateKeyVersion { key_id, version } => {
                let k = self.key_mut(&key_id)?;
                if !k.spec.is_asymmetric() {
                    return Err(Rejection::Unsupported(format!(
                        "Key '{key_id}' has key spec {}; only asymmetric keys have key versions",
                        k.spec.as_aws()
                    )));
                }
                if k.origin == Origin::External {
                    return Err(Rejection::Unsupported(format!(
                        "Key '{key_id}' has imported key material; it cannot have other versions"
                    )));
                }
                match k.state {
                    KeyState::Enabled => {}
                    KeyState::Disabled => {
                        return Err(Rejection::Disabled(format!("Key '{key_id}' is disabled.")))
                    }
                    KeyState::PendingDeletion | KeyState::PendingImport => {
                        rules::require_not_pending_deletion(k)?;
                        rules::require_not_pending_import(k)?;
                    }
                }
                if k.versions.len() >= rules::MAX_KEY_VERSIONS {
                    return Err(Rejection::LimitExceeded(format!(
                        "Key '{key_id}' has {} versions, the most allowed",
                        rules::MAX_KEY_VERSIONS
                    )));
                }
                let next = k.primary().version + 1;
                if version.version != next
                    || version.wrapped.is_empty()
                    || version.public_key.is_none()
                {
                    return Err(Rejection::Invalid(format!(
                        "the new version of {key_id} must be {next}, with material and a public key"
                    )));
                }
                k.versions.push(version);
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::RotateKey {
                key_id,
                version,
                on_demand,
                now_ms,
            } => {
                let k = self.key_mut(&key_id)?;
                if on_demand {
                    rules::require_usable_for_rotation(k)?;
                    if k.on_demand_rotations() >= rules::MAX_ON_DEMAND_ROTATIONS {
                        return Err(Rejection::LimitExceeded(format!(
                            "{key_id} has been rotated on demand {} times, the most allowed",
                            rules::MAX_ON_DEMAND_ROTATIONS
                        )));
                    }
                } else {
                    let due = k.state == KeyState::Enabled
                        && k.rotation.is_some_and(|r| r.next_ms <= now_ms);
                    if !due {
                        return Err(Rejection::NotDue(format!(
                            "{key_id} is not due for rotation"
                        )));
                    }
                }
                let next = k.primary().version + 1;
                if version.version != next || version.wrapped.is_empty() {
                    return Err(Rejection::Invalid(format!(
                        "the new version of {key_id} must be {next}"
                    )));
                }
                k.rotations.push(RotationEvent {
                    version: version.version,
                    at_ms: now_ms,
                    on_demand,
                });
                k.versions.push(version);
                if let Some(r) = k.rotation.as_mut().filter(|_| !on_demand) {
                    // An automatic rotation starts the next period; an
                    // on-demand one leaves the schedule as it was, as AWS does.
                    r.next_ms = now_ms.saturating_add(u64::from(r.period_days) * rules::DAY_MS);
                }
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::ImportKeyMaterial {
                key_id,
                wrapped,
                public_key,
                material_digest,
                valid_to_ms,
                token_valid_to_ms,
            } => {
                let k = self.key_mut(&key_id)?;
                rules::require_external(k)?;
                rules::require_not_pending_deletion(k)?;
                if stamp_ms > token_valid_to_ms {
                    return Err(Rejection::ExpiredImportToken(
                        "The import token has expired; call GetParametersForImport for a new one"
                            .into(),
                    ));
                }
                if let Some(v) = valid_to_ms {
                    rules::check_import_valid_to(v, stamp_ms)?;
                }
                if wrapped.is_empty() || public_key.is_some() != k.spec.is_asymmetric() {
                    return Err(Rejection::Invalid(format!(
                        "imported material of {key_id} must be wrapped, with a public key if asymmetric"
                    )));
                }
                let known = k.import.as_ref().and_then(|i| i.material_digest);
                if known.is_some_and(|d| d != material_digest) {
                    return Err(Rejection::IncorrectKeyMaterial(format!(
                        "The key material is not the material imported into key '{key_id}' before"
                    )));
                }
                // Every check is made: from here on the change is whole.
                k.import = Some(ImportInfo {
                    material_digest: Some(material_digest),
                    valid_to_ms,
                });
                // Its one version (keys with imported material have no
                // others), for which the proposer wrapped the material.
                if let Some(v) = k.versions.last_mut() {
                    v.wrapped = wrapped;
                    v.public_key = public_key;
                }
                if k.state == KeyState::PendingImport {
                    k.state = KeyState::Enabled;
                }
                k.revision = index;
                Ok(vec![Touched::Key(key_id)])
            }
            Command::DeleteImportedKeyMaterial { key_id } => {
                let k = self.key_mut(&key_id)?;
                rules::require_external(k)?;
                remove_material(k, index);
                Ok(vec![Touched::Key(key_id)])
            }
            Command::ExpireKeyMaterial { key_id } => {
                let k = self.key_mut(&key_id)?;
                let due = k.has_material()
                    && k.import
                        .as_ref()
                        .and_then(|i| i.valid_to_ms)
                        .is_some_and(|v| v <= stamp_ms);
                if !due {
                    return Err(Rejection::NotDue(format!(
                        "the material of {key_id} has not expired"
                    )));
                }
                remove_material(k, index);
                Ok(vec![Touched::Key(key_id)])
            }
        }
    }

    fn schedule_deletion(
        &mut self,
        index: u64,
        key_id: KeyId,
        deletion_ms: u64,
        window_days: u32,
    ) -> Result<Vec<Touched>, Rejection> {
        let k = self.key_mut(&key_id)?;
        rules::require_not_pending_deletion(k)?;
        if !(rules::MIN_PENDING_WINDOW_DAYS..=rules::MAX_PENDING_WINDOW_DAYS).contains(&window_days)
        {
            return Err(Rejection::Invalid(format!(
                "PendingWindowInDays {window_days} is out of range"
            )));
        }
        k.state = KeyState::PendingDeletion;
        k.deletion_ms = Some(deletion_ms);
        k.pending_window_days = Some(window_days);
        k.revision = index;
        Ok(vec![Touched::Key(key_id)])
    }

    /// Removes a key pending deletion whose date is at or before `due_at`;
    /// its grants are marked removed at `removed_ms`.
    fn purge_key(
        &mut self,
        key_id: KeyId,
        due_at: u64,
        removed_ms: u64,
    ) -> Result<Vec<Touched>, Rejection> {
        let k = self
            .keys
            .get(&key_id)
            .ok_or_else(|| key_not_found(&key_id))?;
        let due =
            k.state == KeyState::PendingDeletion && k.deletion_ms.is_some_and(|d| d <= due_at);
        if !due {
            return Err(Rejection::NotDue(format!(
                "{key_id} is not due for deletion"
            )));
        }
        self.keys.remove(&key_id);
        let mut touched = vec![Touched::Key(key_id)];
        if self.key_usage.remove(&key_id).is_some() {
            touched.push(Touched::KeyUsage(key_id));
        }
        // Its grants go with it (their tokens name a key that is gone).
        for id in self.grants_by_key.remove(&key_id).unwrap_or_default() {
            self.grants
                .insert(id.clone(), GrantRow::Removed { key_id, removed_ms });
            touched.push(Touched::Grant(id));
        }
        let names: Vec<String> = self
            .aliases
            .values()
            .filter(|a| a.key_id == key_id)
            .map(|a| a.name.clone())
            .collect();
        for n in names {
            self.aliases.remove(&n);
            touched.push(Touched::Alias(n));
        }
        self.aliases_by_key.remove(&key_id);
        Ok(touched)
    }

    fn require_init(&self) -> Result<&ClusterInfo, Rejection> {
        self.cluster.as_ref().ok_or(Rejection::NotInitialized)
    }

    /// Keys whose deletion date has passed at `now_ms`.
    pub fn due_deletions(&self, now_ms: u64) -> Vec<KeyId> {
        self.keys
            .values()
            .filter(|k| {
                k.state == KeyState::PendingDeletion && k.deletion_ms.is_some_and(|d| d <= now_ms)
            })
            .map(|k| k.key_id)
            .collect()
    }

    /// Keys whose imported material has expired at `now_ms`.
    pub fn due_expirations(&self, now_ms: u64) -> Vec<KeyId> {
        self.keys
            .values()
            .filter(|k| {
                k.has_material()
                    && k.import
                        .as_ref()
                        .and_then(|i| i.valid_to_ms)
                        .is_some_and(|v| v <= now_ms)
            })
            .map(|k| k.key_id)
            .collect()
    }

    /// Enabled keys whose automatic rotation is due at `now_ms`.
    pub fn due_rotations(&self, now_ms: u64) -> Vec<KeyId> {
        self.keys
            .values()
            .filter(|k| {
                k.state == KeyState::Enabled && k.rotation.is_some_and(|r| r.next_ms <= now_ms)
            })
            .map(|k| k.key_id)
            .collect()
    }
}

/// Forgets a key's imported material (not which material it was): the key
/// becomes PendingImport, unless it is pending deletion.
fn remove_material(k: &mut KeyRecord, index: u64) {
    for v in &mut k.versions {
        v.wrapped.clear();
        v.public_key = None;
    }
    if let Some(i) = &mut k.import {
        i.valid_to_ms = None;
    }
    if k.state != KeyState::PendingDeletion {
        k.state = KeyState::PendingImport;
    }
    k.revision = index;
}

fn key_arnless(id: &KeyId) -> String {
    format!("Key '{id}'")
}

#[cfg(test)]
mod tests;
