//! Server configuration: a TOML file, overridden by flags and environment.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The configuration file's shape. Every field may also come from a flag or an
/// `ARCA_*` environment variable (see `arca server --help`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub node_id: Option<u64>,
    /// The client API listen address (AWS KMS JSON, health, metrics).
    pub listen_addr: Option<String>,
    /// The API address other nodes and clients are told (default: listen_addr).
    pub advertise_addr: Option<String>,
    /// The peer (Raft) address: listened on and advertised.
    pub peer_addr: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub root_key_file: Option<PathBuf>,
    /// Further root key files (after `root_key_file`): during a root-key
    /// rotation a node holds the old and the new key.
    #[serde(default)]
    pub root_key_files: Vec<PathBuf>,
    pub cluster_secret_file: Option<PathBuf>,
    /// Further cluster secrets accepted from peers, never signed with: during
    /// a cluster-secret rotation (docs/runbooks/certificates.md).
    #[serde(default)]
    pub cluster_secret_accept_files: Vec<PathBuf>,
    /// The audit log file (default: <data_dir>/audit.jsonl).
    pub audit_log: Option<PathBuf>,
    pub log: Option<String>,
    /// `text` (default) or `json`: one JSON object per line, for log shippers.
    pub log_format: Option<LogFormat>,
    /// The API port's certificate (PEM, chain allowed) and key: HTTPS.
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Require API clients to present a certificate of this CA (mutual TLS).
    pub tls_client_ca_file: Option<PathBuf>,
    /// The cluster CA and this node's certificate and key: mutual TLS on the
    /// peer port (`arca tls ca`, `arca tls node`).
    pub peer_tls_ca_file: Option<PathBuf>,
    pub peer_tls_cert_file: Option<PathBuf>,
    pub peer_tls_key_file: Option<PathBuf>,
    /// Serve a port without TLS configured as plain HTTP. Without it a node
    /// refuses to start unless both ports have TLS.
    #[serde(default)]
    pub allow_insecure_http: bool,
    #[serde(default)]
    pub api: ApiSection,
    #[serde(default)]
    pub raft: RaftSection,
    #[serde(default)]
    pub actors: ActorSection,
    #[serde(default)]
    pub consistency: ConsistencySection,
    #[serde(default)]
    pub scheduler: SchedulerSection,
    #[serde(default)]
    pub testing: TestingSection,
    #[serde(default)]
    pub keys: KeysSection,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub audit: AuditSection,
    #[serde(default)]
    pub root_keys: RootKeysSection,
    #[serde(default)]
    pub storage: StorageSection,
}

/// How the leader paces a root-key rotation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootKeysSection {
    /// Secrets re-wrapped per Raft entry (default 100, at most 1000).
    pub rewrap_batch: Option<usize>,
    /// Pause between two re-wrap entries (default 0).
    pub rewrap_interval_ms: Option<u64>,
}

/// How log lines are written to stderr.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (colour only on a terminal).
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, the
    /// event's other fields, `target` and the enclosing spans.
    Json,
}

/// How the API port treats what clients send.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// Accept SigV4 signatures scoped to any region, not only the
    /// cluster's (for clients that cannot be configured with it).
    pub accept_any_region: Option<bool>,
    /// A file holding a bearer token that `/metrics` and `/ready` then
    /// require (`Authorization: Bearer <token>`); `/health` stays open.
    pub ops_token_file: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// `fail-closed` (default): a request whose record cannot be written
    /// fails with 503. `best-effort`: it goes on; the record is dropped and
    /// counted.
    pub mode: Option<arca_gateway::audit::AuditMode>,
    /// Rotate the file once it is this large (default 100 MiB; 0: never).
    pub max_file_bytes: Option<u64>,
    /// New records are sealed by a signed checkpoint at most this much later
    /// (default 1000).
    pub checkpoint_interval_ms: Option<u64>,
}

/// Bounds on what clients and peers can hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Open API connections at most (more are closed at once).
    pub max_connections: Option<usize>,
    /// Time to receive a request's headers; also how long an idle kept-alive
    /// API connection stays open.
    pub header_timeout_ms: Option<u64>,
    /// Time to receive a request's body.
    pub body_timeout_ms: Option<u64>,
    /// Open peer connections at most.
    pub peer_max_connections: Option<usize>,
    /// RSA and SM2 private-key operations and RSA key generations in flight
    /// at most; more get ThrottlingException.
    pub heavy_crypto: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysSection {
    /// Pre-generated RSA keys kept per size (RSA_2048, RSA_3072, RSA_4096).
    pub rsa_pool: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencySection {
    /// A node cut off from the leader this long stops serving crypto requests.
    pub stale_bound_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulerSection {
    /// How often the leader looks for due deletions and rotations.
    pub interval_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestingSection {
    /// Allow `ArcaAdmin.AdvanceClock`. For tests only: never in production.
    #[serde(default)]
    pub adjustable_clock: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftSection {
    pub heartbeat_ms: Option<u64>,
    pub election_min_ms: Option<u64>,
    pub election_max_ms: Option<u64>,
    pub snapshot_every: Option<u64>,
    pub keep_after_snapshot: Option<u64>,
    pub write_timeout_ms: Option<u64>,
    pub write_batch: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// The data file's page cache in MiB (default 64). The state is held in
    /// memory; this caches the file's pages a write or the log's tail needs.
    pub cache_mib: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActorSection {
    pub mailbox: Option<usize>,
    pub idle_secs: Option<u64>,
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
    }
}

/// The longest secret file read (a root key is 65 bytes, a cluster secret
/// about as long); anything larger is not one.
const MAX_SECRET_FILE: u64 = 64 * 1024;

/// Reads a secret file (root key, cluster secret) into a buffer that is wiped
/// when dropped. Refuses a file that group or others may read or write, with
/// an error that names it and says how to fix it: such a secret may already
/// have been copied, so the operator decides, rather than Arca quietly
/// tightening it. The mode is checked on the open file, so it is the mode of
/// the file read.
pub fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let cannot_read = || format!("cannot read the {what} file {}", path.display());
    let f = std::fs::File::open(path).with_context(cannot_read)?;
    let meta = f.metadata().with_context(cannot_read)?;
    check_secret_mode(path, what, &meta)?;
    if meta.len() > MAX_SECRET_FILE {
        bail!(
            "the {what} file {} is {} bytes long; a {what} file is at most {MAX_SECRET_FILE}",
            path.display(),
            meta.len()
        );
    }
    // Sized up front (one spare byte to see the end), so reading never
    // reallocates and leaves an unwiped copy behind.
    let cap = usize::try_from(meta.len()).unwrap_or(0) + 1;
    let mut buf = Zeroizing::new(Vec::with_capacity(cap));
    f.take(MAX_SECRET_FILE + 1)
        .read_to_end(&mut buf)
        .with_context(cannot_read)?;
    if buf.len() as u64 > MAX_SECRET_FILE {
        bail!(
            "the {what} file {} is longer than {MAX_SECRET_FILE} bytes",
            path.display()
        );
    }
    Ok(buf)
}

/// A secret file must be accessible to its owner only.
fn check_secret_mode(path: &Path, what: &str, meta: &std::fs::Metadata) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        let access = if mode & 0o044 != 0 {
            "readable"
        } else if mode & 0o033 != 0 {
            "writable"
        } else {
            return Ok(());
        };
        bail!(
            "the {what} file {p} is {access} by group or others (mode {mode:04o}); \
             it must be accessible to its owner only. Run: chmod 600 {p}",
            p = path.display(),
        );
    }
    #[cfg(not(unix))]
    {
        let _ = (path, what, meta);
        Ok(())
    }
}

/// Tightens an existing regular file that group or others may access to
/// 0600, with a warning that names it. A missing file is left to be created
/// (0600) by its writer; a device (`/dev/stdout`) is left alone.
pub fn tighten_file(path: &Path, what: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = match std::fs::metadata(path) {
            Ok(m) if m.is_file() => m,
            _ => return Ok(()),
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700))
                .with_context(|| {
                    format!(
                        "the {what} {} is open to group or others (mode {mode:04o}) and cannot be made owner-only; run: chmod 600 {}",
                        path.display(),
                        path.display()
                    )
                })?;
            tracing::warn!(
                path = %path.display(),
                was = format_args!("{mode:04o}"),
                now = format_args!("{:04o}", mode & 0o700),
                "the {what} was open to group or others; its mode is now owner-only"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what);
    Ok(())
}

/// Writes a secret file with mode 0600; refuses to overwrite.
pub fn write_secret_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// The TLS of both ports as configured, checked for missing halves.
pub struct TlsSettings {
    pub api: Option<arca_node::tls::ApiTlsFiles>,
    pub peer: Option<arca_node::tls::PeerTlsFiles>,
}

impl FileConfig {
    /// The TLS settings; an error for a half-configured port, and for a port
    /// without TLS unless `allow_insecure_http` (or `plain_ok`, `--dev`).
    pub fn tls(&self, plain_ok: bool) -> anyhow::Result<TlsSettings> {
        let api = match (&self.tls_cert_file, &self.tls_key_file) {
            (Some(cert), Some(key)) => Some(arca_node::tls::ApiTlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca_file.clone(),
            }),
            (None, None) if self.tls_client_ca_file.is_some() => {
                bail!("tls_client_ca_file needs tls_cert_file and tls_key_file")
            }
            (None, None) => None,
            _ => bail!("set both tls_cert_file and tls_key_file, or neither"),
        };
        let peer = match (
            &self.peer_tls_ca_file,
            &self.peer_tls_cert_file,
            &self.peer_tls_key_file,
        ) {
            (Some(ca), Some(cert), Some(key)) => Some(arca_node::tls::PeerTlsFiles {
                ca: ca.clone(),
                cert: cert.clone(),
                key: key.clone(),
            }),
            (None, None, None) => None,
            _ => bail!(
                "set all of peer_tls_ca_file, peer_tls_cert_file and peer_tls_key_file, or none"
            ),
        };
        if !plain_ok && !self.allow_insecure_http {
            if api.is_none() {
                bail!(
                    "the API port has no TLS: set tls_cert_file and tls_key_file (see `arca tls`), \
                     or allow_insecure_http = true to serve plain HTTP"
                );
            }
            if peer.is_none() {
                bail!(
                    "the peer port has no TLS: set peer_tls_ca_file, peer_tls_cert_file and peer_tls_key_file \
                     (see `arca tls ca` and `arca tls node`), or allow_insecure_http = true to serve plain HTTP"
                );
            }
        }
        Ok(TlsSettings { api, peer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> FileConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn a_port_without_tls_needs_allow_insecure_http() {
        let e = parse("").tls(false).err().unwrap().to_string();
        assert!(e.contains("allow_insecure_http"), "{e}");
        let plain = parse("allow_insecure_http = true").tls(false).unwrap();
        assert!(plain.api.is_none() && plain.peer.is_none());
        // --dev serves plain HTTP without it.
        assert!(parse("").tls(true).is_ok());
        let api_only = parse("tls_cert_file = \"c\"\ntls_key_file = \"k\"");
        let e = api_only.tls(false).err().unwrap().to_string();
        assert!(e.contains("the peer port has no TLS"), "{e}");
        let both = parse(
            "tls_cert_file = \"c\"\ntls_key_file = \"k\"\npeer_tls_ca_file = \"a\"\n\
             peer_tls_cert_file = \"b\"\npeer_tls_key_file = \"d\"",
        );
        let t = both.tls(false).unwrap();
        assert!(t.api.is_some() && t.peer.is_some());
    }

    #[test]
    fn half_a_tls_configuration_is_refused() {
        let e = parse("tls_cert_file = \"c\"")
            .tls(true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("both tls_cert_file and tls_key_file"), "{e}");
        let e = parse("peer_tls_ca_file = \"c\"")
            .tls(true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("peer_tls_cert_file"), "{e}");
        let e = parse("tls_client_ca_file = \"c\"")
            .tls(true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("tls_client_ca_file needs"), "{e}");
    }
}

#[cfg(all(test, unix))]
mod secret_file_tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file_with_mode(dir: &Path, name: &str, contents: &[u8], mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, contents).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn an_owner_only_secret_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        for mode in [0o600, 0o400] {
            let p = file_with_mode(dir.path(), &format!("k{mode:o}"), b"abc\n", mode);
            assert_eq!(&read_secret_file(&p, "root key").unwrap()[..], b"abc\n");
        }
    }

    #[test]
    fn a_secret_file_others_can_access_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        for (mode, access) in [
            (0o644, "readable"),
            (0o640, "readable"),
            (0o604, "readable"),
            (0o620, "writable"),
            (0o602, "writable"),
            (0o610, "writable"),
        ] {
            let p = file_with_mode(dir.path(), &format!("root-{mode:o}.key"), b"k", mode);
            let err = read_secret_file(&p, "root key").unwrap_err().to_string();
            let path = p.display();
            assert!(
                err.contains(&format!(
                    "the root key file {path} is {access} by group or others (mode {mode:04o})"
                )),
                "{err}"
            );
            assert!(err.ends_with(&format!("Run: chmod 600 {path}")), "{err}");
            // And once fixed, it is read.
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert!(read_secret_file(&p, "root key").is_ok());
        }
    }

    #[test]
    fn a_missing_or_oversized_secret_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent");
        let err = read_secret_file(&missing, "cluster secret").unwrap_err();
        assert!(err
            .to_string()
            .contains("cannot read the cluster secret file"));
        let big = vec![b'a'; MAX_SECRET_FILE as usize + 1];
        let p = file_with_mode(dir.path(), "big", &big, 0o600);
        let err = read_secret_file(&p, "cluster secret").unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn written_secret_files_are_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("root.key");
        write_secret_file(&p, b"one").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_secret_file(&p, b"two").is_err());
        assert_eq!(&read_secret_file(&p, "root key").unwrap()[..], b"one");
    }

    #[test]
    fn tighten_file_makes_an_open_file_owner_only_and_leaves_others() {
        let dir = tempfile::tempdir().unwrap();
        let p = file_with_mode(dir.path(), "audit.jsonl", b"{}\n", 0o644);
        tighten_file(&p, "audit log").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Missing: nothing to do (its writer creates it 0600).
        tighten_file(&dir.path().join("absent"), "audit log").unwrap();
        assert!(!dir.path().join("absent").exists());
    }
}
