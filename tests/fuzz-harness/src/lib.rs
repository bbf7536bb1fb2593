//! One function per fuzz target: what the target does with arbitrary bytes, and the property
//! it checks (beyond "never panics"). `fuzz/fuzz_targets/<name>.rs` (cargo-fuzz, nightly) calls
//! them; `tests/corpus.rs` replays every file under `fuzz/corpus/<name>/` and
//! `fuzz/regressions/<name>/` through them on stable, in `make test`.
//!
//! Every parser of outside bytes has a target: the envelope and dispatch, the JSON writer,
//! flattening, JWTs, the webhook signature headers (Standard Webhooks, `Stripe-Signature`,
//! `X-Slack-Signature`, `Authorization: Basic`, the spelled-out HMAC's template and signature), the
//! JWKS document and a token's `alg`/`kid` header, the SQS batch, the incoming handler,
//! schedule windows and the Lambda client context.

use integrator_lambda::dispatch::{CallRequest, Extension, Module, Stack};
use integrator_lambda::incoming::{IncomingApp, IncomingConfig, IncomingStores};
use integrator_lambda::protocol::Envelope;
use integrator_lambda::store::queue::MemoryQueue;
use integrator_lambda::transport::http::HttpRequest;
use integrator_lambda::{Dedup, MemoryDedup};
use serde_json::Value;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// The targets, by name (the directory names under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("envelope", envelope),
    ("json_writer", json_writer),
    ("flatten", flatten),
    ("jwt", jwt),
    ("signature", signature),
    ("sqs_batch", sqs_batch),
    ("incoming", incoming),
    ("window", window),
    ("client_context", client_context),
    ("stripe_signature", stripe_signature),
    ("slack_signature", slack_signature),
    ("basic_auth", basic_auth),
    ("hmac_template", hmac_template),
    ("jwks", jwks),
];

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn extension() -> &'static Extension {
    static EXT: OnceLock<Extension> = OnceLock::new();
    EXT.get_or_init(|| {
        let mut m = Module::new();
        m.raw("echo", |_inv, o: Value| async move {
            Ok::<_, integrator_lambda::ExtError>(o)
        });
        Extension::builder().diy(m).build().expect("extension")
    })
}

/// Envelope + dispatch: any JSON body is read as an envelope (server stack and Lambda client
/// context) and dispatched; the answer is a reply or the 422 errors, never a panic.
pub fn envelope(data: &[u8]) {
    lazy_envelope(data);
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let _ = Envelope::from_client_context(v.clone(), Value::Null);
    let call = CallRequest {
        envelope: Envelope::from_body(v),
        stack: Stack::Http,
        request_id: "fuzz".into(),
        trace_id: None,
        deadline: Some(Instant::now() + Duration::from_secs(5)),
    };
    let _ = runtime().block_on(extension().call(call));
}

/// The server stack's envelope reader (options kept as text, records passed through) against
/// the whole-body parse it replaces: the same bodies fail with the same error (except records
/// holding what only `JSON.parse` reads: a lone surrogate, a number past f64, deep nesting, which
/// the page reader takes and writes back as Node does); otherwise the same fields, the same
/// options, and typed options that read and write back the same.
pub fn lazy_envelope(data: &[u8]) {
    use integrator_lambda::dispatch::kinds::{FunctionKind, PreSavePage};
    use integrator_lambda::protocol::json;
    use integrator_lambda::types::PreSavePageOptions;
    let source = bytes::Bytes::copy_from_slice(data);
    let lazy = Envelope::from_json(source.clone());
    // Both read invalid UTF-8 as Node does (U+FFFD).
    let eager = json::from_slice(&integrator_lambda::protocol::scan::as_node_reads(
        source.clone(),
    ));
    let (env, token, v) = match (lazy, eager) {
        (Ok((env, token)), Ok(v)) => (env, token, v),
        (Err(a), Err(b)) => {
            assert_eq!(a.to_string(), b.to_string(), "different errors");
            return;
        }
        // What JSON.parse takes and a Value cannot hold, inside a record: the page reader takes
        // it (the record is written back as Node writes it); only such reasons may differ.
        (Ok((env, _)), Err(e))
            if ["surrogate", "hex escape", "out of range", "recursion limit"]
                .iter()
                .any(|r| e.to_string().contains(r)) =>
        {
            if let Some(options) = env.options
                && let Ok(t) = PreSavePage::read_options(options)
            {
                let whole = json::to_vec(&t.data).expect("a page nobody read writes");
                let pieces = integrator_lambda::protocol::text::within(Some(source), || {
                    integrator_lambda::protocol::text::to_text(&t.data)
                })
                .expect("writes");
                assert_eq!(whole, pieces.to_bytes().as_ref());
            }
            return;
        }
        (a, b) => panic!(
            "the readers disagree on {:?}: {:?} vs {:?}",
            String::from_utf8_lossy(data),
            a.map(|_| ()),
            b.map(|_| ())
        ),
    };
    let field = |k: &str| v.as_object().and_then(|o| o.get(k)).cloned();
    assert_eq!(env.function, field("function"));
    assert_eq!(env.diy, field("diy"));
    assert_eq!(env.max_response_size, field("maxResponseSize"));
    assert_eq!(token, field("access_token"));
    let Some(options) = env.options else {
        assert_eq!(field("options"), None);
        return;
    };
    assert_eq!(
        options.records_in(),
        integrator_lambda::metrics::records_in(field("options").as_ref())
    );
    let typed = PreSavePage::read_options(options.clone());
    assert_eq!(options.into_value().ok(), field("options"));
    let expected =
        serde_json::from_value::<PreSavePageOptions>(field("options").unwrap_or_default());
    match (typed, expected) {
        (Ok(t), Ok(e)) => {
            assert_eq!(json::to_vec(&t.data).ok(), json::to_vec(&e.data).ok());
            // In pieces, as the transports send it: the same bytes.
            let pieces = integrator_lambda::protocol::text::within(Some(source.clone()), || {
                integrator_lambda::protocol::text::to_text(&t.data)
            })
            .expect("writes");
            assert_eq!(
                json::to_vec(&e.data).ok().as_deref(),
                Some(pieces.to_bytes().as_ref())
            );
            assert_eq!(t, e);
        }
        (Err(t), Err(e)) => assert_eq!(t.to_string(), e.to_string()),
        (t, e) => panic!("typed options disagree: {:?} vs {:?}", t.is_ok(), e.is_ok()),
    }
}

/// The JSON writer: what it writes for any value serde_json reads back as the same value.
pub fn json_writer(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let text = integrator_lambda::protocol::json::to_string(&v).expect("writes any value");
    let back: Value = serde_json::from_str(&text).expect("the writer's output is JSON");
    // Numbers are written as JavaScript does (1.0 → 1, 1e21 stays), so compare as f64.
    assert!(same(&v, &back), "round trip changed the value: {text}");
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Flattening: the streaming measure never passes what flattening refuses, and agrees with it
/// exactly on the document as parsed. (A repeated key is weighed by `measure` at each
/// occurrence, while the parsed value keeps only its last value, so on the raw text `measure`
/// may refuse what fits after parsing: found by this target, see `fuzz/regressions/flatten/`.)
pub fn flatten(data: &[u8]) {
    use integrator_lambda::incoming::flatten::{flatten_within, measure};
    let limit = 4096;
    let measured = measure(data, limit);
    if let Ok(v) = serde_json::from_slice::<Value>(data) {
        let flat = flatten_within(&v, limit).is_ok();
        assert!(
            measured.is_err() || flat,
            "measure passed a document whose flattened form is too large"
        );
        let parsed = serde_json::to_vec(&v).expect("a parsed value serializes");
        assert_eq!(
            measure(&parsed, limit).is_ok(),
            flat,
            "measure and flatten disagree on the parsed document"
        );
    }
}

/// JWT verification of any bearer token.
pub fn jwt(data: &[u8]) {
    use integrator_lambda::incoming::JwtConfig;
    use integrator_lambda::incoming::config::SecretValue;
    use integrator_lambda::incoming::jwt::JwtVerifier;
    static V: OnceLock<JwtVerifier> = OnceLock::new();
    let v = V.get_or_init(|| {
        integrator_lambda::incoming::jwt_crypto::install();
        let secret = "fuzz-secret-of-some-length-32-bytes-at-least".to_owned();
        let config = JwtConfig::hs256(SecretValue::Inline(secret.clone().into()));
        JwtVerifier::new(&config, &secret).expect("verifier")
    });
    let _ = v.verify(&String::from_utf8_lossy(data));
}

/// Standard Webhooks headers: `id\ntimestamp\nsignature\nbody…`.
pub fn signature(data: &[u8]) {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let (id, ts, sig) = (parts.next(), parts.next(), parts.next());
    let body = parts.next().unwrap_or_default();
    let mut h = http::HeaderMap::new();
    for (name, v) in [
        ("webhook-id", id),
        ("webhook-timestamp", ts),
        ("webhook-signature", sig),
    ] {
        if let Some(Ok(v)) = v.map(http::HeaderValue::from_bytes) {
            h.insert(name, v);
        }
    }
    let _ = integrator_lambda::incoming::signature::verify(
        &h,
        body,
        b"key",
        Duration::from_secs(300),
        1_700_000_000,
    );
}

/// The worker's SQS batch: any event gets a batch response or a batch error.
pub fn sqs_batch(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let deadline = Some(Instant::now() + Duration::from_secs(5));
    let _ = runtime().block_on(integrator_lambda::worker::handle_batch(
        extension(),
        v,
        "fuzz",
        deadline,
    ));
}

/// The incoming handler: any body to a deduplicating endpoint.
pub fn incoming(data: &[u8]) {
    static CONFIG: OnceLock<IncomingConfig> = OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        IncomingConfig::from_json(
            r#"{"demo": {"auth": "none", "dedup": {"fields": ["id", "a.b"]}}}"#,
        )
        .expect("config")
    });
    // Fresh in-memory stores per input: stores shared across millions of inputs would keep
    // every accepted event (the first `make fuzz` stopped at its 1 GB RSS limit that way).
    let stores = IncomingStores::new(
        Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
        Arc::new(MemoryQueue::default()),
    );
    let app = IncomingApp::new(config.clone(), stores).expect("app");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "content-type",
        http::HeaderValue::from_static("application/json"),
    );
    let req = HttpRequest {
        method: http::Method::POST,
        path: "/incoming/demo".into(),
        query: None,
        headers,
        body: bytes::Bytes::copy_from_slice(data),
        deadline: Some(Instant::now() + Duration::from_secs(5)),
        request_id: Some("fuzz".into()),
    };
    let r = runtime().block_on(app.handle("demo", req));
    assert!(
        [200, 204, 400, 413, 415, 422].contains(&r.status().as_u16()),
        "unexpected status {}",
        r.status()
    );
}

/// Schedule windows: a window that parses gives a next allowed time inside it, never before.
pub fn window(data: &[u8]) {
    use integrator_lambda::jobs::window::Window;
    let (at, rest) = match data.split_first_chunk::<8>() {
        Some((a, r)) => (u64::from_le_bytes(*a) % 4_102_444_800_000, r),
        None => (0, data),
    };
    let Ok(v) = serde_json::from_slice::<Value>(rest) else {
        return;
    };
    if let Ok(w) = Window::from_json(&v) {
        let next = w.next_allowed(at);
        assert!(next >= at, "next allowed {next} before {at}");
        assert!(w.contains(next), "next allowed {next} outside the window");
    }
}

/// The Lambda client context header (and deadline header): read into an envelope or refused,
/// never a dead runtime.
pub fn client_context(data: &[u8]) {
    let mut h = http::HeaderMap::new();
    h.insert(
        "lambda-runtime-aws-request-id",
        http::HeaderValue::from_static("req"),
    );
    h.insert(
        "lambda-runtime-deadline-ms",
        http::HeaderValue::from_static("1700000000000"),
    );
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        h.insert(
            integrator_lambda::transport::lambda::CLIENT_CONTEXT_HEADER,
            v,
        );
    }
    let Some(inv) =
        integrator_lambda::transport::lambda::Invocation::from_parts(h, bytes::Bytes::new())
    else {
        return;
    };
    static CONFIG: OnceLock<Arc<lambda_runtime::Config>> = OnceLock::new();
    let config = CONFIG.get_or_init(|| Arc::new(lambda_runtime::Config::default()));
    let _ = inv.context(config);
    if let Some(cc) = inv.client_context {
        let cc: Value = serde_json::from_str(&cc).unwrap_or(Value::Null);
        let _ = Envelope::from_client_context(cc, Value::Null);
    }
}

/// `Stripe-Signature`: `value\nbody…`. A value that parses verifies when re-signed at its own
/// timestamp, and the header as sent never panics the check.
pub fn stripe_signature(data: &[u8]) {
    use integrator_lambda::incoming::auth::stripe;
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let value = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let body = parts.next().unwrap_or_default();
    let secret = b"whsec_fuzz_secret_0123456789";
    if let Ok(p) = stripe::parse(&value) {
        let mut h = http::HeaderMap::new();
        let signed = stripe::sign(secret, p.timestamp, body);
        h.insert(
            stripe::HEADER,
            http::HeaderValue::from_str(&signed).expect("a signed value is a header value"),
        );
        assert!(
            stripe::verify(&h, body, secret, Duration::from_secs(300), p.timestamp).is_ok(),
            "a fresh signature does not verify"
        );
    }
    if let Ok(v) = http::HeaderValue::from_bytes(parts_first(data)) {
        let mut h = http::HeaderMap::new();
        h.insert(stripe::HEADER, v);
        let _ = stripe::verify(&h, body, secret, Duration::from_secs(300), 1_700_000_000);
    }
}

fn parts_first(data: &[u8]) -> &[u8] {
    data.split(|b| *b == b'\n').next().unwrap_or_default()
}

/// `X-Slack-Signature` (and its timestamp): `signature\ntimestamp\nbody…`.
pub fn slack_signature(data: &[u8]) {
    use integrator_lambda::incoming::auth::slack;
    let mut parts = data.splitn(3, |b| *b == b'\n');
    let (sig, ts) = (parts.next(), parts.next());
    let body = parts.next().unwrap_or_default();
    if let Ok(tag) = slack::parse_signature(&String::from_utf8_lossy(sig.unwrap_or_default())) {
        assert_eq!(tag.len(), 32, "a v0 signature is an HMAC-SHA256");
    }
    let mut h = http::HeaderMap::new();
    for (name, v) in [
        (slack::SIGNATURE_HEADER, sig),
        (slack::TIMESTAMP_HEADER, ts),
    ] {
        if let Some(Ok(v)) = v.map(http::HeaderValue::from_bytes) {
            h.insert(name, v);
        }
    }
    let _ = slack::verify(
        &h,
        body,
        b"fuzz-signing-secret",
        Duration::from_secs(300),
        1_700_000_000,
    );
}

/// `Authorization: Basic …`: what parses, written back, parses the same.
pub fn basic_auth(data: &[u8]) {
    use integrator_lambda::incoming::auth::basic;
    let value = String::from_utf8_lossy(data);
    if let Some((user, pass)) = basic::parse(&value)
        && let Ok(pass) = String::from_utf8(pass)
        && !user.contains(':')
    {
        let again = basic::credentials(&user, &pass);
        assert_eq!(
            basic::parse(&again),
            Some((user, pass.into_bytes())),
            "credentials do not round-trip"
        );
    }
    if let Ok(v) = http::HeaderValue::from_bytes(data) {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v);
        let _ = basic::verify(&h, "user", b"password");
    }
}

/// The spelled-out HMAC: a `content` template, and a signature in either encoding:
/// `template\nsignature`.
pub fn hmac_template(data: &[u8]) {
    use integrator_lambda::incoming::HmacEncoding;
    use integrator_lambda::incoming::auth::hmac;
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let template = String::from_utf8_lossy(parts.next().unwrap_or_default());
    if let Ok(p) = hmac::parse_template(&template) {
        let _ = hmac::check_template(&p, true, true);
    }
    let sig = String::from_utf8_lossy(parts.next().unwrap_or_default());
    for enc in [HmacEncoding::Hex, HmacEncoding::Base64] {
        let _ = hmac::parse_signature(&sig, "sha256=", enc);
        let _ = hmac::parse_signature(&sig, "", enc);
    }
}

/// A JWKS document (`jwksUrl`) after a first line read as a token's header: the parser keeps at
/// most `MAX_JWKS_KEYS` keys, each for RS256, ES256 or EdDSA only, and a `kid` read from a token
/// is never over `MAX_KID_LEN` bytes.
pub fn jwks(data: &[u8]) {
    use integrator_lambda::incoming::auth::jwks::{MAX_JWKS_KEYS, parse_jwks};
    use integrator_lambda::incoming::jwt::{MAX_KID_LEN, header_alg_kid};
    let mut parts = data.splitn(2, |b| *b == b'\n');
    let token = String::from_utf8_lossy(parts.next().unwrap_or_default());
    if let Some((_, Some(kid))) = header_alg_kid(&token) {
        assert!(!kid.is_empty() && kid.len() <= MAX_KID_LEN);
    }
    for doc in [data, parts.next().unwrap_or_default()] {
        if let Ok(keys) = parse_jwks(doc) {
            assert!(keys.len() <= MAX_JWKS_KEYS);
            for k in keys.values() {
                assert!(matches!(k.algorithm(), "RS256" | "ES256" | "EdDSA"));
            }
        }
    }
}
