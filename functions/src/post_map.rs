//! **postMap** hooks: run after an import mapped its records, before they are submitted.
//!
//! The function receives `preMapData` (the records before mapping) and `postMapData` (after
//! mapping) and returns **one result per `postMapData` record**, in order, with the same
//! `{data}` / `{data, errors}` / `{errors}` / `{}` meanings as preMap.
//!
//! Register it on the import as the postMap hook with function name `normalizeFields`.

use integrator_lambda::types::{PostMapOptions, RecordResult};
use integrator_lambda::{ExtResult, Invocation, Module};
use serde_json::Value;

/// The functions of this extension point: `normalizeFields`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.post_map("normalizeFields", normalize_fields);
    m
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
