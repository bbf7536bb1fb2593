//! The soak: many messages and webhooks under injected faults of every kind and process
//! kills, with redelivery as SQS does it, then the books are checked — nothing lost, nothing
//! run twice where idempotency is promised, the dead-letter queue holding exactly the poison.
//!
//! `make test` runs a reduced soak (`SOAK_MESSAGES`, default 40 of each). `make soak` runs
//! 1,000 of each and writes the figures into `docs/RELIABILITY.md` (`SOAK_REPORT`).
//!
//! - **Worker path**: messages in an SQS queue (moto) with a redrive policy to a dead-letter
//!   queue after 5 receives (as the template's WorkQueue). The harness plays the event
//!   source mapping: several execution
//!   environments at once, each the real `worker` binary behind a Lambda Runtime API double;
//!   each receives up to 10 with a visibility timeout, invokes its binary with an 8 s deadline,
//!   and deletes what the answer's `batchItemFailures` does not name. Each environment's
//!   DynamoDB traffic (idempotency records) goes through its own fault proxy: HTTP 500,
//!   throttling, resets, lost replies and stalls longer than the SDK's attempt timeout, on
//!   about 10 % of its requests (seeded), and two crash points that SIGKILL the process: as it
//!   opens a message's idempotency record (before the function runs) and as it completes one
//!   (after). A killed batch is neither deleted nor reported: SQS redelivers it after the
//!   visibility timeout, and a new process takes the environment's place. The sink is the
//!   workers' own log: the dispatcher writes one `extension call` line per execution.
//! - **Incoming path**: webhooks from concurrent senders to the real `incoming` binary
//!   (DynamoDB dedup keys and SQS on moto behind the fault proxy), with the same fault mix,
//!   some events sent twice on purpose, the process killed (SIGKILL) at `SendMessage` crash
//!   points and restarted, and senders that retry until they see 200 or 204 (bounded). Then
//!   every queued message is read back.

use integration_tests::counting_proxy::{CountingProxy, Fault, Rule};
use integration_tests::http_client::send;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::{aws, process};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pollers at once (Lambda runs several batches of one queue concurrently).
const CONSUMERS: usize = 4;
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

/// One execution environment of the worker function: a Runtime API, the real `worker`
/// binary behind it (its log in a file, one per incarnation), and its own fault proxy to the
/// emulator with crash points that SIGKILL the process.
struct Environment {
    api: RuntimeApi,
    proc_: process::Proc,
    pid: Arc<AtomicU32>,
    proxy: CountingProxy,
    env: Vec<(&'static str, String)>,
    logs: Vec<std::path::PathBuf>,
    index: usize,
}

impl Environment {
    async fn start(index: usize, table: &str, queue: &str) -> Self {
        let proxy = CountingProxy::start(&aws::moto_endpoint())
            .await
            .expect("proxy");
        inject_mix(&proxy, "*", 11 + index as u64 * 101);
        let pid = Arc::new(AtomicU32::new(0));
        // Crash points: killed as it starts its 3rd message's idempotency record (before the
        // function runs), and as it completes its 9th (after the function ran, before the
        // record says so: the one window idempotency cannot close).
        proxy.inject(Rule::once("PutItem", Fault::kill(pid.clone())).after(2 + index as u64));
        proxy.inject(Rule::once("UpdateItem", Fault::kill(pid.clone())).after(8 + index as u64));
        let env = vec![
            ("EXTENSION_BACKEND", "aws".to_owned()),
            ("AWS_ENDPOINT_URL", proxy.endpoint()),
            ("AWS_ACCESS_KEY_ID", "test".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
            ("EXTENSION_TABLE", table.to_owned()),
            ("EXTENSION_WORK_QUEUE_URL", queue.to_owned()),
            ("AWS_LAMBDA_LOG_FORMAT", "json".to_owned()),
        ];
        let api = RuntimeApi::start().await.expect("runtime api");
        let e = Environment {
            proc_: spawn_worker(&api, &env, &log_path(index, 0)),
            api,
            pid,
            proxy,
            env,
            logs: vec![log_path(index, 0)],
            index,
        };
        e.pid.store(e.proc_.id(), Ordering::SeqCst);
        e
    }

    /// A new process after a kill (Lambda starts a new execution environment).
    fn restart(&mut self) {
        let log = log_path(self.index, self.logs.len());
        self.proc_ = spawn_worker(&self.api, &self.env, &log);
        self.pid.store(self.proc_.id(), Ordering::SeqCst);
        self.logs.push(log);
    }

    /// Invoke with `event`; `None` if the process died during the invocation.
    async fn invoke(&mut self, event: Value) -> Option<Option<Outcome>> {
        let call = self.api.invoke(event.to_string(), None, DEADLINE);
        tokio::pin!(call);
        loop {
            tokio::select! {
                out = &mut call => return Some(out),
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    if self.proc_.exited() {
                        return None;
                    }
                }
            }
        }
    }
}

fn log_path(env: usize, incarnation: usize) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!(
        "worker-{}-{env}-{incarnation}.log",
        std::process::id()
    ))
}

fn spawn_worker(
    api: &RuntimeApi,
    env: &[(&'static str, String)],
    log: &std::path::Path,
) -> process::Proc {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    process::lambda_logged(&process::bin("worker"), &api.address(), &env, log)
}

/// How many times each soak message's function ran, read from the workers' logs: the
/// dispatcher writes one `extension call` line per execution, after the function returned
/// and before the worker completes the message's idempotency record.
fn runs_in_logs(logs: &[std::path::PathBuf]) -> HashMap<String, u64> {
    let mut ran = HashMap::new();
    for log in logs {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            if v["message"] == "extension call"
                && v["function"] == "sleepDemo"
                && let Some(flow) = v["flow"].as_str().and_then(|f| f.strip_prefix("soak-"))
            {
                *ran.entry(flow.to_owned()).or_insert(0) += 1;
            }
        }
    }
    ran
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
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}).to_string(),
        )
        .send()
        .await
        .expect("queue")
        .queue_url()
        .expect("url")
        .to_owned();

    let mut books = Books::default();
    for chunk in (0..n).collect::<Vec<_>>().chunks(10) {
        let mut batch = sqs.send_message_batch().queue_url(&url);
        for i in chunk {
            // Every 25th message is poison: a function nobody registered (fails every time).
            let function = if i % 25 == 24 { "nobody" } else { "sleepDemo" };
            let body = json!({"diy": true, "function": function,
                              "options": {"ms": 0, "n": i, "_flowId": format!("soak-{i}")}});
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

    // The event source mapping: CONSUMERS execution environments at once, each receive → invoke
    // the real binary → delete what did not fail.
    #[derive(Default)]
    struct Shared {
        kills: usize,
        receives: usize,
        killed: std::collections::HashSet<String>,
    }
    let shared: Arc<Mutex<Shared>> = Arc::default();
    // moto's SQS is not safe for concurrent receives and deletes on one queue with a redrive
    // policy (it loses track of messages): the pollers take turns at the queue, and run their
    // batches concurrently.
    let at_queue: Arc<tokio::sync::Mutex<()>> = Arc::default();
    let give_up = Instant::now() + Duration::from_secs(2400);
    let mut consumers = Vec::new();
    for index in 0..CONSUMERS {
        let (sqs, url, shared) = (sqs.clone(), url.clone(), shared.clone());
        let (at_queue, table) = (at_queue.clone(), table.clone());
        consumers.push(tokio::spawn(async move {
            let mut env = Environment::start(index, &table, &url).await;
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
                    // fifth).
                    if empty >= 4 * VISIBILITY_SECS {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
                empty = 0;
                shared.lock().expect("books").receives += got.len();
                let records: Vec<Value> = got
                    .iter()
                    .map(|m| {
                        json!({
                            "messageId": m.message_id().unwrap_or_default(),
                            "receiptHandle": m.receipt_handle().unwrap_or_default(),
                            "body": m.body().unwrap_or_default(),
                            "attributes": {"ApproximateReceiveCount": "1"},
                            "messageAttributes": {}, "eventSource": "aws:sqs",
                            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:soak-work",
                            "awsRegion": "us-east-1",
                        })
                    })
                    .collect();
                let failed: Vec<String> = match env.invoke(json!({ "Records": records })).await {
                    None => {
                        // Killed: nothing deleted, nothing reported; a new environment.
                        let mut sh = shared.lock().expect("books");
                        sh.kills += 1;
                        for m in &got {
                            let body: Value =
                                serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default();
                            sh.killed.insert(body["options"]["n"].to_string());
                        }
                        drop(sh);
                        env.restart();
                        continue;
                    }
                    Some(Some(Outcome::Response(body))) => serde_json::from_slice::<Value>(&body)
                        .unwrap_or_default()["batchItemFailures"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|f| f["itemIdentifier"].as_str())
                                .map(str::to_owned)
                                .collect()
                        })
                        .unwrap_or_else(|| {
                            got.iter()
                                .map(|m| m.message_id().unwrap_or_default().to_owned())
                                .collect()
                        }),
                    // An invocation error or no answer in time: Lambda retries the whole batch.
                    Some(_) => got
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
            (env.logs.clone(), env.proxy.faults())
        }));
    }
    let mut logs = Vec::new();
    let mut by_kind: HashMap<String, u64> = HashMap::new();
    for c in consumers {
        let (l, faults) = c.await.expect("consumer");
        logs.extend(l);
        for (k, v) in faults {
            *by_kind.entry(k).or_insert(0) += v;
        }
    }
    let killed = {
        let sh = shared.lock().expect("books");
        books.kills = sh.kills;
        books.receives = sh.receives;
        sh.killed.clone()
    };
    let mut dead = Vec::new();
    for _ in 0..200 {
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
    let ran = runs_in_logs(&logs);
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
    for l in &logs {
        let _ = std::fs::remove_file(l);
    }
    (books, by_kind, started.elapsed())
}

/// Webhook senders at once (integrator.io's sources post concurrently).
const SENDERS: usize = 6;

/// The `incoming` process the senders share: restarted by whichever sender first finds it
/// dead after a crash point.
struct Server {
    proc_: process::Proc,
    addr: String,
    kills: usize,
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
    let start = {
        let pid = pid.clone();
        move || {
            let env: Vec<(&str, &str)> = env_owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let (p, addr) = process::server(&process::bin("incoming"), &[], &env);
            pid.store(p.id(), Ordering::SeqCst);
            (p, addr)
        }
    };
    let (p, addr) = start();
    let server = Arc::new(Mutex::new(Server {
        proc_: p,
        addr,
        kills: 0,
    }));
    // The address to send to, after restarting the process if it died.
    let current = {
        let server = server.clone();
        move || {
            let mut s = server.lock().expect("server");
            if s.proc_.exited() {
                s.kills += 1;
                (s.proc_, s.addr) = start();
            }
            s.addr.clone()
        }
    };
    let current = Arc::new(current);
    let outcomes: Vec<(usize, usize, Vec<usize>)> = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..SENDERS)
            .map(|k| {
                let current = current.clone();
                scope.spawn(move || {
                    let (mut sent, mut unanswered, mut gave_up) = (0, 0, Vec::new());
                    for i in (k..n).step_by(SENDERS) {
                        let body = format!(r#"{{"event":{i}}}"#);
                        // Every 20th event is sent twice by its sender (a duplicate delivery).
                        let copies = if i % 20 == 7 { 2 } else { 1 };
                        for _ in 0..copies {
                            sent += 1;
                            let mut done = false;
                            let mut last = String::new();
                            for _attempt in 0..120 {
                                let addr = current();
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
                                    Ok(r) => last = format!("{} {}", r.status, r.text()),
                                    Err(e) => last = e.to_string(),
                                }
                                std::thread::sleep(Duration::from_millis(250));
                            }
                            if !done {
                                eprintln!("event {i} never accepted; last answer: {last}");
                                unanswered += 1;
                                gave_up.push(i);
                            }
                        }
                    }
                    (sent, unanswered, gave_up)
                })
            })
            .collect();
        senders
            .into_iter()
            .map(|s| s.join().expect("sender"))
            .collect()
    });
    let mut books = Books::default();
    let mut gave_up = std::collections::HashSet::new();
    for (sent, unanswered, g) in outcomes {
        books.sent += sent;
        books.unanswered += unanswered;
        gave_up.extend(g);
    }
    books.kills = server.lock().map(|s| s.kills).unwrap_or_default();
    drop(current);
    drop(server);
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
