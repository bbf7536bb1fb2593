//! Incoming webhooks: `POST /incoming/{endpoint}` accepts a JSON event from an external system,
//! authenticates it, drops duplicates and queues it for processing. The endpoint settings and
//! the senders, as a user configures them, are in docs/webhooks.md; this page is how it works.
//!
//! The startup module mounts [`IncomingApp`] on the shared router (it is a
//! [`Mount`](crate::transport::http::Mount)), so it works the same on the local server and on a Lambda Function URL. For one request:
//!
//! 1. unknown endpoint → **404**;
//! 2. not JSON (`application/json`, `application/*+json`) or a form
//!    (`application/x-www-form-urlencoded`, read as a JSON object of its fields; a `payload`
//!    field holding JSON, as Slack sends, is decoded), a charset other than UTF-8, or a
//!    `Content-Encoding` → **415**;
//! 3. authentication (per endpoint; see [`auth`]) over the raw bytes fails → **401**
//!    (also when a header it reads is sent more than once); signed messages with a timestamp,
//!    and JWTs on `jtiReplay` endpoints, then claim their replay record (a replay → **401**);
//!    a Slack `url_verification` request is answered 200 `{"challenge": …}` and not queued;
//! 4. malformed JSON, or a top level that is not an object → **400**;
//! 5. the queued message would exceed the queue's limit → **413**;
//! 6. dedup (when configured): a key already seen within its TTL → **204**, no body;
//! 7. the event is sent to the queue → **200** `{"status":"accepted","id":"<message id>",
//!    "dedupKey":"<hex>"|null}`.
//!
//! A dedup-store or queue failure answers **503** (retryable). Every error body is the router's
//! JSON `{"errors":[{"code","message"}]}`. A request answered anything but 200 or 204 releases
//! the replay record it claimed in step 3, so the sender's identical retry is judged afresh.
//!
//! A named secret (`{"secret": name}`) is cached for [`DEFAULT_SECRET_TTL`]; when a signature or
//! token matches no key, it is read again past every cache (at most once per
//! [`DEFAULT_SECRET_REREAD`] per endpoint, one read at a time), so a rotated secret works at
//! once and the old one stops with that read.
//!
//! The queued message (sent to the incoming queue) is JSON:
//!
//! ```json
//! {"endpoint":"demo","receivedAt":"2026-01-02T03:04:05.678Z","requestId":"…",
//!  "dedupKey":"<hex>"|null,"auth":{"type":"jwt","sub":"crm"},
//!  "headers":{"content-type":"application/json"},"event":{"order.id":7,"lines.0.sku":"A-1"}}
//! ```
//!
//! plus `"function":"<name>"` when the endpoint names a webhook function, which the queue
//! worker then runs with the event ([`crate::worker`]; for users, docs/webhooks.md, "Webhook
//! functions").
//!
//! `event` is the body [flattened](flatten::flatten) to dotted keys. `headers` holds only the
//! endpoint's `forwardHeaders`, and never `Authorization`, cookies, signatures or other
//! secret-looking headers, whatever the configuration says.
//!
//! ## Dedup and failures: the order of operations
//!
//! A dedup key has two states in the [`DedupStore`](crate::store::dedup::DedupStore):
//! *pending* (claimed, with a short lease) and *done*. For one request, within its time budget
//! (the Lambda deadline on a Function URL, else [`DEFAULT_TIMEOUT`]):
//!
//! 1. **claim** the key (one conditional write): free → ours; done within its TTL → **204**;
//!    pending under another request's lease → **503** `in_progress` with `Retry-After`;
//! 2. **send** the event to the incoming queue, given up before the budget ends (a reserve is
//!    kept for step 3);
//! 3. sent → **confirm** the key (done, for its TTL) and answer **200**; not sent (error or
//!    timeout) → **release** the key (only our own claim) and answer **503**.
//!
//! So a webhook the sender did not see accepted can always be sent again and is accepted:
//! after a failed send at once, after a crash (between the claim and the send) once the lease
//! ends ([`DEFAULT_LEASE`], `EXTENSION_DEDUP_LEASE_SECS`). A webhook answered 200 is in the
//! queue. The queue is at least once: if SQS took a message but its reply was lost, the SDK
//! sends it again and a standard queue keeps both copies; and if the confirm write fails after
//! a send, a retry after the lease queues the event again. Every copy carries the same
//! `dedupKey`, which is what consumers deduplicate on.

pub mod auth;
pub mod config;
#[doc(hidden)]
pub mod flatten;
#[doc(hidden)]
pub mod resolver;

mod answers;
mod app;
mod form;
mod queueing;
mod stores;

#[doc(hidden)]
pub use auth::AuthFailure;
#[doc(hidden)]
pub use auth::{jwt, jwt_crypto, standard_webhooks as signature};
pub use config::{
    ApiKeyConfig, AuthConfig, BasicConfig, DedupConfig, EndpointConfig, GenericHmacConfig,
    HmacAlgorithm, HmacConfig, HmacEncoding, IncomingConfig, IncomingConfigError, JwtAlgorithm,
    JwtConfig, ProviderConfig, SecretValue,
};
#[doc(hidden)]
pub use resolver::{ResolveError, SecretResolver, StaticResolver, resolver_fn};
#[doc(hidden)]
pub use stores::IncomingStores;

use crate::store::dedup::{Dedup, DedupKey};
use crate::store::queue::QueueStore;

use crate::transport::http::error_response as error;
use crate::transport::http::{HttpRequest, new_request_id};
use answers::{BodyKind, check_content, parse_object, queue_too_large};
use auth::Auth;
use auth::replay::ReplayClaim;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Response, StatusCode};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The path prefix of the incoming endpoints.
#[doc(hidden)]
pub const PATH_PREFIX: &str = "/incoming/";
/// Largest queued message by default: SQS's classic limit (256 KiB).
#[doc(hidden)]
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// How long a resolved named secret is reused before it is looked up again.
#[doc(hidden)]
pub const DEFAULT_SECRET_TTL: Duration = Duration::from_secs(300);
/// After a signature or token matched none of an endpoint's keys, its named secret is read
/// again from the store (a rotation), at most once per this interval per endpoint per instance.
pub const DEFAULT_SECRET_REREAD: Duration = Duration::from_secs(5);
/// How long a claimed dedup key stays pending by default (above any request's time budget).
#[doc(hidden)]
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// The time budget of a request without a platform deadline.
#[doc(hidden)]
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Endpoint {
    name: String,
    scope: String,
    auth: Auth,
    dedup_config: Option<DedupConfig>,
    dedup: Dedup,
    forward: Vec<HeaderName>,
    function: Option<String>,
}

/// A request that passed every check: the queued message and its dedup key.
struct Accepted<'a> {
    endpoint: &'a Endpoint,
    message: String,
    key: Option<DedupKey>,
    request_id: String,
}

/// The incoming-webhook application: the compiled endpoints plus their stores.
#[doc(hidden)]
pub struct IncomingApp {
    endpoints: BTreeMap<String, Endpoint>,
    queue: Arc<dyn QueueStore>,
    resolver: Option<Arc<dyn SecretResolver>>,
    max_message_bytes: usize,
    secret_ttl: Duration,
    secret_reread: Duration,
    /// The outgoing client that reads identity providers' key sets (`jwksUrl`); `None`: the
    /// process's shared client, made on the first fetch (making it loads the machine's root
    /// certificates, ~9 ms that an endpoint without `jwksUrl` must not pay at cold start).
    http: Option<crate::outgoing::HttpClient>,
    jwks_refetch: Duration,
    lease: Duration,
    timeout: Duration,
}

impl std::fmt::Debug for IncomingApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingApp")
            .field("endpoints", &self.endpoint_names())
            .finish_non_exhaustive()
    }
}

/// Headers never copied into a queued event, whatever `forwardHeaders` says.
fn is_secret_header(name: &str) -> bool {
    const EXACT: [&str; 4] = [
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
    ];
    const PARTS: [&str; 9] = [
        "signature",
        "secret",
        "token",
        "password",
        "auth",
        "cookie",
        "api-key",
        "apikey",
        "credential",
    ];
    EXACT.contains(&name) || PARTS.iter().any(|p| name.contains(p))
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

#[doc(hidden)]
pub use crate::time::rfc3339_millis;

impl IncomingApp {
    /// The dedup key of a request, when the endpoint deduplicates and the request has
    /// something to deduplicate on.
    fn dedup_key(ep: &Endpoint, headers: &HeaderMap, body: &Value) -> Option<DedupKey> {
        let d = ep.dedup_config.as_ref()?;
        if let Some(h) = &d.caller_header
            && let Some(v) = header_text(headers, h)
        {
            return Some(DedupKey::from_caller(&ep.scope, &v));
        }
        if d.whole_body {
            return Some(DedupKey::from_values(
                &ep.scope,
                &[Some(&flatten::canonical(body))],
            ));
        }
        let values: Vec<Option<Value>> = d
            .fields
            .iter()
            .map(|f| flatten::get_path(body, f).map(flatten::canonical))
            .chain(
                d.headers
                    .iter()
                    .map(|h| header_text(headers, h).map(Value::String)),
            )
            .collect();
        // None of the selected values present: nothing identifies the event, so it is not
        // deduplicated (rather than every such event colliding with the first).
        if values.iter().all(Option::is_none) {
            return None;
        }
        let refs: Vec<Option<&Value>> = values.iter().map(Option::as_ref).collect();
        Some(DedupKey::from_values(&ep.scope, &refs))
    }

    /// Answer `POST /incoming/{name}` (the body limit has been applied by the router):
    /// admit the request (endpoint, content type, authentication), accept it (JSON, the queued
    /// message and its size), then deduplicate and enqueue it. A request that is not accepted
    /// in the end (any answer but 200 or 204) releases the replay record it claimed, so its
    /// identical retry is judged afresh.
    pub async fn handle(&self, name: &str, req: HttpRequest) -> Response<Bytes> {
        let deadline = req
            .deadline
            .unwrap_or_else(|| Instant::now() + self.timeout);
        let (ep, auth, replay, kind) = match self.admit(name, &req).await {
            Ok(admitted) => admitted,
            Err(r) => return r,
        };
        let answer = match self.accept(ep, auth, &req, kind) {
            Ok(accepted) => self.enqueue(accepted, deadline).await,
            Err(r) => *r,
        };
        if let Some(claim) = replay
            && !answer.status().is_success()
        {
            claim.release(deadline, &ep.name).await;
        }
        answer
    }

    /// Steps 1–3 of the module docs: the endpoint, what the queued event says about the caller
    /// and the replay record the request claimed, or the error answer.
    async fn admit<'a>(
        &'a self,
        name: &str,
        req: &HttpRequest,
    ) -> Result<(&'a Endpoint, Value, Option<ReplayClaim>, BodyKind), Response<Bytes>> {
        let Some(ep) = self.endpoints.get(name) else {
            return Err(error(
                StatusCode::NOT_FOUND,
                "not_found",
                if config::valid_name(name) {
                    format!("No incoming endpoint is named \"{name}\".").into()
                } else {
                    Cow::Borrowed("No such incoming endpoint.")
                },
            ));
        };
        let kind = check_content(&req.headers).map_err(|r| *r)?;
        match self.authenticate(ep, req).await {
            Ok((auth, replay)) => Ok((ep, auth, replay, kind)),
            Err(r) => {
                tracing::info!(endpoint = %ep.name, auth = ep.auth.kind(), status = %r.status(), "incoming: rejected");
                Err(r)
            }
        }
    }

    /// Steps 4–5 of the module docs: the message to queue, or the error answer.
    fn accept<'a>(
        &self,
        ep: &'a Endpoint,
        auth: Value,
        req: &HttpRequest,
        kind: BodyKind,
    ) -> Result<Accepted<'a>, Box<Response<Bytes>>> {
        let object = match kind {
            BodyKind::Json => parse_object(&req.body, self.max_message_bytes)?,
            BodyKind::Form => form::parse_form(&req.body)?,
        };
        if let Some(c) = ep.auth.challenge(&object) {
            // Slack's URL check: answered with its challenge, not queued.
            return Err(Box::new(crate::transport::http::json_response(
                StatusCode::OK,
                json!({ "challenge": c }).to_string(),
            )));
        }
        let body = Value::Object(object);
        let key = Self::dedup_key(ep, &req.headers, &body);
        let request_id = req.request_id.clone().unwrap_or_else(new_request_id);

        let headers: Map<String, Value> = ep
            .forward
            .iter()
            .filter_map(|h| {
                header_text(&req.headers, h.as_str())
                    .map(|v| (h.as_str().to_owned(), Value::String(v)))
            })
            .collect();
        // Flattening can multiply a body (a long key over a long array repeats the key for
        // every element): it stops at the queue's limit, before anything is built past it.
        let event = flatten::flatten_within(&body, self.max_message_bytes)
            .map_err(|e| Box::new(queue_too_large(format!("more than {}", e.limit), e.limit)))?;
        let mut message = json!({
            "endpoint": ep.name,
            "receivedAt": rfc3339_millis(SystemTime::now()),
            "requestId": request_id,
            "dedupKey": key.as_ref().map(DedupKey::as_str),
            "auth": auth,
            "headers": headers,
            "event": event,
        });
        if let (Some(f), Value::Object(m)) = (&ep.function, &mut message) {
            m.insert("function".into(), Value::String(f.clone()));
        }
        let message = match crate::protocol::json::to_string(&message) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, "incoming: event not serializable");
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_json",
                    "The event cannot be serialized.",
                )));
            }
        };
        if message.len() > self.max_message_bytes {
            return Err(Box::new(queue_too_large(
                message.len().to_string(),
                self.max_message_bytes,
            )));
        }
        Ok(Accepted {
            endpoint: ep,
            message,
            key,
            request_id,
        })
    }
}

#[cfg(test)]
mod tests;
