//! The scheduler's data: jobs and their states, schedule requests and answers, and its errors.

use super::{JOB_MEMBER, KEY_SCOPE, MAX_DELAY};
use crate::codec::{key_hash, random_id};
use crate::jobs::window::{Window, WindowError};
use crate::time::EpochMillis;
use serde_json::{Map, Value, json};
use std::time::Duration;

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
