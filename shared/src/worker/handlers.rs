//! One record, run: its body parsed once into a [`Message`], then one small handler per kind
//! (run or stream, webhook, deferred job, envelope).

use super::batch::Record;
use super::message::Message;
use super::rate::rate_limit;
use super::{IDEMPOTENCY_SCOPE, JOB_IDEMPOTENCY_SCOPE, Outcome, WEBHOOK_IDEMPOTENCY_SCOPE};
use crate::dispatch::{CallRequest, Extension, Stack};
use crate::jobs::deferred::JobRef;
use crate::protocol::Envelope;
use crate::protocol::error::lambda_message;
use crate::store::idempotency::{Idempotency, IdempotencyError, IdempotencyKey, OnceError};
use crate::time::EpochMillis;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The recorded result of a message deferred to a later window (not JSON, so no function's
/// result can look like it).
const DEFERRED: &str = "\u{0}deferred";
/// Time kept from a call for the bookkeeping writes after it (the idempotency record).
const BOOKKEEPING: Duration = Duration::from_millis(1500);

/// The call's deadline: the invocation's, less [`BOOKKEEPING`] when there is time for it.
fn call_deadline(deadline: Option<Instant>, hard_deadline: Instant) -> Option<Instant> {
    let reserved = hard_deadline.checked_sub(BOOKKEEPING)?;
    (reserved > Instant::now() + BOOKKEEPING)
        .then_some(reserved)
        .or(deadline)
}

/// One record's delivery: what every handler needs.
#[derive(Clone, Copy)]
struct Delivery<'a> {
    ext: &'a Extension,
    idem: Option<&'a Arc<Idempotency>>,
    record: &'a Record,
    request_id: &'a str,
    deadline: Option<Instant>,
    hard_deadline: Instant,
}

/// Run one record: a run/stream message goes to the run engine; an envelope (or a deferred
/// job's envelope) passes the job check and the rate limits, then runs through the
/// idempotency layer and the dispatcher. The body is parsed once into a [`Message`], then
/// handled by its kind's handler.
pub(super) async fn handle_message(
    ext: &Extension,
    idem: Option<&Arc<Idempotency>>,
    record: &Record,
    request_id: &str,
    deadline: Option<Instant>,
    hard_deadline: Instant,
) -> Outcome {
    let message = match Message::parse(record.body.as_deref()) {
        Ok(message) => message,
        Err(e) => {
            e.log();
            return Outcome::Failed;
        }
    };
    let d = Delivery {
        ext,
        idem,
        record,
        request_id,
        deadline,
        hard_deadline,
    };
    match message {
        Message::Run(body) => run_stream(d, body).await,
        Message::Webhook { envelope, identity } => run_webhook(d, envelope, identity).await,
        Message::Job { envelope, job } => run_job(d, envelope, job).await,
        Message::Envelope(body) => run_envelope(d, body).await,
    }
}

/// A run or stream message: handed to the run engine, whose claims make it exactly-once.
async fn run_stream(d: Delivery<'_>, body: Value) -> Outcome {
    let Some(runs) = d.ext.services().runs.clone() else {
        tracing::error!(
            "run/stream message, but this worker has no run engine (integrations or work queue missing)"
        );
        return Outcome::Failed;
    };
    // Bounded by the call's deadline like any function (integration code may hang); past
    // it the message fails and SQS redelivers it (a stream's claim is by attempt, so the
    // redelivery takes over cleanly).
    let budget = d
        .deadline
        .unwrap_or(d.hard_deadline)
        .saturating_duration_since(Instant::now());
    match tokio::time::timeout(budget, runs.handle(&body)).await {
        Ok(Ok(())) => Outcome::Succeeded,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "run/stream message failed; it will be redelivered");
            Outcome::Failed
        }
        Err(_) => {
            tracing::warn!(
                budget_ms = budget.as_millis() as u64,
                "run/stream message overran its deadline; it will be redelivered"
            );
            Outcome::Failed
        }
    }
}

/// An envelope: rate limits, then the call, idempotent by its message id.
async fn run_envelope(d: Delivery<'_>, body: Value) -> Outcome {
    run_idempotent(d, body, None, |body| {
        IdempotencyKey::from_caller(IDEMPOTENCY_SCOPE, &d.record.id, body)
    })
    .await
}

/// A webhook message's envelope: like any envelope, but idempotent by its endpoint and dedup
/// key when it has one (every copy of one event runs once), else by its message id.
async fn run_webhook(
    d: Delivery<'_>,
    envelope: Value,
    identity: Option<(String, Value)>,
) -> Outcome {
    run_idempotent(d, envelope, None, |body| match &identity {
        Some((key, payload)) => {
            IdempotencyKey::from_caller(WEBHOOK_IDEMPOTENCY_SCOPE, key, payload)
        }
        None => IdempotencyKey::from_caller(IDEMPOTENCY_SCOPE, &d.record.id, body),
    })
    .await
}

/// A deferred job's envelope: run only if the job still has that version (otherwise stale),
/// idempotent by the job id and version, and the job item removed after it ran.
async fn run_job(d: Delivery<'_>, body: Value, job: JobRef) -> Outcome {
    let Some(s) = &d.ext.services().scheduler else {
        tracing::error!(job_id = %job.id, "deferred job, but this worker has no scheduler (work queue missing)");
        return Outcome::Failed;
    };
    match s.is_current(&job).await {
        Ok(true) => {}
        Ok(false) => {
            tracing::info!(job_id = %job.id, version = %job.version, "job replaced, cancelled or already done; not run");
            return Outcome::Stale;
        }
        Err(e) => {
            tracing::warn!(job_id = %job.id, error = %e, "job check failed; it will be redelivered");
            return Outcome::Failed;
        }
    }
    // A deferred job is keyed by its id and version (its messages may differ).
    let outcome = run_idempotent(d, body, Some(&job), |body| {
        IdempotencyKey::from_caller(
            JOB_IDEMPOTENCY_SCOPE,
            &format!("{}#{}", job.id, job.version),
            body,
        )
    })
    .await;
    if outcome == Outcome::Succeeded
        && let Err(e) = s.complete(&job).await
    {
        // The run is recorded by the idempotency layer; the item expires by its TTL.
        tracing::warn!(job_id = %job.id, error = %e, "job ran but its item could not be removed");
    }
    outcome
}

/// The rate limits and the call, through the idempotency layer under the key `key` gives for
/// the body (without an `Idempotency` service, the call simply runs).
async fn run_idempotent(
    d: Delivery<'_>,
    body: Value,
    job: Option<&JobRef>,
    key: impl FnOnce(&Value) -> IdempotencyKey,
) -> Outcome {
    let Delivery {
        ext,
        idem,
        record,
        request_id,
        deadline,
        hard_deadline,
    } = d;
    let services = ext.services();
    let scheduler = services.scheduler.clone();
    let call = |body: Value| async move {
        let req = CallRequest {
            envelope: Envelope::from_body(body),
            stack: Stack::Queue,
            request_id: request_id.to_owned(),
            trace_id: record.trace.clone(),
            deadline: call_deadline(deadline, hard_deadline),
        };
        ext.call(req)
            .await
            .map(|reply| reply.into_lambda().into_string())
            .map_err(|errors| lambda_message(&errors))
    };
    // The rate limits are applied inside the idempotent section: a redelivered message that
    // already ran (or was already deferred) is answered from its record and never admitted,
    // deferred or run again.
    let (job_ref, scheduler_ref) = (job, scheduler.as_deref());
    let admit_then_call = |body: Value| async move {
        match rate_limit(services, scheduler_ref, job_ref, &record.id, &body).await {
            Some(Outcome::Deferred) => Ok(DEFERRED.to_owned()),
            Some(_) => Err("over the rate limit and not deferred".to_owned()),
            None => call(body).await,
        }
    };
    match idem {
        None => match admit_then_call(body).await {
            Ok(r) if r == DEFERRED => Outcome::Deferred,
            Ok(_) => Outcome::Succeeded,
            Err(_) => Outcome::Failed,
        },
        Some(idem) => {
            let key = key(&body);
            let lock_until = EpochMillis::from_deadline(hard_deadline);
            match idem.once(&key, lock_until, || admit_then_call(body)).await {
                Ok(outcome) if outcome.is_replayed() => {
                    tracing::info!(
                        "message already processed by an earlier delivery; not run again"
                    );
                    Outcome::Replayed
                }
                Ok(outcome) if outcome.as_str() == DEFERRED => Outcome::Deferred,
                Ok(_) => Outcome::Succeeded,
                // The call's own 422 was logged by `Extension::call`.
                Err(OnceError::Handler(_)) => Outcome::Failed,
                Err(OnceError::Idempotency(IdempotencyError::ResultNotStored)) => {
                    tracing::info!(
                        "message already processed by an earlier delivery (result not stored); not run again"
                    );
                    Outcome::Replayed
                }
                Err(OnceError::Idempotency(e)) => {
                    if e.is_retryable() {
                        tracing::warn!(code = e.code(), error = %e, "message not processed now; it will be redelivered");
                    } else {
                        tracing::error!(code = e.code(), error = %e, "message refused by the idempotency layer");
                    }
                    Outcome::Failed
                }
            }
        }
    }
}
