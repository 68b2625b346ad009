//! `Principal` / `NotPrincipal`: who a key policy statement is about.

use crate::json::Json;

/// How a caller relates to a principal list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PrincipalMatch {
    /// Not named.
    None,
    /// Named only through its account root: the key policy delegates to the account's
    /// identity policies.
    ViaRoot,
    /// Named itself, by `*`, its exact ARN, or (for the root caller) its root ARN.
    Direct,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `"*"` or `{"AWS": "*"}`.
    Anyone,
    /// `arn:<partition>:iam::<account>:root`, or a bare 12-digit account id (partition `aws`).
    Root { partition: String, account: String },
    /// Any other IAM or STS principal ARN, matched exactly (case-sensitive).
    Arn(String),
    /// `{"Service": ...}`: accepted, never matches an Arca caller.
    Service,
}

/// A parsed principal list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Principals {
    entries: Vec<Entry>,
}

impl Principals {
    /// Parses the value of `Principal` / `NotPrincipal`. Errors name the offending value.
    pub(crate) fn parse(v: &Json) -> Result<Principals, String> {
        let entries = match v {
            Json::String(s) if s == "*" => vec![Entry::Anyone],
            Json::String(s) => {
                return Err(format!(
                    "principal `{s}` must be `*` or an object such as {{\"AWS\": \"{s}\"}}"
                ))
            }
            Json::Object(members) if !members.is_empty() => {
                let mut entries = Vec::new();
                for (kind, value) in members {
                    entries.extend(typed(kind, value)?);
                }
                entries
            }
            Json::Object(_) => return Err("principal object is empty".to_owned()),
            other => {
                return Err(format!(
                    "principal must be `*` or an object, not {}",
                    other.kind()
                ))
            }
        };
        Ok(Principals { entries })
    }

    /// How `caller` (an ARN) relates to this list: the closest relation over all entries.
    pub(crate) fn relation(&self, caller: &str) -> PrincipalMatch {
        self.entries
            .iter()
            .map(|e| relation(e, caller))
            .max()
            .unwrap_or(PrincipalMatch::None)
    }
}

/// Parses one `"AWS": ...` or `"Service": ...` member.
fn typed(kind: &str, value: &Json) -> Result<Vec<Entry>, String> {
    let values = strings(kind, value)?;
    match kind {
        "AWS" => values.into_iter().map(aws).collect(),
        "Service" => values
            .into_iter()
            .map(|s| {
                if s.is_empty() || s.contains("${") {
                    Err(format!("invalid service principal `{s}`"))
                } else {
                    Ok(Entry::Service)
                }
            })
            .collect(),
        other => Err(format!(
            "unsupported principal type `{other}` (expected `AWS` or `Service`)"
        )),
    }
}

fn strings<'a>(kind: &str, value: &'a Json) -> Result<Vec<&'a str>, String> {
    let bad = || format!("principal `{kind}` must be a string or a non-empty list of strings");
    match value {
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

/// Parses one `AWS` principal.
fn aws(s: &str) -> Result<Entry, String> {
    if s == "*" {
        return Ok(Entry::Anyone);
    }
    if s.contains("${") {
        return Err(format!(
            "policy variables are not allowed in principals (`{s}`)"
        ));
    }
    if is_account_id(s) {
        return Ok(Entry::Root {
            partition: "aws".to_owned(),
            account: s.to_owned(),
        });
    }
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(format!(
            "principal `{s}` is neither `*`, a 12-digit account id nor an IAM ARN"
        ));
    };
    let valid = *arn == "arn"
        && !partition.is_empty()
        && matches!(*service, "iam" | "sts")
        && region.is_empty()
        && is_account_id(account)
        && !resource.is_empty()
        && !s.contains(['*', '?']);
    if !valid {
        return Err(format!(
            "principal `{s}` is neither `*`, a 12-digit account id nor an IAM ARN \
             (arn:<partition>:iam::<account>:<name>, no wildcards)"
        ));
    }
    if *service == "iam" && *resource == "root" {
        return Ok(Entry::Root {
            partition: (*partition).to_owned(),
            account: (*account).to_owned(),
        });
    }
    Ok(Entry::Arn(s.to_owned()))
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|c| c.is_ascii_digit())
}

fn relation(entry: &Entry, caller: &str) -> PrincipalMatch {
    match entry {
        Entry::Anyone => PrincipalMatch::Direct,
        Entry::Arn(arn) if arn == caller => PrincipalMatch::Direct,
        Entry::Arn(_) | Entry::Service => PrincipalMatch::None,
        Entry::Root { partition, account } => {
            let parts: Vec<&str> = caller.splitn(6, ':').collect();
            match parts.as_slice() {
                ["arn", p, "iam", "", a, "root"] if p == partition && a == account => {
                    PrincipalMatch::Direct
                }
                ["arn", p, "iam" | "sts", "", a, _] if p == partition && a == account => {
                    PrincipalMatch::ViaRoot
                }
                _ => PrincipalMatch::None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(doc: &str) -> Result<Principals, String> {
        Principals::parse(&Json::parse(doc).unwrap())
    }

    const ROOT: &str = "arn:aws:iam::111122223333:root";
    const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
    const MALLORY: &str = "arn:aws:iam::444455556666:user/mallory";

    #[test]
    fn anyone() {
        for doc in [
            r#""*""#,
            r#"{"AWS": "*"}"#,
            r#"{"AWS": ["123456789012", "*"]}"#,
        ] {
            let p = parse(doc).unwrap();
            assert_eq!(p.relation(MALLORY), PrincipalMatch::Direct, "{doc}");
            assert_eq!(p.relation("anything"), PrincipalMatch::Direct, "{doc}");
        }
    }

    #[test]
    fn root_delegates_to_the_account() {
        for doc in [
            r#"{"AWS": "111122223333"}"#,
            &format!(r#"{{"AWS": "{ROOT}"}}"#),
        ] {
            let p = parse(doc).unwrap();
            assert_eq!(p.relation(ROOT), PrincipalMatch::Direct, "{doc}");
            assert_eq!(p.relation(ALICE), PrincipalMatch::ViaRoot, "{doc}");
            assert_eq!(
                p.relation("arn:aws:sts::111122223333:assumed-role/r/s"),
                PrincipalMatch::ViaRoot
            );
            assert_eq!(p.relation(MALLORY), PrincipalMatch::None, "{doc}");
            assert_eq!(
                p.relation("arn:aws-cn:iam::111122223333:user/alice"),
                PrincipalMatch::None
            );
            assert_eq!(p.relation("garbage"), PrincipalMatch::None);
        }
    }

    #[test]
    fn user_arns_match_exactly() {
        let p = parse(&format!(r#"{{"AWS": ["{ALICE}"]}}"#)).unwrap();
        assert_eq!(p.relation(ALICE), PrincipalMatch::Direct);
        assert_eq!(
            p.relation("arn:aws:iam::111122223333:user/Alice"),
            PrincipalMatch::None
        );
        assert_eq!(p.relation(ROOT), PrincipalMatch::None);
    }

    #[test]
    fn service_principals_never_match() {
        let p = parse(r#"{"Service": ["logs.amazonaws.com"]}"#).unwrap();
        assert_eq!(p.relation(ALICE), PrincipalMatch::None);
        assert_eq!(p.relation("logs.amazonaws.com"), PrincipalMatch::None);
    }

    #[test]
    fn malformed() {
        for (doc, needle) in [
            (r#""111122223333""#, "must be `*` or an object"),
            (r#"{}"#, "empty"),
            (r#"[]"#, "not a list"),
            (
                r#"{"Federated": "cognito"}"#,
                "unsupported principal type `Federated`",
            ),
            (r#"{"AWS": []}"#, "non-empty list"),
            (r#"{"AWS": [1]}"#, "non-empty list"),
            (r#"{"AWS": "11112222333"}"#, "`11112222333` is neither"),
            (
                r#"{"AWS": "arn:aws:iam::111122223333:user/*"}"#,
                "no wildcards",
            ),
            (r#"{"AWS": "arn:aws:s3:::bucket/x"}"#, "is neither"),
            (r#"{"AWS": "arn:aws:iam::1111:root"}"#, "is neither"),
            (
                r#"{"AWS": "arn:aws:iam::${aws:PrincipalAccount}:root"}"#,
                "policy variables",
            ),
            (r#"{"Service": ""}"#, "invalid service principal"),
        ] {
            let err = parse(doc).unwrap_err();
            assert!(err.contains(needle), "{doc}: {err}");
        }
    }
}
