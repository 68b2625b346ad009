//! Differential: the signer against the verifier. A request built from the
//! input and signed must verify; the same request with one byte of its body,
//! target or date changed must not.
#![no_main]

use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const NOW: i64 = 1_767_225_600;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let cut = rest.len().min(usize::from(pick) % 64);
    let (target, body) = rest.split_at(cut);
    let target: String = String::from_utf8_lossy(target)
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect();
    let target = if target.is_empty() {
        "TrentService.Encrypt".to_string()
    } else {
        target
    };
    let mut headers = http::HeaderMap::new();
    headers.insert("host", http::HeaderValue::from_static("127.0.0.1:7700"));
    let Ok(t) = http::HeaderValue::from_str(&target) else {
        return;
    };
    headers.insert("x-amz-target", t);
    arca_sigv4::sign(
        &http::Method::POST,
        "/",
        "",
        &mut headers,
        body,
        "AKIAFUZZFUZZFUZZFUZZ",
        SECRET,
        "us-east-1",
        "kms",
        NOW,
    );
    let verify = |headers: &http::HeaderMap, body: &[u8]| {
        arca_sigv4::parse(headers, "kms", NOW).and_then(|auth| {
            arca_sigv4::verify(&auth, &http::Method::POST, "/", "", headers, body, SECRET)
        })
    };
    assert_eq!(verify(&headers, body), Ok(()), "a signed request must verify");
    // The body changed in one byte.
    if !body.is_empty() {
        let mut other = body.to_vec();
        let i = usize::from(pick) % other.len();
        other[i] ^= 1;
        assert!(verify(&headers, &other).is_err(), "a changed body must not verify");
    }
    // Another target.
    let mut h = headers.clone();
    h.insert(
        "x-amz-target",
        http::HeaderValue::from_str(&format!("{target}x")).unwrap(),
    );
    assert!(verify(&h, body).is_err(), "a changed target must not verify");
});
