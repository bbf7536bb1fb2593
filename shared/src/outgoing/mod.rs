//! Outgoing HTTP: the client a function gets from `inv.http()`.
//!
//! ```no_run
//! use integrator_lambda::{ExposeSecret, ExtResult, Invocation};
//!
//! async fn lookup(inv: Invocation, id: &str) -> ExtResult<serde_json::Value> {
//!     let key = inv.secret("crm-api-key").await?;
//!     let customer = inv
//!         .http()
//!         .get(&format!("https://crm.example.com/customers/{id}"))
//!         .bearer_auth(&key)
//!         .send()
//!         .await?
//!         .error_for_status()?
//!         .json()?;
//!     Ok(customer)
//! }
//! ```
//!
//! What every request gets, whatever the transport:
//!
//! - **Deadline.** No attempt, wait or retry goes past the invocation's deadline; an attempt
//!   also stops after [`HttpConfig::attempt_timeout`]. Past the deadline the call fails with
//!   [`HttpError::Deadline`].
//! - **Retries** with exponential back-off and jitter (100 ms, 200 ms, 400 ms… each between half
//!   and all of that, at most 5 s; 4 attempts in all by default) on connect errors, 429 and 5xx.
//!   `Retry-After` (seconds or an HTTP date) replaces the back-off when given; when it points
//!   past the deadline the response is returned as it is. A 5xx, a timed-out attempt or a broken
//!   connection is retried only for idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) or a
//!   request marked [`RequestBuilder::idempotent`]: a POST that reached the server is not sent
//!   twice behind the author's back. A 429 and a connect error mean the request was not
//!   processed, so they are retried for every method.
//! - **A per-host concurrency limit** ([`HttpConfig::max_per_host`], 8): a page of records
//!   fanned out does not open a hundred connections to one API.
//! - **One log line per attempt**, at INFO:
//!   `HTTP GET https://api.example.com/customers/7?key=[REDACTED] - 200 OK (41 ms, 0/512 B)`
//!   (query values and user info in the URL are replaced, and every loaded secret is scrubbed
//!   from the line as from every other).
//! - **Metrics**: an EMF record per attempt by `Host` and `Status` (`HttpCalls`,
//!   `HttpDuration`), see [`crate::metrics::http_call`].
//! - **Trace**: the call's trace id goes out as `X-Amzn-Trace-Id` (unless the request sets it).
//! - Response bodies are capped at [`HttpConfig::max_response_bytes`] (10 MiB).

pub mod integrator;
#[doc(hidden)]
pub mod replay;
#[doc(hidden)]
pub mod transport;

mod retry;

#[doc(hidden)]
pub use transport::{HyperTransport, OutRequest, OutResponse, Transport, TransportError};

use retry::execute;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// The `User-Agent` of requests that set none.
#[doc(hidden)]
pub const USER_AGENT: &str = "integrator-lambda";

/// The header the trace id travels in.
#[doc(hidden)]
pub const TRACE_HEADER: &str = "x-amzn-trace-id";

/// The client's limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// Back-off before the second attempt (doubled before each later one, jittered).
    pub first_backoff: Duration,
    /// Longest back-off.
    pub max_backoff: Duration,
    /// Longest single attempt (the invocation's deadline may cut it shorter).
    pub attempt_timeout: Duration,
    /// Requests in flight at once per host (`host:port`).
    pub max_per_host: usize,
    /// Longest response body read.
    pub max_response_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            attempts: 4,
            first_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            attempt_timeout: Duration::from_secs(30),
            max_per_host: 8,
            max_response_bytes: 10 * 1024 * 1024,
        }
    }
}

/// Why an outgoing request failed. Texts show the URL with its query values redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The request could not be built (bad URL, header or body); nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// No answer after every attempt (connection refused, reset, timed out…).
    #[error("{method} {url} failed after {attempts} attempt(s): {detail}")]
    Unreachable {
        /// The HTTP method.
        method: String,
        /// The URL, query values redacted.
        url: String,
        /// How many attempts were made.
        attempts: u32,
        /// What went wrong on the last attempt.
        detail: String,
    },
    /// The invocation's deadline came before an answer.
    #[error("{method} {url} did not complete before the invocation's deadline")]
    Deadline {
        /// The HTTP method.
        method: String,
        /// The URL, query values redacted.
        url: String,
    },
    /// The server answered with an error status (after retries, for retryable ones).
    #[error("{method} {url} answered {status}: {body}")]
    Status {
        /// The HTTP method.
        method: String,
        /// The URL, query values redacted.
        url: String,
        /// The status code.
        status: u16,
        /// The start of the body (at most 300 characters).
        body: String,
    },
    /// The response body is larger than the client accepts.
    #[error("{url}: response body over {limit} bytes")]
    TooLarge {
        /// The URL, query values redacted.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The body is not the JSON the caller asked for.
    #[error("{url}: response is not the JSON expected: {detail}")]
    Json {
        /// The URL, query values redacted.
        url: String,
        /// The parser's complaint.
        detail: String,
    },
}

impl HttpError {
    /// The `code` integrator.io shows for this error.
    pub fn code(&self) -> &'static str {
        match self {
            HttpError::InvalidRequest(_) => "http_invalid_request",
            HttpError::Unreachable { .. } => "http_unreachable",
            HttpError::Deadline { .. } => "http_timeout",
            HttpError::Status { .. } => "http_status",
            HttpError::TooLarge { .. } => "http_response_too_large",
            HttpError::Json { .. } => "http_invalid_json",
        }
    }
    /// The HTTP status, for [`HttpError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The process's outgoing client: a transport, its limits and the per-host gates. Cheap to
/// clone. Functions use it through [`Http`] (`inv.http()`), which adds the call's deadline and
/// trace id.
#[derive(Clone)]
#[doc(hidden)]
pub struct HttpClient {
    shared: Arc<Shared>,
}

struct Shared {
    transport: Arc<dyn Transport>,
    config: HttpConfig,
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("config", &self.shared.config)
            .finish()
    }
}

impl HttpClient {
    /// A client over `transport`.
    #[doc(hidden)]
    pub fn new(transport: Arc<dyn Transport>, config: HttpConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                transport,
                config,
                hosts: Mutex::new(HashMap::new()),
            }),
        }
    }
    /// The real client (hyper + rustls), with default limits.
    #[doc(hidden)]
    pub fn hyper() -> Self {
        Self::new(Arc::new(HyperTransport::new()), HttpConfig::default())
    }
    /// One process-wide real client, for invocations whose services name none.
    #[doc(hidden)]
    pub fn shared_default() -> Self {
        static DEFAULT: OnceLock<HttpClient> = OnceLock::new();
        DEFAULT.get_or_init(Self::hyper).clone()
    }
    pub fn config(&self) -> &HttpConfig {
        &self.shared.config
    }
    /// The client bound to one call: its deadline and trace id.
    #[doc(hidden)]
    pub fn for_call(&self, deadline: Instant, trace_id: Option<Arc<str>>) -> Http {
        Http {
            client: self.clone(),
            deadline,
            trace_id,
        }
    }
    fn gate(&self, host: &str) -> Arc<Semaphore> {
        let mut hosts = self
            .shared
            .hosts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Bounded memory: a process calling very many hosts forgets idle gates.
        if hosts.len() >= 1024 {
            let max = self.shared.config.max_per_host;
            hosts.retain(|_, s| s.available_permits() < max);
        }
        hosts
            .entry(host.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.shared.config.max_per_host.max(1))))
            .clone()
    }
}

/// The outgoing client of one call (`inv.http()`): requests are bounded by the call's deadline
/// and carry its trace id.
#[derive(Debug, Clone)]
pub struct Http {
    client: HttpClient,
    deadline: Instant,
    trace_id: Option<Arc<str>>,
}

impl Http {
    /// A request; finish it with [`RequestBuilder::send`].
    pub fn request(&self, method: Method, url: &str) -> RequestBuilder<'_> {
        RequestBuilder {
            http: self,
            method,
            url: url.to_owned(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            idempotent: None,
            attempts: None,
            error: None,
        }
    }
    /// A `GET` request.
    pub fn get(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::GET, url)
    }
    /// A `POST` request.
    pub fn post(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::POST, url)
    }
    /// A `PUT` request.
    pub fn put(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::PUT, url)
    }
    /// A `PATCH` request.
    pub fn patch(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::PATCH, url)
    }
    /// A `DELETE` request.
    pub fn delete(&self, url: &str) -> RequestBuilder<'_> {
        self.request(Method::DELETE, url)
    }
    /// `GET url`, a 2xx answer's body parsed as `T` (any other status: [`HttpError::Status`]).
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, HttpError> {
        self.get(url).send().await?.error_for_status()?.json()
    }
    /// `POST url` with `body` as JSON, a 2xx answer parsed as `T`.
    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<T, HttpError> {
        self.post(url)
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
    }
    /// `PUT url` with `body` as JSON, a 2xx answer parsed as `T`.
    pub async fn put_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        url: &str,
        body: &B,
    ) -> Result<T, HttpError> {
        self.put(url)
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
    }
    /// When every request of this call must be done.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
}

/// One request being built.
pub struct RequestBuilder<'a> {
    http: &'a Http,
    method: Method,
    url: String,
    headers: HeaderMap,
    body: Bytes,
    idempotent: Option<bool>,
    attempts: Option<u32>,
    error: Option<String>,
}

impl RequestBuilder<'_> {
    /// Add a header (an invalid name or value fails the request at [`send`](Self::send)).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(n), Ok(v)) => {
                self.headers.append(n, v);
            }
            _ => self.error = Some(format!("invalid header {name}")),
        }
        self
    }
    /// `Authorization: Bearer <secret>` (the header is marked sensitive).
    pub fn bearer_auth(mut self, token: &SecretString) -> Self {
        match HeaderValue::try_from(format!("Bearer {}", token.expose_secret())) {
            Ok(mut v) => {
                v.set_sensitive(true);
                self.headers.insert(http::header::AUTHORIZATION, v);
            }
            Err(_) => self.error = Some("the bearer token is not a valid header value".into()),
        }
        self
    }
    /// `body` as JSON, with `content-type: application/json`.
    pub fn json<B: Serialize + ?Sized>(mut self, body: &B) -> Self {
        match serde_json::to_vec(body) {
            Ok(b) => {
                self.body = Bytes::from(b);
                self.headers.insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
            }
            Err(e) => self.error = Some(format!("body is not serializable: {e}")),
        }
        self
    }
    /// A raw body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
    /// Retry 5xx, timeouts and broken connections even for a POST/PATCH (the API deduplicates,
    /// e.g. by an idempotency key); or, with `false`, never for this request.
    pub fn idempotent(mut self, yes: bool) -> Self {
        self.idempotent = Some(yes);
        self
    }
    /// Attempts for this request, the first included (`1`: no retry).
    pub fn attempts(mut self, n: u32) -> Self {
        self.attempts = Some(n.max(1));
        self
    }

    /// Send it: retries, deadline, log line and metrics as the module docs say. Any status is
    /// an `Ok` response (see [`Response::error_for_status`]).
    pub async fn send(self) -> Result<Response, HttpError> {
        if let Some(e) = self.error {
            return Err(HttpError::InvalidRequest(e));
        }
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| HttpError::InvalidRequest(format!("invalid URL: {e}")))?;
        let shown = display_url(&uri);
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(HttpError::InvalidRequest(format!(
                "{shown} is not an absolute http(s) URL"
            )));
        };
        if scheme != "http" && scheme != "https" {
            return Err(HttpError::InvalidRequest(format!(
                "{shown}: only http and https are supported"
            )));
        }
        let host = match authority.port_u16() {
            Some(p) => format!("{}:{p}", authority.host()),
            None => authority.host().to_owned(),
        };
        let mut headers = self.headers;
        if let Some(t) = &self.http.trace_id
            && !headers.contains_key(TRACE_HEADER)
            && let Ok(v) = HeaderValue::try_from(t.as_ref())
        {
            headers.insert(TRACE_HEADER, v);
        }
        if !headers.contains_key(http::header::USER_AGENT) {
            headers.insert(
                http::header::USER_AGENT,
                HeaderValue::from_static(USER_AGENT),
            );
        }
        let req = OutRequest {
            method: self.method,
            uri,
            headers,
            body: self.body,
        };
        let idempotent = self.idempotent.unwrap_or(matches!(
            req.method,
            Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
        ));
        let client = &self.http.client;
        let attempts = self.attempts.unwrap_or(client.config().attempts).max(1);
        // The X-Ray subsegment of a sampled call (`None`, at no cost, otherwise).
        let traced = crate::xray::http_request();
        let method = traced.as_ref().map(|_| req.method.clone());
        let result = execute(
            client,
            req,
            &shown,
            &host,
            self.http.deadline,
            attempts,
            idempotent,
        )
        .await;
        if let (Some(s), Some(m)) = (traced, method) {
            let status = result.as_ref().ok().map(|r| r.status().as_u16());
            let error = result.as_ref().err().map(HttpError::code);
            crate::xray::http_end(s, m.as_str(), &host, &shown, status, error);
        }
        result
    }
}

/// `uri` as logs and errors show it: user info dropped, each query value replaced by
/// `[REDACTED]` (names kept), and every registered secret scrubbed.
#[doc(hidden)]
pub fn display_url(uri: &Uri) -> String {
    let mut out = String::new();
    if let Some(s) = uri.scheme_str() {
        out.push_str(s);
        out.push_str("://");
    }
    if let Some(a) = uri.authority() {
        let a = a.as_str();
        let host = a.rsplit_once('@').map_or(a, |(_, h)| h);
        if a.contains('@') {
            out.push_str(crate::telemetry::REDACTED);
            out.push('@');
        }
        out.push_str(host);
    }
    out.push_str(uri.path());
    if let Some(q) = uri.query() {
        out.push('?');
        let pairs: Vec<String> = q
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) => format!("{k}={}", crate::telemetry::REDACTED),
                None => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    crate::telemetry::redact_text(&out).into_owned()
}

/// An answer, its body read whole.
#[derive(Debug, Clone)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    method: String,
    url: String,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }
    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
    /// The whole body, as received.
    pub fn bytes(&self) -> &Bytes {
        &self.body
    }
    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The body parsed as JSON into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpError> {
        serde_json::from_slice(&self.body).map_err(|e| HttpError::Json {
            url: self.url.clone(),
            detail: e.to_string(),
        })
    }
    /// Itself when the status is 2xx, else [`HttpError::Status`] with the start of the body.
    pub fn error_for_status(self) -> Result<Self, HttpError> {
        if self.status.is_success() {
            return Ok(self);
        }
        let text = self.text();
        let body: String = text.chars().take(300).collect();
        Err(HttpError::Status {
            method: self.method,
            url: self.url,
            status: self.status.as_u16(),
            body: crate::telemetry::redact_text(&body).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests;
