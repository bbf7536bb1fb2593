//! The local HTTP server (`make serve`, `conformance-server`): the same routes as a Function
//! URL, served by axum on 127.0.0.1.
//!
//! Unlike a Lambda environment, which answers one request at a time, this server takes every
//! connection at once. A page costs several times its size while it is in flight (the body, the
//! parsed records, the reply), so request bodies are admitted against a byte budget
//! ([`InflightBudget`]): small requests pass freely, large pages wait their turn with their bytes
//! still in the kernel's socket buffers instead of our heap. Nothing is refused or dropped.

use super::http::{HttpApp, HttpRequest, MAX_DECODE_RATIO, error_response, too_large};
use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::response::Response;
use http_body_util::Limited;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default budget per CPU: enough for a few 1,000-record pages per core at once, while a
/// 5 MB page has the budget to itself.
const DEFAULT_PER_CPU: usize = 1024 * 1024;

/// A request's admission cost is its body length in KiB (at least 1); a body whose length is
/// not declared (chunked) is admitted at [`UNDECLARED_KIB`], then charged as it is read: past
/// what it was charged it takes more of the budget before it reads on (see
/// [`InflightBudget::cover`]), so it never holds more than it was charged for.
const UNDECLARED_KIB: u32 = 64;

/// How many request-body bytes the server works on at once (bodies read, parsed, being answered).
#[derive(Clone, Debug)]
pub struct InflightBudget {
    gate: Option<Arc<Semaphore>>,
    kib: u32,
    /// Held by the one undeclared body growing past its first charge (see [`Self::cover`]).
    growing: Arc<tokio::sync::Mutex<()>>,
}

impl Default for InflightBudget {
    /// [`DEFAULT_PER_CPU`] × the available CPUs (at least two).
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get().max(2));
        Self::bytes(DEFAULT_PER_CPU.saturating_mul(cpus))
    }
}

impl InflightBudget {
    /// A budget of `bytes` (rounded up to KiB); `0` means no budget at all.
    pub fn bytes(bytes: usize) -> Self {
        let max = u32::try_from(Semaphore::MAX_PERMITS).unwrap_or(u32::MAX);
        let kib = u32::try_from(bytes.div_ceil(1024)).map_or(max, |k| k.min(max));
        Self {
            gate: (kib > 0).then(|| Arc::new(Semaphore::new(kib as usize))),
            kib,
            growing: Arc::default(),
        }
    }

    /// No budget: every request is admitted at once.
    pub fn unlimited() -> Self {
        Self::bytes(0)
    }

    /// Wait until a body of `declared` bytes fits; the permit is held until the reply is built.
    /// A body larger than the whole budget waits for all of it (it runs alone).
    async fn admit(&self, declared: Option<usize>) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let gate = self.gate.as_ref()?;
        let kib = declared.map_or(UNDECLARED_KIB, |n| {
            u32::try_from(n.div_ceil(1024)).unwrap_or(u32::MAX)
        });
        // The semaphore is never closed, so this only fails if it were; admit then.
        gate.clone()
            .acquire_many_owned(kib.clamp(1, self.kib))
            .await
            .ok()
    }

    /// Make `permit` cover `bytes` of an undeclared body read so far (capped at the whole
    /// budget, as a declared body is). Growing takes more of the budget, at least doubling the
    /// charge each time; only one body grows at a time (`growing`, held until its read ends),
    /// and a body gives its first charge back before it waits for that turn. So a body waiting
    /// for budget never holds any while another waits for its share: the grower waits only
    /// for bodies that finish without growing, and cannot deadlock with another grower. A
    /// body waiting its turn to grow holds what it read (at most its first charge) uncharged.
    async fn cover(
        &self,
        permit: Option<OwnedSemaphorePermit>,
        bytes: usize,
        growing: &mut Option<tokio::sync::OwnedMutexGuard<()>>,
    ) -> Option<OwnedSemaphorePermit> {
        let gate = self.gate.as_ref()?;
        let need = u32::try_from(bytes.div_ceil(1024)).map_or(self.kib, |k| k.min(self.kib));
        let mut permit = permit;
        let held = permit.as_ref().map_or(0, |p| p.num_permits());
        if need as usize <= held {
            return permit;
        }
        if growing.is_none() {
            drop(permit.take());
            *growing = Some(self.growing.clone().lock_owned().await);
        }
        let held = permit.as_ref().map_or(0, |p| p.num_permits());
        let target = (need as usize).max(held * 2).min(self.kib as usize);
        let more = u32::try_from(target.saturating_sub(held)).unwrap_or(self.kib);
        // The semaphore is never closed; were it, the body would read on uncharged.
        let Ok(more) = gate.clone().acquire_many_owned(more).await else {
            return permit;
        };
        match permit {
            Some(mut p) => {
                p.merge(more);
                Some(p)
            }
            None => Some(more),
        }
    }
}

/// Every data frame of an undeclared body, charged to `budget` as it arrives (starting from
/// `permit`, its admission): the body and the permit that now covers it.
async fn read_charged<B>(
    body: B,
    budget: &InflightBudget,
    permit: Option<OwnedSemaphorePermit>,
) -> Result<(bytes::Bytes, Option<OwnedSemaphorePermit>), B::Error>
where
    B: axum::body::HttpBody<Data = bytes::Bytes>,
{
    use http_body_util::BodyExt;
    let mut body = std::pin::pin!(body);
    let mut buf = bytes::BytesMut::new();
    let mut permit = permit;
    let mut growing = None;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            buf.extend_from_slice(&data);
            permit = budget.cover(permit, buf.len(), &mut growing).await;
        }
    }
    Ok((buf.freeze(), permit))
}

/// How long a request body may take to arrive once its headers are in: a client that stalls
/// mid-body would otherwise hold its share of the in-flight budget forever (hyper's own timeout
/// covers the headers only).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

#[derive(Clone)]
struct ServerState {
    app: Arc<HttpApp>,
    budget: InflightBudget,
    body_timeout: std::time::Duration,
}

/// What a body costs once decoded: its length, or for a compressed body (any
/// `Content-Encoding` but identity) the most it may inflate to ([`MAX_DECODE_RATIO`] times, and
/// never past the body limit), so the budget counts decoded bytes.
fn decoded_weight(
    headers: &http::HeaderMap,
    declared: Option<usize>,
    limit: usize,
) -> Option<usize> {
    let encoded = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !matches!(v.trim().to_ascii_lowercase().as_str(), "" | "identity"));
    match declared {
        Some(n) if encoded => Some(n.saturating_mul(MAX_DECODE_RATIO).min(limit)),
        None if encoded => Some(limit),
        other => other,
    }
}

async fn handle(State(local): State<ServerState>, req: Request) -> Response {
    let app = &local.app;
    let (parts, body) = req.into_parts();
    // The declared length (hyper's exact size hint comes from Content-Length; none when chunked).
    let declared = body
        .size_hint()
        .exact()
        .and_then(|n| usize::try_from(n).ok());
    // Refuse early when the declared length is already too large.
    if declared.is_some_and(|n| n > app.body_limit) {
        return too_large(app.body_limit).map(Body::from);
    }
    // Requests without a body (GET /healthCheck, empty POSTs) are never held back; a body is
    // weighed by its declared length, or as undeclared.
    let permit = match declared {
        Some(0) => None,
        declared => {
            let weight = decoded_weight(&parts.headers, declared, app.body_limit);
            local.budget.admit(weight).await
        }
    };
    let limited = Limited::new(body, app.body_limit);
    // A declared length is exact (hyper stops the body there); an undeclared one is charged as
    // it is read. Waiting for budget mid-body counts toward the read timeout.
    let read = async {
        match declared {
            Some(_) => super::body::read_whole(limited, declared)
                .await
                .map(|b| (b, permit)),
            None => read_charged(limited, &local.budget, permit).await,
        }
    };
    let (body, _permit) = match tokio::time::timeout(local.body_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => return too_large(app.body_limit).map(Body::from),
        Err(_) => {
            let secs = local.body_timeout.as_secs_f64();
            return error_response(
                http::StatusCode::REQUEST_TIMEOUT,
                "request_timeout",
                format!("The request body did not arrive within {secs} s."),
            )
            .map(Body::from);
        }
    };
    let req = HttpRequest::from_parts(parts, body, None, None);
    app.handle(req).await.map(|text| {
        // One piece (most answers): a plain full body, as before answers came in pieces.
        if text.pieces().len() <= 1 {
            Body::from(text.into_bytes())
        } else {
            Body::new(super::body::TextBody::from(text))
        }
    })
}

/// The axum router for `app`: every method and path goes to [`HttpApp::handle`], with request
/// bodies admitted against the default budget.
pub fn router(app: Arc<HttpApp>) -> axum::Router {
    router_with(app, InflightBudget::default())
}

/// [`router`] with an explicit in-flight budget.
pub fn router_with(app: Arc<HttpApp>, budget: InflightBudget) -> axum::Router {
    router_with_body_timeout(app, budget, BODY_READ_TIMEOUT)
}

/// [`router_with`] and a body-read timeout other than [`BODY_READ_TIMEOUT`].
pub fn router_with_body_timeout(
    app: Arc<HttpApp>,
    budget: InflightBudget,
    body_timeout: std::time::Duration,
) -> axum::Router {
    axum::Router::new()
        .fallback(handle)
        .with_state(ServerState {
            app,
            budget,
            body_timeout,
        })
}

/// How much of a connection's input hyper buffers before handing it on. hyper's default (~400
/// KB) is kept per keep-alive connection once a large page has grown it; 64 KiB reads a page in
/// a few more reads and keeps 64 idle connections under 5 MB.
const READ_BUFFER: usize = 64 * 1024;

/// How long shutdown waits for requests in flight before giving up on them.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(10);

/// Bind `addr` and serve until Ctrl-C / SIGTERM, with the default in-flight budget.
pub async fn serve(app: Arc<HttpApp>, addr: SocketAddr) -> std::io::Result<()> {
    serve_with_budget(app, addr, InflightBudget::default()).await
}

/// [`serve`] with an explicit in-flight budget.
pub async fn serve_with_budget(
    app: Arc<HttpApp>,
    addr: SocketAddr,
    budget: InflightBudget,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "serving POST /function, GET / and GET /healthCheck");
    // One line on stdout so scripts and tests can find the port when PORT=0.
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on http://{local}");
        let _ = out.flush();
    }
    serve_router(listener, router_with(app, budget), shutdown_signal()).await;
    Ok(())
}

/// Serve `router` on `listener` (HTTP/1.1, keep-alive) until `shutdown` completes, then stop
/// accepting and let the requests in flight finish (at most `DRAIN`, 10 s).
pub async fn serve_router(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()>,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::server::graceful::GracefulShutdown;
    use hyper_util::service::TowerToHyperService;

    let mut builder = hyper::server::conn::http1::Builder::new();
    // The timer turns on hyper's header read timeout (30 s), so a stalled client cannot hold a
    // connection open forever.
    builder.max_buf_size(READ_BUFFER).timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {DRAIN:?}: stopping anyway");
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests;
