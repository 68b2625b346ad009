//! `arca backup`, `arca backup verify`, `arca restore` and
//! `arca cluster recover` (docs/runbooks/backup-restore.md and
//! docs/runbooks/disaster-recovery.md).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use arca_crypto::wrap::{RootKey, RootKeyRing};
use arca_node::backup::{self, Manifest, SeedNode};
use arca_node::types::NodeInfo;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::{Args, Subcommand};
use serde_json::json;

use crate::config::{read_secret_file, FileConfig};
use crate::AdminArgs;

/// How long a backup may take to be served.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    cmd: Option<BackupCmd>,
    /// Any node's API endpoint, e.g. http://127.0.0.1:7700 (it serves the
    /// backup from its own replica once it has caught up).
    #[arg(long, env = "ARCA_ENDPOINT", default_value = "http://127.0.0.1:7700")]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// CA certificates (PEM) to trust for an https:// endpoint.
    #[arg(long, env = "AWS_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
    /// The backup file to write (mode 0600; an existing file is not replaced).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum BackupCmd {
    /// Check a backup file offline: format, SHA-256, manifest counts; with
    /// --root-key-file also that the root keys it names are given and that
    /// every wrapped item unwraps. Given twice for a backup taken during a
    /// root-key rotation.
    Verify {
        file: PathBuf,
        #[arg(long, env = "ARCA_ROOT_KEY_FILE")]
        root_key_file: Vec<PathBuf>,
    },
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file.
    file: PathBuf,
    /// A server config file: node id, addresses, data directory and root key
    /// file are taken from it unless given below.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The new node's data directory (new or empty).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The root key the backup was made under (twice for a backup taken
    /// during a root-key rotation).
    #[arg(long, env = "ARCA_ROOT_KEY_FILE")]
    root_key_file: Vec<PathBuf>,
    /// The node id of the new cluster's first node (default 1).
    #[arg(long)]
    node_id: Option<u64>,
    /// Its API address as clients and other nodes reach it (host:port).
    #[arg(long)]
    api_addr: Option<String>,
    /// Its peer address (host:port).
    #[arg(long)]
    peer_addr: Option<String>,
}

#[derive(Args)]
pub struct RecoverArgs {
    /// A server config file: data directory, root key file and audit log are
    /// taken from it unless given below.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The stopped surviving node's data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The root key files the node runs with.
    #[arg(long, env = "ARCA_ROOT_KEY_FILE")]
    root_key_file: Vec<PathBuf>,
    /// The node's audit log (default: <data_dir>/audit.jsonl).
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Confirm that the other members are gone for good.
    #[arg(long)]
    yes: bool,
}

fn load_config(path: Option<&Path>) -> anyhow::Result<FileConfig> {
    match path {
        Some(p) => FileConfig::load(p),
        None => Ok(FileConfig::default()),
    }
}

/// The root keys named on the command line, else in the config file.
fn load_root_keys(given: Vec<PathBuf>, file: &FileConfig) -> anyhow::Result<RootKeyRing> {
    let paths: Vec<PathBuf> = if given.is_empty() {
        file.root_key_file
            .iter()
            .chain(&file.root_key_files)
            .cloned()
            .collect()
    } else {
        given
    };
    let mut keys = Vec::with_capacity(paths.len());
    for path in &paths {
        keys.push(
            RootKey::from_file_contents(&read_secret_file(path, "root key")?)
                .with_context(|| format!("invalid root key file {}", path.display()))?,
        );
    }
    RootKeyRing::new(keys).context(
        "no root key: name the root key file with --root-key-file, ARCA_ROOT_KEY_FILE or --config",
    )
}

/// Reports elapsed time on stderr while `fut` runs, only when stderr is a
/// terminal.
async fn with_progress<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    if !std::io::stderr().is_terminal() {
        return fut.await;
    }
    let started = Instant::now();
    tokio::pin!(fut);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            out = &mut fut => {
                eprint!("\r\x1b[2K");
                return out;
            }
            _ = tick.tick() => {
                eprint!("\r\x1b[2K{what} … {:.1} s", started.elapsed().as_secs_f64());
                let _ = std::io::stderr().flush();
            }
        }
    }
}

fn step(msg: &str) {
    if std::io::stderr().is_terminal() {
        eprintln!("{msg}");
    }
}

fn print_manifest(m: &Manifest) {
    let c = &m.counts;
    println!("cluster id:      {}", m.cluster_id);
    println!("log index:       {} (term {})", m.log_index, m.log_term);
    println!(
        "taken:           {} ms since the epoch, by node {}",
        m.created_ms, m.node_id
    );
    println!(
        "contents:        {} keys ({} versions), {} aliases, {} access keys, {} users, {} grants",
        c.keys, c.key_versions, c.aliases, c.access_keys, c.users, c.grants
    );
    println!(
        "payload:         {} bytes, SHA-256 {}",
        m.payload_len, m.payload_sha256
    );
    println!("root keys:       {}", m.root_key_ids.join(", "));
}

/// Writes `bytes` to `path` with mode 0600 through a temporary file, so the
/// name only ever holds a whole backup; refuses to replace a file.
fn write_backup(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} exists: a backup never replaces a file; name a new one",
            path.display()
        );
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    crate::config::write_secret_file(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir).and_then(|d| d.sync_all())?;
    }
    Ok(())
}

pub async fn backup(a: BackupArgs) -> anyhow::Result<()> {
    if let Some(BackupCmd::Verify {
        file,
        root_key_file,
    }) = a.cmd
    {
        return verify(&file, root_key_file);
    }
    let admin = AdminArgs {
        endpoint: a.endpoint,
        access_key_id: a
            .access_key_id
            .context("--access-key-id (or AWS_ACCESS_KEY_ID) is required")?,
        secret_access_key: a
            .secret_access_key
            .context("--secret-access-key (or AWS_SECRET_ACCESS_KEY) is required")?,
        region: a.region,
        ca_bundle: a.ca_bundle,
    };
    let out = a.out.context("name the backup file with --out FILE")?;
    if out.exists() {
        bail!(
            "{} exists: a backup never replaces a file; name a new one",
            out.display()
        );
    }
    let client = admin.client()?;
    let v = with_progress(
        &format!("backup: {} serves a consistent snapshot", admin.endpoint),
        client.call("ArcaAdmin.Backup", json!({}), BACKUP_TIMEOUT),
    )
    .await?;
    let bytes = B64
        .decode(v["Backup"].as_str().unwrap_or_default())
        .map_err(|e| anyhow!("the answer's Backup is not base64: {e}"))?;
    step(&format!("backup: received {} bytes; checking", bytes.len()));
    let (manifest, _) = backup::parse(&bytes).context("the backup received does not check")?;
    let told: Manifest = serde_json::from_value(v["Manifest"].clone())
        .context("the answer's Manifest does not parse")?;
    if told != manifest {
        bail!("the answer's Manifest is not the backup's");
    }
    write_backup(&out, &bytes)?;
    step(&format!("backup: written to {}", out.display()));
    println!("backup:          {}", out.display());
    print_manifest(&manifest);
    Ok(())
}

fn verify(file: &Path, root_key_file: Vec<PathBuf>) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let (manifest, state) =
        backup::parse(&bytes).with_context(|| format!("{} does not verify", file.display()))?;
    print_manifest(&manifest);
    match root_key_file.is_empty() {
        false => {
            let root = load_root_keys(root_key_file, &FileConfig::default())?;
            let u = backup::verify_with_root(&manifest, &state, &root)
                .with_context(|| format!("{} does not verify", file.display()))?;
            println!(
                "unwrapped:       {} key versions, {} access keys",
                u.key_versions, u.access_keys
            );
            println!("OK: {} verifies, with the root key", file.display());
        }
        true => println!(
            "OK: {} verifies (without the root key: pass --root-key-file to unwrap every item)",
            file.display()
        ),
    }
    Ok(())
}

pub fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let file = load_config(a.config.as_deref())?;
    let data_dir = a
        .data_dir
        .or(file.data_dir.clone())
        .context("name the new node's data directory with --data-dir or --config")?;
    let root = load_root_keys(a.root_key_file, &file)?;
    let node_id = a.node_id.or(file.node_id).unwrap_or(1);
    let api_addr = a
        .api_addr
        .or(file.advertise_addr)
        .or(file.listen_addr)
        .context("name the node's API address with --api-addr or --config")?;
    let peer_addr = a
        .peer_addr
        .or(file.peer_addr)
        .context("name the node's peer address with --peer-addr or --config")?;
    let bytes =
        std::fs::read(&a.file).with_context(|| format!("cannot read {}", a.file.display()))?;
    let s = backup::restore(
        &bytes,
        &data_dir,
        &root,
        &SeedNode {
            node_id,
            info: NodeInfo {
                api_addr,
                peer_addr,
            },
        },
        arca_node::network::unix_now_ms().max(0) as u64,
    )
    .with_context(|| format!("cannot restore {}", a.file.display()))?;
    let c = &s.counts;
    println!(
        "restored {} into {}: node {} alone, log index {}",
        a.file.display(),
        data_dir.display(),
        s.node_id,
        s.log_index
    );
    println!(
        "contents: {} keys ({} versions), {} aliases, {} access keys, {} users, {} grants",
        c.keys, c.key_versions, c.aliases, c.access_keys, c.users, c.grants
    );
    println!("new cluster id: {}", s.cluster_id);
    println!(
        "Start the node as usual; add other nodes with `arca cluster add-node` (each starts on an empty data directory)."
    );
    Ok(())
}

const RECOVER_WARNING: &str = "\
!!! ====================================================================== !!!
!!!  arca cluster recover: FORCING A NEW ONE-NODE CLUSTER                  !!!
!!!  This node becomes the only member. Everything in its log is kept,     !!!
!!!  including entries the old cluster never committed; writes that       !!!
!!!  reached only the lost nodes are gone. The old members must NEVER run  !!!
!!!  again on their old data directories: stop them for good, wipe them,   !!!
!!!  and add nodes anew (docs/runbooks/disaster-recovery.md).              !!!
!!! ====================================================================== !!!";

pub async fn recover(a: RecoverArgs) -> anyhow::Result<()> {
    let file = load_config(a.config.as_deref())?;
    let data_dir = a
        .data_dir
        .or(file.data_dir.clone())
        .context("name the surviving node's data directory with --data-dir or --config")?;
    eprintln!("{RECOVER_WARNING}");
    if !a.yes {
        bail!("not recovering: pass --yes once you are sure the other members are gone for good");
    }
    let root = load_root_keys(a.root_key_file, &file)?;
    let audit_path = a
        .audit_log
        .or(file.audit_log)
        .unwrap_or_else(|| data_dir.join("audit.jsonl"));
    let audit_key =
        arca_gateway::audit::CheckpointKey::from_roots(&root.keys().iter().collect::<Vec<_>>())
            .context("no root key")?;
    let r = backup::recover(&data_dir, &root)
        .with_context(|| format!("cannot recover {}", data_dir.display()))?;
    let s = &r.seeded;
    // The audit log records who forced the new cluster, and when: one
    // record, sealed by a checkpoint, continuing the node's chain.
    crate::config::tighten_file(&audit_path, "audit log")?;
    let (log, writer) = arca_gateway::audit::AuditLog::open(
        arca_gateway::audit::AuditConfig::new(audit_path.clone(), s.node_id),
        audit_key,
    )
    .with_context(|| format!("cannot open the audit log {}", audit_path.display()))?;
    let request_id: String = arca_crypto::random::bytes16()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
    let source = format!("local:{user}");
    let recorded = log
        .record(&arca_gateway::audit::Record {
            time_ms: arca_node::network::unix_now_ms().max(0) as u64,
            request_id: &request_id,
            node_id: s.node_id,
            source: &source,
            principal: None,
            operation: "RecoverCluster",
            arn: None,
            key_id: None,
            destination_key_id: None,
            outcome: "OK",
            status: 200,
        })
        .await;
    drop(log);
    writer.finished().await;
    recorded
        .map_err(|e| anyhow!("the recovery is done, but its audit record was not written: {e}"))?;
    println!(
        "recovered {}: node {} is now the only member (was: {:?}), log index {} in term {}",
        data_dir.display(),
        s.node_id,
        r.old_members,
        s.log_index,
        s.term
    );
    println!(
        "applied index was {}; {} entries past it were applied",
        r.applied_before, r.reapplied
    );
    let c = &s.counts;
    println!(
        "contents: {} keys ({} versions), {} aliases, {} access keys, {} users, {} grants",
        c.keys, c.key_versions, c.aliases, c.access_keys, c.users, c.grants
    );
    println!(
        "audit record {request_id} written to {}",
        audit_path.display()
    );
    println!("Start the node as usual, then add new nodes with `arca cluster add-node`.");
    Ok(())
}
