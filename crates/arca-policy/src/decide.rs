//! Requests, and the combination of key policy, identity policy and grants.

use crate::context::Context;
use crate::{Effect, Policy, PolicyKind};

/// One request to authorize.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The caller's ARN, e.g. `arn:aws:iam::111122223333:user/app`; the account root is
    /// `arn:aws:iam::111122223333:root`.
    pub principal: &'a str,
    /// The action with its prefix, e.g. `kms:Encrypt`.
    pub action: &'a str,
    /// The key ARN, e.g. `arn:aws:kms:us-east-1:111122223333:key/<uuid>`, or `*` for
    /// account-level actions.
    pub resource: &'a str,
    /// Condition keys and their values.
    pub context: &'a Context,
}

/// What a key policy says about a request, with allows through the account root kept apart.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyPolicyDecision {
    /// A `Deny` statement applies.
    pub explicit_deny: bool,
    /// An `Allow` statement names the caller itself (`*`, its ARN, or the root ARN when the
    /// caller is the root).
    pub allow_direct: bool,
    /// An `Allow` statement names the caller's account root: allowed if the caller's
    /// identity policy allows too.
    pub allow_via_root: bool,
}

/// The outcome of authorization.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Allowed.
    Allow,
    /// A `Deny` statement applies, in the key policy or the identity policy.
    ExplicitDeny,
    /// Nothing allows the request.
    ImplicitDeny,
}

/// Authorizes a request as AWS KMS does.
///
/// - `key_policy`: the key's policy, or `None` for account-level actions (`CreateKey`,
///   `ListKeys`, ...), which the identity policy alone decides.
/// - `identity`: the caller's identity policy, if it has one.
/// - `grants_allow`: a grant on the key allows this action for this caller (the caller
///   checks grants; they cannot override an explicit deny).
///
/// An explicit `Deny` anywhere wins. Otherwise the request is allowed when the key policy
/// allows the caller directly, when a grant allows it, or when the key policy allows the
/// caller's account root and the identity policy allows the request.
pub fn decide(
    key_policy: Option<&Policy>,
    identity: Option<&Policy>,
    grants_allow: bool,
    req: &Request<'_>,
) -> Decision {
    debug_assert!(key_policy.is_none_or(|p| p.kind() == PolicyKind::Key));
    debug_assert!(identity.is_none_or(|p| p.kind() == PolicyKind::Identity));
    let key = key_policy.map(|p| p.evaluate_for(req));
    let identity = identity.map_or(Effect::NotApplicable, |p| p.evaluate(req));
    if identity == Effect::Deny || key.is_some_and(|k| k.explicit_deny) {
        return Decision::ExplicitDeny;
    }
    let identity_allows = identity == Effect::Allow;
    let allowed = grants_allow
        || match key {
            Some(k) => k.allow_direct || (k.allow_via_root && identity_allows),
            None => identity_allows,
        };
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}
