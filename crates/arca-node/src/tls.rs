//! TLS for both ports: rustls with the aws-lc-rs provider, TLS 1.2 and 1.3
//! only.
//!
//! - **API port** ([`ApiTls`]): a server certificate, and optionally a client
//!   CA for mutual TLS.
//! - **Peer port** ([`PeerTls`]): mutual TLS under the cluster CA. Every node
//!   certificate names its node as a URI SAN `arca-node:<id>` and its peer
//!   address as `arca-peer:<host>:<port>` (plus `host` as an IP or DNS SAN);
//!   `arca tls node` writes them. A node accepts a peer connection only with
//!   a certificate of the cluster CA, and a request on it only if the node
//!   the request says it comes from ([`FROM_HEADER`]) is the certificate's.
//!   A node connecting out verifies the target's certificate against the
//!   cluster CA, that it was issued for the address dialled, and — when the
//!   address belongs to a known member — that it names that member's id.
//!
//! Both reload from their files on [`ApiTls::reload`] / [`PeerTls::reload`]
//! (SIGHUP): new connections use the new certificates, open ones go on with
//! the old. A file that does not load keeps the previous configuration.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::types::NodeId;

/// URI SAN prefix of a node certificate's node id: `arca-node:3`.
pub const NODE_URI_PREFIX: &str = "arca-node:";
/// URI SAN prefix of a node certificate's peer address: `arca-peer:10.0.0.3:7701`.
pub const PEER_URI_PREFIX: &str = "arca-peer:";
/// The header in which a peer request names the node it comes from.
pub const FROM_HEADER: &str = "x-arca-peer-from";

/// A TLS file that cannot be used, and why. The message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {msg}", path.display())]
pub struct TlsError {
    pub path: PathBuf,
    pub msg: String,
}

fn err(path: &Path, msg: impl Into<String>) -> TlsError {
    TlsError {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

/// rustls with aws-lc-rs, the crypto backend used everywhere else.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// TLS 1.3 and 1.2; nothing older.
pub static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| err(path, format!("cannot read: {e}")))
}

/// The certificates of a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(path, format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(err(
            path,
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

/// The private key of a PEM file, which must not be readable by group or
/// others.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(err(
                path,
                format!(
                    "the TLS key is readable by group or others (mode {:o}); run: chmod 600 {}",
                    mode & 0o777,
                    path.display()
                ),
            ));
        }
    }
    let pem = zeroize::Zeroizing::new(read(path)?);
    PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| err(path, format!("holds no PEM private key: {e}")))
}

/// A CA file as a root store.
pub fn load_roots(path: &Path) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for c in load_certs(path)? {
        roots
            .add(c)
            .map_err(|e| err(path, format!("not a usable CA certificate: {e}")))?;
    }
    Ok(Arc::new(roots))
}

fn key_mismatch(cert: &Path, key: &Path, e: rustls::Error) -> TlsError {
    err(
        cert,
        format!(
            "cannot be used with the key {}: {e} (is it the key of this certificate?)",
            key.display()
        ),
    )
}

/// The API port's TLS files.
#[derive(Debug, Clone)]
pub struct ApiTlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates issued by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// The peer port's TLS files: the cluster CA and this node's certificate.
#[derive(Debug, Clone)]
pub struct PeerTlsFiles {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<ServerConfig, TlsError> {
    let certs = load_certs(cert)?;
    let k = load_key(key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| err(cert, e.to_string()))?;
    let mut config = match client_ca {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(load_roots(ca)?, provider())
                .build()
                .map_err(|e| err(ca, format!("not a usable client CA: {e}")))?;
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(certs, k)
        }
        None => builder.with_no_client_auth().with_single_cert(certs, k),
    }
    .map_err(|e| key_mismatch(cert, key, e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// The API port's TLS configuration, reloadable.
pub struct ApiTls {
    files: ApiTlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl ApiTls {
    pub fn load(files: ApiTlsFiles) -> Result<Arc<Self>, TlsError> {
        let config = server_config(&files.cert, &files.key, files.client_ca.as_deref())?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(Arc::new(config)),
        }))
    }

    /// Reads the files again; on success new connections use them.
    pub fn reload(&self) -> Result<(), TlsError> {
        let f = &self.files;
        let config = server_config(&f.cert, &f.key, f.client_ca.as_deref())?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(config);
        Ok(())
    }

    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn files(&self) -> &ApiTlsFiles {
        &self.files
    }
}

/// The peer port's mutual TLS under the cluster CA, reloadable.
pub struct PeerTls {
    files: PeerTlsFiles,
    server: RwLock<Arc<ServerConfig>>,
    client: RwLock<Arc<ClientConfig>>,
    /// The node id in this node's own certificate.
    own_id: RwLock<Option<NodeId>>,
}

fn peer_configs(f: &PeerTlsFiles) -> Result<(ServerConfig, ClientConfig, CertIdentity), TlsError> {
    let server = server_config(&f.cert, &f.key, Some(&f.ca))?;
    let roots = load_roots(&f.ca)?;
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| err(&f.ca, format!("not a usable CA: {e}")))?;
    let certs = load_certs(&f.cert)?;
    let identity = cert_identity(&certs[0]).map_err(|m| err(&f.cert, m))?;
    let client = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| err(&f.cert, e.to_string()))?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(certs, load_key(&f.key)?)
        .map_err(|e| key_mismatch(&f.cert, &f.key, e))?;
    Ok((server, client, identity))
}

impl PeerTls {
    pub fn load(files: PeerTlsFiles) -> Result<Arc<Self>, TlsError> {
        let (server, client, identity) = peer_configs(&files)?;
        Ok(Arc::new(Self {
            files,
            server: RwLock::new(Arc::new(server)),
            client: RwLock::new(Arc::new(client)),
            own_id: RwLock::new(identity.node_id),
        }))
    }

    /// Reads the files again; on success new connections (in and out) use
    /// them.
    pub fn reload(&self) -> Result<(), TlsError> {
        let (server, client, identity) = peer_configs(&self.files)?;
        *self.server.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(server);
        *self.client.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(client);
        *self.own_id.write().unwrap_or_else(|p| p.into_inner()) = identity.node_id;
        Ok(())
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The node id this node's certificate names, if any.
    pub fn own_node_id(&self) -> Option<NodeId> {
        *self.own_id.read().unwrap_or_else(|p| p.into_inner())
    }

    pub fn files(&self) -> &PeerTlsFiles {
        &self.files
    }
}

/// What a node certificate says about its holder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertIdentity {
    /// From the URI SAN `arca-node:<id>`.
    pub node_id: Option<NodeId>,
    /// From the URI SAN `arca-peer:<host>:<port>`.
    pub peer_addr: Option<String>,
}

/// Reads the Arca URI SANs of a certificate. More than one node id or peer
/// address is an error.
pub fn cert_identity(der: &[u8]) -> Result<CertIdentity, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let mut id = CertIdentity::default();
    let san = cert
        .subject_alternative_name()
        .map_err(|e| format!("bad subjectAltName: {e}"))?;
    for name in san.iter().flat_map(|s| s.value.general_names.iter()) {
        let x509_parser::extensions::GeneralName::URI(uri) = name else {
            continue;
        };
        if let Some(n) = uri.strip_prefix(NODE_URI_PREFIX) {
            let n: NodeId = n
                .parse()
                .map_err(|_| format!("bad node id in the URI SAN {uri:?}"))?;
            if id.node_id.replace(n).is_some() {
                return Err("the certificate names more than one node id".into());
            }
        } else if let Some(a) = uri.strip_prefix(PEER_URI_PREFIX) {
            if id.peer_addr.replace(a.to_string()).is_some() {
                return Err("the certificate names more than one peer address".into());
            }
        }
    }
    Ok(id)
}

/// A connection, plain or TLS (either side).
pub enum MaybeTls {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::TlsStream<TcpStream>>),
}

impl AsyncRead for MaybeTls {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for MaybeTls {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// Completes the server side of an accepted connection: with `config`, a TLS
/// handshake within `timeout`, returning the client certificate's identity
/// if it sent one; without, the plain stream.
pub async fn accept(
    config: Option<Arc<ServerConfig>>,
    tcp: TcpStream,
    timeout: Duration,
) -> io::Result<(MaybeTls, Option<CertIdentity>)> {
    let Some(config) = config else {
        return Ok((MaybeTls::Plain(tcp), None));
    };
    let hs = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
    let stream = tokio::time::timeout(timeout, hs)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out"))??;
    let identity = match stream.get_ref().1.peer_certificates() {
        Some([leaf, ..]) => Some(cert_identity(leaf).map_err(io::Error::other)?),
        _ => None,
    };
    Ok((
        MaybeTls::Tls(Box::new(tokio_rustls::TlsStream::Server(stream))),
        identity,
    ))
}

/// Checks, on the peer port, that a request comes from the node its
/// certificate names. `client` is the verified client certificate's
/// identity (`None` on a plain connection: nothing to check). A request that
/// names no node is allowed only where `anonymous_ok` (cluster bootstrap,
/// sent by the `arca` CLI with a cluster certificate).
pub fn check_sender(
    client: Option<&CertIdentity>,
    headers: &http::HeaderMap,
    anonymous_ok: bool,
) -> Result<(), String> {
    let Some(cert) = client else {
        return Ok(());
    };
    let claimed = match headers.get(FROM_HEADER) {
        None if anonymous_ok => return Ok(()),
        None => return Err(format!("peer request without {FROM_HEADER}")),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.parse::<NodeId>().ok())
            .ok_or_else(|| format!("malformed {FROM_HEADER}"))?,
    };
    match cert.node_id {
        Some(id) if id == claimed => Ok(()),
        Some(id) => Err(format!(
            "the request says it comes from node {claimed}, its certificate is node {id}'s"
        )),
        None => Err(format!(
            "the request says it comes from node {claimed}; its certificate names no node"
        )),
    }
}

/// Addresses of known members and their node ids: an outgoing connection to
/// one of them must present that node's certificate.
pub type KnownPeers = Arc<RwLock<HashMap<String, NodeId>>>;

/// A client connector for hyper's pooled client: TCP, then TLS if set up —
/// as a node to a peer ([`Connector::peer`]: this node's certificate
/// presented, the target's checked against the cluster CA, the address and
/// the member), or as an API client ([`Connector::verified`]: the server's
/// certificate checked against a CA and the host name).
#[derive(Clone)]
pub struct Connector {
    http: HttpConnector,
    tls: Outgoing,
}

#[derive(Clone)]
enum Outgoing {
    Plain,
    Peer(Arc<PeerTls>, KnownPeers),
    Verified(Arc<ClientConfig>),
}

impl Connector {
    fn with(tls: Outgoing) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(2)));
        http.enforce_http(false);
        Self { http, tls }
    }

    /// Peer connections: mutual TLS with `tls`, or plain HTTP without.
    pub fn peer(tls: Option<Arc<PeerTls>>, known: KnownPeers) -> Self {
        Self::with(match tls {
            Some(t) => Outgoing::Peer(t, known),
            None => Outgoing::Plain,
        })
    }

    /// API connections: `https://` verified with `config`; `http://` plain.
    pub fn verified(config: Option<Arc<ClientConfig>>) -> Self {
        Self::with(match config {
            Some(c) => Outgoing::Verified(c),
            None => Outgoing::Plain,
        })
    }
}

/// A client configuration that trusts the CAs in `ca_file`.
pub fn client_config(ca_file: &Path) -> Result<ClientConfig, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(|e| err(ca_file, e.to_string()))?
        .with_root_certificates(load_roots(ca_file)?)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A client connection for hyper's pooled client.
pub struct ClientIo(TokioIo<MaybeTls>);

impl Connection for ClientIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for ClientIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for ClientIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = ClientIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ClientIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = tower_service::Service::<Uri>::call(&mut self.http, uri.clone());
        let tls = self.tls.clone();
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            let https = uri.scheme_str() == Some("https");
            let config = match (&tls, https) {
                (Outgoing::Plain, false) => {
                    return Ok(ClientIo(TokioIo::new(MaybeTls::Plain(tcp))))
                }
                (Outgoing::Plain, true) => {
                    return Err("https:// without a TLS configuration".into())
                }
                (_, false) => return Err("TLS is configured: use https://".into()),
                (Outgoing::Peer(t, _), true) => t.client_config(),
                (Outgoing::Verified(c), true) => c.clone(),
            };
            let host = uri.host().unwrap_or_default();
            let name = ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
                .map_err(|e| format!("bad host {host:?}: {e}"))?
                .to_owned();
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            if let Outgoing::Peer(_, known) = &tls {
                let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
                let identity = match stream.get_ref().1.peer_certificates() {
                    Some([leaf, ..]) => cert_identity(leaf)?,
                    _ => return Err("the peer sent no certificate".into()),
                };
                check_target(&identity, authority, known)?;
            }
            Ok(ClientIo(TokioIo::new(MaybeTls::Tls(Box::new(
                tokio_rustls::TlsStream::Client(stream),
            )))))
        })
    }
}

/// The target's certificate must be issued for the address dialled and, if
/// that address is a known member's, name that member.
fn check_target(
    identity: &CertIdentity,
    authority: &str,
    known: &KnownPeers,
) -> Result<(), String> {
    if identity.peer_addr.as_deref() != Some(authority) {
        return Err(format!(
            "the certificate of {authority} is issued for peer address {}",
            identity.peer_addr.as_deref().unwrap_or("(none)")
        ));
    }
    let expected = known
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(authority)
        .copied();
    match (expected, identity.node_id) {
        (Some(want), Some(got)) if want == got => Ok(()),
        (Some(want), got) => Err(format!(
            "{authority} should be node {want}, its certificate names {}",
            got.map_or("no node".to_string(), |g| format!("node {g}"))
        )),
        (None, _) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(from: Option<&str>) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        if let Some(f) = from {
            h.insert(FROM_HEADER, f.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_request_must_come_from_the_node_its_certificate_names() {
        let cert = CertIdentity {
            node_id: Some(2),
            peer_addr: Some("127.0.0.1:7701".into()),
        };
        assert!(check_sender(Some(&cert), &headers(Some("2")), false).is_ok());
        let e = check_sender(Some(&cert), &headers(Some("3")), false).unwrap_err();
        assert!(e.contains("node 3") && e.contains("node 2"), "{e}");
        assert!(check_sender(Some(&cert), &headers(None), false).is_err());
        assert!(check_sender(Some(&cert), &headers(Some("x")), false).is_err());
        assert!(check_sender(Some(&cert), &headers(None), true).is_ok());
        let anonymous = CertIdentity::default();
        assert!(check_sender(Some(&anonymous), &headers(Some("2")), false).is_err());
        // Plain HTTP (allowed only with allow_insecure_http): nothing to check.
        assert!(check_sender(None, &headers(Some("9")), false).is_ok());
    }

    /// A CA, and a certificate it issued with `sans`, written to `dir` as
    /// `<name>.pem` / `<name>.key` (and `ca.pem`).
    fn issue(dir: &Path, name: &str, sans: Vec<rcgen::SanType>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::default();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::default();
        p.subject_alt_names = sans;
        let cert = p.signed_by(&key, &issuer).unwrap();
        let write = |f: &str, text: String| {
            let path = dir.join(f);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        };
        write(&format!("{name}-ca.pem"), ca_cert.pem());
        write(&format!("{name}.pem"), cert.pem());
        write(&format!("{name}.key"), key.serialize_pem());
    }

    #[test]
    fn a_node_certificate_names_its_node_and_address() {
        let dir = tempfile::tempdir().unwrap();
        issue(
            dir.path(),
            "n",
            vec![
                rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()),
                rcgen::SanType::URI("arca-node:7".try_into().unwrap()),
                rcgen::SanType::URI("arca-peer:127.0.0.1:7701".try_into().unwrap()),
            ],
        );
        let certs = load_certs(&dir.path().join("n.pem")).unwrap();
        assert_eq!(
            cert_identity(&certs[0]).unwrap(),
            CertIdentity {
                node_id: Some(7),
                peer_addr: Some("127.0.0.1:7701".into())
            }
        );
        issue(
            dir.path(),
            "two",
            vec![
                rcgen::SanType::URI("arca-node:1".try_into().unwrap()),
                rcgen::SanType::URI("arca-node:2".try_into().unwrap()),
            ],
        );
        let certs = load_certs(&dir.path().join("two.pem")).unwrap();
        assert!(cert_identity(&certs[0]).is_err());
        assert!(cert_identity(b"not der").is_err());
    }

    #[tokio::test]
    async fn with_a_client_ca_the_api_port_takes_only_its_clients() {
        let dir = tempfile::tempdir().unwrap();
        let ip = rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap());
        issue(dir.path(), "server", vec![ip.clone()]);
        issue(dir.path(), "client", vec![ip]);
        let d = |f: &str| dir.path().join(f);
        let tls = ApiTls::load(ApiTlsFiles {
            cert: d("server.pem"),
            key: d("server.key"),
            client_ca: Some(d("client-ca.pem")),
        })
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                let r = accept(Some(tls.config()), tcp, Duration::from_secs(5)).await;
                outcomes.push(r.is_ok());
            }
            outcomes
        });
        let roots = load_roots(&d("server-ca.pem")).unwrap();
        let builder = ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(VERSIONS)
            .unwrap()
            .with_root_certificates(roots);
        let with_cert = builder
            .clone()
            .with_client_auth_cert(
                load_certs(&d("client.pem")).unwrap(),
                load_key(&d("client.key")).unwrap(),
            )
            .unwrap();
        let without = builder.with_no_client_auth();
        for config in [with_cert, without] {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = ServerName::try_from("127.0.0.1").unwrap();
            let mut s = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .unwrap();
            // TLS 1.3: the server's verdict on the client arrives after the
            // client's handshake; a read sees it.
            use tokio::io::AsyncReadExt;
            let mut b = [0u8; 1];
            let _ = tokio::time::timeout(Duration::from_millis(500), s.read(&mut b)).await;
        }
        assert_eq!(server.await.unwrap(), vec![true, false]);
    }

    #[test]
    fn bad_files_are_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.pem");
        std::fs::write(&bad, "hello").unwrap();
        let e = load_certs(&bad).unwrap_err().to_string();
        assert!(
            e.contains("bad.pem") && e.contains("no PEM certificate"),
            "{e}"
        );
        let e = load_certs(&dir.path().join("absent.pem"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("absent.pem") && e.contains("cannot read"), "{e}");
        issue(dir.path(), "k", vec![]);
        let key = dir.path().join("k.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o640))
            .unwrap();
        let e = load_key(&key).unwrap_err().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }

    #[test]
    fn a_target_must_hold_the_certificate_of_its_address_and_member() {
        let known: KnownPeers = Arc::default();
        let cert = CertIdentity {
            node_id: Some(2),
            peer_addr: Some("127.0.0.1:7801".into()),
        };
        assert!(check_target(&cert, "127.0.0.1:7801", &known).is_ok());
        assert!(check_target(&cert, "127.0.0.1:7811", &known).is_err());
        known.write().unwrap().insert("127.0.0.1:7801".into(), 3);
        let e = check_target(&cert, "127.0.0.1:7801", &known).unwrap_err();
        assert!(e.contains("should be node 3"), "{e}");
        known.write().unwrap().insert("127.0.0.1:7801".into(), 2);
        assert!(check_target(&cert, "127.0.0.1:7801", &known).is_ok());
    }
}
