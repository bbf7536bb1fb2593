//! Webhooks reach a function, end to end on the emulator (moto, `MOTO_ENDPOINT`): the real
//! `incoming` binary accepts `POST /incoming/orders` (an endpoint naming the webhook function
//! `logEvent`) into an SQS queue; the queued messages are fed, as Lambda's event source mapping
//! would, to the real `worker` binary (Runtime API double, AWS backend: idempotency records in
//! DynamoDB). The function runs once per event: also when the batch is delivered again, and
//! when another copy of the same event (same dedup key, new message id) arrives.

use integration_tests::aws::{self, moto_config, moto_endpoint};
use integration_tests::http_client::send;
use integration_tests::process;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn record(id: &str, body: &str) -> Value {
    integration_tests::aws::sqs_record(Some(id), body, "incoming", None)
}

async fn receive_all(cfg: &aws_config::SdkConfig, url: &str) -> Vec<(String, String)> {
    integration_tests::aws::receive_all(cfg, url, 60).await
}

/// The `webhook event` lines the worker's `logEvent` wrote so far.
fn runs(log: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("webhook event"))
        .map(str::to_owned)
        .collect()
}

fn answer(outcome: Option<Outcome>) -> String {
    match outcome {
        Some(Outcome::Response(body)) => String::from_utf8(body).expect("UTF-8"),
        other => panic!("expected a response, got {:?}", other.map(|o| o.text())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_webhook_runs_its_function_exactly_once() {
    let cfg = moto_config().await;
    let table = aws::create_table(&cfg, "webhooks").await;
    let queue = aws::create_queue(&cfg, "incoming-fn").await;
    let endpoint = moto_endpoint();

    // 1. Accept: two distinct orders and a duplicate of the first (204, not queued).
    let mut env_owned = aws::incoming_env(&endpoint, &table, &queue);
    env_owned.push((
        "EXTENSION_INCOMING_ENDPOINTS",
        json!({"orders": {"dedup": {"fields": ["order.id"]}, "function": "logEvent"}}).to_string(),
    ));
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (incoming, addr) = process::server(&process::bin("incoming"), &[], &env);
    let post = |body: &str| {
        send(
            &addr,
            "POST",
            "/incoming/orders",
            &[("content-type", "application/json")],
            body.as_bytes(),
        )
        .expect("http")
        .status
    };
    assert_eq!(post(r#"{"order":{"id":7,"total":10}}"#), 200);
    assert_eq!(post(r#"{"order":{"id":7,"total":10}}"#), 204);
    assert_eq!(post(r#"{"order":{"id":8,"total":3}}"#), 200);
    drop(incoming);

    let messages = receive_all(&cfg, &queue).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
    for (_, body) in &messages {
        let m: Value = serde_json::from_str(body).expect("message JSON");
        assert_eq!(m["function"], "logEvent", "{m}");
        assert!(m["dedupKey"].is_string(), "{m}");
    }

    // 2. The worker (AWS backend on the emulator) runs each event's function.
    let dir = integration_tests::repo_root().join("target/webhooks");
    std::fs::create_dir_all(&dir).expect("log dir");
    let log = dir.join(format!("worker-{}.log", aws::unique("run")));
    let api = RuntimeApi::start().await.expect("runtime api");
    let _worker = process::lambda_logged(
        &process::bin("worker"),
        &api.address(),
        &[
            ("EXTENSION_BACKEND", "aws"),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("EXTENSION_TABLE", &table),
        ],
        &log,
    );
    let batch =
        json!({"Records": messages.iter().map(|(id, b)| record(id, b)).collect::<Vec<_>>()})
            .to_string();
    let ok = r#"{"batchItemFailures":[]}"#;
    assert_eq!(answer(api.invoke(batch.clone(), None, T).await), ok);
    assert_eq!(runs(&log).len(), 2, "{:?}", runs(&log));

    // 3. Redelivery of the same batch: acknowledged, not run again.
    assert_eq!(answer(api.invoke(batch, None, T).await), ok);
    // 4. Another copy of the first event under a new message id (a lost SendMessage reply),
    //    and the sender's retry accepted anew after a crash (new request id and time).
    let first: Value = serde_json::from_str(&messages[0].1).expect("json");
    let mut retried = first.clone();
    retried["requestId"] = json!("another-request");
    retried["receivedAt"] = json!("2030-01-01T00:00:00.000Z");
    let copies = json!({"Records": [
        record("copy-1", &first.to_string()),
        record("copy-2", &retried.to_string()),
    ]})
    .to_string();
    assert_eq!(answer(api.invoke(copies, None, T).await), ok);
    let lines = runs(&log);
    assert_eq!(lines.len(), 2, "the function ran once per event: {lines:?}");

    // 5. An event whose endpoint names no function is reported failed (redelivered, then
    //    dead-lettered), never dropped.
    let mut orphan = first;
    orphan.as_object_mut().expect("object").remove("function");
    orphan["dedupKey"] = json!("orphan-key");
    let mixed = json!({"Records": [record("orphan", &orphan.to_string()), record("again", &messages[1].1)]})
        .to_string();
    assert_eq!(
        answer(api.invoke(mixed, None, T).await),
        r#"{"batchItemFailures":[{"itemIdentifier":"orphan"}]}"#
    );
    assert_eq!(runs(&log).len(), 2);
}
