//! Authentication between nodes with the cluster secret (peer protocol v6).
//!
//! Each peer request carries
//! `x-arca-peer-auth: v6 <cluster> <from> <to> <epoch> <seq> <time> <length> <head MAC> <body MAC>`:
//! HMAC-SHA256s under a key derived from the cluster secret. The head MAC
//! covers the method, path, cluster id, sender and receiver node ids, the
//! sender's run (`epoch`, its start time in ms) and sequence number, the time
//! (ms) and the body length; the body MAC adds the body's hash. `-` stands
//! for an id not known yet: the cluster of a node that has not applied
//! `cluster init`, or the sender and receiver of `arca cluster init`.
//!
//! A receiver checks, before it reads any of the body ([`PeerAuth::verify_head`],
//! [`ReplayGuard::admit`]): the head MAC; that the length is the request's
//! `Content-Length`, within its limit; that the request is addressed to it,
//! from its cluster; that its time is within [`MAX_SKEW_MS`] of its own clock
//! and not before this process started; and that this `(sender, epoch, seq)`
//! was not admitted before. Then the body MAC.
//!
//! Every answer to a request whose head verified carries
//! `x-arca-peer-auth: v6 <responder> <status> <length> <head MAC> <body MAC>`,
//! bound to the request's `(from, epoch, seq)`: a client refuses an answer
//! without it, from another node, to another request, or whose body does not
//! match — before it reads more of the body than the signed length.
//!
//! The bodies are not encrypted: everything secret that crosses the peer port
//! is already wrapped under the root key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arca_state::ClusterInfo;
use aws_lc_rs::{digest, hmac};
use subtle::ConstantTimeEq;

use crate::types::NodeId;

pub const HEADER: &str = "x-arca-peer-auth";
/// The protocol version this node speaks (and the only one it accepts).
pub const VERSION: &str = "v6";
/// How far a request's time may be from the receiver's clock.
pub const MAX_SKEW_MS: i64 = 300_000;
/// The shortest cluster secret accepted.
pub const MIN_SECRET_LEN: usize = 16;
/// Sequence numbers per sender run a receiver remembers: a request more than
/// this far behind the newest one from its sender is refused (it would be a
/// replay the window no longer covers). 8 KiB per sender.
pub const REPLAY_WINDOW: u64 = 65_536;
/// Senders a receiver tracks at most; requests from further senders are
/// refused. So the replay state is at most 1024 × 8 KiB.
pub const MAX_SENDERS: usize = 1024;

/// Identifies a cluster: a digest of the facts fixed at `cluster init`.
pub type ClusterId = [u8; 16];

/// The id of the cluster `info` describes.
pub fn cluster_id(info: &ClusterInfo) -> ClusterId {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"arca/cluster-id/v1\n");
    for part in [
        info.region.as_str(),
        info.account_id.as_str(),
        &hex::encode(info.root_check_value),
        &info.created_ms.to_string(),
    ] {
        ctx.update(part.as_bytes());
        ctx.update(b"\n");
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&ctx.finish().as_ref()[..16]);
    id
}

pub struct PeerAuth {
    /// Signs with the first; accepts a MAC under any (during a
    /// cluster-secret rotation a node holds the current and the other one).
    keys: Vec<hmac::Key>,
}

impl std::fmt::Debug for PeerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PeerAuth([REDACTED])")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PeerAuthError {
    #[error("missing or malformed {HEADER} header")]
    Malformed,
    #[error("the peer speaks protocol {0} and this node {VERSION}: nodes of different protocols cannot form a cluster: run one release on every node (see docs/upgrading.md)")]
    Version(String),
    #[error("peer request time is more than {MAX_SKEW_MS} ms away from this node's clock")]
    Skew,
    #[error("peer request was signed before this node started; it may have been seen before")]
    BeforeStart,
    #[error(
        "peer request signature does not match (is the cluster secret the same on every node?)"
    )]
    Mismatch,
    #[error("peer request body length does not match its signature or exceeds the limit")]
    Length,
    #[error("peer request was already received (a replay)")]
    Replay,
    #[error("peer request is addressed to node {to}, not to this node ({me})")]
    WrongTarget { to: String, me: NodeId },
    #[error("peer request comes from another cluster")]
    WrongCluster,
    #[error("too many peer senders to track ({MAX_SENDERS})")]
    TooManySenders,
    #[error("peer answer is not signed with {VERSION} (is the peer running an older release?)")]
    UnsignedResponse,
    #[error("peer answer's signature does not match the request, the node or the body")]
    ResponseMismatch,
}

impl PeerAuthError {
    /// The `reason` label it is counted under.
    pub fn reason(&self) -> &'static str {
        match self {
            PeerAuthError::Malformed => "malformed",
            PeerAuthError::Version(_) => "version",
            PeerAuthError::Skew | PeerAuthError::BeforeStart => "stale",
            PeerAuthError::Mismatch | PeerAuthError::Length => "signature",
            PeerAuthError::Replay => "replay",
            PeerAuthError::WrongTarget { .. } => "target",
            PeerAuthError::WrongCluster => "cluster",
            PeerAuthError::TooManySenders => "senders",
            PeerAuthError::UnsignedResponse | PeerAuthError::ResponseMismatch => "response",
        }
    }
}

/// Who a request is from and for. `None` is `-` on the wire: not known yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub cluster: Option<ClusterId>,
    pub from: Option<NodeId>,
    pub to: Option<NodeId>,
}

/// What makes a request unique: its sender's run and sequence number there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestId {
    pub from: Option<NodeId>,
    /// The sender's start time (ms since the Unix epoch).
    pub epoch: u64,
    pub seq: u64,
}

/// A request head whose MAC verified: what the body must match.
#[derive(Debug, Clone)]
pub struct VerifiedHead {
    pub route: Route,
    pub id: RequestId,
    ts_ms: i64,
    len: u64,
    body_mac: Vec<u8>,
}

impl VerifiedHead {
    /// The body length the sender signed.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn ts_ms(&self) -> i64 {
        self.ts_ms
    }
}

/// An answer's head whose MAC verified: what its body must match.
#[derive(Debug, Clone)]
pub struct VerifiedResponse {
    responder: Option<NodeId>,
    status: u16,
    len: u64,
    body_mac: Vec<u8>,
}

impl VerifiedResponse {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

fn opt_id(v: Option<NodeId>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

fn opt_cluster(v: Option<ClusterId>) -> String {
    v.map_or_else(|| "-".to_string(), hex::encode)
}

fn parse_id(s: &str) -> Result<Option<NodeId>, PeerAuthError> {
    match s {
        "-" => Ok(None),
        s => s.parse().map(Some).map_err(|_| PeerAuthError::Malformed),
    }
}

fn parse_cluster(s: &str) -> Result<Option<ClusterId>, PeerAuthError> {
    if s == "-" {
        return Ok(None);
    }
    let v = hex::decode(s).map_err(|_| PeerAuthError::Malformed)?;
    v.try_into().map(Some).map_err(|_| PeerAuthError::Malformed)
}

/// Splits a header into exactly `N` space-separated fields after the version.
fn fields<const N: usize>(header: Option<&str>) -> Result<[&str; N], PeerAuthError> {
    let header = header.ok_or(PeerAuthError::Malformed)?;
    let mut parts = header.split(' ');
    match parts.next() {
        Some(VERSION) => {}
        Some(v) if v.len() <= 4 && v.starts_with('v') && v[1..].parse::<u8>().is_ok() => {
            return Err(PeerAuthError::Version(v.to_string()))
        }
        _ => return Err(PeerAuthError::Malformed),
    }
    let mut out = [""; N];
    for slot in &mut out {
        *slot = parts.next().ok_or(PeerAuthError::Malformed)?;
    }
    if parts.next().is_some() {
        return Err(PeerAuthError::Malformed);
    }
    Ok(out)
}

fn eq(expected: &hmac::Tag, got: &[u8]) -> bool {
    bool::from(expected.as_ref().ct_eq(got))
}

impl PeerAuth {
    /// `secret` is the cluster secret as read from its file (surrounding white space is ignored).
    pub fn new(secret: &[u8]) -> Result<Self, String> {
        Self::with_secrets(secret, &[])
    }

    /// Signs with `secret`, and accepts what `also` (further secrets, during
    /// a cluster-secret rotation) signed as well.
    pub fn with_secrets(secret: &[u8], also: &[&[u8]]) -> Result<Self, String> {
        let key = |secret: &[u8]| {
            let trimmed = secret.trim_ascii();
            if trimmed.len() < MIN_SECRET_LEN {
                return Err(format!(
                    "the cluster secret must be at least {MIN_SECRET_LEN} bytes (got {})",
                    trimmed.len()
                ));
            }
            let derive = hmac::Key::new(hmac::HMAC_SHA256, trimmed);
            let k = hmac::sign(&derive, b"arca/peer-auth/v3");
            Ok(hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()))
        };
        let mut keys = vec![key(secret)?];
        for s in also {
            keys.push(key(s)?);
        }
        Ok(Self { keys })
    }

    /// Whether `got` is the MAC under any accepted secret; constant time for
    /// each.
    fn mac_matches(&self, label: &[u8], parts: &[&str], body: Option<&[u8]>, got: &[u8]) -> bool {
        self.keys
            .iter()
            .any(|k| eq(&Self::mac_with(k, label, parts, body), got))
    }

    fn mac(&self, label: &[u8], parts: &[&str], body: Option<&[u8]>) -> hmac::Tag {
        Self::mac_with(&self.keys[0], label, parts, body)
    }

    fn mac_with(key: &hmac::Key, label: &[u8], parts: &[&str], body: Option<&[u8]>) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(label);
        ctx.update(b"\n");
        for part in parts {
            ctx.update(part.as_bytes());
            ctx.update(b"\n");
        }
        if let Some(body) = body {
            ctx.update(digest::digest(&digest::SHA256, body).as_ref());
        }
        ctx.sign()
    }

    /// The signed fields of a request, in order.
    fn request_parts(
        method: &str,
        path: &str,
        route: &Route,
        id: &RequestId,
        ts_ms: i64,
        len: u64,
    ) -> [String; 9] {
        [
            method.to_string(),
            path.to_string(),
            opt_cluster(route.cluster),
            opt_id(route.from),
            opt_id(route.to),
            id.epoch.to_string(),
            id.seq.to_string(),
            ts_ms.to_string(),
            len.to_string(),
        ]
    }

    /// The header value for a request sent at `now_ms`. `id.from` must be
    /// `route.from`.
    pub fn sign(
        &self,
        method: &str,
        path: &str,
        route: &Route,
        id: &RequestId,
        now_ms: i64,
        body: &[u8],
    ) -> String {
        debug_assert_eq!(id.from, route.from);
        let len = body.len() as u64;
        let parts = Self::request_parts(method, path, route, id, now_ms, len);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        let head = self.mac(b"v3-head", &parts, None);
        let body = self.mac(b"v3-body", &parts, Some(body));
        format!(
            "{VERSION} {} {} {} {} {} {now_ms} {len} {} {}",
            opt_cluster(route.cluster),
            opt_id(route.from),
            opt_id(route.to),
            id.epoch,
            id.seq,
            hex::encode(head),
            hex::encode(body)
        )
    }

    /// Checks the header against the request line, the clock and the
    /// `Content-Length` before the body is read; the length must be at most
    /// `max_len`. Whom it is for and whether it is new is
    /// [`ReplayGuard::admit`]'s to check.
    pub fn verify_head(
        &self,
        header: Option<&str>,
        method: &str,
        path: &str,
        now_ms: i64,
        content_length: Option<u64>,
        max_len: u64,
    ) -> Result<VerifiedHead, PeerAuthError> {
        let [cluster, from, to, epoch, seq, ts, len, head, body] = fields::<9>(header)?;
        let route = Route {
            cluster: parse_cluster(cluster)?,
            from: parse_id(from)?,
            to: parse_id(to)?,
        };
        let id = RequestId {
            from: route.from,
            epoch: epoch.parse().map_err(|_| PeerAuthError::Malformed)?,
            seq: seq.parse().map_err(|_| PeerAuthError::Malformed)?,
        };
        let ts_ms: i64 = ts.parse().map_err(|_| PeerAuthError::Malformed)?;
        let len: u64 = len.parse().map_err(|_| PeerAuthError::Malformed)?;
        let head = hex::decode(head).map_err(|_| PeerAuthError::Malformed)?;
        let body_mac = hex::decode(body).map_err(|_| PeerAuthError::Malformed)?;
        if now_ms.abs_diff(ts_ms) > MAX_SKEW_MS as u64 {
            return Err(PeerAuthError::Skew);
        }
        let parts = Self::request_parts(method, path, &route, &id, ts_ms, len);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        if !self.mac_matches(b"v3-head", &parts, None, &head) {
            return Err(PeerAuthError::Mismatch);
        }
        if content_length != Some(len) || len > max_len {
            return Err(PeerAuthError::Length);
        }
        Ok(VerifiedHead {
            route,
            id,
            ts_ms,
            len,
            body_mac,
        })
    }

    /// Checks the body against a verified head.
    pub fn verify_body(
        &self,
        head: &VerifiedHead,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Result<(), PeerAuthError> {
        if body.len() as u64 != head.len {
            return Err(PeerAuthError::Length);
        }
        let parts = Self::request_parts(method, path, &head.route, &head.id, head.ts_ms, head.len);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        if self.mac_matches(b"v3-body", &parts, Some(body), &head.body_mac) {
            Ok(())
        } else {
            Err(PeerAuthError::Mismatch)
        }
    }

    fn response_parts(
        request: &RequestId,
        responder: Option<NodeId>,
        status: u16,
        len: u64,
    ) -> [String; 6] {
        [
            opt_id(request.from),
            request.epoch.to_string(),
            request.seq.to_string(),
            opt_id(responder),
            status.to_string(),
            len.to_string(),
        ]
    }

    /// The header value for the answer to `request`.
    pub fn sign_response(
        &self,
        request: &RequestId,
        responder: NodeId,
        status: u16,
        body: &[u8],
    ) -> String {
        let len = body.len() as u64;
        let parts = Self::response_parts(request, Some(responder), status, len);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        format!(
            "{VERSION} {responder} {status} {len} {} {}",
            hex::encode(self.mac(b"v3-response-head", &parts, None)),
            hex::encode(self.mac(b"v3-response-body", &parts, Some(body)))
        )
    }

    /// Checks an answer's header before its body is read: it answers
    /// `request`, comes from `responder` (any node if `None`), with this
    /// status and `Content-Length` (at most `max_len`).
    pub fn verify_response_head(
        &self,
        header: Option<&str>,
        request: &RequestId,
        responder: Option<NodeId>,
        status: u16,
        content_length: Option<u64>,
        max_len: u64,
    ) -> Result<VerifiedResponse, PeerAuthError> {
        let [from, st, len, head, body] = match fields::<5>(header) {
            Ok(f) => f,
            Err(PeerAuthError::Malformed) => return Err(PeerAuthError::UnsignedResponse),
            Err(e) => return Err(e),
        };
        let from = parse_id(from).map_err(|_| PeerAuthError::ResponseMismatch)?;
        let st: u16 = st.parse().map_err(|_| PeerAuthError::ResponseMismatch)?;
        let len: u64 = len.parse().map_err(|_| PeerAuthError::ResponseMismatch)?;
        let head = hex::decode(head).map_err(|_| PeerAuthError::ResponseMismatch)?;
        let body_mac = hex::decode(body).map_err(|_| PeerAuthError::ResponseMismatch)?;
        let parts = Self::response_parts(request, from, st, len);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        if !self.mac_matches(b"v3-response-head", &parts, None, &head)
            || st != status
            || from.is_none()
            || (responder.is_some() && from != responder)
        {
            return Err(PeerAuthError::ResponseMismatch);
        }
        if content_length.is_some_and(|c| c != len) || len > max_len {
            return Err(PeerAuthError::ResponseMismatch);
        }
        Ok(VerifiedResponse {
            responder: from,
            status: st,
            len,
            body_mac,
        })
    }

    /// Checks an answer's body against its verified head.
    pub fn verify_response_body(
        &self,
        head: &VerifiedResponse,
        request: &RequestId,
        body: &[u8],
    ) -> Result<(), PeerAuthError> {
        if body.len() as u64 != head.len {
            return Err(PeerAuthError::ResponseMismatch);
        }
        let parts = Self::response_parts(request, head.responder, head.status, head.len);
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        if self.mac_matches(b"v3-response-body", &parts, Some(body), &head.body_mac) {
            Ok(())
        } else {
            Err(PeerAuthError::ResponseMismatch)
        }
    }
}

/// The sequence numbers seen from one run of one sender: the newest, and a
/// bitmap of the [`REPLAY_WINDOW`] before it.
struct Window {
    epoch: u64,
    newest: u64,
    seen: Box<[u64]>,
}

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

impl Window {
    fn new(epoch: u64, seq: u64) -> Self {
        let mut w = Window {
            epoch,
            newest: seq,
            seen: vec![0u64; WORDS].into_boxed_slice(),
        };
        w.set(seq);
        w
    }

    fn slot(seq: u64) -> (usize, u64) {
        let bit = seq % REPLAY_WINDOW;
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    fn set(&mut self, seq: u64) {
        let (w, m) = Self::slot(seq);
        self.seen[w] |= m;
    }

    fn is_set(&self, seq: u64) -> bool {
        let (w, m) = Self::slot(seq);
        self.seen[w] & m != 0
    }

    /// Records `seq`; false if it was seen, or is too old to tell.
    fn admit(&mut self, seq: u64) -> bool {
        if seq > self.newest {
            if seq - self.newest >= REPLAY_WINDOW {
                self.seen.iter_mut().for_each(|w| *w = 0);
            } else {
                for s in self.newest + 1..seq {
                    let (w, m) = Self::slot(s);
                    self.seen[w] &= !m;
                }
                let (w, m) = Self::slot(seq);
                self.seen[w] &= !m;
            }
            self.newest = seq;
            self.set(seq);
            return true;
        }
        if self.newest - seq >= REPLAY_WINDOW || self.is_set(seq) {
            return false;
        }
        self.set(seq);
        true
    }
}

/// Refusals of peer messages since start, by reason (`/metrics`).
#[derive(Default)]
pub struct PeerRefusals {
    counts: [AtomicU64; REASONS.len()],
}

/// The reasons a peer message is refused, as labelled in `/metrics`.
pub const REASONS: [&str; 9] = [
    "replay",
    "target",
    "cluster",
    "stale",
    "signature",
    "malformed",
    "version",
    "senders",
    "response",
];

impl PeerRefusals {
    pub fn count(&self, e: &PeerAuthError) {
        if let Some(i) = REASONS.iter().position(|r| *r == e.reason()) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `(reason, count)` for every reason.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        REASONS
            .iter()
            .zip(&self.counts)
            .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
            .collect()
    }
}

/// The receiving side's checks beyond the MAC: the request is for this node
/// and its cluster, and new. Memory: one [`Window`] per sender (8 KiB), at
/// most [`MAX_SENDERS`].
///
/// Restarts: a sender's run is its `epoch` (its start time); a newer run
/// starts a new window and an older run's requests are refused. This node
/// forgets everything when it restarts, so it refuses requests signed before
/// it started (by its clock): a request from before the restart may have
/// been admitted then. A sender whose clock lags this node's by `d` is
/// refused for `d` after this node starts; one whose clock went back across
/// its own restart, until it passes its previous start time.
pub struct ReplayGuard {
    me: NodeId,
    started_ms: i64,
    windows: Mutex<HashMap<Option<NodeId>, Window>>,
    /// Shared with this node's [`crate::network::PeerClient`], which counts
    /// the answers it refuses.
    pub refusals: Arc<PeerRefusals>,
}

impl ReplayGuard {
    pub fn new(me: NodeId, started_ms: i64) -> Self {
        Self {
            me,
            started_ms,
            windows: Mutex::new(HashMap::new()),
            refusals: Arc::default(),
        }
    }

    /// Admits a verified head to `path` for this node in `cluster` (`None`:
    /// this node has not learnt its cluster yet and takes any), or says why
    /// not. Each `(sender, epoch, seq)` is admitted once.
    pub fn admit(
        &self,
        head: &VerifiedHead,
        path: &str,
        cluster: Option<ClusterId>,
    ) -> Result<(), PeerAuthError> {
        let r = self.check(head, path, cluster);
        if let Err(e) = &r {
            self.refusals.count(e);
        }
        r
    }

    fn check(
        &self,
        head: &VerifiedHead,
        path: &str,
        cluster: Option<ClusterId>,
    ) -> Result<(), PeerAuthError> {
        // Only `arca cluster init`, run before the node ids mean anything
        // to the operator's tool, may leave sender and receiver out.
        let anonymous_ok = path == crate::network::PATH_INIT;
        match head.route.to {
            Some(to) if to == self.me => {}
            None if anonymous_ok => {}
            to => {
                return Err(PeerAuthError::WrongTarget {
                    to: opt_id(to),
                    me: self.me,
                })
            }
        }
        if head.route.from.is_none() && !anonymous_ok {
            return Err(PeerAuthError::Malformed);
        }
        if let Some(mine) = cluster {
            if head.route.cluster != Some(mine) {
                return Err(PeerAuthError::WrongCluster);
            }
        }
        if head.ts_ms < self.started_ms {
            return Err(PeerAuthError::BeforeStart);
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let n = windows.len();
        match windows.get_mut(&head.id.from) {
            Some(w) if head.id.epoch < w.epoch => Err(PeerAuthError::Replay),
            Some(w) if head.id.epoch > w.epoch => {
                *w = Window::new(head.id.epoch, head.id.seq);
                Ok(())
            }
            Some(w) => {
                if w.admit(head.id.seq) {
                    Ok(())
                } else {
                    Err(PeerAuthError::Replay)
                }
            }
            None if n >= MAX_SENDERS => Err(PeerAuthError::TooManySenders),
            None => {
                windows.insert(head.id.from, Window::new(head.id.epoch, head.id.seq));
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a cluster secret of enough length\n";
    const C1: ClusterId = [1; 16];

    fn route(from: NodeId, to: NodeId) -> Route {
        Route {
            cluster: Some(C1),
            from: Some(from),
            to: Some(to),
        }
    }

    fn rid(from: NodeId, epoch: u64, seq: u64) -> RequestId {
        RequestId {
            from: Some(from),
            epoch,
            seq,
        }
    }

    /// Signs a request from node 2 to node 1 and verifies it as node 1 would.
    fn verify(
        a: &PeerAuth,
        h: &str,
        path: &str,
        now: i64,
        body: &[u8],
    ) -> Result<VerifiedHead, PeerAuthError> {
        let head = a.verify_head(Some(h), "POST", path, now, Some(body.len() as u64), 1 << 20)?;
        a.verify_body(&head, "POST", path, body)?;
        Ok(head)
    }

    /// A cluster-secret rotation's three steps: each node signs with its
    /// first secret and accepts the others, so at every step a node's
    /// messages are accepted by nodes one step behind or ahead.
    #[test]
    fn a_second_secret_is_accepted_but_not_signed_with() {
        let new: &[u8] = b"the next cluster secret, long enough";
        let old = PeerAuth::new(SECRET).unwrap();
        let step1 = PeerAuth::with_secrets(SECRET, &[new]).unwrap();
        let step2 = PeerAuth::with_secrets(new, &[SECRET]).unwrap();
        let step3 = PeerAuth::new(new).unwrap();
        let signed = |a: &PeerAuth| {
            a.sign(
                "POST",
                "/raft/vote",
                &route(2, 1),
                &rid(2, 5, 1),
                1000,
                b"body",
            )
        };
        let ok = |a: &PeerAuth, h: &str| verify(a, h, "/raft/vote", 1000, b"body").is_ok();
        for (from, to) in [
            (&old, &step1),
            (&step1, &old),
            (&step1, &step2),
            (&step2, &step1),
            (&step2, &step3),
            (&step3, &step2),
        ] {
            assert!(ok(to, &signed(from)));
        }
        // Two steps apart, the secrets no longer meet.
        assert!(!ok(&step3, &signed(&old)));
        assert!(!ok(&old, &signed(&step3)));
        // Step 1 still signs with the current secret.
        assert_eq!(signed(&step1), signed(&old));
        assert!(PeerAuth::with_secrets(SECRET, &[b"short"]).is_err());
    }

    #[test]
    fn sign_verify() {
        let a = PeerAuth::new(SECRET).unwrap();
        let h = a.sign(
            "POST",
            "/raft/vote",
            &route(2, 1),
            &rid(2, 5, 1),
            1000,
            b"body",
        );
        let head = verify(&a, &h, "/raft/vote", 1010, b"body").unwrap();
        assert_eq!(head.route, route(2, 1));
        assert_eq!(head.id, rid(2, 5, 1));
        assert_eq!(
            verify(&a, &h, "/raft/vote", 1010, b"bodY").unwrap_err(),
            PeerAuthError::Mismatch
        );
        assert_eq!(
            a.verify_head(Some(&h), "POST", "/raft/vote", 1010, Some(5), 10)
                .unwrap_err(),
            PeerAuthError::Length
        );
        assert_eq!(
            verify(&a, &h, "/forward", 1010, b"body").unwrap_err(),
            PeerAuthError::Mismatch
        );
        assert_eq!(
            verify(&a, &h, "/raft/vote", 1000 + MAX_SKEW_MS + 1, b"body").unwrap_err(),
            PeerAuthError::Skew
        );
        let b = PeerAuth::new(b"another cluster secret, long enough").unwrap();
        assert_eq!(
            verify(&b, &h, "/raft/vote", 1000, b"body").unwrap_err(),
            PeerAuthError::Mismatch
        );
        // Any signed field changed on the wire breaks the MAC: here the
        // receiver, the cluster and the sequence number.
        for (i, new) in [(3, "3"), (1, &"02".repeat(16)[..]), (5, "2")] {
            let mut f: Vec<&str> = h.split(' ').collect();
            f[i] = new;
            let forged = f.join(" ");
            assert_eq!(
                verify(&a, &forged, "/raft/vote", 1000, b"body").unwrap_err(),
                PeerAuthError::Mismatch,
                "field {i}"
            );
        }
        for bad in [
            None,
            Some(""),
            Some("v6 x y"),
            Some("v6 - 1 2 3 4 5 6 00 00 extra"),
            Some("x3 - 1 2 3 4 5 6 00 00"),
        ] {
            assert_eq!(
                a.verify_head(bad, "POST", "/", 1, Some(0), 0).unwrap_err(),
                PeerAuthError::Malformed
            );
        }
    }

    #[test]
    fn an_older_protocol_gets_a_clear_error() {
        let a = PeerAuth::new(SECRET).unwrap();
        let v2 = format!("v2 1000 4 {} {}", "00".repeat(32), "00".repeat(32));
        let e = a
            .verify_head(Some(&v2), "POST", "/forward", 1000, Some(4), 10)
            .unwrap_err();
        assert_eq!(e, PeerAuthError::Version("v2".into()));
        assert!(
            e.to_string().contains("run one release on every node"),
            "{e}"
        );
        // A request of the release before root-key rotation (v3).
        let v3 = format!(
            "v3 {} 2 1 5 1 1000 100 {} {}",
            "00".repeat(16),
            "00".repeat(32),
            "00".repeat(32)
        );
        let e = a
            .verify_head(Some(&v3), "POST", "/forward", 1000, Some(100), 10)
            .unwrap_err();
        assert_eq!(e, PeerAuthError::Version("v3".into()));
        assert!(
            e.to_string().contains("protocol v3 and this node v6"),
            "{e}"
        );
    }

    #[test]
    fn the_head_is_checked_before_any_body_byte() {
        let a = PeerAuth::new(SECRET).unwrap();
        let h = a.sign(
            "POST",
            "/forward",
            &route(2, 1),
            &rid(2, 5, 1),
            1000,
            &[7u8; 100],
        );
        let head = a
            .verify_head(Some(&h), "POST", "/forward", 1000, Some(100), 1000)
            .unwrap();
        assert_eq!(head.len(), 100);
        assert!(a
            .verify_body(&head, "POST", "/forward", &[7u8; 100])
            .is_ok());
        assert_eq!(
            a.verify_body(&head, "POST", "/forward", &[8u8; 100])
                .unwrap_err(),
            PeerAuthError::Mismatch
        );
        // A Content-Length other than the signed one, or over the limit.
        assert_eq!(
            a.verify_head(
                Some(&h),
                "POST",
                "/forward",
                1000,
                Some(10_000_000),
                1 << 30
            )
            .unwrap_err(),
            PeerAuthError::Length
        );
        assert_eq!(
            a.verify_head(Some(&h), "POST", "/forward", 1000, Some(100), 99)
                .unwrap_err(),
            PeerAuthError::Length
        );
        // Without the secret, a head never verifies, whatever it claims.
        let forged = format!(
            "v6 {} 2 1 5 1 1000 100 {} {}",
            hex::encode(C1),
            "00".repeat(32),
            "00".repeat(32)
        );
        assert_eq!(
            a.verify_head(Some(&forged), "POST", "/forward", 1000, Some(100), 1000)
                .unwrap_err(),
            PeerAuthError::Mismatch
        );
    }

    #[test]
    fn a_replay_is_refused_and_counted() {
        let a = PeerAuth::new(SECRET).unwrap();
        let g = ReplayGuard::new(1, 0);
        let h = a.sign("POST", "/forward", &route(2, 1), &rid(2, 5, 7), 1000, b"x");
        let head = verify(&a, &h, "/forward", 1000, b"x").unwrap();
        assert_eq!(g.admit(&head, "/forward", Some(C1)), Ok(()));
        // The same message again, 290 s later, within the clock window.
        let again = verify(&a, &h, "/forward", 1000 + 290_000, b"x").unwrap();
        assert_eq!(
            g.admit(&again, "/forward", Some(C1)),
            Err(PeerAuthError::Replay)
        );
        // Out of order but new: admitted once.
        for seq in [5, 9, 6] {
            let h = a.sign(
                "POST",
                "/forward",
                &route(2, 1),
                &rid(2, 5, seq),
                1000,
                b"x",
            );
            let head = verify(&a, &h, "/forward", 1000, b"x").unwrap();
            assert_eq!(g.admit(&head, "/forward", Some(C1)), Ok(()), "seq {seq}");
            assert_eq!(
                g.admit(&head, "/forward", Some(C1)),
                Err(PeerAuthError::Replay),
                "seq {seq}"
            );
        }
        // Too far behind the newest to tell: refused.
        let far = 9 + REPLAY_WINDOW;
        let h = a.sign(
            "POST",
            "/forward",
            &route(2, 1),
            &rid(2, 5, far),
            1000,
            b"x",
        );
        assert_eq!(
            g.admit(
                &verify(&a, &h, "/forward", 1000, b"x").unwrap(),
                "/forward",
                Some(C1)
            ),
            Ok(())
        );
        let h = a.sign("POST", "/forward", &route(2, 1), &rid(2, 5, 8), 1000, b"x");
        assert_eq!(
            g.admit(
                &verify(&a, &h, "/forward", 1000, b"x").unwrap(),
                "/forward",
                Some(C1)
            ),
            Err(PeerAuthError::Replay)
        );
        // The sender restarted (a newer epoch): its sequence starts again;
        // the old run's messages are refused from then on.
        let h = a.sign("POST", "/forward", &route(2, 1), &rid(2, 6, 1), 1000, b"x");
        assert_eq!(
            g.admit(
                &verify(&a, &h, "/forward", 1000, b"x").unwrap(),
                "/forward",
                Some(C1)
            ),
            Ok(())
        );
        let h = a.sign(
            "POST",
            "/forward",
            &route(2, 1),
            &rid(2, 5, far + 1),
            1000,
            b"x",
        );
        assert_eq!(
            g.admit(
                &verify(&a, &h, "/forward", 1000, b"x").unwrap(),
                "/forward",
                Some(C1)
            ),
            Err(PeerAuthError::Replay)
        );
        let counts = g.refusals.snapshot();
        assert!(counts.contains(&("replay", 6)), "{counts:?}");
    }

    #[test]
    fn this_node_restarted_refuses_what_was_signed_before() {
        let a = PeerAuth::new(SECRET).unwrap();
        let h = a.sign("POST", "/forward", &route(2, 1), &rid(2, 5, 7), 1000, b"x");
        let head = verify(&a, &h, "/forward", 1000, b"x").unwrap();
        assert_eq!(
            ReplayGuard::new(1, 500).admit(&head, "/forward", Some(C1)),
            Ok(())
        );
        // The same node after a restart at 2000 has forgotten it, but the
        // message is older than the restart.
        let restarted = ReplayGuard::new(1, 2000);
        assert_eq!(
            restarted.admit(&head, "/forward", Some(C1)),
            Err(PeerAuthError::BeforeStart)
        );
        assert!(restarted.refusals.snapshot().contains(&("stale", 1)));
    }

    #[test]
    fn a_message_for_another_node_or_cluster_is_refused() {
        let a = PeerAuth::new(SECRET).unwrap();
        let g = ReplayGuard::new(3, 0);
        // Recorded on its way from node 2 to node 1, sent to node 3.
        let h = a.sign("POST", "/forward", &route(2, 1), &rid(2, 5, 1), 1000, b"x");
        let head = verify(&a, &h, "/forward", 1000, b"x").unwrap();
        assert!(matches!(
            g.admit(&head, "/forward", Some(C1)),
            Err(PeerAuthError::WrongTarget { .. })
        ));
        // Sent back to its sender.
        let back = ReplayGuard::new(2, 0);
        assert!(matches!(
            back.admit(&head, "/forward", Some(C1)),
            Err(PeerAuthError::WrongTarget { .. })
        ));
        // Addressed right, but from another cluster with the same secret.
        let other = ReplayGuard::new(1, 0);
        assert_eq!(
            other.admit(&head, "/forward", Some([9; 16])),
            Err(PeerAuthError::WrongCluster)
        );
        // A node that has not learnt its cluster takes any (it is joining).
        assert_eq!(other.admit(&head, "/forward", None), Ok(()));
        // Without a cluster id, a node that knows its cluster refuses it.
        let none = Route {
            cluster: None,
            ..route(2, 1)
        };
        let h = a.sign("POST", "/forward", &none, &rid(2, 5, 2), 1000, b"x");
        let head = verify(&a, &h, "/forward", 1000, b"x").unwrap();
        assert_eq!(
            other.admit(&head, "/forward", Some(C1)),
            Err(PeerAuthError::WrongCluster)
        );
        // Only cluster init may be anonymous.
        let anon = Route {
            cluster: None,
            from: None,
            to: None,
        };
        let id = RequestId {
            from: None,
            epoch: 1,
            seq: 1,
        };
        let h = a.sign("POST", "/forward", &anon, &id, 1000, b"x");
        let head = verify(&a, &h, "/forward", 1000, b"x").unwrap();
        assert!(g.admit(&head, "/forward", None).is_err());
        let h = a.sign("POST", crate::network::PATH_INIT, &anon, &id, 1000, b"x");
        let head = verify(&a, &h, crate::network::PATH_INIT, 1000, b"x").unwrap();
        assert_eq!(g.admit(&head, crate::network::PATH_INIT, None), Ok(()));
        let counts = g.refusals.snapshot();
        assert!(counts.contains(&("target", 2)), "{counts:?}");
        assert!(other.refusals.snapshot().contains(&("cluster", 2)));
    }

    #[test]
    fn a_forged_or_mismatched_response_is_refused() {
        let a = PeerAuth::new(SECRET).unwrap();
        let req = rid(2, 5, 7);
        let r = a.sign_response(&req, 1, 200, b"answer");
        let check =
            |h: Option<&str>, req: &RequestId, from: Option<NodeId>, status, body: &[u8]| {
                let head =
                    a.verify_response_head(h, req, from, status, Some(body.len() as u64), 1 << 20)?;
                a.verify_response_body(&head, req, body)
            };
        assert_eq!(check(Some(&r), &req, Some(1), 200, b"answer"), Ok(()));
        assert_eq!(check(Some(&r), &req, None, 200, b"answer"), Ok(()));
        // No signature at all (an older node, or someone in the way).
        assert_eq!(
            check(None, &req, Some(1), 200, b"answer"),
            Err(PeerAuthError::UnsignedResponse)
        );
        // Another body, another status, another responder, another request.
        assert_eq!(
            check(Some(&r), &req, Some(1), 200, b"ANSWER"),
            Err(PeerAuthError::ResponseMismatch)
        );
        assert_eq!(
            check(Some(&r), &req, Some(1), 500, b"answer"),
            Err(PeerAuthError::ResponseMismatch)
        );
        assert_eq!(
            check(Some(&r), &req, Some(3), 200, b"answer"),
            Err(PeerAuthError::ResponseMismatch)
        );
        assert_eq!(
            check(Some(&r), &rid(2, 5, 8), Some(1), 200, b"answer"),
            Err(PeerAuthError::ResponseMismatch)
        );
        // A signed length other than the Content-Length is refused before
        // the body is read.
        assert_eq!(
            a.verify_response_head(Some(&r), &req, Some(1), 200, Some(1 << 30), 1 << 31)
                .unwrap_err(),
            PeerAuthError::ResponseMismatch
        );
        // Forged without the secret.
        let forged = format!("v6 1 200 6 {} {}", "00".repeat(32), "00".repeat(32));
        assert_eq!(
            check(Some(&forged), &req, Some(1), 200, b"answer"),
            Err(PeerAuthError::ResponseMismatch)
        );
    }

    #[test]
    fn short_secret_is_refused() {
        assert!(PeerAuth::new(b"short").is_err());
    }

    #[test]
    fn the_cluster_id_depends_on_every_fact_of_the_cluster() {
        let info = ClusterInfo {
            region: "r".into(),
            account_id: "1".into(),
            root_check_value: [1; 16],
            created_ms: 5,
        };
        let base = cluster_id(&info);
        assert_eq!(base, cluster_id(&info.clone()));
        let mut other = info.clone();
        other.created_ms = 6;
        assert_ne!(base, cluster_id(&other));
        let mut other = info;
        other.root_check_value = [2; 16];
        assert_ne!(base, cluster_id(&other));
    }
}
