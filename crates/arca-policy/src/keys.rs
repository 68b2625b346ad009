//! The condition keys a policy may use, and what type of value each holds.
//!
//! Key names are compared without regard to case, including the part after the prefix of
//! `kms:EncryptionContext:`, `aws:ResourceTag/` and `aws:RequestTag/` keys: IAM documents
//! context key names as case-insensitive. A condition that must see the exact case of an
//! encryption context key uses `kms:EncryptionContextKeys`, whose values are compared as
//! written.

/// The type of a key's values, which decides the operators it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyType {
    String,
    /// An ARN: string and ARN operators.
    Arn,
    Numeric,
    Date,
    /// `aws:EpochTime`: date and numeric operators.
    EpochTime,
    Bool,
    Ip,
}

impl KeyType {
    /// Name for error messages.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            KeyType::String => "a string key",
            KeyType::Arn => "an ARN key",
            KeyType::Numeric => "a numeric key",
            KeyType::Date => "a date key",
            KeyType::EpochTime => "a date/numeric key",
            KeyType::Bool => "a boolean key",
            KeyType::Ip => "an IP address key",
        }
    }
}

struct KeyDef {
    /// Canonical spelling; a prefix (ending in `:` or `/`) for families of keys.
    name: &'static str,
    ty: KeyType,
    /// Can a request carry more than one value for this key?
    multi: bool,
}

const fn key(name: &'static str, ty: KeyType) -> KeyDef {
    KeyDef {
        name,
        ty,
        multi: false,
    }
}

const fn multi(name: &'static str, ty: KeyType) -> KeyDef {
    KeyDef {
        name,
        ty,
        multi: true,
    }
}

/// Keys matched by their whole name.
const EXACT_KEYS: &[KeyDef] = &[
    // AWS KMS condition keys.
    multi("kms:EncryptionContextKeys", KeyType::String),
    key("kms:EncryptionAlgorithm", KeyType::String),
    key("kms:SigningAlgorithm", KeyType::String),
    key("kms:MessageType", KeyType::String),
    key("kms:MacAlgorithm", KeyType::String),
    key("kms:KeyAgreementAlgorithm", KeyType::String),
    key("kms:KeySpec", KeyType::String),
    key("kms:KeyUsage", KeyType::String),
    key("kms:KeyOrigin", KeyType::String),
    key("kms:CallerAccount", KeyType::String),
    key("kms:RequestAlias", KeyType::String),
    multi("kms:ResourceAliases", KeyType::String),
    multi("kms:GrantOperations", KeyType::String),
    key("kms:GranteePrincipal", KeyType::Arn),
    key("kms:RetiringPrincipal", KeyType::Arn),
    key("kms:GrantIsForAWSResource", KeyType::Bool),
    key("kms:GrantConstraintType", KeyType::String),
    key(
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        KeyType::Numeric,
    ),
    key("kms:BypassPolicyLockoutSafetyCheck", KeyType::Bool),
    key("kms:ViaService", KeyType::String),
    key("kms:WrappingAlgorithm", KeyType::String),
    key("kms:WrappingKeySpec", KeyType::String),
    key("kms:ValidTo", KeyType::Date),
    key("kms:ExpirationModel", KeyType::String),
    key("kms:ImportType", KeyType::String),
    key("kms:DataKeyPairSpec", KeyType::String),
    key("kms:MultiRegion", KeyType::Bool),
    key("kms:MultiRegionKeyType", KeyType::String),
    key("kms:PrimaryRegion", KeyType::String),
    key("kms:ReplicaRegion", KeyType::String),
    key("kms:ReEncryptOnSameKey", KeyType::Bool),
    key("kms:RotationPeriodInDays", KeyType::Numeric),
    key("kms:CustomerMasterKeySpec", KeyType::String),
    key("kms:CustomerMasterKeyUsage", KeyType::String),
    // AWS global condition keys.
    key("aws:PrincipalArn", KeyType::Arn),
    key("aws:username", KeyType::String),
    key("aws:userid", KeyType::String),
    key("aws:PrincipalAccount", KeyType::String),
    key("aws:PrincipalType", KeyType::String),
    multi("aws:TagKeys", KeyType::String),
    key("aws:SourceIp", KeyType::Ip),
    key("aws:CurrentTime", KeyType::Date),
    key("aws:EpochTime", KeyType::EpochTime),
    key("aws:SecureTransport", KeyType::Bool),
    key("aws:RequestedRegion", KeyType::String),
];

/// Key families: the prefix followed by a non-empty name of the caller's choosing.
const PREFIXED_KEYS: &[KeyDef] = &[
    key("kms:EncryptionContext:", KeyType::String),
    key("aws:ResourceTag/", KeyType::String),
    key("aws:RequestTag/", KeyType::String),
];

/// A validated condition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConditionKey {
    /// The name as the policy wrote it, for messages.
    pub(crate) written: String,
    /// The name as [`crate::Context`] stores it (lower case).
    pub(crate) lookup: String,
    pub(crate) ty: KeyType,
    pub(crate) multi: bool,
}

/// Normalises a key name for lookup in a [`crate::Context`].
pub(crate) fn normalize(name: &str) -> String {
    name.to_lowercase()
}

/// Validates a condition key name. The error names the key.
pub(crate) fn parse(name: &str) -> Result<ConditionKey, String> {
    let def = find(name).ok_or_else(|| format!("unknown condition key `{name}`"))?;
    Ok(ConditionKey {
        written: name.to_owned(),
        lookup: normalize(name),
        ty: def.ty,
        multi: def.multi,
    })
}

/// Is `name` a condition key a policy may use (any case)?
pub fn is_known_condition_key(name: &str) -> bool {
    find(name).is_some()
}

fn find(name: &str) -> Option<&'static KeyDef> {
    if let Some(def) = EXACT_KEYS
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
    {
        return Some(def);
    }
    PREFIXED_KEYS.iter().find(|d| {
        name.len() > d.name.len()
            && name
                .get(..d.name.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(d.name))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_keys_any_case() {
        assert!(is_known_condition_key("kms:EncryptionContextKeys"));
        assert!(is_known_condition_key("KMS:encryptioncontextkeys"));
        assert!(is_known_condition_key("aws:SourceIP"));
        assert!(!is_known_condition_key("kms:EncryptionContextt"));
        assert!(!is_known_condition_key("aws:PrincipalTag/team"));
        assert!(!is_known_condition_key(""));
    }

    #[test]
    fn prefixed_keys_need_a_suffix() {
        assert!(is_known_condition_key("kms:EncryptionContext:Dept"));
        assert!(is_known_condition_key("kms:encryptioncontext:dept"));
        assert!(is_known_condition_key("aws:ResourceTag/Owner"));
        assert!(is_known_condition_key("aws:RequestTag/ü"));
        assert!(!is_known_condition_key("kms:EncryptionContext:"));
        assert!(!is_known_condition_key("aws:ResourceTag/"));
        // A multi-byte character straddling the prefix length must not panic.
        assert!(!is_known_condition_key("aws:ResourceTaxé"));
    }

    #[test]
    fn parse_reports_type_and_lookup_name() {
        let k = parse("kms:EncryptionContext:Dept").unwrap();
        assert_eq!(k.lookup, "kms:encryptioncontext:dept");
        assert_eq!(k.ty, KeyType::String);
        assert!(!k.multi);
        assert!(parse("aws:TagKeys").unwrap().multi);
        assert_eq!(parse("aws:EpochTime").unwrap().ty, KeyType::EpochTime);
        assert_eq!(
            parse("kms:EncryptionContextt").unwrap_err(),
            "unknown condition key `kms:EncryptionContextt`"
        );
    }
}
