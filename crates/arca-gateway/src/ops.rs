//! The operations Arca serves, as one enum: named once, parsed once from the
//! protocol's operation name, and carrying what authorization, metrics and
//! the audit log need (the policy action, the namespace, the scope).
//!
//! A front-end (the AWS JSON protocol today) turns its operation name into an
//! [`Op`]; everything after that — authorization, dispatch, audit — matches on
//! the enum, never on strings.

/// Where an operation's permission comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// On one or more keys: the key policy (and grants) decide.
    Key,
    /// On no particular key: the caller's identity policy decides.
    Account,
    /// Cluster administration (`ArcaAdmin.*`): the identity policy decides.
    Admin,
}

macro_rules! operations {
    ($( $op:ident => $action:literal, $scope:ident; )*) => {
        /// Every operation Arca serves.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Op { $( $op, )* }

        impl Op {
            /// Every operation, in declaration order.
            pub const ALL: &'static [Op] = &[ $( Op::$op, )* ];

            /// The operation's name (`Encrypt`, `ClusterStatus`, ...): a
            /// fixed string, so that metric labels stay a bounded set.
            pub fn name(self) -> &'static str {
                match self { $( Op::$op => stringify!($op), )* }
            }

            /// The policy action that allows it (`kms:Encrypt`,
            /// `arca:CreateKeyVersion`, `arca:ClusterStatus`).
            pub fn action(self) -> &'static str {
                match self { $( Op::$op => $action, )* }
            }

            pub fn scope(self) -> Scope {
                match self { $( Op::$op => Scope::$scope, )* }
            }

            fn from_name(name: &str) -> Option<Op> {
                match name { $( stringify!($op) => Some(Op::$op), )* _ => None }
            }
        }
    };
}

operations! {
    // Keys and symmetric crypto.
    CreateKey => "kms:CreateKey", Account;
    DescribeKey => "kms:DescribeKey", Key;
    ListKeys => "kms:ListKeys", Account;
    Encrypt => "kms:Encrypt", Key;
    Decrypt => "kms:Decrypt", Key;
    GenerateDataKey => "kms:GenerateDataKey", Key;
    GenerateDataKeyWithoutPlaintext => "kms:GenerateDataKeyWithoutPlaintext", Key;
    GenerateRandom => "kms:GenerateRandom", Account;
    PutKeyPolicy => "kms:PutKeyPolicy", Key;
    GetKeyPolicy => "kms:GetKeyPolicy", Key;
    ListKeyPolicies => "kms:ListKeyPolicies", Key;
    GetKeyLastUsage => "kms:GetKeyLastUsage", Key;
    // Lifecycle, aliases, tags, rotation.
    EnableKey => "kms:EnableKey", Key;
    DisableKey => "kms:DisableKey", Key;
    UpdateKeyDescription => "kms:UpdateKeyDescription", Key;
    ScheduleKeyDeletion => "kms:ScheduleKeyDeletion", Key;
    CancelKeyDeletion => "kms:CancelKeyDeletion", Key;
    CreateAlias => "kms:CreateAlias", Key;
    UpdateAlias => "kms:UpdateAlias", Key;
    DeleteAlias => "kms:DeleteAlias", Key;
    ListAliases => "kms:ListAliases", Account;
    TagResource => "kms:TagResource", Key;
    UntagResource => "kms:UntagResource", Key;
    ListResourceTags => "kms:ListResourceTags", Key;
    EnableKeyRotation => "kms:EnableKeyRotation", Key;
    DisableKeyRotation => "kms:DisableKeyRotation", Key;
    GetKeyRotationStatus => "kms:GetKeyRotationStatus", Key;
    RotateKeyOnDemand => "kms:RotateKeyOnDemand", Key;
    ListKeyRotations => "kms:ListKeyRotations", Key;
    // Imported key material.
    GetParametersForImport => "kms:GetParametersForImport", Key;
    ImportKeyMaterial => "kms:ImportKeyMaterial", Key;
    DeleteImportedKeyMaterial => "kms:DeleteImportedKeyMaterial", Key;
    // Asymmetric keys, HMAC, re-encryption.
    Sign => "kms:Sign", Key;
    Verify => "kms:Verify", Key;
    GetPublicKey => "kms:GetPublicKey", Key;
    GenerateMac => "kms:GenerateMac", Key;
    VerifyMac => "kms:VerifyMac", Key;
    GenerateDataKeyPair => "kms:GenerateDataKeyPair", Key;
    GenerateDataKeyPairWithoutPlaintext => "kms:GenerateDataKeyPairWithoutPlaintext", Key;
    DeriveSharedSecret => "kms:DeriveSharedSecret", Key;
    Encapsulate => "kms:Encapsulate", Key;
    Decapsulate => "kms:Decapsulate", Key;
    // Authorized as ReEncryptFrom on the source and ReEncryptTo on the destination.
    ReEncrypt => "kms:ReEncrypt", Key;
    // Extensions in the TrentService namespace.
    CreateKeyVersion => "arca:CreateKeyVersion", Key;
    ListKeyVersions => "arca:ListKeyVersions", Key;
    DescribeKeyVersion => "arca:DescribeKeyVersion", Key;
    GenerateCertificateSigningRequest => "arca:GenerateCertificateSigningRequest", Key;
    // Grants.
    CreateGrant => "kms:CreateGrant", Key;
    ListGrants => "kms:ListGrants", Key;
    ListRetirableGrants => "kms:ListRetirableGrants", Account;
    RetireGrant => "kms:RetireGrant", Key;
    RevokeGrant => "kms:RevokeGrant", Key;
    // Cluster administration (ArcaAdmin).
    AddNode => "arca:AddNode", Admin;
    RemoveNode => "arca:RemoveNode", Admin;
    ClusterStatus => "arca:ClusterStatus", Admin;
    AdvanceClock => "arca:AdvanceClock", Admin;
    RotateRootKey => "arca:RotateRootKey", Admin;
    CreateAccessKey => "arca:CreateAccessKey", Admin;
    DeleteAccessKey => "arca:DeleteAccessKey", Admin;
    ListAccessKeys => "arca:ListAccessKeys", Admin;
    PutUserPolicy => "arca:PutUserPolicy", Admin;
    GetUserPolicy => "arca:GetUserPolicy", Admin;
    DeleteUserPolicy => "arca:DeleteUserPolicy", Admin;
    Backup => "arca:Backup", Admin;
}

/// The AWS JSON protocol's service prefix of the KMS operations.
pub const KMS_PREFIX: &str = "TrentService.";
/// The prefix of the cluster administration operations.
pub const ADMIN_PREFIX: &str = "ArcaAdmin.";

impl Op {
    /// The operation an `X-Amz-Target` names: KMS and extension operations
    /// under `TrentService.`, administration under `ArcaAdmin.`.
    pub fn from_target(target: &str) -> Option<Op> {
        if let Some(name) = target.strip_prefix(KMS_PREFIX) {
            return Op::from_name(name).filter(|op| op.scope() != Scope::Admin);
        }
        if let Some(name) = target.strip_prefix(ADMIN_PREFIX) {
            return Op::from_name(name).filter(|op| op.scope() == Scope::Admin);
        }
        None
    }

    pub fn is_admin(self) -> bool {
        self.scope() == Scope::Admin
    }

    /// The `X-Amz-Target` that names it.
    pub fn target(self) -> String {
        let prefix = if self.is_admin() {
            ADMIN_PREFIX
        } else {
            KMS_PREFIX
        };
        format!("{prefix}{}", self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_name_operations_in_their_namespace_only() {
        assert_eq!(Op::from_target("TrentService.Encrypt"), Some(Op::Encrypt));
        assert_eq!(
            Op::from_target("ArcaAdmin.ClusterStatus"),
            Some(Op::ClusterStatus)
        );
        // An admin operation is not a KMS one, and the reverse.
        assert_eq!(Op::from_target("TrentService.ClusterStatus"), None);
        assert_eq!(Op::from_target("ArcaAdmin.Encrypt"), None);
        for bad in [
            "",
            "Encrypt",
            "TrentService.",
            "TrentService.encrypt",
            "TrentService.Nope",
        ] {
            assert_eq!(Op::from_target(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_operation_round_trips_and_names_its_action() {
        for op in Op::ALL {
            assert_eq!(Op::from_target(&op.target()), Some(*op));
            let (ns, name) = op.action().split_once(':').unwrap();
            assert!(ns == "kms" || ns == "arca", "{op:?}");
            // The action names the operation, except ReEncrypt's two halves.
            assert_eq!(name, op.name());
            if op.is_admin() {
                assert_eq!(ns, "arca");
            }
        }
        let names: std::collections::BTreeSet<_> = Op::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names.len(), Op::ALL.len());
    }
}
