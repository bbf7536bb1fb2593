//! Every Lambda conformance case through a Runtime API (the double in `integration_tests`),
//! with the real `conformance-lambda` bootstrap on the official runtime: the envelope travels
//! in the raw `Lambda-Runtime-Client-Context` header, exactly as on Lambda.

use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::{process, repo_root};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

fn cases() -> Vec<Value> {
    let p = repo_root().join("tests/fixtures/conformance/cases-lambda.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).expect("cases-lambda.json is a JSON array")
}

async fn run_mode(mode: &str) -> usize {
    let api = RuntimeApi::start().await.expect("runtime api");
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_conformance-lambda"));
    let _fn = process::lambda(&bin, &api.address(), &[("CONFORMANCE_MODE", mode)]);
    let all = cases();
    let selected: Vec<&Value> = all.iter().filter(|c| c["mode"] == mode).collect();
    let mut failures = Vec::new();
    for case in &selected {
        let name = case["name"].as_str().unwrap_or("?");
        let cc = serde_json::to_string(&case["client_context"]).expect("client context");
        let payload = serde_json::to_vec(&case["payload"]).expect("payload");
        let outcome = api
            .invoke(payload, Some(&cc), Duration::from_secs(30))
            .await;
        let exp = &case["expect"];
        let ok = match (&outcome, exp.get("ok"), exp.get("error_message")) {
            (Some(Outcome::Response(body)), Some(Value::String(want)), _) => {
                body == want.as_bytes()
            }
            (Some(Outcome::Error(body)), _, Some(Value::String(want))) => {
                let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                v["errorMessage"].as_str() == Some(want.as_str()) && v["errorType"] == "string"
            }
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "FAIL [{name}] got {:?}, want {exp}",
                outcome.map(|o| o.text())
            ));
        }
    }
    println!(
        "lambda {mode}: {} passed, {} failed",
        selected.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    selected.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lambda_cases_all_modes() {
    let n = run_mode("diy").await + run_mode("connectors").await;
    assert_eq!(n, cases().len(), "every Lambda case belongs to a mode");
}
