//! `inv.integrator()` end to end: the real `serve` binary, pointed at the local integrator.io
//! double by `INTEGRATOR_API_URL`, runs `rememberSubmitted` for calls that come in over real
//! HTTP as on the server stack. The double then misbehaves (stalls past the call's deadline,
//! rate-limits past it, fails with 500): each call gets a clear 422 with its `integrator_*`
//! code, and the call's one-time token reaches neither the process's logs (at debug level)
//! nor any answer.

use integration_tests::{http_client, process};
use integrator_lambda::outgoing::integrator::double::{Fault, IntegratorDouble};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SYSTEM_TOKEN: &str = "integrator-api-test-system-token";
const CALL_TOKEN: &str = "ott-e2e-5d41402abc4b2a76";

/// The server process, killed and reaped when the test ends (or fails).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn options(token: Option<&str>) -> Value {
    let mut o = json!({
        "preMapData": [{"n": 1}, {"n": 2}],
        "postMapData": [{"n": 1}, {"n": 2}],
        "responseData": [
            {"statusCode": 200, "id": "r-1", "ignored": false},
            {"statusCode": 422, "errors": [{"code": "bad", "message": "no"}]}
        ],
        "_importId": "imp-e2e"
    });
    if let Some(t) = token {
        o["bearerToken"] = json!(t);
    }
    o
}

fn call(addr: &str, options: Value) -> http_client::RawResponse {
    let body = json!({"diy": true, "function": "rememberSubmitted", "options": options});
    http_client::send(
        addr,
        "POST",
        "/function",
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {SYSTEM_TOKEN}")),
        ],
        body.to_string().as_bytes(),
    )
    .expect("call serve")
}

async fn call_async(addr: &str, options: Value) -> (http_client::RawResponse, Duration) {
    let addr = addr.to_owned();
    let started = Instant::now();
    let r = tokio::task::spawn_blocking(move || call(&addr, options))
        .await
        .unwrap();
    (r, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remember_submitted_calls_back_and_api_faults_become_clear_422s() {
    let double = IntegratorDouble::start(0, Some(CALL_TOKEN)).await.unwrap();
    let log = std::env::temp_dir().join(format!("integrator-api-{}.log", std::process::id()));
    let mut cmd = Command::new(process::bin("serve"));
    cmd.env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", SYSTEM_TOKEN)
        .env("EXTENSION_BACKEND", "memory")
        .env("EXTENSION_TIMEOUT_SECS", "3")
        .env("INTEGRATOR_API_URL", double.url())
        .env("RUST_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let mut child = cmd.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let serve = KillOnDrop(child);
    let mut out = BufReader::new(stdout);
    let addr = loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "serve exited");
        if let Some(a) = line.strip_prefix("listening on http://") {
            break a.trim().to_owned();
        }
    };
    // Keep reading stdout (log lines may go there) into the log file's neighbour.
    let stdout_log = log.with_extension("stdout");
    let sink = stdout_log.clone();
    std::thread::spawn(move || {
        let mut f = std::fs::File::create(sink).unwrap();
        let _ = std::io::copy(&mut out, &mut f);
    });

    // 1. The hook writes the import's state with the call's token and answers responseData.
    let (ok, _) = call_async(&addr, options(Some(CALL_TOKEN))).await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(ok.json(), options(None)["responseData"]);
    let got = double.received();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].method.as_str(), got[0].path.as_str()),
        ("PUT", "/v1/imports/imp-e2e/state/lastSubmit")
    );
    assert!(got[0].token_ok);
    assert_eq!(got[0].body["ids"], json!(["r-1"]));
    assert_eq!(got[0].body["count"], 1);

    // 2. No bearerToken: 422 integrator_token_missing, nothing sent.
    let (missing, _) = call_async(&addr, options(None)).await;
    assert_eq!(missing.status, 422);
    assert_eq!(
        missing.json()["errors"][0]["code"],
        "integrator_token_missing"
    );
    assert_eq!(double.received().len(), 1, "nothing sent without a token");

    // 3. The API stalls past the call's deadline (3 s): a 422, in time, not a hang.
    double.fault(Fault::Stall(Duration::from_secs(60)));
    let (stalled, took) = call_async(&addr, options(Some(CALL_TOKEN))).await;
    assert_eq!(stalled.status, 422, "{}", stalled.text());
    assert_eq!(stalled.json()["errors"][0]["code"], "integrator_timeout");
    assert!(took < Duration::from_secs(10), "{took:?}");

    // 4. Rate-limited with a Retry-After past the deadline: 422 integrator_rate_limited at once.
    double.fault(Fault::RateLimited { retry_after: 120 });
    let (limited, took) = call_async(&addr, options(Some(CALL_TOKEN))).await;
    assert_eq!(limited.status, 422, "{}", limited.text());
    assert_eq!(
        limited.json()["errors"][0]["code"],
        "integrator_rate_limited"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");

    // 5. 500 on every attempt (a PUT is retried): 422 integrator_unavailable with the API's
    //    own error.
    for _ in 0..4 {
        double.fault(Fault::ServerError);
    }
    let (failed, _) = call_async(&addr, options(Some(CALL_TOKEN))).await;
    assert_eq!(failed.status, 422, "{}", failed.text());
    let e = &failed.json()["errors"][0];
    assert_eq!(e["code"], "integrator_unavailable");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("internal_error: Something went wrong."),
        "{e}"
    );

    drop(serve);
    std::thread::sleep(Duration::from_millis(200));
    let logs = std::fs::read_to_string(&log).unwrap_or_default()
        + &std::fs::read_to_string(&stdout_log).unwrap_or_default();
    assert!(
        logs.contains("HTTP PUT http://127.0.0.1:"),
        "the request log lines are there: {logs}"
    );
    assert!(!logs.contains(CALL_TOKEN), "token in the logs: {logs}");
    for r in [&ok, &missing, &stalled, &limited, &failed] {
        assert!(!r.text().contains(CALL_TOKEN));
    }
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&stdout_log);
}
