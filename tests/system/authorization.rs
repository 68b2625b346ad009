//! Who may do what, through the AWS SDK: principals with identity policies,
//! key policies in AWS's grammar (the key administrators / key users example
//! from AWS's documentation), encryption-context conditions, explicit denies,
//! the lockout safety check, malformed policies, and a policy change on the
//! leader that binds every follower at once.

use arca_system_tests::aws_sdk_kms::error::ProvideErrorMetadata;
use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::Client;
use arca_system_tests::*;
use serde_json::{json, Value};

const ACCOUNT: &str = "111122223333";

/// A new access key for user `name` (created through the CLI against node
/// `i`; the user too, if new), and, if given, the user's identity policy:
/// the CLI's JSON (`AccessKeyId`, `SecretAccessKey`, `UserArn`).
fn access_key(c: &Cluster, i: usize, name: &str, identity: Option<Value>) -> Value {
    let endpoint = c.nodes[i].endpoint();
    let out = c.cli(&[
        "access-key",
        "create",
        "--endpoint",
        &endpoint,
        "--user",
        name,
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["UserArn"], format!("arn:aws:iam::{ACCOUNT}:user/{name}"));
    if let Some(policy) = identity {
        let file = c.dir.path().join(format!("{name}.json"));
        std::fs::write(&file, policy.to_string()).unwrap();
        c.cli(&[
            "user",
            "put-policy",
            "--endpoint",
            &endpoint,
            "--user",
            name,
            "--policy-file",
            file.to_str().unwrap(),
        ]);
    }
    v
}

/// An SDK client (no retries) on node `i` signing with an access key.
fn client_on(c: &Cluster, i: usize, key: &Value) -> Client {
    client_no_retry(
        &c.nodes[i].endpoint(),
        key["AccessKeyId"].as_str().unwrap(),
        key["SecretAccessKey"].as_str().unwrap(),
    )
}

/// A user with an access key and, if given, an identity policy: its ARN and
/// an SDK client on node `i`.
fn user(c: &Cluster, i: usize, name: &str, identity: Option<Value>) -> (String, Client) {
    let key = access_key(c, i, name, identity);
    let arn = key["UserArn"].as_str().unwrap().to_string();
    (arn, client_on(c, i, &key))
}

fn allow_all_kms() -> Value {
    json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}
    ]})
}

/// AWS's documented example: the account root (delegating to identity
/// policies), key administrators and key users, and a condition on the
/// encryption context for decryption.
fn key_policy(admin: &str, key_admin: &str, key_user: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Id": "key-consolepolicy-3",
        "Statement": [
            {
                "Sid": "Enable IAM User Permissions",
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
                "Action": "kms:*",
                "Resource": "*"
            },
            {
                "Sid": "Allow access for Key Administrators",
                "Effect": "Allow",
                "Principal": {"AWS": [key_admin, admin]},
                "Action": [
                    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*",
                    "kms:Put*", "kms:Update*", "kms:Revoke*", "kms:Disable*",
                    "kms:Get*", "kms:Delete*", "kms:TagResource",
                    "kms:UntagResource", "kms:ScheduleKeyDeletion",
                    "kms:CancelKeyDeletion"
                ],
                "Resource": "*"
            },
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": key_user},
                "Action": ["kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*"
            },
            {
                "Sid": "Decrypt only for the finance department",
                "Effect": "Allow",
                "Principal": {"AWS": key_user},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionContext:Dept": "finance"}}
            },
            {
                "Sid": "Nobody schedules this key's deletion",
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": "kms:ScheduleKeyDeletion",
                "Resource": "*"
            }
        ]
    })
    .to_string()
}

fn code<E: ProvideErrorMetadata, R>(r: Result<R, E>) -> String {
    match r {
        Ok(_) => "OK".into(),
        Err(e) => e.code().unwrap_or("?").to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_policies_identity_policies_and_conditions_decide_each_request() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let follower = (leader + 1) % 3;
    let admin = c.client(leader);
    let admin_arn = format!("arn:aws:iam::{ACCOUNT}:user/admin");
    // Key administrators and key users have no identity policy: only the
    // key policy names them.
    let (key_admin_arn, key_admin) = user(&c, leader, "keyadmin", None);
    let (key_user_arn, key_user) = user(&c, leader, "keyuser", None);
    // An outsider may use any key whose policy delegates to identity policies
    // — except what its identity policy denies.
    let (outsider_arn, outsider) = user(
        &c,
        leader,
        "outsider",
        Some(json!({"Statement": [
            {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "*"}
        ]})),
    );

    let policy = key_policy(&admin_arn, &key_admin_arn, &key_user_arn);
    let key = admin
        .create_key()
        .policy(&policy)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let got = admin.get_key_policy().key_id(&key).send().await.unwrap();
    assert_eq!(got.policy(), Some(policy.as_str()));
    assert_eq!(got.policy_name(), Some("default"));

    // Key users use the key, and decrypt only with the finance context.
    let ct = key_user
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"payroll".to_vec()))
        .encryption_context("Dept", "finance")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let pt = key_user
        .decrypt()
        .ciphertext_blob(ct.clone())
        .encryption_context("Dept", "finance")
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext.unwrap().into_inner(), b"payroll");
    let hr = key_user
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"review".to_vec()))
        .encryption_context("Dept", "hr")
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let e = key_user
        .decrypt()
        .ciphertext_blob(hr)
        .encryption_context("Dept", "hr")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"));
    let key_arn = format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{key}");
    assert_eq!(
        e.message(),
        Some(
            format!(
                "User: {key_user_arn} is not authorized to perform: kms:Decrypt on resource: {key_arn} because no resource-based policy allows the kms:Decrypt action"
            )
            .as_str()
        )
    );
    // Key users do not administer the key...
    assert_eq!(
        code(key_user.disable_key().key_id(&key).send().await),
        "AccessDeniedException"
    );
    // ...key administrators do, but do not use it.
    assert_eq!(
        code(key_admin.disable_key().key_id(&key).send().await),
        "OK"
    );
    assert_eq!(code(key_admin.enable_key().key_id(&key).send().await), "OK");
    assert_eq!(
        code(
            key_admin
                .encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"x".to_vec()))
                .send()
                .await
        ),
        "AccessDeniedException"
    );
    // Nobody schedules its deletion: the explicit Deny beats every Allow,
    // the admin's full identity policy included.
    for kms in [&admin, &key_admin] {
        assert_eq!(
            code(
                kms.schedule_key_deletion()
                    .key_id(&key)
                    .pending_window_in_days(7)
                    .send()
                    .await
            ),
            "AccessDeniedException"
        );
    }
    // The outsider uses it through the root delegation, up to its own Deny.
    assert_eq!(
        code(
            outsider
                .encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"x".to_vec()))
                .send()
                .await
        ),
        "OK"
    );
    let e = outsider
        .decrypt()
        .ciphertext_blob(ct.clone())
        .encryption_context("Dept", "finance")
        .send()
        .await
        .unwrap_err();
    assert!(
        e.message()
            .unwrap()
            .starts_with(&format!("User: {outsider_arn} is not authorized")),
        "{e:?}"
    );
    // Without an identity policy, account-level actions are refused.
    assert_eq!(
        code(key_user.create_key().send().await),
        "AccessDeniedException"
    );
    assert_eq!(
        code(key_user.list_keys().send().await),
        "AccessDeniedException"
    );

    // A policy change on the leader binds every node at once: the key user
    // loses Encrypt, and a follower refuses it in the next request.
    let on_follower = client_on(&c, follower, &access_key(&c, leader, "keyuser", None));
    let encrypt_on_follower = || async {
        code(
            on_follower
                .encrypt()
                .key_id(&key)
                .plaintext(Blob::new(b"x".to_vec()))
                .encryption_context("Dept", "finance")
                .send()
                .await,
        )
    };
    assert_eq!(encrypt_on_follower().await, "OK");
    let narrower = policy.replace("\"kms:Encrypt\",", "");
    assert_ne!(narrower, policy);
    key_admin
        .put_key_policy()
        .key_id(&key)
        .policy_name("default")
        .policy(&narrower)
        .send()
        .await
        .unwrap();
    assert_eq!(encrypt_on_follower().await, "AccessDeniedException");
    // ListKeyPolicies names the one policy.
    let names = admin
        .list_key_policies()
        .key_id(&key)
        .limit(1)
        .send()
        .await
        .unwrap();
    assert_eq!(names.policy_names(), ["default".to_string()]);
    assert!(!names.truncated());
    assert_eq!(names.next_marker(), None);
    // It hands out no marker, so none it is given is valid.
    let e = admin
        .list_key_policies()
        .key_id(&key)
        .marker("default")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidMarkerException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_are_validated_and_cannot_lock_their_writer_out() {
    let c = Cluster::start(1).await;
    let admin = c.client(0);
    let (_, app) = user(&c, 0, "app", Some(allow_all_kms()));

    // Malformed: refused with the offending element named; nothing created.
    let before = admin.list_keys().send().await.unwrap().keys().len();
    let bad = json!({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt",
        "Resource": "*", "Condition": {"StringEqualz": {"kms:EncryptionContext:A": "b"}}
    }]})
    .to_string();
    let e = admin.create_key().policy(&bad).send().await.unwrap_err();
    assert_eq!(e.code(), Some("MalformedPolicyDocumentException"));
    assert!(e.message().unwrap().contains("StringEqualz"), "{e:?}");
    let unknown_action = bad
        .replace("StringEqualz", "StringEquals")
        .replace("kms:Encrypt", "kms:Encrpyt");
    let e = admin
        .create_key()
        .policy(&unknown_action)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MalformedPolicyDocumentException"));
    assert!(e.message().unwrap().contains("kms:Encrpyt"), "{e:?}");
    assert_eq!(admin.list_keys().send().await.unwrap().keys().len(), before);
    // Larger than 32 KiB.
    let huge = format!(
        r#"{{"Statement":[{{"Sid":"{}","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}}]}}"#,
        "x".repeat(33 * 1024)
    );
    assert_eq!(
        code(admin.create_key().policy(&huge).send().await),
        "LimitExceededException"
    );

    // The lockout safety check: a policy that would stop its writer (the
    // app user) from changing it again is refused, unless bypassed.
    let key = app
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let lockout = json!({"Statement": [{
        "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/someone-else"},
        "Action": "kms:*", "Resource": "*"
    }]})
    .to_string();
    let e = app
        .put_key_policy()
        .key_id(&key)
        .policy_name("default")
        .policy(&lockout)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MalformedPolicyDocumentException"));
    assert_eq!(
        e.message(),
        Some("The new key policy will not allow you to update the key policy in the future.")
    );
    app.put_key_policy()
        .key_id(&key)
        .policy_name("default")
        .policy(&lockout)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap();
    // Now locked out, as warned — the admin too, whose identity policy no
    // longer counts without the root delegation.
    for kms in [&app, &admin] {
        assert_eq!(
            code(
                kms.get_key_policy()
                    .key_id(&key)
                    .policy_name("default")
                    .send()
                    .await
            ),
            "AccessDeniedException"
        );
    }
    // A policy name other than "default" does not exist.
    let other = admin.create_key().send().await.unwrap();
    let other = other.key_metadata().unwrap().key_id();
    assert_eq!(
        code(
            admin
                .get_key_policy()
                .key_id(other)
                .policy_name("custom")
                .send()
                .await
        ),
        "NotFoundException"
    );
    // Identity policies are validated too.
    let (s, v) = c.admin_call(
        0,
        "PutUserPolicy",
        &json!({"UserName": "app", "PolicyDocument": "{\"Statement\": [{\"Effect\": \"Allow\", \"Principal\": \"*\", \"Action\": \"kms:*\", \"Resource\": \"*\"}]}"}),
    );
    assert_eq!(
        (s, v["__type"].as_str()),
        (400, Some("MalformedPolicyDocumentException")),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_is_usable_at_once_through_its_token_and_ends_when_retired() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let follower = (leader + 2) % 3;
    let admin = c.client(leader);
    // The app has no identity policy: only grants let it use the key.
    let (app_arn, _) = user(&c, leader, "app", None);
    let (auditor_arn, auditor) = user(&c, leader, "auditor", Some(allow_all_kms()));
    let app = client_on(&c, follower, &access_key(&c, leader, "app", None));
    let key = c.new_key(leader).await;
    let encrypt = |ctx: &'static str, tokens: Vec<String>| {
        let (app, key) = (app.clone(), key.clone());
        async move {
            code(
                app.encrypt()
                    .key_id(key)
                    .plaintext(Blob::new(b"x".to_vec()))
                    .encryption_context("purpose", ctx)
                    .set_grant_tokens(Some(tokens))
                    .send()
                    .await,
            )
        }
    };
    assert_eq!(encrypt("backup", vec![]).await, "AccessDeniedException");

    let created = admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&app_arn)
        .retiring_principal(&auditor_arn)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .operations(aws_sdk_kms::types::GrantOperation::RetireGrant)
        .constraints(
            aws_sdk_kms::types::GrantConstraints::builder()
                .encryption_context_subset("purpose", "backup")
                .build(),
        )
        .name("backup-writer")
        .send()
        .await
        .unwrap();
    let (grant_id, token) = (
        created.grant_id().unwrap().to_string(),
        created.grant_token().unwrap().to_string(),
    );
    // The same name and terms: the same grant.
    let again = admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&app_arn)
        .retiring_principal(&auditor_arn)
        .operations(aws_sdk_kms::types::GrantOperation::RetireGrant)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .constraints(
            aws_sdk_kms::types::GrantConstraints::builder()
                .encryption_context_subset("purpose", "backup")
                .build(),
        )
        .name("backup-writer")
        .send()
        .await
        .unwrap();
    assert_eq!(again.grant_id(), Some(grant_id.as_str()));

    // At once, on a follower, with the token; within its constraint only.
    assert_eq!(encrypt("backup", vec![token.clone()]).await, "OK");
    assert_eq!(
        encrypt("other", vec![token.clone()]).await,
        "AccessDeniedException"
    );
    // A forged token is refused.
    let mut forged = token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        encrypt("backup", vec![forged]).await,
        "InvalidGrantTokenException"
    );
    // AWS's limit: ten tokens a request.
    assert_eq!(
        encrypt("backup", vec![token.clone(); 11]).await,
        "ValidationException"
    );
    // Replicated: it works without the token too, and is listed.
    wait_for("the grant to reach the follower", DEADLINE, || async move {
        (encrypt("backup", vec![]).await == "OK").then_some(())
    })
    .await;
    let listed = admin.list_grants().key_id(&key).send().await.unwrap();
    let grants = listed.grants();
    assert_eq!(grants.len(), 1);
    assert_eq!(grants[0].grantee_principal(), Some(app_arn.as_str()));
    assert_eq!(grants[0].name(), Some("backup-writer"));
    let retirable = auditor
        .list_retirable_grants()
        .retiring_principal(&auditor_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(retirable.grants().len(), 1);

    // The grantee retires it (RetireGrant is one of its operations): from
    // then on neither the grant nor its token allows anything, on any node.
    app.retire_grant().grant_token(&token).send().await.unwrap();
    assert_eq!(encrypt("backup", vec![]).await, "AccessDeniedException");
    assert_eq!(
        encrypt("backup", vec![token.clone()]).await,
        "InvalidGrantTokenException"
    );
    assert!(admin
        .list_grants()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .grants()
        .is_empty());
    assert_eq!(
        code(app.retire_grant().grant_token(&token).send().await),
        "InvalidGrantTokenException"
    );

    // Revoked by an administrator of the key.
    let g = admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&app_arn)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    let id = g.grant_id().unwrap();
    admin
        .revoke_grant()
        .key_id(&key)
        .grant_id(id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        encrypt("backup", vec![g.grant_token().unwrap().to_string()]).await,
        "InvalidGrantTokenException"
    );
    assert_eq!(
        code(admin.revoke_grant().key_id(&key).grant_id(id).send().await),
        "NotFoundException"
    );
    // A constraint on an operation without an encryption context.
    let e = admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&app_arn)
        .operations(aws_sdk_kms::types::GrantOperation::GenerateMac)
        .constraints(
            aws_sdk_kms::types::GrantConstraints::builder()
                .encryption_context_equals("a", "b")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("ValidationException"));
    // DescribeKey may go with a constraint, which does not apply to it (as in
    // AWS): the grantee describes the key, with no context at all.
    let g = admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&app_arn)
        .operations(aws_sdk_kms::types::GrantOperation::DescribeKey)
        .constraints(
            aws_sdk_kms::types::GrantConstraints::builder()
                .encryption_context_equals("a", "b")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let described = app
        .describe_key()
        .key_id(&key)
        .grant_tokens(g.grant_token().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(described.key_metadata().unwrap().key_id(), key);
}

/// The audit records of a node's log, as JSON.
fn audit_records(c: &Cluster, i: usize) -> Vec<Value> {
    let text = std::fs::read_to_string(c.nodes[i].data_dir.join("audit.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v.get("operation").is_some())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_audited_with_who_and_which_keys() {
    let c = Cluster::start(1).await;
    let admin = c.client(0);
    let (arn, nobody) = user(&c, 0, "nobody", None);
    let a = c.new_key(0).await;
    let b = c.new_key(0).await;
    let e = nobody
        .encrypt()
        .key_id(&a)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("AccessDeniedException"));
    // Written before the answer was given (fail-closed).
    let refused = audit_records(&c, 0)
        .into_iter()
        .find(|r| r["outcome"] == "AccessDeniedException" && r["operation"] == "Encrypt")
        .expect("the refusal is audited");
    assert_eq!(refused["key_id"], a.as_str());
    assert_eq!(refused["arn"], arn.as_str());

    // ReEncrypt names both keys.
    let ct = admin
        .encrypt()
        .key_id(&a)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    admin
        .re_encrypt()
        .ciphertext_blob(ct)
        .destination_key_id(&b)
        .send()
        .await
        .unwrap();
    let re = audit_records(&c, 0)
        .into_iter()
        .find(|r| r["operation"] == "ReEncrypt")
        .expect("ReEncrypt is audited");
    assert_eq!(
        (re["key_id"].as_str(), re["destination_key_id"].as_str()),
        (Some(a.as_str()), Some(b.as_str()))
    );
    assert_eq!(re["outcome"], "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grantee_passes_on_no_more_than_it_was_given() {
    let c = Cluster::start(1).await;
    let admin = c.client(0);
    let (app_arn, app) = user(&c, 0, "app", None);
    let (other_arn, _) = user(&c, 0, "other", None);
    let key = c.new_key(0).await;
    admin
        .create_grant()
        .key_id(&key)
        .grantee_principal(&app_arn)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .operations(aws_sdk_kms::types::GrantOperation::CreateGrant)
        .send()
        .await
        .unwrap();
    let pass_on = |op: aws_sdk_kms::types::GrantOperation| {
        let (app, key, other_arn) = (app.clone(), key.clone(), other_arn.clone());
        async move {
            code(
                app.create_grant()
                    .key_id(key)
                    .grantee_principal(other_arn)
                    .operations(op)
                    .send()
                    .await,
            )
        }
    };
    assert_eq!(
        pass_on(aws_sdk_kms::types::GrantOperation::Encrypt).await,
        "OK"
    );
    assert_eq!(
        pass_on(aws_sdk_kms::types::GrantOperation::Decrypt).await,
        "AccessDeniedException"
    );
}

/// A user's access key on node 1, for raw signed requests: ARN, id, secret.
fn raw_user(c: &Cluster, name: &str, identity: Option<Value>) -> (String, String, String) {
    let v = access_key(c, 0, name, identity);
    let field = |f: &str| v[f].as_str().unwrap().to_string();
    (
        field("UserArn"),
        field("AccessKeyId"),
        field("SecretAccessKey"),
    )
}

/// A signed request as `(id, secret)`: its HTTP status and error code.
fn raw(c: &Cluster, id: &str, secret: &str, target: &str, body: &Value) -> (u16, String) {
    let body = body.to_string().into_bytes();
    let h = signed_headers(&c.nodes[0].api_addr, target, &body, id, secret, unix_now());
    let (status, text) = http_post(&c.nodes[0].api_addr, &h, &body).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, v["__type"].as_str().unwrap_or("OK").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_see_only_what_an_operation_takes() {
    let c = Cluster::start(1).await;
    let admin = c.client(0);
    let (app_arn, app_id, app_secret) = raw_user(&c, "app", None);
    // app may use the key, and create grants, for tenant "a" only.
    let policy = json!({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
         "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": &app_arn},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:CreateGrant"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "a"}}}
    ]})
    .to_string();
    let key = admin
        .create_key()
        .policy(&policy)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let plain = json!({"KeyId": key, "Plaintext": "aGk=", "EncryptionContext": {"tenant": "a"}});
    assert_eq!(
        raw(&c, &app_id, &app_secret, "TrentService.Encrypt", &plain).1,
        "OK"
    );
    // An EncryptionContext field CreateGrant does not take satisfies nothing:
    // the grant's own constraint is what the condition sees.
    let unconstrained = json!({"KeyId": key, "GranteePrincipal": &app_arn,
        "Operations": ["Decrypt"], "EncryptionContext": {"tenant": "a"}});
    assert_eq!(
        raw(
            &c,
            &app_id,
            &app_secret,
            "TrentService.CreateGrant",
            &unconstrained
        )
        .1,
        "AccessDeniedException"
    );
    let constrained = json!({"KeyId": key, "GranteePrincipal": &app_arn, "Operations": ["Decrypt"],
        "Constraints": {"EncryptionContextEquals": {"tenant": "a"}}});
    // DryRun answers without creating anything.
    let mut dry = constrained.clone();
    dry["DryRun"] = json!(true);
    assert_eq!(
        raw(&c, &app_id, &app_secret, "TrentService.CreateGrant", &dry).1,
        "DryRunOperationException"
    );
    assert!(admin
        .list_grants()
        .key_id(&key)
        .send()
        .await
        .unwrap()
        .grants()
        .is_empty());
    assert_eq!(
        raw(
            &c,
            &app_id,
            &app_secret,
            "TrentService.CreateGrant",
            &constrained
        )
        .1,
        "OK"
    );

    // UpdateAlias needs the right on the key the alias points to now.
    let (_, m_id, m_secret) = raw_user(
        &c,
        "mallory",
        Some(json!({"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})),
    );
    let locked = json!({"Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/admin")},
         "Action": "kms:*", "Resource": "*"}
    ]})
    .to_string();
    let victim = admin.create_key().policy(&locked).send().await.unwrap();
    let victim = victim.key_metadata().unwrap().key_id();
    admin
        .create_alias()
        .alias_name("alias/payments")
        .target_key_id(victim)
        .send()
        .await
        .unwrap();
    let own = c.new_key(0).await;
    let hijack = json!({"AliasName": "alias/payments", "TargetKeyId": own});
    assert_eq!(
        raw(&c, &m_id, &m_secret, "TrentService.UpdateAlias", &hijack).1,
        "AccessDeniedException"
    );

    // A grantee's RetireGrant right covers its own grant, not another's.
    let (bob_arn, bob_id, bob_secret) = raw_user(&c, "bob", None);
    let (alice_arn, _, _) = raw_user(&c, "alice", None);
    let g_bob = admin
        .create_grant()
        .key_id(&own)
        .grantee_principal(&bob_arn)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .operations(aws_sdk_kms::types::GrantOperation::RetireGrant)
        .send()
        .await
        .unwrap();
    let g_alice = admin
        .create_grant()
        .key_id(&own)
        .grantee_principal(&alice_arn)
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    let retire = |id: &str| json!({"KeyId": own, "GrantId": id});
    assert_eq!(
        raw(
            &c,
            &bob_id,
            &bob_secret,
            "TrentService.RetireGrant",
            &retire(g_alice.grant_id().unwrap())
        )
        .1,
        "AccessDeniedException"
    );
    assert_eq!(
        raw(
            &c,
            &bob_id,
            &bob_secret,
            "TrentService.RetireGrant",
            &retire(g_bob.grant_id().unwrap())
        )
        .1,
        "OK"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_administration_is_delegated_user_by_user() {
    let c = Cluster::start(1).await;
    // An operator who may manage the access keys and policies of the app-*
    // users, and every user its own access keys; nothing else.
    let (_, ops_id, ops_secret) = raw_user(
        &c,
        "ops",
        Some(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow",
             "Action": ["arca:CreateAccessKey", "arca:DeleteAccessKey", "arca:PutUserPolicy", "arca:GetUserPolicy"],
             "Resource": format!("arn:aws:iam::{ACCOUNT}:user/app-*")},
            {"Effect": "Allow", "Action": "arca:*AccessKey",
             "Resource": "arn:aws:iam::*:user/${aws:username}"}
        ]})),
    );
    let call = |target: &str, body: Value| raw(&c, &ops_id, &ops_secret, target, &body);
    let (status, code) = call("ArcaAdmin.CreateAccessKey", json!({"UserName": "app-1"}));
    assert_eq!((status, code.as_str()), (200, "OK"));
    let (_, code) = call(
        "ArcaAdmin.PutUserPolicy",
        json!({"UserName": "app-1", "PolicyDocument": allow_all_kms().to_string()}),
    );
    assert_eq!(code, "OK");
    // Not for other users: admin, or a user outside app-*.
    for user in ["admin", "billing"] {
        let (status, code) = call("ArcaAdmin.CreateAccessKey", json!({"UserName": user}));
        assert_eq!(
            (status, code.as_str()),
            (400, "AccessDeniedException"),
            "{user}"
        );
        let (_, code) = call(
            "ArcaAdmin.PutUserPolicy",
            json!({"UserName": user, "PolicyDocument": allow_all_kms().to_string()}),
        );
        assert_eq!(code, "AccessDeniedException", "{user}");
    }
    // Its own access keys, through the policy variable.
    let (status, body) = {
        let body = json!({"UserName": "ops"}).to_string().into_bytes();
        let h = signed_headers(
            &c.nodes[0].api_addr,
            "ArcaAdmin.CreateAccessKey",
            &body,
            &ops_id,
            &ops_secret,
            unix_now(),
        );
        http_post(&c.nodes[0].api_addr, &h, &body).unwrap()
    };
    assert_eq!(status, 200, "{body}");
    let second: Value = serde_json::from_str(&body).unwrap();
    let (_, code) = call(
        "ArcaAdmin.DeleteAccessKey",
        json!({"AccessKeyId": second["AccessKeyId"]}),
    );
    assert_eq!(code, "OK");
    // Another user's key, found by its id: refused.
    let (admin_status, keys) = c.admin_call(0, "ListAccessKeys", &json!({}));
    assert_eq!(admin_status, 200);
    let admin_key = keys["AccessKeys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["UserName"] == "admin")
        .unwrap()["AccessKeyId"]
        .clone();
    let (_, code) = call(
        "ArcaAdmin.DeleteAccessKey",
        json!({"AccessKeyId": admin_key}),
    );
    assert_eq!(code, "AccessDeniedException");
    // Cluster operations stay out of reach.
    let (_, code) = call("ArcaAdmin.ClusterStatus", json!({}));
    assert_eq!(code, "AccessDeniedException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_at_creation_need_tag_resource_and_refusals_come_before_validation() {
    let c = Cluster::start(1).await;
    let (_, id, secret) = raw_user(
        &c,
        "creator",
        Some(json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "kms:CreateKey", "Resource": "*"}
        ]})),
    );
    let (status, code) = raw(&c, &id, &secret, "TrentService.CreateKey", &json!({}));
    assert_eq!((status, code.as_str()), (200, "OK"));
    let tagged = json!({"Tags": [{"TagKey": "team", "TagValue": "a"}]});
    let (status, code) = raw(&c, &id, &secret, "TrentService.CreateKey", &tagged);
    assert_eq!((status, code.as_str()), (400, "AccessDeniedException"));
    // A caller who may not change a key's policy is told so, not what is
    // wrong with the policy it sent.
    let admin = c.client(0);
    let key = admin.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let (status, code) = raw(
        &c,
        &id,
        &secret,
        "TrentService.PutKeyPolicy",
        &json!({"KeyId": key_id, "PolicyName": "default", "Policy": "{not json"}),
    );
    assert_eq!((status, code.as_str()), (400, "AccessDeniedException"));
    let (_, code) = c.call(
        0,
        "TrentService.PutKeyPolicy",
        &json!({"KeyId": key_id, "PolicyName": "default", "Policy": "{not json"}),
    );
    assert_eq!(code["__type"], "MalformedPolicyDocumentException");
}

/// A retired or revoked grant is remembered only while its token could be
/// honored on its own (by a node that has not applied the grant yet); then
/// the leader forgets it, so that removed grants do not pile up in the state
/// for ever. Its token stays refused on every node — too old to stand alone
/// — while a live grant's token of the same age still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_grants_are_forgotten_and_their_tokens_stay_refused() {
    let mut c = Cluster::start_with(
        3,
        Options {
            adjustable_clock: true,
            ..Options::default()
        },
    )
    .await;
    let leader = c.wait_leader().await;
    let admin = c.client(leader);
    let (app_arn, _) = user(&c, leader, "app", None);
    let app_key = access_key(&c, leader, "app", None);
    let key = c.new_key(leader).await;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let g = admin
            .create_grant()
            .key_id(&key)
            .grantee_principal(&app_arn)
            .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
            .send()
            .await
            .unwrap();
        tokens.push((
            g.grant_id().unwrap().to_string(),
            g.grant_token().unwrap().to_string(),
        ));
    }
    let [(_, live), (gone_id, gone)] = <[_; 2]>::try_from(tokens).unwrap();
    admin
        .revoke_grant()
        .key_id(&key)
        .grant_id(&gone_id)
        .send()
        .await
        .unwrap();
    let apps: Vec<Client> = (0..3).map(|i| client_on(&c, i, &app_key)).collect();
    let encrypt = |i: usize, token: &str| {
        let app = apps[i].clone();
        let (key, token) = (key.clone(), token.to_string());
        async move {
            app.encrypt()
                .key_id(key)
                .plaintext(Blob::new(b"x".to_vec()))
                .grant_tokens(token)
                .send()
                .await
        }
    };
    fn refusal<R, E: ProvideErrorMetadata + std::fmt::Debug>(r: Result<R, E>) -> String {
        let Err(e) = r else {
            panic!("the removed grant's token was honored")
        };
        assert_eq!(e.code(), Some("InvalidGrantTokenException"), "{e:?}");
        e.message().unwrap_or_default().to_string()
    }
    for i in 0..3 {
        wait_for("the revocation on every node", DEADLINE, || {
            let r = encrypt(i, &gone);
            async move { r.await.is_err().then_some(()) }
        })
        .await;
        let m = refusal(encrypt(i, &gone).await);
        assert!(m.contains("retired or revoked"), "{m}");
    }

    // Past the keeping time the leader forgets the removed grant.
    c.advance_clock(arca_state::rules::REMOVED_GRANT_KEPT_MS + 60_000);
    let logs: Vec<_> = (0..3)
        .map(|i| c.nodes[i].log_path().to_path_buf())
        .collect();
    wait_for("the leader to forget the removed grant", DEADLINE, || {
        let logs = logs.clone();
        async move {
            logs.iter()
                .any(|l| {
                    std::fs::read_to_string(l)
                        .unwrap_or_default()
                        .contains("past their keeping time forgotten")
                })
                .then_some(())
        }
    })
    .await;
    for i in 0..3 {
        // Applied everywhere: the refusal no longer comes from the row.
        let m = wait_for("the removed grant to be forgotten here", DEADLINE, || {
            let r = encrypt(i, &gone);
            async move {
                let m = refusal(r.await);
                m.contains("too old to stand alone").then_some(m)
            }
        })
        .await;
        assert!(m.contains(&gone_id), "{m}");
        assert!(
            encrypt(i, &live).await.is_ok(),
            "node {}: a live grant's old token is refused",
            i + 1
        );
    }
}
