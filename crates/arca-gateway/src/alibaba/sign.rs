//! Alibaba Cloud request signatures, pure: no clock, no I/O, no state.
//!
//! Two schemes are read, the two the official SDKs (`alibabacloud-tea-openapi`)
//! send:
//!
//! - **V3** (the SDK's default): `Authorization: ACS3-HMAC-SHA256
//!   Credential=<ak>,SignedHeaders=<h1;h2;...>,Signature=<hex>` over a
//!   canonical request (method, path, sorted RFC 3986 query, the signed
//!   headers, the body's SHA-256), with the time in `x-acs-date`, the nonce in
//!   `x-acs-signature-nonce` and the operation in `x-acs-action`.
//! - **RPC** (`signature_algorithm = "v2"` in the SDK's config): parameters
//!   `SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`, `SignatureNonce`,
//!   `Timestamp`, `AccessKeyId`, `Signature` next to `Action` and `Version`;
//!   the signature is HMAC-SHA1 with `<secret>&` over
//!   `METHOD&%2F&<encoded sorted parameters>`.
//!
//! [`parse`] reads a request into a [`Signed`]; the caller checks its time
//! ([`check_time`]) and then [`Signed::verify`] with the access key's secret.

use std::collections::BTreeMap;

use aws_lc_rs::{digest, hmac};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use http::HeaderMap;
use subtle::ConstantTimeEq;

/// The API version this front-end serves.
pub const VERSION: &str = "2016-01-20";
/// How far a request's time may be from the server's, either way (seconds).
pub const MAX_SKEW_SECS: i64 = 15 * 60;
/// The longest nonce accepted.
pub const MAX_NONCE_LEN: usize = 128;
/// The most parameters a request may carry.
const MAX_PARAMS: usize = 64;

const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Parameters every request may carry that are not the operation's input.
const COMMON: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
    "Signature",
    "SecurityToken",
    "RegionId",
];

/// Why a request's signature could not be accepted, in Alibaba's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The signature or one of its parts is missing or malformed.
    #[error("{0}")]
    Incomplete(String),
    #[error("The request signature does not conform to Alibaba Cloud standards: the signature does not match.")]
    Mismatch,
    #[error("Specified time stamp or date value is expired: {0}")]
    Expired(String),
    #[error("The specified timestamp or date value is malformed: {0}")]
    BadTimestamp(String),
    #[error("Specified parameter Version is not valid: {0}")]
    BadVersion(String),
    #[error("{0}")]
    Invalid(String),
}

impl SignError {
    /// Alibaba's error code and HTTP status.
    pub fn code(&self) -> (&'static str, u16) {
        match self {
            SignError::Incomplete(_) => ("IncompleteSignature", 400),
            SignError::Mismatch => ("SignatureDoesNotMatch", 400),
            SignError::Expired(_) => ("InvalidTimeStamp.Expired", 400),
            SignError::BadTimestamp(_) => ("InvalidTimeStamp.Format", 400),
            SignError::BadVersion(_) => ("InvalidVersion", 400),
            SignError::Invalid(_) => ("InvalidParameter", 400),
        }
    }
}

/// Which scheme signed the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    V3,
    Rpc,
}

/// A request's signature, read but not yet verified, with the operation and
/// its parameters.
#[derive(Debug)]
pub struct Signed {
    pub scheme: Scheme,
    pub access_key_id: String,
    pub nonce: String,
    /// The request's time, unix seconds.
    pub time: i64,
    pub action: String,
    /// The operation's parameters (the common ones removed).
    pub params: BTreeMap<String, String>,
    string_to_sign: String,
    signature: Vec<u8>,
}

/// What [`parse`] reads of an HTTP request.
pub struct Request<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// Whether a request is meant for this front-end (and not AWS's): it names
/// no `X-Amz-Target` and carries an Alibaba signature or action.
pub fn is_alibaba(headers: &HeaderMap, query: Option<&str>) -> bool {
    if headers.contains_key("x-amz-target") {
        return false;
    }
    let acs_auth = headers
        .get(http::header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"ACS3-"));
    let form = headers.get(http::header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    });
    acs_auth || headers.contains_key("x-acs-action") || form || query.is_some_and(|q| !q.is_empty())
}

/// RFC 3986 percent-encoding of everything but the unreserved characters,
/// with upper-case hex (what both schemes sign).
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes one `application/x-www-form-urlencoded` component (`+` is a space).
fn decode(s: &str) -> Result<String, SignError> {
    let bad = || SignError::Invalid("a parameter is not validly percent-encoded".into());
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| SignError::Invalid("a parameter is not UTF-8".into()))
}

/// Reads `k=v&k=v` into `into`; a name given twice is refused.
fn read_form(s: &str, into: &mut BTreeMap<String, String>) -> Result<(), SignError> {
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = decode(k)?;
        if k.is_empty() {
            return Err(SignError::Invalid("a parameter has no name".into()));
        }
        if into.len() >= MAX_PARAMS {
            return Err(SignError::Invalid(format!(
                "a request carries at most {MAX_PARAMS} parameters"
            )));
        }
        if into.insert(k.clone(), decode(v)?).is_some() {
            return Err(SignError::Invalid(format!(
                "the parameter '{k}' is given more than once"
            )));
        }
    }
    Ok(())
}

fn is_form(headers: &HeaderMap) -> bool {
    headers.get(http::header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes()
            .starts_with(b"application/x-www-form-urlencoded")
    })
}

fn body_params(req: &Request<'_>, into: &mut BTreeMap<String, String>) -> Result<(), SignError> {
    if req.body.is_empty() {
        return Ok(());
    }
    if !is_form(req.headers) {
        return Err(SignError::Invalid(
            "a request body must be application/x-www-form-urlencoded".into(),
        ));
    }
    let text = std::str::from_utf8(req.body)
        .map_err(|_| SignError::Invalid("the request body is not UTF-8".into()))?;
    read_form(text, into)
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (UTC) into unix seconds.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let compact: String = s.chars().filter(|c| *c != '-' && *c != ':').collect();
    arca_sigv4::parse_amz_date(&compact)
}

/// Refuses a request whose time is more than [`MAX_SKEW_SECS`] from `now`.
pub fn check_time(time: i64, now: i64) -> Result<(), SignError> {
    if (time - now).abs() > MAX_SKEW_SECS {
        return Err(SignError::Expired(format!(
            "the request time {} is more than {} minutes from the server time {}",
            arca_sigv4::format_rfc3339(time),
            MAX_SKEW_SECS / 60,
            arca_sigv4::format_rfc3339(now)
        )));
    }
    Ok(())
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, SignError> {
    let mut all = headers.get_all(name).iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        return Err(SignError::Incomplete(format!(
            "the header {name} is given more than once"
        )));
    }
    v.to_str()
        .map(|s| Some(s.trim()))
        .map_err(|_| SignError::Incomplete(format!("the header {name} is not ASCII")))
}

/// A header that must be present, once.
fn present<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, SignError> {
    header(headers, name)?
        .ok_or_else(|| SignError::Incomplete(format!("the header {name} is missing")))
}

fn nonce(n: &str) -> Result<String, SignError> {
    if n.is_empty() || n.len() > MAX_NONCE_LEN {
        return Err(SignError::Incomplete(format!(
            "the signature nonce must have 1 to {MAX_NONCE_LEN} characters"
        )));
    }
    Ok(n.to_owned())
}

fn timestamp(t: &str) -> Result<i64, SignError> {
    parse_timestamp(t).ok_or_else(|| {
        SignError::BadTimestamp(format!("'{t}' is not of the form YYYY-MM-DDThh:mm:ssZ"))
    })
}

fn version(v: Option<&str>) -> Result<(), SignError> {
    match v {
        Some(VERSION) => Ok(()),
        Some(other) => Err(SignError::BadVersion(format!(
            "'{other}'; this endpoint serves {VERSION}"
        ))),
        None => Err(SignError::BadVersion(format!(
            "the version is missing; this endpoint serves {VERSION}"
        ))),
    }
}

fn strip_common(mut all: BTreeMap<String, String>) -> BTreeMap<String, String> {
    all.retain(|k, _| !COMMON.contains(&k.as_str()));
    all
}

/// Reads a request's signature (either scheme), operation and parameters.
pub fn parse(req: &Request<'_>) -> Result<Signed, SignError> {
    match header(req.headers, "authorization")? {
        Some(a) if a.starts_with("ACS3-") => parse_v3(req, a),
        Some(_) => Err(SignError::Incomplete(
            "the Authorization header is not an ACS3 signature".into(),
        )),
        None => parse_rpc(req),
    }
}

fn parse_v3(req: &Request<'_>, auth: &str) -> Result<Signed, SignError> {
    let rest = auth
        .strip_prefix(V3_ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| {
            SignError::Incomplete(format!(
                "the signature algorithm is not supported; use {V3_ALGORITHM}"
            ))
        })?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or_else(|| SignError::Incomplete("the Authorization header is malformed".into()))?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => {
                return Err(SignError::Incomplete(format!(
                    "the Authorization header has an unknown part '{k}'"
                )))
            }
        };
        if slot.replace(v).is_some() {
            return Err(SignError::Incomplete(format!(
                "the Authorization header gives '{k}' twice"
            )));
        }
    }
    let missing =
        |what: &str| SignError::Incomplete(format!("the Authorization header has no {what}"));
    let credential = credential
        .filter(|c| !c.is_empty())
        .ok_or_else(|| missing("Credential"))?;
    let signed = signed
        .filter(|s| !s.is_empty())
        .ok_or_else(|| missing("SignedHeaders"))?;
    let signature = hex::decode(signature.ok_or_else(|| missing("Signature"))?)
        .ok()
        .filter(|s| s.len() == 32)
        .ok_or_else(|| SignError::Incomplete("the Signature is not 64 hex digits".into()))?;
    let names: Vec<&str> = signed.split(';').collect();
    for required in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        if !names.contains(&required) {
            return Err(SignError::Incomplete(format!(
                "the header {required} must be signed"
            )));
        }
    }
    if req.headers.contains_key("x-acs-security-token") {
        return Err(SignError::Incomplete(
            "security tokens (STS) are not supported; sign with an access key".into(),
        ));
    }
    let mut canonical_headers = String::new();
    for name in &names {
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(SignError::Incomplete(
                "SignedHeaders must name lower-case headers".into(),
            ));
        }
        let mut values = Vec::new();
        for v in req.headers.get_all(*name) {
            let v = v
                .to_str()
                .map_err(|_| SignError::Incomplete(format!("the header {name} is not ASCII")))?;
            values.push(v.trim());
        }
        if values.is_empty() {
            return Err(SignError::Incomplete(format!(
                "the signed header {name} is missing"
            )));
        }
        values.sort_unstable();
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&values.join(","));
        canonical_headers.push('\n');
    }
    let h = req.headers;
    let action = present(h, "x-acs-action")?.to_owned();
    version(Some(present(h, "x-acs-version")?))?;
    let time = timestamp(present(h, "x-acs-date")?)?;
    let nonce = nonce(present(h, "x-acs-signature-nonce")?)?;
    let payload = hex::encode(digest::digest(&digest::SHA256, req.body));
    if !present(h, "x-acs-content-sha256")?.eq_ignore_ascii_case(&payload) {
        return Err(SignError::Mismatch);
    }
    let mut query = BTreeMap::new();
    read_form(req.query, &mut query)?;
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let path = if req.path.is_empty() { "/" } else { req.path };
    let canonical_request = format!(
        "{}\n{path}\n{canonical_query}\n{canonical_headers}\n{signed}\n{payload}",
        req.method
    );
    let string_to_sign = format!(
        "{V3_ALGORITHM}\n{}",
        hex::encode(digest::digest(
            &digest::SHA256,
            canonical_request.as_bytes()
        ))
    );
    let mut params = query;
    body_params(req, &mut params)?;
    Ok(Signed {
        scheme: Scheme::V3,
        access_key_id: credential.to_owned(),
        nonce,
        time,
        action,
        params: strip_common(params),
        string_to_sign,
        signature,
    })
}

fn parse_rpc(req: &Request<'_>) -> Result<Signed, SignError> {
    let mut all = BTreeMap::new();
    read_form(req.query, &mut all)?;
    body_params(req, &mut all)?;
    let take = |all: &BTreeMap<String, String>, k: &str| -> Result<String, SignError> {
        all.get(k)
            .cloned()
            .ok_or_else(|| SignError::Incomplete(format!("the parameter {k} is missing")))
    };
    let signature = take(&all, "Signature")?;
    let signature = B64
        .decode(signature.as_bytes())
        .ok()
        .filter(|s| s.len() == 20)
        .ok_or_else(|| SignError::Incomplete("the Signature is not a base64 HMAC-SHA1".into()))?;
    if take(&all, "SignatureMethod")? != "HMAC-SHA1" {
        return Err(SignError::Incomplete(
            "SignatureMethod must be HMAC-SHA1".into(),
        ));
    }
    if take(&all, "SignatureVersion")? != "1.0" {
        return Err(SignError::Incomplete("SignatureVersion must be 1.0".into()));
    }
    if all.contains_key("SignatureType") || all.contains_key("SecurityToken") {
        return Err(SignError::Incomplete(
            "bearer and security tokens are not supported; sign with an access key".into(),
        ));
    }
    if let Some(f) = all.get("Format") {
        if !f.eq_ignore_ascii_case("json") {
            return Err(SignError::Invalid(
                "Format must be JSON: this endpoint does not answer in XML".into(),
            ));
        }
    }
    let access_key_id = take(&all, "AccessKeyId")?;
    let nonce = nonce(&take(&all, "SignatureNonce")?)?;
    let time = timestamp(&take(&all, "Timestamp")?)?;
    version(all.get("Version").map(String::as_str))?;
    let action = take(&all, "Action")?;
    let canonical = all
        .iter()
        .filter(|(k, _)| *k != "Signature")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let string_to_sign = format!("{}&%2F&{}", req.method, encode(&canonical));
    Ok(Signed {
        scheme: Scheme::Rpc,
        access_key_id,
        nonce,
        time,
        action,
        params: strip_common(all),
        string_to_sign,
        signature,
    })
}

impl Signed {
    /// Checks the signature against the access key's secret, in constant time.
    pub fn verify(&self, secret: &[u8]) -> Result<(), SignError> {
        let expected = match self.scheme {
            Scheme::V3 => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
                hmac::sign(&key, self.string_to_sign.as_bytes())
            }
            Scheme::Rpc => {
                let mut k = zeroize::Zeroizing::new(Vec::with_capacity(secret.len() + 1));
                k.extend_from_slice(secret);
                k.push(b'&');
                let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &k);
                hmac::sign(&key, self.string_to_sign.as_bytes())
            }
        };
        if bool::from(expected.as_ref().ct_eq(&self.signature)) {
            Ok(())
        } else {
            Err(SignError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    // Two requests the official Python SDK (alibabacloud-tea-openapi 0.4.6,
    // alibabacloud-kms20160120 3.3.1) sent for
    // `encrypt(EncryptRequest(key_id='alias/a b', plaintext='aGVsbG8+/w==',
    // encryption_context={'k': 'v w'}))` with access key `AKIDEXAMPLE` and
    // secret `secret+/ x`, recorded as they reached the server: once with
    // the default (V3) signature, once with `signature_algorithm='v2'` (RPC).
    const SECRET: &[u8] = b"secret+/ x";
    const V3_QUERY: &str =
        "EncryptionContext=%7B%22k%22%3A%22v+w%22%7D&KeyId=alias%2Fa+b&Plaintext=aGVsbG8%2B%2Fw%3D%3D";
    const V3_AUTH: &str = "ACS3-HMAC-SHA256 Credential=AKIDEXAMPLE,SignedHeaders=accept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version,Signature=d9150714e6729fd5b4898f6992e60d62b8e74b1de09508b48c4ce68f9edc8690";
    const RPC_QUERY: &str = "Action=Encrypt&Format=json&Version=2016-01-20&Timestamp=2026-12-03T17%3A32%3A49Z&SignatureNonce=04a92213666e452d4a6fa47c77c05371&EncryptionContext=%7B%22k%22%3A%22v+w%22%7D&KeyId=alias%2Fa+b&Plaintext=aGVsbG8%2B%2Fw%3D%3D&SignatureMethod=HMAC-SHA1&SignatureVersion=1.0&AccessKeyId=AKIDEXAMPLE&Signature=8WP0ZkHBf%2F5b6pdYC2d7GAOiCxM%3D";
    const TIME: &str = "2026-12-03T17:32:49Z";

    fn v3_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("accept-encoding", "identity"),
            ("host", "127.0.0.1:18999"),
            ("x-acs-version", "2016-01-20"),
            ("x-acs-action", "Encrypt"),
            (
                "user-agent",
                "AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2",
            ),
            ("x-acs-date", TIME),
            ("x-acs-signature-nonce", "975588471ca79d6ba152ededa5b0fbe3"),
            ("accept", "application/json"),
            (
                "x-acs-content-sha256",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            ("x-acs-credentials-provider", "static_ak"),
            ("authorization", V3_AUTH),
            ("content-length", "0"),
        ] {
            h.insert(k, HeaderValue::from_static(v));
        }
        h
    }

    fn rpc_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static("127.0.0.1:18999"));
        h.insert("x-acs-action", HeaderValue::from_static("Encrypt"));
        h
    }

    fn req<'a>(query: &'a str, headers: &'a HeaderMap) -> Request<'a> {
        Request {
            method: "POST",
            path: "/",
            query,
            headers,
            body: b"",
        }
    }

    fn expect_params(s: &Signed) {
        assert_eq!(s.access_key_id, "AKIDEXAMPLE");
        assert_eq!(s.action, "Encrypt");
        assert_eq!(s.time, parse_timestamp(TIME).unwrap());
        let p: Vec<(&str, &str)> = s
            .params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            p,
            [
                ("EncryptionContext", "{\"k\":\"v w\"}"),
                ("KeyId", "alias/a b"),
                ("Plaintext", "aGVsbG8+/w=="),
            ]
        );
    }

    #[test]
    fn v3_signature_of_the_sdk_verifies() {
        let h = v3_headers();
        let s = parse(&req(V3_QUERY, &h)).unwrap();
        assert_eq!(s.scheme, Scheme::V3);
        assert_eq!(s.nonce, "975588471ca79d6ba152ededa5b0fbe3");
        expect_params(&s);
        s.verify(SECRET).unwrap();
        assert_eq!(s.verify(b"secret+/ y"), Err(SignError::Mismatch));
    }

    #[test]
    fn rpc_signature_of_the_sdk_verifies() {
        let h = rpc_headers();
        let s = parse(&req(RPC_QUERY, &h)).unwrap();
        assert_eq!(s.scheme, Scheme::Rpc);
        assert_eq!(s.nonce, "04a92213666e452d4a6fa47c77c05371");
        expect_params(&s);
        s.verify(SECRET).unwrap();
        assert_eq!(s.verify(b"other"), Err(SignError::Mismatch));
    }

    #[test]
    fn any_change_to_a_signed_part_breaks_the_signature() {
        // A parameter's value, another signed header, the method.
        let h = v3_headers();
        let q = V3_QUERY.replace("a+b", "a+c");
        assert_eq!(
            parse(&req(&q, &h)).unwrap().verify(SECRET),
            Err(SignError::Mismatch)
        );
        let mut h2 = v3_headers();
        h2.insert(
            "x-acs-date",
            HeaderValue::from_static("2026-12-03T17:32:50Z"),
        );
        assert_eq!(
            parse(&req(V3_QUERY, &h2)).unwrap().verify(SECRET),
            Err(SignError::Mismatch)
        );
        let mut r = req(V3_QUERY, &h);
        r.method = "GET";
        assert_eq!(parse(&r).unwrap().verify(SECRET), Err(SignError::Mismatch));
        let rh = rpc_headers();
        let q = RPC_QUERY.replace("KeyId=alias%2Fa+b", "KeyId=alias%2Fa+c");
        assert_eq!(
            parse(&req(&q, &rh)).unwrap().verify(SECRET),
            Err(SignError::Mismatch)
        );
        // A body the payload hash does not cover.
        let mut r = req(V3_QUERY, &h);
        r.body = b"x";
        assert_eq!(parse(&r).unwrap_err(), SignError::Mismatch);
    }

    #[test]
    fn incomplete_signatures_are_refused_with_incomplete_signature() {
        let cases: Vec<(&str, HeaderMap)> = vec![
            // RPC without a signature, or with an unsupported method.
            ("Action=Encrypt", rpc_headers()),
            (
                "Action=Encrypt&Signature=8WP0ZkHBf%2F5b6pdYC2d7GAOiCxM%3D&SignatureMethod=HMAC-SHA256",
                rpc_headers(),
            ),
        ];
        for (q, h) in cases {
            let e = parse(&req(q, &h)).unwrap_err();
            assert_eq!(e.code().0, "IncompleteSignature", "{q}: {e}");
        }
        // V3 with a header left out of SignedHeaders, and another algorithm.
        let mut h = v3_headers();
        h.insert(
            "authorization",
            HeaderValue::from_str(&V3_AUTH.replace(";x-acs-signature-nonce", "")).unwrap(),
        );
        assert_eq!(
            parse(&req(V3_QUERY, &h)).unwrap_err().code().0,
            "IncompleteSignature"
        );
        h.insert(
            "authorization",
            HeaderValue::from_str(&V3_AUTH.replace("ACS3-HMAC-SHA256", "ACS3-HMAC-SM3")).unwrap(),
        );
        assert_eq!(
            parse(&req(V3_QUERY, &h)).unwrap_err().code().0,
            "IncompleteSignature"
        );
    }

    #[test]
    fn time_window_and_formats() {
        let t = parse_timestamp("2026-12-03T17:32:49Z").unwrap();
        assert_eq!(arca_sigv4::format_rfc3339(t), "2026-12-03T17:32:49Z");
        check_time(t, t + MAX_SKEW_SECS).unwrap();
        check_time(t, t - MAX_SKEW_SECS).unwrap();
        assert!(matches!(
            check_time(t, t + MAX_SKEW_SECS + 1),
            Err(SignError::Expired(_))
        ));
        assert!(matches!(
            check_time(t, t - MAX_SKEW_SECS - 1),
            Err(SignError::Expired(_))
        ));
        for bad in [
            "",
            "2026-12-03 17:32:49Z",
            "2026-12-03T17:32:49",
            "2026-13-03T17:32:49Z",
            "2026-02-30T17:32:49Z",
            "2026-12-03T24:00:00Z",
            "20261203T173249Z",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn encoding_matches_rfc3986() {
        assert_eq!(encode("a b+/=~-_.*"), "a%20b%2B%2F%3D~-_.%2A");
        assert_eq!(encode("é"), "%C3%A9");
        assert_eq!(decode("a+b%2B%2f").unwrap(), "a b+/");
        assert!(decode("%4").is_err());
        assert!(decode("%zz").is_err());
        assert!(decode("%ff").is_err());
        let mut m = BTreeMap::new();
        assert!(read_form("a=1&a=2", &mut m).is_err());
    }

    #[test]
    fn requests_are_told_apart_from_aws_ones() {
        let h = v3_headers();
        assert!(is_alibaba(&h, Some(V3_QUERY)));
        assert!(is_alibaba(&rpc_headers(), Some(RPC_QUERY)));
        let mut aws = HeaderMap::new();
        aws.insert(
            "x-amz-target",
            HeaderValue::from_static("TrentService.Encrypt"),
        );
        aws.insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        assert!(!is_alibaba(&aws, None));
        assert!(!is_alibaba(&HeaderMap::new(), None));
    }
}
