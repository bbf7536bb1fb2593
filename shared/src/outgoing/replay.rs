//! Recorded HTTP exchanges: the `http` list of a fixture file
//! (`functions/fixtures/<function>/<case>.json`), replayed by [`ReplayTransport`] and written by
//! [`RecordingTransport`] (`make fixture`).
//!
//! An exchange is `{"request": {method, url, headers, body}, "response": {status, headers,
//! body}}`. A body is JSON when its `content-type` says JSON, else a string (`null`: empty).
//! Secret values never appear: [`redact_secrets`] puts `<redacted:NAME>` in their place, and
//! the fixture runner loads each secret as exactly that text, so a replayed request carries the
//! same placeholder the recording shows.

use super::transport::{OutRequest, OutResponse, Transport, TransportError};
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::sync::{Arc, Mutex, PoisonError};

/// One recorded request and its response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub request: RecordedRequest,
    pub response: RecordedResponse,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    pub method: String,
    pub url: String,
    /// On replay, each header listed here must be sent with this value (others are ignored).
    #[serde(default)]
    pub headers: Map<String, Value>,
    /// On replay, when not `null`, the request body must equal it.
    #[serde(default)]
    pub body: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub status: u16,
    #[serde(default)]
    pub headers: Map<String, Value>,
    #[serde(default)]
    pub body: Value,
}

/// The text a loaded secret is replaced with in recordings (and loaded as in replays).
pub fn placeholder(name: &str) -> String {
    format!("<redacted:{name}>")
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            let ct = ct.to_ascii_lowercase();
            ct.starts_with("application/json") || ct.contains("+json")
        })
}

/// A body as a fixture shows it: JSON when the headers say so (and it parses), else text.
fn body_value(headers: &HeaderMap, body: &[u8]) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    if is_json(headers)
        && let Ok(v) = serde_json::from_slice::<Value>(body)
    {
        return v;
    }
    Value::String(String::from_utf8_lossy(body).into_owned())
}

/// A fixture body back to bytes.
fn body_bytes(v: &Value) -> Bytes {
    match v {
        Value::Null => Bytes::new(),
        Value::String(s) => Bytes::from(s.clone()),
        other => Bytes::from(other.to_string()),
    }
}

/// Request headers that differ from run to run or are the transport's business.
const UNRECORDED_REQUEST: &[&str] = &["x-amzn-trace-id", "user-agent", "content-length", "host"];
/// Response headers that are the transport's business or change every time.
const UNRECORDED_RESPONSE: &[&str] = &[
    "date",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

fn headers_map(headers: &HeaderMap, skip: &[&str]) -> Map<String, Value> {
    let mut out = Map::new();
    for (name, value) in headers {
        if skip.contains(&name.as_str()) {
            continue;
        }
        out.insert(
            name.as_str().to_owned(),
            Value::String(String::from_utf8_lossy(value.as_bytes()).into_owned()),
        );
    }
    out
}

impl Exchange {
    /// The exchange as a fixture records it.
    pub fn record(req: &OutRequest, resp: &OutResponse) -> Self {
        Exchange {
            request: RecordedRequest {
                method: req.method.as_str().to_owned(),
                url: req.uri.to_string(),
                headers: headers_map(&req.headers, UNRECORDED_REQUEST),
                body: body_value(&req.headers, &req.body),
            },
            response: RecordedResponse {
                status: resp.status.as_u16(),
                headers: headers_map(&resp.headers, UNRECORDED_RESPONSE),
                body: body_value(&resp.headers, &resp.body),
            },
        }
    }

    /// Why `req` is not this exchange's request, if it is not.
    fn mismatch(&self, req: &OutRequest) -> Option<String> {
        let url = req.uri.to_string();
        if self.request.method != req.method.as_str() || self.request.url != url {
            return Some(format!(
                "the function sent {} {url}, the fixture expects {} {}",
                req.method, self.request.method, self.request.url
            ));
        }
        for (name, want) in &self.request.headers {
            let got = req
                .headers
                .get(name.as_str())
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            if got.as_deref() != want.as_str() {
                return Some(format!(
                    "{} {url}: header {name} is {got:?}, the fixture expects {want}",
                    req.method
                ));
            }
        }
        if !self.request.body.is_null() {
            let got = body_value(&req.headers, &req.body);
            if got != self.request.body {
                return Some(format!(
                    "{} {url}: body {got}, the fixture expects {}",
                    req.method, self.request.body
                ));
            }
        }
        None
    }

    fn response(&self) -> Result<OutResponse, TransportError> {
        let status = StatusCode::from_u16(self.response.status)
            .map_err(|e| TransportError::Refused(format!("recorded status: {e}")))?;
        let mut headers = HeaderMap::new();
        for (name, value) in &self.response.headers {
            let (Ok(n), Some(Ok(v))) = (
                HeaderName::try_from(name.as_str()),
                value.as_str().map(HeaderValue::try_from),
            ) else {
                return Err(TransportError::Refused(format!(
                    "recorded response header {name} is not a valid header"
                )));
            };
            headers.append(n, v);
        }
        Ok(OutResponse {
            status,
            headers,
            body: body_bytes(&self.response.body),
        })
    }
}

/// Answers requests from a list of exchanges. A request gets the first unused exchange with
/// its method and URL, so exchanges of one URL are answered in recorded order (a retry sees the
/// 503 before the 200) while requests to different URLs may come in any order (functions send
/// them concurrently). A request without such an exchange, or whose listed headers or body
/// differ, is refused and noted in [`problems`]; an exchange never asked for is listed by
/// [`unused`].
///
/// [`problems`]: ReplayTransport::problems
/// [`unused`]: ReplayTransport::unused
#[derive(Debug, Default)]
pub struct ReplayTransport {
    state: Mutex<ReplayState>,
}

#[derive(Debug, Default)]
struct ReplayState {
    exchanges: Vec<Exchange>,
    used: Vec<bool>,
    problems: Vec<String>,
}

impl ReplayTransport {
    pub fn new(exchanges: Vec<Exchange>) -> Self {
        Self {
            state: Mutex::new(ReplayState {
                used: vec![false; exchanges.len()],
                exchanges,
                problems: Vec::new(),
            }),
        }
    }
    /// Requests that did not match, one line each.
    pub fn problems(&self) -> Vec<String> {
        self.lock().problems.clone()
    }
    /// Exchanges the function never asked for.
    pub fn unused(&self) -> Vec<Exchange> {
        let s = self.lock();
        s.exchanges
            .iter()
            .zip(&s.used)
            .filter(|(_, used)| !**used)
            .map(|(x, _)| x.clone())
            .collect()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl Transport for ReplayTransport {
    async fn send(&self, req: OutRequest, _max_body: usize) -> Result<OutResponse, TransportError> {
        let mut s = self.lock();
        let url = req.uri.to_string();
        let found = (0..s.exchanges.len()).find(|&i| {
            !s.used[i]
                && s.exchanges[i].request.method == req.method.as_str()
                && s.exchanges[i].request.url == url
        });
        let Some(i) = found else {
            let p = format!(
                "the function sent {} {url}, which the fixture does not list (or not that often)",
                req.method
            );
            s.problems.push(p.clone());
            return Err(TransportError::Refused(p));
        };
        let exchange = s.exchanges[i].clone();
        if let Some(p) = exchange.mismatch(&req) {
            s.problems.push(p.clone());
            return Err(TransportError::Refused(p));
        }
        s.used[i] = true;
        exchange.response()
    }
}

/// Sends through `inner` and keeps every exchange that got a response, for `make fixture`.
pub struct RecordingTransport {
    inner: Arc<dyn Transport>,
    recorded: Mutex<Vec<Exchange>>,
}

impl RecordingTransport {
    pub fn new(inner: Arc<dyn Transport>) -> Self {
        Self {
            inner,
            recorded: Mutex::new(Vec::new()),
        }
    }
    /// What was recorded so far (secret values still in: see [`redact_secrets`]).
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[async_trait]
impl Transport for RecordingTransport {
    async fn send(&self, req: OutRequest, max_body: usize) -> Result<OutResponse, TransportError> {
        let resp = self.inner.send(req.clone(), max_body).await?;
        self.recorded
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Exchange::record(&req, &resp));
        Ok(resp)
    }
}

/// `value` with every string's occurrences of each secret value replaced by its
/// [`placeholder`] (keys included). Secrets are `(name, value)`; empty values are skipped.
pub fn redact_secrets(value: &mut Value, secrets: &[(String, String)]) {
    fn text(s: &str, secrets: &[(String, String)]) -> String {
        let mut out = s.to_owned();
        for (name, v) in secrets {
            if !v.is_empty() && out.contains(v.as_str()) {
                out = out.replace(v.as_str(), &placeholder(name));
            }
        }
        out
    }
    match value {
        Value::String(s) => *s = text(s, secrets),
        Value::Array(items) => items.iter_mut().for_each(|v| redact_secrets(v, secrets)),
        Value::Object(map) => {
            let old = std::mem::take(map);
            for (k, mut v) in old {
                redact_secrets(&mut v, secrets);
                map.insert(text(&k, secrets), v);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(url: &str, auth: Option<&str>) -> OutRequest {
        let mut headers = HeaderMap::new();
        if let Some(a) = auth {
            headers.insert("authorization", HeaderValue::from_str(a).unwrap());
        }
        OutRequest {
            method: http::Method::GET,
            uri: url.parse().unwrap(),
            headers,
            body: Bytes::new(),
        }
    }

    fn exchange() -> Exchange {
        serde_json::from_value(json!({
            "request": {"method": "GET", "url": "http://api.example/c/7",
                        "headers": {"authorization": "Bearer <redacted:k>"}, "body": null},
            "response": {"status": 200, "headers": {"content-type": "application/json"},
                         "body": {"id": 7}}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn replays_in_order_and_checks_listed_headers() {
        let t = ReplayTransport::new(vec![exchange()]);
        let wrong = t
            .send(get("http://api.example/c/7", Some("Bearer other")), 1000)
            .await;
        assert!(matches!(wrong, Err(TransportError::Refused(_))));
        assert_eq!(t.unused().len(), 1);
        let ok = t
            .send(
                get("http://api.example/c/7", Some("Bearer <redacted:k>")),
                1000,
            )
            .await
            .unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(&ok.body[..], br#"{"id":7}"#);
        assert!(t.unused().is_empty());
        assert_eq!(t.problems().len(), 1, "{:?}", t.problems());
        // Nothing left: a further request is refused.
        assert!(
            t.send(get("http://api.example/c/7", None), 1000)
                .await
                .is_err()
        );
    }

    #[test]
    fn recording_redacts_secret_values_everywhere() {
        let req = get(
            "http://api.example/c/7?key=s3cr3t-value",
            Some("Bearer s3cr3t-value"),
        );
        let resp = OutResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from_static(b"echo s3cr3t-value"),
        };
        let mut v = serde_json::to_value(Exchange::record(&req, &resp)).unwrap();
        redact_secrets(&mut v, &[("k".into(), "s3cr3t-value".into())]);
        let text = v.to_string();
        assert!(!text.contains("s3cr3t-value"), "{text}");
        assert_eq!(
            v["request"]["headers"]["authorization"],
            "Bearer <redacted:k>"
        );
        assert_eq!(
            v["request"]["url"],
            "http://api.example/c/7?key=<redacted:k>"
        );
        assert_eq!(v["response"]["body"], "echo <redacted:k>");
    }
}
