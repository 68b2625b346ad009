//! The AWS KMS JSON 1.1 front-end: `POST /` with
//! `X-Amz-Target: TrentService.<Op>` (or `ArcaAdmin.<Op>`), SigV4-signed,
//! a JSON body in and out. It names the operation, authenticates the caller
//! and renders the answer or AWS's error shape; everything between is the
//! shared [`crate::pipeline`].

use std::time::Duration;

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
            Err(e) => (Bytes::new(), Err(e)),
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
        let (status, body) = match result {
            Ok(v) => (200, serde_json::to_vec(&v).unwrap_or_default()),
            Err(e) => (e.status, e.body()),
        };
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

/// The whole body, within [`MAX_BODY`] and `timeout`.
async fn read_body(body: Incoming, timeout: Duration) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(timeout, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(b)) => Ok(b.to_bytes()),
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
