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
mod tests {
    use super::*;
    use crate::dispatch::{Extension, Module};
    use crate::transport::system_token::TokenSet;
    use http_body_util::BodyExt;
    use std::pin::pin;
    use tower::ServiceExt;

    #[test]
    fn a_compressed_body_weighs_its_decoded_bound() {
        let mut h = http::HeaderMap::new();
        let limit = 50 * 1024 * 1024;
        assert_eq!(decoded_weight(&h, Some(10_240), limit), Some(10_240));
        h.insert(http::header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert_eq!(
            decoded_weight(&h, Some(10_240), limit),
            Some(10_240 * MAX_DECODE_RATIO)
        );
        assert_eq!(decoded_weight(&h, Some(limit), limit), Some(limit));
        assert_eq!(decoded_weight(&h, None, limit), Some(limit));
        h.insert(http::header::CONTENT_ENCODING, "identity".parse().unwrap());
        assert_eq!(decoded_weight(&h, None, limit), None);
    }

    /// Whether `fut` is still pending after the runtime has had a chance to run it.
    async fn pending<F: std::future::Future>(fut: std::pin::Pin<&mut F>) -> bool {
        tokio::select! {
            biased;
            _ = fut => false,
            () = async { for _ in 0..10 { tokio::task::yield_now().await } } => true,
        }
    }

    fn app() -> Arc<HttpApp> {
        let ext = Extension::builder()
            .diy(Module::new())
            .build()
            .expect("extension");
        HttpApp::new(ext, TokenSet::new(["t"]), 1024 * 1024)
    }

    #[tokio::test]
    async fn a_body_larger_than_the_budget_waits_for_all_of_it_then_runs_alone() {
        let budget = InflightBudget::bytes(8 * 1024);
        let small = budget.admit(Some(4 * 1024)).await.expect("a permit");
        let mut big = pin!(budget.admit(Some(1024 * 1024)));
        assert!(pending(big.as_mut()).await, "must wait for the small one");
        drop(small);
        let big = big.await.expect("the whole budget");
        assert_eq!(big.num_permits(), 8);
        let mut next = pin!(budget.admit(Some(1)));
        assert!(pending(next.as_mut()).await, "nothing else while it runs");
        drop(big);
        assert_eq!(next.await.expect("a permit").num_permits(), 1);
    }

    #[tokio::test]
    async fn undeclared_lengths_count_and_zero_means_no_budget() {
        let budget = InflightBudget::bytes(1024 * 1024);
        let p = budget.admit(None).await.expect("a permit");
        assert_eq!(p.num_permits(), UNDECLARED_KIB as usize);
        assert!(
            InflightBudget::bytes(0)
                .admit(Some(1 << 30))
                .await
                .is_none()
        );
        assert!(InflightBudget::unlimited().admit(None).await.is_none());
    }

    #[tokio::test]
    async fn bodiless_requests_pass_a_full_budget_and_bodies_wait_without_loss() {
        let budget = InflightBudget::bytes(4 * 1024);
        let router = router_with(app(), budget.clone());
        let hold = budget.admit(Some(4 * 1024)).await.expect("all of it");

        let health = http::Request::get("/healthCheck")
            .body(Body::empty())
            .expect("request");
        let res = router.clone().oneshot(health).await.expect("answer");
        assert_eq!(res.status(), 200, "a GET must not wait for the budget");

        let body = r#"{"diy":true,"function":"nope","options":{}}"#;
        let post = http::Request::post("/function")
            .header("content-type", "application/json")
            .header("authorization", "Bearer t")
            .header("content-length", body.len())
            .body(Body::from(body))
            .expect("request");
        let mut call = pin!(router.oneshot(post));
        assert!(
            pending(call.as_mut()).await,
            "a body waits while the budget is taken"
        );
        drop(hold);
        let res = call.await.expect("answer");
        // Admitted, then answered as usual (the function does not exist: a JSON 422).
        assert_eq!(res.status(), 422);
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON error");
        assert!(v.get("errors").is_some(), "{v}");
    }

    /// Permits of `budget` in use, polled until `done` says so (bounded: 5 s).
    async fn in_use_until(budget: &InflightBudget, done: impl Fn(usize) -> bool) -> usize {
        let gate = budget.gate.clone().expect("a budget");
        let total = budget.kib as usize;
        for _ in 0..500 {
            let used = total - gate.available_permits();
            if done(used) {
                return used;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        total - gate.available_permits()
    }

    /// A chunked body (no Content-Length) over a real connection is charged for what it
    /// reads, not the 64 KiB it was admitted at.
    #[tokio::test]
    async fn a_chunked_body_is_charged_as_it_is_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let budget = InflightBudget::bytes(1024 * 1024);
        let server = tokio::spawn(serve_router(
            listener,
            router_with(app(), budget.clone()),
            async {
                let _ = rx.await;
            },
        ));
        let pad = "x".repeat(300 * 1024);
        let body = format!(r#"{{"diy":true,"function":"nope","options":{{"pad":"{pad}"}}}}"#);
        let (most, last) = body.as_bytes().split_at(body.len() - 10);
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(
            b"POST /function HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
              authorization: Bearer t\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        )
        .await
        .expect("head");
        for chunk in most.chunks(16 * 1024) {
            s.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await
                .expect("chunk size");
            s.write_all(chunk).await.expect("chunk");
            s.write_all(b"\r\n").await.expect("chunk end");
        }
        // Everything but the last bytes is in: at least that much is charged.
        let used = in_use_until(&budget, |used| used >= 300).await;
        assert!(
            used >= 300,
            "a 300 KiB chunked body read so far holds {used} KiB of the budget"
        );
        let tail = format!("{:x}\r\n", last.len());
        s.write_all(tail.as_bytes()).await.expect("last chunk");
        s.write_all(last).await.expect("last chunk");
        s.write_all(b"\r\n0\r\n\r\n").await.expect("end");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        assert!(
            out.starts_with("HTTP/1.1 422"),
            "{}",
            &out[..out.len().min(200)]
        );
        assert_eq!(
            in_use_until(&budget, |used| used == 0).await,
            0,
            "all given back"
        );
        let _ = tx.send(());
        tokio::time::timeout(DRAIN, server)
            .await
            .expect("stopped")
            .expect("no panic");
    }

    /// Two undeclared bodies growing at once in a budget too small for both: one grows while
    /// the other waits its turn without holding any budget, so both finish (no deadlock).
    #[tokio::test]
    async fn undeclared_bodies_growing_at_once_take_turns() {
        let budget = InflightBudget::bytes(8 * 1024);
        let grow = |budget: InflightBudget| async move {
            let first = budget.admit(Some(4 * 1024)).await;
            let mut growing = None;
            let p = budget.cover(first, 8 * 1024, &mut growing).await;
            assert_eq!(p.as_ref().map(|p| p.num_permits()), Some(8));
            tokio::task::yield_now().await;
        };
        let both = futures_util::future::join(grow(budget.clone()), grow(budget.clone()));
        tokio::time::timeout(std::time::Duration::from_secs(5), both)
            .await
            .expect("both bodies were read");
        // No budget: nothing is charged.
        let mut growing = None;
        let free = InflightBudget::unlimited()
            .cover(None, 1 << 30, &mut growing)
            .await;
        assert!(free.is_none() && growing.is_none());
    }

    #[tokio::test]
    async fn the_server_stops_accepting_on_shutdown_and_drains() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        // The whole budget is taken: a GET over a real connection must still pass.
        let budget = InflightBudget::bytes(1024);
        let _hold = budget.admit(Some(1024)).await;
        let server = tokio::spawn(serve_router(listener, router_with(app(), budget), async {
            let _ = rx.await;
        }));
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /healthCheck HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        assert!(out.starts_with("HTTP/1.1 200"), "{out}");
        assert!(out.ends_with(r#"{"success":true}"#), "{out}");
        let _ = tx.send(());
        tokio::time::timeout(DRAIN, server)
            .await
            .expect("stopped")
            .expect("no panic");
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
