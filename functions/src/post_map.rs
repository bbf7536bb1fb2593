//! **postMap** hooks: run after an import mapped its records, before they are submitted.
//!
//! The function receives `preMapData` (the records before mapping) and `postMapData` (after
//! mapping) and returns **one result per `postMapData` record**, in order, with the same
//! `{data}` / `{data, errors}` / `{errors}` / `{}` meanings as preMap.
//!
//! Register it on the import as the postMap hook with function name `normalizeFields` or
//! `stampSource`.

use integrator_lambda::types::{PostMapOptions, RecordResult};
use integrator_lambda::{ExtResult, Invocation, Module, invalid_settings};
use serde_json::Value;

/// The functions of this extension point: `normalizeFields`, `stampSource`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.post_map("normalizeFields", normalize_fields);
    // Validation declared at registration, checked before the function runs (see
    // `integrator_lambda::dispatch::checks`).
    m.post_map("stampSource", stamp_source)
        .ensure_setting("source")
        .check(|o: &PostMapOptions| match source(o) {
            Some(_) => Ok(()),
            None => Err(invalid_settings(
                "settings.source must be a non-empty string",
            )),
        })
        .ensure_record("id");
    m
}

fn source(o: &PostMapOptions) -> Option<&str> {
    o.settings
        .as_ref()
        .and_then(|s| s.get("source"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `stampSource`: write `settings.source` into every mapped record as `source`, so the target
/// application knows where the record came from.
///
/// Its registration declares what it needs, and the framework checks it first:
/// `settings.source` must be there (else the call fails with 422 `invalid_settings`) and be a
/// non-empty string (a custom check); each record must have an `id` (else that record fails
/// with `missing_field` and the function never sees it).
pub async fn stamp_source(
    _inv: Invocation,
    options: PostMapOptions,
) -> ExtResult<Vec<RecordResult>> {
    let source = Value::String(source(&options).unwrap_or_default().to_owned());
    Ok(options
        .post_map_data
        .into_iter()
        .map(|mut record| {
            if let Value::Object(map) = &mut *record {
                map.insert("source".into(), source.clone());
            }
            RecordResult::keep(record)
        })
        .collect())
}

/// `normalizeFields`: tidy mapped records before they reach the target application.
///
/// Every string value, at any depth (inside objects and arrays), is trimmed of leading and
/// trailing whitespace, and the value of any field named `email` (any letter case, at any
/// depth) is lower-cased when it is a string. Other values are left alone. Each record comes
/// back as `{data}`.
pub async fn normalize_fields(
    _inv: Invocation,
    options: PostMapOptions,
) -> ExtResult<Vec<RecordResult>> {
    Ok(options
        .post_map_data
        .into_iter()
        .map(|mut record| {
            normalize(&mut record, false);
            RecordResult::keep(record)
        })
        .collect())
}

fn normalize(value: &mut Value, is_email: bool) {
    match value {
        Value::String(s) => {
            let trimmed = s.trim();
            let normalized = if is_email {
                trimmed.to_lowercase()
            } else {
                trimmed.to_owned()
            };
            if *s != normalized {
                *s = normalized;
            }
        }
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                normalize(v, key.eq_ignore_ascii_case("email"));
            }
        }
        Value::Array(items) => {
            for v in items {
                normalize(v, false);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    /// Through the dispatcher, so the declared checks run as on a real call.
    async fn call_stamp(options: Value) -> Result<String, String> {
        use integrator_lambda::dispatch::{CallRequest, Extension, Stack};
        use integrator_lambda::protocol::envelope::Envelope;
        let ext = Extension::builder().diy(module()).build().unwrap();
        ext.call(CallRequest {
            envelope: Envelope::from_body(
                json!({"diy": true, "type": "hook", "function": "stampSource", "options": options}),
            ),
            stack: Stack::Http,
            request_id: "t".into(),
            trace_id: None,
            deadline: None,
        })
        .await
        .map(|r| r.into_http().into_string())
        .map_err(|e| integrator_lambda::protocol::error::http_body(&e))
    }

    #[tokio::test]
    async fn stamp_source_checks_settings_and_records_first() {
        let out = call_stamp(json!({"settings": {"source": "shop"},
            "postMapData": [{"id": 1}, {"name": "no id"}, {"id": 3}]}))
        .await
        .unwrap();
        assert_eq!(
            out,
            r#"[{"data":{"id":1,"source":"shop"}},{"errors":[{"code":"missing_field","message":"missing required field id"}]},{"data":{"id":3,"source":"shop"}}]"#
        );
        let err = call_stamp(json!({"postMapData": [{"id": 1}]}))
            .await
            .unwrap_err();
        assert!(
            err.contains("settings.source is required") && err.contains("invalid_settings"),
            "{err}"
        );
        let err = call_stamp(json!({"settings": {"source": 5}, "postMapData": [{"id": 1}]}))
            .await
            .unwrap_err();
        assert!(err.contains("must be a non-empty string"), "{err}");
    }

    #[tokio::test]
    async fn trims_strings_and_lowercases_emails() {
        let o: PostMapOptions = serde_json::from_value(json!({
            "preMapData": [{}, {}, {}],
            "postMapData": [
                {"name": "  Ada Lovelace ", "Email": " ADA@Example.COM ", "age": 36},
                {"contacts": [{"email": "Bob@X.org\t"}, " x "], "emailVerified": " YES "},
                "  top  "
            ]
        }))
        .unwrap();
        let out = normalize_fields(
            Invocation::for_test("normalizeFields", Duration::from_secs(5)),
            o,
        )
        .await
        .unwrap();
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!([
                {"data": {"name": "Ada Lovelace", "Email": "ada@example.com", "age": 36}},
                {"data": {"contacts": [{"email": "bob@x.org"}, "x"], "emailVerified": "YES"}},
                {"data": "top"}
            ])
        );
    }
}
