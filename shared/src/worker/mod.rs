//! The queue worker: SQS batches of extension envelopes, answered with a partial batch
//! response.
//!
//! The startup module mounts [`SqsWorker`] on the Lambda transport, which hands it an invocation
//! that has no client context and whose payload is an SQS event ([`is_sqs_event`]: a non-empty
//! `Records` array whose every record has `eventSource == "aws:sqs"`). Every record's body is
//! an extension envelope (`diy`/`_connectorId`, `function`, optional `type`, `options`),
//! dispatched exactly like a direct call through [`Extension::call`] (stack
//! [`Stack::Queue`]); the function's result is discarded (nobody waits for it).
//!
//! Three kinds of body are recognised:
//!
//! - an **envelope**: checked against the function's rate limits ([`crate::jobs::limits`]; over
//!   the limit it is deferred to the next window, counted as a success), then run;
//! - an envelope with **`_job`** (a deferred job, [`crate::jobs::deferred`]): run only if the
//!   job still has that version (otherwise acknowledged as stale), idempotent by job id and
//!   version, and the job item removed after it ran;
//! - a **run or stream message** (`{"run": …}` / `{"stream": …}`, [`crate::jobs::runs`]):
//!   handed to the run engine, whose claims make it exactly-once;
//! - a **webhook message** from the incoming queue (`{"endpoint", "event", …, "function"}`,
//!   [`crate::incoming`]; see "Webhook messages" below).
//!
//! # Webhook messages
//!
//! The worker also consumes the incoming queue (its own event source mapping, with partial
//! batch responses; locally the in-process queue). An accepted event whose endpoint names a
//! `function` becomes the envelope
//! `{"diy":true,"type":"webhooks","function":<function>,"options":<the message less "function">}`,
//! so the webhook function (registered with `Module::webhook`, namespace `webhooks`) gets
//! [`WebhookOptions`](crate::types::WebhookOptions): `endpoint`, `event` (flattened),
//! `headers` (the forwarded ones), `dedupKey`, `auth`, `receivedAt`, `requestId`. It then
//! runs like any queued envelope (rate limits, panic and deadline isolation), except for its
//! idempotency key: with a `dedupKey`, the key is (scope `webhook`) the endpoint and the dedup
//! key, and the payload is the function, endpoint and event only. So every copy of one event
//! (a redelivery, the second copy a lost `SendMessage` reply queued, or a sender's retry
//! accepted again after a crash) runs the function once. Without a `dedupKey` the message id
//! is the key, as for any message. A webhook message whose endpoint names no function fails
//! (and reaches the incoming dead-letter queue after its redrive count), so no event is
//! dropped unseen.
//!
//! # Answer
//!
//! The partial batch response, byte for byte (the event source mapping must have
//! `FunctionResponseTypes: [ReportBatchItemFailures]`, otherwise Lambda ignores it):
//!
//! - `{"batchItemFailures":[]}` when every message succeeded;
//! - `{"batchItemFailures":[{"itemIdentifier":"<messageId>"},…]}` listing exactly the failed
//!   messages, in the order of the batch. A message fails when its body is not JSON, when the
//!   call fails (any 422: invalid envelope, unknown function, the function's error, a panic, a
//!   timeout), or when the idempotency layer says so (see below).
//!
//! # Policies
//!
//! - **A record without a `messageId`** (or with an empty one): Lambda reads an empty or null
//!   `itemIdentifier` as "the whole batch failed", and a failure we cannot name could never be
//!   retried alone. So the invocation **fails with `Worker.MissingMessageId`** before any
//!   record is processed (nothing runs, nothing is deleted, Lambda retries the whole batch, and
//!   the batch reaches the dead-letter queue after `maxReceiveCount`). SQS always sets the id;
//!   this only guards hand-made events.
//! - **Every message failed**: the invocation **fails with `Worker.BatchFailed`** (as AWS
//!   Lambda Powertools does by default): the Lambda `Errors` metric and the event source's
//!   back-off see it, and SQS makes every message visible again, exactly as if each id had been
//!   listed. A batch where at least one message succeeded is answered with the list.
//! - **FIFO** (`attributes.MessageGroupId` present): the records of one group run in batch
//!   order, one at a time; after a failure the group's remaining records are **not run** and
//!   are reported failed too, so the group's order is kept on redelivery. Other groups go on.
//!   Groups (and the records of a standard queue, each its own group) run concurrently, at
//!   most [`MAX_CONCURRENCY`] at once.
//! - **Idempotent deliveries**: each record runs through the [`Idempotency`] service under the
//!   key (scope `sqs`, the message id) with the parsed body as the payload. A redelivered
//!   message that already completed is **not run again** and counts as a success; one that is
//!   in progress elsewhere is reported failed (SQS redelivers it later, when it replays). The
//!   same id with another body (`idempotency_payload_mismatch`) is reported failed and logged.
//!   A completed run whose result was too large to store counts as a success (the worker needs
//!   no result). Without an `Idempotency` service (unit tests) records simply run.
//! - **Duplicate ids within one batch** (possible on standard queues): the first record with an
//!   id runs; later copies are skipped and share its outcome.
//! - **Deadline**: a record is not started with less than [`MIN_START`] left before the
//!   invocation's deadline; it is reported failed and redelivered. This guard is off when the
//!   invocation had less than twice [`MIN_START`] from the start (local emulators such as
//!   `cargo lambda` send a deadline already past): each call then meets the dispatcher's own
//!   deadline handling, as on every other event kind.
//!
//! One log line per batch gives the counts (`records`, `succeeded`, `replayed`, `failed`,
//! `skipped`, `groups`, `duration_ms`); every call also has its usual `extension call` line.

pub mod local;

use crate::dispatch::{CallRequest, Extension, Stack};
use crate::jobs::deferred::{JobRef, ScheduleRequest, Scheduler, job_id_for_key};
use crate::jobs::limits::Admission;
use crate::jobs::runs::is_run_message;
use crate::protocol::Envelope;
use crate::protocol::error::lambda_message;
use crate::store::idempotency::{Idempotency, IdempotencyError, IdempotencyKey, RunError};
use crate::time::EpochMillis;
use aws_lambda_events::sqs::SqsMessage;
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Idempotency scope of SQS deliveries (the key is the message id).
pub const IDEMPOTENCY_SCOPE: &str = "sqs";
/// Idempotency scope of webhook events with a dedup key (the key is the endpoint and the key).
pub const WEBHOOK_IDEMPOTENCY_SCOPE: &str = "webhook";
/// The namespace (envelope `type`) webhook functions are registered in.
pub const WEBHOOK_NAMESPACE: &str = "webhooks";
/// Idempotency scope of deferred jobs (the key is the job id and version).
pub const JOB_IDEMPOTENCY_SCOPE: &str = "job";
/// Scope of the job ids of messages deferred by a rate limit (the key is the message id).
const RATE_LIMIT_SCOPE: &str = "rate-deferred";
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
/// Message groups (or standard-queue records) processed at once.
pub const MAX_CONCURRENCY: usize = 16;
/// A record is not started with less time than this left before the invocation deadline.
pub const MIN_START: Duration = Duration::from_millis(500);
/// The SQS attribute naming a FIFO message's group.
pub const GROUP_ATTRIBUTE: &str = "MessageGroupId";
use crate::store::queue::TRACE_ATTRIBUTE;

/// Is `payload` an SQS event (a non-empty `Records` array, every record from `aws:sqs`)?
pub fn is_sqs_event(payload: &Value) -> bool {
    payload
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            !records.is_empty()
                && records
                    .iter()
                    .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        })
}

/// Is `body` a message of the incoming queue (`endpoint` and `event`, not an envelope)?
pub fn is_webhook_message(body: &Value) -> bool {
    body.get("endpoint").is_some_and(Value::is_string)
        && body.get("event").is_some_and(Value::is_object)
        && body.get("options").is_none()
}

/// A webhook message as an envelope, plus its idempotency identity (the key and the payload
/// hashed with it) when it has a dedup key; an error when its endpoint names no function.
pub fn webhook_envelope(body: Value) -> Result<(Value, Option<(String, Value)>), String> {
    let Value::Object(mut message) = body else {
        return Err("a webhook message must be a JSON object".into());
    };
    let endpoint = message
        .get("endpoint")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let function = match message.remove("function") {
        Some(Value::String(f)) if !f.is_empty() => f,
        _ => {
            return Err(format!(
                "endpoint \"{endpoint}\" names no webhook function (set \"function\" in its configuration)"
            ));
        }
    };
    let identity = match message.get("dedupKey") {
        Some(Value::String(k)) => Some((
            format!("{endpoint}#{k}"),
            serde_json::json!({
                "function": function,
                "endpoint": endpoint,
                "event": message.get("event").cloned().unwrap_or(Value::Null),
            }),
        )),
        _ => None,
    };
    let envelope = serde_json::json!({
        "diy": true,
        "type": WEBHOOK_NAMESPACE,
        "function": function,
        "options": Value::Object(message),
    });
    Ok((envelope, identity))
}

/// The worker as the Lambda transport's consumer of SQS events.
#[derive(Debug, Clone, Copy, Default)]
pub struct SqsWorker;

#[async_trait::async_trait]
impl crate::transport::lambda::EventConsumer for SqsWorker {
    fn accepts(&self, payload: &Value) -> bool {
        is_sqs_event(payload)
    }
    async fn consume(
        &self,
        ext: &Extension,
        payload: Value,
        request_id: &str,
        deadline: Option<Instant>,
    ) -> Result<String, lambda_runtime::Diagnostic> {
        match handle_batch(ext, payload, request_id, deadline).await {
            Ok(response) => Ok(response.to_json()),
            Err(e) => Err(lambda_runtime::Diagnostic {
                error_type: e.error_type().into(),
                error_message: e.to_string(),
            }),
        }
    }
}

/// One failed message of the partial batch response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// The partial batch response (`{"batchItemFailures":[…]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

impl BatchResponse {
    /// The exact JSON text Lambda receives.
    pub fn to_json(&self) -> String {
        let items: Vec<String> = self
            .batch_item_failures
            .iter()
            .map(|f| {
                format!(
                    "{{\"itemIdentifier\":{}}}",
                    Value::String(f.item_identifier.clone())
                )
            })
            .collect();
        format!("{{\"batchItemFailures\":[{}]}}", items.join(","))
    }
}

/// Why the whole invocation fails (the batch is retried as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error(
        "record {index} of the batch has no messageId, so its failure could not be reported; no record was processed and the whole batch will be retried"
    )]
    MissingMessageId { index: usize },
    #[error("the SQS event could not be read: {0}")]
    InvalidEvent(String),
    #[error("every message of the batch failed ({}): {}", .failed.len(), .failed.join(", "))]
    AllFailed { failed: Vec<String> },
}

impl BatchError {
    /// The Lambda `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            BatchError::MissingMessageId { .. } => "Worker.MissingMessageId",
            BatchError::InvalidEvent(_) => "Worker.InvalidEvent",
            BatchError::AllFailed { .. } => "Worker.BatchFailed",
        }
    }
}

/// What happened to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Ran now and succeeded.
    Succeeded,
    /// Completed by an earlier delivery; not run again.
    Replayed,
    /// Ran (or could not run) and failed.
    Failed,
    /// Not run: an earlier record of its FIFO group failed, or the deadline was too close.
    Skipped,
    /// Over a rate limit: rescheduled for the next window (not run now, not lost).
    Deferred,
    /// A deferred job's message whose job was replaced, cancelled or already run.
    Stale,
}

impl Outcome {
    fn ok(self) -> bool {
        matches!(
            self,
            Outcome::Succeeded | Outcome::Replayed | Outcome::Deferred | Outcome::Stale
        )
    }
}

struct Record {
    index: usize,
    id: String,
    body: Option<String>,
    /// The sender's X-Ray trace header (the `AWSTraceHeader` system attribute).
    trace: Option<String>,
}

/// One batch, read: its records grouped (a FIFO group, or one record of a standard queue).
struct Batch {
    total: usize,
    groups: Vec<(Option<String>, Vec<Record>)>,
    /// Copies of a message id already in the batch (skipped).
    duplicates: usize,
}

/// Process one SQS batch (see the module docs): the partial batch response, or an error that
/// fails the invocation. Read every record → run the groups → report.
pub async fn handle_batch(
    ext: &Extension,
    payload: Value,
    request_id: &str,
    deadline: Option<Instant>,
) -> Result<BatchResponse, BatchError> {
    let started = Instant::now();
    let batch = read_batch(payload)?;
    let group_count = batch.groups.len();
    let fifo_groups = batch.groups.iter().filter(|(g, _)| g.is_some()).count();
    let outcomes = run_groups(ext, batch.groups, request_id, deadline, started).await;
    let count = |f: Outcome| outcomes.iter().filter(|(_, _, x)| *x == f).count();
    let failures: Vec<String> = outcomes
        .iter()
        .filter(|(_, _, f)| !f.ok())
        .map(|(_, id, _)| id.clone())
        .collect();
    let all_failed = !outcomes.is_empty() && failures.len() == outcomes.len();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    macro_rules! batch_line {
        ($level:ident, $message:literal) => {
            tracing::$level!(
                records = batch.total,
                succeeded = count(Outcome::Succeeded),
                replayed = count(Outcome::Replayed),
                failed = count(Outcome::Failed),
                skipped = count(Outcome::Skipped),
                deferred = count(Outcome::Deferred),
                stale = count(Outcome::Stale),
                duplicates = batch.duplicates,
                groups = group_count,
                fifo_groups,
                request_id,
                duration_ms = format_args!("{elapsed_ms:.3}"),
                $message
            )
        };
    }
    crate::metrics::batch(&[
        ("BatchRecords", batch.total),
        ("BatchSucceeded", count(Outcome::Succeeded)),
        ("BatchFailed", count(Outcome::Failed)),
        ("BatchSkipped", count(Outcome::Skipped)),
        ("BatchReplayed", count(Outcome::Replayed)),
        ("BatchDeferred", count(Outcome::Deferred)),
        ("BatchStale", count(Outcome::Stale)),
    ]);
    if all_failed {
        batch_line!(
            error,
            "sqs batch: every message failed; failing the invocation"
        );
        return Err(BatchError::AllFailed { failed: failures });
    }
    batch_line!(info, "sqs batch");
    Ok(BatchResponse {
        batch_item_failures: failures
            .into_iter()
            .map(|item_identifier| ItemFailure { item_identifier })
            .collect(),
    })
}

/// Read every record first (a missing id fails the invocation before anything runs), skip
/// repeated ids, and group the records.
fn read_batch(payload: Value) -> Result<Batch, BatchError> {
    let raw = match payload {
        Value::Object(mut map) => match map.remove("Records") {
            Some(Value::Array(records)) => records,
            _ => return Err(BatchError::InvalidEvent("no Records array".into())),
        },
        _ => return Err(BatchError::InvalidEvent("not a JSON object".into())),
    };
    let total = raw.len();
    let mut records = Vec::with_capacity(total);
    for (index, value) in raw.into_iter().enumerate() {
        let id_in_json = value
            .get("messageId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let message: SqsMessage = serde_json::from_value(value).unwrap_or_default();
        let id = message
            .message_id
            .clone()
            .or(id_in_json)
            .filter(|id| !id.is_empty());
        let Some(id) = id else {
            let e = BatchError::MissingMessageId { index };
            tracing::error!(records = total, error = %e, "sqs batch rejected");
            return Err(e);
        };
        let group = message.attributes.get(GROUP_ATTRIBUTE).cloned();
        let trace = message.attributes.get(TRACE_ATTRIBUTE).cloned();
        records.push((index, id, message.body, group, trace));
    }
    let mut groups: Vec<(Option<String>, Vec<Record>)> = Vec::new();
    let mut seen = HashSet::new();
    let mut duplicates = 0usize;
    for (index, id, body, group, trace) in records {
        if !seen.insert(id.clone()) {
            duplicates += 1;
            tracing::warn!(message_id = %id, "message delivered twice in one batch; the copy is skipped");
            continue;
        }
        let record = Record {
            index,
            id,
            body,
            trace,
        };
        match &group {
            Some(g) => match groups.iter_mut().find(|(k, _)| k.as_deref() == Some(g)) {
                Some((_, list)) => list.push(record),
                None => groups.push((group, vec![record])),
            },
            None => groups.push((None, vec![record])),
        }
    }
    Ok(Batch {
        total,
        groups,
        duplicates,
    })
}

/// Run the groups concurrently ([`MAX_CONCURRENCY`] at once), each group's records in order;
/// the outcomes in batch order.
async fn run_groups(
    ext: &Extension,
    groups: Vec<(Option<String>, Vec<Record>)>,
    request_id: &str,
    deadline: Option<Instant>,
    started: Instant,
) -> Vec<(usize, String, Outcome)> {
    let idem = ext.services().idempotency.clone();
    let hard_deadline = deadline.unwrap_or_else(|| Instant::now() + ext.timeout());
    let guard_deadline = hard_deadline.saturating_duration_since(started) >= 2 * MIN_START;
    let outcomes: Vec<Vec<(usize, String, Outcome)>> = futures_util::stream::iter(groups)
        .map(|(_, group)| {
            let idem = idem.clone();
            async move {
                let mut out = Vec::with_capacity(group.len());
                let mut broken = false;
                for record in group {
                    let outcome = if broken {
                        Outcome::Skipped
                    } else if guard_deadline
                        && hard_deadline.saturating_duration_since(Instant::now()) < MIN_START
                    {
                        tracing::warn!(message_id = %record.id, remaining_ms = hard_deadline.saturating_duration_since(Instant::now()).as_millis() as u64, "too close to the deadline to start; left for redelivery");
                        Outcome::Skipped
                    } else {
                        let span = tracing::info_span!("sqs_message", message_id = %record.id);
                        run_record(ext, idem.as_ref(), &record, request_id, deadline, hard_deadline)
                            .instrument(span)
                            .await
                    };
                    // A FIFO group stops at its first failure; for a standard-queue record the
                    // "group" has just this one record.
                    broken |= !outcome.ok();
                    out.push((record.index, record.id, outcome));
                }
                out
            }
        })
        .buffer_unordered(MAX_CONCURRENCY)
        .collect()
        .await;

    let mut outcomes: Vec<(usize, String, Outcome)> = outcomes.into_iter().flatten().collect();
    outcomes.sort_by_key(|(index, _, _)| *index);
    outcomes
}

/// Run one record: a run/stream message goes to the run engine; an envelope (or a deferred
/// job's envelope) passes the job check and the rate limits, then runs through the
/// idempotency layer and the dispatcher.
async fn run_record(
    ext: &Extension,
    idem: Option<&Arc<Idempotency>>,
    record: &Record,
    request_id: &str,
    deadline: Option<Instant>,
    hard_deadline: Instant,
) -> Outcome {
    let body: Value = match record.body.as_deref().map(serde_json::from_str) {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "message body is not JSON");
            return Outcome::Failed;
        }
        None => {
            tracing::warn!("message has no body");
            return Outcome::Failed;
        }
    };
    let services = ext.services();
    if is_run_message(&body) {
        let Some(runs) = services.runs.clone() else {
            tracing::error!(
                "run/stream message, but this worker has no run engine (integrations or work queue missing)"
            );
            return Outcome::Failed;
        };
        // Bounded by the call's deadline like any function (integration code may hang); past
        // it the message fails and SQS redelivers it (a stream's claim is by attempt, so the
        // redelivery takes over cleanly).
        let budget = deadline
            .unwrap_or(hard_deadline)
            .saturating_duration_since(Instant::now());
        return match tokio::time::timeout(budget, runs.handle(&body)).await {
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
        };
    }
    let (body, webhook) = if is_webhook_message(&body) {
        match webhook_envelope(body) {
            Ok(pair) => pair,
            Err(e) => {
                tracing::error!(error = %e, "webhook message not run; it will be redelivered, then dead-lettered");
                return Outcome::Failed;
            }
        }
    } else {
        (body, None)
    };
    let scheduler = services.scheduler.clone();
    let job = JobRef::from_body(&body);
    if let Some(job) = &job {
        let Some(s) = &scheduler else {
            tracing::error!(job_id = %job.id, "deferred job, but this worker has no scheduler (work queue missing)");
            return Outcome::Failed;
        };
        match s.is_current(job).await {
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
    }
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
    let (job_ref, scheduler_ref) = (job.as_ref(), scheduler.as_deref());
    let admit_then_call = |body: Value| async move {
        match rate_limit(services, scheduler_ref, job_ref, &record.id, &body).await {
            Some(Outcome::Deferred) => Ok(DEFERRED.to_owned()),
            Some(_) => Err("over the rate limit and not deferred".to_owned()),
            None => call(body).await,
        }
    };
    let outcome = match idem {
        None => match admit_then_call(body).await {
            Ok(r) if r == DEFERRED => Outcome::Deferred,
            Ok(_) => Outcome::Succeeded,
            Err(_) => Outcome::Failed,
        },
        Some(idem) => {
            // A deferred job is keyed by its id and version (its messages may differ); any
            // other message by its message id.
            // A webhook event by its endpoint and dedup key (every copy of it runs once).
            let key = match (&job, &webhook) {
                (Some(j), _) => IdempotencyKey::from_caller(
                    JOB_IDEMPOTENCY_SCOPE,
                    &format!("{}#{}", j.id, j.version),
                    &body,
                ),
                (None, Some((key, payload))) => {
                    IdempotencyKey::from_caller(WEBHOOK_IDEMPOTENCY_SCOPE, key, payload)
                }
                (None, None) => IdempotencyKey::from_caller(IDEMPOTENCY_SCOPE, &record.id, &body),
            };
            let lock_until = EpochMillis::from_deadline(hard_deadline);
            match idem.run(&key, lock_until, || admit_then_call(body)).await {
                Ok(outcome) if outcome.is_replayed() => {
                    tracing::info!(
                        "message already processed by an earlier delivery; not run again"
                    );
                    Outcome::Replayed
                }
                Ok(outcome) if outcome.as_str() == DEFERRED => Outcome::Deferred,
                Ok(_) => Outcome::Succeeded,
                // The call's own 422 was logged by `Extension::call`.
                Err(RunError::Handler(_)) => Outcome::Failed,
                Err(RunError::Idempotency(IdempotencyError::ResultNotStored)) => {
                    tracing::info!(
                        "message already processed by an earlier delivery (result not stored); not run again"
                    );
                    Outcome::Replayed
                }
                Err(RunError::Idempotency(e)) => {
                    if e.is_retryable() {
                        tracing::warn!(code = e.code(), error = %e, "message not processed now; it will be redelivered");
                    } else {
                        tracing::error!(code = e.code(), error = %e, "message refused by the idempotency layer");
                    }
                    Outcome::Failed
                }
            }
        }
    };
    if outcome == Outcome::Succeeded
        && let (Some(job), Some(s)) = (&job, &scheduler)
        && let Err(e) = s.complete(job).await
    {
        // The run is recorded by the idempotency layer; the item expires by its TTL.
        tracing::warn!(job_id = %job.id, error = %e, "job ran but its item could not be removed");
    }
    outcome
}

/// Apply the function's rate limits: `None` to go on, or the record's outcome when it was
/// deferred to the next window (or could not be checked).
async fn rate_limit(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{ExtError, Invocation, Module, Services};
    use crate::store::idempotency::{Idempotency, IdempotencyStore, LockToken, MemoryIdempotency};
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn record(id: Option<&str>, body: &str, group: Option<&str>) -> Value {
        let mut r = json!({
            "receiptHandle": "rh",
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work",
            "awsRegion": "us-east-1"
        });
        if let Some(id) = id {
            r["messageId"] = json!(id);
        }
        if let Some(g) = group {
            r["attributes"]["MessageGroupId"] = json!(g);
        }
        r
    }

    fn call(function: &str, n: u64) -> String {
        json!({"diy": true, "function": function, "options": {"n": n}}).to_string()
    }

    struct Fixture {
        ext: Extension,
        runs: Arc<AtomicUsize>,
        store: Arc<MemoryIdempotency>,
    }

    fn fixture() -> Fixture {
        let runs = Arc::new(AtomicUsize::new(0));
        let mut m = Module::new();
        let counter = runs.clone();
        m.raw("count", move |_inv: Invocation, o: Value| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::SeqCst);
                Ok::<_, ExtError>(o)
            }
        });
        m.raw("slow", |_inv: Invocation, o: Value| async move {
            let ms = o["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Ok::<_, ExtError>(o)
        });
        m.raw("fail", |_inv: Invocation, _o: Value| async {
            Err::<Value, _>(ExtError::with_code("boom", "failed on purpose"))
        });
        let store = Arc::new(MemoryIdempotency::default());
        let services =
            Services::default().with_idempotency(Arc::new(Idempotency::new(store.clone())));
        let ext = Extension::builder()
            .diy(m)
            .services(services)
            .build()
            .unwrap();
        Fixture { ext, runs, store }
    }

    async fn batch(ext: &Extension, records: Vec<Value>) -> Result<String, BatchError> {
        let deadline = Some(Instant::now() + Duration::from_secs(10));
        handle_batch(ext, json!({ "Records": records }), "req", deadline)
            .await
            .map(|r| r.to_json())
    }

    /// A webhook function counting its runs and keeping what it got.
    fn webhook_fixture() -> (
        Extension,
        Arc<AtomicUsize>,
        Arc<std::sync::Mutex<Vec<Value>>>,
    ) {
        let runs = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counter, log) = (runs.clone(), seen.clone());
        let mut m = Module::new();
        m.webhook(
            "orderCreated",
            move |_inv: Invocation, o: crate::types::WebhookOptions| {
                counter.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut l) = log.lock() {
                    l.push(
                        json!({"endpoint": o.endpoint, "event": o.event, "dedupKey": o.dedup_key,
                    "headers": o.headers}),
                    );
                }
                async { Ok(()) }
            },
        );
        let store = Arc::new(MemoryIdempotency::default());
        let services = Services::default().with_idempotency(Arc::new(Idempotency::new(store)));
        let ext = Extension::builder()
            .diy(m)
            .services(services)
            .build()
            .unwrap();
        (ext, runs, seen)
    }

    fn webhook_message(request_id: &str, dedup: Option<&str>, function: Option<&str>) -> String {
        let mut m = json!({"endpoint": "orders", "receivedAt": "2026-01-02T03:04:05.678Z",
            "requestId": request_id, "dedupKey": dedup, "auth": {"type": "none"},
            "headers": {"webhook-id": "msg_1"}, "event": {"order.id": 7}});
        if let Some(f) = function {
            m["function"] = json!(f);
        }
        m.to_string()
    }

    #[tokio::test]
    async fn a_webhook_message_runs_its_function_once_per_dedup_key() {
        let (ext, runs, seen) = webhook_fixture();
        let first = webhook_message("r1", Some("abc"), Some("orderCreated"));
        let ok = r#"{"batchItemFailures":[]}"#;
        assert_eq!(
            batch(&ext, vec![record(Some("m1"), &first, None)])
                .await
                .unwrap(),
            ok
        );
        assert_eq!(
            seen.lock().unwrap()[0],
            json!({"endpoint": "orders", "event": {"order.id": 7}, "dedupKey": "abc",
                "headers": {"webhook-id": "msg_1"}})
        );
        // Redelivery (same id), then another copy of the event (new id, new request).
        assert_eq!(
            batch(&ext, vec![record(Some("m1"), &first, None)])
                .await
                .unwrap(),
            ok
        );
        let copy = webhook_message("r2", Some("abc"), Some("orderCreated"));
        assert_eq!(
            batch(&ext, vec![record(Some("m2"), &copy, None)])
                .await
                .unwrap(),
            ok
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // Without a dedup key, each message id runs once.
        let plain = webhook_message("r3", None, Some("orderCreated"));
        batch(&ext, vec![record(Some("m3"), &plain, None)])
            .await
            .unwrap();
        batch(&ext, vec![record(Some("m3"), &plain, None)])
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_webhook_message_without_a_function_fails_and_is_not_lost() {
        let (ext, runs, _) = webhook_fixture();
        let none = webhook_message("r1", Some("k"), None);
        let unknown = webhook_message("r2", Some("k2"), Some("nope"));
        let fine = webhook_message("r3", Some("k3"), Some("orderCreated"));
        let out = batch(
            &ext,
            vec![
                record(Some("a"), &none, None),
                record(Some("b"), &unknown, None),
                record(Some("c"), &fine, None),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            r#"{"batchItemFailures":[{"itemIdentifier":"a"},{"itemIdentifier":"b"}]}"#
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        // A webhook function is not reachable at the top level (integrator.io's calls).
        let direct = json!({"diy": true, "function": "orderCreated",
            "options": {"endpoint": "x", "event": {}}})
        .to_string();
        assert!(
            batch(&ext, vec![record(Some("d"), &direct, None)])
                .await
                .is_err()
        );
    }

    #[test]
    fn detects_sqs_events_only() {
        assert!(is_sqs_event(
            &json!({"Records": [record(Some("a"), "{}", None)]})
        ));
        assert!(!is_sqs_event(&json!({"Records": []})));
        assert!(!is_sqs_event(
            &json!({"Records": [{"eventSource": "aws:s3"}]})
        ));
        assert!(!is_sqs_event(
            &json!({"diy": true, "function": "x", "options": {}})
        ));
    }

    #[tokio::test]
    async fn reports_exactly_the_failed_messages() {
        let f = fixture();
        let out = batch(
            &f.ext,
            vec![
                record(Some("id1"), &call("count", 1), None),
                record(Some("id2"), "{not json", None),
                record(Some("id3"), &call("nope", 1), None),
                record(Some("id4"), &call("fail", 1), None),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            r#"{"batchItemFailures":[{"itemIdentifier":"id2"},{"itemIdentifier":"id3"},{"itemIdentifier":"id4"}]}"#
        );
        assert_eq!(f.runs.load(Ordering::SeqCst), 1);
        let ok = batch(&f.ext, vec![record(Some("id5"), &call("count", 2), None)])
            .await
            .unwrap();
        assert_eq!(ok, r#"{"batchItemFailures":[]}"#);
    }

    #[tokio::test]
    async fn fifo_groups_stop_at_their_first_failure() {
        let f = fixture();
        let out = batch(
            &f.ext,
            vec![
                record(Some("a1"), &call("count", 1), Some("A")),
                record(Some("b1"), &call("count", 2), Some("B")),
                record(Some("a2"), &call("fail", 3), Some("A")),
                record(Some("b2"), &call("count", 4), Some("B")),
                record(Some("a3"), &call("count", 5), Some("A")),
            ],
        )
        .await
        .unwrap();
        assert_eq!(
            out,
            r#"{"batchItemFailures":[{"itemIdentifier":"a2"},{"itemIdentifier":"a3"}]}"#
        );
        assert_eq!(f.runs.load(Ordering::SeqCst), 3, "a3 was not run");
    }

    #[tokio::test]
    async fn redeliveries_do_not_run_twice_and_in_flight_ones_wait() {
        let f = fixture();
        let body = call("count", 7);
        let first = batch(&f.ext, vec![record(Some("m1"), &body, None)]).await;
        assert_eq!(first.unwrap(), r#"{"batchItemFailures":[]}"#);
        let again = batch(
            &f.ext,
            vec![
                record(Some("m1"), &body, None),
                record(Some("m1"), &body, None),
            ],
        )
        .await;
        assert_eq!(again.unwrap(), r#"{"batchItemFailures":[]}"#);
        assert_eq!(f.runs.load(Ordering::SeqCst), 1, "ran once");

        // Another invocation holds the lock of m2: m2 fails now (redelivered later).
        let body2 = call("count", 8);
        let parsed: Value = serde_json::from_str(&body2).unwrap();
        let key = IdempotencyKey::from_caller(IDEMPOTENCY_SCOPE, "m2", &parsed);
        let until = EpochMillis::now().after(Duration::from_secs(60));
        let expires = crate::time::EpochSeconds::now().after(Duration::from_secs(600));
        f.store
            .acquire(&key, &LockToken::generate(), until, expires)
            .await
            .unwrap();
        let out = batch(
            &f.ext,
            vec![
                record(Some("m2"), &body2, None),
                record(Some("m3"), &call("count", 9), None),
            ],
        )
        .await
        .unwrap();
        assert_eq!(out, r#"{"batchItemFailures":[{"itemIdentifier":"m2"}]}"#);
        assert_eq!(f.runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn missing_ids_and_all_failed_batches_fail_the_invocation() {
        let f = fixture();
        let err = batch(
            &f.ext,
            vec![
                record(Some("x1"), &call("count", 1), None),
                record(None, &call("count", 2), None),
            ],
        )
        .await
        .unwrap_err();
        assert_eq!(err, BatchError::MissingMessageId { index: 1 });
        assert_eq!(err.error_type(), "Worker.MissingMessageId");
        let empty = batch(&f.ext, vec![record(Some(""), &call("count", 2), None)]).await;
        assert_eq!(empty, Err(BatchError::MissingMessageId { index: 0 }));
        assert_eq!(f.runs.load(Ordering::SeqCst), 0, "nothing ran");

        let err = batch(
            &f.ext,
            vec![
                record(Some("y1"), "[", None),
                record(Some("y2"), &call("fail", 1), None),
            ],
        )
        .await
        .unwrap_err();
        assert_eq!(
            err,
            BatchError::AllFailed {
                failed: vec!["y1".into(), "y2".into()]
            }
        );
        assert_eq!(err.error_type(), "Worker.BatchFailed");
    }

    #[tokio::test]
    async fn records_are_not_started_too_close_to_the_deadline() {
        let f = fixture();
        let slow = json!({"diy": true, "function": "slow", "options": {"ms": 800}}).to_string();
        let out = handle_batch(
            &f.ext,
            json!({"Records": [
                record(Some("s1"), &slow, Some("G")),
                record(Some("s2"), &call("count", 1), Some("G")),
            ]}),
            "req",
            Some(Instant::now() + Duration::from_millis(1200)),
        )
        .await
        .unwrap();
        assert_eq!(
            out.to_json(),
            r#"{"batchItemFailures":[{"itemIdentifier":"s2"}]}"#
        );
        assert_eq!(f.runs.load(Ordering::SeqCst), 0, "s2 was not started");

        // A deadline already past at the start (local emulators): records still run.
        let _ = handle_batch(
            &f.ext,
            json!({"Records": [record(Some("e1"), &call("count", 1), None)]}),
            "req",
            Some(Instant::now()),
        )
        .await;
        assert_eq!(f.runs.load(Ordering::SeqCst), 1, "e1 was started");
    }

    #[test]
    fn response_json_escapes_ids() {
        let r = BatchResponse {
            batch_item_failures: vec![ItemFailure {
                item_identifier: "a\"b".into(),
            }],
        };
        assert_eq!(
            r.to_json(),
            r#"{"batchItemFailures":[{"itemIdentifier":"a\"b"}]}"#
        );
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r.to_json(),
            "the derived form agrees"
        );
    }
}
