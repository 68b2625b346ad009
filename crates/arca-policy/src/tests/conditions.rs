//! Condition operators, qualifiers, `IfExists`, `Null` and missing keys.

use super::*;

const EMPTY: &[(&str, &str)] = &[];

/// An operator, its policy value, and (request value, expected outcome) pairs.
type Cases<'a> = &'a [(&'a str, &'a str, &'a [(&'a str, bool)])];

#[test]
fn string_equals_is_exact_and_ors_values() {
    let c = r#"{"StringEquals": {"kms:EncryptionAlgorithm": ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]}}"#;
    assert!(holds(
        c,
        &ctx(&[("kms:EncryptionAlgorithm", "RSAES_OAEP_SHA_256")])
    ));
    assert!(holds(
        c,
        &ctx(&[("kms:EncryptionAlgorithm", "RSAES_OAEP_SHA_1")])
    ));
    assert!(!holds(
        c,
        &ctx(&[("kms:EncryptionAlgorithm", "rsaes_oaep_sha_256")])
    ));
    assert!(!holds(
        c,
        &ctx(&[("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")])
    ));
    assert!(!holds(c, &ctx(EMPTY)), "absent key never matches");
    // Wildcards are literal under StringEquals.
    let c = r#"{"StringEquals": {"aws:username": "a*"}}"#;
    assert!(!holds(c, &ctx(&[("aws:username", "alice")])));
    assert!(holds(c, &ctx(&[("aws:username", "a*")])));
}

#[test]
fn string_not_equals() {
    let c = r#"{"StringNotEquals": {"kms:ViaService": ["ec2.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com"]}}"#;
    assert!(holds(
        c,
        &ctx(&[("kms:ViaService", "rds.us-east-1.amazonaws.com")])
    ));
    assert!(!holds(
        c,
        &ctx(&[("kms:ViaService", "s3.us-east-1.amazonaws.com")])
    ));
    // AWS: a negated operator holds when the key is missing.
    assert!(holds(c, &ctx(EMPTY)));
    // Without a qualifier, a multivalued key fails if any of its values matches.
    let two = ctx(&[
        ("kms:ViaService", "rds.us-east-1.amazonaws.com"),
        ("kms:ViaService", "s3.us-east-1.amazonaws.com"),
    ]);
    assert!(!holds(c, &two));
}

#[test]
fn ignore_case_operators() {
    let c = r#"{"StringEqualsIgnoreCase": {"aws:username": "Alice"}}"#;
    assert!(holds(c, &ctx(&[("aws:username", "ALICE")])));
    assert!(!holds(c, &ctx(&[("aws:username", "alicia")])));
    assert!(!holds(c, &ctx(EMPTY)));
    let c = r#"{"StringNotEqualsIgnoreCase": {"aws:username": "Alice"}}"#;
    assert!(!holds(c, &ctx(&[("aws:username", "aLiCe")])));
    assert!(holds(c, &ctx(&[("aws:username", "bob")])));
    assert!(holds(c, &ctx(EMPTY)));
}

#[test]
fn string_like_and_not_like() {
    let c = r#"{"StringLike": {"kms:RequestAlias": ["alias/app-*", "alias/db-??"]}}"#;
    assert!(holds(c, &ctx(&[("kms:RequestAlias", "alias/app-prod")])));
    assert!(holds(c, &ctx(&[("kms:RequestAlias", "alias/db-01")])));
    assert!(!holds(c, &ctx(&[("kms:RequestAlias", "alias/db-001")])));
    assert!(
        !holds(c, &ctx(&[("kms:RequestAlias", "alias/App-prod")])),
        "case-sensitive"
    );
    assert!(!holds(c, &ctx(EMPTY)));
    let c = r#"{"StringNotLike": {"kms:RequestAlias": "alias/test-*"}}"#;
    assert!(holds(c, &ctx(&[("kms:RequestAlias", "alias/prod")])));
    assert!(!holds(c, &ctx(&[("kms:RequestAlias", "alias/test-1")])));
    assert!(holds(c, &ctx(EMPTY)));
}

#[test]
fn numeric_operators() {
    let days = |n: &str| ctx(&[("kms:ScheduleKeyDeletionPendingWindowInDays", n)]);
    let cases: Cases<'_> = &[
        (
            "NumericEquals",
            "30",
            &[("30", true), ("30.0", true), ("29", false), ("x", false)],
        ),
        (
            "NumericNotEquals",
            "30",
            &[("30", false), ("29", true), ("x", true)],
        ),
        (
            "NumericLessThan",
            "30",
            &[("29", true), ("30", false), ("31", false), ("-5", true)],
        ),
        (
            "NumericLessThanEquals",
            "30",
            &[("29.9", true), ("30", true), ("30.1", false)],
        ),
        (
            "NumericGreaterThan",
            "7",
            &[("8", true), ("7", false), ("6", false)],
        ),
        (
            "NumericGreaterThanEquals",
            "7",
            &[("7", true), ("7.5", true), ("6.99", false)],
        ),
    ];
    for (op, value, checks) in cases {
        // Policy values may be JSON strings or JSON numbers.
        for policy_value in [format!("\"{value}\""), value.to_string()] {
            let c = format!(
                r#"{{"{op}": {{"kms:ScheduleKeyDeletionPendingWindowInDays": {policy_value}}}}}"#
            );
            for (request, expected) in *checks {
                assert_eq!(
                    holds(&c, &days(request)),
                    *expected,
                    "{op} {value} vs {request}"
                );
            }
        }
    }
    assert!(!holds(
        r#"{"NumericLessThan": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#,
        &ctx(EMPTY)
    ));
    assert!(holds(
        r#"{"NumericNotEquals": {"kms:ScheduleKeyDeletionPendingWindowInDays": 30}}"#,
        &ctx(EMPTY)
    ));
}

#[test]
fn date_operators() {
    let now = |t: &str| ctx(&[("aws:CurrentTime", t)]);
    let cases: &[(&str, &[(&str, bool)])] = &[
        (
            "DateEquals",
            &[
                ("2026-01-02T03:04:05Z", true),
                ("2026-01-02T05:04:05+02:00", true),
                ("2026-01-02T03:04:06Z", false),
            ],
        ),
        (
            "DateNotEquals",
            &[
                ("2026-01-02T03:04:05Z", false),
                ("2026-01-02T03:04:06Z", true),
            ],
        ),
        (
            "DateLessThan",
            &[
                ("2026-01-02T03:04:04Z", true),
                ("2026-01-02T03:04:05Z", false),
                ("2026-01-01", true),
            ],
        ),
        (
            "DateLessThanEquals",
            &[
                ("2026-01-02T03:04:05Z", true),
                ("2026-01-02T03:04:05.001Z", false),
            ],
        ),
        (
            "DateGreaterThan",
            &[
                ("2026-01-02T03:04:05.001Z", true),
                ("2026-01-02T03:04:05Z", false),
                ("2027-01-01", true),
            ],
        ),
        (
            "DateGreaterThanEquals",
            &[
                ("2026-01-02T03:04:05Z", true),
                ("2026-01-02T03:04:04Z", false),
            ],
        ),
    ];
    for (op, checks) in cases {
        let c = format!(r#"{{"{op}": {{"aws:CurrentTime": "2026-01-02T03:04:05Z"}}}}"#);
        for (request, expected) in *checks {
            assert_eq!(holds(&c, &now(request)), *expected, "{op} vs {request}");
        }
        // An unparseable request value matches nothing, so only the negated form holds.
        assert_eq!(holds(&c, &now("not a date")), op.contains("Not"), "{op}");
    }
    // Epoch seconds on either side; aws:EpochTime also takes numeric operators.
    let c = r#"{"DateLessThan": {"aws:EpochTime": 1767323045}}"#;
    assert!(holds(c, &ctx(&[("aws:EpochTime", "1767323044")])));
    assert!(!holds(c, &ctx(&[("aws:EpochTime", "1767323045")])));
    let c = r#"{"NumericGreaterThan": {"aws:EpochTime": 1767323045}}"#;
    assert!(holds(c, &ctx(&[("aws:EpochTime", "1767323046")])));
    let c = r#"{"DateGreaterThan": {"kms:ValidTo": "2026-01-02"}}"#;
    assert!(holds(c, &ctx(&[("kms:ValidTo", "1767312001")])));
    assert!(!holds(c, &ctx(&[("kms:ValidTo", "1767312000")])));
    assert!(!holds(c, &ctx(EMPTY)));
}

#[test]
fn bool_operator() {
    for policy_value in [r#""true""#, "true", r#""TRUE""#] {
        let c = format!(r#"{{"Bool": {{"aws:SecureTransport": {policy_value}}}}}"#);
        assert!(holds(&c, &ctx(&[("aws:SecureTransport", "true")])), "{c}");
        assert!(holds(&c, &ctx(&[("aws:SecureTransport", "True")])), "{c}");
        assert!(!holds(&c, &ctx(&[("aws:SecureTransport", "false")])), "{c}");
        assert!(!holds(&c, &ctx(&[("aws:SecureTransport", "yes")])), "{c}");
        assert!(!holds(&c, &ctx(EMPTY)), "{c}");
    }
    let c = r#"{"BoolIfExists": {"aws:SecureTransport": "true"}}"#;
    assert!(holds(c, &ctx(EMPTY)));
    assert!(!holds(c, &ctx(&[("aws:SecureTransport", "false")])));
}

#[test]
fn ip_operators() {
    let c = r#"{"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}"#;
    assert!(holds(c, &ctx(&[("aws:SourceIp", "203.0.113.7")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "2001:db8:0:1::5")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "198.51.100.1")])));
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "garbage")])));
    assert!(!holds(c, &ctx(EMPTY)));
    let c = r#"{"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}}"#;
    assert!(!holds(c, &ctx(&[("aws:SourceIp", "203.0.113.7")])));
    assert!(holds(c, &ctx(&[("aws:SourceIp", "198.51.100.1")])));
    assert!(holds(c, &ctx(EMPTY)));
}

#[test]
fn arn_operators() {
    for op in ["ArnLike", "ArnEquals"] {
        let c =
            format!(r#"{{"{op}": {{"aws:PrincipalArn": "arn:aws:iam::111122223333:user/*"}}}}"#);
        assert!(holds(&c, &ctx(&[("aws:PrincipalArn", ALICE)])), "{op}");
        assert!(!holds(&c, &ctx(&[("aws:PrincipalArn", ROOT)])), "{op}");
        assert!(!holds(&c, &ctx(&[("aws:PrincipalArn", MALLORY)])), "{op}");
        assert!(
            !holds(&c, &ctx(&[("aws:PrincipalArn", "user/alice")])),
            "{op}"
        );
        assert!(!holds(&c, &ctx(EMPTY)), "{op}");
    }
    // A wildcard stays inside its segment.
    let c = r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:root"}}"#;
    assert!(holds(c, &ctx(&[("aws:PrincipalArn", ROOT)])));
    assert!(!holds(
        c,
        &ctx(&[("aws:PrincipalArn", "arn:aws:iam::1:2:root")])
    ));
    for op in ["ArnNotLike", "ArnNotEquals"] {
        let c = format!(r#"{{"{op}": {{"aws:PrincipalArn": "arn:aws:iam::111122223333:*"}}}}"#);
        assert!(!holds(&c, &ctx(&[("aws:PrincipalArn", ALICE)])), "{op}");
        assert!(holds(&c, &ctx(&[("aws:PrincipalArn", MALLORY)])), "{op}");
        assert!(holds(&c, &ctx(EMPTY)), "{op}");
    }
}

#[test]
fn null_operator() {
    let absent = r#"{"Null": {"kms:EncryptionContextKeys": "true"}}"#;
    let present = r#"{"Null": {"kms:EncryptionContextKeys": false}}"#;
    let with_keys = ctx(&[("kms:EncryptionContextKeys", "Dept")]);
    assert!(holds(absent, &ctx(EMPTY)));
    assert!(!holds(absent, &with_keys));
    assert!(!holds(present, &ctx(EMPTY)));
    assert!(holds(present, &with_keys));
    // A key with no values is absent.
    let mut empty = Context::new();
    empty.insert_all("kms:EncryptionContextKeys", Vec::new());
    assert!(holds(absent, &empty));
    assert!(!holds(present, &empty));
}

#[test]
fn for_any_value() {
    let c = r#"{"ForAnyValue:StringEquals": {"aws:TagKeys": ["Owner", "Project"]}}"#;
    assert!(holds(
        c,
        &ctx(&[("aws:TagKeys", "Env"), ("aws:TagKeys", "Owner")])
    ));
    assert!(!holds(
        c,
        &ctx(&[("aws:TagKeys", "Env"), ("aws:TagKeys", "Cost")])
    ));
    assert!(
        !holds(c, &ctx(EMPTY)),
        "ForAnyValue is false for an absent key"
    );
    // Negated: some request value matches none of the policy values.
    let c = r#"{"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["Owner", "Project"]}}"#;
    assert!(holds(
        c,
        &ctx(&[("aws:TagKeys", "Owner"), ("aws:TagKeys", "Env")])
    ));
    assert!(!holds(
        c,
        &ctx(&[("aws:TagKeys", "Owner"), ("aws:TagKeys", "Project")])
    ));
    assert!(!holds(c, &ctx(EMPTY)));
}

#[test]
fn for_all_values() {
    let c = r#"{"ForAllValues:StringEquals": {"aws:TagKeys": ["Owner", "Project"]}}"#;
    assert!(holds(
        c,
        &ctx(&[("aws:TagKeys", "Owner"), ("aws:TagKeys", "Project")])
    ));
    assert!(holds(c, &ctx(&[("aws:TagKeys", "Owner")])));
    assert!(!holds(
        c,
        &ctx(&[("aws:TagKeys", "Owner"), ("aws:TagKeys", "Env")])
    ));
    assert!(
        holds(c, &ctx(EMPTY)),
        "ForAllValues is true for an absent key"
    );
    let mut empty = Context::new();
    empty.insert_all("aws:TagKeys", Vec::new());
    assert!(holds(c, &empty), "and for an empty one");
    // Negated: no request value matches any policy value.
    let c = r#"{"ForAllValues:StringNotLike": {"aws:TagKeys": "aws:*"}}"#;
    assert!(holds(
        c,
        &ctx(&[("aws:TagKeys", "Owner"), ("aws:TagKeys", "Env")])
    ));
    assert!(!holds(
        c,
        &ctx(&[("aws:TagKeys", "Owner"), ("aws:TagKeys", "aws:x")])
    ));
    assert!(holds(c, &ctx(EMPTY)));
}

#[test]
fn if_exists() {
    let c = r#"{"StringEqualsIfExists": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}"#;
    assert!(holds(c, &ctx(EMPTY)));
    assert!(holds(
        c,
        &ctx(&[("kms:ViaService", "s3.us-east-1.amazonaws.com")])
    ));
    assert!(!holds(
        c,
        &ctx(&[("kms:ViaService", "ec2.us-east-1.amazonaws.com")])
    ));
    let c = r#"{"StringNotEqualsIfExists": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}"#;
    assert!(holds(c, &ctx(EMPTY)));
    assert!(!holds(
        c,
        &ctx(&[("kms:ViaService", "s3.us-east-1.amazonaws.com")])
    ));
    let c = r#"{"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": "Owner"}}"#;
    assert!(
        holds(c, &ctx(EMPTY)),
        "IfExists overrides ForAnyValue's false"
    );
    assert!(!holds(c, &ctx(&[("aws:TagKeys", "Env")])));
    let c = r#"{"NumericLessThanIfExists": {"kms:ScheduleKeyDeletionPendingWindowInDays": 10}}"#;
    assert!(holds(c, &ctx(EMPTY)));
    assert!(!holds(
        c,
        &ctx(&[("kms:ScheduleKeyDeletionPendingWindowInDays", "30")])
    ));
}

#[test]
fn keys_and_operators_are_anded() {
    let c = r#"{
        "StringEquals": {"kms:EncryptionContext:Dept": "IT", "aws:username": "alice"},
        "Bool": {"aws:SecureTransport": "true"}
    }"#;
    let all = ctx(&[
        ("kms:EncryptionContext:Dept", "IT"),
        ("aws:username", "alice"),
        ("aws:SecureTransport", "true"),
    ]);
    assert!(holds(c, &all));
    let mut no_tls = all.clone();
    no_tls.insert("aws:SecureTransport", "false");
    // A second value is ORed on the request side: one "true" still matches.
    assert!(holds(c, &no_tls));
    let wrong_user = ctx(&[
        ("kms:EncryptionContext:Dept", "IT"),
        ("aws:username", "bob"),
        ("aws:SecureTransport", "true"),
    ]);
    assert!(!holds(c, &wrong_user));
    let insecure = ctx(&[
        ("kms:EncryptionContext:Dept", "IT"),
        ("aws:username", "alice"),
        ("aws:SecureTransport", "false"),
    ]);
    assert!(!holds(c, &insecure));
}

#[test]
fn encryption_context_conditions() {
    let c = r#"{"StringEquals": {"kms:EncryptionContext:Dept": "IT"}}"#;
    let mut it = Context::new();
    it.insert_encryption_context([("Dept", "IT"), ("Purpose", "Test")]);
    assert!(holds(c, &it));
    let mut finance = Context::new();
    finance.insert_encryption_context([("Dept", "Finance")]);
    assert!(!holds(c, &finance));
    assert!(!holds(c, &ctx(EMPTY)));
    // The context key in the condition key name is case-insensitive; the value is not.
    let lower = r#"{"StringEquals": {"kms:encryptioncontext:dept": "IT"}}"#;
    assert!(holds(lower, &it));
    let mut lower_value = Context::new();
    lower_value.insert_encryption_context([("Dept", "it")]);
    assert!(!holds(c, &lower_value));

    // Only these keys, and at least one of them (Null false rules out "no context").
    let c = r#"{
        "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["Dept", "Purpose"]},
        "Null": {"kms:EncryptionContextKeys": "false"}
    }"#;
    assert!(holds(c, &it));
    let mut extra = Context::new();
    extra.insert_encryption_context([("Dept", "IT"), ("Owner", "x")]);
    assert!(!holds(c, &extra));
    // EncryptionContextKeys keeps the key's case, so `dept` is not `Dept`.
    let mut wrong_case = Context::new();
    wrong_case.insert_encryption_context([("dept", "IT")]);
    assert!(!holds(c, &wrong_case));
    assert!(!holds(c, &ctx(EMPTY)));
}

#[test]
fn policy_variables_in_conditions() {
    let c = r#"{"StringEquals": {"aws:ResourceTag/Owner": "${aws:username}"}}"#;
    let mine = ctx(&[
        ("aws:ResourceTag/Owner", "alice"),
        ("aws:username", "alice"),
    ]);
    let theirs = ctx(&[("aws:ResourceTag/Owner", "bob"), ("aws:username", "alice")]);
    let anonymous = ctx(&[("aws:ResourceTag/Owner", "${aws:username}")]);
    assert!(holds(c, &mine));
    let mut twice = mine.clone();
    twice.insert("AWS:username", "alice");
    assert!(
        holds(c, &twice),
        "the same value inserted twice is one value"
    );
    let mut two_names = mine.clone();
    two_names.insert("aws:username", "alice2");
    assert!(
        !holds(c, &two_names),
        "a variable with two values matches nothing"
    );
    assert!(!holds(c, &theirs));
    assert!(
        !holds(c, &anonymous),
        "an unresolved variable matches nothing"
    );
    let c = r#"{"StringLike": {"kms:RequestAlias": "alias/${aws:username}-*"}}"#;
    assert!(holds(
        c,
        &ctx(&[
            ("kms:RequestAlias", "alias/alice-db"),
            ("aws:username", "alice")
        ])
    ));
    assert!(!holds(
        c,
        &ctx(&[
            ("kms:RequestAlias", "alias/bob-db"),
            ("aws:username", "alice")
        ])
    ));
    let c = r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:user/*"}}"#;
    let local = ctx(&[
        ("aws:PrincipalArn", ALICE),
        ("aws:PrincipalAccount", "111122223333"),
    ]);
    let foreign = ctx(&[
        ("aws:PrincipalArn", MALLORY),
        ("aws:PrincipalAccount", "111122223333"),
    ]);
    assert!(holds(c, &local));
    assert!(!holds(c, &foreign));
}
