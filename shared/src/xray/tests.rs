//! X-Ray: documents checked as a UDP listener on 127.0.0.1 (the daemon's place) receives them,
//! from a sampled call through the dispatcher: `inv.http()` requests (200, 429, 500, no
//! answer) and a DynamoDB operation throttled once then answered (a DynamoDB double on
//! 127.0.0.1); an unsampled call sends nothing; an absent daemon costs the call nothing.

use super::*;
use crate::dispatch::{CallRequest, Extension, Invocation, Module, Stack};
use crate::outgoing::replay::{Exchange, ReplayTransport};
use crate::outgoing::{HttpClient, HttpConfig};
use crate::protocol::envelope::Envelope;
use crate::{ExtResult, Services};
use serde_json::Value;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ROOT: &str = "1-5759e988-bd862e3fe1be46a994272793";
const PARENT: &str = "53995c3f42cd8ad8";

fn header(sampled: bool) -> String {
    format!("Root={ROOT};Parent={PARENT};Sampled={}", u8::from(sampled))
}

#[test]
fn headers_are_read_without_allocating_and_unsampled_calls_are_not_traced() {
    let sampled = header(true);
    let h = TraceHeader::parse(&sampled);
    assert_eq!(
        h,
        TraceHeader {
            root: Some(ROOT),
            parent: Some(PARENT),
            sampled: true
        }
    );
    assert!(!TraceHeader::parse(&header(false)).sampled);
    assert!(!TraceHeader::parse("Root=1-a;Sampled=?").sampled);
    let sink: Arc<dyn SegmentSink> = Arc::new(MemorySink::default());
    assert!(CallTrace::new(TraceHeader::parse(&header(false)), sink.clone()).is_none());
    // No parent to hang subsegments on: not traced.
    assert!(CallTrace::new(TraceHeader::parse("Root=1-a;Sampled=1"), sink.clone()).is_none());
    assert!(CallTrace::new(TraceHeader::parse(&header(true)), sink).is_some());
    assert_eq!(
        daemon_address("tcp:127.0.0.1:2000 udp:127.0.0.1:2001"),
        Some(([127, 0, 0, 1], 2001).into())
    );
    assert_eq!(
        daemon_address("127.0.0.1:2000"),
        Some(([127, 0, 0, 1], 2000).into())
    );
}

fn exchange(path: &str, status: u16) -> Exchange {
    serde_json::from_value(json!({
        "request": {"method": "GET", "url": format!("http://crm.test{path}")},
        "response": {"status": status, "body": null},
    }))
    .expect("exchange")
}

/// A DynamoDB double on 127.0.0.1: the first request is throttled, the next answered.
async fn dynamodb_double() -> String {
    use axum::response::IntoResponse;
    let seen = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move || {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    (
                        http::StatusCode::BAD_REQUEST,
                        [("x-amzn-requestid", "req-throttled")],
                        r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"slow down"}"#,
                    )
                        .into_response()
                } else {
                    (
                        http::StatusCode::OK,
                        [("x-amzn-requestid", "req-ok")],
                        "{}",
                    )
                        .into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    use aws_sdk_dynamodb::config::{Credentials, Region, retry::RetryConfig};
    let conf = aws_sdk_dynamodb::Config::builder()
        .behavior_version_latest()
        .region(Region::new("eu-west-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .endpoint_url(endpoint)
        .http_client(crate::aws::http_client())
        .retry_config(RetryConfig::standard().with_initial_backoff(Duration::from_millis(1)))
        .interceptor(crate::aws::xray::XrayInterceptor)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

async fn traced_function(inv: Invocation, v: Value) -> ExtResult<Value> {
    let http = inv.http();
    for path in ["/ok", "/busy", "/down", "/nowhere"] {
        let _ = http
            .get(&format!("http://crm.test{path}?token=abc"))
            .attempts(1)
            .send()
            .await;
    }
    let endpoint = v["dynamodb"].as_str().unwrap_or_default();
    dynamodb_client(endpoint)
        .get_item()
        .table_name("t")
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("k".into()))
        .send()
        .await
        .map_err(crate::ExtError::from_error)?;
    Ok(json!("done"))
}

fn extension() -> Extension {
    let replay = ReplayTransport::new(vec![
        exchange("/ok?token=abc", 200),
        exchange("/busy?token=abc", 429),
        exchange("/down?token=abc", 500),
    ]);
    let mut m = Module::new();
    m.raw("traced", traced_function);
    Extension::builder()
        .diy(m)
        .services(
            Services::new().with_http(HttpClient::new(Arc::new(replay), HttpConfig::default())),
        )
        .build()
        .expect("extension")
}

async fn call(ext: &Extension, trace: &str, dynamodb: &str) -> Value {
    let reply = ext
        .call(CallRequest {
            envelope: Envelope::from_body(json!({
                "diy": true, "function": "traced", "options": {"dynamodb": dynamodb}
            })),
            stack: Stack::LambdaInvoke,
            request_id: "r".into(),
            trace_id: Some(trace.into()),
            deadline: Some(Instant::now() + Duration::from_secs(20)),
        })
        .await
        .expect("answer");
    serde_json::from_slice(&reply.text().expect("text").to_bytes()).expect("json")
}

/// Datagrams until none came for `quiet`.
fn receive(socket: &UdpSocket, quiet: Duration) -> Vec<String> {
    socket.set_read_timeout(Some(quiet)).expect("timeout");
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = socket.recv(&mut buf) {
        out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    out
}

fn is_id(v: &Value) -> bool {
    v.as_str()
        .is_some_and(|s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_call_sends_its_subsegments_to_the_daemon() {
    let daemon = UdpSocket::bind("127.0.0.1:0").expect("udp");
    configure(Arc::new(UdpSink::new(daemon.local_addr().expect("addr"))));
    let dynamodb = dynamodb_double().await;
    let ext = extension();

    // Unsampled: nothing reaches the daemon.
    let ext_unsampled = extension();
    assert_eq!(
        call(&ext_unsampled, &header(false), &dynamodb).await,
        "done"
    );
    assert!(receive(&daemon, Duration::from_millis(300)).is_empty());

    // A fresh double: its first answer is a throttle.
    let dynamodb = dynamodb_double().await;
    assert_eq!(call(&ext, &header(true), &dynamodb).await, "done");
    let datagrams = receive(&daemon, Duration::from_millis(500));
    let docs: Vec<Value> = datagrams
        .iter()
        .map(|d| {
            let (head, doc) = d.split_once('\n').expect("header line");
            assert_eq!(
                serde_json::from_str::<Value>(head).expect("header"),
                json!({"format": "json", "version": 1})
            );
            serde_json::from_str(doc).expect("document")
        })
        .collect();
    assert_eq!(docs.len(), 5, "{docs:#?}");
    for d in &docs {
        assert!(is_id(&d["id"]), "{d}");
        assert_eq!(d["trace_id"], ROOT);
        assert_eq!(d["parent_id"], PARENT);
        assert_eq!(d["type"], "subsegment");
        let (start, end) = (
            d["start_time"].as_f64().expect("start"),
            d["end_time"].as_f64().expect("end"),
        );
        assert!(start > 1.6e9 && start <= end, "{d}");
    }
    let by_url = |path: &str| {
        docs.iter()
            .find(|d| {
                d["http"]["request"]["url"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(&format!("http://crm.test{path}")))
            })
            .unwrap_or_else(|| panic!("no subsegment for {path}: {docs:#?}"))
    };
    let ok = by_url("/ok");
    assert_eq!(ok["name"], "crm.test");
    assert_eq!(ok["namespace"], "remote");
    assert_eq!(ok["http"]["request"]["method"], "GET");
    assert_eq!(ok["http"]["response"]["status"], 200);
    assert!(
        ok.get("error").is_none() && ok.get("fault").is_none(),
        "{ok}"
    );
    // Query values never reach a trace.
    assert!(!ok.to_string().contains("abc"), "{ok}");
    let busy = by_url("/busy");
    assert_eq!(busy["http"]["response"]["status"], 429);
    assert_eq!(
        (&busy["error"], &busy["throttle"]),
        (&json!(true), &json!(true))
    );
    let down = by_url("/down");
    assert_eq!(down["fault"], true);
    assert!(down.get("throttle").is_none(), "{down}");
    let nowhere = by_url("/nowhere");
    assert_eq!(nowhere["fault"], true);
    assert!(nowhere["http"].get("response").is_none(), "{nowhere}");
    let aws = docs
        .iter()
        .find(|d| d["namespace"] == "aws")
        .expect("aws subsegment");
    assert_eq!(aws["name"], "DynamoDB");
    assert_eq!(aws["aws"]["operation"], "GetItem");
    assert_eq!(aws["aws"]["retries"], 1);
    assert_eq!(aws["aws"]["throttled_attempts"], 1);
    assert_eq!(aws["aws"]["request_id"], "req-ok");
    assert_eq!(aws["http"]["response"]["status"], 200);
    assert!(aws.get("throttle").is_none(), "{aws}");
}

#[tokio::test]
async fn without_a_daemon_segments_are_dropped_and_the_call_goes_on() {
    // Nothing listens on this port (bound, then closed).
    let gone = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("port");
    let sink: Arc<dyn SegmentSink> = Arc::new(UdpSink::new(gone));
    let trace = CallTrace::new(TraceHeader::parse(&header(true)), sink).expect("sampled");
    let started = Instant::now();
    scope(Some(trace.clone()), async {
        for _ in 0..1000 {
            let s = Subsegment::start().expect("traced");
            http_end(s, "GET", "h", "http://h/", Some(200), None);
        }
    })
    .await;
    trace.finish();
    trace.finish();
    assert!(started.elapsed() < Duration::from_secs(2));
}
