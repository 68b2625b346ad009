//! One real node: the API as an AWS SDK client sees it, authentication
//! failures, malformed requests, and start-up errors.

use std::collections::HashSet;

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::DataKeySpec;
use arca_system_tests::*;
use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_describe_and_list_with_paging() {
    let c = Cluster::start(1).await;
    let kms = c.client(0);
    let mut created = HashSet::new();
    for i in 0..5 {
        let k = kms
            .create_key()
            .description(format!("key {i}"))
            .send()
            .await
            .unwrap();
        let m = k.key_metadata().unwrap();
        assert_eq!(m.description(), Some(format!("key {i}").as_str()));
        assert_eq!(m.key_spec().unwrap().as_str(), "SYMMETRIC_DEFAULT");
        assert_eq!(m.key_usage().unwrap().as_str(), "ENCRYPT_DECRYPT");
        assert_eq!(m.key_state().unwrap().as_str(), "Enabled");
        assert!(m.enabled());
        assert_eq!(m.aws_account_id(), Some(ACCOUNT));
        assert_eq!(
            m.arn().unwrap(),
            format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{}", m.key_id())
        );
        created.insert(m.key_id().to_string());
    }
    // Describe by id and by ARN.
    let id = created.iter().next().unwrap().clone();
    let by_id = kms.describe_key().key_id(&id).send().await.unwrap();
    let arn = by_id.key_metadata().unwrap().arn().unwrap().to_string();
    let by_arn = kms.describe_key().key_id(&arn).send().await.unwrap();
    assert_eq!(by_arn.key_metadata().unwrap().key_id(), id);
    assert_eq!(
        by_arn.key_metadata().unwrap().encryption_algorithms()[0].as_str(),
        "SYMMETRIC_DEFAULT"
    );

    // Pages of two: 2 + 2 + 1, each key exactly once.
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let r = kms
            .list_keys()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        assert!(r.keys().len() <= 2);
        seen.extend(r.keys().iter().map(|k| k.key_id().unwrap().to_string()));
        if !r.truncated() {
            assert!(r.next_marker().is_none());
            break;
        }
        marker = r.next_marker().map(str::to_string);
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), created);

    let e = kms
        .describe_key()
        .key_id("00000000-0000-4000-8000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "NotFoundException");
    let e = kms
        .describe_key()
        .key_id("not-a-key")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "NotFoundException");
    let e = kms.list_keys().limit(1001).send().await.unwrap_err();
    assert_eq!(error_code(&e), "ValidationException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypt_decrypt_and_data_keys() {
    let c = Cluster::start(1).await;
    let kms = c.client(0);
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let arn = key.key_metadata().unwrap().arn().unwrap().to_string();
    let other = kms.create_key().send().await.unwrap();
    let other_id = other.key_metadata().unwrap().key_id().to_string();

    // Without context.
    let e = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"attack at dawn".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(e.key_id(), Some(arn.as_str()));
    assert_eq!(
        e.encryption_algorithm().unwrap().as_str(),
        "SYMMETRIC_DEFAULT"
    );
    let ct = e.ciphertext_blob().unwrap().clone();
    assert!(!contains(ct.as_ref(), b"attack at dawn"));
    let d = kms
        .decrypt()
        .ciphertext_blob(ct.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"attack at dawn");
    assert_eq!(d.key_id(), Some(arn.as_str()));

    // With context: the same context decrypts, any other does not.
    let e = kms
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new(vec![7u8; 4096]))
        .encryption_context("tenant", "acme")
        .encryption_context("purpose", "test")
        .send()
        .await
        .unwrap();
    let ct_ctx = e.ciphertext_blob().unwrap().clone();
    let d = kms
        .decrypt()
        .ciphertext_blob(ct_ctx.clone())
        .encryption_context("purpose", "test")
        .encryption_context("tenant", "acme")
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), vec![7u8; 4096].as_slice());
    for wrong in [
        vec![],
        vec![("tenant", "acme")],
        vec![("tenant", "evil"), ("purpose", "test")],
    ] {
        let mut req = kms.decrypt().ciphertext_blob(ct_ctx.clone());
        for (k, v) in wrong {
            req = req.encryption_context(k, v);
        }
        let err = req.send().await.unwrap_err();
        assert_eq!(error_code(&err), "InvalidCiphertextException");
    }

    // A flipped byte, a truncated blob, garbage.
    let mut tampered = ct.as_ref().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let truncated = ct.as_ref()[..20].to_vec();
    for blob in [tampered, truncated, b"garbage".to_vec()] {
        let err = kms
            .decrypt()
            .ciphertext_blob(Blob::new(blob))
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&err), "InvalidCiphertextException");
    }
    // Naming the wrong key.
    let err = kms
        .decrypt()
        .ciphertext_blob(ct.clone())
        .key_id(&other_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "IncorrectKeyException");
    // Plaintext over 4096 bytes, and empty.
    let err = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(vec![0u8; 4097]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");

    // Data keys: the plaintext key and its ciphertext belong together.
    let dk = kms
        .generate_data_key()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes256)
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    let plain = dk.plaintext().unwrap().as_ref().to_vec();
    assert_eq!(plain.len(), 32);
    let back = kms
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob().unwrap().clone())
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), plain.as_slice());
    let dk = kms
        .generate_data_key()
        .key_id(&key_id)
        .number_of_bytes(64)
        .send()
        .await
        .unwrap();
    assert_eq!(dk.plaintext().unwrap().as_ref().len(), 64);
    let np = kms
        .generate_data_key_without_plaintext()
        .key_id(&key_id)
        .key_spec(DataKeySpec::Aes128)
        .send()
        .await
        .unwrap();
    let back = kms
        .decrypt()
        .ciphertext_blob(np.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref().len(), 16);
    let err = kms
        .generate_data_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "ValidationException");

    // GenerateRandom: in range, out of range.
    let r = kms
        .generate_random()
        .number_of_bytes(1024)
        .send()
        .await
        .unwrap();
    assert_eq!(r.plaintext().unwrap().as_ref().len(), 1024);
    let r2 = kms
        .generate_random()
        .number_of_bytes(1024)
        .send()
        .await
        .unwrap();
    assert_ne!(r.plaintext(), r2.plaintext());
    for n in [0, 1025] {
        let err = kms
            .generate_random()
            .number_of_bytes(n)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&err), "ValidationException", "NumberOfBytes {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_failures_use_aws_codes() {
    let c = Cluster::start(1).await;
    let node = &c.nodes[0];
    let addr = node.api_addr.clone();
    let body = br#"{"NumberOfBytes": 8}"#;

    // Unsigned.
    let mut h = http::HeaderMap::new();
    h.insert("host", addr.parse().unwrap());
    h.insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    h.insert(
        "x-amz-target",
        "TrentService.GenerateRandom".parse().unwrap(),
    );
    assert_error(&addr, &h, body, "MissingAuthenticationTokenException");

    // Wrong secret, through the SDK.
    let wrong = client(&node.endpoint(), &c.creds.access_key_id, "not-the-secret");
    let err = wrong
        .generate_random()
        .number_of_bytes(8)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "InvalidSignatureException");

    // Unknown access key, through the SDK.
    let unknown = client(&node.endpoint(), "AKIAUNKNOWNUNKNOWN00", "whatever");
    let err = unknown
        .generate_random()
        .number_of_bytes(8)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&err), "UnrecognizedClientException");

    // Signed correctly, but ten minutes ago and ten minutes ahead.
    for skew in [-600, 600] {
        let h = signed_headers(
            &addr,
            "TrentService.GenerateRandom",
            body,
            &c.creds.access_key_id,
            &c.creds.secret_access_key,
            unix_now() + skew,
        );
        let (status, text) = assert_error(&addr, &h, body, "InvalidSignatureException");
        assert_eq!(status, 400);
        assert!(text.contains("Signature"), "{text}");
    }

    // A body changed after signing.
    let h = signed_headers(
        &addr,
        "TrentService.GenerateRandom",
        body,
        &c.creds.access_key_id,
        &c.creds.secret_access_key,
        unix_now(),
    );
    assert_error(
        &addr,
        &h,
        br#"{"NumberOfBytes": 9}"#,
        "InvalidSignatureException",
    );

    // And a correctly signed raw request works.
    let (status, text) = http_post(&addr, &h, body).unwrap();
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["Plaintext"].is_string());
}

fn assert_error(addr: &str, h: &http::HeaderMap, body: &[u8], code: &str) -> (u16, String) {
    let (status, text) = http_post(addr, h, body).expect("answer");
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(v["__type"], code, "status {status}: {text}");
    assert!(v["message"].is_string());
    (status, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_and_the_node_serves_on() {
    let c = Cluster::start(1).await;
    let addr = c.nodes[0].api_addr.clone();
    let sign = |target: &str, body: &[u8]| {
        signed_headers(
            &addr,
            target,
            body,
            &c.creds.access_key_id,
            &c.creds.secret_access_key,
            unix_now(),
        )
    };
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "TrentService.Encrypt",
            b"{not json".to_vec(),
            "SerializationException",
        ),
        (
            "TrentService.Encrypt",
            br#"{"KeyId": 5}"#.to_vec(),
            "SerializationException",
        ),
        (
            "TrentService.Encrypt",
            br#"{"KeyId": "x", "Plaintext": "%%%"}"#.to_vec(),
            "SerializationException",
        ),
        (
            "TrentService.Encrypt",
            br#"{"Plaintext": "aGk="}"#.to_vec(),
            "ValidationException",
        ),
        (
            "TrentService.FlyToTheMoon",
            b"{}".to_vec(),
            "UnknownOperationException",
        ),
        (
            "SomethingElse.Encrypt",
            b"{}".to_vec(),
            "UnknownOperationException",
        ),
        (
            "TrentService.GenerateRandom",
            br#"{"NumberOfBytes": 0}"#.to_vec(),
            "ValidationException",
        ),
        (
            "TrentService.GenerateRandom",
            br#"{"NumberOfBytes": 1025}"#.to_vec(),
            "ValidationException",
        ),
        (
            "TrentService.GenerateRandom",
            br#"{"NumberOfBytes": -1}"#.to_vec(),
            "ValidationException",
        ),
        (
            "TrentService.CreateKey",
            br#"{"KeySpec": "NOPE"}"#.to_vec(),
            "ValidationException",
        ),
        (
            "TrentService.Decrypt",
            br#"{"CiphertextBlob": ""}"#.to_vec(),
            "ValidationException",
        ),
        (
            "ArcaAdmin.Explode",
            b"{}".to_vec(),
            "UnknownOperationException",
        ),
    ];
    for (target, body, code) in &cases {
        let h = sign(target, body);
        let (status, text) = http_post(&addr, &h, body).expect("answer");
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(
            v["__type"],
            *code,
            "{target} {}: {status} {text}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(status, 400);
    }
    // An oversized body.
    let big = vec![b' '; 70_000];
    let h = sign("TrentService.Encrypt", &big);
    let (status, text) = http_post(&addr, &h, &big).expect("answer");
    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("ValidationException")),
        "{text}"
    );

    // Still serving.
    let kms = c.client(0);
    let k = kms.create_key().send().await.unwrap();
    let e = kms
        .encrypt()
        .key_id(k.key_metadata().unwrap().key_id())
        .plaintext(Blob::new(b"still here".to_vec()))
        .send()
        .await
        .unwrap();
    let d = kms
        .decrypt()
        .ciphertext_blob(e.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(d.plaintext().unwrap().as_ref(), b"still here");
    assert!(c.metric(0, "arca_raft_is_leader") == Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_bad_root_key_stops_start_up_with_a_clear_error() {
    let mut c = Cluster::start(1).await;
    let kms = c.client(0);
    kms.create_key().send().await.unwrap();
    c.nodes[0].stop();

    // Another valid root key: refused, and the message says why.
    let other = c.dir.path().join("other.key");
    let st = std::process::Command::new(arca_bin())
        .args(["root-key", "generate", "--out", other.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(st.status.success());
    let out = std::process::Command::new(arca_bin())
        .args(["server", "--config"])
        .arg(&c.nodes[0].config)
        .arg("--root-key-file")
        .arg(&other)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("this node lacks root key"), "{err}");

    // A short root key file.
    let short = c.dir.path().join("short.key");
    std::fs::write(&short, "abcd\n").unwrap();
    let mut perms = std::fs::metadata(&short).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&short, perms).unwrap();
    let out = std::process::Command::new(arca_bin())
        .args(["server", "--config"])
        .arg(&c.nodes[0].config)
        .arg("--root-key-file")
        .arg(&short)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("wrong length"), "{err}");

    // A missing one.
    let out = std::process::Command::new(arca_bin())
        .args(["server", "--config"])
        .arg(&c.nodes[0].config)
        .arg("--root-key-file")
        .arg(c.dir.path().join("absent.key"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("root key"));

    // The right one still works, and the key is still there.
    c.start_node(0);
    c.wait_ready(0).await;
    let keys = c.client(0).list_keys().send().await.unwrap();
    assert_eq!(keys.keys().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_audited_without_secrets() {
    let c = Cluster::start(1).await;
    let kms = c.client(0);
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    kms.encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"audited plaintext".to_vec()))
        .send()
        .await
        .unwrap();
    let unknown = client(&c.nodes[0].endpoint(), "AKIAUNKNOWNUNKNOWN00", "whatever");
    unknown
        .generate_random()
        .number_of_bytes(8)
        .send()
        .await
        .unwrap_err();
    let e = kms
        .describe_key()
        .key_id("alias/none")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "NotFoundException");

    let path = c.nodes[0].data_dir.join("audit.jsonl");
    let records: Vec<Value> = wait_for("the audit records", DEADLINE, || {
        let path = path.clone();
        async move {
            let text = std::fs::read_to_string(&path).ok()?;
            let recs: Vec<Value> = text
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            (recs.len() >= 4).then_some(recs)
        }
    })
    .await;
    let find = |op: &str, outcome: &str| {
        records
            .iter()
            .find(|r| r["operation"] == op && r["outcome"] == outcome)
            .unwrap_or_else(|| panic!("no {op} {outcome} record in {records:?}"))
    };
    let enc = find("Encrypt", "OK");
    assert_eq!(enc["key_id"], key_id.as_str());
    assert_eq!(enc["principal"], c.creds.access_key_id.as_str());
    assert_eq!(enc["status"], 200);
    assert!(enc["request_id"].as_str().unwrap().len() == 36);
    assert!(enc["source"].as_str().unwrap().starts_with("127.0.0.1:"));
    let denied = find("GenerateRandom", "UnrecognizedClientException");
    assert!(
        denied["principal"].is_null(),
        "an unverified caller is not named"
    );
    find("DescribeKey", "NotFoundException");
    find("CreateKey", "OK");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("audited plaintext") && !text.contains("YXVkaXRlZCBwbGFpbnRleHQ"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_keys_are_created_limited_and_revoked() {
    let c = Cluster::start(1).await;
    let endpoint = c.nodes[0].endpoint();
    let out = c.cli(&[
        "access-key",
        "create",
        "--endpoint",
        &endpoint,
        "--user",
        "app",
        "--json",
    ]);
    let v: Value = serde_json::from_str(&out).unwrap();
    let (id, secret) = (
        v["AccessKeyId"].as_str().unwrap().to_string(),
        v["SecretAccessKey"].as_str().unwrap().to_string(),
    );
    assert_ne!(id, c.creds.access_key_id);
    assert!(v["UserArn"].as_str().unwrap().ends_with(":user/app"), "{v}");
    let app = client(&endpoint, &id, &secret);
    // A new user may do nothing until a policy allows it...
    let e = app.create_key().send().await.unwrap_err();
    assert_eq!(error_code(&e), "AccessDeniedException");
    // ...then the KMS API it is given...
    let policy = c.dir.path().join("app-policy.json");
    std::fs::write(
        &policy,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
    )
    .unwrap();
    c.cli(&[
        "user",
        "put-policy",
        "--endpoint",
        &endpoint,
        "--user",
        "app",
        "--policy-file",
        policy.to_str().unwrap(),
    ]);
    let k = app.create_key().send().await.unwrap();
    let key_id = k.key_metadata().unwrap().key_id().to_string();
    app.encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap();
    // ...but not for cluster administration.
    let body = b"{}";
    let h = signed_headers(
        &c.nodes[0].api_addr,
        "ArcaAdmin.ClusterStatus",
        body,
        &id,
        &secret,
        unix_now(),
    );
    let (status, text) = http_post(&c.nodes[0].api_addr, &h, body).unwrap();
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, err["__type"].as_str()),
        (400, Some("AccessDeniedException"))
    );
    // Revoked: its requests fail at once.
    c.cli(&[
        "access-key",
        "delete",
        "--endpoint",
        &endpoint,
        "--access-key",
        &id,
    ]);
    let e = app.describe_key().key_id(&key_id).send().await.unwrap_err();
    assert_eq!(error_code(&e), "UnrecognizedClientException");
    // The last admin key cannot be deleted.
    let body = serde_json::json!({"AccessKeyId": c.creds.access_key_id});
    let (status, v) = c.admin_call(0, "DeleteAccessKey", &body);
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("KMSInvalidStateException"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_must_be_scoped_to_the_cluster_region() {
    let c = Cluster::start(1).await;
    let endpoint = c.nodes[0].endpoint();
    let (id, secret) = (&c.creds.access_key_id, &c.creds.secret_access_key);
    for region in ["eu-west-9", "x"] {
        let other = client_in_region(&endpoint, id, secret, false, region);
        let err = other
            .generate_random()
            .number_of_bytes(8)
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&err), "InvalidSignatureException", "{region}");
        assert!(
            format!("{:?}", err).contains("Credential should be scoped to a valid region"),
            "{err:?}"
        );
    }
    let same = client_in_region(&endpoint, id, secret, false, REGION);
    same.generate_random()
        .number_of_bytes(8)
        .send()
        .await
        .unwrap();

    // `[api] accept_any_region = true` keeps the old behaviour for clients
    // that cannot be configured.
    let c = Cluster::start_with(
        1,
        Options {
            extra_config: "[api]\naccept_any_region = true\n".into(),
            ..Options::default()
        },
    )
    .await;
    let other = client_in_region(
        &c.nodes[0].endpoint(),
        &c.creds.access_key_id,
        &c.creds.secret_access_key,
        false,
        "eu-west-9",
    );
    other
        .generate_random()
        .number_of_bytes(8)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ops_token_guards_metrics_and_ready_but_not_health() {
    let token = "ops-token-0123456789abcdef";
    let c = Cluster::start_with(
        1,
        Options {
            ops_token: Some(token.into()),
            ..Options::default()
        },
    )
    .await;
    let addr = &c.nodes[0].api_addr;
    for path in ["/metrics", "/ready"] {
        assert_eq!(http_get_with(addr, path, None).unwrap().0, 401, "{path}");
        assert_eq!(
            http_get_with(addr, path, Some("ops-token-0123456789abcdeX"))
                .unwrap()
                .0,
            401,
            "{path}"
        );
        assert_eq!(
            http_get_with(addr, path, Some(token)).unwrap().0,
            200,
            "{path}"
        );
    }
    assert_eq!(http_get_with(addr, "/health", None).unwrap().0, 200);
    // The API itself is unaffected.
    c.client(0)
        .generate_random()
        .number_of_bytes(8)
        .send()
        .await
        .unwrap();
}

/// The data directory is owner-only (0700) and the database and audit log
/// 0600; looser ones are tightened at start-up with a warning. A root key or
/// cluster secret that group or others can read stops start-up with an error
/// that names the file and the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_files_are_owner_only_and_open_secrets_stop_start_up() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let set_mode = |p: &std::path::Path, m: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap()
    };

    let mut c = Cluster::start(1).await;
    let kms = c.client(0);
    let key = kms.create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let data = c.nodes[0].data_dir.clone();
    let (db, audit) = (data.join("arca.redb"), data.join("audit.jsonl"));
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&audit), 0o600);
    c.nodes[0].stop();

    // A root key or cluster secret readable (or writable) by others.
    for (file, what, loose) in [
        (c.root_key_file.clone(), "root key", 0o644),
        (c.secret_file.clone(), "cluster secret", 0o640),
        (c.root_key_file.clone(), "root key", 0o620),
    ] {
        set_mode(&file, loose);
        let out = std::process::Command::new(arca_bin())
            .args(["server", "--config"])
            .arg(&c.nodes[0].config)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        let access = if loose & 0o044 != 0 {
            "readable"
        } else {
            "writable"
        };
        let p = file.display();
        assert!(
            err.contains(&format!(
                "the {what} file {p} is {access} by group or others (mode {loose:04o})"
            )),
            "{err}"
        );
        assert!(err.contains(&format!("Run: chmod 600 {p}")), "{err}");
        set_mode(&file, 0o600);
    }

    // Loosened data files are tightened at start, with a warning, and the
    // node serves as before.
    set_mode(&data, 0o755);
    set_mode(&db, 0o644);
    set_mode(&audit, 0o644);
    c.start_node(0);
    c.wait_ready(0).await;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    assert_eq!(mode(&audit), 0o600);
    let log = c.nodes[0].log_text();
    assert!(
        log.contains("the data directory was open to group or others"),
        "{log}"
    );
    assert!(
        log.contains("a data file was open to group or others"),
        "{log}"
    );
    assert!(
        log.contains("the audit log was open to group or others"),
        "{log}"
    );
    let ct = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"still here".to_vec()))
        .send()
        .await
        .unwrap();
    let pt = kms
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"still here");
}

/// Where Arca's answers used to differ from AWS's: each case through the AWS
/// SDK (or signed JSON where the SDK checks the input itself), with the code
/// AWS gives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_match_aws_for_invalid_and_unsupported_input() {
    use arca_system_tests::aws_sdk_kms::types::{
        EncryptionAlgorithmSpec, KeySpec, KeyUsageType, Tag,
    };
    let c = Cluster::start(1).await;
    let kms = c.client_no_retry(0);
    let key = c.new_key(0).await;
    let code = |(status, v): (u16, Value)| {
        assert_eq!(status, 400, "{v}");
        v["__type"].as_str().unwrap_or_default().to_string()
    };

    // The model's constraints, before any semantic rule: the message names
    // every violation in AWS's words.
    let (status, v) = c.call(
        0,
        "TrentService.CreateAlias",
        &serde_json::json!({ "AliasName": "alias/has space", "TargetKeyId": key }),
    );
    assert_eq!(
        (status, v["__type"].as_str()),
        (400, Some("ValidationException"))
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern"),
        "{v}"
    );
    // Descriptions: at most 8192 UTF-16 code units, on creation and update
    // alike ("é" is one unit, "𝄞" two); the limit itself is accepted.
    for (op, body) in [
        (
            "TrentService.CreateKey",
            serde_json::json!({ "Description": "é".repeat(8193) }),
        ),
        (
            "TrentService.UpdateKeyDescription",
            serde_json::json!({ "KeyId": key, "Description": "𝄞".repeat(4097) }),
        ),
    ] {
        let (status, v) = c.call(0, op, &body);
        assert_eq!(
            (status, v["__type"].as_str()),
            (400, Some("ValidationException")),
            "{op}: {v}"
        );
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("at 'description' failed to satisfy constraint: Member must have length less than or equal to 8192"),
            "{v}"
        );
    }
    let (status, v) = c.call(
        0,
        "TrentService.UpdateKeyDescription",
        &serde_json::json!({ "KeyId": key, "Description": "𝄞".repeat(4096) }),
    );
    assert_eq!(status, 200, "{v}");
    let (_, v) = c.call(
        0,
        "TrentService.Encrypt",
        &serde_json::json!({ "Plaintext": "" }),
    );
    let msg = v["message"].as_str().unwrap();
    assert!(msg.starts_with("2 validation errors detected: "), "{msg}");
    for (name, body) in [
        (
            "no alias/ prefix",
            serde_json::json!({ "AliasName": "my-key", "TargetKeyId": key }),
        ),
        (
            "unknown Origin",
            serde_json::json!({ "Origin": "SOMEWHERE" }),
        ),
    ] {
        let target = if name == "unknown Origin" {
            "TrentService.CreateKey"
        } else {
            "TrentService.CreateAlias"
        };
        assert_eq!(
            code(c.call(0, target, &body)),
            "ValidationException",
            "{name}"
        );
    }
    let long_key = "k".repeat(129);
    let e = kms
        .tag_resource()
        .key_id(&key)
        .tags(
            Tag::builder()
                .tag_key(&long_key)
                .tag_value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "ValidationException");
    let e = kms
        .tag_resource()
        .key_id(&key)
        .tags(
            Tag::builder()
                .tag_key("k")
                .tag_value("v".repeat(257))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "ValidationException");
    let mut enc = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()));
    for i in 0..11 {
        enc = enc.grant_tokens(format!("token-{i}"));
    }
    assert_eq!(
        error_code(&enc.send().await.unwrap_err()),
        "ValidationException"
    );

    // Duplicate tag keys in one request.
    let e = kms
        .tag_resource()
        .key_id(&key)
        .tags(
            Tag::builder()
                .tag_key("team")
                .tag_value("a")
                .build()
                .unwrap(),
        )
        .tags(
            Tag::builder()
                .tag_key("team")
                .tag_value("b")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "TagException");
    let tags = kms.list_resource_tags().key_id(&key).send().await.unwrap();
    assert!(tags.tags().is_empty(), "nothing was half-applied");

    // An asymmetric key needs its usage named.
    let e = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "ValidationException");

    // Things a self-hosted cluster does not have are refused, not ignored.
    let e = kms
        .create_key()
        .custom_key_store_id("cks-1234567890abcdef0")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "CustomKeyStoreNotFoundException");
    let ct = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"secret".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let recipient = serde_json::json!({ "KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": "AAAA" });
    for (target, body) in [
        (
            "TrentService.Decrypt",
            serde_json::json!({ "CiphertextBlob": base64_of(ct.as_ref()), "Recipient": recipient }),
        ),
        (
            "TrentService.GenerateDataKey",
            serde_json::json!({ "KeyId": key, "KeySpec": "AES_256", "Recipient": recipient }),
        ),
        (
            "TrentService.GenerateRandom",
            serde_json::json!({ "NumberOfBytes": 16, "Recipient": recipient }),
        ),
    ] {
        let (status, v) = c.call(0, target, &body);
        assert_eq!(status, 400, "{target}: {v}");
        assert_eq!(
            v["__type"], "UnsupportedOperationException",
            "{target}: {v}"
        );
        assert!(v.get("Plaintext").is_none());
    }

    // Symmetric crypto with keys of other usages, and asymmetric keys
    // without an asymmetric algorithm.
    let signer = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let rsa = kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    for (k, alg) in [
        (&signer, None),
        (&signer, Some(EncryptionAlgorithmSpec::RsaesOaepSha256)),
        (&rsa, None),
        (&rsa, Some(EncryptionAlgorithmSpec::SymmetricDefault)),
    ] {
        let e = kms
            .encrypt()
            .key_id(k)
            .plaintext(Blob::new(b"x".to_vec()))
            .set_encryption_algorithm(alg.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "InvalidKeyUsageException", "{k} {alg:?}");
        let e = kms
            .decrypt()
            .key_id(k)
            .ciphertext_blob(Blob::new(vec![1u8; 256]))
            .set_encryption_algorithm(alg.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(error_code(&e), "InvalidKeyUsageException", "{k} {alg:?}");
    }
    let e = kms
        .re_encrypt()
        .ciphertext_blob(ct.clone())
        .destination_key_id(&rsa)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidKeyUsageException");
}

/// Key material ids, on-demand rotation leaving the schedule alone, and an
/// asymmetric ciphertext of an older version decrypting without a version
/// id, as clients written for AWS (which has no versions) expect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_and_versions_answer_as_aws_does() {
    use arca_system_tests::aws_sdk_kms::types::{EncryptionAlgorithmSpec, KeySpec, KeyUsageType};
    let c = Cluster::start(1).await;
    let kms = c.client_no_retry(0);
    let key = c.new_key(0).await;
    let material = |m: &arca_system_tests::aws_sdk_kms::types::KeyMetadata| {
        m.current_key_material_id().unwrap_or_default().to_string()
    };
    let d = kms.describe_key().key_id(&key).send().await.unwrap();
    let first = material(d.key_metadata().unwrap());
    assert_eq!(first.len(), 64, "{first}");
    assert!(first
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));

    kms.enable_key_rotation().key_id(&key).send().await.unwrap();
    let before = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let scheduled = before.next_rotation_date().cloned().expect("a schedule");
    kms.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let after = kms
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.next_rotation_date(),
        Some(&scheduled),
        "on-demand rotation moved the schedule"
    );
    let d = kms.describe_key().key_id(&key).send().await.unwrap();
    let second = material(d.key_metadata().unwrap());
    assert_ne!(second, first);
    let rotations = kms.list_key_rotations().key_id(&key).send().await.unwrap();
    let ids: Vec<&str> = rotations
        .rotations()
        .iter()
        .filter_map(|r| r.key_material_id())
        .collect();
    assert_eq!(ids, vec![second.as_str()]);

    // An RSA key with two versions: a ciphertext of the first decrypts
    // without KeyVersionId after the second becomes primary.
    let rsa = kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let (status, old) = c.call(
        0,
        "TrentService.Encrypt",
        &serde_json::json!({
            "KeyId": rsa,
            "Plaintext": base64_of(b"from version one"),
            "EncryptionAlgorithm": "RSAES_OAEP_SHA_256",
        }),
    );
    assert_eq!(status, 200, "{old}");
    let old_version = old["KeyVersionId"].as_str().unwrap().to_string();
    let old_blob = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(old["CiphertextBlob"].as_str().unwrap())
            .unwrap()
    };
    let (status, v) = c.call(
        0,
        "TrentService.CreateKeyVersion",
        &serde_json::json!({ "KeyId": rsa }),
    );
    assert_eq!(status, 200, "{v}");
    let new_version = v["KeyVersionId"].as_str().unwrap().to_string();
    let out = kms
        .decrypt()
        .key_id(&rsa)
        .ciphertext_blob(Blob::new(old_blob.clone()))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref(), b"from version one");
    let (_, v) = c.call(
        0,
        "TrentService.Decrypt",
        &serde_json::json!({
            "KeyId": rsa,
            "CiphertextBlob": base64_of(&old_blob),
            "EncryptionAlgorithm": "RSAES_OAEP_SHA_256",
        }),
    );
    assert_eq!(
        v["KeyVersionId"].as_str(),
        Some(old_version.as_str()),
        "the version that decrypted is named"
    );
    assert_ne!(v["KeyVersionId"].as_str(), Some(new_version.as_str()));
    // A ciphertext no version made is still refused.
    let e = kms
        .decrypt()
        .key_id(&rsa)
        .ciphertext_blob(Blob::new(vec![7u8; 256]))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "InvalidCiphertextException");
}

fn base64_of(b: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(b)
}
