//! **postSubmit** hooks: run after an import submitted a batch of records.
//!
//! The function receives `preMapData`, `postMapData` and `responseData` (one submit response
//! per record: `{statusCode, id, errors, ignored, _json, dataURI}`) and returns the
//! `responseData` array, **same length, same order**, possibly changed: add or remove errors,
//! mark records ignored, replace ids.
//!
//! Register it on the import as the postSubmit hook with function name `tagFailures`.

use integrator_lambda::types::{PostSubmitOptions, RecordError, SubmitResponse};
use integrator_lambda::{ExtResult, Invocation, Module};

/// The functions of this extension point: `tagFailures`, `rememberSubmitted`
/// ([`crate::remember_submitted`]).
pub fn module() -> Module {
    let mut m = Module::new();
    m.post_submit("tagFailures", tag_failures).post_submit(
        "rememberSubmitted",
        crate::remember_submitted::remember_submitted,
    );
    m
}

/// `tagFailures`: make sure no failed submit goes unnoticed.
///
/// Some applications answer a failed write with an HTTP error status but no error body, and the
/// record then shows up as failed without any explanation. For every response with
/// `statusCode >= 400` and no errors, this adds
/// `{"code": "submit_failed", "message": "The import failed with HTTP status 500 and no error details."}`.
/// Successful responses, and failures that already carry errors, are returned unchanged.
pub async fn tag_failures(
    _inv: Invocation,
    options: PostSubmitOptions,
) -> ExtResult<Vec<SubmitResponse>> {
    Ok(options
        .response_data
        .into_iter()
        .map(|mut response| {
            if let Some(status) = response.status_code.filter(|s| *s >= 400)
                && response.errors.as_ref().is_none_or(Vec::is_empty)
            {
                response.errors = Some(vec![RecordError::new(
                    "submit_failed",
                    format!("The import failed with HTTP status {status} and no error details."),
                )]);
            }
            response
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn adds_an_error_to_silent_failures_only() {
        let o: PostSubmitOptions = serde_json::from_value(json!({
            "preMapData": [{}, {}, {}, {}],
            "postMapData": [{}, {}, {}, {}],
            "responseData": [
                {"statusCode": 200, "id": "a1", "ignored": false},
                {"statusCode": 500, "errors": [], "_json": {"raw": true}},
                {"statusCode": 422, "errors": [{"code": "bad", "message": "explained"}]},
                {"statusCode": 404}
            ]
        }))
        .unwrap();
        let out = tag_failures(
            Invocation::for_test("tagFailures", Duration::from_secs(5)),
            o,
        )
        .await
        .unwrap();
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!([
                {"statusCode": 200, "ignored": false, "id": "a1"},
                {"statusCode": 500, "errors": [{"code": "submit_failed", "message": "The import failed with HTTP status 500 and no error details."}], "_json": {"raw": true}},
                {"statusCode": 422, "errors": [{"code": "bad", "message": "explained"}]},
                {"statusCode": 404, "errors": [{"code": "submit_failed", "message": "The import failed with HTTP status 404 and no error details."}]}
            ])
        );
    }
}
