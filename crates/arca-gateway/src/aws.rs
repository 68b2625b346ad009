//! The AWS KMS JSON 1.1 front-end: `POST /` with
//! `X-Amz-Target: TrentService.<Op>` (or `ArcaAdmin.<Op>`), SigV4-signed,
//! a JSON body in and out. It names the operation, authenticates the caller
//! and renders the answer or AWS's error shape; everything between is the
//! shared [`crate::pipeline`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use arca_crypto::SecretBytes;
use arca_sigv4::Authorization;
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use crate::api::Caller;
use crate::error::ApiError;
use crate::ops::Op;
use crate::pipeline::Invocation;
use crate::{request_id, Gateway, Resp, MAX_BODY};

impl Gateway {
    pub(crate) async fn aws(&self, req: hyper::Request<Incoming>, source: &str) -> Resp {
        let rid = request_id();
        let (parts, body) = req.into_parts();
        let target = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (body, auth) = match read_body(body, self.limits.body_timeout).await {
            Ok(b) => {
                let auth = self.authenticate(&parts, &b);
                (b, auth)
            }
            Err(e) => (Zeroizing::new(Vec::new()), Err(e)),
        };
        let result = self
            .execute(Invocation {
                request_id: &rid,
                op: Op::from_target(target),
                named: target,
                auth,
                body: &body,
                source,
                invocation_id: parts
                    .headers
                    .get("amz-sdk-invocation-id")
                    .map(|v| v.as_bytes()),
            })
            .await;
        // The request's bytes and the answer's (plaintexts, data keys,
        // secret access keys) are wiped once they are no longer needed.
        drop(body);
        let (status, body) = match result {
            Ok(v) => {
                let text = json_bytes(&v);
                wipe(v);
                (200, text)
            }
            Err(e) => (e.status, e.body()),
        };
        let mut r = hyper::Response::new(Full::new(Bytes::from_owner(Wiped(body))));
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
        if !self.options.accept_any_region {
            let cluster = self.node.cluster_info();
            if cluster.is_some_and(|c| c.region != auth.region) {
                return Err(ApiError::new(
                    400,
                    "InvalidSignatureException",
                    "Credential should be scoped to a valid region.",
                ));
            }
        }
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
        let key = self.signing_keys.get(&auth, &secret);
        arca_sigv4::verify_with_key(
            &auth,
            &parts.method,
            parts.uri.path(),
            parts.uri.query().unwrap_or(""),
            &parts.headers,
            body,
            &key,
        )?;
        Ok(Caller {
            access_key_id: auth.access_key_id,
            user,
        })
    }
}

/// Bytes wiped when the last reference to them is dropped (an answer's body,
/// once hyper has written it).
pub(crate) struct Wiped(pub(crate) Vec<u8>);

impl AsRef<[u8]> for Wiped {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Wiped {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `v` as JSON, in a buffer that never leaves a copy behind: it starts at a
/// size that holds most answers, and when it must grow, the bytes move to
/// a larger buffer and the old one is wiped (a `Vec` growing by itself
/// would free the old buffer with the plaintext in it).
pub(crate) fn json_bytes(v: &Value) -> Vec<u8> {
    let mut w = WipingWriter(Vec::with_capacity(512));
    if serde_json::to_writer(&mut w, v).is_err() {
        w.0.zeroize();
    }
    w.0
}

struct WipingWriter(Vec<u8>);

impl std::io::Write for WipingWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let need = self.0.len() + b.len();
        if need > self.0.capacity() {
            let mut bigger = Vec::with_capacity(need.max(2 * self.0.capacity()));
            bigger.extend_from_slice(&self.0);
            self.0.zeroize();
            self.0 = bigger;
        }
        self.0.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Wipes every string of an answer (base64 plaintexts, secrets) as it is
/// dropped.
pub(crate) fn wipe(v: Value) {
    match v {
        Value::String(mut s) => s.zeroize(),
        Value::Array(a) => a.into_iter().for_each(wipe),
        Value::Object(m) => m.into_iter().for_each(|(_, v)| wipe(v)),
        _ => {}
    }
}

/// The whole body, within [`MAX_BODY`] and `timeout`, in a buffer wiped on drop.
pub(crate) async fn read_body(
    body: Incoming,
    timeout: Duration,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(b)) => Ok(Zeroizing::new(Vec::from(b.to_bytes()))),
        Ok(Err(_)) => Err(ApiError::validation(format!(
            "the request body is larger than {MAX_BODY} bytes"
        ))),
        Err(_) => Err(ApiError::new(
            408,
            "RequestTimeoutException",
            format!(
                "the request body was not received within {} ms",
                timeout.as_millis()
            ),
        )),
    }
}

/// SigV4 signing keys by access key, for the credential scope (date, region,
/// service) they were derived for: deriving one takes four HMACs, and an
/// access key signs with the same one all day. Entries are wiped when
/// replaced or dropped; the map is bounded.
#[derive(Default)]
pub(crate) struct SigningKeys {
    map: Mutex<HashMap<String, ScopedKey>>,
}

struct ScopedKey {
    /// `date/region/service`.
    scope: String,
    /// The secret it was derived from, by identity: a new secret (the key
    /// deleted and created again) derives anew.
    secret: Weak<SecretBytes>,
    key: Zeroizing<[u8; 32]>,
}

/// Access keys whose signing keys are kept at most; past it the map starts over.
const SIGNING_KEYS_LIMIT: usize = 10_000;

impl SigningKeys {
    fn get(&self, auth: &Authorization, secret: &Arc<SecretBytes>) -> Zeroizing<[u8; 32]> {
        let scope = [auth.date.as_str(), &auth.region, &auth.service].join("/");
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = map.get(&auth.access_key_id) {
            if k.scope == scope && std::ptr::eq(k.secret.as_ptr(), Arc::as_ptr(secret)) {
                return k.key.clone();
            }
        }
        let key = arca_sigv4::signing_key(secret.expose(), auth);
        if map.len() >= SIGNING_KEYS_LIMIT {
            map.clear();
        }
        map.insert(
            auth.access_key_id.clone(),
            ScopedKey {
                scope,
                secret: Arc::downgrade(secret),
                key: key.clone(),
            },
        );
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_serialize_as_serde_json_does_at_any_size() {
        for n in [0, 10, 600, 5_000, 70_000] {
            let v = serde_json::json!({ "Plaintext": "p".repeat(n), "KeyId": "k", "N": n });
            assert_eq!(json_bytes(&v), serde_json::to_vec(&v).unwrap());
        }
    }

    #[test]
    fn a_growing_buffer_moves_into_a_larger_one() {
        let mut w = WipingWriter(Vec::with_capacity(4));
        std::io::Write::write_all(&mut w, b"abc").unwrap();
        let before = w.0.as_ptr();
        std::io::Write::write_all(&mut w, b"defgh").unwrap();
        assert_ne!(w.0.as_ptr(), before, "moved to a larger buffer");
        assert_eq!(w.0, b"abcdefgh");
        assert!(w.0.capacity() >= 8);
    }
}
