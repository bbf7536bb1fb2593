//! The queue worker: SQS batches of extension envelopes, answered with a partial batch
//! response.
//!
//! The startup module mounts [`SqsWorker`] on the Lambda transport, which hands it an invocation
//! that has no client context and whose payload is an SQS event ([`is_sqs_event`]: a non-empty
//! `Records` array whose every record has `eventSource == "aws:sqs"`). Every record's body is
//! parsed once (`message.rs`) and handed to the handler of its kind (`handlers.rs`): an
//! **envelope**, dispatched exactly like a direct call through [`Extension::call`] (stack
//! [`Stack::Queue`]) after its rate limits ([`crate::jobs::limits`]); a deferred **job**
//! ([`crate::jobs::deferred`]); a **run or stream** message ([`crate::jobs::runs`]); or a
//! **webhook** message from the incoming queue ([`crate::incoming`]), run as an envelope of
//! type `webhooks` for the function its endpoint names.
//!
//! The answer, the batch policies (all failed, missing ids, FIFO groups, redeliveries,
//! duplicates, the deadline) and the webhook functions' idempotency key are described for
//! users in docs/queues-and-schedules.md ("Queue worker") and docs/webhooks.md; what each
//! promises under failures is in docs/RELIABILITY.md ("Delivery guarantees").
//!
//! [`Stack::Queue`]: crate::dispatch::Stack::Queue

mod batch;
mod handlers;
pub mod local;
mod message;
mod rate;
#[cfg(test)]
mod tests;

pub use batch::{BatchError, BatchResponse, ItemFailure};
pub use message::{is_webhook_message, webhook_envelope};

use crate::dispatch::Extension;
use batch::{Record, read_batch};
use futures_util::StreamExt;
use handlers::handle_message;
use serde_json::Value;
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
/// Message groups (or standard-queue records) processed at once.
pub const MAX_CONCURRENCY: usize = 16;
/// A record is not started with less time than this left before the invocation deadline.
pub const MIN_START: Duration = Duration::from_millis(500);
/// The SQS attribute naming a FIFO message's group.
pub const GROUP_ATTRIBUTE: &str = "MessageGroupId";

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
                        handle_message(ext, idem.as_ref(), &record, request_id, deadline, hard_deadline)
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
