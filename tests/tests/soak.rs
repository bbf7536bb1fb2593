//! The soak: many messages, webhooks and dedup pages under injected faults of every kind
//! (writes applied whose reply is lost or late included) and process kills, with redelivery as
//! SQS does it, then the books are checked — nothing lost, no record skipped as seen that was
//! not, nothing run twice where idempotency is promised, the dead-letter queue holding exactly
//! the poison.
//!
//! `make test` runs a reduced soak (`SOAK_MESSAGES`, default 40 messages and webhooks, and a
//! fifth as many pages of each kind: 8). `make soak` runs 1,000 messages, 1,000 webhooks and
//! 200 pages of each kind and writes the figures into `docs/RELIABILITY.md` (`SOAK_REPORT`):
//! its soak section and its "Lost replies" section.
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
//! - **Pages through dedup**: `upsertRecords` import pages and `dropDuplicates` preSavePage
//!   pages, each kind run by the real Lambda binary (`import`, `pre-save-page`) behind a
//!   Runtime API double, two execution environments per kind, their DynamoDB dedup store
//!   behind a fault proxy with the same mix (lost and late replies included, plus one lost and
//!   one late reply on checks of new records in every environment's first page) and a crash
//!   point that SIGKILLs the process in the middle of a page. Every page holds new records;
//!   some repeat records of the page before, and some pages are sent again after they were
//!   answered (both must come back as duplicates). A page is retried, as integrator.io does,
//!   until it is answered. The books count, per record, how many answers delivered it
//!   (imported with `ignored: false`, or kept in the page): exactly once is right; never is a
//!   record skipped as seen although it was not; twice is a record delivered twice.

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

/// A reply held past the SDK's read timeout: the request was applied, the client gave up on
/// the attempt and retries it.
fn late() -> Duration {
    integrator_lambda::aws::READ_TIMEOUT + Duration::from_secs(1)
}

/// About 10 % of matching requests get a fault, spread over every kind (seeded): errors,
/// resets, stalls, and requests applied whose reply is lost or comes after the client's
/// timeout.
fn inject_mix(proxy: &CountingProxy, op: &str, seed: u64) {
    let kinds = [
        Fault::Http500,
        Fault::Error("ThrottlingException"),
        Fault::Error("ProvisionedThroughputExceededException"),
        Fault::Reset,
        Fault::LostReply,
        Fault::LateReply(late()),
        Fault::Stall(Duration::from_secs(6)),
    ];
    for (i, f) in kinds.into_iter().enumerate() {
        proxy.inject(Rule::always(op, f).with_probability(0.0145, seed + i as u64));
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
    /// Incoming: events whose sender gave up before seeing 200 or 204. Pages: pages given up
    /// before an answer.
    unanswered: usize,
    /// Pages: distinct records sent.
    records: usize,
    /// Pages: records never delivered whose page had an attempt cut off by a kill (its checks
    /// had marked them, and the process died before answering: the retry finds them marked).
    lost_after_kill: usize,
    /// Pages: attempts answered with an error (retried).
    failed_attempts: usize,
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

/// One execution environment of a Lambda function: a Runtime API, the real binary behind it
/// (its log in a file, one per incarnation), and its own fault proxy to the emulator with
/// crash points that SIGKILL the process.
struct Environment {
    api: RuntimeApi,
    proc_: process::Proc,
    pid: Arc<AtomicU32>,
    proxy: CountingProxy,
    env: Vec<(&'static str, String)>,
    logs: Vec<std::path::PathBuf>,
    binary: &'static str,
    label: String,
}

impl Environment {
    /// An environment of the worker function.
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
        let mut env = lambda_env(&proxy, table);
        env.push(("EXTENSION_WORK_QUEUE_URL", queue.to_owned()));
        Self::launch("worker", format!("worker-{index}"), proxy, pid, env).await
    }

    /// `binary` in a new environment whose AWS traffic goes through `proxy` (its crash points
    /// kill the process whose id `pid` holds).
    async fn launch(
        binary: &'static str,
        label: String,
        proxy: CountingProxy,
        pid: Arc<AtomicU32>,
        env: Vec<(&'static str, String)>,
    ) -> Self {
        let api = RuntimeApi::start().await.expect("runtime api");
        let log = log_path(&label, 0);
        let e = Environment {
            proc_: spawn(binary, &api, &env, &log),
            api,
            pid,
            proxy,
            env,
            logs: vec![log],
            binary,
            label,
        };
        e.pid.store(e.proc_.id(), Ordering::SeqCst);
        e
    }

    /// A new process after a kill (Lambda starts a new execution environment).
    fn restart(&mut self) {
        let log = log_path(&self.label, self.logs.len());
        self.proc_ = spawn(self.binary, &self.api, &self.env, &log);
        self.pid.store(self.proc_.id(), Ordering::SeqCst);
        self.logs.push(log);
    }

    /// Invoke with `event` and the worker's deadline; `None` if the process died during the
    /// invocation.
    async fn invoke(&mut self, event: Value) -> Option<Option<Outcome>> {
        self.invoke_within(event, DEADLINE).await
    }

    /// Invoke with `event` and `deadline`; `None` if the process died during the invocation.
    async fn invoke_within(&mut self, event: Value, deadline: Duration) -> Option<Option<Outcome>> {
        let call = self.api.invoke(event.to_string(), None, deadline);
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

/// The environment of a Lambda binary on the AWS backend whose AWS traffic goes through
/// `proxy`.
fn lambda_env(proxy: &CountingProxy, table: &str) -> Vec<(&'static str, String)> {
    vec![
        ("EXTENSION_BACKEND", "aws".to_owned()),
        ("AWS_ENDPOINT_URL", proxy.endpoint()),
        ("AWS_ACCESS_KEY_ID", "test".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
        ("EXTENSION_TABLE", table.to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "json".to_owned()),
    ]
}

fn log_path(label: &str, incarnation: usize) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak");
    let _ = std::fs::create_dir_all(&dir);
    dir.join(format!("{label}-{}-{incarnation}.log", std::process::id()))
}

fn spawn(
    binary: &str,
    api: &RuntimeApi,
    env: &[(&'static str, String)],
    log: &std::path::Path,
) -> process::Proc {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    process::lambda_logged(&process::bin(binary), &api.address(), &env, log)
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
    let mut anomalies = false;
    for m in dead
        .iter()
        .filter(|m| !m.body().unwrap_or_default().contains("nobody"))
    {
        eprintln!(
            "worker: a message that is not poison is in the DLQ: {}",
            m.body().unwrap_or_default()
        );
        anomalies = true;
    }
    let ran = runs_in_logs(&logs);
    for i in (0..n).filter(|i| i % 25 != 24) {
        match ran.get(&i.to_string()) {
            None => books.lost += 1,
            Some(1) => {}
            Some(_) => {
                books.twice += 1;
                if killed.contains(&i.to_string()) {
                    books.twice_after_kill += 1;
                } else {
                    eprintln!("worker: message {i} ran twice without a kill in its batch");
                    anomalies = true;
                }
            }
        }
    }
    // The logs tell what happened to each message: kept when the books show an anomaly.
    if anomalies || books.lost > 0 {
        eprintln!("worker: logs kept: {logs:?}");
    } else {
        for l in &logs {
            let _ = std::fs::remove_file(l);
        }
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

// ---------------------------------------------------------------------------------------------
// Pages through the dedup store.

/// Pages of each kind: a fifth of the messages (200 in `make soak`, 8 in `make test`).
fn pages(n: usize) -> usize {
    (n / 5).max(2 * PAGE_ENVS)
}

/// Execution environments per page kind (each runs its share of the pages one at a time).
const PAGE_ENVS: usize = 2;
/// New records in every page.
const PAGE_RECORDS: usize = 10;
/// The page invocations' deadline: above the longest a page's checks can take (the SDK's
/// operation timeout for the check, then for a duplicate's refresh), so that a page fails only
/// when a store call does.
const PAGE_DEADLINE: Duration = Duration::from_secs(30);
/// Attempts at one page before its sender gives up.
const PAGE_ATTEMPTS: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PageKind {
    /// An import wrapper's `upsertRecords` (records deduplicated on `id` within the import).
    Import,
    /// A preSavePage hook's `dropDuplicates` (`dedupFields: ["id"]` within the export).
    DropDuplicates,
}

impl PageKind {
    fn binary(self) -> &'static str {
        match self {
            PageKind::Import => "import",
            PageKind::DropDuplicates => "pre-save-page",
        }
    }

    fn label(self) -> &'static str {
        match self {
            PageKind::Import => "upsertRecords",
            PageKind::DropDuplicates => "dropDuplicates",
        }
    }

    /// The invocation: the whole envelope as the payload (a direct Invoke).
    fn envelope(self, page_index: usize, records: &[Value]) -> Value {
        match self {
            PageKind::Import => json!({
                "diy": true, "function": "upsertRecords", "type": "wrapper",
                "options": {
                    "connection": {"unencrypted": {}, "encrypted": {}},
                    "configuration": {"resource": "customers"},
                    "preMapData": records, "postMapData": records,
                    "_importId": "soak-import", "_flowId": "soak-flow",
                }
            }),
            PageKind::DropDuplicates => json!({
                "diy": true, "function": "dropDuplicates", "type": "hook",
                "options": {
                    "data": records, "errors": [],
                    "_exportId": "soak-export", "_flowId": "soak-flow",
                    "pageIndex": page_index,
                    "settings": {"dedupFields": ["id"]},
                }
            }),
        }
    }

    /// The ids of the records a successful answer delivers (imported with `ignored: false`,
    /// or kept in the page), or `None` when the answer is not the function's success.
    fn delivered(self, records: &[Value], answer: &Value) -> Option<Vec<String>> {
        let id = |r: &Value| r["id"].as_str().map(str::to_owned);
        match self {
            PageKind::Import => {
                let responses = answer.as_array()?;
                if responses.len() != records.len() {
                    return None;
                }
                let mut out = Vec::new();
                for (record, response) in records.iter().zip(responses) {
                    if response["statusCode"] != 200 {
                        return None;
                    }
                    if response["ignored"] == false {
                        out.push(id(record)?);
                    }
                }
                Some(out)
            }
            PageKind::DropDuplicates => answer["data"].as_array()?.iter().map(id).collect(),
        }
    }
}

/// The pages one environment sends, in order: every page has `PAGE_RECORDS` new records; every
/// 4th also repeats two records of the page before (duplicates); `true` marks a page sent a
/// second time once answered (all its records are then duplicates).
fn plan_pages(kind: PageKind, env: usize, count: usize) -> Vec<(Vec<Value>, bool)> {
    let id = |k: usize, j: usize| format!("{}-{env}-{k}-{j}", kind.label());
    (0..count)
        .map(|k| {
            let mut records: Vec<Value> = (0..PAGE_RECORDS)
                .map(|j| json!({"id": id(k, j), "name": format!("record {j} of page {k}"), "n": j}))
                .collect();
            if k % 4 == 3 {
                for j in 0..2 {
                    records.insert(
                        2 * j + 1,
                        json!({"id": id(k - 1, j), "name": format!("record {j} of page {}", k - 1), "n": j}),
                    );
                }
            }
            (records, k % 10 == 1)
        })
        .collect()
}

/// One environment's run: its pages, each retried until answered; the deliveries per record
/// id, the records of pages that had an attempt cut off by a kill, and the books.
struct PageRun {
    delivered: HashMap<String, u64>,
    killed: std::collections::HashSet<String>,
    given_up: std::collections::HashSet<String>,
    records: std::collections::HashSet<String>,
    sent: usize,
    kills: usize,
    attempts: usize,
    failed: usize,
    unanswered: usize,
    faults: HashMap<String, u64>,
}

async fn page_environment(kind: PageKind, index: usize, table: String, count: usize) -> PageRun {
    let proxy = CountingProxy::start(&aws::moto_endpoint())
        .await
        .expect("proxy");
    let pid = Arc::new(AtomicU32::new(0));
    // In the first page, one check of a new record loses its reply and one gets it late (the
    // write landed both times): each must still be new. Rules are tried in order, so these come
    // first and fire on exactly those requests.
    proxy.inject(Rule::once("UpdateItem", Fault::LostReply).after(1));
    proxy.inject(Rule::once("UpdateItem", Fault::LateReply(late())).after(4));
    // A crash point in the middle of a page, a third of the way through (later for the second
    // environment).
    let at = 2 * PAGE_RECORDS + count * PAGE_RECORDS * (3 + 2 * index) / 10;
    proxy.inject(Rule::once("UpdateItem", Fault::kill(pid.clone())).after(at as u64));
    let seed = 53 + index as u64 * 7 + if kind == PageKind::Import { 0 } else { 1000 };
    inject_mix(&proxy, "*", seed);
    let env = lambda_env(&proxy, &table);
    let mut e = Environment::launch(
        kind.binary(),
        format!("{}-{index}", kind.binary()),
        proxy,
        pid,
        env,
    )
    .await;
    let mut run = PageRun {
        delivered: HashMap::new(),
        killed: Default::default(),
        given_up: Default::default(),
        records: Default::default(),
        sent: 0,
        kills: 0,
        attempts: 0,
        failed: 0,
        unanswered: 0,
        faults: HashMap::new(),
    };
    for (k, (records, twice)) in plan_pages(kind, index, count).into_iter().enumerate() {
        let ids: Vec<String> = records
            .iter()
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        run.records.extend(ids.iter().cloned());
        let event = kind.envelope(k, &records);
        for _copy in 0..if twice { 2 } else { 1 } {
            run.sent += 1;
            let mut answered = false;
            let mut last = String::new();
            for _attempt in 0..PAGE_ATTEMPTS {
                run.attempts += 1;
                match e.invoke_within(event.clone(), PAGE_DEADLINE).await {
                    None => {
                        // Killed mid-page: no answer; integrator.io retries the page.
                        run.kills += 1;
                        run.killed.extend(ids.iter().cloned());
                        e.restart();
                        continue;
                    }
                    Some(Some(Outcome::Response(body))) => {
                        let answer: Value = serde_json::from_slice(&body).unwrap_or_default();
                        match kind.delivered(&records, &answer) {
                            Some(got) => {
                                for id in got {
                                    *run.delivered.entry(id).or_insert(0) += 1;
                                }
                                answered = true;
                                break;
                            }
                            None => last = answer.to_string(),
                        }
                    }
                    Some(Some(error)) => last = error.text(),
                    Some(None) => last = "no answer in time".to_owned(),
                }
                eprintln!(
                    "{} page {k} of environment {index} answered with an error (sent again): {last}",
                    kind.label()
                );
                // An error answer (e.g. `dedup_unavailable` when a check ran out of attempts):
                // the page is sent again.
                run.failed += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            if !answered {
                eprintln!(
                    "{} page {k} of environment {index} never answered; last: {last}",
                    kind.label()
                );
                run.unanswered += 1;
                run.given_up.extend(ids.iter().cloned());
            }
        }
    }
    run.faults = e.proxy.faults();
    for l in &e.logs {
        let _ = std::fs::remove_file(l);
    }
    run
}

/// Every page kind in `PAGE_ENVS` environments at once; the books over all of them.
async fn soak_pages(n: usize) -> (Books, HashMap<String, u64>, Duration) {
    let started = Instant::now();
    let cfg = aws::moto_config().await;
    let table = aws::create_table(&cfg, "soak-pages").await;
    let per_env = pages(n) / PAGE_ENVS;
    let mut runs = Vec::new();
    for kind in [PageKind::Import, PageKind::DropDuplicates] {
        for index in 0..PAGE_ENVS {
            runs.push(tokio::spawn(page_environment(
                kind,
                index,
                table.clone(),
                per_env,
            )));
        }
    }
    let mut books = Books::default();
    let mut by_kind: HashMap<String, u64> = HashMap::new();
    for r in runs {
        let run = r.await.expect("page environment");
        books.sent += run.sent;
        books.kills += run.kills;
        books.receives += run.attempts;
        books.failed_attempts += run.failed;
        books.unanswered += run.unanswered;
        books.records += run.records.len();
        for (k, v) in run.faults {
            *by_kind.entry(k).or_insert(0) += v;
        }
        for id in &run.records {
            match run.delivered.get(id).copied().unwrap_or(0) {
                // A page given up was never answered: nothing was said about its records.
                0 if run.given_up.contains(id) => {}
                0 if run.killed.contains(id) => books.lost_after_kill += 1,
                0 => {
                    eprintln!("record {id} was skipped as seen before; it was not");
                    books.lost += 1;
                }
                1 => {}
                _ => {
                    eprintln!("record {id} was delivered more than once");
                    books.twice += 1;
                }
            }
        }
    }
    (books, by_kind, started.elapsed())
}

fn fault_list(faults: &HashMap<String, u64>) -> String {
    let mut kinds: Vec<_> = faults.iter().collect();
    kinds.sort();
    let faults: Vec<String> = kinds.iter().map(|(k, v)| format!("{k} {v}")).collect();
    faults.join(", ")
}

fn table_row(path: &str, b: &Books, faults: &HashMap<String, u64>, t: Duration) -> String {
    let pages = path.starts_with("pages");
    format!(
        "| {path} | {} | {} | {} | {} | {} | {} | {} | {:.1} s |",
        if pages {
            format!("{} pages ({} records)", b.sent, b.records)
        } else {
            b.sent.to_string()
        },
        fault_list(faults),
        b.kills,
        if pages {
            format!(
                "{} ({} more in pages cut off by a kill)",
                b.lost, b.lost_after_kill
            )
        } else {
            b.lost.to_string()
        },
        if pages {
            b.twice.to_string()
        } else {
            format!("{} ({} after a kill)", b.twice, b.twice_after_kill)
        },
        if path.starts_with("worker") {
            format!("{} ({} poison of {})", b.in_dlq, b.poison_in_dlq, b.poison)
        } else {
            "—".to_owned()
        },
        if pages {
            format!(
                "{} attempts ({} answered with an error)",
                b.receives, b.failed_attempts
            )
        } else {
            b.receives.to_string()
        },
        t.as_secs_f64()
    )
}

/// Requests applied whose reply was lost or late, in a fault count.
fn lost_or_late(faults: &HashMap<String, u64>) -> (u64, u64) {
    let of = |prefix: &str| {
        faults
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v)
            .sum()
    };
    (of("lost-reply"), of("late-reply"))
}

/// The "Lost replies" section of `docs/RELIABILITY.md`, with this run's figures.
fn lost_replies_section(
    n: usize,
    (w, wf): (&Books, &HashMap<String, u64>),
    (i, inf): (&Books, &HashMap<String, u64>),
    (p, pf): (&Books, &HashMap<String, u64>),
) -> String {
    let row = |path: &str, faults: &HashMap<String, u64>, outcome: String| {
        let (lost, late) = lost_or_late(faults);
        format!("| {path} | {lost} | {late} | {outcome} |\n")
    };
    format!(
        "## Lost replies\n\n\
         A **lost reply** is a write that DynamoDB (or SQS) applied whose answer did not reach us: the \
         connection dropped after the request arrived, or the answer came after the SDK's read timeout \
         ({read} s). The SDK has no way to tell this from a request that never arrived, so it sends the same \
         request again, and the retry meets the item that its own first attempt wrote. A conditional \
         write that reads that item as someone else's gets the outcome wrong: a new record taken for a \
         duplicate and dropped (`dropDuplicates`) or answered `ignored: true` (`upsertRecords`), a webhook \
         claim or an idempotency lock held by \"another\" call that is the same call, a counter \
         incremented twice (each is a test below; the page of new records: `a_page_of_new_records_loses_none_when_one_reply_is_lost`).\n\n\
         **How each write knows its own earlier attempt.** Every write that decides an outcome carries a \
         token that is new for the call and the same in every attempt the SDK makes of it. When the \
         condition fails, the item comes back (`ReturnValuesOnConditionCheckFailure = ALL_OLD`, or one \
         consistent read) and, if it carries this call's token, the write was this call's own and the \
         outcome is the applied one:\n\n\
         - dedup checks and incoming claims (`shared/src/aws/dedup.rs`): `writer` (the check or claim that \
         made the key new) and `claim` (the holder of a pending key), `confirmed_by` for the confirmation; \
         a duplicate's expiry refresh is a separate write that decides nothing. Tests: \
         `tests/tests/lost_replies.rs` `dedup_check_a_new_key_stays_new_when_its_reply_is_lost`, \
         `dedup_check_a_duplicate_stays_a_duplicate_when_a_reply_is_lost`, \
         `a_page_of_new_records_loses_none_when_one_reply_is_lost`, \
         `dedup_claim_and_confirm_hold_when_their_replies_are_lost`, \
         `dedup_release_frees_the_key_when_its_reply_is_lost`;\n\
         - idempotency records (`shared/src/aws/idempotency.rs`): the lock's `lock_id`; a release that \
         finds no item is done. Tests: `idempotency_claim_and_complete_hold_when_their_replies_are_lost`, \
         `idempotency_release_after_a_failure_holds_when_its_reply_is_lost`;\n\
         - deferred jobs (`shared/src/aws/jobs.rs`): the claim's `lease_token`. Test: \
         `job_claim_holds_the_job_when_its_reply_is_lost`;\n\
         - rate-limit counters (`shared/src/aws/limits.rs`): an admission writes its token to `last`, a \
         release to `released`, and the condition refuses a write whose token is already there. Test: \
         `rate_counter_counts_a_retried_admission_once`;\n\
         - runs and streams (`shared/src/aws/runs.rs`): `created_by`, `begun_by`, `claimed_by`, \
         `finished_by`, `retried_by`, `reopened_by`, `ended_by` (a stream commit is counted once and not \
         re-done). Tests: `tests/tests/lost_replies_runs.rs` (one per write: `create_run`, `begin_run`, \
         `claim_stream`, `finish_stream`, `retry_stream`, `reopen_stream`, `finish_run`).\n\
         - a check that fails after one of its attempts was applied (its reply lost or late, then \
         the retries ran out) deletes its own write (conditional on `writer` = its token), so the page's \
         rollback leaves no key marked. Test: \
         `a_failed_check_whose_attempts_were_applied_leaves_the_key_unmarked`. A failed incoming claim deletes its own lease the same way (conditional on `claim`), so the sender's retry is not told \"in progress\" for the lease: `a_failed_claim_whose_attempts_were_applied_leaves_the_key_free`. A check cut off by its page's time (the checks end a margin before the call's deadline) deletes its own write the same way, once it is cut off: `a_check_cut_off_by_the_calls_time_leaves_the_key_unmarked`. What is left is a request still in transit when that delete arrives (DynamoDB applies it after the delete): the key then stays marked until its TTL.\n\n\
         **The one documented window.** A rate counter keeps only the latest admission's token: when \
         another admission to the same bucket lands between an attempt and its retry, the retry no longer \
         sees its own token and counts once more. The bucket then admits one call fewer in that interval, \
         never one more (it errs on the safe side). No other conditional write is meant to leave a window \
         (the token stays in the item for as long as the outcome it decided); the soak's checks below say \
         whether this run found one. An SQS `SendMessage` has no condition: \
         a lost reply can queue a second copy of a webhook event, with the same `dedupKey`, and the \
         webhook function's idempotency key (endpoint + `dedupKey`) runs it once (the incoming row below \
         counts such copies). Tests: `rate_counter_counts_a_retried_admission_once`, `queue_send_copies_from_a_lost_reply_are_one_message`.\n\n\
         **Figures** (this run of `make soak`, {n} of each; the soak's fault mix is in the section below). \
         Each row: requests whose write was applied and whose reply was then dropped (lost) or held past \
         the read timeout (late), and what the books found (`soak_nothing_lost_nothing_run_twice`).\n\n\
         | path | lost replies | late replies | outcome |\n\
         |---|---|---|---|\n\
         {}{}{}\n\
         Tests: `tests/tests/soak.rs` `soak_nothing_lost_nothing_run_twice` (a reduced soak in `make test`: \
         every page environment's first page has one lost and one late reply on checks of new records; \
         with the dedup store before its tokens it reports those records skipped).\n\n",
        row(
            "worker (idempotency records)",
            wf,
            format!(
                "{} lost, {} run twice ({} after a kill)",
                w.lost, w.twice, w.twice_after_kill
            ),
        ),
        row(
            "incoming (dedup claims, SQS sends)",
            inf,
            format!("{} lost, {} queued twice", i.lost, i.twice),
        ),
        row(
            "pages (`upsertRecords`, `dropDuplicates`)",
            pf,
            format!(
                "{} of {} records skipped as seen that were not ({} more in pages cut off by a kill), {} delivered twice",
                p.lost, p.records, p.lost_after_kill, p.twice
            ),
        ),
        read = integrator_lambda::aws::READ_TIMEOUT.as_secs(),
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
    // The three paths run at once: each has its own table, queue, proxies and processes, and
    // each spends most of its time waiting (visibility timeouts, replies held past the SDK's
    // timeout, restarts after a kill). The incoming path's senders are threads of their own.
    let (((w, wf, wt), (p, pf, pt)), (i, inf, it)) = std::thread::scope(|scope| {
        let incoming = scope.spawn(|| soak_incoming(&rt, n));
        let others = rt.block_on(async { tokio::join!(soak_worker(n), soak_pages(n)) });
        (others, incoming.join().expect("the incoming path's thread"))
    });
    println!("worker: {w:?} faults {wf:?} in {wt:?}");
    println!("pages: {p:?} faults {pf:?} in {pt:?}");
    println!("incoming: {i:?} faults {inf:?} in {it:?}");

    let (pages_lost, pages_late) = lost_or_late(&pf);
    // Every check of the books: (holds, what it says). The report lists those that failed.
    let checks: Vec<(bool, String)> = vec![
        (
            w.lost == 0,
            format!("worker: nothing lost ({} lost)", w.lost),
        ),
        (
            w.twice == w.twice_after_kill,
            format!(
                "worker: no fault other than a kill mid-run makes a message run twice ({} of {} not after a kill)",
                w.twice - w.twice_after_kill,
                w.twice
            ),
        ),
        (
            w.poison_in_dlq == w.poison,
            format!(
                "worker: every poison message in the DLQ ({} of {})",
                w.poison_in_dlq, w.poison
            ),
        ),
        (
            w.in_dlq == w.poison,
            format!(
                "worker: only poison in the DLQ ({} messages, {} poison)",
                w.in_dlq, w.poison
            ),
        ),
        (
            w.kills >= 3,
            format!("worker: at least 3 kills ({})", w.kills),
        ),
        (
            i.lost == 0,
            format!(
                "incoming: no event answered 200 or 204 is missing ({} missing)",
                i.lost
            ),
        ),
        (
            i.unanswered <= n / 100,
            format!(
                "incoming: senders gave up on at most 1 % ({} gave up)",
                i.unanswered
            ),
        ),
        (
            i.kills >= 3,
            format!("incoming: at least 3 kills ({})", i.kills),
        ),
        (
            p.lost == 0,
            format!(
                "pages: no record skipped as seen that was not ({} skipped, not counting pages cut off by a kill)",
                p.lost
            ),
        ),
        (
            p.twice == 0,
            format!("pages: no record delivered twice ({})", p.twice),
        ),
        (
            p.unanswered == 0,
            format!("pages: every page answered ({} given up)", p.unanswered),
        ),
        (
            p.kills >= 3,
            format!("pages: at least 3 kills ({})", p.kills),
        ),
        (
            pages_lost >= 4 && pages_late >= 4,
            format!("pages: lost and late replies injected ({pages_lost} lost, {pages_late} late)"),
        ),
    ];
    let failed: Vec<&String> = checks
        .iter()
        .filter(|(ok, _)| !ok)
        .map(|(_, what)| what)
        .collect();
    let verdict = if failed.is_empty() {
        "Every check of the books held in this run.\n\n".to_owned()
    } else {
        format!(
            "**Checks that failed in this run** (`make soak` fails):\n\n{}\n\n",
            failed
                .iter()
                .map(|f| format!("- {f}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };

    if let Ok(path) = std::env::var("SOAK_REPORT") {
        let report = format!(
            "<!-- soak:begin (written by `make soak`) -->\n\
             {}\
             ## Soak under injected faults\n\n\
             `make soak` ({n} messages, {n} webhooks, {} pages of each kind; `make test` runs {} of each and {} pages of each kind): \
             see `tests/tests/soak.rs` for what is injected and how redelivery is played. Faults: about 10 % of the \
             requests of every operation, spread over HTTP 500, throttling, resets, stalls past the attempt timeout, \
             and writes applied whose reply is lost or late; plus crash points that SIGKILL the process.\n\n\
             | path | sent | faults injected | kills | lost / skipped as seen | run / queued / delivered twice | in DLQ | receives / attempts | time |\n\
             |---|---|---|---|---|---|---|---|---|\n{}\n{}\n{}\n\n\
             {}\
             Worker: \"run twice\" counts the sink's executions per message (idempotent by message id); \
             a run twice \"after a kill\" is a message whose batch was cut off after its function ran and before \
             its idempotency record was completed: the redelivery runs it again once the record's lock expires \
             (at the invocation's deadline). That window cannot be closed by the worker: a function whose side \
             effect must happen once makes the side effect itself idempotent (e.g. keyed by the message id). \
             Incoming: \"queued twice\" counts queue messages per event (senders retry until they see 200 or 204; \
             each event was sent once, every 20th twice). A second copy comes from a `SendMessage` whose reply was \
             lost after SQS took it: the SDK sends it again and a standard queue keeps both. Both copies carry the \
             same `dedupKey`, which the consumer uses to drop the second (a FIFO queue would drop it itself). \
             Pages: `upsertRecords` (the `import` binary) and `dropDuplicates` (the `pre-save-page` binary), \
             two environments each, every page retried until answered; every record must be delivered (imported \
             with `ignored: false`, or kept) by exactly one answer, repeats of the page before and pages sent \
             again after their answer included. \"Skipped as seen\" is a record no answer delivered. A page cut \
             off by a kill had marked some of its records before the process died, and its retry finds them \
             marked: that is the crash window the delivery guarantees above name for `dropDuplicates` (marks \
             before the answer), counted apart and not yet closed. The books: `soak_nothing_lost_nothing_run_twice`.\n\
             <!-- soak:end -->\n",
            lost_replies_section(n, (&w, &wf), (&i, &inf), (&p, &pf)),
            pages(n),
            REDUCED,
            pages(REDUCED),
            table_row("worker (SQS batches)", &w, &wf, wt),
            table_row("incoming (webhooks)", &i, &inf, it),
            table_row("pages (dedup)", &p, &pf, pt),
            verdict,
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

    assert!(failed.is_empty(), "the soak's checks failed: {failed:#?}");
}
