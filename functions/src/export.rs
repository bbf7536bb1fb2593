//! **export** wrappers: an export whose records come from your code instead of one of
//! integrator.io's adaptors.
//!
//! integrator.io calls the function page after page. Each call gets the `connection`, the
//! export `type` (`delta`, `once`, `test`, or none for "everything"), the matching `delta` /
//! `once` / `test` object, the export's `configuration`, and `state` — whatever the previous
//! page returned as `state` (absent on the first call). Each call returns
//! `{data, lastPage, state, errors}`; calls stop once `lastPage` is `true`.
//!
//! Register it on a wrapper export with function name `pagedExport`.

use integrator_lambda::types::{ExportOptions, ExportResult};
use integrator_lambda::{ExtError, ExtResult, Invocation, Module};
use serde_json::{Value, json};

/// Page size when `configuration.pageSize` is not set.
pub const DEFAULT_PAGE_SIZE: u64 = 10;
/// Largest accepted `configuration.pageSize` / `test.limit`.
pub const MAX_PAGE_SIZE: u64 = 1000;
/// Number of records in the built-in sample source.
pub const SAMPLE_RECORDS: u64 = 23;

/// The functions of this extension point: `pagedExport`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.export("pagedExport", paged_export);
    m
}

/// `pagedExport`: page through a record source with an offset cursor kept in `state`.
///
/// Replace [`source_records`] with a call to your application; the paging, delta and test
/// handling around it are what a real wrapper needs.
///
/// - **Source**: `configuration.records` when it is an array, otherwise 23 generated records
///   `{"id": 1, "name": "Record 1", "updatedAt": "2024-01-01T00:00:00.000Z"}` (one per day).
/// - **Paging**: `configuration.pageSize` records per page (default 10, clamped to 1..=1000),
///   starting at `state.offset` (default 0). While records remain, the page returns
///   `state: {"offset": <next>}` and `lastPage: false`; the page that reaches the end has
///   `lastPage: true` and no state.
/// - **`type: "test"`** (the "Preview" button): at most `test.limit` records (default 1), one
///   page.
/// - **`type: "delta"`**: only records whose `updatedAt` is at or after
///   `delta.lastExecutionTime`, given as epoch milliseconds or an ISO-8601 UTC string.
///   Timestamps are compared as `YYYY-MM-DDTHH:MM:SS.sssZ` strings (numbers are converted), so
///   ISO strings in the source should use that format. Records without `updatedAt` are left
///   out.
///
/// Fails with `invalid_state` when `state.offset` is not a non-negative integer and with
/// `invalid_delta` when `delta.lastExecutionTime` is neither a number nor a string.
pub async fn paged_export(_inv: Invocation, options: ExportOptions) -> ExtResult<ExportResult> {
    let records = source_records(options.configuration.as_ref());
    let mut result = ExportResult::default();

    if options.export_type.as_deref() == Some("test") {
        let limit = clamp_size(options.test.as_ref().and_then(|t| t.get("limit")), 1);
        result.data = records.into_iter().take(to_usize(limit)).collect();
        result.last_page = true;
        return Ok(result);
    }

    let records = if options.export_type.as_deref() == Some("delta") {
        match delta_since(options.delta.as_ref())? {
            Some(since) => records
                .into_iter()
                .filter(|r| {
                    r.get("updatedAt")
                        .and_then(timestamp)
                        .is_some_and(|t| t >= since)
                })
                .collect(),
            None => records,
        }
    } else {
        records
    };

    let page_size = clamp_size(
        options
            .configuration
            .as_ref()
            .and_then(|c| c.get("pageSize")),
        DEFAULT_PAGE_SIZE,
    );
    let offset = match options.state.as_ref().and_then(|s| s.get("offset")) {
        None | Some(Value::Null) => 0,
        Some(v) => v.as_u64().ok_or_else(|| {
            ExtError::with_code(
                "invalid_state",
                "state.offset must be a non-negative integer.",
            )
        })?,
    };
    let total = records.len() as u64;
    let end = offset.saturating_add(page_size);
    result.data = records
        .into_iter()
        .skip(to_usize(offset))
        .take(to_usize(page_size))
        .collect();
    result.last_page = end >= total;
    if !result.last_page {
        result.state = Some(json!({ "offset": end }));
    }
    Ok(result)
}

/// The records to export: `configuration.records` if it is an array, else the sample source.
pub fn source_records(configuration: Option<&Value>) -> Vec<Value> {
    if let Some(Value::Array(records)) = configuration.and_then(|c| c.get("records")) {
        return records.clone();
    }
    (1..=SAMPLE_RECORDS)
        .map(|i| {
            json!({
                "id": i,
                "name": format!("Record {i}"),
                "updatedAt": format!("2024-01-{i:02}T00:00:00.000Z"),
            })
        })
        .collect()
}

/// A size setting: integers (or floats, truncated) clamped to 1..=1000; anything else or
/// absent gives `default`.
fn clamp_size(v: Option<&Value>, default: u64) -> u64 {
    match v.and_then(Value::as_f64) {
        Some(n) if n.is_finite() => (n as i64).clamp(1, MAX_PAGE_SIZE as i64) as u64,
        _ => default,
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// `delta.lastExecutionTime` as a comparable timestamp, `None` when absent.
fn delta_since(delta: Option<&Value>) -> ExtResult<Option<String>> {
    match delta.and_then(|d| d.get("lastExecutionTime")) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => timestamp(v).map(Some).ok_or_else(|| {
            ExtError::with_code(
                "invalid_delta",
                "delta.lastExecutionTime must be epoch milliseconds or an ISO-8601 string.",
            )
        }),
    }
}

/// A timestamp as an ISO-8601 UTC string: strings as they are, epoch milliseconds converted.
fn timestamp(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .map(|f| iso_from_millis(f as i64)),
        _ => None,
    }
}

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SS.sssZ` (clamped to years 1970..=9999).
pub use integrator_lambda::time::iso_millis as iso_from_millis;

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn inv() -> Invocation {
        Invocation::for_test("pagedExport", Duration::from_secs(5))
    }

    async fn call(options: Value) -> ExtResult<ExportResult> {
        paged_export(inv(), serde_json::from_value(options).unwrap()).await
    }

    fn ids(r: &ExportResult) -> Vec<u64> {
        r.data.iter().filter_map(|d| d["id"].as_u64()).collect()
    }

    #[test]
    fn converts_epoch_millis_to_iso() {
        assert_eq!(iso_from_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            iso_from_millis(1_705_708_800_000),
            "2024-01-20T00:00:00.000Z"
        );
        assert_eq!(iso_from_millis(951_827_696_789), "2000-02-29T12:34:56.789Z");
        assert_eq!(iso_from_millis(-5), "1970-01-01T00:00:00.000Z");
    }

    #[tokio::test]
    async fn pages_through_the_sample_source() {
        let first = call(json!({"connection": {}})).await.unwrap();
        assert_eq!(ids(&first), (1..=10).collect::<Vec<_>>());
        assert!(!first.last_page);
        assert_eq!(first.state, Some(json!({"offset": 10})));
        assert_eq!(
            first.data[0],
            json!({"id": 1, "name": "Record 1", "updatedAt": "2024-01-01T00:00:00.000Z"})
        );

        let second = call(json!({"state": first.state})).await.unwrap();
        assert_eq!(ids(&second), (11..=20).collect::<Vec<_>>());
        assert!(!second.last_page);

        let third = call(json!({"state": second.state})).await.unwrap();
        assert_eq!(
            serde_json::to_value(&third).unwrap(),
            json!({
                "data": [
                    {"id": 21, "name": "Record 21", "updatedAt": "2024-01-21T00:00:00.000Z"},
                    {"id": 22, "name": "Record 22", "updatedAt": "2024-01-22T00:00:00.000Z"},
                    {"id": 23, "name": "Record 23", "updatedAt": "2024-01-23T00:00:00.000Z"}
                ],
                "lastPage": true,
                "errors": []
            })
        );
    }

    #[tokio::test]
    async fn page_size_and_configured_records() {
        let r = call(json!({"configuration": {"pageSize": 2, "records": ["a", "b", "c"]}}))
            .await
            .unwrap();
        assert_eq!(r.data, vec![json!("a"), json!("b")]);
        assert_eq!(r.state, Some(json!({"offset": 2})));
        let r = call(json!({"configuration": {"pageSize": 0, "records": ["a", "b"]}, "state": {"offset": 1}}))
            .await
            .unwrap();
        assert_eq!(r.data, vec![json!("b")]);
        assert!(r.last_page && r.state.is_none());
        let r = call(json!({"configuration": {"pageSize": 5000}}))
            .await
            .unwrap();
        assert_eq!(r.data.len(), 23);
        assert!(r.last_page);
        let r = call(json!({"configuration": {"records": []}}))
            .await
            .unwrap();
        assert!(r.data.is_empty() && r.last_page);
        let r = call(json!({"state": {"offset": 100}})).await.unwrap();
        assert!(r.data.is_empty() && r.last_page);
    }

    #[tokio::test]
    async fn test_type_returns_one_small_page() {
        let r = call(json!({"type": "test", "state": {"offset": 5}}))
            .await
            .unwrap();
        assert_eq!(ids(&r), [1]);
        assert!(r.last_page && r.state.is_none());
        let r = call(json!({"type": "test", "test": {"limit": 3}}))
            .await
            .unwrap();
        assert_eq!(ids(&r), [1, 2, 3]);
    }

    #[tokio::test]
    async fn delta_filters_by_last_execution_time() {
        let by_ms =
            call(json!({"type": "delta", "delta": {"lastExecutionTime": 1_705_708_800_000u64}}))
                .await
                .unwrap();
        assert_eq!(ids(&by_ms), [20, 21, 22, 23]);
        assert!(by_ms.last_page);
        let by_iso = call(json!({"type": "delta", "delta": {"lastExecutionTime": "2024-01-20T00:00:00.000Z"}, "configuration": {"pageSize": 3}}))
            .await
            .unwrap();
        assert_eq!(ids(&by_iso), [20, 21, 22]);
        assert_eq!(by_iso.state, Some(json!({"offset": 3})));
        let numeric_source = call(json!({
            "type": "delta",
            "delta": {"lastExecutionTime": "2024-01-20T00:00:00.000Z"},
            "configuration": {"records": [
                {"id": 1, "updatedAt": 1_705_708_799_999u64},
                {"id": 2, "updatedAt": 1_705_708_800_000u64},
                {"id": 3}
            ]}
        }))
        .await
        .unwrap();
        assert_eq!(ids(&numeric_source), [2]);
    }

    #[tokio::test]
    async fn rejects_bad_state_and_delta() {
        let err = call(json!({"state": {"offset": -1}})).await.unwrap_err();
        assert_eq!(err.code.as_deref(), Some("invalid_state"));
        let err = call(json!({"type": "delta", "delta": {"lastExecutionTime": true}}))
            .await
            .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("invalid_delta"));
    }
}
