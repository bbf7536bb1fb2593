//! Many calls per Lambda environment (Lambda Managed Instances): with
//! `AWS_LAMBDA_MAX_CONCURRENCY` above 1 one process polls the Runtime API that many times at
//! once and serves the invocations side by side, each with its own trace id, client context,
//! deadline and panic isolation. Driven through the real `serve` bootstrap (it hosts the
//! diagnostics `sleepDemo` and `panicDemo`) against the Runtime API double.

use integration_tests::process::{self, bin};
use integration_tests::repo_root;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

const SLEEP_CC: &str = r#"{"diy":true,"function":"sleepDemo"}"#;
const PANIC_CC: &str = r#"{"diy":true,"function":"panicDemo"}"#;

fn trace(i: usize) -> String {
    format!("Root=1-00000000-{i:024x};Sampled=0")
}

/// The `extension call` summary lines of `log`: request id → trace id (waits, bounded, until
/// `n` are written).
fn traces_by_request(log: &std::path::Path, n: usize) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for _ in 0..100 {
        out.clear();
        for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["message"] != "extension call" {
                continue;
            }
            let request = v["request_id"]
                .as_str()
                .or_else(|| v["span"]["request_id"].as_str())
                .unwrap_or_default();
            let trace = v["trace_id"]
                .as_str()
                .or_else(|| v["span"]["trace_id"].as_str())
                .unwrap_or_default();
            out.insert(request.to_owned(), trace.to_owned());
        }
        if out.len() >= n {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_max_concurrency_one_process_serves_that_many_invocations_at_once() {
    let dir = repo_root().join("target/traces");
    std::fs::create_dir_all(&dir).expect("target/traces");
    let log = dir.join("concurrency.log");
    let api = RuntimeApi::start().await.expect("runtime api");
    let mut f = process::lambda_logged(
        &bin("serve"),
        &api.address(),
        &[
            ("AWS_LAMBDA_MAX_CONCURRENCY", "8"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ],
        &log,
    );
    assert!(
        api.wait_polls(8, Duration::from_secs(60)).await,
        "8 loops poll /next (saw {})",
        api.polls()
    );
    // Eight calls that each take 400 ms, plus one that panics, all sent at once.
    let api = std::sync::Arc::new(api);
    let mut calls = Vec::new();
    for i in 0..8 {
        let api = api.clone();
        calls.push(tokio::spawn(async move {
            let t = trace(i);
            let (id, out) = api
                .invoke_traced(
                    r#"{"ms":400}"#,
                    Some(SLEEP_CC),
                    Duration::from_secs(30),
                    Some(&t),
                )
                .await;
            (id, t, out)
        }));
    }
    let panicking = {
        let api = api.clone();
        tokio::spawn(async move {
            api.invoke_traced(
                "{}",
                Some(PANIC_CC),
                Duration::from_secs(30),
                Some(&trace(99)),
            )
            .await
        })
    };
    let mut sent = HashMap::new();
    for c in calls {
        let (id, t, out) = c.await.expect("call");
        assert_eq!(
            out,
            Some(Outcome::Response(br#"{"sleptMs":400}"#.to_vec())),
            "{id}"
        );
        sent.insert(id, t);
    }
    let (_, panicked) = panicking.await.expect("panic call");
    let text = panicked.map(|o| o.text()).unwrap_or_default();
    assert!(
        text.contains("panicDemo was asked to panic") && text.contains("422"),
        "the panicking call alone gets its 422: {text}"
    );
    assert_eq!(
        api.max_in_flight(),
        8,
        "the eight calls ran at once in one process"
    );
    assert!(!f.exited(), "the process serves on");
    // Each call's log line carries its own trace id, never another call's.
    let logged = traces_by_request(&log, 9);
    for (id, t) in &sent {
        assert_eq!(logged.get(id), Some(t), "{id}: {logged:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_max_concurrency_invocations_run_one_at_a_time() {
    let api = std::sync::Arc::new(RuntimeApi::start().await.expect("runtime api"));
    let _f = process::lambda(&bin("serve"), &api.address(), &[]);
    assert!(api.wait_first_poll(Duration::from_secs(60)).await);
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let api = api.clone();
            tokio::spawn(async move {
                api.invoke(r#"{"ms":100}"#, Some(SLEEP_CC), Duration::from_secs(30))
                    .await
            })
        })
        .collect();
    for c in calls {
        assert_eq!(
            c.await.expect("call"),
            Some(Outcome::Response(br#"{"sleptMs":100}"#.to_vec()))
        );
    }
    assert_eq!(api.max_in_flight(), 1, "classic Lambda: one at a time");
}
