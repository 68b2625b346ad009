//! Key operations: creation, lookup (ids, ARNs, aliases), crypto through the
//! key actors, and the lifecycle (state, deletion, aliases, tags, rotation).

use std::collections::BTreeMap;
use std::sync::Arc;

use arca_crypto::SecretBytes;
use arca_state::rules::{self, DAY_MS};
use arca_state::{
    AliasRecord, ClusterInfo, Command, KeyId, KeyRecord, KeySpec, KeyUsage, KeyVersion, Outcome,
    RotationEvent, RotationSchedule,
};
use tokio::sync::oneshot;

use arca_keys::PrivateKey;

use crate::actors::{self, Context, Encrypted, KeyOp, KeyOut, Request};
use crate::{Node, NodeError};

/// A key as DescribeKey shows it (the record holds only wrapped material).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub arn: String,
    pub account_id: String,
    pub record: KeyRecord,
}

/// A key as authorization sees it.
#[derive(Debug, Clone)]
pub struct KeyFacts {
    pub arn: String,
    /// Log index of its last change: a cached parse of its policy is valid
    /// while this holds.
    pub revision: u64,
    pub spec: KeySpec,
    pub usage: KeyUsage,
    pub origin: arca_state::Origin,
    /// The policy and tags, unless the caller said it holds this revision.
    pub detail: Option<KeyDetail>,
    /// Alias names (`alias/...`) that point to it.
    pub aliases: Vec<String>,
    /// Its live grants to the caller.
    pub grants: Vec<arca_state::GrantRecord>,
}

/// The parts of a key that change with its revision.
#[derive(Debug, Clone)]
pub struct KeyDetail {
    /// `None`: the default key policy.
    pub policy: Option<String>,
    pub tags: Vec<(String, String)>,
}

/// The identity of a client's write, so that its retries take effect once
/// (see `arca_state::Proposal`).
pub type RequestId = Option<arca_state::RequestKey>;

/// A write's outcome as a result (a repeat counts as its first outcome).
pub(crate) fn applied(o: Outcome) -> Result<(), NodeError> {
    match o.first().0 {
        Outcome::Applied => Ok(()),
        Outcome::Rejected(r) => Err(r.into()),
        Outcome::Repeated { .. } | Outcome::Batch(_) => {
            Err(NodeError::Internal("nested outcome".into()))
        }
    }
}

fn not_found(key_ref: &str) -> NodeError {
    NodeError::NotFound(format!("Key '{key_ref}' does not exist"))
}

impl Node {
    pub(crate) fn require_cluster(&self) -> Result<Arc<ClusterInfo>, NodeError> {
        self.cluster_info().ok_or(NodeError::NotInitialized)
    }

    fn info_of(k: &KeyRecord, c: &ClusterInfo) -> KeyInfo {
        KeyInfo {
            arn: c.key_arn(&k.key_id),
            account_id: c.account_id.clone(),
            record: k.clone(),
        }
    }

    /// The ARN of a key id in this cluster.
    pub fn key_arn(&self, key_id: &KeyId) -> Result<String, NodeError> {
        let a = self.shared.read();
        a.state
            .cluster
            .as_ref()
            .map(|c| c.key_arn(key_id))
            .ok_or(NodeError::NotInitialized)
    }

    /// Resolves in this replica: `Ok(None)` if well-formed but unknown here.
    fn resolve_local(&self, key_ref: &str) -> Result<Option<KeyId>, NodeError> {
        let a = self.shared.read();
        let c = a.state.cluster.as_ref().ok_or(NodeError::NotInitialized)?;
        let prefix = format!("arn:aws:kms:{}:{}:", c.region, c.account_id);
        let local = if key_ref.starts_with("arn:") {
            key_ref
                .strip_prefix(&prefix)
                .ok_or_else(|| not_found(key_ref))?
        } else {
            key_ref
        };
        if local.starts_with("alias/") {
            return Ok(a.state.aliases.get(local).map(|al| al.key_id));
        }
        let id_part = if key_ref.starts_with("arn:") {
            local
                .strip_prefix("key/")
                .ok_or_else(|| not_found(key_ref))?
        } else {
            local
        };
        let id: KeyId = id_part.parse().map_err(|_| not_found(key_ref))?;
        Ok(a.state.keys.contains_key(&id).then_some(id))
    }

    /// Resolves a `KeyId` parameter — key id, key ARN, alias name or alias
    /// ARN — to a key that exists. A name unknown here is looked up again after
    /// catching up with the leader, so one created on another node is found.
    ///
    /// Like crypto requests, it first makes sure this node may serve from its
    /// replica (`ensure_serving`): every write acknowledged before is applied.
    pub async fn resolve(&self, key_ref: &str) -> Result<KeyId, NodeError> {
        self.ensure_serving().await?;
        if let Some(id) = self.resolve_local(key_ref)? {
            return Ok(id);
        }
        self.catch_up().await?;
        self.resolve_local(key_ref)?.ok_or_else(|| {
            if key_ref.contains("alias/") {
                NodeError::NotFound(format!("Alias {key_ref} is not found."))
            } else {
                not_found(key_ref)
            }
        })
    }

    /// New secret material for `spec`, and its public key if asymmetric.
    /// RSA comes from the pool when it has one; slow generation runs on the
    /// blocking pool.
    pub(crate) async fn new_material(
        &self,
        spec: KeySpec,
    ) -> Result<(SecretBytes, Option<Vec<u8>>), NodeError> {
        if spec == KeySpec::SymmetricDefault {
            return Ok((SecretBytes::random(32)?, None));
        }
        let material = match self.pool.take(spec) {
            Some(m) => m,
            None => {
                // RSA generation takes up to seconds: within the heavy bound.
                let permit = match spec.rsa_bits() {
                    Some(_) => Some(self.registry.heavy_permit()?),
                    None => None,
                };
                let m = tokio::task::spawn_blocking(move || arca_keys::generate(spec))
                    .await
                    .map_err(|e| NodeError::Internal(e.to_string()))??;
                drop(permit);
                m
            }
        };
        let public = if spec.is_asymmetric() {
            Some(PrivateKey::load(spec, material.expose())?.public_key_spki_der()?)
        } else {
            None
        };
        Ok((material, public))
    }

    /// A new version of a key's material, wrapped for (key, version).
    pub(crate) async fn new_version(
        &self,
        key_id: &KeyId,
        spec: KeySpec,
        version: u32,
        now: u64,
    ) -> Result<KeyVersion, NodeError> {
        let (material, public_key) = self.new_material(spec).await?;
        let wrapped = self
            .wrap_key()?
            .wrap(material.expose(), actors::material_context(key_id, version))?;
        Ok(KeyVersion {
            version,
            version_id: KeyId::from_random(arca_crypto::random::bytes16()?).into(),
            public_key,
            wrapped,
            created_ms: now,
        })
    }

    pub async fn create_key(
        &self,
        rid: RequestId,
        description: String,
        tags: Vec<(String, String)>,
        spec: KeySpec,
        usage: KeyUsage,
        policy: Option<String>,
    ) -> Result<KeyInfo, NodeError> {
        self.require_cluster()?;
        if !spec.allows(usage) {
            return Err(NodeError::Validation(format!(
                "KeyUsage {} is not compatible with KeySpec {}",
                usage.as_aws(),
                spec.as_aws()
            )));
        }
        let key_id = KeyId::from_random(arca_crypto::random::bytes16()?);
        let now = self.now_ms();
        let first = self.new_version(&key_id, spec, 1, now).await?;
        let mut record = KeyRecord::new(key_id, description, usage, spec, first);
        record.tags = tags.into_iter().collect();
        record.policy = policy;
        self.propose_new_key(rid, record).await
    }

    /// Creates a key of origin EXTERNAL: no material until
    /// `ImportKeyMaterial`, PendingImport until then.
    pub async fn create_external_key(
        &self,
        rid: RequestId,
        description: String,
        tags: Vec<(String, String)>,
        spec: KeySpec,
        usage: KeyUsage,
        policy: Option<String>,
    ) -> Result<KeyInfo, NodeError> {
        self.require_cluster()?;
        if !spec.allows(usage) {
            return Err(NodeError::Validation(format!(
                "KeyUsage {} is not compatible with KeySpec {}",
                usage.as_aws(),
                spec.as_aws()
            )));
        }
        let key_id = KeyId::from_random(arca_crypto::random::bytes16()?);
        let version_id = KeyId::from_random(arca_crypto::random::bytes16()?).into();
        let mut record =
            KeyRecord::new_external(key_id, description, usage, spec, version_id, self.now_ms());
        record.tags = tags.into_iter().collect();
        record.policy = policy;
        self.propose_new_key(rid, record).await
    }

    async fn propose_new_key(
        &self,
        rid: RequestId,
        record: KeyRecord,
    ) -> Result<KeyInfo, NodeError> {
        let (key_id, spec) = (record.key_id, record.spec);
        let (outcome, created) = self
            .propose_created(rid, Command::CreateKey { key: record })
            .await?;
        applied(outcome)?;
        // A retry of a request applied before answers with the first
        // attempt's key; this attempt's material was never stored.
        let key_id = match created {
            Some(first) => first
                .parse()
                .map_err(|_| NodeError::Internal(format!("bad key id {first}")))?,
            None => {
                tracing::info!(key_id = %key_id, spec = spec.as_aws(), "key created");
                key_id
            }
        };
        self.describe_key(&key_id).await
    }

    /// Adds a version (a new key pair) to an asymmetric key; returns its id.
    pub async fn create_key_version(
        &self,
        rid: RequestId,
        key_id: KeyId,
    ) -> Result<String, NodeError> {
        let (spec, next) = {
            let a = self.shared.read();
            let k = a
                .state
                .keys
                .get(&key_id)
                .ok_or_else(|| not_found(&key_id.to_string()))?;
            (k.spec, k.primary().version + 1)
        };
        if !spec.is_asymmetric() {
            return Err(NodeError::Unsupported(format!(
                "Key '{key_id}' has key spec {}; only asymmetric keys have key versions",
                spec.as_aws()
            )));
        }
        let version = self.new_version(&key_id, spec, next, self.now_ms()).await?;
        let version_id = version.version_id.to_string();
        let (outcome, created) = self
            .propose_created(rid, Command::CreateKeyVersion { key_id, version })
            .await?;
        applied(outcome)?;
        Ok(created.unwrap_or(version_id))
    }

    /// The public key of a version (default: the primary): SPKI DER and version id.
    pub async fn public_key(
        &self,
        key_id: KeyId,
        version_id: Option<&str>,
    ) -> Result<(Vec<u8>, String), NodeError> {
        self.ensure_serving().await?;
        let a = self.shared.read();
        let k = a
            .state
            .keys
            .get(&key_id)
            .ok_or_else(|| not_found(&key_id.to_string()))?;
        actors::check_usable(key_id, k.state)?;
        if !k.spec.is_asymmetric() {
            return Err(NodeError::Unsupported(format!(
                "GetPublicKey is not supported for key '{key_id}' with key spec {}",
                k.spec.as_aws()
            )));
        }
        let v = match version_id {
            Some(id) => k.version_by_id(id).ok_or_else(|| {
                NodeError::NotFound(format!(
                    "Key version '{id}' of key '{key_id}' does not exist"
                ))
            })?,
            None => k.primary(),
        };
        let spki = v.public_key.clone().ok_or_else(|| {
            NodeError::Internal("an asymmetric key version without a public key".into())
        })?;
        Ok((spki, v.version_id.to_string()))
    }

    /// Runs an asymmetric or HMAC operation through the key's actor, after
    /// checking the key's usage. Returns the result and the version used.
    pub async fn key_op(
        &self,
        key_id: KeyId,
        usage: KeyUsage,
        version_id: Option<String>,
        op: KeyOp,
    ) -> Result<(KeyOut, String), NodeError> {
        self.require_usage(key_id, usage)?;
        self.ask(key_id, |reply| Request::Keys {
            version_id,
            op,
            reply,
        })
        .await
    }

    /// Refuses a key whose usage is not `usage` (and any symmetric key) with
    /// `InvalidKeyUsage`, as [`Node::key_op`] does before running anything.
    pub fn require_usage(&self, key_id: KeyId, usage: KeyUsage) -> Result<(), NodeError> {
        let (spec, have_usage) = self.spec_of(&key_id)?;
        if have_usage != usage || spec == KeySpec::SymmetricDefault {
            return Err(NodeError::InvalidKeyUsage(format!(
                "Key '{key_id}' has KeyUsage {} and KeySpec {}; the operation needs KeyUsage {}",
                have_usage.as_aws(),
                spec.as_aws(),
                usage.as_aws()
            )));
        }
        Ok(())
    }

    /// A fresh asymmetric key pair (PKCS#8 private key, SPKI public key).
    pub async fn new_key_pair(&self, spec: KeySpec) -> Result<(SecretBytes, Vec<u8>), NodeError> {
        if !spec.is_asymmetric() {
            return Err(NodeError::Validation(format!(
                "{spec} is not a key pair spec"
            )));
        }
        let (private, public) = self.new_material(spec).await?;
        let public =
            public.ok_or_else(|| NodeError::Internal("a key pair without a public key".into()))?;
        Ok((private, public))
    }

    /// Requires a symmetric encryption key (Encrypt, GenerateDataKey and friends).
    pub fn require_symmetric(&self, key_id: &KeyId) -> Result<(), NodeError> {
        let a = self.shared.read();
        let k = a
            .state
            .keys
            .get(key_id)
            .ok_or_else(|| not_found(&key_id.to_string()))?;
        if k.spec != KeySpec::SymmetricDefault {
            return Err(NodeError::InvalidKeyUsage(format!(
                "Key '{key_id}' has KeySpec {}; the operation needs a symmetric encryption key",
                k.spec.as_aws()
            )));
        }
        Ok(())
    }

    /// A key's spec and usage, from this node's replica.
    pub fn spec_of(&self, key_id: &KeyId) -> Result<(KeySpec, KeyUsage), NodeError> {
        let a = self.shared.read();
        a.state
            .keys
            .get(key_id)
            .map(|k| (k.spec, k.usage))
            .ok_or_else(|| not_found(&key_id.to_string()))
    }

    /// A key from this node's replica (after catching up once if unknown).
    pub async fn describe_key(&self, key_id: &KeyId) -> Result<KeyInfo, NodeError> {
        let cluster = self.require_cluster()?;
        self.ensure_settled(key_id).await?;
        if let Some(k) = self.shared.read().state.keys.get(key_id) {
            return Ok(Self::info_of(k, &cluster));
        }
        self.catch_up().await?;
        let a = self.shared.read();
        a.state
            .keys
            .get(key_id)
            .map(|k| Self::info_of(k, &cluster))
            .ok_or_else(|| not_found(&key_id.to_string()))
    }

    /// Whether the key exists, found as [`Node::describe_key`] finds it,
    /// without copying its record: `NotFound` if not.
    async fn known_key(&self, key_id: &KeyId) -> Result<(), NodeError> {
        self.require_cluster()?;
        self.ensure_settled(key_id).await?;
        if self.shared.read().state.keys.contains_key(key_id) {
            return Ok(());
        }
        self.catch_up().await?;
        match self.shared.read().state.keys.contains_key(key_id) {
            true => Ok(()),
            false => Err(not_found(&key_id.to_string())),
        }
    }

    /// What authorization needs of a key, as this node may serve it (its
    /// last change settled), with the live grants whose grantee is `grantee`.
    /// The policy and tags are left out if the key is still at `known`, a
    /// revision the caller holds them for.
    pub async fn key_facts(
        &self,
        key_id: &KeyId,
        grantee: &str,
        known: Option<u64>,
    ) -> Result<KeyFacts, NodeError> {
        let cluster = self.require_cluster()?;
        self.ensure_serving().await?;
        self.ensure_settled(key_id).await?;
        // A change applied between the wait and the read is not shown either:
        // wait for it too (a bounded number of times, then refuse).
        for _ in 0..3 {
            let revision = self
                .shared
                .read()
                .state
                .keys
                .get(key_id)
                .map_or(0, |k| k.revision);
            if revision <= self.shared.safe_index() {
                break;
            }
            self.ensure_settled(key_id).await?;
        }
        let a = self.shared.read();
        let k = a
            .state
            .keys
            .get(key_id)
            .ok_or_else(|| not_found(&key_id.to_string()))?;
        if k.revision > self.shared.safe_index() {
            return Err(NodeError::Unavailable(format!(
                "Key '{key_id}' is being changed; retry"
            )));
        }
        Ok(KeyFacts {
            arn: format!(
                "arn:aws:kms:{}:{}:key/{}",
                cluster.region, cluster.account_id, key_id
            ),
            revision: k.revision,
            spec: k.spec,
            usage: k.usage,
            origin: k.origin,
            detail: (known != Some(k.revision)).then(|| KeyDetail {
                policy: k.policy.clone(),
                tags: k.tags.iter().map(|(t, v)| (t.clone(), v.clone())).collect(),
            }),
            aliases: a.state.key_aliases(key_id).cloned().collect(),
            grants: a
                .state
                .key_grants(key_id)
                .filter(|g| g.grantee == grantee)
                .cloned()
                .collect(),
        })
    }

    /// Keys in id order after `after` (exclusive), at most `limit`, and
    /// whether more follow. Served from this node's replica, once it holds
    /// every acknowledged write.
    pub async fn list_keys(
        &self,
        after: Option<KeyId>,
        limit: usize,
    ) -> Result<(Vec<(KeyId, String)>, bool), NodeError> {
        self.ensure_serving().await?;
        let a = self.shared.read();
        let c = a.state.cluster.as_ref().ok_or(NodeError::NotInitialized)?;
        let range = a
            .state
            .keys
            .range((
                after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                std::ops::Bound::Unbounded,
            ))
            .map(|(id, _)| (*id, c.key_arn(id)));
        let mut page: Vec<(KeyId, String)> = range.take(limit + 1).collect();
        let truncated = page.len() > limit;
        page.truncate(limit);
        Ok((page, truncated))
    }

    // ---- Crypto ----

    async fn ask<T>(
        &self,
        key_id: KeyId,
        make: impl FnOnce(oneshot::Sender<Result<T, NodeError>>) -> Request,
    ) -> Result<T, NodeError> {
        self.ensure_serving().await?;
        self.ensure_settled(&key_id).await?;
        let (tx, rx) = oneshot::channel();
        self.registry.send(key_id, make(tx))?;
        rx.await.map_err(|_| {
            NodeError::Internal("the key's actor failed while serving the request".into())
        })?
    }

    pub async fn encrypt(
        &self,
        key_id: KeyId,
        plaintext: SecretBytes,
        context: Context,
    ) -> Result<Encrypted, NodeError> {
        self.ask(key_id, |reply| Request::Encrypt {
            plaintext,
            context,
            reply,
        })
        .await
    }

    /// Decrypts a blob; the key comes from the blob. If `expected` is given it
    /// must name the same key (`IncorrectKey` otherwise).
    pub async fn decrypt(
        &self,
        blob: Vec<u8>,
        context: Context,
        expected: Option<KeyId>,
    ) -> Result<(KeyId, SecretBytes), NodeError> {
        let header = arca_crypto::symmetric::parse_header(&blob)?;
        let key_id = KeyId::from_bytes(header.key_id);
        if let Some(e) = expected {
            if e != key_id {
                return Err(NodeError::IncorrectKey(
                    "The key ID in the request does not identify a CMK that can perform this operation.".into(),
                ));
            }
        }
        match self.known_key(&key_id).await {
            Ok(()) => {}
            // A blob naming a key that does not exist is just an invalid ciphertext.
            Err(NodeError::NotFound(_)) => return Err(NodeError::InvalidCiphertext),
            Err(e) => return Err(e),
        }
        let pt = self
            .ask(key_id, |reply| Request::Decrypt {
                blob,
                context,
                reply,
            })
            .await?;
        Ok((key_id, pt))
    }

    pub async fn generate_data_key(
        &self,
        key_id: KeyId,
        len: usize,
        context: Context,
    ) -> Result<(SecretBytes, Encrypted), NodeError> {
        self.ask(key_id, |reply| Request::GenerateDataKey {
            len,
            context,
            reply,
        })
        .await
    }

    pub fn active_key_actors(&self) -> usize {
        self.registry.active()
    }

    // ---- Lifecycle ----

    pub async fn set_enabled(
        &self,
        rid: RequestId,
        key_id: KeyId,
        enabled: bool,
    ) -> Result<(), NodeError> {
        applied(
            self.propose(rid, Command::SetKeyEnabled { key_id, enabled })
                .await?,
        )
    }

    /// Replaces a key's key policy; the caller validated it.
    pub async fn put_key_policy(
        &self,
        rid: RequestId,
        key_id: KeyId,
        policy: String,
    ) -> Result<(), NodeError> {
        applied(
            self.propose(rid, Command::PutKeyPolicy { key_id, policy })
                .await?,
        )
    }

    pub async fn update_description(
        &self,
        rid: RequestId,
        key_id: KeyId,
        description: String,
    ) -> Result<(), NodeError> {
        applied(
            self.propose(
                rid,
                Command::UpdateDescription {
                    key_id,
                    description,
                },
            )
            .await?,
        )
    }

    /// Schedules deletion `window_days` from now; returns the deletion date.
    pub async fn schedule_deletion(
        &self,
        rid: RequestId,
        key_id: KeyId,
        window_days: u32,
    ) -> Result<u64, NodeError> {
        applied(
            self.propose(
                rid,
                Command::ScheduleKeyDeletion {
                    key_id,
                    window_days,
                },
            )
            .await?,
        )?;
        // The date is the leader's stamp plus the window, as applied here (a
        // retry whose key changed since: this node's estimate).
        Ok(self
            .shared
            .read()
            .state
            .keys
            .get(&key_id)
            .and_then(|k| k.deletion_ms)
            .unwrap_or_else(|| {
                self.now_ms()
                    .saturating_add(u64::from(window_days) * DAY_MS)
            }))
    }

    pub async fn cancel_deletion(&self, rid: RequestId, key_id: KeyId) -> Result<(), NodeError> {
        applied(
            self.propose(rid, Command::CancelDeletion { key_id })
                .await?,
        )
    }

    // ---- Aliases ----

    pub async fn create_alias(
        &self,
        rid: RequestId,
        name: String,
        key_id: KeyId,
    ) -> Result<(), NodeError> {
        let now_ms = self.now_ms();
        applied(
            self.propose(
                rid,
                Command::CreateAlias {
                    name,
                    key_id,
                    now_ms,
                },
            )
            .await?,
        )
    }

    /// Moves alias `name` from key `from` — the key the caller was
    /// authorized against — to `key_id`. Refused (`InvalidState`) if the
    /// alias no longer points to `from` when the change applies.
    pub async fn update_alias(
        &self,
        rid: RequestId,
        name: String,
        from: KeyId,
        key_id: KeyId,
    ) -> Result<(), NodeError> {
        let now_ms = self.now_ms();
        applied(
            self.propose(
                rid,
                Command::MoveAlias {
                    name,
                    from,
                    key_id,
                    now_ms,
                },
            )
            .await?,
        )
    }

    /// Deletes alias `name` if it still points to `key_id`, the key the
    /// caller was authorized against.
    pub async fn delete_alias(
        &self,
        rid: RequestId,
        name: String,
        key_id: KeyId,
    ) -> Result<(), NodeError> {
        applied(
            self.propose(rid, Command::DeleteAliasOf { name, key_id })
                .await?,
        )
    }

    /// Aliases in name order after `after`, optionally of one key; at most
    /// `limit`, and whether more follow.
    pub async fn list_aliases(
        &self,
        key: Option<KeyId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<(AliasRecord, String)>, bool), NodeError> {
        self.ensure_serving().await?;
        let a = self.shared.read();
        let c = a.state.cluster.as_ref().ok_or(NodeError::NotInitialized)?;
        let start = after.map_or(std::ops::Bound::Unbounded, |m| {
            std::ops::Bound::Excluded(m.to_string())
        });
        let mut page: Vec<(AliasRecord, String)> = a
            .state
            .aliases
            .range((start, std::ops::Bound::Unbounded))
            .map(|(_, al)| al)
            .filter(|al| key.is_none_or(|k| al.key_id == k))
            .take(limit + 1)
            .map(|al| (al.clone(), c.alias_arn(&al.name)))
            .collect();
        let truncated = page.len() > limit;
        page.truncate(limit);
        Ok((page, truncated))
    }

    // ---- Tags ----

    pub async fn tag(
        &self,
        rid: RequestId,
        key_id: KeyId,
        tags: Vec<(String, String)>,
    ) -> Result<(), NodeError> {
        applied(self.propose(rid, Command::TagKey { key_id, tags }).await?)
    }

    pub async fn untag(
        &self,
        rid: RequestId,
        key_id: KeyId,
        tag_keys: Vec<String>,
    ) -> Result<(), NodeError> {
        applied(
            self.propose(rid, Command::UntagKey { key_id, tag_keys })
                .await?,
        )
    }

    // ---- Rotation ----

    /// Enables automatic rotation every `period_days` (or disables it: `None`).
    pub async fn set_rotation(
        &self,
        rid: RequestId,
        key_id: KeyId,
        period_days: Option<u32>,
    ) -> Result<(), NodeError> {
        let now = self.now_ms();
        let schedule = period_days.map(|d| RotationSchedule {
            period_days: d,
            next_ms: now.saturating_add(u64::from(d) * DAY_MS),
        });
        applied(
            self.propose(rid, Command::SetRotation { key_id, schedule })
                .await?,
        )
    }

    /// Rotates now; returns the new version.
    pub async fn rotate_on_demand(&self, rid: RequestId, key_id: KeyId) -> Result<u32, NodeError> {
        let next = {
            let a = self.shared.read();
            let k = a
                .state
                .keys
                .get(&key_id)
                .ok_or_else(|| not_found(&key_id.to_string()))?;
            // Checked again, deterministically, when applied.
            rules::require_usable_for_rotation(k).map_err(NodeError::from)?;
            k.primary().version + 1
        };
        let now = self.now_ms();
        let version = self
            .new_version(&key_id, KeySpec::SymmetricDefault, next, now)
            .await?;
        let cmd = Command::RotateKey {
            key_id,
            version,
            on_demand: true,
            now_ms: now,
        };
        applied(self.propose(rid, cmd).await?)?;
        Ok(next)
    }

    /// The rotations of a key, oldest first.
    pub fn rotations(&self, key_id: &KeyId) -> Result<Vec<RotationEvent>, NodeError> {
        let a = self.shared.read();
        a.state
            .keys
            .get(key_id)
            .map(|k| k.rotations.clone())
            .ok_or_else(|| not_found(&key_id.to_string()))
    }

    /// Tags of a key.
    pub fn tags(&self, key_id: &KeyId) -> Result<BTreeMap<String, String>, NodeError> {
        let a = self.shared.read();
        a.state
            .keys
            .get(key_id)
            .map(|k| k.tags.clone())
            .ok_or_else(|| not_found(&key_id.to_string()))
    }
}
