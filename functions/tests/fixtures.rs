//! The fixture runner: every `functions/fixtures/<function>/<case>.json` is run through the
//! same dispatch path as a real call (envelope → validate → resolve → run isolated → contract
//! and size checks), with its recorded HTTP exchanges replayed, and its answer compared with
//! `expected` (as JSON text: key order counts).
//!
//! Per case: secrets named in `secrets` load as `<redacted:NAME>` (the text recordings show in
//! their place); dedup, idempotency and cache are fresh in-memory stores; the outgoing client
//! replays `http` in order and the case fails on a request not in the list or an exchange left
//! unused. `UPDATE_FIXTURES=1` rewrites `expected` with the actual answers (review the diff).

use async_trait::async_trait;
use integrator_lambda::app::call_envelope;
use integrator_lambda::dispatch::{CallRequest, Extension, Reply, Stack};
use integrator_lambda::outgoing::replay::{Exchange, ReplayTransport, placeholder};
use integrator_lambda::outgoing::{HttpClient, HttpConfig};
use integrator_lambda::protocol::envelope::Envelope;
use integrator_lambda::store::secrets::{SecretError, SecretStore};
use integrator_lambda::{
    Cache, Dedup, Idempotency, MemoryDedup, MemoryIdempotency, SecretString, Secrets, Services,
};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Secrets of a case: each listed name loads as its placeholder.
struct Placeholders(Vec<String>);

#[async_trait]
impl SecretStore for Placeholders {
    async fn fetch(&self, name: &str) -> Result<SecretString, SecretError> {
        if self.0.iter().any(|n| n == name) {
            Ok(SecretString::from(placeholder(name)))
        } else {
            Err(SecretError::NotFound {
                name: name.to_owned(),
            })
        }
    }
    async fn store(&self, name: &str, _: &SecretString) -> Result<(), SecretError> {
        Err(SecretError::Invalid {
            name: name.to_owned(),
            reason: "fixtures are read-only",
        })
    }
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// `(function, case file)` of every fixture, sorted.
fn cases() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(fixtures_dir())
        .expect("functions/fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for dir in dirs {
        let function = dir
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("function dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        out.extend(files.into_iter().map(|f| (function.clone(), f)));
    }
    out
}

/// Run one case; its actual answer, or why the run itself is wrong.
async fn run(function: &str, case: &Value) -> Result<Value, String> {
    let exchanges: Vec<Exchange> =
        serde_json::from_value(case.get("http").cloned().unwrap_or(json!([])))
            .map_err(|e| format!("bad `http`: {e}"))?;
    let secrets: Vec<String> =
        serde_json::from_value(case.get("secrets").cloned().unwrap_or(json!([])))
            .map_err(|e| format!("bad `secrets`: {e}"))?;
    let replay = Arc::new(ReplayTransport::new(exchanges));
    let fast = HttpConfig {
        first_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        ..HttpConfig::default()
    };
    let services = Services::new()
        .with_secrets(Arc::new(Secrets::new(Arc::new(Placeholders(secrets)))))
        .with_dedup(Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))))
        .with_idempotency(Arc::new(Idempotency::new(Arc::new(
            MemoryIdempotency::default(),
        ))))
        .with_cache(Arc::new(Cache::in_memory()))
        .with_http(HttpClient::new(replay.clone(), fast));
    let ext = Extension::builder()
        .diy(functions::all())
        .services(services)
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let options = case.get("options").cloned().unwrap_or(Value::Null);
    let answer = ext
        .call(CallRequest {
            envelope: Envelope::from_body(call_envelope(&functions::all(), function, options)?),
            stack: Stack::Http,
            request_id: "fixture".into(),
            trace_id: None,
            deadline: None,
        })
        .await;
    let actual = match answer {
        Ok(Reply::Nothing) => Value::Null,
        Ok(Reply::Json(text)) => {
            serde_json::from_slice(&text.to_bytes()).map_err(|e| e.to_string())?
        }
        Err(errors) => json!({ "errors": errors }),
    };
    let mut problems = replay.problems();
    problems.extend(replay.unused().iter().map(|x| {
        format!(
            "recorded exchange never requested: {} {}",
            x.request.method, x.request.url
        )
    }));
    if problems.is_empty() {
        Ok(actual)
    } else {
        Err(problems.join("; "))
    }
}

#[tokio::test]
async fn every_fixture_gives_its_expected_answer() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let all = cases();
    assert!(!all.is_empty(), "no fixtures under functions/fixtures");
    let mut failures = Vec::new();
    for (function, file) in &all {
        let text = std::fs::read_to_string(file).expect("read fixture");
        let mut case: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()));
        let shown = file.strip_prefix(fixtures_dir()).unwrap_or(file).display();
        match run(function, &case).await {
            Err(problem) => failures.push(format!("{shown}: {problem}")),
            Ok(actual) if update => {
                case["expected"] = actual;
                let text = serde_json::to_string_pretty(&case).expect("json") + "\n";
                std::fs::write(file, text).expect("write fixture");
            }
            Ok(actual) => {
                let (got, want) = (
                    serde_json::to_string(&actual).expect("json"),
                    serde_json::to_string(&case["expected"]).expect("json"),
                );
                if got != want {
                    failures.push(format!("{shown}:\n  expected {want}\n  actual   {got}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Every example function has at least one fixture (the diagnostics aside).
#[test]
fn every_example_function_has_a_fixture() {
    let with_fixture: BTreeSet<String> = cases().into_iter().map(|(f, _)| f).collect();
    let diagnostics: BTreeSet<String> = functions::diagnostics::module()
        .function_names()
        .into_iter()
        .map(|n| n.to_string())
        .collect();
    let missing: Vec<String> = functions::all()
        .function_names()
        .into_iter()
        .map(|n| n.to_string())
        .filter(|n| !n.contains('.') && !diagnostics.contains(n) && !with_fixture.contains(n))
        .collect();
    assert!(
        missing.is_empty(),
        "functions without a fixture: {missing:?}"
    );
}
