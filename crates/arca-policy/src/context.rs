//! The request context: condition key → values.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::keys::normalize;

/// The condition context of one request: each condition key maps to zero or more values.
///
/// Key names are case-insensitive, including the part after `kms:EncryptionContext:`,
/// `aws:ResourceTag/` and `aws:RequestTag/` (see the crate documentation). Values keep
/// their case; the operator decides how they compare.
///
/// A key's values form a set: inserting a value the key already has changes nothing, so
/// filling the same key from two places is harmless. A key that was never inserted is
/// *absent*. A key inserted with no values is treated as absent too, by every operator
/// (`Null`, `...IfExists`, `ForAllValues`, ...).
///
/// The evaluator reads no clock and no network: the caller inserts `aws:CurrentTime`,
/// `aws:EpochTime`, `aws:SourceIp`, `aws:SecureTransport` and the rest as they apply.
///
/// A context may stand on shared *layers* ([`Context::layered`]): keys that are the same
/// for many requests (the caller's, the key's) are built once and shared; a key this
/// context has itself hides the same key in its layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    entries: BTreeMap<String, Vec<String>>,
    layers: Vec<Arc<Context>>,
}

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty context on top of `layers`, looked up in order after its own keys.
    pub fn layered(layers: impl IntoIterator<Item = Arc<Context>>) -> Self {
        Self {
            entries: BTreeMap::new(),
            layers: layers.into_iter().collect(),
        }
    }

    /// Adds one value to `key`'s values, unless it is already there.
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.insert_all(key, [value.into()]);
    }

    /// Adds values to `key`'s values, skipping those already there. With no values, the key
    /// is recorded but still counts as absent.
    pub fn insert_all(&mut self, key: &str, values: impl IntoIterator<Item = String>) {
        let entry = self.entries.entry(normalize(key)).or_default();
        let values = values.into_iter();
        // A few values: a linear look per value. Many (an encryption context
        // has up to thousands of keys): a set, so the cost stays linear.
        if entry.len() + values.size_hint().0 <= 16 {
            for v in values {
                if !entry.contains(&v) {
                    entry.push(v);
                }
            }
            return;
        }
        let mut seen: std::collections::HashSet<String> = entry.iter().cloned().collect();
        for v in values {
            if seen.insert(v.clone()) {
                entry.push(v);
            }
        }
    }

    /// The values of `key` (any case), or `None` if it was never inserted.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.lookup(&normalize(key))
    }

    fn lookup(&self, key: &str) -> Option<&[String]> {
        match self.entries.get(key) {
            Some(v) => Some(v.as_slice()),
            None => self.layers.iter().find_map(|l| l.lookup(key)),
        }
    }

    /// The values of `key` when it has at least one; what the evaluator sees.
    pub(crate) fn present(&self, lookup: &str) -> Option<&[String]> {
        self.lookup(lookup).filter(|v| !v.is_empty())
    }

    /// Inserts an encryption context: `kms:EncryptionContext:<key>` → value for each pair, and
    /// every key, as written, under `kms:EncryptionContextKeys`.
    ///
    /// Two pairs whose keys differ only in case land under the same
    /// `kms:EncryptionContext:<key>` entry, which then has two values.
    pub fn insert_encryption_context<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        let mut keys = Vec::new();
        for (k, v) in pairs {
            self.insert(&format!("kms:EncryptionContext:{k}"), v);
            keys.push(k.to_string());
        }
        // All at once: one by one would cost a look through the list each.
        self.insert_all("kms:EncryptionContextKeys", keys);
    }

    /// Inserts the keys that describe the caller, derived from its ARN:
    /// `aws:PrincipalArn`, `aws:PrincipalAccount`, `kms:CallerAccount`, `aws:PrincipalType`
    /// (`Account` for the account root, `User` for IAM users, `AssumedRole` for
    /// `sts:...:assumed-role/...`) and, for IAM users, `aws:username` (the name after the
    /// last `/`). Anything that is not an IAM or STS ARN gets `aws:PrincipalArn` only.
    pub fn insert_principal(&mut self, arn: &str) {
        self.insert("aws:PrincipalArn", arn);
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [_, _, service, _, account, resource] = parts.as_slice() else {
            return;
        };
        if !matches!(*service, "iam" | "sts") || account.is_empty() {
            return;
        }
        self.insert("aws:PrincipalAccount", *account);
        self.insert("kms:CallerAccount", *account);
        if *service == "iam" && *resource == "root" {
            self.insert("aws:PrincipalType", "Account");
        } else if *service == "iam" && resource.starts_with("user/") {
            self.insert("aws:PrincipalType", "User");
            let name = resource.rsplit('/').next().unwrap_or(resource);
            self.insert("aws:username", name);
        } else if *service == "sts" && resource.starts_with("assumed-role/") {
            self.insert("aws:PrincipalType", "AssumedRole");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_looked_up_after_own_keys() {
        let mut caller = Context::new();
        caller.insert("aws:username", "app");
        caller.insert("aws:SourceIp", "10.0.0.1");
        let caller = Arc::new(caller);
        let mut key = Context::new();
        key.insert("kms:KeySpec", "SYMMETRIC_DEFAULT");
        let mut c = Context::layered([caller.clone(), Arc::new(key)]);
        c.insert("aws:SourceIp", "10.0.0.2");
        assert_eq!(c.get("AWS:USERNAME"), Some(&["app".to_owned()][..]));
        assert_eq!(
            c.get("kms:keyspec"),
            Some(&["SYMMETRIC_DEFAULT".to_owned()][..])
        );
        // Its own key hides the layer's.
        assert_eq!(c.get("aws:SourceIp"), Some(&["10.0.0.2".to_owned()][..]));
        assert_eq!(c.get("aws:userid"), None);
        assert_eq!(
            caller.get("aws:SourceIp"),
            Some(&["10.0.0.1".to_owned()][..])
        );
    }

    #[test]
    fn keys_are_case_insensitive_values_are_not() {
        let mut c = Context::new();
        c.insert("kms:EncryptionContext:Dept", "Finance");
        c.insert("KMS:ENCRYPTIONCONTEXT:DEPT", "finance");
        assert_eq!(
            c.get("kms:encryptioncontext:dept"),
            Some(&["Finance".to_owned(), "finance".to_owned()][..])
        );
        assert_eq!(c.get("kms:EncryptionContext:Other"), None);
    }

    #[test]
    fn values_are_a_set() {
        let mut c = Context::new();
        c.insert("aws:username", "alice");
        c.insert("AWS:UserName", "alice");
        c.insert_all("aws:username", ["alice".to_owned(), "bob".to_owned()]);
        assert_eq!(
            c.get("aws:username"),
            Some(&["alice".to_owned(), "bob".to_owned()][..])
        );
    }

    #[test]
    fn many_values_stay_a_set_in_order() {
        // Thousands of encryption-context keys, each once, some twice: the
        // set keeps first-seen order and no duplicates (and costs linear time).
        let mut c = Context::new();
        let pairs: Vec<(String, String)> = (0..4000)
            .chain(0..10)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        c.insert_encryption_context(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let keys = c.get("kms:EncryptionContextKeys").unwrap();
        assert_eq!(keys.len(), 4000);
        assert_eq!(keys[0], "k0");
        assert_eq!(keys[3999], "k3999");
        c.insert_all(
            "kms:EncryptionContextKeys",
            ["k5".to_owned(), "new".to_owned()],
        );
        assert_eq!(c.get("kms:EncryptionContextKeys").unwrap().len(), 4001);
    }

    #[test]
    fn empty_values_count_as_absent() {
        let mut c = Context::new();
        c.insert_all("aws:TagKeys", Vec::new());
        assert_eq!(c.get("aws:TagKeys"), Some(&[][..]));
        assert_eq!(c.present("aws:tagkeys"), None);
        c.insert_all("aws:TagKeys", ["a".to_owned(), "b".to_owned()]);
        assert_eq!(c.present("aws:tagkeys").map(<[String]>::len), Some(2));
    }

    #[test]
    fn encryption_context_helper() {
        let mut c = Context::new();
        c.insert_encryption_context([("Dept", "IT"), ("Project", "x")]);
        assert_eq!(
            c.get("kms:EncryptionContext:dept"),
            Some(&["IT".to_owned()][..])
        );
        assert_eq!(
            c.get("kms:EncryptionContextKeys"),
            Some(&["Dept".to_owned(), "Project".to_owned()][..])
        );
    }

    #[test]
    fn principal_helper() {
        let mut c = Context::new();
        c.insert_principal("arn:aws:iam::111122223333:user/dev/alice");
        assert_eq!(c.get("aws:username"), Some(&["alice".to_owned()][..]));
        assert_eq!(c.get("aws:PrincipalType"), Some(&["User".to_owned()][..]));
        assert_eq!(
            c.get("aws:PrincipalAccount"),
            Some(&["111122223333".to_owned()][..])
        );
        assert_eq!(c.get("kms:CallerAccount"), c.get("aws:PrincipalAccount"));

        let mut c = Context::new();
        c.insert_principal("arn:aws:iam::111122223333:root");
        assert_eq!(
            c.get("aws:PrincipalType"),
            Some(&["Account".to_owned()][..])
        );
        assert_eq!(c.get("aws:username"), None);

        let mut c = Context::new();
        c.insert_principal("not an arn");
        assert_eq!(
            c.get("aws:PrincipalArn"),
            Some(&["not an arn".to_owned()][..])
        );
        assert_eq!(c.get("aws:PrincipalAccount"), None);
    }
}
