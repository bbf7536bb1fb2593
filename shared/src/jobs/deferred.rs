//! Deferred invocations: run an envelope later, by key, optionally inside a window.
//!
//! ```json
//! {"envelope": {"diy": true, "function": "notifyPartner", "options": {"id": 7}},
//!  "key": {"email": "<hash or id>"}, "delay": 3600000,
//!  "window": {"day": "monday-friday", "time": "09:00-17:00"}}
//! ```
//!
//! - `delay` is in milliseconds (0 if absent); `window` is UTC ([`Window`]). The job is due at
//!   the first instant inside the window at or after now + delay.
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

use super::window::{Window, WindowError};
use crate::codec::{key_hash, random_id};
use crate::store::queue::{OutMessage, Queue};
use crate::time::Clock;
use crate::time::{EpochMillis, EpochSeconds};
use async_trait::async_trait;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
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

/// Errors of the scheduler (mapped to 422 codes at the edge).
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("invalid schedule request: {0}")]
    Invalid(String),
    #[error(transparent)]
    Window(#[from] WindowError),
    #[error("job store unavailable: {0}")]
    Store(String),
    #[error("work queue unavailable: {0}")]
    Queue(String),
}

impl JobError {
    pub fn code(&self) -> &'static str {
        match self {
            JobError::Invalid(_) | JobError::Window(_) => "invalid_schedule",
            JobError::Store(_) => "job_store_unavailable",
            JobError::Queue(_) => "queue_unavailable",
        }
    }
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobError::Store(_) | JobError::Queue(_))
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Stored, waiting for a tick.
    Scheduled,
    /// Being sent, under a lease: a tick after the lease sends it (again).
    Sending,
    /// In the work queue.
    Queued,
    /// Can never be sent (terminal).
    Failed,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Sending => "sending",
            JobState::Queued => "queued",
            JobState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scheduled" => Some(JobState::Scheduled),
            "sending" => Some(JobState::Sending),
            "queued" => Some(JobState::Queued),
            "failed" => Some(JobState::Failed),
            _ => None,
        }
    }
}

/// One stored job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    pub version: String,
    pub state: JobState,
    pub due_at: EpochMillis,
    /// The message body to enqueue (envelope + `_job`).
    pub body: String,
    /// While `sending`: when the lease ends.
    pub lease_until: Option<EpochMillis>,
}

impl Job {
    /// Where the job sorts in the index of due jobs: its lease's end while `sending`, else its
    /// due time.
    pub fn index_time(&self) -> EpochMillis {
        match (self.state, self.lease_until) {
            (JobState::Sending, Some(l)) => l,
            _ => self.due_at,
        }
    }
}

/// The job store.
#[async_trait]
pub trait JobStore: Send + Sync + 'static {
    /// Write `job`, replacing any job with its id.
    async fn put(&self, job: &Job, expires_at: EpochSeconds) -> Result<(), JobError>;
    /// The job, read consistently.
    async fn get(&self, id: &str) -> Result<Option<Job>, JobError>;
    /// Delete the job (only `version` when given); whether something was deleted.
    async fn delete(&self, id: &str, version: Option<&str>) -> Result<bool, JobError>;
    /// Jobs in the index (`scheduled`, or `sending`) whose [`Job::index_time`] is at or
    /// before `until`, earliest first, at most `limit`.
    async fn due(&self, until: EpochMillis, limit: usize) -> Result<Vec<Job>, JobError>;
    /// `scheduled` (or `sending` with a lease ended by `now`) + `version` → `sending` until
    /// `lease_until`; false when the job changed or another sender holds it.
    async fn claim(
        &self,
        id: &str,
        version: &str,
        now: EpochMillis,
        lease_until: EpochMillis,
    ) -> Result<bool, JobError>;
    /// `sending` + `version` → `queued` (out of the index), after the send.
    async fn sent(&self, id: &str, version: &str) -> Result<(), JobError>;
    /// `sending` + `version` → `scheduled` (after a failed send).
    async fn unclaim(&self, job: &Job) -> Result<(), JobError>;
    /// `version` → `failed` (out of the index): the job can never be sent.
    async fn fail(&self, id: &str, version: &str) -> Result<(), JobError>;
}

/// A schedule request (see the module docs for the JSON form).
#[derive(Debug, Clone)]
pub struct ScheduleRequest {
    /// The message to run later: an extension envelope (or a run/stream message).
    pub body: Map<String, Value>,
    /// The job id (hash of the key, or random).
    pub job_id: String,
    pub delay: Duration,
    pub window: Option<Window>,
}

impl ScheduleRequest {
    /// A request for `body` under the caller's `key` (hashed) or a random id.
    pub fn new(body: Map<String, Value>, key: Option<&Value>) -> Self {
        Self {
            body,
            job_id: key.map_or_else(random_id, job_id_for_key),
            delay: Duration::ZERO,
            window: None,
        }
    }

    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    pub fn window(mut self, w: Option<Window>) -> Self {
        self.window = w;
        self
    }

    /// Read `{"envelope", "key", "delay", "window"}`.
    pub fn from_json(v: &Value) -> Result<Self, JobError> {
        let obj = v
            .as_object()
            .ok_or_else(|| JobError::Invalid("the request must be a JSON object".into()))?;
        let body = match obj.get("envelope") {
            Some(Value::Object(e)) => e.clone(),
            _ => {
                return Err(JobError::Invalid(
                    "envelope must be an object (an extension envelope: diy or _connectorId, function, options)".into(),
                ));
            }
        };
        if !matches!(body.get("function"), Some(Value::String(f)) if !f.is_empty()) {
            return Err(JobError::Invalid(
                "envelope.function must name a function".into(),
            ));
        }
        let key = match obj.get("key") {
            None | Some(Value::Null) => None,
            Some(k) => Some(k),
        };
        let delay = match obj.get("delay") {
            None | Some(Value::Null) => Duration::ZERO,
            Some(d) => d
                .as_u64()
                .map(Duration::from_millis)
                .filter(|d| *d <= MAX_DELAY)
                .ok_or_else(|| {
                    JobError::Invalid(format!(
                        "delay must be a whole number of milliseconds, ≥ 0 and at most {} (a year)",
                        MAX_DELAY.as_millis()
                    ))
                })?,
        };
        let window = match obj.get("window") {
            None | Some(Value::Null) => None,
            Some(w) => Some(Window::from_json(w)?),
        };
        Ok(Self::new(body, key).delay(delay).window(window))
    }
}

/// The job id of a caller's key.
pub fn job_id_for_key(key: &Value) -> String {
    key_hash(KEY_SCOPE, key)
}

/// How a scheduled job will reach the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Sent now with an SQS delay.
    Queue,
    /// Stored; a tick will send it.
    Table,
}

/// The answer to a schedule request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub job_id: String,
    pub version: String,
    pub due_at: EpochMillis,
    pub via: Via,
}

impl Scheduled {
    pub fn to_json(&self) -> Value {
        json!({
            "jobId": self.job_id,
            "version": self.version,
            "dueAt": crate::time::iso_millis(i64::try_from(self.due_at.0).unwrap_or(i64::MAX)),
            "via": match self.via { Via::Queue => "queue", Via::Table => "table" },
        })
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Due jobs found.
    pub due: usize,
    /// Claimed and sent.
    pub enqueued: usize,
    /// Claimed by someone else (another tick) or changed meanwhile.
    pub lost: usize,
    /// Claimed but not sent (put back for the next tick), or the claim itself failed.
    pub failed: usize,
}

impl TickReport {
    pub fn to_json(&self) -> Value {
        json!({"due": self.due, "enqueued": self.enqueued, "lost": self.lost, "failed": self.failed})
    }
}

/// A reference to the job a queued message came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRef {
    pub id: String,
    pub version: String,
}

impl JobRef {
    /// The `_job` member of a message body, if any.
    pub fn from_body(body: &Value) -> Option<Self> {
        let j = body.get(JOB_MEMBER)?;
        Some(Self {
            id: j.get("id")?.as_str()?.to_owned(),
            version: j.get("version")?.as_str()?.to_owned(),
        })
    }
}

/// The deferred-invocation service (`inv.scheduler()?`).
#[derive(Clone)]
pub struct Scheduler {
    store: Arc<dyn JobStore>,
    queue: Arc<dyn Queue>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler").finish_non_exhaustive()
    }
}

impl Scheduler {
    pub fn new(store: Arc<dyn JobStore>, queue: Arc<dyn Queue>, clock: Arc<dyn Clock>) -> Self {
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

// ---------------------------------------------------------------------------------------------
// In-memory twin

/// In-memory job store (local runs, unit tests).
#[derive(Debug, Default)]
pub struct MemoryJobs {
    jobs: Mutex<HashMap<String, Job>>,
}

impl MemoryJobs {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Job>>, JobError> {
        self.jobs
            .lock()
            .map_err(|_| JobError::Store("in-memory job store poisoned".into()))
    }
}

#[async_trait]
impl JobStore for MemoryJobs {
    async fn put(&self, job: &Job, _expires_at: EpochSeconds) -> Result<(), JobError> {
        self.lock()?.insert(job.id.clone(), job.clone());
        Ok(())
    }
    async fn get(&self, id: &str) -> Result<Option<Job>, JobError> {
        Ok(self.lock()?.get(id).cloned())
    }
    async fn delete(&self, id: &str, version: Option<&str>) -> Result<bool, JobError> {
        let mut jobs = self.lock()?;
        match (jobs.get(id), version) {
            (Some(j), Some(v)) if j.version != v => Ok(false),
            (Some(_), _) => Ok(jobs.remove(id).is_some()),
            (None, _) => Ok(false),
        }
    }
    async fn due(&self, until: EpochMillis, limit: usize) -> Result<Vec<Job>, JobError> {
        let jobs = self.lock()?;
        let sorted: BTreeMap<(u64, &str), &Job> = jobs
            .values()
            .filter(|j| matches!(j.state, JobState::Scheduled | JobState::Sending))
            .filter(|j| j.index_time() <= until)
            .map(|j| ((j.index_time().0, j.id.as_str()), j))
            .collect();
        Ok(sorted.into_values().take(limit).cloned().collect())
    }
    async fn claim(
        &self,
        id: &str,
        version: &str,
        now: EpochMillis,
        lease_until: EpochMillis,
    ) -> Result<bool, JobError> {
        let mut jobs = self.lock()?;
        match jobs.get_mut(id) {
            Some(j)
                if j.version == version
                    && (j.state == JobState::Scheduled
                        || (j.state == JobState::Sending && j.index_time() <= now)) =>
            {
                j.state = JobState::Sending;
                j.lease_until = Some(lease_until);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn sent(&self, id: &str, version: &str) -> Result<(), JobError> {
        self.set_state(id, version, JobState::Sending, JobState::Queued)
    }
    async fn unclaim(&self, job: &Job) -> Result<(), JobError> {
        self.set_state(
            &job.id,
            &job.version,
            JobState::Sending,
            JobState::Scheduled,
        )
    }
    async fn fail(&self, id: &str, version: &str) -> Result<(), JobError> {
        let mut jobs = self.lock()?;
        if let Some(j) = jobs.get_mut(id)
            && j.version == version
        {
            j.state = JobState::Failed;
            j.lease_until = None;
        }
        Ok(())
    }
}

impl MemoryJobs {
    fn set_state(
        &self,
        id: &str,
        version: &str,
        from: JobState,
        to: JobState,
    ) -> Result<(), JobError> {
        let mut jobs = self.lock()?;
        if let Some(j) = jobs.get_mut(id)
            && j.version == version
            && j.state == from
        {
            j.state = to;
            j.lease_until = None;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queue::MemoryQueue;
    use crate::time::ManualClock;

    const MONDAY: u64 = 20_780 * 86_400_000;
    const H: u64 = 3_600_000;

    fn fixture(
        at: u64,
    ) -> (
        Scheduler,
        Arc<MemoryJobs>,
        Arc<MemoryQueue>,
        Arc<ManualClock>,
    ) {
        let store = Arc::new(MemoryJobs::default());
        let queue = Arc::new(MemoryQueue::default());
        let clock = Arc::new(ManualClock::at(at));
        (
            Scheduler::new(store.clone(), queue.clone(), clock.clone()),
            store,
            queue,
            clock,
        )
    }

    fn request(v: Value) -> ScheduleRequest {
        ScheduleRequest::from_json(&v).unwrap()
    }

    /// A queue whose sends never finish while `stalled` (a sender that dies mid-send).
    #[derive(Default)]
    struct StallingQueue {
        stalled: std::sync::atomic::AtomicBool,
        inner: MemoryQueue,
    }

    #[async_trait]
    impl Queue for StallingQueue {
        async fn send(&self, m: OutMessage) -> Result<String, crate::store::queue::QueueError> {
            if self.stalled.load(std::sync::atomic::Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.inner.send(m).await
        }
    }

    #[tokio::test]
    async fn a_tick_that_dies_mid_send_leaves_the_job_to_the_next_tick_after_its_lease() {
        let store = Arc::new(MemoryJobs::default());
        let queue = Arc::new(StallingQueue::default());
        let clock = Arc::new(ManualClock::at(MONDAY));
        let s = Scheduler::new(store.clone(), queue.clone(), clock.clone());
        let twenty_min = json!({"envelope": {"diy": true, "function": "f"}, "delay": 1_200_000});
        let r = s.schedule(request(twenty_min)).await.unwrap();
        assert_eq!(r.via, Via::Table);
        clock.advance(Duration::from_secs(20 * 60));
        queue
            .stalled
            .store(true, std::sync::atomic::Ordering::SeqCst);
        // The tick is cut off while its send is in flight (as when its process dies).
        let cut = tokio::time::timeout(Duration::from_millis(50), s.tick()).await;
        assert!(cut.is_err());
        queue
            .stalled
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let during = s.tick().await.unwrap();
        assert_eq!(during.enqueued, 0, "the lease still holds: {during:?}");
        clock.advance(SEND_LEASE);
        let after = s.tick().await.unwrap();
        assert_eq!(after.enqueued, 1, "{after:?}");
        assert_eq!(queue.inner.sent().len(), 1);
        assert_eq!(
            store.get(&r.job_id).await.unwrap().unwrap().state,
            JobState::Queued
        );
        assert_eq!(
            s.tick().await.unwrap().due,
            0,
            "queued jobs leave the index"
        );
    }

    #[tokio::test]
    async fn a_job_too_large_to_send_is_refused_or_failed_not_retried() {
        let (s, store, queue, clock) = fixture(MONDAY);
        let big = "x".repeat(MAX_MESSAGE_BYTES + 1);
        let e = s
            .schedule(request(
                json!({"envelope": {"diy": true, "function": "f", "options": {"big": big}}}),
            ))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_schedule");
        // One stored before the check existed: the tick marks it failed, once.
        let job = Job {
            id: "old".into(),
            version: "v".into(),
            state: JobState::Scheduled,
            due_at: EpochMillis(MONDAY),
            body: big,
            lease_until: None,
        };
        store.put(&job, EpochSeconds(0)).await.unwrap();
        let first = s.tick().await.unwrap();
        assert_eq!((first.due, first.failed), (1, 1), "{first:?}");
        clock.advance(Duration::from_secs(120));
        assert_eq!(s.tick().await.unwrap().due, 0, "not retried every minute");
        assert_eq!(
            store.get("old").await.unwrap().unwrap().state,
            JobState::Failed
        );
        assert!(queue.sent().is_empty());
    }

    #[tokio::test]
    async fn short_delays_go_straight_to_the_queue() {
        let (s, store, queue, _) = fixture(MONDAY);
        let r = s
            .schedule(request(
                json!({"envelope": {"diy": true, "function": "f"}, "delay": 60_000}),
            ))
            .await
            .unwrap();
        assert_eq!(r.via, Via::Queue);
        assert_eq!(r.due_at, EpochMillis(MONDAY + 60_000));
        let sent = queue.sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].delay, Some(Duration::from_secs(60)));
        let body: Value = serde_json::from_str(&sent[0].body).unwrap();
        assert_eq!(body["function"], "f");
        assert_eq!(
            JobRef::from_body(&body),
            Some(JobRef {
                id: r.job_id.clone(),
                version: r.version.clone()
            })
        );
        assert_eq!(
            store.get(&r.job_id).await.unwrap().unwrap().state,
            JobState::Queued
        );
        // The tick never touches a queued job.
        assert_eq!(s.tick().await.unwrap().due, 0);
    }

    #[tokio::test]
    async fn windows_and_long_delays_wait_for_the_tick_which_moves_them_once() {
        // Saturday 10:00, window monday-friday 09:00-17:00 → due Monday 09:00.
        let (s, _, queue, clock) = fixture(MONDAY + 5 * 24 * H + 10 * H);
        let r = s
            .schedule(request(json!({
                "envelope": {"diy": true, "function": "f"},
                "key": {"email": "hash"},
                "window": {"day": "monday-friday", "time": "09:00-17:00"}
            })))
            .await
            .unwrap();
        assert_eq!(r.via, Via::Table);
        assert_eq!(r.due_at, EpochMillis(MONDAY + 7 * 24 * H + 9 * H));
        assert_eq!(r.to_json()["dueAt"], "2026-11-30T09:00:00.000Z");
        // Sunday: not due.
        clock.advance(Duration::from_secs(24 * 3600));
        assert_eq!(s.tick().await.unwrap(), TickReport::default());
        // Monday 08:59:30: due within the lookahead, sent with the remaining 30 s.
        clock.set(MONDAY + 7 * 24 * H + 9 * H - 30_000);
        let t = s.tick().await.unwrap();
        assert_eq!((t.due, t.enqueued), (1, 1));
        assert_eq!(queue.sent()[0].delay, Some(Duration::from_secs(30)));
        assert_eq!(s.tick().await.unwrap().enqueued, 0);
        assert_eq!(queue.sent().len(), 1);
    }

    #[tokio::test]
    async fn the_same_key_replaces_and_cancel_removes() {
        let (s, store, _, _) = fixture(MONDAY);
        let req = json!({"envelope": {"diy": true, "function": "f"}, "key": {"k": 1}, "delay": 3_600_000});
        let a = s.schedule(request(req.clone())).await.unwrap();
        let b = s.schedule(request(req)).await.unwrap();
        assert_eq!(a.job_id, b.job_id);
        assert_ne!(a.version, b.version);
        let old = JobRef {
            id: a.job_id.clone(),
            version: a.version,
        };
        let new = JobRef {
            id: b.job_id.clone(),
            version: b.version,
        };
        assert!(!s.is_current(&old).await.unwrap());
        assert!(s.is_current(&new).await.unwrap());
        assert!(s.cancel(&b.job_id).await.unwrap());
        assert!(!s.cancel(&b.job_id).await.unwrap());
        assert!(!s.is_current(&new).await.unwrap());
        assert!(store.get(&b.job_id).await.unwrap().is_none());
    }

    #[test]
    fn bad_requests_are_explained() {
        for (v, needle) in [
            (json!([]), "JSON object"),
            (json!({"envelope": 1}), "envelope must be an object"),
            (json!({"envelope": {"diy": true}}), "envelope.function"),
            (json!({"envelope": {"function": "f"}, "delay": -1}), "delay"),
            (
                json!({"envelope": {"function": "f"}, "delay": 1.5}),
                "delay",
            ),
            (
                json!({"envelope": {"function": "f"}, "delay": u64::MAX}),
                "at most",
            ),
            (
                json!({"envelope": {"function": "f"}, "delay": 31_708_800_001u64}),
                "at most",
            ),
            (
                json!({"envelope": {"function": "f"}, "window": {"day": "nope"}}),
                "unknown day",
            ),
        ] {
            let e = ScheduleRequest::from_json(&v).unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
            assert_eq!(e.code(), "invalid_schedule");
        }
    }
}
