//! The schemes through the whole request pipeline: each provider's signature, computed by its
//! documented algorithm (with the provider's published example where there is one, in each
//! scheme's own tests), is accepted; tampered, expired and replayed requests are refused with a
//! 401 that names no check; the sender's id deduplicates.

use super::{basic, github, shopify, slack, stripe};
use crate::incoming::{IncomingApp, IncomingConfig, IncomingStores, StaticResolver};
use crate::store::dedup::{Dedup, MemoryDedup};
use crate::store::queue::MemoryQueue;
use crate::transport::http::HttpRequest;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use serde_json::{Value, json};
use std::sync::Arc;

const STRIPE: &str = "whsec_stripe_test_secret_0123456789";
const GITHUB: &str = "github-webhook-secret-0123456789";
const SHOPIFY: &str = "shpss_shopify_client_secret_0123456789";
const SLACK: &str = "8f742231b10e8888abcd99yyyzzz85a5";
const GENERIC: &str = "generic-shared-secret-1234";
const PASSWORD: &str = "correct horse battery";
const API_KEY: &str = "key-0123456789abcdef";

const SEED: [u8; 32] = [42; 32];

fn config() -> IncomingConfig {
    let public = super::standard_webhooks::public_key_of(&SEED);
    IncomingConfig::from_json(&format!(
        r#"{{
          "stripe":  {{"auth": {{"type": "stripe", "secret": "{STRIPE}"}}}},
          "github":  {{"auth": {{"type": "github", "secret": "{GITHUB}"}}}},
          "shopify": {{"auth": {{"type": "shopify", "secret": {{"secret": "shopify-app"}}}}}},
          "slack":   {{"auth": {{"type": "slack", "secret": "{SLACK}"}}}},
          "generic": {{"auth": {{"type": "hmac", "header": "x-signature", "algorithm": "sha1",
                                 "encoding": "base64", "prefix": "sha1=",
                                 "content": "{{timestamp}}:{{id}}:{{body}}",
                                 "timestampHeader": "x-ts", "idHeader": "x-id",
                                 "secret": "{GENERIC}"}}}},
          "basic":   {{"auth": {{"type": "basic", "username": "celigo", "password": "{PASSWORD}"}}}},
          "key":     {{"auth": {{"type": "apiKey", "header": "x-api-key", "key": "{API_KEY}"}}}},
          "query":   {{"auth": {{"type": "apiKey", "query": "token", "key": "{API_KEY}"}}}},
          "sw":      {{"auth": {{"type": "standardWebhooks", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}}}},
          "swpk":    {{"auth": {{"type": "standardWebhooks", "secret": "{public}"}}}}
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
    let stores = IncomingStores::new(
        Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
        queue.clone(),
    )
    .with_resolver(Arc::new(StaticResolver::new().with("shopify-app", SHOPIFY)));
    Harness {
        app: IncomingApp::new(config(), stores).unwrap(),
        queue,
    }
}

fn now() -> u64 {
    crate::time::EpochSeconds::now().0
}

async fn post_to(
    app: &IncomingApp,
    ep: &str,
    headers: &[(&str, String)],
    query: Option<&str>,
    body: &str,
) -> (u16, Value, HeaderMap) {
    let mut h = HeaderMap::new();
    for (k, v) in headers {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let req = HttpRequest {
        method: Method::POST,
        path: String::new(),
        query: query.map(str::to_owned),
        headers: h,
        body: Bytes::copy_from_slice(body.as_bytes()),
        deadline: None,
        request_id: Some("req-1".into()),
    };
    let r = app.handle(ep, req).await;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.into_body();
    let v = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, v, headers)
}

async fn post(app: &IncomingApp, ep: &str, headers: &[(&str, String)], body: &str) -> (u16, Value) {
    let (s, v, _) = post_to(app, ep, headers, None, body).await;
    (s, v)
}

fn json() -> (&'static str, String) {
    ("content-type", "application/json".into())
}

fn sent(q: &MemoryQueue) -> Vec<Value> {
    q.sent()
        .iter()
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect()
}

/// A refusal says 401 and nothing about which check failed.
fn refused(s: u16, v: &Value) {
    assert_eq!(s, 401, "{v}");
    assert_eq!(
        v["errors"][0]["message"], "The request is not authenticated for this endpoint.",
        "{v}"
    );
}

#[tokio::test]
async fn stripe_signatures_are_accepted_once_and_the_event_id_deduplicates() {
    let h = harness();
    let body = r#"{"id":"evt_1","object":"event","type":"invoice.paid"}"#;
    let t = now();
    let sig = stripe::sign(STRIPE.as_bytes(), t, body.as_bytes());
    let headers = [json(), ("stripe-signature", sig.clone())];
    let (s, v) = post(&h.app, "stripe", &headers, body).await;
    assert_eq!(s, 200, "{v}");
    // The same signed message again: a replay.
    let (s, v) = post(&h.app, "stripe", &headers, body).await;
    refused(s, &v);
    // Stripe's retry of the event is signed anew: a duplicate of evt_1.
    let retry = stripe::sign(STRIPE.as_bytes(), t + 1, body.as_bytes());
    let (s, _) = post(
        &h.app,
        "stripe",
        &[json(), ("stripe-signature", retry)],
        body,
    )
    .await;
    assert_eq!(s, 204);
    // Tampered, expired, wrong secret, missing.
    let other = r#"{"id":"evt_2","object":"event","type":"invoice.paid"}"#;
    let (s, v) = post(&h.app, "stripe", &headers, other).await;
    refused(s, &v);
    let old = stripe::sign(STRIPE.as_bytes(), t - 301, other.as_bytes());
    let (s, v) = post(
        &h.app,
        "stripe",
        &[json(), ("stripe-signature", old)],
        other,
    )
    .await;
    refused(s, &v);
    let forged = stripe::sign(b"whsec_not_the_endpoint_secret", t, other.as_bytes());
    let (s, v) = post(
        &h.app,
        "stripe",
        &[json(), ("stripe-signature", forged)],
        other,
    )
    .await;
    refused(s, &v);
    let (s, v) = post(&h.app, "stripe", &[json()], other).await;
    refused(s, &v);
    let q = sent(&h.queue);
    assert_eq!(q.len(), 1);
    assert_eq!(q[0]["auth"], json!({"type": "stripe"}));
    assert_eq!(q[0]["event"]["id"], "evt_1");
}

#[tokio::test]
async fn github_and_shopify_signatures_are_checked_and_a_redelivery_is_a_duplicate() {
    let h = harness();
    let body = r#"{"action":"opened","number":1}"#;
    let sig = github::sign(GITHUB.as_bytes(), body.as_bytes());
    let headers = [
        json(),
        ("x-hub-signature-256", sig.clone()),
        (
            "x-github-delivery",
            "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
        ),
    ];
    assert_eq!(post(&h.app, "github", &headers, body).await.0, 200);
    // A redelivery carries the same delivery id.
    assert_eq!(
        post(&h.app, "github", &headers, body).await,
        (204, Value::Null)
    );
    let (s, v) = post(
        &h.app,
        "github",
        &headers,
        r#"{"action":"closed","number":1}"#,
    )
    .await;
    refused(s, &v);

    let body = r#"{"id":820982911946154508}"#;
    let sig = shopify::sign(SHOPIFY.as_bytes(), body.as_bytes());
    let headers = [
        json(),
        ("x-shopify-hmac-sha256", sig),
        (
            "x-shopify-webhook-id",
            "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043".into(),
        ),
    ];
    assert_eq!(post(&h.app, "shopify", &headers, body).await.0, 200);
    assert_eq!(post(&h.app, "shopify", &headers, body).await.0, 204);
    let (s, v) = post(&h.app, "shopify", &headers, r#"{"id":1}"#).await;
    refused(s, &v);
    let q = sent(&h.queue);
    assert_eq!(q.len(), 2);
    assert_eq!(q[1]["auth"], json!({"type": "shopify"}));
}

#[tokio::test]
async fn slack_forms_are_verified_decoded_and_url_verification_is_answered() {
    let h = harness();
    let t = now();
    let form = "token=x&team_id=T1&command=%2Fhello&payload=%7B%22type%22%3A%22block_actions%22%7D";
    let sig = slack::sign(SLACK.as_bytes(), t, form.as_bytes());
    let headers = [
        (
            "content-type",
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("x-slack-request-timestamp", t.to_string()),
        ("x-slack-signature", sig),
    ];
    let (s, v) = post(&h.app, "slack", &headers, form).await;
    assert_eq!(s, 200, "{v}");
    let q = sent(&h.queue);
    assert_eq!(q[0]["event"]["command"], "/hello");
    assert_eq!(q[0]["event"]["payload.type"], "block_actions");
    // Replayed, stale, tampered.
    let (s, v) = post(&h.app, "slack", &headers, form).await;
    refused(s, &v);
    let stale = slack::sign(SLACK.as_bytes(), t - 600, form.as_bytes());
    let (s, v) = post(
        &h.app,
        "slack",
        &[
            headers[0].clone(),
            ("x-slack-request-timestamp", (t - 600).to_string()),
            ("x-slack-signature", stale),
        ],
        form,
    )
    .await;
    refused(s, &v);
    let (s, v) = post(&h.app, "slack", &headers, "token=y").await;
    refused(s, &v);
    // The Events API's URL check.
    let check = r#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
    let sig = slack::sign(SLACK.as_bytes(), t, check.as_bytes());
    let (s, v) = post(
        &h.app,
        "slack",
        &[
            json(),
            ("x-slack-request-timestamp", t.to_string()),
            ("x-slack-signature", sig),
        ],
        check,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        v,
        json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"})
    );
    assert_eq!(h.queue.sent().len(), 1, "the URL check is not queued");
}

#[tokio::test]
async fn a_spelled_out_hmac_is_verified_over_its_template() {
    let h = harness();
    let body = r#"{"a":1}"#;
    let t = now().to_string();
    let mac = super::common::mac(
        ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        GENERIC.as_bytes(),
        &[t.as_bytes(), b":m-1:", body.as_bytes()],
    );
    use base64::Engine;
    let sig = format!(
        "sha1={}",
        base64::engine::general_purpose::STANDARD.encode(mac)
    );
    let headers = [
        json(),
        ("x-signature", sig),
        ("x-ts", t.clone()),
        ("x-id", "m-1".to_owned()),
    ];
    assert_eq!(post(&h.app, "generic", &headers, body).await.0, 200);
    // Replayed within the window; then another id under the same signature.
    refused_pair(post(&h.app, "generic", &headers, body).await);
    let mut other = headers.clone();
    other[3].1 = "m-2".into();
    refused_pair(post(&h.app, "generic", &other, body).await);
}

fn refused_pair((s, v): (u16, Value)) {
    refused(s, &v);
}

#[tokio::test]
async fn basic_and_api_keys_are_compared_and_refused_without_detail() {
    let h = harness();
    let good = basic::credentials("celigo", PASSWORD);
    let (s, v) = post(&h.app, "basic", &[json(), ("authorization", good)], "{}").await;
    assert_eq!(s, 200, "{v}");
    let bad = basic::credentials("celigo", "correct horse battery!");
    let (s, v, headers) = post_to(
        &h.app,
        "basic",
        &[json(), ("authorization", bad)],
        None,
        "{}",
    )
    .await;
    refused(s, &v);
    assert!(
        headers
            .get("www-authenticate")
            .is_some_and(|v| v.to_str().unwrap().starts_with("Basic"))
    );
    let (s, v) = post(
        &h.app,
        "basic",
        &[json(), ("authorization", "Basic !!".into())],
        "{}",
    )
    .await;
    refused(s, &v);

    let (s, _) = post(
        &h.app,
        "key",
        &[json(), ("x-api-key", API_KEY.into())],
        "{}",
    )
    .await;
    assert_eq!(s, 200);
    let (s, v) = post(
        &h.app,
        "key",
        &[json(), ("x-api-key", "key-0123456789abcdeg".into())],
        "{}",
    )
    .await;
    refused(s, &v);
    let (s, _, _) = post_to(
        &h.app,
        "query",
        &[json()],
        Some(&format!("token={API_KEY}")),
        "{}",
    )
    .await;
    assert_eq!(s, 200);
    let (s, v, _) = post_to(&h.app, "query", &[json()], Some("token=nope"), "{}").await;
    refused(s, &v);
    let q = sent(&h.queue);
    assert_eq!(q[0]["auth"], json!({"type": "basic", "username": "celigo"}));
    assert_eq!(q[1]["auth"], json!({"type": "apiKey"}));
    // The key never reaches the queued message.
    assert!(!serde_json::to_string(&q).unwrap().contains(API_KEY));
}

#[tokio::test]
async fn standard_webhooks_is_todays_hmac_under_its_own_name() {
    let h = harness();
    let key = super::standard_webhooks::key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        .unwrap();
    let t = now();
    let sig = super::standard_webhooks::sign(&key, "msg_1", t, b"{}");
    let headers = [
        json(),
        ("webhook-id", "msg_1".into()),
        ("webhook-timestamp", t.to_string()),
        ("webhook-signature", sig),
    ];
    assert_eq!(post(&h.app, "sw", &headers, "{}").await.0, 200);
    // Its refusals keep today's messages.
    let (s, v) = post(&h.app, "sw", &headers, "{}").await;
    assert_eq!(s, 401);
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already received"),
        "{v}"
    );
    assert_eq!(sent(&h.queue)[0]["auth"], json!({"type": "hmac"}));
}

#[test]
fn every_sender_is_configurable_and_bad_settings_are_refused_at_start_up() {
    let stores = || {
        IncomingStores::new(
            Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
            Arc::new(MemoryQueue::default()),
        )
    };
    for bad in [
        // Too short for the scheme, or empty.
        r#"{"a": {"auth": {"type": "stripe", "secret": "whsec_short"}}}"#,
        r#"{"a": {"auth": {"type": "github", "secret": "   "}}}"#,
        r#"{"a": {"auth": {"type": "basic", "username": "u", "password": "short"}}}"#,
        r#"{"a": {"auth": {"type": "apiKey", "header": "x-k", "key": "0123"}}}"#,
        r#"{"a": {"auth": {"type": "standardWebhooks", "secret": "whsec_"}}}"#,
    ] {
        let c = IncomingConfig::from_json(bad).unwrap();
        let e = IncomingApp::new(c, stores()).unwrap_err().to_string();
        assert!(e.contains("endpoint \"a\""), "{bad}: {e}");
    }
    for bad in [
        r#"{"a": {"auth": {"type": "strype", "secret": "0123456789abcdef"}}}"#,
        r#"{"a": {"auth": {"type": "github", "secret": "0123456789abcdef", "toleranceSecs": 5}}}"#,
        r#"{"a": {"auth": {"type": "slack", "secret": "0123456789abcdef", "toleranceSecs": 0}}}"#,
        r#"{"a": {"auth": {"type": "hmac", "secret": "0123456789abcdef", "algorithm": "sha1"}}}"#,
        r#"{"a": {"auth": {"type": "hmac", "header": "x-s", "secret": "0123456789abcdef", "content": "{timestamp}.{body}"}}}"#,
        r#"{"a": {"auth": {"type": "hmac", "header": "x-s", "secret": "0123456789abcdef", "content": "{bodi}"}}}"#,
        r#"{"a": {"auth": {"type": "hmac", "header": "x-s", "secret": "0123456789abcdef", "algorithm": "md5"}}}"#,
        r#"{"a": {"auth": {"type": "basic", "username": "a:b", "password": "0123456789"}}}"#,
        r#"{"a": {"auth": {"type": "apiKey", "header": "x-k", "query": "k", "key": "0123456789abcdef"}}}"#,
        r#"{"a": {"auth": {"type": "apiKey", "key": "0123456789abcdef"}}}"#,
    ] {
        assert!(IncomingConfig::from_json(bad).is_err(), "{bad}");
    }
    // What a new user tries first: a Stripe endpoint.
    let c = IncomingConfig::from_json(
        r#"{"s": {"auth": {"type": "stripe", "secret": {"secret": "stripe-endpoint"}}}}"#,
    );
    assert!(c.is_ok(), "{:?}", c.err());
}

#[tokio::test]
async fn standard_webhooks_v1a_ed25519_signatures_are_accepted_with_a_whpk_key() {
    let h = harness();
    let t = now();
    let body = r#"{"type":"invoice.paid"}"#;
    let headers = |sig: String| {
        [
            json(),
            ("webhook-id", "msg_2".to_owned()),
            ("webhook-timestamp", t.to_string()),
            ("webhook-signature", sig),
        ]
    };
    let good = super::standard_webhooks::sign_ed25519(&SEED, "msg_2", t, body.as_bytes());
    let forged = super::standard_webhooks::sign_ed25519(&[1; 32], "msg_2", t, body.as_bytes());
    assert_eq!(post(&h.app, "swpk", &headers(forged), body).await.0, 401);
    assert_eq!(
        post(&h.app, "swpk", &headers(good.clone()), body).await.0,
        200
    );
    // Replayed; tampered.
    assert_eq!(
        post(&h.app, "swpk", &headers(good.clone()), body).await.0,
        401
    );
    assert_eq!(post(&h.app, "swpk", &headers(good), "{}").await.0, 401);
    assert_eq!(h.queue.sent().len(), 1);
}

/// Each header a scheme reads is read once: sent twice (even with the valid value first) it is
/// refused, as are garbage values; nothing is queued.
#[tokio::test]
async fn repeated_or_garbage_auth_headers_are_refused_by_every_new_scheme() {
    let h = harness();
    let t = now();
    let body = r#"{"id":"evt_9"}"#;
    let stripe_sig = stripe::sign(STRIPE.as_bytes(), t, body.as_bytes());
    let slack_sig = slack::sign(SLACK.as_bytes(), t, body.as_bytes());
    let github_sig = github::sign(GITHUB.as_bytes(), body.as_bytes());
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "stripe",
            vec![
                ("stripe-signature", stripe_sig.clone()),
                ("stripe-signature", stripe_sig),
            ],
        ),
        (
            "slack",
            vec![
                ("x-slack-request-timestamp", t.to_string()),
                ("x-slack-signature", slack_sig.clone()),
                ("x-slack-signature", slack_sig),
            ],
        ),
        (
            "github",
            vec![
                ("x-hub-signature-256", github_sig.clone()),
                ("x-hub-signature-256", github_sig),
            ],
        ),
        (
            "basic",
            vec![
                ("authorization", basic::credentials("celigo", PASSWORD)),
                ("authorization", basic::credentials("celigo", PASSWORD)),
            ],
        ),
        (
            "stripe",
            vec![("stripe-signature", "t=99999999999999999999999,v1=".into())],
        ),
        (
            "slack",
            vec![
                ("x-slack-request-timestamp", "-1".into()),
                ("x-slack-signature", "v0=é".into()),
            ],
        ),
        (
            "generic",
            vec![
                ("x-signature", "sha1=%%%".into()),
                ("x-ts", "1e9".into()),
                ("x-id", "".into()),
            ],
        ),
        ("basic", vec![("authorization", "Basic ".into())]),
    ];
    for (ep, mut headers) in cases {
        headers.insert(0, json());
        let (s, v) = post(&h.app, ep, &headers, body).await;
        refused(s, &v);
    }
    // The valid request alone is accepted.
    let sig = stripe::sign(STRIPE.as_bytes(), t, body.as_bytes());
    assert_eq!(
        post(&h.app, "stripe", &[json(), ("stripe-signature", sig)], body)
            .await
            .0,
        200
    );
    assert_eq!(h.queue.sent().len(), 1);
}
