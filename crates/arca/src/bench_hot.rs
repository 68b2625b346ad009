//! `arca bench hot-key`: one key signing for many callers at once, in
//! process (no HTTP), on a runtime of one worker thread and then on one with
//! a worker per core. The ratio says whether a hot key is capped at one
//! core: it would be if its actor ran every signature itself.
//!
//! Each run starts a fresh single-node cluster in a temporary directory,
//! creates the key, and has `--tasks` tasks call `Node::key_op(Sign)` in a
//! loop: the same path a Sign request takes after SigV4, JSON and
//! authorization (serving lease, settled check, the key's actor).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use arca_crypto::wrap::{RootKey, RootKeyRing};
use arca_crypto::SecretBytes;
use arca_keys::{MessageType, SigningAlgorithm};
use arca_node::actors::{KeyOp, KeyOut};
use arca_node::limits::PortLimits;
use arca_node::node::{Node, NodeConfig, RaftTuning};
use arca_state::{KeySpec, KeyUsage};
use clap::Args;

#[derive(Args)]
pub struct HotKeyArgs {
    /// Concurrent callers of the one key.
    #[arg(long, default_value_t = 64)]
    tasks: usize,
    /// Seconds to measure per runtime (after a one-second warm-up).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Key spec of the key (an ECC or Ed25519 spec: signatures that run on
    /// the async workers).
    #[arg(long, default_value = "ECC_NIST_P256")]
    key_spec: String,
    #[arg(long, default_value = "ECDSA_SHA_256")]
    signing_algorithm: String,
    /// Worker threads of the second runtime (default: the number of cores).
    #[arg(long)]
    workers: Option<usize>,
}

struct Rate {
    ops: u64,
    secs: f64,
    cpu: Option<f64>,
}

pub fn run(a: HotKeyArgs) -> anyhow::Result<()> {
    if a.tasks == 0 || a.tasks > 10_000 {
        bail!("--tasks must be between 1 and 10000");
    }
    let spec = KeySpec::from_aws(&a.key_spec)
        .filter(|s| s.is_asymmetric())
        .with_context(|| format!("{} is not an asymmetric key spec", a.key_spec))?;
    let alg = SigningAlgorithm::from_aws(&a.signing_algorithm)
        .with_context(|| format!("unknown signing algorithm {}", a.signing_algorithm))?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = a.workers.unwrap_or(cores).max(1);
    println!(
        "Sign {} {} on one key, in process, {} callers, {} s per runtime",
        a.key_spec, a.signing_algorithm, a.tasks, a.seconds
    );
    let mut rates = Vec::new();
    for w in [1, workers] {
        let (tasks, seconds) = (a.tasks, a.seconds);
        // A fresh OS thread: a runtime cannot be started inside this one.
        let r = std::thread::spawn(move || measure(w, tasks, seconds, spec, alg))
            .join()
            .map_err(|_| anyhow::anyhow!("the benchmark thread panicked"))??;
        let rate = r.ops as f64 / r.secs;
        match r.cpu {
            Some(cpu) => println!(
                "  {w} worker thread(s): {:.0} Sign/s, process CPU {:.1} µs per Sign",
                rate,
                cpu * 1e6 / r.ops.max(1) as f64
            ),
            None => println!("  {w} worker thread(s): {rate:.0} Sign/s"),
        }
        rates.push(rate);
    }
    println!(
        "  {} worker threads / 1: {:.2}×",
        workers,
        rates[1] / rates[0].max(1.0)
    );
    Ok(())
}

fn measure(
    workers: usize,
    tasks: usize,
    seconds: u64,
    spec: KeySpec,
    alg: SigningAlgorithm,
) -> anyhow::Result<Rate> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()?;
    let dir = crate::bench::scratch_dir(None, &format!("hot-key-{workers}"))?;
    let r = rt.block_on(sign_on_one_key(&dir, tasks, seconds, spec, alg));
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

async fn sign_on_one_key(
    dir: &std::path::Path,
    tasks: usize,
    seconds: u64,
    spec: KeySpec,
    alg: SigningAlgorithm,
) -> anyhow::Result<Rate> {
    let node = Node::start(NodeConfig {
        node_id: 1,
        api_addr: "127.0.0.1:1".into(),
        peer_addr: "127.0.0.1:0".into(),
        data_dir: dir.to_path_buf(),
        db_cache_bytes: arca_node::store::DEFAULT_CACHE_BYTES,
        root_keys: RootKeyRing::new(vec![RootKey::generate()?.0])
            .context("a root key ring of one key")?,
        rewrap_batch: 100,
        rewrap_pause: Duration::ZERO,
        cluster_secret: SecretBytes::random(32)?,
        accepted_cluster_secrets: Vec::new(),
        raft: RaftTuning::default(),
        actor_mailbox: 1024,
        actor_idle: Duration::from_secs(300),
        write_timeout: Duration::from_secs(10),
        stale_bound: Duration::from_secs(1),
        scheduler_interval: Duration::from_secs(10),
        adjustable_clock: false,
        rsa_pool: 0,
        peer_limits: PortLimits::PEER_DEFAULT,
        heavy_crypto: 4,
        peer_tls: None,
    })
    .await?;
    let r = drive(&node, tasks, seconds, spec, alg).await;
    node.shutdown().await;
    r
}

async fn drive(
    node: &Arc<Node>,
    tasks: usize,
    seconds: u64,
    spec: KeySpec,
    alg: SigningAlgorithm,
) -> anyhow::Result<Rate> {
    node.init_cluster("us-east-1".into(), "111122223333".into())
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(why) = node.ready().await {
        if Instant::now() > deadline {
            bail!("the node did not become ready: {why}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let key = node
        .create_key(
            None,
            "arca bench hot-key".into(),
            Vec::new(),
            spec,
            KeyUsage::SignVerify,
            None,
        )
        .await?;
    let key_id = key.record.key_id;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(1);
    let end = measure_from + Duration::from_secs(seconds);
    let ops = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let (node, ops) = (node.clone(), ops.clone());
        handles.push(tokio::spawn(async move {
            loop {
                let now = Instant::now();
                if now >= end {
                    return Ok::<(), anyhow::Error>(());
                }
                let op = KeyOp::Sign {
                    alg,
                    message: vec![0x42; 64],
                    kind: MessageType::Raw,
                };
                let (out, _) = node.key_op(key_id, KeyUsage::SignVerify, None, op).await?;
                if !matches!(out, KeyOut::Bytes(_)) {
                    bail!("Sign returned no signature");
                }
                if now >= measure_from {
                    ops.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let cpu_before = crate::bench::process_cpu();
    tokio::time::sleep_until(end.into()).await;
    let cpu_after = crate::bench::process_cpu();
    for h in handles {
        h.await??;
    }
    Ok(Rate {
        ops: ops.load(Ordering::Relaxed),
        secs: seconds as f64,
        cpu: cpu_before.zip(cpu_after).map(|(b, a)| a - b),
    })
}
