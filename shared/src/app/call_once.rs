//! One call, in process, for `make call FN=<name> PAYLOAD=<file>` (what the "Run" button of a hosted function editor does): the
//! same settings, wiring (in-memory stores locally: the dev secrets file, in-memory dedup and
//! cache) and dispatch path as a real call, with the function's log lines (its own, and the
//! HTTP client's `HTTP <METHOD> <url> - <status> …` lines) on stderr as they happen, then
//! `Execution finished in N ms` and the answer on stdout.

use super::{Settings, extension_of, init_logging, runtime, wiring};
use crate::dispatch::{CallRequest, Module, Stack};
use crate::protocol::Envelope;
use crate::protocol::error::http_body;
use serde_json::{Map, Value};
use std::process::ExitCode;
use std::time::Instant;

/// The `type` that reaches `function` in `module`: none for a function at the top level,
/// else the namespace it is registered in (`webhooks` for webhook functions).
fn type_for(module: &Module, function: &str) -> Result<Option<String>, String> {
    let names = module.function_names();
    if names.iter().any(|n| n == function) {
        return Ok(None);
    }
    names
        .iter()
        .find_map(|n| {
            n.strip_suffix(function)
                .and_then(|ns| ns.strip_suffix('.'))
                .map(str::to_owned)
        })
        .map(Some)
        .ok_or_else(|| {
            format!(
                "no function named {function}; registered: {}",
                names.join(" ")
            )
        })
}

/// The options in `payload`: its `options` member when it has one (a fixture file or an
/// envelope), else the payload itself.
pub fn options_of(payload: Value) -> Value {
    match payload {
        Value::Object(mut m) if m.contains_key("options") => {
            m.remove("options").unwrap_or(Value::Object(Map::new()))
        }
        other => other,
    }
}

/// Run `function` of `module` once with `options` (see the module docs). Exit code: success
/// for a 200 answer, failure for a 422 or a start-up problem.
/// The `diy` envelope that calls `function` of `module` (by its plain name, or the name it has
/// under its namespace, e.g. a webhook function's) with `options`: what `make call` and the
/// fixture runner send through the dispatcher.
pub fn call_envelope(module: &Module, function: &str, options: Value) -> Result<Value, String> {
    Ok(envelope_of(type_for(module, function)?, function, options))
}

fn envelope_of(type_name: Option<String>, function: &str, options: Value) -> Value {
    let mut envelope = serde_json::json!({"diy": true, "function": function});
    if let (Some(t), Value::Object(m)) = (type_name, &mut envelope) {
        m.insert("type".into(), Value::String(t));
    }
    envelope["options"] = options;
    envelope
}

#[doc(hidden)]
pub fn call_once(module: Module, function: &str, options: Value) -> ExitCode {
    init_logging();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    let type_name = match type_for(&module, function) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async move {
        let ext = match extension_of(module, &settings) {
            Ok(e) => e,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let wired = wiring::wire(&settings, None).await;
        let ext = ext.with_services(wired.services);
        let envelope = envelope_of(type_name, function, options);
        let started = Instant::now();
        let answer = ext
            .call(CallRequest {
                envelope: Envelope::from_body(envelope),
                stack: Stack::Http,
                request_id: "local-run".into(),
                trace_id: None,
                deadline: None,
            })
            .await;
        println!("Execution finished in {} ms", started.elapsed().as_millis());
        match answer {
            Ok(reply) => {
                let body = reply.into_http().into_string();
                if body.is_empty() {
                    println!("200 (no result)");
                } else {
                    println!("200 {body}");
                }
                ExitCode::SUCCESS
            }
            Err(errors) => {
                println!("422 {}", http_body(&errors));
                ExitCode::FAILURE
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_come_from_a_fixture_or_are_the_payload() {
        assert_eq!(
            options_of(json!({"description": "d", "options": {"data": []}, "expected": []})),
            json!({"data": []})
        );
        assert_eq!(options_of(json!({"data": [1]})), json!({"data": [1]}));
    }

    #[test]
    fn the_type_is_the_namespace_when_not_at_the_top_level() {
        let mut m = Module::new();
        m.raw(
            "top",
            |_i, v: Value| async move { Ok::<_, crate::ExtError>(v) },
        );
        m.raw_in("webhooks", "hook", |_i, v: Value| async move {
            Ok::<_, crate::ExtError>(v)
        });
        assert_eq!(type_for(&m, "top"), Ok(None));
        assert_eq!(type_for(&m, "hook"), Ok(Some("webhooks".into())));
        assert!(type_for(&m, "nope").is_err());
    }
}
