//! Work that is not a direct call from integrator.io: deferred invocations ([`deferred`]),
//! rate limits ([`limits`]) and long runs split into streams ([`runs`]). All of it travels
//! through the work queue (SQS) to the queue worker ([`crate::worker`]) and keeps its state in
//! the extension table (DynamoDB), with in-memory twins for local runs and unit tests.
//!
//! Time comes from a [`Clock`], so tests can move it ([`ManualClock`]).

pub mod deferred;
pub mod limits;
pub mod local;
pub mod runs;
pub mod window;

use crate::aws::idempotency::EpochMillis;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicU64, Ordering};

/// The name of the table's secondary index (`gsi1pk` S hash, `gsi1sk` S range) used to find
/// due jobs and the streams of a run. Override with `EXTENSION_TABLE_INDEX`.
pub const DEFAULT_INDEX: &str = "gsi1";

/// The index name from the environment.
pub fn index_from_env() -> String {
    std::env::var("EXTENSION_TABLE_INDEX")
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT_INDEX.into())
}

/// Wall-clock time, injectable.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> EpochMillis;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> EpochMillis {
        EpochMillis::now()
    }
}

/// A clock that only moves when told (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn at(ms: u64) -> Self {
        Self(AtomicU64::new(ms))
    }
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    pub fn advance(&self, d: std::time::Duration) {
        self.0.fetch_add(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> EpochMillis {
        EpochMillis(self.0.load(Ordering::SeqCst))
    }
}

/// The hash a caller's key is stored and compared as (never the key in clear): lowercase hex
/// SHA-256 of the key's canonical JSON (object members sorted) within `scope`.
pub fn key_hash(scope: &str, key: &Value) -> String {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    h.update([0x1f]);
    h.update(crate::aws::idempotency::canonical_json(key));
    crate::aws::dedup::hex(&h.finalize())
}

/// A fresh random id (32 hex characters).
pub fn random_id() -> String {
    crate::aws::idempotency::LockToken::generate()
        .as_str()
        .to_owned()
}

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
pub fn module() -> crate::Module {
    use crate::{ExtError, Invocation};
    use deferred::{JobError, ScheduleRequest, Scheduler, job_id_for_key};
    use runs::{Runs, RunsError};
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
    fn scheduler(inv: &Invocation) -> Result<std::sync::Arc<Scheduler>, ExtError> {
        inv.service::<Scheduler>().ok_or_else(|| {
            ExtError::with_code(
                "scheduler_unavailable",
                "deferred invocations need a work queue (EXTENSION_WORK_QUEUE_URL)",
            )
        })
    }
    fn runs(inv: &Invocation) -> Result<std::sync::Arc<Runs>, ExtError> {
        inv.service::<Runs>().ok_or_else(|| {
            ExtError::with_code(
                "runs_unavailable",
                "runs need integrations and a work queue (EXTENSION_WORK_QUEUE_URL)",
            )
        })
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
            let s = scheduler(&inv)?;
            let req = ScheduleRequest::from_json(&options).map_err(job_err)?;
            s.schedule(req).await.map(|r| r.to_json()).map_err(job_err)
        },
    );
    m.utility(
        "cancelInvocation",
        |inv: Invocation, options: Value| async move {
            let s = scheduler(&inv)?;
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
        let s = scheduler(&inv)?;
        s.tick().await.map(|r| r.to_json()).map_err(job_err)
    });
    m.utility("startRun", |inv: Invocation, options: Value| async move {
        let r = runs(&inv)?;
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
        let r = runs(&inv)?;
        let id = run_id(&options)?;
        let report = r.continue_run(&id).await.map_err(runs_err)?;
        Ok(serde_json::json!({"runId": id, "requeued": report.requeued, "restarted": report.restarted}))
    });
    m.utility("runStatus", |inv: Invocation, options: Value| async move {
        let r = runs(&inv)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_hashes_ignore_member_order_and_depend_on_scope() {
        let a = key_hash("job", &json!({"email": "a@x", "campaign": 1}));
        let b = key_hash("job", &json!({"campaign": 1, "email": "a@x"}));
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(a, key_hash("rate", &json!({"email": "a@x", "campaign": 1})));
        assert!(!a.contains("a@x"));
        assert_ne!(random_id(), random_id());
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1000);
        assert_eq!(c.now(), EpochMillis(1000));
        c.advance(std::time::Duration::from_secs(2));
        assert_eq!(c.now(), EpochMillis(3000));
        c.set(5);
        assert_eq!(c.now(), EpochMillis(5));
    }
}
