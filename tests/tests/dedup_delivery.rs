//! Dedup marks and delivery: a page's keys are marked by its checks before its answer leaves the
//! function. When that answer is not delivered — here, over the call's `maxResponseSize`, so
//! integrator.io gets a 422 `response_size_exceeded` and retries the page — the keys are
//! forgotten again: the retried page keeps all its records (`dropDuplicates`) and imports them
//! (`upsertRecords`, not "already imported"). The real binaries, as Lambda runs them, on the
//! emulator's DynamoDB.

use integration_tests::aws::{create_table, moto_config, moto_endpoint};
use integration_tests::process;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::{Value, json};
use std::time::Duration;

/// A Lambda bootstrap of `bin` on the AWS backend with the extension table.
async fn function(bin: &str, prefix: &str) -> (RuntimeApi, process::Proc) {
    let cfg = moto_config().await;
    let table = create_table(&cfg, prefix).await;
    let endpoint = moto_endpoint();
    let api = RuntimeApi::start().await.expect("runtime api");
    let f = process::lambda(
        &process::bin(bin),
        &api.address(),
        &[
            ("EXTENSION_BACKEND", "aws"),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("EXTENSION_TABLE", &table),
        ],
    );
    (api, f)
}

/// One invocation with the whole envelope as payload: the answer, or the 422 error string.
async fn invoke(api: &RuntimeApi, envelope: &Value) -> Result<Value, String> {
    match api
        .invoke(envelope.to_string(), None, Duration::from_secs(30))
        .await
    {
        Some(Outcome::Response(b)) => Ok(serde_json::from_slice(&b).expect("answer JSON")),
        Some(Outcome::Error(b)) => Err(String::from_utf8_lossy(&b).into_owned()),
        None => panic!("no answer"),
    }
}

fn records() -> Vec<Value> {
    (0..10)
        .map(|i| json!({"id": format!("r-{i}"), "note": "x".repeat(40)}))
        .collect()
}

/// `dropDuplicates`: a page of ten new records whose answer is over `maxResponseSize` (a 422
/// `response_size_exceeded`, never delivered); the retry with room for the answer gets all ten.
/// Fails on a store that keeps the marks of an undelivered answer (the retry got none).
#[tokio::test]
async fn an_oversized_drop_duplicates_answer_leaves_its_records_new() {
    let (api, _f) = function("pre-save-page", "delivery-dd").await;
    let page = |max: u64| {
        json!({"diy": true, "function": "dropDuplicates", "type": "hook",
            "maxResponseSize": max,
            "options": {"data": records(), "errors": [], "_exportId": "exp-delivery",
                "settings": {"dedupFields": ["id"]}}})
    };
    let too_big = invoke(&api, &page(200)).await.expect_err("over the size");
    assert!(too_big.contains("response_size_exceeded"), "{too_big}");
    let retry = invoke(&api, &page(1_000_000)).await.expect("delivered");
    assert_eq!(
        retry["data"].as_array().map(Vec::len),
        Some(10),
        "the retry keeps every record: {retry}"
    );
    // Delivered now: the next page with the same records is all duplicates.
    let again = invoke(&api, &page(1_000_000)).await.expect("delivered");
    assert_eq!(again["data"].as_array().map(Vec::len), Some(0), "{again}");
}

/// `upsertRecords`: a page whose answer is not delivered (over `maxResponseSize`) imported
/// nothing as far as integrator.io knows; the retry writes every record (`ignored: false`), and
/// only a page after a delivered answer is "already imported". Fails on the store that keeps
/// the marks (the retry answered `ignored: true` for records never reported written).
#[tokio::test]
async fn an_undelivered_upsert_answer_is_not_already_imported_on_retry() {
    let (api, _f) = function("import", "delivery-imp").await;
    let page = |max: u64| {
        json!({"diy": true, "function": "upsertRecords", "type": "wrapper",
            "maxResponseSize": max,
            "options": {"connection": {"encrypted": {}, "unencrypted": {}},
                "_importId": "imp-delivery", "preMapData": records(), "postMapData": records()}})
    };
    let too_big = invoke(&api, &page(50)).await.expect_err("over the size");
    assert!(too_big.contains("response_size_exceeded"), "{too_big}");
    let retry = invoke(&api, &page(1_000_000)).await.expect("delivered");
    let ignored: Vec<&Value> = retry
        .as_array()
        .expect("responses")
        .iter()
        .map(|r| &r["ignored"])
        .collect();
    assert_eq!(ignored, vec![&json!(false); 10], "{retry}");
    let again = invoke(&api, &page(1_000_000)).await.expect("delivered");
    assert!(
        again
            .as_array()
            .expect("responses")
            .iter()
            .all(|r| r["ignored"] == true),
        "{again}"
    );
}
