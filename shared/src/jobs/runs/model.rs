//! The run engine's data: runs, streams and their states, what a service sees and returns,
//! and its errors.

use crate::time::EpochMillis;
use serde_json::{Value, json};
use std::time::Duration;

/// Errors of the run engine.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    /// No integration of that type is registered.
    #[error("unknown integration {0:?}")]
    UnknownIntegration(String),
    /// No run has that id.
    #[error("run {0:?} not found")]
    RunNotFound(String),
    /// A queue message that is not a valid run or stream message.
    #[error("invalid run message: {0}")]
    InvalidMessage(String),
    /// One step produced more streams than can be committed at once.
    #[error("{0}")]
    TooManyStreams(String),
    /// The run store failed.
    #[error("run store unavailable: {0}")]
    Store(String),
    /// The work queue failed.
    #[error("work queue unavailable: {0}")]
    Queue(String),
}

/// A stream to process: a name and the parameters the service needs (a channel id, a page
/// cursor…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// A readable name (shown in the run's status).
    pub name: String,
    /// What the service needs to process the stream.
    pub params: Value,
}

impl StreamSpec {
    /// A stream named `name` with these parameters.
    pub fn new(name: impl Into<String>, params: Value) -> Self {
        Self {
            name: name.into(),
            params,
        }
    }
}

/// What processing one stream gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamResult {
    /// Records/operations to apply
    /// ([`IntegrationService::apply_operations`](super::IntegrationService::apply_operations)).
    pub operations: Vec<Value>,
    /// The next page of this stream.
    pub next_page_stream: Option<StreamSpec>,
    /// Further streams discovered.
    pub new_streams: Vec<StreamSpec>,
    /// Pause before the follow-up streams run.
    pub sleep: Option<Duration>,
}

/// What [`IntegrationService::apply_operations`](super::IntegrationService::apply_operations)
/// is told about the stream whose operations it applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyKey {
    /// `<run id>/<stream id>`: the same for every attempt and every delivery of the stream. A
    /// crash (or timeout) after the operations were applied and before that was recorded gets
    /// them applied again under the same key: apply them idempotently under it (e.g. an upsert
    /// keyed by the record's own id, or by this key and the operation's index).
    pub key: String,
    /// The stream's attempt (0 first; a retry after a failure is a new attempt).
    pub attempt: u32,
}

/// What a service sees of its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    /// The run's id.
    pub run_id: String,
    /// The integration type being run.
    pub integration: String,
    /// Whether this is an onboarding run (everything) rather than an incremental one.
    pub onboarding: bool,
    /// The parameters the run was started with.
    pub params: Value,
}
/// Run states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum RunState {
    Pending,
    Processing,
    Processed,
    Error,
}

/// Stream states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum StreamState {
    Pending,
    Processing,
    Processed,
    Error,
}

macro_rules! state_text {
    ($t:ty) => {
        impl $t {
            pub fn as_str(self) -> &'static str {
                match self {
                    Self::Pending => "pending",
                    Self::Processing => "processing",
                    Self::Processed => "processed",
                    Self::Error => "error",
                }
            }
            pub fn parse(s: &str) -> Option<Self> {
                Some(match s {
                    "pending" => Self::Pending,
                    "processing" => Self::Processing,
                    "processed" => Self::Processed,
                    "error" => Self::Error,
                    _ => return None,
                })
            }
        }
    };
}
state_text!(RunState);
state_text!(StreamState);

/// A run record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct Run {
    pub id: String,
    pub integration: String,
    pub onboarding: bool,
    pub params: Value,
    pub state: RunState,
    pub started_at: EpochMillis,
    pub processed_at: Option<EpochMillis>,
    pub error: Option<String>,
    pub pending: i64,
    pub streams_total: i64,
    pub errored_streams: i64,
    pub records: i64,
}

impl Run {
    /// The state and error a run ends with, once it is `processing` with no stream pending:
    /// `processed`, or `error` when some stream errored. `None` while it is not done.
    pub fn ending(&self) -> Option<(RunState, Option<String>)> {
        if self.state != RunState::Processing || self.pending != 0 {
            return None;
        }
        Some(if self.errored_streams > 0 {
            (
                RunState::Error,
                Some(format!("{} stream(s) failed", self.errored_streams)),
            )
        } else {
            (RunState::Processed, None)
        })
    }

    pub fn to_json(&self) -> Value {
        let iso = |m: EpochMillis| crate::time::iso_millis(i64::try_from(m.0).unwrap_or(i64::MAX));
        json!({
            "id": self.id,
            "integration": self.integration,
            "onboarding": self.onboarding,
            "state": self.state.as_str(),
            "startedAt": iso(self.started_at),
            "processedAt": self.processed_at.map(iso),
            "error": self.error,
            "pending": self.pending,
            "streams": self.streams_total,
            "erroredStreams": self.errored_streams,
            "records": self.records,
        })
    }
}

/// A stream record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct Stream {
    pub run_id: String,
    pub id: String,
    pub spec: StreamSpec,
    pub state: StreamState,
    pub attempt: u32,
    pub retries: u32,
    pub error: Option<String>,
    pub lease_until: EpochMillis,
    /// The attempt whose operations were applied, and how many there were, once recorded
    /// ([`RunStore::mark_applied`](super::RunStore::mark_applied)): a later delivery of that
    /// attempt commits without applying them again.
    pub applied: Option<(u32, u64)>,
}

impl Stream {
    pub(super) fn new(run_id: &str, id: String, spec: StreamSpec) -> Self {
        Self {
            run_id: run_id.to_owned(),
            id,
            spec,
            state: StreamState::Pending,
            attempt: 0,
            retries: 0,
            error: None,
            lease_until: EpochMillis(0),
            applied: None,
        }
    }
}

/// How a claimed stream ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub enum Finish {
    /// Processed; `records` operations applied, with these children.
    Processed { records: u64, children: Vec<Stream> },
    /// Out of retries.
    Errored { error: String },
}
