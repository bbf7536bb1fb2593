//! **postResponseMap** hooks: run after a lookup or import's response was mapped back into
//! the flow's records.
//!
//! The function receives `postResponseMapData` (the records with the response fields mapped
//! in) and `responseData` (the raw responses, one per record) and returns
//! `postResponseMapData`, **same length, same order**.
//!
//! Register it on the lookup/import as the postResponseMap hook with function name
//! `mergeResponse`.

use integrator_lambda::types::PostResponseMapOptions;
use integrator_lambda::{ExtError, ExtResult, Invocation, Module, Record};
use serde_json::Value;

/// The field `mergeResponse` writes to when `settings.responseField` is not set.
pub const DEFAULT_RESPONSE_FIELD: &str = "response";

/// The functions of this extension point: `mergeResponse`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.post_response_map("mergeResponse", merge_response);
    m
}

/// `mergeResponse`: keep the whole response body next to the record, when the response
/// mapping only picks a few fields.
///
/// For record `i`, when `responseData[i].data` is an object, its fields are merged into the
/// record under the key `response` (or the one named by `settings.responseField`): if that
/// key already holds an object, the response fields are added to it (the response wins on
/// conflicts); otherwise the key is set to the response object. Records that are not objects,
/// or whose response has no object `data`, are returned unchanged.
///
/// A `settings.responseField` that is not a non-empty string fails the call with
/// `invalid_settings`.
pub async fn merge_response(
    _inv: Invocation,
    options: PostResponseMapOptions,
) -> ExtResult<Vec<Record>> {
    let field = match options
        .settings
        .as_ref()
        .and_then(|s| s.get("responseField"))
    {
        None | Some(Value::Null) => DEFAULT_RESPONSE_FIELD.to_owned(),
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(_) => {
            return Err(ExtError::with_code(
                "invalid_settings",
                "settings.responseField must be a non-empty string.",
            ));
        }
    };
    let mut responses = options.response_data.into_iter();
    Ok(options
        .post_response_map_data
        .into_iter()
        .map(|mut record| {
            let data = responses.next().and_then(|mut r| match r.get_mut("data") {
                Some(Value::Object(data)) => Some(std::mem::take(data)),
                _ => None,
            });
            if let (Some(data), Value::Object(target)) = (data, &mut *record) {
                match target.get_mut(&field) {
                    Some(Value::Object(existing)) => existing.extend(data),
                    _ => {
                        target.insert(field.clone(), Value::Object(data));
                    }
                }
            }
            record
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn inv() -> Invocation {
        Invocation::for_test("mergeResponse", Duration::from_secs(5))
    }

    #[tokio::test]
    async fn merges_response_data_under_the_response_key() {
        let o: PostResponseMapOptions = serde_json::from_value(json!({
            "postResponseMapData": [
                {"id": 1},
                {"id": 2, "response": {"old": true, "status": "x"}},
                {"id": 3},
                "scalar",
                {"id": 5}
            ],
            "responseData": [
                {"statusCode": 200, "data": {"status": "created", "ref": "R1"}},
                {"statusCode": 200, "data": {"status": "updated"}},
                {"statusCode": 200, "data": [1, 2]},
                {"statusCode": 200, "data": {"x": 1}}
            ]
        }))
        .unwrap();
        let out = merge_response(inv(), o).await.unwrap();
        assert_eq!(
            out,
            vec![
                json!({"id": 1, "response": {"status": "created", "ref": "R1"}}),
                json!({"id": 2, "response": {"old": true, "status": "updated"}}),
                json!({"id": 3}),
                json!("scalar"),
                json!({"id": 5}),
            ]
        );
    }

    #[tokio::test]
    async fn uses_settings_response_field_and_rejects_bad_ones() {
        let o: PostResponseMapOptions = serde_json::from_value(json!({
            "postResponseMapData": [{"id": 1}],
            "responseData": [{"data": {"ok": true}}],
            "settings": {"responseField": "lookup"}
        }))
        .unwrap();
        assert_eq!(
            merge_response(inv(), o).await.unwrap(),
            vec![json!({"id": 1, "lookup": {"ok": true}})]
        );

        let bad: PostResponseMapOptions = serde_json::from_value(json!({
            "postResponseMapData": [{"id": 1}],
            "settings": {"responseField": 3}
        }))
        .unwrap();
        let err = merge_response(inv(), bad).await.unwrap_err();
        assert_eq!(err.code.as_deref(), Some("invalid_settings"));
    }
}
