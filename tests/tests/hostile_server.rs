//! Hostile input on the local server (the shared router over real HTTP on 127.0.0.1): a wrong
//! header token is refused before the body is touched, a compression bomb is refused by its
//! ratio, and a stalled body times out with a JSON 408 instead of holding the server's budget.

use flate2::Compression;
use flate2::write::GzEncoder;
use integration_tests::http_client::send;
use integrator_lambda::Module;
use integrator_lambda::dispatch::Extension;
use integrator_lambda::transport::http::HttpApp;
use integrator_lambda::transport::server::{self, InflightBudget};
use integrator_lambda::transport::system_token::TokenSet;
use serde_json::Value;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const TOKEN: &str = "right-token";

struct Local {
    _rt: tokio::runtime::Runtime,
    addr: String,
}

fn local(body_timeout: Duration) -> Local {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut m = Module::new();
    m.raw("echo", |_inv, v: Value| async move { Ok(v) });
    let ext = Extension::builder().diy(m).build().expect("extension");
    let app = HttpApp::new(ext, TokenSet::new([TOKEN]), 50 * 1024 * 1024);
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(async move {
        let router = server::router_with_body_timeout(app, InflightBudget::default(), body_timeout);
        server::serve_router(listener, router, std::future::pending()).await;
    });
    Local { _rt: rt, addr }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

#[test]
fn a_wrong_header_token_is_refused_before_the_body_is_read() {
    let s = local(server::BODY_READ_TIMEOUT);
    let bearer = "Bearer wrong-token";
    // Malformed JSON, and a compressed body: neither is looked at without the right token.
    for (headers, body) in [
        (
            vec![
                ("content-type", "application/json"),
                ("authorization", bearer),
            ],
            b"{not json".to_vec(),
        ),
        (
            vec![
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
                ("authorization", bearer),
            ],
            b"not gzip at all".to_vec(),
        ),
    ] {
        let r = send(&s.addr, "POST", "/function", &headers, &body).expect("http");
        assert_eq!(r.status, 401, "{}", r.text());
        assert_eq!(r.json()["errors"][0]["code"], "unauthorized");
    }
    // Without a header the reference order stays: 400 before the (body) token is checked.
    let r = send(
        &s.addr,
        "POST",
        "/function",
        &[("content-type", "application/json")],
        b"{not json",
    )
    .expect("http");
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn a_compression_bomb_is_refused_by_its_ratio() {
    let s = local(server::BODY_READ_TIMEOUT);
    // 20 MB of valid JSON (under the 50 MB body limit) in ~20 KB of gzip: ratio ~1,000.
    let mut json = br#"{"diy":true,"function":"echo","options":{"pad":""#.to_vec();
    json.extend(std::iter::repeat_n(b' ', 20 * 1024 * 1024));
    json.extend_from_slice(br#""}}"#);
    let bomb = gzip(&json);
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "gzip"),
        ("authorization", auth.as_str()),
    ];
    let r = send(&s.addr, "POST", "/function", &headers, &bomb).expect("http");
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "request_too_large");
    // An ordinary compressed call still works.
    let ok = gzip(br#"{"diy":true,"function":"echo","options":{"a":1}}"#);
    let r = send(&s.addr, "POST", "/function", &headers, &ok).expect("http");
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn a_stalled_body_gets_a_json_408_in_time() {
    let s = local(Duration::from_millis(300));
    let mut c = std::net::TcpStream::connect(&s.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "POST /function HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {TOKEN}\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n{{\"diy\""
    );
    c.write_all(head.as_bytes()).expect("write");
    let started = Instant::now();
    let mut raw = Vec::new();
    let _ = c.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains(r#""code":"request_timeout""#), "{text}");
}
