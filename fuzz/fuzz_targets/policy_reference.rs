//! Differential: the policy evaluator against a small reference evaluator
//! written here from AWS's rules, on generated key and identity policies
//! (actions and `NotAction` with wildcards, principals, resources, and
//! `StringEquals`/`StringNotEquals`/`StringLike`/`Null` conditions with and
//! without `IfExists`) and generated requests. Every generated policy must
//! parse, and both evaluators must reach the same decision.
#![no_main]

use arca_policy::{decide, Context, Decision, Policy, PolicyKind, Request};
use libfuzzer_sys::fuzz_target;

const ACCOUNT_ROOT: &str = "arn:aws:iam::111122223333:root";
const USERS: [&str; 3] = [
    "arn:aws:iam::111122223333:user/app",
    "arn:aws:iam::111122223333:user/ops",
    ACCOUNT_ROOT,
];
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000001";
const OTHER_KEY: &str =
    "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-4000-8000-000000000002";
const ACTION_PATTERNS: [&str; 8] = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:*",
    "kms:Generate*",
    "*",
    "kms:describe?ey",
    "KMS:ENCRYPT",
    "kms:Re*",
];
const ACTIONS: [&str; 5] = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:DescribeKey",
    "kms:ReEncryptFrom",
];
const CONTEXT_KEY: &str = "kms:EncryptionContext:dept";
const VALUES: [&str; 4] = ["finance", "sales", "fin*", "s?les"];

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.next()) % from.len()]
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    StringEquals,
    StringNotEquals,
    StringLike,
    Null,
}

struct Condition {
    op: Op,
    if_exists: bool,
    values: Vec<&'static str>,
}

struct Statement {
    allow: bool,
    not_action: bool,
    actions: Vec<&'static str>,
    principals: Vec<&'static str>,
    resource: &'static str,
    conditions: Vec<Condition>,
}

fn generate(b: &mut Bytes, key_policy: bool) -> Vec<Statement> {
    let n = 1 + usize::from(b.next() % 4);
    (0..n)
        .map(|_| {
            let flags = b.next();
            let actions = (0..1 + b.next() % 3).map(|_| b.pick(&ACTION_PATTERNS)).collect();
            let principals = if key_policy {
                (0..1 + b.next() % 2)
                    .map(|_| b.pick(&["*", USERS[0], USERS[1], ACCOUNT_ROOT]))
                    .collect()
            } else {
                Vec::new()
            };
            let conditions = (0..b.next() % 3)
                .map(|_| {
                    let op = b.pick(&[Op::StringEquals, Op::StringNotEquals, Op::StringLike, Op::Null]);
                    let values = if op == Op::Null {
                        vec![b.pick(&["true", "false"])]
                    } else {
                        (0..1 + b.next() % 2).map(|_| b.pick(&VALUES)).collect()
                    };
                    Condition {
                        op,
                        if_exists: op != Op::Null && b.next() % 2 == 0,
                        values,
                    }
                })
                .collect();
            Statement {
                allow: flags & 1 == 0,
                not_action: flags & 2 != 0,
                actions,
                principals,
                resource: b.pick(&["*", KEY, OTHER_KEY, "arn:aws:kms:us-east-1:111122223333:key/*"]),
                conditions,
            }
        })
        .collect()
}

fn to_json(statements: &[Statement]) -> String {
    let list: Vec<serde_json::Value> = statements
        .iter()
        .map(|s| {
            let mut st = serde_json::json!({
                "Effect": if s.allow { "Allow" } else { "Deny" },
                "Resource": s.resource,
            });
            st[if s.not_action { "NotAction" } else { "Action" }] = serde_json::json!(s.actions);
            if !s.principals.is_empty() {
                st["Principal"] = serde_json::json!({ "AWS": s.principals });
            }
            // One block per operator: a later condition with the same
            // operator and key replaces the earlier one in JSON, so the
            // reference sees only the last one too.
            let mut block = serde_json::Map::new();
            for c in &s.conditions {
                let name = match c.op {
                    Op::StringEquals => "StringEquals",
                    Op::StringNotEquals => "StringNotEquals",
                    Op::StringLike => "StringLike",
                    Op::Null => "Null",
                };
                let name = if c.if_exists { format!("{name}IfExists") } else { name.to_string() };
                block.insert(name, serde_json::json!({ CONTEXT_KEY: c.values }));
            }
            if !block.is_empty() {
                st["Condition"] = serde_json::Value::Object(block);
            }
            st
        })
        .collect();
    serde_json::json!({ "Version": "2012-10-17", "Statement": list }).to_string()
}

/// `*` any run, `?` one character.
fn glob(pattern: &str, text: &str, fold: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if fold {
        (pattern.to_lowercase().chars().collect(), text.to_lowercase().chars().collect())
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| go(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first() == Some(c) && go(rest, &t[1..]),
        }
    }
    go(&p, &t)
}

#[derive(PartialEq, PartialOrd, Clone, Copy)]
enum Reach {
    None,
    ViaRoot,
    Direct,
}

struct Asked<'a> {
    principal: &'a str,
    action: &'a str,
    resource: &'a str,
    dept: Option<&'a str>,
}

/// The last condition of each operator wins (as in the JSON); all must hold.
fn conditions_hold(conds: &[Condition], dept: Option<&str>) -> bool {
    let mut last: Vec<&Condition> = Vec::new();
    for c in conds {
        last.retain(|l| !(l.op == c.op && l.if_exists == c.if_exists));
        last.push(c);
    }
    last.iter().all(|c| match (c.op, dept) {
        (Op::Null, d) => (c.values[0] == "true") == d.is_none(),
        (_, None) => c.if_exists || c.op == Op::StringNotEquals,
        (Op::StringEquals, Some(d)) => c.values.iter().any(|v| *v == d),
        (Op::StringNotEquals, Some(d)) => c.values.iter().all(|v| *v != d),
        (Op::StringLike, Some(d)) => c.values.iter().any(|v| glob(v, d, false)),
    })
}

/// (explicit deny, best reach of an Allow) of one policy.
fn reference(statements: &[Statement], key_policy: bool, a: &Asked) -> (bool, Reach) {
    let mut deny = false;
    let mut allow = Reach::None;
    for s in statements {
        let reach = if !key_policy {
            Reach::Direct
        } else {
            s.principals
                .iter()
                .map(|p| {
                    if *p == "*" || *p == a.principal {
                        Reach::Direct
                    } else if *p == ACCOUNT_ROOT {
                        Reach::ViaRoot
                    } else {
                        Reach::None
                    }
                })
                .fold(Reach::None, |x, y| if y > x { y } else { x })
        };
        let action = s.actions.iter().any(|p| glob(p, a.action, true)) != s.not_action;
        let resource = glob(s.resource, a.resource, false);
        if reach == Reach::None || !action || !resource || !conditions_hold(&s.conditions, a.dept) {
            continue;
        }
        if s.allow {
            if reach > allow {
                allow = reach;
            }
        } else {
            deny = true;
        }
    }
    (deny, allow)
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let key = generate(&mut b, true);
    let identity = if b.next() % 4 == 0 { None } else { Some(generate(&mut b, false)) };
    let granted = b.next() % 5 == 0;
    let asked = Asked {
        principal: b.pick(&USERS),
        action: b.pick(&ACTIONS),
        resource: KEY,
        dept: b.pick(&[None, Some("finance"), Some("sales"), Some("fin")]),
    };
    let key_doc = to_json(&key);
    let key_policy = Policy::parse(&key_doc, PolicyKind::Key)
        .unwrap_or_else(|e| panic!("a generated key policy is refused: {e}\n{key_doc}"));
    let identity_policy = identity.as_ref().map(|s| {
        let doc = to_json(s);
        Policy::parse(&doc, PolicyKind::Identity)
            .unwrap_or_else(|e| panic!("a generated identity policy is refused: {e}\n{doc}"))
    });
    let mut ctx = Context::new();
    ctx.insert_principal(asked.principal);
    if let Some(d) = asked.dept {
        ctx.insert_encryption_context([("dept", d)]);
    }
    let req = Request {
        principal: asked.principal,
        action: asked.action,
        resource: asked.resource,
        context: &ctx,
    };
    let got = decide(Some(&key_policy), identity_policy.as_ref(), granted, &req);

    let (key_deny, key_allow) = reference(&key, true, &asked);
    let (id_deny, id_allow) = identity
        .as_ref()
        .map_or((false, Reach::None), |s| reference(s, false, &asked));
    let want = if key_deny || id_deny {
        Decision::ExplicitDeny
    } else if granted
        || key_allow == Reach::Direct
        || (key_allow == Reach::ViaRoot && id_allow == Reach::Direct)
    {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    };
    assert_eq!(
        got, want,
        "request {} {} {:?}\nkey policy {key_doc}\nidentity {:?}\ngranted {granted}",
        asked.principal,
        asked.action,
        asked.dept,
        identity.as_ref().map(|s| to_json(s))
    );
});
