//! The operators' runbook (`make dlq`, `make redrive`, `make logs`: `scripts/runbook.py`)
//! against moto: a stack's queues named as CloudFormation names them, a dead-letter queue
//! holding messages with secrets in them.
//!
//! moto has no StartMessageMoveTask (SQS's redrive API), so `redrive` takes its fallback there
//! (send to the source queue, then delete); on AWS it asks SQS to move the messages.

use integration_tests::aws::{moto_config, moto_endpoint, unique};
use integration_tests::repo_root;
use serde_json::json;
use std::collections::BTreeSet;
use std::process::Command;

fn runbook(args: &[&str]) -> (bool, String) {
    let root = repo_root();
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("scripts/runbook.py"))
        .args(args)
        .env("AWS_ENDPOINT_URL", moto_endpoint())
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
    let dlq = sqs
        .create_queue()
        .queue_name(format!("{stack}-WorkDeadLetterQueue-A1B2"))
        .send()
        .await
        .expect("dlq")
        .queue_url()
        .expect("url")
        .to_owned();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("attrs")
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn)
                .cloned()
        })
        .expect("arn");
    let source = sqs
        .create_queue()
        .queue_name(format!("{stack}-WorkQueue-C3D4"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": arn, "maxReceiveCount": "5"}).to_string(),
        )
        .send()
        .await
        .expect("source")
        .queue_url()
        .expect("url")
        .to_owned();
    let mut sent = BTreeSet::new();
    for i in 0..12 {
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
