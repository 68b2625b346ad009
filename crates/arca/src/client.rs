//! A small SigV4-signing JSON client for the admin CLI and the load generator.

use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use arca_node::tls::Connector;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

/// Host and port of an endpoint URL like `http://127.0.0.1:7700`.
pub fn authority(endpoint: &str) -> anyhow::Result<String> {
    let uri: http::Uri = endpoint
        .parse()
        .with_context(|| format!("invalid endpoint {endpoint}"))?;
    if uri.scheme_str() != Some("http") {
        bail!("endpoint {endpoint} must start with http://");
    }
    uri.authority()
        .map(|a| a.to_string())
        .ok_or_else(|| anyhow!("endpoint {endpoint} has no host"))
}

/// Scheme and authority of an `http://` or `https://` endpoint URL.
fn endpoint_parts(endpoint: &str) -> anyhow::Result<(&'static str, String)> {
    let uri: http::Uri = endpoint
        .parse()
        .with_context(|| format!("invalid endpoint {endpoint}"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => "http",
        Some("https") => "https",
        _ => bail!("endpoint {endpoint} must start with http:// or https://"),
    };
    let authority = uri
        .authority()
        .map(|a| a.to_string())
        .ok_or_else(|| anyhow!("endpoint {endpoint} has no host"))?;
    Ok((scheme, authority))
}

/// Builds a signed `POST /` for `target` with a JSON body.
pub fn signed_request(
    endpoint_authority: &str,
    creds: &Credentials,
    target: &str,
    body: &[u8],
) -> anyhow::Result<http::Request<Full<Bytes>>> {
    signed_request_to("http", endpoint_authority, creds, target, body)
}

fn signed_request_to(
    scheme: &str,
    endpoint_authority: &str,
    creds: &Credentials,
    target: &str,
    body: &[u8],
) -> anyhow::Result<http::Request<Full<Bytes>>> {
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::HOST, endpoint_authority.parse()?);
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    headers.insert("x-amz-target", target.parse()?);
    arca_sigv4::try_sign(
        &http::Method::POST,
        "/",
        "",
        &mut headers,
        body,
        &creds.access_key_id,
        creds.secret_access_key.as_bytes(),
        &creds.region,
        "kms",
        arca_node::network::unix_now(),
    )
    .map_err(|e| anyhow!("cannot sign the request: {e}"))?;
    let mut req = http::Request::post(format!("{scheme}://{endpoint_authority}/"))
        .body(Full::new(Bytes::copy_from_slice(body)))?;
    *req.headers_mut() = headers;
    Ok(req)
}

pub struct ApiClient {
    http: Client<Connector, Full<Bytes>>,
    scheme: &'static str,
    authority: String,
    creds: Credentials,
}

impl ApiClient {
    /// A client for an `http://` or `https://` endpoint; `ca_bundle` holds the
    /// CA certificates an `https://` endpoint's certificate is checked
    /// against.
    pub fn new(
        endpoint: &str,
        creds: Credentials,
        ca_bundle: Option<&std::path::Path>,
    ) -> anyhow::Result<Self> {
        let (scheme, authority) = endpoint_parts(endpoint)?;
        let tls = match (scheme, ca_bundle) {
            ("https", Some(ca)) => Some(std::sync::Arc::new(arca_node::tls::client_config(ca)?)),
            ("https", None) => bail!(
                "endpoint {endpoint} is HTTPS: name the CA certificate that signed its certificate \
                 with --ca-bundle or AWS_CA_BUNDLE"
            ),
            _ => None,
        };
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(Connector::verified(tls)),
            scheme,
            authority,
            creds,
        })
    }

    /// Calls `target` (e.g. `ArcaAdmin.ClusterStatus`); an AWS-shaped error
    /// becomes an error naming its code.
    pub async fn call(
        &self,
        target: &str,
        body: Value,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let body = serde_json::to_vec(&body)?;
        let req = signed_request_to(self.scheme, &self.authority, &self.creds, target, &body)?;
        let resp = tokio::time::timeout(timeout, self.http.request(req))
            .await
            .map_err(|_| {
                anyhow!(
                    "{target}: no answer from {} within {timeout:?}",
                    self.authority
                )
            })?
            .with_context(|| format!("cannot reach {}", self.authority))?;
        let status = resp.status();
        let bytes = resp.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            bail!(
                "{target} failed: {} ({}): {}",
                v["__type"].as_str().unwrap_or("error"),
                status.as_u16(),
                v["message"]
                    .as_str()
                    .unwrap_or(&String::from_utf8_lossy(&bytes))
            );
        }
        Ok(v)
    }
}
