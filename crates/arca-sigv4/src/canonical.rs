//! Canonical request, string to sign and key derivation.

use aws_lc_rs::{digest, hmac};
use http::{HeaderMap, Method};
use zeroize::Zeroizing;

use crate::{AuthError, ALGORITHM, TERMINATOR};

/// Hex SHA-256 of `data`.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

/// HMAC-SHA256 of `data` under `key`, in a zeroizing buffer.
fn hmac_sha256(key: &[u8], data: &[u8]) -> Zeroizing<[u8; 32]> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, data);
    let mut out = Zeroizing::new([0u8; 32]);
    for (o, t) in out.iter_mut().zip(tag.as_ref()) {
        *o = *t;
    }
    out
}

/// SigV4 signing key: HMAC chain over `"AWS4" + secret`, date, region, service, `aws4_request`.
pub(crate) fn signing_key(
    secret_access_key: &[u8],
    date: &str,
    region: &str,
    service: &str,
) -> Zeroizing<[u8; 32]> {
    let mut k_secret = Zeroizing::new(Vec::with_capacity(4 + secret_access_key.len()));
    k_secret.extend_from_slice(b"AWS4");
    k_secret.extend_from_slice(secret_access_key);
    let k_date = hmac_sha256(&k_secret, date.as_bytes());
    let k_region = hmac_sha256(&*k_date, region.as_bytes());
    let k_service = hmac_sha256(&*k_region, service.as_bytes());
    hmac_sha256(&*k_service, TERMINATOR.as_bytes())
}

/// Final signature: HMAC-SHA256 of the string to sign under the signing key.
pub(crate) fn signature(signing_key: &[u8; 32], string_to_sign: &str) -> [u8; 32] {
    *hmac_sha256(signing_key, string_to_sign.as_bytes())
}

/// `AWS4-HMAC-SHA256\n<amz-date>\n<scope>\n<hex sha256(canonical request)>`.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &str) -> String {
    let digest = sha256_hex(canonical_request.as_bytes());
    [ALGORITHM, "\n", amz_date, "\n", scope, "\n", &digest].concat()
}

/// Builds the canonical request. `signed_headers` must be lowercase names; each must be
/// present in `headers` with visible-ASCII values, otherwise the result is `Incomplete`.
pub(crate) fn canonical_request(
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> Result<String, AuthError> {
    // One buffer for the whole request, sized for a typical SDK request's
    // signed headers: the header values are appended in place.
    let mut out = String::with_capacity(512 + path.len() + query.len());
    out.push_str(method.as_str());
    out.push('\n');
    out.push_str(&canonical_uri(path));
    out.push('\n');
    out.push_str(&canonical_query(query));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        append_header_value(headers, name, &mut out)?;
        out.push('\n');
    }
    out.push('\n');
    for (i, name) in signed_headers.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name);
    }
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// Appends the canonical value of header `name` to `out`: all its values,
/// each trimmed with runs of spaces folded to one, joined by `,`; an error
/// if it is absent or not visible ASCII.
pub(crate) fn append_header_value(
    headers: &HeaderMap,
    name: &str,
    out: &mut String,
) -> Result<(), AuthError> {
    header_values(headers, name, |i, value| {
        if i > 0 {
            out.push(',');
        }
        fold_spaces(value, out);
    })
}

/// Calls `each` with every value of header `name` (its position, its
/// text); an error if the header is absent or a value is not visible ASCII.
pub(crate) fn header_values(
    headers: &HeaderMap,
    name: &str,
    mut each: impl FnMut(usize, &str),
) -> Result<(), AuthError> {
    let mut n = 0;
    for value in headers.get_all(name) {
        let value = value.to_str().map_err(|_| {
            AuthError::Incomplete(format!(
                "Header '{name}' contains characters that are not visible ASCII."
            ))
        })?;
        each(n, value);
        n += 1;
    }
    if n > 0 {
        Ok(())
    } else {
        Err(AuthError::Incomplete(format!(
            "Header '{name}' is listed in SignedHeaders but is not present in the request."
        )))
    }
}

/// Appends `value` with leading/trailing spaces removed and internal runs of spaces folded.
fn fold_spaces(value: &str, out: &mut String) {
    let mut pending_space = false;
    let mut started = false;
    for c in value.chars() {
        if c == ' ' {
            pending_space = started;
        } else {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            out.push(c);
            started = true;
        }
    }
}

/// Canonical URI: dot segments and empty segments removed, then every byte outside the
/// unreserved set and `/` percent-encoded. `path` is taken as sent on the wire (already
/// percent-encoded), so `%` becomes `%25`, matching the SDKs for non-S3 services.
pub(crate) fn canonical_uri(path: &str) -> String {
    let normalized = normalize_path(path);
    let mut out = String::with_capacity(normalized.len());
    encode_into(normalized.as_bytes(), true, &mut out);
    out
}

/// RFC 3986 section 5.2.4 dot-segment removal, also merging repeated slashes.
fn normalize_path(path: &str) -> String {
    let absolute = if path.starts_with('/') {
        std::borrow::Cow::Borrowed(path)
    } else {
        std::borrow::Cow::Owned(format!("/{path}"))
    };
    let mut segments: Vec<&str> = Vec::new();
    for segment in absolute.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            other => segments.push(other),
        }
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    let trailing = ["/", "/.", "/.."]
        .iter()
        .any(|suffix| absolute.ends_with(suffix));
    if out.is_empty() || (trailing && !out.ends_with('/')) {
        out.push('/');
    }
    out
}

/// Canonical query string: parameters decoded as `application/x-www-form-urlencoded` (`+` is a
/// space, invalid UTF-8 replaced by U+FFFD, as the AWS SDK for Rust does), re-encoded with the
/// unreserved set, sorted by key then value, joined with `&`.
pub(crate) fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let mut k = String::new();
            let mut v = String::new();
            encode_into(form_decode(key).as_bytes(), false, &mut k);
            encode_into(form_decode(value).as_bytes(), false, &mut v);
            (k, v)
        })
        .collect();
    pairs.sort();
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(key);
        out.push('=');
        out.push_str(value);
    }
    out
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

/// Percent-encodes every byte outside the unreserved set (and `/` when `keep_slash`).
fn encode_into(bytes: &[u8], keep_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if is_unreserved(b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Decodes `+` and `%XX` escapes; malformed escapes are kept literally.
fn form_decode(s: &str) -> String {
    fn hex_val(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_val);
            let lo = bytes.get(i + 2).copied().and_then(hex_val);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push((hi << 4) | lo);
                i += 3;
                continue;
            }
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_normalization() {
        for (input, expected) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/foo", "/foo"),
            ("foo", "/foo"),
            ("/foo/bar/", "/foo/bar/"),
            ("./", "/"),
            ("./foo", "/foo"),
            ("../", "/"),
            ("../foo", "/foo"),
            ("/.", "/"),
            ("/./", "/"),
            ("/./foo", "/foo"),
            ("/foo/bar/.", "/foo/bar/"),
            ("/foo/bar/./", "/foo/bar/"),
            ("/foo/./bar/./", "/foo/bar/"),
            ("/..", "/"),
            ("/../", "/"),
            ("/../foo", "/foo"),
            ("/foo/bar/..", "/foo/"),
            ("/foo/bar/../", "/foo/"),
            ("/foo/../bar/../", "/"),
            (".", "/"),
            ("..", "/"),
            ("/a/b/c/./../../g", "/a/g"),
            ("mid/content=5/../6", "/mid/6"),
            ("//foo//", "/foo/"),
            ("/foo%2F.%2Fbar", "/foo%2F.%2Fbar"),
            ("/foo.", "/foo."),
            ("/foo..", "/foo.."),
            ("/.foo/", "/.foo/"),
        ] {
            assert_eq!(normalize_path(input), expected, "{input:?}");
        }
    }

    #[test]
    fn uri_encoding() {
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(
            canonical_uri("/test/@connections/JBDvjfGEIAMCERw%3D"),
            "/test/%40connections/JBDvjfGEIAMCERw%253D"
        );
        assert_eq!(canonical_uri("/ሴ"), "/%E1%88%B4");
        assert_eq!(canonical_uri("/-_.~a Z"), "/-_.~a%20Z");
    }

    #[test]
    fn query_canonicalisation() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1"),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(
            canonical_query("Param-3=Value3&Param=Value2&%E1%88%B4=Value1"),
            "%E1%88%B4=Value1&Param=Value2&Param-3=Value3"
        );
        assert_eq!(canonical_query("b=2&a=2&a=1&c"), "a=1&a=2&b=2&c=");
        assert_eq!(
            canonical_query("k=a b&x=%zz&y=%4"),
            "k=a%20b&x=%25zz&y=%254"
        );
        assert_eq!(canonical_query("a=1+2&b=1%2B2"), "a=1%202&b=1%2B2");
        assert_eq!(canonical_query("a=%FF"), "a=%EF%BF%BD");
    }

    #[test]
    fn header_folding() {
        let mut out = String::new();
        fold_spaces("  \"a   b   c\"  ", &mut out);
        assert_eq!(out, "\"a b c\"");
        out.clear();
        fold_spaces("   ", &mut out);
        assert_eq!(out, "");
        out.clear();
        fold_spaces("a\tb", &mut out);
        assert_eq!(out, "a\tb");
    }
}
