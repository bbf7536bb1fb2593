//! CloudWatch Embedded Metric Format from the real binaries under a Lambda Runtime API: each EMF
//! line is parsed and checked against the format (every named dimension and metric present at
//! the top level), then its figures: per call, cold start, dedup, worker batches.

use integration_tests::process::{self, bin};
use integration_tests::repo_root;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The EMF lines of `log`, each checked against the format.
fn emf_lines(log: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    for v in &lines {
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "TestNamespace", "{v}");
        assert!(v["_aws"]["Timestamp"].as_u64().is_some(), "{v}");
        for set in cw["Dimensions"].as_array().expect("Dimensions") {
            for d in set.as_array().expect("dimension set") {
                let name = d.as_str().expect("dimension name");
                assert!(v[name].is_string(), "dimension {name} has no value: {v}");
            }
        }
        for m in cw["Metrics"].as_array().expect("Metrics") {
            let name = m["Name"].as_str().expect("metric name");
            assert!(v[name].is_number(), "metric {name} has no value: {v}");
            assert!(m["Unit"].is_string(), "{v}");
        }
    }
    lines
}

fn log_path(name: &str) -> PathBuf {
    let dir = repo_root().join("target/metrics");
    std::fs::create_dir_all(&dir).expect("target/metrics");
    dir.join(name)
}

/// Wait (bounded) until `log` has `n` EMF lines.
fn wait_lines(log: &Path, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let lines = emf_lines(log);
        if lines.len() >= n {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    emf_lines(log)
}

const ENV: &[(&str, &str)] = &[
    ("EXTENSION_METRICS_NAMESPACE", "TestNamespace"),
    ("AWS_LAMBDA_FUNCTION_NAME", "pre-map-fn"),
];

#[tokio::test]
async fn each_call_writes_its_figures_and_the_first_one_a_cold_start() {
    let log = log_path("pre-map.log");
    let api = RuntimeApi::start().await.expect("runtime api");
    let _f = process::lambda_logged(&bin("pre-map"), &api.address(), ENV, &log);
    let events = repo_root().join("events/pre-map");
    let options = std::fs::read(events.join("options.json")).expect("options");
    let cc = std::fs::read_to_string(events.join("client-context.json")).expect("cc");
    let mut answers = Vec::new();
    for _ in 0..2 {
        match api
            .invoke(options.clone(), Some(&cc), Duration::from_secs(30))
            .await
        {
            Some(Outcome::Response(b)) => answers.push(b),
            other => panic!("{other:?}"),
        }
    }
    let bad = api
        .invoke(
            "{}",
            Some(r#"{"diy":true,"function":"nope","type":"hook"}"#),
            Duration::from_secs(30),
        )
        .await;
    assert!(matches!(bad, Some(Outcome::Error(_))), "{bad:?}");
    let lines = wait_lines(&log, 3);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let first = &lines[0];
    assert_eq!(first["Service"], "pre-map-fn");
    assert_eq!(first["Function"], "flattenRecords");
    assert_eq!(first["ExtensionPoint"], "hook");
    assert_eq!(first["Stack"], "LambdaInvoke");
    assert_eq!(first["Status"], "200");
    assert_eq!(first["Calls"], 1.0);
    assert_eq!(first["Errors"], 0.0);
    assert_eq!(first["RecordsIn"], 2.0);
    assert_eq!(first["RecordsOut"], 2.0);
    assert_eq!(first["ResponseBytes"], answers[0].len() as f64);
    assert!(first["Duration"].as_f64().is_some_and(|d| d >= 0.0));
    assert_eq!(first["ColdStart"], 1.0);
    assert_eq!(
        first["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        serde_json::json!([
            ["Service", "Function", "ExtensionPoint", "Stack", "Status"],
            ["Service"]
        ])
    );
    assert_eq!(lines[1]["ColdStart"], 0.0);
    assert_eq!(lines[2]["Status"], "422");
    assert_eq!(lines[2]["Errors"], 1.0);
}

#[tokio::test]
async fn dedup_checks_and_worker_batches_are_counted() {
    let log = log_path("incoming.log");
    let api = RuntimeApi::start().await.expect("runtime api");
    let _f = process::lambda_logged(&bin("incoming"), &api.address(), ENV, &log);
    let event =
        std::fs::read(repo_root().join("events/incoming/function-url.json")).expect("event");
    for _ in 0..2 {
        let out = api
            .invoke(event.clone(), None, Duration::from_secs(30))
            .await;
        assert!(matches!(out, Some(Outcome::Response(_))), "{out:?}");
    }
    let lines = wait_lines(&log, 2);
    let dedup: Vec<(f64, f64)> = lines
        .iter()
        .filter(|l| l.get("DedupNew").is_some())
        .map(|l| {
            (
                l["DedupNew"].as_f64().unwrap_or(-1.0),
                l["DedupDuplicate"].as_f64().unwrap_or(-1.0),
            )
        })
        .collect();
    assert_eq!(dedup, vec![(1.0, 0.0), (0.0, 1.0)], "{lines:#?}");

    let log = log_path("worker.log");
    let api = RuntimeApi::start().await.expect("runtime api");
    let _w = process::lambda_logged(&bin("worker"), &api.address(), ENV, &log);
    let event = std::fs::read(repo_root().join("events/worker/sqs-must-show.json")).expect("event");
    let out = api.invoke(event, None, Duration::from_secs(30)).await;
    assert!(matches!(out, Some(Outcome::Response(_))), "{out:?}");
    // The valid envelope's call line, then the batch line.
    let lines = wait_lines(&log, 2);
    let batch = lines
        .iter()
        .find(|l| l.get("BatchRecords").is_some())
        .unwrap_or_else(|| panic!("no batch line in {lines:#?}"));
    assert_eq!(batch["BatchRecords"], 3.0);
    assert_eq!(batch["BatchSucceeded"], 1.0);
    assert_eq!(batch["BatchFailed"], 2.0);
    assert_eq!(batch["BatchSkipped"], 0.0);
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let log = log_path("off.log");
    let api = RuntimeApi::start().await.expect("runtime api");
    let mut env = ENV.to_vec();
    env.push(("EXTENSION_METRICS", "off"));
    let _f = process::lambda_logged(&bin("pre-map"), &api.address(), &env, &log);
    let out = api
        .invoke(
            r#"{"diy":true,"function":"flattenRecords","type":"hook","options":{"data":[]}}"#,
            None,
            Duration::from_secs(30),
        )
        .await;
    assert!(matches!(out, Some(Outcome::Response(_))), "{out:?}");
    std::thread::sleep(Duration::from_millis(200));
    assert!(emf_lines(&log).is_empty());
}

/// A CRM double on 127.0.0.1: customer 7 exists, any other id is a 404; the trace headers it
/// saw are kept.
async fn crm() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::extract::Path as UrlPath;
    use axum::http::{HeaderMap, StatusCode};
    use std::sync::{Arc, Mutex};
    let traces = Arc::new(Mutex::new(Vec::new()));
    let seen = traces.clone();
    let app = axum::Router::new().route(
        "/api/customers/{id}",
        axum::routing::get(move |UrlPath(id): UrlPath<String>, h: HeaderMap| {
            let seen = seen.clone();
            async move {
                let trace = h.get("x-amzn-trace-id").and_then(|v| v.to_str().ok());
                seen.lock().unwrap().push(trace.unwrap_or("").to_owned());
                let status = if id == "7" {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                (
                    status,
                    [("content-type", "application/json")],
                    r#"{"id":7}"#,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr.to_string(), traces)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_http_is_logged_counted_by_host_and_status_and_traced() {
    let (host, traces) = crm().await;
    let secrets = log_path("crm-secrets.json");
    let key = "metrics-crm-key-Zq81";
    std::fs::write(&secrets, format!(r#"{{"crm-api-key":"{key}"}}"#)).expect("secrets");
    let log = log_path("pre-map-http.log");
    let api = RuntimeApi::start().await.expect("runtime api");
    let mut env = ENV.to_vec();
    let secrets_path = secrets.to_string_lossy().into_owned();
    env.push(("EXTENSION_DEV_SECRETS_FILE", &secrets_path));
    let _f = process::lambda_logged(&bin("pre-map"), &api.address(), &env, &log);
    let options = format!(
        r#"{{"data":[{{"customerId":7}},{{"customerId":8}}],"settings":{{"baseUrl":"http://{host}/api"}}}}"#
    );
    let out = api
        .invoke(
            options,
            Some(r#"{"diy":true,"function":"enrichRecords","type":"hook"}"#),
            Duration::from_secs(30),
        )
        .await;
    assert!(matches!(out, Some(Outcome::Response(_))), "{out:?}");
    let lines = wait_lines(&log, 3);
    let mut http: Vec<(String, String, f64)> = lines
        .iter()
        .filter(|l| l.get("HttpCalls").is_some())
        .map(|l| {
            (
                l["Host"].as_str().unwrap_or("").to_owned(),
                l["Status"].as_str().unwrap_or("").to_owned(),
                l["HttpCalls"].as_f64().unwrap_or(0.0),
            )
        })
        .collect();
    http.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(
        http,
        vec![
            (host.clone(), "200".into(), 1.0),
            (host.clone(), "404".into(), 1.0)
        ],
        "{lines:#?}"
    );
    // The runtime's trace id went out on both requests.
    assert_eq!(
        *traces.lock().unwrap(),
        vec!["Root=1-00000000-000000000000000000000000;Sampled=0"; 2]
    );
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        text.contains(&format!(
            "HTTP GET http://{host}/api/customers/7 - 200 OK ("
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "HTTP GET http://{host}/api/customers/8 - 404 Not Found ("
        )),
        "{text}"
    );
    assert!(!text.contains(key), "{text}");
}
