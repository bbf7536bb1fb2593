//! Traces: every log line of a call — the function's own included — carries the call's request,
//! trace, function and integrator.io ids (the `call` span); the trace id comes from the Lambda
//! runtime (`Lambda-Runtime-Trace-Id`) or, for a queued message, its `AWSTraceHeader`; messages
//! a call sends to SQS carry its trace header as `AWSTraceHeader` (checked on moto).

use integration_tests::process::{self, bin};
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::{aws, repo_root};
use integrator_lambda::aws::queue::SqsQueue;
use integrator_lambda::store::queue::{OutMessage, QueueStore};
use integrator_lambda::telemetry::with_trace_id;
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// What the tests' Runtime API sends as `Lambda-Runtime-Trace-Id`.
const RUNTIME_TRACE: &str = "Root=1-00000000-000000000000000000000000;Sampled=0";

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

fn read_log(path: &std::path::Path) -> Vec<Value> {
    // The line may land just after the answer: give the writer a moment (bounded).
    for _ in 0..50 {
        let lines = json_lines(&std::fs::read_to_string(path).unwrap_or_default());
        if lines.iter().any(|l| l["message"] == "extension call") {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    json_lines(&std::fs::read_to_string(path).unwrap_or_default())
}

/// `bin_name` under the tests' Runtime API, JSON logs to `target/traces/<bin_name>.log`.
async fn start_json_logged(bin_name: &str) -> (RuntimeApi, process::Proc, PathBuf) {
    let dir = repo_root().join("target/traces");
    std::fs::create_dir_all(&dir).expect("target/traces");
    let log = dir.join(format!("{bin_name}.log"));
    let api = RuntimeApi::start().await.expect("runtime api");
    let proc = process::lambda_logged(
        &bin(bin_name),
        &api.address(),
        &[("AWS_LAMBDA_LOG_FORMAT", "JSON")],
        &log,
    );
    (api, proc, log)
}

#[tokio::test]
async fn the_function_s_own_log_line_carries_the_call_s_ids_and_runtime_trace_id() {
    let (api, _f, log) = start_json_logged("post-aggregate").await;
    let events = repo_root().join("events/post-aggregate");
    let options = std::fs::read(events.join("options.json")).expect("options");
    let cc = std::fs::read_to_string(events.join("client-context.json")).expect("cc");
    let out = api
        .invoke(options, Some(&cc), Duration::from_secs(30))
        .await;
    assert!(matches!(out, Some(Outcome::Response(_))), "{out:?}");
    let lines = read_log(&log);
    // The function's own line (logAggregate logs `has_json`), not the dispatcher's summary.
    let own = lines
        .iter()
        .find(|l| l.get("has_json").is_some())
        .unwrap_or_else(|| panic!("no line of the function in {lines:#?}"));
    let span = &own["span"];
    assert_eq!(span["name"], "call", "{own}");
    assert_eq!(span["trace_id"], RUNTIME_TRACE, "{own}");
    assert_eq!(span["function"], "logAggregate", "{own}");
    assert_eq!(span["flow"], "65f0c0ffee0000000000f001", "{own}");
    assert_eq!(span["import"], "65f0c0ffee0000000000d001", "{own}");
    assert_eq!(span["connection"], "65f0c0ffee0000000000c001", "{own}");
    assert!(
        span["request_id"]
            .as_str()
            .is_some_and(|r| r.starts_with("req-")),
        "{own}"
    );
    let summary = lines
        .iter()
        .find(|l| l["message"] == "extension call")
        .expect("summary line");
    assert_eq!(summary["trace_id"], RUNTIME_TRACE, "{summary}");
}

#[tokio::test]
async fn a_queued_message_s_aws_trace_header_is_its_call_s_trace_id() {
    let (api, _f, log) = start_json_logged("worker").await;
    let sender = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let event = serde_json::json!({"Records": [{
        "messageId": "7a1c0000-0000-4000-8000-000000000001",
        "body": r#"{"diy":true,"function":"flattenRecords","type":"hook","options":{"data":[{"a":{"b":1}}]}}"#,
        "attributes": {"ApproximateReceiveCount": "1", "AWSTraceHeader": sender},
        "eventSource": "aws:sqs"
    }]});
    let out = api
        .invoke(event.to_string(), None, Duration::from_secs(30))
        .await;
    assert_eq!(
        out,
        Some(Outcome::Response(br#"{"batchItemFailures":[]}"#.to_vec()))
    );
    let lines = read_log(&log);
    let summary = lines
        .iter()
        .find(|l| l["message"] == "extension call")
        .unwrap_or_else(|| panic!("no summary line in {lines:#?}"));
    assert_eq!(summary["trace_id"], sender, "{summary}");
    assert_eq!(summary["span"]["trace_id"], sender, "{summary}");
}

#[tokio::test]
async fn messages_sent_during_a_call_carry_its_trace_header_on_sqs() {
    let cfg = aws::moto_config().await;
    let url = aws::create_queue(&cfg, "traces").await;
    let queue = SqsQueue::new(&cfg, url.clone());
    let trace = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1";
    let send = |n: u8| {
        let queue = queue.clone();
        async move {
            let body = format!(r#"{{"n":{n}}}"#);
            let m = OutMessage {
                body,
                ..OutMessage::default()
            };
            queue.send(m).await.expect("send")
        }
    };
    with_trace_id(Some(trace.into()), send(1)).await;
    send(2).await;
    let sqs = aws_sdk_sqs::Client::new(&cfg);
    let mut seen = Vec::new();
    for _ in 0..5 {
        let r = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_system_attribute_names(
                aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader,
            )
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in r.messages() {
            let header = m
                .attributes()
                .and_then(|a| {
                    a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::AwsTraceHeader)
                })
                .cloned();
            seen.push((m.body().unwrap_or_default().to_owned(), header));
        }
        if seen.len() >= 2 {
            break;
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (r#"{"n":1}"#.to_owned(), Some(trace.to_owned())),
            (r#"{"n":2}"#.to_owned(), None),
        ]
    );
}
