//! **postAggregate** hooks: run once after an import that aggregates records into one file
//! (FTP, S3, …) finished uploading it.
//!
//! The function receives `postAggregateData` — `{success, _json, code, message}` describing the
//! upload — and returns nothing. Use it to notify another system, move files, or log.
//!
//! Register it on the import as the postAggregate hook with function name `logAggregate`.

use integrator_lambda::types::PostAggregateOptions;
use integrator_lambda::{ExtResult, Invocation, Module};
use serde_json::Value;

/// The functions of this extension point: `logAggregate`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.post_aggregate("logAggregate", log_aggregate);
    m
}

/// `logAggregate`: write one structured log line (CloudWatch on Lambda) per aggregated upload.
///
/// Logs `success`, `code` and `message` of `postAggregateData` with the import and flow ids.
/// The `_json` payload (the target's raw response, which may hold customer data) is **not**
/// logged; only whether it was present. Values of unexpected types are logged as absent
/// rather than failing the call.
pub async fn log_aggregate(inv: Invocation, options: PostAggregateOptions) -> ExtResult<()> {
    let data = &options.post_aggregate_data;
    let text = |key: &str| match data.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        _ => String::new(),
    };
    let success = data.get("success").and_then(Value::as_bool);
    let has_json = data.get("_json").is_some_and(|j| !j.is_null());
    tracing::info!(
        request_id = inv.request_id(),
        import = options.import_id.as_deref().unwrap_or(""),
        flow = options.flow_id.as_deref().unwrap_or(""),
        success,
        code = %text("code"),
        message = %text("message"),
        has_json,
        "postAggregate"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn accepts_any_aggregate_data() {
        for data in [
            json!({"success": true, "_json": {"secret": "s"}, "code": 200, "message": "ok"}),
            json!({"success": "yes", "code": {"odd": 1}}),
            json!(null),
        ] {
            let o: PostAggregateOptions = serde_json::from_value(json!({
                "postAggregateData": data,
                "_importId": "i1"
            }))
            .unwrap();
            let inv = Invocation::for_test("logAggregate", Duration::from_secs(5));
            assert_eq!(log_aggregate(inv, o).await, Ok(()));
        }
    }

    #[test]
    fn rejects_non_object_aggregate_data_at_the_boundary() {
        // The framework answers `invalid_options` before the function runs.
        assert!(
            serde_json::from_value::<PostAggregateOptions>(json!({"postAggregateData": [1]}))
                .is_err()
        );
    }
}
