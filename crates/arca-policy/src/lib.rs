//! The AWS IAM / KMS policy language: parse and validate key policies and identity
//! policies, then evaluate requests against them.
//!
//! Pure and deterministic: no I/O, no clock. Anything time- or network-dependent
//! (`aws:CurrentTime`, `aws:SourceIp`, ...) comes in through the request's [`Context`].
//!
//! # Grammar
//!
//! A policy is a JSON object of at most [`MAX_POLICY_BYTES`] bytes with `Version`
//! (`"2012-10-17"` or `"2008-10-17"`, optional), `Id` (optional string) and `Statement`
//! (one statement object or a non-empty list of at most [`MAX_STATEMENTS`]). A statement
//! has `Sid` (optional string, unique in the policy), `Effect` (`Allow` | `Deny`), exactly one
//! of `Action` / `NotAction`, exactly one of `Resource` / `NotResource`, optional
//! `Condition`, and — in key policies only, where it is required — exactly one of
//! `Principal` / `NotPrincipal`. Element names and operator names are case-sensitive, as
//! AWS writes them. Parsing is strict: an unknown member, a duplicate JSON member name, a
//! wrong type or an unknown name is [`PolicyError::Malformed`], with a message naming the
//! element and the statement (by `Sid`, or by position counting from 1).
//!
//! - **Action**: `*`, or `kms:...` / `arca:...` (prefix case-insensitive). A name without
//!   wildcards must be in [`known_actions`]; a name with `*` / `?` must match at least one.
//!   Matching ignores ASCII case.
//! - **Resource**: `*`, or an ARN of six `:`-separated segments, matched segment by segment
//!   with `*` / `?` (case-sensitive; a wildcard never crosses one of the first five `:`).
//!   A request resource of `"*"` (account-level actions) matches only `Resource: "*"`.
//! - **Principal**: `"*"`, or an object with `AWS` (a string or list of: `*`, a 12-digit
//!   account id, an IAM/STS ARN with no wildcards) and/or `Service` (accepted, never matches
//!   an Arca caller). An account id and `arn:<partition>:iam::<account>:root` both name the
//!   account root. Other principal types (`Federated`, `CanonicalUser`) are refused.
//! - **Condition**: the operators `String(Not)Equals(IgnoreCase)`, `String(Not)Like`,
//!   `Numeric(Not)Equals`, `Numeric{Less,Greater}Than(Equals)`, `Date(Not)Equals`,
//!   `Date{Less,Greater}Than(Equals)`, `Bool`, `(Not)IpAddress`, `Arn(Not){Equals,Like}`
//!   and `Null`; the `ForAnyValue:` / `ForAllValues:` qualifiers and the `IfExists` suffix
//!   (neither on `Null`). Values are strings, numbers, booleans or a non-empty list of them.
//!   Keys must be known ([`is_known_condition_key`]); the value type must suit the operator
//!   (numbers for `Numeric...`, dates as ISO 8601 / RFC 3339 or epoch seconds for `Date...`,
//!   `true`/`false` for `Bool` and `Null`, CIDR for `IpAddress`, ARNs for `Arn...`), and
//!   typed operators only take keys of their type (`Bool` on `kms:GrantIsForAWSResource`,
//!   not on an encryption context key). `BinaryEquals` is not supported.
//! - **Policy variables** (`${aws:username}`, `${aws:PrincipalArn}`, any single-valued
//!   known key; `${*}`, `${?}`, `${$}`) in `Resource` / `NotResource` and in string and
//!   ARN condition values, with `"Version": "2012-10-17"` only. A variable's value is taken
//!   literally; if the key is absent or has several values, that string matches nothing.
//!   Default values (`${key, 'x'}`), variables elsewhere, and variables under an older or
//!   missing version are refused as malformed rather than read as literal text.
//!
//! # Condition semantics
//!
//! Within a condition the policy's values are ORed; keys, and operators, are ANDed. For a
//! request value `v`, "matches" means the positive operator (`StringEquals` for
//! `StringNotEquals`) holds for `v` and some policy value.
//!
//! | operator form                  | key absent | key present with values `V`      |
//! |--------------------------------|------------|----------------------------------|
//! | positive                       | false      | some `v` in `V` matches          |
//! | negated (`...Not...`)          | true       | no `v` in `V` matches            |
//! | `ForAnyValue:` positive        | false      | some `v` matches                 |
//! | `ForAnyValue:` negated         | false      | some `v` does not match          |
//! | `ForAllValues:` positive       | true       | every `v` matches                |
//! | `ForAllValues:` negated        | true       | no `v` matches                   |
//! | any of these with `IfExists`   | true       | as above                         |
//! | `Null: true` / `Null: false`   | true/false | false/true                       |
//!
//! "Negated with the key absent is true" is AWS's documented rule. A key with an empty list
//! of values counts as absent. A request value that does not parse for a typed operator
//! (a non-number under `NumericEquals`) matches no policy value.
//!
//! Condition key names are case-insensitive — including the part after
//! `kms:EncryptionContext:`, `aws:ResourceTag/` and `aws:RequestTag/` (IAM documents context
//! key names as case-insensitive). So `kms:EncryptionContext:dept` in a policy reads the
//! request's `Dept` pair. To require the exact case of an encryption context key, use
//! `kms:EncryptionContextKeys` with a case-sensitive operator; values are compared as the
//! operator says (`StringEquals` is case-sensitive).
//!
//! # Evaluation
//!
//! A statement applies when its principal names the caller, its action and resource match
//! and all its conditions hold. [`Policy::evaluate_for`] reports what a key policy says:
//! an applicable `Deny` ([`KeyPolicyDecision::explicit_deny`]), an `Allow` naming the caller
//! directly (`*`, its exact ARN, or the root ARN when the caller *is* the root), or an
//! `Allow` naming only the caller's account root — AWS's delegation to the account's
//! identity policies. A `Deny` that names an account root applies to every principal of
//! that account. `NotPrincipal` excludes only principals it names exactly (its root entry
//! excludes the root caller alone).
//!
//! [`decide`] combines a key policy, an identity policy and grants as AWS does:
//! 1. an explicit `Deny` in either policy wins: [`Decision::ExplicitDeny`];
//! 2. otherwise the request is allowed if the key policy allows the caller directly, or a
//!    grant allows it, or the key policy allows the caller's account root *and* the
//!    identity policy allows the request;
//! 3. for account-level actions (no key policy) the identity policy, or a grant, decides;
//! 4. otherwise [`Decision::ImplicitDeny`].

#![warn(missing_docs)]

mod actions;
mod condition;
mod context;
mod date;
mod decide;
mod glob;
mod ip;
mod json;
mod keys;
mod number;
mod principal;
mod statement;
mod template;
#[cfg(test)]
mod tests;

use std::collections::HashSet;

pub use actions::{is_known_action, known_actions};
pub use context::Context;
pub use decide::{decide, Decision, KeyPolicyDecision, Request};
pub use keys::is_known_condition_key;

use json::Json;
use principal::PrincipalMatch;
use statement::{Statement, StatementEffect};

/// Largest policy document accepted, in bytes (AWS's key policy limit).
pub const MAX_POLICY_BYTES: usize = 32 * 1024;
/// Most statements in one policy. The size limit alone would allow about 700 of the
/// smallest statements; no real policy comes near either.
pub const MAX_STATEMENTS: usize = 500;

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is longer than [`MAX_POLICY_BYTES`].
    #[error("policy document is {size} bytes; the limit is {max}")]
    TooLarge {
        /// The document's length in bytes.
        size: usize,
        /// The limit, [`MAX_POLICY_BYTES`].
        max: usize,
    },
    /// The document is not a valid policy; the message names the offending element.
    #[error("malformed policy: {0}")]
    Malformed(String),
}

/// Which kind of policy a document is; it decides whether statements name principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A key policy: every statement has `Principal` or `NotPrincipal`.
    Key,
    /// An identity (user) policy: no statement has `Principal` or `NotPrincipal`.
    Identity,
}

/// What one policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// An `Allow` statement applies (for key policies: one naming the caller directly).
    Allow,
    /// A `Deny` statement applies.
    Deny,
    /// No statement applies (for key policies, an `Allow` reaching the caller only through
    /// its account root is also reported here; see [`Policy::evaluate_for`]).
    NotApplicable,
}

/// A parsed, validated policy document (key policy or identity policy).
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    kind: PolicyKind,
    id: Option<String>,
    statements: Vec<Statement>,
}

/// Top-level members, in one place.
#[derive(Default)]
struct TopLevel<'a> {
    version: Option<&'a Json>,
    id: Option<&'a Json>,
    statement: Option<&'a Json>,
}

impl Policy {
    /// Parses and validates a policy document.
    pub fn parse(doc: &str, kind: PolicyKind) -> Result<Policy, PolicyError> {
        if doc.len() > MAX_POLICY_BYTES {
            return Err(PolicyError::TooLarge {
                size: doc.len(),
                max: MAX_POLICY_BYTES,
            });
        }
        let json = Json::parse(doc).map_err(PolicyError::Malformed)?;
        Self::from_json(&json, kind).map_err(PolicyError::Malformed)
    }

    fn from_json(json: &Json, kind: PolicyKind) -> Result<Policy, String> {
        let Json::Object(members) = json else {
            return Err(format!(
                "a policy must be a JSON object, not {}",
                json.kind()
            ));
        };
        let mut top = TopLevel::default();
        for (name, value) in members {
            let slot = match name.as_str() {
                "Version" => &mut top.version,
                "Id" => &mut top.id,
                "Statement" => &mut top.statement,
                other => return Err(format!("unknown top-level element `{other}`")),
            };
            *slot = Some(value);
        }
        let variables = version_allows_variables(top.version)?;
        let id = match top.id {
            None => None,
            Some(Json::String(s)) => Some(s.clone()),
            Some(other) => return Err(format!("`Id` must be a string, not {}", other.kind())),
        };
        let statements = statements(top.statement, kind, variables)?;
        Ok(Policy {
            kind,
            id,
            statements,
        })
    }

    /// The kind this policy was parsed as.
    pub fn kind(&self) -> PolicyKind {
        self.kind
    }

    /// The policy's `Id`, if it has one.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// How many statements the policy has.
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// What this policy alone says about the request. For a key policy, an `Allow` that
    /// reaches the caller only through its account root is [`Effect::NotApplicable`] here;
    /// use [`Policy::evaluate_for`] or [`decide`] to see delegation.
    pub fn evaluate(&self, req: &Request<'_>) -> Effect {
        let d = self.evaluate_for(req);
        if d.explicit_deny {
            Effect::Deny
        } else if d.allow_direct {
            Effect::Allow
        } else {
            Effect::NotApplicable
        }
    }

    /// What this policy says about the request, keeping direct allows apart from allows
    /// through the account root. Identity policy statements are about the caller directly.
    pub fn evaluate_for(&self, req: &Request<'_>) -> KeyPolicyDecision {
        let mut d = KeyPolicyDecision::default();
        for st in &self.statements {
            let relation = st.principal_match(req.principal);
            if relation == PrincipalMatch::None
                || !st.applies(req.action, req.resource, req.context)
            {
                continue;
            }
            match (st.effect, relation) {
                (StatementEffect::Deny, _) => d.explicit_deny = true,
                (StatementEffect::Allow, PrincipalMatch::Direct) => d.allow_direct = true,
                (StatementEffect::Allow, _) => d.allow_via_root = true,
            }
        }
        d
    }

    /// Does this policy by itself allow the request: an `Allow` naming the caller directly
    /// and no `Deny`? Delegation to identity policies is not followed, so for the
    /// lockout-safety check of `PutKeyPolicy` / `CreateKey` prefer [`decide`] with the
    /// caller's identity policy, which also counts allows through the account root.
    pub fn allows(&self, principal: &str, action: &str, resource: &str, ctx: &Context) -> bool {
        let req = Request {
            principal,
            action,
            resource,
            context: ctx,
        };
        self.evaluate(&req) == Effect::Allow
    }
}

/// Reads `Version`: whether policy variables are allowed.
fn version_allows_variables(v: Option<&Json>) -> Result<bool, String> {
    match v {
        None => Ok(false),
        Some(Json::String(s)) if s == "2012-10-17" => Ok(true),
        Some(Json::String(s)) if s == "2008-10-17" => Ok(false),
        Some(Json::String(s)) => Err(format!(
            "`Version` must be \"2012-10-17\" or \"2008-10-17\", not \"{s}\""
        )),
        Some(other) => Err(format!("`Version` must be a string, not {}", other.kind())),
    }
}

/// Reads `Statement`: one object or a non-empty list; Sids unique.
fn statements(
    v: Option<&Json>,
    kind: PolicyKind,
    variables: bool,
) -> Result<Vec<Statement>, String> {
    let items: &[Json] = match v {
        None => return Err("missing `Statement`".to_owned()),
        Some(one @ Json::Object(_)) => std::slice::from_ref(one),
        Some(Json::Array(items)) if items.is_empty() => {
            return Err("`Statement` is an empty list".to_owned())
        }
        Some(Json::Array(items)) => items,
        Some(other) => {
            return Err(format!(
                "`Statement` must be an object or a list, not {}",
                other.kind()
            ))
        }
    };
    if items.len() > MAX_STATEMENTS {
        return Err(format!(
            "{} statements; at most {MAX_STATEMENTS} are allowed",
            items.len()
        ));
    }
    let mut sids = HashSet::new();
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let st = Statement::parse(item, kind, variables)
            .map_err(|e| format!("{e} in {}", statement::label(i, item)))?;
        if let Some(sid) = &st.sid {
            if !sids.insert(sid.clone()) {
                return Err(format!("duplicate Sid `{sid}`"));
            }
        }
        out.push(st);
    }
    Ok(out)
}

/// AWS's default key policy for `account` (a 12-digit account id): the account root may
/// do everything with the key, which delegates access to identity policies. Besides AWS's
/// `kms:*` it names `arca:*`, Arca's extension operations on keys (key versions), which
/// would otherwise be refused to every caller of a key with the default policy.
pub fn default_key_policy(account: &str) -> String {
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Id": "key-default-1",
        "Statement": [{
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": { "AWS": format!("arn:aws:iam::{account}:root") },
            "Action": ["kms:*", "arca:*"],
            "Resource": "*",
        }],
    });
    format!("{policy:#}")
}
