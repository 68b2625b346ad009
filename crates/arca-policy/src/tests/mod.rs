//! Policy-level tests: whole documents parsed and evaluated.

mod conditions;
mod decide;
mod elements;
mod examples;
mod malformed;
mod props;

use crate::{Context, Effect, Policy, PolicyError, PolicyKind, Request};

const ROOT: &str = "arn:aws:iam::111122223333:root";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const MALLORY: &str = "arn:aws:iam::444455556666:user/mallory";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER_KEY: &str =
    "arn:aws:kms:us-east-1:444455556666:key/0987dcba-09fe-87dc-65ba-ab0987654321";

fn key_policy(doc: &str) -> Policy {
    Policy::parse(doc, PolicyKind::Key).unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

fn identity(doc: &str) -> Policy {
    Policy::parse(doc, PolicyKind::Identity).unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

/// The message of a policy that must be malformed.
fn malformed(doc: &str, kind: PolicyKind) -> String {
    match Policy::parse(doc, kind) {
        Err(PolicyError::Malformed(m)) => m,
        other => panic!("expected Malformed, got {other:?}\n{doc}"),
    }
}

fn req<'a>(
    principal: &'a str,
    action: &'a str,
    resource: &'a str,
    ctx: &'a Context,
) -> Request<'a> {
    Request {
        principal,
        action,
        resource,
        context: ctx,
    }
}

/// A context from (key, value) pairs; a key may repeat to give several values.
fn ctx(pairs: &[(&str, &str)]) -> Context {
    let mut c = Context::new();
    for (k, v) in pairs {
        c.insert(k, *v);
    }
    c
}

/// Does an identity policy whose single Allow statement has this `Condition` allow
/// `kms:Encrypt` on [`KEY`] for [`ALICE`] in `ctx`?
fn holds(condition: &str, ctx: &Context) -> bool {
    let doc = format!(
        r#"{{"Version": "2012-10-17", "Statement": {{"Effect": "Allow", "Action": "kms:Encrypt",
            "Resource": "*", "Condition": {condition}}}}}"#
    );
    identity(&doc).evaluate(&req(ALICE, "kms:Encrypt", KEY, ctx)) == Effect::Allow
}
