//! Node-to-node RPC over HTTP/1.1 with postcard bodies: the client side
//! (Raft's network and forwarding to the leader). The server side is
//! [`crate::peer`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::peer::MAX_PEER_BODY;
use crate::peer_auth::{ClusterId, PeerAuth, PeerRefusals, RequestId, Route, HEADER};
use crate::tls::{Connector, KnownPeers, PeerTls, FROM_HEADER};
use crate::types::{ForwardRequest, ForwardResponse, NodeId, NodeInfo, TypeConfig};

pub const PATH_APPEND: &str = "/raft/append";
pub const PATH_VOTE: &str = "/raft/vote";
pub const PATH_SNAPSHOT: &str = "/raft/snapshot";
pub const PATH_FORWARD: &str = "/forward";
pub const PATH_INIT: &str = "/cluster/init";
pub const PATH_LEASE: &str = "/lease";
pub const PATH_BARRIER: &str = "/barrier";
pub const PATH_CONFIRM: &str = "/lease/confirm";
pub const PATH_SETTLED: &str = "/lease/settled";
pub const PATH_QUIET: &str = "/lease/quiet";
pub const PATH_PREVOTE: &str = "/raft/prevote";

/// Why a peer call failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("peer {0} is unreachable: {1}")]
    Unreachable(String, String),
    #[error("peer call to {0} timed out")]
    Timeout(String),
    #[error("peer {0} answered HTTP {1}: {2}")]
    Status(String, u16, String),
    #[error("peer {0} sent a body that does not decode: {1}")]
    Decode(String, String),
    /// The answer is not authenticated as the addressed node's answer to
    /// this request.
    #[error("answer from peer {0} refused: {1}")]
    Refused(String, String),
}

/// This node's cluster id, once it knows it.
pub type ClusterSource = Arc<dyn Fn() -> Option<ClusterId> + Send + Sync>;

/// A pooled HTTP client for peer calls: HTTPS with mutual TLS when the node
/// has peer TLS ([`crate::tls`]), plain HTTP otherwise. It signs each request
/// (v3, with this node's id, the receiver's and a fresh sequence number) and
/// accepts only answers the receiver signed for it.
#[derive(Clone)]
pub struct PeerClient {
    http: Client<Connector, Full<Bytes>>,
    auth: Arc<PeerAuth>,
    scheme: &'static str,
    /// The node this client speaks for (none for the CLI).
    from: Option<NodeId>,
    known: KnownPeers,
    /// This run's start time (ms): with `seq`, unique per request.
    epoch: u64,
    seq: Arc<AtomicU64>,
    cluster: ClusterSource,
    refusals: Arc<PeerRefusals>,
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch by the system clock (peer messages).
pub fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// How much of an unauthenticated answer is read, for the error message.
const UNSIGNED_PREFIX: usize = 512;

impl PeerClient {
    /// A client for node `from` (`None`: an operator's tool, such as
    /// `arca cluster init`), over mutual TLS with `tls` if given, whose
    /// cluster id `cluster` tells once known; refused answers are counted in
    /// `refusals`.
    pub fn new(
        auth: Arc<PeerAuth>,
        tls: Option<Arc<PeerTls>>,
        from: Option<NodeId>,
        cluster: ClusterSource,
        refusals: Arc<PeerRefusals>,
    ) -> Self {
        let known = KnownPeers::default();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(crate::limits::PEER_POOL_IDLE)
            .build(Connector::peer(tls, known.clone()));
        Self {
            http,
            auth,
            scheme,
            from,
            known,
            epoch: unix_now_ms().max(0) as u64,
            seq: Arc::new(AtomicU64::new(0)),
            cluster,
            refusals,
        }
    }

    /// Records that `addr` is `node`'s peer address: a TLS connection to it
    /// must present that node's certificate.
    pub fn learn_peer(&self, node: NodeId, addr: &str) {
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        known.retain(|a, n| *n != node || a == addr);
        known.insert(addr.to_string(), node);
    }

    /// A client for an operator's tool: no node id, no cluster yet.
    pub fn anonymous(auth: Arc<PeerAuth>, tls: Option<Arc<PeerTls>>) -> Self {
        Self::new(auth, tls, None, Arc::new(|| None), Arc::default())
    }

    /// POSTs `body` (postcard) to node `to` at `addr` + `path` and decodes the answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        to: NodeId,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError> {
        let body = postcard::to_allocvec(body)
            .map_err(|e| PeerError::Decode(addr.to_string(), e.to_string()))?;
        let bytes = self
            .call_raw(Some(to), addr, path, body, "application/postcard", timeout)
            .await?;
        postcard::from_bytes(&bytes).map_err(|e| PeerError::Decode(addr.to_string(), e.to_string()))
    }

    /// POSTs raw bytes to node `to` (`None`: whichever node listens at
    /// `addr`, for `cluster init` only); returns the body of a 200 answer
    /// signed by that node for this request.
    pub async fn call_raw(
        &self,
        to: Option<NodeId>,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        timeout: Duration,
    ) -> Result<Bytes, PeerError> {
        let route = Route {
            cluster: (self.cluster)(),
            from: self.from,
            to,
        };
        let id = RequestId {
            from: self.from,
            epoch: self.epoch,
            seq: self.seq.fetch_add(1, Ordering::Relaxed) + 1,
        };
        let auth = self
            .auth
            .sign("POST", path, &route, &id, unix_now_ms(), &body);
        let mut req = http::Request::post(format!("{}://{addr}{path}", self.scheme));
        if let Some(from) = self.from {
            req = req.header(FROM_HEADER, from);
        }
        let req = req
            .header(HEADER, auth)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PeerError::Unreachable(addr.to_string(), e.to_string()))?;
        let unreachable =
            |e: &dyn std::fmt::Display| PeerError::Unreachable(addr.to_string(), e.to_string());
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| PeerError::Unreachable(addr.to_string(), error_chain(&e)))?;
            let status = resp.status();
            let header = resp
                .headers()
                .get(HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let content_length = resp
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            // The answer's head is checked before its body is read.
            let head = match self.auth.verify_response_head(
                header.as_deref(),
                &id,
                to,
                status.as_u16(),
                content_length,
                MAX_PEER_BODY as u64,
            ) {
                Ok(h) => h,
                Err(e) => {
                    self.refusals.count(&e);
                    // What it says is not trusted; a short prefix helps the
                    // operator see, say, an older node's refusal.
                    let said = match Limited::new(resp.into_body(), UNSIGNED_PREFIX)
                        .collect()
                        .await
                    {
                        Ok(b) => String::from_utf8_lossy(&b.to_bytes())
                            .chars()
                            .take(300)
                            .collect::<String>(),
                        Err(_) => String::new(),
                    };
                    return Err(PeerError::Refused(
                        addr.to_string(),
                        format!("{e} (HTTP {}: {said})", status.as_u16()),
                    ));
                }
            };
            let limit = usize::try_from(head.len()).unwrap_or(MAX_PEER_BODY);
            let body = Limited::new(resp.into_body(), limit)
                .collect()
                .await
                .map_err(|e| unreachable(&e))?
                .to_bytes();
            if let Err(e) = self.auth.verify_response_body(&head, &id, &body) {
                self.refusals.count(&e);
                return Err(PeerError::Refused(addr.to_string(), e.to_string()));
            }
            if !status.is_success() {
                return Err(PeerError::Status(
                    addr.to_string(),
                    status.as_u16(),
                    String::from_utf8_lossy(&body).chars().take(300).collect(),
                ));
            }
            Ok(body)
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| PeerError::Timeout(addr.to_string()))?
    }

    pub async fn forward(
        &self,
        leader: NodeId,
        info: &NodeInfo,
        req: &ForwardRequest,
        timeout: Duration,
    ) -> Result<ForwardResponse, PeerError> {
        self.call(leader, &info.peer_addr, PATH_FORWARD, req, timeout)
            .await
    }
}

/// An error and its causes, one line (a failed TLS check is a cause).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// Builds a [`PeerConnection`] per target for openraft.
#[derive(Clone)]
pub struct Network {
    pub client: PeerClient,
    pub counters: Arc<crate::counters::Counters>,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        self.client.learn_peer(target, &node.peer_addr);
        PeerConnection {
            client: self.client.clone(),
            target,
            addr: node.peer_addr.clone(),
            counters: self.counters.clone(),
        }
    }
}

pub struct PeerConnection {
    client: PeerClient,
    target: NodeId,
    addr: String,
    counters: Arc<crate::counters::Counters>,
}

type RpcResult<T, E = openraft::error::Infallible> =
    Result<T, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>;

impl PeerConnection {
    async fn rpc<Req, Resp, E>(
        &self,
        path: &str,
        req: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let ttl = option.hard_ttl();
        let res: Result<Result<Resp, RaftError<NodeId, E>>, PeerError> = self
            .client
            .call(self.target, &self.addr, path, req, ttl)
            .await;
        match res {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Err(e @ PeerError::Unreachable(..)) => Err(RPCError::Unreachable(Unreachable::new(&e))),
            Err(e) => Err(RPCError::Network(NetworkError::new(&e))),
        }
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>> {
        self.rpc(PATH_APPEND, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let last_chunk = rpc.done;
        let r = self.rpc(PATH_SNAPSHOT, &rpc, &option).await;
        if last_chunk && r.is_ok() {
            crate::counters::Counters::bump(&self.counters.snapshots_sent);
        }
        r
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.rpc(PATH_VOTE, &rpc, &option).await
    }
}
