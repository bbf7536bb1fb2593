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
//!   [`LOOKAHEAD`] into the queue. Moving is a conditional state change
//!   (`scheduled` + version → `queued`), so two ticks never enqueue one job twice; if the send
//!   fails the job is put back (`queued` → `scheduled`) for the next tick.
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
    /// In the work queue (or on its way).
    Queued,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Scheduled => "scheduled",
            JobState::Queued => "queued",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "scheduled" => Some(JobState::Scheduled),
            "queued" => Some(JobState::Queued),
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
    /// Scheduled jobs due at or before `until`, earliest first, at most `limit`.
    async fn due(&self, until: EpochMillis, limit: usize) -> Result<Vec<Job>, JobError>;
    /// `scheduled` + `version` → `queued`; false when the job changed or is already queued.
    async fn claim(&self, id: &str, version: &str) -> Result<bool, JobError>;
    /// `queued` + `version` → `scheduled` (after a failed send).
    async fn unclaim(&self, job: &Job) -> Result<(), JobError>;
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
        let job = Job {
            id: req.job_id,
            version,
            state: match via {
                Via::Queue => JobState::Queued,
                Via::Table => JobState::Scheduled,
            },
            due_at,
            body: Value::Object(body).to_string(),
        };
        let expires = EpochSeconds(due_at.0 / 1000).after(RETENTION);
        self.store.put(&job, expires).await?;
        if via == Via::Queue
            && let Err(e) = self.send(&job, wait).await
        {
            // Not queued: take the item back so nothing claims a job that is nowhere.
            if let Err(d) = self.store.delete(&job.id, Some(&job.version)).await {
                tracing::error!(job_id = %job.id, error = %d, "could not remove a job whose send failed; it will expire");
            }
            return Err(JobError::Queue(e.0));
        }
        tracing::info!(job_id = %job.id, version = %job.version, due_at = job.due_at.0, via = ?via, "job scheduled");
        Ok(Scheduled {
            job_id: job.id,
            version: job.version,
            due_at,
            via,
        })
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
        let outcomes: Vec<Result<bool, JobError>> = futures_util::stream::iter(due)
            .map(|job| async move {
                if !self.store.claim(&job.id, &job.version).await? {
                    return Ok(false);
                }
                let wait = Duration::from_millis(job.due_at.0.saturating_sub(now.0));
                match self.send(&job, wait).await {
                    Ok(_) => Ok(true),
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
            .filter(|j| j.state == JobState::Scheduled && j.due_at <= until)
            .map(|j| ((j.due_at.0, j.id.as_str()), j))
            .collect();
        Ok(sorted.into_values().take(limit).cloned().collect())
    }
    async fn claim(&self, id: &str, version: &str) -> Result<bool, JobError> {
        let mut jobs = self.lock()?;
        match jobs.get_mut(id) {
            Some(j) if j.version == version && j.state == JobState::Scheduled => {
                j.state = JobState::Queued;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn unclaim(&self, job: &Job) -> Result<(), JobError> {
        let mut jobs = self.lock()?;
        if let Some(j) = jobs.get_mut(&job.id)
            && j.version == job.version
            && j.state == JobState::Queued
        {
            j.state = JobState::Scheduled;
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
