//! The peer port: Raft RPCs, forwarded requests, and cluster bootstrap.
//! Every request must carry a valid cluster-secret signature
//! ([`crate::peer_auth`]).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::election::PreVoteRequest;
use crate::lease::{BarrierRequest, ConfirmRequest, LeaseRequest, QuietRequest, SettledNotice};
use crate::limits::Acceptor;
use crate::network::{
    unix_now_ms, PATH_APPEND, PATH_BARRIER, PATH_CONFIRM, PATH_FORWARD, PATH_INIT, PATH_LEASE,
    PATH_PREVOTE, PATH_QUIET, PATH_SETTLED, PATH_SNAPSHOT, PATH_VOTE,
};
use crate::peer_auth::{RequestId, HEADER};
use crate::tls;
use crate::types::{ForwardRequest, NodeId};
use crate::Node;

/// The largest peer request body (a snapshot chunk is at most 3 MiB by default).
pub const MAX_PEER_BODY: usize = 16 * 1024 * 1024;

/// Body of `POST /cluster/init` (JSON).
#[derive(Debug, Serialize, Deserialize)]
pub struct InitRequest {
    pub region: String,
    pub account_id: String,
}

/// Answer to `POST /cluster/init` (JSON): the first admin credentials, shown
/// once. The secret crosses the network only over TLS; on a plain-HTTP peer
/// port the node writes the credentials to `credentials_file` (mode 0600,
/// in its data directory) and leaves `secret_access_key` out.
#[derive(Serialize, Deserialize)]
pub struct InitResponse {
    pub access_key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    pub region: String,
    pub account_id: String,
}

/// The file `/cluster/init` writes the first admin key to when the peer port
/// is plain HTTP.
pub const INIT_CREDENTIALS_FILE: &str = "admin-credentials";

/// Writes the first admin key as an AWS shared credentials file, mode 0600;
/// never over an existing file.
fn write_init_credentials(
    dir: &std::path::Path,
    k: &crate::users::NewAccessKey,
) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    let path = dir.join(INIT_CREDENTIALS_FILE);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&path)?;
    let mut text = format!(
        "[default]\naws_access_key_id = {}\naws_secret_access_key = ",
        k.access_key_id
    )
    .into_bytes();
    text.extend_from_slice(k.secret_access_key.expose());
    text.extend_from_slice(format!("\nregion = {}\n", k.region).as_bytes());
    let written = f.write_all(&text).and_then(|_| f.sync_all());
    zeroize::Zeroize::zeroize(&mut text);
    written.map(|_| path)
}

pub async fn serve(acceptor: Acceptor, node: Arc<Node>, shutdown: CancellationToken) {
    let limits = node.peer_limits;
    while let Some((stream, remote, permit)) = acceptor.accept(&shutdown).await {
        let node = node.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let _permit = permit;
            // With peer TLS, only a certificate of the cluster CA gets past
            // the handshake, and each request must come from the node it names.
            let config = node.peer_tls.as_ref().map(|t| t.server_config());
            let (stream, client) = match tls::accept(config, stream, limits.header_timeout).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(%remote, error = %e, "peer TLS handshake failed");
                    return;
                }
            };
            let client = client.map(Arc::new);
            let svc = service_fn(move |req: Request<Incoming>| {
                let node = node.clone();
                let client = client.clone();
                async move {
                    let init = req.uri().path() == PATH_INIT;
                    if let Err(e) = tls::check_sender(client.as_deref(), req.headers(), init) {
                        tracing::warn!(%remote, error = %e, "peer request refused");
                        let mut r = Response::new(Full::new(Bytes::from(e.into_bytes())));
                        *r.status_mut() = StatusCode::FORBIDDEN;
                        return Ok(r);
                    }
                    let cert_node = client.as_ref().map(|c| c.node_id);
                    Ok::<_, std::convert::Infallible>(handle(node, req, cert_node).await)
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
}

/// An answer before it is signed.
type Answer = (StatusCode, Vec<u8>);

fn reply(status: StatusCode, body: Vec<u8>) -> Answer {
    (status, body)
}

fn postcard_reply<T: Serialize>(v: &T) -> Answer {
    match postcard::to_allocvec(v) {
        Ok(b) => reply(StatusCode::OK, b),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            e.to_string().into_bytes(),
        ),
    }
}

/// Answers a request; an answer to a request whose head verified is signed
/// for that request ([`crate::peer_auth`]), any other goes unsigned.
///
/// `cert_node`: with peer TLS, the node id in the client's certificate; the
/// signed sender must be that node.
async fn handle(
    node: Arc<Node>,
    req: Request<Incoming>,
    cert_node: Option<Option<NodeId>>,
) -> Response<Full<Bytes>> {
    let mut answering = None;
    let (status, body) = answer(&node, req, cert_node, &mut answering).await;
    let signature = answering.map(|id| {
        node.peer_auth
            .sign_response(&id, node.id, status.as_u16(), &body)
    });
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Some(v) = signature.and_then(|s| http::HeaderValue::from_str(&s).ok()) {
        r.headers_mut().insert(HEADER, v);
    }
    r
}

async fn answer(
    node: &Arc<Node>,
    req: Request<Incoming>,
    cert_node: Option<Option<NodeId>>,
    answering: &mut Option<RequestId>,
) -> Answer {
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let auth = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_length = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Authenticate the head — whom it is for, from which cluster, and that
    // it is new — before reading a byte of the body.
    let head = node
        .peer_auth
        .verify_head(
            auth.as_deref(),
            &method,
            &path,
            unix_now_ms(),
            content_length,
            MAX_PEER_BODY as u64,
        )
        .inspect_err(|e| node.peer_guard.refusals.count(e))
        .and_then(|head| {
            *answering = Some(head.id);
            node.peer_guard
                .admit(&head, &path, node.cluster_id())
                .map(|()| head)
        });
    let head = match head {
        Ok(h) => h,
        Err(e) => {
            tracing::warn!(path, error = %e, "peer request refused");
            return reply(StatusCode::UNAUTHORIZED, e.to_string().into_bytes());
        }
    };
    // Over TLS, the sender the MAC covers is the certificate's node.
    if let Some(cert) = cert_node {
        if head.id.from.is_some() && head.id.from != cert {
            tracing::warn!(
                path,
                "peer request signed for another node than its certificate's"
            );
            return reply(
                StatusCode::FORBIDDEN,
                b"the signed sender is not the certificate's node".to_vec(),
            );
        }
    }
    let limit = usize::try_from(head.len()).unwrap_or(MAX_PEER_BODY);
    let read = Limited::new(req.into_body(), limit).collect();
    let body = match tokio::time::timeout(node.peer_limits.body_timeout, read).await {
        Ok(Ok(b)) => b.to_bytes(),
        Ok(Err(_)) => return reply(StatusCode::PAYLOAD_TOO_LARGE, b"body too large".to_vec()),
        Err(_) => {
            return reply(
                StatusCode::REQUEST_TIMEOUT,
                b"body not received in time".to_vec(),
            )
        }
    };
    if let Err(e) = node.peer_auth.verify_body(&head, &method, &path, &body) {
        node.peer_guard.refusals.count(&e);
        tracing::warn!(path, error = %e, "peer request refused");
        return reply(StatusCode::UNAUTHORIZED, e.to_string().into_bytes());
    }
    if method != "POST" {
        return reply(StatusCode::METHOD_NOT_ALLOWED, Vec::new());
    }
    macro_rules! decode {
        ($t:ty) => {
            match postcard::from_bytes::<$t>(&body) {
                Ok(v) => v,
                Err(e) => return reply(StatusCode::BAD_REQUEST, e.to_string().into_bytes()),
            }
        };
    }
    match path.as_str() {
        PATH_APPEND => postcard_reply(&node.raft.append_entries(decode!(_)).await),
        PATH_VOTE => postcard_reply(&node.raft.vote(decode!(_)).await),
        PATH_PREVOTE => postcard_reply(&node.prevote_reply(decode!(PreVoteRequest)).await),
        PATH_SNAPSHOT => postcard_reply(&node.raft.install_snapshot(decode!(_)).await),
        PATH_LEASE => postcard_reply(&node.grant_lease(decode!(LeaseRequest)).await),
        PATH_BARRIER => postcard_reply(&node.barrier_reply(decode!(BarrierRequest)).await),
        PATH_CONFIRM => postcard_reply(&node.confirm_reply(decode!(ConfirmRequest))),
        PATH_QUIET => postcard_reply(&node.quiet_reply(decode!(QuietRequest))),
        PATH_SETTLED => {
            node.settled_notice(decode!(SettledNotice));
            postcard_reply(&())
        }
        PATH_FORWARD => {
            let req: ForwardRequest = decode!(ForwardRequest);
            postcard_reply(&node.handle_forward_from(head.route.from, req).await)
        }
        PATH_INIT => {
            let req: InitRequest = match serde_json::from_slice(&body) {
                Ok(r) => r,
                Err(e) => return reply(StatusCode::BAD_REQUEST, e.to_string().into_bytes()),
            };
            match node.init_cluster(req.region, req.account_id).await {
                Ok(k) => {
                    let (secret_access_key, credentials_file) = if node.peer_tls.is_some() {
                        let secret = String::from_utf8_lossy(k.secret_access_key.expose());
                        (Some(secret.into_owned()), None)
                    } else {
                        match write_init_credentials(&node.data_dir, &k) {
                            Ok(p) => (None, Some(p.display().to_string())),
                            Err(e) => {
                                return reply(
                                    StatusCode::INTERNAL_SERVER_ERROR,
                                    format!(
                                        "the cluster is initialized, but the first admin key could not be written to {}: {e}",
                                        node.data_dir.join(INIT_CREDENTIALS_FILE).display()
                                    )
                                    .into_bytes(),
                                )
                            }
                        }
                    };
                    let resp = InitResponse {
                        access_key_id: k.access_key_id,
                        secret_access_key,
                        credentials_file,
                        region: k.region,
                        account_id: k.account_id,
                    };
                    match serde_json::to_vec(&resp) {
                        Ok(b) => reply(StatusCode::OK, b),
                        Err(e) => reply(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            e.to_string().into_bytes(),
                        ),
                    }
                }
                Err(crate::NodeError::AlreadyInitialized) => reply(
                    StatusCode::CONFLICT,
                    b"the cluster is already initialized".to_vec(),
                ),
                Err(e) => reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    e.to_string().into_bytes(),
                ),
            }
        }
        _ => reply(StatusCode::NOT_FOUND, Vec::new()),
    }
}
