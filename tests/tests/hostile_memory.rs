//! Memory bounded by input size: the worst inputs we can construct for the incoming endpoint,
//! sent to the real binaries, answered with the JSON error, with the process's peak RSS
//! (`VmHWM`) measured and bounded. The figures are in docs/RELIABILITY.md ("Hostile input").

use integration_tests::http_client::send;
use integration_tests::process;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};
use std::time::Duration;

/// Peak resident set of a process, in MiB (Linux `/proc/<pid>/status`).
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024
}

/// `{"<1,000-char key>": [0, 0, …]}` of about `bytes` bytes: flattening it unbounded builds one
/// 1 KB key per 2 input bytes (~3 GB for 6 MB).
fn amplifying_body(bytes: usize) -> String {
    let key = "k".repeat(1000);
    let n = (bytes - 1010) / 2;
    let mut s = String::with_capacity(bytes + 16);
    s.push_str(&format!("{{\"{key}\":["));
    for i in 0..n {
        if i > 0 {
            s.push(',');
        }
        s.push('0');
    }
    s.push_str("]}");
    s
}

/// Generous bound for one request on a 256 MB Lambda: parsing a JSON body into values costs a
/// fixed factor of its size (16× for `[0,0,…]`: a 32-byte value per 2 input bytes); flattening is
/// stopped at the queue's 256 KiB limit.
const BOUND_MIB: u64 = 200;

#[test]
fn local_server_answers_an_amplifying_webhook_with_413_in_bounded_memory() {
    let endpoints = json!({"open": {"auth": {"type": "none"}}}).to_string();
    let (p, addr) = process::server(
        &process::bin("serve"),
        &[],
        &[
            ("PORT", "0"),
            ("EXTENSION_BACKEND", "memory"),
            ("EXTENSION_INCOMING_ENDPOINTS", &endpoints),
        ],
    );
    let before = peak_rss_mib(p.id());
    let body = amplifying_body(6 * 1024 * 1024);
    let r = send(
        &addr,
        "POST",
        "/incoming/open",
        &[("content-type", "application/json")],
        body.as_bytes(),
    )
    .expect("an answer (the process is alive)");
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "request_too_large");
    let peak = peak_rss_mib(p.id());
    eprintln!("serve: peak RSS {before} MiB at start, {peak} MiB after a 6 MiB amplifying body");
    assert!(peak < BOUND_MIB, "peak RSS {peak} MiB");
    // Still serving.
    let ok = send(
        &addr,
        "POST",
        "/incoming/open",
        &[("content-type", "application/json")],
        br#"{"a":{"b":1}}"#,
    )
    .expect("http");
    assert_eq!(ok.status, 200, "{}", ok.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_lambda_answers_an_amplifying_webhook_with_413_in_bounded_memory() {
    let api = RuntimeApi::start().await.expect("runtime api");
    let endpoints = json!({"open": {"auth": {"type": "none"}}}).to_string();
    let f = process::lambda(
        &process::bin("incoming"),
        &api.address(),
        &[
            ("EXTENSION_INCOMING_ENDPOINTS", &endpoints),
            ("EXTENSION_QUEUE_URL", "http://127.0.0.1:9/unused"),
        ],
    );
    assert!(api.wait_first_poll(Duration::from_secs(30)).await);
    // The body travels inside the Function URL event (6 MB is Lambda's request limit).
    let body = amplifying_body(6 * 1024 * 1024 - 2048);
    let event = json!({
        "version": "2.0", "routeKey": "$default", "rawPath": "/incoming/open",
        "rawQueryString": "", "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": "/incoming/open",
            "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "t"},
            "requestId": "r", "routeKey": "$default", "stage": "$default",
            "timeEpoch": 1714651200000u64},
        "body": body, "isBase64Encoded": false
    })
    .to_string();
    let out = api.invoke(event, None, Duration::from_secs(30)).await;
    let Some(Outcome::Response(resp)) = out else {
        panic!("expected a response, got {out:?}")
    };
    let resp: Value = serde_json::from_slice(&resp).expect("json");
    assert_eq!(resp["statusCode"], 413, "{resp}");
    let peak = peak_rss_mib(f.id());
    eprintln!("incoming (Lambda): peak RSS {peak} MiB after a 6 MB amplifying event");
    assert!(peak < BOUND_MIB, "peak RSS {peak} MiB");
}
