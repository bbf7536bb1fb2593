//! Deferred invocations, rate limits, runs and streams against the emulator (moto: DynamoDB
//! with the template's `gsi1` index, SQS). The tests play EventBridge (they call the tick) and
//! the SQS event source mapping (receive, run the worker's batch handler, delete what did not
//! fail); time for due dates and windows comes from a `ManualClock`.

use integration_tests::aws::{self, moto_config, moto_endpoint};
use integration_tests::counting_proxy::CountingProxy;
use integrator_lambda::Module;
use integrator_lambda::aws::Table;
use integrator_lambda::aws::idempotency::DynamoIdempotency;
use integrator_lambda::aws::jobs::DynamoJobs;
use integrator_lambda::aws::limits::DynamoCounters;
use integrator_lambda::aws::queue::SqsQueue;
use integrator_lambda::aws::runs::DynamoRuns;
use integrator_lambda::dispatch::{Extension, Services};
use integrator_lambda::jobs::deferred::{ScheduleRequest, Scheduler, Via};
use integrator_lambda::jobs::limits::{Admission, RateLimiter, parse_limits};
use integrator_lambda::jobs::runs::{
    IntegrationService, Integrations, RunContext, RunState, Runs, StreamResult, StreamSpec,
    StreamState,
};
use integrator_lambda::store::idempotency::Idempotency;
use integrator_lambda::time::{Clock, EpochMillis, ManualClock};
use integrator_lambda::worker;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

const MONDAY: u64 = 20_780 * 86_400_000; // 2026-11-23T00:00:00Z
const H: u64 = 3_600_000;

struct Env {
    cfg: aws_config::SdkConfig,
    /// The emulator through a proxy that forwards one request at a time: moto applies two
    /// transactions that `ADD` to one item concurrently without serializing them (a lost
    /// update DynamoDB never makes), and can let two concurrent conditional writes to one item
    /// both pass; so the run store, whose streams finish concurrently and all count on the run
    /// item, and the job store, whose racing ticks claim one job, go through it.
    serial: aws_config::SdkConfig,
    _serial_proxy: CountingProxy,
    table: String,
    queue_url: String,
    sqs: aws_sdk_sqs::Client,
}

async fn env(prefix: &str) -> Env {
    let cfg = moto_config().await;
    let table = aws::create_table(&cfg, prefix).await;
    let queue_url = aws::create_queue(&cfg, prefix).await;
    let serial_proxy = CountingProxy::start_serialized(&moto_endpoint())
        .await
        .expect("proxy");
    let serial = aws::sdk_config_for(&serial_proxy.endpoint()).await;
    Env {
        sqs: aws_sdk_sqs::Client::new(&cfg),
        cfg,
        serial,
        _serial_proxy: serial_proxy,
        table,
        queue_url,
    }
}

impl Env {
    fn scheduler(&self, clock: Arc<dyn Clock>) -> Arc<Scheduler> {
        Arc::new(Scheduler::new(
            Arc::new(DynamoJobs::new(Table::new(&self.serial, &self.table))),
            Arc::new(SqsQueue::new(&self.cfg, &self.queue_url)),
            clock,
        ))
    }

    fn idempotency(&self) -> Arc<Idempotency> {
        Arc::new(Idempotency::new(Arc::new(DynamoIdempotency::new(
            Table::new(&self.cfg, &self.table),
        ))))
    }

    /// Receive up to 10 visible messages as an SQS event (empty when none).
    async fn receive(&self) -> Vec<(String, String, String)> {
        self.receive_for(30).await
    }

    /// [`Env::receive`] with a visibility timeout of `secs`.
    async fn receive_for(&self, secs: i32) -> Vec<(String, String, String)> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(secs)
            .send()
            .await
            .expect("receive");
        out.messages()
            .iter()
            .map(|m| {
                (
                    m.message_id().unwrap_or_default().to_owned(),
                    m.body().unwrap_or_default().to_owned(),
                    m.receipt_handle().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// Play the event source mapping once: receive, run the batch, delete what succeeded.
    /// Returns the number of messages handled (0 when the queue had none visible).
    async fn deliver_once(&self, ext: &Extension) -> usize {
        self.deliver_once_for(ext, 30).await
    }

    /// [`Env::deliver_once`], a failed message coming back after `secs`.
    async fn deliver_once_for(&self, ext: &Extension, secs: i32) -> usize {
        let got = self.receive_for(secs).await;
        if got.is_empty() {
            return 0;
        }
        let event = sqs_event(got.iter().map(|(id, body, _)| (id.as_str(), body.as_str())));
        let failed: Vec<String> = match worker::handle_batch(ext, event, "test", None).await {
            Ok(r) => r
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Err(_) => got.iter().map(|(id, _, _)| id.clone()).collect(),
        };
        for (id, _, receipt) in &got {
            if !failed.contains(id) {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .expect("delete");
            }
        }
        got.len()
    }

    /// Deliver until the queue stays empty (bounded).
    async fn drain(&self, ext: &Extension) -> usize {
        let mut total = 0;
        let mut empty_in_a_row = 0;
        for _ in 0..60 {
            match self.deliver_once(ext).await {
                0 => {
                    empty_in_a_row += 1;
                    if empty_in_a_row == 2 {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                n => {
                    empty_in_a_row = 0;
                    total += n;
                }
            }
        }
        total
    }

    async fn purge(&self) {
        // Bounded: delete whatever is visible, a few rounds.
        for _ in 0..10 {
            let got = self.receive().await;
            if got.is_empty() {
                return;
            }
            for (_, _, receipt) in got {
                self.sqs
                    .delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(receipt)
                    .send()
                    .await
                    .expect("delete");
            }
        }
    }
}

fn sqs_event<'a>(messages: impl Iterator<Item = (&'a str, &'a str)>) -> Value {
    let records: Vec<Value> = messages
        .map(|(id, body)| {
            json!({
                "messageId": id, "receiptHandle": id, "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

/// A module with `countMe`, counting its runs.
fn counting_module(counter: Arc<AtomicUsize>) -> Module {
    let mut m = Module::new();
    m.raw("countMe", move |_inv, _options: Value| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(json!({"counted": true}))
        }
    });
    m
}

fn extension(module: Module, services: Services) -> Extension {
    Extension::builder()
        .diy(module)
        .services(services)
        .build()
        .expect("extension")
}

fn envelope(function: &str) -> serde_json::Map<String, Value> {
    json!({"diy": true, "function": function, "options": {"n": 1}})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_tick_queue_worker_runs_the_function_once() {
    let e = env("jobs-once").await;
    let clock = Arc::new(ManualClock::at(EpochMillis::now().0));
    let scheduler = e.scheduler(clock.clone());
    let counter = Arc::new(AtomicUsize::new(0));
    let services = Services::new()
        .with_scheduler(scheduler.clone())
        .with_idempotency(e.idempotency());
    let ext = extension(counting_module(counter.clone()), services);

    // 20 minutes: longer than SQS can delay, so it is stored for the tick.
    let s = scheduler
        .schedule(
            ScheduleRequest::new(envelope("countMe"), Some(&json!({"order": 7})))
                .delay(Duration::from_secs(20 * 60)),
        )
        .await
        .expect("schedule");
    println!("scheduled: {}", s.to_json());
    assert_eq!(s.via, Via::Table);
    let early = scheduler.tick().await.expect("tick");
    println!("tick now: {}", early.to_json());
    assert_eq!(early.enqueued, 0);
    assert_eq!(
        e.deliver_once(&ext).await,
        0,
        "nothing queued before it is due"
    );

    // 20 minutes later two ticks race: the job is moved exactly once.
    clock.advance(Duration::from_secs(20 * 60));
    let (a, b) = tokio::join!(scheduler.tick(), scheduler.tick());
    let (a, b) = (a.expect("tick a"), b.expect("tick b"));
    println!("racing ticks: {} {}", a.to_json(), b.to_json());
    assert_eq!(a.enqueued + b.enqueued, 1);
    assert_eq!(scheduler.tick().await.expect("tick").enqueued, 0);

    let got = e.receive().await;
    assert_eq!(got.len(), 1, "exactly one message in the queue");
    let (id, body, _) = &got[0];
    let event = sqs_event([(id.as_str(), body.as_str())].into_iter());
    let first = worker::handle_batch(&ext, event.clone(), "t", None)
        .await
        .expect("batch");
    assert_eq!(first.to_json(), r#"{"batchItemFailures":[]}"#);
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    // Redelivery of the same message, and a copy under another message id: not run again.
    worker::handle_batch(&ext, event, "t", None)
        .await
        .expect("redelivery");
    let copy = sqs_event([("another-id", body.as_str())].into_iter());
    let third = worker::handle_batch(&ext, copy, "t", None)
        .await
        .expect("copy");
    assert_eq!(third.to_json(), r#"{"batchItemFailures":[]}"#);
    println!(
        "runs after delivery, redelivery and a copy: {}",
        counter.load(Ordering::SeqCst)
    );
    assert_eq!(counter.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_is_respected_with_an_injected_clock() {
    let e = env("jobs-window").await;
    // Saturday 10:00 UTC.
    let clock = Arc::new(ManualClock::at(MONDAY + 5 * 24 * H + 10 * H));
    let scheduler = e.scheduler(clock.clone());
    let req = ScheduleRequest::from_json(&json!({
        "envelope": {"diy": true, "function": "countMe"},
        "key": {"campaign": "c1"},
        "delay": 60_000,
        "window": {"day": "monday-friday", "time": "09:00-17:00"}
    }))
    .expect("request");
    let s = scheduler.schedule(req).await.expect("schedule");
    println!("scheduled on Saturday 10:00: {}", s.to_json());
    assert_eq!(s.to_json()["dueAt"], "2026-11-30T09:00:00.000Z");
    assert_eq!(s.via, Via::Table);
    // Sunday 23:00 and Monday 08:58: outside the window (and beyond the lookahead).
    for at in [
        MONDAY + 6 * 24 * H + 23 * H,
        MONDAY + 7 * 24 * H + 9 * H - 120_000,
    ] {
        clock.set(at);
        let t = scheduler.tick().await.expect("tick");
        assert_eq!(t.enqueued, 0, "not due at {at}");
    }
    // Monday 09:00: moved.
    clock.set(MONDAY + 7 * 24 * H + 9 * H);
    let t = scheduler.tick().await.expect("tick");
    println!("tick on Monday 09:00: {}", t.to_json());
    assert_eq!(t.enqueued, 1);
    let got = e.receive().await;
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_str(&got[0].1).expect("body");
    assert_eq!(body["function"], "countMe");
    assert_eq!(body["_job"]["id"], json!(s.job_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_replaces_and_cancel_wins_over_a_queued_message() {
    let e = env("jobs-replace").await;
    let clock = Arc::new(ManualClock::at(EpochMillis::now().0));
    let scheduler = e.scheduler(clock);
    let counter = Arc::new(AtomicUsize::new(0));
    let services = Services::new()
        .with_scheduler(scheduler.clone())
        .with_idempotency(e.idempotency());
    let ext = extension(counting_module(counter.clone()), services);

    // Two schedules under one key (both go straight to SQS), then a third job cancelled.
    let key = json!({"email": "5d41402abc4b2a76b9719d911017c592"});
    let a = scheduler
        .schedule(ScheduleRequest::new(envelope("countMe"), Some(&key)))
        .await
        .expect("a");
    let b = scheduler
        .schedule(ScheduleRequest::new(envelope("countMe"), Some(&key)))
        .await
        .expect("b");
    assert_eq!((a.via, a.job_id.clone()), (Via::Queue, b.job_id.clone()));
    let c = scheduler
        .schedule(ScheduleRequest::new(
            envelope("countMe"),
            Some(&json!("other")),
        ))
        .await
        .expect("c");
    assert!(scheduler.cancel(&c.job_id).await.expect("cancel"));
    let delivered = e.drain(&ext).await;
    println!(
        "delivered {delivered} messages; runs {}",
        counter.load(Ordering::SeqCst)
    );
    assert_eq!(delivered, 3);
    assert_eq!(
        counter.load(Ordering::SeqCst),
        1,
        "only the replacement runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_under_32_concurrent_invocations() {
    let e = env("jobs-rate").await;
    // DynamoDB applies writes to one item one at a time; moto does not, so the counters go
    // through a proxy that forwards one request at a time (see tests/tests/dedup.rs).
    let proxy = CountingProxy::start_serialized(&moto_endpoint())
        .await
        .expect("proxy");
    let via_proxy = aws::sdk_config_for(&proxy.endpoint()).await;
    // One second before the minute ends, so the deferral's SQS delay is 1 s.
    let clock = Arc::new(ManualClock::at(MONDAY + 10 * H + 59_000));
    let limiter = Arc::new(RateLimiter::new(
        Arc::new(DynamoCounters::new(Table::new(&via_proxy, &e.table))),
        clock.clone(),
        parse_limits(r#"[{"function":"countMe","limit":5,"interval":"1m"}]"#).expect("limits"),
    ));
    let verdicts = futures_join_all(32, |_| {
        let l = limiter.clone();
        async move { l.admit("countMe", None).await.expect("admit") }
    })
    .await;
    let allowed = verdicts
        .iter()
        .filter(|v| **v == Admission::Allowed)
        .count();
    println!(
        "32 concurrent admissions, limit 5/min: {allowed} allowed; requests {:?}",
        proxy.counts()
    );
    assert_eq!(allowed, 5);
    assert!(verdicts.iter().all(|v| *v == Admission::Allowed
        || *v
            == Admission::Limited {
                retry_at: EpochMillis(MONDAY + 10 * H + 60_000),
                limit: 5
            }));

    // Through the worker: 32 concurrent invocations (one message each) of a function limited
    // to 3 per minute per key: 3 run, 29 are deferred to the next minute (none failed, none
    // dropped, none coalesced); in the next minute the limit again lets exactly 3 through.
    let counter = Arc::new(AtomicUsize::new(0));
    let limiter = Arc::new(RateLimiter::new(
        Arc::new(DynamoCounters::new(Table::new(&via_proxy, &e.table))),
        clock.clone(),
        parse_limits(r#"[{"function":"countMe","limit":3,"interval":"1m","per":"key"}]"#)
            .expect("limits"),
    ));
    let scheduler = e.scheduler(clock.clone());
    let services = Services::new()
        .with_limiter(limiter)
        .with_scheduler(scheduler)
        .with_idempotency(e.idempotency());
    let ext = Arc::new(extension(counting_module(counter.clone()), services));
    let answers = futures_join_all(32, |i| {
        let ext = ext.clone();
        async move {
            let body = json!({"diy": true, "function": "countMe", "key": {"user": "u1"}, "options": {"i": i}})
                .to_string();
            let id = format!("m-{i}");
            let event = sqs_event([(id.as_str(), body.as_str())].into_iter());
            worker::handle_batch(&ext, event, "t", None)
                .await
                .map(|r| r.to_json())
                .unwrap_or_else(|e| e.to_string())
        }
    })
    .await;
    println!(
        "32 concurrent worker invocations, limit 3/min per key: {} ran",
        counter.load(Ordering::SeqCst)
    );
    assert!(
        answers.iter().all(|a| a == r#"{"batchItemFailures":[]}"#),
        "{answers:?}"
    );
    assert_eq!(counter.load(Ordering::SeqCst), 3);
    // The 29 deferred invocations are 29 jobs, due when the next minute starts (1 s away).
    // The clock then stands at that minute's start, so the 26 deferred again wait a whole
    // minute (not 1 s, which would race the drain below).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    clock.set(MONDAY + 10 * H + 60_000);
    let delivered = e.drain(&ext).await;
    println!(
        "next minute: {delivered} delivered, {} ran in all",
        counter.load(Ordering::SeqCst)
    );
    assert_eq!(delivered, 29);
    assert_eq!(counter.load(Ordering::SeqCst), 6);
}

async fn futures_join_all<T, F, Fut>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

/// A two-source integration whose `beta` source fails while `healthy` is false.
struct Flaky {
    healthy: Arc<AtomicBool>,
}

#[async_trait::async_trait]
impl IntegrationService for Flaky {
    fn integration_type(&self) -> &str {
        "flaky"
    }
    fn max_retries(&self) -> u32 {
        2
    }
    async fn get_streams(
        &self,
        _ctx: &RunContext,
    ) -> Result<Vec<StreamSpec>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(vec![
            StreamSpec::new("alpha", json!({"source": "alpha", "page": 1})),
            StreamSpec::new("beta", json!({"source": "beta", "page": 1})),
        ])
    }
    async fn process_stream(
        &self,
        _ctx: &RunContext,
        stream: &StreamSpec,
    ) -> Result<StreamResult, Box<dyn std::error::Error + Send + Sync>> {
        let page = stream.params["page"].as_u64().unwrap_or(1);
        if stream.params["source"] == "beta" && !self.healthy.load(Ordering::SeqCst) {
            return Err("beta is down".into());
        }
        Ok(StreamResult {
            operations: (0..10).map(|i| json!({"id": i})).collect(),
            next_page_stream: (page < 3).then(|| {
                StreamSpec::new(
                    format!("{} p{}", stream.name, page + 1),
                    json!({"source": stream.params["source"], "page": page + 1}),
                )
            }),
            ..StreamResult::default()
        })
    }
}

fn runs_for(e: &Env, integrations: Integrations) -> Arc<Runs> {
    runs_sending_via(e, &e.cfg, integrations)
}

/// Runs whose stream messages go to the queue through `sqs` (e.g. a fault proxy's config).
fn runs_sending_via(e: &Env, sqs: &aws_config::SdkConfig, integrations: Integrations) -> Arc<Runs> {
    Arc::new(
        Runs::new(
            Arc::new(DynamoRuns::new(Table::new(&e.serial, &e.table))),
            Arc::new(SqsQueue::new(sqs, &e.queue_url)),
            integrations,
            Arc::new(integrator_lambda::time::SystemClock),
        )
        .with_retry_delay(Duration::ZERO),
    )
}

/// The run record, read back from the table.
async fn run_of(runs: &Runs, id: &str) -> integrator_lambda::jobs::runs::Run {
    runs.store().get_run(id).await.expect("get").expect("run")
}

fn runs_extension(runs: Arc<Runs>) -> Extension {
    extension(Module::new(), Services::new().with_runs(runs))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_run_with_pages_and_a_failing_stream_ends_in_the_right_states() {
    let e = env("runs-states").await;
    let healthy = Arc::new(AtomicBool::new(false));
    let runs = runs_for(
        &e,
        Integrations::new().with(Flaky {
            healthy: healthy.clone(),
        }),
    );
    let ext = runs_extension(runs.clone());
    let run = runs
        .start_run("flaky", true, json!({}))
        .await
        .expect("start");
    let delivered = e.drain(&ext).await;
    let done = run_of(&runs, &run.id).await;
    let streams = runs.store().list_streams(&run.id).await.expect("streams");
    println!("{delivered} messages; run: {}", done.to_json());
    for s in &streams {
        println!(
            "  stream {} {:?} attempt {} retries {} error {:?}",
            s.spec.name, s.state, s.attempt, s.retries, s.error
        );
    }
    assert_eq!(done.state, RunState::Error);
    assert_eq!(done.error.as_deref(), Some("1 stream(s) failed"));
    assert_eq!(
        (
            done.pending,
            done.streams_total,
            done.errored_streams,
            done.records
        ),
        (0, 4, 1, 30)
    );
    assert_eq!(streams.len(), 4);
    let beta = streams
        .iter()
        .find(|s| s.spec.name == "beta")
        .expect("beta");
    assert_eq!((beta.state, beta.retries), (StreamState::Error, 2));
    assert_eq!(beta.error.as_deref(), Some("beta is down"));
    assert!(
        streams
            .iter()
            .filter(|s| s.spec.name != "beta")
            .all(|s| s.state == StreamState::Processed)
    );

    // Continue after the source recovers: the errored stream is retried and the run finishes.
    healthy.store(true, Ordering::SeqCst);
    let report = runs.continue_run(&run.id).await.expect("continue");
    assert_eq!(report.requeued, 1);
    e.drain(&ext).await;
    let done = run_of(&runs, &run.id).await;
    println!("after continue: {}", done.to_json());
    assert_eq!(done.state, RunState::Processed);
    assert_eq!(
        (
            done.pending,
            done.streams_total,
            done.errored_streams,
            done.records
        ),
        (0, 6, 0, 60)
    );
}

/// Against the emulator: a run's state is committed, then the
/// `SendMessage` of its follow-up streams fails (every attempt, 500s from the fault proxy).
/// The message that did the work fails and SQS redelivers it; the redelivery sees the
/// committed work and sends what it called for, so the run still finishes with every record.
/// Before, a failed send after the commit left streams `pending` with no message: the run
/// stayed `processing` forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_lost_after_a_commit_is_repaired_by_the_redelivery_against_the_emulator() {
    use integration_tests::counting_proxy::{Fault, Rule};
    let e = env("runs-repair").await;
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let via_proxy = aws::sdk_config_for(&proxy.endpoint()).await;
    // The start message goes through; the next send (the first streams, after `begin`
    // committed them) fails all 3 attempts, and so does the first send after that.
    proxy.inject(
        Rule::always("SendMessage", Fault::Http500)
            .after(1)
            .times(3),
    );
    proxy.inject(
        Rule::always("SendMessage", Fault::Http500)
            .after(5)
            .times(3),
    );
    let runs = runs_sending_via(&e, &via_proxy, functions::integrations::all());
    let ext = runs_extension(runs.clone());
    let run = runs
        .start_run(
            "paged-numbers",
            false,
            json!({"sources": ["alpha", "beta"], "total": 25}),
        )
        .await
        .expect("start");
    // Redelivery as SQS does it: a failed message is visible again after 1 s.
    let mut empty = 0;
    for _ in 0..120 {
        if e.deliver_once_for(&ext, 1).await == 0 {
            empty += 1;
            if empty >= 6 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        } else {
            empty = 0;
        }
    }
    let done = run_of(&runs, &run.id).await;
    println!("faults {:?}; run: {}", proxy.faults(), done.to_json());
    assert!(
        proxy.faults().values().sum::<u64>() >= 6,
        "{:?}",
        proxy.faults()
    );
    assert_eq!(done.state, RunState::Processed, "{}", done.to_json());
    assert_eq!((done.pending, done.records), (0, 50), "{}", done.to_json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_run_finishes_a_stuck_run() {
    let e = env("runs-stuck").await;
    let runs = runs_for(&e, functions::integrations::all());
    let ext = runs_extension(runs.clone());
    let run = runs
        .start_run(
            "paged-numbers",
            false,
            json!({"sources": ["alpha", "beta"], "total": 25}),
        )
        .await
        .expect("start");
    // The start message runs; then the stream messages are lost (purged).
    assert_eq!(e.deliver_once(&ext).await, 1);
    e.purge().await;
    let stuck = run_of(&runs, &run.id).await;
    println!("stuck: {}", stuck.to_json());
    assert_eq!((stuck.state, stuck.pending), (RunState::Processing, 2));
    assert_eq!(e.drain(&ext).await, 0);

    let report = runs.continue_run(&run.id).await.expect("continue");
    println!("continue-run: {report:?}");
    assert_eq!(report.requeued, 2);
    e.drain(&ext).await;
    let done = run_of(&runs, &run.id).await;
    println!("after continue: {}", done.to_json());
    assert_eq!(done.state, RunState::Processed);
    assert_eq!((done.pending, done.streams_total, done.records), (0, 6, 50));
    assert!(done.processed_at.is_some());
    // A second start of a finished run: the transaction's condition fails, reported as
    // "not begun" (false), not as a store error.
    assert!(!runs.store().begin_run(&run.id, &[]).await.expect("begin"));
}

/// A message that already ran is redelivered (SQS delivers at least once) while its
/// function's limit is used up: it is answered from its idempotency record — not admitted,
/// not deferred, not run again. A message deferred by the limit and then redelivered is not
/// deferred twice: one job, one message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_is_neither_admitted_nor_deferred_again() {
    let e = env("jobs-redeliver").await;
    // One second before the window ends, so a deferral's SQS delay is 1 s.
    let clock = Arc::new(ManualClock::at(MONDAY + 10 * H + 59_000));
    let limiter = Arc::new(RateLimiter::new(
        Arc::new(DynamoCounters::new(Table::new(&e.cfg, &e.table))),
        clock.clone(),
        parse_limits(r#"[{"function":"countMe","limit":1,"interval":"1m"}]"#).expect("limits"),
    ));
    let counter = Arc::new(AtomicUsize::new(0));
    let services = Services::new()
        .with_limiter(limiter)
        .with_scheduler(e.scheduler(clock.clone()))
        .with_idempotency(e.idempotency());
    let ext = extension(counting_module(counter.clone()), services);
    let body = json!({"diy": true, "function": "countMe", "options": {"n": 1}}).to_string();
    let deliver = |id: &'static str| {
        let event = sqs_event([(id, body.as_str())].into_iter());
        let ext = &ext;
        async move {
            worker::handle_batch(ext, event, "t", None)
                .await
                .map(|r| r.to_json())
                .unwrap_or_else(|e| e.to_string())
        }
    };
    let ok = r#"{"batchItemFailures":[]}"#;
    assert_eq!(deliver("m-1").await, ok);
    assert_eq!(counter.load(Ordering::SeqCst), 1, "m-1 ran");
    assert_eq!(deliver("m-1").await, ok, "redelivered");
    assert_eq!(counter.load(Ordering::SeqCst), 1, "not run again");

    assert_eq!(deliver("m-2").await, ok, "over the limit: deferred");
    assert_eq!(deliver("m-2").await, ok, "redelivered");
    assert_eq!(counter.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let queued = e.receive().await;
    assert_eq!(
        queued.len(),
        1,
        "only m-2's one deferral (m-1 was not deferred, m-2 not twice): {queued:?}"
    );
}
