//! Property tests: no input panics, and the small parsers agree with simple references.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;
use crate::date::Timestamp;
use crate::glob::{self, Tok};
use crate::number::Decimal;

const ACTIONS: &[&str] = &[
    "*",
    "kms:*",
    "kms:Encrypt",
    "kms:Get*",
    "arca:*",
    "kms:Encrpyt",
];
const RESOURCES: &[&str] = &["*", "arn:aws:kms:*:111122223333:key/*", KEY, "key/*"];
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotLike",
    "ForAllValues:StringEquals",
    "ForAnyValue:StringNotEqualsIfExists",
    "NumericLessThan",
    "DateGreaterThanEquals",
    "Bool",
    "IpAddress",
    "NotIpAddress",
    "ArnLike",
    "Null",
    "StringEqualz",
];
const KEYS: &[&str] = &[
    "kms:EncryptionContext:Dept",
    "kms:EncryptionContextKeys",
    "kms:ScheduleKeyDeletionPendingWindowInDays",
    "aws:CurrentTime",
    "aws:SecureTransport",
    "aws:SourceIp",
    "aws:PrincipalArn",
    "aws:username",
];
const VALUES: &[&str] = &[
    "IT",
    "Dept",
    "7",
    "2026-01-02T03:04:05Z",
    "true",
    "false",
    "10.0.0.0/8",
    "10.1.2.3",
    "arn:aws:iam::111122223333:user/*",
    ALICE,
    "${aws:username}",
    "*",
    "",
];

fn pick(list: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    proptest::sample::select(list)
}

/// One statement, mostly valid, sometimes not.
fn statement() -> impl Strategy<Value = (Value, bool)> {
    (
        pick(ACTIONS),
        pick(RESOURCES),
        proptest::option::of((
            pick(OPERATORS),
            pick(KEYS),
            prop::collection::vec(pick(VALUES), 1..3),
        )),
        any::<bool>(),
    )
        .prop_map(|(action, resource, condition, deny)| {
            let mut st = json!({
                "Effect": if deny { "Deny" } else { "Allow" },
                "Action": action,
                "Resource": resource,
            });
            if let Some((op, key, values)) = condition {
                st["Condition"] = json!({ op: { key: values } });
            }
            (st, deny)
        })
}

/// A request context built from the same vocabulary.
fn context() -> impl Strategy<Value = Context> {
    prop::collection::vec((pick(KEYS), pick(VALUES)), 0..6).prop_map(|pairs| {
        let mut c = Context::new();
        for (k, v) in pairs {
            c.insert(k, v);
        }
        c
    })
}

/// Reference wildcard matcher: plain recursion, fine for short inputs.
fn reference_glob(p: &[char], t: &[char]) -> bool {
    match p.split_first() {
        None => t.is_empty(),
        Some(('*', rest)) => (0..=t.len()).any(|i| reference_glob(rest, &t[i..])),
        Some(('?', rest)) => !t.is_empty() && reference_glob(rest, &t[1..]),
        Some((c, rest)) => t.first() == Some(c) && reference_glob(rest, &t[1..]),
    }
}

/// Reference day count since 1970-01-01 by walking years and months.
fn reference_days(year: i64, month: i64, day: i64) -> i64 {
    let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_len = |y: i64, m: i64| match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let years: i64 = (1970..year).map(|y| if leap(y) { 366 } else { 365 }).sum();
    let months: i64 = (1..month).map(|m| month_len(year, m)).sum();
    years + months + day - 1
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(doc in ".{0,300}") {
        let _ = Policy::parse(&doc, PolicyKind::Key);
        let _ = Policy::parse(&doc, PolicyKind::Identity);
    }

    #[test]
    fn arbitrary_bytes_as_policy_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let doc = String::from_utf8_lossy(&bytes);
        let _ = Policy::parse(&doc, PolicyKind::Identity);
    }

    /// Flipping a lone statement's effect flips the outcome: the evaluator treats Allow
    /// and Deny statements alike up to the effect.
    #[test]
    fn effect_flip_is_symmetric(
        (st, deny) in statement(),
        c in context(),
        action in pick(&["kms:Encrypt", "kms:GetPublicKey", "arca:AddNode"]),
        resource in pick(&[KEY, OTHER_KEY, "*"]),
    ) {
        let doc = json!({"Version": "2012-10-17", "Statement": [st.clone()]}).to_string();
        let mut flipped = st;
        flipped["Effect"] = json!(if deny { "Allow" } else { "Deny" });
        let flipped = json!({"Version": "2012-10-17", "Statement": [flipped]}).to_string();
        let a = Policy::parse(&doc, PolicyKind::Identity);
        let b = Policy::parse(&flipped, PolicyKind::Identity);
        prop_assert_eq!(a.is_ok(), b.is_ok());
        if let (Ok(a), Ok(b)) = (a, b) {
            let r = req(ALICE, action, resource, &c);
            let (ea, eb) = (a.evaluate(&r), b.evaluate(&r));
            let expected = match ea {
                Effect::Allow => Effect::Deny,
                Effect::Deny => Effect::Allow,
                Effect::NotApplicable => Effect::NotApplicable,
            };
            prop_assert_eq!(eb, expected);
        }
    }

    /// Key policies built from the vocabulary never panic in parsing or evaluation.
    #[test]
    fn key_policies_never_panic(
        sts in prop::collection::vec(statement(), 1..4),
        principal in pick(&["*", "111122223333", ALICE, "arn:aws:iam::111122223333:root", "bob"]),
        c in context(),
        caller in pick(&[ALICE, BOB, ROOT, MALLORY, "", "arn:"]),
    ) {
        let statements: Vec<Value> = sts
            .into_iter()
            .map(|(mut st, _)| {
                st["Principal"] = json!({"AWS": principal});
                st
            })
            .collect();
        let doc = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
        if let Ok(p) = Policy::parse(&doc, PolicyKind::Key) {
            let r = req(caller, "kms:Encrypt", KEY, &c);
            let d = p.evaluate_for(&r);
            // Only the account's own principals can be allowed through the root.
            prop_assert!(!d.allow_via_root || caller == ALICE || caller == BOB);
            let _ = crate::decide(Some(&p), None, false, &r);
        }
    }

    #[test]
    // Characters of one to four bytes: the matcher walks byte offsets.
    fn glob_agrees_with_reference(p in "[abé€🗝*?]{0,8}", t in "[abé€🗝]{0,10}") {
        let pc: Vec<char> = p.chars().collect();
        let tc: Vec<char> = t.chars().collect();
        prop_assert_eq!(glob::matches(&glob::compile(&p), &t), reference_glob(&pc, &tc));
    }

    #[test]
    fn glob_literal_matches_itself(t in "[^*?]{0,40}") {
        prop_assert!(glob::matches(&glob::compile(&t), &t));
        let literal: Vec<Tok> = t.chars().map(Tok::Lit).collect();
        prop_assert!(glob::matches(&literal, &t));
    }

    #[test]
    fn decimal_order_matches_integers(a in any::<i64>(), b in any::<i64>(), scale in 0u32..6) {
        let show = |n: i64| {
            let digits = n.unsigned_abs().to_string();
            let sign = if n < 0 { "-" } else { "" };
            let scale = scale as usize;
            if scale == 0 {
                return format!("{sign}{digits}");
            }
            let padded = format!("{digits:0>width$}", width = scale + 1);
            let (int, frac) = padded.split_at(padded.len() - scale);
            format!("{sign}{int}.{frac}")
        };
        let (da, db) = (Decimal::parse(&show(a)).unwrap(), Decimal::parse(&show(b)).unwrap());
        prop_assert_eq!(da.cmp(&db), a.cmp(&b), "{} vs {}", show(a), show(b));
    }

    #[test]
    fn dates_agree_with_reference(
        year in 1971i64..2200,
        month in 1i64..=12,
        day in 1i64..=28,
        hour in 0i64..24,
        minute in 0i64..60,
        second in 0i64..60,
        offset_minutes in -1439i64..=1439,
    ) {
        let utc = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z");
        let expected = reference_days(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
        let parsed = Timestamp::parse(&utc).unwrap();
        prop_assert_eq!(Some(parsed), Timestamp::parse(&expected.to_string()));
        // The same instant written in another zone.
        let local = expected + offset_minutes * 60;
        let days = local.div_euclid(86_400);
        let secs = local.rem_euclid(86_400);
        let (ly, lm, ld) = civil(days);
        let sign = if offset_minutes < 0 { '-' } else { '+' };
        let off = offset_minutes.abs();
        let zoned = format!(
            "{ly:04}-{lm:02}-{ld:02}T{:02}:{:02}:{:02}{sign}{:02}:{:02}",
            secs / 3600, secs % 3600 / 60, secs % 60, off / 60, off % 60
        );
        prop_assert_eq!(Timestamp::parse(&zoned), Some(parsed), "{}", zoned);
    }
}

/// (year, month, day) of a day count, by walking forward from 1970 (reference only).
fn civil(mut days: i64) -> (i64, i64, i64) {
    assert!(days >= 0);
    let mut year = 1970;
    loop {
        let len = reference_days(year + 1, 1, 1) - reference_days(year, 1, 1);
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let mut month = 1;
    loop {
        let next = if month == 12 {
            reference_days(year + 1, 1, 1)
        } else {
            reference_days(year, month + 1, 1)
        };
        let len = next - reference_days(year, month, 1);
        if days < len {
            return (year, month, days + 1);
        }
        days -= len;
        month += 1;
    }
}
