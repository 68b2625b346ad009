//! `arca`: the server, the cluster admin CLI and the load generator.

mod audit_cmd;
mod backup_cmd;
mod bench;
mod bench_audit;
mod bench_crypto;
mod bench_hot;
mod bench_state;
mod client;
mod config;
mod csr_cmd;
mod principals;
mod root_key_cmd;
mod tls_cmd;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use arca_crypto::wrap::RootKey;
use arca_crypto::SecretBytes;
use arca_node::limits::PortLimits;
use arca_node::network::{PeerClient, PATH_INIT};
use arca_node::peer::{InitRequest, InitResponse};
use arca_node::peer_auth::PeerAuth;
use arca_node::tls::{ApiTls, PeerTls, PeerTlsFiles};
use arca_node::{Node, NodeConfig, RaftTuning};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::client::{ApiClient, Credentials};
use crate::config::{read_secret_file, write_secret_file, FileConfig, LogFormat};
use zeroize::Zeroizing;

#[derive(Parser)]
#[command(
    name = "arca",
    version,
    about = "Arca: a self-hosted, clustered key management service"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a node.
    Server(ServerArgs),
    /// Administer a cluster.
    #[command(subcommand)]
    Cluster(ClusterCmd),
    /// API access keys, each belonging to a user.
    #[command(subcommand, name = "access-key")]
    AccessKey(principals::AccessKeyCmd),
    /// Users' identity policies.
    #[command(subcommand)]
    User(principals::UserCmd),
    /// Root key utilities.
    #[command(subcommand, name = "root-key")]
    RootKey(root_key_cmd::RootKeyCmd),
    /// Generate a random cluster secret file (mode 0600).
    ClusterSecret {
        #[arg(long)]
        out: PathBuf,
    },
    /// Load generators (see docs/performance.md).
    #[command(subcommand)]
    Bench(bench::BenchCmd),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(audit_cmd::AuditCmd),
    /// Certificates: a cluster CA, node certificates, API server certificates.
    #[command(subcommand)]
    Tls(tls_cmd::TlsCmd),
    /// A certificate signing request (PEM) for a signing key, signed inside
    /// the cluster: the private key never leaves it.
    Csr(csr_cmd::CsrArgs),
    /// Write a consistent backup of the cluster's state (wrapped material
    /// only) from any node; `backup verify FILE` checks one offline.
    Backup(backup_cmd::BackupArgs),
    /// Seed a new one-node cluster's data directory from a backup (offline).
    Restore(backup_cmd::RestoreArgs),
    /// Call one API operation (e.g. `TrentService.Encrypt`) with a signed
    /// request and print its JSON answer: for scripts and runbooks.
    Call {
        #[command(flatten)]
        admin: AdminArgs,
        /// The operation, as in the `X-Amz-Target` header.
        target: String,
        /// The request body (JSON).
        #[arg(default_value = "{}")]
        body: String,
    },
}

#[derive(Args)]
struct ServerArgs {
    /// Run the embedded single-node default: data in ./arca-data, root key and
    /// cluster secret generated there, the cluster initialized on first start.
    #[arg(long)]
    dev: bool,
    /// With --dev: serve HTTPS with a CA and a certificate for 127.0.0.1 and
    /// localhost generated in <data_dir>/tls (trust ca.pem, e.g. AWS_CA_BUNDLE).
    #[arg(long, requires = "dev")]
    dev_tls: bool,
    /// A TOML configuration file.
    #[arg(long, env = "ARCA_CONFIG")]
    config: Option<PathBuf>,
    #[arg(long, env = "ARCA_NODE_ID")]
    node_id: Option<u64>,
    /// Client API listen address.
    #[arg(long, env = "ARCA_LISTEN_ADDR")]
    listen_addr: Option<String>,
    /// API address told to peers and clients (default: the listen address).
    #[arg(long, env = "ARCA_ADVERTISE_ADDR")]
    advertise_addr: Option<String>,
    /// Peer (Raft) address, listened on and advertised.
    #[arg(long, env = "ARCA_PEER_ADDR")]
    peer_addr: Option<String>,
    #[arg(long, env = "ARCA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// File holding the 256-bit root key (`arca root-key generate`); the same
    /// on every node. Given twice during a root-key rotation: the old key's
    /// file and the new one's.
    #[arg(long, env = "ARCA_ROOT_KEY_FILE")]
    root_key_file: Vec<PathBuf>,
    /// File holding the cluster secret that authenticates nodes to each other.
    #[arg(long, env = "ARCA_CLUSTER_SECRET_FILE")]
    cluster_secret_file: Option<PathBuf>,
    /// Audit log file, one JSON line per API request (default: <data_dir>/audit.jsonl).
    #[arg(long, env = "ARCA_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
    /// Log filter (e.g. `info`, `arca_node=debug`); RUST_LOG wins if set.
    #[arg(long, env = "ARCA_LOG")]
    log: Option<String>,
    /// Log line format: `text` or `json` (one object per line, for log shippers).
    #[arg(long, env = "ARCA_LOG_FORMAT", value_enum)]
    log_format: Option<LogFormat>,
}

#[derive(Args, Clone)]
struct AdminArgs {
    /// Any node's API endpoint, e.g. http://127.0.0.1:7700.
    #[arg(long, env = "ARCA_ENDPOINT", default_value = "http://127.0.0.1:7700")]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key_id: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: String,
    #[arg(long, env = "AWS_REGION", default_value = "us-east-1")]
    region: String,
    /// CA certificates (PEM) to trust for an https:// endpoint.
    #[arg(long, env = "AWS_CA_BUNDLE")]
    ca_bundle: Option<PathBuf>,
}

impl AdminArgs {
    fn client(&self) -> anyhow::Result<ApiClient> {
        ApiClient::new(
            &self.endpoint,
            Credentials {
                access_key_id: self.access_key_id.clone(),
                secret_access_key: self.secret_access_key.clone(),
                region: self.region.clone(),
            },
            self.ca_bundle.as_deref(),
        )
    }
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Bootstrap a new cluster on one node and print the first admin access key
    /// (shown once). Authenticated with the cluster secret, over the peer port.
    Init {
        /// The node's peer address, e.g. 127.0.0.1:7701.
        #[arg(long)]
        peer_addr: String,
        #[arg(long, env = "ARCA_CLUSTER_SECRET_FILE")]
        cluster_secret_file: PathBuf,
        #[command(flatten)]
        tls: PeerTlsArgs,
        /// Region shown in key ARNs.
        #[arg(long, default_value = "us-east-1")]
        region: String,
        /// 12-digit account id shown in key ARNs (default: random).
        #[arg(long)]
        account_id: Option<String>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Add the node described by a server config file to the cluster at --endpoint.
    Join {
        #[command(flatten)]
        admin: AdminArgs,
        /// The joining node's configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Add a node (as a learner, then a voter once it has caught up).
    AddNode {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        node_id: u64,
        /// The node's API address (host:port).
        #[arg(long)]
        api_addr: String,
        /// The node's peer address (host:port).
        #[arg(long)]
        peer_addr: String,
    },
    /// Remove a node from the cluster.
    RemoveNode {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        node_id: u64,
    },
    /// Members, leader, term, commit and applied index, and each node's lag.
    Status {
        #[command(flatten)]
        admin: AdminArgs,
        #[arg(long)]
        json: bool,
    },
    /// Disaster recovery, offline: make the stopped survivor of a lost quorum
    /// the only member of its cluster, with everything it had.
    Recover(backup_cmd::RecoverArgs),
}

/// Mutual TLS to a peer port: the cluster CA and a node certificate (the
/// node's own serves). Without them the call is plain HTTP, and the node
/// writes the first admin key to a file instead of sending it.
#[derive(Args)]
struct PeerTlsArgs {
    #[arg(long, env = "ARCA_PEER_TLS_CA_FILE", requires_all = ["peer_tls_cert_file", "peer_tls_key_file"])]
    peer_tls_ca_file: Option<PathBuf>,
    #[arg(long, env = "ARCA_PEER_TLS_CERT_FILE", requires = "peer_tls_ca_file")]
    peer_tls_cert_file: Option<PathBuf>,
    #[arg(long, env = "ARCA_PEER_TLS_KEY_FILE", requires = "peer_tls_ca_file")]
    peer_tls_key_file: Option<PathBuf>,
}

/// A command's output piped into `head` ends quietly when the pipe closes,
/// as a Unix tool killed by SIGPIPE does (exit status 141), instead of
/// panicking on the write. Rust ignores SIGPIPE, so `println!` panics with
/// "Broken pipe"; this hook turns exactly that panic into the exit.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if !matches!(cli.cmd, Cmd::Server(_)) {
        quiet_on_closed_pipe();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Server(a) => server(a).await,
            Cmd::Cluster(c) => cluster(c).await,
            Cmd::Call {
                admin,
                target,
                body,
            } => {
                let body: serde_json::Value =
                    serde_json::from_str(&body).context("the request body is not JSON")?;
                let v = admin
                    .client()?
                    .call(&target, body, Duration::from_secs(30))
                    .await?;
                println!("{v}");
                Ok(())
            }
            Cmd::AccessKey(c) => principals::access_key(c).await,
            Cmd::User(c) => principals::user(c).await,
            Cmd::RootKey(c) => root_key_cmd::run(c).await,
            Cmd::ClusterSecret { out } => {
                write_secret_file(&out, random_secret_text()?.expose())?;
                println!("cluster secret written to {}", out.display());
                Ok(())
            }
            Cmd::Bench(b) => bench::run(b).await,
            Cmd::Audit(c) => audit_cmd::run(c),
            Cmd::Tls(c) => tls_cmd::run(c),
            Cmd::Csr(a) => csr_cmd::run(a).await,
            Cmd::Backup(a) => backup_cmd::backup(a).await,
            Cmd::Restore(a) => backup_cmd::restore(a),
        }
    })
}

fn random_secret_text() -> anyhow::Result<SecretBytes> {
    let raw = SecretBytes::random(32)?;
    // Written into its final buffer, sized up front: no reallocation leaves
    // a copy behind.
    let mut s = String::with_capacity(2 * raw.len() + 1);
    for b in raw.expose() {
        let _ = write!(s, "{b:02x}");
    }
    s.push('\n');
    Ok(SecretBytes::new(s.into_bytes()))
}

fn init_tracing(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colour codes only on a terminal: a log file or journal gets plain text.
        LogFormat::Text => {
            use std::io::IsTerminal;
            builder.with_ansi(std::io::stderr().is_terminal()).init();
        }
        // One object per line, never colour: `{"timestamp", "level",
        // "message", the event's fields, "target", "span", "spans"}`.
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).init(),
    }
}

const DEV_DATA_DIR: &str = "arca-data";
const DEV_LISTEN: &str = "127.0.0.1:7700";
const DEV_PEER: &str = "127.0.0.1:7701";
const DEV_ACCOUNT: &str = "111122223333";

async fn server(a: ServerArgs) -> anyhow::Result<()> {
    let file = match &a.config {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    };
    init_tracing(
        a.log
            .as_deref()
            .or(file.log.as_deref())
            .unwrap_or("info,openraft=warn"),
        a.log_format.or(file.log_format).unwrap_or_default(),
    );
    let dev = a.dev;
    let mut tls = file.tls(dev)?;
    let data_dir = a
        .data_dir
        .or(file.data_dir)
        .or_else(|| dev.then(|| PathBuf::from(DEV_DATA_DIR)))
        .context("no data directory: set data_dir in the config, --data-dir or ARCA_DATA_DIR")?;
    // Owner-only (0700): created so, or tightened with a warning.
    arca_node::store::ensure_private_dir(&data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} or make it owner-only (chmod 700)",
            data_dir.display()
        )
    })?;
    let node_id = a.node_id.or(file.node_id).unwrap_or(1);
    let listen = a
        .listen_addr
        .or(file.listen_addr)
        .unwrap_or_else(|| DEV_LISTEN.to_string());
    let peer = a
        .peer_addr
        .or(file.peer_addr)
        .unwrap_or_else(|| DEV_PEER.to_string());
    let advertise = a
        .advertise_addr
        .or(file.advertise_addr)
        .unwrap_or_else(|| listen.clone());

    let mut dev_ca = None;
    let mut root_key_files: Vec<PathBuf> = if a.root_key_file.is_empty() {
        file.root_key_file
            .iter()
            .chain(&file.root_key_files)
            .cloned()
            .collect()
    } else {
        a.root_key_file
    };
    let mut secret_file = a.cluster_secret_file.or(file.cluster_secret_file);
    if dev {
        let rk = data_dir.join("root.key");
        if root_key_files.is_empty() {
            if !rk.exists() {
                let (_, text) = RootKey::generate()?;
                write_secret_file(&rk, text.expose())?;
                tracing::warn!(
                    path = %rk.display(),
                    "DEVELOPMENT MODE: generated a root key INSIDE the data directory. Anyone who can read \
                     the data directory can unwrap every key. Never use --dev for real keys."
                );
            }
            root_key_files.push(rk);
        }
        let cs = data_dir.join("cluster.secret");
        if secret_file.is_none() {
            if !cs.exists() {
                write_secret_file(&cs, random_secret_text()?.expose())?;
            }
            secret_file = Some(cs);
        }
    }
    if a.dev_tls {
        let (ca, cert, key) = tls_cmd::dev_tls(&data_dir.join("tls"))?;
        tls.api = Some(arca_node::tls::ApiTlsFiles {
            cert,
            key,
            client_ca: None,
        });
        dev_ca = Some(ca);
    }
    let api_tls = match tls.api {
        Some(f) => Some(ApiTls::load(f).context("API TLS")?),
        None => None,
    };
    let peer_tls = match tls.peer {
        Some(f) => Some(PeerTls::load(f).context("peer TLS")?),
        None => None,
    };
    if root_key_files.is_empty() {
        bail!("no root key: set root_key_file in the config, --root-key-file or ARCA_ROOT_KEY_FILE (create one with `arca root-key generate --out FILE`)");
    }
    let mut keys = Vec::with_capacity(root_key_files.len());
    for f in &root_key_files {
        // The file's bytes are wiped as soon as they are parsed.
        let k = RootKey::from_file_contents(&read_secret_file(f, "root key")?)
            .with_context(|| format!("invalid root key file {}", f.display()))?;
        tracing::info!(file = %f.display(), root_key = %k.id(), "root key loaded");
        keys.push(k);
    }
    let root_keys = arca_crypto::wrap::RootKeyRing::new(keys).context("no root key")?;
    let secret_file = secret_file
        .context("no cluster secret: set cluster_secret_file in the config, --cluster-secret-file or ARCA_CLUSTER_SECRET_FILE (create one with `arca cluster-secret --out FILE`)")?;
    // Moved, not copied, out of the zeroizing buffer it was read into.
    let cluster_secret = SecretBytes::new(std::mem::take(&mut *read_secret_file(
        &secret_file,
        "cluster secret",
    )?));
    let mut accepted_cluster_secrets = Vec::new();
    for f in &file.cluster_secret_accept_files {
        accepted_cluster_secrets.push(SecretBytes::new(std::mem::take(&mut *read_secret_file(
            f,
            "cluster secret",
        )?)));
        tracing::info!(file = %f.display(), "a further cluster secret is accepted from peers (a cluster-secret rotation)");
    }

    let r = &file.raft;
    let d = RaftTuning::default();
    let tuning = RaftTuning {
        heartbeat_ms: r.heartbeat_ms.unwrap_or(d.heartbeat_ms),
        election_min_ms: r.election_min_ms.unwrap_or(d.election_min_ms),
        election_max_ms: r.election_max_ms.unwrap_or(d.election_max_ms),
        snapshot_every: r.snapshot_every.unwrap_or(d.snapshot_every),
        keep_after_snapshot: r.keep_after_snapshot.unwrap_or(d.keep_after_snapshot),
        write_batch: match r.write_batch {
            Some(0) => anyhow::bail!("[raft] write_batch must be at least 1"),
            Some(n) => n.min(1024),
            None => d.write_batch,
        },
    };
    let l = &file.limits;
    let positive = |name: &str, v: Option<usize>, default: usize| -> anyhow::Result<usize> {
        match v {
            Some(0) => anyhow::bail!("{name} must be at least 1"),
            Some(n) => Ok(n),
            None => Ok(default),
        }
    };
    let api_limits = PortLimits {
        max_connections: positive(
            "[limits] max_connections",
            l.max_connections,
            PortLimits::API_DEFAULT.max_connections,
        )?,
        header_timeout: l.header_timeout_ms.map_or(
            PortLimits::API_DEFAULT.header_timeout,
            Duration::from_millis,
        ),
        body_timeout: l
            .body_timeout_ms
            .map_or(PortLimits::API_DEFAULT.body_timeout, Duration::from_millis),
    };
    let peer_limits = PortLimits {
        max_connections: positive(
            "[limits] peer_max_connections",
            l.peer_max_connections,
            PortLimits::PEER_DEFAULT.max_connections,
        )?,
        ..PortLimits::PEER_DEFAULT
    };
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let heavy_crypto = positive("[limits] heavy_crypto", l.heavy_crypto, cores * 2)?;
    let actor_mailbox = positive("[actors] mailbox", file.actors.mailbox, 1024)?;
    let audit_path = a
        .audit_log
        .or(file.audit_log)
        .unwrap_or_else(|| data_dir.join("audit.jsonl"));
    // Audit checkpoints are signed under the last root key file given (the
    // new key during a root-key rotation) and accepted under any.
    let audit_key = arca_gateway::audit::CheckpointKey::from_roots(
        &root_keys.keys().iter().collect::<Vec<_>>(),
    )
    .context("no root key")?;
    let api_listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let node = Node::start(NodeConfig {
        node_id,
        api_addr: advertise.clone(),
        peer_addr: peer.clone(),
        data_dir: data_dir.clone(),
        db_cache_bytes: match file.storage.cache_mib {
            Some(0) => anyhow::bail!("[storage] cache_mib must be at least 1"),
            Some(n) => usize::try_from(n.min(1 << 20)).unwrap_or(usize::MAX) << 20,
            None => arca_node::store::DEFAULT_CACHE_BYTES,
        },
        root_keys,
        rewrap_batch: file.root_keys.rewrap_batch.unwrap_or(100),
        rewrap_pause: Duration::from_millis(file.root_keys.rewrap_interval_ms.unwrap_or(0)),
        cluster_secret,
        accepted_cluster_secrets,
        raft: tuning,
        actor_mailbox,
        actor_idle: Duration::from_secs(file.actors.idle_secs.unwrap_or(300)),
        write_timeout: Duration::from_millis(r.write_timeout_ms.unwrap_or(10_000)),
        stale_bound: Duration::from_millis(
            file.consistency
                .stale_bound_ms
                .unwrap_or(1000)
                .clamp(200, 60_000),
        ),
        scheduler_interval: Duration::from_millis(
            file.scheduler.interval_ms.unwrap_or(10_000).max(50),
        ),
        adjustable_clock: file.testing.adjustable_clock,
        rsa_pool: file.keys.rsa_pool.unwrap_or(2).min(64),
        peer_limits,
        heavy_crypto,
        peer_tls: peer_tls.clone(),
    })
    .await?;
    // After the node's own checks (a wrong root key is reported as such),
    // before any request: a log that cannot be opened stops start-up, and
    // SIGHUP reopens it from here on.
    let opened = crate::config::tighten_file(&audit_path, "audit log")
        .and_then(|()| audit_cmd::open_log(audit_path, node_id, &file.audit, audit_key));
    let (audit, audit_writer) = match opened {
        Ok(l) => l,
        Err(e) => {
            node.shutdown().await;
            return Err(e);
        }
    };
    if let Err(e) = tls_cmd::reload_on_sighup(api_tls.clone(), peer_tls.clone()) {
        node.shutdown().await;
        return Err(e);
    }
    tracing::info!(
        node_id,
        api = %listen,
        peer = %peer,
        api_tls = api_tls.is_some(),
        peer_tls = peer_tls.is_some(),
        data_dir = %data_dir.display(),
        "node started"
    );
    if api_tls.is_none() {
        tracing::warn!("the API port serves plain HTTP: plaintexts, data keys and secrets cross the network unencrypted");
    }
    if peer_tls.is_none() {
        tracing::warn!("the peer port serves plain HTTP without certificates");
    }
    if file.testing.adjustable_clock {
        tracing::warn!("[testing] adjustable_clock is on: admins can move this node's clock. Never in production.");
    }

    let shutdown = CancellationToken::new();
    let forwarded = audit.forwarded_writes(node_id);
    node.set_forward_observer(Arc::new(move |w| forwarded.record(w)));
    let gateway = arca_gateway::Gateway::with_options(
        node.clone(),
        Some(audit),
        api_limits,
        arca_gateway::Options {
            accept_any_region: file.api.accept_any_region.unwrap_or(false),
            ops_token: file
                .api
                .ops_token_file
                .as_deref()
                .map(read_ops_token)
                .transpose()?,
        },
    );
    let serving = tokio::spawn(gateway.serve(api_listener, api_tls.clone(), shutdown.clone()));

    if dev {
        dev_bootstrap(&node, &data_dir, &listen, dev_ca.as_deref()).await?;
    }

    wait_for_signal().await;
    tracing::info!("shutting down: no new requests; finishing those in flight");
    shutdown.cancel();
    let _ = serving.await;
    // The gateway (and with it the audit log) is gone: the writer writes what
    // is queued, seals the log with a checkpoint and syncs.
    if tokio::time::timeout(Duration::from_secs(5), audit_writer.finished())
        .await
        .is_err()
    {
        tracing::warn!("the audit log writer did not finish within 5 s");
    }
    node.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The dev default: initialize on first start, write the admin credentials to
/// a 0600 file, and tell the user how to connect.
async fn dev_bootstrap(
    node: &Arc<Node>,
    data_dir: &Path,
    listen: &str,
    ca: Option<&Path>,
) -> anyhow::Result<()> {
    let creds_file = data_dir.join("admin-credentials");
    let scheme = if ca.is_some() { "https" } else { "http" };
    if node.cluster_info().is_none() {
        let k = node
            .init_cluster("us-east-1".into(), DEV_ACCOUNT.into())
            .await?;
        let secret =
            Zeroizing::new(String::from_utf8_lossy(k.secret_access_key.expose()).into_owned());
        let text = Zeroizing::new(format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\nregion = {}\n",
            k.access_key_id, *secret, k.region
        ));
        write_secret_file(&creds_file, text.as_bytes())?;
        println!("Arca (development mode) is running.");
        println!("  endpoint:              {scheme}://{listen}");
        println!("  region:                {}", k.region);
        println!("  aws_access_key_id:     {}", k.access_key_id);
        println!("  aws_secret_access_key: {}", *secret);
        println!("  credentials file:      {}", creds_file.display());
    } else {
        println!("Arca (development mode) is running.");
        println!("  endpoint:         {scheme}://{listen}");
        println!("  credentials file: {}", creds_file.display());
    }
    if let Some(ca) = ca {
        println!(
            "  CA certificate (trust it, e.g. AWS_CA_BUNDLE): {}",
            ca.display()
        );
    }
    println!("Try:");
    let trust = ca.map_or(String::new(), |c| format!("AWS_CA_BUNDLE={} ", c.display()));
    println!(
        "  {trust}AWS_SHARED_CREDENTIALS_FILE={} aws kms create-key --endpoint-url {scheme}://{listen}",
        creds_file.display()
    );
    Ok(())
}

fn random_account_id() -> anyhow::Result<String> {
    let b = arca_crypto::random::bytes16()?;
    Ok(b.iter()
        .take(12)
        .map(|x| char::from(b'0' + x % 10))
        .collect())
}

async fn cluster(c: ClusterCmd) -> anyhow::Result<()> {
    let timeout = Duration::from_secs(60);
    match c {
        ClusterCmd::Init {
            peer_addr,
            cluster_secret_file,
            tls,
            region,
            account_id,
            json,
        } => {
            let account_id = match account_id {
                Some(a) if a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()) => a,
                Some(a) => bail!("--account-id must be 12 digits, got {a:?}"),
                None => random_account_id()?,
            };
            let secret = read_secret_file(&cluster_secret_file, "cluster secret")?;
            let auth = PeerAuth::new(&secret).map_err(anyhow::Error::msg)?;
            let peer_tls = match (
                tls.peer_tls_ca_file,
                tls.peer_tls_cert_file,
                tls.peer_tls_key_file,
            ) {
                (Some(ca), Some(cert), Some(key)) => {
                    Some(PeerTls::load(PeerTlsFiles { ca, cert, key }).context("peer TLS")?)
                }
                _ => None,
            };
            let peers = PeerClient::anonymous(Arc::new(auth), peer_tls);
            let body = serde_json::to_vec(&InitRequest { region, account_id })?;
            let bytes = peers
                .call_raw(
                    None,
                    &peer_addr,
                    PATH_INIT,
                    body,
                    "application/json",
                    timeout,
                )
                .await?;
            let r: InitResponse = serde_json::from_slice(&bytes)?;
            print_init(&r, json);
            Ok(())
        }
        ClusterCmd::Join { admin, config } => {
            let f = FileConfig::load(&config)?;
            let node_id = f.node_id.context("the config has no node_id")?;
            let api = f
                .advertise_addr
                .or(f.listen_addr)
                .context("the config has no listen_addr")?;
            let peer = f.peer_addr.context("the config has no peer_addr")?;
            add_node(&admin, node_id, api, peer, timeout).await
        }
        ClusterCmd::AddNode {
            admin,
            node_id,
            api_addr,
            peer_addr,
        } => add_node(&admin, node_id, api_addr, peer_addr, timeout).await,
        ClusterCmd::RemoveNode { admin, node_id } => {
            admin
                .client()?
                .call(
                    "ArcaAdmin.RemoveNode",
                    json!({ "NodeId": node_id }),
                    timeout,
                )
                .await?;
            println!("node {node_id} removed");
            Ok(())
        }
        ClusterCmd::Recover(a) => backup_cmd::recover(a).await,
        ClusterCmd::Status { admin, json } => {
            let s = admin
                .client()?
                .call("ArcaAdmin.ClusterStatus", json!({}), timeout)
                .await?;
            if json {
                println!("{s}");
                return Ok(());
            }
            let opt = |v: &serde_json::Value| {
                v.as_u64()
                    .map(|x| x.to_string())
                    .unwrap_or_else(|| "-".into())
            };
            // Written, not printed: a closed pipe (`| head -1`) ends the
            // output quietly instead of panicking.
            let mut out = String::new();
            let _ = writeln!(
                out,
                "leader: {}   term: {}   commit index: {}   applied index: {} (as seen by node {})",
                opt(&s["leader"]),
                opt(&s["term"]),
                opt(&s["commit_index"]),
                opt(&s["applied_index"]),
                opt(&s["node_id"]),
            );
            let _ = writeln!(
                out,
                "{:>6}  {:<8} {:<22} {:<22} {:>8} {:>6} {:>10} {:>9}",
                "NODE", "ROLE", "API", "PEER", "MATCHED", "LAG", "CONTACT", "REACHABLE"
            );
            for m in s["members"].as_array().into_iter().flatten() {
                let role = if m["node_id"] == s["leader"] {
                    "leader"
                } else if m["voter"].as_bool() == Some(true) {
                    "voter"
                } else {
                    "learner"
                };
                let contact = m["last_contact_ms"]
                    .as_u64()
                    .map_or_else(|| "-".into(), |ms| format!("{ms} ms"));
                let reachable = match m["reachable"].as_bool() {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "-",
                };
                let _ = writeln!(
                    out,
                    "{:>6}  {:<8} {:<22} {:<22} {:>8} {:>6} {:>10} {:>9}",
                    opt(&m["node_id"]),
                    role,
                    m["api_addr"].as_str().unwrap_or("-"),
                    m["peer_addr"].as_str().unwrap_or("-"),
                    opt(&m["matched_index"]),
                    opt(&m["lag"]),
                    contact,
                    reachable,
                );
            }
            if s["leader"].is_null() {
                let _ = writeln!(
                    out,
                    "no leader answered: this is node {}'s own view",
                    opt(&s["node_id"])
                );
            }
            let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
            Ok(())
        }
    }
}

fn print_init(r: &InitResponse, json: bool) {
    if json {
        let mut v = json!({
            "AccessKeyId": r.access_key_id,
            "Region": r.region,
            "AccountId": r.account_id,
        });
        if let Some(s) = &r.secret_access_key {
            v["SecretAccessKey"] = json!(s);
        }
        if let Some(f) = &r.credentials_file {
            v["CredentialsFile"] = json!(f);
        }
        println!("{v}");
        return;
    }
    match (&r.secret_access_key, &r.credentials_file) {
        (Some(secret), _) => {
            println!("Cluster initialized. The first admin access key (shown once; store it now):");
            println!("  aws_access_key_id     = {}", r.access_key_id);
            println!("  aws_secret_access_key = {secret}");
        }
        (None, file) => {
            println!("Cluster initialized. The peer port is not TLS, so the secret was not sent:");
            println!(
                "the node wrote the first admin access key to {} (mode 0600). Move it somewhere safe.",
                file.as_deref().unwrap_or("its data directory")
            );
            println!("  aws_access_key_id     = {}", r.access_key_id);
        }
    }
    println!("  region                = {}", r.region);
    println!("  account id            = {}", r.account_id);
}

async fn add_node(
    admin: &AdminArgs,
    node_id: u64,
    api_addr: String,
    peer_addr: String,
    timeout: Duration,
) -> anyhow::Result<()> {
    admin
        .client()?
        .call(
            "ArcaAdmin.AddNode",
            json!({ "NodeId": node_id, "ApiAddr": api_addr, "PeerAddr": peer_addr }),
            timeout,
        )
        .await?;
    println!("node {node_id} added as a voter");
    Ok(())
}

/// The operations bearer token from its file: at least 16 characters, the
/// file readable by its owner only.
fn read_ops_token(path: &Path) -> anyhow::Result<Arc<zeroize::Zeroizing<String>>> {
    // The same checks as every secret file: owner-only mode, bounded size,
    // read into a zeroizing buffer.
    let bytes = read_secret_file(path, "ops token")?;
    let token = std::str::from_utf8(&bytes).unwrap_or_default().trim();
    if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        anyhow::bail!(
            "the ops token in {} must be at least 16 visible ASCII characters",
            path.display()
        );
    }
    Ok(Arc::new(zeroize::Zeroizing::new(token.to_string())))
}
