//! AWS Signature Version 4 (`AWS4-HMAC-SHA256`) with the signature in the `Authorization`
//! header.
//!
//! Server side, verification is two steps: [`parse`] checks the header's form, the
//! `X-Amz-Date`, the clock skew and the credential scope without any secret; the caller then
//! looks up the secret for [`Authorization::access_key_id`] and calls [`verify`].
//! Client side, [`sign`] (or [`try_sign`]) adds `x-amz-date` and `authorization` headers.
//!
//! The payload is always hashed from the actual body. If `x-amz-content-sha256` is present it
//! must equal that hash, so `UNSIGNED-PAYLOAD` is rejected as a signature mismatch.
//! Presigned (query-string) authentication is not supported.

mod canonical;
mod date;
#[cfg(test)]
mod tests;

use http::header::{AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub use date::{format_amz_date, format_rfc3339, parse_amz_date};

/// The only supported signing algorithm.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// Maximum allowed difference between `X-Amz-Date` and the server clock, in seconds.
pub const MAX_CLOCK_SKEW_SECS: i64 = 300;
/// Last element of the credential scope.
pub const TERMINATOR: &str = "aws4_request";

const X_AMZ_DATE: &str = "x-amz-date";
const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
const X_AMZ_TARGET: &str = "x-amz-target";

const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
service documentation for details.";

/// Headers [`sign`] never signs: computed by signing, or commonly changed in transit.
const UNSIGNED_HEADERS: &[&str] = &[
    "authorization",
    "connection",
    "expect",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "x-amzn-trace-id",
];

/// Parsed `Authorization` header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    /// Access key id from the credential scope.
    pub access_key_id: String,
    /// Scope date, `YYYYMMDD`; equals the date part of `X-Amz-Date`.
    pub date: String,
    /// Scope region, as sent by the client (the caller checks it against its own).
    pub region: String,
    /// Scope service; equals the `expected_service` given to [`parse`].
    pub service: String,
    /// Lowercase header names from `SignedHeaders`, in the order given; always contains `host`.
    pub signed_headers: Vec<String>,
    /// Signature decoded from hex.
    pub signature: [u8; 32],
}

impl Authorization {
    /// `date/region/service/aws4_request`.
    pub fn credential_scope(&self) -> String {
        [
            self.date.as_str(),
            "/",
            &self.region,
            "/",
            &self.service,
            "/",
            TERMINATOR,
        ]
        .concat()
    }
}

/// Authentication failure, with the AWS error code from [`AuthError::aws_code`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("Missing Authentication Token")]
    Missing,
    /// Malformed `Authorization` header, missing or malformed `X-Amz-Date`, bad credential
    /// scope, or a problem with the signed headers. The message says what is wrong.
    #[error("{0}")]
    Incomplete(String),
    /// The recomputed signature (or the payload hash) does not match.
    #[error("{}", SIGNATURE_MISMATCH)]
    SignatureMismatch,
    /// `X-Amz-Date` is more than [`MAX_CLOCK_SKEW_SECS`] away from the server clock.
    #[error("{0}")]
    Expired(String),
}

impl AuthError {
    /// AWS error code for the `__type` field of the error response.
    pub fn aws_code(&self) -> &'static str {
        match self {
            AuthError::Missing => "MissingAuthenticationTokenException",
            AuthError::Incomplete(_) => "IncompleteSignatureException",
            AuthError::SignatureMismatch | AuthError::Expired(_) => "InvalidSignatureException",
        }
    }
}

/// Why [`try_sign`] refused to sign.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// `headers` has no `host` header.
    #[error("request has no Host header")]
    MissingHost,
    /// Access key id, region or service is empty or contains characters that cannot appear
    /// in a credential scope (`/`, `,`, `;`, `=`, whitespace, non-visible ASCII).
    #[error("invalid {0} for the credential scope")]
    InvalidScope(&'static str),
    /// The time does not format as a year in 0000..=9999.
    #[error("time out of range for X-Amz-Date")]
    TimeOutOfRange,
}

fn incomplete(msg: impl Into<String>) -> AuthError {
    AuthError::Incomplete(msg.into())
}

/// Input echoed in error messages, cut to a bounded length.
fn echo(s: &str) -> String {
    const MAX: usize = 128;
    if s.len() <= MAX {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push_str("...");
        out
    }
}

/// The single value of header `name` as visible ASCII, `None` if absent.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(incomplete(format!(
            "Request contains more than one '{name}' header."
        )));
    }
    value.to_str().map(Some).map_err(|_| {
        incomplete(format!(
            "Header '{name}' contains characters that are not visible ASCII."
        ))
    })
}

fn required_amz_date(headers: &HeaderMap) -> Result<(&str, i64), AuthError> {
    let value = single_header(headers, X_AMZ_DATE)?.ok_or_else(|| {
        incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
    })?;
    let time = parse_amz_date(value).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date must be in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z', got '{}'.",
            echo(value)
        ))
    })?;
    Ok((value, time))
}

/// The three parameters of an `AWS4-HMAC-SHA256` `Authorization` header.
struct RawAuthorization<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn split_authorization(raw: &str) -> Result<RawAuthorization<'_>, AuthError> {
    let trimmed = raw.trim_matches(is_ows);
    let (algorithm, params) = trimmed.split_once(is_ows).unwrap_or((trimmed, ""));
    if algorithm != ALGORITHM {
        return Err(incomplete(format!(
            "Unsupported AWS 'algorithm': '{}'. Only '{ALGORITHM}' is supported.",
            echo(algorithm)
        )));
    }
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in params.split(',') {
        let part = part.trim_matches(is_ows);
        let Some((key, value)) = part.split_once('=') else {
            return Err(incomplete(format!(
                "'{}' not a valid key=value pair (missing equal-sign) in Authorization header: '{}'",
                echo(part),
                echo(raw)
            )));
        };
        let slot = match key.trim_matches(is_ows) {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(incomplete(format!(
                    "Unexpected parameter '{}' in Authorization header.",
                    echo(other)
                )))
            }
        };
        if slot.replace(value.trim_matches(is_ows)).is_some() {
            return Err(incomplete(format!(
                "Authorization header contains parameter '{}' more than once.",
                key.trim_matches(is_ows)
            )));
        }
    }
    match (credential, signed_headers, signature) {
        (Some(credential), Some(signed_headers), Some(signature)) => Ok(RawAuthorization {
            credential,
            signed_headers,
            signature,
        }),
        (credential, signed_headers, signature) => {
            let mut msg = String::new();
            for (present, name) in [
                (credential.is_some(), "Credential"),
                (signature.is_some(), "Signature"),
                (signed_headers.is_some(), "SignedHeaders"),
            ] {
                if !present {
                    msg.push_str(&format!(
                        "Authorization header requires '{name}' parameter. "
                    ));
                }
            }
            msg.push_str(&format!("Authorization={}", echo(raw)));
            Err(incomplete(msg))
        }
    }
}

fn decode_signature(hex_sig: &str) -> Result<[u8; 32], AuthError> {
    let mut out = [0u8; 32];
    if hex_sig.len() != 64 || hex::decode_to_slice(hex_sig, &mut out).is_err() {
        return Err(incomplete(format!(
            "Signature must be 64 hexadecimal characters, got '{}'.",
            echo(hex_sig)
        )));
    }
    Ok(out)
}

fn is_lower_token_char(b: u8) -> bool {
    b.is_ascii_lowercase()
        || b.is_ascii_digit()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Checks a `SignedHeaders` list: lowercase header names, no duplicates, includes `host`.
fn check_signed_header_names(names: &[String]) -> Result<(), AuthError> {
    for (i, name) in names.iter().enumerate() {
        if name.is_empty() || !name.bytes().all(is_lower_token_char) {
            return Err(incomplete(format!(
                "SignedHeaders must be a ';'-separated list of lowercase header names, \
                 got '{}'.",
                echo(&names.join(";"))
            )));
        }
        if names.iter().take(i).any(|earlier| earlier == name) {
            return Err(incomplete(format!(
                "SignedHeaders lists '{}' more than once.",
                echo(name)
            )));
        }
    }
    if !names.iter().any(|name| name == HOST.as_str()) {
        return Err(incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }
    Ok(())
}

/// Checks the credential `keyid/date/region/service/aws4_request`; returns its parts.
fn parse_credential(
    credential: &str,
    expected_service: &str,
    amz_date: &str,
) -> Result<(String, String, String, String), AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{}'",
            echo(credential)
        )));
    };
    if access_key_id.is_empty() {
        return Err(incomplete("Credential must contain an access key id."));
    }
    let http_date = amz_date.get(..8).unwrap_or_default();
    if *date != http_date {
        return Err(incomplete(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{http_date}', from '{amz_date}'.",
            echo(date)
        )));
    }
    if region.is_empty() {
        return Err(incomplete(
            "Credential should be scoped to a valid region, not ''.",
        ));
    }
    if *service != expected_service {
        return Err(incomplete(format!(
            "Credential should be scoped to correct service: '{expected_service}'."
        )));
    }
    if *terminator != TERMINATOR {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            echo(terminator)
        )));
    }
    Ok((
        (*access_key_id).to_owned(),
        (*date).to_owned(),
        (*region).to_owned(),
        (*service).to_owned(),
    ))
}

fn check_skew(amz_date: &str, request_time: i64, now: i64) -> Result<(), AuthError> {
    if request_time.abs_diff(now) <= MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Ok(());
    }
    let now_str = format_amz_date(now);
    Err(AuthError::Expired(if request_time < now {
        format!(
            "Signature expired: {amz_date} is now earlier than {} ({now_str} - 5 min.)",
            format_amz_date(now.saturating_sub(MAX_CLOCK_SKEW_SECS))
        )
    } else {
        format!(
            "Signature not yet current: {amz_date} is still later than {} ({now_str} + 5 min.)",
            format_amz_date(now.saturating_add(MAX_CLOCK_SKEW_SECS))
        )
    }))
}

/// Parses and checks the `Authorization` header without the secret.
///
/// Checks, in order: the header exists ([`AuthError::Missing`]); its form, the
/// `X-Amz-Date` header, the credential scope (service equals `expected_service`, date equals
/// the date part of `X-Amz-Date`, terminator `aws4_request`), and the signed headers (`host`
/// included, every listed header present with visible-ASCII values, `x-amz-target` signed if
/// present and not repeated; `authorization` and `x-amz-date` not repeated either)
/// ([`AuthError::Incomplete`]); then the clock skew against `now_unix_secs`
/// ([`AuthError::Expired`]).
pub fn parse(
    headers: &HeaderMap,
    expected_service: &str,
    now_unix_secs: i64,
) -> Result<Authorization, AuthError> {
    let raw = single_header(headers, AUTHORIZATION.as_str())?.ok_or(AuthError::Missing)?;
    let parts = split_authorization(raw)?;
    let signed_headers: Vec<String> = parts.signed_headers.split(';').map(str::to_owned).collect();
    check_signed_header_names(&signed_headers)?;
    let signature = decode_signature(parts.signature)?;
    let (amz_date, request_time) = required_amz_date(headers)?;
    let (access_key_id, date, region, service) =
        parse_credential(parts.credential, expected_service, amz_date)?;
    // Every signed header present and readable, checked before anything
    // else is (its canonical value is built once, for the signature).
    for name in &signed_headers {
        canonical::header_values(headers, name, |_, _| {})?;
    }
    // One operation per request: a repeated target could be read one way
    // when checked and another when run.
    single_header(headers, X_AMZ_TARGET)?;
    if headers.contains_key(X_AMZ_TARGET) && !signed_headers.iter().any(|n| n == X_AMZ_TARGET) {
        return Err(incomplete(
            "Header 'x-amz-target' is present in the request but not listed in SignedHeaders.",
        ));
    }
    check_skew(amz_date, request_time, now_unix_secs)?;
    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

/// Recomputes the signature with `secret_access_key` and compares it in constant time.
///
/// `path` and `query` are as sent on the wire (percent-encoded, query without `?`). The payload
/// hash is computed from `body`; a present `x-amz-content-sha256` that differs from it is a
/// [`AuthError::SignatureMismatch`].
pub fn verify(
    auth: &Authorization,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    secret_access_key: &[u8],
) -> Result<(), AuthError> {
    let key = signing_key(secret_access_key, auth);
    verify_with_key(auth, method, path, query, headers, body, &key)
}

/// The signing key for `auth`'s credential scope (date, region, service):
/// the same for every request of one access key on one day, so a verifier
/// may keep it instead of deriving it (four HMACs) per request.
pub fn signing_key(secret_access_key: &[u8], auth: &Authorization) -> Zeroizing<[u8; 32]> {
    canonical::signing_key(secret_access_key, &auth.date, &auth.region, &auth.service)
}

/// [`verify`] with the scope's signing key already derived ([`signing_key`]).
pub fn verify_with_key(
    auth: &Authorization,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
    signing_key: &[u8; 32],
) -> Result<(), AuthError> {
    check_signed_header_names(&auth.signed_headers)?;
    let (amz_date, _) = required_amz_date(headers)?;
    let http_date = amz_date.get(..8).unwrap_or_default();
    if http_date != auth.date {
        return Err(incomplete(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{}' != '{http_date}', from '{amz_date}'.",
            echo(&auth.date)
        )));
    }
    let payload_hash = canonical::sha256_hex(body);
    if headers
        .get_all(X_AMZ_CONTENT_SHA256)
        .iter()
        .any(|claimed| claimed.as_bytes() != payload_hash.as_bytes())
    {
        return Err(AuthError::SignatureMismatch);
    }
    let creq = canonical::canonical_request(
        method,
        path,
        query,
        headers,
        &auth.signed_headers,
        &payload_hash,
    )?;
    let sts = canonical::string_to_sign(amz_date, &auth.credential_scope(), &creq);
    let expected = canonical::signature(signing_key, &sts);
    if bool::from(expected.ct_eq(&auth.signature)) {
        Ok(())
    } else {
        Err(AuthError::SignatureMismatch)
    }
}

fn valid_scope_component(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b',' | b';' | b'='))
}

/// Signs a request: sets `x-amz-date` and `authorization` in `headers`.
///
/// Every header already in `headers` is signed (e.g. `host`, `content-type`,
/// `x-amz-target`, `x-amz-security-token`), except hop-by-hop and proxy-modified ones
/// (`user-agent`, `connection`, `transfer-encoding`, ...) and values that are not visible
/// ASCII. `x-amz-content-sha256` is not added. `path` and `query` are as they will be sent on
/// the wire. Leaves `headers` unchanged if [`try_sign`] would fail (e.g. no `host` header).
#[allow(clippy::too_many_arguments)]
pub fn sign(
    method: &Method,
    path: &str,
    query: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &[u8],
    region: &str,
    service: &str,
    now_unix_secs: i64,
) {
    // Failure leaves the request unsigned; the server answers MissingAuthenticationToken.
    let _ = try_sign(
        method,
        path,
        query,
        headers,
        body,
        access_key_id,
        secret_access_key,
        region,
        service,
        now_unix_secs,
    );
}

/// [`sign`], reporting why signing was not possible.
#[allow(clippy::too_many_arguments)]
pub fn try_sign(
    method: &Method,
    path: &str,
    query: &str,
    headers: &mut HeaderMap,
    body: &[u8],
    access_key_id: &str,
    secret_access_key: &[u8],
    region: &str,
    service: &str,
    now_unix_secs: i64,
) -> Result<(), SignError> {
    for (what, value) in [
        ("access key id", access_key_id),
        ("region", region),
        ("service", service),
    ] {
        if !valid_scope_component(value) {
            return Err(SignError::InvalidScope(what));
        }
    }
    if !headers.contains_key(HOST) {
        return Err(SignError::MissingHost);
    }
    let amz_date = format_amz_date(now_unix_secs);
    if parse_amz_date(&amz_date).is_none() {
        return Err(SignError::TimeOutOfRange);
    }
    let date = amz_date.get(..8).unwrap_or_default().to_owned();
    let date_value = HeaderValue::from_str(&amz_date).map_err(|_| SignError::TimeOutOfRange)?;

    // Build on a copy so that `headers` is only modified once everything succeeded.
    let mut signed_request = headers.clone();
    signed_request.remove(AUTHORIZATION);
    signed_request.insert(HeaderName::from_static(X_AMZ_DATE), date_value);
    let mut signed_headers: Vec<String> = signed_request
        .keys()
        .map(HeaderName::as_str)
        .filter(|name| !UNSIGNED_HEADERS.contains(name))
        .filter(|name| {
            signed_request
                .get_all(*name)
                .iter()
                .all(|v| v.to_str().is_ok())
        })
        .map(str::to_owned)
        .collect();
    signed_headers.sort();

    let creq = canonical::canonical_request(
        method,
        path,
        query,
        &signed_request,
        &signed_headers,
        &canonical::sha256_hex(body),
    )
    // Not reachable: every listed header is present with visible-ASCII values.
    .map_err(|_| SignError::MissingHost)?;
    let scope = format!("{date}/{region}/{service}/{TERMINATOR}");
    let sts = canonical::string_to_sign(&amz_date, &scope, &creq);
    let key = canonical::signing_key(secret_access_key, &date, region, service);
    let signature = hex::encode(canonical::signature(&key, &sts));
    let authorization = format!(
        "{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={}, Signature={signature}",
        signed_headers.join(";")
    );
    let authorization =
        HeaderValue::from_str(&authorization).map_err(|_| SignError::InvalidScope("credential"))?;
    signed_request.insert(AUTHORIZATION, authorization);
    *headers = signed_request;
    Ok(())
}
