//! Authorization, in one place: every operation — AWS, extension and admin —
//! becomes one or more checks (principal, action, resource, condition
//! context), and `arca_policy::decide` answers each before any operation
//! runs. The model is AWS's (docs/authorization.md): an explicit Deny wins;
//! otherwise the key policy must allow the caller, directly or through the
//! account root and the caller's identity policy. Account-level actions
//! (CreateKey, ListKeys, admin operations) are decided by the identity policy.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use arca_node::keys::KeyFacts;
use arca_node::Node;
use arca_policy::{decide, Context, Decision, Policy, PolicyError, PolicyKind, Request};
use arca_state::rules::MAX_TAGS;
use arca_state::KeyId;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;

use crate::api::{context_bytes, Caller, MAX_CONTEXT_BYTES};
use crate::error::ApiError;
use crate::ops::{Op, Scope};

/// The request fields authorization looks at (the operation parses the body
/// again for itself).
#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct Fields {
    key_id: Option<String>,
    destination_key_id: Option<String>,
    source_key_id: Option<String>,
    target_key_id: Option<String>,
    alias_name: Option<String>,
    ciphertext_blob: Option<String>,
    encryption_context: Option<BTreeMap<String, String>>,
    source_encryption_context: Option<BTreeMap<String, String>>,
    destination_encryption_context: Option<BTreeMap<String, String>>,
    encryption_algorithm: Option<String>,
    source_encryption_algorithm: Option<String>,
    destination_encryption_algorithm: Option<String>,
    signing_algorithm: Option<String>,
    message_type: Option<String>,
    key_agreement_algorithm: Option<String>,
    mac_algorithm: Option<String>,
    key_spec: Option<String>,
    customer_master_key_spec: Option<String>,
    key_usage: Option<String>,
    origin: Option<String>,
    wrapping_algorithm: Option<String>,
    wrapping_key_spec: Option<String>,
    expiration_model: Option<String>,
    valid_to: Option<f64>,
    policy: Option<String>,
    bypass_policy_lockout_safety_check: Option<bool>,
    tags: Option<Vec<TagField>>,
    tag_keys: Option<Vec<String>>,
    pending_window_in_days: Option<i64>,
    grant_tokens: Option<Vec<String>>,
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    operations: Option<Vec<String>>,
    constraints: Option<ConstraintFields>,
    grant_id: Option<String>,
    grant_token: Option<String>,
    user_name: Option<String>,
    access_key_id: Option<String>,
    plaintext: Option<zeroize::Zeroizing<String>>,
    message: Option<String>,
    signature: Option<String>,
    mac: Option<String>,
}

/// A grant constraint's pairs, in bytes (its token must stay within
/// `arca_node::grants::MAX_TOKEN_LEN`).
pub const MAX_CONSTRAINT_BYTES: usize = 2048;

impl Fields {
    /// AWS's input limits, checked before any condition key is built from
    /// the request (which costs in proportion to it).
    fn check_limits(&self) -> Result<(), ApiError> {
        for (name, c) in [
            ("EncryptionContext", &self.encryption_context),
            ("SourceEncryptionContext", &self.source_encryption_context),
            (
                "DestinationEncryptionContext",
                &self.destination_encryption_context,
            ),
        ] {
            if c.as_ref()
                .is_some_and(|c| context_bytes(c) > MAX_CONTEXT_BYTES)
            {
                return Err(ApiError::validation(format!(
                    "{name} is larger than {MAX_CONTEXT_BYTES} bytes"
                )));
            }
        }
        if let Some(c) = &self.constraints {
            let bytes = c
                .encryption_context_equals
                .as_ref()
                .map_or(0, context_bytes)
                + c.encryption_context_subset
                    .as_ref()
                    .map_or(0, context_bytes);
            if bytes > MAX_CONSTRAINT_BYTES {
                return Err(ApiError::validation(format!(
                    "Constraints are larger than {MAX_CONSTRAINT_BYTES} bytes"
                )));
            }
        }
        // Tags (or tag keys) in one request; a key's own total is checked
        // when the change is applied (`LimitExceededException`).
        if self.tags.as_ref().is_some_and(|t| t.len() > MAX_TAGS)
            || self.tag_keys.as_ref().is_some_and(|t| t.len() > MAX_TAGS)
        {
            return Err(ApiError::new(
                400,
                "TagException",
                format!("at most {MAX_TAGS} tags in one request"),
            ));
        }
        if self.operations.as_ref().is_some_and(|o| o.len() > 32) {
            return Err(ApiError::validation(
                "Operations lists at most 32 operations",
            ));
        }
        Ok(())
    }

    /// Decoding comes before authorization: a blob that is not base64 is a
    /// `SerializationException` whoever asks.
    fn check_blobs(&self) -> Result<(), ApiError> {
        if let Some(p) = &self.plaintext {
            match B64.decode(p.as_bytes()) {
                Ok(mut d) => zeroize::Zeroize::zeroize(&mut d),
                Err(_) => return Err(ApiError::serialization("'Plaintext' is not valid base64")),
            }
        }
        for (name, v) in [
            ("Message", &self.message),
            ("Signature", &self.signature),
            ("Mac", &self.mac),
            ("CiphertextBlob", &self.ciphertext_blob),
        ] {
            if let Some(v) = v {
                if B64.decode(v.as_bytes()).is_err() {
                    return Err(ApiError::serialization(format!(
                        "'{name}' is not valid base64"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ConstraintFields {
    encryption_context_equals: Option<BTreeMap<String, String>>,
    encryption_context_subset: Option<BTreeMap<String, String>>,
}

/// AWS's limit on `GrantTokens` per request.
pub const MAX_GRANT_TOKENS: usize = 10;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagField {
    tag_key: Option<String>,
    tag_value: Option<String>,
}

/// What a caller is, for policies.
pub struct Principal {
    pub arn: String,
    pub account: String,
    pub region: String,
}

/// One request to authorize.
#[derive(Clone, Copy)]
pub struct Call<'a> {
    pub caller: &'a Caller,
    pub principal: &'a Principal,
    pub op: Op,
    pub body: &'a [u8],
    /// The client's address, for `aws:SourceIp`.
    pub source_ip: &'a str,
}

/// What authorization keeps between requests, each part valid while the
/// record it came from keeps its revision: parsed policies, and the condition
/// keys of callers and keys, shared by every request (`Context::layered`).
#[derive(Default)]
pub struct Authorizer {
    cache: Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<KeyId, KeyEntry>,
    users: HashMap<String, UserEntry>,
    /// By access key id: the caller's condition keys.
    callers: HashMap<String, Arc<Context>>,
    /// By account: the default key policy.
    defaults: HashMap<String, Arc<Policy>>,
    /// The current second's `aws:CurrentTime` and `aws:EpochTime`.
    time: Option<(u64, Arc<Context>)>,
}

#[derive(Clone)]
struct KeyEntry {
    revision: u64,
    policy: Arc<Policy>,
    /// `kms:KeySpec`, `kms:KeyUsage`, `kms:KeyOrigin`, `aws:ResourceTag/*`.
    layer: Arc<Context>,
}

#[derive(Clone)]
struct UserEntry {
    revision: u64,
    policy: Option<Arc<Policy>>,
}

/// Entries kept per map at most; past it that map starts over.
const CACHE_LIMIT: usize = 100_000;

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    map.insert(k, v);
}

/// Parses a stored policy (validated when it was put).
fn stored(doc: &str, kind: PolicyKind) -> Result<Arc<Policy>, ApiError> {
    Policy::parse(doc, kind)
        .map(Arc::new)
        .map_err(|e| ApiError::internal(format!("a stored policy does not parse: {e}")))
}

impl Authorizer {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The caller's identity policy, if it has one.
    async fn identity(
        &self,
        node: &Node,
        caller: &Caller,
        op: Op,
    ) -> Result<Option<Arc<Policy>>, ApiError> {
        let held = self.lock().users.get(&caller.user).cloned();
        let known = held.as_ref().map(|e| e.revision);
        // ClusterStatus answers from this node's own view when no leader
        // does; everything else needs a replica known to be current.
        let found = if op == Op::ClusterStatus {
            node.user_policy_here(&caller.user, known).await?
        } else {
            node.user_policy(&caller.user, known).await?
        };
        let Some((revision, doc)) = found else {
            return Ok(None);
        };
        // The node leaves the policy out only for the revision held here.
        match (doc, held) {
            (None, Some(held)) => Ok(held.policy),
            (Some(doc), _) => {
                let policy = doc.map(|d| stored(&d, PolicyKind::Identity)).transpose()?;
                let entry = UserEntry {
                    revision,
                    policy: policy.clone(),
                };
                bounded_insert(&mut self.lock().users, caller.user.clone(), entry);
                Ok(policy)
            }
            (None, None) => Err(ApiError::internal("user policy missing")),
        }
    }

    /// A key's facts, with its policy and condition-key layer from the cache
    /// when its revision is unchanged.
    async fn key(
        &self,
        node: &Node,
        id: KeyId,
        grantee: &str,
        account: &str,
    ) -> Result<(KeyFacts, KeyEntry), ApiError> {
        let held = self.lock().keys.get(&id).cloned();
        let mut facts = node
            .key_facts(&id, grantee, held.as_ref().map(|e| e.revision))
            .await?;
        // The node leaves the detail out only for the revision held here.
        let entry = match (facts.detail.take(), held) {
            (None, Some(held)) => held,
            (Some(detail), _) => {
                let entry = self.key_entry(facts.revision, detail, &facts, account)?;
                bounded_insert(&mut self.lock().keys, id, entry.clone());
                entry
            }
            (None, None) => return Err(ApiError::internal("key detail missing")),
        };
        Ok((facts, entry))
    }

    fn key_entry(
        &self,
        revision: u64,
        detail: arca_node::keys::KeyDetail,
        facts: &KeyFacts,
        account: &str,
    ) -> Result<KeyEntry, ApiError> {
        let policy = match &detail.policy {
            Some(doc) => stored(doc, PolicyKind::Key)?,
            None => {
                let held = self.lock().defaults.get(account).cloned();
                match held {
                    Some(p) => p,
                    None => {
                        let p = stored(&arca_policy::default_key_policy(account), PolicyKind::Key)?;
                        bounded_insert(&mut self.lock().defaults, account.to_string(), p.clone());
                        p
                    }
                }
            }
        };
        let mut layer = Context::new();
        layer.insert("kms:KeySpec", facts.spec.as_aws());
        layer.insert("kms:KeyUsage", facts.usage.as_aws());
        layer.insert("kms:KeyOrigin", facts.origin.as_aws());
        for (t, v) in &detail.tags {
            layer.insert(&format!("aws:ResourceTag/{t}"), v.clone());
        }
        Ok(KeyEntry {
            revision,
            policy,
            layer: Arc::new(layer),
        })
    }

    /// The time's condition keys, built once per second and shared.
    fn time_layer(&self) -> Arc<Context> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut cache = self.lock();
        match &cache.time {
            Some((at, layer)) if *at == now => layer.clone(),
            _ => {
                let layer = Arc::new(time_context(now));
                cache.time = Some((now, layer.clone()));
                layer
            }
        }
    }

    /// The caller's condition keys, built once per access key.
    fn caller_layer(&self, caller: &Caller, p: &Principal) -> Arc<Context> {
        if let Some(c) = self.lock().callers.get(&caller.access_key_id) {
            return c.clone();
        }
        let mut ctx = Context::new();
        // aws:PrincipalArn, aws:PrincipalAccount, kms:CallerAccount,
        // aws:PrincipalType and aws:username, from the ARN.
        ctx.insert_principal(&p.arn);
        ctx.insert("aws:userid", caller.access_key_id.clone());
        ctx.insert("aws:RequestedRegion", p.region.clone());
        // The API port speaks plain HTTP until TLS is configured.
        ctx.insert("aws:SecureTransport", "false");
        ctx.insert("kms:GrantIsForAWSResource", "false");
        let ctx = Arc::new(ctx);
        bounded_insert(
            &mut self.lock().callers,
            caller.access_key_id.clone(),
            ctx.clone(),
        );
        ctx
    }

    /// Authorizes one request; `Ok` means every check allowed it. The keys
    /// it names are pushed to `keys` as they are resolved (for the audit
    /// record, refused requests included).
    pub async fn authorize(
        &self,
        node: &Node,
        call: &Call<'_>,
        keys: &mut Vec<KeyId>,
    ) -> Result<(), ApiError> {
        let Call {
            caller,
            principal,
            op,
            body,
            source_ip,
        } = *call;
        let fields = read_fields(body)?;
        let identity = self.identity(node, caller, op).await?;
        let caller_layer = self.caller_layer(caller, principal);
        let time_layer = self.time_layer();
        let mut ctx = Context::layered([caller_layer.clone(), time_layer.clone()]);
        add_source_ip(&mut ctx, source_ip);
        let deny = |action: &str, resource: &str, decision: Decision, resource_based: bool| {
            denied(&principal.arn, action, resource, decision, resource_based)
        };

        if op.scope() != Scope::Key {
            let action = op.action();
            if op == Op::CreateKey {
                create_key_context(&mut ctx, &fields);
            }
            let resource = admin_resource(op, &fields, node, principal)?;
            let mut actions = vec![action];
            // As in AWS, tagging a key as it is created needs TagResource too.
            if op == Op::CreateKey && fields.tags.as_ref().is_some_and(|t| !t.is_empty()) {
                actions.push("kms:TagResource");
            }
            for action in actions {
                let req = Request {
                    principal: &principal.arn,
                    action,
                    resource: &resource,
                    context: &ctx,
                };
                match decide(None, identity.as_deref(), false, &req) {
                    Decision::Allow => {}
                    d => return Err(deny(action, &resource, d, false)),
                }
            }
            if op == Op::CreateKey {
                if let Some(doc) = &fields.policy {
                    let new = parse_policy(doc, PolicyKind::Key)?;
                    lockout_check(&new, identity.as_deref(), principal, "*", &ctx, &fields)?;
                }
            }
            return Ok(());
        }

        // Alias operations also need the identity policy's leave on the alias.
        if matches!(op, Op::CreateAlias | Op::UpdateAlias | Op::DeleteAlias) {
            let name = fields
                .alias_name
                .as_deref()
                .ok_or_else(|| ApiError::missing("AliasName"))?;
            let alias_arn = format!(
                "arn:aws:kms:{}:{}:{name}",
                principal.region, principal.account
            );
            let action = op.action();
            let req = Request {
                principal: &principal.arn,
                action,
                resource: &alias_arn,
                context: &ctx,
            };
            match decide(None, identity.as_deref(), false, &req) {
                Decision::Allow => {}
                d => return Err(deny(action, &alias_arn, d, false)),
            }
        }
        let tokens = self.token_grants(node, &fields)?;
        let checks = if op == Op::RetireGrant {
            // The retiring principal, or a grantee the grant lets retire it,
            // may retire a grant whatever the key's policy says.
            let grant = retire_target(node, &fields).await?;
            let arn = principal.arn.as_str();
            if grant.retiring.as_deref() == Some(arn)
                || (grant.grantee == arn && grant.operations.iter().any(|o| o == "RetireGrant"))
            {
                keys.push(grant.key_id);
                return Ok(());
            }
            vec![(op.action(), KeyRef::Id(grant.key_id))]
        } else {
            key_checks(op, &fields)?
        };
        for (action, key_ref) in checks {
            let id = match &key_ref {
                KeyRef::Id(id) => *id,
                KeyRef::Named(name) => node.resolve(name).await?,
            };
            keys.push(id);
            let key_ref = match key_ref {
                KeyRef::Id(id) => id.to_string(),
                KeyRef::Named(name) => name,
            };
            let (facts, entry) = self
                .key(node, id, &principal.arn, &principal.account)
                .await?;
            let key_policy = entry.policy;
            let mut ctx = Context::layered([entry.layer, caller_layer.clone(), time_layer.clone()]);
            add_source_ip(&mut ctx, source_ip);
            key_context(&mut ctx, &facts, &key_ref, &fields, action);
            if action == "kms:CreateGrant" {
                grant_context(&mut ctx, &fields);
            }
            let req = Request {
                principal: &principal.arn,
                action,
                resource: &facts.arn,
                context: &ctx,
            };
            let granted = grants_allow(
                facts.grants.iter().chain(
                    tokens
                        .iter()
                        .filter(|g| g.key_id == id && g.grantee == principal.arn),
                ),
                action,
                &facts,
                &fields,
            );
            match decide(Some(&key_policy), identity.as_deref(), granted, &req) {
                Decision::Allow => {}
                d => return Err(deny(action, &facts.arn, d, true)),
            }
            // Only a caller allowed to change the policy learns what is wrong
            // with the new one.
            if action == "kms:PutKeyPolicy" {
                let doc = fields
                    .policy
                    .as_deref()
                    .ok_or_else(|| ApiError::missing("Policy"))?;
                let new = parse_policy(doc, PolicyKind::Key)?;
                lockout_check(
                    &new,
                    identity.as_deref(),
                    principal,
                    &facts.arn,
                    &ctx,
                    &fields,
                )?;
            }
        }
        Ok(())
    }

    /// The grants a request's `GrantTokens` carry (at most ten, each
    /// authentic and not known to be removed).
    fn token_grants(
        &self,
        node: &Node,
        f: &Fields,
    ) -> Result<Vec<arca_state::GrantRecord>, ApiError> {
        let tokens = f.grant_tokens.as_deref().unwrap_or_default();
        if tokens.len() > MAX_GRANT_TOKENS {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to {MAX_GRANT_TOKENS}"
            )));
        }
        tokens
            .iter()
            .map(|t| node.verify_grant_token(t).map_err(ApiError::from))
            .collect()
    }
}

/// Whether a grant among `grants` allows `action` for this request: the
/// operation is one of the grant's, and its encryption-context constraint
/// holds for the request's context.
fn grants_allow<'a>(
    grants: impl Iterator<Item = &'a arca_state::GrantRecord>,
    action: &str,
    k: &KeyFacts,
    f: &Fields,
) -> bool {
    let Some(op) = action.strip_prefix("kms:") else {
        return false;
    };
    // Retiring is decided by the grant being retired (see `authorize`):
    // another grant of the caller's does not let it retire this one.
    if op == "RetireGrant" {
        return false;
    }
    // Constraints bind only the operations that take an encryption context;
    // DescribeKey and RetireGrant are allowed whatever they say (as in AWS).
    let context = request_encryption_context(action, k, f)
        .map(folded)
        .unwrap_or_default();
    grants.into_iter().any(|g| {
        g.operations.iter().any(|o| o == op)
            && if op == "CreateGrant" {
                within(g, f)
            } else if matches!(op, "DescribeKey" | "RetireGrant") {
                true
            } else {
                g.constraints
                    .as_ref()
                    .is_none_or(|c| satisfies(c, &context))
            }
    })
}

/// An encryption context with its keys in lower case: in a grant
/// constraint, keys compare without case and values with it (AWS's rule).
fn folded(c: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    c.iter()
        .map(|(k, v)| (k.to_lowercase(), v.clone()))
        .collect()
}

/// Whether a request's (folded) encryption context meets a grant's constraint.
fn satisfies(c: &arca_state::GrantConstraints, context: &BTreeMap<String, String>) -> bool {
    c.context_equals
        .as_ref()
        .is_none_or(|e| folded(e) == *context)
        && c.context_subset
            .as_ref()
            .is_none_or(|s| folded(s).iter().all(|(k, v)| context.get(k) == Some(v)))
}

/// A grant that allows `CreateGrant` allows only grants within itself: the
/// same or fewer operations, and a constraint equally strict or stricter
/// than its own (AWS's rule; otherwise a grantee could hand itself more than
/// it was given). Stricter: an `EncryptionContextSubset` with more pairs, or
/// an `EncryptionContextEquals` holding all of them; under
/// `EncryptionContextEquals`, only the same.
fn within(g: &arca_state::GrantRecord, f: &Fields) -> bool {
    let ops_within = f
        .operations
        .as_ref()
        .is_some_and(|ops| ops.iter().all(|o| g.operations.contains(o)));
    let new = f.constraints.as_ref();
    let new_equals = new
        .and_then(|n| n.encryption_context_equals.as_ref())
        .map(folded);
    let new_subset = new
        .and_then(|n| n.encryption_context_subset.as_ref())
        .map(folded);
    let strict_enough = match &g.constraints {
        None => true,
        Some(c) => {
            let equals_ok = c
                .context_equals
                .as_ref()
                .is_none_or(|e| new_equals.as_ref() == Some(&folded(e)) && new_subset.is_none());
            let subset_ok = c.context_subset.as_ref().is_none_or(|s| {
                let s = folded(s);
                let holds =
                    |m: &BTreeMap<String, String>| s.iter().all(|(k, v)| m.get(k) == Some(v));
                (new_equals.is_some() || new_subset.is_some())
                    && new_equals.as_ref().is_none_or(holds)
                    && new_subset.as_ref().is_none_or(holds)
            });
            equals_ok && subset_ok
        }
    };
    ops_within && strict_enough
}

/// The grant a `RetireGrant` names: by token, or by key and grant id.
async fn retire_target(node: &Node, f: &Fields) -> Result<arca_state::GrantRecord, ApiError> {
    if let Some(t) = &f.grant_token {
        return Ok(node.verify_grant_token(t)?);
    }
    let key_ref = f
        .key_id
        .as_deref()
        .ok_or_else(|| ApiError::missing("GrantToken or KeyId"))?;
    let grant_id = f
        .grant_id
        .as_deref()
        .ok_or_else(|| ApiError::missing("GrantId"))?;
    let key = node.resolve(key_ref).await?;
    match node.grant(grant_id).await? {
        Some(arca_state::GrantRow::Active(g)) if g.key_id == key => Ok(*g),
        _ => Err(ApiError::new(
            400,
            "NotFoundException",
            format!("Grant {grant_id} of key {key} does not exist"),
        )),
    }
}

fn grant_context(ctx: &mut Context, f: &Fields) {
    if let Some(ops) = &f.operations {
        ctx.insert_all("kms:GrantOperations", ops.iter().cloned());
    }
    if let Some(g) = &f.grantee_principal {
        ctx.insert("kms:GranteePrincipal", g.clone());
    }
    if let Some(r) = &f.retiring_principal {
        ctx.insert("kms:RetiringPrincipal", r.clone());
    }
    if let Some(c) = &f.constraints {
        let mut kinds = Vec::new();
        if c.encryption_context_equals.is_some() {
            kinds.push("EncryptionContextEquals".to_string());
        }
        if c.encryption_context_subset.is_some() {
            kinds.push("EncryptionContextSubset".to_string());
        }
        ctx.insert_all("kms:GrantConstraintType", kinds);
    }
}

/// Validates a policy document as `PutKeyPolicy` and `CreateKey` do.
pub fn parse_policy(doc: &str, kind: PolicyKind) -> Result<Policy, ApiError> {
    Policy::parse(doc, kind).map_err(|e| match e {
        PolicyError::TooLarge { .. } => ApiError::new(
            400,
            "LimitExceededException",
            format!(
                "the policy document is larger than {} bytes",
                arca_policy::MAX_POLICY_BYTES
            ),
        ),
        PolicyError::Malformed(m) => ApiError::new(400, "MalformedPolicyDocumentException", m),
    })
}

/// AWS's lockout safety check: unless bypassed, a new key policy must let
/// the caller change it again (`kms:PutKeyPolicy`).
fn lockout_check(
    new: &Policy,
    identity: Option<&Policy>,
    principal: &Principal,
    resource: &str,
    ctx: &Context,
    fields: &Fields,
) -> Result<(), ApiError> {
    if fields.bypass_policy_lockout_safety_check == Some(true) {
        return Ok(());
    }
    let req = Request {
        principal: &principal.arn,
        action: "kms:PutKeyPolicy",
        resource,
        context: ctx,
    };
    match decide(Some(new), identity, false, &req) {
        Decision::Allow => Ok(()),
        _ => Err(ApiError::new(
            400,
            "MalformedPolicyDocumentException",
            "The new key policy will not allow you to update the key policy in the future.",
        )),
    }
}

/// The resource an account-level or admin operation acts on: the user's
/// ARN for the operations on one user (its access keys and policy), so an
/// identity policy can delegate them user by user — e.g. `Resource:
/// arn:aws:iam::111122223333:user/${aws:username}` lets users manage their
/// own keys; `*` for the rest.
fn admin_resource(
    op: Op,
    f: &Fields,
    node: &Node,
    principal: &Principal,
) -> Result<String, ApiError> {
    let user = match op {
        Op::CreateAccessKey | Op::PutUserPolicy | Op::GetUserPolicy | Op::DeleteUserPolicy => Some(
            f.user_name
                .clone()
                .ok_or_else(|| ApiError::missing("UserName"))?,
        ),
        // The key's owner; an unknown key is refused by the operation.
        Op::DeleteAccessKey => match &f.access_key_id {
            Some(id) => node.access_key_secret(id)?.map(|(_, user)| user),
            None => return Err(ApiError::missing("AccessKeyId")),
        },
        _ => None,
    };
    Ok(match user {
        Some(u) => format!("arn:aws:iam::{}:user/{u}", principal.account),
        None => "*".to_string(),
    })
}

/// A key a request names: as the client wrote it (id, ARN, alias name or
/// alias ARN), or already known by id (a grant's key).
enum KeyRef {
    Named(String),
    Id(KeyId),
}

/// The (action, key) pairs a key-level operation needs allowed. Their order
/// is the order of [`crate::api::Ctx::keys`].
/// The fields authorization reads, decoded and checked before anything else
/// looks at them.
fn read_fields(body: &[u8]) -> Result<Fields, ApiError> {
    let fields: Fields = if body.is_empty() {
        Fields::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::serialization(format!("could not parse the request: {e}")))?
    };
    fields.check_blobs()?;
    fields.check_limits()?;
    Ok(fields)
}

/// What every request goes through before authorization first asks the
/// node anything: the model's constraints, the decoding of the fields
/// authorization reads, and the keys the operation names. Pure; the fuzz
/// target `aws_request` runs it on arbitrary bodies.
pub fn precheck(op: Op, body: &[u8]) -> Result<(), ApiError> {
    crate::model::validate(op, body)?;
    let fields = read_fields(body)?;
    if op.scope() == Scope::Key && op != Op::RetireGrant {
        key_checks(op, &fields)?;
    }
    Ok(())
}

fn key_checks(op: Op, f: &Fields) -> Result<Vec<(&'static str, KeyRef)>, ApiError> {
    let required = |v: &Option<String>, name: &str| {
        v.clone()
            .map(KeyRef::Named)
            .ok_or_else(|| ApiError::missing(name))
    };
    Ok(match op {
        Op::Decrypt => vec![(
            op.action(),
            KeyRef::Named(decrypt_key(f.key_id.as_ref(), f.ciphertext_blob.as_ref())?),
        )],
        Op::ReEncrypt => vec![
            (
                "kms:ReEncryptFrom",
                KeyRef::Named(decrypt_key(
                    f.source_key_id.as_ref(),
                    f.ciphertext_blob.as_ref(),
                )?),
            ),
            (
                "kms:ReEncryptTo",
                required(&f.destination_key_id, "DestinationKeyId")?,
            ),
        ],
        Op::CreateAlias => vec![(op.action(), required(&f.target_key_id, "TargetKeyId")?)],
        // The key it points to now and the one it will point to.
        Op::UpdateAlias => vec![
            (op.action(), required(&f.alias_name, "AliasName")?),
            (op.action(), required(&f.target_key_id, "TargetKeyId")?),
        ],
        Op::DeleteAlias => vec![(op.action(), required(&f.alias_name, "AliasName")?)],
        _ => vec![(op.action(), required(&f.key_id, "KeyId")?)],
    })
}

/// The key a Decrypt names: its `KeyId`, or the one in the ciphertext.
fn decrypt_key(key_id: Option<&String>, blob: Option<&String>) -> Result<String, ApiError> {
    if let Some(k) = key_id {
        return Ok(k.clone());
    }
    let bytes = crate::api::blob(
        "CiphertextBlob",
        blob.cloned(),
        1,
        arca_crypto::symmetric::MAX_CIPHERTEXT_LEN,
    )?;
    let header = arca_crypto::symmetric::parse_header(&bytes).map_err(|_| {
        ApiError::new(
            400,
            "InvalidCiphertextException",
            "the ciphertext is invalid",
        )
    })?;
    Ok(KeyId::from_bytes(header.key_id).to_string())
}

fn add_source_ip(ctx: &mut Context, source_ip: &str) {
    if !source_ip.is_empty() {
        ctx.insert("aws:SourceIp", source_ip.to_string());
    }
}

/// `aws:CurrentTime` and `aws:EpochTime` at `now` (unix seconds).
fn time_context(now: u64) -> Context {
    let mut ctx = Context::new();
    ctx.insert("aws:CurrentTime", arca_sigv4::format_rfc3339(now as i64));
    ctx.insert("aws:EpochTime", now.to_string());
    ctx
}

fn create_key_context(ctx: &mut Context, f: &Fields) {
    let spec = f.key_spec.as_ref().or(f.customer_master_key_spec.as_ref());
    ctx.insert(
        "kms:KeySpec",
        spec.map_or("SYMMETRIC_DEFAULT", |s| s.as_str()).to_string(),
    );
    ctx.insert(
        "kms:KeyUsage",
        f.key_usage
            .as_deref()
            .unwrap_or("ENCRYPT_DECRYPT")
            .to_string(),
    );
    ctx.insert(
        "kms:KeyOrigin",
        f.origin.as_deref().unwrap_or("AWS_KMS").to_string(),
    );
    ctx.insert(
        "kms:BypassPolicyLockoutSafetyCheck",
        f.bypass_policy_lockout_safety_check
            .unwrap_or(false)
            .to_string(),
    );
    request_tags(ctx, f);
}

fn request_tags(ctx: &mut Context, f: &Fields) {
    let mut keys = Vec::new();
    for t in f.tags.iter().flatten() {
        if let Some(k) = &t.tag_key {
            ctx.insert(
                &format!("aws:RequestTag/{k}"),
                t.tag_value.clone().unwrap_or_default(),
            );
            keys.push(k.clone());
        }
    }
    keys.extend(f.tag_keys.iter().flatten().cloned());
    if !keys.is_empty() {
        ctx.insert_all("aws:TagKeys", keys);
    }
}

/// The request's keys about a key (its layer holds spec, usage, origin, tags).
fn key_context(ctx: &mut Context, k: &KeyFacts, key_ref: &str, f: &Fields, action: &str) {
    if !k.aliases.is_empty() {
        ctx.insert_all("kms:ResourceAliases", k.aliases.iter().cloned());
    }
    if let Some(alias) = key_ref.split_once("alias/").map(|(_, a)| a) {
        ctx.insert("kms:RequestAlias", format!("alias/{alias}"));
    }
    // Only what the operation takes: a field it ignores must not satisfy a
    // condition (it would be absent in AWS).
    if let Some(c) = request_encryption_context(action, k, f) {
        ctx.insert_encryption_context(c.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    }
    let algorithm = match action {
        "kms:Encrypt" | "kms:Decrypt" => &f.encryption_algorithm,
        "kms:ReEncryptFrom" => &f.source_encryption_algorithm,
        "kms:ReEncryptTo" => &f.destination_encryption_algorithm,
        _ => &None,
    };
    if let Some(a) = algorithm {
        ctx.insert("kms:EncryptionAlgorithm", a.clone());
    }
    match action {
        "kms:Sign" | "kms:Verify" | "arca:GenerateCertificateSigningRequest" => {
            if let Some(a) = &f.signing_algorithm {
                ctx.insert("kms:SigningAlgorithm", a.clone());
            }
            // As the request gives it (RAW, DIGEST or EXTERNAL_MU); absent when omitted.
            if action != "arca:GenerateCertificateSigningRequest" {
                if let Some(m) = &f.message_type {
                    ctx.insert("kms:MessageType", m.clone());
                }
            }
        }
        "kms:DeriveSharedSecret" => {
            if let Some(a) = &f.key_agreement_algorithm {
                ctx.insert("kms:KeyAgreementAlgorithm", a.clone());
            }
        }
        "kms:GenerateMac" | "kms:VerifyMac" => {
            if let Some(a) = &f.mac_algorithm {
                ctx.insert("kms:MacAlgorithm", a.clone());
            }
        }
        "kms:ScheduleKeyDeletion" => {
            if let Some(d) = f.pending_window_in_days {
                ctx.insert("kms:ScheduleKeyDeletionPendingWindowInDays", d.to_string());
            }
        }
        "kms:PutKeyPolicy" => {
            ctx.insert(
                "kms:BypassPolicyLockoutSafetyCheck",
                f.bypass_policy_lockout_safety_check
                    .unwrap_or(false)
                    .to_string(),
            );
        }
        "kms:TagResource" | "kms:UntagResource" => request_tags(ctx, f),
        "kms:GetParametersForImport" => {
            if let Some(a) = &f.wrapping_algorithm {
                ctx.insert("kms:WrappingAlgorithm", a.clone());
            }
            if let Some(k) = &f.wrapping_key_spec {
                ctx.insert("kms:WrappingKeySpec", k.clone());
            }
        }
        "kms:ImportKeyMaterial" => {
            ctx.insert(
                "kms:ExpirationModel",
                f.expiration_model
                    .as_deref()
                    .unwrap_or("KEY_MATERIAL_EXPIRES")
                    .to_string(),
            );
            if let Some(v) = f.valid_to.filter(|v| v.is_finite() && *v >= 0.0) {
                // Unix seconds, as the Date operators read them.
                ctx.insert("kms:ValidTo", (v as u64).to_string());
            }
        }
        _ => {}
    }
}

/// The encryption context an action really uses: the request's for the
/// symmetric operations that take one (ReEncrypt's source or destination
/// context), a new grant's constraint for `CreateGrant`, nothing otherwise.
fn request_encryption_context<'a>(
    action: &str,
    k: &KeyFacts,
    f: &'a Fields,
) -> Option<&'a BTreeMap<String, String>> {
    let symmetric = k.spec == arca_state::KeySpec::SymmetricDefault;
    match action {
        "kms:Encrypt"
        | "kms:Decrypt"
        | "kms:GenerateDataKey"
        | "kms:GenerateDataKeyWithoutPlaintext"
        | "kms:GenerateDataKeyPair"
        | "kms:GenerateDataKeyPairWithoutPlaintext"
            if symmetric =>
        {
            f.encryption_context.as_ref()
        }
        "kms:ReEncryptFrom" if symmetric => f.source_encryption_context.as_ref(),
        "kms:ReEncryptTo" if symmetric => f.destination_encryption_context.as_ref(),
        "kms:CreateGrant" => f.constraints.as_ref().and_then(|c| {
            c.encryption_context_equals
                .as_ref()
                .or(c.encryption_context_subset.as_ref())
        }),
        _ => None,
    }
}

/// AWS's wording of a refusal.
fn denied(
    principal: &str,
    action: &str,
    resource: &str,
    d: Decision,
    resource_based: bool,
) -> ApiError {
    let why = match (d, resource_based) {
        (Decision::ExplicitDeny, _) => "with an explicit deny in a policy".to_string(),
        (_, true) => format!("because no resource-based policy allows the {action} action"),
        (_, false) => format!("because no identity-based policy allows the {action} action"),
    };
    ApiError::new(
        400,
        "AccessDeniedException",
        format!("User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn checks(op: Op, f: &Fields) -> Vec<(&'static str, String)> {
        key_checks(op, f)
            .unwrap()
            .into_iter()
            .map(|(a, k)| match k {
                KeyRef::Named(n) => (a, n),
                KeyRef::Id(id) => (a, id.to_string()),
            })
            .collect()
    }

    #[test]
    fn each_operation_names_its_keys_and_actions() {
        let f: Fields = serde_json::from_str(
            r#"{"KeyId":"alias/a","DestinationKeyId":"k2","SourceKeyId":"k1","TargetKeyId":"k3","AliasName":"alias/b"}"#,
        )
        .unwrap();
        let named = |a: &'static str, k: &str| (a, k.to_string());
        assert_eq!(
            checks(Op::Encrypt, &f),
            vec![named("kms:Encrypt", "alias/a")]
        );
        assert_eq!(
            checks(Op::ReEncrypt, &f),
            vec![
                named("kms:ReEncryptFrom", "k1"),
                named("kms:ReEncryptTo", "k2")
            ]
        );
        assert_eq!(
            checks(Op::CreateAlias, &f),
            vec![named("kms:CreateAlias", "k3")]
        );
        assert_eq!(
            checks(Op::UpdateAlias, &f),
            vec![
                named("kms:UpdateAlias", "alias/b"),
                named("kms:UpdateAlias", "k3")
            ]
        );
        assert_eq!(
            checks(Op::DeleteAlias, &f),
            vec![named("kms:DeleteAlias", "alias/b")]
        );
        assert_eq!(
            checks(Op::CreateKeyVersion, &f),
            vec![named("arca:CreateKeyVersion", "alias/a")]
        );
        let empty = Fields::default();
        assert_eq!(
            key_checks(Op::Sign, &empty).err().unwrap().code,
            "ValidationException"
        );
    }

    #[test]
    fn a_request_carries_at_most_fifty_tags_or_tag_keys() {
        let tags = |n: usize| {
            let t: Vec<Value> = (0..n)
                .map(|i| json!({"TagKey": format!("k{i}"), "TagValue": "v"}))
                .collect();
            json!({ "Tags": t }).to_string()
        };
        let keys = |n: usize| {
            let k: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
            json!({ "TagKeys": k }).to_string()
        };
        for body in [tags(MAX_TAGS), keys(MAX_TAGS)] {
            assert!(read_fields(body.as_bytes()).is_ok(), "{body}");
        }
        for body in [tags(MAX_TAGS + 1), keys(MAX_TAGS + 1)] {
            let e = read_fields(body.as_bytes()).err().unwrap();
            assert_eq!(e.code, "TagException", "{body}");
        }
    }

    #[test]
    fn every_action_is_one_policies_know() {
        // A policy naming an operation's action must validate, or no policy
        // could ever allow it.
        for op in Op::ALL {
            let doc = format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"*"}},"Action":"{}","Resource":"*"}}]}}"#,
                op.action()
            );
            let kind = if op.scope() == Scope::Key {
                PolicyKind::Key
            } else {
                PolicyKind::Identity
            };
            let doc = if kind == PolicyKind::Identity {
                doc.replace(r#""Principal":{"AWS":"*"},"#, "")
            } else {
                doc
            };
            if *op == Op::ReEncrypt {
                continue; // authorized as ReEncryptFrom and ReEncryptTo
            }
            parse_policy(&doc, kind).unwrap_or_else(|e| panic!("{op:?}: {}", e.message));
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn constraint(
        equals: Option<&[(&str, &str)]>,
        subset: Option<&[(&str, &str)]>,
    ) -> arca_state::GrantConstraints {
        arca_state::GrantConstraints {
            context_equals: equals.map(map),
            context_subset: subset.map(map),
        }
    }

    #[test]
    fn constraint_keys_ignore_case_values_do_not() {
        let subset = constraint(None, Some(&[("Dept", "Finance")]));
        let ctx = |pairs| folded(&map(pairs));
        assert!(satisfies(&subset, &ctx(&[("dept", "Finance"), ("x", "y")])));
        assert!(!satisfies(&subset, &ctx(&[("dept", "finance")])));
        assert!(!satisfies(&subset, &ctx(&[])));
        let equals = constraint(Some(&[("Dept", "Finance")]), None);
        assert!(satisfies(&equals, &ctx(&[("DEPT", "Finance")])));
        assert!(!satisfies(
            &equals,
            &ctx(&[("Dept", "Finance"), ("x", "y")])
        ));
    }

    #[test]
    fn grants_from_a_grant_are_equally_strict_or_stricter() {
        let parent = |c: arca_state::GrantConstraints| arca_state::GrantRecord {
            grant_id: "g".into(),
            key_id: KeyId::from_bytes([1; 16]),
            name: None,
            grantee: "arn:aws:iam::1:user/a".into(),
            retiring: None,
            operations: vec!["Decrypt".into(), "CreateGrant".into()],
            constraints: Some(c),
            issuer: "arn:aws:iam::1:root".into(),
            created_ms: 0,
        };
        let child = |c: Value| -> Fields {
            serde_json::from_value(json!({"Operations": ["Decrypt"], "Constraints": c})).unwrap()
        };
        let subset = parent(constraint(None, Some(&[("a", "1")])));
        assert!(within(
            &subset,
            &child(json!({"EncryptionContextSubset": {"a": "1", "b": "2"}}))
        ));
        assert!(within(
            &subset,
            &child(json!({"EncryptionContextSubset": {"A": "1"}}))
        ));
        assert!(within(
            &subset,
            &child(json!({"EncryptionContextEquals": {"a": "1", "c": "3"}}))
        ));
        assert!(!within(
            &subset,
            &child(json!({"EncryptionContextSubset": {"b": "2"}}))
        ));
        assert!(!within(
            &subset,
            &child(json!({"EncryptionContextSubset": {"a": "2"}}))
        ));
        assert!(!within(&subset, &child(Value::Null)));
        let equals = parent(constraint(Some(&[("a", "1")]), None));
        assert!(within(
            &equals,
            &child(json!({"EncryptionContextEquals": {"A": "1"}}))
        ));
        assert!(!within(
            &equals,
            &child(json!({"EncryptionContextEquals": {"a": "1", "b": "2"}}))
        ));
        assert!(!within(
            &equals,
            &child(json!({"EncryptionContextSubset": {"a": "1"}}))
        ));
        // More operations than the grant has: never.
        let wider: Fields = serde_json::from_value(json!({"Operations": ["Decrypt", "Encrypt"],
            "Constraints": {"EncryptionContextSubset": {"a": "1"}}}))
        .unwrap();
        assert!(!within(&subset, &wider));
    }

    #[test]
    fn refusals_use_aws_wording() {
        let e = denied(
            "arn:aws:iam::1:user/app",
            "kms:Decrypt",
            "arn:k",
            Decision::ImplicitDeny,
            true,
        );
        assert_eq!(e.code, "AccessDeniedException");
        assert_eq!(
            e.message,
            "User: arn:aws:iam::1:user/app is not authorized to perform: kms:Decrypt on resource: arn:k because no resource-based policy allows the kms:Decrypt action"
        );
    }
}
