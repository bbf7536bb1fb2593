//! Faults injected between our code and the AWS emulator (moto), at the worst moment, through
//! the fault proxy (`integration_tests::counting_proxy`): a stalled or reset `SendMessage`, a
//! throttled `UpdateItem`, the process killed while its send is in flight. After the retry or
//! the redelivery, each test checks the invariant docs/RELIABILITY.md promises for that path.

use integration_tests::counting_proxy::{CountingProxy, Fault, Rule};
use integration_tests::http_client::{RawResponse, send};
use integration_tests::{aws, process};
use integrator_lambda::Module;
use integrator_lambda::aws::Table;
use integrator_lambda::aws::dedup::DynamoDedup;
use integrator_lambda::aws::queue::SqsQueue;
use integrator_lambda::dispatch::Extension;
use integrator_lambda::incoming::{IncomingApp, IncomingConfig, IncomingStores};
use integrator_lambda::store::dedup::{Dedup, Sighting, check_page};
use integrator_lambda::transport::http::HttpApp;
use integrator_lambda::transport::system_token::TokenSet;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const JSON: (&str, &str) = ("content-type", "application/json");

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn post(addr: &str, body: &str) -> Result<RawResponse, String> {
    send(addr, "POST", "/incoming/demo", &[JSON], body.as_bytes()).map_err(|e| e.to_string())
}

/// The messages in `url`.
async fn drain_queue(cfg: &aws_config::SdkConfig, url: &str) -> Vec<Value> {
    aws::drain_bodies(cfg, url).await
}

/// `demo` (dedup on the whole body) served in-process over the fault proxy: DynamoDB dedup
/// keys and an SQS queue on the emulator, a 3 s request budget, a 10 s lease.
struct Incoming {
    rt: tokio::runtime::Runtime,
    addr: String,
    proxy: CountingProxy,
    cfg: aws_config::SdkConfig,
    url: String,
}

fn incoming_over_proxy() -> Incoming {
    incoming_over_proxy_with(r#"{"demo": {"dedup": "body"}}"#)
}

/// Like [`incoming_over_proxy`], with `config` (whose endpoint is named `demo`).
fn incoming_over_proxy_with(config: &str) -> Incoming {
    let rt = runtime();
    let (proxy, cfg, via, table, url) = rt.block_on(async {
        let cfg = aws::moto_config().await;
        let table = aws::create_table(&cfg, "faults-in").await;
        let url = aws::create_queue(&cfg, "faults-in").await;
        let proxy = CountingProxy::start(&aws::moto_endpoint())
            .await
            .expect("proxy");
        let via = aws::sdk_config_for(&proxy.endpoint()).await;
        (proxy, cfg, via, table, url)
    });
    let stores = IncomingStores::new(
        Arc::new(Dedup::new(Arc::new(DynamoDedup::new(Table::new(
            &via, &table,
        ))))),
        Arc::new(SqsQueue::new(&via, url.clone())),
    );
    let config = IncomingConfig::from_json(config).expect("config");
    let app = IncomingApp::new(config, stores)
        .expect("app")
        .with_timeout(Duration::from_secs(3))
        .with_lease(Duration::from_secs(10));
    let ext = Extension::builder()
        .diy(Module::new())
        .build()
        .expect("extension");
    let http = HttpApp::new(ext, TokenSet::default(), 1 << 20).with_mount(Arc::new(app));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(async move {
        use integrator_lambda::transport::server;
        server::serve_router(listener, server::router(http), std::future::pending()).await;
    });
    Incoming {
        rt,
        addr,
        proxy,
        cfg,
        url,
    }
}

/// A `SendMessage` that stalls past every timeout: the request is answered 503 within its
/// budget (not held until the platform kills it), the key is released, and the sender's retry
/// is accepted — not answered 204 for an event that is in no queue. Exactly one message.
#[test]
fn a_stalled_send_is_a_503_and_the_retry_is_queued_exactly_once() {
    let s = incoming_over_proxy();
    s.proxy.inject(Rule::once(
        "SendMessage",
        Fault::Stall(Duration::from_secs(20)),
    ));
    let body = r#"{"order":"A-1"}"#;
    let started = Instant::now();
    let first = post(&s.addr, body).expect("answered");
    assert_eq!(first.status, 503, "{}", first.text());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within the request budget, took {:?}",
        started.elapsed()
    );
    let retry = post(&s.addr, body).expect("answered");
    assert_eq!(retry.status, 200, "the retry is accepted: {}", retry.text());
    assert_eq!(post(&s.addr, body).expect("answered").status, 204);
    let messages = s.rt.block_on(drain_queue(&s.cfg, &s.url));
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["event"], json!({"order": "A-1"}));
    println!("faults injected: {:?}", s.proxy.faults());
}

/// The HMAC replay record of a request whose `SendMessage` failed (answered
/// 503) is released with it: the sender's identical retry (same id, timestamp and signature)
/// is accepted and queued once — not refused 401 as a replay of a message that was never
/// queued. Only after that is the very same request a replay.
#[test]
fn a_failed_send_releases_the_replay_record_and_the_identical_retry_is_queued_once() {
    use integrator_lambda::incoming::signature;
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let s = incoming_over_proxy_with(&format!(
        r#"{{"demo": {{"auth": {{"type": "hmac", "secret": "{SECRET}"}}, "dedup": {{"headers": ["webhook-id"]}}}}}}"#
    ));
    s.proxy.inject(Rule::once(
        "SendMessage",
        Fault::Error("InvalidParameterValue"),
    ));
    let body = r#"{"order":"R-1"}"#;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let key = signature::key_from_secret(SECRET).expect("key");
    let sig = signature::sign(&key, "msg_r1", now, body.as_bytes());
    let ts = now.to_string();
    let headers = [
        JSON,
        ("webhook-id", "msg_r1"),
        ("webhook-timestamp", ts.as_str()),
        ("webhook-signature", sig.as_str()),
    ];
    let post =
        || send(&s.addr, "POST", "/incoming/demo", &headers, body.as_bytes()).expect("answered");
    let first = post();
    assert_eq!(first.status, 503, "{}", first.text());
    let retry = post();
    assert_eq!(
        retry.status,
        200,
        "the identical retry is accepted: {}",
        retry.text()
    );
    let replay = post();
    assert_eq!(replay.status, 401, "{}", replay.text());
    let messages = s.rt.block_on(drain_queue(&s.cfg, &s.url));
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["event"], json!({"order": "R-1"}));
    assert_eq!(s.proxy.faults().values().sum::<u64>(), 1);
}

/// A reset `SendMessage` and a throttled one (the SDK retries within its budget): still one
/// 200 per event and one message each.
#[test]
fn resets_and_throttling_on_send_lose_nothing() {
    let s = incoming_over_proxy();
    s.proxy
        .inject(Rule::always("SendMessage", Fault::Reset).times(1));
    s.proxy.inject(
        Rule::always("SendMessage", Fault::Error("ThrottlingException"))
            .after(1)
            .times(1),
    );
    let mut accepted = 0;
    for i in 0..3 {
        let body = format!(r#"{{"n":{i}}}"#);
        // A sender retries a 503 (a few times, bounded).
        for _ in 0..5 {
            let r = post(&s.addr, &body).expect("answered");
            if r.status == 200 {
                accepted += 1;
                break;
            }
            assert_eq!(r.status, 503, "{}", r.text());
        }
    }
    assert_eq!(accepted, 3);
    let messages = s.rt.block_on(drain_queue(&s.cfg, &s.url));
    assert_eq!(messages.len(), 3, "{messages:?}");
}

/// The `incoming` binary is killed while its `SendMessage` is in flight (a crash between the
/// dedup claim and the send). After a restart, the sender's retry is not swallowed as a
/// duplicate: answered 503 while the dead request's lease lasts, then accepted, queued once.
#[test]
fn a_crash_between_claim_and_send_does_not_swallow_the_retry() {
    let rt = runtime();
    let (proxy, cfg, table, url) = rt.block_on(async {
        let cfg = aws::moto_config().await;
        let table = aws::create_table(&cfg, "faults-crash").await;
        let url = aws::create_queue(&cfg, "faults-crash").await;
        let proxy = CountingProxy::start(&aws::moto_endpoint())
            .await
            .expect("proxy");
        (proxy, cfg, table, url)
    });
    let env_owned = aws::incoming_env(&proxy.endpoint(), &table, &url);
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bin = process::bin("incoming");
    let pid = Arc::new(AtomicU32::new(0));
    proxy.inject(Rule::once("SendMessage", Fault::kill(pid.clone())));
    let (first, addr) = process::server(&bin, &[], &env);
    pid.store(first.id(), Ordering::SeqCst);
    let body = r#"{"order":"crash-1"}"#;
    assert!(
        post(&addr, body).is_err(),
        "the process died before answering"
    );
    drop(first);

    let (_second, addr) = process::server(&bin, &[], &env);
    let r = post(&addr, body).expect("answered");
    assert_eq!(
        r.status,
        503,
        "the dead request's lease holds: {}",
        r.text()
    );
    assert_eq!(r.json()["errors"][0]["code"], "in_progress");
    // After the lease (7 s from the claim), the retry is accepted.
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        std::thread::sleep(Duration::from_millis(500));
        let r = post(&addr, body).expect("answered");
        if r.status != 503 || Instant::now() > deadline {
            break r.status;
        }
    };
    assert_eq!(status, 200);
    assert_eq!(post(&addr, body).expect("answered").status, 204);
    let messages = rt.block_on(drain_queue(&cfg, &url));
    assert_eq!(messages.len(), 1, "{messages:?}");
}

/// A page whose third dedup check fails (throttled past the SDK's retries): the call fails,
/// and the two keys it had already marked are forgotten, so integrator.io's retry of the page
/// finds every record new — none is dropped as a duplicate of a page that never went through.
#[test]
fn a_page_whose_check_fails_marks_nothing() {
    let rt = runtime();
    rt.block_on(async {
        let cfg = aws::moto_config().await;
        let table = aws::create_table(&cfg, "faults-page").await;
        let proxy = CountingProxy::start(&aws::moto_endpoint())
            .await
            .expect("proxy");
        let via = aws::sdk_config_for(&proxy.endpoint()).await;
        let dedup = Dedup::new(Arc::new(DynamoDedup::new(Table::new(&via, &table))));
        proxy.inject(
            Rule::always(
                "UpdateItem",
                Fault::Error("ProvisionedThroughputExceededException"),
            )
            .after(2)
            .times(3),
        );
        let page: Vec<Value> = (0..5).map(|i| json!({"id": i})).collect();
        let fields = vec!["id".to_owned()];
        let err = check_page(&dedup, "export-1", &page, &fields, 1).await;
        assert!(err.is_err(), "{err:?}");
        let retry = check_page(&dedup, "export-1", &page, &fields, 1)
            .await
            .expect("retry");
        assert_eq!(retry, vec![Sighting::New; 5]);
        println!("requests {:?}, faults {:?}", proxy.counts(), proxy.faults());
    });
}

/// The tick is cut off while its `SendMessage` stalls (as when its process dies between the
/// claim and the send). The job is not orphaned: the first tick after its lease sends it,
/// exactly once, against DynamoDB and SQS on the emulator.
#[test]
fn a_tick_cut_off_mid_send_leaves_the_job_to_a_later_tick() {
    use integrator_lambda::aws::jobs::DynamoJobs;
    use integrator_lambda::jobs::deferred::{SEND_LEASE, ScheduleRequest, Scheduler, Via};
    use integrator_lambda::time::{EpochMillis, ManualClock};
    let rt = runtime();
    rt.block_on(async {
        let cfg = aws::moto_config().await;
        let table = aws::create_table(&cfg, "faults-tick").await;
        let url = aws::create_queue(&cfg, "faults-tick").await;
        let proxy = CountingProxy::start(&aws::moto_endpoint())
            .await
            .expect("proxy");
        let via = aws::sdk_config_for(&proxy.endpoint()).await;
        let clock = Arc::new(ManualClock::at(EpochMillis::now().0));
        let s = Scheduler::new(
            Arc::new(DynamoJobs::new(Table::new(&via, &table))),
            Arc::new(SqsQueue::new(&via, url.clone())),
            clock.clone(),
        );
        let envelope = json!({"diy": true, "function": "f", "options": {}})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let r = s
            .schedule(ScheduleRequest::new(envelope, None).delay(Duration::from_secs(1200)))
            .await
            .expect("schedule");
        assert_eq!(r.via, Via::Table);
        clock.advance(Duration::from_secs(1200));
        proxy.inject(Rule::once(
            "SendMessage",
            Fault::Stall(Duration::from_secs(20)),
        ));
        let cut = tokio::time::timeout(Duration::from_secs(1), s.tick()).await;
        assert!(cut.is_err(), "cut off mid-send");
        assert_eq!(s.tick().await.expect("tick").enqueued, 0, "lease holds");
        clock.advance(SEND_LEASE);
        let after = s.tick().await.expect("tick");
        assert_eq!(after.enqueued, 1, "{after:?}");
        let messages = drain_queue(&cfg, &url).await;
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(messages[0]["_job"]["id"], r.job_id.as_str());
    });
}

/// The idempotency record's completing write stalls after the function ran: the SDK's attempt
/// timeout gives up on it and its retry completes the record within the invocation's
/// deadline, so the redelivery replays instead of running the function a second time.
#[test]
fn a_stalled_completion_still_completes_before_the_deadline() {
    use integrator_lambda::aws::idempotency::DynamoIdempotency;
    use integrator_lambda::dispatch::Services;
    use integrator_lambda::store::idempotency::Idempotency;
    use std::sync::atomic::AtomicUsize;
    let rt = runtime();
    rt.block_on(async {
        let cfg = aws::moto_config().await;
        let table = aws::create_table(&cfg, "faults-idem").await;
        let proxy = CountingProxy::start(&aws::moto_endpoint())
            .await
            .expect("proxy");
        let via = aws::sdk_config_for(&proxy.endpoint()).await;
        let runs = Arc::new(AtomicUsize::new(0));
        let mut m = Module::new();
        m.raw("count", {
            let runs = runs.clone();
            move |_inv, _o: Value| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, integrator_lambda::ExtError>(json!({"ok": true}))
                }
            }
        });
        let idem = Idempotency::new(Arc::new(DynamoIdempotency::new(Table::new(&via, &table))));
        let ext = Extension::builder()
            .diy(m)
            .services(Services::new().with_idempotency(Arc::new(idem)))
            .build()
            .expect("extension");
        let event = json!({"Records": [{
            "messageId": "m-1", "receiptHandle": "r", "eventSource": "aws:sqs",
            "body": r#"{"diy":true,"function":"count","options":{}}"#,
            "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}
        }]});
        proxy.inject(Rule::once(
            "UpdateItem",
            Fault::Stall(Duration::from_secs(40)),
        ));
        let started = Instant::now();
        let deadline = started + Duration::from_secs(15);
        let first =
            integrator_lambda::worker::handle_batch(&ext, event.clone(), "t", Some(deadline))
                .await
                .expect("batch");
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "within the deadline: {:?}",
            started.elapsed()
        );
        assert!(first.batch_item_failures.is_empty());
        let again = integrator_lambda::worker::handle_batch(&ext, event, "t", None)
            .await
            .expect("batch");
        assert!(again.batch_item_failures.is_empty());
        assert_eq!(runs.load(Ordering::SeqCst), 1, "replayed, not run again");
        println!("requests {:?}, faults {:?}", proxy.counts(), proxy.faults());
    });
}
