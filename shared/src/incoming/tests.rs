//! Unit tests of the request pipeline with in-memory (and deliberately failing) services.

use super::*;
use crate::store::dedup::{DedupStore, MemoryDedup, Sighting, StoreError};
use crate::store::queue::{MemoryQueue, OutMessage, QueueError, QueueStore};
use async_trait::async_trait;
use auth::replay::replay_secs_left;
use http::{HeaderValue, Method, header};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

const HMAC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const JWT_SECRET: &str = "jwt-shared-secret-for-tests-only";

fn config() -> IncomingConfig {
    IncomingConfig::from_json(&format!(
        r#"{{
          "demo":    {{"auth": "none", "dedup": "body"}},
          "open":    {{}},
          "fields":  {{"dedup": {{"fields": ["order.id", "lines.0.sku"], "headers": ["x-shop"]}},
                      "forwardHeaders": ["x-shop", "authorization", "x-api-key", "webhook-signature"]}},
          "caller":  {{"dedup": "header"}},
          "optin":   {{"dedup": {{"fields": ["order.id"], "callerHeader": "x-dedup-key"}}}},
          "hmac":    {{"auth": {{"type": "hmac", "secret": "{HMAC_SECRET}"}}, "dedup": {{"headers": ["webhook-id"]}}}},
          "jwt":     {{"auth": {{"type": "jwt", "algorithm": "HS256", "secret": "{JWT_SECRET}", "audience": "ext"}}}},
          "once":    {{"auth": {{"type": "jwt", "algorithm": "HS256", "secret": "{JWT_SECRET}", "jtiReplay": true}}}},
          "named":   {{"auth": {{"type": "hmac", "secret": {{"secret": "named-hook"}}}}}},
          "missing": {{"auth": {{"type": "hmac", "secret": {{"secret": "nope"}}}}}}
        }}"#
    ))
    .unwrap()
}

struct Harness {
    app: IncomingApp,
    queue: Arc<MemoryQueue>,
}

fn harness() -> Harness {
    let queue = Arc::new(MemoryQueue::default());
    let services = IncomingStores::new(
        Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
        queue.clone(),
    )
    .with_resolver(Arc::new(
        StaticResolver::new().with("named-hook", HMAC_SECRET),
    ));
    Harness {
        app: IncomingApp::new(config(), services).unwrap(),
        queue,
    }
}

fn request(headers: &[(&str, &str)], body: &[u8]) -> HttpRequest {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    HttpRequest {
        method: Method::POST,
        path: String::new(),
        query: None,
        headers: h,
        body: Bytes::copy_from_slice(body),
        deadline: None,
        request_id: Some("req-1".into()),
    }
}

const JSON: (&str, &str) = ("content-type", "application/json");

async fn post(app: &IncomingApp, ep: &str, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let r = app.handle(ep, request(headers, body.as_bytes())).await;
    let status = r.status().as_u16();
    let body = r.into_body();
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, v)
}

fn sent(q: &MemoryQueue) -> Vec<Value> {
    q.sent()
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect()
}

#[tokio::test]
async fn demo_accepts_then_answers_204_for_the_same_body() {
    let h = harness();
    let (s, v) = post(&h.app, "demo", &[JSON], r#"{"a": 1, "b": {"c": 2}}"#).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["status"], "accepted");
    assert_eq!(v["id"], "local-1");
    assert_eq!(v["dedupKey"].as_str().map(str::len), Some(64));
    // Same content, other key order and whitespace: a duplicate.
    let (s, v) = post(&h.app, "demo", &[JSON], r#"{"b":{"c":2},"a":1}"#).await;
    assert_eq!((s, v), (204, Value::Null));
    // A different body is new.
    let (s, _) = post(&h.app, "demo", &[JSON], r#"{"a": 2}"#).await;
    assert_eq!(s, 200);
    assert_eq!(h.queue.sent().len(), 2);
}

#[tokio::test]
async fn the_204_has_no_body_and_no_content_type() {
    let h = harness();
    let _ = h.app.handle("demo", request(&[JSON], b"{}")).await;
    let r = h.app.handle("demo", request(&[JSON], b"{}")).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(r.body().is_empty());
    assert!(r.headers().get(header::CONTENT_TYPE).is_none());
}

#[tokio::test]
async fn the_queued_message_is_flattened_and_carries_no_secrets() {
    let h = harness();
    let body =
        r#"{"order": {"id": 7, "tags": [], "meta": {}}, "lines": [{"sku": "A-1", "qty": 2}]}"#;
    let (s, v) = post(
        &h.app,
        "fields",
        &[
            JSON,
            ("x-shop", "s1"),
            ("authorization", "Bearer secret-token"),
            ("x-api-key", "k"),
            ("webhook-signature", "v1,abc"),
            ("user-agent", "not-forwarded-here"),
        ],
        body,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let m = &sent(&h.queue)[0];
    assert_eq!(m["endpoint"], "fields");
    assert_eq!(m["requestId"], "req-1");
    assert_eq!(m["dedupKey"], v["dedupKey"]);
    assert_eq!(m["auth"], json!({"type": "none"}));
    assert_eq!(m["headers"], json!({"x-shop": "s1"}));
    assert_eq!(
        m["event"],
        json!({"order.id": 7, "order.tags": [], "order.meta": {}, "lines.0.sku": "A-1", "lines.0.qty": 2})
    );
    let received = m["receivedAt"].as_str().unwrap();
    assert!(
        received.ends_with('Z') && received.len() == 24,
        "{received}"
    );
    let text = &h.queue.sent()[0].body;
    assert!(
        !text.contains("secret-token") && !text.contains("v1,abc"),
        "{text}"
    );
}

#[tokio::test]
async fn dedup_on_selected_fields_and_headers() {
    let h = harness();
    let a = r#"{"order": {"id": 7}, "lines": [{"sku": "A-1"}], "note": "first"}"#;
    let b = r#"{"order": {"id": 7}, "lines": [{"sku": "A-1"}], "note": "second"}"#;
    assert_eq!(
        post(&h.app, "fields", &[JSON, ("x-shop", "s1")], a).await.0,
        200
    );
    // Unselected fields differ: still a duplicate.
    assert_eq!(
        post(&h.app, "fields", &[JSON, ("x-shop", "s1")], b).await.0,
        204
    );
    // A selected header differs: new.
    assert_eq!(
        post(&h.app, "fields", &[JSON, ("x-shop", "s2")], b).await.0,
        200
    );
    // None of the selected values present: not deduplicated at all.
    for _ in 0..2 {
        let (s, v) = post(&h.app, "fields", &[JSON], r#"{"other": 1}"#).await;
        assert_eq!(s, 200);
        assert_eq!(v["dedupKey"], Value::Null);
    }
}

#[tokio::test]
async fn the_caller_header_overrides_the_selection() {
    let h = harness();
    let k = ("x-dedup-key", "evt-42");
    // Not opted in ("fields"): a caller's key is ignored, so a caller cannot burn keys in
    // advance. Opted in ("optin", `callerHeader`): the caller's key overrides the selection.
    for (endpoint, second) in [("fields", 200), ("optin", 204)] {
        for (body, want) in [
            (r#"{"order": {"id": 1}}"#, 200),
            (r#"{"order": {"id": 2}}"#, second),
        ] {
            assert_eq!(
                post(&h.app, endpoint, &[JSON, k], body).await.0,
                want,
                "{endpoint}"
            );
        }
    }
    // "dedup": "header": only requests with the header are deduplicated.
    assert_eq!(
        post(&h.app, "caller", &[JSON, k], r#"{"x": 1}"#).await.0,
        200
    );
    assert_eq!(
        post(&h.app, "caller", &[JSON, k], r#"{"x": 2}"#).await.0,
        204
    );
    assert_eq!(post(&h.app, "caller", &[JSON], r#"{"x": 1}"#).await.0, 200);
    assert_eq!(post(&h.app, "caller", &[JSON], r#"{"x": 1}"#).await.0, 200);
    // Keys are scoped by endpoint: the same caller key elsewhere is new.
    assert_eq!(post(&h.app, "demo", &[JSON, k], r#"{"x": 1}"#).await.0, 200);
}

#[tokio::test]
async fn without_dedup_every_request_is_accepted() {
    let h = harness();
    for i in 1..=3 {
        let (s, v) = post(&h.app, "open", &[JSON], r#"{"a": 1}"#).await;
        assert_eq!(s, 200);
        assert_eq!(v["id"], format!("local-{i}"));
        assert_eq!(v["dedupKey"], Value::Null);
    }
}

fn assert_error(status: u16, v: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{v}");
    assert_eq!(v["errors"][0]["code"], want_code, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

#[tokio::test]
async fn json_only() {
    let h = harness();
    for headers in [
        vec![],
        vec![("content-type", "text/plain")],
        vec![("content-type", "multipart/form-data; boundary=x")],
        vec![("content-type", "application/xml")],
    ] {
        let (s, v) = post(&h.app, "demo", &headers, r#"{"a": 1}"#).await;
        assert_error(s, &v, 415, "unsupported_media_type");
    }
    let (s, v) = post(
        &h.app,
        "demo",
        &[("content-type", "application/json; charset=latin1")],
        "{}",
    )
    .await;
    assert_error(s, &v, 415, "unsupported_charset");
    let (s, v) = post(&h.app, "demo", &[JSON, ("content-encoding", "gzip")], "{}").await;
    assert_error(s, &v, 415, "unsupported_encoding");
    for ct in [
        "application/json; charset=UTF-8",
        "application/cloudevents+json",
        "Application/JSON",
    ] {
        let (s, v) = post(&h.app, "open", &[("content-type", ct)], "{}").await;
        assert_eq!(s, 200, "{ct}: {v}");
    }
    assert!(h.queue.sent().len() == 3);
}

#[tokio::test]
async fn malformed_and_non_object_bodies_are_400() {
    let h = harness();
    for body in [
        "{",
        "{\"a\": }",
        "",
        "   ",
        "[1, 2]",
        "\"text\"",
        "42",
        "null",
        "true",
    ] {
        let (s, v) = post(&h.app, "demo", &[JSON], body).await;
        assert_error(s, &v, 400, "invalid_json");
    }
    assert!(h.queue.sent().is_empty());
}

#[tokio::test]
async fn unknown_endpoints_are_404() {
    let h = harness();
    let (s, v) = post(&h.app, "nope", &[JSON], "{}").await;
    assert_error(s, &v, 404, "not_found");
    assert_eq!(
        v["errors"][0]["message"],
        "No incoming endpoint is named \"nope\"."
    );
    let (s, v) = post(&h.app, "demo/extra", &[JSON], "{}").await;
    assert_error(s, &v, 404, "not_found");
    assert_eq!(v["errors"][0]["message"], "No such incoming endpoint.");
}

fn hmac_headers(body: &str, secret: &str, ts: u64) -> Vec<(String, String)> {
    let key = signature::key_from_secret(secret).unwrap();
    vec![
        ("content-type".into(), "application/json".into()),
        ("webhook-id".into(), "msg_1".into()),
        ("webhook-timestamp".into(), ts.to_string()),
        (
            "webhook-signature".into(),
            signature::sign(&key, "msg_1", ts, body.as_bytes()),
        ),
    ]
}

fn now() -> u64 {
    crate::time::EpochSeconds::now().0
}

async fn post_owned(
    app: &IncomingApp,
    ep: &str,
    headers: &[(String, String)],
    body: &str,
) -> (u16, Value) {
    let h: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    post(app, ep, &h, body).await
}

#[tokio::test]
async fn hmac_endpoints_verify_standard_webhooks_signatures() {
    let h = harness();
    let body = r#"{"type": "order.created", "id": 1}"#;
    let (s, v) = post_owned(
        &h.app,
        "hmac",
        &hmac_headers(body, HMAC_SECRET, now()),
        body,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    // The sender's retry (same webhook-id, signed anew at a later time) is a duplicate.
    let (s, _) = post_owned(
        &h.app,
        "hmac",
        &hmac_headers(body, HMAC_SECRET, now() + 1),
        body,
    )
    .await;
    assert_eq!(s, 204);
    let m = &sent(&h.queue)[0];
    assert_eq!(m["auth"], json!({"type": "hmac"}));
    assert_eq!(m["headers"]["webhook-id"], "msg_1");
    assert!(m["headers"].get("webhook-signature").is_none());

    let (s, v) = post_owned(
        &h.app,
        "hmac",
        &hmac_headers(body, "whsec_b3RoZXI=", now()),
        body,
    )
    .await;
    assert_error(s, &v, 401, "unauthorized");
    let (s, v) = post_owned(
        &h.app,
        "hmac",
        &hmac_headers(body, HMAC_SECRET, now() - 600),
        body,
    )
    .await;
    assert_error(s, &v, 401, "unauthorized");
    let (s, v) = post(&h.app, "hmac", &[JSON], body).await;
    assert_error(s, &v, 401, "unauthorized");
    // The signature covers the exact bytes.
    let (s, v) = post_owned(
        &h.app,
        "hmac",
        &hmac_headers(body, HMAC_SECRET, now()),
        &body.replace(": ", ":"),
    )
    .await;
    assert_error(s, &v, 401, "unauthorized");
}

#[tokio::test]
async fn named_secrets_are_resolved() {
    let h = harness();
    let body = r#"{"a": 1}"#;
    let (s, v) = post_owned(
        &h.app,
        "named",
        &hmac_headers(body, HMAC_SECRET, now()),
        body,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post_owned(
        &h.app,
        "missing",
        &hmac_headers(body, HMAC_SECRET, now()),
        body,
    )
    .await;
    assert_error(s, &v, 500, "misconfigured");
}

#[tokio::test]
async fn an_unavailable_secret_store_is_a_503_and_a_missing_resolver_a_config_error() {
    let services = IncomingStores::in_memory().with_resolver(resolver_fn(|_name: String| async {
        Err(ResolveError::Unavailable("down".into()))
    }));
    let cfg = IncomingConfig::default().with(
        "named",
        EndpointConfig::open()
            .with_auth(AuthConfig::Hmac(HmacConfig::new(SecretValue::named("s")))),
    );
    let app = IncomingApp::new(cfg.clone(), services).unwrap();
    let body = r#"{"a": 1}"#;
    let (s, v) = post_owned(&app, "named", &hmac_headers(body, HMAC_SECRET, now()), body).await;
    assert_error(s, &v, 503, "unavailable");
    let e = IncomingApp::new(cfg, IncomingStores::in_memory()).unwrap_err();
    assert!(e.to_string().contains("SecretResolver"), "{e}");
}

fn jwt(claims: Value, secret: &str) -> String {
    crate::incoming::jwt_crypto::install();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// `jtiReplay`: a token is good for one request; a second use (even with another body) is
/// refused, a token without `jti` too; a new token is accepted.
#[tokio::test]
async fn single_use_tokens_are_refused_the_second_time() {
    let h = harness();
    let bearer = |jti: Option<&str>| {
        let mut claims = json!({"sub": "crm", "exp": now() + 60});
        if let Some(j) = jti {
            claims["jti"] = json!(j);
        }
        format!("Bearer {}", jwt(claims, JWT_SECRET))
    };
    let first = bearer(Some("t-1"));
    let (s, v) = post(
        &h.app,
        "once",
        &[JSON, ("authorization", &first)],
        r#"{"a": 1}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = post(
        &h.app,
        "once",
        &[JSON, ("authorization", &first)],
        r#"{"a": 2}"#,
    )
    .await;
    assert_eq!(s, 401, "{v}");
    assert!(v.to_string().contains("already used"), "{v}");
    let (s, v) = post(
        &h.app,
        "once",
        &[JSON, ("authorization", &bearer(None))],
        "{}",
    )
    .await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = post(
        &h.app,
        "once",
        &[JSON, ("authorization", &bearer(Some("t-2")))],
        "{}",
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(sent(&h.queue).len(), 2);
    // Without the option, the same token may be used again until it expires.
    let reusable = format!(
        "Bearer {}",
        jwt(
            json!({"aud": "ext", "exp": now() + 60, "jti": "t-1"}),
            JWT_SECRET
        )
    );
    for body in [r#"{"b": 1}"#, r#"{"b": 2}"#] {
        let (s, v) = post(&h.app, "jwt", &[JSON, ("authorization", &reusable)], body).await;
        assert_eq!(s, 200, "{v}");
    }
}

#[tokio::test]
async fn jwt_endpoints_need_a_valid_bearer_token() {
    let h = harness();
    let good = format!(
        "Bearer {}",
        jwt(
            json!({"sub": "crm", "aud": "ext", "exp": now() + 60}),
            JWT_SECRET
        )
    );
    let (s, v) = post(
        &h.app,
        "jwt",
        &[JSON, ("authorization", &good)],
        r#"{"a": 1}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let m = &sent(&h.queue)[0];
    assert_eq!(m["auth"], json!({"type": "jwt", "sub": "crm"}));
    assert!(!h.queue.sent()[0].body.contains(&good[7..]));

    let r = h.app.handle("jwt", request(&[JSON], b"{}")).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="incoming""#
    );

    for (token, why) in [
        (
            jwt(json!({"aud": "ext", "exp": now() - 3600}), JWT_SECRET),
            "expired",
        ),
        (jwt(json!({"aud": "ext"}), JWT_SECRET), "no exp"),
        (
            jwt(json!({"aud": "other", "exp": now() + 60}), JWT_SECRET),
            "wrong aud",
        ),
        (
            jwt(json!({"aud": "ext", "exp": now() + 60}), "wrong-secret"),
            "wrong secret",
        ),
        ("not.a.jwt".to_owned(), "garbage"),
    ] {
        let auth = format!("Bearer {token}");
        let r = h
            .app
            .handle("jwt", request(&[JSON, ("authorization", &auth)], b"{}"))
            .await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(
            r.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="incoming", error="invalid_token""#
        );
        let v: Value = serde_json::from_slice(r.body()).unwrap();
        assert_eq!(v["errors"][0]["code"], "unauthorized", "{why}");
    }
    assert_eq!(h.queue.sent().len(), 1);
}

/// A queue that fails its first `failures` sends.
#[derive(Default)]
struct FlakyQueue {
    failures: usize,
    calls: AtomicUsize,
    inner: MemoryQueue,
}

#[async_trait]
impl QueueStore for FlakyQueue {
    async fn send(&self, m: OutMessage) -> Result<String, QueueError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.failures {
            return Err(QueueError("injected".into()));
        }
        self.inner.send(m).await
    }
}

#[tokio::test]
async fn a_queue_failure_is_a_503_and_does_not_swallow_the_retry() {
    let queue = Arc::new(FlakyQueue {
        failures: 1,
        ..FlakyQueue::default()
    });
    let services = IncomingStores::new(
        Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
        queue.clone(),
    )
    .with_resolver(Arc::new(StaticResolver::new()));
    let app = IncomingApp::new(config(), services).unwrap();
    let (s, v) = post(&app, "demo", &[JSON], r#"{"a": 1}"#).await;
    assert_error(s, &v, 503, "unavailable");
    let r = app.handle("demo", request(&[JSON], br#"{"a": 1}"#)).await;
    // The retry is accepted: the key was released.
    assert_eq!(r.status(), StatusCode::OK);
    // And only then is it a duplicate.
    assert_eq!(post(&app, "demo", &[JSON], r#"{"a": 1}"#).await.0, 204);
    assert_eq!(queue.inner.sent().len(), 1);
}

struct DownStore;

#[async_trait]
impl DedupStore for DownStore {
    async fn check(&self, _: &DedupKey, _: Duration) -> Result<Sighting, StoreError> {
        Err(StoreError("injected".into()))
    }
}

#[tokio::test]
async fn a_dedup_store_failure_is_a_503_and_nothing_is_sent() {
    let queue = Arc::new(MemoryQueue::default());
    let services = IncomingStores::new(Arc::new(Dedup::new(Arc::new(DownStore))), queue.clone())
        .with_resolver(Arc::new(StaticResolver::new()));
    let app = IncomingApp::new(config(), services).unwrap();
    let r = app.handle("demo", request(&[JSON], b"{}")).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()[header::RETRY_AFTER], "5");
    assert!(queue.sent().is_empty());
    // Endpoints without dedup do not touch the store.
    assert_eq!(post(&app, "open", &[JSON], "{}").await.0, 200);
}

#[tokio::test]
async fn events_too_large_for_the_queue_are_413_before_dedup() {
    let h = harness();
    let app = h.app.with_max_message_bytes(1024);
    let big = format!(r#"{{"a": "{}"}}"#, "x".repeat(2000));
    let (s, v) = post(&app, "demo", &[JSON], &big).await;
    assert_error(s, &v, 413, "request_too_large");
    // Not marked: a smaller retry of other content is fine, and the big one again is 413, not 204.
    let (s, _) = post(&app, "demo", &[JSON], &big).await;
    assert_eq!(s, 413);
}

#[test]
fn rfc3339_formatting() {
    let t = UNIX_EPOCH + Duration::from_millis(1_614_265_330_123);
    assert_eq!(rfc3339_millis(t), "2021-02-25T15:02:10.123Z");
    assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
    assert_eq!(rfc3339_millis(leap), "2000-02-29T00:00:00.000Z");
    let end = UNIX_EPOCH + Duration::from_secs(4_102_444_799); // 2099-12-31T23:59:59
    assert_eq!(rfc3339_millis(end), "2099-12-31T23:59:59.000Z");
}

#[test]
fn secret_looking_headers_are_never_forwarded() {
    for h in [
        "authorization",
        "proxy-authorization",
        "cookie",
        "x-api-key",
        "webhook-signature",
        "x-hub-signature-256",
        "stripe-signature",
        "x-auth-token",
        "x-client-secret",
    ] {
        assert!(is_secret_header(h), "{h}");
    }
    for h in [
        "content-type",
        "user-agent",
        "x-request-id",
        "webhook-id",
        "webhook-timestamp",
    ] {
        assert!(!is_secret_header(h), "{h}");
    }
}

#[test]
fn inline_and_file_webhook_secrets_are_registered_for_redaction() {
    let dir = std::env::temp_dir().join(format!("incoming-secret-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hook.secret");
    std::fs::write(&file, "file-hook-secret-of-32-bytes-Lq2v\n").unwrap();
    let cfg = IncomingConfig::from_json(&format!(
        r#"{{"inline": {{"auth": {{"type": "hmac", "secret": "inline-hook-secret-Tb6n"}}}},
            "file": {{"auth": {{"type": "jwt", "algorithm": "HS256", "secret": {{"file": {:?}}}}}}}}}"#,
        file.display().to_string()
    ))
    .unwrap();
    let _app = IncomingApp::new(cfg, IncomingStores::in_memory()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    for s in [
        "inline-hook-secret-Tb6n",
        "file-hook-secret-of-32-bytes-Lq2v",
    ] {
        let text = format!("key was {s} here");
        let line = crate::telemetry::redact_text(&text);
        assert!(!line.contains(s), "{line}");
    }
}

#[tokio::test]
async fn a_replayed_hmac_signature_is_refused_within_the_tolerance_window() {
    let h = harness();
    let body = r#"{"type": "order.created", "id": 2}"#;
    let signed = hmac_headers(body, HMAC_SECRET, now());
    let (s, v) = post_owned(&h.app, "hmac", &signed, body).await;
    assert_eq!(s, 200, "{v}");
    // The very same signed request again (captured and replayed): refused, not queued.
    let (s, v) = post_owned(&h.app, "hmac", &signed, body).await;
    assert_error(s, &v, 401, "unauthorized");
    assert!(v.to_string().contains("already received"), "{v}");
    assert_eq!(sent(&h.queue).len(), 1);
}

/// A captured signed request replayed with one extra `webhook-id` (or any
/// other repeated signature header) is refused, not taken for a new message; so is a JWT
/// request with two `Authorization` headers.
#[tokio::test]
async fn a_repeated_authentication_header_is_refused() {
    let h = harness();
    let body = r#"{"type": "order.created", "id": 3}"#;
    let signed = hmac_headers(body, HMAC_SECRET, now());
    let (s, v) = post_owned(&h.app, "hmac", &signed, body).await;
    assert_eq!(s, 200, "{v}");
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        let mut again = signed.clone();
        again.push((name.into(), "extra".into()));
        let (s, v) = post_owned(&h.app, "hmac", &again, body).await;
        assert_error(s, &v, 401, "unauthorized");
        assert!(v.to_string().contains("more than once"), "{name}: {v}");
    }
    assert_eq!(sent(&h.queue).len(), 1);

    let token = format!(
        "Bearer {}",
        jwt(json!({"aud": "ext", "exp": now() + 60}), JWT_SECRET)
    );
    for second in [token.as_str(), "Bearer x.y.z"] {
        let (s, v) = post(
            &h.app,
            "jwt",
            &[JSON, ("authorization", &token), ("authorization", second)],
            "{}",
        )
        .await;
        assert_error(s, &v, 401, "unauthorized");
    }
    assert_eq!(sent(&h.queue).len(), 1);
}

/// A token whose `exp` is fractional (JavaScript's `Date.now() / 1000 +
/// 120`) is remembered until it expires, not only for the leeway (here 0: the old code forgot
/// it after a second).
#[tokio::test]
async fn a_single_use_token_with_a_fractional_exp_is_remembered_until_it_expires() {
    let config = IncomingConfig::from_json(&format!(
        r#"{{"once": {{"auth": {{"type": "jwt", "algorithm": "HS256", "secret": "{JWT_SECRET}",
             "jtiReplay": true, "leewaySecs": 0}}}}}}"#
    ))
    .unwrap();
    let queue = Arc::new(MemoryQueue::default());
    let app = IncomingApp::new(
        config,
        IncomingStores::new(
            Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
            queue.clone(),
        ),
    )
    .unwrap();
    let exp = now() as f64 + 120.5;
    let token = format!(
        "Bearer {}",
        jwt(json!({"exp": exp, "jti": "float-1"}), JWT_SECRET)
    );
    let (s, v) = post(&app, "once", &[JSON, ("authorization", &token)], "{}").await;
    assert_eq!(s, 200, "{v}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (s, v) = post(&app, "once", &[JSON, ("authorization", &token)], "{}").await;
    assert_eq!(s, 401, "the token is still valid, so still remembered: {v}");
    assert!(v.to_string().contains("already used"), "{v}");
    assert_eq!(queue.sent().len(), 1);
}

#[test]
fn the_replay_window_of_a_token_covers_its_exp() {
    let now = 1_767_225_000;
    assert_eq!(replay_secs_left(Some(&json!(1_767_225_600)), now), 600);
    // Rounded up: the JWT check rounds a fractional exp to the nearest second.
    assert_eq!(replay_secs_left(Some(&json!(1_767_225_600.5)), now), 601);
    assert_eq!(replay_secs_left(Some(&json!(1_767_225_600.2)), now), 601);
    // Past, absent, negative, not a number: nothing left (the leeway still applies).
    assert_eq!(replay_secs_left(Some(&json!(1_767_224_000.5)), now), 0);
    assert_eq!(replay_secs_left(None, now), 0);
    assert_eq!(replay_secs_left(Some(&json!(-5.5)), now), 0);
    assert_eq!(replay_secs_left(Some(&json!("1767225600")), now), 0);
    // Huge values saturate instead of wrapping.
    assert_eq!(replay_secs_left(Some(&json!(1e300)), now), u64::MAX - now);
}

/// The replay record does not outlive a request that was not accepted. A
/// queue failure answers 503; the sender's identical retry (same signature, same token) is
/// accepted and queued once, and only then is the very same request a replay.
#[tokio::test]
async fn a_request_that_was_not_queued_does_not_leave_its_replay_record() {
    // The first send fails, the next ones work.
    let flaky = || {
        let queue = Arc::new(FlakyQueue {
            failures: 1,
            ..FlakyQueue::default()
        });
        let services = IncomingStores::new(
            Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
            queue.clone(),
        )
        .with_resolver(Arc::new(StaticResolver::new()));
        (IncomingApp::new(config(), services).unwrap(), queue)
    };
    let (app, queue) = flaky();
    let body = r#"{"type": "order.created", "id": 4}"#;
    let signed = hmac_headers(body, HMAC_SECRET, now());
    let (s, v) = post_owned(&app, "hmac", &signed, body).await;
    assert_error(s, &v, 503, "unavailable");
    let (s, v) = post_owned(&app, "hmac", &signed, body).await;
    assert_eq!(s, 200, "the identical retry is accepted: {v}");
    let (s, v) = post_owned(&app, "hmac", &signed, body).await;
    assert_error(s, &v, 401, "unauthorized");

    assert_eq!(queue.inner.sent().len(), 1);

    let (app, queue) = flaky();
    let token = format!(
        "Bearer {}",
        jwt(json!({"exp": now() + 60, "jti": "retried"}), JWT_SECRET)
    );
    let (s, v) = post(&app, "once", &[JSON, ("authorization", &token)], "{}").await;
    assert_error(s, &v, 503, "unavailable");
    let (s, v) = post(&app, "once", &[JSON, ("authorization", &token)], "{}").await;
    assert_eq!(s, 200, "the identical retry is accepted: {v}");
    let (s, v) = post(&app, "once", &[JSON, ("authorization", &token)], "{}").await;
    assert_eq!(s, 401, "{v}");
    // A request refused after authentication (bad JSON) does not burn its signature either.
    let bad = "{not json";
    let signed = hmac_headers(bad, HMAC_SECRET, now());
    assert_eq!(post_owned(&app, "hmac", &signed, bad).await.0, 400);
    assert_eq!(post_owned(&app, "hmac", &signed, bad).await.0, 400);
    assert_eq!(queue.inner.sent().len(), 1);
}

/// A resolver over one mutable secret, counting its reads.
fn rotating_resolver(
    value: Arc<std::sync::Mutex<String>>,
    reads: Arc<AtomicUsize>,
) -> Arc<dyn SecretResolver> {
    resolver_fn(move |_name: String| {
        let value = value.lock().unwrap().clone();
        reads.fetch_add(1, Ordering::SeqCst);
        async move { Ok(secrecy::SecretString::from(value)) }
    })
}

/// An app with one endpoint, `name`, whose `auth` reads its secret from `value` (each read
/// counted in `reads`).
fn rotating_app(
    name: &str,
    auth: AuthConfig,
    value: &Arc<std::sync::Mutex<String>>,
    reads: &Arc<AtomicUsize>,
) -> IncomingApp {
    IncomingApp::new(
        IncomingConfig::default().with(name, EndpointConfig::open().with_auth(auth)),
        IncomingStores::in_memory().with_resolver(rotating_resolver(value.clone(), reads.clone())),
    )
    .unwrap()
}

/// A rotated webhook secret works at once (a signature that
/// matches no cached key makes the endpoint read its secret again), the old one stops working
/// with that re-read, and a flood of bad signatures reads the store at most once per interval.
#[tokio::test]
async fn a_rotated_webhook_secret_is_picked_up_and_a_flood_does_not_stampede_the_store() {
    const NEW: &str = "whsec_bmV3LXNlY3JldC1hZnRlci1yb3RhdGlvbg==";
    let value = Arc::new(std::sync::Mutex::new(HMAC_SECRET.to_owned()));
    let reads = Arc::new(AtomicUsize::new(0));
    let app = Arc::new(
        rotating_app(
            "named",
            AuthConfig::Hmac(HmacConfig::new(SecretValue::named("hook"))),
            &value,
            &reads,
        )
        .with_secret_reread(Duration::from_secs(60)),
    );
    let body = |n: u32| format!(r#"{{"n": {n}}}"#);
    let signed = |n: u32, secret: &str| {
        let key = signature::key_from_secret(secret).unwrap();
        let b = body(n);
        let id = format!("msg_{n}");
        let ts = now();
        vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("webhook-id".to_owned(), id.clone()),
            ("webhook-timestamp".to_owned(), ts.to_string()),
            (
                "webhook-signature".to_owned(),
                signature::sign(&key, &id, ts, b.as_bytes()),
            ),
        ]
    };
    let (s, v) = post_owned(&app, "named", &signed(1, HMAC_SECRET), &body(1)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(reads.load(Ordering::SeqCst), 1);

    *value.lock().unwrap() = NEW.to_owned();
    let (s, v) = post_owned(&app, "named", &signed(2, NEW), &body(2)).await;
    assert_eq!(s, 200, "the new secret works at once: {v}");
    assert_eq!(reads.load(Ordering::SeqCst), 2);
    let (s, v) = post_owned(&app, "named", &signed(3, HMAC_SECRET), &body(3)).await;
    assert_error(s, &v, 401, "unauthorized");

    // 50 concurrent bad signatures: no re-read (the last one was within the interval).
    let flood = (0..50u32).map(|n| {
        let app = app.clone();
        let h = signed(100 + n, "whsec_b3RoZXI=");
        async move { post_owned(&app, "named", &h, &body(100 + n)).await.0 }
    });
    let statuses = futures_util::future::join_all(flood).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(reads.load(Ordering::SeqCst), 2, "no stampede on the store");
}

/// The same for a JWT endpoint's HS256 secret; and a flood without any earlier re-read costs
/// the store exactly one read.
#[tokio::test]
async fn a_rotated_jwt_secret_is_picked_up_with_one_read_under_a_flood() {
    const OLD: &str = "jwt-secret-before-rotation-32-bytes!";
    const NEW: &str = "jwt-secret-after-the-rotation-32-bytes";
    let value = Arc::new(std::sync::Mutex::new(OLD.to_owned()));
    let reads = Arc::new(AtomicUsize::new(0));
    let app = Arc::new(rotating_app(
        "crm",
        AuthConfig::Jwt(JwtConfig::hs256(SecretValue::named("crm-jwt"))),
        &value,
        &reads,
    ));
    let bearer = |secret: &str| format!("Bearer {}", jwt(json!({"exp": now() + 60}), secret));
    let old = bearer(OLD);
    let (s, v) = post(&app, "crm", &[JSON, ("authorization", &old)], "{}").await;
    assert_eq!(s, 200, "{v}");
    let flood = (0..50).map(|_| {
        let app = app.clone();
        let t = bearer("a-forged-secret-of-thirty-two-bytes!!");
        async move {
            post(&app, "crm", &[JSON, ("authorization", &t)], "{}")
                .await
                .0
        }
    });
    let statuses = futures_util::future::join_all(flood).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(
        reads.load(Ordering::SeqCst),
        2,
        "one re-read for the whole flood"
    );
    // Within the interval since that re-read, a rotation is not seen yet...
    *value.lock().unwrap() = NEW.to_owned();
    let new = bearer(NEW);
    assert_eq!(
        post(&app, "crm", &[JSON, ("authorization", &new)], "{}")
            .await
            .0,
        401
    );
    // ...and after it, it is, and the old secret stops working.
    tokio::time::sleep(DEFAULT_SECRET_REREAD + Duration::from_millis(100)).await;
    let (s, v) = post(&app, "crm", &[JSON, ("authorization", &new)], "{}").await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        post(&app, "crm", &[JSON, ("authorization", &old)], "{}")
            .await
            .0,
        401
    );
    assert_eq!(reads.load(Ordering::SeqCst), 3);
}
