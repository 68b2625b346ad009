//! The HTTP gateway: AWS KMS JSON 1.1 over hyper, SigV4 authentication,
//! health, readiness and metrics. It translates HTTP into node calls and node
//! errors into AWS errors; it holds no state of its own but metrics.
//!
//! - `POST /` with `X-Amz-Target: TrentService.<Op>`: the KMS API ([`api`]).
//! - `POST /` with `X-Amz-Target: ArcaAdmin.<Op>`: cluster administration.
//! - `POST /` or `GET /` without `X-Amz-Target`, signed the Alibaba Cloud
//!   way: the Alibaba Cloud KMS API ([`alibaba`]), over the same keys.
//! - `GET /health`, `GET /ready`, `GET /metrics`.

pub mod alibaba;
pub mod api;
pub mod asym;
pub mod audit;
pub mod authz;
mod aws;
pub mod error;
pub mod grants;
pub mod import;
pub mod lifecycle;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod paging;
pub mod pipeline;

use std::sync::Arc;
use std::time::Duration;

use arca_node::limits::{Acceptor, PortLimits};
use arca_node::tls::{self, ApiTls};
use arca_node::Node;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;

/// The largest request body accepted (Encrypt's 4 KiB plaintext is ~5.5 KiB in base64).
pub const MAX_BODY: usize = 64 * 1024;
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How the gateway treats what clients send.
#[derive(Clone, Default)]
pub struct Options {
    /// Accept SigV4 signatures scoped to any region, not only the cluster's
    /// (for clients that cannot be configured with it).
    pub accept_any_region: bool,
    /// If set, `/metrics` and `/ready` answer only requests that carry
    /// `Authorization: Bearer <token>` (`/health` stays open).
    pub ops_token: Option<Arc<zeroize::Zeroizing<String>>>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("accept_any_region", &self.accept_any_region)
            .field("ops_token", &self.ops_token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

pub struct Gateway {
    node: Arc<Node>,
    options: Options,
    metrics: Metrics,
    audit: Option<audit::AuditLog>,
    authz: authz::Authorizer,
    signing_keys: aws::SigningKeys,
    /// Signature nonces of Alibaba requests, so that replays are refused.
    nonces: alibaba::nonce::NonceCache,
    limits: PortLimits,
    /// The API port's acceptor once serving (for /metrics).
    acceptor: std::sync::OnceLock<Arc<Acceptor>>,
}

type Resp = hyper::Response<Full<Bytes>>;

/// Sixteen bytes unique across nodes and restarts: eight random bytes drawn
/// once per process, then a counter (unique, not secret: request ids, and
/// the identity of a write that carries no invocation id).
pub(crate) fn unique_id() -> [u8; 16] {
    static PREFIX: std::sync::OnceLock<[u8; 8]> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut p = [0u8; 8];
        match arca_crypto::random::bytes16() {
            Ok(b) => p.copy_from_slice(&b[..8]),
            // Without randomness, the time in nanoseconds.
            Err(_) => {
                p = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64)
                    .to_be_bytes()
            }
        }
        p
    });
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(prefix);
    b[8..].copy_from_slice(&n.to_be_bytes());
    b
}

fn request_id() -> String {
    arca_state::KeyId::from_random(unique_id()).to_string()
}

impl Gateway {
    /// A gateway for `node` within `limits`, recording every API request in
    /// `audit`.
    pub fn new(node: Arc<Node>, audit: Option<audit::AuditLog>, limits: PortLimits) -> Arc<Self> {
        Self::with_options(node, audit, limits, Options::default())
    }

    /// [`Gateway::new`] with `options`.
    pub fn with_options(
        node: Arc<Node>,
        audit: Option<audit::AuditLog>,
        limits: PortLimits,
        options: Options,
    ) -> Arc<Self> {
        Arc::new(Self {
            node,
            options,
            metrics: Metrics::default(),
            audit,
            authz: authz::Authorizer::default(),
            signing_keys: aws::SigningKeys::default(),
            nonces: alibaba::nonce::NonceCache::default(),
            limits,
            acceptor: std::sync::OnceLock::new(),
        })
    }

    /// Serves `listener` — over TLS with `tls` (which may be reloaded while
    /// serving: new connections take its current certificate) — until
    /// `shutdown` fires, then stops accepting and lets in-flight requests
    /// finish (at most [`DRAIN_TIMEOUT`]).
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<Arc<ApiTls>>,
        shutdown: CancellationToken,
    ) {
        let graceful = GracefulShutdown::new();
        let limits = self.limits;
        let acceptor = Arc::new(Acceptor::new(listener, &limits, "api"));
        let _ = self.acceptor.set(acceptor.clone());
        while let Some((stream, remote, permit)) = acceptor.accept(&shutdown).await {
            let gw = self.clone();
            let source: Arc<str> = remote.to_string().into();
            let svc = service_fn(move |req| {
                let gw = gw.clone();
                let source = source.clone();
                async move { Ok::<_, std::convert::Infallible>(gw.handle(req, &source).await) }
            });
            let watcher = graceful.watcher();
            let config = tls.as_ref().map(|t| t.config());
            tokio::spawn(async move {
                let _permit = permit;
                let stream = match tls::accept(config, stream, limits.header_timeout).await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let conn = http1::Builder::new()
                    .keep_alive(true)
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .serve_connection(TokioIo::new(stream), svc);
                if let Err(e) = watcher.watch(conn).await {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(acceptor);
        if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("in-flight requests did not finish within the drain timeout");
        }
    }

    /// Whether an operational request (`/metrics`, `/ready`) may be
    /// answered: always without an ops token, else only with it.
    fn ops_allowed(&self, headers: &http::HeaderMap) -> bool {
        use subtle::ConstantTimeEq;
        let Some(token) = &self.options.ops_token else {
            return true;
        };
        let given = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        bool::from(given.ct_eq(token.as_bytes()))
    }

    async fn handle(&self, req: hyper::Request<Incoming>, source: &str) -> Resp {
        if matches!(req.uri().path(), "/metrics" | "/ready") && !self.ops_allowed(req.headers()) {
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                "this endpoint needs the operations bearer token\n".into(),
            );
            r.headers_mut().insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
            return r;
        }
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/health") => match self.node.health() {
                Ok(()) => text(StatusCode::OK, "ok\n".into()),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("unhealthy: {why}\n"),
                ),
            },
            (&Method::GET, "/ready") => match self.node.ready().await {
                Ok(()) => text(StatusCode::OK, "ready\n".into()),
                Err(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {why}\n"),
                ),
            },
            (&Method::GET, "/metrics") => {
                let view = self.node.raft_view().await;
                let dropped = self.audit.as_ref().map_or(0, |a| a.dropped());
                let mut body = self
                    .metrics
                    .render(&view, self.node.active_key_actors(), dropped);
                if let Some(a) = &self.audit {
                    a.render_metrics(&mut body);
                }
                if let Some(a) = self.acceptor.get() {
                    metrics::render_connections(
                        &mut body,
                        a.open(&self.limits),
                        a.refused(),
                        a.accept_errors(),
                    );
                }
                metrics::render_secrets(&mut body, self.node.cached_secrets());
                metrics::render_backup_age(&mut body, self.node.backup_age_seconds());
                metrics::render_process(&mut body);
                let mut r = text(StatusCode::OK, body);
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                r
            }
            (&Method::POST | &Method::GET, "/")
                if alibaba::sign::is_alibaba(req.headers(), req.uri().query()) =>
            {
                self.alibaba(req, source).await
            }
            (&Method::POST, "/") => self.aws(req, source).await,
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }
}

fn text(status: StatusCode, body: String) -> Resp {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}
