//! **preSavePage** hooks: run on every page an export produces, before integrator.io saves it
//! and hands it to the rest of the flow.
//!
//! The function receives the whole page (`data`, the `errors` found so far, the export and
//! flow ids, the page index, `settings`, …) and returns the page to keep:
//! `{data, errors, abort}`. Setting `abort: true` stops the flow; adding to `errors` records a
//! problem on the export without stopping anything.
//!
//! Register it on the export as the preSavePage hook with function name `dropEmptyRecords`.

use crate::fields;
use integrator_lambda::protocol::types::{PreSavePageOptions, PreSavePageResult};
use integrator_lambda::{ExtResult, Invocation, Module};
use serde_json::{Value, json};

/// The functions of this extension point: `dropEmptyRecords`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.pre_save_page("dropEmptyRecords", drop_empty_records);
    m
}

/// `dropEmptyRecords`: remove records nobody can use from the page.
///
/// A record is dropped when it is `null` or an empty object `{}`, or — if
/// `settings.requiredFields` lists up to five dotted field paths (e.g.
/// `["id", "customer.email"]`) — when any of those fields is absent or `null`.
///
/// Each dropped record is reported in `errors` (after the errors the page already had), one
/// entry per problem, with `N` the record's 0-based position in the incoming page:
///
/// ```json
/// {"code": "missing_required_field", "message": "record 3 is missing field customer.email", "source": "preSavePage"}
/// ```
///
/// Empty records are reported as `"record N is empty"` with the same code. The page is never
/// aborted (`abort: false`). An invalid `settings.requiredFields` fails the call with
/// `invalid_settings`.
pub async fn drop_empty_records(
    _inv: Invocation,
    options: PreSavePageOptions,
) -> ExtResult<PreSavePageResult> {
    let required = fields::required_fields(options.settings.as_ref())?;
    let mut errors = options.errors;
    let mut kept = Vec::with_capacity(options.data.len());
    for (index, record) in options.data.into_iter().enumerate() {
        let empty = match &record {
            Value::Null => true,
            Value::Object(map) => map.is_empty(),
            _ => false,
        };
        if empty {
            errors.push(drop_error(format!("record {index} is empty")));
            continue;
        }
        let missing = fields::missing_fields(&record, &required);
        if missing.is_empty() {
            kept.push(record);
        } else {
            errors.extend(
                missing
                    .into_iter()
                    .map(|field| drop_error(format!("record {index} is missing field {field}"))),
            );
        }
    }
    Ok(PreSavePageResult::new(kept, errors))
}

fn drop_error(message: String) -> Value {
    json!({"code": "missing_required_field", "message": message, "source": "preSavePage"})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn inv() -> Invocation {
        Invocation::for_test("dropEmptyRecords", Duration::from_secs(5))
    }

    #[tokio::test]
    async fn drops_null_and_empty_records_and_reports_them() {
        let o: PreSavePageOptions = serde_json::from_value(json!({
            "data": [{"id": 1}, null, {}, "text", {"id": 2}],
            "errors": [{"code": "earlier", "message": "kept as is"}],
            "_exportId": "e1",
            "pageIndex": 0
        }))
        .unwrap();
        let out = drop_empty_records(inv(), o).await.unwrap();
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({
                "data": [{"id": 1}, "text", {"id": 2}],
                "errors": [
                    {"code": "earlier", "message": "kept as is"},
                    {"code": "missing_required_field", "message": "record 1 is empty", "source": "preSavePage"},
                    {"code": "missing_required_field", "message": "record 2 is empty", "source": "preSavePage"}
                ],
                "abort": false,
                "newErrorsAndRetryData": []
            })
        );
    }

    #[tokio::test]
    async fn drops_records_missing_required_fields() {
        let o: PreSavePageOptions = serde_json::from_value(json!({
            "data": [
                {"id": 1, "customer": {"email": "a@example.com"}},
                {"id": 2, "customer": {}},
                {"customer": {"email": null}},
                {"id": 0, "customer": {"email": ""}}
            ],
            "settings": {"requiredFields": ["id", "customer.email"]}
        }))
        .unwrap();
        let out = drop_empty_records(inv(), o).await.unwrap();
        assert_eq!(
            out.data,
            vec![
                json!({"id": 1, "customer": {"email": "a@example.com"}}),
                json!({"id": 0, "customer": {"email": ""}})
            ]
        );
        assert_eq!(
            out.errors,
            vec![
                json!({"code": "missing_required_field", "message": "record 1 is missing field customer.email", "source": "preSavePage"}),
                json!({"code": "missing_required_field", "message": "record 2 is missing field id", "source": "preSavePage"}),
                json!({"code": "missing_required_field", "message": "record 2 is missing field customer.email", "source": "preSavePage"}),
            ]
        );
        assert!(!out.abort);
    }

    #[tokio::test]
    async fn rejects_invalid_required_fields() {
        let o: PreSavePageOptions = serde_json::from_value(json!({
            "data": [{"id": 1}],
            "settings": {"requiredFields": "id"}
        }))
        .unwrap();
        let err = drop_empty_records(inv(), o).await.unwrap_err();
        assert_eq!(err.code.as_deref(), Some("invalid_settings"));
    }
}
