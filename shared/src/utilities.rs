//! The built-in utility functions: deferred invocations and runs offered to callers as
//! extension functions (registered by the worker, the `tick` binary and the local server, and
//! reached over HTTP through the `/jobs` and `/runs` routes).

use serde_json::Value;

/// The utility functions that expose this module to callers (registered by the worker, the
/// `tick` binary and the local server), callable like any extension function:
///
/// | function | options | answer |
/// |---|---|---|
/// | `scheduleInvocation` | `{"envelope", "key"?, "delay"? (ms), "window"?}` | `{"jobId", "version", "dueAt", "via"}` |
/// | `cancelInvocation` | `{"key"}` or `{"jobId"}` | `{"jobId", "cancelled"}` |
/// | `tick` | `{}` | `{"due", "enqueued", "lost", "failed"}` |
/// | `startRun` | `{"integration", "onboarding"?, "params"?}` | the run |
/// | `continueRun` | `{"runId"}` | `{"runId", "requeued", "restarted"}` |
/// | `runStatus` | `{"runId"}` | the run and its streams |
pub fn utilities() -> crate::Module {
    use crate::jobs::deferred::{JobError, ScheduleRequest, job_id_for_key};
    use crate::jobs::runs::RunsError;
    use crate::{ExtError, Invocation};
    fn job_err(e: JobError) -> ExtError {
        ExtError::with_code(e.code(), e.to_string())
    }
    fn runs_err(e: RunsError) -> ExtError {
        let code = match &e {
            RunsError::UnknownIntegration(_) => "unknown_integration",
            RunsError::RunNotFound(_) => "run_not_found",
            RunsError::InvalidMessage(_) | RunsError::TooManyStreams(_) => "invalid_run",
            RunsError::Store(_) => "run_store_unavailable",
            RunsError::Queue(_) => "queue_unavailable",
        };
        ExtError::with_code(code, e.to_string())
    }
    fn run_id(options: &Value) -> Result<String, ExtError> {
        options
            .get("runId")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ExtError::with_code("invalid_run", "runId must be a string"))
    }

    let mut m = crate::Module::new();
    m.utility(
        "scheduleInvocation",
        |inv: Invocation, options: Value| async move {
            let s = inv.scheduler()?;
            let req = ScheduleRequest::from_json(&options).map_err(job_err)?;
            s.schedule(req).await.map(|r| r.to_json()).map_err(job_err)
        },
    );
    m.utility(
        "cancelInvocation",
        |inv: Invocation, options: Value| async move {
            let s = inv.scheduler()?;
            let id = match (
                options.get("jobId").and_then(Value::as_str),
                options.get("key"),
            ) {
                (Some(id), _) => id.to_owned(),
                (None, Some(k)) if !k.is_null() => job_id_for_key(k),
                _ => {
                    return Err(ExtError::with_code(
                        "invalid_schedule",
                        "give the job's key or its jobId",
                    ));
                }
            };
            let cancelled = s.cancel(&id).await.map_err(job_err)?;
            Ok(serde_json::json!({"jobId": id, "cancelled": cancelled}))
        },
    );
    m.utility("tick", |inv: Invocation, _options: Value| async move {
        let s = inv.scheduler()?;
        s.tick().await.map(|r| r.to_json()).map_err(job_err)
    });
    m.utility("startRun", |inv: Invocation, options: Value| async move {
        let r = inv.runs()?;
        let integration = options
            .get("integration")
            .and_then(Value::as_str)
            .ok_or_else(|| ExtError::with_code("invalid_run", "integration must be a string"))?;
        let onboarding = options
            .get("onboarding")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let params = options.get("params").cloned().unwrap_or(Value::Null);
        r.start_run(integration, onboarding, params)
            .await
            .map(|run| run.to_json())
            .map_err(runs_err)
    });
    m.utility("continueRun", |inv: Invocation, options: Value| async move {
        let r = inv.runs()?;
        let id = run_id(&options)?;
        let report = r.continue_run(&id).await.map_err(runs_err)?;
        Ok(serde_json::json!({"runId": id, "requeued": report.requeued, "restarted": report.restarted}))
    });
    m.utility("runStatus", |inv: Invocation, options: Value| async move {
        let r = inv.runs()?;
        let id = run_id(&options)?;
        let run = r
            .store()
            .get_run(&id)
            .await
            .map_err(runs_err)?
            .ok_or_else(|| runs_err(RunsError::RunNotFound(id.clone())))?;
        let streams: Vec<Value> = r
            .store()
            .list_streams(&id)
            .await
            .map_err(runs_err)?
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id, "name": s.spec.name, "params": s.spec.params,
                    "state": s.state.as_str(), "attempt": s.attempt, "retries": s.retries,
                    "error": s.error,
                })
            })
            .collect();
        let mut out = run.to_json();
        out["streamList"] = Value::Array(streams);
        Ok(out)
    });
    m
}
