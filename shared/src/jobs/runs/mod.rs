//! Runs and streams: a long integration job split into resumable pieces.
//!
//! A **run** processes one integration: [`IntegrationService::get_streams`] gives its first
//! **streams**, [`IntegrationService::process_stream`] processes each one and may ask for
//! follow-up streams. Everything travels through the work queue as small messages the worker
//! recognises, `{"run": {"id": "<run>"}}` (start) and `{"stream": {"run": "<run>", "id":
//! "<stream>", "attempt": n}}`, and the state is in the extension table ([`RunStore`]).
//!
//! The items, claims, commits, retries and `continue-run` are described in
//! docs/queues-and-schedules.md ("Runs and streams"); what a run promises when a write's reply
//! is lost, a send fails or a worker dies is in docs/RELIABILITY.md ("Delivery guarantees").

mod memory;
mod model;
mod service;
mod store;
#[cfg(test)]
mod tests;

#[doc(hidden)]
pub use memory::MemoryRuns;
pub use model::{ApplyKey, RunContext, RunsError, StreamResult, StreamSpec};
#[doc(hidden)]
pub use model::{Finish, Run, RunState, Stream, StreamState};
pub use service::{IntegrationService, Integrations};
#[doc(hidden)]
pub use store::RunStore;

use super::deferred::{MAX_DIRECT_DELAY, ScheduleRequest, Scheduler};
use super::limits::{Admission, RateLimiter};
use crate::store::queue::{OutMessage, QueueStore};
use crate::time::Clock;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Streams written by one transaction at most (DynamoDB allows 100 actions; one is the run).
#[doc(hidden)]
pub const MAX_STREAMS_PER_STEP: usize = 98;
/// How long a claimed stream is reserved for its worker.
#[doc(hidden)]
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
#[doc(hidden)]
pub struct ContinueReport {
    pub requeued: usize,
    pub restarted: bool,
}

/// The run engine (a service of the worker).
#[derive(Clone)]
#[doc(hidden)]
pub struct Runs {
    store: Arc<dyn RunStore>,
    queue: Arc<dyn QueueStore>,
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
#[doc(hidden)]
pub fn is_run_message(body: &Value) -> bool {
    body.get("function").is_none() && (body.get("run").is_some() || body.get("stream").is_some())
}

impl Runs {
    pub fn new(
        store: Arc<dyn RunStore>,
        queue: Arc<dyn QueueStore>,
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
                Ok(result) => self.apply(&service, &ctx, &stream, result).await?,
                Err(e) => Err(e.to_string()),
            };
        match outcome {
            Ok((result, records)) => {
                let children = children_of(run_id, stream_id, &result);
                if children.len() > MAX_STREAMS_PER_STEP {
                    let e = format!(
                        "stream returned {} follow-up streams; at most {MAX_STREAMS_PER_STEP}",
                        children.len()
                    );
                    return self.fail(&service, &stream, &e).await;
                }
                let finish = Finish::Processed { records, children };
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

    /// Apply a processed stream's operations, once per attempt as far as the store can tell:
    /// an attempt whose apply was recorded ([`RunStore::mark_applied`]) by an earlier delivery
    /// (its commit failed, or it died or timed out after the record) is not applied again.
    /// The result and the number of operations the commit counts, or why the stream failed;
    /// `Err` when the apply could not be recorded (the message fails and is redelivered).
    async fn apply(
        &self,
        service: &Arc<dyn IntegrationService>,
        ctx: &RunContext,
        stream: &Stream,
        result: StreamResult,
    ) -> Result<Result<(StreamResult, u64), String>, RunsError> {
        if let Some((attempt, records)) = stream.applied
            && attempt == stream.attempt
        {
            tracing::info!(
                run_id = %stream.run_id,
                stream_id = %stream.id,
                attempt,
                records,
                "operations already applied by an earlier delivery of this attempt; not applied again"
            );
            return Ok(Ok((result, records)));
        }
        let key = ApplyKey {
            key: format!("{}/{}", stream.run_id, stream.id),
            attempt: stream.attempt,
        };
        if let Err(e) = isolated(
            "apply_operations",
            service.apply_operations(ctx, &stream.spec, &result.operations, &key),
        )
        .await
        {
            return Ok(Err(format!("applying operations failed: {e}")));
        }
        let records = result.operations.len() as u64;
        // Applied: recorded before the commit, so a redelivery after a failed commit does not
        // apply them again. If this write fails, the message fails and its redelivery (after
        // the lease) applies them again under the same key: the at-least-once window.
        if !self.store.mark_applied(stream, records).await? {
            tracing::warn!(run_id = %stream.run_id, stream_id = %stream.id, "the stream's claim was lost while its operations were applied");
        }
        Ok(Ok((result, records)))
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
