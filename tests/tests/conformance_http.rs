//! Every HTTP conformance case, against the real `conformance-server` binary over real TCP, in
//! both modes. Cases the reference answers with an HTML page (`compare: status`) must get the
//! same status from us with a JSON body.

use integration_tests::http_client::{RawResponse, send};
use integration_tests::{process, repo_root};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

fn cases() -> Vec<Value> {
    let p = repo_root().join("tests/fixtures/conformance/cases-http.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str::<Vec<Value>>(&text).expect("cases-http.json is a JSON array")
}

/// Build the request body as the runner does: compact JSON, `expand` applied, or `raw`.
fn request_body(req: &Value) -> Vec<u8> {
    if let Some(raw) = req.get("raw").and_then(Value::as_str) {
        return raw.as_bytes().to_vec();
    }
    let Some(body) = req.get("body") else {
        return Vec::new();
    };
    let mut body = body.clone();
    for ex in req
        .get("expand")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let path: Vec<&str> = ex["path"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let text = ex["repeat"]
            .as_str()
            .unwrap_or("")
            .repeat(ex["count"].as_u64().unwrap_or(0) as usize);
        let mut node = &mut body;
        for (i, key) in path.iter().enumerate() {
            if i + 1 == path.len() {
                node[*key] = Value::String(text.clone());
            } else {
                node = &mut node[*key];
            }
        }
    }
    serde_json::to_vec(&body).expect("serialize body")
}

fn check(case: &Value, got: &RawResponse) -> Result<(), String> {
    let exp = &case["expect"];
    let want_status = exp["status"].as_u64().unwrap_or(0) as u16;
    if got.status != want_status {
        return Err(format!(
            "status {} != {want_status}; body {}",
            got.status,
            got.text()
        ));
    }
    match case["compare"].as_str() {
        Some("status") => {
            // We go further than the reference: the body must be JSON with an `errors` array.
            let v: Value = serde_json::from_slice(&got.body)
                .map_err(|e| format!("body is not JSON ({e}): {}", got.text()))?;
            if !v["errors"].is_array() {
                return Err(format!("no errors array: {}", got.text()));
            }
            Ok(())
        }
        _ => {
            // Node sends an answer with its length; so do we, also when the answer goes out in
            // pieces (records sent from the request's bytes).
            let length = got
                .header("content-length")
                .and_then(|v| v.parse::<usize>().ok());
            if length != Some(got.body.len()) || got.header("transfer-encoding").is_some() {
                return Err(format!(
                    "content-length {length:?} for {} body bytes, transfer-encoding {:?}",
                    got.body.len(),
                    got.header("transfer-encoding")
                ));
            }
            let ct = got.header("content-type");
            if ct != exp["content_type"].as_str() {
                return Err(format!("content-type {ct:?} != {:?}", exp["content_type"]));
            }
            let www = got.header("www-authenticate");
            if www != exp["www_authenticate"].as_str() {
                return Err(format!(
                    "www-authenticate {www:?} != {:?}",
                    exp["www_authenticate"]
                ));
            }
            if let Some(body) = exp["body"].as_str() {
                if got.body != body.as_bytes() {
                    return Err(format!(
                        "body\n  got  {}\n  want {body}",
                        truncate(&got.text())
                    ));
                }
            } else {
                let len = exp["body_length"].as_u64().unwrap_or(0) as usize;
                let sha = exp["body_sha256"].as_str().unwrap_or("");
                let got_sha = hex(&Sha256::digest(&got.body));
                if got.body.len() != len || got_sha != sha {
                    return Err(format!(
                        "body length/sha {} {got_sha} != {len} {sha}",
                        got.body.len()
                    ));
                }
            }
            Ok(())
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn truncate(s: &str) -> String {
    if s.len() > 300 {
        format!("{}…", &s[..s.floor_char_boundary(300)])
    } else {
        s.to_owned()
    }
}

fn run_mode(mode: &str) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_conformance-server"));
    let (_server, addr) = process::server(&bin, &["--mode", mode, "--port", "0"], &[]);
    let all = cases();
    let selected: Vec<&Value> = all.iter().filter(|c| c["mode"] == mode).collect();
    assert!(!selected.is_empty(), "no cases for mode {mode}");
    let mut failures = Vec::new();
    for case in &selected {
        let req = &case["request"];
        let headers: Vec<(&str, &str)> = req["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.as_str(), v)))
            .collect();
        let body = request_body(req);
        let result = send(
            &addr,
            req["method"].as_str().unwrap_or("GET"),
            req["path"].as_str().unwrap_or("/"),
            &headers,
            &body,
        )
        .map_err(|e| format!("connection: {e}"))
        .and_then(|got| check(case, &got));
        if let Err(e) = result {
            failures.push(format!(
                "FAIL [{}] {e}",
                case["name"].as_str().unwrap_or("?")
            ));
        }
    }
    println!(
        "{mode}: {} passed, {} failed",
        selected.len() - failures.len(),
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "{mode} failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn http_cases_diy() {
    run_mode("diy");
}

#[test]
fn http_cases_connectors() {
    run_mode("connectors");
}
