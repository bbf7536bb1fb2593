//! A Lambda Runtime API double: the documented protocol (`GET …/invocation/next`, `POST
//! …/{id}/response`, `POST …/{id}/error`, `POST …/init/error`) on 127.0.0.1, so the real
//! bootstrap binaries can be driven exactly as Lambda drives them, client-context header
//! included.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Mutex, mpsc, oneshot};

/// What the function posted back for one invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Body posted to `/response`.
    Response(Vec<u8>),
    /// Body posted to `/error` (`{"errorType":…,"errorMessage":…}`).
    Error(Vec<u8>),
}

impl Outcome {
    pub fn text(&self) -> String {
        match self {
            Outcome::Response(b) | Outcome::Error(b) => String::from_utf8_lossy(b).into_owned(),
        }
    }
}

struct Pending {
    id: String,
    body: Bytes,
    client_context: Option<String>,
    deadline_ms: u64,
}

struct Shared {
    tx: mpsc::UnboundedSender<Pending>,
    rx: Mutex<mpsc::UnboundedReceiver<Pending>>,
    waiters: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    polls: AtomicU64,
    counter: AtomicU64,
    /// Invocations handed out by `/next` and not yet answered, and the most there have been.
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
    init_error: Mutex<Option<String>>,
}

/// A running Runtime API double.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn next(State(s): State<Arc<Shared>>) -> Response {
    s.polls.fetch_add(1, Ordering::SeqCst);
    let mut rx = s.rx.lock().await;
    let Some(p) = rx.recv().await else {
        return StatusCode::GONE.into_response();
    };
    // Another `/next` waits for the following invocation while this one is being answered.
    drop(rx);
    let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    s.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let mut h = HeaderMap::new();
    let mut put = |k: &'static str, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    };
    put("lambda-runtime-aws-request-id", &p.id);
    put("lambda-runtime-deadline-ms", &p.deadline_ms.to_string());
    put(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:test",
    );
    put(
        "lambda-runtime-trace-id",
        "Root=1-00000000-000000000000000000000000;Sampled=0",
    );
    put("content-type", "application/json");
    if let Some(cc) = &p.client_context {
        put("lambda-runtime-client-context", cc);
    }
    (StatusCode::OK, h, p.body).into_response()
}

async fn respond(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    // A buffered response is posted with its length: a runtime that sends it chunked, or with a
    // wrong length, fails the invocation here instead of passing unnoticed.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared != Some(body.len()) {
        let message = format!(
            "the response was posted without its exact Content-Length (declared {declared:?}, {} bytes sent)",
            body.len()
        );
        finish(&s, &id, Outcome::Error(message.into_bytes())).await;
        return StatusCode::BAD_REQUEST;
    }
    finish(&s, &id, Outcome::Response(body.to_vec())).await
}

async fn error(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&s, &id, Outcome::Error(body.to_vec())).await
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    *s.init_error.lock().await = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}

async fn finish(s: &Shared, id: &str, outcome: Outcome) -> StatusCode {
    match s.waiters.lock().await.remove(id) {
        Some(tx) => {
            s.in_flight.fetch_sub(1, Ordering::SeqCst);
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

impl RuntimeApi {
    /// Start on an ephemeral 127.0.0.1 port.
    pub async fn start() -> std::io::Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            tx,
            rx: Mutex::new(rx),
            waiters: Mutex::new(HashMap::new()),
            polls: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            max_in_flight: AtomicU64::new(0),
            init_error: Mutex::new(None),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            // Lambda's own limit on a synchronous response is 6 MB; axum's default body limit
            // (2 MB) would refuse a large page's answer.
            .layer(axum::extract::DefaultBodyLimit::max(8 * 1024 * 1024))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            addr,
            shared,
            server,
        })
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// The most invocations the function has held at once (handed out, not yet answered).
    pub fn max_in_flight(&self) -> u64 {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// How many times the function has asked for the next event.
    pub fn polls(&self) -> u64 {
        self.shared.polls.load(Ordering::SeqCst)
    }

    /// Wait until the function polls for the first time (its init is done).
    pub async fn wait_first_poll(&self, within: Duration) -> bool {
        let end = tokio::time::Instant::now() + within;
        while tokio::time::Instant::now() < end {
            if self.polls() > 0 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        false
    }

    pub async fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().await.clone()
    }

    /// Deliver one invocation and wait for the function's answer. `time_limit` becomes the
    /// invocation's deadline; the wait gives up 10 s after it.
    pub async fn invoke(
        &self,
        payload: impl Into<Bytes>,
        client_context: Option<&str>,
        time_limit: Duration,
    ) -> Option<Outcome> {
        let n = self.shared.counter.fetch_add(1, Ordering::SeqCst);
        let id = format!("req-{n:06}");
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let (tx, rx) = oneshot::channel();
        self.shared.waiters.lock().await.insert(id.clone(), tx);
        let pending = Pending {
            id,
            body: payload.into(),
            client_context: client_context.map(str::to_owned),
            deadline_ms: now_ms + time_limit.as_millis() as u64,
        };
        self.shared.tx.send(pending).ok()?;
        tokio::time::timeout(time_limit + Duration::from_secs(10), rx)
            .await
            .ok()?
            .ok()
    }
}
