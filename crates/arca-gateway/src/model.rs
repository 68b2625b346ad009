//! The constraints of AWS's KMS API model, checked on every request before
//! any semantic rule, as AWS does: required members, lengths, ranges,
//! enumerations and patterns, each violation a `ValidationException` in
//! AWS's words ("1 validation error detected: Value 'x' at 'aliasName'
//! failed to satisfy constraint: Member must satisfy regular expression
//! pattern: ^[a-zA-Z0-9:/_-]+$").
//!
//! `model/kms.json` is extracted from botocore's model by
//! `scripts/kms-model.py` (shapes and constraints only). Operations the model
//! does not define (Arca's extensions and admin operations) check their own
//! input.
//!
//! The walk borrows from the request body: no member is copied, so secrets
//! (plaintexts) are never duplicated in memory that is not wiped. A member
//! of the wrong JSON type is left to the operation's own parser, which
//! answers `SerializationException`.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::LazyLock;

use serde::Deserialize;
use serde_json::value::RawValue;
use zeroize::Zeroize;

use crate::error::ApiError;
use crate::ops::Op;

#[derive(Deserialize)]
struct Model {
    operations: HashMap<String, String>,
    shapes: HashMap<String, Shape>,
}

#[derive(Deserialize)]
struct Shape {
    #[serde(rename = "type")]
    kind: Kind,
    min: Option<i64>,
    max: Option<i64>,
    #[serde(rename = "enum")]
    values: Option<Vec<String>>,
    pattern: Option<String>,
    #[serde(default)]
    required: Vec<String>,
    #[serde(default)]
    sensitive: bool,
    #[serde(default)]
    members: HashMap<String, String>,
    member: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Kind {
    Structure,
    List,
    Map,
    String,
    Blob,
    Integer,
    Boolean,
    Timestamp,
}

static MODEL: LazyLock<Model> = LazyLock::new(|| {
    serde_json::from_str(include_str!("model/kms.json")).expect("the bundled KMS model parses")
});

/// Checks `body` against the model's input shape for `op`; every violation
/// is reported, in one `ValidationException`.
pub fn validate(op: Op, body: &[u8]) -> Result<(), ApiError> {
    let model = &*MODEL;
    let Some(input) = model.operations.get(op.name()) else {
        return Ok(());
    };
    let body = if body.is_empty() {
        b"{}".as_slice()
    } else {
        body
    };
    // Malformed JSON, or JSON that is not an object, is the operation
    // parser's to report.
    let Ok(fields) = serde_json::from_slice::<HashMap<Cow<str>, &RawValue>>(body) else {
        return Ok(());
    };
    let mut errors = Vec::new();
    structure(model, &model.shapes[input], &fields, "", &mut errors);
    // A member of the wrong JSON type makes the body unreadable: AWS reads
    // before it validates, so that is the parser's SerializationException.
    if errors.iter().any(|e| e == WRONG_TYPE) {
        return Ok(());
    }
    if !errors.is_empty() {
        let n = errors.len();
        return Err(ApiError::validation(format!(
            "{n} validation error{} detected: {}",
            if n == 1 { "" } else { "s" },
            errors.join("; ")
        )));
    }
    early_rules(op, &model.shapes[input], &fields)
}

/// Members of AWS's model that name things a self-hosted cluster does not
/// have, refused rather than ignored: ignoring `Recipient` would return a
/// plaintext in the clear to a caller that asked for it sealed to an enclave.
///
/// Also the one rule AWS checks as early as its model's: an alias name
/// starts with `alias/`.
fn early_rules(
    op: Op,
    input: &Shape,
    fields: &HashMap<Cow<str>, &RawValue>,
) -> Result<(), ApiError> {
    // Only where the operation's model has the member, as AWS reads it.
    let given = |name: &str| {
        input.members.contains_key(name) && fields.get(name).is_some_and(|v| v.get() != "null")
    };
    if matches!(op, Op::CreateAlias | Op::UpdateAlias | Op::DeleteAlias) {
        if let Some(name) = fields.get("AliasName").and_then(|v| text(v)) {
            if !name.0.starts_with("alias/") {
                return Err(ApiError::validation(format!(
                    "1 validation error detected: Value '{}' at 'aliasName' failed to satisfy \
                     constraint: Member must begin with the prefix alias/",
                    name.0
                )));
            }
        }
    }
    if op == Op::GetKeyLastUsage {
        if let Some(id) = fields.get("KeyId").and_then(|v| text(v)) {
            if id.0.starts_with("alias/") || id.0.contains(":alias/") {
                return Err(ApiError::validation(
                    "GetKeyLastUsage takes a key id or key ARN; alias names are not supported",
                ));
            }
        }
    }
    if given("Recipient") {
        return Err(ApiError::new(
            400,
            "UnsupportedOperationException",
            "Recipient (a Nitro Enclaves attestation document) is not supported: Arca has no \
             enclaves to attest; call without Recipient to get the plaintext over TLS",
        ));
    }
    if given("CustomKeyStoreId") {
        return Err(ApiError::new(
            400,
            "CustomKeyStoreNotFoundException",
            "Arca has no custom key stores: every key is held by the cluster",
        ));
    }
    Ok(())
}

fn structure(
    model: &Model,
    shape: &Shape,
    fields: &HashMap<Cow<str>, &RawValue>,
    path: &str,
    errors: &mut Vec<String>,
) {
    for name in &shape.required {
        if fields.get(name.as_str()).is_none_or(|v| v.get() == "null") {
            errors.push(format!(
                "Value null at '{}' failed to satisfy constraint: Member must not be null",
                member_path(path, name)
            ));
        }
    }
    // Reported in a fixed order (by member name), not the hash map's.
    let mut present: Vec<(&str, &RawValue)> = fields
        .iter()
        .filter(|(k, _)| shape.members.contains_key(k.as_ref()))
        .map(|(k, v)| (k.as_ref(), *v))
        .collect();
    present.sort_unstable_by_key(|(k, _)| *k);
    for (name, value) in present {
        let sub = member_path(path, name);
        walk(model, &shape.members[name], value, &sub, errors);
    }
}

/// A borrowed JSON string; one with escapes had to be copied, and the copy
/// is wiped when dropped.
struct Text<'a>(Cow<'a, str>);

impl Drop for Text<'_> {
    fn drop(&mut self) {
        if let Cow::Owned(s) = &mut self.0 {
            s.zeroize();
        }
    }
}

/// Marks a member of the wrong JSON type among the errors.
const WRONG_TYPE: &str = "\0wrong type";

fn text(raw: &RawValue) -> Option<Text<'_>> {
    #[derive(Deserialize)]
    struct Borrowed<'a>(#[serde(borrow)] Cow<'a, str>);
    serde_json::from_str::<Borrowed>(raw.get())
        .ok()
        .map(|b| Text(b.0))
}

fn walk(model: &Model, shape_name: &str, raw: &RawValue, path: &str, errors: &mut Vec<String>) {
    let Some(shape) = model.shapes.get(shape_name) else {
        return;
    };
    if raw.get() == "null" {
        return;
    }
    match shape.kind {
        Kind::Structure => {
            if let Ok(fields) = serde_json::from_str::<HashMap<Cow<str>, &RawValue>>(raw.get()) {
                structure(model, shape, &fields, path, errors);
            }
        }
        Kind::List => {
            let Ok(items) = serde_json::from_str::<Vec<&RawValue>>(raw.get()) else {
                return;
            };
            count(shape, items.len(), path, errors);
            if let Some(member) = &shape.member {
                for (i, item) in items.iter().enumerate() {
                    let sub = format!("{path}.{}.member", i + 1);
                    walk(model, member, item, &sub, errors);
                }
            }
        }
        Kind::Map => {
            let Ok(entries) = serde_json::from_str::<HashMap<Cow<str>, &RawValue>>(raw.get())
            else {
                return;
            };
            count(shape, entries.len(), path, errors);
            if let (Some(_), Some(value)) = (&shape.key, &shape.value) {
                for v in entries.values() {
                    walk(model, value, v, path, errors);
                }
            }
        }
        Kind::String => {
            let Some(s) = text(raw) else {
                errors.push(WRONG_TYPE.to_string());
                return;
            };
            let s = s.0.as_ref();
            let shown = || shown(shape, s);
            // AWS counts UTF-16 code units.
            let len = s.encode_utf16().count() as i64;
            if let Some(min) = shape.min.filter(|m| len < *m) {
                errors.push(format!(
                    "{} at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}",
                    shown()
                ));
            }
            if let Some(max) = shape.max.filter(|m| len > *m) {
                errors.push(format!(
                    "{} at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}",
                    shown()
                ));
            }
            if let Some(values) = &shape.values {
                if !values.iter().any(|v| v == s) {
                    errors.push(format!(
                        "{} at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                        shown(),
                        values.join(", ")
                    ));
                }
            }
            if let Some(p) = &shape.pattern {
                if pattern(p).is_some_and(|m| !m(s)) {
                    errors.push(format!(
                        "{} at '{path}' failed to satisfy constraint: Member must satisfy regular expression pattern: {p}",
                        shown()
                    ));
                }
            }
        }
        Kind::Blob => {
            let Some(s) = text(raw) else {
                errors.push(WRONG_TYPE.to_string());
                return;
            };
            // The decoded length, without decoding: text that is not base64
            // is the operation parser's to refuse.
            let Some(len) = base64_len(s.0.as_bytes()) else {
                return;
            };
            if let Some(min) = shape.min.filter(|m| (len as i64) < *m) {
                errors.push(format!(
                    "Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
                ));
            }
            if let Some(max) = shape.max.filter(|m| (len as i64) > *m) {
                errors.push(format!(
                    "Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
                ));
            }
        }
        Kind::Integer => {
            let Ok(n) = serde_json::from_str::<i64>(raw.get()) else {
                errors.push(WRONG_TYPE.to_string());
                return;
            };
            if let Some(min) = shape.min.filter(|m| n < *m) {
                errors.push(format!(
                    "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
                ));
            }
            if let Some(max) = shape.max.filter(|m| n > *m) {
                errors.push(format!(
                    "Value '{n}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
                ));
            }
        }
        Kind::Boolean | Kind::Timestamp => {}
    }
}

fn count(shape: &Shape, n: usize, path: &str, errors: &mut Vec<String>) {
    let n = n as i64;
    if let Some(min) = shape.min.filter(|m| n < *m) {
        errors.push(format!(
            "Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
        ));
    }
    if let Some(max) = shape.max.filter(|m| n > *m) {
        errors.push(format!(
            "Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        ));
    }
}

/// `Value 'x'`, or `Value` alone for a sensitive member; long values are cut.
fn shown(shape: &Shape, s: &str) -> String {
    if shape.sensitive {
        return "Value".to_string();
    }
    const MAX: usize = 256;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("Value '{}...'", &s[..i]),
        None => format!("Value '{s}'"),
    }
}

/// AWS names members in lower camel case: `aliasName`, `tags.1.member.tagKey`.
fn member_path(parent: &str, name: &str) -> String {
    let mut p = String::with_capacity(parent.len() + name.len() + 1);
    if !parent.is_empty() {
        p.push_str(parent);
        p.push('.');
    }
    let mut c = name.chars();
    if let Some(f) = c.next() {
        p.extend(f.to_lowercase());
        p.push_str(c.as_str());
    }
    p
}

/// The length of the bytes standard base64 `s` decodes to, if its length and
/// padding are well formed.
fn base64_len(s: &[u8]) -> Option<usize> {
    if s.len() % 4 != 0 {
        return None;
    }
    let pad = s.iter().rev().take(2).take_while(|&&b| b == b'=').count();
    Some(s.len() / 4 * 3 - pad)
}

/// The model's patterns, as functions: each matches the whole value, as
/// AWS's validation does. `None` for a pattern only operations Arca does
/// not serve use (a test checks that every served one has a matcher).
fn pattern(p: &str) -> Option<fn(&str) -> bool> {
    fn word(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_'
    }
    fn nonempty_all(s: &str, f: impl Fn(char) -> bool) -> bool {
        !s.is_empty() && s.chars().all(f)
    }
    Some(match p {
        "[0-9]{12}" => |s| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()),
        "[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+" => |s| {
            nonempty_all(s, |c| {
                matches!(c, '\u{9}' | '\u{a}' | '\u{d}' | '\u{20}'..='\u{ff}')
            })
        },
        "[\\u0020-\\u00FF]*" => |s| s.chars().all(|c| matches!(c, '\u{20}'..='\u{ff}')),
        "[\\w]+" => |s| nonempty_all(s, word),
        "^[a-f0-9]+$" => |s| nonempty_all(s, |c| matches!(c, 'a'..='f' | '0'..='9')),
        "^[a-zA-Z0-9:/_-]+$" => |s| nonempty_all(s, |c| word(c) || matches!(c, ':' | '/' | '-')),
        "^([A-Za-z0-9\\-]+)\\.([A-Za-z0-9\\-]+)(\\.[A-Za-z0-9\\-]+)+$" => |s| {
            let labels: Vec<&str> = s.split('.').collect();
            labels.len() >= 3
                && labels.iter().all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        },
        "^[a-zA-Z0-9-_.]+$" => |s| nonempty_all(s, |c| word(c) || matches!(c, '-' | '.')),
        "^[\\w+=,.@:/-]+$" => |s| nonempty_all(s, |c| word(c) || "+=,.@:/-".contains(c)),
        "^[a-zA-Z0-9:/_\\s.-]+$" => |s| {
            nonempty_all(s, |c| {
                word(c) || matches!(c, ':' | '/' | '.' | '-') || c.is_ascii_whitespace()
            })
        },
        "^([a-z]+-){2,3}\\d+$" => |s| {
            let parts: Vec<&str> = s.split('-').collect();
            let (last, words) = parts.split_last().expect("split gives one part");
            !last.is_empty()
                && last.bytes().all(|b| b.is_ascii_digit())
                && (2..=3).contains(&words.len())
                && words
                    .iter()
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        },
        "^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$" => |s| {
            let lower = |t: &str| {
                t.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            };
            let mut f = s.splitn(6, ':');
            let (Some(arn), Some(part), Some(svc), Some(region), Some(account), Some(rest)) =
                (f.next(), f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                return false;
            };
            arn == "arn"
                && part.strip_prefix("aws").is_some_and(lower)
                && !svc.is_empty()
                && lower(svc)
                && lower(region)
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && !rest.is_empty()
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(op: Op, body: &str) -> Result<(), String> {
        validate(op, body.as_bytes()).map_err(|e| {
            assert_eq!(e.code, "ValidationException");
            e.message
        })
    }

    #[test]
    fn every_pattern_of_a_served_operation_has_a_matcher() {
        fn shapes(model: &Model, name: &str, seen: &mut Vec<String>) {
            if seen.iter().any(|s| s == name) {
                return;
            }
            seen.push(name.to_string());
            let s = &model.shapes[name];
            let children = s
                .members
                .values()
                .chain(s.member.iter())
                .chain(s.key.iter())
                .chain(s.value.iter());
            for c in children {
                shapes(model, c, seen);
            }
        }
        let model = &*MODEL;
        let mut served = 0;
        for op in Op::ALL {
            let Some(input) = model.operations.get(op.name()) else {
                continue;
            };
            served += 1;
            let mut seen = Vec::new();
            shapes(model, input, &mut seen);
            for name in seen {
                if let Some(p) = &model.shapes[&name].pattern {
                    assert!(pattern(p).is_some(), "{op:?}: no matcher for {name} {p}");
                }
            }
        }
        assert!(served > 40, "only {served} operations found in the model");
    }

    #[test]
    fn patterns_match_whole_values() {
        let alias = pattern("^[a-zA-Z0-9:/_-]+$").unwrap();
        assert!(alias("alias/my-key_1:x"));
        assert!(!alias("alias/my key"));
        assert!(!alias("alias/ü"));
        assert!(!alias(""));
        let region = pattern("^([a-z]+-){2,3}\\d+$").unwrap();
        assert!(region("us-east-1"));
        assert!(region("us-gov-west-1"));
        assert!(!region("us-1"));
        assert!(!region("a-b-c-d-1"));
        assert!(!region("us-east-"));
        let arn = pattern("^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$").unwrap();
        assert!(arn("arn:aws:iam::111122223333:role/x"));
        assert!(arn("arn:aws-cn:kms:cn-north-1:111122223333:key/x"));
        assert!(!arn("arn:aws:iam::11112222333:role/x"));
        assert!(!arn("arn:aws:iam::111122223333:"));
        let name = pattern("[\\w]+").unwrap();
        assert!(name("default"));
        assert!(!name("de-fault"));
    }

    #[test]
    fn constraints_are_reported_in_aws_words() {
        assert_eq!(
            check(Op::CreateAlias, r#"{"AliasName":"alias/has space","TargetKeyId":"k"}"#)
                .unwrap_err(),
            "1 validation error detected: Value 'alias/has space' at 'aliasName' failed to \
             satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        );
        let e = check(Op::CreateKey, r#"{"Origin":"SOMEWHERE"}"#).unwrap_err();
        assert!(
            e.contains("at 'origin'") && e.contains("enum value set"),
            "{e}"
        );
        let long = "k".repeat(129);
        let e = check(
            Op::TagResource,
            &format!(r#"{{"KeyId":"k","Tags":[{{"TagKey":"{long}","TagValue":"v"}}]}}"#),
        )
        .unwrap_err();
        assert!(
            e.contains("at 'tags.1.member.tagKey'") && e.contains("less than or equal to 128"),
            "{e}"
        );
        let tokens: Vec<String> = (0..11).map(|i| format!("\"t{i}\"")).collect();
        let e = check(
            Op::Encrypt,
            &format!(
                r#"{{"KeyId":"k","Plaintext":"AA==","GrantTokens":[{}]}}"#,
                tokens.join(",")
            ),
        )
        .unwrap_err();
        assert!(e.contains("at 'grantTokens'"), "{e}");
        // Two violations, one message; a sensitive value is not repeated.
        let e = check(Op::Encrypt, r#"{"Plaintext":""}"#).unwrap_err();
        assert!(e.starts_with("2 validation errors detected: "), "{e}");
        assert!(e.contains("Value null at 'keyId'"), "{e}");
        assert!(e.contains("Value at 'plaintext'"), "{e}");
        let e = check(Op::GenerateRandom, r#"{"NumberOfBytes":1025}"#).unwrap_err();
        assert!(e.contains("Value '1025' at 'numberOfBytes'"), "{e}");
    }

    #[test]
    fn members_arca_does_not_serve_are_refused_not_ignored() {
        let code = |op, body: &str| validate(op, body.as_bytes()).unwrap_err().code;
        for op in [
            Op::Decrypt,
            Op::GenerateDataKey,
            Op::GenerateDataKeyPair,
            Op::GenerateRandom,
        ] {
            assert_eq!(
                code(
                    op,
                    r#"{"KeyId":"k","CiphertextBlob":"AA==","KeySpec":"AES_256","KeyPairSpec":"RSA_2048","Recipient":{"AttestationDocument":"AA=="}}"#
                ),
                "UnsupportedOperationException",
                "{op:?}"
            );
        }
        validate(
            Op::Decrypt,
            br#"{"CiphertextBlob":"AA==","Recipient":null}"#,
        )
        .unwrap();
        assert_eq!(
            code(
                Op::CreateKey,
                r#"{"CustomKeyStoreId":"cks-1234567890abcdef0"}"#
            ),
            "CustomKeyStoreNotFoundException"
        );
        assert_eq!(
            code(
                Op::GenerateRandom,
                r#"{"NumberOfBytes":8,"CustomKeyStoreId":"cks-1"}"#
            ),
            "CustomKeyStoreNotFoundException"
        );
        let e = validate(
            Op::CreateAlias,
            br#"{"AliasName":"my-key","TargetKeyId":"k"}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, "ValidationException");
        assert!(e.message.contains("prefix alias/"), "{}", e.message);
    }

    #[test]
    fn wrong_types_and_bad_json_are_left_to_the_parser() {
        check(Op::Encrypt, r#"{"KeyId":7,"Plaintext":"AA=="}"#).unwrap();
        check(Op::Encrypt, "{not json").unwrap();
        check(Op::Encrypt, r#"{"KeyId":"k","Plaintext":"not base64!"}"#).unwrap();
        // Operations outside the model check their own input.
        check(Op::ClusterStatus, r#"{"Anything":1}"#).unwrap();
        check(
            Op::Encrypt,
            r#"{"KeyId":"k","Plaintext":"AA==","Unknown":true}"#,
        )
        .unwrap();
    }
}
