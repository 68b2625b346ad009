//! Bounds on what a client or an unauthenticated peer can hold: connections,
//! slow headers, bodies that never come, heavy crypto in flight, and peer
//! bodies that are refused before they are read.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::aws_sdk_kms::types::{
    KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec,
};
use arca_system_tests::*;

/// Reads until the server closes the connection (or `limit` passes); returns
/// what it sent and how long it took.
fn read_until_closed(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let started = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

fn limited() -> Options {
    Options {
        extra_config: "[limits]\nmax_connections = 16\nheader_timeout_ms = 1000\nbody_timeout_ms = 1000\nheavy_crypto = 1\n".into(),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_and_connections_are_capped() {
    let c = Cluster::start_with(1, limited()).await;
    let addr = c.nodes[0].api_addr.clone();

    // Headers that trickle in: closed after the header timeout, not held.
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: x\r\n").unwrap();
    let (_, took) = read_until_closed(&mut slow, Duration::from_secs(20));
    assert!(took < Duration::from_secs(10), "held for {took:?}");

    // A body that is announced and never sent: 408 after the body timeout.
    let mut stalled = TcpStream::connect(&addr).unwrap();
    let body = b"{}";
    let h = signed_headers(
        &addr,
        "TrentService.ListKeys",
        body,
        &c.creds.access_key_id,
        &c.creds.secret_access_key,
        unix_now(),
    );
    let mut head = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in &h {
        head.push_str(&format!("{}: {}\r\n", k, v.to_str().unwrap()));
    }
    head.push_str("Content-Length: 1000\r\n\r\n");
    stalled.write_all(head.as_bytes()).unwrap();
    let (answer, took) = read_until_closed(&mut stalled, Duration::from_secs(20));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("RequestTimeoutException"), "{answer}");
    assert!(took < Duration::from_secs(10), "held for {took:?}");

    // Connections over the cap are closed at once; the others stay usable.
    let mut open: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    let mut extra = TcpStream::connect(&addr).unwrap();
    let (_, took) = read_until_closed(&mut extra, Duration::from_secs(20));
    assert!(
        took < Duration::from_secs(5),
        "an extra connection waited {took:?}"
    );
    let first = &mut open[0];
    first
        .write_all(
            format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .unwrap();
    let (answer, _) = read_until_closed(first, Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(open);
    let refused = wait_for("the refused connection in /metrics", DEADLINE, || {
        let addr = addr.clone();
        async move { metric(&addr, "arca_api_connections_refused_total").filter(|n| *n >= 1) }
    })
    .await;
    assert!(refused >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heavy_crypto_beyond_the_bound_is_throttled() {
    let c = Cluster::start_with(1, limited()).await;
    let kms = c.client_no_retry(0);
    let key = kms
        .create_key()
        .key_spec(KeySpec::Rsa4096)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let digest = vec![7u8; 32];
    let signs = (0..12).map(|_| {
        let (kms, key, digest) = (kms.clone(), key.clone(), digest.clone());
        tokio::spawn(async move {
            kms.sign()
                .key_id(key)
                .message(Blob::new(digest))
                .message_type(MessageType::Digest)
                .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| error_code(&e))
        })
    });
    let mut ok = 0;
    let mut throttled = 0;
    for t in signs.collect::<Vec<_>>() {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(c) if c == "ThrottlingException" => throttled += 1,
            Err(c) => panic!("unexpected {c}"),
        }
    }
    assert!(ok >= 1, "none signed");
    assert!(
        throttled >= 1,
        "one slot for 12 RSA-4096 signs, none throttled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthenticated_peer_body_is_refused_before_it_is_read() {
    let c = Cluster::start(1).await;
    let peer = c.nodes[0].peer_addr.clone();
    // Announce 10 MB, send none of it, and forge the signature.
    let mut s = TcpStream::connect(&peer).unwrap();
    let forged = format!(
        "v2 {} 10000000 {} {}",
        unix_now(),
        "00".repeat(32),
        "00".repeat(32)
    );
    s.write_all(
        format!(
            "POST /forward HTTP/1.1\r\nHost: {peer}\r\nx-arca-peer-auth: {forged}\r\nContent-Length: 10000000\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
