use super::*;
use proptest::prelude::*;

const EXAMPLE_AKID: &str = "AKIDEXAMPLE";
const EXAMPLE_SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 20150830T123600Z
const EXAMPLE_TIME: i64 = 1_440_938_160;

const KMS_SECRET: &[u8] = b"kms-test-secret-access-key-0123456789";
const KMS_BODY: &[u8] = br#"{"KeyId":"alias/test","Plaintext":"aGVsbG8="}"#;
/// 20260101T000000Z
const NOW: i64 = 1_767_225_600;

fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("test header name"),
            HeaderValue::from_str(value).expect("test header value"),
        );
    }
    map
}

fn authorization_str(headers: &HeaderMap) -> &str {
    headers
        .get(AUTHORIZATION)
        .expect("authorization header")
        .to_str()
        .expect("ascii")
}

/// A KMS Encrypt request signed at `signed_at`.
fn kms_request(signed_at: i64) -> HeaderMap {
    let mut headers = header_map(&[
        ("host", "kms.us-east-1.amazonaws.com"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.Encrypt"),
        ("user-agent", "arca-test/1.0"),
    ]);
    try_sign(
        &Method::POST,
        "/",
        "",
        &mut headers,
        KMS_BODY,
        "AKIAARCATEST",
        KMS_SECRET,
        "us-east-1",
        "kms",
        signed_at,
    )
    .expect("sign");
    headers
}

fn parse_and_verify(headers: &HeaderMap, body: &[u8], secret: &[u8]) -> Result<(), AuthError> {
    let auth = parse(headers, "kms", NOW)?;
    verify(&auth, &Method::POST, "/", "", headers, body, secret)
}

// ---------------------------------------------------------------------------------------------
// Known answers

/// AWS documentation example: IAM ListUsers.
#[test]
fn iam_list_users_known_answer() {
    let headers = header_map(&[
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("host", "iam.amazonaws.com"),
        ("x-amz-date", "20150830T123600Z"),
    ]);
    let signed: Vec<String> = ["content-type", "host", "x-amz-date"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let creq = canonical::canonical_request(
        &Method::GET,
        "/",
        "Action=ListUsers&Version=2010-05-08",
        &headers,
        &signed,
        &canonical::sha256_hex(b""),
    )
    .expect("canonical request");
    assert_eq!(
        creq,
        "GET\n/\nAction=ListUsers&Version=2010-05-08\n\
         content-type:application/x-www-form-urlencoded; charset=utf-8\n\
         host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
         content-type;host;x-amz-date\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        canonical::sha256_hex(creq.as_bytes()),
        "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
    );
    let key = canonical::signing_key(EXAMPLE_SECRET, "20150830", "us-east-1", "iam");
    assert_eq!(
        hex::encode(*key),
        "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
    );
    let sts = canonical::string_to_sign(
        "20150830T123600Z",
        "20150830/us-east-1/iam/aws4_request",
        &creq,
    );
    assert_eq!(
        hex::encode(canonical::signature(&key, &sts)),
        "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    );

    // The same through the public signer and verifier.
    let mut request = header_map(&[
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("host", "iam.amazonaws.com"),
    ]);
    sign(
        &Method::GET,
        "/",
        "Action=ListUsers&Version=2010-05-08",
        &mut request,
        b"",
        EXAMPLE_AKID,
        EXAMPLE_SECRET,
        "us-east-1",
        "iam",
        EXAMPLE_TIME,
    );
    assert_eq!(
        request.get("x-amz-date").and_then(|v| v.to_str().ok()),
        Some("20150830T123600Z")
    );
    assert_eq!(
        authorization_str(&request),
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, \
         Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
    );
    let auth = parse(&request, "iam", EXAMPLE_TIME).expect("parse");
    assert_eq!(auth.access_key_id, EXAMPLE_AKID);
    assert_eq!(auth.date, "20150830");
    assert_eq!(auth.region, "us-east-1");
    assert_eq!(auth.service, "iam");
    assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
    assert_eq!(
        verify(
            &auth,
            &Method::GET,
            "/",
            "Action=ListUsers&Version=2010-05-08",
            &request,
            b"",
            EXAMPLE_SECRET,
        ),
        Ok(())
    );
}

/// Cases from the AWS SigV4 test suite (service "service", region us-east-1): request
/// method, path, query, headers (without x-amz-date), body, expected signature.
type SuiteCase = (
    &'static str,
    Method,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static [u8],
    &'static str,
);

fn suite_cases() -> Vec<SuiteCase> {
    vec![
        (
            "get-vanilla",
            Method::GET,
            "/",
            "",
            &[("host", "example.amazonaws.com")],
            b"",
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-header-value-trim",
            Method::GET,
            "/",
            "",
            &[
                ("host", "example.amazonaws.com"),
                ("my-header1", " value1"),
                ("my-header2", "\"a   b   c\""),
            ],
            b"",
            "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        ),
        (
            "get-header-key-duplicate",
            Method::GET,
            "/",
            "",
            &[
                ("host", "example.amazonaws.com"),
                ("my-header1", "value2"),
                ("my-header1", "value2"),
                ("my-header1", "value1"),
            ],
            b"",
            "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
        ),
        (
            "get-header-value-order",
            Method::GET,
            "/",
            "",
            &[
                ("host", "example.amazonaws.com"),
                ("my-header1", "value4"),
                ("my-header1", "value1"),
                ("my-header1", "value3"),
                ("my-header1", "value2"),
            ],
            b"",
            "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01",
        ),
        (
            "get-vanilla-query-order-key-case",
            Method::GET,
            "/",
            "Param2=value2&Param1=value1",
            &[("host", "example.amazonaws.com")],
            b"",
            "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "get-vanilla-query-order-encoded",
            Method::GET,
            "/",
            "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
            &[("host", "example.amazonaws.com")],
            b"",
            "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac",
        ),
        (
            "get-utf8 (path given unencoded)",
            Method::GET,
            "/ሴ",
            "",
            &[("host", "example.amazonaws.com")],
            b"",
            "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85",
        ),
        (
            "get-vanilla-with-session-token",
            Method::GET,
            "/",
            "",
            &[
                ("host", "example.amazonaws.com"),
                (
                    "x-amz-security-token",
                    "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267",
                ),
            ],
            b"",
            "07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8",
        ),
        (
            "post-vanilla-empty-query-value",
            Method::POST,
            "/",
            "Param1=value1",
            &[("host", "example.amazonaws.com")],
            b"",
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        ),
        (
            "post-x-www-form-urlencoded",
            Method::POST,
            "/",
            "",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("host", "example.amazonaws.com"),
                ("content-length", "13"),
                (
                    "x-amz-content-sha256",
                    "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
                ),
            ],
            b"Param1=value1",
            "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b",
        ),
    ]
}

#[test]
fn aws_test_suite_known_answers() {
    for (name, method, path, query, pairs, body, expected) in suite_cases() {
        let mut headers = header_map(pairs);
        try_sign(
            &method,
            path,
            query,
            &mut headers,
            body,
            EXAMPLE_AKID,
            EXAMPLE_SECRET,
            "us-east-1",
            "service",
            EXAMPLE_TIME,
        )
        .expect("sign");
        let authorization = authorization_str(&headers);
        assert!(
            authorization.ends_with(&format!("Signature={expected}")),
            "{name}: {authorization}"
        );
        let auth = parse(&headers, "service", EXAMPLE_TIME).expect(name);
        assert_eq!(
            verify(&auth, &method, path, query, &headers, body, EXAMPLE_SECRET),
            Ok(()),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Round trip and rejection

#[test]
fn round_trip() {
    let headers = kms_request(NOW);
    let authorization = authorization_str(&headers);
    assert!(authorization.starts_with(
        "AWS4-HMAC-SHA256 Credential=AKIAARCATEST/20260101/us-east-1/kms/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature="
    ));
    assert!(headers.get(X_AMZ_CONTENT_SHA256).is_none());
    assert_eq!(
        headers.get(X_AMZ_DATE).and_then(|v| v.to_str().ok()),
        Some("20260101T000000Z")
    );
    let auth = parse(&headers, "kms", NOW).expect("parse");
    assert_eq!(auth.access_key_id, "AKIAARCATEST");
    assert_eq!(
        auth.credential_scope(),
        "20260101/us-east-1/kms/aws4_request"
    );
    assert_eq!(
        verify(
            &auth,
            &Method::POST,
            "/",
            "",
            &headers,
            KMS_BODY,
            KMS_SECRET
        ),
        Ok(())
    );
}

#[test]
fn tampering_is_a_mismatch() {
    let headers = kms_request(NOW);
    let auth = parse(&headers, "kms", NOW).expect("parse");

    let tampered_body = br#"{"KeyId":"alias/evil","Plaintext":"aGVsbG8="}"#;
    assert_eq!(
        verify(
            &auth,
            &Method::POST,
            "/",
            "",
            &headers,
            tampered_body,
            KMS_SECRET
        ),
        Err(AuthError::SignatureMismatch)
    );

    let mut tampered_target = headers.clone();
    tampered_target.insert(
        X_AMZ_TARGET,
        HeaderValue::from_static("TrentService.Decrypt"),
    );
    let auth2 = parse(&tampered_target, "kms", NOW).expect("parse");
    assert_eq!(
        verify(
            &auth2,
            &Method::POST,
            "/",
            "",
            &tampered_target,
            KMS_BODY,
            KMS_SECRET
        ),
        Err(AuthError::SignatureMismatch)
    );

    assert_eq!(
        verify(
            &auth,
            &Method::POST,
            "/",
            "",
            &headers,
            KMS_BODY,
            b"wrong-secret"
        ),
        Err(AuthError::SignatureMismatch)
    );
    assert_eq!(
        verify(&auth, &Method::PUT, "/", "", &headers, KMS_BODY, KMS_SECRET),
        Err(AuthError::SignatureMismatch)
    );
    assert_eq!(
        verify(
            &auth,
            &Method::POST,
            "/x",
            "",
            &headers,
            KMS_BODY,
            KMS_SECRET
        ),
        Err(AuthError::SignatureMismatch)
    );
    assert_eq!(
        verify(
            &auth,
            &Method::POST,
            "/",
            "a=b",
            &headers,
            KMS_BODY,
            KMS_SECRET
        ),
        Err(AuthError::SignatureMismatch)
    );

    let mut other_region = auth.clone();
    other_region.region = "eu-west-1".to_owned();
    assert_eq!(
        verify(
            &other_region,
            &Method::POST,
            "/",
            "",
            &headers,
            KMS_BODY,
            KMS_SECRET
        ),
        Err(AuthError::SignatureMismatch)
    );

    let mut flipped = auth.clone();
    flipped.signature[31] ^= 1;
    assert_eq!(
        verify(
            &flipped,
            &Method::POST,
            "/",
            "",
            &headers,
            KMS_BODY,
            KMS_SECRET
        ),
        Err(AuthError::SignatureMismatch)
    );
}

#[test]
fn unsigned_header_changes_are_accepted() {
    let mut headers = kms_request(NOW);
    headers.insert("user-agent", HeaderValue::from_static("something-else"));
    headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
    assert_eq!(parse_and_verify(&headers, KMS_BODY, KMS_SECRET), Ok(()));
}

#[test]
fn header_whitespace_is_canonicalised() {
    let mut headers = kms_request(NOW);
    headers.insert(
        X_AMZ_TARGET,
        HeaderValue::from_static("  TrentService.Encrypt  "),
    );
    assert_eq!(parse_and_verify(&headers, KMS_BODY, KMS_SECRET), Ok(()));
}

#[test]
fn content_sha256_header_must_match_body() {
    let mut headers = header_map(&[
        ("host", "localhost:8443"),
        ("content-type", "application/x-amz-json-1.1"),
        ("x-amz-target", "TrentService.Encrypt"),
        (X_AMZ_CONTENT_SHA256, &canonical::sha256_hex(KMS_BODY)),
    ]);
    sign(
        &Method::POST,
        "/",
        "",
        &mut headers,
        KMS_BODY,
        "AKID",
        KMS_SECRET,
        "us-east-1",
        "kms",
        NOW,
    );
    assert!(authorization_str(&headers).contains("x-amz-content-sha256"));
    assert_eq!(parse_and_verify(&headers, KMS_BODY, KMS_SECRET), Ok(()));
    assert_eq!(
        parse_and_verify(&headers, b"{}", KMS_SECRET),
        Err(AuthError::SignatureMismatch)
    );

    // A claimed hash that is not the body's hash is rejected even if it is what was signed.
    for claimed in ["UNSIGNED-PAYLOAD", &canonical::sha256_hex(b"{}")] {
        let mut headers = header_map(&[
            ("host", "localhost:8443"),
            ("x-amz-target", "TrentService.Encrypt"),
            (X_AMZ_CONTENT_SHA256, claimed),
        ]);
        sign(
            &Method::POST,
            "/",
            "",
            &mut headers,
            KMS_BODY,
            "AKID",
            KMS_SECRET,
            "us-east-1",
            "kms",
            NOW,
        );
        assert_eq!(
            parse_and_verify(&headers, KMS_BODY, KMS_SECRET),
            Err(AuthError::SignatureMismatch)
        );
    }
}

#[test]
fn clock_skew() {
    assert_eq!(
        parse_and_verify(&kms_request(NOW - 300), KMS_BODY, KMS_SECRET),
        Ok(())
    );
    assert_eq!(
        parse_and_verify(&kms_request(NOW + 300), KMS_BODY, KMS_SECRET),
        Ok(())
    );

    let err = parse(&kms_request(NOW - 301), "kms", NOW).expect_err("expired");
    assert_eq!(
        err,
        AuthError::Expired(
            "Signature expired: 20251231T235459Z is now earlier than 20251231T235500Z \
             (20260101T000000Z - 5 min.)"
                .to_owned()
        )
    );
    assert_eq!(err.aws_code(), "InvalidSignatureException");

    let err = parse(&kms_request(NOW + 301), "kms", NOW).expect_err("future");
    assert_eq!(
        err,
        AuthError::Expired(
            "Signature not yet current: 20260101T000501Z is still later than \
             20260101T000500Z (20260101T000000Z + 5 min.)"
                .to_owned()
        )
    );

    // Extreme clocks do not overflow.
    assert!(matches!(
        parse(&kms_request(NOW), "kms", i64::MIN),
        Err(AuthError::Expired(_))
    ));
    assert!(matches!(
        parse(&kms_request(NOW), "kms", i64::MAX),
        Err(AuthError::Expired(_))
    ));
}

#[test]
fn missing_authorization() {
    let mut headers = kms_request(NOW);
    headers.remove(AUTHORIZATION);
    let err = parse(&headers, "kms", NOW).expect_err("missing");
    assert_eq!(err, AuthError::Missing);
    assert_eq!(err.aws_code(), "MissingAuthenticationTokenException");
    assert_eq!(err.to_string(), "Missing Authentication Token");
    assert_eq!(
        AuthError::SignatureMismatch.to_string(),
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details."
    );
}

fn with_authorization(value: &str) -> HeaderMap {
    let mut headers = kms_request(NOW);
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(value).expect("test header"),
    );
    headers
}

fn expect_incomplete(headers: &HeaderMap, expected_service: &str, needle: &str) {
    match parse(headers, expected_service, NOW) {
        Err(err @ AuthError::Incomplete(_)) => {
            assert_eq!(err.aws_code(), "IncompleteSignatureException");
            let msg = err.to_string();
            assert!(msg.contains(needle), "{msg:?} does not contain {needle:?}");
        }
        other => panic!("expected Incomplete containing {needle:?}, got {other:?}"),
    }
}

#[test]
fn garbage_headers_are_incomplete() {
    let good = authorization_str(&kms_request(NOW)).to_owned();
    let sig = good.rsplit_once("Signature=").map(|(_, s)| s).unwrap_or("");
    let scope = "AKID/20260101/us-east-1/kms/aws4_request";
    let sh = "content-type;host;x-amz-date;x-amz-target";

    for (value, needle) in [
        ("", "Unsupported AWS 'algorithm'"),
        ("garbage", "Unsupported AWS 'algorithm'"),
        ("Bearer abc", "Unsupported AWS 'algorithm'"),
        ("AWS4-HMAC-SHA512 Credential=x", "Unsupported AWS 'algorithm'"),
        ("AWS4-HMAC-SHA256", "missing equal-sign"),
        ("AWS4-HMAC-SHA256 Credential", "missing equal-sign"),
        (
            "AWS4-HMAC-SHA256 Credential=a/b",
            "requires 'Signature' parameter",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=a/b",
            "requires 'SignedHeaders' parameter",
        ),
        (
            &format!("AWS4-HMAC-SHA256 SignedHeaders={sh}, Signature={sig}"),
            "requires 'Credential' parameter",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, Credential={scope}, SignedHeaders={sh}, Signature={sig}"),
            "more than once",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={sh}, Signature={sig}, Extra=1"),
            "Unexpected parameter",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={sh}, Signature=abc"),
            "64 hexadecimal",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={sh}, Signature={}", "zz".repeat(32)),
            "64 hexadecimal",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=content-type;x-amz-date, Signature={sig}"),
            "'Host' must be a 'SignedHeader'",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=Host;x-amz-date, Signature={sig}"),
            "lowercase header names",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host;;x-amz-date, Signature={sig}"),
            "lowercase header names",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host;host, Signature={sig}"),
            "more than once",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host;x-amz-date;x-missing, Signature={sig}"),
            "'x-missing' is listed in SignedHeaders but is not present",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host;x-amz-date, Signature={sig}"),
            "'x-amz-target' is present in the request but not listed",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms, SignedHeaders={sh}, Signature={sig}"),
            "exactly 5 slash-delimited elements",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential=/20260101/us-east-1/kms/aws4_request, SignedHeaders={sh}, Signature={sig}"),
            "access key id",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential=AKID/20260102/us-east-1/kms/aws4_request, SignedHeaders={sh}, Signature={sig}"),
            "'20260102' != '20260101', from '20260101T000000Z'",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential=AKID/20260101//kms/aws4_request, SignedHeaders={sh}, Signature={sig}"),
            "valid region",
        ),
        (
            &format!("AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/kms/aws5_request, SignedHeaders={sh}, Signature={sig}"),
            "valid terminator: 'aws4_request', not 'aws5_request'",
        ),
    ] {
        expect_incomplete(&with_authorization(value), "kms", needle);
    }
}

#[test]
fn wrong_service_is_incomplete() {
    expect_incomplete(
        &kms_request(NOW),
        "iam",
        "Credential should be scoped to correct service: 'iam'.",
    );
}

#[test]
fn date_header_problems_are_incomplete() {
    let mut headers = kms_request(NOW);
    headers.remove(X_AMZ_DATE);
    expect_incomplete(&headers, "kms", "'X-Amz-Date' header");

    let mut headers = kms_request(NOW);
    headers.insert(X_AMZ_DATE, HeaderValue::from_static("2026-01-01T00:00:00Z"));
    expect_incomplete(&headers, "kms", "ISO-8601 basic format");

    let mut headers = kms_request(NOW);
    headers.append(X_AMZ_DATE, HeaderValue::from_static("20260101T000000Z"));
    expect_incomplete(&headers, "kms", "more than one 'x-amz-date'");

    let mut headers = kms_request(NOW);
    headers.append(AUTHORIZATION, HeaderValue::from_static("AWS4-HMAC-SHA256"));
    expect_incomplete(&headers, "kms", "more than one 'authorization'");

    // Two targets, both signed: which one would run? Neither.
    let mut headers = kms_request(NOW);
    headers.append(
        X_AMZ_TARGET,
        HeaderValue::from_static("TrentService.ScheduleKeyDeletion"),
    );
    expect_incomplete(&headers, "kms", "more than one 'x-amz-target'");
}

#[test]
fn non_ascii_values_are_incomplete() {
    let mut headers = kms_request(NOW);
    headers.insert(
        X_AMZ_TARGET,
        HeaderValue::from_bytes(b"TrentService.\xffEncrypt").expect("obs-text"),
    );
    expect_incomplete(&headers, "kms", "'x-amz-target' contains characters");

    let mut headers = kms_request(NOW);
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_bytes("AWS4-HMAC-SHA256 Credential=é".as_bytes()).expect("obs-text"),
    );
    expect_incomplete(&headers, "kms", "'authorization' contains characters");

    // A signed header is checked by parse, before the signature is.
    let mut headers = kms_request(NOW);
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_bytes(b"application/x-amz-json-1.1\xff").expect("obs-text"),
    );
    expect_incomplete(
        &headers,
        "kms",
        "Header 'content-type' contains characters that are not visible ASCII.",
    );

    // Unsigned headers may contain anything.
    let mut headers = kms_request(NOW);
    headers.insert(
        "x-unsigned",
        HeaderValue::from_bytes(b"\xff\xfe").expect("obs-text"),
    );
    assert_eq!(parse_and_verify(&headers, KMS_BODY, KMS_SECRET), Ok(()));
}

#[test]
fn verify_rechecks_inputs() {
    let headers = kms_request(NOW);
    let auth = parse(&headers, "kms", NOW).expect("parse");

    let mut no_host = auth.clone();
    no_host.signed_headers.retain(|h| h != "host");
    assert!(matches!(
        verify(
            &no_host,
            &Method::POST,
            "/",
            "",
            &headers,
            KMS_BODY,
            KMS_SECRET
        ),
        Err(AuthError::Incomplete(_))
    ));

    let mut other_date = auth.clone();
    other_date.date = "20260102".to_owned();
    assert!(matches!(
        verify(
            &other_date,
            &Method::POST,
            "/",
            "",
            &headers,
            KMS_BODY,
            KMS_SECRET
        ),
        Err(AuthError::Incomplete(_))
    ));

    let mut stripped = headers.clone();
    stripped.remove(X_AMZ_TARGET);
    assert!(matches!(
        verify(
            &auth,
            &Method::POST,
            "/",
            "",
            &stripped,
            KMS_BODY,
            KMS_SECRET
        ),
        Err(AuthError::Incomplete(_))
    ));
}

#[test]
fn signer_rejects_bad_input() {
    let mut headers = header_map(&[("content-type", "application/x-amz-json-1.1")]);
    let before = headers.clone();
    let result = try_sign(
        &Method::POST,
        "/",
        "",
        &mut headers,
        b"",
        "AKID",
        KMS_SECRET,
        "us-east-1",
        "kms",
        NOW,
    );
    assert_eq!(result, Err(SignError::MissingHost));
    assert_eq!(headers, before);

    let mut headers = header_map(&[("host", "localhost")]);
    for (akid, region, service, what) in [
        ("", "us-east-1", "kms", "access key id"),
        ("AK/ID", "us-east-1", "kms", "access key id"),
        ("AKID", "us east", "kms", "region"),
        ("AKID", "us-east-1", "km\ns", "service"),
    ] {
        assert_eq!(
            try_sign(
                &Method::POST,
                "/",
                "",
                &mut headers,
                b"",
                akid,
                KMS_SECRET,
                region,
                service,
                NOW
            ),
            Err(SignError::InvalidScope(what))
        );
    }
    assert_eq!(
        try_sign(
            &Method::POST,
            "/",
            "",
            &mut headers,
            b"",
            "AKID",
            KMS_SECRET,
            "us-east-1",
            "kms",
            i64::MAX
        ),
        Err(SignError::TimeOutOfRange)
    );
    assert!(headers.get(AUTHORIZATION).is_none());
    sign(
        &Method::POST,
        "/",
        "",
        &mut headers,
        b"",
        "",
        KMS_SECRET,
        "us-east-1",
        "kms",
        NOW,
    );
    assert!(headers.get(AUTHORIZATION).is_none());
}

#[test]
fn re_signing_replaces_previous_signature() {
    let mut headers = kms_request(NOW - 1000);
    sign(
        &Method::POST,
        "/",
        "",
        &mut headers,
        KMS_BODY,
        "AKIAARCATEST",
        KMS_SECRET,
        "us-east-1",
        "kms",
        NOW,
    );
    assert_eq!(headers.get_all(AUTHORIZATION).iter().count(), 1);
    assert_eq!(parse_and_verify(&headers, KMS_BODY, KMS_SECRET), Ok(()));
}

// ---------------------------------------------------------------------------------------------
// Properties

fn arbitrary_value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        "[ -~]{0,200}".prop_map(String::into_bytes),
    ]
}

fn authorization_like() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        Just("AWS4-HMAC-SHA256".to_owned()),
        Just(" ".to_owned()),
        Just(",".to_owned()),
        Just("=".to_owned()),
        Just("/".to_owned()),
        Just(";".to_owned()),
        Just("Credential=".to_owned()),
        Just("SignedHeaders=".to_owned()),
        Just("Signature=".to_owned()),
        Just("AKID/20260101/us-east-1/kms/aws4_request".to_owned()),
        Just("host;x-amz-date;x-amz-target".to_owned()),
        "[0-9a-f]{64}",
        "[ -~]{0,10}",
    ];
    proptest::collection::vec(fragment, 0..12).prop_map(|parts| parts.concat())
}

fn date_like() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{8}T[0-9]{6}Z",
        "[0-9T:Z-]{0,20}",
        (0i64..=253_402_300_799).prop_map(format_amz_date),
    ]
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(
        auth in arbitrary_value(),
        date in arbitrary_value(),
        now in any::<i64>(),
    ) {
        let mut headers = header_map(&[("host", "localhost")]);
        if let Ok(v) = HeaderValue::from_bytes(&auth) {
            headers.insert(AUTHORIZATION, v);
        }
        if let Ok(v) = HeaderValue::from_bytes(&date) {
            headers.insert(X_AMZ_DATE, v);
        }
        let _ = parse(&headers, "kms", now);
    }

    #[test]
    fn parse_and_verify_never_panic_on_structured_input(
        auth in authorization_like(),
        date in date_like(),
        now in prop_oneof![Just(NOW), any::<i64>()],
        path in "[ -~]{0,30}",
        query in "[ -~]{0,30}",
    ) {
        let mut headers = header_map(&[
            ("host", "localhost"),
            ("x-amz-target", "TrentService.Encrypt"),
        ]);
        if let Ok(v) = HeaderValue::from_str(&auth) {
            headers.insert(AUTHORIZATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&date) {
            headers.insert(X_AMZ_DATE, v);
        }
        if let Ok(parsed) = parse(&headers, "kms", now) {
            let _ = verify(&parsed, &Method::POST, &path, &query, &headers, b"{}", KMS_SECRET);
        }
    }

    #[test]
    fn date_round_trip(secs in 0i64..=253_402_300_799) {
        let formatted = format_amz_date(secs);
        prop_assert_eq!(formatted.len(), 16);
        prop_assert_eq!(parse_amz_date(&formatted), Some(secs));
    }

    #[test]
    fn date_format_never_panics(secs in any::<i64>(), s in "[ -~]{0,20}") {
        let _ = format_amz_date(secs);
        if let Some(t) = parse_amz_date(&s) {
            prop_assert_eq!(format_amz_date(t), s);
        }
    }

    #[test]
    fn sign_verify_round_trip(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        target in "[ -~]{1,40}",
        extra in proptest::collection::vec("[ -~]{0,20}", 0..3),
        path in "/[ -~]{0,30}",
        query in "[ -~]{0,30}",
        secret in proptest::collection::vec(any::<u8>(), 0..64),
        now in 0i64..=253_402_300_799,
    ) {
        let mut headers = header_map(&[
            ("host", "kms.example:8443"),
            ("content-type", "application/x-amz-json-1.1"),
        ]);
        if let Ok(v) = HeaderValue::from_str(&target) {
            headers.insert(X_AMZ_TARGET, v);
        }
        for value in &extra {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.append("x-amz-extra", v);
            }
        }
        let result = try_sign(
            &Method::POST, &path, &query, &mut headers, &body,
            "AKIDPROP", &secret, "us-east-1", "kms", now,
        );
        prop_assert_eq!(result, Ok(()));
        let auth = parse(&headers, "kms", now);
        prop_assert!(auth.is_ok(), "{:?}", auth);
        if let Ok(auth) = auth {
            prop_assert_eq!(
                verify(&auth, &Method::POST, &path, &query, &headers, &body, &secret),
                Ok(())
            );
            let mut other = body.clone();
            other.push(0);
            prop_assert_eq!(
                verify(&auth, &Method::POST, &path, &query, &headers, &other, &secret),
                Err(AuthError::SignatureMismatch)
            );
        }
    }
}
