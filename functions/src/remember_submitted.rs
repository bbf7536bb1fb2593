//! `rememberSubmitted` (postSubmit): keep, on the import, which records the last batch
//! submitted, through integrator.io's state API and the call's one-time token.
//!
//! For every call it writes `PUT /v1/imports/{_importId}/state/lastSubmit` with
//!
//! ```json
//! {"ids": ["a1", "a3"], "count": 2, "at": "2026-12-07T02:10:00.000Z"}
//! ```
//!
//! `ids` are the ids of the responses whose `statusCode` is 200 (in page order; a 200 without
//! an id counts but adds no id), `count` is how many responses had 200, `at` is when the hook
//! ran (ISO-8601, UTC, milliseconds). A later hook or flow reads it back with
//! `inv.integrator().resource_state("imports", id).get("lastSubmit")`.
//!
//! It answers the `responseData` unchanged. When the state cannot be written the call fails
//! with the client's 422 (`integrator_token_missing` without a `bearerToken`,
//! `integrator_timeout`, `integrator_unauthorized`, …: see
//! `integrator_lambda::outgoing::integrator::error`), so integrator.io shows why; a call
//! without `_importId` fails `missing_import` and sends nothing.

use integrator_lambda::types::{PostSubmitOptions, SubmitResponse};
use integrator_lambda::{ExtError, ExtResult, Invocation};
use serde_json::{Value, json};

/// The state key it writes on the import.
pub const STATE_KEY: &str = "lastSubmit";

/// `rememberSubmitted`: see the module docs.
pub async fn remember_submitted(
    inv: Invocation,
    options: PostSubmitOptions,
) -> ExtResult<Vec<SubmitResponse>> {
    let import_id = options
        .import_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            ExtError::with_code(
                "missing_import",
                "rememberSubmitted runs as an import's postSubmit hook: _importId is missing",
            )
        })?;
    let submitted: Vec<&SubmitResponse> = options
        .response_data
        .iter()
        .filter(|r| r.status_code == Some(200))
        .collect();
    let ids: Vec<Value> = submitted.iter().filter_map(|r| r.id.clone()).collect();
    let at = integrator_lambda::time::rfc3339_millis(std::time::SystemTime::now());
    inv.integrator()
        .resource_state("imports", import_id)
        .put(
            STATE_KEY,
            &json!({"ids": ids, "count": submitted.len(), "at": at}),
        )
        .await?;
    Ok(options.response_data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrator_lambda::Services;
    use integrator_lambda::outgoing::integrator::IntegratorApi;
    use integrator_lambda::outgoing::integrator::double::{Fault, IntegratorDouble};
    use std::time::Duration;

    const TOKEN: &str = "ott-remember-0042";

    fn options() -> PostSubmitOptions {
        serde_json::from_value(json!({
            "preMapData": [{}, {}, {}, {}],
            "postMapData": [{}, {}, {}, {}],
            "responseData": [
                {"statusCode": 200, "id": "a1", "ignored": false},
                {"statusCode": 422, "errors": [{"code": "bad", "message": "no"}]},
                {"statusCode": 200, "id": 7},
                {"statusCode": 200}
            ],
            "_importId": "imp-1",
            "bearerToken": TOKEN
        }))
        .unwrap()
    }

    fn inv(double: &IntegratorDouble, secs: u64, token: Option<&str>) -> Invocation {
        let inv = Invocation::for_test("rememberSubmitted", Duration::from_secs(secs))
            .with_services(Services::new().with_integrator(IntegratorApi::new(&double.url())));
        match token {
            Some(t) => inv.with_bearer_token(t),
            None => inv,
        }
    }

    #[tokio::test]
    async fn stores_the_ids_submitted_with_200_and_answers_the_responses_unchanged() {
        let double = IntegratorDouble::start(0, Some(TOKEN)).await.unwrap();
        let o = options();
        let before = serde_json::to_value(&o.response_data).unwrap();
        let out = remember_submitted(inv(&double, 5, Some(TOKEN)), o)
            .await
            .unwrap();
        assert_eq!(serde_json::to_value(&out).unwrap(), before);
        let got = double.received();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].method, "PUT");
        assert_eq!(got[0].path, "/v1/imports/imp-1/state/lastSubmit");
        assert!(got[0].token_ok);
        let body = &got[0].body;
        assert_eq!(body["ids"], json!(["a1", 7]));
        assert_eq!(body["count"], 3);
        let at = body["at"].as_str().unwrap();
        assert!(
            at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T',
            "{at}"
        );
    }

    #[tokio::test]
    async fn without_a_token_it_fails_token_missing_and_sends_nothing() {
        let double = IntegratorDouble::start(0, None).await.unwrap();
        let e = remember_submitted(inv(&double, 5, None), options())
            .await
            .unwrap_err();
        assert_eq!(e.code.as_deref(), Some("integrator_token_missing"));
        assert!(double.received().is_empty());
    }

    #[tokio::test]
    async fn an_api_that_stalls_past_the_deadline_gives_a_clear_timeout() {
        let double = IntegratorDouble::start(0, None).await.unwrap();
        double.fault(Fault::Stall(Duration::from_secs(30)));
        let started = std::time::Instant::now();
        let e = remember_submitted(inv(&double, 1, Some(TOKEN)), options())
            .await
            .unwrap_err();
        assert_eq!(e.code.as_deref(), Some("integrator_timeout"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!e.message.contains(TOKEN));
    }
}
