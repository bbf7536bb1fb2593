//! `enrichRecords` end to end: the real `serve` binary (embedded backend, the key in a dev
//! secrets file) calls a CRM double this test serves on 127.0.0.1; integrator.io's call goes in
//! over real HTTP as on the server stack.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use integration_tests::{http_client, process};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const KEY: &str = "crm-key-for-tests-7Qx2";
const TOKEN: &str = "enrich-test-token";

#[derive(Default)]
struct Crm {
    /// Requests per customer id.
    hits: Mutex<HashMap<String, usize>>,
    /// Authorization and trace headers seen.
    auth: Mutex<Vec<String>>,
    traces: Mutex<Vec<String>>,
}

async fn customer(
    State(crm): State<Arc<Crm>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> axum::response::Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    crm.auth.lock().unwrap().push(header("authorization"));
    crm.traces.lock().unwrap().push(header("x-amzn-trace-id"));
    let n = {
        let mut hits = crm.hits.lock().unwrap();
        let n = hits.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    let json_body = |status: StatusCode, v: Value| {
        (
            status,
            [("content-type", "application/json")],
            v.to_string(),
        )
            .into_response()
    };
    match (id.as_str(), n) {
        ("7", _) => json_body(StatusCode::OK, json!({"id": 7, "name": "Ada Lovelace"})),
        // Busy twice (429 with Retry-After, then 503), then fine.
        ("flaky", 1) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response(),
        ("flaky", 2) => json_body(StatusCode::SERVICE_UNAVAILABLE, json!({"busy": true})),
        ("flaky", _) => json_body(
            StatusCode::OK,
            json!({"id": "flaky", "name": "Grace Hopper"}),
        ),
        ("down", _) => json_body(StatusCode::INTERNAL_SERVER_ERROR, json!({"error": "boom"})),
        _ => json_body(
            StatusCode::NOT_FOUND,
            json!({"message": "no such customer"}),
        ),
    }
}

/// The CRM double on 127.0.0.1 (served until the test's runtime ends) and its base URL.
async fn start_crm() -> (Arc<Crm>, String) {
    let crm = Arc::new(Crm::default());
    let app = axum::Router::new()
        .route("/api/customers/{id}", axum::routing::get(customer))
        .with_state(crm.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (crm, format!("http://{addr}/api"))
}

fn call(addr: &str, options: Value, trace: &str) -> http_client::RawResponse {
    let body =
        json!({"diy": true, "type": "hook", "function": "enrichRecords", "options": options});
    http_client::send(
        addr,
        "POST",
        "/function",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {TOKEN}")),
            ("traceid", trace),
        ],
        body.to_string().as_bytes(),
    )
    .expect("call serve")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrich_records_against_a_local_crm() {
    let (crm, base) = start_crm().await;
    let dir = std::env::temp_dir().join(format!("enrich-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let secrets = dir.join("secrets.json");
    std::fs::write(&secrets, json!({"crm-api-key": KEY}).to_string()).unwrap();
    let secrets_path = secrets.to_string_lossy().into_owned();
    let (_serve, addr) = process::server(
        &process::bin("serve"),
        &[],
        &[
            ("PORT", "0"),
            ("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", TOKEN),
            ("EXTENSION_BACKEND", "memory"),
            ("EXTENSION_DEV_SECRETS_FILE", &secrets_path),
        ],
    );
    let page = json!({
        "data": [
            {"orderId": "SO-1", "customerId": 7},
            {"orderId": "SO-2", "customerId": "flaky"},
            {"orderId": "SO-3", "customerId": 99},
            {"orderId": "SO-4"},
            {"orderId": "SO-5", "customerId": "down"}
        ],
        "_importId": "i1",
        "settings": {"baseUrl": base}
    });
    let expected = |down_message: &str| {
        json!([
            {"data": {"orderId": "SO-1", "customerId": 7, "customer": {"id": 7, "name": "Ada Lovelace"}}},
            {"data": {"orderId": "SO-2", "customerId": "flaky", "customer": {"id": "flaky", "name": "Grace Hopper"}}},
            {"errors": [{"code": "not_found", "message": "customer 99 not found"}]},
            {"errors": [{"code": "missing_field", "message": "missing required field customerId"}]},
            {"errors": [{"code": "crm_error", "message": down_message}]}
        ])
    };
    let down = format!(
        "GET {base}/customers/down answered 500: {}",
        json!({"error": "boom"})
    );

    let (a, p, t) = (
        addr.clone(),
        page.clone(),
        "Root=1-5759e988-bd862e3fe1be46a994272793",
    );
    let first = tokio::task::spawn_blocking(move || call(&a, p, t))
        .await
        .unwrap();
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.json(), expected(&down));
    let hits = crm.hits.lock().unwrap().clone();
    // 429 and 503 retried until the answer; a 500 retried up to the 4 attempts; 404 not.
    assert_eq!(hits["7"], 1);
    assert_eq!(hits["flaky"], 3);
    assert_eq!(hits["99"], 1);
    assert_eq!(hits["down"], 4);
    assert!(
        crm.auth
            .lock()
            .unwrap()
            .iter()
            .all(|a| a == &format!("Bearer {KEY}")),
        "{:?}",
        crm.auth.lock().unwrap()
    );
    assert!(crm.traces.lock().unwrap().iter().all(|h| h == t));

    // Within cacheSecs: the found customers come from the cache, no request for them.
    let (a, p) = (addr.clone(), page.clone());
    let second = tokio::task::spawn_blocking(move || call(&a, p, ""))
        .await
        .unwrap();
    assert_eq!(second.json(), expected(&down));
    let hits = crm.hits.lock().unwrap().clone();
    assert_eq!((hits["7"], hits["flaky"]), (1, 3), "served from the cache");
    assert_eq!(
        (hits["99"], hits["down"]),
        (2, 8),
        "failures are not cached"
    );

    // No baseUrl: the whole call fails before any request.
    let a = addr.clone();
    let bad = tokio::task::spawn_blocking(move || {
        call(&a, json!({"data": [{"customerId": 7}], "settings": {}}), "")
    })
    .await
    .unwrap();
    assert_eq!(bad.status, 422);
    assert_eq!(
        bad.json(),
        json!({"errors": [{"message": "settings.baseUrl is required: the CRM's base URL, e.g. https://crm.example.com/api", "code": "invalid_settings"}]})
    );
    assert_eq!(crm.hits.lock().unwrap()["7"], 1);

    // `make fixture`: one recorded run against the CRM, the key redacted everywhere.
    let options = dir.join("options.json");
    std::fs::write(
        &options,
        json!({"data": [{"customerId": 7}, {"customerId": 99}], "settings": {"baseUrl": base}})
            .to_string(),
    )
    .unwrap();
    let out = dir.join("recorded.json");
    let mut cmd = std::process::Command::new(process::bin("record-fixture"));
    cmd.args(["enrichRecords", "recorded"])
        .arg(&options)
        .arg("--out")
        .arg(&out)
        .env("EXTENSION_BACKEND", "memory")
        .env("EXTENSION_DEV_SECRETS_FILE", &secrets_path)
        .stdin(std::process::Stdio::null());
    let done = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(!text.contains(KEY), "{text}");
    let fixture: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(fixture["secrets"], json!(["crm-api-key"]));
    assert_eq!(fixture["http"].as_array().map(Vec::len), Some(2), "{text}");
    // The two look-ups run concurrently: recorded in the order they were answered.
    let exchange = |id: &str| {
        let url = format!("{base}/customers/{id}");
        fixture["http"]
            .as_array()
            .and_then(|all| all.iter().find(|x| x["request"]["url"] == url.as_str()))
            .cloned()
            .unwrap_or_else(|| panic!("no exchange for {url}: {text}"))
    };
    assert_eq!(
        exchange("7")["request"],
        json!({"method": "GET", "url": format!("{base}/customers/7"),
               "headers": {"authorization": "Bearer <redacted:crm-api-key>"}, "body": null})
    );
    assert_eq!(exchange("99")["response"]["status"], 404);
    assert_eq!(
        fixture["expected"],
        json!([
            {"data": {"customerId": 7, "customer": {"id": 7, "name": "Ada Lovelace"}}},
            {"errors": [{"code": "not_found", "message": "customer 99 not found"}]}
        ])
    );
    let _ = std::fs::remove_dir_all(&dir);
}
