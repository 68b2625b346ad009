//! The example key policy statements of the AWS KMS documentation: key administrators, key
//! users (with grants for AWS resources), and a deny of key deletion.

use super::*;
use crate::{decide, Decision};

const ADMIN: &str = "arn:aws:iam::111122223333:user/KMSAdminUser";
const USER: &str = "arn:aws:iam::111122223333:user/KMSUser";
const ROLE: &str = "arn:aws:iam::111122223333:role/ExampleRole";

fn console_policy(extra: &str) -> String {
    format!(
        r#"{{
  "Version": "2012-10-17",
  "Id": "key-consolepolicy-3",
  "Statement": [
    {{
      "Sid": "Enable IAM User Permissions",
      "Effect": "Allow",
      "Principal": {{"AWS": "arn:aws:iam::111122223333:root"}},
      "Action": "kms:*",
      "Resource": "*"
    }},
    {{
      "Sid": "Allow access for Key Administrators",
      "Effect": "Allow",
      "Principal": {{"AWS": "{ADMIN}"}},
      "Action": [
        "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
        "kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
        "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
        "kms:CancelKeyDeletion"
      ],
      "Resource": "*"
    }},
    {{
      "Sid": "Allow use of the key",
      "Effect": "Allow",
      "Principal": {{"AWS": ["{USER}", "{ROLE}"]}},
      "Action": [
        "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
        "kms:DescribeKey"
      ],
      "Resource": "*"
    }},
    {{
      "Sid": "Allow attachment of persistent resources",
      "Effect": "Allow",
      "Principal": {{"AWS": ["{USER}", "{ROLE}"]}},
      "Action": ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"],
      "Resource": "*",
      "Condition": {{"Bool": {{"kms:GrantIsForAWSResource": "true"}}}}
    }}{extra}
  ]
}}"#
    )
}

const DENY_DELETION: &str = r#",
    {
      "Sid": "Deny key deletion",
      "Effect": "Deny",
      "Principal": {"AWS": "*"},
      "Action": "kms:ScheduleKeyDeletion",
      "Resource": "*"
    }"#;

fn decision(policy: &Policy, principal: &str, action: &str, ctx: &Context) -> Decision {
    decide(Some(policy), None, false, &req(principal, action, KEY, ctx))
}

#[test]
fn key_administrators() {
    let p = key_policy(&console_policy(""));
    let c = Context::new();
    for action in [
        "kms:CreateAlias",
        "kms:CreateGrant",
        "kms:DescribeKey",
        "kms:EnableKeyRotation",
        "kms:ListResourceTags",
        "kms:PutKeyPolicy",
        "kms:UpdateKeyDescription",
        "kms:RevokeGrant",
        "kms:DisableKey",
        "kms:GetKeyPolicy",
        "kms:DeleteImportedKeyMaterial",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:ScheduleKeyDeletion",
        "kms:CancelKeyDeletion",
    ] {
        assert_eq!(decision(&p, ADMIN, action, &c), Decision::Allow, "{action}");
    }
    // Administrators manage the key but cannot use it.
    for action in [
        "kms:Encrypt",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:Sign",
    ] {
        assert_eq!(
            decision(&p, ADMIN, action, &c),
            Decision::ImplicitDeny,
            "{action}"
        );
    }
}

#[test]
fn key_users() {
    let p = key_policy(&console_policy(""));
    let c = Context::new();
    for principal in [USER, ROLE] {
        for action in [
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
            "kms:GenerateDataKey",
            "kms:GenerateDataKeyWithoutPlaintext",
            "kms:GenerateDataKeyPair",
            "kms:DescribeKey",
        ] {
            assert_eq!(
                decision(&p, principal, action, &c),
                Decision::Allow,
                "{action}"
            );
        }
        for action in [
            "kms:PutKeyPolicy",
            "kms:ScheduleKeyDeletion",
            "kms:DisableKey",
            "kms:Sign",
        ] {
            assert_eq!(
                decision(&p, principal, action, &c),
                Decision::ImplicitDeny,
                "{principal} {action}"
            );
        }
    }
}

#[test]
fn key_users_grants_only_for_aws_resources() {
    let p = key_policy(&console_policy(""));
    let for_aws = ctx(&[("kms:GrantIsForAWSResource", "true")]);
    let not_for_aws = ctx(&[("kms:GrantIsForAWSResource", "false")]);
    let absent = Context::new();
    for action in ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"] {
        assert_eq!(
            decision(&p, USER, action, &for_aws),
            Decision::Allow,
            "{action}"
        );
        assert_eq!(
            decision(&p, USER, action, &not_for_aws),
            Decision::ImplicitDeny,
            "{action}"
        );
        assert_eq!(
            decision(&p, USER, action, &absent),
            Decision::ImplicitDeny,
            "{action}"
        );
    }
    assert_eq!(
        decision(&p, USER, "kms:RetireGrant", &for_aws),
        Decision::ImplicitDeny
    );
}

#[test]
fn deny_key_deletion() {
    let c = Context::new();
    let without = key_policy(&console_policy(""));
    assert_eq!(
        decision(&without, ADMIN, "kms:ScheduleKeyDeletion", &c),
        Decision::Allow
    );
    let with = key_policy(&console_policy(DENY_DELETION));
    assert_eq!(with.statement_count(), 5);
    for principal in [ADMIN, USER, ROOT, MALLORY] {
        assert_eq!(
            decision(&with, principal, "kms:ScheduleKeyDeletion", &c),
            Decision::ExplicitDeny,
            "{principal}"
        );
    }
    // Everything else is as before.
    assert_eq!(
        decision(&with, ADMIN, "kms:CancelKeyDeletion", &c),
        Decision::Allow
    );
    assert_eq!(decision(&with, USER, "kms:Encrypt", &c), Decision::Allow);
}

#[test]
fn other_principals_go_through_the_root_statement() {
    let p = key_policy(&console_policy(""));
    let c = Context::new();
    let alice_may_decrypt = identity(
        r#"{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "kms:Decrypt",
            "Resource": "arn:aws:kms:us-east-1:111122223333:key/*"}}"#,
    );
    let r = req(ALICE, "kms:Decrypt", KEY, &c);
    assert_eq!(
        decide(Some(&p), Some(&alice_may_decrypt), false, &r),
        Decision::Allow
    );
    assert_eq!(decide(Some(&p), None, false, &r), Decision::ImplicitDeny);
    let r = req(ALICE, "kms:Encrypt", KEY, &c);
    assert_eq!(
        decide(Some(&p), Some(&alice_may_decrypt), false, &r),
        Decision::ImplicitDeny
    );
}
