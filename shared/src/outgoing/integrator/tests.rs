//! The client against the local double: endpoints, the token, and every fault the API can
//! throw at a call (garbage, a stall past the deadline, 429, 500, a reset).

use super::double::{Fault, IntegratorDouble};
use super::*;
use crate::outgoing::{HttpClient, HttpConfig, HyperTransport};
use serde_json::json;
use std::time::Duration;

const TOKEN: &str = "ott-9f8e7d6c5b4a";

fn http(secs: f64) -> Http {
    let config = HttpConfig {
        first_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..HttpConfig::default()
    };
    HttpClient::new(Arc::new(HyperTransport::new()), config)
        .for_call(Instant::now() + Duration::from_secs_f64(secs), None)
}

async fn setup(secs: f64) -> (IntegratorDouble, Integrator) {
    let double = IntegratorDouble::start(0, Some(TOKEN)).await.unwrap();
    let client = IntegratorApi::new(&double.url()).client(http(secs), Some(TOKEN.into()));
    (double, client)
}

#[tokio::test]
async fn a_call_without_a_token_fails_token_missing_and_sends_nothing() {
    let double = IntegratorDouble::start(0, None).await.unwrap();
    let client = IntegratorApi::new(&double.url()).client(http(5.0), None);
    let e = client.token_info().await.unwrap_err();
    assert_eq!(e.code(), "integrator_token_missing");
    let e = client.state().put("k", &1).await.unwrap_err();
    assert_eq!(e, IntegratorError::TokenMissing);
    // An empty token is no token.
    let empty = IntegratorApi::new(&double.url()).client(http(5.0), Some("".into()));
    assert!(!empty.has_token());
    assert!(empty.export("e1").await.is_err());
    assert!(double.received().is_empty(), "{:?}", double.received());
}

#[tokio::test]
async fn each_resource_reaches_its_endpoint_with_the_call_token() {
    let (double, api) = setup(10.0).await;
    double.answer("GET", "/v1/exports/e1", 200, json!({"_id": "e1"}));
    double.answer("POST", "/v1/exports/e1/invoke", 200, json!({"data": [1]}));
    double.answer(
        "POST",
        "/v1/imports/i1/invoke",
        200,
        json!([{"statusCode": 200}]),
    );
    double.answer("POST", "/v1/flows/f1/run", 201, json!({"_jobId": "j1"}));
    double.answer("GET", "/v1/connections/c1/ping", 200, json!({"code": 200}));
    double.answer(
        "POST",
        "/v1/connections/c1/export",
        200,
        json!({"data": []}),
    );
    double.answer("POST", "/v1/connections/c1/import", 200, json!([]));
    double.answer("GET", "/v1/jobs/j1/joberrors", 200, json!([]));
    double.answer("GET", "/v1/jobs", 200, json!({"jobs": []}));
    let info = api.token_info().await.unwrap();
    assert_eq!(info.user_id.as_deref(), Some("double-user"));
    assert_eq!(api.export("e1").await.unwrap()["_id"], "e1");
    api.invoke_export("e1", &json!([{"a": 1}]), &json!({"s": 1}))
        .await
        .unwrap();
    api.invoke_import("i1", &[json!({"a": 1})]).await.unwrap();
    assert_eq!(api.run_flow("f1").await.unwrap()["_jobId"], "j1");
    api.ping_connection("c1").await.unwrap();
    api.virtual_export("c1", &json!({"export": {}}))
        .await
        .unwrap();
    api.virtual_import("c1", &json!({"import": {}}))
        .await
        .unwrap();
    api.job_errors("j1").await.unwrap();
    // State, typed through serde, account-wide and per resource.
    let st = api.state();
    assert_eq!(st.get::<Vec<u32>>("cursor").await.unwrap(), None);
    st.put("cursor", &vec![1u32, 2]).await.unwrap();
    assert_eq!(
        st.get::<Vec<u32>>("cursor").await.unwrap(),
        Some(vec![1, 2])
    );
    st.delete("cursor").await.unwrap();
    st.delete("cursor").await.unwrap();
    let rs = api.resource_state("imports", "i1");
    rs.put("lastRun", &json!({"n": 3})).await.unwrap();
    assert_eq!(
        double.document("/v1/imports/i1/state/lastRun"),
        Some(json!({"n": 3}))
    );
    // Anything else, by path; ids cannot add path segments.
    let v: Value = api
        .request(Method::GET, "/jobs")
        .query("_flowId", "f 1")
        .send()
        .await
        .unwrap();
    assert_eq!(v, json!({"jobs": []}));
    let got: Vec<String> = double
        .received()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(
        got.contains(&"GET /v1/jobs?_flowId=f+1".to_owned()),
        "{got:?}"
    );
    let e = api.export("../integrations/x").await.unwrap_err();
    assert_eq!(e.code(), "integrator_not_found");
    assert_eq!(
        double.received().last().unwrap().path,
        "/v1/exports/..%2Fintegrations%2Fx"
    );
    assert!(double.received().iter().all(|r| r.token_ok));
    assert_eq!(
        double.received()[0].body,
        Value::Null,
        "tokenInfo has no body"
    );
    assert_eq!(
        double.received()[2].body,
        json!({"data": [{"a": 1}], "settings": {"s": 1}})
    );
}

#[tokio::test]
async fn settings_and_install_steps_are_updated_in_the_integration() {
    let (double, api) = setup(10.0).await;
    double.put_document(
        "/v1/integrations/i1",
        json!({"_id": "i1", "settings": {"a": 1}, "install": [
            {"name": "Connect", "completed": true, "installerFunction": "connect", "imageURL": "x"},
            {"name": "Clone", "completed": false, "installerFunction": "cloneExport"}
        ]}),
    );
    api.update_integration_settings("i1", &json!({"a": 2}))
        .await
        .unwrap();
    let steps = api
        .complete_install_step("i1", "cloneExport")
        .await
        .unwrap();
    assert!(steps.iter().all(|s| s.completed));
    let doc = double.document("/v1/integrations/i1").unwrap();
    assert_eq!(doc["settings"], json!({"a": 2}));
    assert_eq!(doc["install"][1]["completed"], true);
    assert_eq!(doc["install"][0]["imageURL"], "x", "other fields kept");
    let e = api.complete_install_step("i1", "nope").await.unwrap_err();
    assert_eq!(e.code(), "integrator_not_found");
}

#[tokio::test]
async fn a_wrong_token_is_unauthorized_with_integrator_ios_message() {
    let double = IntegratorDouble::start(0, Some(TOKEN)).await.unwrap();
    let api = IntegratorApi::new(&double.url()).client(http(5.0), Some("ott-expired-1".into()));
    let e = api.flow("f1").await.unwrap_err();
    assert_eq!(e.code(), "integrator_unauthorized");
    assert_eq!(
        e.to_string(),
        "integrator.io answered 401 to GET /v1/flows/f1: unauthorized: Invalid or expired bearer token."
    );
}

#[tokio::test]
async fn garbage_from_the_api_is_a_clear_invalid_response() {
    let (double, api) = setup(5.0).await;
    double.fault(Fault::Garbage);
    let e = api.export("e1").await.unwrap_err();
    assert_eq!(e.code(), "integrator_invalid_response", "{e}");
    assert!(e.to_string().starts_with("GET /v1/exports/e1: "), "{e}");
}

#[tokio::test]
async fn a_stall_past_the_deadline_is_a_timeout_not_a_hang() {
    let (double, api) = setup(0.5).await;
    double.fault(Fault::Stall(Duration::from_secs(30)));
    let started = Instant::now();
    let e = api.export("e1").await.unwrap_err();
    assert_eq!(e.code(), "integrator_timeout", "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_one_past_the_deadline_is_rate_limited() {
    let (double, api) = setup(10.0).await;
    double.answer("GET", "/v1/flows/f1", 200, json!({"_id": "f1"}));
    double.fault(Fault::RateLimited { retry_after: 1 });
    let started = Instant::now();
    assert_eq!(api.flow("f1").await.unwrap()["_id"], "f1");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(double.received().len(), 2);
    // Retry-After past the deadline: the 429 is the answer, at once.
    let (double, api) = setup(1.0).await;
    double.fault(Fault::RateLimited { retry_after: 60 });
    let e = api.flow("f1").await.unwrap_err();
    assert_eq!(e.code(), "integrator_rate_limited", "{e}");
    assert_eq!(double.received().len(), 1);
}

#[tokio::test]
async fn a_500_is_retried_for_a_get_and_not_for_an_invoke() {
    let (double, api) = setup(10.0).await;
    double.answer("GET", "/v1/exports/e1", 200, json!({"_id": "e1"}));
    double.fault(Fault::ServerError);
    assert_eq!(api.export("e1").await.unwrap()["_id"], "e1");
    for _ in 0..4 {
        double.fault(Fault::ServerError);
    }
    let e = api.export("e1").await.unwrap_err();
    assert_eq!(e.code(), "integrator_unavailable", "{e}");
    assert!(
        e.to_string()
            .contains("internal_error: Something went wrong."),
        "{e}"
    );
    let (double, api) = setup(10.0).await;
    double.fault(Fault::ServerError);
    let e = api
        .invoke_export("e1", &Value::Null, &Value::Null)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "integrator_unavailable");
    assert_eq!(double.received().len(), 1, "a POST is not sent twice");
}

#[tokio::test]
async fn a_reset_connection_is_retried_for_a_get() {
    let (double, api) = setup(10.0).await;
    double.answer("GET", "/v1/jobs/j1", 200, json!({"_id": "j1"}));
    double.fault(Fault::Reset);
    assert_eq!(api.job("j1").await.unwrap()["_id"], "j1");
}

#[tokio::test]
async fn the_client_bucket_refuses_a_request_it_cannot_place_before_the_deadline() {
    let double = IntegratorDouble::start(0, None).await.unwrap();
    let api = IntegratorApi::new(&double.url()).with_bucket(LeakyBucket::new(2, 1));
    let client = api.client(http(0.5), Some(TOKEN.into()));
    client.token_info().await.unwrap();
    client.token_info().await.unwrap();
    // A third would wait a second for a place: past the deadline, so it is not sent.
    let e = client.token_info().await.unwrap_err();
    assert_eq!(e.code(), "integrator_rate_limited");
    assert_eq!(double.received().len(), 2);
    // The bucket is the process's: another call's client shares it.
    let other = api.client(http(0.5), Some(TOKEN.into()));
    assert!(other.token_info().await.is_err());
}

#[tokio::test]
async fn the_token_never_reaches_a_log_line_or_an_error() {
    use crate::telemetry::{LogCapture, subscriber_for};
    let logs = LogCapture::new();
    let _guard = tracing::subscriber::set_default(subscriber_for(logs.clone(), false, "debug"));
    let mut messages = Vec::new();
    let (double, api) = setup(2.0).await;
    // The other tests run the same call sites on threads without a subscriber, concurrently,
    // and tracing may cache a call site's interest as "never" meanwhile: recompute it.
    tracing::callsite::rebuild_interest_cache();
    double.answer(
        "GET",
        "/v1/exports/echo",
        400,
        json!({"errors": [{"code": "bad", "message": format!("token {TOKEN} rejected")}]}),
    );
    double.answer(
        "GET",
        "/v1/exports/raw",
        500,
        json!(format!("echo {TOKEN}")),
    );
    messages.push(api.export("echo").await.unwrap_err().to_string());
    messages.push(api.export("raw").await.unwrap_err().to_string());
    double.fault(Fault::Garbage);
    messages.push(api.export("e1").await.unwrap_err().to_string());
    double.fault(Fault::Stall(Duration::from_secs(10)));
    messages.push(api.export("e1").await.unwrap_err().to_string());
    messages.push(format!("{api:?}"));
    assert!(double.received().iter().all(|r| r.token_ok));
    let logs = logs.contents();
    assert!(logs.contains("HTTP GET http://127.0.0.1:"), "{logs}");
    assert!(!logs.contains(TOKEN), "{logs}");
    for m in &messages {
        assert!(!m.contains(TOKEN), "{m}");
    }
    assert!(messages[0].contains("[REDACTED]"), "{}", messages[0]);
}

#[tokio::test]
async fn the_double_answers_the_calls_a_fixture_recorded() {
    let double = IntegratorDouble::start(0, None).await.unwrap();
    let fixture = json!({"http": [
        {"request": {"method": "POST", "url": "https://api.integrator.io/v1/exports/t1/clone"},
         "response": {"status": 201, "body": {"_id": "copy"}}},
        {"request": {"method": "GET", "url": "http://crm.test/customers/7"},
         "response": {"status": 200, "body": {}}}
    ]});
    assert_eq!(
        double.answer_from_fixture(&fixture),
        1,
        "only integrator.io calls"
    );
    let api = IntegratorApi::new(&double.url()).client(http(5.0), Some(TOKEN.into()));
    let copy = api.clone_export("t1", &json!({})).await.unwrap();
    assert_eq!(copy, json!({"_id": "copy"}));
}
