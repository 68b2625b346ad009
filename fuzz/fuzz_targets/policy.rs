//! Key and identity policy documents: parsing refuses or accepts, never
//! panics; an accepted policy is evaluated for a few requests without
//! panicking, and an explicit Deny of everything always wins.
#![no_main]

use arca_policy::{decide, Context, Decision, Policy, PolicyKind, Request};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = std::str::from_utf8(data) else {
        return;
    };
    let mut ctx = Context::new();
    ctx.insert_principal("arn:aws:iam::111122223333:user/app");
    ctx.insert("aws:SourceIp", "10.0.0.1");
    ctx.insert("aws:CurrentTime", "2026-01-01T00:00:00Z");
    ctx.insert_encryption_context([("dept", "finance")]);
    let requests = [
        ("kms:Encrypt", "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000000"),
        ("kms:CreateKey", "*"),
        ("arca:CreateAccessKey", "arn:aws:iam::111122223333:user/app"),
    ];
    let deny_all = Policy::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#,
        PolicyKind::Identity,
    )
    .expect("a valid policy");
    for kind in [PolicyKind::Key, PolicyKind::Identity] {
        let Ok(p) = Policy::parse(doc, kind) else {
            continue;
        };
        for (action, resource) in requests {
            let req = Request {
                principal: "arn:aws:iam::111122223333:user/app",
                action,
                resource,
                context: &ctx,
            };
            let (key, identity) = match kind {
                PolicyKind::Key => (Some(&p), None),
                PolicyKind::Identity => (None, Some(&p)),
            };
            let _ = decide(key, identity, true, &req);
            if kind == PolicyKind::Key {
                assert_eq!(
                    decide(Some(&p), Some(&deny_all), true, &req),
                    Decision::ExplicitDeny
                );
            }
        }
    }
});
