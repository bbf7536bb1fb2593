//! Hostile input on the Lambda transport: a direct Invoke's client context of any shape gets an
//! answer (the usual 422 error string when it is not an envelope), and the process stays up for
//! the next invocation. Driven through the real `serve` bootstrap against the Runtime API double.

use integration_tests::process;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::Value;
use std::time::Duration;

const OK_CC: &str = r#"{"diy":true,"function":"sleepDemo"}"#;

/// The 422 object inside a Lambda error string.
fn inner_422(outcome: &Option<Outcome>, what: &str) -> Value {
    let Some(Outcome::Error(body)) = outcome else {
        panic!("{what}: expected the 422 error string, got {outcome:?}")
    };
    let v: Value = serde_json::from_slice(body).expect("error json");
    assert_eq!(v["errorType"], "string", "{what}: {v}");
    let inner: Value =
        serde_json::from_str(v["errorMessage"].as_str().unwrap_or("")).expect("422 string");
    assert_eq!(inner["statusCode"], 422, "{what}: {inner}");
    inner
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_context_of_any_shape_is_answered_and_the_runtime_lives_on() {
    let api = RuntimeApi::start().await.expect("runtime api");
    let mut f = process::lambda(&process::bin("serve"), &api.address(), &[]);
    let hostile = [
        r#"{"custom":{"x":true}}"#,
        r#"{"custom":{"nested":{"a":[1,2]}},"client":{"installationId":5}}"#,
        r#"{"client":"a string"}"#,
        r#"{"env":[1,2,3]}"#,
        r#"{"environment":{"n":1}}"#,
        r#"[1,2,3]"#,
        r#""just a string""#,
        r#"42"#,
        r#"null"#,
        r#"{not json"#,
    ];
    for cc in hostile {
        let out = api
            .invoke(r#"{"ms":1}"#, Some(cc), Duration::from_secs(30))
            .await;
        let inner = inner_422(&out, cc);
        assert!(inner["errors"].is_array(), "{cc}: {inner}");
        assert!(!f.exited(), "{cc}: the runtime process ended");
        // The next, well-formed invocation is served by the same process.
        let next = api
            .invoke(r#"{"ms":1}"#, Some(OK_CC), Duration::from_secs(30))
            .await;
        assert_eq!(
            next,
            Some(Outcome::Response(br#"{"sleptMs":1}"#.to_vec())),
            "after {cc}"
        );
    }
    // An envelope with extra members of shapes the runtime's struct rejects is still served.
    let extra = r#"{"diy":true,"function":"sleepDemo","custom":{"x":true},"env":[1]}"#;
    let out = api
        .invoke(r#"{"ms":2}"#, Some(extra), Duration::from_secs(30))
        .await;
    assert_eq!(out, Some(Outcome::Response(br#"{"sleptMs":2}"#.to_vec())));
    assert!(!f.exited());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_that_is_not_json_is_answered_and_the_runtime_lives_on() {
    let api = RuntimeApi::start().await.expect("runtime api");
    let mut f = process::lambda(&process::bin("serve"), &api.address(), &[]);
    let out = api
        .invoke("{not json", Some(OK_CC), Duration::from_secs(30))
        .await;
    let Some(Outcome::Error(body)) = &out else {
        panic!("expected an error, got {out:?}")
    };
    let v: Value = serde_json::from_slice(body).expect("error json");
    assert!(v["errorType"].is_string(), "{v}");
    assert!(!f.exited());
    let next = api
        .invoke(r#"{"ms":1}"#, Some(OK_CC), Duration::from_secs(30))
        .await;
    assert_eq!(next, Some(Outcome::Response(br#"{"sleptMs":1}"#.to_vec())));
}
