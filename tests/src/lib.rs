//! Test support: starts real `arca` processes on free loopback ports with
//! temporary data directories, and gives each test an `aws-sdk-kms` client per
//! node, `kill()` (SIGKILL), `restart()`, and waits with deadlines.
//!
//! The `arca` binary is found next to the test executable (`target/<profile>/arca`)
//! or at `$ARCA_BIN`; `cargo build -p arca` (or the README's test command) builds it.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use serde_json::Value;

pub use aws_sdk_kms;

pub mod chaos;
pub mod netns;

use crate::netns::Netns;

pub const REGION: &str = "us-east-1";
pub const ACCOUNT: &str = "111122223333";

/// How long a cluster may take to elect a leader or catch up on a busy machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn arca_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("ARCA_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/arca; a binary of
    // this crate (arca-chaos) sits in target/<profile>/ itself.
    let dir = exe.parent().expect("target dir");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("target dir")
    } else {
        dir
    };
    let bin = dir.join("arca");
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build -p arca` (or set ARCA_BIN)",
        bin.display()
    );
    bin
}

/// Picks `n` distinct free loopback ports.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

/// Polls `f` until it returns `Some`, or panics after `deadline` with `what`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() >= until {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
    }
}

/// Options for a test cluster.
#[derive(Clone)]
pub struct Options {
    pub snapshot_every: u64,
    pub keep_after_snapshot: u64,
    /// Lets tests move node clocks forward (`Cluster::advance_clock`).
    pub adjustable_clock: bool,
    pub scheduler_interval_ms: u64,
    /// `[consistency] stale_bound_ms`; `None`: the server's default.
    pub stale_bound_ms: Option<u64>,
    /// Pre-generated RSA keys per size; 0 keeps test nodes from spending CPU on them.
    pub rsa_pool: usize,
    /// How long the operator pauses between bootstrap steps (after `init`,
    /// and between `add-node`s), as a person following the runbook would.
    pub bootstrap_pause: Duration,
    /// More TOML appended to every node's configuration (whole sections).
    pub extra_config: String,
    /// Run each node in its own network namespace, so that
    /// `Cluster::partition` can cut it off (needs root; see `netns.rs`).
    pub netns: bool,
    /// `[raft] write_timeout_ms`; `None`: the server's default.
    pub write_timeout_ms: Option<u64>,
    /// Put each node's data directory on a tmpfs of this many MiB, so a test
    /// can fill the disk (needs root).
    pub tmpfs_data_mib: Option<u64>,
    /// A bearer token that `/metrics` and `/ready` require (`[api]
    /// ops_token_file`); this process's GETs of them then send it.
    pub ops_token: Option<String>,
    /// TLS on both ports: one test CA (`Cluster::ca_file`) signs each node's
    /// API certificate and its peer certificate (mutual TLS between nodes).
    /// Without it the nodes serve plain HTTP (`allow_insecure_http = true`).
    pub tls: bool,
    /// `log_format = "json"`: each node logs one JSON object per line.
    pub json_logs: bool,
    /// Each node's log filter (`log`).
    pub log_filter: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            snapshot_every: 1000,
            keep_after_snapshot: 500,
            adjustable_clock: false,
            scheduler_interval_ms: 200,
            stale_bound_ms: None,
            rsa_pool: 0,
            bootstrap_pause: Duration::ZERO,
            extra_config: String::new(),
            netns: false,
            write_timeout_ms: None,
            tmpfs_data_mib: None,
            ops_token: None,
            tls: false,
            json_logs: false,
            log_filter: "info,openraft=warn".into(),
        }
    }
}

pub struct NodeProc {
    pub id: u64,
    /// The network namespace it runs in (`Options::netns`).
    ns: Option<String>,
    /// Its data directory is a tmpfs mount (`Options::tmpfs_data_mib`).
    mounted: bool,
    pub api_addr: String,
    pub peer_addr: String,
    pub data_dir: PathBuf,
    pub config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    /// Its API port serves HTTPS.
    pub tls: bool,
}

impl NodeProc {
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.api_addr)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = match &self.ns {
            // `ip netns exec` enters the namespace and execs, so the child's
            // pid is the node's (kill and pause reach it).
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(arca_bin());
                c
            }
            None => Command::new(arca_bin()),
        };
        let child = cmd
            .args(["server", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn arca");
        self.child = Some(child);
    }

    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().ok().flatten().is_none(),
            None => false,
        }
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let pid = c.id().to_string();
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(c.wait());
            });
            match rx.recv_timeout(DEADLINE) {
                Ok(Ok(status)) => {
                    assert!(status.success(), "node {} exited with {status}", self.id)
                }
                _ => {
                    let _ = Command::new("kill").args(["-KILL", &pid]).status();
                    panic!("node {} did not stop on SIGTERM", self.id);
                }
            }
        }
    }

    fn signal(&mut self, sig: &str) {
        if let Some(c) = &self.child {
            let st = Command::new("kill")
                .args([&format!("-{sig}"), &c.id().to_string()])
                .status()
                .expect("kill");
            assert!(st.success());
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill();
        if self.mounted {
            let _ = Command::new("umount").arg(&self.data_dir).status();
        }
    }
}

pub struct AdminCreds {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// A cluster of real `arca` processes.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: Vec<NodeProc>,
    /// The nodes' network namespaces (dropped after the nodes).
    pub net: Option<Netns>,
    pub creds: AdminCreds,
    pub root_key_file: PathBuf,
    pub secret_file: PathBuf,
    /// With `Options::tls`: the directory of the test CA (`ca.pem`), and of
    /// each node's peer certificate (`node-N.pem`, `node-N.key`).
    pub tls_dir: Option<PathBuf>,
    opts: Options,
}

/// The first admin key from `arca cluster init --json`: in the answer (over
/// TLS), or in the file the node wrote (plain HTTP).
pub fn init_credentials(v: &Value) -> AdminCreds {
    let id = v["AccessKeyId"].as_str().expect("AccessKeyId").to_string();
    if let Some(secret) = v["SecretAccessKey"].as_str() {
        return AdminCreds {
            access_key_id: id,
            secret_access_key: secret.to_string(),
        };
    }
    let file = v["CredentialsFile"]
        .as_str()
        .expect("SecretAccessKey or CredentialsFile");
    let text = std::fs::read_to_string(file).expect("the credentials file");
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("aws_secret_access_key = "))
        .expect("aws_secret_access_key in the credentials file");
    AdminCreds {
        access_key_id: id,
        secret_access_key: secret.trim().to_string(),
    }
}

/// API addresses served over TLS, and the CA their certificates chain to:
/// the raw HTTP helpers below and `client` speak TLS to them.
static TLS_ENDPOINTS: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// From now on, talk TLS to `addr`, trusting `ca`.
pub fn register_tls_endpoint(addr: &str, ca: &Path) {
    let mut e = TLS_ENDPOINTS.lock().unwrap_or_else(|p| p.into_inner());
    e.retain(|(a, _)| a != addr);
    e.push((addr.to_string(), ca.to_path_buf()));
}

fn tls_ca_for(addr: &str) -> Option<PathBuf> {
    let e = TLS_ENDPOINTS.lock().unwrap_or_else(|p| p.into_inner());
    e.iter().find(|(a, _)| a == addr).map(|(_, c)| c.clone())
}

fn run_cli(args: &[&str], creds: Option<&AdminCreds>) -> String {
    let mut cmd = Command::new(arca_bin());
    cmd.args(args).env("AWS_REGION", REGION);
    // An https:// endpoint: trust the CA its node's certificate chains to.
    if let Some(ep) = args
        .windows(2)
        .find(|w| w[0] == "--endpoint")
        .and_then(|w| w[1].strip_prefix("https://"))
    {
        if let Some(ca) = tls_ca_for(ep) {
            cmd.env("AWS_CA_BUNDLE", ca);
        }
    }
    if let Some(c) = creds {
        cmd.env("AWS_ACCESS_KEY_ID", &c.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &c.secret_access_key);
    }
    let out = cmd.output().expect("run arca cli");
    assert!(
        out.status.success(),
        "arca {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Cluster {
    /// Starts `n` nodes, initializes the cluster on node 1 and adds the others.
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, Options::default()).await
    }

    pub async fn start_with(n: usize, opts: Options) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let root_key_file = dir.path().join("root.key");
        let secret_file = dir.path().join("cluster.secret");
        run_cli(
            &[
                "root-key",
                "generate",
                "--out",
                root_key_file.to_str().unwrap(),
            ],
            None,
        );
        run_cli(
            &["cluster-secret", "--out", secret_file.to_str().unwrap()],
            None,
        );
        let mut opts = opts;
        if let Some(token) = &opts.ops_token {
            use std::os::unix::fs::PermissionsExt;
            let file = dir.path().join("ops.token");
            std::fs::write(&file, token).unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            opts.extra_config.push_str(&format!(
                "\n[api]\nops_token_file = \"{}\"\n",
                file.display()
            ));
            *OPS_TOKEN.lock().unwrap() = Some(token.clone());
        }
        let tls_dir = opts.tls.then(|| {
            let d = dir.path().join("tls");
            run_cli(&["tls", "ca", "--out", d.to_str().unwrap()], None);
            d
        });
        let net = opts
            .netns
            .then(|| Netns::create(8).expect("network namespaces (run as root with iproute2)"));
        let mut c = Cluster {
            dir,
            nodes: Vec::new(),
            net,
            creds: AdminCreds {
                access_key_id: String::new(),
                secret_access_key: String::new(),
            },
            root_key_file,
            secret_file,
            tls_dir,
            opts,
        };
        c.new_node();
        c.nodes[0].spawn();
        c.wait_healthy(0).await;
        let peer_addr = c.nodes[0].peer_addr.clone();
        let mut args = vec![
            "cluster".to_string(),
            "init".into(),
            "--peer-addr".into(),
            peer_addr,
            "--cluster-secret-file".into(),
            c.secret_file.display().to_string(),
            "--region".into(),
            REGION.into(),
            "--account-id".into(),
            ACCOUNT.into(),
            "--json".into(),
        ];
        if let Some(t) = &c.tls_dir {
            // The operator's CLI speaks mutual TLS with node 1's certificate.
            for (flag, file) in [
                ("--peer-tls-ca-file", "ca.pem"),
                ("--peer-tls-cert-file", "node-1.pem"),
                ("--peer-tls-key-file", "node-1.key"),
            ] {
                args.push(flag.into());
                args.push(t.join(file).display().to_string());
            }
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run_cli(&args, None);
        let v: Value = serde_json::from_str(&out).expect("init json");
        c.creds = init_credentials(&v);
        for _ in 1..n {
            // The operator's pause is part of the scenario, not a wait for a
            // condition.
            tokio::time::sleep(c.opts.bootstrap_pause).await;
            c.add_node().await;
        }
        for i in 0..n {
            c.wait_ready(i).await;
        }
        c
    }

    /// The test CA's certificate (`Options::tls`).
    pub fn ca_file(&self) -> PathBuf {
        self.tls_dir
            .as_ref()
            .expect("a cluster with tls")
            .join("ca.pem")
    }

    /// TLS settings for a node's config (top-level keys): its API certificate
    /// and its peer certificate, both signed by the test CA.
    fn tls_config(&self, id: u64, api_addr: &str, peer_addr: &str) -> String {
        let Some(t) = &self.tls_dir else {
            return "allow_insecure_http = true".into();
        };
        let host = api_addr.rsplit_once(':').map_or(api_addr, |(h, _)| h);
        let api_dir = self.dir.path().join(format!("node{id}/api-tls"));
        if !api_dir.join("server.pem").exists() {
            let ca = t.display().to_string();
            let out = api_dir.display().to_string();
            run_cli(
                &["tls", "server", "--ca", &ca, "--name", host, "--out", &out],
                None,
            );
            run_cli(
                &[
                    "tls",
                    "node",
                    "--ca",
                    &ca,
                    "--node-id",
                    &id.to_string(),
                    "--addr",
                    peer_addr,
                    "--out",
                    &ca,
                ],
                None,
            );
        }
        register_tls_endpoint(api_addr, &t.join("ca.pem"));
        format!(
            "tls_cert_file = \"{api}/server.pem\"\ntls_key_file = \"{api}/server.key\"\n\
             peer_tls_ca_file = \"{t}/ca.pem\"\npeer_tls_cert_file = \"{t}/node-{id}.pem\"\n\
             peer_tls_key_file = \"{t}/node-{id}.key\"",
            api = api_dir.display(),
            t = t.display(),
        )
    }

    /// Creates the next node's directories and config (not started).
    fn new_node(&mut self) -> usize {
        let id = self.nodes.len() as u64 + 1;
        let ports = free_ports(2);
        let data_dir = self.dir.path().join(format!("node{id}/data"));
        let config = self.dir.path().join(format!("node{id}/arca.toml"));
        let log = self.dir.path().join(format!("node{id}/arca.log"));
        std::fs::create_dir_all(&data_dir).unwrap();
        let (api_addr, peer_addr, ns) = match &self.net {
            Some(net) => {
                let i = self.nodes.len();
                (
                    format!("{}:7700", net.client_ip(i)),
                    format!("{}:7701", net.peer_ip(i)),
                    Some(net.node_ns(i)),
                )
            }
            None => (
                format!("127.0.0.1:{}", ports[0]),
                format!("127.0.0.1:{}", ports[1]),
                None,
            ),
        };
        let tls = self.tls_config(id, &api_addr, &peer_addr);
        let toml = format!(
            r#"node_id = {id}
listen_addr = "{api_addr}"
peer_addr = "{peer_addr}"
data_dir = "{data}"
root_key_file = "{root}"
cluster_secret_file = "{secret}"
log = "{log_filter}"
log_format = "{log_format}"
{tls}

[raft]
snapshot_every = {se}
keep_after_snapshot = {keep}
{write_timeout}
{bound}

[scheduler]
interval_ms = {sched}

[testing]
adjustable_clock = {clock}

[keys]
rsa_pool = {pool}
{extra}
"#,
            data = data_dir.display(),
            root = self.root_key_file.display(),
            secret = self.secret_file.display(),
            se = self.opts.snapshot_every,
            keep = self.opts.keep_after_snapshot,
            bound = self
                .opts
                .stale_bound_ms
                .map(|b| format!("\n[consistency]\nstale_bound_ms = {b}\n"))
                .unwrap_or_default(),
            sched = self.opts.scheduler_interval_ms,
            clock = self.opts.adjustable_clock,
            pool = self.opts.rsa_pool,
            extra = self.opts.extra_config,
            log_filter = self.opts.log_filter,
            log_format = if self.opts.json_logs { "json" } else { "text" },
            write_timeout = self
                .opts
                .write_timeout_ms
                .map(|t| format!("write_timeout_ms = {t}"))
                .unwrap_or_default(),
        );
        let mounted = self.opts.tmpfs_data_mib.is_some_and(|mib| {
            let st = Command::new("mount")
                .args([
                    "-t",
                    "tmpfs",
                    "-o",
                    &format!("size={mib}m,mode=0700"),
                    "tmpfs",
                ])
                .arg(&data_dir)
                .status()
                .expect("mount");
            assert!(st.success(), "mounting a tmpfs needs root");
            true
        });
        std::fs::write(&config, toml).unwrap();
        self.nodes.push(NodeProc {
            id,
            ns,
            mounted,
            api_addr,
            peer_addr,
            data_dir,
            config,
            log,
            child: None,
            tls: self.tls_dir.is_some(),
        });
        self.nodes.len() - 1
    }

    /// Starts one more node and adds it to the cluster through node 1's
    /// (or any running node's) admin API. Returns its index.
    pub async fn add_node(&mut self) -> usize {
        let i = self.new_node();
        self.nodes[i].spawn();
        self.wait_healthy(i).await;
        let via = self.any_running().expect("a running node");
        let endpoint = self.nodes[via].endpoint();
        let (id, api, peer) = (
            self.nodes[i].id.to_string(),
            self.nodes[i].api_addr.clone(),
            self.nodes[i].peer_addr.clone(),
        );
        run_cli(
            &[
                "cluster",
                "add-node",
                "--endpoint",
                &endpoint,
                "--node-id",
                &id,
                "--api-addr",
                &api,
                "--peer-addr",
                &peer,
            ],
            Some(&self.creds),
        );
        i
    }

    /// Starts one more node and has it join from its own config file
    /// (`arca cluster join`). Returns its index.
    pub async fn join_node(&mut self) -> usize {
        let i = self.new_node();
        self.nodes[i].spawn();
        self.wait_healthy(i).await;
        let via = self.any_running().expect("a running node");
        let endpoint = self.nodes[via].endpoint();
        let config = self.nodes[i].config.to_str().unwrap().to_string();
        run_cli(
            &[
                "cluster",
                "join",
                "--endpoint",
                &endpoint,
                "--config",
                &config,
            ],
            Some(&self.creds),
        );
        i
    }

    /// Removes node `i` from the cluster through node `via`'s admin API
    /// (`arca cluster remove-node`); node `i` keeps running.
    pub fn remove_node(&self, via: usize, i: usize) {
        let endpoint = self.nodes[via].endpoint();
        let id = self.nodes[i].id.to_string();
        self.cli(&[
            "cluster",
            "remove-node",
            "--endpoint",
            &endpoint,
            "--node-id",
            &id,
        ]);
    }

    fn any_running(&mut self) -> Option<usize> {
        (0..self.nodes.len()).find(|i| self.nodes[*i].is_running())
    }

    pub fn cli(&self, args: &[&str]) -> String {
        run_cli(args, Some(&self.creds))
    }

    pub async fn wait_healthy(&mut self, i: usize) {
        let addr = self.nodes[i].api_addr.clone();
        let log = self.nodes[i].log.clone();
        wait_for(
            &format!("node {} to answer /health", i + 1),
            DEADLINE,
            || {
                let addr = addr.clone();
                async move { (http_get(&addr, "/health").map(|r| r.0) == Some(200)).then_some(()) }
            },
        )
        .await;
        let _ = log;
    }

    pub async fn wait_ready(&self, i: usize) {
        let addr = self.nodes[i].api_addr.clone();
        wait_for(&format!("node {} to be ready", i + 1), DEADLINE, || {
            let addr = addr.clone();
            async move { (http_get(&addr, "/ready").map(|r| r.0) == Some(200)).then_some(()) }
        })
        .await;
    }

    /// A gauge from a node's /metrics (`None` if the node does not answer).
    pub fn metric(&self, i: usize, name: &str) -> Option<i64> {
        metric(&self.nodes[i].api_addr, name)
    }

    /// Waits until the running nodes agree on one leader; returns its index.
    pub async fn wait_leader(&mut self) -> usize {
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|i| self.nodes[*i].is_running())
            .collect();
        let addrs: Vec<(usize, String)> = running
            .iter()
            .map(|i| (*i, self.nodes[*i].api_addr.clone()))
            .collect();
        let ids: Vec<u64> = self.nodes.iter().map(|n| n.id).collect();
        wait_for("a leader all running nodes agree on", DEADLINE, || {
            let addrs = addrs.clone();
            let ids = ids.clone();
            async move {
                let mut leader = None;
                for (_, a) in &addrs {
                    let l = metric(a, "arca_raft_leader")?;
                    if l < 0 || leader.is_some_and(|x| x != l) {
                        return None;
                    }
                    leader = Some(l);
                }
                let l = leader? as u64;
                let idx = ids.iter().position(|id| *id == l)?;
                // The leader must be one of the running nodes and say so itself.
                let (_, a) = addrs.iter().find(|(i, _)| *i == idx)?;
                (metric(a, "arca_raft_is_leader")? == 1).then_some(idx)
            }
        })
        .await
    }

    pub fn client(&self, i: usize) -> aws_sdk_kms::Client {
        client(
            &self.nodes[i].endpoint(),
            &self.creds.access_key_id,
            &self.creds.secret_access_key,
        )
    }

    /// Creates a symmetric key through node `i`; returns its id.
    pub async fn new_key(&self, i: usize) -> String {
        self.client(i)
            .create_key()
            .send()
            .await
            .expect("CreateKey")
            .key_metadata()
            .expect("KeyMetadata")
            .key_id()
            .to_string()
    }

    pub fn client_no_retry(&self, i: usize) -> aws_sdk_kms::Client {
        client_no_retry(
            &self.nodes[i].endpoint(),
            &self.creds.access_key_id,
            &self.creds.secret_access_key,
        )
    }

    pub fn restart(&mut self, i: usize) {
        self.nodes[i].kill();
        self.nodes[i].spawn();
    }

    pub fn start_node(&mut self, i: usize) {
        self.nodes[i].spawn();
    }

    /// Calls an `ArcaAdmin` operation on node `i` with the admin key.
    pub fn admin_call(&self, i: usize, op: &str, body: &Value) -> (u16, Value) {
        self.call(i, &format!("ArcaAdmin.{op}"), body)
    }

    /// Calls any operation (`TrentService.X`, `ArcaAdmin.X`) on node `i` with a
    /// signed raw request: for extension fields the SDK does not know.
    pub fn call(&self, i: usize, target: &str, body: &Value) -> (u16, Value) {
        self.call_as(i, target, body, None)
    }

    /// Like [`Cluster::call`], with the `amz-sdk-invocation-id` header an AWS
    /// SDK sends (the same on every retry of one call).
    pub fn call_as(
        &self,
        i: usize,
        target: &str,
        body: &Value,
        invocation_id: Option<&str>,
    ) -> (u16, Value) {
        let addr = &self.nodes[i].api_addr;
        let body = serde_json::to_vec(body).unwrap();
        let mut h = http::HeaderMap::new();
        if let Some(inv) = invocation_id {
            h.insert("amz-sdk-invocation-id", inv.parse().unwrap());
        }
        sign_into(
            &mut h,
            addr,
            target,
            &body,
            &self.creds.access_key_id,
            &self.creds.secret_access_key,
            unix_now(),
        );
        let (status, text) = http_post(addr, &h, &body).expect("answer");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Moves the clock of every running node forward by `ms`.
    pub fn advance_clock(&mut self, ms: u64) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_running() {
                let (status, v) =
                    self.admin_call(i, "AdvanceClock", &serde_json::json!({ "Millis": ms }));
                assert_eq!(status, 200, "AdvanceClock on node {}: {v}", i + 1);
            }
        }
    }

    /// SIGSTOP: the process freezes (no traffic in or out) until `resume`.
    pub fn pause(&mut self, i: usize) {
        self.nodes[i].signal("STOP");
    }

    /// SIGHUP: the node reopens its audit log and reloads its certificates.
    pub fn sighup(&mut self, i: usize) {
        self.nodes[i].signal("HUP");
    }

    /// SIGCONT after `pause`.
    pub fn resume(&mut self, i: usize) {
        self.nodes[i].signal("CONT");
    }

    /// Cuts node `i` off from the other nodes while it runs on and clients
    /// still reach it; needs `Options::netns`.
    pub fn partition(&self, i: usize) {
        self.net.as_ref().expect("a cluster with netns").cut(i);
    }

    /// Ends `partition`.
    pub fn heal(&self, i: usize) {
        self.net.as_ref().expect("a cluster with netns").heal(i);
    }
}

/// An SDK client for an endpoint.
pub fn client(endpoint: &str, access_key_id: &str, secret: &str) -> aws_sdk_kms::Client {
    client_with(endpoint, access_key_id, secret, true)
}

/// An SDK client that does not retry, to see each answer as it is.
pub fn client_no_retry(endpoint: &str, access_key_id: &str, secret: &str) -> aws_sdk_kms::Client {
    client_with(endpoint, access_key_id, secret, false)
}

fn client_with(
    endpoint: &str,
    access_key_id: &str,
    secret: &str,
    retry: bool,
) -> aws_sdk_kms::Client {
    client_in_region(endpoint, access_key_id, secret, retry, REGION)
}

/// An SDK client whose signatures are scoped to `region`.
pub fn client_in_region(
    endpoint: &str,
    access_key_id: &str,
    secret: &str,
    retry: bool,
    region: &str,
) -> aws_sdk_kms::Client {
    let retry = if retry {
        aws_sdk_kms::config::retry::RetryConfig::standard()
    } else {
        aws_sdk_kms::config::retry::RetryConfig::disabled()
    };
    let mut conf = aws_sdk_kms::Config::builder();
    if let Some(ca) = endpoint
        .strip_prefix("https://")
        .and_then(|a| tls_ca_for(a.trim_end_matches('/')))
    {
        conf = conf.http_client(https_client(&ca));
    }
    let conf = conf
        .retry_config(retry)
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new(
            access_key_id,
            secret,
            None,
            None,
            "arca-tests",
        ))
        .timeout_config(
            aws_sdk_kms::config::timeout::TimeoutConfig::builder()
                .operation_attempt_timeout(Duration::from_secs(20))
                .build(),
        )
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// The SDK's HTTP client (rustls with aws-lc-rs) trusting only the CA in `ca`.
pub fn https_client(ca: &Path) -> aws_sdk_kms::config::SharedHttpClient {
    use aws_smithy_http_client::tls;
    let pem = std::fs::read(ca).expect("the CA file");
    let context = tls::TlsContext::builder()
        .with_trust_store(tls::TrustStore::empty().with_pem_certificate(pem))
        .build()
        .expect("a TLS context");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(context)
        .build_https()
}

/// The AWS error code of an SDK error.
pub fn error_code<E, R>(e: &aws_sdk_kms::error::SdkError<E, R>) -> String
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    use aws_sdk_kms::error::ProvideErrorMetadata;
    e.code()
        .map(str::to_string)
        .unwrap_or_else(|| format!("no code: {e:?}"))
}

/// A plain HTTP/1.1 GET; returns status and body.
/// The ops bearer token this process's clusters require, if any (each test
/// runs in its own process).
static OPS_TOKEN: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let token = OPS_TOKEN.lock().unwrap().clone();
    http_get_with(addr, path, token.as_deref())
}

/// A GET of `path`, with `Authorization: Bearer <token>` if given.
pub fn http_get_with(addr: &str, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    http_raw(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"),
        b"",
    )
}

/// A plain HTTP/1.1 POST of `body` to `/` with `headers`; returns status and body.
pub fn http_post(addr: &str, headers: &http::HeaderMap, body: &[u8]) -> Option<(u16, String)> {
    let mut head = String::from("POST / HTTP/1.1\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{}: {}\r\n", k, v.to_str().ok()?));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    http_raw(addr, &head, body)
}

fn http_raw(addr: &str, head: &str, body: &[u8]) -> Option<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut out = Vec::new();
    if let Some(ca) = tls_ca_for(addr) {
        let config = std::sync::Arc::new(arca_node::tls::client_config(&ca).ok()?);
        let host = addr.rsplit_once(':')?.0.to_string();
        let name = rustls::pki_types::ServerName::try_from(host).ok()?;
        let conn = rustls::ClientConnection::new(config, name).ok()?;
        let mut tls = rustls::StreamOwned::new(conn, s);
        tls.write_all(head.as_bytes()).ok()?;
        tls.write_all(body).ok()?;
        match tls.read_to_end(&mut out) {
            Ok(_) => {}
            // The server closed without close_notify after answering.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !out.is_empty() => {}
            Err(_) => return None,
        }
    } else {
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        s.read_to_end(&mut out).ok()?;
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status: u16 = text.split(' ').nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

pub fn metric(addr: &str, name: &str) -> Option<i64> {
    let (status, body) = http_get(addr, "/metrics")?;
    if status != 200 {
        return None;
    }
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
}

/// A signed request like an SDK's, for cases the SDK cannot produce.
pub fn signed_headers(
    addr: &str,
    target: &str,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    unix_time: i64,
) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    sign_into(&mut h, addr, target, body, access_key_id, secret, unix_time);
    h
}

/// Adds the request headers to `h` (keeping those already there) and signs.
fn sign_into(
    h: &mut http::HeaderMap,
    addr: &str,
    target: &str,
    body: &[u8],
    access_key_id: &str,
    secret: &str,
    unix_time: i64,
) {
    h.insert("host", addr.parse().unwrap());
    h.insert(
        "content-type",
        "application/x-amz-json-1.1".parse().unwrap(),
    );
    h.insert("x-amz-target", target.parse().unwrap());
    arca_sigv4::sign(
        &http::Method::POST,
        "/",
        "",
        h,
        body,
        access_key_id,
        secret.as_bytes(),
        REGION,
        "kms",
        unix_time,
    );
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Every file below `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Whether `needle` occurs anywhere in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// RSA-OAEP-SHA-256 with OpenSSL under the import wrapping key, as AWS documents it.
pub fn oaep_sha256_encrypt(wrapping_spki: &[u8], plain: &[u8]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let (pk, inp, out) = (
        dir.path().join("wrapping.der"),
        dir.path().join("plain.bin"),
        dir.path().join("oaep.bin"),
    );
    std::fs::write(&pk, wrapping_spki).unwrap();
    std::fs::write(&inp, plain).unwrap();
    let (ok, err) = openssl(&[
        "pkeyutl",
        "-encrypt",
        "-pubin",
        "-inkey",
        pk.to_str().unwrap(),
        "-keyform",
        "DER",
        "-in",
        inp.to_str().unwrap(),
        "-out",
        out.to_str().unwrap(),
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
    ]);
    assert!(ok, "openssl: {err}");
    std::fs::read(&out).unwrap()
}

/// Imports `material` into the EXTERNAL key `key` by AWS's documented flow
/// (RSAES_OAEP_SHA_256 under an RSA-3072 wrapping key, wrapped by OpenSSL):
/// `Ok(())` or the error code.
pub async fn import_material(
    kms: &aws_sdk_kms::Client,
    key: &str,
    material: &[u8],
) -> Result<(), String> {
    let p = kms
        .get_parameters_for_import()
        .key_id(key)
        .wrapping_algorithm(aws_sdk_kms::types::AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(aws_sdk_kms::types::WrappingKeySpec::Rsa3072)
        .send()
        .await
        .unwrap();
    let encrypted = oaep_sha256_encrypt(p.public_key().unwrap().as_ref(), material);
    kms.import_key_material()
        .key_id(key)
        .import_token(p.import_token().unwrap().clone())
        .encrypted_key_material(aws_sdk_kms::primitives::Blob::new(encrypted))
        .expiration_model(aws_sdk_kms::types::ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| error_code(&e))
}

/// Runs the `openssl` CLI; returns whether it succeeded, and its stderr.
pub fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("the openssl command (scripts/test.sh checks for it)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs the `arca` CLI expecting nothing: its exit status, stdout and
/// stderr, for commands a test expects to fail.
pub fn try_cli(args: &[&str], creds: Option<&AdminCreds>) -> (bool, String, String) {
    let mut cmd = Command::new(arca_bin());
    cmd.args(args).env("AWS_REGION", REGION);
    if let Some(c) = creds {
        cmd.env("AWS_ACCESS_KEY_ID", &c.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &c.secret_access_key);
    }
    let out = cmd.output().expect("run arca cli");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Cluster {
    /// Starts a new cluster from a backup: node 1's data directory is seeded
    /// with `arca restore` under the root key in `root_key_file` (copied),
    /// then `n - 1` nodes are added as usual. The admin key is the backed-up
    /// cluster's (`creds`).
    pub async fn restore_from(
        backup: &Path,
        root_key_file: &Path,
        creds: &AdminCreds,
        n: usize,
        opts: Options,
    ) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().join("root.key");
        std::fs::copy(root_key_file, &root).expect("copy the root key");
        let secret_file = dir.path().join("cluster.secret");
        run_cli(
            &["cluster-secret", "--out", secret_file.to_str().unwrap()],
            None,
        );
        let mut c = Cluster {
            dir,
            nodes: Vec::new(),
            net: None,
            creds: AdminCreds {
                access_key_id: creds.access_key_id.clone(),
                secret_access_key: creds.secret_access_key.clone(),
            },
            root_key_file: root,
            secret_file,
            tls_dir: None,
            opts,
        };
        let i = c.new_node();
        let config = c.nodes[i].config.display().to_string();
        run_cli(
            &["restore", backup.to_str().unwrap(), "--config", &config],
            None,
        );
        c.nodes[i].spawn();
        c.wait_ready(i).await;
        for _ in 1..n {
            c.add_node().await;
        }
        for i in 0..n {
            c.wait_ready(i).await;
        }
        c
    }
}
