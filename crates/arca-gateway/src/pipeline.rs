//! The request pipeline every front-end shares. A front-end (the AWS JSON
//! protocol in [`crate::aws`]) reads the request, names its [`Op`],
//! authenticates the caller and turns the parameters into the operation's
//! input; from there one path runs for every request:
//!
//! 1. authorization decides ([`crate::authz`]), resolving the keys named once;
//! 2. the operation runs on one [`Ctx`] ([`crate::api::dispatch`]);
//! 3. the outcome is written to the audit log — fail-closed: an answer whose
//!    record did not reach the log is not given;
//! 4. metrics count it.
//!
//! So a second front-end reuses the same operations, authorization and audit.

use std::time::Instant;

use arca_state::{KeyId, RequestKey};
use serde_json::Value;
use tracing::Instrument;

use crate::api::{self, Caller, Ctx};
use crate::error::ApiError;
use crate::ops::Op;
use crate::{audit, authz, Gateway};

/// One request as a front-end hands it over.
pub struct Invocation<'a> {
    pub request_id: &'a str,
    /// The operation, or `None` if the client named one Arca does not serve.
    pub op: Option<Op>,
    /// The operation as the client named it (`TrentService.Encrypt`): the
    /// audit record of an unknown operation, and part of a write's identity.
    pub named: &'a str,
    /// The authenticated caller, or why the request could not be read or
    /// authenticated.
    pub auth: Result<Caller, ApiError>,
    /// The operation's input, in the shape the operations take (AWS JSON).
    pub body: &'a [u8],
    /// The client's address (`ip:port`).
    pub source: &'a str,
    /// The client's token for this call, the same on each of its retries
    /// (AWS SDKs send `amz-sdk-invocation-id`).
    pub invocation_id: Option<&'a [u8]>,
}

/// What the audit record needs to know, filled in as the request goes.
#[derive(Default)]
struct Facts {
    principal: Option<String>,
    arn: Option<String>,
    /// The keys authorization resolved (refused requests included).
    keys: Vec<KeyId>,
    /// A key the operation created or touched, when authorization named none.
    created: Option<KeyId>,
}

impl Gateway {
    /// Runs one request through authorization, the operation and the audit
    /// log; the answer, or the error to give the client.
    pub async fn execute(&self, mut inv: Invocation<'_>) -> Result<Value, ApiError> {
        let started = Instant::now();
        let label = inv.op.map_or("unknown", Op::name);
        let span = tracing::info_span!("request", request_id = %inv.request_id, operation = label, key_id = tracing::field::Empty);
        let mut facts = Facts::default();
        let auth = std::mem::replace(&mut inv.auth, Err(ApiError::internal("taken")));
        let result = self
            .run(&inv, auth, &mut facts)
            .instrument(span.clone())
            .await;
        let (status, code) = match &result {
            Ok(_) => (200, "OK"),
            Err(e) => {
                let _g = span.enter();
                if e.is_server_error() {
                    tracing::warn!(code = e.code, message = %e.message, "request failed");
                } else {
                    tracing::debug!(code = e.code, "request refused");
                }
                (e.status, e.code)
            }
        };
        let result = match &self.audit {
            // Fail-closed: an answer whose record did not reach the log is
            // not given; the client gets 503 instead (best-effort: always
            // written or counted).
            Some(a) => {
                let key_id = facts
                    .keys
                    .first()
                    .or(facts.created.as_ref())
                    .map(KeyId::encode);
                let destination_key_id = facts.keys.get(1).map(KeyId::encode);
                let recorded = a
                    .record(&audit::Record {
                        time_ms: self.node.now_ms(),
                        request_id: inv.request_id,
                        node_id: self.node.id,
                        source: inv.source,
                        principal: facts.principal.as_deref(),
                        operation: if inv.op.is_some() { label } else { inv.named },
                        arn: facts.arn.as_deref(),
                        key_id: key_id.as_deref(),
                        destination_key_id: destination_key_id.as_deref(),
                        outcome: code,
                        status,
                    })
                    .await;
                match recorded {
                    Ok(()) => result,
                    Err(e) => Err(ApiError::from(e)),
                }
            }
            None => result,
        };
        let code = match &result {
            Ok(_) => "OK",
            Err(e) => e.code,
        };
        self.metrics.record(label, code, started.elapsed());
        result
    }

    async fn run(
        &self,
        inv: &Invocation<'_>,
        auth: Result<Caller, ApiError>,
        facts: &mut Facts,
    ) -> Result<Value, ApiError> {
        let caller = auth?;
        facts.principal = Some(caller.access_key_id.clone());
        let op = inv
            .op
            .ok_or_else(|| ApiError::unknown_operation(inv.named))?;
        // AWS's model constraints come before any semantic rule, and before
        // authorization, as AWS orders them.
        crate::model::validate(op, inv.body)?;
        let cluster = self
            .node
            .cluster_info()
            .ok_or_else(|| ApiError::from(arca_node::NodeError::NotInitialized))?;
        let who = authz::Principal {
            arn: format!("arn:aws:iam::{}:user/{}", cluster.account_id, caller.user),
            account: cluster.account_id.clone(),
            region: cluster.region.clone(),
        };
        facts.arn = Some(who.arn.clone());
        let ip = inv.source.rsplit_once(':').map_or(inv.source, |(ip, _)| ip);
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let call = authz::Call {
            caller: &caller,
            principal: &who,
            op,
            body: inv.body,
            source_ip: ip,
        };
        // One place decides, before any operation runs; it resolves the
        // keys the request names, once.
        self.authz
            .authorize(&self.node, &call, &mut facts.keys)
            .await?;
        let ctx = Ctx {
            request: request_key(inv, &caller),
            caller,
            principal: who.arn,
            keys: std::mem::take(&mut facts.keys),
        };
        let answer = api::dispatch(&self.node, &ctx, op, inv.body).await;
        if answer.is_ok() && arca_node::usage::TRACKED.contains(&op.name()) {
            // GetKeyLastUsage: noted here, reported off the request path.
            let now = self.node.now_ms();
            for k in &ctx.keys {
                self.node.usage.note(*k, op.name(), now, inv.request_id);
            }
        }
        facts.keys = ctx.keys;
        let answer = answer?;
        if let Some(k) = answer.key_id {
            tracing::Span::current().record("key_id", tracing::field::display(k));
            facts.created = Some(k);
        }
        Ok(answer.body)
    }
}

/// The identity under which a write is deduplicated: the principal and the
/// client's invocation id (AWS SDKs send the same one on every retry of one
/// call), with a fingerprint of the operation and body that a retry must
/// match. Without an invocation id the id is unique ([`crate::unique_id`]):
/// such requests are never deduplicated, except against the node's own
/// forwarding retries.
fn request_key(inv: &Invocation<'_>, caller: &Caller) -> RequestKey {
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
    let named = inv.named.as_bytes();
    let id = match inv.invocation_id {
        Some(inv) if !inv.is_empty() && inv.len() <= 128 => {
            digest(&[b"invocation", caller.access_key_id.as_bytes(), inv])
        }
        _ => crate::unique_id(),
    };
    RequestKey {
        id,
        fingerprint: digest(&[b"request", named, inv.body]),
    }
}
