//! Every sample event of every binary, through AWS's own Runtime Interface Emulator
//! (`aws-lambda-rie`), compared with the answer stored beside it: `events/<bin>/<name>.json` →
//! `events/<bin>/<name>.expected.json`. `options.json` is sent with `client-context.json` of
//! its folder in `X-Amz-Client-Context` (integrator.io's direct Invoke). In an expected answer
//! the string `"<any>"` matches any value (ids, times); a Function URL answer's `body` is
//! compared as JSON. `UPDATE_EXPECTED=1 cargo test --test rie_events` (re)writes the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use integration_tests::process::bin;
use integration_tests::repo_root;
use integration_tests::rie::Rie;
use serde_json::Value;

const ANY: &str = "<any>";

/// Event files (not expected answers, client contexts or env files), by binary.
fn events() -> BTreeMap<String, Vec<PathBuf>> {
    let root = repo_root().join("events");
    let mut out: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    let mut stack = vec![root.clone()];
    let mut dirs_seen = 0;
    while let Some(dir) = stack.pop() {
        dirs_seen += 1;
        assert!(dirs_seen < 1000, "too many folders under events/");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let is_event = name.ends_with(".json")
                && !name.ends_with(".expected.json")
                && name != "client-context.json"
                && name != "local-env.json";
            let Some(bin_name) = p
                .strip_prefix(&root)
                .ok()
                .and_then(|r| r.components().next())
                .and_then(|c| c.as_os_str().to_str())
                .filter(|_| p.parent() != Some(root.as_path()))
            else {
                continue;
            };
            if is_event {
                out.entry(bin_name.to_owned()).or_default().push(p.clone());
            }
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

fn expected_path(event: &Path) -> PathBuf {
    event.with_extension("expected.json")
}

/// A Function URL answer carries its body as a JSON string: compare it as JSON.
fn normalize(mut v: Value) -> Value {
    if let Some(body) = v.get("body").and_then(Value::as_str)
        && let Ok(parsed) = serde_json::from_str::<Value>(body)
        && let Some(obj) = v.as_object_mut()
    {
        obj.insert("body".into(), parsed);
    }
    v
}

/// Does `actual` match `expected`, where `"<any>"` matches anything?
fn matches(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(s), _) if s == ANY => true,
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, ev)| a.get(k).is_some_and(|av| matches(ev, av)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(ev, av)| matches(ev, av))
        }
        _ => expected == actual,
    }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(repo_root())
        .unwrap_or(p)
        .display()
        .to_string()
}

#[test]
fn every_event_answers_as_stored_under_the_runtime_interface_emulator() {
    let update = std::env::var_os("UPDATE_EXPECTED").is_some();
    let all = events();
    assert!(
        all.len() >= 14,
        "expected events for every binary, got {:?}",
        all.keys()
    );
    let logs = repo_root().join("target/rie");
    std::fs::create_dir_all(&logs).unwrap_or_else(|e| panic!("cannot create target/rie: {e}"));
    let mut failures = Vec::new();
    let mut checked = 0;
    for (bin_name, files) in &all {
        let rie = Rie::start(&bin(bin_name), &logs.join(format!("{bin_name}.log")), &[]);
        for event in files {
            let payload =
                std::fs::read(event).unwrap_or_else(|e| panic!("{}: {e}", event.display()));
            let cc_path = event.with_file_name("client-context.json");
            let cc = (event.file_name().and_then(|n| n.to_str()) == Some("options.json"))
                .then(|| std::fs::read(&cc_path).ok())
                .flatten();
            let res = rie.invoke(&payload, cc.as_deref(), None);
            let text = res.text();
            let actual = match serde_json::from_slice::<Value>(&res.body) {
                Ok(v) => normalize(v),
                Err(e) => {
                    failures.push(format!("{}: answer is not JSON ({e}): {text}", rel(event)));
                    continue;
                }
            };
            let exp_path = expected_path(event);
            if update {
                let pretty = serde_json::to_string_pretty(&actual).unwrap_or_default();
                std::fs::write(&exp_path, pretty + "\n")
                    .unwrap_or_else(|e| panic!("{}: {e}", exp_path.display()));
                continue;
            }
            let Ok(stored) = std::fs::read(&exp_path) else {
                failures.push(format!(
                    "{}: no expected answer {} (UPDATE_EXPECTED=1 writes it)",
                    rel(event),
                    rel(&exp_path)
                ));
                continue;
            };
            let expected: Value = serde_json::from_slice(&stored)
                .unwrap_or_else(|e| panic!("{}: {e}", exp_path.display()));
            checked += 1;
            if !matches(&expected, &actual) {
                failures.push(format!(
                    "{} ({bin_name}): expected {expected}\n  got {actual}\n  log: {}",
                    rel(event),
                    rel(&logs.join(format!("{bin_name}.log")))
                ));
            }
        }
        drop(rie);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    if !update {
        let total: usize = all.values().map(Vec::len).sum();
        assert_eq!(checked, total);
        eprintln!(
            "{checked} events of {} binaries matched their expected answers",
            all.len()
        );
    }
}

#[test]
fn a_wrong_expected_answer_is_caught() {
    let expected: Value = serde_json::json!({"a": [1, "<any>"], "b": {"c": "x"}});
    assert!(matches(
        &expected,
        &serde_json::json!({"a": [1, 7], "b": {"c": "x"}})
    ));
    assert!(!matches(
        &expected,
        &serde_json::json!({"a": [1, 7], "b": {"c": "y"}})
    ));
    assert!(!matches(
        &expected,
        &serde_json::json!({"a": [1], "b": {"c": "x"}})
    ));
    assert!(!matches(
        &expected,
        &serde_json::json!({"a": [1, 7], "b": {"c": "x"}, "d": 1})
    ));
}
