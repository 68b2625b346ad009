//! Statement elements: Action, Resource, Principal and their `Not` forms.

use super::*;

fn allow_alice(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version": "2012-10-17", "Statement": [{{"Effect": "Allow",
            "Principal": {{"AWS": "{ALICE}"}}, "Action": {action}, "Resource": {resource}}}]}}"#
    )
}

#[test]
fn statement_as_object_or_list_means_the_same() {
    let body = r#"{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}"#;
    let one = identity(&format!(r#"{{"Statement": {body}}}"#));
    let list = identity(&format!(r#"{{"Statement": [{body}]}}"#));
    assert_eq!(one, list);
    assert_eq!(one.statement_count(), 1);
    let c = Context::new();
    assert_eq!(
        one.evaluate(&req(ALICE, "kms:Encrypt", KEY, &c)),
        Effect::Allow
    );
    assert_eq!(
        one.evaluate(&req(ALICE, "kms:Decrypt", KEY, &c)),
        Effect::NotApplicable
    );
}

#[test]
fn top_level_members() {
    let p = identity(
        r#"{"Version": "2008-10-17", "Id": "my-policy",
            "Statement": {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}}"#,
    );
    assert_eq!(p.id(), Some("my-policy"));
    assert_eq!(p.kind(), PolicyKind::Identity);
    let p =
        identity(r#"{"Statement": {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}}"#);
    assert_eq!(p.id(), None);
}

#[test]
fn action_wildcards_ignore_case() {
    let p = key_policy(&allow_alice(
        r#"["kms:Get*", "KMS:describekey", "arca:List*"]"#,
        r#""*""#,
    ));
    let c = Context::new();
    let allowed = |a: &str| p.evaluate(&req(ALICE, a, KEY, &c)) == Effect::Allow;
    assert!(allowed("kms:GetKeyPolicy"));
    assert!(allowed("kms:GetPublicKey"));
    assert!(allowed("kms:DescribeKey"));
    assert!(allowed("kms:describekey"));
    assert!(allowed("arca:ListKeyVersions"));
    assert!(!allowed("kms:Encrypt"));
    assert!(!allowed("arca:CreateKeyVersion"));
    assert!(!allowed("kms:ListKeys"));

    let p = key_policy(&allow_alice(r#""*""#, r#""*""#));
    assert!(p.allows(ALICE, "arca:AdvanceClock", "*", &c));
    assert!(p.allows(ALICE, "kms:Sign", KEY, &c));
    assert!(!p.allows(BOB, "kms:Sign", KEY, &c));
}

#[test]
fn not_action() {
    // Everything except key deletion and policy changes.
    let p = identity(
        r#"{"Statement": {"Effect": "Allow", "NotAction": ["kms:ScheduleKeyDeletion", "kms:Put*"],
            "Resource": "*"}}"#,
    );
    let c = Context::new();
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Encrypt", KEY, &c)),
        Effect::Allow
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "arca:AddNode", "*", &c)),
        Effect::Allow
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:ScheduleKeyDeletion", KEY, &c)),
        Effect::NotApplicable
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:PutKeyPolicy", KEY, &c)),
        Effect::NotApplicable
    );
}

#[test]
fn resources_match_segment_by_segment() {
    let p = identity(
        r#"{"Statement": {"Effect": "Allow", "Action": "kms:*",
            "Resource": ["arn:aws:kms:*:111122223333:key/*", "arn:aws:kms:us-east-1:444455556666:key/0987*"]}}"#,
    );
    let c = Context::new();
    let allowed = |r: &str| p.evaluate(&req(ALICE, "kms:Encrypt", r, &c)) == Effect::Allow;
    assert!(allowed(KEY));
    assert!(allowed("arn:aws:kms:eu-west-1:111122223333:key/x"));
    assert!(allowed(OTHER_KEY));
    assert!(!allowed("arn:aws:kms:us-east-1:444455556666:key/1234"));
    assert!(!allowed("arn:aws:kms:us-east-1:111122223333:alias/x"));
    assert!(
        !allowed("arn:aws:KMS:us-east-1:111122223333:key/x"),
        "case-sensitive"
    );
    assert!(
        !allowed("*"),
        "an account-level request needs Resource \"*\""
    );
}

#[test]
fn not_resource() {
    let p = identity(&format!(
        r#"{{"Statement": {{"Effect": "Deny", "Action": "kms:*", "NotResource": "{KEY}"}}}}"#
    ));
    let c = Context::new();
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Encrypt", KEY, &c)),
        Effect::NotApplicable
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Encrypt", OTHER_KEY, &c)),
        Effect::Deny
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:ListKeys", "*", &c)),
        Effect::Deny
    );
}

#[test]
fn resource_with_policy_variable() {
    let p = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kms:Encrypt",
            "Resource": "arn:aws:kms:*:${aws:PrincipalAccount}:key/*"}}"#,
    );
    let mut own = Context::new();
    own.insert_principal(ALICE);
    let mut foreign = Context::new();
    foreign.insert_principal(MALLORY);
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Encrypt", KEY, &own)),
        Effect::Allow
    );
    assert_eq!(
        p.evaluate(&req(MALLORY, "kms:Encrypt", KEY, &foreign)),
        Effect::NotApplicable
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Encrypt", KEY, &Context::new())),
        Effect::NotApplicable,
        "unresolved variable matches nothing"
    );
}

#[test]
fn principals() {
    let c = Context::new();
    let p = key_policy(
        r#"{"Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"}}"#,
    );
    assert!(p.allows(MALLORY, "kms:Encrypt", KEY, &c));
    let p = key_policy(&format!(
        r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"AWS": ["{ALICE}", "{BOB}"],
            "Service": "logs.amazonaws.com"}}, "Action": "kms:Encrypt", "Resource": "*"}}}}"#
    ));
    assert!(p.allows(ALICE, "kms:Encrypt", KEY, &c));
    assert!(p.allows(BOB, "kms:Encrypt", KEY, &c));
    assert!(!p.allows(ROOT, "kms:Encrypt", KEY, &c));
    assert!(!p.allows(
        "arn:aws:iam::111122223333:user/carol",
        "kms:Encrypt",
        KEY,
        &c
    ));
    assert!(!p.allows("logs.amazonaws.com", "kms:Encrypt", KEY, &c));
}

#[test]
fn not_principal() {
    // Deny everyone but the break-glass user.
    let p = key_policy(&format!(
        r#"{{"Statement": [
            {{"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"}},
            {{"Effect": "Deny", "NotPrincipal": {{"AWS": "{ALICE}"}},
              "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}}]}}"#
    ));
    let c = Context::new();
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:ScheduleKeyDeletion", KEY, &c)),
        Effect::Allow
    );
    assert_eq!(
        p.evaluate(&req(BOB, "kms:ScheduleKeyDeletion", KEY, &c)),
        Effect::Deny
    );
    assert_eq!(
        p.evaluate(&req(ROOT, "kms:ScheduleKeyDeletion", KEY, &c)),
        Effect::Deny
    );
    assert_eq!(p.evaluate(&req(BOB, "kms:Encrypt", KEY, &c)), Effect::Allow);

    // A root entry in NotPrincipal excludes the root caller only.
    let p = key_policy(
        r#"{"Statement": {"Effect": "Deny", "NotPrincipal": {"AWS": "111122223333"},
            "Action": "kms:*", "Resource": "*"}}"#,
    );
    assert_eq!(
        p.evaluate(&req(ROOT, "kms:Encrypt", KEY, &c)),
        Effect::NotApplicable
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Encrypt", KEY, &c)),
        Effect::Deny
    );
}

#[test]
fn statement_conditions_gate_the_statement() {
    let p = key_policy(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Deny", "Principal": "*",
            "Action": "kms:*", "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}}"#,
    );
    let plain = ctx(&[("aws:SecureTransport", "false")]);
    let tls = ctx(&[("aws:SecureTransport", "true")]);
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Decrypt", KEY, &plain)),
        Effect::Deny
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Decrypt", KEY, &tls)),
        Effect::NotApplicable
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Decrypt", KEY, &Context::new())),
        Effect::NotApplicable,
        "Bool on an absent key is false"
    );
}

#[test]
fn default_key_policy_parses_and_delegates() {
    let doc = crate::default_key_policy("111122223333");
    let v: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert_eq!(v["Statement"][0]["Sid"], "Enable IAM User Permissions");
    assert_eq!(v["Statement"][0]["Principal"]["AWS"], ROOT);
    assert_eq!(
        v["Statement"][0]["Action"],
        serde_json::json!(["kms:*", "arca:*"])
    );
    assert_eq!(v["Statement"][0]["Resource"], "*");
    let p = key_policy(&doc);
    let c = Context::new();
    // Arca's key-version operations are delegated like AWS's.
    assert!(
        p.evaluate_for(&req(ALICE, "arca:CreateKeyVersion", KEY, &c))
            .allow_via_root
    );
    assert_eq!(
        p.evaluate(&req(ROOT, "kms:PutKeyPolicy", KEY, &c)),
        Effect::Allow
    );
    let d = p.evaluate_for(&req(ALICE, "kms:Encrypt", KEY, &c));
    assert_eq!(
        d,
        crate::KeyPolicyDecision {
            explicit_deny: false,
            allow_direct: false,
            allow_via_root: true
        }
    );
    assert_eq!(
        p.evaluate(&req(ALICE, "kms:Encrypt", KEY, &c)),
        Effect::NotApplicable
    );
    assert_eq!(
        p.evaluate_for(&req(MALLORY, "kms:Encrypt", KEY, &c)),
        crate::KeyPolicyDecision::default()
    );
    // Arca's own actions are named beside `kms:*`.
    assert_eq!(
        p.evaluate(&req(ROOT, "arca:CreateKeyVersion", KEY, &c)),
        Effect::Allow
    );
}
