//! The HTTP gateway: AWS KMS JSON 1.1 over hyper, SigV4 authentication,
//! health, readiness and metrics. It translates HTTP into node calls and node
//! errors into AWS errors; it holds no state of its own but metrics.
//!
//! - `POST /` with `X-Amz-Target: TrentService.<Op>`: the KMS API ([`api`]).
//! - `POST /` with `X-Amz-Target: ArcaAdmin.<Op>`: cluster administration.
//! - `GET /health`, `GET /ready`, `GET /metrics`.

pub mod api;
pub mod asym;
pub mod audit;
pub mod authz;
pub mod error;
pub mod grants;
pub mod lifecycle;
pub mod metrics;

use std::sync::Arc;
use std::time::{Duration, Instant};

use arca_node::limits::{Acceptor, PortLimits};
use arca_node::tls::{self, ApiTls};
use arca_node::Node;
use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::Caller;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The largest request body accepted (Encrypt's 4 KiB plaintext is ~5.5 KiB in base64).
pub const MAX_BODY: usize = 64 * 1024;
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Gateway {
    node: Arc<Node>,
    metrics: Metrics,
    audit: Option<audit::AuditLog>,
    authz: authz::Authorizer,
    limits: PortLimits,
    /// The API port's acceptor once serving (for /metrics).
    acceptor: std::sync::OnceLock<Arc<Acceptor>>,
}

type Resp = hyper::Response<Full<Bytes>>;

fn request_id() -> String {
    arca_crypto::random::bytes16()
        .map(|b| arca_state::KeyId::from_random(b).to_string())
        .unwrap_or_else(|_| "00000000-0000-4000-8000-000000000000".into())
}

impl Gateway {
    /// A gateway for `node` within `limits`, recording every API request in
    /// `audit`.
    pub fn new(node: Arc<Node>, audit: Option<audit::AuditLog>, limits: PortLimits) -> Arc<Self> {
        Arc::new(Self {
            node,
            metrics: Metrics::default(),
            audit,
            authz: authz::Authorizer::default(),
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

    async fn handle(&self, req: hyper::Request<Incoming>, source: &str) -> Resp {
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
                metrics::render_process(&mut body);
                let mut r = text(StatusCode::OK, body);
                r.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                r
            }
            (&Method::POST, "/") => self.api(req, source).await,
            _ => text(StatusCode::NOT_FOUND, "not found\n".into()),
        }
    }

    async fn api(&self, req: hyper::Request<Incoming>, source: &str) -> Resp {
        let started = Instant::now();
        let rid = request_id();
        let (parts, body) = req.into_parts();
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let (op_name, admin) = operation(&target);
        let span = tracing::info_span!("request", request_id = %rid, operation = op_name, key_id = tracing::field::Empty);
        let mut principal: Option<String> = None;
        let mut audited_key: Option<String> = None;
        let mut audited_keys: Vec<arca_state::KeyId> = Vec::new();
        let mut arn: Option<String> = None;
        let result = async {
            let body_timeout = self.limits.body_timeout;
            let body =
                match tokio::time::timeout(body_timeout, Limited::new(body, MAX_BODY).collect())
                    .await
                {
                    Ok(Ok(b)) => b.to_bytes(),
                    Ok(Err(_)) => {
                        return Err(ApiError::validation(format!(
                            "the request body is larger than {MAX_BODY} bytes"
                        )))
                    }
                    Err(_) => {
                        return Err(ApiError::new(
                            408,
                            "RequestTimeoutException",
                            format!(
                                "the request body was not received within {} ms",
                                body_timeout.as_millis()
                            ),
                        ))
                    }
                };
            let caller = self.authenticate(&parts, &body)?;
            principal = Some(caller.access_key_id.clone());
            let suffix = target.split_once('.').map(|(_, op)| op).unwrap_or("");
            if op_name == "unknown" {
                return Err(ApiError::unknown_operation(&target));
            }
            // One place decides, before any operation runs.
            let cluster = self.node.cluster_info().ok_or_else(|| {
                ApiError::new(
                    503,
                    "KMSInternalException",
                    "the cluster is not initialized",
                )
            })?;
            let who = authz::Principal {
                arn: format!("arn:aws:iam::{}:user/{}", cluster.account_id, caller.user),
                account: cluster.account_id,
                region: cluster.region,
            };
            let ip = source.rsplit_once(':').map_or(source, |(ip, _)| ip);
            let ip = ip.trim_start_matches('[').trim_end_matches(']');
            let call = authz::Call {
                caller: &caller,
                principal: &who,
                op: op_name,
                admin,
                body: &body,
                source_ip: ip,
            };
            arn = Some(who.arn.clone());
            let authorized = self
                .authz
                .authorize(&self.node, &call, &mut audited_keys)
                .await;
            // A refused request keeps the keys it named.
            audited_key = audited_keys.first().map(|k| k.to_string());
            authorized?;
            let ctx = api::Ctx {
                request: request_key(&parts.headers, &caller, &target, &body),
                caller,
                principal: who.arn,
            };
            let answer = if admin {
                api::dispatch_admin(&self.node, &ctx, suffix, &body).await?
            } else if target.starts_with("TrentService.") {
                api::dispatch(&self.node, &ctx, suffix, &body).await?
            } else {
                return Err(ApiError::unknown_operation(&target));
            };
            if let Some(k) = answer.key_id {
                tracing::Span::current().record("key_id", tracing::field::display(k));
                // The keys authorization resolved stay (ReEncrypt's source
                // first); a key the operation created is recorded.
                if audited_key.is_none() {
                    audited_key = Some(k.to_string());
                }
            }
            Ok(answer.body)
        }
        .instrument(span.clone())
        .await;
        let elapsed = started.elapsed();
        let (status, code, body) = match result {
            Ok(v) => (200, "OK", serde_json::to_vec(&v).unwrap_or_default()),
            Err(e) => {
                let _g = span.enter();
                if e.is_server_error() {
                    tracing::warn!(code = e.code, message = %e.message, "request failed");
                } else {
                    tracing::debug!(code = e.code, "request refused");
                }
                (e.status, e.code, e.body())
            }
        };
        // Fail-closed: an answer whose record did not reach the log is not
        // given; the client gets 503 instead (best-effort: always written or counted).
        let (status, code, body) = if let Some(a) = &self.audit {
            let recorded = a
                .record(&audit::Record {
                    time_ms: self.node.now_ms(),
                    request_id: &rid,
                    node_id: self.node.id,
                    source,
                    principal: principal.as_deref(),
                    operation: if op_name == "unknown" {
                        &target
                    } else {
                        op_name
                    },
                    arn: arn.as_deref(),
                    key_id: audited_key,
                    destination_key_id: audited_keys.get(1).map(|k| k.to_string()),
                    outcome: code,
                    status,
                })
                .await;
            match recorded {
                Ok(()) => (status, code, body),
                Err(e) => {
                    let e = ApiError::from(e);
                    (e.status, e.code, e.body())
                }
            }
        } else {
            (status, code, body)
        };
        self.metrics.record(op_name, code, elapsed);
        let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = r.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        if let Ok(v) = HeaderValue::from_str(&rid) {
            h.insert("x-amzn-requestid", v);
        }
        r
    }

    /// Verifies the SigV4 signature against the access key's secret.
    fn authenticate(&self, parts: &http::request::Parts, body: &[u8]) -> Result<Caller, ApiError> {
        let auth = arca_sigv4::parse(&parts.headers, "kms", arca_node::network::unix_now())?;
        let unknown = || {
            ApiError::new(
                400,
                "UnrecognizedClientException",
                "The security token included in the request is invalid.",
            )
        };
        let (secret, user) = self
            .node
            .access_key_secret(&auth.access_key_id)?
            .ok_or_else(unknown)?;
        arca_sigv4::verify(
            &auth,
            &parts.method,
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            &parts.headers,
            body,
            secret.expose(),
        )?;
        Ok(Caller {
            access_key_id: auth.access_key_id,
            user,
        })
    }
}

/// The identity under which a write is deduplicated: the principal and the
/// client's `amz-sdk-invocation-id` (AWS SDKs send the same one on every retry
/// of one call), with a fingerprint of the operation and body that a retry
/// must match. Without an invocation id the id is random: such requests are
/// never deduplicated, except against the node's own forwarding retries.
fn request_key(
    headers: &http::HeaderMap,
    caller: &Caller,
    target: &str,
    body: &[u8],
) -> arca_state::RequestKey {
    fn digest(parts: &[&[u8]]) -> [u8; 16] {
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in parts {
            ctx.update(&(part.len() as u32).to_be_bytes());
            ctx.update(part);
        }
        let d = ctx.finish();
        let mut id = [0u8; 16];
        id.copy_from_slice(&d.as_ref()[..16]);
        id
    }
    let id = match headers.get("amz-sdk-invocation-id").map(|v| v.as_bytes()) {
        Some(inv) if !inv.is_empty() && inv.len() <= 128 => {
            digest(&[b"invocation", caller.access_key_id.as_bytes(), inv])
        }
        _ => arca_crypto::random::bytes16().unwrap_or_else(|_| {
            // Without randomness, a digest of the request and the time; never
            // a fixed value that would collide.
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            digest(&[b"fallback", &n.to_be_bytes(), target.as_bytes(), body])
        }),
    };
    arca_state::RequestKey {
        id,
        fingerprint: digest(&[b"request", target.as_bytes(), body]),
    }
}

/// The operation name for logs and metrics: a fixed string, so that metric
/// labels stay a bounded set whatever clients send.
fn operation(target: &str) -> (&'static str, bool) {
    if let Some(op) = target.strip_prefix("TrentService.") {
        if let Some(known) = api::known_operation(op) {
            return (known, false);
        }
    }
    if let Some(op) = target.strip_prefix("ArcaAdmin.") {
        let known = api::ADMIN_OPERATIONS.iter().find(|o| **o == op);
        return (known.copied().unwrap_or("unknown"), true);
    }
    ("unknown", false)
}

fn text(status: StatusCode, body: String) -> Resp {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_are_a_fixed_set() {
        assert_eq!(operation("TrentService.Encrypt"), ("Encrypt", false));
        assert_eq!(
            operation("TrentService.ScheduleKeyDeletion"),
            ("ScheduleKeyDeletion", false)
        );
        assert_eq!(operation("TrentService.Sign"), ("Sign", false));
        assert_eq!(operation("TrentService.Nope"), ("unknown", false));
        assert_eq!(
            operation("ArcaAdmin.ClusterStatus"),
            ("ClusterStatus", true)
        );
        assert_eq!(operation("ArcaAdmin.Nope"), ("unknown", true));
        assert_eq!(operation(""), ("unknown", false));
        // The three lists do not overlap.
        let all: Vec<&str> = api::OPERATIONS
            .iter()
            .chain(lifecycle::OPERATIONS)
            .chain(asym::OPERATIONS)
            .copied()
            .collect();
        let unique: std::collections::BTreeSet<&str> = all.iter().copied().collect();
        assert_eq!(unique.len(), all.len());
    }
}
