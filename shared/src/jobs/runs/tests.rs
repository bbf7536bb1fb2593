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
