//! The action names a policy may use, and `Action` / `NotAction` patterns.

use crate::glob::{self, Tok};

/// Every action a policy may name: all AWS KMS actions, then Arca's own. This is the one
/// list; validation and [`is_known_action`] read it.
const KNOWN_ACTIONS: &[&str] = &[
    // AWS KMS.
    "kms:CancelKeyDeletion",
    "kms:ConnectCustomKeyStore",
    "kms:CreateAlias",
    "kms:CreateCustomKeyStore",
    "kms:CreateGrant",
    "kms:CreateKey",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DeleteCustomKeyStore",
    "kms:DeleteImportedKeyMaterial",
    "kms:Decapsulate",
    "kms:DeriveSharedSecret",
    "kms:DescribeCustomKeyStores",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:DisconnectCustomKeyStore",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encapsulate",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateMac",
    "kms:GenerateRandom",
    "kms:GetKeyLastUsage",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:GetParametersForImport",
    "kms:GetPublicKey",
    "kms:ImportKeyMaterial",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListKeys",
    "kms:ListResourceTags",
    "kms:ListRetirableGrants",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:ReplicateKey",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:Sign",
    "kms:SynchronizeMultiRegionKeys",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateCustomKeyStore",
    "kms:UpdateKeyDescription",
    "kms:UpdatePrimaryRegion",
    "kms:Verify",
    "kms:VerifyMac",
    // Arca extensions: key versions and certificates.
    "arca:CreateKeyVersion",
    "arca:ListKeyVersions",
    "arca:DescribeKeyVersion",
    "arca:GenerateCertificateSigningRequest",
    // Arca administration.
    "arca:CreateAccessKey",
    "arca:ListAccessKeys",
    "arca:DeleteAccessKey",
    "arca:PutUserPolicy",
    "arca:GetUserPolicy",
    "arca:DeleteUserPolicy",
    "arca:AddNode",
    "arca:RemoveNode",
    "arca:ClusterStatus",
    "arca:AdvanceClock",
    "arca:RotateRootKey",
    "arca:Backup",
];

/// Service prefixes an action may have.
const PREFIXES: &[&str] = &["kms", "arca"];

/// Every action a policy may name, in their canonical spelling (`kms:Encrypt`, ...).
pub fn known_actions() -> &'static [&'static str] {
    KNOWN_ACTIONS
}

/// Is `action` (with its prefix, any case) a known action? `kms:encrypt` is; `kms:*` is a
/// pattern, not an action, and is not.
pub fn is_known_action(action: &str) -> bool {
    KNOWN_ACTIONS.iter().any(|a| a.eq_ignore_ascii_case(action))
}

/// One entry of `Action` or `NotAction`, compiled for case-insensitive matching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ActionPattern {
    /// The pattern, lower-cased.
    tokens: Vec<Tok>,
}

impl ActionPattern {
    /// Validates and compiles one action pattern. The error names the pattern.
    ///
    /// `*` alone matches every action. Otherwise the pattern is `prefix:name` with a literal
    /// prefix from [`PREFIXES`]; a name with wildcards must match at least one known action,
    /// a name without must be a known action.
    pub(crate) fn parse(s: &str) -> Result<ActionPattern, String> {
        if s.contains("${") {
            return Err(format!(
                "policy variables are not allowed in actions (`{s}`)"
            ));
        }
        let pattern = ActionPattern {
            tokens: glob::compile(&s.to_ascii_lowercase()),
        };
        if s == "*" {
            return Ok(pattern);
        }
        let Some((prefix, name)) = s.split_once(':') else {
            return Err(format!(
                "action `{s}` has no service prefix (expected `kms:...` or `arca:...`)"
            ));
        };
        if !PREFIXES.iter().any(|p| p.eq_ignore_ascii_case(prefix)) {
            return Err(format!(
                "unknown service prefix `{prefix}` in action `{s}` (expected `kms` or `arca`)"
            ));
        }
        if name.is_empty() {
            return Err(format!("action `{s}` has no name after the prefix"));
        }
        if name.contains(['*', '?']) {
            if !KNOWN_ACTIONS.iter().any(|a| pattern.matches(a)) {
                return Err(format!("action pattern `{s}` matches no known action"));
            }
        } else if !is_known_action(s) {
            return Err(format!("unknown action `{s}`"));
        }
        Ok(pattern)
    }

    /// Does this pattern match `action` (compared without regard to ASCII case)?
    pub(crate) fn matches(&self, action: &str) -> bool {
        glob::matches_by(&self.tokens, action, |c| c.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_has_no_duplicates_and_valid_prefixes() {
        for (i, a) in KNOWN_ACTIONS.iter().enumerate() {
            let (prefix, name) = a.split_once(':').expect("prefix");
            assert!(PREFIXES.contains(&prefix), "{a}");
            assert!(!name.is_empty() && !name.contains(['*', '?', ':']), "{a}");
            assert!(
                !KNOWN_ACTIONS[..i].iter().any(|b| b.eq_ignore_ascii_case(a)),
                "duplicate {a}"
            );
        }
    }

    #[test]
    fn known_actions_are_case_insensitive() {
        assert!(is_known_action("kms:Encrypt"));
        assert!(is_known_action("KMS:ENCRYPT"));
        assert!(is_known_action("arca:AdvanceClock"));
        assert!(!is_known_action("kms:Encrpyt"));
        assert!(!is_known_action("kms:*"));
        assert!(!is_known_action("Encrypt"));
    }

    #[test]
    fn patterns_validate() {
        assert!(ActionPattern::parse("*").is_ok());
        assert!(ActionPattern::parse("kms:*").is_ok());
        assert!(ActionPattern::parse("arca:*").is_ok());
        assert!(ActionPattern::parse("kms:Get*").is_ok());
        assert!(ActionPattern::parse("kms:ReEncrypt*").is_ok());
        assert!(ActionPattern::parse("kms:Encrypt").is_ok());
        assert!(ActionPattern::parse("kms:encrypt").is_ok());
        let err = ActionPattern::parse("kms:Encrpyt").unwrap_err();
        assert_eq!(err, "unknown action `kms:Encrpyt`");
        let err = ActionPattern::parse("kms:Foo*").unwrap_err();
        assert!(err.contains("matches no known action"), "{err}");
        let err = ActionPattern::parse("s3:GetObject").unwrap_err();
        assert!(err.contains("unknown service prefix `s3`"), "{err}");
        let err = ActionPattern::parse("k*:Encrypt").unwrap_err();
        assert!(err.contains("unknown service prefix"), "{err}");
        let err = ActionPattern::parse("Encrypt").unwrap_err();
        assert!(err.contains("no service prefix"), "{err}");
        assert!(ActionPattern::parse("kms:").is_err());
        assert!(ActionPattern::parse("").is_err());
        let err = ActionPattern::parse("kms:${aws:username}").unwrap_err();
        assert!(err.contains("policy variables"), "{err}");
    }

    #[test]
    fn patterns_match_case_insensitively() {
        let p = ActionPattern::parse("kms:Get*").unwrap();
        assert!(p.matches("kms:GetPublicKey"));
        assert!(p.matches("KMS:getkeypolicy"));
        assert!(!p.matches("kms:Encrypt"));
        assert!(!p.matches("arca:GetUserPolicy"));
        let p = ActionPattern::parse("kms:ReEncrypt*").unwrap();
        assert!(p.matches("kms:ReEncryptFrom") && p.matches("kms:ReEncryptTo"));
        let p = ActionPattern::parse("kms:Generate?ac").unwrap();
        assert!(p.matches("kms:GenerateMac"));
        assert!(!p.matches("kms:GenerateMacs"));
        let p = ActionPattern::parse("*").unwrap();
        assert!(p.matches("arca:AddNode") && p.matches("kms:Sign"));
    }
}
