//! Documents that must be refused, and what the message must name.

use super::*;
use crate::{MAX_POLICY_BYTES, MAX_STATEMENTS};

/// An identity policy with one statement made of `members` (a JSON object body).
fn id_statement(members: &str) -> String {
    format!(r#"{{"Version": "2012-10-17", "Statement": [{{"Sid": "AllowUse", {members}}}]}}"#)
}

/// An identity policy whose statement has this `Condition`.
fn id_condition(condition: &str) -> String {
    id_statement(&format!(
        r#""Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", "Condition": {condition}"#
    ))
}

fn assert_identity_malformed(doc: &str, needles: &[&str]) {
    let m = malformed(doc, PolicyKind::Identity);
    for n in needles {
        assert!(m.contains(n), "message {m:?} lacks {n:?}\n{doc}");
    }
}

#[test]
fn document_level() {
    for (doc, needle) in [
        ("", "invalid JSON"),
        ("{", "invalid JSON"),
        ("[]", "must be a JSON object, not a list"),
        ("\"x\"", "must be a JSON object"),
        (
            r#"{"Statement": [], "Extra": 1}"#,
            "unknown top-level element `Extra`",
        ),
        (
            r#"{"statement": []}"#,
            "unknown top-level element `statement`",
        ),
        (
            r#"{"Version": "2012-10-18", "Statement": []}"#,
            "`Version` must be",
        ),
        (
            r#"{"Version": 2012, "Statement": []}"#,
            "`Version` must be a string",
        ),
        (r#"{"Id": 5, "Statement": []}"#, "`Id` must be a string"),
        (r#"{"Version": "2012-10-17"}"#, "missing `Statement`"),
        (r#"{"Statement": []}"#, "`Statement` is an empty list"),
        (
            r#"{"Statement": "x"}"#,
            "`Statement` must be an object or a list",
        ),
        (
            r#"{"Statement": ["x"]}"#,
            "a statement must be an object, not a string in statement 1",
        ),
        (
            r#"{"Statement": {"Effect": "Allow", "Effect": "Deny"}}"#,
            "duplicate member `Effect`",
        ),
        (
            r#"{"Statement": {"Sid": "A", "Sid": "B", "Effect": "Allow"}}"#,
            "duplicate member `Sid`",
        ),
        (
            r#"{"Statement": {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"StringEquals": {"aws:username": "a", "aws:username": "b"}}}}"#,
            "duplicate member `aws:username`",
        ),
        (
            r#"{"Statement": {"Sid": 1, "Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}}"#,
            "`Sid` must be a string, not a number in statement 1",
        ),
    ] {
        assert_identity_malformed(doc, &[needle]);
    }
}

#[test]
fn statement_elements() {
    for (members, needle) in [
        (
            r#""Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", "Foo": 1"#,
            "unknown element `Foo`",
        ),
        (
            r#""Action": "kms:Encrypt", "Resource": "*""#,
            "missing `Effect`",
        ),
        (
            r#""Effect": "allow", "Action": "kms:Encrypt", "Resource": "*""#,
            "`Effect` must be `Allow` or `Deny`, not `allow`",
        ),
        (
            r#""Effect": true, "Action": "kms:Encrypt", "Resource": "*""#,
            "`Effect` must be a string",
        ),
        (
            r#""Effect": "Allow", "Resource": "*""#,
            "missing `Action` (or `NotAction`)",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Encrypt", "NotAction": "kms:Decrypt", "Resource": "*""#,
            "both `Action` and `NotAction`",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Encrypt""#,
            "missing `Resource` (or `NotResource`)",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", "NotResource": "*""#,
            "both `Resource` and `NotResource`",
        ),
        (
            r#""Effect": "Allow", "Action": [], "Resource": "*""#,
            "`Action` must be a string or a non-empty list",
        ),
        (
            r#""Effect": "Allow", "Action": ["kms:Encrypt", 3], "Resource": "*""#,
            "`Action` must be",
        ),
        (
            r#""Effect": "Allow", "NotAction": {}, "Resource": "*""#,
            "`NotAction` must be",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Encrpyt", "Resource": "*""#,
            "unknown action `kms:Encrpyt`",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Nothing*", "Resource": "*""#,
            "`kms:Nothing*` matches no known action",
        ),
        (
            r#""Effect": "Allow", "Action": "s3:*", "Resource": "*""#,
            "unknown service prefix `s3`",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Encrypt", "Resource": "key/*""#,
            "resource `key/*` is neither",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Encrypt", "Resource": "arn:aws:kms:*""#,
            "resource `arn:aws:kms:*` is neither",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Encrypt", "Resource": ["*", null]"#,
            "`Resource` must be",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", "Principal": "*""#,
            "identity policies cannot have `Principal`",
        ),
        (
            r#""Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*", "NotPrincipal": {"AWS": "*"}"#,
            "identity policies cannot have",
        ),
    ] {
        assert_identity_malformed(&id_statement(members), &[needle, "in statement `AllowUse`"]);
    }
}

#[test]
fn key_policy_principals() {
    let no_principal =
        r#"{"Statement": {"Sid": "S", "Effect": "Allow", "Action": "kms:*", "Resource": "*"}}"#;
    let m = malformed(no_principal, PolicyKind::Key);
    assert!(
        m.contains("missing `Principal` (or `NotPrincipal`) in statement `S`"),
        "{m}"
    );
    let both = r#"{"Statement": {"Effect": "Allow", "Principal": "*", "NotPrincipal": "*", "Action": "kms:*", "Resource": "*"}}"#;
    let m = malformed(both, PolicyKind::Key);
    assert!(
        m.contains("both `Principal` and `NotPrincipal` in statement 1"),
        "{m}"
    );
    let bad = r#"{"Statement": {"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "kms:*", "Resource": "*"}}"#;
    let m = malformed(bad, PolicyKind::Key);
    assert!(m.contains("principal `bob` is neither"), "{m}");
    let federated = r#"{"Statement": {"Effect": "Allow", "Principal": {"Federated": "x"}, "Action": "kms:*", "Resource": "*"}}"#;
    let m = malformed(federated, PolicyKind::Key);
    assert!(m.contains("unsupported principal type `Federated`"), "{m}");
}

#[test]
fn conditions() {
    for (condition, needles) in [
        (
            r#"{"StringEqualz": {"aws:username": "a"}}"#,
            &["unknown condition operator `StringEqualz`"][..],
        ),
        (
            r#"{"ForSomeValues:StringEquals": {"aws:username": "a"}}"#,
            &["unknown condition operator `ForSomeValues:StringEquals`"],
        ),
        (
            r#"{"BinaryEquals": {"aws:username": "a"}}"#,
            &["unknown condition operator `BinaryEquals`"],
        ),
        (
            r#"{"StringEquals": {"kms:EncryptionContextt": "a"}}"#,
            &["unknown condition key `kms:EncryptionContextt`"],
        ),
        (
            r#"{"StringEquals": {"kms:EncryptionContext:": "a"}}"#,
            &["unknown condition key `kms:EncryptionContext:`"],
        ),
        (
            r#"{"StringEquals": {"aws:PrincipalTag/team": "a"}}"#,
            &["unknown condition key `aws:PrincipalTag/team`"],
        ),
        (
            r#"{"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": "seven"}}"#,
            &[
                "`seven` is not a number",
                "`kms:ScheduleKeyDeletionPendingWindowInDays`",
                "`NumericLessThan`",
            ],
        ),
        (
            r#"{"DateLessThan": {"aws:CurrentTime": "yesterday"}}"#,
            &["`yesterday` is not a date"],
        ),
        (
            r#"{"DateLessThan": {"aws:CurrentTime": "2026-01-02T03:04:05"}}"#,
            &["is not a date"],
        ),
        (
            r#"{"Bool": {"aws:SecureTransport": "yes"}}"#,
            &["`yes` is not `true` or `false`"],
        ),
        (
            r#"{"Bool": {"aws:SecureTransport": 1}}"#,
            &["`1` is not `true` or `false`"],
        ),
        (
            r#"{"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}"#,
            &["`10.0.0.0/33` is not an IP address or CIDR range"],
        ),
        (
            r#"{"ArnLike": {"aws:PrincipalArn": "user/*"}}"#,
            &["`user/*` is not an ARN"],
        ),
        (
            r#"{"Null": {"aws:username": "maybe"}}"#,
            &["`maybe` is not `true` or `false`"],
        ),
        (
            r#"{"Bool": {"kms:EncryptionContext:Dept": "true"}}"#,
            &["`Bool` cannot be used with `kms:EncryptionContext:Dept` (a string key)"],
        ),
        (
            r#"{"NumericEquals": {"aws:CurrentTime": "5"}}"#,
            &["cannot be used with `aws:CurrentTime`"],
        ),
        (
            r#"{"IpAddress": {"aws:username": "10.0.0.1"}}"#,
            &["cannot be used with `aws:username`"],
        ),
        (
            r#"{"ArnLike": {"aws:username": "arn:aws:iam::111122223333:user/*"}}"#,
            &["cannot be used with `aws:username`"],
        ),
        (
            r#"{"NullIfExists": {"aws:username": "true"}}"#,
            &["`NullIfExists`", "no `IfExists`"],
        ),
        (
            r#"{"ForAllValues:Null": {"aws:username": "true"}}"#,
            &["`ForAllValues:Null`"],
        ),
        (r#"{}"#, &["`Condition` is empty"]),
        (r#"[]"#, &["`Condition` must be an object, not a list"]),
        (r#"{"StringEquals": {}}"#, &["`StringEquals` has no keys"]),
        (
            r#"{"StringEquals": "aws:username"}"#,
            &["`StringEquals` must map to an object"],
        ),
        (
            r#"{"StringEquals": {"aws:username": []}}"#,
            &["not an empty list"],
        ),
        (r#"{"StringEquals": {"aws:username": null}}"#, &["not null"]),
        (
            r#"{"StringEquals": {"aws:username": {"a": "b"}}}"#,
            &["not an object"],
        ),
        (
            r#"{"StringEquals": {"aws:username": [["a"]]}}"#,
            &["not a list"],
        ),
        (
            r#"{"StringEquals": {"aws:username": "${aws:username, 'x'}"}}"#,
            &["default values"],
        ),
        (
            r#"{"StringEquals": {"aws:username": "${aws:nope}"}}"#,
            &["unknown policy variable `${aws:nope}`"],
        ),
        (
            r#"{"StringEquals": {"aws:username": "${aws:TagKeys}"}}"#,
            &["multivalued"],
        ),
        (
            r#"{"NumericEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": "${aws:username}"}}"#,
            &["policy variables are only supported by string and ARN operators"],
        ),
    ] {
        let mut all = needles.to_vec();
        all.push("in statement `AllowUse`");
        assert_identity_malformed(&id_condition(condition), &all);
    }
}

#[test]
fn policy_variables_need_the_2012_version() {
    for version in [r#""Version": "2008-10-17","#, ""] {
        let doc = format!(
            r#"{{{version} "Statement": {{"Effect": "Allow", "Action": "kms:Encrypt",
                "Resource": "arn:aws:kms:*:111122223333:key/${{aws:username}}"}}}}"#
        );
        assert_identity_malformed(&doc, &["needs \"Version\": \"2012-10-17\"", "statement 1"]);
    }
    let doc =
        r#"{"Statement": {"Effect": "Allow", "Action": "kms:${aws:username}", "Resource": "*"}}"#;
    assert_identity_malformed(doc, &["policy variables are not allowed in actions"]);
}

#[test]
fn statements_are_labelled_by_position_without_a_sid() {
    let doc = r#"{"Statement": [
        {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"},
        {"Effect": "Allow", "Action": "kms:Encrpyt", "Resource": "*"}]}"#;
    assert_identity_malformed(doc, &["unknown action `kms:Encrpyt` in statement 2"]);
}

#[test]
fn sids_are_unique() {
    let doc = r#"{"Statement": [
        {"Sid": "A", "Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"},
        {"Sid": "A", "Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}]}"#;
    assert_identity_malformed(doc, &["duplicate Sid `A`"]);
}

#[test]
fn size_limit() {
    let base = r#"{"Statement": {"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*"}}"#;
    let at_limit = format!("{base}{}", " ".repeat(MAX_POLICY_BYTES - base.len()));
    assert_eq!(at_limit.len(), MAX_POLICY_BYTES);
    assert!(Policy::parse(&at_limit, PolicyKind::Identity).is_ok());
    let over = format!("{at_limit} ");
    assert_eq!(
        Policy::parse(&over, PolicyKind::Identity),
        Err(PolicyError::TooLarge {
            size: MAX_POLICY_BYTES + 1,
            max: MAX_POLICY_BYTES
        })
    );
    // The limit counts bytes, not characters.
    let wide = format!(
        r#"{{"Id": "{}", "Statement": []}}"#,
        "é".repeat(MAX_POLICY_BYTES / 2)
    );
    assert!(matches!(
        Policy::parse(&wide, PolicyKind::Identity),
        Err(PolicyError::TooLarge { .. })
    ));
}

#[test]
fn statement_count_limit() {
    let one = r#"{"Effect":"Deny","Action":"*","Resource":"*"}"#;
    let doc = |n: usize| format!(r#"{{"Statement":[{}]}}"#, vec![one; n].join(","));
    assert!(
        doc(MAX_STATEMENTS + 1).len() <= MAX_POLICY_BYTES,
        "test must not hit the size limit"
    );
    assert!(Policy::parse(&doc(MAX_STATEMENTS), PolicyKind::Identity).is_ok());
    assert_identity_malformed(
        &doc(MAX_STATEMENTS + 1),
        &[&format!("at most {MAX_STATEMENTS}")],
    );
}

#[test]
fn error_display() {
    let e = Policy::parse("{}", PolicyKind::Key).unwrap_err();
    assert_eq!(e.to_string(), "malformed policy: missing `Statement`");
    let e = PolicyError::TooLarge {
        size: 40000,
        max: MAX_POLICY_BYTES,
    };
    assert_eq!(
        e.to_string(),
        "policy document is 40000 bytes; the limit is 32768"
    );
}
