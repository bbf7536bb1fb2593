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

use integrator_lambda::DedupKey;
use integrator_lambda::store::dedup::seen_before;
use integrator_lambda::types::{ImportOptions, RecordError, SubmitResponse};
use integrator_lambda::{ExtError, ExtResult, Invocation, Module, Record};
use serde_json::Value;

/// How many dedup checks `upsertRecords` keeps in flight at once.
pub const DEDUP_CONCURRENCY: usize = 16;

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
/// Records that are not JSON objects fail with status 422 and a `missing_field` error.
///
/// **Idempotent imports.** When the deployment provides a [`Dedup`](integrator_lambda::Dedup) service and the call has
/// an `_importId`, every record is checked before it is written, keyed (within the import) on
/// its `id` field when it has one (`42` and `"42"` are the same target record), otherwise on
/// the whole record. A record already imported — in an earlier call, e.g. a retried page, or
/// earlier in the same page — is not written again: its response is `statusCode: 200`,
/// `ignored: true`, with the same id. Other responses have `ignored: false`. A dedup store
/// failure fails the whole call with `dedup_unavailable` before anything is written. Without
/// the service (or without `_importId`) every record is written.
///
/// The check marks a record as imported *before* it is written; the mark is taken back when
/// the record is not: a record whose write fails has its key forgotten at once (its response
/// is the failure, and the retry writes it), and when the call's answer is not delivered (the
/// call fails or times out, or the answer is over `maxResponseSize` or Lambda's 6 MB) every key
/// the call marked is forgotten ([`CallMarks`](integrator_lambda::store::dedup::CallMarks)).
/// Proven by `a_record_whose_write_fails_is_not_already_imported_on_retry` (below) and
/// `an_undelivered_upsert_answer_is_not_already_imported_on_retry` (tests/tests/dedup_delivery.rs).
pub async fn upsert_records(
    inv: Invocation,
    options: ImportOptions,
) -> ExtResult<Vec<SubmitResponse>> {
    upsert_with(inv, options, write_record).await
}

/// Write one record to the target under `id`. The example has no target: every write
/// succeeds. A real wrapper calls the target's upsert API here and returns its failure.
fn write_record(_id: &str, _record: &Value) -> std::future::Ready<Result<(), RecordError>> {
    std::future::ready(Ok(()))
}

/// [`upsert_records`] with its write step.
async fn upsert_with<W, F>(
    inv: Invocation,
    options: ImportOptions,
    write: W,
) -> ExtResult<Vec<SubmitResponse>>
where
    W: Fn(&str, &Value) -> F,
    F: std::future::Future<Output = Result<(), RecordError>>,
{
    let planned: Vec<Result<String, String>> = options
        .post_map_data
        .iter()
        .enumerate()
        .map(|(index, record)| target_id(index, record))
        .collect();
    let dedup = inv.dedup().ok().map(|d| d.for_call(inv.deadline()));
    let scope = options
        .import_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .map(|id| format!("import:{id}"));
    let (already, keys) = match (&dedup, scope) {
        (Some(dedup), Some(scope)) => {
            let keys = import_keys(&scope, &options.post_map_data, &planned);
            let seen = seen_before(dedup, &keys, Clone::clone, DEDUP_CONCURRENCY)
                .await
                .map_err(|e| ExtError::with_code("dedup_unavailable", e.to_string()))?;
            (seen, keys)
        }
        (Some(_), None) => {
            tracing::warn!("upsertRecords: no _importId, so records are not deduplicated");
            (vec![false; planned.len()], vec![None; planned.len()])
        }
        _ => (vec![false; planned.len()], vec![None; planned.len()]),
    };
    let mut responses = Vec::with_capacity(planned.len());
    for (((plan, already), key), record) in planned
        .into_iter()
        .zip(already)
        .zip(keys)
        .zip(&options.post_map_data)
    {
        responses.push(match plan {
            Ok(id) if already => {
                let mut response = SubmitResponse::ok(id);
                response.ignored = Some(true);
                response
            }
            Ok(id) => match write(&id, record.value()).await {
                Ok(()) => SubmitResponse::ok(id),
                Err(error) => {
                    // Not written: not imported either, so the retry writes it.
                    if let (Some(dedup), Some(key)) = (&dedup, key)
                        && let Err(e) = dedup.forget(&key).await
                    {
                        tracing::error!(error = %e, "upsertRecords: could not forget the key of a record whose write failed; a retry within its TTL will report it as already imported");
                    }
                    SubmitResponse::failed(422, vec![error])
                }
            },
            Err(message) => {
                SubmitResponse::failed(422, vec![RecordError::new("missing_field", message)])
            }
        });
    }
    Ok(responses)
}

/// The id the target uses for `record`, or why it has none.
fn target_id(index: usize, record: &Value) -> Result<String, String> {
    let Value::Object(fields) = record else {
        return Err(format!(
            "record {index} is not an object, so it has no id field"
        ));
    };
    Ok(match own_id(fields.get("id")) {
        Some(id) => id,
        None => derived_id(record),
    })
}

/// The record's own `id`: a non-empty string, or a number as a string.
fn own_id(id: Option<&Value>) -> Option<String> {
    match id {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Each record's dedup key (none for records that failed planning): its `id` within the import
/// when it has one, otherwise the whole record.
fn import_keys(
    scope: &str,
    records: &[Record],
    planned: &[Result<String, String>],
) -> Vec<Option<DedupKey>> {
    records
        .iter()
        .map(Record::value)
        .zip(planned)
        .map(|(record, plan)| {
            plan.is_ok()
                .then(|| match record.get("id").and_then(|id| own_id(Some(id))) {
                    Some(id) => DedupKey::from_values(scope, &[Some(&Value::String(id))]),
                    None => DedupKey::from_record(scope, record),
                })
        })
        .collect()
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
    use integrator_lambda::Dedup;
    use integrator_lambda::dispatch::Services;
    use integrator_lambda::store::dedup::MemoryDedup;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    fn with_dedup() -> Invocation {
        Invocation::for_test("upsertRecords", Duration::from_secs(5)).with_services(
            Services::new().with_dedup(Arc::new(Dedup::new(Arc::new(MemoryDedup::default())))),
        )
    }

    fn options(import_id: Option<&str>, records: Value) -> ImportOptions {
        let mut o = json!({
            "connection": {"unencrypted": {}, "encrypted": {}},
            "preMapData": records.clone(),
            "postMapData": records
        });
        if let Some(id) = import_id {
            o["_importId"] = json!(id);
        }
        serde_json::from_value(o).unwrap()
    }

    #[tokio::test]
    async fn a_retried_page_does_not_import_a_record_twice() {
        let inv = with_dedup();
        let page = json!([{"id": "C-1"}, {"name": "no id"}, {"id": 42}, "not an object"]);
        let first = upsert_records(inv.clone(), options(Some("imp-1"), page.clone()))
            .await
            .unwrap();
        let no_id = derived_id(&json!({"name": "no id"}));
        let failed = json!({"statusCode": 422, "errors": [{"code": "missing_field", "message": "record 3 is not an object, so it has no id field"}], "ignored": false});
        assert_eq!(
            serde_json::to_value(&first).unwrap(),
            json!([
                {"statusCode": 200, "ignored": false, "id": "C-1"},
                {"statusCode": 200, "ignored": false, "id": no_id},
                {"statusCode": 200, "ignored": false, "id": "42"},
                failed
            ])
        );
        let retry = upsert_records(inv.clone(), options(Some("imp-1"), page.clone()))
            .await
            .unwrap();
        assert_eq!(
            serde_json::to_value(&retry).unwrap(),
            json!([
                {"statusCode": 200, "ignored": true, "id": "C-1"},
                {"statusCode": 200, "ignored": true, "id": no_id},
                {"statusCode": 200, "ignored": true, "id": "42"},
                failed
            ])
        );
        // A partly new page: only the new records are imported; "42" as a string is the same
        // target record as 42.
        let mixed = upsert_records(
            inv.clone(),
            options(
                Some("imp-1"),
                json!([{"id": "42", "v": 2}, {"id": "C-2"}, {"id": "C-2"}]),
            ),
        )
        .await
        .unwrap();
        let ignored: Vec<_> = mixed.iter().map(|r| r.ignored).collect();
        assert_eq!(ignored, [Some(true), Some(false), Some(true)]);
        // Another import keeps its own record of what it imported.
        let other = upsert_records(inv, options(Some("imp-2"), page))
            .await
            .unwrap();
        assert!(other.iter().all(|r| r.ignored == Some(false)));
    }

    /// A record whose write fails is answered with the failure and its key is forgotten: the
    /// retried page writes it (not "already imported"), while the records written stay
    /// imported.
    #[tokio::test]
    async fn a_record_whose_write_fails_is_not_already_imported_on_retry() {
        let inv = with_dedup();
        let page = json!([{"id": "A"}, {"id": "B"}, {"id": "C"}]);
        let failing = |id: &str, _: &Value| {
            let fail = id == "B";
            async move {
                if fail {
                    Err(RecordError::new(
                        "target_unavailable",
                        "the target refused B",
                    ))
                } else {
                    Ok(())
                }
            }
        };
        let first = upsert_with(inv.clone(), options(Some("imp-w"), page.clone()), failing)
            .await
            .unwrap();
        let status: Vec<_> = first.iter().map(|r| r.status_code).collect();
        assert_eq!(status, [Some(200), Some(422), Some(200)]);
        let retry = upsert_records(inv, options(Some("imp-w"), page))
            .await
            .unwrap();
        let ignored: Vec<_> = retry.iter().map(|r| r.ignored).collect();
        assert_eq!(
            ignored,
            [Some(true), Some(false), Some(true)],
            "B was never written, so it is not already imported"
        );
        assert_eq!(retry[1].status_code, Some(200));
    }

    #[tokio::test]
    async fn without_an_import_id_nothing_is_deduplicated() {
        let inv = with_dedup();
        for _ in 0..2 {
            let out = upsert_records(inv.clone(), options(None, json!([{"id": 1}])))
                .await
                .unwrap();
            assert_eq!(out[0].ignored, Some(false));
        }
    }

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
