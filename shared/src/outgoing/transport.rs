//! The seam under the outgoing client: one request out, one response (or a transport failure)
//! back. The real one is hyper + rustls on ring ([`HyperTransport`]); fixtures replay recorded
//! exchanges ([`super::replay::ReplayTransport`]) and `make fixture` records them
//! ([`super::replay::RecordingTransport`]). Retries, deadlines, logs and metrics live above the
//! seam, in [`super::Http`], so every transport gets them.

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode, Uri};
use std::time::Duration;

/// One request as the client sends it (headers final, body whole).
#[derive(Debug, Clone)]
pub struct OutRequest {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One response, its body read whole.
#[derive(Debug, Clone)]
pub struct OutResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No connection was made: the request was not sent (always safe to retry).
    #[error("connect error: {0}")]
    Connect(String),
    /// The exchange broke after the request may have been sent.
    #[error("I/O error: {0}")]
    Io(String),
    /// The response body was longer than the limit.
    #[error("response body over {0} bytes")]
    TooLarge(usize),
    /// The transport refused the request (a replay without a matching exchange, a bad URI…).
    #[error("{0}")]
    Refused(String),
}

/// Sends one request. Implementations do not retry, log or time out: [`super::Http`] does.
#[async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Send `req`; read at most `max_body` bytes of the response body.
    async fn send(&self, req: OutRequest, max_body: usize) -> Result<OutResponse, TransportError>;
}

/// How long a TCP connect may take (then it is a retryable connect error).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

type HyperClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<Bytes>,
>;

/// The real transport: hyper's pooled HTTP/1 client over rustls with the ring provider and the
/// platform's root certificates — the same TLS stack as the AWS SDK's client, so no second
/// one is linked. `http://` URLs are allowed (local APIs, tests on 127.0.0.1).
#[derive(Clone)]
pub struct HyperTransport {
    client: Result<HyperClient, String>,
}

impl std::fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperTransport")
            .field("ready", &self.client.is_ok())
            .finish()
    }
}

impl Default for HyperTransport {
    fn default() -> Self {
        Self::new()
    }
}

impl HyperTransport {
    /// A client with its own connection pool. Without any root certificate on the machine,
    /// every request fails with a connect error that says so.
    pub fn new() -> Self {
        use hyper_util::client::legacy::{Client, connect::HttpConnector};
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let client = hyper_rustls::HttpsConnectorBuilder::new()
            .with_native_roots()
            .map(|b| {
                let https = b.https_or_http().enable_http1().wrap_connector(http);
                Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(https)
            })
            .map_err(|e| format!("no TLS root certificates could be loaded: {e}"));
        Self { client }
    }
}

#[async_trait]
impl Transport for HyperTransport {
    async fn send(&self, req: OutRequest, max_body: usize) -> Result<OutResponse, TransportError> {
        use http_body_util::BodyExt;
        let client = self
            .client
            .as_ref()
            .map_err(|e| TransportError::Connect(e.clone()))?;
        let mut builder = http::Request::builder().method(req.method).uri(req.uri);
        if let Some(h) = builder.headers_mut() {
            *h = req.headers;
        }
        let request = builder
            .body(http_body_util::Full::new(req.body))
            .map_err(|e| TransportError::Refused(e.to_string()))?;
        let response = client.request(request).await.map_err(|e| {
            if e.is_connect() {
                TransportError::Connect(error_chain(&e))
            } else {
                TransportError::Io(error_chain(&e))
            }
        })?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, max_body)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    TransportError::TooLarge(max_body)
                } else {
                    TransportError::Io(e.to_string())
                }
            })?
            .to_bytes();
        Ok(OutResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// An error and its sources, `: `-separated (hyper's own text is only "client error (Connect)").
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    // Bounded: error chains are short, but never walk more than a few links.
    for _ in 0..8 {
        let Some(s) = source else { break };
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
