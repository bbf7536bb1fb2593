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
