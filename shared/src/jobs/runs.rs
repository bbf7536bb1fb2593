//! Runs and streams: a long integration job split into resumable pieces (after crowd.dev's
//! integration framework).
//!
//! A **run** processes one integration (`onboarding`: everything; otherwise incremental). The
//! integration's [`IntegrationService::get_streams`] gives the first **streams**; each stream
//! is processed by [`IntegrationService::process_stream`], which returns operations (records
//! to apply) and optionally a `next_page_stream`, `new_streams` and a `sleep` (seconds): the
//! follow-up streams are enqueued with the sleep as their delay.
//!
//! Everything travels through the work queue as small messages the worker recognises:
//! `{"run": {"id": "<run>"}}` (start) and `{"stream": {"run": "<run>", "id": "<stream>",
//! "attempt": n}}`. State is in the extension table:
//!
//! - run `run#<id>`: `integration`, `onboarding`, `params`, `state`
//!   (`pending` → `processing` → `processed` | `error`), `started_at`, `processed_at`, `error`,
//!   and counters `pending` (streams not finished), `streams_total`, `errored_streams`,
//!   `records`;
//! - stream `stream#<run>#<id>`: `name`, `params`, `state` (`pending` → `processing` →
//!   `processed` | `error`), `attempt`, `retries`, `error`, `lease_until`; indexed under
//!   `gsi1pk = run#<run>` so a run's streams can be listed.
//!
//! **Exactly once.** A stream message runs only if it claims the stream: a conditional update
//! `pending` + its attempt → `processing` (or a `processing` stream whose lease ran out, after a
//! crash). Finishing a stream is **one transaction**: the stream's state change, the new child
//! streams (deterministic ids, so a replay cannot add them twice) and the run's counters
//! (`pending += children − 1`). A run finishes (conditional on `pending = 0`) when its last
//! stream does: `processed`, or `error` when some stream errored.
//!
//! **Committed, then sent.** Every state change is committed before the messages it calls for
//! are sent (a claim needs the stream's item). If a send fails, or the process dies in
//! between, the message being handled is not acknowledged, and its redelivery finds its work
//! committed and sends what is missing: a run's start re-sends its `pending` root streams, a
//! processed (or errored) stream re-sends its own `pending` follow-ups (their ids are
//! deterministic), a stream retried at `attempt + 1` re-sends that attempt. A message sent
//! twice is harmless (claims are by attempt), so a run never stalls on a lost send; such a
//! re-sent message goes out without its original delay.
//!
//! **Failures.** A failed stream goes back to `pending` with `attempt + 1` and is re-enqueued
//! after a back-off, up to [`IntegrationService::max_retries`] retries; then it is `error`
//! (counted in `errored_streams`). **Continue** ([`Runs::continue_run`]) re-enqueues a stuck
//! run's `pending` and `error` streams (and `processing` ones whose lease ran out) with a new
//! attempt, so stale messages are ignored.
//!
//! A [`GlobalLimit`] of the integration is checked before each stream: over it, the stream's
//! message is re-enqueued for the next period (through the [`Scheduler`] when that is more
//! than 15 minutes away).

use super::deferred::{MAX_DIRECT_DELAY, ScheduleRequest, Scheduler};
use super::limits::{Admission, GlobalLimit, RateLimiter};
use crate::store::queue::{OutMessage, Queue};
use crate::time::Clock;
use crate::time::EpochMillis;
use async_trait::async_trait;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Streams written by one transaction at most (DynamoDB allows 100 actions; one is the run).
pub const MAX_STREAMS_PER_STEP: usize = 98;
/// How long a claimed stream is reserved for its worker.
pub const LEASE: Duration = Duration::from_secs(300);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Integration code runs isolated, as functions do in dispatch: a panic in `get_streams`,
/// `process_stream` or `apply_operations` becomes that step's error (a stream is retried, then
/// marked `error`), never a worker that dies with the message or redelivers it forever.
async fn isolated<T>(
    what: &str,
    step: impl std::future::Future<Output = Result<T, BoxError>>,
) -> Result<T, BoxError> {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(step).catch_unwind().await {
        Ok(result) => result,
        Err(p) => {
            let text = crate::telemetry::panic_text(p.as_ref()).to_owned();
            tracing::error!(panic = %text, "integration {what} panicked");
            Err(format!("{what} panicked: {text}").into())
        }
    }
}

/// Errors of the run engine.
#[derive(Debug, thiserror::Error)]
pub enum RunsError {
    #[error("unknown integration {0:?}")]
    UnknownIntegration(String),
    #[error("run {0:?} not found")]
    RunNotFound(String),
    #[error("invalid run message: {0}")]
    InvalidMessage(String),
    #[error("{0}")]
    TooManyStreams(String),
    #[error("run store unavailable: {0}")]
    Store(String),
    #[error("work queue unavailable: {0}")]
    Queue(String),
}

/// A stream to process: a name and the parameters the service needs (a channel id, a page
/// cursor…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub name: String,
    pub params: Value,
}

impl StreamSpec {
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
    /// Records/operations to apply ([`IntegrationService::apply_operations`]).
    pub operations: Vec<Value>,
    /// The next page of this stream.
    pub next_page_stream: Option<StreamSpec>,
    /// Further streams discovered.
    pub new_streams: Vec<StreamSpec>,
    /// Pause before the follow-up streams run.
    pub sleep: Option<Duration>,
}

/// What a service sees of its run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunContext {
    pub run_id: String,
    pub integration: String,
    pub onboarding: bool,
    pub params: Value,
}

/// An integration the worker can run.
#[async_trait]
pub trait IntegrationService: Send + Sync + 'static {
    /// The id `make run-integration ID=…` names.
    fn integration_type(&self) -> &str;
    /// Retries of a failing stream before it is marked `error`.
    fn max_retries(&self) -> u32 {
        3
    }
    /// An allowance of stream executions per period, if the partner API has one.
    fn global_limit(&self) -> Option<GlobalLimit> {
        None
    }
    /// The first streams of a run.
    async fn get_streams(&self, ctx: &RunContext) -> Result<Vec<StreamSpec>, BoxError>;
    /// Process one stream.
    async fn process_stream(
        &self,
        ctx: &RunContext,
        stream: &StreamSpec,
    ) -> Result<StreamResult, BoxError>;
    /// Apply a stream's operations (default: count them). An error fails the stream.
    async fn apply_operations(
        &self,
        _ctx: &RunContext,
        _stream: &StreamSpec,
        _operations: &[Value],
    ) -> Result<(), BoxError> {
        Ok(())
    }
}

/// The integrations a worker can run, by type.
#[derive(Clone, Default)]
pub struct Integrations(HashMap<String, Arc<dyn IntegrationService>>);

impl Integrations {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, s: impl IntegrationService) -> Self {
        self.0.insert(s.integration_type().to_owned(), Arc::new(s));
        self
    }
    pub fn get(&self, t: &str) -> Option<&Arc<dyn IntegrationService>> {
        self.0.get(t)
    }
    pub fn names(&self) -> Vec<&str> {
        let mut n: Vec<&str> = self.0.keys().map(String::as_str).collect();
        n.sort_unstable();
        n
    }
}

/// Run states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    Pending,
    Processing,
    Processed,
    Error,
}

/// Stream states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
pub struct Stream {
    pub run_id: String,
    pub id: String,
    pub spec: StreamSpec,
    pub state: StreamState,
    pub attempt: u32,
    pub retries: u32,
    pub error: Option<String>,
    pub lease_until: EpochMillis,
}

impl Stream {
    fn new(run_id: &str, id: String, spec: StreamSpec) -> Self {
        Self {
            run_id: run_id.to_owned(),
            id,
            spec,
            state: StreamState::Pending,
            attempt: 0,
            retries: 0,
            error: None,
            lease_until: EpochMillis(0),
        }
    }
}

/// How a claimed stream ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Processed; `records` operations applied, with these children.
    Processed { records: u64, children: Vec<Stream> },
    /// Out of retries.
    Errored { error: String },
}

/// The run store.
#[async_trait]
pub trait RunStore: Send + Sync + 'static {
    async fn create_run(&self, run: &Run) -> Result<(), RunsError>;
    async fn get_run(&self, id: &str) -> Result<Option<Run>, RunsError>;
    /// `pending` → `processing`; false when the run is not pending.
    async fn begin_run(&self, id: &str, roots: &[Stream]) -> Result<bool, RunsError>;
    /// Claim a stream for `attempt` (see the module docs); the stream when claimed.
    async fn claim_stream(
        &self,
        run_id: &str,
        stream_id: &str,
        attempt: u32,
        now: EpochMillis,
    ) -> Result<Option<Stream>, RunsError>;
    /// End a claimed stream (one transaction with its children and the run's counters);
    /// false when the claim was lost.
    async fn finish_stream(&self, s: &Stream, finish: &Finish) -> Result<bool, RunsError>;
    /// A claimed stream failed but may retry: back to `pending` with `attempt + 1`.
    async fn retry_stream(&self, s: &Stream, error: &str) -> Result<bool, RunsError>;
    /// Every stream of a run.
    async fn list_streams(&self, run_id: &str) -> Result<Vec<Stream>, RunsError>;
    /// Give a stuck stream a new attempt (`error` streams reopen the run); false when it
    /// changed meanwhile.
    async fn reopen_stream(&self, s: &Stream) -> Result<bool, RunsError>;
    /// `processing` with `pending = 0` → `processed` or `error`; the new state if changed.
    async fn finish_run(&self, id: &str, now: EpochMillis) -> Result<Option<RunState>, RunsError>;
}

/// A deterministic child id: the parent's id and the child's place.
fn child_id(parent: &str, place: &str) -> String {
    let h = Sha256::digest(format!("{parent}/{place}").as_bytes());
    crate::codec::hex(&h[..8])
}

/// Ids for the streams a result asks for.
fn children_of(run_id: &str, parent: &str, r: &StreamResult) -> Vec<Stream> {
    let mut out = Vec::new();
    if let Some(next) = &r.next_page_stream {
        out.push(Stream::new(run_id, child_id(parent, "next"), next.clone()));
    }
    for (i, s) in r.new_streams.iter().enumerate() {
        out.push(Stream::new(
            run_id,
            child_id(parent, &i.to_string()),
            s.clone(),
        ));
    }
    out
}

/// What [`Runs::continue_run`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContinueReport {
    pub requeued: usize,
    pub restarted: bool,
}

/// The run engine (a service of the worker).
#[derive(Clone)]
pub struct Runs {
    store: Arc<dyn RunStore>,
    queue: Arc<dyn Queue>,
    scheduler: Option<Arc<Scheduler>>,
    limiter: Option<Arc<RateLimiter>>,
    integrations: Integrations,
    clock: Arc<dyn Clock>,
    retry_delay: Duration,
}

impl std::fmt::Debug for Runs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runs")
            .field("integrations", &self.integrations.names())
            .finish_non_exhaustive()
    }
}

/// Is this message body a run or stream message?
pub fn is_run_message(body: &Value) -> bool {
    body.get("function").is_none() && (body.get("run").is_some() || body.get("stream").is_some())
}

impl Runs {
    pub fn new(
        store: Arc<dyn RunStore>,
        queue: Arc<dyn Queue>,
        integrations: Integrations,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            queue,
            scheduler: None,
            limiter: None,
            integrations,
            clock,
            retry_delay: Duration::from_secs(30),
        }
    }
    pub fn with_scheduler(mut self, s: Option<Arc<Scheduler>>) -> Self {
        self.scheduler = s;
        self
    }
    pub fn with_limiter(mut self, l: Option<Arc<RateLimiter>>) -> Self {
        self.limiter = l;
        self
    }
    /// Back-off before retry `n` is `n × delay` (default 30 s; `EXTENSION_STREAM_RETRY_SECS`).
    pub fn with_retry_delay(mut self, d: Duration) -> Self {
        self.retry_delay = d;
        self
    }
    pub fn store(&self) -> &Arc<dyn RunStore> {
        &self.store
    }
    pub fn integrations(&self) -> &Integrations {
        &self.integrations
    }

    async fn send(&self, body: Value, delay: Duration) -> Result<(), RunsError> {
        if delay > MAX_DIRECT_DELAY
            && let Some(s) = &self.scheduler
            && let Value::Object(map) = body.clone()
        {
            return s
                .schedule(ScheduleRequest::new(map, None).delay(delay))
                .await
                .map(|_| ())
                .map_err(|e| RunsError::Queue(e.to_string()));
        }
        self.queue
            .send(OutMessage {
                body: body.to_string(),
                delay: (!delay.is_zero()).then_some(delay),
                ..OutMessage::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| RunsError::Queue(e.0))
    }

    fn stream_message(s: &Stream) -> Value {
        json!({"stream": {"run": s.run_id, "id": s.id, "attempt": s.attempt}})
    }

    /// Start a run of `integration`: record it and enqueue its start.
    pub async fn start_run(
        &self,
        integration: &str,
        onboarding: bool,
        params: Value,
    ) -> Result<Run, RunsError> {
        if self.integrations.get(integration).is_none() {
            return Err(RunsError::UnknownIntegration(integration.to_owned()));
        }
        let run = Run {
            id: crate::codec::random_id(),
            integration: integration.to_owned(),
            onboarding,
            params,
            state: RunState::Pending,
            started_at: self.clock.now(),
            processed_at: None,
            error: None,
            pending: 0,
            streams_total: 0,
            errored_streams: 0,
            records: 0,
        };
        self.store.create_run(&run).await?;
        self.send(json!({"run": {"id": run.id}}), Duration::ZERO)
            .await?;
        tracing::info!(run_id = %run.id, integration, onboarding, "run started");
        Ok(run)
    }

    /// Handle a run or stream message from the queue. `Err` fails the message (SQS
    /// redelivers it); stale and duplicate messages are `Ok`.
    pub async fn handle(&self, body: &Value) -> Result<(), RunsError> {
        if let Some(r) = body.get("run") {
            let id = r
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| RunsError::InvalidMessage("run.id missing".into()))?;
            return self.begin(id).await;
        }
        let s = body
            .get("stream")
            .ok_or_else(|| RunsError::InvalidMessage("neither run nor stream".into()))?;
        let field = |k: &str| {
            s.get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| RunsError::InvalidMessage(format!("stream.{k} missing")))
        };
        let attempt = s
            .get("attempt")
            .and_then(Value::as_u64)
            .and_then(|a| u32::try_from(a).ok())
            .ok_or_else(|| RunsError::InvalidMessage("stream.attempt missing".into()))?;
        self.process(field("run")?, field("id")?, attempt, body)
            .await
    }

    fn context(&self, run: &Run) -> Result<(RunContext, Arc<dyn IntegrationService>), RunsError> {
        let service = self
            .integrations
            .get(&run.integration)
            .cloned()
            .ok_or_else(|| RunsError::UnknownIntegration(run.integration.clone()))?;
        Ok((
            RunContext {
                run_id: run.id.clone(),
                integration: run.integration.clone(),
                onboarding: run.onboarding,
                params: run.params.clone(),
            },
            service,
        ))
    }

    async fn begin(&self, run_id: &str) -> Result<(), RunsError> {
        let Some(run) = self.store.get_run(run_id).await? else {
            tracing::warn!(run_id, "start message for an unknown run; ignored");
            return Ok(());
        };
        if run.state != RunState::Pending {
            tracing::info!(run_id, state = run.state.as_str(), "run already started");
            // A redelivered start: its roots are committed; send those still waiting.
            let roots: Vec<String> = (0..MAX_STREAMS_PER_STEP)
                .map(|i| child_id(run_id, &i.to_string()))
                .collect();
            return self.resend_pending(run_id, |s| roots.contains(&s.id)).await;
        }
        let (ctx, service) = self.context(&run)?;
        let specs = match isolated("get_streams", service.get_streams(&ctx)).await {
            Ok(s) => s,
            Err(e) => {
                // Leave the run pending: the start message is retried.
                return Err(RunsError::InvalidMessage(format!(
                    "get_streams failed: {e}"
                )));
            }
        };
        if specs.len() > MAX_STREAMS_PER_STEP {
            return Err(RunsError::TooManyStreams(format!(
                "get_streams returned {} streams; at most {MAX_STREAMS_PER_STEP} (return more as newStreams of the first ones)",
                specs.len()
            )));
        }
        let roots: Vec<Stream> = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| Stream::new(run_id, child_id(run_id, &i.to_string()), spec))
            .collect();
        if !self.store.begin_run(run_id, &roots).await? {
            return Ok(());
        }
        for s in &roots {
            self.send(Self::stream_message(s), Duration::ZERO).await?;
        }
        tracing::info!(run_id, streams = roots.len(), "run processing");
        if roots.is_empty() {
            self.store.finish_run(run_id, self.clock.now()).await?;
        }
        Ok(())
    }

    async fn process(
        &self,
        run_id: &str,
        stream_id: &str,
        attempt: u32,
        message: &Value,
    ) -> Result<(), RunsError> {
        let Some(run) = self.store.get_run(run_id).await? else {
            tracing::warn!(run_id, stream_id, "stream of an unknown run; ignored");
            return Ok(());
        };
        let (ctx, service) = self.context(&run)?;
        if let (Some(limit), Some(limiter)) = (service.global_limit(), &self.limiter) {
            let verdict = limiter
                .admit_global(&run.integration, &limit, run.onboarding)
                .await
                .map_err(|e| RunsError::Store(e.to_string()))?;
            if let Admission::Limited { retry_at, limit } = verdict {
                let wait = Duration::from_millis(retry_at.0.saturating_sub(self.clock.now().0));
                tracing::warn!(
                    run_id,
                    stream_id,
                    limit,
                    retry_in_s = wait.as_secs(),
                    "global limit reached; stream deferred to the next period"
                );
                return self.send(message.clone(), wait).await;
            }
        }
        let now = self.clock.now();
        let Some(stream) = self
            .store
            .claim_stream(run_id, stream_id, attempt, now)
            .await?
        else {
            tracing::info!(
                run_id,
                stream_id,
                attempt,
                "stream not claimable (done, newer attempt or running); message ignored"
            );
            return self.repair(run_id, stream_id, attempt).await;
        };
        let outcome =
            match isolated("process_stream", service.process_stream(&ctx, &stream.spec)).await {
                Ok(result) => match isolated(
                    "apply_operations",
                    service.apply_operations(&ctx, &stream.spec, &result.operations),
                )
                .await
                {
                    Ok(()) => Ok(result),
                    Err(e) => Err(format!("applying operations failed: {e}")),
                },
                Err(e) => Err(e.to_string()),
            };
        match outcome {
            Ok(result) => {
                let children = children_of(run_id, stream_id, &result);
                if children.len() > MAX_STREAMS_PER_STEP {
                    let e = format!(
                        "stream returned {} follow-up streams; at most {MAX_STREAMS_PER_STEP}",
                        children.len()
                    );
                    return self.fail(&service, &stream, &e).await;
                }
                let finish = Finish::Processed {
                    records: result.operations.len() as u64,
                    children,
                };
                if !self.store.finish_stream(&stream, &finish).await? {
                    return Ok(());
                }
                let Finish::Processed { children, records } = &finish else {
                    return Ok(());
                };
                let delay = result.sleep.unwrap_or_default();
                for c in children {
                    self.send(Self::stream_message(c), delay).await?;
                }
                tracing::info!(
                    run_id,
                    stream_id,
                    records,
                    follow_ups = children.len(),
                    "stream processed"
                );
            }
            Err(e) => return self.fail(&service, &stream, &e).await,
        }
        self.store.finish_run(run_id, self.clock.now()).await?;
        Ok(())
    }

    async fn fail(
        &self,
        service: &Arc<dyn IntegrationService>,
        stream: &Stream,
        error: &str,
    ) -> Result<(), RunsError> {
        if stream.retries < service.max_retries() {
            if self.store.retry_stream(stream, error).await? {
                let mut next = stream.clone();
                next.attempt += 1;
                let delay = self.retry_delay * (stream.retries + 1);
                tracing::warn!(run_id = %stream.run_id, stream_id = %stream.id, retry = stream.retries + 1, error, "stream failed; retrying");
                self.send(Self::stream_message(&next), delay).await?;
            }
            return Ok(());
        }
        tracing::error!(run_id = %stream.run_id, stream_id = %stream.id, retries = stream.retries, error, "stream failed; out of retries");
        let finish = Finish::Errored {
            error: error.to_owned(),
        };
        if self.store.finish_stream(stream, &finish).await? {
            self.store
                .finish_run(&stream.run_id, self.clock.now())
                .await?;
        }
        Ok(())
    }

    /// A message whose work is already committed (a redelivery): send the messages that work
    /// called for and that may have been lost (see the module docs).
    async fn repair(&self, run_id: &str, stream_id: &str, attempt: u32) -> Result<(), RunsError> {
        let streams = self.store.list_streams(run_id).await?;
        let Some(me) = streams.iter().find(|s| s.id == stream_id) else {
            return Ok(());
        };
        match me.state {
            // Its retry was committed; that attempt's message may be lost.
            StreamState::Pending if me.attempt == attempt.saturating_add(1) => {
                self.send(Self::stream_message(me), Duration::ZERO).await
            }
            StreamState::Processed | StreamState::Error if me.attempt == attempt => {
                let mut mine: Vec<String> = (0..MAX_STREAMS_PER_STEP)
                    .map(|i| child_id(stream_id, &i.to_string()))
                    .collect();
                mine.push(child_id(stream_id, "next"));
                self.resend_pending(run_id, |s| mine.contains(&s.id)).await
            }
            _ => Ok(()),
        }
    }

    /// Send the message of every `pending` stream of the run that `which` selects.
    async fn resend_pending(
        &self,
        run_id: &str,
        which: impl Fn(&Stream) -> bool,
    ) -> Result<(), RunsError> {
        for s in self.store.list_streams(run_id).await? {
            if s.state == StreamState::Pending && which(&s) {
                tracing::info!(run_id, stream_id = %s.id, attempt = s.attempt, "stream message re-sent (its first send may have been lost)");
                self.send(Self::stream_message(&s), Duration::ZERO).await?;
            }
        }
        Ok(())
    }

    /// Re-enqueue a stuck run's unfinished streams (see the module docs).
    pub async fn continue_run(&self, run_id: &str) -> Result<ContinueReport, RunsError> {
        let run = self
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| RunsError::RunNotFound(run_id.to_owned()))?;
        let mut report = ContinueReport::default();
        if run.state == RunState::Pending {
            self.send(json!({"run": {"id": run.id}}), Duration::ZERO)
                .await?;
            report.restarted = true;
            return Ok(report);
        }
        let now = self.clock.now();
        for s in self.store.list_streams(run_id).await? {
            let stuck = match s.state {
                StreamState::Pending | StreamState::Error => true,
                StreamState::Processing => s.lease_until < now,
                StreamState::Processed => false,
            };
            if stuck && self.store.reopen_stream(&s).await? {
                let mut next = s.clone();
                next.attempt += 1;
                self.send(Self::stream_message(&next), Duration::ZERO)
                    .await?;
                report.requeued += 1;
            }
        }
        // A run whose streams were all finished but that was never closed.
        if report.requeued == 0 {
            self.store.finish_run(run_id, now).await?;
        }
        tracing::info!(run_id, requeued = report.requeued, "run continued");
        Ok(report)
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin

#[derive(Default)]
struct MemoryState {
    runs: HashMap<String, Run>,
    streams: HashMap<(String, String), Stream>,
}

/// In-memory run store (local runs, unit tests).
#[derive(Default)]
pub struct MemoryRuns(Mutex<MemoryState>);

impl MemoryRuns {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>, RunsError> {
        self.0
            .lock()
            .map_err(|_| RunsError::Store("in-memory run store poisoned".into()))
    }
}

#[async_trait]
impl RunStore for MemoryRuns {
    async fn create_run(&self, run: &Run) -> Result<(), RunsError> {
        self.lock()?.runs.insert(run.id.clone(), run.clone());
        Ok(())
    }
    async fn get_run(&self, id: &str) -> Result<Option<Run>, RunsError> {
        Ok(self.lock()?.runs.get(id).cloned())
    }
    async fn begin_run(&self, id: &str, roots: &[Stream]) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        let Some(run) = st.runs.get_mut(id).filter(|r| r.state == RunState::Pending) else {
            return Ok(false);
        };
        run.state = RunState::Processing;
        run.pending += roots.len() as i64;
        run.streams_total += roots.len() as i64;
        for s in roots {
            st.streams
                .insert((s.run_id.clone(), s.id.clone()), s.clone());
        }
        Ok(true)
    }
    async fn claim_stream(
        &self,
        run_id: &str,
        stream_id: &str,
        attempt: u32,
        now: EpochMillis,
    ) -> Result<Option<Stream>, RunsError> {
        let mut st = self.lock()?;
        let Some(s) = st.streams.get_mut(&(run_id.into(), stream_id.into())) else {
            return Ok(None);
        };
        let free = s.state == StreamState::Pending
            || (s.state == StreamState::Processing && s.lease_until < now);
        if s.attempt != attempt || !free {
            return Ok(None);
        }
        s.state = StreamState::Processing;
        s.lease_until = now.after(LEASE);
        Ok(Some(s.clone()))
    }
    async fn finish_stream(&self, s: &Stream, finish: &Finish) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        let key = (s.run_id.clone(), s.id.clone());
        match st.streams.get(&key) {
            Some(cur) if cur.state == StreamState::Processing && cur.attempt == s.attempt => {}
            _ => return Ok(false),
        }
        let (state, error, records, children): (_, _, u64, &[Stream]) = match finish {
            Finish::Processed { records, children } => {
                (StreamState::Processed, None, *records, children)
            }
            Finish::Errored { error } => (StreamState::Error, Some(error.clone()), 0, &[]),
        };
        if let Some(cur) = st.streams.get_mut(&key) {
            cur.state = state;
            cur.error = error;
        }
        for c in children {
            st.streams
                .entry((c.run_id.clone(), c.id.clone()))
                .or_insert_with(|| c.clone());
        }
        if let Some(run) = st.runs.get_mut(&s.run_id) {
            run.pending += children.len() as i64 - 1;
            run.streams_total += children.len() as i64;
            run.records += records as i64;
            if state == StreamState::Error {
                run.errored_streams += 1;
            }
        }
        Ok(true)
    }
    async fn retry_stream(&self, s: &Stream, error: &str) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        match st.streams.get_mut(&(s.run_id.clone(), s.id.clone())) {
            Some(cur) if cur.state == StreamState::Processing && cur.attempt == s.attempt => {
                cur.state = StreamState::Pending;
                cur.attempt += 1;
                cur.retries += 1;
                cur.error = Some(error.to_owned());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn list_streams(&self, run_id: &str) -> Result<Vec<Stream>, RunsError> {
        let st = self.lock()?;
        let mut v: Vec<Stream> = st
            .streams
            .values()
            .filter(|s| s.run_id == run_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(v)
    }
    async fn reopen_stream(&self, s: &Stream) -> Result<bool, RunsError> {
        let mut st = self.lock()?;
        match st.streams.get_mut(&(s.run_id.clone(), s.id.clone())) {
            Some(cur) if cur.state == s.state && cur.attempt == s.attempt => {
                let was_error = cur.state == StreamState::Error;
                cur.state = StreamState::Pending;
                cur.attempt += 1;
                if was_error {
                    cur.retries = 0;
                    if let Some(run) = st.runs.get_mut(&s.run_id) {
                        run.pending += 1;
                        run.errored_streams -= 1;
                        run.state = RunState::Processing;
                        run.processed_at = None;
                        run.error = None;
                    }
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn finish_run(&self, id: &str, now: EpochMillis) -> Result<Option<RunState>, RunsError> {
        let mut st = self.lock()?;
        let Some(run) = st.runs.get_mut(id) else {
            return Ok(None);
        };
        let Some((state, error)) = run.ending() else {
            return Ok(None);
        };
        run.state = state;
        run.error = error;
        run.processed_at = Some(now);
        Ok(Some(run.state))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::queue::MemoryQueue;
    use crate::time::SystemClock;

    struct Pages;

    #[async_trait]
    impl IntegrationService for Pages {
        fn integration_type(&self) -> &str {
            "pages"
        }
        fn max_retries(&self) -> u32 {
            1
        }
        async fn get_streams(&self, ctx: &RunContext) -> Result<Vec<StreamSpec>, BoxError> {
            Ok(ctx.params["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| StreamSpec::new(s.as_str().unwrap_or(""), json!({"page": 1})))
                .collect())
        }
        async fn process_stream(
            &self,
            _ctx: &RunContext,
            stream: &StreamSpec,
        ) -> Result<StreamResult, BoxError> {
            if stream.name == "broken" {
                return Err("broken source".into());
            }
            if stream.name == "panics" {
                panic!("the source's parser panicked");
            }
            let page = stream.params["page"].as_u64().unwrap_or(1);
            Ok(StreamResult {
                operations: vec![json!(page); 2],
                next_page_stream: (page < 2)
                    .then(|| StreamSpec::new(stream.name.clone(), json!({"page": page + 1}))),
                ..StreamResult::default()
            })
        }
    }

    /// Runs of the `pages` integration over `queue`, in memory, retrying at once.
    fn pages_runs(queue: Arc<dyn Queue>) -> Runs {
        Runs::new(
            Arc::new(MemoryRuns::default()),
            queue,
            Integrations::new().with(Pages),
            Arc::new(SystemClock),
        )
        .with_retry_delay(Duration::ZERO)
    }

    /// Deliver every message sent so far (and those they cause), at most `rounds` times.
    async fn pump(runs: &Runs, queue: &MemoryQueue, rounds: usize) {
        let mut done = 0;
        for _ in 0..rounds {
            let sent = queue.sent();
            if done == sent.len() {
                return;
            }
            for m in &sent[done..] {
                let body: Value = serde_json::from_str(&m.body).unwrap();
                runs.handle(&body).await.unwrap();
            }
            done = sent.len();
        }
    }

    /// A queue whose next `n` sends fail.
    #[derive(Default)]
    struct FlakyQueue {
        fail_next: std::sync::atomic::AtomicUsize,
        inner: MemoryQueue,
    }

    #[async_trait]
    impl Queue for FlakyQueue {
        async fn send(&self, m: OutMessage) -> Result<String, crate::store::queue::QueueError> {
            use std::sync::atomic::Ordering::SeqCst;
            if self
                .fail_next
                .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(crate::store::queue::QueueError("injected".into()));
            }
            self.inner.send(m).await
        }
    }

    #[tokio::test]
    async fn a_lost_send_after_a_commit_is_repaired_by_the_redelivery() {
        use std::sync::atomic::Ordering::SeqCst;
        let queue = Arc::new(FlakyQueue::default());
        let runs = pages_runs(queue.clone());
        let run = runs
            .start_run("pages", true, json!({"sources": ["a", "b"]}))
            .await
            .unwrap();
        let start: Value = serde_json::from_str(&queue.inner.sent()[0].body).unwrap();
        // The roots are committed, then their sends fail: the start message is not acked…
        queue.fail_next.store(1, SeqCst);
        assert!(runs.handle(&start).await.is_err());
        // …and its redelivery sends the roots still waiting.
        runs.handle(&start).await.unwrap();
        // Every follow-up send fails once: each stream message is redelivered.
        let mut done = 1;
        for _ in 0..40 {
            let sent = queue.inner.sent();
            if done == sent.len() {
                break;
            }
            for m in &sent[done..] {
                let body: Value = serde_json::from_str(&m.body).unwrap();
                queue.fail_next.store(1, SeqCst);
                if runs.handle(&body).await.is_err() {
                    runs.handle(&body).await.unwrap();
                }
            }
            done = sent.len();
        }
        let r = runs.store().get_run(&run.id).await.unwrap().unwrap();
        assert_eq!(r.state, RunState::Processed, "{r:?}");
        assert_eq!(r.pending, 0);
    }

    /// A panicking stream is a failed stream (retried, then `error`); the run still ends and
    /// the other streams complete.
    #[tokio::test]
    async fn a_panicking_stream_fails_like_an_error_and_the_run_ends() {
        let queue = Arc::new(MemoryQueue::default());
        let runs = pages_runs(queue.clone());
        let run = runs
            .start_run("pages", true, json!({"sources": ["a", "panics"]}))
            .await
            .unwrap();
        pump(&runs, &queue, 20).await;
        let r = runs.store().get_run(&run.id).await.unwrap().unwrap();
        assert_eq!(r.state, RunState::Error, "{r:?}");
        assert_eq!(
            (r.pending, r.errored_streams, r.records),
            (0, 1, 4),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn a_run_pages_retries_and_finishes_in_memory() {
        let queue = Arc::new(MemoryQueue::default());
        let runs = pages_runs(queue.clone());
        assert!(matches!(
            runs.start_run("nope", false, Value::Null).await,
            Err(RunsError::UnknownIntegration(_))
        ));
        let run = runs
            .start_run("pages", true, json!({"sources": ["a", "b", "broken"]}))
            .await
            .unwrap();
        pump(&runs, &queue, 20).await;
        let r = runs.store().get_run(&run.id).await.unwrap().unwrap();
        assert_eq!(r.state, RunState::Error);
        assert_eq!(
            (r.pending, r.streams_total, r.errored_streams, r.records),
            (0, 5, 1, 8)
        );
        // Replaying every message changes nothing (claims are by attempt).
        let sent = queue.sent();
        for m in &sent {
            runs.handle(&serde_json::from_str(&m.body).unwrap())
                .await
                .unwrap();
        }
        let again = runs.store().get_run(&run.id).await.unwrap().unwrap();
        assert_eq!(again, r);
        assert!(is_run_message(&json!({"stream": {}})));
        assert!(!is_run_message(&json!({"function": "f", "run": 1})));
    }
}
