//! A local integrator.io double, for tests and `make serve`: a small HTTP server on
//! `127.0.0.1` (port 0: the system picks) that speaks enough of the `/v1` API for functions
//! that call back.
//!
//! - **Records** every request (method, path and query, whether the bearer token matched, body).
//! - **Keeps state**: `/v1/state/{key}` and `/v1/{type}/{id}/state/{key}` (GET 200 or 404,
//!   PUT 200, DELETE 204), and resource documents: a `PUT /v1/{type}/{id}` is what a later
//!   `GET` answers.
//! - **Answers from fixtures**: [`IntegratorDouble::answer`] sets what `METHOD /v1/path`
//!   answers (invoke calls, clones, documents), [`IntegratorDouble::answer_from_fixture`] takes
//!   them from a recorded fixture's `http` list; `GET /v1/tokenInfo` is built in.
//! - **Checks the token** when given one: any other `Authorization` gets integrator.io's 401.
//! - **Injects faults** ([`Fault`]) into the next requests: garbage, a stall, 429 with
//!   `Retry-After`, 500, or a connection closed without an answer.
//!
//! The server stops when the double is dropped.

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A fault the double injects instead of answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 200 with a body that is not JSON.
    Garbage,
    /// No answer for this long.
    Stall(Duration),
    /// 429 with `Retry-After: secs`.
    RateLimited {
        /// The `Retry-After` value, in seconds.
        retry_after: u64,
    },
    /// 500 with integrator.io's error body.
    ServerError,
    /// The connection closed without an answer.
    Reset,
}

/// One request the double received.
#[derive(Debug, Clone, PartialEq)]
pub struct Received {
    /// The method.
    pub method: String,
    /// The path and query (`/v1/…`).
    pub path: String,
    /// The `Authorization` header was `Bearer <the double's token>` (always `true` without one).
    pub token_ok: bool,
    /// The whole `Authorization` header as sent (tests check it never leaks elsewhere).
    pub authorization: Option<String>,
    /// The body, parsed when it is JSON (`null` when empty).
    pub body: Value,
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    answers: HashMap<(String, String), (u16, Value)>,
    documents: HashMap<String, Value>,
    faults: VecDeque<Fault>,
}

/// The double; see the module docs.
pub struct IntegratorDouble {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    token: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for IntegratorDouble {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl IntegratorDouble {
    /// Start a double on `127.0.0.1:port` (`0`: any free port), accepting any token (`None`)
    /// or only `Bearer <token>`. Must be called inside a Tokio runtime.
    pub async fn start(port: u16, token: Option<&str>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let token_owned = token.map(str::to_owned);
        let shared = state.clone();
        let expected = token_owned.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = &mut stopped => break,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                let state = shared.clone();
                let expected = expected.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        let expected = expected.clone();
                        async move { handle(req, state, expected.as_deref()).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            state,
            token: token_owned,
            stop: Some(stop),
        })
    }
    /// The base URL to give the client (`INTEGRATOR_API_URL`): `http://127.0.0.1:port`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    /// The token it accepts, if it checks one.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
    /// What `method path` answers (`path` from `/v1`, without the query).
    pub fn answer(&self, method: &str, path: &str, status: u16, body: Value) {
        self.lock().answers.insert(
            (method.to_ascii_uppercase(), path.to_owned()),
            (status, body),
        );
    }
    /// Answer the integrator.io calls a fixture recorded: each exchange of its `http` list
    /// whose URL has a `/v1/` path sets what that method and path answer (the last one wins).
    /// The number of exchanges used.
    pub fn answer_from_fixture(&self, fixture: &Value) -> usize {
        let mut used = 0;
        for x in fixture
            .get("http")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let request = &x["request"];
            let (Some(method), Some(url)) = (request["method"].as_str(), request["url"].as_str())
            else {
                continue;
            };
            let Ok(uri) = url.parse::<http::Uri>() else {
                continue;
            };
            if !uri.path().starts_with("/v1/") {
                continue;
            }
            let status = x["response"]["status"]
                .as_u64()
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200);
            self.answer(method, uri.path(), status, x["response"]["body"].clone());
            used += 1;
        }
        used
    }
    /// Store a resource document, answered to `GET path` (e.g. `/v1/integrations/i1`).
    pub fn put_document(&self, path: &str, doc: Value) {
        self.lock().documents.insert(path.to_owned(), doc);
    }
    /// The stored document (or state value) at `path`.
    pub fn document(&self, path: &str) -> Option<Value> {
        self.lock().documents.get(path).cloned()
    }
    /// Inject `fault` into the next request (faults queue up, one per request).
    pub fn fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }
    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }
}

fn reply(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn errors(code: &str, message: &str) -> Value {
    json!({"errors": [{"code": code, "message": message}]})
}

fn is_state_path(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    matches!(
        parts.as_slice(),
        ["v1", "state", _] | ["v1", _, _, "state", _]
    )
}

async fn handle(
    req: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
    expected: Option<&str>,
) -> Result<Response<Full<Bytes>>, std::io::Error> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let full = req
        .uri()
        .path_and_query()
        .map_or(path.clone(), |p| p.as_str().to_owned());
    let authorization = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let token_ok =
        expected.is_none_or(|t| authorization.as_deref() == Some(&format!("Bearer {t}")));
    let bytes = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    let fault = {
        let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
        s.received.push(Received {
            method: method.as_str().to_owned(),
            path: full,
            token_ok,
            authorization,
            body: body.clone(),
        });
        s.faults.pop_front()
    };
    match fault {
        Some(Fault::Garbage) => {
            let mut r = reply(200, &Value::Null);
            *r.body_mut() = Full::new(Bytes::from_static(b"<html>\x00not json"));
            return Ok(r);
        }
        Some(Fault::Stall(d)) => {
            tokio::time::sleep(d).await;
            return Ok(reply(200, &json!({})));
        }
        Some(Fault::RateLimited { retry_after }) => {
            let mut r = reply(429, &errors("rate_limited", "Too many requests."));
            if let Ok(v) = http::HeaderValue::try_from(retry_after.to_string()) {
                r.headers_mut().insert(http::header::RETRY_AFTER, v);
            }
            return Ok(r);
        }
        Some(Fault::ServerError) => {
            return Ok(reply(
                500,
                &errors("internal_error", "Something went wrong."),
            ));
        }
        Some(Fault::Reset) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionReset,
                "fault: reset",
            ));
        }
        None => {}
    }
    if !token_ok {
        return Ok(reply(
            401,
            &errors("unauthorized", "Invalid or expired bearer token."),
        ));
    }
    let mut s = state.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((status, answer)) = s.answers.get(&(method.as_str().to_owned(), path.clone())) {
        return Ok(reply(*status, answer));
    }
    if method == Method::GET && path == "/v1/tokenInfo" {
        return Ok(reply(200, &json!({"_userId": "double-user", "scope": "*"})));
    }
    let state_path = is_state_path(&path);
    Ok(match method {
        Method::GET => match s.documents.get(&path) {
            Some(doc) => reply(200, doc),
            None => reply(404, &errors("not_found", "Resource not found.")),
        },
        Method::PUT => {
            s.documents.insert(path, body.clone());
            reply(200, &body)
        }
        Method::DELETE if state_path => match s.documents.remove(&path) {
            Some(_) => {
                let mut r = reply(204, &Value::Null);
                *r.body_mut() = Full::new(Bytes::new());
                r
            }
            None => reply(404, &errors("not_found", "Key not found.")),
        },
        _ => reply(
            404,
            &errors("not_found", "The double has no answer for this."),
        ),
    })
}
