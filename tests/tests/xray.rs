//! `enrichRecords` in the real `pre-map` binary under a Lambda Runtime API double, as Lambda
//! runs it with `Tracing=Active`: a sampled invocation (`Sampled=1` in
//! `Lambda-Runtime-Trace-Id`) sends one X-Ray subsegment per CRM request to the daemon address
//! (a UDP listener on 127.0.0.1), under the invocation's trace id and parent; an unsampled one
//! sends none. The same calls write the function's own `CustomerLookups` metric as EMF.

use axum::extract::Path;
use integration_tests::process::{self, bin};
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};
use std::net::UdpSocket;
use std::time::Duration;

const ROOT: &str = "1-6581b5f1-0123456789abcdef01234567";
const PARENT: &str = "a1b2c3d4e5f60718";

async fn start_crm() -> String {
    async fn customer(Path(id): Path<String>) -> axum::response::Response {
        use axum::response::IntoResponse;
        if id == "7" {
            (
                [("content-type", "application/json")],
                r#"{"id":7,"name":"Ada"}"#,
            )
                .into_response()
        } else {
            (axum::http::StatusCode::NOT_FOUND, "no").into_response()
        }
    }
    let app = axum::Router::new().route("/api/customers/{id}", axum::routing::get(customer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/api")
}

fn receive(socket: &UdpSocket, quiet: Duration) -> Vec<Value> {
    socket.set_read_timeout(Some(quiet)).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(n) = socket.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let (head, doc) = text.split_once('\n').expect("header line");
        assert_eq!(head, r#"{"format":"json","version":1}"#);
        out.push(serde_json::from_str(doc).expect("segment document"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_enrich_records_invocation_reaches_the_xray_daemon() {
    let daemon = UdpSocket::bind("127.0.0.1:0").unwrap();
    let daemon_addr = daemon.local_addr().unwrap().to_string();
    let base = start_crm().await;
    let dir = std::env::temp_dir().join(format!("xray-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = dir.join("secrets.json");
    std::fs::write(
        &secrets,
        json!({"crm-api-key": "xray-test-key-1"}).to_string(),
    )
    .unwrap();
    let log = dir.join("pre-map.log");
    let api = RuntimeApi::start().await.expect("runtime api");
    let _f = process::lambda_logged(
        &bin("pre-map"),
        &api.address(),
        &[
            ("AWS_XRAY_DAEMON_ADDRESS", &daemon_addr),
            ("EXTENSION_DEV_SECRETS_FILE", &secrets.to_string_lossy()),
            ("EXTENSION_METRICS", "on"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ],
        &log,
    );
    let cc = r#"{"diy":true,"function":"enrichRecords","type":"hook"}"#;
    let options = |ids: &[i64]| {
        let data: Vec<Value> = ids.iter().map(|i| json!({"customerId": i})).collect();
        json!({"data": data, "settings": {"baseUrl": base, "cacheSecs": 0}}).to_string()
    };

    let unsampled = format!("Root={ROOT};Parent={PARENT};Sampled=0");
    let answer = api
        .invoke_traced(
            options(&[7]),
            Some(cc),
            Duration::from_secs(20),
            Some(&unsampled),
        )
        .await
        .1;
    assert!(matches!(answer, Some(Outcome::Response(_))), "{answer:?}");
    assert!(receive(&daemon, Duration::from_millis(400)).is_empty());

    let sampled = format!("Root={ROOT};Parent={PARENT};Sampled=1");
    let answer = api
        .invoke_traced(
            options(&[7, 8]),
            Some(cc),
            Duration::from_secs(20),
            Some(&sampled),
        )
        .await
        .1;
    assert!(matches!(answer, Some(Outcome::Response(_))), "{answer:?}");
    let docs = receive(&daemon, Duration::from_millis(800));
    assert_eq!(docs.len(), 2, "{docs:#?}");
    let mut statuses: Vec<u64> = docs
        .iter()
        .map(|d| {
            assert_eq!(d["trace_id"], ROOT);
            assert_eq!(d["parent_id"], PARENT);
            assert_eq!(d["type"], "subsegment");
            assert_eq!(d["namespace"], "remote");
            assert_eq!(d["http"]["request"]["method"], "GET");
            assert!(d["start_time"].as_f64() <= d["end_time"].as_f64(), "{d}");
            d["http"]["response"]["status"].as_u64().expect("status")
        })
        .collect();
    statuses.sort();
    assert_eq!(statuses, [200, 404]);
    let not_found = docs
        .iter()
        .find(|d| d["http"]["response"]["status"] == 404)
        .expect("404");
    assert_eq!(not_found["error"], true);

    // The function's own metric, as EMF lines with the call's dimensions.
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let lookups: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("CustomerLookups").is_some())
        .collect();
    let outcomes: Vec<&str> = lookups
        .iter()
        .map(|v| {
            assert_eq!(
                v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["Service", "Function", "Outcome"]])
            );
            assert_eq!(v["Function"], "enrichRecords");
            v["Outcome"].as_str().unwrap_or("")
        })
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "miss").count(),
        2,
        "{lookups:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "not_found").count(),
        1,
        "{lookups:?}"
    );
    assert!(
        lookups
            .iter()
            .any(|v| v["TraceId"].as_str().is_some_and(|t| t.contains(ROOT))),
        "{lookups:?}"
    );
}
