//! Signatures made by the senders' own published libraries (`provider_vectors.json`, written by
//! `scripts/provider-vectors.py` with Stripe's `stripe`, `standardwebhooks` and Slack's
//! `slack_sdk`, and `scripts/provider-vectors-github.mjs` with `@octokit/webhooks-methods`):
//! each is accepted, and refused once tampered with or expired.

use super::{AuthFailure, github, slack, standard_webhooks, stripe};
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use std::time::Duration;

const TOL: Duration = Duration::from_secs(300);

fn vectors() -> Value {
    serde_json::from_str(include_str!("provider_vectors.json")).expect("vectors")
}

fn text<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str().expect(k)
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    h
}

#[test]
fn signatures_made_by_the_senders_libraries_are_accepted_and_tampered_or_expired_ones_refused() {
    let all = vectors();

    let v = &all["stripe"];
    let (secret, body, t) = (
        text(v, "secret"),
        text(v, "body"),
        v["timestamp"].as_u64().unwrap(),
    );
    let h = headers(&[(stripe::HEADER, text(v, "header"))]);
    assert!(
        stripe::verify(&h, body.as_bytes(), secret.as_bytes(), TOL, t).is_ok(),
        "{v}"
    );
    let tampered = body.replace("evt_vector_1", "evt_vector_2");
    assert_eq!(
        stripe::verify(&h, tampered.as_bytes(), secret.as_bytes(), TOL, t).unwrap_err(),
        AuthFailure::BadSignature
    );
    assert_eq!(
        stripe::verify(&h, body.as_bytes(), secret.as_bytes(), TOL, t + 301).unwrap_err(),
        AuthFailure::StaleTimestamp
    );

    let v = &all["standardWebhooks"];
    let (body, t) = (text(v, "body"), v["timestamp"].as_u64().unwrap());
    let key = standard_webhooks::key_from_secret(text(v, "secret")).unwrap();
    let h = headers(&[
        (standard_webhooks::ID_HEADER, text(v, "id")),
        (standard_webhooks::TIMESTAMP_HEADER, &t.to_string()),
        (standard_webhooks::SIGNATURE_HEADER, text(v, "header")),
    ]);
    assert_eq!(
        standard_webhooks::verify(&h, body.as_bytes(), &key, TOL, t),
        Ok(()),
        "{v}"
    );
    assert_eq!(
        standard_webhooks::verify(&h, b"{}", &key, TOL, t),
        Err(AuthFailure::BadSignature)
    );
    assert_eq!(
        standard_webhooks::verify(&h, body.as_bytes(), &key, TOL, t + 301),
        Err(AuthFailure::StaleTimestamp)
    );

    let v = &all["slack"];
    let (secret, body, t) = (
        text(v, "secret"),
        text(v, "body"),
        v["timestamp"].as_u64().unwrap(),
    );
    let h = headers(&[
        (slack::TIMESTAMP_HEADER, &t.to_string()),
        (slack::SIGNATURE_HEADER, text(v, "header")),
    ]);
    assert!(
        slack::verify(&h, body.as_bytes(), secret.as_bytes(), TOL, t).is_ok(),
        "{v}"
    );
    assert_eq!(
        slack::verify(&h, b"token=y", secret.as_bytes(), TOL, t).unwrap_err(),
        AuthFailure::BadSignature
    );
    assert_eq!(
        slack::verify(&h, body.as_bytes(), secret.as_bytes(), TOL, t - 301).unwrap_err(),
        AuthFailure::StaleTimestamp
    );

    let v = &all["github"];
    let (secret, body) = (text(v, "secret"), text(v, "body"));
    let h = headers(&[(github::HEADER, text(v, "header"))]);
    assert_eq!(
        github::verify(&h, body.as_bytes(), secret.as_bytes()),
        Ok(()),
        "{v}"
    );
    assert_eq!(
        github::verify(&h, b"{\"action\":\"closed\"}", secret.as_bytes()),
        Err(AuthFailure::BadSignature)
    );
}
