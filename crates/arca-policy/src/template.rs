//! Strings that may hold policy variables: `${aws:username}`, `${*}`, ...
//!
//! A variable names a single-valued condition key; at evaluation it is replaced by that
//! key's value in the request context, taken literally (a `*` in the value is not a
//! wildcard). If the key is absent or has several values, the string matches nothing.
//! `${*}`, `${?}` and `${$}` stand for a literal `*`, `?` and `$`. Default values
//! (`${aws:username, 'anonymous'}`) are not supported. Variables need
//! `"Version": "2012-10-17"`; under the older version (or none) a `${` is an error rather
//! than the literal text AWS would take it for.

use crate::context::Context;
use crate::glob::{self, Tok, ARN_SEGMENTS};
use crate::keys;

/// Longest variable name read, to keep error messages short.
const MAX_VARIABLE_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// Text as written: `*` and `?` are wildcards where the operator has them.
    Text(String),
    /// A literal character from `${*}`, `${?}` or `${$}`.
    Literal(char),
    /// The value of this condition key (its lookup name).
    Var(String),
}

/// A parsed string with zero or more policy variables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Parses `s`. With `variables` false, any `${` is an error. The error names the string.
    pub(crate) fn parse(s: &str, variables: bool) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        while let Some(start) = rest.find("${") {
            if !variables {
                return Err(format!(
                    "policy variable in `{s}` needs \"Version\": \"2012-10-17\""
                ));
            }
            push_text(&mut parts, &rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| format!("unterminated policy variable in `{s}`"))?;
            parts.push(variable(&after[..end])?);
            rest = &after[end + 1..];
        }
        push_text(&mut parts, rest);
        Ok(Template { parts })
    }

    /// Does the template contain a variable that reads the context?
    #[cfg(test)]
    pub(crate) fn has_variables(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Var(_)))
    }

    /// Is this exactly the text `s`, with no variables?
    pub(crate) fn is_text(&self, s: &str) -> bool {
        match self.parts.as_slice() {
            [Part::Text(t)] => t == s,
            [] => s.is_empty(),
            _ => false,
        }
    }

    /// How many ARN segments the template has: the `:` in its text, plus one, at most six.
    pub(crate) fn arn_segments(&self) -> usize {
        let colons: usize = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.matches(':').count(),
                _ => 0,
            })
            .sum();
        (colons + 1).min(ARN_SEGMENTS)
    }

    /// Does the text start with `arn:`?
    pub(crate) fn starts_with_arn(&self) -> bool {
        matches!(self.parts.first(), Some(Part::Text(t)) if t.starts_with("arn:"))
    }

    /// The string with variables replaced and wildcards taken literally; `None` if a
    /// variable cannot be resolved.
    pub(crate) fn literal(&self, ctx: &Context) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Literal(c) => out.push(*c),
                Part::Var(key) => out.push_str(resolve(key, ctx)?),
            }
        }
        Some(out)
    }

    /// The string as a wildcard pattern. With `arn`, the first five `:` of the text become
    /// segment separators.
    pub(crate) fn pattern(&self, ctx: &Context, arn: bool) -> Option<Vec<Tok>> {
        let mut out = Vec::new();
        let mut seps = 0;
        for part in &self.parts {
            match part {
                Part::Text(t) => {
                    for c in t.chars() {
                        if arn && c == ':' && seps < ARN_SEGMENTS - 1 {
                            seps += 1;
                            out.push(Tok::Sep);
                        } else {
                            out.push(glob::wild(c));
                        }
                    }
                }
                Part::Literal(c) => out.push(Tok::Lit(*c)),
                Part::Var(key) => out.extend(resolve(key, ctx)?.chars().map(Tok::Lit)),
            }
        }
        Some(out)
    }
}

fn push_text(parts: &mut Vec<Part>, text: &str) {
    if !text.is_empty() {
        parts.push(Part::Text(text.to_owned()));
    }
}

/// Parses the inside of `${...}`.
fn variable(inner: &str) -> Result<Part, String> {
    let shown: String = inner.chars().take(MAX_VARIABLE_LEN).collect();
    match inner {
        "*" => return Ok(Part::Literal('*')),
        "?" => return Ok(Part::Literal('?')),
        "$" => return Ok(Part::Literal('$')),
        _ => {}
    }
    if inner.contains(',') {
        return Err(format!(
            "default values in policy variables are not supported (`${{{shown}}}`)"
        ));
    }
    let key = keys::parse(inner).map_err(|_| format!("unknown policy variable `${{{shown}}}`"))?;
    if key.multi {
        return Err(format!(
            "policy variable `${{{shown}}}` names a multivalued key"
        ));
    }
    Ok(Part::Var(key.lookup))
}

/// The single value of `key`; `None` when it is absent or has several.
fn resolve<'c>(key: &str, ctx: &'c Context) -> Option<&'c str> {
    match ctx.present(key)? {
        [one] => Some(one),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        let mut c = Context::new();
        c.insert("aws:username", "alice");
        c.insert("aws:PrincipalAccount", "111122223333");
        c.insert("aws:RequestTag/team", "a*b");
        c
    }

    #[test]
    fn plain_text() {
        let t = Template::parse("arn:aws:kms:*:*:key/*", true).unwrap();
        assert!(!t.has_variables());
        assert_eq!(t.arn_segments(), 6);
        assert!(t.starts_with_arn());
        assert_eq!(t.literal(&ctx()).as_deref(), Some("arn:aws:kms:*:*:key/*"));
        assert!(Template::parse("*", false).unwrap().is_text("*"));
    }

    #[test]
    fn substitutes_variables_literally() {
        let t = Template::parse("home/${aws:username}/${*}", true).unwrap();
        assert!(t.has_variables());
        assert_eq!(t.literal(&ctx()).as_deref(), Some("home/alice/*"));
        let p = t.pattern(&ctx(), false).unwrap();
        assert!(glob::matches(&p, "home/alice/*"));
        assert!(!glob::matches(&p, "home/alice/x"));
        // A `*` inside a value is literal.
        let t = Template::parse("${aws:RequestTag/team}", true).unwrap();
        let p = t.pattern(&ctx(), false).unwrap();
        assert!(glob::matches(&p, "a*b"));
        assert!(!glob::matches(&p, "axxb"));
    }

    #[test]
    fn variables_do_not_split_arn_segments() {
        let t = Template::parse("arn:aws:kms:*:${aws:PrincipalAccount}:key/*", true).unwrap();
        assert_eq!(t.arn_segments(), 6);
        let p = t.pattern(&ctx(), true).unwrap();
        assert!(glob::matches_arn(
            &p,
            "arn:aws:kms:eu-west-1:111122223333:key/k"
        ));
        assert!(!glob::matches_arn(
            &p,
            "arn:aws:kms:eu-west-1:444455556666:key/k"
        ));
    }

    #[test]
    fn unresolved_variables_match_nothing() {
        let t = Template::parse("${aws:userid}", true).unwrap();
        assert_eq!(t.literal(&ctx()), None);
        let mut two = ctx();
        two.insert("aws:username", "bob");
        let t = Template::parse("${aws:username}", true).unwrap();
        assert_eq!(t.literal(&two), None);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = Template::parse("a${aws:username}", false).unwrap_err();
        assert!(e.contains("2012-10-17"), "{e}");
        let e = Template::parse("${aws:username", true).unwrap_err();
        assert!(e.contains("unterminated"), "{e}");
        let e = Template::parse("${aws:username, 'x'}", true).unwrap_err();
        assert!(e.contains("default values"), "{e}");
        let e = Template::parse("${aws:nope}", true).unwrap_err();
        assert!(e.contains("unknown policy variable `${aws:nope}`"), "{e}");
        let e = Template::parse("${aws:TagKeys}", true).unwrap_err();
        assert!(e.contains("multivalued"), "{e}");
        // A `$` not followed by `{` is plain text.
        assert!(Template::parse("$5", false).unwrap().is_text("$5"));
    }
}
