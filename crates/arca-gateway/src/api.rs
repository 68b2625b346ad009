//! The AWS KMS JSON operations (`X-Amz-Target: TrentService.<Op>`) and the
//! admin operations (`X-Amz-Target: ArcaAdmin.<Op>`): JSON in, node call,
//! JSON out. Validation happens here, before anything reaches the node.

use std::collections::BTreeMap;

use arca_crypto::symmetric::{MAX_CIPHERTEXT_LEN, MAX_PLAINTEXT_LEN};
use arca_crypto::SecretBytes;
use arca_node::keys::KeyInfo;
use arca_node::{Node, NodeInfo};
use arca_state::{KeyId, KeySpec, KeyState, KeyUsage};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::ops::Op;
use crate::paging;

/// Who is calling (from the verified signature).
#[derive(Debug, Clone)]
pub struct Caller {
    pub access_key_id: String,
    /// The user the access key belongs to.
    pub user: String,
}

/// Keys and values of an encryption context together, in bytes, as AWS KMS
/// bounds them (the model bounds each key and value alone, not their sum).
pub(crate) const MAX_CONTEXT_BYTES: usize = 8192;

/// The size of an encryption context as [`MAX_CONTEXT_BYTES`] measures it.
pub(crate) fn context_bytes(c: &BTreeMap<String, String>) -> usize {
    c.iter().map(|(k, v)| k.len() + v.len()).sum()
}

pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| ApiError::serialization(format!("could not parse the request: {e}")))
}

/// Decodes `body` into the typed input `op`'s handler reads, with the same
/// types and the same [`parse`], without asking the node. Authorization's
/// `precheck` and this are everything a request runs before the node is
/// called; the `aws_request` fuzz target runs both on every operation.
pub fn decode(op: Op, body: &[u8]) -> Result<(), ApiError> {
    use Op::*;
    let mine = match op {
        CreateKey => as_::<CreateKeyReq>(body),
        DescribeKey | GetKeyLastUsage => as_::<KeyIdReq>(body),
        ListKeys => as_::<ListKeysReq>(body),
        PutKeyPolicy | GetKeyPolicy | ListKeyPolicies => as_::<KeyPolicyReq>(body),
        Encrypt => as_::<EncryptReq>(body),
        Decrypt => as_::<DecryptReq>(body),
        GenerateDataKey | GenerateDataKeyWithoutPlaintext => as_::<DataKeyReq>(body),
        GenerateRandom => as_::<RandomReq>(body),
        AddNode => as_::<AddNodeReq>(body),
        RemoveNode => as_::<RemoveNodeReq>(body),
        CreateAccessKey | DeleteAccessKey => as_::<AccessKeyReq>(body),
        PutUserPolicy | GetUserPolicy | DeleteUserPolicy => as_::<UserPolicyReq>(body),
        AdvanceClock => as_::<AdvanceClockReq>(body),
        RotateRootKey => as_::<RotateRootKeyReq>(body),
        Backup => as_::<Value>(body),
        // Their handlers read nothing from the body.
        ListAccessKeys | ClusterStatus => Some(Ok(())),
        _ => None,
    };
    mine.or_else(|| crate::lifecycle::decode(op, body))
        .or_else(|| crate::asym::decode(op, body))
        .or_else(|| crate::grants::decode(op, body))
        .or_else(|| crate::import::decode(op, body))
        .unwrap_or_else(|| Err(ApiError::unknown_operation(op.name())))
}

/// `body` decoded as `T` with [`parse`], the value dropped: one arm of a
/// module's `decode`.
pub(crate) fn as_<T: DeserializeOwned>(body: &[u8]) -> Option<Result<(), ApiError>> {
    Some(parse::<T>(body).map(drop))
}

/// [`blob`] for a secret: the text and the bytes are wiped after use.
pub(crate) fn secret_blob(
    field: &str,
    v: Option<Zeroizing<String>>,
    min: usize,
    max: usize,
) -> Result<SecretBytes, ApiError> {
    let s = v.ok_or_else(|| ApiError::missing(field))?;
    let b = Zeroizing::new(
        B64.decode(s.as_bytes())
            .map_err(|_| ApiError::serialization(format!("'{field}' is not valid base64")))?,
    );
    if b.len() < min || b.len() > max {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: \
             Member must have length between {min} and {max} bytes (got {})",
            b.len()
        )));
    }
    Ok(SecretBytes::new(b.to_vec()))
}

pub(crate) fn blob(
    field: &str,
    v: Option<String>,
    min: usize,
    max: usize,
) -> Result<Vec<u8>, ApiError> {
    let s = v.ok_or_else(|| ApiError::missing(field))?;
    let b = B64
        .decode(s.as_bytes())
        .map_err(|_| ApiError::serialization(format!("'{field}' is not valid base64")))?;
    if b.len() < min || b.len() > max {
        return Err(ApiError::validation(format!(
            "1 validation error detected: Value at '{field}' failed to satisfy constraint: \
             Member must have length between {min} and {max} bytes (got {})",
            b.len()
        )));
    }
    Ok(b)
}

pub(crate) fn context(
    c: Option<BTreeMap<String, String>>,
) -> Result<BTreeMap<String, String>, ApiError> {
    let c = c.unwrap_or_default();
    let size = context_bytes(&c);
    if size > MAX_CONTEXT_BYTES {
        return Err(ApiError::validation(format!(
            "EncryptionContext is {size} bytes; at most {MAX_CONTEXT_BYTES} are allowed"
        )));
    }
    Ok(c)
}

fn check_algorithm(a: Option<&str>) -> Result<(), ApiError> {
    match a {
        None | Some("SYMMETRIC_DEFAULT") => Ok(()),
        Some("RSAES_OAEP_SHA_1" | "RSAES_OAEP_SHA_256" | "SM2PKE") => Err(ApiError::new(
            400,
            "InvalidKeyUsageException",
            "The encryption algorithm is not supported by a symmetric key",
        )),
        Some(other) => Err(ApiError::validation(format!(
            "1 validation error detected: Value '{other}' at 'encryptionAlgorithm' failed to satisfy constraint: \
             Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]"
        ))),
    }
}

/// Checks a `KeyId` parameter's form, then resolves it (key id, key ARN,
/// alias name or alias ARN) to an existing key.
pub(crate) async fn resolve_key(node: &Node, key_id: Option<&str>) -> Result<KeyId, ApiError> {
    let raw = key_id.ok_or_else(|| ApiError::missing("KeyId"))?;
    if raw.is_empty() || raw.len() > 2048 {
        return Err(ApiError::validation(
            "KeyId must have length between 1 and 2048",
        ));
    }
    Ok(node.resolve(raw).await?)
}

pub(crate) fn dry_run(d: Option<bool>) -> Result<(), ApiError> {
    if d == Some(true) {
        return Err(ApiError::new(
            400,
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun parameter was set.",
        ));
    }
    Ok(())
}

pub(crate) fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// AWS's `KeyMaterialId` of a key version: 64 hex digits that name the
/// material without revealing anything of it (a digest of the key id and
/// the version number).
pub(crate) fn key_material_id(key: &KeyId, version: u32) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"arca/key-material-id/v1");
    ctx.update(key.as_bytes());
    ctx.update(&version.to_be_bytes());
    hex::encode(ctx.finish().as_ref())
}

pub(crate) fn key_metadata(k: &KeyInfo) -> Value {
    let r = &k.record;
    let mut m = json!({
        "AWSAccountId": k.account_id,
        "KeyId": r.key_id.to_string(),
        "Arn": k.arn,
        "CreationDate": secs(r.created_ms),
        "Enabled": r.state == KeyState::Enabled,
        "Description": r.description,
        "KeyUsage": r.usage.as_aws(),
        "KeyState": r.state.as_aws(),
        "Origin": r.origin.as_aws(),
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": r.spec.as_aws(),
        "KeySpec": r.spec.as_aws(),
        "MultiRegion": false,
    });
    if let Some((field, names)) = r.spec.listed_algorithms(r.usage) {
        m[field] = json!(names);
    }
    if r.spec == KeySpec::SymmetricDefault {
        m["CurrentKeyMaterialId"] = json!(key_material_id(&r.key_id, r.primary().version));
    }
    if let Some(d) = r.deletion_ms {
        m["DeletionDate"] = json!(secs(d));
    }
    if let Some(w) = r.pending_window_days {
        m["PendingDeletionWindowInDays"] = json!(w);
    }
    if let Some(i) = &r.import {
        if r.has_material() {
            match i.valid_to_ms {
                Some(v) => {
                    m["ExpirationModel"] = json!("KEY_MATERIAL_EXPIRES");
                    m["ValidTo"] = json!(secs(v));
                }
                None => m["ExpirationModel"] = json!("KEY_MATERIAL_DOES_NOT_EXPIRE"),
            }
        }
    }
    m
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct CreateKeyReq {
    description: Option<String>,
    key_usage: Option<String>,
    key_spec: Option<String>,
    customer_master_key_spec: Option<String>,
    origin: Option<String>,
    multi_region: Option<bool>,
    /// Validated (and the lockout check made) by authorization.
    policy: Option<String>,
    #[allow(dead_code)]
    bypass_policy_lockout_safety_check: Option<bool>,
    tags: Option<Vec<crate::lifecycle::Tag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyPolicyReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    policy_name: Option<String>,
    policy: Option<String>,
    #[allow(dead_code)]
    bypass_policy_lockout_safety_check: Option<bool>,
    // Bounded by the model; one policy always fits.
    #[allow(dead_code)]
    limit: Option<u32>,
    marker: Option<String>,
}

/// A key has one policy, named `default`.
fn check_policy_name(name: Option<&str>) -> Result<(), ApiError> {
    match name {
        None | Some("default") => Ok(()),
        Some(other) => Err(ApiError::new(
            400,
            "NotFoundException",
            format!("Policy '{other}' does not exist: a key's only policy is named 'default'"),
        )),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyIdReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListKeysReq {
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct EncryptReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    key_version_id: Option<String>,
    plaintext: Option<Zeroizing<String>>,
    encryption_context: Option<BTreeMap<String, String>>,
    encryption_algorithm: Option<String>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptReq {
    key_id: Option<String>,
    key_version_id: Option<String>,
    ciphertext_blob: Option<String>,
    encryption_context: Option<BTreeMap<String, String>>,
    encryption_algorithm: Option<String>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DataKeyReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    key_spec: Option<String>,
    number_of_bytes: Option<i64>,
    encryption_context: Option<BTreeMap<String, String>>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RandomReq {
    number_of_bytes: Option<i64>,
    #[allow(dead_code)]
    custom_key_store_id: Option<String>,
}

/// What a successful operation returns, and the key it touched (for the log span).
pub struct Answer {
    pub body: Value,
    pub key_id: Option<KeyId>,
}

fn answer(body: Value) -> Answer {
    Answer { body, key_id: None }
}

/// One request's context, built once before the operation runs: who calls,
/// the keys authorization resolved, and the request's identity for
/// exactly-once writes. Operations read the keys from here and never resolve
/// a `KeyId` or alias again: the key that was authorized is the key used.
pub struct Ctx {
    pub caller: Caller,
    /// The caller's ARN.
    pub principal: String,
    /// Identifies the client's request, so retries of it apply once.
    pub request: arca_state::RequestKey,
    /// The keys the request names, in the order authorization checks them
    /// (ReEncrypt: source, destination; UpdateAlias: current, new target).
    pub keys: Vec<KeyId>,
}

impl Ctx {
    /// The `i`-th key the request names.
    pub fn key(&self, i: usize) -> Result<KeyId, ApiError> {
        self.keys
            .get(i)
            .copied()
            .ok_or_else(|| ApiError::internal("the request's key was not resolved"))
    }
}

/// Runs an operation, once authorization has allowed it.
pub async fn dispatch(node: &Node, ctx: &Ctx, op: Op, body: &[u8]) -> Result<Answer, ApiError> {
    use Op::*;
    match op {
        EnableKey | DisableKey | UpdateKeyDescription | ScheduleKeyDeletion | CancelKeyDeletion
        | CreateAlias | UpdateAlias | DeleteAlias | ListAliases | TagResource | UntagResource
        | ListResourceTags | EnableKeyRotation | DisableKeyRotation | GetKeyRotationStatus
        | RotateKeyOnDemand | ListKeyRotations => crate::lifecycle::run(node, ctx, op, body).await,
        Sign
        | Verify
        | GetPublicKey
        | GenerateMac
        | VerifyMac
        | GenerateDataKeyPair
        | GenerateDataKeyPairWithoutPlaintext
        | DeriveSharedSecret
        | Encapsulate
        | Decapsulate
        | ReEncrypt
        | CreateKeyVersion
        | ListKeyVersions
        | DescribeKeyVersion
        | GenerateCertificateSigningRequest => crate::asym::run(node, ctx, op, body).await,
        GetParametersForImport | ImportKeyMaterial | DeleteImportedKeyMaterial => {
            crate::import::run(node, ctx, op, body).await
        }
        CreateGrant | ListGrants | ListRetirableGrants | RetireGrant | RevokeGrant => {
            crate::grants::run(node, ctx, op, body).await
        }
        AddNode | RemoveNode | ClusterStatus | AdvanceClock | RotateRootKey | CreateAccessKey
        | DeleteAccessKey | ListAccessKeys | PutUserPolicy | GetUserPolicy | DeleteUserPolicy
        | Backup => dispatch_admin(node, ctx, op, body).await,
        CreateKey
        | DescribeKey
        | ListKeys
        | Encrypt
        | Decrypt
        | GenerateDataKey
        | GenerateDataKeyWithoutPlaintext
        | GenerateRandom
        | PutKeyPolicy
        | GetKeyPolicy
        | ListKeyPolicies
        | GetKeyLastUsage => keys(node, ctx, op, body).await,
    }
}

/// Key creation, description, policies and symmetric crypto.
async fn keys(node: &Node, ctx: &Ctx, op: Op, body: &[u8]) -> Result<Answer, ApiError> {
    match op {
        Op::CreateKey => create_key(node, ctx, parse(body)?).await,
        Op::DescribeKey => {
            let _: KeyIdReq = parse(body)?;
            let id = ctx.key(0)?;
            let k = node.describe_key(&id).await?;
            Ok(Answer {
                body: json!({ "KeyMetadata": key_metadata(&k) }),
                key_id: Some(id),
            })
        }
        Op::ListKeys => list_keys(node, parse(body)?).await,
        Op::PutKeyPolicy => {
            let r: KeyPolicyReq = parse(body)?;
            check_policy_name(r.policy_name.as_deref())?;
            let id = ctx.key(0)?;
            // Validated, and the lockout check made, by authorization.
            let doc = r.policy.ok_or_else(|| ApiError::missing("Policy"))?;
            node.put_key_policy(Some(ctx.request), id, doc).await?;
            Ok(Answer {
                body: json!({}),
                key_id: Some(id),
            })
        }
        Op::GetKeyPolicy => {
            let r: KeyPolicyReq = parse(body)?;
            check_policy_name(r.policy_name.as_deref())?;
            let id = ctx.key(0)?;
            let k = node.describe_key(&id).await?;
            let doc = k
                .record
                .policy
                .unwrap_or_else(|| arca_policy::default_key_policy(&k.account_id));
            Ok(Answer {
                body: json!({ "Policy": doc, "PolicyName": "default" }),
                key_id: Some(id),
            })
        }
        Op::ListKeyPolicies => {
            let r: KeyPolicyReq = parse(body)?;
            // One policy fits any Limit (the model bounds it to 1–1000), so
            // no page is ever truncated and no Marker is ever handed out.
            if r.marker.is_some() {
                return Err(ApiError::new(
                    400,
                    "InvalidMarkerException",
                    "The Marker is not valid",
                ));
            }
            let id = ctx.key(0)?;
            Ok(Answer {
                body: json!({ "PolicyNames": ["default"], "Truncated": false }),
                key_id: Some(id),
            })
        }
        Op::GetKeyLastUsage => {
            let _: KeyIdReq = parse(body)?;
            let id = ctx.key(0)?;
            let u = node.last_usage(&id)?;
            let last = match &u.usage {
                Some(l) => json!({
                    "Operation": l.operation,
                    "Timestamp": secs(l.at_ms),
                    "KmsRequestId": l.request_id,
                }),
                None => json!({}),
            };
            Ok(Answer {
                body: json!({
                    "KeyId": id.to_string(),
                    "KeyLastUsage": last,
                    "TrackingStartDate": secs(u.tracking_start_ms),
                    "KeyCreationDate": secs(u.created_ms),
                }),
                key_id: Some(id),
            })
        }
        Op::Encrypt => encrypt(node, ctx, parse(body)?).await,
        Op::Decrypt => decrypt(node, ctx, parse(body)?).await,
        Op::GenerateDataKey => data_key(node, ctx, parse(body)?, true).await,
        Op::GenerateDataKeyWithoutPlaintext => data_key(node, ctx, parse(body)?, false).await,
        Op::GenerateRandom => {
            let r: RandomReq = parse(body)?;
            let n = r
                .number_of_bytes
                .ok_or_else(|| ApiError::missing("NumberOfBytes"))?;
            if !(1..=1024).contains(&n) {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: \
                     Member must have value between 1 and 1024"
                )));
            }
            let bytes =
                SecretBytes::random(n as usize).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(answer(json!({ "Plaintext": B64.encode(bytes.expose()) })))
        }
        _ => Err(ApiError::unknown_operation(op.name())),
    }
}

async fn create_key(node: &Node, ctx: &Ctx, r: CreateKeyReq) -> Result<Answer, ApiError> {
    // Its length (at most 8192) is the model's constraint, checked before.
    let description = r.description.unwrap_or_default();
    if r.key_spec.is_some() && r.customer_master_key_spec.is_some() {
        return Err(ApiError::validation(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request",
        ));
    }
    let spec_name = r.key_spec.or(r.customer_master_key_spec);
    let spec = match spec_name.as_deref() {
        None => KeySpec::SymmetricDefault,
        Some(s) => KeySpec::from_aws(s).ok_or_else(|| {
            let all: Vec<&str> = KeySpec::ALL.iter().map(|k| k.as_aws()).collect();
            ApiError::validation(format!(
                "1 validation error detected: Value '{s}' at 'keySpec' failed to satisfy constraint: \
                 Member must satisfy enum value set: [{}]",
                all.join(", ")
            ))
        })?,
    };
    let usage = match r.key_usage.as_deref() {
        // AWS defaults the usage only where one usage is the obvious one.
        None if spec.is_asymmetric() => {
            return Err(ApiError::validation(format!(
                "KeyUsage is required for an asymmetric key: KeySpec {} allows {}",
                spec.as_aws(),
                spec.usages()
                    .iter()
                    .map(|u| u.as_aws())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
        None => KeyUsage::EncryptDecrypt,
        Some(u) => KeyUsage::from_aws(u).ok_or_else(|| {
            ApiError::validation(format!(
                "1 validation error detected: Value '{u}' at 'keyUsage' failed to satisfy constraint: \
                 Member must satisfy enum value set: [ENCRYPT_DECRYPT, SIGN_VERIFY, GENERATE_VERIFY_MAC, KEY_AGREEMENT, ENCAPSULATE_DECAPSULATE]"
            ))
        })?,
    };
    if !spec.allows(usage) {
        let allowed: Vec<&str> = spec.usages().iter().map(|u| u.as_aws()).collect();
        return Err(ApiError::validation(format!(
            "KeyUsage {} is not compatible with KeySpec {}; it allows {}",
            usage.as_aws(),
            spec.as_aws(),
            allowed.join(", ")
        )));
    }
    let external = match r.origin.as_deref() {
        None | Some("AWS_KMS") => false,
        Some("EXTERNAL") => true,
        Some(o @ ("AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE")) => {
            return Err(ApiError::new(
                400,
                "UnsupportedOperationException",
                format!("Origin {o} is not supported; use AWS_KMS or EXTERNAL"),
            ))
        }
        Some(o) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{o}' at 'origin' failed to satisfy constraint: \
                 Member must satisfy enum value set: [AWS_KMS, EXTERNAL, AWS_CLOUDHSM, EXTERNAL_KEY_STORE]"
            )))
        }
    };
    if r.multi_region == Some(true) {
        return Err(ApiError::new(
            400,
            "UnsupportedOperationException",
            "multi-Region keys are not supported",
        ));
    }
    let tags = crate::lifecycle::tags(r.tags)?;
    let k = if external {
        node.create_external_key(Some(ctx.request), description, tags, spec, usage, r.policy)
            .await?
    } else {
        node.create_key(Some(ctx.request), description, tags, spec, usage, r.policy)
            .await?
    };
    Ok(Answer {
        body: json!({ "KeyMetadata": key_metadata(&k) }),
        key_id: Some(k.record.key_id),
    })
}

async fn list_keys(node: &Node, r: ListKeysReq) -> Result<Answer, ApiError> {
    let limit = paging::limit(r.limit, 1000, 100)?;
    let after = r
        .marker
        .map(|m| m.parse::<KeyId>().map_err(|_| paging::invalid_marker()))
        .transpose()?;
    let (page, truncated) = node.list_keys(after, limit).await?;
    let keys: Vec<Value> = page
        .iter()
        .map(|(id, arn)| json!({ "KeyId": id.to_string(), "KeyArn": arn }))
        .collect();
    let next = paging::next_id(truncated, page.last().map(|(id, _)| id.to_string()));
    Ok(answer(paging::answer(json!({ "Keys": keys }), next)))
}

async fn encrypt(node: &Node, ctx: &Ctx, r: EncryptReq) -> Result<Answer, ApiError> {
    // Decoding errors (SerializationException) come before semantic ones, as in AWS.
    let pt = secret_blob("Plaintext", r.plaintext, 1, MAX_PLAINTEXT_LEN)?;
    let id = ctx.key(0)?;
    let ec = context(r.encryption_context)?;
    if node.spec_of(&id)?.0.is_asymmetric() {
        dry_run(r.dry_run)?;
        return crate::asym::encrypt(
            node,
            id,
            pt,
            r.encryption_algorithm.as_deref(),
            r.key_version_id,
        )
        .await;
    }
    check_algorithm(r.encryption_algorithm.as_deref())?;
    dry_run(r.dry_run)?;
    let arn = node.key_arn(&id)?;
    let e = node.encrypt(id, pt, ec).await?;
    Ok(Answer {
        body: json!({
            "CiphertextBlob": B64.encode(&e.blob),
            "KeyId": arn,
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }),
        key_id: Some(id),
    })
}

async fn decrypt(node: &Node, ctx: &Ctx, r: DecryptReq) -> Result<Answer, ApiError> {
    let ct = blob("CiphertextBlob", r.ciphertext_blob, 1, MAX_CIPHERTEXT_LEN)?;
    // The key authorization resolved: the one named, else the blob's own.
    let expected = match r.key_id {
        Some(_) => Some(ctx.key(0)?),
        None => None,
    };
    let ec = context(r.encryption_context)?;
    if let Some(id) = expected.filter(|id| node.spec_of(id).is_ok_and(|(s, _)| s.is_asymmetric())) {
        dry_run(r.dry_run)?;
        let (pt, alg, vid) = crate::asym::decrypt(
            node,
            id,
            ct,
            r.encryption_algorithm.as_deref(),
            r.key_version_id,
        )
        .await?;
        return Ok(Answer {
            body: json!({
                "KeyId": node.key_arn(&id)?,
                "Plaintext": B64.encode(pt.expose()),
                "EncryptionAlgorithm": alg.as_aws(),
                "KeyVersionId": vid,
            }),
            key_id: Some(id),
        });
    }
    check_algorithm(r.encryption_algorithm.as_deref())?;
    dry_run(r.dry_run)?;
    let (id, pt) = node.decrypt(ct, ec, expected).await?;
    let arn = node.key_arn(&id)?;
    Ok(Answer {
        body: json!({
            "KeyId": arn,
            "Plaintext": B64.encode(pt.expose()),
            "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        }),
        key_id: Some(id),
    })
}

async fn data_key(
    node: &Node,
    ctx: &Ctx,
    r: DataKeyReq,
    with_plaintext: bool,
) -> Result<Answer, ApiError> {
    let id = ctx.key(0)?;
    let len = match (r.key_spec.as_deref(), r.number_of_bytes) {
        (Some(_), Some(_)) => {
            return Err(ApiError::validation(
                "Specify either KeySpec or NumberOfBytes, not both",
            ))
        }
        (None, None) => {
            return Err(ApiError::validation(
                "Specify either KeySpec or NumberOfBytes",
            ))
        }
        (Some("AES_256"), None) => 32,
        (Some("AES_128"), None) => 16,
        (Some(s), None) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{s}' at 'keySpec' failed to satisfy constraint: \
                 Member must satisfy enum value set: [AES_256, AES_128]"
            )))
        }
        (None, Some(n)) if (1..=1024).contains(&n) => n as usize,
        (None, Some(n)) => {
            return Err(ApiError::validation(format!(
                "1 validation error detected: Value '{n}' at 'numberOfBytes' failed to satisfy constraint: \
                 Member must have value between 1 and 1024"
            )))
        }
    };
    let ec = context(r.encryption_context)?;
    dry_run(r.dry_run)?;
    let arn = node.key_arn(&id)?;
    let (dk, e) = node.generate_data_key(id, len, ec).await?;
    let mut body = json!({ "CiphertextBlob": B64.encode(&e.blob), "KeyId": arn });
    if with_plaintext {
        body["Plaintext"] = json!(B64.encode(dk.expose()));
    }
    Ok(Answer {
        body,
        key_id: Some(id),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AddNodeReq {
    node_id: Option<u64>,
    api_addr: Option<String>,
    peer_addr: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AccessKeyReq {
    user_name: Option<String>,
    access_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UserPolicyReq {
    user_name: Option<String>,
    policy_document: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AdvanceClockReq {
    millis: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotateRootKeyReq {
    new_root_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RemoveNodeReq {
    node_id: Option<u64>,
}

/// Runs an `ArcaAdmin` operation.
async fn dispatch_admin(node: &Node, ctx: &Ctx, op: Op, body: &[u8]) -> Result<Answer, ApiError> {
    match op {
        Op::AddNode => {
            let r: AddNodeReq = parse(body)?;
            let node_id = r.node_id.ok_or_else(|| ApiError::missing("NodeId"))?;
            let api_addr = r.api_addr.ok_or_else(|| ApiError::missing("ApiAddr"))?;
            let peer_addr = r.peer_addr.ok_or_else(|| ApiError::missing("PeerAddr"))?;
            node.add_node(
                node_id,
                NodeInfo {
                    api_addr,
                    peer_addr,
                },
            )
            .await?;
            Ok(answer(json!({})))
        }
        Op::RemoveNode => {
            let r: RemoveNodeReq = parse(body)?;
            let node_id = r.node_id.ok_or_else(|| ApiError::missing("NodeId"))?;
            node.remove_node(node_id).await?;
            Ok(answer(json!({})))
        }
        Op::CreateAccessKey => {
            let r: AccessKeyReq = parse(body)?;
            let user = r.user_name.ok_or_else(|| ApiError::missing("UserName"))?;
            let k = node.create_access_key(Some(ctx.request), &user).await?;
            Ok(answer(json!({
                "AccessKeyId": k.access_key_id,
                "SecretAccessKey": String::from_utf8_lossy(k.secret_access_key.expose()),
                "UserName": user,
                "UserArn": format!("arn:aws:iam::{}:user/{user}", k.account_id),
            })))
        }
        Op::ListAccessKeys => {
            let keys: Vec<Value> = node
                .list_access_keys()
                .await?
                .into_iter()
                .map(|(id, user, created_ms)| {
                    json!({ "AccessKeyId": id, "UserName": user, "CreationDate": created_ms as f64 / 1000.0 })
                })
                .collect();
            Ok(answer(json!({ "AccessKeys": keys })))
        }
        Op::PutUserPolicy | Op::DeleteUserPolicy => {
            let r: UserPolicyReq = parse(body)?;
            let user = r.user_name.ok_or_else(|| ApiError::missing("UserName"))?;
            let policy = if op == Op::PutUserPolicy {
                let doc = r
                    .policy_document
                    .ok_or_else(|| ApiError::missing("PolicyDocument"))?;
                crate::authz::parse_policy(&doc, arca_policy::PolicyKind::Identity)?;
                Some(doc)
            } else {
                None
            };
            node.put_user_policy(Some(ctx.request), user, policy)
                .await?;
            Ok(answer(json!({})))
        }
        Op::GetUserPolicy => {
            let r: UserPolicyReq = parse(body)?;
            let user = r.user_name.ok_or_else(|| ApiError::missing("UserName"))?;
            let u = node.user(&user).await?.ok_or_else(|| {
                ApiError::new(
                    400,
                    "NotFoundException",
                    format!("User {user} does not exist"),
                )
            })?;
            Ok(answer(
                json!({ "UserName": u.name, "PolicyDocument": u.policy }),
            ))
        }
        Op::DeleteAccessKey => {
            let r: AccessKeyReq = parse(body)?;
            let id = r
                .access_key_id
                .ok_or_else(|| ApiError::missing("AccessKeyId"))?;
            node.delete_access_key(Some(ctx.request), id).await?;
            Ok(answer(json!({})))
        }
        Op::AdvanceClock => {
            let r: AdvanceClockReq = parse(body)?;
            let ms = r.millis.ok_or_else(|| ApiError::missing("Millis"))?;
            let now = node.advance_clock(ms)?;
            Ok(answer(json!({ "NowMs": now })))
        }
        Op::RotateRootKey => {
            let r: RotateRootKeyReq = parse(body)?;
            let id = r
                .new_root_key_id
                .ok_or_else(|| ApiError::missing("NewRootKeyId"))?;
            let id = arca_crypto::wrap::RootKeyId::parse(&id).ok_or_else(|| {
                ApiError::validation("NewRootKeyId must be a root key id: 16 hex digits")
            })?;
            node.begin_root_key_rotation(id).await?;
            Ok(answer(
                serde_json::to_value(node.root_key_status())
                    .map_err(|e| ApiError::internal(e.to_string()))?,
            ))
        }
        Op::Backup => {
            let _: Value = parse(body)?;
            let (manifest, bytes) = node.backup().await?;
            Ok(answer(json!({
                "Manifest": manifest,
                "Backup": B64.encode(&bytes),
            })))
        }
        Op::ClusterStatus => {
            let s = node.cluster_status().await;
            Ok(answer(
                serde_json::to_value(s).map_err(|e| ApiError::internal(e.to_string()))?,
            ))
        }
        _ => Err(ApiError::unknown_operation(op.name())),
    }
}

#[cfg(test)]
mod decode_tests {
    use super::*;

    /// Every operation has a decoder, and it reads the body (an operation
    /// whose handler reads nothing is listed).
    #[test]
    fn every_operation_decodes_its_body() {
        for &op in Op::ALL {
            let r = decode(op, b"{}");
            assert!(r.is_ok(), "{op:?}: {:?}", r.err().map(|e| e.code));
            let r = decode(op, b"[");
            if matches!(op, Op::ListAccessKeys | Op::ClusterStatus) {
                assert!(r.is_ok(), "{op:?}");
            } else {
                assert_eq!(
                    r.err().map(|e| e.code),
                    Some("SerializationException"),
                    "{op:?}"
                );
            }
        }
    }
}
