//! `arca bench`: load generators that talk to a running node over HTTP with
//! SigV4, the way an SDK does. Each connection is one keep-alive HTTP/1.1
//! connection with one request in flight.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::json;

use crate::client::{authority, signed_request, ApiClient, Credentials};

#[derive(Subcommand)]
pub enum BenchCmd {
    /// Encrypt with one symmetric key over N connections.
    Encrypt(EncryptArgs),
    /// Decrypt one ciphertext of one symmetric key over N connections.
    Decrypt(EncryptArgs),
    /// GenerateDataKey (AES_256) with one symmetric key over N connections.
    GenerateDataKey(EncryptArgs),
    /// CreateKey (symmetric) over N connections: a write through Raft each.
    CreateKey(EncryptArgs),
    /// `GET /health` over N connections: the cost of the HTTP server and the
    /// loopback TCP alone, the floor under every API request.
    Floor(EncryptArgs),
    /// Sign with one asymmetric key over N connections.
    Sign(SignArgs),
    /// In-process crypto speed per algorithm, next to `openssl speed`.
    Crypto(crate::bench_crypto::CryptoArgs),
    /// One key signing for many callers in process, on one worker thread
    /// and then on one per core.
    HotKey(crate::bench_hot::HotKeyArgs),
    /// Resident memory of the replicated state per symmetric key, in process.
    StateMemory(crate::bench_state::StateMemoryArgs),
    /// What the audit log costs per request, in process: the record's
    /// encoding, and the whole path to a file from many tasks.
    Audit(crate::bench_audit::AuditArgs),
}

#[derive(Args)]
pub struct SignArgs {
    #[command(flatten)]
    common: EncryptArgs,
    /// Key spec of the key to create.
    #[arg(long, default_value = "ECC_NIST_P256")]
    key_spec: String,
    #[arg(long, default_value = "ECDSA_SHA_256")]
    signing_algorithm: String,
}

#[derive(Args)]
pub struct EncryptArgs {
    #[arg(long, env = "ARCA_ENDPOINT", default_value = "http://127.0.0.1:7700")]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key_id: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds to run (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Plaintext (or message) size in bytes (1..=4096).
    #[arg(long, default_value_t = 256)]
    plaintext_bytes: usize,
    /// Use this key instead of creating one.
    #[arg(long)]
    key_id: Option<String>,
    /// Create the key with this key policy (AWS policy JSON), to measure
    /// authorization's cost.
    #[arg(long)]
    key_policy_file: Option<std::path::PathBuf>,
    /// Read the server's CPU time from `/proc/PID/stat` of this process
    /// instead of its `/metrics` (to compare builds without the counter).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Give the new key one grant (to another principal), as keys in use have.
    #[arg(long)]
    with_grant: bool,
}

impl EncryptArgs {
    fn credentials(&self) -> Credentials {
        Credentials {
            access_key_id: self.access_key_id.clone(),
            secret_access_key: self.secret_access_key.clone(),
            region: self.region.clone(),
        }
    }

    /// `--key-id`, or a new key created with `create` (a CreateKey body).
    async fn key(&self, creds: &Credentials, create: serde_json::Value) -> anyhow::Result<String> {
        if let Some(k) = &self.key_id {
            return Ok(k.clone());
        }
        let mut create = create;
        if let Some(f) = &self.key_policy_file {
            let doc = std::fs::read_to_string(f)
                .with_context(|| format!("cannot read {}", f.display()))?;
            create["Policy"] = json!(doc);
        }
        let c = ApiClient::new(&self.endpoint, creds.clone(), None)?;
        let r = c
            .call("TrentService.CreateKey", create, Duration::from_secs(60))
            .await?;
        let key_id = r["KeyMetadata"]["KeyId"]
            .as_str()
            .context("CreateKey returned no KeyId")?
            .to_string();
        // So that a later run can use the same key (`--key-id`).
        println!("key: {key_id}");
        if self.with_grant {
            let account = r["KeyMetadata"]["AWSAccountId"]
                .as_str()
                .unwrap_or_default();
            c.call(
                "TrentService.CreateGrant",
                json!({
                    "KeyId": key_id,
                    "GranteePrincipal": format!("arn:aws:iam::{account}:user/bench-grantee"),
                    "Operations": ["Encrypt", "Decrypt"],
                }),
                Duration::from_secs(60),
            )
            .await?;
        }
        Ok(key_id)
    }
}

pub async fn run(cmd: BenchCmd) -> anyhow::Result<()> {
    match cmd {
        BenchCmd::Encrypt(a) => encrypt(a).await,
        BenchCmd::Decrypt(a) => decrypt(a).await,
        BenchCmd::GenerateDataKey(a) => generate_data_key(a).await,
        BenchCmd::CreateKey(a) => {
            let creds = a.credentials();
            let body = serde_json::to_vec(&json!({"Description": "arca bench create-key"}))?;
            load(
                &a,
                signed(&a, &creds, "TrentService.CreateKey", body)?,
                "CreateKey",
            )
            .await
        }
        BenchCmd::Floor(a) => {
            let auth = authority(&a.endpoint)?;
            let make = move || -> anyhow::Result<http::Request<Full<Bytes>>> {
                Ok(http::Request::get("/health")
                    .header(http::header::HOST, auth.as_str())
                    .body(Full::new(Bytes::new()))?)
            };
            load(&a, make, "GET /health").await
        }
        BenchCmd::Sign(a) => sign(a).await,
        BenchCmd::Crypto(a) => crate::bench_crypto::run(a),
        BenchCmd::HotKey(a) => crate::bench_hot::run(a),
        BenchCmd::StateMemory(a) => crate::bench_state::run(a),
        BenchCmd::Audit(a) => crate::bench_audit::run(a),
    }
}

struct ConnResult {
    latencies_us: Vec<u32>,
    errors: u64,
}

async fn sign(s: SignArgs) -> anyhow::Result<()> {
    let a = &s.common;
    let creds = a.credentials();
    let key_id = a
        .key(
            &creds,
            json!({"Description": "arca bench", "KeySpec": s.key_spec, "KeyUsage": "SIGN_VERIFY"}),
        )
        .await?;
    let body = serde_json::to_vec(&json!({
        "KeyId": key_id,
        "Message": B64.encode(vec![0x42u8; a.plaintext_bytes]),
        "SigningAlgorithm": s.signing_algorithm,
    }))?;
    let what = format!("Sign {} {}", s.key_spec, s.signing_algorithm);
    load(a, signed(a, &creds, "TrentService.Sign", body)?, &what).await
}

/// Makes each request of a run: `target` with `body`, signed with SigV4.
fn signed(
    a: &EncryptArgs,
    creds: &Credentials,
    target: &'static str,
    body: Vec<u8>,
) -> anyhow::Result<impl Fn() -> anyhow::Result<http::Request<Full<Bytes>>> + Clone> {
    let auth = authority(&a.endpoint)?;
    let creds = creds.clone();
    Ok(move || signed_request(&auth, &creds, target, &body))
}

fn check_size(a: &EncryptArgs) -> anyhow::Result<()> {
    if !(1..=4096).contains(&a.plaintext_bytes) {
        bail!("--plaintext-bytes must be between 1 and 4096");
    }
    Ok(())
}

async fn decrypt(a: EncryptArgs) -> anyhow::Result<()> {
    check_size(&a)?;
    let creds = a.credentials();
    let key_id = a.key(&creds, json!({"Description": "arca bench"})).await?;
    let c = ApiClient::new(&a.endpoint, creds.clone(), None)?;
    let r = c
        .call(
            "TrentService.Encrypt",
            json!({"KeyId": key_id, "Plaintext": B64.encode(vec![0x42u8; a.plaintext_bytes])}),
            Duration::from_secs(60),
        )
        .await?;
    let blob = r["CiphertextBlob"]
        .as_str()
        .context("Encrypt returned no CiphertextBlob")?;
    let body = serde_json::to_vec(&json!({"CiphertextBlob": blob}))?;
    load(
        &a,
        signed(&a, &creds, "TrentService.Decrypt", body)?,
        "Decrypt",
    )
    .await
}

async fn generate_data_key(a: EncryptArgs) -> anyhow::Result<()> {
    let creds = a.credentials();
    let key_id = a.key(&creds, json!({"Description": "arca bench"})).await?;
    let body = serde_json::to_vec(&json!({"KeyId": key_id, "KeySpec": "AES_256"}))?;
    let what = "GenerateDataKey AES_256";
    load(
        &a,
        signed(&a, &creds, "TrentService.GenerateDataKey", body)?,
        what,
    )
    .await
}

async fn encrypt(a: EncryptArgs) -> anyhow::Result<()> {
    check_size(&a)?;
    let creds = a.credentials();
    let key_id = a.key(&creds, json!({"Description": "arca bench"})).await?;
    let body = serde_json::to_vec(&json!({
        "KeyId": key_id,
        "Plaintext": B64.encode(vec![0x42u8; a.plaintext_bytes]),
    }))?;
    load(
        &a,
        signed(&a, &creds, "TrentService.Encrypt", body)?,
        "Encrypt",
    )
    .await
}

/// Sends the requests `make` makes over the connections of `a`; prints
/// throughput, latency and the server's CPU time per request.
async fn load<M>(a: &EncryptArgs, make: M, what: &str) -> anyhow::Result<()>
where
    M: Fn() -> anyhow::Result<http::Request<Full<Bytes>>> + Clone + Send + 'static,
{
    if a.connections == 0 || a.connections > 10_000 {
        bail!("--connections must be between 1 and 10000");
    }
    let auth = authority(&a.endpoint)?;
    let warmup = Duration::from_secs(1);
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + Duration::from_secs(a.seconds);
    // The server's CPU time over the measured window, from its /metrics.
    let cpu = {
        let auth = auth.clone();
        let pid = a.server_pid;
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let before = server_cpu_seconds(&auth, pid).await;
            tokio::time::sleep_until(end.into()).await;
            let after = server_cpu_seconds(&auth, pid).await;
            Some(after? - before?)
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (auth, make) = (auth.clone(), make.clone());
        tasks.push(tokio::spawn(async move {
            connection(&auth, make, measure_from, end).await
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let r = t.await??;
        lat.extend(r.latencies_us);
        errors += r.errors;
    }
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i] as f64 / 1000.0
    };
    let secs = a.seconds as f64;
    println!(
        "{what}: {} connections, {} s, {}-byte input",
        a.connections, a.seconds, a.plaintext_bytes
    );
    println!(
        "  requests: {}   errors: {}   throughput: {:.0}/s",
        lat.len(),
        errors,
        lat.len() as f64 / secs
    );
    println!(
        "  latency ms: p50 {:.2}   p99 {:.2}   p99.9 {:.2}   max {:.2}",
        pct(0.50),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    match cpu.await.ok().flatten() {
        Some(cpu) if !lat.is_empty() => println!(
            "  server CPU: {:.2} s, {:.1} µs per request",
            cpu,
            cpu * 1e6 / lat.len() as f64
        ),
        _ => println!("  server CPU: not available (no process_cpu_seconds_total in /metrics)"),
    }
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}

/// `process_cpu_seconds_total` from the node's `/metrics`.
async fn server_cpu_seconds(auth: &str, pid: Option<u32>) -> Option<f64> {
    if let Some(pid) = pid {
        return arca_gateway::metrics::cpu_seconds_of(&format!("/proc/{pid}/stat"));
    }
    let stream = tokio::net::TcpStream::connect(auth).await.ok()?;
    let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream))
        .await
        .ok()?;
    tokio::spawn(conn);
    let req = http::Request::get("/metrics")
        .header(http::header::HOST, auth)
        .body(Full::new(Bytes::new()))
        .ok()?;
    let body = sender
        .send_request(req)
        .await
        .ok()?
        .into_body()
        .collect()
        .await
        .ok()?;
    let text = String::from_utf8(body.to_bytes().to_vec()).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("process_cpu_seconds_total "))
        .and_then(|v| v.trim().parse().ok())
}

async fn connection(
    auth: &str,
    make: impl Fn() -> anyhow::Result<http::Request<Full<Bytes>>>,
    measure_from: Instant,
    end: Instant,
) -> anyhow::Result<ConnResult> {
    let stream = tokio::net::TcpStream::connect(auth).await?;
    stream.set_nodelay(true)?;
    let (mut sender, conn) = http1::handshake::<_, Full<Bytes>>(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut out = ConnResult {
        latencies_us: Vec::with_capacity(64 * 1024),
        errors: 0,
    };
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let req = make()?;
        sender.ready().await?;
        let t0 = Instant::now();
        let resp = sender.send_request(req).await?;
        let ok = resp.status().is_success();
        let _ = resp.into_body().collect().await?;
        let us = t0.elapsed().as_micros().min(u32::MAX as u128) as u32;
        if t0 >= measure_from && Instant::now() <= end {
            if ok {
                out.latencies_us.push(us);
            } else {
                out.errors += 1;
            }
        }
    }
    Ok(out)
}

/// This process's CPU time (user and system), in seconds: the in-process
/// benches' cost figure.
pub(crate) fn process_cpu() -> Option<f64> {
    arca_gateway::metrics::cpu_seconds_of("/proc/self/stat")
}

/// A new, empty directory `arca-bench-<name>-<pid>` under `base` (the
/// system's temporary directory by default); the bench removes it.
pub(crate) fn scratch_dir(
    base: Option<&std::path::Path>,
    name: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let dir = base
        .map_or_else(std::env::temp_dir, std::path::Path::to_path_buf)
        .join(format!("arca-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
