//! SigV4 on arbitrary requests: the input is an HTTP head (`name: value`
//! lines), a blank line, and a body. Parsing and verification must return a
//! typed error or `Ok`, never panic, for any headers, path and body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut headers = http::HeaderMap::new();
    let mut path = "/";
    let head = String::from_utf8_lossy(head);
    for (i, line) in head.lines().enumerate() {
        if i == 0 && line.starts_with('/') {
            path = line;
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.trim().as_bytes()),
            http::HeaderValue::from_bytes(value.trim().as_bytes()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    if let Ok(auth) = arca_sigv4::parse(&headers, "kms", 1_767_225_600) {
        let _ = arca_sigv4::verify(
            &auth,
            &http::Method::POST,
            path,
            query,
            &headers,
            body,
            b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
    }
});
