//! Certificate signing requests from keys that never leave Arca
//! (`TrentService.GenerateCertificateSigningRequest` and `arca csr`), checked
//! by OpenSSL: `openssl req -verify` accepts each one, and `openssl req`
//! shows the subject, the alternative names and the key GetPublicKey returns.

use std::path::{Path, PathBuf};
use std::process::Command;

use arca_system_tests::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

const SUBJECT: &str = r"CN=api.example.com,O=Example\, Inc.,C=CN";

/// The SAN object every request here asks for.
fn sans() -> Value {
    json!({
        "Dns": ["api.example.com", "*.api.example.com"],
        "Email": ["ops@example.com"],
        "Uri": ["spiffe://example.com/api"],
        "Ip": ["192.0.2.10", "2001:db8::1"],
    })
}

/// Runs `openssl`; returns whether it succeeded, its stdout and its stderr.
fn openssl_out(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command (scripts/test.sh checks for it)");
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// OpenSSL's options to verify a request of `spec`: SM2 needs the
/// distinguishing id Arca signs with (GB/T 32918's default).
fn verify_options(spec: &str) -> Vec<&'static str> {
    if spec == "SM2" {
        vec!["-vfyopt", "distid:1234567812345678"]
    } else {
        vec![]
    }
}

/// `openssl req -verify` with `args`; its stderr on failure. OpenSSL 3.0
/// exits with 0 even when the signature is wrong, so the verdict is read from
/// its message.
fn req_verify(args: &[&str]) -> Result<(), String> {
    let mut all = vec!["req", "-verify", "-noout"];
    all.extend_from_slice(args);
    let (ok, _, err) = openssl_out(&all);
    if ok && err.contains("self-signature verify OK") {
        Ok(())
    } else {
        Err(err)
    }
}

/// `openssl req -verify` on a PEM file of a `spec` key; its stderr on failure.
fn openssl_verifies(path: &Path, spec: &str) -> Result<(), String> {
    let mut args = vec!["-in", s(path)];
    args.extend(verify_options(spec));
    req_verify(&args)
}

/// The SubjectPublicKeyInfo DER of the key in a request, as OpenSSL reads it.
fn openssl_public_key(path: &Path) -> Vec<u8> {
    let (ok, pem, err) = openssl_out(&["req", "-in", s(path), "-noout", "-pubkey"]);
    assert!(ok, "openssl req -pubkey: {err}");
    let pem = String::from_utf8(pem).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    B64.decode(b64).unwrap()
}

fn openssl_text(path: &Path) -> String {
    let (ok, text, err) = openssl_out(&["req", "-in", s(path), "-noout", "-text"]);
    assert!(ok, "openssl req -text: {err}");
    String::from_utf8(text).unwrap()
}

fn create_signing_key(c: &Cluster, spec: &str) -> String {
    let (st, k) = c.call(
        0,
        "TrentService.CreateKey",
        &json!({"KeySpec": spec, "KeyUsage": "SIGN_VERIFY"}),
    );
    assert_eq!(st, 200, "{k}");
    k["KeyMetadata"]["KeyId"].as_str().unwrap().to_string()
}

fn public_key(c: &Cluster, key: &str, version: Option<&str>) -> Vec<u8> {
    let mut body = json!({"KeyId": key});
    if let Some(v) = version {
        body["KeyVersionId"] = json!(v);
    }
    let (st, pk) = c.call(0, "TrentService.GetPublicKey", &body);
    assert_eq!(st, 200, "{pk}");
    B64.decode(pk["PublicKey"].as_str().unwrap()).unwrap()
}

fn csr(c: &Cluster, body: &Value) -> (u16, Value) {
    c.call(0, "TrentService.GenerateCertificateSigningRequest", body)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signing_spec_and_algorithm_gets_a_csr_openssl_verifies() {
    let mut c = Cluster::start_with(
        1,
        Options {
            rsa_pool: 1,
            ..Options::default()
        },
    )
    .await;
    c.wait_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let specs: &[(&str, &[&str])] = &[
        (
            "RSA_2048",
            &[
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
            ],
        ),
        ("RSA_3072", &["RSASSA_PSS_SHA_256"]),
        ("RSA_4096", &["RSASSA_PKCS1_V1_5_SHA_512"]),
        ("ECC_NIST_P256", &["ECDSA_SHA_256"]),
        ("ECC_NIST_P384", &["ECDSA_SHA_384"]),
        ("ECC_NIST_P521", &["ECDSA_SHA_512"]),
        ("ECC_SECG_P256K1", &["ECDSA_SHA_256"]),
        ("SM2", &["SM2DSA"]),
    ];
    for (spec, algs) in specs {
        let key = create_signing_key(&c, spec);
        let spki = public_key(&c, &key, None);
        // No SigningAlgorithm: the key's first, as GetPublicKey lists them.
        let default = if spec.starts_with("RSA") {
            Some("RSASSA_PSS_SHA_256")
        } else {
            None
        };
        let mut requests: Vec<(Option<&str>, &str)> = algs.iter().map(|a| (Some(*a), *a)).collect();
        requests.push((None, default.unwrap_or(algs[0])));
        for (asked, expected) in requests {
            let mut body =
                json!({"KeyId": key, "Subject": SUBJECT, "SubjectAlternativeNames": sans()});
            if let Some(a) = asked {
                body["SigningAlgorithm"] = json!(a);
            }
            let (st, out) = csr(&c, &body);
            assert_eq!(st, 200, "{spec} {asked:?}: {out}");
            assert_eq!(out["SigningAlgorithm"], expected, "{spec}");
            assert!(out["KeyId"].as_str().unwrap().ends_with(&key));
            assert!(out["KeyVersionId"].as_str().is_some());
            let pem = out["CertificateSigningRequest"].as_str().unwrap();
            assert!(pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----\n"));
            let path = write(dir.path(), &format!("{spec}-{expected}.pem"), pem);

            if let Err(e) = openssl_verifies(&path, spec) {
                panic!("openssl req -verify refused the {spec} {expected} CSR: {e}");
            }
            assert_eq!(openssl_public_key(&path), spki, "{spec} {expected}");
            let text = openssl_text(&path);
            for want in [
                r#"Subject: C = CN, O = "Example, Inc.", CN = api.example.com"#,
                "X509v3 Subject Alternative Name:",
                "DNS:api.example.com, DNS:*.api.example.com, email:ops@example.com, \
                 URI:spiffe://example.com/api, IP Address:192.0.2.10, IP Address:2001:DB8:0:0:0:0:0:1",
            ] {
                assert!(text.contains(want), "{spec} {expected}: no {want:?} in\n{text}");
            }

            // A CSR whose request info was altered no longer verifies.
            let der_b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            let mut der = B64.decode(der_b64).unwrap();
            let at = der
                .windows(15)
                .position(|w| w == b"api.example.com")
                .unwrap();
            der[at] = b'b';
            let bad = dir.path().join(format!("{spec}-{expected}-bad.der"));
            std::fs::write(&bad, &der).unwrap();
            let mut args = vec!["-inform", "DER", "-in", s(&bad)];
            args.extend(verify_options(spec));
            assert!(
                req_verify(&args).is_err(),
                "{spec} {expected}: altered CSR verified"
            );
        }
    }
}

/// OpenSSL 3 checks an SM2 signature against the distinguishing id it is
/// given: the CSR verifies with the default id and not with another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sm2_csrs_are_signed_with_the_default_distinguishing_id() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let key = create_signing_key(&c, "SM2");
    let (st, out) = csr(
        &c,
        &json!({"KeyId": key, "Subject": "CN=sm2.example.cn,C=CN"}),
    );
    assert_eq!(st, 200, "{out}");
    let path = write(
        dir.path(),
        "sm2.pem",
        out["CertificateSigningRequest"].as_str().unwrap(),
    );
    assert!(openssl_text(&path).contains("Signature Algorithm: SM2-with-SM3"));
    openssl_verifies(&path, "SM2").unwrap();
    for wrong in [vec![], vec!["-vfyopt", "distid:another-id"]] {
        let mut args = vec!["-in", s(&path)];
        args.extend(wrong);
        assert!(
            req_verify(&args).is_err(),
            "an SM2 CSR verified with {args:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrs_follow_key_versions() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let key = create_signing_key(&c, "ECC_NIST_P256");
    let (_, first) = csr(&c, &json!({"KeyId": key, "Subject": "CN=v1"}));
    let v1 = first["KeyVersionId"].as_str().unwrap().to_string();
    let (st, created) = c.call(0, "TrentService.CreateKeyVersion", &json!({"KeyId": key}));
    assert_eq!(st, 200, "{created}");
    let v2 = created["KeyVersionId"].as_str().unwrap().to_string();

    for (asked, want) in [(None, &v2), (Some(&v1), &v1)] {
        let mut body = json!({"KeyId": key, "Subject": "CN=versioned"});
        if let Some(v) = asked {
            body["KeyVersionId"] = json!(v);
        }
        let (st, out) = csr(&c, &body);
        assert_eq!(st, 200, "{out}");
        assert_eq!(out["KeyVersionId"], want.as_str());
        let path = write(
            dir.path(),
            &format!("{want}.pem"),
            out["CertificateSigningRequest"].as_str().unwrap(),
        );
        openssl_verifies(&path, "ECC_NIST_P256").unwrap();
        assert_eq!(openssl_public_key(&path), public_key(&c, &key, Some(want)));
    }
    assert_ne!(
        public_key(&c, &key, Some(&v1)),
        public_key(&c, &key, Some(&v2))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_as_aws_refuses_sign() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let signer = create_signing_key(&c, "ECC_NIST_P256");

    // Invalid subjects and names: ValidationException naming the field.
    for (body, field) in [
        (json!({"KeyId": signer}), "Subject"),
        (json!({"KeyId": signer, "Subject": ""}), "Subject"),
        (json!({"KeyId": signer, "Subject": "XX=a"}), "Subject"),
        (json!({"KeyId": signer, "Subject": "CN="}), "Subject"),
        (json!({"KeyId": signer, "Subject": "C=China"}), "Subject"),
        (
            json!({"KeyId": signer, "Subject": "CN=a", "SubjectAlternativeNames": {"Ip": ["10.0.0.300"]}}),
            "SubjectAlternativeNames.Ip[0]",
        ),
        (
            json!({"KeyId": signer, "Subject": "CN=a", "SubjectAlternativeNames": {"Dns": ["ok.example", "bad_name"]}}),
            "SubjectAlternativeNames.Dns[1]",
        ),
        (
            json!({"KeyId": signer, "Subject": "CN=a", "SubjectAlternativeNames": {"Email": ["nobody"]}}),
            "SubjectAlternativeNames.Email[0]",
        ),
        (
            json!({"KeyId": signer, "Subject": "CN=a", "SubjectAlternativeNames": {"Uri": ["no-scheme"]}}),
            "SubjectAlternativeNames.Uri[0]",
        ),
        (
            json!({"KeyId": signer, "Subject": "CN=a", "SigningAlgorithm": "ECDSA_SHA_999"}),
            "signingAlgorithm",
        ),
    ] {
        let (st, e) = csr(&c, &body);
        assert_eq!(
            (st, e["__type"].as_str()),
            (400, Some("ValidationException")),
            "{body}: {e}"
        );
        // AWS spells a missing member's name in camelCase.
        let msg = e["message"].as_str().unwrap().to_lowercase();
        assert!(msg.contains(&field.to_lowercase()), "{body}: {msg}");
    }
    // An unknown kind of name is not silently dropped.
    let (st, e) = csr(
        &c,
        &json!({"KeyId": signer, "Subject": "CN=a", "SubjectAlternativeNames": {"Dn": ["x"]}}),
    );
    assert_eq!(st, 400, "{e}");

    // Keys that cannot sign, and an algorithm of another spec: the error
    // Sign gives for the same key and algorithm.
    let (_, sym) = c.call(0, "TrentService.CreateKey", &json!({}));
    let sym = sym["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let (_, enc) = c.call(
        0,
        "TrentService.CreateKey",
        &json!({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"}),
    );
    let enc = enc["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    let (_, mac) = c.call(
        0,
        "TrentService.CreateKey",
        &json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
    );
    let mac = mac["KeyMetadata"]["KeyId"].as_str().unwrap().to_string();
    for (key, alg) in [
        (&sym, "ECDSA_SHA_256"),
        (&enc, "RSASSA_PSS_SHA_256"),
        (&mac, "ECDSA_SHA_256"),
        (&signer, "ECDSA_SHA_384"),
        (&signer, "RSASSA_PSS_SHA_256"),
    ] {
        let (st, sign) = c.call(
            0,
            "TrentService.Sign",
            &json!({"KeyId": key, "Message": B64.encode(b"m"), "SigningAlgorithm": alg}),
        );
        let (cst, got) = csr(
            &c,
            &json!({"KeyId": key, "Subject": "CN=a", "SigningAlgorithm": alg}),
        );
        assert_eq!(st, 400, "{sign}");
        assert_eq!(
            (cst, got["__type"].as_str()),
            (st, sign["__type"].as_str()),
            "{key} {alg}: {got}"
        );
        assert_eq!(got["__type"], "InvalidKeyUsageException", "{got}");
    }
    // Without an algorithm too.
    let (st, got) = csr(&c, &json!({"KeyId": enc, "Subject": "CN=a"}));
    assert_eq!(
        (st, got["__type"].as_str()),
        (400, Some("InvalidKeyUsageException"))
    );

    // A disabled key, and a key that does not exist.
    let (st, _) = c.call(0, "TrentService.DisableKey", &json!({"KeyId": signer}));
    assert_eq!(st, 200);
    let (st, got) = csr(&c, &json!({"KeyId": signer, "Subject": "CN=a"}));
    assert_eq!(
        (st, got["__type"].as_str()),
        (400, Some("DisabledException")),
        "{got}"
    );
    let (st, got) = csr(
        &c,
        &json!({"KeyId": "11111111-2222-3333-4444-555555555555", "Subject": "CN=a"}),
    );
    assert_eq!(
        (st, got["__type"].as_str()),
        (400, Some("NotFoundException")),
        "{got}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_writes_a_csr_openssl_verifies() {
    let mut c = Cluster::start(1).await;
    c.wait_leader().await;
    let dir = tempfile::tempdir().unwrap();
    let key = create_signing_key(&c, "ECC_NIST_P384");
    let (st, _) = c.call(
        0,
        "TrentService.CreateAlias",
        &json!({"AliasName": "alias/web", "TargetKeyId": key}),
    );
    assert_eq!(st, 200);
    let endpoint = c.nodes[0].endpoint();
    let out = dir.path().join("web.pem");
    c.cli(&[
        "csr",
        "--endpoint",
        &endpoint,
        "--key-id",
        "alias/web",
        "--subject",
        "CN=web.example.com,O=Example",
        "--san",
        "dns:web.example.com",
        "--san",
        "ip:10.0.0.7",
        "--san",
        "uri:https://web.example.com/",
        "--out",
        s(&out),
    ]);
    openssl_verifies(&out, "ECC_NIST_P384").unwrap();
    assert_eq!(openssl_public_key(&out), public_key(&c, &key, None));
    let text = openssl_text(&out);
    assert!(
        text.contains("Subject: O = Example, CN = web.example.com"),
        "{text}"
    );
    assert!(
        text.contains("DNS:web.example.com, URI:https://web.example.com/, IP Address:10.0.0.7"),
        "{text}"
    );
    // Without --out, the PEM goes to standard output.
    let pem = c.cli(&[
        "csr",
        "--endpoint",
        &endpoint,
        "--key-id",
        &key,
        "--subject",
        "CN=stdout.example.com",
    ]);
    assert!(
        pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{pem}"
    );
}
