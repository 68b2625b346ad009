//! Key lifecycle operations: state, deletion, aliases, tags, rotation.

use arca_node::Node;
use arca_state::rules;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::{parse, resolve_key, secs, Answer, Ctx};
use crate::error::ApiError;
use crate::ops::Op;
use crate::paging;

/// A tag as the API spells it.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    tag_key: Option<String>,
    tag_value: Option<String>,
}

/// Checks the shape of a tag list. How many tags one request may carry is
/// checked with the other input limits, before authorization
/// (`authz::Fields::check_limits`); a key's total when the change applies.
pub fn tags(t: Option<Vec<Tag>>) -> Result<Vec<(String, String)>, ApiError> {
    let t = t.unwrap_or_default();
    let tags: Vec<(String, String)> = t
        .into_iter()
        .map(|t| {
            Ok((
                t.tag_key.ok_or_else(|| ApiError::missing("TagKey"))?,
                t.tag_value.ok_or_else(|| ApiError::missing("TagValue"))?,
            ))
        })
        .collect::<Result<_, ApiError>>()?;
    let mut keys: Vec<&str> = tags.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    if let Some(w) = keys.windows(2).find(|w| w[0] == w[1]) {
        return Err(ApiError::new(
            400,
            "TagException",
            format!("Duplicate tag keys: '{}' appears more than once", w[0]),
        ));
    }
    Ok(tags)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct KeyReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DescriptionReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ScheduleReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    pending_window_in_days: Option<i64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AliasReq {
    alias_name: Option<String>,
    target_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListReq {
    key_id: Option<String>,
    limit: Option<i64>,
    marker: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TagReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    tags: Option<Vec<Tag>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct UntagReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    tag_keys: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RotationReq {
    // KeyId: resolved once, by authorization (`Ctx::keys`).
    rotation_period_in_days: Option<i64>,
}

fn done(key_id: arca_state::KeyId, body: Value) -> Result<Answer, ApiError> {
    Ok(Answer {
        body,
        key_id: Some(key_id),
    })
}

/// [`crate::api::decode`] for the operations of this module; `None` for others.
pub(crate) fn decode(op: Op, body: &[u8]) -> Option<Result<(), ApiError>> {
    use crate::api::as_;
    match op {
        Op::EnableKey
        | Op::DisableKey
        | Op::CancelKeyDeletion
        | Op::DisableKeyRotation
        | Op::GetKeyRotationStatus
        | Op::RotateKeyOnDemand => as_::<KeyReq>(body),
        Op::UpdateKeyDescription => as_::<DescriptionReq>(body),
        Op::ScheduleKeyDeletion => as_::<ScheduleReq>(body),
        Op::CreateAlias | Op::UpdateAlias | Op::DeleteAlias => as_::<AliasReq>(body),
        Op::ListAliases | Op::ListResourceTags | Op::ListKeyRotations => as_::<ListReq>(body),
        Op::TagResource => as_::<TagReq>(body),
        Op::UntagResource => as_::<UntagReq>(body),
        Op::EnableKeyRotation => as_::<RotationReq>(body),
        _ => None,
    }
}

fn alias_name(n: Option<String>) -> Result<String, ApiError> {
    let n = n.ok_or_else(|| ApiError::missing("AliasName"))?;
    if n.is_empty() || n.chars().count() > rules::MAX_ALIAS_NAME_CHARS {
        return Err(ApiError::validation(format!(
            "AliasName must have length between 1 and {}",
            rules::MAX_ALIAS_NAME_CHARS
        )));
    }
    Ok(n)
}

/// An alias target must name a key, not another alias; it is the request's
/// `i`-th key (resolved by authorization).
fn target(ctx: &Ctx, t: Option<String>, i: usize) -> Result<arca_state::KeyId, ApiError> {
    let t = t.ok_or_else(|| ApiError::missing("TargetKeyId"))?;
    if t.contains("alias/") {
        return Err(ApiError::validation(
            "TargetKeyId must be a key id or key ARN, not an alias",
        ));
    }
    ctx.key(i)
}

/// Runs a lifecycle, alias, tag or rotation operation.
pub async fn run(node: &Node, ctx: &Ctx, op: Op, body: &[u8]) -> Result<Answer, ApiError> {
    let rid = Some(ctx.request);
    {
        match op {
            Op::EnableKey | Op::DisableKey => {
                let _: KeyReq = parse(body)?;
                let id = ctx.key(0)?;
                node.set_enabled(rid, id, op == Op::EnableKey).await?;
                done(id, json!({}))
            }
            Op::UpdateKeyDescription => {
                let r: DescriptionReq = parse(body)?;
                // Its length (at most 8192) is the model's constraint, checked before.
                let d = r
                    .description
                    .ok_or_else(|| ApiError::missing("Description"))?;
                let id = ctx.key(0)?;
                node.update_description(rid, id, d).await?;
                done(id, json!({}))
            }
            Op::ScheduleKeyDeletion => {
                let r: ScheduleReq = parse(body)?;
                let w = r
                    .pending_window_in_days
                    .unwrap_or(i64::from(rules::DEFAULT_PENDING_WINDOW_DAYS));
                let range = i64::from(rules::MIN_PENDING_WINDOW_DAYS)
                    ..=i64::from(rules::MAX_PENDING_WINDOW_DAYS);
                if !range.contains(&w) {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{w}' at 'pendingWindowInDays' failed to satisfy \
                         constraint: Member must have value between {} and {}",
                        rules::MIN_PENDING_WINDOW_DAYS,
                        rules::MAX_PENDING_WINDOW_DAYS
                    )));
                }
                let id = ctx.key(0)?;
                let date = node.schedule_deletion(rid, id, w as u32).await?;
                done(
                    id,
                    json!({
                        "KeyId": node.key_arn(&id)?,
                        "DeletionDate": secs(date),
                        "KeyState": "PendingDeletion",
                        "PendingWindowInDays": w,
                    }),
                )
            }
            Op::CancelKeyDeletion => {
                let _: KeyReq = parse(body)?;
                let id = ctx.key(0)?;
                node.cancel_deletion(rid, id).await?;
                done(id, json!({ "KeyId": node.key_arn(&id)? }))
            }
            Op::CreateAlias => {
                let r: AliasReq = parse(body)?;
                let name = alias_name(r.alias_name)?;
                let id = target(ctx, r.target_key_id, 0)?;
                node.create_alias(rid, name, id).await?;
                done(id, json!({}))
            }
            Op::UpdateAlias => {
                let r: AliasReq = parse(body)?;
                let name = alias_name(r.alias_name)?;
                let id = target(ctx, r.target_key_id, 1)?;
                // The key the alias pointed to when the caller's right on it
                // was checked: the change applies only if it still does.
                let from = ctx.key(0)?;
                node.update_alias(rid, name, from, id).await?;
                done(id, json!({}))
            }
            Op::DeleteAlias => {
                let r: AliasReq = parse(body)?;
                let name = alias_name(r.alias_name)?;
                // As UpdateAlias: only from the key the caller was
                // authorized against.
                let id = ctx.key(0)?;
                node.delete_alias(rid, name, id).await?;
                done(id, json!({}))
            }
            Op::ListAliases => {
                let r: ListReq = parse(body)?;
                let limit = paging::limit(r.limit, 100, 50)?;
                let key = match r.key_id.as_deref() {
                    Some(k) => Some(resolve_key(node, Some(k)).await?),
                    None => None,
                };
                let (page, truncated) = node.list_aliases(key, r.marker.as_deref(), limit).await?;
                let aliases: Vec<Value> = page
                    .iter()
                    .map(|(a, arn)| {
                        json!({
                            "AliasName": a.name,
                            "AliasArn": arn,
                            "TargetKeyId": a.key_id.to_string(),
                            "CreationDate": secs(a.created_ms),
                            "LastUpdatedDate": secs(a.updated_ms),
                        })
                    })
                    .collect();
                let next = paging::next_id(truncated, page.last().map(|(a, _)| a.name.clone()));
                Ok(Answer {
                    body: paging::answer(json!({ "Aliases": aliases }), next),
                    key_id: key,
                })
            }
            Op::TagResource => {
                let r: TagReq = parse(body)?;
                let t = tags(r.tags)?;
                if t.is_empty() {
                    return Err(ApiError::missing("Tags"));
                }
                let id = ctx.key(0)?;
                node.tag(rid, id, t).await?;
                done(id, json!({}))
            }
            Op::UntagResource => {
                let r: UntagReq = parse(body)?;
                // At most `MAX_TAGS` of them: checked before authorization.
                let keys = r.tag_keys.ok_or_else(|| ApiError::missing("TagKeys"))?;
                let id = ctx.key(0)?;
                node.untag(rid, id, keys).await?;
                done(id, json!({}))
            }
            Op::ListResourceTags => {
                let r: ListReq = parse(body)?;
                let limit = paging::limit(r.limit, 50, 50)?;
                let id = ctx.key(0)?;
                let all: Vec<(String, String)> = node.tags(&id)?.into_iter().collect();
                let (page, next) = paging::by_index(&all, r.marker.as_deref(), limit)?;
                let page: Vec<Value> = page
                    .iter()
                    .map(|(k, v)| json!({ "TagKey": k, "TagValue": v }))
                    .collect();
                done(id, paging::answer(json!({ "Tags": page }), next))
            }
            Op::EnableKeyRotation => {
                let r: RotationReq = parse(body)?;
                let days = r
                    .rotation_period_in_days
                    .unwrap_or(i64::from(rules::DEFAULT_ROTATION_DAYS));
                let range =
                    i64::from(rules::MIN_ROTATION_DAYS)..=i64::from(rules::MAX_ROTATION_DAYS);
                if !range.contains(&days) {
                    return Err(ApiError::validation(format!(
                        "1 validation error detected: Value '{days}' at 'rotationPeriodInDays' failed to satisfy \
                         constraint: Member must have value between {} and {}",
                        rules::MIN_ROTATION_DAYS,
                        rules::MAX_ROTATION_DAYS
                    )));
                }
                let id = ctx.key(0)?;
                node.set_rotation(rid, id, Some(days as u32)).await?;
                done(id, json!({}))
            }
            Op::DisableKeyRotation => {
                let _: KeyReq = parse(body)?;
                let id = ctx.key(0)?;
                node.set_rotation(rid, id, None).await?;
                done(id, json!({}))
            }
            Op::GetKeyRotationStatus => {
                let _: KeyReq = parse(body)?;
                let id = ctx.key(0)?;
                let k = node.describe_key(&id).await?;
                let mut body = json!({
                    "KeyId": k.arn,
                    "KeyRotationEnabled": k.record.rotation.is_some(),
                });
                if let Some(s) = k.record.rotation {
                    body["RotationPeriodInDays"] = json!(s.period_days);
                    body["NextRotationDate"] = json!(secs(s.next_ms));
                }
                if let Some(last) = k.record.rotations.iter().rev().find(|e| e.on_demand) {
                    body["OnDemandRotationStartDate"] = json!(secs(last.at_ms));
                }
                done(id, body)
            }
            Op::RotateKeyOnDemand => {
                let _: KeyReq = parse(body)?;
                let id = ctx.key(0)?;
                node.rotate_on_demand(rid, id).await?;
                done(id, json!({ "KeyId": id.to_string() }))
            }
            Op::ListKeyRotations => {
                let r: ListReq = parse(body)?;
                let limit = paging::limit(r.limit, 1000, 100)?;
                let id = ctx.key(0)?;
                let arn = node.key_arn(&id)?;
                let all = node.rotations(&id)?;
                let (page, next) = paging::by_index(&all, r.marker.as_deref(), limit)?;
                let page: Vec<Value> = page
                    .iter()
                    .map(|e| {
                        json!({
                            "KeyId": arn,
                            "KeyMaterialId": crate::api::key_material_id(&id, e.version),
                            "RotationDate": secs(e.at_ms),
                            "RotationType": if e.on_demand { "ON_DEMAND" } else { "AUTOMATIC" },
                        })
                    })
                    .collect();
                done(id, paging::answer(json!({ "Rotations": page }), next))
            }
            _ => Err(ApiError::unknown_operation(op.name())),
        }
    }
}
