//! **import** wrappers: an import whose records are written by your code instead of one of
//! integrator.io's adaptors.
//!
//! The function receives the `connection`, the import's `configuration`, `preMapData` and
//! `postMapData` (the mapped records to write) and returns **one submit response per
//! `postMapData` record**, in order: `{statusCode, id, ignored, errors}`. Use 200 for
//! success, 401 for authentication/connection problems and 422 for anything else; errors may
//! accompany a 200 to signal a partial success.
//!
//! Register it on a wrapper import with function name `upsertRecords`.

use integrator_lambda::protocol::types::{ImportOptions, RecordError, SubmitResponse};
use integrator_lambda::{ExtResult, Invocation, Module};
use serde_json::Value;

/// The functions of this extension point: `upsertRecords`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.import("upsertRecords", upsert_records);
    m
}

/// `upsertRecords`: answer each record with the id it has (or gets) in the target.
///
/// This is where a real wrapper calls the target application's upsert API, once per record
/// or in one batch, and turns each outcome into a [`SubmitResponse`]. The example computes the
/// id the target would use:
///
/// - the record's `id` field, as a string (`"42"` for `42`), when it is a non-empty string or a
///   number;
/// - otherwise a deterministic id derived from the record's content:
///   `fnv-<16 hex digits>`, the 64-bit FNV-1a hash of its compact JSON, so that sending the same
///   record twice updates instead of duplicating.
///
/// Records that are not JSON objects fail with status 422 and a `missing_field` error. Every
/// response has `ignored: false`.
pub async fn upsert_records(
    _inv: Invocation,
    options: ImportOptions,
) -> ExtResult<Vec<SubmitResponse>> {
    Ok(options
        .post_map_data
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let Value::Object(fields) = record else {
                return SubmitResponse::failed(
                    422,
                    vec![RecordError::new(
                        "missing_field",
                        format!("record {index} is not an object, so it has no id field"),
                    )],
                );
            };
            let id = match fields.get("id") {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                Some(Value::Number(n)) => n.to_string(),
                _ => derived_id(record),
            };
            SubmitResponse::ok(id)
        })
        .collect())
}

/// `fnv-` and the 64-bit FNV-1a hash of `record`'s compact JSON, in hex. Stable across Rust
/// versions and platforms (unlike `std`'s `DefaultHasher`), so it can serve as an external id.
pub fn derived_id(record: &Value) -> String {
    format!("fnv-{:016x}", fnv1a64(record.to_string().as_bytes()))
}

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes.iter().fold(OFFSET_BASIS, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(PRIME)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn fnv1a_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[tokio::test]
    async fn one_response_per_record() {
        let o: ImportOptions = serde_json::from_value(json!({
            "connection": {"unencrypted": {}, "encrypted": {}},
            "preMapData": [{}, {}, {}, {}, {}],
            "postMapData": [
                {"id": "C-1", "name": "a"},
                {"id": 42},
                {"name": "no id"},
                {"id": ""},
                ["not", "an", "object"]
            ]
        }))
        .unwrap();
        let out = upsert_records(
            Invocation::for_test("upsertRecords", Duration::from_secs(5)),
            o,
        )
        .await
        .unwrap();
        let no_id = derived_id(&json!({"name": "no id"}));
        assert_eq!(
            no_id,
            format!("fnv-{:016x}", fnv1a64(br#"{"name":"no id"}"#))
        );
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!([
                {"statusCode": 200, "ignored": false, "id": "C-1"},
                {"statusCode": 200, "ignored": false, "id": "42"},
                {"statusCode": 200, "ignored": false, "id": no_id},
                {"statusCode": 200, "ignored": false, "id": derived_id(&json!({"id": ""}))},
                {"statusCode": 422, "errors": [{"code": "missing_field", "message": "record 4 is not an object, so it has no id field"}], "ignored": false}
            ])
        );
    }
}
