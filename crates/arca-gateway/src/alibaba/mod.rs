//! The Alibaba Cloud KMS front-end (OpenAPI version 2016-01-20, RPC style):
//! `Action` and its parameters in the query or a form body, signed with the
//! V3 `ACS3-HMAC-SHA256` header signature or the RPC `HMAC-SHA1` one
//! ([`sign`]), answered in JSON with a `RequestId`. It authenticates the
//! caller with the same access keys as the AWS front-end, refuses replayed
//! nonces ([`nonce`]), translates the action into the shared operation's
//! input ([`actions`]) and runs it through the same
//! [`crate::pipeline`]: the same authorization, audit log and cluster path.

pub mod actions;
pub mod nonce;
pub mod sign;

use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use serde_json::{json, Value};

use crate::api::Caller;
use crate::aws::{json_bytes, read_body, wipe, Wiped};
use crate::error::ApiError;
use crate::ops::Op;
use crate::pipeline::Invocation;
use crate::{request_id, Gateway, Resp};

use actions::KeyFacts;
use sign::SignError;

/// The prefix under which Alibaba actions are named in the audit log of a
/// request that names no known action, and in a write's identity.
const NAMESPACE: &str = "Kms20160120.";

fn sign_error(e: SignError) -> ApiError {
    let (code, status) = e.code();
    ApiError::new(status, code, e.to_string())
}

impl Gateway {
    pub(crate) async fn alibaba(&self, req: hyper::Request<Incoming>, source: &str) -> Resp {
        let rid = request_id();
        let (parts, body) = req.into_parts();
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("arca")
            .to_owned();
        let result = match read_body(body, self.limits.body_timeout).await {
            Ok(body) => self.alibaba_call(&rid, &parts, &body, source).await,
            Err(e) => {
                self.execute(Invocation {
                    request_id: &rid,
                    op: None,
                    named: NAMESPACE,
                    auth: Err(e),
                    body: b"{}",
                    source,
                    invocation_id: None,
                })
                .await
            }
        };
        let (status, body) = match result {
            Ok(mut v) => {
                v["RequestId"] = json!(rid);
                let text = json_bytes(&v);
                wipe(v);
                (200, text)
            }
            Err(e) => {
                let (status, code) = actions::error(&e);
                let body = json!({
                    "RequestId": rid,
                    "HostId": host,
                    "Code": code,
                    "Message": e.message,
                });
                (status, serde_json::to_vec(&body).unwrap_or_default())
            }
        };
        let mut r = hyper::Response::new(Full::new(Bytes::from_owner(Wiped(body))));
        *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let h = r.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json;charset=utf-8"),
        );
        if let Ok(v) = HeaderValue::from_str(&rid) {
            h.insert("x-acs-request-id", v);
        }
        r
    }

    async fn alibaba_call(
        &self,
        rid: &str,
        parts: &http::request::Parts,
        body: &[u8],
        source: &str,
    ) -> Result<Value, ApiError> {
        let signed = sign::parse(&sign::Request {
            method: parts.method.as_str(),
            path: parts.uri.path(),
            query: parts.uri.query().unwrap_or(""),
            headers: &parts.headers,
            body,
        })
        .map_err(sign_error);
        let action = match &signed {
            Ok(s) => s.action.clone(),
            Err(_) => String::new(),
        };
        let named = format!("{NAMESPACE}{action}");
        let translated = signed
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|s| actions::request(&s.action, &s.params));
        let op = translated.as_ref().ok().map(|(op, _)| *op);
        // Authentication, then the translation's own errors (a missing
        // parameter): both are refusals the audit log records.
        let auth = match signed {
            Ok(s) => self
                .alibaba_authenticate(&s)
                .and_then(|c| translated.as_ref().map(|_| c).map_err(Clone::clone))
                .map(|c| (c, s)),
            Err(e) => Err(e),
        };
        let (auth, signed) = match auth {
            Ok((c, s)) => (Ok(c), Some(s)),
            Err(e) => (Err(e), None),
        };
        let input = match &translated {
            Ok((_, v)) => json_bytes(v),
            Err(_) => b"{}".to_vec(),
        };
        let input = zeroize::Zeroizing::new(input);
        let result = self
            .execute(Invocation {
                request_id: rid,
                op,
                named: &named,
                auth,
                body: &input,
                source,
                // The nonce names this call: a write replayed to another
                // node within the window applies once.
                invocation_id: signed.as_ref().map(|s| s.nonce.as_bytes()),
            })
            .await;
        drop(input);
        let answer = match (result, op) {
            (Ok(v), _) => v,
            // Alibaba answers a signature that does not verify with false.
            (Err(e), Some(Op::Verify)) if e.code == "KMSInvalidSignatureException" => {
                let param = |k: &str| signed.as_ref().and_then(|s| s.params.get(k)).cloned();
                json!({
                    "KeyId": param("KeyId"),
                    "KeyVersionId": param("KeyVersionId"),
                    "SignatureValid": false,
                })
            }
            (Err(e), _) => return Err(e),
        };
        let s =
            signed.ok_or_else(|| ApiError::internal("an answer to an unauthenticated request"))?;
        let facts = self.key_facts(&s.action, &answer).await;
        let out = actions::response(&s.action, &s.params, &answer, &facts);
        wipe(answer);
        out
    }

    /// Verifies the signature, the time and the nonce; the caller.
    fn alibaba_authenticate(&self, s: &sign::Signed) -> Result<Caller, ApiError> {
        let now = arca_node::network::unix_now();
        sign::check_time(s.time, now).map_err(sign_error)?;
        let (secret, user) = self
            .node
            .access_key_secret(&s.access_key_id)?
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "InvalidAccessKeyId.NotFound",
                    "Specified access key is not found.",
                )
            })?;
        s.verify(secret.expose()).map_err(sign_error)?;
        // Only a request that verifies spends its nonce.
        self.nonces
            .check(&s.access_key_id, &s.nonce, s.time, now)
            .map_err(|r| match r {
                nonce::Refused::Used => ApiError::new(
                    400,
                    "SignatureNonceUsed",
                    "The request signature nonce has been used.",
                ),
                nonce::Refused::Full => ApiError::new(
                    503,
                    "ServiceUnavailableTemporary",
                    "Too many requests within the replay window; retry later.",
                ),
            })?;
        Ok(Caller {
            access_key_id: s.access_key_id.clone(),
            user,
        })
    }

    /// What the Alibaba answer says of the key that the shared operation's
    /// answer does not: read from this node's copy of the key record.
    async fn key_facts(&self, action: &str, answer: &Value) -> KeyFacts {
        let needs = matches!(
            action,
            "CreateKey"
                | "DescribeKey"
                | "CreateKeyVersion"
                | "Encrypt"
                | "GenerateDataKey"
                | "GenerateDataKeyWithoutPlaintext"
                | "ReEncrypt"
        );
        if !needs {
            return KeyFacts::default();
        }
        let id = answer["KeyMetadata"]["KeyId"]
            .as_str()
            .or_else(|| answer["KeyId"].as_str())
            .and_then(|k| k.rsplit('/').next())
            .and_then(|k| k.parse::<arca_state::KeyId>().ok());
        let Some(id) = id else {
            return KeyFacts::default();
        };
        match self.node.describe_key(&id).await {
            Ok(k) => KeyFacts {
                primary_version: Some(k.record.primary().version_id.to_string()),
                version_created_ms: answer["KeyVersionId"]
                    .as_str()
                    .and_then(|v| k.record.version_by_id(v))
                    .map(|v| v.created_ms),
                rotation: k.record.rotation.is_some(),
            },
            Err(_) => KeyFacts::default(),
        }
    }
}
