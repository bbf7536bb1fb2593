//! The worker's unit tests.

use super::*;
use crate::dispatch::{ExtError, Invocation, Module, Services};
use crate::store::idempotency::IdempotencyKey;
use crate::store::idempotency::{Idempotency, IdempotencyStore, LockToken, MemoryIdempotency};
use crate::time::EpochMillis;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

fn record(id: Option<&str>, body: &str, group: Option<&str>) -> Value {
    let mut r = json!({
        "receiptHandle": "rh",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work",
        "awsRegion": "us-east-1"
    });
    if let Some(id) = id {
        r["messageId"] = json!(id);
    }
    if let Some(g) = group {
        r["attributes"]["MessageGroupId"] = json!(g);
    }
    r
}

fn call(function: &str, n: u64) -> String {
    json!({"diy": true, "function": function, "options": {"n": n}}).to_string()
}

struct Fixture {
    ext: Extension,
    runs: Arc<AtomicUsize>,
    store: Arc<MemoryIdempotency>,
}

fn fixture() -> Fixture {
    let runs = Arc::new(AtomicUsize::new(0));
    let mut m = Module::new();
    let counter = runs.clone();
    m.raw("count", move |_inv: Invocation, o: Value| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ExtError>(o)
        }
    });
    m.raw("slow", |_inv: Invocation, o: Value| async move {
        let ms = o["ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok::<_, ExtError>(o)
    });
    m.raw("fail", |_inv: Invocation, _o: Value| async {
        Err::<Value, _>(ExtError::with_code("boom", "failed on purpose"))
    });
    let store = Arc::new(MemoryIdempotency::default());
    let services = Services::default().with_idempotency(Arc::new(Idempotency::new(store.clone())));
    let ext = Extension::builder()
        .diy(m)
        .services(services)
        .build()
        .unwrap();
    Fixture { ext, runs, store }
}

async fn batch(ext: &Extension, records: Vec<Value>) -> Result<String, BatchError> {
    let deadline = Some(Instant::now() + Duration::from_secs(10));
    handle_batch(ext, json!({ "Records": records }), "req", deadline)
        .await
        .map(|r| r.to_json())
}

/// A webhook function counting its runs and keeping what it got.
fn webhook_fixture() -> (
    Extension,
    Arc<AtomicUsize>,
    Arc<std::sync::Mutex<Vec<Value>>>,
) {
    let runs = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (counter, log) = (runs.clone(), seen.clone());
    let mut m = Module::new();
    m.webhook(
        "orderCreated",
        move |_inv: Invocation, o: crate::types::WebhookOptions| {
            counter.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut l) = log.lock() {
                l.push(
                    json!({"endpoint": o.endpoint, "event": o.event, "dedupKey": o.dedup_key,
                "headers": o.headers}),
                );
            }
            async { Ok(()) }
        },
    );
    let store = Arc::new(MemoryIdempotency::default());
    let services = Services::default().with_idempotency(Arc::new(Idempotency::new(store)));
    let ext = Extension::builder()
        .diy(m)
        .services(services)
        .build()
        .unwrap();
    (ext, runs, seen)
}

fn webhook_message(request_id: &str, dedup: Option<&str>, function: Option<&str>) -> String {
    let mut m = json!({"endpoint": "orders", "receivedAt": "2026-01-02T03:04:05.678Z",
        "requestId": request_id, "dedupKey": dedup, "auth": {"type": "none"},
        "headers": {"webhook-id": "msg_1"}, "event": {"order.id": 7}});
    if let Some(f) = function {
        m["function"] = json!(f);
    }
    m.to_string()
}

#[tokio::test]
async fn a_webhook_message_runs_its_function_once_per_dedup_key() {
    let (ext, runs, seen) = webhook_fixture();
    let first = webhook_message("r1", Some("abc"), Some("orderCreated"));
    let ok = r#"{"batchItemFailures":[]}"#;
    assert_eq!(
        batch(&ext, vec![record(Some("m1"), &first, None)])
            .await
            .unwrap(),
        ok
    );
    assert_eq!(
        seen.lock().unwrap()[0],
        json!({"endpoint": "orders", "event": {"order.id": 7}, "dedupKey": "abc",
            "headers": {"webhook-id": "msg_1"}})
    );
    // Redelivery (same id), then another copy of the event (new id, new request).
    assert_eq!(
        batch(&ext, vec![record(Some("m1"), &first, None)])
            .await
            .unwrap(),
        ok
    );
    let copy = webhook_message("r2", Some("abc"), Some("orderCreated"));
    assert_eq!(
        batch(&ext, vec![record(Some("m2"), &copy, None)])
            .await
            .unwrap(),
        ok
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // Without a dedup key, each message id runs once.
    let plain = webhook_message("r3", None, Some("orderCreated"));
    batch(&ext, vec![record(Some("m3"), &plain, None)])
        .await
        .unwrap();
    batch(&ext, vec![record(Some("m3"), &plain, None)])
        .await
        .unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_webhook_message_without_a_function_fails_and_is_not_lost() {
    let (ext, runs, _) = webhook_fixture();
    let none = webhook_message("r1", Some("k"), None);
    let unknown = webhook_message("r2", Some("k2"), Some("nope"));
    let fine = webhook_message("r3", Some("k3"), Some("orderCreated"));
    let out = batch(
        &ext,
        vec![
            record(Some("a"), &none, None),
            record(Some("b"), &unknown, None),
            record(Some("c"), &fine, None),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        r#"{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"b"}]}"#
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // A webhook function is not reachable at the top level (integrator.io's calls).
    let direct = json!({"diy": true, "function": "orderCreated",
        "options": {"endpoint": "x", "event": {}}})
    .to_string();
    assert!(
        batch(&ext, vec![record(Some("d"), &direct, None)])
            .await
            .is_err()
    );
}

#[test]
fn detects_sqs_events_only() {
    assert!(is_sqs_event(
        &json!({"Records": [record(Some("a"), "{}", None)]})
    ));
    assert!(!is_sqs_event(&json!({"Records": []})));
    assert!(!is_sqs_event(
        &json!({"Records": [{"eventSource": "aws:s3"}]})
    ));
    assert!(!is_sqs_event(
        &json!({"diy": true, "function": "x", "options": {}})
    ));
}

#[tokio::test]
async fn reports_exactly_the_failed_messages() {
    let f = fixture();
    let out = batch(
        &f.ext,
        vec![
            record(Some("id1"), &call("count", 1), None),
            record(Some("id2"), "{not json", None),
            record(Some("id3"), &call("nope", 1), None),
            record(Some("id4"), &call("fail", 1), None),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        r#"{"batchItemFailures":[{"itemIdentifier":"id2"},{"itemIdentifier":"id3"},{"itemIdentifier":"id4"}]}"#
    );
    assert_eq!(f.runs.load(Ordering::SeqCst), 1);
    let ok = batch(&f.ext, vec![record(Some("id5"), &call("count", 2), None)])
        .await
        .unwrap();
    assert_eq!(ok, r#"{"batchItemFailures":[]}"#);
}

#[tokio::test]
async fn fifo_groups_stop_at_their_first_failure() {
    let f = fixture();
    let out = batch(
        &f.ext,
        vec![
            record(Some("a1"), &call("count", 1), Some("A")),
            record(Some("b1"), &call("count", 2), Some("B")),
            record(Some("a2"), &call("fail", 3), Some("A")),
            record(Some("b2"), &call("count", 4), Some("B")),
            record(Some("a3"), &call("count", 5), Some("A")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        out,
        r#"{"batchItemFailures":[{"itemIdentifier":"a2"},{"itemIdentifier":"a3"}]}"#
    );
    assert_eq!(f.runs.load(Ordering::SeqCst), 3, "a3 was not run");
}

#[tokio::test]
async fn redeliveries_do_not_run_twice_and_in_flight_ones_wait() {
    let f = fixture();
    let body = call("count", 7);
    let first = batch(&f.ext, vec![record(Some("m1"), &body, None)]).await;
    assert_eq!(first.unwrap(), r#"{"batchItemFailures":[]}"#);
    let again = batch(
        &f.ext,
        vec![
            record(Some("m1"), &body, None),
            record(Some("m1"), &body, None),
        ],
    )
    .await;
    assert_eq!(again.unwrap(), r#"{"batchItemFailures":[]}"#);
    assert_eq!(f.runs.load(Ordering::SeqCst), 1, "ran once");

    // Another invocation holds the lock of m2: m2 fails now (redelivered later).
    let body2 = call("count", 8);
    let parsed: Value = serde_json::from_str(&body2).unwrap();
    let key = IdempotencyKey::from_caller(IDEMPOTENCY_SCOPE, "m2", &parsed);
    let until = EpochMillis::now().after(Duration::from_secs(60));
    let expires = crate::time::EpochSeconds::now().after(Duration::from_secs(600));
    f.store
        .acquire(&key, &LockToken::generate(), until, expires)
        .await
        .unwrap();
    let out = batch(
        &f.ext,
        vec![
            record(Some("m2"), &body2, None),
            record(Some("m3"), &call("count", 9), None),
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, r#"{"batchItemFailures":[{"itemIdentifier":"m2"}]}"#);
    assert_eq!(f.runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn missing_ids_and_all_failed_batches_fail_the_invocation() {
    let f = fixture();
    let err = batch(
        &f.ext,
        vec![
            record(Some("x1"), &call("count", 1), None),
            record(None, &call("count", 2), None),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err, BatchError::MissingMessageId { index: 1 });
    assert_eq!(err.error_type(), "Worker.MissingMessageId");
    let empty = batch(&f.ext, vec![record(Some(""), &call("count", 2), None)]).await;
    assert_eq!(empty, Err(BatchError::MissingMessageId { index: 0 }));
    assert_eq!(f.runs.load(Ordering::SeqCst), 0, "nothing ran");

    let err = batch(
        &f.ext,
        vec![
            record(Some("y1"), "[", None),
            record(Some("y2"), &call("fail", 1), None),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        BatchError::AllFailed {
            failed: vec!["y1".into(), "y2".into()]
        }
    );
    assert_eq!(err.error_type(), "Worker.BatchFailed");
}

#[tokio::test]
async fn records_are_not_started_too_close_to_the_deadline() {
    let f = fixture();
    let slow = json!({"diy": true, "function": "slow", "options": {"ms": 800}}).to_string();
    let out = handle_batch(
        &f.ext,
        json!({"Records": [
            record(Some("s1"), &slow, Some("G")),
            record(Some("s2"), &call("count", 1), Some("G")),
        ]}),
        "req",
        Some(Instant::now() + Duration::from_millis(1200)),
    )
    .await
    .unwrap();
    assert_eq!(
        out.to_json(),
        r#"{"batchItemFailures":[{"itemIdentifier":"s2"}]}"#
    );
    assert_eq!(f.runs.load(Ordering::SeqCst), 0, "s2 was not started");

    // A deadline already past at the start (local emulators): records still run.
    let _ = handle_batch(
        &f.ext,
        json!({"Records": [record(Some("e1"), &call("count", 1), None)]}),
        "req",
        Some(Instant::now()),
    )
    .await;
    assert_eq!(f.runs.load(Ordering::SeqCst), 1, "e1 was started");
}

#[test]
fn response_json_escapes_ids() {
    let r = BatchResponse {
        batch_item_failures: vec![ItemFailure {
            item_identifier: "a\"b".into(),
        }],
    };
    assert_eq!(
        r.to_json(),
        r#"{"batchItemFailures":[{"itemIdentifier":"a\"b"}]}"#
    );
    assert_eq!(
        serde_json::to_string(&r).unwrap(),
        r.to_json(),
        "the derived form agrees"
    );
}
