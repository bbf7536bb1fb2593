//! Incoming webhooks: `POST /incoming/{endpoint}` accepts a JSON event from an external system,
//! authenticates it, drops duplicates and queues it for processing.
//!
//! The startup module mounts [`IncomingApp`] on the shared router (it is a
//! [`Mount`](crate::transport::http::Mount)), so it works the same on the local server and on a Lambda Function URL. For one request:
//!
//! 1. unknown endpoint → **404**;
//! 2. not `application/json` (or `application/*+json`), a charset other than UTF-8, or a
//!    `Content-Encoding` → **415**;
//! 3. authentication (`none`, `jwt` or `hmac`, per endpoint; see [`config`]) fails → **401**
//!    (also when a header it reads is sent more than once); HMAC signatures, and JWTs on
//!    `jtiReplay` endpoints, then claim their replay record (a replay → **401**);
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
//! worker then runs with the event ([`crate::worker`], "Webhook messages").
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

pub mod config;
#[doc(hidden)]
pub mod flatten;
#[doc(hidden)]
pub mod jwt;
#[doc(hidden)]
pub mod jwt_crypto;
#[doc(hidden)]
pub mod resolver;
#[doc(hidden)]
pub mod signature;

mod answers;
mod app;
mod queueing;
mod stores;

pub use config::{
    AuthConfig, DedupConfig, EndpointConfig, HmacConfig, IncomingConfig, IncomingConfigError,
    JwtAlgorithm, JwtConfig, SecretValue,
};
#[doc(hidden)]
pub use resolver::{ResolveError, SecretResolver, StaticResolver, resolver_fn};
#[doc(hidden)]
pub use stores::IncomingStores;

use crate::store::dedup::{Claim, Dedup, DedupKey};
use crate::store::queue::QueueStore;

use crate::transport::http::error_response as error;
use crate::transport::http::{HttpRequest, new_request_id};
use answers::{check_content, parse_object, queue_too_large, unauthorized, unavailable};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, Response, StatusCode};
use jwt::JwtVerifier;
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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

/// Why a request failed authentication. The messages are fixed texts: they never echo the
/// token, the signature or the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum AuthFailure {
    MissingToken,
    MalformedToken,
    WrongAlgorithm,
    BadTokenSignature,
    TokenExpired,
    TokenNotYetValid,
    WrongAudience,
    WrongIssuer,
    MissingClaim(&'static str),
    MissingSignature,
    BadTimestamp,
    StaleTimestamp,
    BadSignature,
    /// The exact signed message (`webhook-id` and `webhook-timestamp`) was accepted before.
    Replayed,
    /// The token is valid for longer than the endpoint's `maxLifetimeSecs`.
    TokenLifetimeTooLong,
    /// The endpoint wants single-use tokens (`jtiReplay`) and this `jti` was accepted before.
    TokenReused,
    /// A header the authentication reads (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`, `Authorization`) was sent more than once.
    RepeatedHeader,
}

impl AuthFailure {
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Self::MissingToken => "Missing bearer token (Authorization: Bearer <JWT>).".into(),
            Self::MalformedToken => "The bearer token is not a well-formed JWT.".into(),
            Self::WrongAlgorithm => {
                "The token's algorithm is not the one this endpoint accepts.".into()
            }
            Self::BadTokenSignature => "The token's signature is invalid.".into(),
            Self::TokenExpired => "The token has expired.".into(),
            Self::TokenNotYetValid => "The token is not valid yet.".into(),
            Self::WrongAudience => "The token's audience is not accepted.".into(),
            Self::WrongIssuer => "The token's issuer is not accepted.".into(),
            Self::MissingClaim(c) => format!("The token has no \"{c}\" claim.").into(),
            Self::MissingSignature => {
                "Missing webhook-id, webhook-timestamp or webhook-signature header.".into()
            }
            Self::BadTimestamp => "The webhook-timestamp header is not a Unix time.".into(),
            Self::StaleTimestamp => "The webhook-timestamp is outside the accepted window.".into(),
            Self::BadSignature => "No webhook signature matches.".into(),
            Self::TokenLifetimeTooLong => {
                "The token is valid for longer than this endpoint accepts.".into()
            }
            Self::Replayed => {
                "This signed message was already received (a sender's retry is signed anew).".into()
            }
            Self::TokenReused => {
                "This token was already used; this endpoint takes a new token (jti) per request."
                    .into()
            }
            Self::RepeatedHeader => {
                "An authentication header (webhook-id, webhook-timestamp, webhook-signature or Authorization) was sent more than once."
                    .into()
            }
        }
    }
}

/// A verification key: known at start-up, or resolved by name and cached.
enum Key<K> {
    Ready(Arc<K>),
    Named {
        name: String,
        cache: Mutex<Option<(Arc<K>, Instant)>>,
        /// Re-reads after a mismatch ([`IncomingApp::reread`]): one at a time, and when the
        /// last one started.
        reread: tokio::sync::Mutex<Option<Instant>>,
    },
}

/// The replay record (HMAC: the signed message; JWT `jtiReplay`: the token's `jti`) claimed
/// by a request still being accepted. It is held for the whole replay window, so a replay is
/// refused whatever happens next; a request that ends up not accepted releases it
/// ([`ReplayClaim::release`]), so the sender's identical retry is not refused for it.
struct ReplayClaim {
    dedup: Dedup,
    key: DedupKey,
    token: String,
}

impl ReplayClaim {
    /// The request was not accepted: free the record (only this request's own claim).
    async fn release(self, deadline: Instant, endpoint: &str) {
        let work = self.dedup.release(&self.key, &self.token);
        let failed = match tokio::time::timeout_at(deadline.into(), work).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        tracing::error!(
            endpoint = %endpoint, error = %failed,
            "incoming: could not release the replay record of a request that was not accepted; its identical retry is refused until the window ends"
        );
    }
}

enum Auth {
    None,
    Jwt {
        config: Box<JwtConfig>,
        key: Key<JwtVerifier>,
    },
    Hmac {
        tolerance: Duration,
        key: Key<Vec<u8>>,
    },
}

impl Auth {
    fn kind(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Jwt { .. } => "jwt",
            Auth::Hmac { .. } => "hmac",
        }
    }
}

struct Endpoint {
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

/// Whole seconds from `now` until a token's `exp` (the replay record must live that long).
/// `exp` may be fractional (`Date.now() / 1000 + 3600`): rounded up, since the JWT check
/// rounds it to the nearest second; absent, negative or not a number: 0.
fn replay_secs_left(exp: Option<&Value>, now: u64) -> u64 {
    let exp = match exp {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(u) => u,
            // Saturating: a finite float beyond u64 becomes u64::MAX, NaN cannot come from JSON.
            None => n
                .as_f64()
                .filter(|f| *f > 0.0)
                .map_or(0, |f| f.ceil() as u64),
        },
        _ => 0,
    };
    exp.saturating_sub(now)
}

impl IncomingApp {
    /// The key to verify with: ready, cached, or resolved now (then cached for the TTL).
    async fn key<K>(
        &self,
        key: &Key<K>,
        compile: impl Fn(&str) -> Result<K, String>,
    ) -> Result<Arc<K>, Response<Bytes>> {
        let (name, cache) = match key {
            Key::Ready(k) => return Ok(k.clone()),
            Key::Named { name, cache, .. } => (name, cache),
        };
        if let Ok(c) = cache.lock()
            && let Some((k, at)) = c.as_ref()
            && at.elapsed() < self.secret_ttl
        {
            return Ok(k.clone());
        }
        self.load(name, cache, compile, false).await
    }

    /// Resolve `name` (`fresh`: past every cache, the secret store's included), compile it and
    /// cache the key. A secret that is gone or unusable also empties the cache, so a removed
    /// secret stops working.
    async fn load<K>(
        &self,
        name: &str,
        cache: &Mutex<Option<(Arc<K>, Instant)>>,
        compile: impl Fn(&str) -> Result<K, String>,
        fresh: bool,
    ) -> Result<Arc<K>, Response<Bytes>> {
        let Some(resolver) = &self.resolver else {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "misconfigured",
                "This endpoint's secret cannot be resolved.",
            ));
        };
        let resolved = if fresh {
            resolver.refresh(name).await
        } else {
            resolver.resolve(name).await
        };
        let forget = || {
            if let Ok(mut c) = cache.lock() {
                *c = None;
            }
        };
        let value = match resolved {
            Ok(v) => v,
            Err(ResolveError::Unavailable(e)) => {
                tracing::warn!(secret = %name, error = %e, "incoming: secret store unavailable");
                return Err(unavailable("secret store unavailable"));
            }
            Err(e @ (ResolveError::NotFound(_) | ResolveError::Unusable(_))) => {
                forget();
                tracing::error!(error = %e, "incoming: endpoint secret missing");
                return Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "misconfigured",
                    "This endpoint's secret is not configured.",
                ));
            }
        };
        match compile(value.expose_secret()) {
            Ok(k) => {
                let k = Arc::new(k);
                if let Ok(mut c) = cache.lock() {
                    *c = Some((k.clone(), Instant::now()));
                }
                Ok(k)
            }
            Err(e) => {
                forget();
                tracing::error!(secret = %name, error = %e, "incoming: endpoint secret is unusable");
                Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "misconfigured",
                    "This endpoint's secret is not usable.",
                ))
            }
        }
    }

    /// A presented signature or token matched none of the keys in `used`: when the key is a
    /// named secret, the key to try again — another request's re-read that finished while this
    /// one waited, or this one's own re-read from the store (a rotation: the new secret works
    /// at once, and the old one stops with it). At most one re-read per
    /// [`DEFAULT_SECRET_REREAD`] per endpoint, one at a time: a flood of bad signatures costs
    /// the store one read per interval. `None`: nothing new to try.
    async fn reread<K>(
        &self,
        key: &Key<K>,
        used: &Arc<K>,
        compile: impl Fn(&str) -> Result<K, String>,
    ) -> Result<Option<Arc<K>>, Response<Bytes>> {
        let Key::Named {
            name,
            cache,
            reread,
        } = key
        else {
            return Ok(None);
        };
        let mut last = reread.lock().await;
        let current = cache
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(k, _)| k.clone()));
        if let Some(k) = current
            && !Arc::ptr_eq(&k, used)
        {
            return Ok(Some(k));
        }
        if last.is_some_and(|at| at.elapsed() < self.secret_reread) {
            return Ok(None);
        }
        *last = Some(Instant::now());
        tracing::info!(secret = %name, "incoming: no key matched; reading the endpoint's secret again");
        self.load(name, cache, compile, true).await.map(Some)
    }

    /// A valid signature is good for the whole tolerance window, so the exact signed message
    /// (`webhook-id` + `webhook-timestamp`, the single values the signature covers; a sender's
    /// retry has a new timestamp and signature) is claimed in the dedup store for that window,
    /// both directions, and refused the second time.
    async fn refuse_replay(
        &self,
        ep: &Endpoint,
        headers: &HeaderMap,
        tolerance: Duration,
    ) -> Result<ReplayClaim, Response<Bytes>> {
        let (id, ts) = signature::signed_id(headers).map_err(|f| unauthorized(&ep.auth, f))?;
        let key = DedupKey::from_caller(
            &format!("{}\u{1e}hmac-replay", ep.scope),
            &format!("{id}\u{1e}{ts}"),
        );
        let window = tolerance
            .saturating_mul(2)
            .saturating_add(Duration::from_secs(1));
        self.first_use(ep, key, window, AuthFailure::Replayed).await
    }

    /// `jtiReplay`: a token's `jti` is accepted once, and remembered until the token expires
    /// (plus the leeway), after which the token itself is refused anyway.
    async fn refuse_reused_token(
        &self,
        ep: &Endpoint,
        config: &config::JwtConfig,
        claims: &Map<String, Value>,
    ) -> Result<ReplayClaim, Response<Bytes>> {
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Err(unauthorized(&ep.auth, AuthFailure::MissingClaim("jti")));
        };
        let now = crate::time::EpochSeconds::now().0;
        let left = replay_secs_left(claims.get("exp"), now);
        let window = Duration::from_secs(left.saturating_add(config.leeway_secs).max(1));
        let key = DedupKey::from_caller(&format!("{}\u{1e}jwt-jti", ep.scope), jti);
        self.first_use(ep, key, window, AuthFailure::TokenReused)
            .await
    }

    /// Claim `key` for `window` (the claim is never confirmed: it stays held, and refusing,
    /// until the window ends, unless the request is not accepted and releases it). A key
    /// already held, by a request accepted before or one still running, is refused with
    /// `failure`.
    async fn first_use(
        &self,
        ep: &Endpoint,
        key: DedupKey,
        window: Duration,
        failure: AuthFailure,
    ) -> Result<ReplayClaim, Response<Bytes>> {
        let seen = Dedup::with_ttl(ep.dedup.store.clone(), window);
        match seen.claim(&key, window).await {
            Ok(Claim::Claimed(token)) => Ok(ReplayClaim {
                dedup: seen,
                key,
                token,
            }),
            Ok(Claim::Duplicate | Claim::InFlight) => {
                tracing::warn!(endpoint = %ep.name, reason = failure.message().as_ref(), "incoming: replay refused");
                Err(unauthorized(&ep.auth, failure))
            }
            Err(e) => {
                tracing::warn!(endpoint = %ep.name, error = %e, "incoming: replay store failed");
                Err(unavailable("dedup store unavailable"))
            }
        }
    }

    /// Authenticate; on success, what the queued event says about the caller, and the replay
    /// record the request holds (HMAC, and JWT with `jtiReplay`).
    async fn authenticate(
        &self,
        ep: &Endpoint,
        req: &HttpRequest,
    ) -> Result<(Value, Option<ReplayClaim>), Response<Bytes>> {
        match &ep.auth {
            Auth::None => Ok((json!({"type": "none"}), None)),
            Auth::Hmac { tolerance, key } => {
                let used = self.key(key, signature::key_from_secret).await?;
                let now = crate::time::EpochSeconds::now().0;
                let check =
                    |k: &[u8]| signature::verify(&req.headers, &req.body, k, *tolerance, now);
                let mut verdict = check(&used);
                if verdict == Err(AuthFailure::BadSignature)
                    && let Some(k) = self.reread(key, &used, signature::key_from_secret).await?
                {
                    verdict = check(&k);
                }
                verdict.map_err(|f| unauthorized(&ep.auth, f))?;
                let claim = self.refuse_replay(ep, &req.headers, *tolerance).await?;
                Ok((json!({"type": "hmac"}), Some(claim)))
            }
            Auth::Jwt { config, key } => {
                if req
                    .headers
                    .get_all(http::header::AUTHORIZATION)
                    .iter()
                    .count()
                    > 1
                {
                    return Err(unauthorized(&ep.auth, AuthFailure::RepeatedHeader));
                }
                let Some(token) = jwt::bearer_token(&req.headers) else {
                    return Err(unauthorized(&ep.auth, AuthFailure::MissingToken));
                };
                let compile = |m: &str| JwtVerifier::new(config, m);
                let used = self.key(key, compile).await?;
                let mut verdict = used.verify(token);
                if verdict == Err(AuthFailure::BadTokenSignature)
                    && let Some(v) = self.reread(key, &used, compile).await?
                {
                    verdict = v.verify(token);
                }
                let claims = verdict.map_err(|f| unauthorized(&ep.auth, f))?;
                let claim = if config.jti_replay {
                    Some(self.refuse_reused_token(ep, config, &claims).await?)
                } else {
                    None
                };
                let mut info = Map::new();
                info.insert("type".into(), "jwt".into());
                for c in ["sub", "iss"] {
                    if let Some(v @ Value::String(_)) = claims.get(c) {
                        info.insert(c.into(), v.clone());
                    }
                }
                Ok((Value::Object(info), claim))
            }
        }
    }

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
        let (ep, auth, replay) = match self.admit(name, &req).await {
            Ok(admitted) => admitted,
            Err(r) => return r,
        };
        let answer = match self.accept(ep, auth, &req) {
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
    ) -> Result<(&'a Endpoint, Value, Option<ReplayClaim>), Response<Bytes>> {
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
        check_content(&req.headers).map_err(|r| *r)?;
        match self.authenticate(ep, req).await {
            Ok((auth, replay)) => Ok((ep, auth, replay)),
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
    ) -> Result<Accepted<'a>, Box<Response<Bytes>>> {
        let object = parse_object(&req.body, self.max_message_bytes)?;
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
