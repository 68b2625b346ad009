//! The `Condition` element: operators, qualifiers and their evaluation.
//!
//! A condition block is `{ operator: { key: value-or-values, ... }, ... }`. Every
//! (operator, key) pair becomes one [`Condition`]; all of them must hold (AND), and a
//! condition holds when any of its policy values matches (OR).

use std::cmp::Ordering;
use std::net::IpAddr;

use crate::context::Context;
use crate::date::Timestamp;
use crate::glob;
use crate::ip::IpNet;
use crate::json::Json;
use crate::keys::{self, ConditionKey, KeyType};
use crate::number::Decimal;
use crate::template::Template;

/// A comparison of a request value against a policy value: request `cmp` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    fn holds(self, ord: Ordering) -> bool {
        match self {
            Cmp::Eq => ord.is_eq(),
            Cmp::Lt => ord.is_lt(),
            Cmp::Le => ord.is_le(),
            Cmp::Gt => ord.is_gt(),
            Cmp::Ge => ord.is_ge(),
        }
    }
}

/// The positive form of an operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(Cmp),
    Date(Cmp),
    Bool,
    IpAddress,
    /// `ArnEquals` and `ArnLike` behave the same: both take wildcards.
    Arn,
    Null,
}

/// Operator names, their positive form, and whether they negate it.
const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::StringEquals, false),
    ("StringNotEquals", Base::StringEquals, true),
    (
        "StringEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        false,
    ),
    (
        "StringNotEqualsIgnoreCase",
        Base::StringEqualsIgnoreCase,
        true,
    ),
    ("StringLike", Base::StringLike, false),
    ("StringNotLike", Base::StringLike, true),
    ("NumericEquals", Base::Numeric(Cmp::Eq), false),
    ("NumericNotEquals", Base::Numeric(Cmp::Eq), true),
    ("NumericLessThan", Base::Numeric(Cmp::Lt), false),
    ("NumericLessThanEquals", Base::Numeric(Cmp::Le), false),
    ("NumericGreaterThan", Base::Numeric(Cmp::Gt), false),
    ("NumericGreaterThanEquals", Base::Numeric(Cmp::Ge), false),
    ("DateEquals", Base::Date(Cmp::Eq), false),
    ("DateNotEquals", Base::Date(Cmp::Eq), true),
    ("DateLessThan", Base::Date(Cmp::Lt), false),
    ("DateLessThanEquals", Base::Date(Cmp::Le), false),
    ("DateGreaterThan", Base::Date(Cmp::Gt), false),
    ("DateGreaterThanEquals", Base::Date(Cmp::Ge), false),
    ("Bool", Base::Bool, false),
    ("IpAddress", Base::IpAddress, false),
    ("NotIpAddress", Base::IpAddress, true),
    ("ArnEquals", Base::Arn, false),
    ("ArnNotEquals", Base::Arn, true),
    ("ArnLike", Base::Arn, false),
    ("ArnNotLike", Base::Arn, true),
    ("Null", Base::Null, false),
];

/// Which key types an operator accepts. String operators (and `Null`) take any key.
fn accepts(base: Base, ty: KeyType) -> bool {
    match base {
        Base::StringEquals | Base::StringEqualsIgnoreCase | Base::StringLike | Base::Null => true,
        Base::Numeric(_) => matches!(ty, KeyType::Numeric | KeyType::EpochTime),
        Base::Date(_) => matches!(ty, KeyType::Date | KeyType::EpochTime),
        Base::Bool => ty == KeyType::Bool,
        Base::IpAddress => ty == KeyType::Ip,
        Base::Arn => ty == KeyType::Arn,
    }
}

/// `ForAnyValue:` / `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    None,
    ForAnyValue,
    ForAllValues,
}

/// A parsed operator name such as `ForAllValues:StringNotEqualsIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Operator {
    base: Base,
    negated: bool,
    set: SetQualifier,
    if_exists: bool,
}

impl Operator {
    fn parse(name: &str) -> Result<Operator, String> {
        let (set, rest) = if let Some(r) = name.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, r)
        } else if let Some(r) = name.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, r)
        } else {
            (SetQualifier::None, name)
        };
        let (if_exists, rest) = match rest.strip_suffix("IfExists") {
            Some(r) => (true, r),
            None => (false, rest),
        };
        let &(_, base, negated) = OPERATORS
            .iter()
            .find(|(n, _, _)| *n == rest)
            .ok_or_else(|| format!("unknown condition operator `{name}`"))?;
        if base == Base::Null && (if_exists || set != SetQualifier::None) {
            return Err(format!(
                "condition operator `{name}`: `Null` takes no `IfExists` and no set qualifier"
            ));
        }
        Ok(Operator {
            base,
            negated,
            set,
            if_exists,
        })
    }
}

/// The policy values of one condition, parsed for its operator.
#[derive(Debug, Clone, PartialEq)]
enum Values {
    /// String and ARN operators; may hold policy variables.
    Text(Vec<Template>),
    Numbers(Vec<Decimal>),
    Dates(Vec<Timestamp>),
    /// `Bool` and `Null`.
    Bools(Vec<bool>),
    Nets(Vec<IpNet>),
}

/// One (operator, key) pair of a condition block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Condition {
    op: Operator,
    key: ConditionKey,
    values: Values,
}

/// Parses a whole `Condition` element. `variables` says whether policy variables are
/// allowed. Errors name the operator, key or value; the caller adds the statement.
pub(crate) fn parse_block(v: &Json, variables: bool) -> Result<Vec<Condition>, String> {
    let Json::Object(ops) = v else {
        return Err(format!("`Condition` must be an object, not {}", v.kind()));
    };
    if ops.is_empty() {
        return Err("`Condition` is empty".to_owned());
    }
    let mut out = Vec::new();
    for (name, block) in ops {
        let op = Operator::parse(name)?;
        let Json::Object(keys) = block else {
            return Err(format!(
                "condition operator `{name}` must map to an object of keys, not {}",
                block.kind()
            ));
        };
        if keys.is_empty() {
            return Err(format!("condition operator `{name}` has no keys"));
        }
        for (key, value) in keys {
            out.push(parse_one(op, name, key, value, variables)?);
        }
    }
    Ok(out)
}

fn parse_one(
    op: Operator,
    op_name: &str,
    key_name: &str,
    value: &Json,
    variables: bool,
) -> Result<Condition, String> {
    let key = keys::parse(key_name)?;
    if !accepts(op.base, key.ty) {
        return Err(format!(
            "condition operator `{op_name}` cannot be used with `{key_name}` ({})",
            key.ty.describe()
        ));
    }
    let raw = scalars(value)
        .map_err(|kind| format!("values of `{key_name}` under `{op_name}` must be strings, numbers or booleans (or a non-empty list of them), not {kind}"))?;
    let values = parse_values(op.base, &raw, variables)
        .map_err(|e| format!("{e} for `{key_name}` under `{op_name}`"))?;
    Ok(Condition { op, key, values })
}

/// A condition value as text: strings as written, numbers and booleans as JSON prints them.
fn scalars(v: &Json) -> Result<Vec<String>, &'static str> {
    let one = |v: &Json| match v {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        Json::Bool(b) => Ok(b.to_string()),
        other => Err(other.kind()),
    };
    match v {
        Json::Array(items) if items.is_empty() => Err("an empty list"),
        Json::Array(items) => items.iter().map(one).collect(),
        other => one(other).map(|s| vec![s]),
    }
}

fn parse_values(base: Base, raw: &[String], variables: bool) -> Result<Values, String> {
    Ok(match base {
        Base::StringEquals | Base::StringEqualsIgnoreCase | Base::StringLike => Values::Text(
            raw.iter()
                .map(|s| Template::parse(s, variables))
                .collect::<Result<_, _>>()?,
        ),
        Base::Arn => Values::Text(
            raw.iter()
                .map(|s| arn_template(s, variables))
                .collect::<Result<_, _>>()?,
        ),
        Base::Numeric(_) => Values::Numbers(typed(raw, "a number", Decimal::parse)?),
        Base::Date(_) => Values::Dates(typed(
            raw,
            "a date (ISO 8601 or epoch seconds)",
            Timestamp::parse,
        )?),
        Base::Bool | Base::Null => Values::Bools(typed(raw, "`true` or `false`", parse_bool)?),
        Base::IpAddress => Values::Nets(typed(raw, "an IP address or CIDR range", IpNet::parse)?),
    })
}

/// Parses every value with `parse`; the error names the first bad value.
fn typed<T>(
    raw: &[String],
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Vec<T>, String> {
    raw.iter()
        .map(|s| {
            if s.contains("${") {
                return Err(format!(
                    "policy variables are only supported by string and ARN operators (`{s}`)"
                ));
            }
            parse(s).ok_or_else(|| format!("`{s}` is not {what}"))
        })
        .collect()
}

fn arn_template(s: &str, variables: bool) -> Result<Template, String> {
    let t = Template::parse(s, variables)?;
    if t.is_text("*") || (t.starts_with_arn() && t.arn_segments() == glob::ARN_SEGMENTS) {
        Ok(t)
    } else {
        Err(format!(
            "`{s}` is not an ARN (arn:partition:service:region:account:resource)"
        ))
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

impl Condition {
    /// Does this condition hold for the request context?
    pub(crate) fn holds(&self, ctx: &Context) -> bool {
        let present = ctx.present(&self.key.lookup);
        if let Values::Bools(expected) = &self.values {
            if self.op.base == Base::Null {
                return expected.iter().any(|&null| null == present.is_none());
            }
        }
        let Some(values) = present else {
            return self.when_absent();
        };
        let op = self.op;
        let matches = |v: &String| self.matches_any(v, ctx);
        match op.set {
            SetQualifier::None if op.negated => !values.iter().any(matches),
            SetQualifier::None => values.iter().any(matches),
            SetQualifier::ForAnyValue => values.iter().any(|v| matches(v) != op.negated),
            SetQualifier::ForAllValues => values.iter().all(|v| matches(v) != op.negated),
        }
    }

    /// The outcome when the key is absent from the context.
    fn when_absent(&self) -> bool {
        if self.op.if_exists {
            return true;
        }
        match self.op.set {
            SetQualifier::ForAllValues => true,
            SetQualifier::ForAnyValue => false,
            // AWS: a missing key never matches, so a negated operator holds.
            SetQualifier::None => self.op.negated,
        }
    }

    /// Does the request value `v` match any policy value under the positive operator?
    fn matches_any(&self, v: &str, ctx: &Context) -> bool {
        match (&self.values, self.op.base) {
            (Values::Text(ts), Base::StringEquals) => {
                ts.iter().any(|t| t.literal(ctx).is_some_and(|p| p == v))
            }
            (Values::Text(ts), Base::StringEqualsIgnoreCase) => {
                let v = v.to_lowercase();
                ts.iter()
                    .any(|t| t.literal(ctx).is_some_and(|p| p.to_lowercase() == v))
            }
            (Values::Text(ts), Base::StringLike) => ts
                .iter()
                .any(|t| t.pattern(ctx, false).is_some_and(|p| glob::matches(&p, v))),
            (Values::Text(ts), _) => ts.iter().any(|t| arn_matches(t, v, ctx)),
            (Values::Numbers(ns), Base::Numeric(cmp)) => {
                Decimal::parse(v).is_some_and(|v| ns.iter().any(|n| cmp.holds(v.cmp(n))))
            }
            (Values::Dates(ds), Base::Date(cmp)) => {
                Timestamp::parse(v).is_some_and(|v| ds.iter().any(|d| cmp.holds(v.cmp(d))))
            }
            (Values::Bools(bs), _) => parse_bool(v).is_some_and(|v| bs.contains(&v)),
            (Values::Nets(ns), _) => v
                .parse::<IpAddr>()
                .is_ok_and(|ip| ns.iter().any(|n| n.contains(ip))),
            _ => false,
        }
    }
}

fn arn_matches(t: &Template, v: &str, ctx: &Context) -> bool {
    if t.is_text("*") {
        return true;
    }
    t.pattern(ctx, true)
        .is_some_and(|p| glob::matches_arn(&p, v))
}
