//! The operators' runbook (`make dlq`, `make redrive`, `make logs`: `scripts/runbook.py`)
//! against moto: a stack's queues named as CloudFormation names them, a dead-letter queue
//! holding messages with secrets in them.
//!
//! moto has no StartMessageMoveTask (SQS's redrive API), so `redrive` takes its fallback there
//! (send to the source queue, then delete); on AWS it asks SQS to move the messages, which a
//! proxy in front of moto stands in for (`redrive_asks_sqs_to_move_the_messages_where_the_api_exists`).

use integration_tests::aws::{moto_config, moto_endpoint, unique};
use integration_tests::counting_proxy::{CountingProxy, Fault, Rule};
use integration_tests::repo_root;
use serde_json::json;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};

fn runbook(args: &[&str]) -> (bool, String) {
    runbook_at(&moto_endpoint(), args)
}

fn runbook_at(endpoint: &str, args: &[&str]) -> (bool, String) {
    let root = repo_root();
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/runbook.py"))
        .args(args)
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .expect("run scripts/runbook.py (the venv: make tools)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

const SECRETS: [&str; 2] = ["tok-Runbook-77aa", "pw-Runbook-88bb"];

#[tokio::test]
async fn dlq_lists_redacted_messages_and_redrive_moves_them_back() {
    let cfg = moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let stack = unique("rb");
    let q = work_queues(&sqs, &stack, 12).await;
    let (source, sent) = (q.source, q.sent);

    let (ok, out) = runbook(&["dlq", &stack]);
    assert!(ok, "{out}");
    assert!(
        out.contains("WorkDeadLetterQueue  (source: WorkQueue)"),
        "{out}"
    );
    assert!(out.contains("messages: 12 waiting"), "{out}");
    assert!(out.contains("oldest seen"), "{out}");
    assert!(
        out.contains("sample body: {") && out.contains("[REDACTED]"),
        "{out}"
    );
    for s in SECRETS {
        assert!(!out.contains(s), "secret in the output: {out}");
    }

    let (ok, out) = runbook(&["redrive", &stack, "work"]);
    assert!(ok, "{out}");
    assert!(out.contains("moved 12 messages"), "{out}");
    let (_, out) = runbook(&["dlq", &stack]);
    assert!(out.contains("messages: 0 waiting"), "{out}");
    // Every message is back on its source queue, unchanged.
    let mut back = BTreeSet::new();
    for _ in 0..10 {
        let got = sqs
            .receive_message()
            .queue_url(&source)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let msgs = got.messages();
        if msgs.is_empty() && back.len() == sent.len() {
            break;
        }
        back.extend(msgs.iter().filter_map(|m| m.body().map(str::to_owned)));
    }
    assert_eq!(back, sent);

    // A queue that is not there, or not a dead-letter queue: refused, nothing moved.
    let (ok, out) = runbook(&["redrive", &stack, "incoming"]);
    assert!(!ok && out.contains("no single dead-letter queue"), "{out}");
}

/// A stack's work queue and its dead-letter queue, named as CloudFormation names them, with `n`
/// messages (secrets inside) waiting in the dead-letter queue.
struct WorkQueues {
    dlq: String,
    dlq_arn: String,
    source: String,
    source_arn: String,
    sent: BTreeSet<String>,
}

/// One attribute of the queue at `url`.
async fn queue_attribute(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    name: aws_sdk_sqs::types::QueueAttributeName,
) -> Option<String> {
    sqs.get_queue_attributes()
        .queue_url(url)
        .attribute_names(name.clone())
        .send()
        .await
        .expect("attrs")
        .attributes()
        .and_then(|a| a.get(&name).cloned())
}

async fn queue_arn(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    queue_attribute(sqs, url, aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .await
        .expect("arn")
}

async fn work_queues(sqs: &aws_sdk_sqs::Client, stack: &str, n: usize) -> WorkQueues {
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{stack}-WorkDeadLetterQueue-A1B2"))
        .send()
        .await
        .expect("dlq")
        .queue_url()
        .expect("url")
        .to_owned();
    let dlq_arn = queue_arn(sqs, &dlq).await;
    let source = sqs
        .create_queue()
        .queue_name(format!("{stack}-WorkQueue-C3D4"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}).to_string(),
        )
        .send()
        .await
        .expect("source")
        .queue_url()
        .expect("url")
        .to_owned();
    let source_arn = queue_arn(sqs, &source).await;
    let mut sent = BTreeSet::new();
    for i in 0..n {
        let body = json!({
            "function": "upsertRecords",
            "options": {"i": i, "bearerToken": SECRETS[0], "connection": {"password": SECRETS[1]}},
        })
        .to_string();
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(&body)
            .send()
            .await
            .expect("send");
        sent.insert(body);
    }
    WorkQueues {
        dlq,
        dlq_arn,
        source,
        source_arn,
        sent,
    }
}

async fn waiting(sqs: &aws_sdk_sqs::Client, url: &str) -> u64 {
    let name = aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages;
    queue_attribute(sqs, url, name)
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// On AWS, `redrive` asks SQS to move the messages (StartMessageMoveTask, from the dead-letter
/// queue's ARN back to its source's) and moves none itself. moto lacks the operation, so a proxy
/// in front of it answers it as SQS does; a refusal of the API (here AccessDenied) is an error
/// and nothing is moved by hand. (Two worker threads: the proxy serves while this one waits on
/// the script.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redrive_asks_sqs_to_move_the_messages_where_the_api_exists() {
    let cfg = moto_config().await;
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let stack = unique("rbmove");
    let q = work_queues(&sqs, &stack, 3).await;
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let seen = Arc::new(Mutex::new(Vec::new()));
    proxy.inject(Rule::always(
        "StartMessageMoveTask",
        Fault::Answer {
            body: r#"{"TaskHandle":"task-handle-1"}"#,
            seen: seen.clone(),
        },
    ));
    let (ok, out) = runbook_at(&proxy.endpoint(), &["redrive", &stack, "work"]);
    assert!(ok, "{out}");
    assert!(
        out.contains("SQS is moving") && out.contains("task-handle-1"),
        "{out}"
    );
    let asked: Vec<serde_json::Value> = seen
        .lock()
        .expect("seen")
        .iter()
        .map(|b| serde_json::from_slice(b).expect("json"))
        .collect();
    assert_eq!(
        asked,
        vec![json!({"SourceArn": q.dlq_arn, "DestinationArn": q.source_arn})]
    );
    // Nothing moved by hand: no send, no delete; the messages wait for SQS's task.
    assert_eq!(
        proxy.count("SendMessageBatch") + proxy.count("SendMessage"),
        0
    );
    assert_eq!(
        proxy.count("DeleteMessageBatch") + proxy.count("DeleteMessage"),
        0
    );
    assert_eq!(waiting(&sqs, &q.dlq).await, 3);
    assert_eq!(waiting(&sqs, &q.source).await, 0);

    // The API is there but refuses: an error, and still nothing moved.
    proxy.clear_faults();
    proxy.inject(Rule::always(
        "StartMessageMoveTask",
        Fault::Error("AccessDenied"),
    ));
    let (ok, out) = runbook_at(&proxy.endpoint(), &["redrive", &stack, "work"]);
    assert!(!ok, "{out}");
    assert_eq!(
        proxy.count("SendMessageBatch") + proxy.count("SendMessage"),
        0
    );
    assert_eq!(waiting(&sqs, &q.dlq).await, 3);
    assert_eq!(q.sent.len(), 3);
}

#[tokio::test]
async fn logs_prints_a_functions_recent_lines() {
    let stack = unique("rblogs");
    let group = format!("/aws/lambda/{stack}-pre-map");
    let root = repo_root();
    let setup = format!(
        "import boto3,time\nl=boto3.client('logs')\nl.create_log_group(logGroupName={group:?})\n\
         l.create_log_stream(logGroupName={group:?},logStreamName='s')\n\
         l.put_log_events(logGroupName={group:?},logStreamName='s',logEvents=[{{'timestamp':int(time.time()*1000),'message':'runbook-log-line'}}])\n"
    );
    let status = Command::new(root.join(".venv/bin/python"))
        .args(["-c", &setup])
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .status()
        .expect("python");
    assert!(status.success());
    let (ok, out) = runbook(&["logs", &stack, "pre-map", "10m", "0"]);
    assert!(ok, "{out}");
    assert!(out.contains("runbook-log-line"), "{out}");
    let (ok, out) = runbook(&["logs", &stack, "worker", "10m", "0"]);
    assert!(!ok && out.contains("no log group"), "{out}");
}
