//! The queue worker (`worker` binary) as Lambda runs it: the real bootstrap against the Runtime
//! API double, fed SQS events (`events/worker/`), answering partial batch responses. The
//! idempotency and dead-letter tests run against the emulator (moto, `MOTO_ENDPOINT`).

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use integration_tests::aws::{self, moto_config, moto_endpoint, unique};
use integration_tests::counting_proxy::CountingProxy;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::{process, repo_root};
use integrator_lambda::aws::Table;
use integrator_lambda::aws::idempotency::DynamoIdempotency;
use integrator_lambda::store::idempotency::{IdempotencyKey, IdempotencyStore, LockToken};
use integrator_lambda::time::{EpochMillis, EpochSeconds};
use integrator_lambda::worker::IDEMPOTENCY_SCOPE;
use serde_json::{Value, json};
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

fn event_file(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("events/worker").join(name))
        .unwrap_or_else(|e| panic!("events/worker/{name}: {e}"))
}

fn ids(event: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(event).expect("event JSON");
    v["Records"]
        .as_array()
        .expect("Records")
        .iter()
        .map(|r| r["messageId"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// One SQS record of WorkQueue (standard queue unless `group` is given).
fn record(id: Option<&str>, body: &str, group: Option<&str>) -> Value {
    integration_tests::aws::sqs_record(id, body, "work", group)
}

fn event(records: Vec<Value>) -> String {
    json!({ "Records": records }).to_string()
}

fn sleep_body(ms: i64) -> String {
    json!({"diy": true, "function": "sleepDemo", "options": {"ms": ms}}).to_string()
}

/// A `worker` process (embedded backend unless `env` says otherwise) and its Runtime API.
async fn worker(env: &[(&str, &str)]) -> (RuntimeApi, process::Proc) {
    let api = RuntimeApi::start().await.expect("runtime api");
    let proc = process::lambda(&process::bin("worker"), &api.address(), env);
    (api, proc)
}

fn response(outcome: Option<Outcome>) -> String {
    match outcome {
        Some(Outcome::Response(body)) => String::from_utf8(body).expect("UTF-8"),
        other => panic!("expected a response, got {:?}", other.map(|o| o.text())),
    }
}

fn error(outcome: Option<Outcome>) -> Value {
    match outcome {
        Some(Outcome::Error(body)) => serde_json::from_slice(&body).expect("error JSON"),
        other => panic!("expected an error, got {:?}", other.map(|o| o.text())),
    }
}

fn failures(ids: &[&str]) -> String {
    let items: Vec<String> = ids
        .iter()
        .map(|id| format!(r#"{{"itemIdentifier":"{id}"}}"#))
        .collect();
    format!(r#"{{"batchItemFailures":[{}]}}"#, items.join(","))
}

/// THE MUST-SHOW: one valid envelope, one malformed body, one unknown function → exactly the
/// second and third message ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn must_show_valid_malformed_unknown_reports_the_second_and_third() {
    let ev = event_file("sqs-must-show.json");
    let ids = ids(&ev);
    let (api, _w) = worker(&[]).await;
    let out = response(api.invoke(ev, None, T).await);
    println!("worker answered: {out}");
    assert_eq!(out, failures(&[&ids[1], &ids[2]]));
    assert_eq!(
        out,
        r#"{"batchItemFailures":[{"itemIdentifier":"4b1e6f0a-0002-4c1d-9a51-000000000002"},{"itemIdentifier":"4b1e6f0a-0003-4c1d-9a51-000000000003"}]}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_that_all_succeeds_answers_an_empty_list() {
    let (api, _w) = worker(&[]).await;
    let flatten = json!({"diy": true, "type": "hook", "function": "flattenRecords",
        "options": {"data": [{"a": {"b": 1}}]}})
    .to_string();
    let ev = event(vec![
        record(Some("ok-1"), &flatten, None),
        record(Some("ok-2"), &sleep_body(1), None),
    ]);
    let out = response(api.invoke(ev, None, T).await);
    println!("worker answered: {out}");
    assert_eq!(out, r#"{"batchItemFailures":[]}"#);
}

/// FIFO: group A [ok, fail, ok] + group B [ok, ok] → A's second and third only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_a_failure_fails_the_rest_of_its_group_only() {
    let ev = event_file("sqs-fifo.json");
    let (api, _w) = worker(&[]).await;
    let out = response(api.invoke(ev, None, T).await);
    println!("worker answered: {out}");
    assert_eq!(
        out,
        failures(&[
            "9c0d5e2a-a002-4f6e-8b3c-0000000000a2",
            "9c0d5e2a-a003-4f6e-8b3c-0000000000a3"
        ])
    );
}

/// Policy: a record without a messageId fails the whole invocation before anything runs
/// (Lambda retries the batch); the process goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_without_id_fails_the_invocation() {
    let (api, _w) = worker(&[]).await;
    let ev = event(vec![
        record(Some("has-id"), &sleep_body(1), None),
        record(None, &sleep_body(1), None),
    ]);
    let err = error(api.invoke(ev, None, T).await);
    println!("worker failed the invocation: {err}");
    assert_eq!(err["errorType"], "Worker.MissingMessageId");
    assert!(
        err["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("record 1"),
        "{err}"
    );
    let again = event(vec![record(Some("next"), &sleep_body(1), None)]);
    assert_eq!(
        response(api.invoke(again, None, T).await),
        r#"{"batchItemFailures":[]}"#
    );
}

/// Policy: when every message fails, the invocation fails (`Worker.BatchFailed`, naming them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_all_failed_batch_fails_the_invocation() {
    let (api, _w) = worker(&[]).await;
    let ev = event(vec![
        record(Some("bad-1"), "{", None),
        record(Some("bad-2"), &sleep_body(-1), None),
    ]);
    let err = error(api.invoke(ev, None, T).await);
    println!("worker failed the invocation: {err}");
    assert_eq!(err["errorType"], "Worker.BatchFailed");
    assert_eq!(
        err["errorMessage"],
        "every message of the batch failed (2): bad-1, bad-2"
    );
}

/// The template's schedule envelopes are exactly the bodies of `events/worker/schedule-*.json`,
/// and each one runs successfully through the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_schedule_sample_matches_the_template_and_runs() {
    let template =
        std::fs::read_to_string(repo_root().join("template.yaml")).expect("template.yaml");
    let mut inputs: Vec<Value> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Input: '"))
        .filter_map(|l| l.strip_suffix('\''))
        .map(|j| serde_json::from_str(j).expect("schedule Input is JSON"))
        .collect();
    let mut samples = Vec::new();
    let (api, _w) = worker(&[]).await;
    for name in ["every-minute", "hourly", "daily", "weekly"] {
        let ev = event_file(&format!("schedule-{name}.json"));
        let v: Value = serde_json::from_str(&ev).expect("event");
        let body: Value =
            serde_json::from_str(v["Records"][0]["body"].as_str().expect("body")).expect("JSON");
        samples.push(body);
        let out = response(api.invoke(ev, None, T).await);
        println!("schedule {name}: {out}");
        assert_eq!(out, r#"{"batchItemFailures":[]}"#, "schedule {name}");
    }
    // The tick's schedule invokes TickFunction directly with events/tick/schedule.json.
    let tick: Value = serde_json::from_str(
        &std::fs::read_to_string(repo_root().join("events/tick/schedule.json"))
            .expect("tick event"),
    )
    .expect("tick JSON");
    let before = inputs.len();
    inputs.retain(|i| *i != tick);
    assert_eq!(
        before - inputs.len(),
        1,
        "TickSchedule's Input = events/tick/schedule.json"
    );
    let key = |v: &Value| v.to_string();
    inputs.sort_by_key(key);
    samples.sort_by_key(key);
    assert_eq!(inputs.len(), 4, "four work schedules in template.yaml");
    assert_eq!(inputs, samples, "template Inputs = events/worker bodies");
}

/// Deliveries are idempotent by message id (DynamoDB via moto): the first delivery runs and
/// completes the `idem#` record (PutItem + UpdateItem); a redelivery of the same message in a
/// second invocation is answered success without running (1 PutItem, no UpdateItem); a message
/// in progress elsewhere is reported failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_message_does_not_run_twice() {
    let cfg = moto_config().await;
    let table = aws::create_table(&cfg, "worker-idem").await;
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let endpoint = proxy.endpoint();
    let (api, _w) = worker(&[
        ("EXTENSION_BACKEND", "aws"),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("EXTENSION_TABLE", &table),
    ])
    .await;
    let id = unique("msg");
    let body = sleep_body(5);
    let ev = event(vec![record(Some(&id), &body, None)]);

    let first = response(api.invoke(ev.clone(), None, T).await);
    println!("first delivery: {first}; requests {:?}", proxy.counts());
    assert_eq!(first, r#"{"batchItemFailures":[]}"#);
    assert_eq!((proxy.count("PutItem"), proxy.count("UpdateItem")), (1, 1));

    let parsed: Value = serde_json::from_str(&body).expect("body");
    let key = IdempotencyKey::from_caller(IDEMPOTENCY_SCOPE, &id, &parsed);
    let item = aws_sdk_dynamodb::Client::new(&cfg)
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S(key.pk()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item()
        .cloned()
        .unwrap_or_default();
    println!("idempotency record: {item:?}");
    assert_eq!(
        item.get("status")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some("COMPLETED")
    );
    assert_eq!(
        item.get("data")
            .and_then(|v| v.as_s().ok())
            .map(String::as_str),
        Some(r#"{"sleptMs":5}"#)
    );

    proxy.reset();
    let second = response(api.invoke(ev, None, T).await);
    println!("redelivery: {second}; requests {:?}", proxy.counts());
    assert_eq!(second, r#"{"batchItemFailures":[]}"#);
    assert_eq!(proxy.count("PutItem"), 1);
    assert_eq!(proxy.count("UpdateItem"), 0, "not run again");
    assert_eq!(proxy.total(), 1);

    // In progress elsewhere: another invocation holds the lock → reported failed.
    let held = unique("held");
    let held_body = sleep_body(6);
    let held_key = IdempotencyKey::from_caller(
        IDEMPOTENCY_SCOPE,
        &held,
        &serde_json::from_str(&held_body).expect("body"),
    );
    DynamoIdempotency::new(Table::new(&cfg, &table))
        .acquire(
            &held_key,
            &LockToken::generate(),
            EpochMillis::now().after(Duration::from_secs(120)),
            EpochSeconds::now().after(Duration::from_secs(600)),
        )
        .await
        .expect("take the lock");
    let fresh = unique("fresh");
    let ev = event(vec![
        record(Some(&held), &held_body, None),
        record(Some(&fresh), &sleep_body(1), None),
    ]);
    let out = response(api.invoke(ev, None, T).await);
    println!("with one message in progress elsewhere: {out}");
    assert_eq!(out, failures(&[&held]));
}

/// A poison message (unknown function) reaches the dead-letter queue after maxReceiveCount
/// receives (moto SQS, RedrivePolicy maxReceiveCount 2 like the template's 5): a loop plays
/// the event source mapping — receive, run the worker, delete only on success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_reaches_the_dlq_after_max_receive_count() {
    let cfg = moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let dlq_url = aws::create_queue(&cfg, "work-dlq").await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("dlq attributes")
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .expect("dlq arn");
    let url = sqs
        .create_queue()
        .queue_name(unique("work"))
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}).to_string(),
        )
        .send()
        .await
        .expect("create queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let poison = json!({"diy": true, "type": "hook", "function": "noSuchFunction",
        "options": {"data": []}})
    .to_string();
    sqs.send_message()
        .queue_url(&url)
        .message_body(&poison)
        .send()
        .await
        .expect("send");

    let (api, _w) = worker(&[]).await;
    let mut runs = 0;
    for round in 0..8 {
        let got = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(2)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .expect("receive");
        let messages = got.messages();
        if messages.is_empty() {
            println!("round {round}: queue empty");
            break;
        }
        let records: Vec<Value> = messages
            .iter()
            .map(|m| {
                let mut r = record(m.message_id(), m.body().unwrap_or_default(), None);
                r["receiptHandle"] = json!(m.receipt_handle().unwrap_or_default());
                r
            })
            .collect();
        let outcome = api.invoke(event(records), None, T).await;
        runs += 1;
        println!(
            "round {round}: {} message(s), worker: {:?}",
            messages.len(),
            outcome.as_ref().map(|o| o.text())
        );
        let failed: Vec<String> = match &outcome {
            Some(Outcome::Response(b)) => {
                let v: Value = serde_json::from_slice(b).expect("json");
                v["batchItemFailures"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default()
            }
            // An invocation error: every message of the batch stays on the queue.
            _ => messages
                .iter()
                .filter_map(|m| m.message_id().map(str::to_owned))
                .collect(),
        };
        for m in messages {
            if !failed.iter().any(|f| Some(f.as_str()) == m.message_id()) {
                sqs.delete_message()
                    .queue_url(&url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete");
            }
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
    }
    assert_eq!(
        runs, 2,
        "the worker saw the poison message maxReceiveCount times"
    );
    let dead = sqs
        .receive_message()
        .queue_url(&dlq_url)
        .wait_time_seconds(2)
        .send()
        .await
        .expect("receive dlq");
    let bodies: Vec<&str> = dead.messages().iter().filter_map(|m| m.body()).collect();
    println!("dead-letter queue: {bodies:?}");
    assert_eq!(bodies, vec![poison.as_str()]);
}

/// The real `worker` and `tick` binaries on the emulator, as deployed: a direct
/// `scheduleInvocation` (window covering now, so it is stored for the tick), the `tick` binary
/// with `events/tick/schedule.json` moves it to the work queue (and answers AWS's own scheduled
/// event, `events/tick/scheduled-event.json`, with a tick too), the worker runs it from an SQS
/// event; then `startRun` of the `paged-numbers` example, with the worker fed from the queue
/// until it is empty, ends `processed` (`runStatus`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_and_tick_binaries_run_a_deferred_job_and_a_paged_run_on_the_emulator() {
    let cfg = moto_config().await;
    let table = aws::create_table(&cfg, "bins-jobs").await;
    let queue = aws::create_queue(&cfg, "bins-work").await;
    let endpoint = moto_endpoint();
    let env = [
        ("EXTENSION_BACKEND", "aws"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
        ("EXTENSION_TABLE", table.as_str()),
        ("EXTENSION_WORK_QUEUE_URL", queue.as_str()),
    ];
    let (api, _w) = worker(&env).await;
    let tick_api = RuntimeApi::start().await.expect("runtime api");
    let _t = process::lambda(&process::bin("tick"), &tick_api.address(), &env);
    let sqs = aws_sdk_sqs::Client::new(&cfg);

    // Feed the worker from the queue like the event source mapping (bounded).
    let pump = |max_rounds: usize| {
        let (sqs, queue, api) = (sqs.clone(), queue.clone(), &api);
        async move {
            let mut delivered = 0;
            for _ in 0..max_rounds {
                let got = sqs
                    .receive_message()
                    .queue_url(&queue)
                    .max_number_of_messages(10)
                    .send()
                    .await
                    .expect("receive");
                let msgs = got.messages().to_vec();
                if msgs.is_empty() {
                    break;
                }
                let records: Vec<Value> = msgs
                    .iter()
                    .map(|m| {
                        let mut r = record(m.message_id(), m.body().unwrap_or_default(), None);
                        r["receiptHandle"] = json!(m.receipt_handle());
                        r
                    })
                    .collect();
                let out = response(api.invoke(event(records), None, T).await);
                assert_eq!(out, r#"{"batchItemFailures":[]}"#);
                for m in &msgs {
                    sqs.delete_message()
                        .queue_url(&queue)
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .send()
                        .await
                        .expect("delete");
                }
                delivered += msgs.len();
            }
            delivered
        }
    };

    let scheduled: Value = serde_json::from_str(&response(
        api.invoke(
            json!({"diy": true, "function": "scheduleInvocation", "options": {
                "envelope": {"diy": true, "type": "hook", "function": "flattenRecords",
                             "options": {"data": [{"order": {"id": 7}}]}},
                "key": {"order": 7},
                "window": {"time": "00:00-24:00"}
            }})
            .to_string(),
            None,
            T,
        )
        .await,
    ))
    .expect("schedule answer");
    println!("scheduleInvocation: {scheduled}");
    assert_eq!(scheduled["via"], "table");
    let tick_event =
        std::fs::read_to_string(repo_root().join("events/tick/schedule.json")).expect("tick event");
    let report = response(tick_api.invoke(tick_event, None, T).await);
    println!("tick binary: {report}");
    assert_eq!(report, r#"{"due":1,"enqueued":1,"lost":0,"failed":0}"#);
    // AWS's own scheduled event (an EventBridge rule without an input) runs a tick too.
    let aws_event = std::fs::read_to_string(repo_root().join("events/tick/scheduled-event.json"))
        .expect("scheduled event");
    let again = response(tick_api.invoke(aws_event, None, T).await);
    assert_eq!(again, r#"{"due":0,"enqueued":0,"lost":0,"failed":0}"#);
    assert_eq!(pump(5).await, 1, "the job's one message");
    let job = aws_sdk_dynamodb::Client::new(&cfg)
        .get_item()
        .table_name(&table)
        .key(
            "pk",
            AttributeValue::S(format!(
                "job#{}",
                scheduled["jobId"].as_str().unwrap_or_default()
            )),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("get job");
    assert!(job.item().is_none(), "a job that ran is removed");

    let start = std::fs::read_to_string(repo_root().join("events/worker/start-run.json"))
        .expect("start-run event");
    let run: Value =
        serde_json::from_str(&response(api.invoke(start, None, T).await)).expect("run");
    println!("startRun: {run}");
    assert_eq!(run["state"], "pending");
    let delivered = pump(30).await;
    let status: Value = serde_json::from_str(&response(
        api.invoke(
            json!({"diy": true, "function": "runStatus", "options": {"runId": run["id"]}})
                .to_string(),
            None,
            T,
        )
        .await,
    ))
    .expect("status");
    println!(
        "after {delivered} messages: state {} streams {} records {}",
        status["state"], status["streams"], status["records"]
    );
    assert_eq!(status["state"], "processed");
    assert_eq!(
        (status["streams"].as_i64(), status["records"].as_i64()),
        (Some(6), Some(50))
    );
}

/// The job and run samples of `events/worker/` are acknowledged (embedded backend: the job is
/// not current and the run unknown, so nothing runs and nothing is retried forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_job_and_unknown_run_samples_are_acknowledged() {
    let (api, _w) = worker(&[]).await;
    for name in ["sqs-deferred-job.json", "sqs-run-messages.json"] {
        let out = response(api.invoke(event_file(name), None, T).await);
        println!("{name}: {out}");
        assert_eq!(out, r#"{"batchItemFailures":[]}"#, "{name}");
    }
    let status = error(api.invoke(event_file("continue-run.json"), None, T).await);
    println!("continue-run.json: {status}");
    assert!(status.to_string().contains("run_not_found"), "{status}");
}
