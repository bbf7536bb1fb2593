//! **preMap** hooks: run on the records an import is about to map, before mapping.
//!
//! The function receives `data` (the records) and returns **exactly one result per record**, in
//! order (the framework rejects any other length with `invalid_extension_response`):
//!
//! - `{data}` – map and import this (possibly changed) record;
//! - `{data, errors}` – import it and also log the errors;
//! - `{errors}` – fail the record with these errors;
//! - `{}` – ignore the record.
//!
//! Register it on the import as the preMap hook with function name `flattenRecords` (or
//! `enrichRecords`, which looks each record's customer up in a CRM: [`crate::enrich_records`]).

use crate::fields;
use integrator_lambda::types::{PreMapOptions, RecordError, RecordResult};
use integrator_lambda::{ExtResult, Invocation, Module};
use serde_json::{Map, Value};

/// The functions of this extension point: `flattenRecords` and `enrichRecords` (see
/// [`crate::enrich_records`]).
pub fn module() -> Module {
    let mut m = Module::new();
    m.pre_map("flattenRecords", flatten_records);
    m.pre_map("enrichRecords", crate::enrich_records::enrich_records);
    m
}

/// `flattenRecords`: turn nested records into flat ones with dotted keys, for targets that
/// only take flat rows (CSV files, spreadsheets, SQL tables).
///
/// `{"a": {"b": [{"c": 1}]}, "d": 2}` becomes `{"a.b.0.c": 1, "d": 2}`: objects are walked by
/// key, arrays by index. Empty objects and arrays are kept as `{}` / `[]` under their path so
/// nothing disappears. Records that are not objects are passed through unchanged.
///
/// If `settings.requiredFields` lists dotted paths into the **original** record (at most five),
/// a record lacking any of them (absent or `null`) fails with one error per missing field:
/// `{"code": "missing_field", "message": "missing required field customer.email"}`.
/// An invalid `settings.requiredFields` fails the whole call with `invalid_settings`.
pub async fn flatten_records(
    _inv: Invocation,
    options: PreMapOptions,
) -> ExtResult<Vec<RecordResult>> {
    let required = fields::required_fields(options.settings.as_ref())?;
    Ok(options
        .data
        .into_iter()
        .map(|record| {
            let missing = fields::missing_fields(&record, &required);
            if !missing.is_empty() {
                return RecordResult::fail(
                    missing
                        .into_iter()
                        .map(|f| {
                            RecordError::new("missing_field", format!("missing required field {f}"))
                        })
                        .collect(),
                );
            }
            match record.into_value() {
                Value::Object(map) => {
                    let mut flat = Map::new();
                    for (key, value) in map {
                        flatten_into(&mut flat, key, value);
                    }
                    RecordResult::keep(Value::Object(flat))
                }
                other => RecordResult::keep(other),
            }
        })
        .collect())
}

/// Put `value` into `out` under `prefix`, expanding non-empty objects and arrays. A later key
/// that flattens to the same path as an earlier one (`{"a.b": 1, "a": {"b": 2}}`) wins.
pub fn flatten_into(out: &mut Map<String, Value>, prefix: String, value: Value) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, v) in map {
                flatten_into(out, format!("{prefix}.{key}"), v);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.into_iter().enumerate() {
                flatten_into(out, format!("{prefix}.{i}"), v);
            }
        }
        other => {
            out.insert(prefix, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn inv() -> Invocation {
        Invocation::for_test("flattenRecords", Duration::from_secs(5))
    }

    #[tokio::test]
    async fn flattens_objects_and_arrays_to_dotted_keys() {
        let o: PreMapOptions = serde_json::from_value(json!({
            "data": [
                {"id": 7, "a": {"b": [{"c": 1}, {"c": 2}], "e": {}}, "tags": [], "n": null},
                "not an object",
                {}
            ],
            "_importId": "i1"
        }))
        .unwrap();
        let out = flatten_records(inv(), o).await.unwrap();
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!([
                {"data": {"id": 7, "a.b.0.c": 1, "a.b.1.c": 2, "a.e": {}, "tags": [], "n": null}},
                {"data": "not an object"},
                {"data": {}}
            ])
        );
    }

    #[tokio::test]
    async fn fails_records_missing_required_fields() {
        let o: PreMapOptions = serde_json::from_value(json!({
            "data": [
                {"id": 1, "customer": {"email": "a@example.com"}},
                {"customer": {"email": null}},
                "scalar"
            ],
            "settings": {"requiredFields": ["id", "customer.email"]}
        }))
        .unwrap();
        let out = flatten_records(inv(), o).await.unwrap();
        assert_eq!(out.len(), 3);
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!([
                {"data": {"id": 1, "customer.email": "a@example.com"}},
                {"errors": [
                    {"code": "missing_field", "message": "missing required field id"},
                    {"code": "missing_field", "message": "missing required field customer.email"}
                ]},
                {"errors": [
                    {"code": "missing_field", "message": "missing required field id"},
                    {"code": "missing_field", "message": "missing required field customer.email"}
                ]}
            ])
        );
    }

    #[tokio::test]
    async fn empty_page_gives_empty_result() {
        let o: PreMapOptions = serde_json::from_value(json!({"data": []})).unwrap();
        assert!(flatten_records(inv(), o).await.unwrap().is_empty());
    }
}
