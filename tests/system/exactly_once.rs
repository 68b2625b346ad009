//! Exactly-once writes, as an AWS SDK's retries exercise them: a request's
//! identity is the principal, its `amz-sdk-invocation-id` and a fingerprint
//! of the operation and body. A retry — through any node — gets the first
//! attempt's answer; the same id with another request is refused; requests
//! without an id are never deduplicated.

use arca_system_tests::*;
use serde_json::{json, Value};

fn key_state(c: &Cluster, via: usize, key: &str) -> String {
    let (status, v) = c.call(via, "TrentService.DescribeKey", &json!({ "KeyId": key }));
    assert_eq!(status, 200, "{v}");
    v["KeyMetadata"]["KeyState"].as_str().unwrap().to_string()
}

fn key_count(c: &Cluster, via: usize) -> usize {
    let (status, v) = c.call(via, "TrentService.ListKeys", &json!({ "Limit": 1000 }));
    assert_eq!(status, 200, "{v}");
    v["Keys"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_take_effect_once_and_answer_like_the_first_attempt() {
    let mut c = Cluster::start(3).await;
    let leader = c.wait_leader().await;
    let (a, b) = ((leader + 1) % 3, (leader + 2) % 3);

    // A CreateKey sent twice with one invocation id, through two different
    // followers: one key, and both answers name it.
    let before = key_count(&c, leader);
    let create = json!({ "Description": "retried", "KeySpec": "SYMMETRIC_DEFAULT" });
    let (s1, first) = c.call_as(a, "TrentService.CreateKey", &create, Some("inv-create-1"));
    let (s2, retry) = c.call_as(b, "TrentService.CreateKey", &create, Some("inv-create-1"));
    assert_eq!((s1, s2), (200, 200), "{first} {retry}");
    let id = first["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    assert_eq!(retry["KeyMetadata"]["KeyId"], Value::from(id.clone()));
    assert_eq!(retry["KeyMetadata"]["Description"], "retried");
    assert_eq!(key_count(&c, leader), before + 1, "one key, not two");
    for n in 0..3 {
        assert_eq!(key_state(&c, n, &id), "Enabled");
    }

    // The same id with another request: refused, and nothing changes.
    let k1 = c.new_key(leader).await;
    let k2 = c.new_key(leader).await;
    let (s, v) = c.call_as(
        a,
        "TrentService.DisableKey",
        &json!({ "KeyId": k1 }),
        Some("inv-disable"),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = c.call_as(
        b,
        "TrentService.DisableKey",
        &json!({ "KeyId": k2 }),
        Some("inv-disable"),
    );
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["__type"], "ValidationException");
    assert!(
        v["message"].as_str().unwrap().contains("invocation id"),
        "{v}"
    );
    assert_eq!(key_state(&c, leader, &k1), "Disabled");
    assert_eq!(
        key_state(&c, leader, &k2),
        "Enabled",
        "never silently dropped"
    );

    // A retry of the DisableKey after the key was enabled again in between
    // answers like the first attempt and does not disable it again.
    let (s, _) = c.call(leader, "TrentService.EnableKey", &json!({ "KeyId": k1 }));
    assert_eq!(s, 200);
    let (s, v) = c.call_as(
        leader,
        "TrentService.DisableKey",
        &json!({ "KeyId": k1 }),
        Some("inv-disable"),
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(key_state(&c, a, &k1), "Enabled");

    // Without an invocation id, two identical requests are two requests.
    let before = key_count(&c, leader);
    let (s1, x) = c.call(a, "TrentService.CreateKey", &create);
    let (s2, y) = c.call(a, "TrentService.CreateKey", &create);
    assert_eq!((s1, s2), (200, 200));
    assert_ne!(x["KeyMetadata"]["KeyId"], y["KeyMetadata"]["KeyId"]);
    assert_eq!(key_count(&c, leader), before + 2);

    // A retried CreateAccessKey returns the same access key and secret,
    // which signs requests.
    let (s1, k) = c.call_as(
        a,
        "ArcaAdmin.CreateAccessKey",
        &json!({"UserName": "app"}),
        Some("inv-ak"),
    );
    let (s2, again) = c.call_as(
        b,
        "ArcaAdmin.CreateAccessKey",
        &json!({"UserName": "app"}),
        Some("inv-ak"),
    );
    assert_eq!((s1, s2), (200, 200), "{k} {again}");
    assert_eq!(k["AccessKeyId"], again["AccessKeyId"]);
    assert_eq!(k["SecretAccessKey"], again["SecretAccessKey"]);
    let app = client(
        &c.nodes[b].endpoint(),
        k["AccessKeyId"].as_str().unwrap(),
        k["SecretAccessKey"].as_str().unwrap(),
    );
    // Its signature is accepted; the new user, with no policy yet, is then
    // refused by authorization rather than as an unknown client.
    let e = app.describe_key().key_id(&id).send().await.unwrap_err();
    assert_eq!(error_code(&e), "AccessDeniedException");

    // The SDK itself: its retries carry one invocation id, its calls
    // different ones.
    let kms = c.client(a);
    let x = kms.create_key().send().await.unwrap();
    let y = kms.create_key().send().await.unwrap();
    assert_ne!(
        x.key_metadata().unwrap().key_id(),
        y.key_metadata().unwrap().key_id()
    );
}
