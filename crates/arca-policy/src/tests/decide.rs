//! `decide`: key policy, identity policy and grants together.

use super::*;
use crate::{decide, default_key_policy, Decision};

fn allow_identity(action: &str) -> Policy {
    identity(&format!(
        r#"{{"Statement": {{"Effect": "Allow", "Action": "{action}", "Resource": "*"}}}}"#
    ))
}

fn deny_identity(action: &str) -> Policy {
    identity(&format!(
        r#"{{"Statement": {{"Effect": "Deny", "Action": "{action}", "Resource": "*"}}}}"#
    ))
}

#[test]
fn root_delegation_needs_the_identity_policy() {
    let kp = key_policy(&default_key_policy("111122223333"));
    let c = Context::new();
    let r = req(ALICE, "kms:Encrypt", KEY, &c);
    assert_eq!(decide(Some(&kp), None, false, &r), Decision::ImplicitDeny);
    assert_eq!(
        decide(Some(&kp), Some(&allow_identity("kms:Encrypt")), false, &r),
        Decision::Allow
    );
    assert_eq!(
        decide(Some(&kp), Some(&allow_identity("kms:Decrypt")), false, &r),
        Decision::ImplicitDeny
    );
    // The root caller is named directly and needs no identity policy.
    let r = req(ROOT, "kms:Encrypt", KEY, &c);
    assert_eq!(decide(Some(&kp), None, false, &r), Decision::Allow);
}

#[test]
fn identity_policy_alone_is_not_enough_for_a_key() {
    // The key policy names only Bob; Alice's identity policy cannot reach the key.
    let kp = key_policy(&format!(
        r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"AWS": "{BOB}"}},
            "Action": "kms:*", "Resource": "*"}}}}"#
    ));
    let c = Context::new();
    let alice = req(ALICE, "kms:Encrypt", KEY, &c);
    assert_eq!(
        decide(Some(&kp), Some(&allow_identity("kms:*")), false, &alice),
        Decision::ImplicitDeny
    );
    let bob = req(BOB, "kms:Encrypt", KEY, &c);
    assert_eq!(decide(Some(&kp), None, false, &bob), Decision::Allow);
}

#[test]
fn other_accounts_do_not_inherit_root_delegation() {
    let kp = key_policy(&default_key_policy("111122223333"));
    let c = Context::new();
    let r = req(MALLORY, "kms:Decrypt", KEY, &c);
    assert_eq!(
        decide(Some(&kp), Some(&allow_identity("kms:*")), false, &r),
        Decision::ImplicitDeny
    );
}

#[test]
fn explicit_deny_wins_everywhere() {
    let c = Context::new();
    let r = req(ALICE, "kms:ScheduleKeyDeletion", KEY, &c);
    // Key policy allows directly, identity policy denies.
    let kp = key_policy(&format!(
        r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"AWS": "{ALICE}"}},
            "Action": "kms:*", "Resource": "*"}}}}"#
    ));
    assert_eq!(decide(Some(&kp), None, false, &r), Decision::Allow);
    assert_eq!(
        decide(
            Some(&kp),
            Some(&deny_identity("kms:ScheduleKeyDeletion")),
            false,
            &r
        ),
        Decision::ExplicitDeny
    );
    // Key policy denies; identity policy and a grant allow.
    let kp = key_policy(&format!(
        r#"{{"Statement": [
            {{"Effect": "Allow", "Principal": {{"AWS": "{ALICE}"}}, "Action": "kms:*", "Resource": "*"}},
            {{"Effect": "Deny", "Principal": "*", "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}}]}}"#
    ));
    assert_eq!(
        decide(Some(&kp), Some(&allow_identity("kms:*")), true, &r),
        Decision::ExplicitDeny
    );
    // Without a key (account-level action), an identity deny still wins over an allow.
    let both = identity(
        r#"{"Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "kms:CreateKey", "Resource": "*"}]}"#,
    );
    let create = req(ALICE, "kms:CreateKey", "*", &c);
    assert_eq!(
        decide(None, Some(&both), false, &create),
        Decision::ExplicitDeny
    );
    let list = req(ALICE, "kms:ListKeys", "*", &c);
    assert_eq!(decide(None, Some(&both), false, &list), Decision::Allow);
}

#[test]
fn deny_naming_the_root_covers_the_whole_account() {
    let kp = key_policy(
        r#"{"Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": "111122223333"}, "Action": "kms:Decrypt", "Resource": "*"}]}"#,
    );
    let c = Context::new();
    assert_eq!(
        decide(Some(&kp), None, false, &req(ALICE, "kms:Decrypt", KEY, &c)),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(Some(&kp), None, false, &req(ROOT, "kms:Decrypt", KEY, &c)),
        Decision::ExplicitDeny
    );
    assert_eq!(
        decide(
            Some(&kp),
            None,
            false,
            &req(MALLORY, "kms:Decrypt", KEY, &c)
        ),
        Decision::Allow
    );
}

#[test]
fn grants_allow_without_policies() {
    let kp = key_policy(&format!(
        r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"AWS": "{BOB}"}},
            "Action": "kms:*", "Resource": "*"}}}}"#
    ));
    let c = Context::new();
    let r = req(ALICE, "kms:Decrypt", KEY, &c);
    assert_eq!(decide(Some(&kp), None, false, &r), Decision::ImplicitDeny);
    assert_eq!(decide(Some(&kp), None, true, &r), Decision::Allow);
}

#[test]
fn account_level_actions_use_the_identity_policy() {
    let c = Context::new();
    let r = req(ALICE, "kms:CreateKey", "*", &c);
    assert_eq!(decide(None, None, false, &r), Decision::ImplicitDeny);
    assert_eq!(
        decide(None, Some(&allow_identity("kms:Create*")), false, &r),
        Decision::Allow
    );
    assert_eq!(
        decide(None, Some(&allow_identity("arca:*")), false, &r),
        Decision::ImplicitDeny
    );
    let admin = req(ALICE, "arca:AddNode", "*", &c);
    assert_eq!(
        decide(None, Some(&allow_identity("arca:*")), false, &admin),
        Decision::Allow
    );
}

#[test]
fn lockout_safety_check() {
    // A new key policy that would leave Alice unable to change it again.
    let c = Context::new();
    let locked_out = key_policy(&format!(
        r#"{{"Statement": {{"Effect": "Allow", "Principal": {{"AWS": "{BOB}"}},
            "Action": "kms:*", "Resource": "*"}}}}"#
    ));
    let put = req(ALICE, "kms:PutKeyPolicy", KEY, &c);
    let alice_policy = allow_identity("kms:*");
    assert_ne!(
        decide(Some(&locked_out), Some(&alice_policy), false, &put),
        Decision::Allow
    );
    assert!(!locked_out.allows(ALICE, "kms:PutKeyPolicy", KEY, &c));
    // The default policy keeps access through the root and Alice's identity policy.
    let default = key_policy(&default_key_policy("111122223333"));
    assert_eq!(
        decide(Some(&default), Some(&alice_policy), false, &put),
        Decision::Allow
    );
    assert!(
        !default.allows(ALICE, "kms:PutKeyPolicy", KEY, &c),
        "direct only"
    );
    assert!(default.allows(ROOT, "kms:PutKeyPolicy", KEY, &c));
}
