//! The rate limits of queued messages: over a limit, a message is deferred to the next window.

use super::Outcome;
use crate::jobs::deferred::{JobRef, ScheduleRequest, Scheduler, job_id_for_key};
use crate::jobs::limits::Admission;
use serde_json::Value;
use std::time::Duration;

/// Scope of the job ids of messages deferred by a rate limit (the key is the message id).
const RATE_LIMIT_SCOPE: &str = "rate-deferred";

/// Apply the function's rate limits: `None` to go on, or the record's outcome when it was
/// deferred to the next window (or could not be checked).
pub(super) async fn rate_limit(
    services: &crate::dispatch::Services,
    scheduler: Option<&Scheduler>,
    job: Option<&JobRef>,
    message_id: &str,
    body: &Value,
) -> Option<Outcome> {
    let limiter = services.limiter.clone()?;
    let function = body.get("function").and_then(Value::as_str)?;
    if !limiter.applies_to(function) {
        return None;
    }
    let key = body.get("key").filter(|k| !k.is_null());
    // The caller's key: the envelope's own `key`, else the job's id (the hash of the key it
    // was scheduled under; random for a keyless job).
    let key_hash = match (key, job) {
        (Some(k), _) => Some(job_id_for_key(k)),
        (None, Some(j)) => Some(j.id.clone()),
        (None, None) => None,
    };
    let verdict = match limiter.admit(function, key_hash.as_deref()).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(function, error = %e, "rate limit check failed; the message will be redelivered");
            return Some(Outcome::Failed);
        }
    };
    let Admission::Limited { retry_at, limit } = verdict else {
        return None;
    };
    let Some(s) = scheduler else {
        tracing::warn!(
            function,
            limit,
            "over the rate limit and no scheduler to defer to; the message will be redelivered"
        );
        return Some(Outcome::Failed);
    };
    let mut envelope = body.as_object().cloned().unwrap_or_default();
    envelope.remove(crate::jobs::deferred::JOB_MEMBER);
    let wait = Duration::from_millis(retry_at.0.saturating_sub(s.clock().now().0));
    // A deferred job keeps its id (this message is its current version); any other message
    // becomes a job of its own, so over-limit invocations are each run later, none coalesced.
    // Its id comes from the message id: deferring the same message twice (a redelivery whose
    // first deferral was not recorded) replaces one job instead of making two.
    let mut req = ScheduleRequest::new(envelope, None).delay(wait);
    req.job_id = match job {
        Some(j) => j.id.clone(),
        None => crate::codec::key_hash(RATE_LIMIT_SCOPE, &Value::String(message_id.to_owned())),
    };
    match s.schedule(req).await {
        Ok(r) => {
            tracing::warn!(function, limit, job_id = %r.job_id, retry_in_ms = wait.as_millis() as u64, "over the rate limit: deferred to the next window");
            Some(Outcome::Deferred)
        }
        Err(e) => {
            tracing::warn!(function, error = %e, "over the rate limit and could not defer; the message will be redelivered");
            Some(Outcome::Failed)
        }
    }
}
