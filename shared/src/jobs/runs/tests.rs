use super::*;
use crate::store::queue::MemoryQueue;
use crate::time::SystemClock;
use async_trait::async_trait;

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
fn pages_runs(queue: Arc<dyn QueueStore>) -> Runs {
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
impl QueueStore for FlakyQueue {
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

/// Applies records once per key: the operations it has seen per [`ApplyKey::key`], and every
/// call.
#[derive(Default)]
struct Ledger {
    calls: std::sync::Mutex<Vec<(String, u32, usize)>>,
}

struct Applying(Arc<Ledger>);

#[async_trait]
impl IntegrationService for Applying {
    fn integration_type(&self) -> &str {
        "applying"
    }
    async fn get_streams(&self, _ctx: &RunContext) -> Result<Vec<StreamSpec>, BoxError> {
        Ok(vec![StreamSpec::new("only", json!({}))])
    }
    async fn process_stream(
        &self,
        _ctx: &RunContext,
        _stream: &StreamSpec,
    ) -> Result<StreamResult, BoxError> {
        Ok(StreamResult {
            operations: vec![json!(1), json!(2), json!(3)],
            ..StreamResult::default()
        })
    }
    async fn apply_operations(
        &self,
        _ctx: &RunContext,
        _stream: &StreamSpec,
        operations: &[Value],
        key: &ApplyKey,
    ) -> Result<(), BoxError> {
        if let Ok(mut calls) = self.0.calls.lock() {
            calls.push((key.key.clone(), key.attempt, operations.len()));
        }
        Ok(())
    }
}

/// The in-memory store whose next `n` writes of `which` fail (a store error, after which the
/// message is redelivered): `finish` = `finish_stream`, `mark` = `mark_applied`.
struct FailingRuns {
    inner: MemoryRuns,
    fail_finish: std::sync::atomic::AtomicUsize,
    fail_mark: std::sync::atomic::AtomicUsize,
}

fn take(n: &std::sync::atomic::AtomicUsize) -> bool {
    use std::sync::atomic::Ordering::SeqCst;
    n.fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1)).is_ok()
}

#[async_trait]
impl RunStore for FailingRuns {
    async fn create_run(&self, run: &Run) -> Result<(), RunsError> {
        self.inner.create_run(run).await
    }
    async fn get_run(&self, id: &str) -> Result<Option<Run>, RunsError> {
        self.inner.get_run(id).await
    }
    async fn begin_run(&self, id: &str, roots: &[Stream]) -> Result<bool, RunsError> {
        self.inner.begin_run(id, roots).await
    }
    async fn claim_stream(
        &self,
        run_id: &str,
        stream_id: &str,
        attempt: u32,
        now: crate::time::EpochMillis,
    ) -> Result<Option<Stream>, RunsError> {
        self.inner
            .claim_stream(run_id, stream_id, attempt, now)
            .await
    }
    async fn mark_applied(&self, s: &Stream, records: u64) -> Result<bool, RunsError> {
        if take(&self.fail_mark) {
            return Err(RunsError::Store("injected: mark_applied".into()));
        }
        self.inner.mark_applied(s, records).await
    }
    async fn finish_stream(&self, s: &Stream, finish: &Finish) -> Result<bool, RunsError> {
        if take(&self.fail_finish) {
            return Err(RunsError::Store("injected: finish_stream".into()));
        }
        self.inner.finish_stream(s, finish).await
    }
    async fn retry_stream(&self, s: &Stream, error: &str) -> Result<bool, RunsError> {
        self.inner.retry_stream(s, error).await
    }
    async fn list_streams(&self, run_id: &str) -> Result<Vec<Stream>, RunsError> {
        self.inner.list_streams(run_id).await
    }
    async fn reopen_stream(&self, s: &Stream) -> Result<bool, RunsError> {
        self.inner.reopen_stream(s).await
    }
    async fn finish_run(
        &self,
        id: &str,
        now: crate::time::EpochMillis,
    ) -> Result<Option<RunState>, RunsError> {
        self.inner.finish_run(id, now).await
    }
}

/// One run of one stream whose first delivery fails after the apply (its commit, or the
/// record of the apply, fails once), redelivered after its lease ran out: the apply calls,
/// and the run.
async fn redelivered_after_the_apply(
    fail_finish: usize,
    fail_mark: usize,
) -> (Vec<(String, u32, usize)>, Run) {
    use crate::time::ManualClock;
    let ledger = Arc::new(Ledger::default());
    let queue = Arc::new(MemoryQueue::default());
    let clock = Arc::new(ManualClock::at(1_000_000));
    let store = Arc::new(FailingRuns {
        inner: MemoryRuns::default(),
        fail_finish: fail_finish.into(),
        fail_mark: fail_mark.into(),
    });
    let runs = Runs::new(
        store,
        queue.clone(),
        Integrations::new().with(Applying(ledger.clone())),
        clock.clone(),
    );
    let run = runs.start_run("applying", false, json!({})).await.unwrap();
    let start: Value = serde_json::from_str(&queue.sent()[0].body).unwrap();
    runs.handle(&start).await.unwrap();
    let stream: Value = serde_json::from_str(&queue.sent()[1].body).unwrap();
    assert!(
        runs.handle(&stream).await.is_err(),
        "the first delivery fails after the apply"
    );
    // SQS redelivers after the visibility timeout (750 s), past the stream's lease.
    clock.set(1_000_000 + 750_000);
    runs.handle(&stream).await.unwrap();
    let calls = ledger.calls.lock().unwrap().clone();
    let r = runs.store().get_run(&run.id).await.unwrap().unwrap();
    (calls, r)
}

/// A stream whose commit (`finish_stream`) fails after its operations were applied: the
/// redelivery commits without applying them again (the apply was recorded), and the run counts
/// them once. Without the record, the redelivery applied them a second time.
#[tokio::test]
async fn a_failed_commit_after_the_apply_does_not_apply_again() {
    let (calls, r) = redelivered_after_the_apply(1, 0).await;
    assert_eq!(calls.len(), 1, "applied once: {calls:?}");
    assert_eq!(
        (r.state, r.records, r.pending),
        (RunState::Processed, 3, 0),
        "{r:?}"
    );
}

/// The documented window: the apply ran but its record could not be written (a crash or a
/// failed write right after the apply). The redelivery applies again — with the same key, so
/// an integration that applies idempotently under it applies once.
#[tokio::test]
async fn an_apply_whose_record_failed_is_applied_again_under_the_same_key() {
    let (calls, r) = redelivered_after_the_apply(0, 1).await;
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_eq!(
        calls[0], calls[1],
        "same key, same attempt, same operations"
    );
    assert_eq!(calls[0].0, format!("{}/{}", r.id, child_id(&r.id, "0")));
    assert_eq!(
        (r.state, r.records),
        (RunState::Processed, 3),
        "counted once: {r:?}"
    );
}
