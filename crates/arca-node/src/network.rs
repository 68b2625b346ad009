//! Node-to-node RPC over HTTP/1.1 with postcard bodies: the client side
//! (Raft's network and forwarding to the leader). The server side is
//! [`crate::peer`].

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
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

use crate::peer_auth::{PeerAuth, HEADER};
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
}

/// A pooled HTTP client for peer calls: HTTPS with mutual TLS when the node
/// has peer TLS ([`crate::tls`]), plain HTTP otherwise.
#[derive(Clone)]
pub struct PeerClient {
    http: Client<Connector, Full<Bytes>>,
    auth: Arc<PeerAuth>,
    scheme: &'static str,
    /// The node this client speaks for (none for the CLI).
    from: Option<NodeId>,
    known: KnownPeers,
}

pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl PeerClient {
    /// A plain-HTTP client that names no sender.
    pub fn new(auth: Arc<PeerAuth>) -> Self {
        Self::with_tls(auth, None, None)
    }

    /// A client for node `from` (if any), over mutual TLS with `tls`.
    pub fn with_tls(auth: Arc<PeerAuth>, tls: Option<Arc<PeerTls>>, from: Option<NodeId>) -> Self {
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
        }
    }

    /// Records that `addr` is `node`'s peer address: a TLS connection to it
    /// must present that node's certificate.
    pub fn learn_peer(&self, node: NodeId, addr: &str) {
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        known.retain(|a, n| *n != node || a == addr);
        known.insert(addr.to_string(), node);
    }

    /// POSTs `body` (postcard) to `addr` + `path` and decodes the answer.
    pub async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        addr: &str,
        path: &str,
        body: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError> {
        let body = postcard::to_allocvec(body)
            .map_err(|e| PeerError::Decode(addr.to_string(), e.to_string()))?;
        let bytes = self
            .call_raw(addr, path, body, "application/postcard", timeout)
            .await?;
        postcard::from_bytes(&bytes).map_err(|e| PeerError::Decode(addr.to_string(), e.to_string()))
    }

    /// POSTs raw bytes; returns the body of a 200 answer.
    pub async fn call_raw(
        &self,
        addr: &str,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
        timeout: Duration,
    ) -> Result<Bytes, PeerError> {
        let auth = self.auth.sign("POST", path, unix_now(), &body);
        let mut req = http::Request::post(format!("{}://{addr}{path}", self.scheme));
        if let Some(from) = self.from {
            req = req.header(FROM_HEADER, from);
        }
        let req = req
            .header(HEADER, auth)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| PeerError::Unreachable(addr.to_string(), e.to_string()))?;
        let fut = async {
            let resp = self
                .http
                .request(req)
                .await
                .map_err(|e| PeerError::Unreachable(addr.to_string(), error_chain(&e)))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| PeerError::Unreachable(addr.to_string(), e.to_string()))?
                .to_bytes();
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
        leader: &NodeInfo,
        req: &ForwardRequest,
        timeout: Duration,
    ) -> Result<ForwardResponse, PeerError> {
        self.call(&leader.peer_addr, PATH_FORWARD, req, timeout)
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
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Self::Network {
        self.client.learn_peer(target, &node.peer_addr);
        PeerConnection {
            client: self.client.clone(),
            target,
            addr: node.peer_addr.clone(),
        }
    }
}

pub struct PeerConnection {
    client: PeerClient,
    target: NodeId,
    addr: String,
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
        let res: Result<Result<Resp, RaftError<NodeId, E>>, PeerError> =
            self.client.call(&self.addr, path, req, ttl).await;
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
        self.rpc(PATH_SNAPSHOT, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>> {
        self.rpc(PATH_VOTE, &rpc, &option).await
    }
}
