//! Every function binary, as Lambda runs it: the real bootstrap against a Runtime API double,
//! fed the sample events from `events/` in all three shapes (direct Invoke with the envelope in
//! the client context, a payload that is the whole envelope, a Function URL event).
//! Also: panics and deadline overruns on Lambda become the 422 error string and the next
//! invocation is served.

use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::{process, repo_root};
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

/// The function binaries that have sample events.
fn binaries() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo_root().join("events"))
        .expect("events/ exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("invoke.json").exists())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

fn assert_success(bin: &str, what: &str, outcome: Option<Outcome>) -> Vec<u8> {
    match outcome {
        Some(Outcome::Response(body)) => body,
        other => panic!(
            "{bin} {what}: expected a response, got {:?}",
            other.map(|o| o.text())
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binary_answers_its_sample_events_in_every_shape() {
    let bins = binaries();
    assert!(
        bins.len() >= 11,
        "expected events for every function binary, found {bins:?}"
    );
    for bin in bins {
        let dir = repo_root().join("events").join(&bin);
        let t = Duration::from_secs(30);
        // A fresh process per shape: functions may remember what they saw (the import example
        // marks a re-sent record as already imported), and each shape must stand on its own.
        let once = |payload: String, cc: Option<String>| {
            let bin = bin.clone();
            async move {
                let api = RuntimeApi::start().await.expect("runtime api");
                let _f = process::lambda(
                    &process::bin(&bin),
                    &api.address(),
                    &[("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", "local-dev-token")],
                );
                api.invoke(payload, cc.as_deref(), t).await
            }
        };

        // 1. No client context: the payload is the whole envelope (sam local invoke -e).
        let invoke = read(&dir.join("invoke.json")).expect("invoke.json");
        let via_envelope = assert_success(&bin, "invoke.json", once(invoke, None).await);

        // 2. integrator.io's Lambda stack: envelope in the client context, options as payload.
        if let (Some(cc), Some(opts)) = (
            read(&dir.join("client-context.json")),
            read(&dir.join("options.json")),
        ) {
            let cc: Value = serde_json::from_str(&cc).expect("client-context.json");
            let compact = serde_json::to_string(&cc).expect("compact");
            let via_cc = assert_success(&bin, "client context", once(opts, Some(compact)).await);
            assert_eq!(
                via_cc, via_envelope,
                "{bin}: both Lambda shapes give the same answer"
            );
        }

        // 3. Function URL (server stack on Lambda): an HTTP response object with the same body.
        if let Some(url) = read(&dir.join("function-url.json")) {
            let body = assert_success(&bin, "function-url.json", once(url, None).await);
            let resp: Value = serde_json::from_slice(&body).expect("HTTP response JSON");
            assert_eq!(resp["statusCode"], 200, "{bin}: {resp}");
            let text = resp["body"].as_str().unwrap_or("");
            let expected = if via_envelope == b"null" {
                String::new()
            } else {
                String::from_utf8_lossy(&via_envelope).into_owned()
            };
            assert_eq!(
                text, expected,
                "{bin}: Function URL body equals the direct-invoke result"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_url_checks_the_system_token() {
    let api = RuntimeApi::start().await.expect("runtime api");
    let _f = process::lambda(
        &process::bin("ping"),
        &api.address(),
        &[("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", "right-token")],
    );
    let url = read(&repo_root().join("events/ping/function-url.json")).expect("event");
    let body = assert_success(
        "ping",
        "function-url",
        api.invoke(url, None, Duration::from_secs(30)).await,
    );
    let resp: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(resp["statusCode"], 401, "{resp}");
    assert_eq!(
        resp["body"],
        r#"{"errors":[{"code":"unauthorized","message":"Invalid system token."}]}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_panics_and_overruns_become_422_strings_and_the_next_call_is_served() {
    let api = RuntimeApi::start().await.expect("runtime api");
    let _f = process::lambda(&process::bin("serve"), &api.address(), &[]);
    let ok_cc = r#"{"diy":true,"function":"sleepDemo"}"#;

    let panic = api
        .invoke(
            r#"{}"#,
            Some(r#"{"diy":true,"function":"panicDemo"}"#),
            Duration::from_secs(30),
        )
        .await;
    let Some(Outcome::Error(body)) = panic else {
        panic!("expected an error, got {panic:?}")
    };
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["errorType"], "string");
    assert_eq!(
        v["errorMessage"],
        r#"{"statusCode":422,"errors":[{"message":"Function panicDemo panicked: panicDemo was asked to panic","code":"Error"}]}"#
    );
    let next = api
        .invoke(r#"{"ms":1}"#, Some(ok_cc), Duration::from_secs(30))
        .await;
    assert_eq!(next, Some(Outcome::Response(br#"{"sleptMs":1}"#.to_vec())));

    // Deadline 2 s away, function wants 20 s: a timeout error arrives before the deadline.
    let started = std::time::Instant::now();
    let slow = api
        .invoke(r#"{"ms":20000}"#, Some(ok_cc), Duration::from_secs(2))
        .await;
    // The budget is the deadline less a tenth (1.8 s here); allow a little scheduling slack.
    assert!(
        started.elapsed() < Duration::from_millis(2300),
        "answered before the deadline: {:?}",
        started.elapsed()
    );
    let Some(Outcome::Error(body)) = slow else {
        panic!("expected a timeout error, got {slow:?}")
    };
    let v: Value = serde_json::from_slice(&body).expect("json");
    let inner: Value =
        serde_json::from_str(v["errorMessage"].as_str().unwrap_or("")).expect("422 string");
    assert_eq!(inner["statusCode"], 422);
    assert_eq!(inner["errors"][0]["code"], "timeout");
    let next = api
        .invoke(r#"{"ms":1}"#, Some(ok_cc), Duration::from_secs(30))
        .await;
    assert_eq!(next, Some(Outcome::Response(br#"{"sleptMs":1}"#.to_vec())));

    // No result is posted as `null`; validation errors keep the reference's wording.
    let missing = api
        .invoke(
            "null",
            Some(r#"{"diy":true,"function":"sleepDemo"}"#),
            Duration::from_secs(30),
        )
        .await;
    let Some(Outcome::Error(body)) = missing else {
        panic!("{missing:?}")
    };
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        v["errorMessage"],
        json!(
            r#"{"statusCode":422,"errors":[{"code":"missing_required_field","message":"Function options haven't been provided."}]}"#
        )
    );
}
