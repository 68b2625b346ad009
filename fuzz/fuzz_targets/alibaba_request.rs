//! The Alibaba Cloud front-end's reading of a request, before any key is
//! known: both signature schemes (the V3 `Authorization` header and the RPC
//! query or form parameters), the timestamp, and the action's translation
//! into an operation's input. Arbitrary method, query, headers and body
//! give a typed error, never a panic; a signature never verifies under a
//! secret the input cannot know.
#![no_main]

use arca_gateway::alibaba::{actions, sign};
use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;

/// Headers the V3 scheme reads; the input picks their values.
const HEADERS: [&str; 6] = [
    "authorization",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
];

fuzz_target!(|data: &[u8]| {
    // Parts separated by NUL: query, body, then header values in order.
    let mut parts = data.split(|b| *b == 0);
    let query = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let body = parts.next().unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in HEADERS.iter().zip(parts) {
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    if data.first().is_some_and(|b| b & 1 == 1) {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
    }
    let _ = sign::is_alibaba(&headers, Some(&query));
    let _ = sign::parse_timestamp(&query);
    let req = sign::Request {
        method: if data.len() % 2 == 0 { "POST" } else { "GET" },
        path: "/",
        query: &query,
        headers: &headers,
        body,
    };
    if let Ok(signed) = sign::parse(&req) {
        assert!(signed.verify(b"a secret the input cannot know").is_err());
        let _ = sign::check_time(signed.time, 1_767_225_600);
        let _ = actions::request(&signed.action, &signed.params);
    }
});
