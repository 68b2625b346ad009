//! Grant operations: `CreateGrant`, `ListGrants`, `ListRetirableGrants`,
//! `RetireGrant`, `RevokeGrant`. Authorization (`authz.rs`) has run before
//! any of them.

use std::collections::BTreeMap;

use arca_node::Node;
use arca_state::{GrantConstraints, GrantRecord, GrantRow, KeyId};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{parse, Answer, Ctx};
use crate::error::ApiError;
use crate::ops::Op;
use crate::paging;

/// The operations a grant may allow (AWS's list).
const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
];

/// Operations without an encryption context: a grant with a constraint
/// cannot allow them (`DescribeKey` and `RetireGrant` it may, unconstrained,
/// as in AWS).
const WITHOUT_CONTEXT: &[&str] = &[
    "Sign",
    "Verify",
    "GetPublicKey",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
    "Encapsulate",
    "Decapsulate",
];

/// AWS's bounds on one constraint: pairs, and characters per value.
const MAX_CONSTRAINT_PAIRS: usize = 8;
const MAX_CONSTRAINT_VALUE_CHARS: usize = 384;

/// [`crate::api::decode`] for the operations of this module; `None` for others.
pub(crate) fn decode(op: Op, body: &[u8]) -> Option<Result<(), ApiError>> {
    use crate::api::as_;
    match op {
        Op::CreateGrant => as_::<CreateGrantReq>(body),
        Op::ListGrants | Op::ListRetirableGrants => as_::<ListGrantsReq>(body),
        Op::RetireGrant | Op::RevokeGrant => as_::<GrantIdReq>(body),
        _ => None,
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateGrantReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    operations: Option<Vec<String>>,
    constraints: Option<ConstraintsReq>,
    name: Option<String>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
    dry_run: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConstraintsReq {
    encryption_context_equals: Option<BTreeMap<String, String>>,
    encryption_context_subset: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListGrantsReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    grant_id: Option<String>,
    grantee_principal: Option<String>,
    retiring_principal: Option<String>,
    limit: Option<u32>,
    marker: Option<String>,
    #[allow(dead_code)]
    grant_tokens: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GrantIdReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    grant_id: Option<String>,
    grant_token: Option<String>,
    dry_run: Option<bool>,
}

/// Runs a grant operation.
pub async fn run(node: &Node, ctx: &Ctx, op: Op, body: &[u8]) -> Result<Answer, ApiError> {
    match op {
        Op::CreateGrant => create(node, ctx, parse(body)?).await,
        Op::ListGrants => list(node, ctx, parse(body)?).await,
        Op::ListRetirableGrants => list_retirable(node, parse(body)?).await,
        _ => remove(node, ctx, op, parse(body)?).await,
    }
}

fn validation(m: impl Into<String>) -> ApiError {
    ApiError::validation(m)
}

async fn create(node: &Node, ctx: &Ctx, r: CreateGrantReq) -> Result<Answer, ApiError> {
    let key = ctx.key(0)?;
    let grantee = r
        .grantee_principal
        .ok_or_else(|| ApiError::missing("GranteePrincipal"))?;
    check_principal("GranteePrincipal", &grantee)?;
    if let Some(p) = &r.retiring_principal {
        check_principal("RetiringPrincipal", p)?;
    }
    let operations = r
        .operations
        .ok_or_else(|| ApiError::missing("Operations"))?;
    if operations.is_empty() {
        return Err(validation("Operations must name at least one operation"));
    }
    for o in &operations {
        if !GRANT_OPERATIONS.contains(&o.as_str()) {
            return Err(validation(format!(
                "'{o}' is not a grant operation; valid ones: {}",
                GRANT_OPERATIONS.join(", ")
            )));
        }
    }
    let constraints = r.constraints.map(|c| GrantConstraints {
        context_equals: c.encryption_context_equals,
        context_subset: c.encryption_context_subset,
    });
    for (name, pairs) in constraints.iter().flat_map(|c| {
        [
            ("EncryptionContextEquals", &c.context_equals),
            ("EncryptionContextSubset", &c.context_subset),
        ]
    }) {
        let Some(pairs) = pairs else { continue };
        if pairs.len() > MAX_CONSTRAINT_PAIRS
            || pairs
                .values()
                .any(|v| v.chars().count() > MAX_CONSTRAINT_VALUE_CHARS)
        {
            return Err(validation(format!(
                "{name} has at most {MAX_CONSTRAINT_PAIRS} pairs, each value at most {MAX_CONSTRAINT_VALUE_CHARS} characters"
            )));
        }
    }
    if constraints.is_some() {
        if let Some(o) = operations
            .iter()
            .find(|o| WITHOUT_CONTEXT.contains(&o.as_str()))
        {
            return Err(validation(format!(
                "a grant with an encryption context constraint cannot allow {o}, which takes no encryption context"
            )));
        }
    }
    if let Some(n) = &r.name {
        let ok = (1..=256).contains(&n.len())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || ":/_-".contains(c));
        if !ok {
            return Err(validation(
                "Name must be 1 to 256 of letters, digits and :/_-",
            ));
        }
    }
    if constraints.is_some() {
        let k = node.describe_key(&key).await?;
        if k.record.spec != arca_state::KeySpec::SymmetricDefault {
            return Err(validation(
                "grant constraints apply only to symmetric encryption keys, whose operations take an encryption context",
            ));
        }
    }
    crate::api::dry_run(r.dry_run)?;
    let mut operations = operations;
    operations.sort();
    operations.dedup();
    let id_bytes = arca_crypto::random::bytes16()
        .and_then(|a| arca_crypto::random::bytes16().map(|b| [a, b].concat()))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let grant = GrantRecord {
        grant_id: hex::encode(id_bytes),
        key_id: key,
        name: r.name,
        grantee,
        retiring: r.retiring_principal,
        operations,
        constraints,
        issuer: ctx.principal.clone(),
        created_ms: node.now_ms(),
    };
    let stored = node.create_grant(Some(ctx.request), grant).await?;
    let token = node.grant_token(&stored)?;
    Ok(Answer {
        body: json!({ "GrantId": stored.grant_id, "GrantToken": token }),
        key_id: Some(key),
    })
}

/// Grantees and retiring principals are ARNs (or an account id).
fn check_principal(field: &str, p: &str) -> Result<(), ApiError> {
    let ok = (1..=256).contains(&p.len())
        && (p.starts_with("arn:") || (p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit())));
    if ok {
        Ok(())
    } else {
        Err(validation(format!(
            "{field} must be a principal ARN (arn:aws:iam::<account>:user/<name>) or an account id"
        )))
    }
}

/// A page of grants (ids in order) after `marker`.
fn page(
    mut grants: Vec<GrantRecord>,
    limit: Option<u32>,
    marker: Option<String>,
    arn_of: impl Fn(&KeyId) -> String,
) -> Result<Value, ApiError> {
    let limit = paging::limit(limit.map(i64::from), 100, 50)?;
    grants.sort_by(|a, b| a.grant_id.cmp(&b.grant_id));
    let (shown, next) = paging::after_id(&grants, marker.as_deref(), limit, |g| &g.grant_id);
    let items: Vec<Value> = shown
        .iter()
        .map(|g| {
            let mut v = json!({
                "KeyId": arn_of(&g.key_id),
                "GrantId": g.grant_id,
                "GranteePrincipal": g.grantee,
                "IssuingAccount": g.issuer.split(':').nth(4).map(|a| format!("arn:aws:iam::{a}:root")),
                "Operations": g.operations,
                "CreationDate": g.created_ms as f64 / 1000.0,
            });
            if let Some(n) = &g.name {
                v["Name"] = json!(n);
            }
            if let Some(r) = &g.retiring {
                v["RetiringPrincipal"] = json!(r);
            }
            if let Some(c) = &g.constraints {
                let mut cv = json!({});
                if let Some(e) = &c.context_equals {
                    cv["EncryptionContextEquals"] = json!(e);
                }
                if let Some(s) = &c.context_subset {
                    cv["EncryptionContextSubset"] = json!(s);
                }
                v["Constraints"] = cv;
            }
            v
        })
        .collect();
    Ok(paging::answer(json!({ "Grants": items }), next))
}

async fn list(node: &Node, ctx: &Ctx, r: ListGrantsReq) -> Result<Answer, ApiError> {
    let key = ctx.key(0)?;
    let grants: Vec<GrantRecord> = node
        .grants_of(&key)
        .await?
        .into_iter()
        .filter(|g| r.grant_id.as_ref().is_none_or(|id| &g.grant_id == id))
        .filter(|g| r.grantee_principal.as_ref().is_none_or(|p| &g.grantee == p))
        .collect();
    let body = page(grants, r.limit, r.marker, |k| {
        node.key_arn(k).unwrap_or_default()
    })?;
    Ok(Answer {
        body,
        key_id: Some(key),
    })
}

async fn list_retirable(node: &Node, r: ListGrantsReq) -> Result<Answer, ApiError> {
    let principal = r
        .retiring_principal
        .ok_or_else(|| ApiError::missing("RetiringPrincipal"))?;
    let grants = node.retirable_grants(&principal).await?;
    let body = page(grants, r.limit, r.marker, |k| {
        node.key_arn(k).unwrap_or_default()
    })?;
    Ok(Answer { body, key_id: None })
}

async fn remove(node: &Node, ctx: &Ctx, op: Op, r: GrantIdReq) -> Result<Answer, ApiError> {
    let (key, grant_id) = match (&r.grant_token, op) {
        (Some(t), Op::RetireGrant) => {
            let g = node.verify_grant_token(t)?;
            (g.key_id, g.grant_id)
        }
        _ => {
            let key = ctx.key(0)?;
            let id = r.grant_id.ok_or_else(|| ApiError::missing("GrantId"))?;
            (key, id)
        }
    };
    crate::api::dry_run(r.dry_run)?;
    // A grant removed already answers like one that never existed.
    if let Some(GrantRow::Removed { .. }) = node.grant(&grant_id).await? {
        return Err(ApiError::new(
            400,
            "NotFoundException",
            format!("Grant {grant_id} of key {key} does not exist"),
        ));
    }
    node.remove_grant(Some(ctx.request), key, grant_id).await?;
    Ok(Answer {
        body: json!({}),
        key_id: Some(key),
    })
}
