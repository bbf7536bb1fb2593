//! Calling back into integrator.io: the client a function gets from `inv.integrator()`.
//!
//! Every call integrator.io makes to a function carries a one-time `bearerToken` for calling
//! its REST API back while the function runs (it works for 15 minutes at most; for an
//! integration app it reaches only the app's own resources). [`Integrator`] is a typed client
//! of that API (`/v1`) on that token:
//!
//! ```no_run
//! use integrator_lambda::types::PostSubmitOptions;
//! use integrator_lambda::{ExtResult, Invocation};
//! use serde_json::json;
//!
//! async fn remember(inv: Invocation, o: PostSubmitOptions) -> ExtResult<()> {
//!     let api = inv.integrator();
//!     let import_id = o.import_id.as_deref().unwrap_or_default();
//!     api.resource_state("imports", import_id)
//!         .put("lastSubmit", &json!({"count": o.response_data.len()}))
//!         .await?;
//!     Ok(())
//! }
//! ```
//!
//! - **Host.** `INTEGRATOR_API_URL`: `https://api.integrator.io` (North America, the default)
//!   or `https://api.eu.integrator.io` (Europe), set by the template parameter
//!   `IntegratorRegion` (`na`/`eu`); locally it may point at a double (`http://127.0.0.1:…`).
//! - **Built on `inv.http()`**: the call's deadline (less a twentieth of the time left, at most
//!   100 ms, so the client's own error answers the call) bounds every attempt and wait; 429 and
//!   connect errors are retried for every method and 5xx for idempotent ones (GET, PUT,
//!   DELETE), honouring `Retry-After`; one log line per attempt, which shows the URL only
//!   (the token travels in the `Authorization` header, marked sensitive, and never reaches a
//!   log line, a metric or an error message).
//! - **Rate limit.** integrator.io's leaky bucket (1,000 deep, 300 a second) is mirrored by one
//!   bucket per process, shared by every call: a request waits for a place before it is sent,
//!   and one that would wait past the deadline fails `integrator_rate_limited` unsent.
//! - **Errors** are [`IntegratorError`]s under one code scheme ([`error`]); with `?` they
//!   become the call's 422 `{"message", "code"}`. A call without a `bearerToken` fails
//!   `integrator_token_missing` and sends nothing.
//! - **Without a call token** (queued work, schedules), `inv.integrator_with_stack_token()`
//!   uses the stack's own API token, kept as the secret `integrator-api-token`
//!   (`make secret NAME=integrator-api-token`).

mod bucket;
pub mod error;
mod resources;

#[doc(hidden)]
pub mod double;

pub use bucket::LeakyBucket;
pub use error::{ApiError, IntegratorError};
pub use resources::{InstallStep, ResourceState, TokenInfo};

use super::{Http, HttpError};
pub use http::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// integrator.io's North American host (the default).
pub const NA_URL: &str = "https://api.integrator.io";
/// integrator.io's European host.
pub const EU_URL: &str = "https://api.eu.integrator.io";
/// The secret holding the stack's own integrator.io API token, for work without a call token.
pub const STACK_TOKEN_SECRET: &str = "integrator-api-token";

/// Where integrator.io's API is for this deployment, and the process's rate-limit bucket.
/// Cheap to clone (clones share the bucket).
#[derive(Debug, Clone)]
pub struct IntegratorApi {
    base: Arc<str>,
    bucket: Arc<LeakyBucket>,
}

impl Default for IntegratorApi {
    fn default() -> Self {
        Self::new(NA_URL)
    }
}

impl IntegratorApi {
    /// The API at `base_url` (`https://api.integrator.io`, a double's `http://127.0.0.1:…`; a
    /// trailing `/` or `/v1` is dropped) with a bucket of integrator.io's size.
    pub fn new(base_url: &str) -> Self {
        let base = base_url.trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        Self {
            base: base.into(),
            bucket: Arc::new(LeakyBucket::default()),
        }
    }
    /// The same API with another bucket (tests).
    #[doc(hidden)]
    pub fn with_bucket(mut self, bucket: LeakyBucket) -> Self {
        self.bucket = Arc::new(bucket);
        self
    }
    /// One process-wide API at the North American host, for deployments that name none.
    #[doc(hidden)]
    pub fn shared_default() -> Self {
        static DEFAULT: OnceLock<IntegratorApi> = OnceLock::new();
        DEFAULT.get_or_init(Self::default).clone()
    }
    /// The base URL (no trailing `/`, no `/v1`).
    pub fn base_url(&self) -> &str {
        &self.base
    }
    /// The client of one call: its outgoing client and its token (`None`: every request fails
    /// `integrator_token_missing`).
    #[doc(hidden)]
    pub fn client(&self, http: Http, token: Option<SecretString>) -> Integrator {
        Integrator {
            api: self.clone(),
            http,
            token: token.filter(|t| !t.expose_secret().is_empty()),
        }
    }
}

/// The integrator.io client of one call (`inv.integrator()`): see the [module docs](self).
#[derive(Clone)]
pub struct Integrator {
    api: IntegratorApi,
    http: Http,
    token: Option<SecretString>,
}

impl std::fmt::Debug for Integrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integrator")
            .field("base", &self.api.base)
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

/// `segment` percent-encoded for one path segment (an id or a key cannot add segments).
pub(crate) fn segment(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const KEEP: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, KEEP).to_string()
}

impl Integrator {
    /// Whether the client has a token (else every request fails `integrator_token_missing`).
    pub fn has_token(&self) -> bool {
        self.token.is_some()
    }
    /// A request to `path` (from `/v1`, e.g. `/exports/abc/audit`) with any method: for the
    /// endpoints the typed methods do not cover.
    pub fn request(&self, method: Method, path: &str) -> ApiRequest<'_> {
        ApiRequest {
            client: self,
            method,
            path: format!("/v1/{}", path.trim_start_matches('/')),
            query: Vec::new(),
            body: None,
            error: None,
        }
    }

    pub(crate) fn get(&self, path: &str) -> ApiRequest<'_> {
        self.request(Method::GET, path)
    }

    /// The token with every occurrence removed from `text`.
    fn scrub(&self, text: &str) -> String {
        let text = crate::telemetry::redact_text(text).into_owned();
        match &self.token {
            Some(t) if t.expose_secret().len() >= crate::telemetry::MIN_REDACT_LEN => {
                text.replace(t.expose_secret(), crate::telemetry::REDACTED)
            }
            _ => text,
        }
    }
}

/// One request to integrator.io being built; finish it with [`ApiRequest::send`].
pub struct ApiRequest<'a> {
    client: &'a Integrator,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    error: Option<String>,
}

impl ApiRequest<'_> {
    /// Add a query parameter (e.g. `_flowId`).
    pub fn query(mut self, name: &str, value: &str) -> Self {
        self.query.push((name.to_owned(), value.to_owned()));
        self
    }
    /// `body` as the JSON request body.
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(b) => self.body = Some(b),
            Err(e) => self.error = Some(format!("body is not serializable: {e}")),
        }
        self
    }

    /// Send it and read a 2xx answer as `T` (an empty body reads as JSON `null`, so `()`,
    /// `Option<_>` and `Value` accept a 204). Any other status is an [`IntegratorError`].
    pub async fn send<T: DeserializeOwned>(self) -> Result<T, IntegratorError> {
        let method = self.method.as_str().to_owned();
        let path = self.path.clone();
        let body = self.send_raw().await?;
        let parsed = if body.iter().all(u8::is_ascii_whitespace) {
            serde_json::from_value(Value::Null)
        } else {
            serde_json::from_slice(&body)
        };
        parsed.map_err(|e| IntegratorError::InvalidResponse {
            method,
            path,
            detail: e.to_string(),
            too_large: false,
        })
    }

    /// Send it; the body of a 2xx answer, as received.
    pub async fn send_raw(self) -> Result<bytes::Bytes, IntegratorError> {
        let method = self.method.as_str().to_owned();
        if let Some(e) = self.error {
            return Err(IntegratorError::InvalidRequest(e));
        }
        // No token: nothing is sent (not even a place taken in the bucket).
        let Some(token) = &self.client.token else {
            return Err(IntegratorError::TokenMissing);
        };
        let mut url = format!("{}{}", self.client.api.base, self.path);
        if !self.query.is_empty() {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &self.query {
                q.append_pair(k, v);
            }
            url.push('?');
            url.push_str(&q.finish());
        }
        let http = &self.client.http;
        let deadline = http.deadline();
        let Some(wait) = self.client.api.bucket.reserve(Instant::now(), deadline) else {
            return Err(IntegratorError::RateLimited {
                method,
                path: self.path,
            });
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let mut req = http
            .request(self.method.clone(), &url)
            .bearer_auth(token)
            .header("accept", "application/json");
        if let Some(b) = self.body {
            req = req.header("content-type", "application/json").body(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e: HttpError| IntegratorError::from_http(&method, &self.path, e))?;
        if !resp.status().is_success() {
            return Err(IntegratorError::from_status(
                &method,
                &self.path,
                resp.status().as_u16(),
                resp.bytes(),
                &|s| self.client.scrub(s),
            ));
        }
        Ok(resp.bytes().clone())
    }
}

#[cfg(test)]
mod tests;
