//! Deferred invocations: run an envelope later, by key, optionally inside a window (for users:
//! docs/queues-and-schedules.md, "Deferred invocations"; this page is how it works).
//!
//! ```json
//! {"envelope": {"diy": true, "function": "notifyPartner", "options": {"id": 7}},
//!  "key": {"email": "<hash or id>"}, "delay": 3600000,
//!  "window": {"day": "monday-friday", "time": "09:00-17:00"}}
//! ```
//!
//! - `delay` is in milliseconds (0 if absent); `window` is UTC
//!   ([`Window`](super::window::Window)). The job is due at the first instant inside the window
//!   at or after now + delay.
//! - `key` (any JSON; stored only as a hash, the job id) names the job: scheduling again with
//!   the same key **replaces** it, and `cancel` removes it. Without a key the job gets a random
//!   id, returned in the answer.
//! - **Delivery.** A job due within [`MAX_DIRECT_DELAY`] (15 minutes, SQS's longest
//!   `DelaySeconds`) and without a window goes straight to the work queue with that delay; its
//!   item (state `queued`) is written first so that a replace or cancel can still win. Any other
//!   job is stored (state `scheduled`, in the sparse index partition `jobs#scheduled` sorted by
//!   due time) and the `tick` function, run every minute, moves the jobs due within the next
//!   [`LOOKAHEAD`] into the queue.
//! - **Sending under a lease.** A job is sent only while its item says `sending` with a lease
//!   ([`SEND_LEASE`]): the tick's claim is a conditional state change (`scheduled`, or
//!   `sending` whose lease ran out, + version → `sending` until now + lease), so two ticks
//!   never send one job at once; a direct job is written `sending` before its send. After the
//!   send the item becomes `queued` (out of the index). If the sender dies between the claim and
//!   the send, the item stays in the index under its lease, and the first tick after the lease
//!   sends it: no job is orphaned. If it dies between the send and the `queued` write, that
//!   tick sends it again, and the worker runs the version once (idempotent by id + version).
//!   A failed send puts the job back (`scheduled`); a job that can never be sent (its message
//!   over [`MAX_MESSAGE_BYTES`]) is refused when scheduled, and marked `failed` (terminal, out
//!   of the index) if found by a tick.
//! - **Running.** The queued message is the envelope plus `"_job": {"id", "version"}`. The
//!   worker runs it only if the job item still has that version (a replaced or cancelled job is
//!   acknowledged without running), under the idempotency key `job` + id + version (a
//!   redelivered or duplicated message never runs twice), then deletes the item (only that
//!   version). Items carry a TTL (due time + 7 days), so a job whose message ended in the
//!   dead-letter queue does not stay forever.

mod memory;
mod model;
mod store;
#[cfg(test)]
mod tests;

pub use memory::MemoryJobs;
pub use model::{
    Job, JobError, JobRef, JobState, ScheduleRequest, Scheduled, TickReport, Via, job_id_for_key,
};
pub use store::JobStore;

use crate::codec::random_id;
use crate::store::queue::{OutMessage, QueueStore};
use crate::time::Clock;
use crate::time::{EpochMillis, EpochSeconds};
use futures_util::StreamExt;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The longest delay sent to SQS directly (`DelaySeconds` maximum).
pub const MAX_DIRECT_DELAY: Duration = Duration::from_secs(900);
/// The longest delay a job may ask for (a year): past it a delay is a mistake (or an attempt to
/// push the due time out of any representable date), answered as an invalid schedule.
pub const MAX_DELAY: Duration = Duration::from_secs(366 * 24 * 3600);
/// A tick enqueues the jobs due before now + this (with the remaining delay).
pub const LOOKAHEAD: Duration = Duration::from_secs(60);
/// Jobs moved by one tick at most (the rest wait for the next one).
pub const TICK_BATCH: usize = 500;
/// How long a sender holds a job: longer than any send (the SDK gives up on one after 12 s).
pub const SEND_LEASE: Duration = Duration::from_secs(60);
/// The largest message SQS takes (256 KiB): a job whose message is larger is refused.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Concurrent claims during a tick.
const TICK_CONCURRENCY: usize = 16;
/// How long a job item outlives its due time.
const RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);
/// Partition key prefix of job items.
pub const PK_PREFIX: &str = "job#";
/// The index partition of stored (not yet queued) jobs.
pub const DUE_PARTITION: &str = "jobs#scheduled";
/// The member of a queued message that marks it as a deferred job.
pub const JOB_MEMBER: &str = "_job";
/// Key hash scope.
const KEY_SCOPE: &str = "job";
/// The deferred-invocation service (`inv.scheduler()?`).
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn JobStore>,
    queue: Arc<dyn QueueStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

impl Scheduler {
    pub fn new(
        store: Arc<dyn JobStore>,
        queue: Arc<dyn QueueStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            queue,
            clock,
        }
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Schedule (or replace) a job; see the module docs.
    pub async fn schedule(&self, req: ScheduleRequest) -> Result<Scheduled, JobError> {
        let now = self.clock.now();
        let earliest = now.after(req.delay);
        let due_at = match &req.window {
            Some(w) => EpochMillis(w.next_allowed(earliest.0)),
            None => earliest,
        };
        let version = random_id();
        let mut body = req.body;
        body.insert(
            JOB_MEMBER.into(),
            json!({"id": req.job_id, "version": version}),
        );
        let wait = Duration::from_millis(due_at.0.saturating_sub(now.0));
        let via = if req.window.is_none() && wait <= MAX_DIRECT_DELAY {
            Via::Queue
        } else {
            Via::Table
        };
        let body = Value::Object(body).to_string();
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(JobError::Invalid(format!(
                "the job's message is {} bytes; the work queue takes at most {MAX_MESSAGE_BYTES}",
                body.len()
            )));
        }
        let job = Job {
            id: req.job_id,
            version,
            state: match via {
                Via::Queue => JobState::Sending,
                Via::Table => JobState::Scheduled,
            },
            due_at,
            body,
            lease_until: (via == Via::Queue).then(|| now.after(SEND_LEASE)),
        };
        let expires = EpochSeconds(due_at.0 / 1000).after(RETENTION);
        self.store.put(&job, expires).await?;
        if via == Via::Queue {
            if let Err(e) = self.send(&job, wait).await {
                // Not queued: take the item back so nothing claims a job that is nowhere.
                if let Err(d) = self.store.delete(&job.id, Some(&job.version)).await {
                    tracing::error!(job_id = %job.id, error = %d, "could not remove a job whose send failed; a tick sends it after its lease");
                }
                return Err(JobError::Queue(e.0));
            }
            self.mark_sent(&job).await;
        }
        tracing::info!(job_id = %job.id, version = %job.version, due_at = job.due_at.0, via = ?via, "job scheduled");
        Ok(Scheduled {
            job_id: job.id,
            version: job.version,
            due_at,
            via,
        })
    }

    /// The job's message is in the queue: mark it `queued`. If that write fails, the first
    /// tick after the lease sends it again (the worker runs a version once).
    async fn mark_sent(&self, job: &Job) {
        if let Err(e) = self.store.sent(&job.id, &job.version).await {
            tracing::warn!(job_id = %job.id, error = %e, "job sent, but not marked queued; a tick after its lease sends it again");
        }
    }

    /// Send `job`'s message to the work queue, visible after `wait`.
    async fn send(
        &self,
        job: &Job,
        wait: Duration,
    ) -> Result<String, crate::store::queue::QueueError> {
        self.queue
            .send(OutMessage {
                body: job.body.clone(),
                delay: (!wait.is_zero()).then_some(wait),
                ..OutMessage::default()
            })
            .await
    }

    /// Cancel the job with this id; whether there was one.
    pub async fn cancel(&self, job_id: &str) -> Result<bool, JobError> {
        let found = self.store.delete(job_id, None).await?;
        tracing::info!(job_id, found, "job cancelled");
        Ok(found)
    }

    /// Move the due jobs into the queue (exactly once each; see the module docs).
    pub async fn tick(&self) -> Result<TickReport, JobError> {
        let now = self.clock.now();
        let due = self.store.due(now.after(LOOKAHEAD), TICK_BATCH).await?;
        let mut report = TickReport {
            due: due.len(),
            ..TickReport::default()
        };
        let lease_until = now.after(SEND_LEASE);
        let outcomes: Vec<Result<bool, JobError>> = futures_util::stream::iter(due)
            .filter(|job| {
                // A lease still running: its sender is (maybe) at work.
                let leased = job.state == JobState::Sending && job.index_time() > now;
                std::future::ready(!leased)
            })
            .map(|job| async move {
                if !self.store.claim(&job.id, &job.version, now, lease_until).await? {
                    return Ok(false);
                }
                if job.body.len() > MAX_MESSAGE_BYTES {
                    tracing::error!(job_id = %job.id, bytes = job.body.len(), "tick: the job's message is larger than the work queue takes; marked failed");
                    self.store.fail(&job.id, &job.version).await?;
                    return Err(JobError::Invalid("message too large".into()));
                }
                let wait = Duration::from_millis(job.due_at.0.saturating_sub(now.0));
                match self.send(&job, wait).await {
                    Ok(_) => {
                        self.mark_sent(&job).await;
                        Ok(true)
                    }
                    Err(e) => {
                        tracing::warn!(job_id = %job.id, error = %e, "tick: send failed; job put back for the next tick");
                        self.store.unclaim(&job).await?;
                        Err(JobError::Queue(e.0))
                    }
                }
            })
            .buffer_unordered(TICK_CONCURRENCY)
            .collect()
            .await;
        for o in outcomes {
            match o {
                Ok(true) => report.enqueued += 1,
                Ok(false) => report.lost += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "tick: a job was not moved");
                    report.failed += 1;
                }
            }
        }
        tracing::info!(
            due = report.due,
            enqueued = report.enqueued,
            lost = report.lost,
            failed = report.failed,
            "tick"
        );
        Ok(report)
    }

    /// Is the message's job still the current version (not replaced, not cancelled)?
    pub async fn is_current(&self, job: &JobRef) -> Result<bool, JobError> {
        Ok(self
            .store
            .get(&job.id)
            .await?
            .is_some_and(|j| j.version == job.version))
    }

    /// The job ran: remove its item (only this version).
    pub async fn complete(&self, job: &JobRef) -> Result<(), JobError> {
        self.store
            .delete(&job.id, Some(&job.version))
            .await
            .map(|_| ())
    }
}
