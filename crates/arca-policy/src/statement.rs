//! One policy statement: parsing and matching.

use crate::actions::ActionPattern;
use crate::condition::{self, Condition};
use crate::context::Context;
use crate::glob;
use crate::json::Json;
use crate::principal::{PrincipalMatch, Principals};
use crate::template::Template;
use crate::PolicyKind;

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatementEffect {
    Allow,
    Deny,
}

/// A list of patterns, or its complement (`NotAction`, `NotResource`, `NotPrincipal`).
#[derive(Debug, Clone, PartialEq)]
struct Negatable<T> {
    negated: bool,
    items: T,
}

#[derive(Debug, Clone, PartialEq)]
enum ResourcePattern {
    Any,
    Arn(Template),
}

/// A parsed statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) sid: Option<String>,
    pub(crate) effect: StatementEffect,
    /// `None` in identity policies.
    principal: Option<Negatable<Principals>>,
    action: Negatable<Vec<ActionPattern>>,
    resource: Negatable<Vec<ResourcePattern>>,
    conditions: Vec<Condition>,
}

/// The members a statement may have, in one place.
#[derive(Default)]
struct Members<'a> {
    sid: Option<&'a Json>,
    effect: Option<&'a Json>,
    principal: Option<&'a Json>,
    not_principal: Option<&'a Json>,
    action: Option<&'a Json>,
    not_action: Option<&'a Json>,
    resource: Option<&'a Json>,
    not_resource: Option<&'a Json>,
    condition: Option<&'a Json>,
}

impl<'a> Members<'a> {
    fn collect(members: &'a [(String, Json)]) -> Result<Members<'a>, String> {
        let mut m = Members::default();
        for (name, value) in members {
            let slot = match name.as_str() {
                "Sid" => &mut m.sid,
                "Effect" => &mut m.effect,
                "Principal" => &mut m.principal,
                "NotPrincipal" => &mut m.not_principal,
                "Action" => &mut m.action,
                "NotAction" => &mut m.not_action,
                "Resource" => &mut m.resource,
                "NotResource" => &mut m.not_resource,
                "Condition" => &mut m.condition,
                other => return Err(format!("unknown element `{other}`")),
            };
            *slot = Some(value);
        }
        Ok(m)
    }
}

/// The statement's name in error messages: its Sid, or its position (from 1).
pub(crate) fn label(index: usize, v: &Json) -> String {
    let sid = match v {
        Json::Object(members) => members.iter().find_map(|(k, v)| match (k.as_str(), v) {
            ("Sid", Json::String(s)) => Some(s.as_str()),
            _ => None,
        }),
        _ => None,
    };
    match sid {
        Some(s) => format!("statement `{s}`"),
        None => format!("statement {}", index + 1),
    }
}

impl Statement {
    /// Parses one statement. `variables` says whether policy variables are allowed. Errors
    /// name the element; the caller adds which statement.
    pub(crate) fn parse(v: &Json, kind: PolicyKind, variables: bool) -> Result<Statement, String> {
        let Json::Object(members) = v else {
            return Err(format!("a statement must be an object, not {}", v.kind()));
        };
        let m = Members::collect(members)?;
        Ok(Statement {
            sid: m.sid.map(sid).transpose()?,
            effect: effect(m.effect)?,
            principal: principal(&m, kind)?,
            action: action(&m)?,
            resource: resource(&m, variables)?,
            conditions: match m.condition {
                Some(c) => condition::parse_block(c, variables)?,
                None => Vec::new(),
            },
        })
    }

    /// How the caller relates to this statement's principal; identity policies name no
    /// principal, so their statements are about the caller directly.
    pub(crate) fn principal_match(&self, caller: &str) -> PrincipalMatch {
        let Some(p) = &self.principal else {
            return PrincipalMatch::Direct;
        };
        let relation = p.items.relation(caller);
        if !p.negated {
            return relation;
        }
        // `NotPrincipal` excludes only the principals it names exactly; a root entry
        // excludes the root caller, not the account's other principals.
        if relation == PrincipalMatch::Direct {
            PrincipalMatch::None
        } else {
            PrincipalMatch::Direct
        }
    }

    /// Do the action, resource and conditions apply to this request?
    pub(crate) fn applies(&self, action: &str, resource: &str, ctx: &Context) -> bool {
        let action_named = self.action.items.iter().any(|p| p.matches(action));
        let resource_named = self
            .resource
            .items
            .iter()
            .any(|r| resource_matches(r, resource, ctx));
        action_named != self.action.negated
            && resource_named != self.resource.negated
            && self.conditions.iter().all(|c| c.holds(ctx))
    }
}

fn resource_matches(pattern: &ResourcePattern, resource: &str, ctx: &Context) -> bool {
    match pattern {
        ResourcePattern::Any => true,
        ResourcePattern::Arn(t) => t
            .pattern(ctx, true)
            .is_some_and(|p| glob::matches_arn(&p, resource)),
    }
}

fn sid(v: &Json) -> Result<String, String> {
    match v {
        Json::String(s) => Ok(s.clone()),
        other => Err(format!("`Sid` must be a string, not {}", other.kind())),
    }
}

fn effect(v: Option<&Json>) -> Result<StatementEffect, String> {
    match v {
        Some(Json::String(s)) if s == "Allow" => Ok(StatementEffect::Allow),
        Some(Json::String(s)) if s == "Deny" => Ok(StatementEffect::Deny),
        Some(Json::String(s)) => Err(format!("`Effect` must be `Allow` or `Deny`, not `{s}`")),
        Some(other) => Err(format!("`Effect` must be a string, not {}", other.kind())),
        None => Err("missing `Effect`".to_owned()),
    }
}

/// Exactly one of the pair, with whether it was the negated one.
fn one_of<'a>(
    plain: Option<&'a Json>,
    negated: Option<&'a Json>,
    names: (&str, &str),
) -> Result<Option<(bool, &'a Json)>, String> {
    match (plain, negated) {
        (Some(_), Some(_)) => Err(format!("both `{}` and `{}`", names.0, names.1)),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

fn principal(m: &Members<'_>, kind: PolicyKind) -> Result<Option<Negatable<Principals>>, String> {
    let found = one_of(m.principal, m.not_principal, ("Principal", "NotPrincipal"))?;
    match (kind, found) {
        (PolicyKind::Key, None) => Err("missing `Principal` (or `NotPrincipal`)".to_owned()),
        (PolicyKind::Identity, Some(_)) => Err(
            "identity policies cannot have `Principal` or `NotPrincipal` (the principal is the \
             identity the policy is attached to)"
                .to_owned(),
        ),
        (PolicyKind::Identity, None) => Ok(None),
        (PolicyKind::Key, Some((negated, v))) => Ok(Some(Negatable {
            negated,
            items: Principals::parse(v)?,
        })),
    }
}

fn action(m: &Members<'_>) -> Result<Negatable<Vec<ActionPattern>>, String> {
    let (negated, v) = one_of(m.action, m.not_action, ("Action", "NotAction"))?
        .ok_or_else(|| "missing `Action` (or `NotAction`)".to_owned())?;
    let name = if negated { "NotAction" } else { "Action" };
    let items = strings(v, name)?
        .into_iter()
        .map(ActionPattern::parse)
        .collect::<Result<_, _>>()?;
    Ok(Negatable { negated, items })
}

fn resource(m: &Members<'_>, variables: bool) -> Result<Negatable<Vec<ResourcePattern>>, String> {
    let (negated, v) = one_of(m.resource, m.not_resource, ("Resource", "NotResource"))?
        .ok_or_else(|| "missing `Resource` (or `NotResource`)".to_owned())?;
    let name = if negated { "NotResource" } else { "Resource" };
    let items = strings(v, name)?
        .into_iter()
        .map(|s| resource_pattern(s, variables))
        .collect::<Result<_, _>>()?;
    Ok(Negatable { negated, items })
}

fn resource_pattern(s: &str, variables: bool) -> Result<ResourcePattern, String> {
    if s == "*" {
        return Ok(ResourcePattern::Any);
    }
    let t = Template::parse(s, variables)?;
    if t.starts_with_arn() && t.arn_segments() == glob::ARN_SEGMENTS {
        Ok(ResourcePattern::Arn(t))
    } else {
        Err(format!(
            "resource `{s}` is neither `*` nor an ARN (arn:partition:service:region:account:resource)"
        ))
    }
}

/// A string or a non-empty list of strings.
fn strings<'a>(v: &'a Json, name: &str) -> Result<Vec<&'a str>, String> {
    let bad = || format!("`{name}` must be a string or a non-empty list of strings");
    match v {
        Json::String(s) => Ok(vec![s.as_str()]),
        Json::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Json::String(s) => Ok(s.as_str()),
                _ => Err(bad()),
            })
            .collect(),
        _ => Err(bad()),
    }
}
