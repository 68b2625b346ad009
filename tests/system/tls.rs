//! TLS on both ports: the AWS SDK over HTTPS with a custom CA, a cluster with
//! mutual TLS between nodes, what `openssl s_client` sees, peers without a
//! cluster certificate, certificate reload on SIGHUP, and the start-up rules.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use arca_system_tests::aws_sdk_kms::primitives::Blob;
use arca_system_tests::{
    arca_bin, client, error_code, free_ports, https_client, wait_for, Cluster, Options, DEADLINE,
    REGION,
};

fn tls_options() -> Options {
    Options {
        tls: true,
        ..Options::default()
    }
}

fn run(args: &[&str]) -> String {
    let out = Command::new(arca_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "arca {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `openssl s_client` against `addr` with `extra` arguments: whether the
/// handshake succeeded, and what it printed.
fn s_client(addr: &str, extra: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-brief"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl command (scripts/test.sh installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_encrypts_and_decrypts_over_https_with_a_custom_ca() {
    let c = Cluster::start_with(1, tls_options()).await;
    assert!(c.nodes[0].endpoint().starts_with("https://"));
    let kms = c.client(0);
    let key = c.new_key(0).await;
    let ct = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"over the wire, encrypted".to_vec()))
        .send()
        .await
        .expect("Encrypt over HTTPS");
    let pt = kms
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .expect("Decrypt over HTTPS");
    assert_eq!(
        pt.plaintext().unwrap().as_ref(),
        b"over the wire, encrypted"
    );

    // A client that trusts another CA refuses the server's certificate.
    let other = c.dir.path().join("other-ca");
    run(&["tls", "ca", "--out", other.to_str().unwrap()]);
    let conf = arca_system_tests::aws_sdk_kms::Config::builder()
        .behavior_version(arca_system_tests::aws_sdk_kms::config::BehaviorVersion::latest())
        .region(arca_system_tests::aws_sdk_kms::config::Region::new(REGION))
        .endpoint_url(c.nodes[0].endpoint())
        .credentials_provider(arca_system_tests::aws_sdk_kms::config::Credentials::new(
            &c.creds.access_key_id,
            &c.creds.secret_access_key,
            None,
            None,
            "test",
        ))
        .retry_config(arca_system_tests::aws_sdk_kms::config::retry::RetryConfig::disabled())
        .http_client(https_client(&other.join("ca.pem")))
        .build();
    let stranger = arca_system_tests::aws_sdk_kms::Client::from_conf(conf);
    let e = stranger.list_keys().send().await.unwrap_err();
    assert!(
        format!("{e:?}").contains("UnknownIssuer"),
        "a certificate error: {e:?}"
    );
    // Plain HTTP to the HTTPS port gets no KMS answer.
    let plain = client(
        &format!("http://{}", c.nodes[0].api_addr),
        &c.creds.access_key_id,
        &c.creds.secret_access_key,
    );
    assert!(plain.list_keys().send().await.is_err());
    // Over TLS, the first admin key came back in the answer: no file on the node.
    assert!(!c.nodes[0].data_dir.join("admin-credentials").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_write_and_read_over_mutual_tls() {
    let mut c = Cluster::start_with(3, tls_options()).await;
    let leader = c.wait_leader().await;
    let follower = (leader + 1) % 3;
    let key = c.new_key(leader).await;
    let ct = c
        .client(leader)
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"replicated".to_vec()))
        .send()
        .await
        .unwrap();
    // The key reached the follower through the peer port (mutual TLS).
    let pt = c
        .client(follower)
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .expect("Decrypt on a follower");
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"replicated");
    // A write sent to a follower is forwarded to the leader over mutual TLS.
    c.client(follower)
        .disable_key()
        .key_id(&key)
        .send()
        .await
        .expect("DisableKey through a follower");
    let e = c
        .client(leader)
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error_code(&e), "DisabledException");
    for n in &c.nodes {
        assert!(
            !n.log_text().contains("peer TLS handshake failed"),
            "node {}: {}",
            n.id,
            n.log_text()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openssl_sees_tls_1_2_and_1_3_with_aead_suites_only() {
    let c = Cluster::start_with(1, tls_options()).await;
    let addr = c.nodes[0].api_addr.clone();
    let ca = c.ca_file();
    let ca = ca.to_str().unwrap();

    let (ok, out) = s_client(&addr, &["-CAfile", ca, "-tls1_3"]);
    assert!(ok, "{out}");
    assert!(out.contains("Protocol version: TLSv1.3"), "{out}");
    assert!(out.contains("Verification: OK"), "{out}");
    for suite in [
        "TLS_AES_256_GCM_SHA384",
        "TLS_AES_128_GCM_SHA256",
        "TLS_CHACHA20_POLY1305_SHA256",
    ] {
        let (ok, out) = s_client(&addr, &["-CAfile", ca, "-tls1_3", "-ciphersuites", suite]);
        assert!(
            ok && out.contains(&format!("Ciphersuite: {suite}")),
            "{suite}: {out}"
        );
    }

    let (ok, out) = s_client(&addr, &["-CAfile", ca, "-tls1_2"]);
    assert!(ok, "{out}");
    assert!(out.contains("Protocol version: TLSv1.2"), "{out}");
    for suite in [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ] {
        let (ok, out) = s_client(&addr, &["-CAfile", ca, "-tls1_2", "-cipher", suite]);
        assert!(
            ok && out.contains(&format!("Ciphersuite: {suite}")),
            "{suite}: {out}"
        );
    }
    // CBC suites are not offered.
    let (ok, out) = s_client(&addr, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"]);
    assert!(!ok, "a CBC suite was accepted: {out}");

    // TLS 1.1 and 1.0 are refused by the server (the client allows them at
    // security level 0, so the refusal is the server's).
    for old in ["-tls1_1", "-tls1"] {
        let (ok, out) = s_client(&addr, &[old, "-cipher", "DEFAULT@SECLEVEL=0"]);
        assert!(!ok, "{old} was accepted: {out}");
        assert!(out.contains("alert"), "{old}: {out}");
    }
}

/// A client of the peer port with `identity` (a certificate and key, or
/// none), trusting the cluster CA; sends a peer request that says it comes
/// from node `from`. Returns the HTTP status, or the error that stopped it.
fn peer_request(
    addr: &str,
    ca: &Path,
    identity: Option<(PathBuf, PathBuf)>,
    from: u64,
) -> Result<u16, String> {
    let roots = {
        let mut r = rustls::RootCertStore::empty();
        for c in arca_node::tls::load_certs(ca).unwrap() {
            r.add(c).unwrap();
        }
        Arc::new(r)
    };
    let builder = rustls::ClientConfig::builder_with_provider(arca_node::tls::provider())
        .with_protocol_versions(arca_node::tls::VERSIONS)
        .unwrap()
        .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                arca_node::tls::load_certs(&cert).unwrap(),
                arca_node::tls::load_key(&key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let req = format!(
        "POST /raft/vote HTTP/1.1\r\nHost: {addr}\r\nx-arca-peer-from: {from}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    match tls.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    let text = String::from_utf8_lossy(&out);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_without_a_cluster_certificate_fails_the_handshake() {
    let c = Cluster::start_with(2, tls_options()).await;
    let peer = c.nodes[0].peer_addr.clone();
    let ca = c.ca_file();
    let t = c.tls_dir.clone().unwrap();

    // No certificate at all.
    let e = peer_request(&peer, &ca, None, 2).unwrap_err();
    assert!(
        e.contains("CertificateRequired") || e.contains("alert"),
        "{e}"
    );

    // A certificate of another CA, for the same node id and address.
    let other = c.dir.path().join("other-ca");
    let other_s = other.to_str().unwrap();
    run(&["tls", "ca", "--out", other_s]);
    let addr2 = c.nodes[1].peer_addr.clone();
    run(&[
        "tls",
        "node",
        "--ca",
        other_s,
        "--node-id",
        "2",
        "--addr",
        &addr2,
        "--out",
        other_s,
    ]);
    let foreign = (other.join("node-2.pem"), other.join("node-2.key"));
    let e = peer_request(&peer, &ca, Some(foreign), 2).unwrap_err();
    assert!(e.contains("UnknownCA") || e.contains("alert"), "{e}");
    assert!(c.nodes[0].log_text().contains("peer TLS handshake failed"));

    // Node 2's real certificate, claiming to be node 3: refused.
    let node2 = (t.join("node-2.pem"), t.join("node-2.key"));
    assert_eq!(peer_request(&peer, &ca, Some(node2.clone()), 3), Ok(403));
    // As itself it gets through TLS, to the cluster-secret check (no MAC
    // here): the refusals above are the certificate's.
    assert_eq!(peer_request(&peer, &ca, Some(node2), 2), Ok(401));
}

/// The SHA-256 of the certificate the server at `addr` presents, and the
/// open connection (kept alive) it was read on.
fn connect_api(
    addr: &str,
    ca: &Path,
) -> (
    String,
    rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
) {
    let config = Arc::new(arca_node::tls::client_config(ca).unwrap());
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    assert_eq!(get_health(&mut tls, addr), 200);
    let leaf = tls.conn.peer_certificates().unwrap()[0].clone();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf.as_ref());
    (hex(digest.as_ref()), tls)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// GET /health on a kept-alive connection; the status.
fn get_health(tls: &mut impl ReadWrite, addr: &str) -> u16 {
    let req = format!("GET /health HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    tls.write_all(req.as_bytes()).unwrap();
    // Read the head, then the body by Content-Length.
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = tls.read(&mut byte).unwrap();
        assert_eq!(n, 1, "connection closed mid-answer");
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    tls.read_exact(&mut body).unwrap();
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_a_new_certificate_while_open_connections_go_on() {
    let mut c = Cluster::start_with(1, tls_options()).await;
    let addr = c.nodes[0].api_addr.clone();
    let ca = c.ca_file();
    let (old, mut open) = connect_api(&addr, &ca);

    // A new certificate from the same CA, moved over the configured files.
    let api_dir = c.dir.path().join("node1/api-tls");
    let fresh = c.dir.path().join("fresh");
    run(&[
        "tls",
        "server",
        "--ca",
        c.tls_dir.as_ref().unwrap().to_str().unwrap(),
        "--name",
        "127.0.0.1",
        "--out",
        fresh.to_str().unwrap(),
    ]);
    std::fs::rename(fresh.join("server.key"), api_dir.join("server.key")).unwrap();
    std::fs::rename(fresh.join("server.pem"), api_dir.join("server.pem")).unwrap();
    c.sighup(0);

    let new = wait_for(
        "new connections to get the new certificate",
        DEADLINE,
        || {
            let (addr, ca, old) = (addr.clone(), ca.clone(), old.clone());
            async move {
                let (fp, _) = connect_api(&addr, &ca);
                (fp != old).then_some(fp)
            }
        },
    )
    .await;
    assert_ne!(new, old);
    // The connection opened before goes on, with the old certificate.
    assert_eq!(get_health(&mut open, &addr), 200);
    let leaf = open.conn.peer_certificates().unwrap()[0].clone();
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, leaf.as_ref());
    assert_eq!(hex(digest.as_ref()), old);
    assert!(c.nodes[0].log_text().contains("API certificate reloaded"));

    // A broken file on the next SIGHUP keeps the current certificate.
    std::fs::write(api_dir.join("server.pem"), "not a certificate").unwrap();
    c.sighup(0);
    wait_for("the failed reload to be reported", DEADLINE, || {
        let log = c.nodes[0].log_text();
        async move { log.contains("API certificate NOT reloaded").then_some(()) }
    })
    .await;
    let (fp, _) = connect_api(&addr, &ca);
    assert_eq!(fp, new);
    assert!(c.nodes[0].log_text().contains("server.pem"));
}

/// `arca server --config` with `toml` (plus the node basics); its stderr if
/// it fails to start. A node that starts is stopped and reported as `None`.
fn start_with_config(c: &Cluster, name: &str, node_id: u64, toml: &str) -> Option<String> {
    let ports = free_ports(2);
    let dir = c.dir.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("arca.toml");
    std::fs::write(
        &config,
        format!(
            "node_id = {node_id}\nlisten_addr = \"127.0.0.1:{}\"\npeer_addr = \"127.0.0.1:{}\"\n\
             data_dir = \"{}\"\nroot_key_file = \"{}\"\ncluster_secret_file = \"{}\"\n{toml}\n",
            ports[0],
            ports[1],
            dir.join("data").display(),
            c.root_key_file.display(),
            c.secret_file.display(),
        ),
    )
    .unwrap();
    let mut child = Command::new(arca_bin())
        .args(["server", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = stderr.read(&mut buf) {
                log.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        })
    };
    let text = || String::from_utf8_lossy(&log.lock().unwrap()).into_owned();
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        if child.try_wait().unwrap().is_some() {
            reader.join().unwrap();
            return Some(text());
        }
        if text().contains("node started") {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the node neither started nor exited: {}",
            text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_tls_or_with_bad_tls_files_refuses_to_start() {
    let c = Cluster::start_with(1, tls_options()).await;
    let t = c.tls_dir.clone().unwrap();
    let api = c.dir.path().join("node1/api-tls");
    let peer_tls = format!(
        "peer_tls_ca_file = \"{t}/ca.pem\"\npeer_tls_cert_file = \"{t}/node-1.pem\"\n\
         peer_tls_key_file = \"{t}/node-1.key\"",
        t = t.display()
    );
    let api_tls = |cert: &Path, key: &Path| {
        format!(
            "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
            cert.display(),
            key.display()
        )
    };

    // No TLS, no allow_insecure_http: refused, and the message says what to set.
    let e = start_with_config(&c, "plain", 1, "").expect("refused");
    assert!(
        e.contains("tls_cert_file") && e.contains("allow_insecure_http"),
        "{e}"
    );
    // API TLS but a plain peer port: refused too.
    let e = start_with_config(
        &c,
        "api-only",
        1,
        &api_tls(&api.join("server.pem"), &api.join("server.key")),
    )
    .expect("refused");
    assert!(e.contains("peer port has no TLS"), "{e}");

    // A certificate file that is not one: the error names it.
    let bad = c.dir.path().join("bad.pem");
    std::fs::write(&bad, "hello").unwrap();
    let e = start_with_config(
        &c,
        "bad-cert",
        1,
        &format!("{}\n{peer_tls}", api_tls(&bad, &api.join("server.key"))),
    )
    .expect("refused");
    assert!(e.contains(bad.to_str().unwrap()), "{e}");

    // A key others can read: refused, with the fix.
    let loose = c.dir.path().join("loose.key");
    std::fs::copy(api.join("server.key"), &loose).unwrap();
    std::fs::set_permissions(&loose, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let e = start_with_config(
        &c,
        "loose-key",
        1,
        &format!("{}\n{peer_tls}", api_tls(&api.join("server.pem"), &loose)),
    )
    .expect("refused");
    assert!(e.contains("chmod 600") && e.contains("loose.key"), "{e}");

    // The key of another certificate.
    let e = start_with_config(
        &c,
        "wrong-key",
        1,
        &format!(
            "{}\n{peer_tls}",
            api_tls(&api.join("server.pem"), &t.join("node-1.key"))
        ),
    )
    .expect("refused");
    assert!(e.contains("server.pem") && e.contains("node-1.key"), "{e}");

    // A peer certificate of another node.
    let e = start_with_config(
        &c,
        "other-node",
        5,
        &format!(
            "{}\n{peer_tls}",
            api_tls(&api.join("server.pem"), &api.join("server.key"))
        ),
    )
    .expect("refused");
    assert!(e.contains("is for node 1, but this is node 5"), "{e}");

    // allow_insecure_http = true serves plain HTTP.
    assert_eq!(
        start_with_config(&c, "insecure", 1, "allow_insecure_http = true"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_init_over_plain_http_writes_the_secret_to_a_0600_file() {
    let c = Cluster::start(1).await;
    let file = c.nodes[0].data_dir.join("admin-credentials");
    let meta = std::fs::metadata(&file).expect("the node wrote the first admin key");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains(&c.creds.secret_access_key));
    // And the key works.
    c.client(0).list_keys().send().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_tls_generates_a_ca_and_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(2);
    let api = format!("127.0.0.1:{}", ports[0]);
    let peer = format!("127.0.0.1:{}", ports[1]);
    let mut child = Command::new(arca_bin())
        .args([
            "server",
            "--dev",
            "--dev-tls",
            "--listen-addr",
            &api,
            "--peer-addr",
            &peer,
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let tls = dir.path().join("arca-data/tls");
    let creds = dir.path().join("arca-data/admin-credentials");
    wait_for("the dev node to write its credentials", DEADLINE, || {
        let creds = creds.clone();
        async move { creds.exists().then_some(()) }
    })
    .await;
    for key in ["server.key", "ca.key"] {
        let meta = std::fs::metadata(tls.join(key)).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
            0o600,
            "{key}"
        );
    }
    let text = std::fs::read_to_string(&creds).unwrap();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} = ")))
            .unwrap()
            .trim()
            .to_string()
    };
    arca_system_tests::register_tls_endpoint(&api, &tls.join("ca.pem"));
    let kms = client(
        &format!("https://{api}"),
        &field("aws_access_key_id"),
        &field("aws_secret_access_key"),
    );
    let key = kms.create_key().send().await.expect("CreateKey over HTTPS");
    let key_id = key.key_metadata().unwrap().key_id().to_string();
    let ct = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(Blob::new(b"dev".to_vec()))
        .send()
        .await
        .unwrap();
    let pt = kms
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pt.plaintext().unwrap().as_ref(), b"dev");
    let pid = child.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let _ = child.wait();
    let out = reader.join().unwrap();
    assert!(
        out.contains(&format!("endpoint:              https://{api}")),
        "{out}"
    );
    assert!(out.contains("arca-data/tls/ca.pem"), "{out}");
}
