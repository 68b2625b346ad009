//! `arca tls`: a cluster CA, node certificates for mutual TLS between nodes,
//! and API server certificates; the development certificates of
//! `arca server --dev --dev-tls`; reloading certificates on SIGHUP.
//!
//! Keys are ECDSA P-256, written mode 0600. A node certificate carries the
//! URI SANs `arca-node:<id>` and `arca-peer:<host>:<port>` that the peer port
//! checks (see `arca-node/src/tls.rs`), and `host` as an IP or DNS SAN.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use arca_node::tls::{ApiTls, PeerTls, NODE_URI_PREFIX, PEER_URI_PREFIX};
use clap::Subcommand;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};

use crate::config::write_secret_file;

/// File names in a CA directory (`arca tls ca --out DIR`).
pub const CA_CERT: &str = "ca.pem";
pub const CA_KEY: &str = "ca.key";

#[derive(Subcommand)]
pub enum TlsCmd {
    /// Create a CA (DIR/ca.pem, DIR/ca.key) for a cluster's node certificates
    /// or for API server certificates.
    Ca {
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 3650)]
        days: u32,
    },
    /// Issue a node certificate for mutual TLS on the peer port:
    /// DIR/node-N.pem and DIR/node-N.key, and a copy of the CA's ca.pem.
    Node {
        /// The CA directory (from `arca tls ca`).
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        node_id: u64,
        /// The node's peer address exactly as configured (`peer_addr`).
        #[arg(long)]
        addr: String,
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
    /// Issue an API server certificate: DIR/server.pem and DIR/server.key.
    Server {
        /// The CA directory (from `arca tls ca`).
        #[arg(long)]
        ca: PathBuf,
        /// A host name or IP address clients use (repeat for several).
        #[arg(long = "name", required = true)]
        names: Vec<String>,
        #[arg(long)]
        out: PathBuf,
        /// Validity in days.
        #[arg(long, default_value_t = 365)]
        days: u32,
    },
}

pub fn run(c: TlsCmd) -> anyhow::Result<()> {
    match c {
        TlsCmd::Ca { out, days } => {
            create_dir(&out)?;
            let (cert, key) = (out.join(CA_CERT), out.join(CA_KEY));
            refuse_existing(&[&cert, &key])?;
            make_ca(&cert, &key, days)?;
            println!("CA certificate: {}", cert.display());
            println!("CA key:         {} (keep it offline)", key.display());
        }
        TlsCmd::Node {
            ca,
            node_id,
            addr,
            out,
            days,
        } => {
            let (host, port) = split_addr(&addr)?;
            create_dir(&out)?;
            let cert = out.join(format!("node-{node_id}.pem"));
            let key = out.join(format!("node-{node_id}.key"));
            refuse_existing(&[&cert, &key])?;
            let mut sans = vec![host_san(host)?];
            sans.push(uri_san(&format!("{NODE_URI_PREFIX}{node_id}"))?);
            sans.push(uri_san(&format!("{PEER_URI_PREFIX}{host}:{port}"))?);
            issue(
                &ca,
                &format!("arca node {node_id}"),
                sans,
                &[
                    ExtendedKeyUsagePurpose::ServerAuth,
                    ExtendedKeyUsagePurpose::ClientAuth,
                ],
                days,
                &cert,
                &key,
            )?;
            let ca_copy = copy_ca(&ca, &out)?;
            println!("node {node_id} certificate: {}", cert.display());
            println!("node {node_id} key:         {}", key.display());
            println!("In node {node_id}'s configuration:");
            println!("  peer_tls_ca_file   = \"{}\"", ca_copy.display());
            println!("  peer_tls_cert_file = \"{}\"", cert.display());
            println!("  peer_tls_key_file  = \"{}\"", key.display());
        }
        TlsCmd::Server {
            ca,
            names,
            out,
            days,
        } => {
            create_dir(&out)?;
            let (cert, key) = (out.join("server.pem"), out.join("server.key"));
            refuse_existing(&[&cert, &key])?;
            let sans = names
                .iter()
                .map(|n| host_san(n))
                .collect::<anyhow::Result<Vec<_>>>()?;
            issue(
                &ca,
                &names[0],
                sans,
                &[ExtendedKeyUsagePurpose::ServerAuth],
                days,
                &cert,
                &key,
            )?;
            let ca_copy = copy_ca(&ca, &out)?;
            println!("server certificate: {}", cert.display());
            println!("server key:         {}", key.display());
            println!("In the configuration:");
            println!("  tls_cert_file = \"{}\"", cert.display());
            println!("  tls_key_file  = \"{}\"", key.display());
            println!("Clients trust {} (e.g. AWS_CA_BUNDLE)", ca_copy.display());
        }
    }
    Ok(())
}

/// The development TLS files of `arca server --dev --dev-tls`, created in
/// `dir` on first use: a CA and a server certificate for 127.0.0.1 and
/// localhost. Returns (CA certificate, server certificate, server key).
pub fn dev_tls(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let ca = dir.join(CA_CERT);
    let cert = dir.join("server.pem");
    let key = dir.join("server.key");
    if ca.exists() && cert.exists() && key.exists() {
        return Ok((ca, cert, key));
    }
    create_dir(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {} to its owner", dir.display()))?;
    }
    for f in [&ca, &dir.join(CA_KEY), &cert, &key] {
        if f.exists() {
            std::fs::remove_file(f).with_context(|| format!("cannot remove {}", f.display()))?;
        }
    }
    make_ca(&ca, &dir.join(CA_KEY), 3650)?;
    let sans = vec![host_san("127.0.0.1")?, host_san("localhost")?];
    issue(
        dir,
        "localhost",
        sans,
        &[ExtendedKeyUsagePurpose::ServerAuth],
        825,
        &cert,
        &key,
    )?;
    Ok((ca, cert, key))
}

/// From now on, SIGHUP also reloads the TLS certificates: new connections
/// use the new ones, open connections go on. A certificate that does not
/// load is reported and the old one kept.
#[cfg(unix)]
pub fn reload_on_sighup(
    api: Option<Arc<ApiTls>>,
    peer: Option<Arc<PeerTls>>,
) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    if api.is_none() && peer.is_none() {
        return Ok(());
    }
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if let Some(t) = &api {
                match t.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %t.files().cert.display(), "SIGHUP: API certificate reloaded")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SIGHUP: API certificate NOT reloaded; the old one stays in use")
                    }
                }
            }
            if let Some(t) = &peer {
                match t.reload() {
                    Ok(()) => {
                        tracing::info!(cert = %t.files().cert.display(), "SIGHUP: peer certificate reloaded")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "SIGHUP: peer certificate NOT reloaded; the old one stays in use")
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(not(unix))]
pub fn reload_on_sighup(_: Option<Arc<ApiTls>>, _: Option<Arc<PeerTls>>) -> anyhow::Result<()> {
    Ok(())
}

fn create_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))
}

fn refuse_existing(files: &[&Path]) -> anyhow::Result<()> {
    for f in files {
        if f.exists() {
            bail!("{} exists; not overwriting it", f.display());
        }
    }
    Ok(())
}

fn split_addr(addr: &str) -> anyhow::Result<(&str, u16)> {
    let (host, port) = addr
        .rsplit_once(':')
        .with_context(|| format!("--addr {addr:?} must be HOST:PORT"))?;
    let port = port
        .parse()
        .with_context(|| format!("--addr {addr:?}: bad port"))?;
    if host.is_empty() {
        bail!("--addr {addr:?} has no host");
    }
    Ok((host, port))
}

fn host_san(host: &str) -> anyhow::Result<SanType> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    Ok(match bare.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            bare.try_into()
                .with_context(|| format!("{host:?} is not a host name"))?,
        ),
    })
}

fn uri_san(uri: &str) -> anyhow::Result<SanType> {
    Ok(SanType::URI(
        uri.try_into()
            .with_context(|| format!("{uri:?} is not a URI"))?,
    ))
}

/// Valid from a day ago (clocks differ) for `days` days.
fn validity(params: &mut CertificateParams, days: u32) {
    let today = arca_node::network::unix_now().div_euclid(86_400);
    let date = |d: i64| {
        let (y, m, d) = crate::audit_cmd::civil_from_days(d);
        rcgen::date_time_ymd(y as i32, m as u8, d as u8)
    };
    params.not_before = date(today - 1);
    params.not_after = date(today + i64::from(days.max(1)));
}

fn serial() -> anyhow::Result<SerialNumber> {
    let mut b = arca_crypto::random::bytes16()?;
    b[0] &= 0x7f;
    b[0] |= 0x01;
    Ok(SerialNumber::from_slice(&b))
}

fn make_ca(cert: &Path, key: &Path, days: u32) -> anyhow::Result<()> {
    let kp = KeyPair::generate().context("cannot generate a key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    // A distinct name per CA: chain building matches issuers by name.
    let tag: String = arca_crypto::random::bytes16()?[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    dn.push(DnType::CommonName, format!("Arca CA {tag}"));
    dn.push(DnType::OrganizationName, "Arca");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.serial_number = Some(serial()?);
    validity(&mut params, days);
    let c = params
        .self_signed(&kp)
        .context("cannot sign the CA certificate")?;
    write_secret_file(key, kp.serialize_pem().as_bytes())?;
    write_public_file(cert, c.pem().as_bytes())
}

fn issue(
    ca_dir: &Path,
    common_name: &str,
    sans: Vec<SanType>,
    eku: &[ExtendedKeyUsagePurpose],
    days: u32,
    cert: &Path,
    key: &Path,
) -> anyhow::Result<()> {
    let ca_cert = ca_dir.join(CA_CERT);
    let ca_key = ca_dir.join(CA_KEY);
    let ca_pem = std::fs::read_to_string(&ca_cert)
        .with_context(|| format!("cannot read the CA certificate {}", ca_cert.display()))?;
    let ca_key_bytes = crate::config::read_secret_file(&ca_key, "CA key")?;
    let ca_key_pem = zeroize::Zeroizing::new(
        std::str::from_utf8(&ca_key_bytes)
            .with_context(|| format!("the CA key {} is not PEM", ca_key.display()))?
            .to_string(),
    );
    let ca_kp = KeyPair::from_pem(&ca_key_pem)
        .with_context(|| format!("the CA key {} is not a usable PEM key", ca_key.display()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_kp)
        .with_context(|| format!("{} is not a usable CA certificate", ca_cert.display()))?;
    let kp = KeyPair::generate().context("cannot generate a key")?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = eku.to_vec();
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(serial()?);
    validity(&mut params, days);
    let c = params
        .signed_by(&kp, &issuer)
        .context("cannot sign the certificate")?;
    write_secret_file(key, kp.serialize_pem().as_bytes())?;
    write_public_file(cert, c.pem().as_bytes())
}

/// Copies the CA certificate into `out` (unless it is there already);
/// returns its path there.
fn copy_ca(ca_dir: &Path, out: &Path) -> anyhow::Result<PathBuf> {
    let from = ca_dir.join(CA_CERT);
    let to = out.join(CA_CERT);
    let pem = std::fs::read(&from).with_context(|| format!("cannot read {}", from.display()))?;
    match std::fs::read(&to) {
        Ok(existing) if existing == pem => {}
        Ok(_) => bail!(
            "{} exists and is another CA's certificate; not overwriting it",
            to.display()
        ),
        Err(_) => write_public_file(&to, &pem)?,
    }
    Ok(to)
}

fn write_public_file(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}
