//! The local server (`serve` binary, every extension point in one process) over real HTTP:
//! isolation of panics and overruns, JSON errors for bad requests, token rotation.

use integration_tests::http_client::{RawResponse, send};
use integration_tests::process;
use serde_json::{Value, json};

const TOKENS: &str = "old-token-0123456789,new-token-0123456789";

fn start() -> (process::Proc, String) {
    process::server(
        &process::bin("serve"),
        &[],
        &[
            ("PORT", "0"),
            ("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", TOKENS),
            ("EXTENSION_TIMEOUT_SECS", "1.5"),
        ],
    )
}

fn call(addr: &str, token: &str, envelope: &Value) -> RawResponse {
    integration_tests::http_client::post_function(addr, token, envelope)
}

fn healthy(addr: &str) {
    let r = call(
        addr,
        "new-token-0123456789",
        &json!({"diy": true, "function": "checkConnection", "type": "wrapper",
        "options": {"connection": {"encrypted": {"apiKey": "k"}, "unencrypted": {"baseUrl": "https://api.example.com"}}}}),
    );
    assert_eq!(
        (r.status, r.text()),
        (200, r#"{"statusCode":200}"#.to_owned()),
        "server still serves"
    );
}

#[test]
fn a_panicking_function_becomes_a_json_422_and_the_server_keeps_serving() {
    let (_p, addr) = start();
    for _ in 0..3 {
        let r = call(
            &addr,
            "old-token-0123456789",
            &json!({"diy": true, "function": "panicDemo", "options": {}}),
        );
        assert_eq!(r.status, 422, "{}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(
            r.text(),
            r#"{"errors":[{"message":"Function panicDemo panicked: panicDemo was asked to panic","code":"Error"}]}"#
        );
        healthy(&addr);
    }
}

#[test]
fn an_overrunning_function_gets_a_timeout_422_before_the_deadline() {
    let (_p, addr) = start();
    let started = std::time::Instant::now();
    let r = call(
        &addr,
        "new-token-0123456789",
        &json!({"diy": true, "function": "sleepDemo", "options": {"ms": 20000}}),
    );
    let took = started.elapsed();
    assert_eq!(r.status, 422, "{}", r.text());
    let e = &r.json()["errors"][0];
    assert_eq!(e["code"], "timeout");
    assert!(
        e["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Function sleepDemo did not finish"),
        "{e}"
    );
    // Answered inside the 1.5 s budget, not after the 20 s sleep.
    assert!(took.as_secs() < 10, "took {took:?}");
    healthy(&addr);
    // A function that finishes in time is unaffected.
    let ok = call(
        &addr,
        "new-token-0123456789",
        &json!({"diy": true, "function": "sleepDemo", "options": {"ms": 10}}),
    );
    assert_eq!(
        (ok.status, ok.text()),
        (200, r#"{"sleptMs":10}"#.to_owned())
    );
}

#[test]
fn both_tokens_of_a_rotation_are_accepted_and_others_refused() {
    let (_p, addr) = start();
    let env = json!({"diy": true, "function": "sleepDemo", "options": {"ms": 0}});
    assert_eq!(call(&addr, "old-token-0123456789", &env).status, 200);
    assert_eq!(call(&addr, "new-token-0123456789", &env).status, 200);
    let r = call(&addr, "old-token-012345678", &env);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("invalid system token"));
}

#[test]
fn bad_requests_get_json_errors_with_the_right_status() {
    let (_p, addr) = start();
    let auth = ("authorization", "Bearer new-token-0123456789");
    let json_ct = ("content-type", "application/json");
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>, Vec<u8>, u16);
    let cases: Vec<Case> = vec![
        (
            "POST",
            "/function",
            vec![json_ct, auth],
            b"{not json".to_vec(),
            400,
        ),
        (
            "POST",
            "/function",
            vec![json_ct],
            b"\"a string\"".to_vec(),
            400,
        ),
        (
            "POST",
            "/function",
            vec![("content-type", "application/json; charset=latin1"), auth],
            b"{}".to_vec(),
            415,
        ),
        (
            "POST",
            "/function",
            vec![json_ct, ("content-encoding", "br"), auth],
            b"{}".to_vec(),
            415,
        ),
        ("PUT", "/function", vec![json_ct, auth], b"{}".to_vec(), 404),
        ("GET", "/nope", vec![], Vec::new(), 404),
        ("DELETE", "/", vec![], Vec::new(), 404),
    ];
    for (method, path, headers, body, status) in cases {
        let r = send(&addr, method, path, &headers, &body).expect("http");
        assert_eq!(r.status, status, "{method} {path}: {}", r.text());
        assert_eq!(
            r.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert!(r.json()["errors"][0]["message"].is_string(), "{}", r.text());
    }
    for path in ["/", "/healthCheck"] {
        let r = send(&addr, "GET", path, &[], &[]).expect("http");
        assert_eq!(
            (r.status, r.text()),
            (200, r#"{"success":true}"#.to_owned())
        );
    }
}

#[test]
fn a_body_over_50_mb_gets_413_json() {
    let (_p, addr) = start();
    // Declared length over the limit: refused before the body is read.
    let big = vec![b' '; 50 * 1024 * 1024 + 1];
    let r = send(
        &addr,
        "POST",
        "/function",
        &[("content-type", "application/json")],
        &big,
    )
    .expect("http");
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(r.json()["errors"][0]["code"], "request_too_large");
}

#[test]
fn gzip_bodies_are_accepted() {
    use std::io::Write;
    let (_p, addr) = start();
    let env =
        serde_json::to_vec(&json!({"diy": true, "function": "sleepDemo", "options": {"ms": 1}}))
            .expect("json");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&env).expect("gzip");
    let body = gz.finish().expect("gzip");
    let r = send(
        &addr,
        "POST",
        "/function",
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("authorization", "Bearer new-token-0123456789"),
        ],
        &body,
    )
    .expect("http");
    assert_eq!((r.status, r.text()), (200, r#"{"sleptMs":1}"#.to_owned()));
}
