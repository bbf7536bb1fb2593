//! Incoming webhooks (`POST /incoming/{endpoint}`) over real HTTP and real Lambda wiring:
//!
//! - the `serve` binary's default `demo` endpoint (200, then 204 for the same body) and
//!   endpoints configured through `EXTENSION_INCOMING_ENDPOINTS`;
//! - the shared router served in-process (`transport::server::router` on 127.0.0.1:0): the JSON
//!   errors (415/400/404/401/413) and accepted events landing, flattened, in an SQS queue on the
//!   moto emulator, with a queue outage answered 503 without swallowing the retry;
//! - the `incoming` Lambda binary against the Runtime API double, fed
//!   `events/incoming/function-url.json`, queueing to SQS on moto.

use integration_tests::http_client::{RawResponse, send};
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use integration_tests::{aws, process, repo_root};
use integrator_lambda::Module;
use integrator_lambda::aws::queue::SqsQueue;
use integrator_lambda::dispatch::Extension;
use integrator_lambda::incoming::{IncomingApp, IncomingConfig, IncomingStores, signature};
use integrator_lambda::store::dedup::{Dedup, MemoryDedup};
use integrator_lambda::store::queue::MemoryQueue;
use integrator_lambda::transport::http::HttpApp;
use integrator_lambda::transport::system_token::TokenSet;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const JSON: (&str, &str) = ("content-type", "application/json");
const JSON_UTF8: &str = "application/json; charset=utf-8";
const HOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn post(addr: &str, endpoint: &str, headers: &[(&str, &str)], body: &str) -> RawResponse {
    send(
        addr,
        "POST",
        &format!("/incoming/{endpoint}"),
        headers,
        body.as_bytes(),
    )
    .expect("http")
}

fn assert_json_error(r: &RawResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(JSON_UTF8), "{}", r.text());
    let v = r.json();
    assert_eq!(v["errors"][0]["code"], code, "{v}");
    assert!(
        v["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{v}"
    );
}

fn signed(body: &str, secret: &str, id: &str) -> Vec<(String, String)> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    signed_at(body, secret, id, now)
}

/// Signed as at `now` (a sender's retry is signed anew, with its own timestamp).
fn signed_at(body: &str, secret: &str, id: &str, now: u64) -> Vec<(String, String)> {
    let key = signature::key_from_secret(secret).expect("key");
    vec![
        ("content-type".into(), "application/json".into()),
        ("webhook-id".into(), id.into()),
        ("webhook-timestamp".into(), now.to_string()),
        (
            "webhook-signature".into(),
            signature::sign(&key, id, now, body.as_bytes()),
        ),
    ]
}

fn borrowed(h: &[(String, String)]) -> Vec<(&str, &str)> {
    h.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

// ---------------------------------------------------------------------------------------------
// The `serve` binary.

fn serve(env: &[(&str, &str)]) -> (process::Proc, String) {
    let mut all = vec![("PORT", "0"), ("EXTENSION_BACKEND", "embedded")];
    all.extend_from_slice(env);
    process::server(&process::bin("serve"), &[], &all)
}

#[test]
fn serve_demo_endpoint_accepts_then_answers_204_for_the_same_body() {
    let (_p, addr) = serve(&[]);
    let r = post(&addr, "demo", &[JSON], r#"{"a":1}"#);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(JSON_UTF8));
    let v = r.json();
    assert_eq!(v["status"], "accepted");
    // The in-process queue (which hands the event to the demo's webhook function) numbers
    // its messages per process: `local-<pid>-<n>`.
    let local_id = |v: &Value, n: &str| {
        v["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("local-") && id.ends_with(n))
    };
    assert!(local_id(&v, "-1"), "{v}");
    assert_eq!(v["dedupKey"].as_str().map(str::len), Some(64), "{v}");

    let again = post(&addr, "demo", &[JSON], r#"{"a":1}"#);
    assert_eq!(again.status, 204, "{}", again.text());
    assert!(again.body.is_empty());

    // Dedup is on the whole body: another body is new.
    let other = post(&addr, "demo", &[JSON], r#"{"a":2}"#);
    assert_eq!(other.status, 200, "{}", other.text());
    assert!(local_id(&other.json(), "-2"), "{}", other.text());

    // POST /function is still served next to it.
    let f = send(&addr, "GET", "/healthCheck", &[], b"").expect("http");
    assert_eq!(
        (f.status, f.text()),
        (200, r#"{"success":true}"#.to_owned())
    );
}

#[test]
fn serve_takes_its_endpoints_from_the_environment() {
    let config = json!({"hooks": {"auth": {"type": "hmac", "secret": HOOK_SECRET}, "dedup": {"headers": ["webhook-id"]}}});
    let (_p, addr) = serve(&[("EXTENSION_INCOMING_ENDPOINTS", &config.to_string())]);
    // The defaults are replaced, not merged.
    assert_json_error(&post(&addr, "demo", &[JSON], "{}"), 404, "not_found");
    let body = r#"{"type":"order.created","order":{"id":7}}"#;
    assert_json_error(&post(&addr, "hooks", &[JSON], body), 401, "unauthorized");
    let h = signed(body, HOOK_SECRET, "msg_1");
    assert_eq!(post(&addr, "hooks", &borrowed(&h), body).status, 200);
    // The sender's retry of the same message (same webhook-id, signed anew) is a duplicate;
    // the very same signed request again is a replay (401).
    let retry_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 1;
    let retry = signed_at(body, HOOK_SECRET, "msg_1", retry_at);
    assert_eq!(post(&addr, "hooks", &borrowed(&retry), body).status, 204);
    assert_json_error(
        &post(&addr, "hooks", &borrowed(&retry), body),
        401,
        "unauthorized",
    );
    let wrong = signed(body, "whsec_c2VjcmV0LW51bWJlci10d28=", "msg_2");
    assert_json_error(
        &post(&addr, "hooks", &borrowed(&wrong), body),
        401,
        "unauthorized",
    );
}

/// A captured signed request replayed with one extra
/// `webhook-id` header (the signature read the first value, the replay record all of them) is
/// refused 401, not accepted as a new message; so is a repeated timestamp or signature.
#[test]
fn serve_refuses_a_replay_with_a_repeated_signature_header() {
    let config = json!({"hooks": {"auth": {"type": "hmac", "secret": HOOK_SECRET}}});
    let (_p, addr) = serve(&[("EXTENSION_INCOMING_ENDPOINTS", &config.to_string())]);
    let body = r#"{"type":"order.created","order":{"id":8}}"#;
    let h = signed(body, HOOK_SECRET, "msg_8");
    assert_eq!(post(&addr, "hooks", &borrowed(&h), body).status, 200);
    assert_json_error(
        &post(&addr, "hooks", &borrowed(&h), body),
        401,
        "unauthorized",
    );
    for (name, extra) in [
        ("webhook-id", "msg_other"),
        ("webhook-timestamp", "1"),
        ("webhook-signature", "v1,AAAA"),
    ] {
        let mut replay = h.clone();
        replay.push((name.into(), extra.into()));
        let r = post(&addr, "hooks", &borrowed(&replay), body);
        assert_json_error(&r, 401, "unauthorized");
        assert!(r.text().contains("more than once"), "{name}: {}", r.text());
    }
}

/// Secret rotation, webhook side: the endpoint's secret lives in the secret
/// store (`{"secret": "hook"}`; here the embedded backend's dev file, read through the same
/// cached Secrets as on AWS). After it is rotated, a request signed with the new secret is
/// accepted at once (no signature matched, so the secret was read again past the store's
/// 5-minute cache), and the old secret stops working.
#[test]
fn serve_picks_up_a_rotated_webhook_secret_at_once() {
    const NEW_SECRET: &str = "whsec_bmV3LXNlY3JldC1hZnRlci1yb3RhdGlvbg==";
    let dir = std::env::temp_dir().join(format!("rotation-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("secrets.dev.json");
    let write = |v: &str| {
        std::fs::write(&file, json!({"hook": v}).to_string()).expect("write secrets");
    };
    write(HOOK_SECRET);
    let config = json!({"hooks": {"auth": {"type": "hmac", "secret": {"secret": "hook"}}}});
    let (_p, addr) = serve(&[
        ("EXTENSION_INCOMING_ENDPOINTS", &config.to_string()),
        (
            "EXTENSION_DEV_SECRETS_FILE",
            file.to_str().expect("utf-8 path"),
        ),
    ]);
    let body = |n: u32| format!(r#"{{"n":{n}}}"#);
    let accepted = |secret: &str, n: u32| {
        let b = body(n);
        post(
            &addr,
            "hooks",
            &borrowed(&signed(&b, secret, &format!("msg_{n}"))),
            &b,
        )
    };
    assert_eq!(accepted(HOOK_SECRET, 1).status, 200);
    write(NEW_SECRET);
    let r = accepted(NEW_SECRET, 2);
    assert_eq!(
        r.status,
        200,
        "the rotated secret works at once: {}",
        r.text()
    );
    assert_json_error(&accepted(HOOK_SECRET, 3), 401, "unauthorized");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn serve_refuses_to_start_with_an_invalid_configuration() {
    let mut cmd = std::process::Command::new(process::bin("serve"));
    let out = cmd
        .env("PORT", "0")
        .env("HOST", "127.0.0.1")
        .env("EXTENSION_BACKEND", "embedded")
        .env(
            "EXTENSION_INCOMING_ENDPOINTS",
            r#"{"x": {"dedupe": "body"}}"#,
        )
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run serve");
    assert!(!out.status.success());
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("listening on"),
        "started anyway"
    );
}

/// Auth settings that would switch a check off, or keys too weak to use, stop
/// the server at start-up with a message naming the problem.
#[test]
fn serve_refuses_out_of_bounds_auth_settings_at_start_up() {
    for (auth, says) in [
        (
            json!({"type": "jwt", "algorithm": "HS256", "secret": "jwt-secret-for-tests-32-bytes-long", "leewaySecs": 4_000_000_000u64}),
            "leewaySecs",
        ),
        (
            json!({"type": "hmac", "secret": HOOK_SECRET, "toleranceSecs": 4_000_000_000u64}),
            "toleranceSecs",
        ),
        (
            json!({"type": "hmac", "secret": "whsec_"}),
            "at least one byte",
        ),
        (
            json!({"type": "jwt", "algorithm": "HS256", "secret": "too-short"}),
            "at least 32",
        ),
        (
            json!({"type": "jwt", "jwksUrl": "http://idp.example.com/jwks.json"}),
            "must be an https:// URL",
        ),
    ] {
        let config = json!({"x": {"auth": auth}}).to_string();
        // Output to files, and a bounded wait: a server that starts anyway is killed.
        let dir = std::env::temp_dir().join(format!("bounds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
        let mut child = process::Proc::spawn(
            std::process::Command::new(process::bin("serve"))
                .env("PORT", "0")
                .env("HOST", "127.0.0.1")
                .env("EXTENSION_BACKEND", "embedded")
                .env("EXTENSION_INCOMING_ENDPOINTS", &config)
                .stdin(std::process::Stdio::null())
                .stdout(std::fs::File::create(&out_path).expect("stdout file"))
                .stderr(std::fs::File::create(&err_path).expect("stderr file")),
        )
        .expect("run serve");
        let exited = child.wait_timeout(Duration::from_secs(20));
        drop(child);
        let text = format!(
            "{}{}",
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            std::fs::read_to_string(&err_path).unwrap_or_default()
        );
        let _ = std::fs::remove_dir_all(&dir);
        assert!(exited, "started with {config}: {text}");
        assert!(
            !text.contains("listening on"),
            "started with {config}: {text}"
        );
        assert!(text.contains(says), "{config}: {text}");
    }
}

/// `jwksUrl` through the `serve` binary (the process's own outgoing client): a token
/// signed by PyJWT (`shared/src/incoming/auth/jwks_vectors.json`) is accepted with the key set
/// served on 127.0.0.1, fetched once; a forged one is refused 401; an endpoint whose provider
/// is down answers 503 with `Retry-After`; `http://` to anything but loopback stops start-up.
#[test]
fn serve_verifies_bearer_tokens_with_an_identity_providers_jwks() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let vectors = std::fs::read(repo_root().join("shared/src/incoming/auth/jwks_vectors.json"))
        .expect("read the JWKS vectors");
    let vectors: Value = serde_json::from_slice(&vectors).expect("vectors");
    let doc = vectors["jwks"].to_string();
    let hits = Arc::new(AtomicUsize::new(0));
    let rt = runtime();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let doc = doc.clone();
            async move { ([("content-type", "application/json")], doc) }
        }),
    );
    rt.spawn(async move { axum::serve(listener, app).await });
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let endpoint = |url: String| {
        json!({"type": "jwt", "jwksUrl": url, "audience": "extension",
               "issuer": "https://idp.example.com", "maxLifetimeSecs": null})
    };
    let config = json!({
        "idp": {"auth": endpoint(format!("http://127.0.0.1:{port}/jwks.json"))},
        "down": {"auth": endpoint(format!("http://127.0.0.1:{closed}/jwks.json"))},
    });
    let (_p, addr) = serve(&[("EXTENSION_INCOMING_ENDPOINTS", &config.to_string())]);
    let token = |name: &str| format!("Bearer {}", vectors["tokens"][name].as_str().expect(name));
    let body = r#"{"event":"contact.updated"}"#;
    for name in ["rs256", "es256", "eddsa"] {
        let r = post(&addr, "idp", &[JSON, ("authorization", &token(name))], body);
        assert!(r.status == 200 || r.status == 204, "{name}: {}", r.text());
    }
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    let forged = token("hs256_with_the_public_pem");
    assert_json_error(
        &post(&addr, "idp", &[JSON, ("authorization", &forged)], body),
        401,
        "unauthorized",
    );
    let r = post(
        &addr,
        "down",
        &[JSON, ("authorization", &token("es256"))],
        body,
    );
    assert_json_error(&r, 503, "unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
    drop(rt);
}

// ---------------------------------------------------------------------------------------------
// The shared router, in-process.

struct LocalServer {
    rt: tokio::runtime::Runtime,
    addr: String,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Serve `incoming` (plus an empty `/function` module) with the shared router on 127.0.0.1:0.
fn local(rt: tokio::runtime::Runtime, incoming: IncomingApp, body_limit: usize) -> LocalServer {
    let ext = Extension::builder()
        .diy(Module::new())
        .build()
        .expect("extension");
    let app = HttpApp::new(ext, TokenSet::default(), body_limit).with_mount(Arc::new(incoming));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    rt.spawn(async move {
        use integrator_lambda::transport::server;
        server::serve_router(listener, server::router(app), std::future::pending()).await;
    });
    LocalServer { rt, addr }
}

fn endpoints() -> IncomingConfig {
    IncomingConfig::from_json(&format!(
        r#"{{
          "demo":  {{"dedup": "body"}},
          "hooks": {{"auth": {{"type": "hmac", "secret": "{HOOK_SECRET}"}}}},
          "crm":   {{"auth": {{"type": "jwt", "algorithm": "HS256", "secret": "jwt-secret-for-tests-32-bytes-long"}}}}
        }}"#
    ))
    .expect("config")
}

#[test]
fn the_router_answers_json_errors() {
    let queue = Arc::new(MemoryQueue::default());
    let services = IncomingStores::new(
        Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
        queue.clone(),
    );
    let app = IncomingApp::new(endpoints(), services).expect("app");
    let s = local(runtime(), app, 4096);

    // 415: not JSON.
    assert_json_error(
        &post(&s.addr, "demo", &[], r#"{"a":1}"#),
        415,
        "unsupported_media_type",
    );
    assert_json_error(
        &post(
            &s.addr,
            "demo",
            &[("content-type", "text/plain")],
            r#"{"a":1}"#,
        ),
        415,
        "unsupported_media_type",
    );
    assert_json_error(
        &post(
            &s.addr,
            "demo",
            &[("content-type", "application/json; charset=iso-8859-1")],
            "{}",
        ),
        415,
        "unsupported_charset",
    );
    // 400: malformed, or not an object.
    assert_json_error(
        &post(&s.addr, "demo", &[JSON], r#"{"a":"#),
        400,
        "invalid_json",
    );
    assert_json_error(
        &post(&s.addr, "demo", &[JSON], "[1,2]"),
        400,
        "invalid_json",
    );
    assert_json_error(&post(&s.addr, "demo", &[JSON], "7"), 400, "invalid_json");
    assert_json_error(&post(&s.addr, "demo", &[JSON], ""), 400, "invalid_json");
    // 404: unknown endpoint, other methods, the bare prefix.
    assert_json_error(&post(&s.addr, "unknown", &[JSON], "{}"), 404, "not_found");
    assert_json_error(&post(&s.addr, "", &[JSON], "{}"), 404, "not_found");
    let get = send(&s.addr, "GET", "/incoming/demo", &[], b"").expect("http");
    assert_json_error(&get, 404, "not_found");
    // 401: missing or bad credentials.
    assert_json_error(&post(&s.addr, "hooks", &[JSON], "{}"), 401, "unauthorized");
    let r = post(&s.addr, "crm", &[JSON], "{}");
    assert_json_error(&r, 401, "unauthorized");
    assert_eq!(
        r.header("www-authenticate"),
        Some(r#"Bearer realm="incoming""#)
    );
    let r = post(
        &s.addr,
        "crm",
        &[
            JSON,
            (
                "authorization",
                "Bearer eyJhbGciOiJub25lIn0.eyJleHAiOjk5OTk5OTk5OTl9.",
            ),
        ],
        "{}",
    );
    assert_json_error(&r, 401, "unauthorized");
    // 413: over the router's body limit.
    let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(5000));
    assert_json_error(
        &post(&s.addr, "demo", &[JSON], &big),
        413,
        "request_too_large",
    );

    // Nothing above reached the queue; a good request does.
    assert!(queue.sent().is_empty());
    let body = r#"{"a":{"b":1}}"#;
    let h = signed(body, HOOK_SECRET, "msg_9");
    assert_eq!(post(&s.addr, "hooks", &borrowed(&h), body).status, 200);
    assert_eq!(queue.sent().len(), 1);
    drop(s.rt);
}

// ---------------------------------------------------------------------------------------------
// SQS on the moto emulator.

async fn receive_all(cfg: &aws_config::SdkConfig, url: &str) -> Vec<(String, Value)> {
    // The default visibility of the queue (30 s): nothing is read twice within a test.
    integration_tests::aws::receive_all(cfg, url, 30)
        .await
        .into_iter()
        .map(|(id, body)| (id, serde_json::from_str(&body).expect("json body")))
        .collect()
}

#[test]
fn accepted_events_land_in_sqs_flattened_and_duplicates_do_not() {
    let rt = runtime();
    let (cfg, url) = rt.block_on(async {
        let cfg = aws::moto_config().await;
        let url = aws::create_queue(&cfg, "incoming").await;
        (cfg, url)
    });
    let services = IncomingStores::new(
        Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
        Arc::new(SqsQueue::new(&cfg, url.clone())),
    );
    let app = IncomingApp::new(endpoints(), services).expect("app");
    let s = local(rt, app, 1024 * 1024);

    let body = r#"{"type":"order.created","order":{"id":"SO-1","lines":[{"sku":"A-1","qty":2}],"tags":[],"meta":{}}}"#;
    let r = post(
        &s.addr,
        "demo",
        &[
            JSON,
            ("x-request-id", "rq-1"),
            ("authorization", "Bearer not-forwarded"),
        ],
        body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let accepted = r.json();
    // The same event again (other key order): 204, and nothing more is queued.
    let dup = r#"{"order":{"meta":{},"tags":[],"lines":[{"qty":2,"sku":"A-1"}],"id":"SO-1"},"type":"order.created"}"#;
    assert_eq!(post(&s.addr, "demo", &[JSON], dup).status, 204);

    let messages = s.rt.block_on(receive_all(&cfg, &url));
    assert_eq!(messages.len(), 1, "{messages:?}");
    let (id, m) = &messages[0];
    assert_eq!(accepted["id"], id.as_str());
    assert_eq!(m["endpoint"], "demo");
    assert_eq!(m["dedupKey"], accepted["dedupKey"]);
    assert_eq!(m["auth"], json!({"type": "none"}));
    assert_eq!(
        m["headers"],
        json!({"content-type": "application/json", "x-request-id": "rq-1"})
    );
    assert_eq!(
        m["event"],
        json!({
            "type": "order.created",
            "order.id": "SO-1",
            "order.lines.0.sku": "A-1",
            "order.lines.0.qty": 2,
            "order.tags": [],
            "order.meta": {}
        })
    );
    assert!(m["receivedAt"].as_str().is_some_and(|t| t.ends_with('Z')));
    assert!(!m.to_string().contains("not-forwarded"));
}

#[test]
fn a_queue_outage_is_a_503_and_the_retry_is_not_taken_for_a_duplicate() {
    let rt = runtime();
    let name = aws::unique("incoming-late");
    let (cfg, url) = rt.block_on(async {
        let cfg = aws::moto_config().await;
        // A queue URL whose queue does not exist yet (same account and host as a real one).
        let probe = aws::create_queue(&cfg, "incoming-probe").await;
        let url = format!("{}/{name}", probe.rsplit_once('/').expect("url").0);
        (cfg, url)
    });
    let services = IncomingStores::new(
        Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
        Arc::new(SqsQueue::new(&cfg, url.clone())),
    );
    let app = IncomingApp::new(endpoints(), services).expect("app");
    let s = local(rt, app, 1024 * 1024);

    let body = r#"{"event":"late"}"#;
    let r = post(&s.addr, "demo", &[JSON], body);
    assert_json_error(&r, 503, "unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));

    // The queue comes back; the sender retries the same event and it is accepted.
    s.rt.block_on(async {
        let sqs = aws_sdk_sqs::Client::new(&cfg);
        sqs.create_queue()
            .queue_name(&name)
            .send()
            .await
            .expect("create queue");
    });
    let r = post(&s.addr, "demo", &[JSON], body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(post(&s.addr, "demo", &[JSON], body).status, 204);
    let messages = s.rt.block_on(receive_all(&cfg, &url));
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0].1["event"], json!({"event": "late"}));
}

// ---------------------------------------------------------------------------------------------
// The `incoming` Lambda binary.

fn url_event() -> String {
    std::fs::read_to_string(repo_root().join("events/incoming/function-url.json")).expect("event")
}

fn http_response(outcome: Option<Outcome>) -> Value {
    match outcome {
        Some(Outcome::Response(b)) => serde_json::from_slice(&b).expect("response JSON"),
        other => panic!("expected a response, got {:?}", other.map(|o| o.text())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incoming_lambda_queues_function_url_events_to_sqs() {
    let cfg = aws::moto_config().await;
    let url = aws::create_queue(&cfg, "incoming-lambda").await;
    let table = aws::create_table(&cfg, "incoming-lambda").await;
    let endpoint = aws::moto_endpoint();
    let api = RuntimeApi::start().await.expect("runtime api");
    let _f = process::lambda(
        &process::bin("incoming"),
        &api.address(),
        &[
            ("EXTENSION_BACKEND", "aws"),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("EXTENSION_QUEUE_URL", &url),
            ("EXTENSION_TABLE", &table),
        ],
    );
    let t = Duration::from_secs(30);
    let first = http_response(api.invoke(url_event(), None, t).await);
    assert_eq!(first["statusCode"], 200, "{first}");
    let accepted: Value =
        serde_json::from_str(first["body"].as_str().expect("body")).expect("body JSON");
    assert_eq!(accepted["status"], "accepted");

    let second = http_response(api.invoke(url_event(), None, t).await);
    assert_eq!(second["statusCode"], 204, "{second}");

    let messages = receive_all(&cfg, &url).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let (id, m) = &messages[0];
    assert_eq!(accepted["id"], id.as_str());
    assert_eq!(m["endpoint"], "demo");
    assert_eq!(m["requestId"].as_str().map(str::is_empty), Some(false));
    assert_eq!(m["event"]["order.lines.1.sku"], "B-7");
    assert_eq!(m["event"]["order.customer.email"], "ada@example.com");
    assert_eq!(m["event"]["order.tags"], json!([]));
    assert_eq!(m["headers"]["x-request-id"], "example-request-0001");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incoming_lambda_without_a_queue_fails_at_start() {
    let api = RuntimeApi::start().await.expect("runtime api");
    let mut f = process::lambda(
        &process::bin("incoming"),
        &api.address(),
        &[("EXTENSION_BACKEND", "aws")],
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !f.exited() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(f.exited(), "started without EXTENSION_QUEUE_URL");
}
