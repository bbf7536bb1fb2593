//! The soak: many messages and webhooks under injected faults of every kind and process
//! kills, with redelivery as SQS does it, then the books are checked — nothing lost, nothing
//! run twice where idempotency is promised, the dead-letter queue holding exactly the poison.
//!
//! `make test` runs a reduced soak (`SOAK_MESSAGES`, default 40 of each). `make soak` runs
//! 1,000 of each and writes the figures into `docs/RELIABILITY.md` (`SOAK_REPORT`).
//!
//! - **Worker path**: messages in an SQS queue (moto) with a redrive policy to a dead-letter
//!   queue (4 receives). The harness plays the event source mapping: receive up to 10 with a
//!   visibility timeout, run the worker's batch handler (`worker::handle_batch`, the code the
//!   `worker` binary runs) with a 3 s invocation deadline, delete what did not fail. The
//!   worker's DynamoDB traffic (idempotency records) goes through the fault proxy: HTTP 500,
//!   throttling, resets, lost replies and stalls longer than the SDK's attempt timeout, on
//!   about 10 % of its requests (seeded). A kill is a batch cut off mid-flight (its messages
//!   are neither deleted nor reported: SQS redelivers them after the visibility timeout). A
//!   sink counts how often each message's function ran.
//! - **Incoming path**: webhooks to the real `incoming` binary (DynamoDB dedup keys and SQS on
//!   moto behind the fault proxy), with the same fault mix, some events sent twice on purpose,
//!   the process killed (SIGKILL) at `SendMessage` crash points and restarted, and a sender
//!   that retries until it sees 200 or 204 (bounded). Then every queued message is read back.

use integration_tests::counting_proxy::{CountingProxy, Fault, Rule};
use integration_tests::http_client::send;
use integration_tests::{aws, process};
use integrator_lambda::aws::Table;
use integrator_lambda::aws::idempotency::DynamoIdempotency;
use integrator_lambda::dispatch::{Extension, Services};
use integrator_lambda::store::idempotency::Idempotency;
use integrator_lambda::{ExtError, Module};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pollers at once (Lambda runs several batches of one queue concurrently).
const CONSUMERS: usize = 6;
/// The worker's invocation deadline (its Lambda timeout), and the queue's visibility timeout
/// (above it, as AWS advises).
const DEADLINE: Duration = Duration::from_secs(8);
const VISIBILITY_SECS: i32 = 10;

fn messages() -> usize {
    std::env::var("SOAK_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(REDUCED)
}

/// Messages of each path in the reduced soak of `make test`.
const REDUCED: usize = 40;

/// About 10 % of matching requests get a fault, spread over every kind (seeded).
fn inject_mix(proxy: &CountingProxy, op: &str, seed: u64) {
    let kinds = [
        Fault::Http500,
        Fault::Error("ThrottlingException"),
        Fault::Error("ProvisionedThroughputExceededException"),
        Fault::Reset,
        Fault::LostReply,
        Fault::Stall(Duration::from_secs(6)),
    ];
    for (i, f) in kinds.into_iter().enumerate() {
        proxy.inject(Rule::always(op, f).with_probability(0.018, seed + i as u64));
    }
}

#[derive(Default, Debug)]
struct Books {
    sent: usize,
    poison: usize,
    lost: usize,
    twice: usize,
    /// Of `twice`: messages that were in a killed batch (the process died after the function
    /// ran and before its idempotency record was completed: the one window idempotency
    /// cannot close).
    twice_after_kill: usize,
    in_dlq: usize,
    poison_in_dlq: usize,
    kills: usize,
    receives: usize,
    /// Incoming: events whose sender gave up before seeing 200 or 204.
    unanswered: usize,
}

async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    visibility: i32,
) -> Vec<aws_sdk_sqs::types::Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
        .map(|r| r.messages().to_vec())
        .unwrap_or_default()
}

async fn soak_worker(n: usize) -> (Books, HashMap<String, u64>, Duration) {
    let started = Instant::now();
    let cfg = aws::moto_config().await;
    let table = aws::create_table(&cfg, "soak-w").await;
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let dlq = aws::create_queue(&cfg, "soak-dlq").await;
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("dlq attributes")
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("dlq arn");
    let url = sqs
        .create_queue()
        .queue_name(aws::unique("soak-work"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "4"}).to_string(),
        )
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();
    let proxy = CountingProxy::start(&aws::moto_endpoint())
        .await
        .expect("proxy");
    let via = aws::sdk_config_for(&proxy.endpoint()).await;
    inject_mix(&proxy, "*", 11);

    let ran: Arc<Mutex<HashMap<String, u64>>> = Arc::default();
    let mut m = Module::new();
    m.raw("sink", {
        let ran = ran.clone();
        move |_inv, o: Value| {
            let ran = ran.clone();
            async move {
                let id = o["n"].to_string();
                if let Ok(mut r) = ran.lock() {
                    *r.entry(id).or_insert(0) += 1;
                }
                Ok::<_, ExtError>(json!({"ok": true}))
            }
        }
    });
    let idem = Idempotency::new(Arc::new(DynamoIdempotency::new(Table::new(&via, &table))));
    let ext = Extension::builder()
        .diy(m)
        .timeout(DEADLINE)
        .services(Services::new().with_idempotency(Arc::new(idem)))
        .build()
        .expect("extension");

    let mut books = Books::default();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let mut batch = sqs.send_message_batch().queue_url(&url);
        for i in chunk {
            // Every 50th message is poison: a function nobody registered (fails every time).
            let function = if i % 25 == 24 { "nobody" } else { "sink" };
            let body = json!({"diy": true, "function": function, "options": {"n": i}});
            batch = batch.entries(
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("e{i}"))
                    .message_body(body.to_string())
                    .build()
                    .expect("entry"),
            );
            books.sent += 1;
            if function == "nobody" {
                books.poison += 1;
            }
        }
        batch.send().await.expect("send batch");
    }

    // The event source mapping: CONSUMERS pollers at once, each receive → run → delete.
    #[derive(Default)]
    struct Shared {
        batches: usize,
        kills: usize,
        receives: usize,
        killed: std::collections::HashSet<String>,
    }
    let shared: Arc<Mutex<Shared>> = Arc::default();
    // moto's SQS is not safe for concurrent receives and deletes on one queue with a redrive
    // policy (it loses track of messages): the pollers take turns at the queue, and run their
    // batches concurrently.
    let at_queue: Arc<tokio::sync::Mutex<()>> = Arc::default();
    let ext = Arc::new(ext);
    let give_up = Instant::now() + Duration::from_secs(1500);
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let (sqs, url, ext, shared) = (sqs.clone(), url.clone(), ext.clone(), shared.clone());
        let at_queue = at_queue.clone();
        consumers.push(tokio::spawn(async move {
            let mut empty = 0;
            while Instant::now() < give_up {
                let got = {
                    let _turn = at_queue.lock().await;
                    receive(&sqs, &url, VISIBILITY_SECS).await
                };
                if got.is_empty() {
                    empty += 1;
                    // Idle for twice the visibility timeout: every message has had its last
                    // receive (a poison message moves to the DLQ at the receive after its
                    // fourth).
                    if empty >= 4 * VISIBILITY_SECS {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                empty = 0;
                let batch = {
                    let mut sh = shared.lock().expect("books");
                    sh.receives += got.len();
                    sh.batches += 1;
                    sh.batches
                };
                let records: Vec<Value> = got
                    .iter()
                    .map(|m| {
                        json!({
                            "messageId": m.message_id().unwrap_or_default(),
                            "receiptHandle": m.receipt_handle().unwrap_or_default(),
                            "body": m.body().unwrap_or_default(),
                            "attributes": {"ApproximateReceiveCount": "1"},
                            "messageAttributes": {}, "eventSource": "aws:sqs",
                        })
                    })
                    .collect();
                let event = json!({ "Records": records });
                let deadline = Instant::now() + DEADLINE;
                let run =
                    integrator_lambda::worker::handle_batch(&ext, event, "soak", Some(deadline));
                // Kills: batches 1, 3 and 5, then every 8th, cut off at a moment drawn from
                // the batch number (before, during or after the calls and the idempotency
                // writes).
                let answer = if (batch <= 5 && batch % 2 == 1) || batch.is_multiple_of(8) {
                    let cut = Duration::from_millis(5 + (batch as u64 * 37) % 200);
                    tokio::time::timeout(cut, run).await.ok()
                } else {
                    Some(run.await)
                };
                let failed: Vec<String> = match answer {
                    None => {
                        // Killed: nothing deleted, nothing reported.
                        let mut sh = shared.lock().expect("books");
                        sh.kills += 1;
                        for m in &got {
                            let body: Value =
                                serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default();
                            sh.killed.insert(body["options"]["n"].to_string());
                        }
                        continue;
                    }
                    Some(Ok(r)) => r
                        .batch_item_failures
                        .into_iter()
                        .map(|f| f.item_identifier)
                        .collect(),
                    Some(Err(_)) => got
                        .iter()
                        .map(|m| m.message_id().unwrap_or_default().to_owned())
                        .collect(),
                };
                let _turn = at_queue.lock().await;
                for m in &got {
                    if !failed
                        .iter()
                        .any(|f| f == m.message_id().unwrap_or_default())
                    {
                        let _ = sqs
                            .delete_message()
                            .queue_url(&url)
                            .receipt_handle(m.receipt_handle().unwrap_or_default())
                            .send()
                            .await;
                    }
                }
            }
        }));
    }
    for c in consumers {
        c.await.expect("consumer");
    }
    let killed = {
        let sh = shared.lock().expect("books");
        books.kills = sh.kills;
        books.receives = sh.receives;
        sh.killed.clone()
    };
    let mut dead = Vec::new();
    for _ in 0..20 {
        let got = receive(&sqs, &dlq, 30).await;
        if got.is_empty() {
            break;
        }
        dead.extend(got);
    }
    books.in_dlq = dead.len();
    books.poison_in_dlq = dead
        .iter()
        .filter(|m| m.body().unwrap_or_default().contains("nobody"))
        .count();
    let ran = ran.lock().map(|r| r.clone()).unwrap_or_default();
    for i in (0..n).filter(|i| i % 25 != 24) {
        match ran.get(&i.to_string()) {
            None => books.lost += 1,
            Some(1) => {}
            Some(_) => {
                books.twice += 1;
                if killed.contains(&i.to_string()) {
                    books.twice_after_kill += 1;
                }
            }
        }
    }
    let faults = proxy.faults();
    let mut by_kind: HashMap<String, u64> = HashMap::new();
    for (k, v) in faults {
        *by_kind.entry(k).or_insert(0) += v;
    }
    (books, by_kind, started.elapsed())
}

fn soak_incoming(
    rt: &tokio::runtime::Runtime,
    n: usize,
) -> (Books, HashMap<String, u64>, Duration) {
    let started = Instant::now();
    let (proxy, cfg, table, url) = rt.block_on(async {
        let cfg = aws::moto_config().await;
        let table = aws::create_table(&cfg, "soak-in").await;
        let url = aws::create_queue(&cfg, "soak-in").await;
        let proxy = CountingProxy::start(&aws::moto_endpoint())
            .await
            .expect("proxy");
        (proxy, cfg, table, url)
    });
    let _guard = rt.enter();
    inject_mix(&proxy, "*", 29);
    let pid = Arc::new(AtomicU32::new(0));
    // Three crash points: the process is killed when it sends the 10th, 40th and 70th % event.
    for at in [n / 10, (n * 4) / 10, (n * 7) / 10] {
        proxy.inject(Rule::once("SendMessage", Fault::kill(pid.clone())).after(at as u64));
    }
    let env_owned = aws::incoming_env(&proxy.endpoint(), &table, &url);
    let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bin = process::bin("incoming");
    let start = || {
        let (p, addr) = process::server(&bin, &[], &env);
        pid.store(p.id(), Ordering::SeqCst);
        (p, addr)
    };
    let (mut proc_, mut addr) = start();
    let mut books = Books::default();
    let mut unanswered = 0usize;
    let mut gave_up = std::collections::HashSet::new();
    for i in 0..n {
        let body = format!(r#"{{"event":{i}}}"#);
        // Every 20th event is sent twice by its sender (a duplicate delivery).
        let copies = if i % 20 == 7 { 2 } else { 1 };
        for _ in 0..copies {
            books.sent += 1;
            let mut done = false;
            let mut last = String::new();
            for _attempt in 0..120 {
                if proc_.exited() {
                    books.kills += 1;
                    (proc_, addr) = start();
                }
                match send(
                    &addr,
                    "POST",
                    "/incoming/demo",
                    &[("content-type", "application/json")],
                    body.as_bytes(),
                ) {
                    Ok(r) if r.status == 200 || r.status == 204 => {
                        done = true;
                        break;
                    }
                    Ok(r) => {
                        last = format!("{} {}", r.status, r.text());
                        std::thread::sleep(Duration::from_millis(250));
                    }
                    Err(e) => {
                        last = e.to_string();
                        std::thread::sleep(Duration::from_millis(250));
                    }
                }
            }
            if !done {
                eprintln!("event {i} never accepted; last answer: {last}");
                unanswered += 1;
                gave_up.insert(i);
            }
        }
    }
    drop(proc_);
    let queued: HashMap<String, u64> =
        rt.block_on(aws::drain_bodies(&cfg, &url))
            .iter()
            .fold(HashMap::new(), |mut counts, m| {
                *counts.entry(m["event"]["event"].to_string()).or_insert(0) += 1;
                counts
            });
    for i in 0..n {
        match queued.get(&i.to_string()) {
            // An event whose sender gave up (never saw 200 or 204) may rightly be missing.
            None if gave_up.contains(&i) => {}
            None => books.lost += 1,
            Some(1) => {}
            Some(_) => books.twice += 1,
        }
    }
    books.unanswered = unanswered;
    (books, proxy.faults(), started.elapsed())
}

fn table_row(path: &str, b: &Books, faults: &HashMap<String, u64>, t: Duration) -> String {
    let mut kinds: Vec<_> = faults.iter().collect();
    kinds.sort();
    let faults: Vec<String> = kinds.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!(
        "| {path} | {} | {} | {} | {} | {} ({} after a kill) | {} | {} | {:.1} s |",
        b.sent,
        faults.join(", "),
        b.kills,
        b.lost,
        b.twice,
        b.twice_after_kill,
        if path.starts_with("worker") {
            format!("{} ({} poison of {})", b.in_dlq, b.poison_in_dlq, b.poison)
        } else {
            "—".to_owned()
        },
        b.receives,
        t.as_secs_f64()
    )
}

#[test]
fn soak_nothing_lost_nothing_run_twice() {
    let n = messages();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (w, wf, wt) = rt.block_on(soak_worker(n));
    println!("worker: {w:?} faults {wf:?} in {wt:?}");
    let (i, inf, it) = soak_incoming(&rt, n);
    println!("incoming: {i:?} faults {inf:?} in {it:?}");

    if let Ok(path) = std::env::var("SOAK_REPORT") {
        let report = format!(
            "<!-- soak:begin (written by `make soak`) -->\n\
             ## Soak under injected faults\n\n\
             `make soak` ({n} of each; `make test` runs {} of each): see `tests/tests/soak.rs` for what is injected and how redelivery is played.\n\n\
             | path | messages sent | faults injected | kills | lost | run / queued twice | in DLQ | receives | time |\n\
             |---|---|---|---|---|---|---|---|---|\n{}\n{}\n\n\
             Worker: \"run twice\" counts the sink's executions per message (idempotent by message id); \
             a run twice \"after a kill\" is a message whose batch was cut off after its function ran and before \
             its idempotency record was completed: the redelivery runs it again once the record's lock expires \
             (at the invocation's deadline). That window cannot be closed by the worker: a function whose side \
             effect must happen once makes the side effect itself idempotent (e.g. keyed by the message id). \
             Incoming: \"queued twice\" counts queue messages per event (senders retry until they see 200 or 204; \
             each event was sent once, every 20th twice). A second copy comes from a `SendMessage` whose reply was \
             lost after SQS took it: the SDK sends it again and a standard queue keeps both. Both copies carry the \
             same `dedupKey`, which the consumer uses to drop the second (a FIFO queue would drop it itself).\n\
             <!-- soak:end -->\n",
            REDUCED,
            table_row("worker (SQS batches)", &w, &wf, wt),
            table_row("incoming (webhooks)", &i, &inf, it),
        );
        let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(path);
        let old = std::fs::read_to_string(&full).unwrap_or_else(|_| "# Reliability\n\n".into());
        let new = match (old.find("<!-- soak:begin"), old.find("<!-- soak:end -->")) {
            (Some(a), Some(b)) => {
                format!(
                    "{}{}{}",
                    &old[..a],
                    report,
                    &old[b + "<!-- soak:end -->\n".len().min(old.len() - b)..]
                )
            }
            _ => format!("{old}\n{report}"),
        };
        std::fs::write(&full, new).expect("write report");
    }

    assert_eq!(w.lost, 0, "worker: nothing lost");
    assert_eq!(
        w.twice, w.twice_after_kill,
        "worker: no fault other than a kill mid-run makes a message run twice"
    );
    assert_eq!(w.poison_in_dlq, w.poison, "every poison message in the DLQ");
    assert_eq!(w.in_dlq, w.poison, "only poison in the DLQ");
    assert!(w.kills >= 3, "{w:?}");
    assert_eq!(
        i.lost, 0,
        "incoming: no event answered 200 or 204 is missing"
    );
    assert!(
        i.unanswered <= n / 100,
        "incoming: senders gave up on {i:?}"
    );
    assert!(i.kills >= 3, "{i:?}");
}
