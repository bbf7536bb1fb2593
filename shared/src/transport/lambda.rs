//! The Lambda transport on the official `lambda_runtime`.
//!
//! integrator.io's Lambda stack sends the envelope as the invocation's client context. The
//! runtime's own `ClientContext` type keeps only `client`/`custom`/`environment` (string maps)
//! and fails on anything else, before any layer could help, ending the process; so [`run`] is
//! our own loop on `lambda_runtime`'s Runtime API client: it takes the raw
//! `Lambda-Runtime-Client-Context` header out of each invocation ([`Invocation`]) and hands it to
//! the handler through a task-local.
//!
//! One binary answers every event kind:
//! - client context present → integrator.io direct Invoke (payload = options);
//! - a Function URL / API Gateway HTTP API event → the server-stack routes via `lambda_http`;
//! - an event another component consumes (SQS batches: the queue worker, mounted by the startup
//!   module as an [`EventConsumer`]);
//! - AWS's own scheduled event (an EventBridge rule or schedule without an input,
//!   [`is_scheduled_event`]) → the deferred-jobs tick, `{"diy":true,"function":"tick","options":{}}`;
//! - anything else → the payload is a whole envelope (`sam local invoke -e`, queued messages).

use super::http::{HttpApp, HttpRequest};
use crate::dispatch::{CallRequest, Extension, Stack};
use crate::protocol::error::{WireError, http_body, lambda_message};
use crate::protocol::{Envelope, JsonText, Options};
use crate::store::dedup::{CallMarks, held};
use futures_util::FutureExt;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body};
use lambda_runtime::{Diagnostic, LambdaEvent, Service};
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Header the Runtime API uses for the client context (plain JSON, not base64).
pub const CLIENT_CONTEXT_HEADER: &str = "lambda-runtime-client-context";
const REQUEST_ID_HEADER: &str = "lambda-runtime-aws-request-id";
const DEADLINE_HEADER: &str = "lambda-runtime-deadline-ms";
const INVOCATION_ID_HEADER: &str = "lambda-runtime-invocation-id";
const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";

/// Lambda's limit on a synchronous invocation's response payload (6 MB). Past it the platform
/// answers `ResponseSizeTooLarge` instead of the function; the function answers the protocol's
/// own size error first.
pub const RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// The size error, as a direct Invoke's function error.
fn too_large_for_lambda() -> Diagnostic {
    Diagnostic {
        error_type: "string".into(),
        error_message: lambda_message(&[WireError::response_too_large(
            &RESPONSE_LIMIT.to_string(),
        )]),
    }
}

/// The size error, as a Function URL response (422 with the server stack's error body).
fn too_large_for_function_url() -> String {
    serde_json::json!({
        "statusCode": 422,
        "headers": {"content-type": "application/json"},
        "body": http_body(&[WireError::response_too_large(&RESPONSE_LIMIT.to_string())]),
        "isBase64Encoded": false,
    })
    .to_string()
}

tokio::task_local! {
    static CLIENT_CONTEXT: Option<String>;
}

/// The raw client context of the current invocation, if it carried one.
pub fn current_client_context() -> Option<String> {
    CLIENT_CONTEXT.try_with(Clone::clone).ok().flatten()
}

/// One invocation as received from the Runtime API, with the client context taken out of the
/// headers (raw) so that `lambda_runtime::Context::new` never sees it.
///
/// Why: `lambda_runtime` parses that header into its own `ClientContext` struct (`custom` and
/// `env` as string maps) *before* any `Runtime::layer` runs, and a parse error ends the runtime
/// loop, i.e. the process (`Runtime.ExitError`). Any caller can send any JSON there, e.g.
/// `{"custom":{"x":true}}`, so the header is read and removed here first.
#[derive(Debug)]
pub struct Invocation {
    pub request_id: String,
    pub invocation_id: Option<String>,
    pub client_context: Option<String>,
    pub headers: http::HeaderMap,
    pub body: bytes::Bytes,
}

impl Invocation {
    /// Split a `/next` response's headers and body. `None` without a request id (nothing to
    /// answer to).
    pub fn from_parts(mut headers: http::HeaderMap, body: bytes::Bytes) -> Option<Self> {
        let request_id = headers.get(REQUEST_ID_HEADER)?.to_str().ok()?.to_owned();
        let client_context = headers
            .remove(CLIENT_CONTEXT_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|s| !s.trim().is_empty());
        // Also attacker-independent but parsed by `Context::new` with an `expect`: keep the
        // runtime alive whatever the Runtime API sends.
        headers.remove("lambda-runtime-cognito-identity");
        let deadline_ok = headers
            .get(DEADLINE_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.parse::<u64>().is_ok());
        if !deadline_ok {
            headers.insert(DEADLINE_HEADER, http::HeaderValue::from_static("0"));
        }
        let invocation_id = headers
            .get(INVOCATION_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Some(Self {
            request_id,
            invocation_id,
            client_context,
            headers,
            body,
        })
    }

    /// The runtime's context for this invocation (the client context is never in it).
    pub fn context(
        &self,
        config: &Arc<lambda_runtime::Config>,
    ) -> Result<lambda_runtime::Context, lambda_runtime::Error> {
        lambda_runtime::Context::new(&self.request_id, config.clone(), &self.headers)
    }
}

/// Convert the runtime's deadline (epoch milliseconds; 0 = unknown) to an `Instant`.
pub fn deadline_instant(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    let now_ms = crate::time::EpochMillis::now().0;
    Some(Instant::now() + Duration::from_millis(deadline_ms.saturating_sub(now_ms)))
}

/// Is this payload a Function URL / API Gateway HTTP API (payload 2.0) event?
pub fn is_http_event(payload: &Value) -> bool {
    payload.get("rawPath").is_some_and(Value::is_string)
        && payload
            .get("requestContext")
            .and_then(|c| c.get("http"))
            .is_some_and(Value::is_object)
}

/// Is this payload AWS's own scheduled event (what an EventBridge rule or an EventBridge
/// Scheduler schedule without an input sends: `"detail-type": "Scheduled Event"` from
/// `aws.events` or `aws.scheduler`), which names no function? It is answered with a tick.
pub fn is_scheduled_event(payload: &Value) -> bool {
    payload.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
        && matches!(
            payload.get("source").and_then(Value::as_str),
            Some("aws.events" | "aws.scheduler")
        )
        && payload.get("function").is_none()
}

/// The envelope a scheduled event runs: the deferred-jobs tick (a binary without it answers
/// the usual unknown-function error).
fn tick_envelope() -> Envelope {
    Envelope::from_body(serde_json::json!({"diy": true, "function": "tick", "options": {}}))
}

/// The JSON text of the invocation's response, or its error. The text is ours (the reply
/// writer's output, or serde_json's), so it is posted as it is: checking it with
/// `RawValue::from_string` would parse a 5 MB page a second time. Records passed through are
/// posted from the payload's own bytes ([`JsonText`]).
type HandlerResult = Result<JsonText, Diagnostic>;

fn raw(text: impl Into<JsonText>) -> HandlerResult {
    Ok(text.into())
}

/// An event source other than integrator.io's calls (the worker's SQS batches), mounted by the
/// startup module: an invocation without a client context whose payload it
/// [`accepts`](EventConsumer::accepts) is answered by it.
#[async_trait::async_trait]
pub trait EventConsumer: Send + Sync + 'static {
    /// Is `payload` an event of this source?
    fn accepts(&self, payload: &Value) -> bool;
    /// Answer it: the response's JSON text, or the invocation's error.
    async fn consume(
        &self,
        ext: &Extension,
        payload: Value,
        request_id: &str,
        deadline: Option<Instant>,
    ) -> Result<String, Diagnostic>;
}

/// What one Lambda binary answers: the server-stack app plus the event consumers.
#[derive(Clone)]
pub struct LambdaApp {
    pub http: Arc<HttpApp>,
    pub consumers: Vec<Arc<dyn EventConsumer>>,
}

/// Answer one invocation (see the module docs for how the event kind is chosen).
pub async fn handle(app: LambdaApp, event: LambdaEvent<Value>) -> HandlerResult {
    let LambdaEvent { payload, context } = event;
    let deadline = deadline_instant(context.deadline);
    if current_client_context().is_some() {
        return handle_invoke(app, Options::Value(payload), context).await;
    }
    let envelope = if is_http_event(&payload) {
        return handle_http(app.http, payload, context, deadline).await;
    } else if let Some(c) = app.consumers.iter().find(|c| c.accepts(&payload)) {
        let ext = &app.http.extension;
        return raw(c
            .consume(ext, payload, &context.request_id, deadline)
            .await?);
    } else if is_scheduled_event(&payload) {
        tick_envelope()
    } else {
        Envelope::from_body(payload)
    };
    call(app, envelope, Stack::LambdaEnvelope, context).await
}

/// integrator.io's direct Invoke: the client context is the envelope, the payload the options.
pub async fn handle_invoke(
    app: LambdaApp,
    options: Options,
    context: lambda_runtime::Context,
) -> HandlerResult {
    // A client context that is not a JSON object yields an empty envelope, which then fails
    // validation with the usual 422 errors.
    let cc: Value = current_client_context()
        .and_then(|cc| serde_json::from_str(&cc).ok())
        .unwrap_or(Value::Null);
    let envelope = Envelope::from_client_context_options(cc, options);
    call(app, envelope, Stack::LambdaInvoke, context).await
}

/// Dispatch one envelope and shape the answer for Lambda.
async fn call(
    app: LambdaApp,
    envelope: Envelope,
    stack: Stack,
    context: lambda_runtime::Context,
) -> HandlerResult {
    let deadline = deadline_instant(context.deadline);
    let call = CallRequest {
        envelope,
        stack,
        request_id: context.request_id.clone(),
        trace_id: context.xray_trace_id.clone(),
        deadline,
    };
    // The dedup keys the call marks are kept only once its answer is known to fit.
    let marks = CallMarks::new();
    match held(marks.clone(), app.http.extension.call(call)).await {
        Ok(reply) => {
            let text = reply.into_lambda();
            if text.len() > RESPONSE_LIMIT {
                tracing::warn!(
                    bytes = text.len(),
                    "the answer is over Lambda's 6 MB response limit: answered with the size error"
                );
                marks.forget().await;
                return Err(too_large_for_lambda());
            }
            marks.keep();
            raw(text)
        }
        Err(errors) => Err(Diagnostic {
            error_type: "string".into(),
            error_message: lambda_message(&errors),
        }),
    }
}

async fn handle_http(
    app: Arc<HttpApp>,
    payload: Value,
    context: lambda_runtime::Context,
    deadline: Option<Instant>,
) -> HandlerResult {
    let request: LambdaRequest = serde_json::from_value(payload).map_err(|e| Diagnostic {
        error_type: "Runtime.InvalidHttpEvent".into(),
        error_message: format!("HTTP event could not be read: {e}"),
    })?;
    let request_id = context.request_id.clone();
    let mut adapter = Adapter::from(tower::service_fn(move |req: lambda_http::Request| {
        let app = app.clone();
        let request_id = request_id.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = match body {
                Body::Empty => bytes::Bytes::new(),
                Body::Text(t) => bytes::Bytes::from(t),
                Body::Binary(b) => bytes::Bytes::from(b),
                _ => bytes::Bytes::new(),
            };
            let req = HttpRequest::from_parts(parts, body, deadline, Some(request_id));
            let resp = app.handle(req).await;
            let (parts, text) = resp.into_parts();
            let bytes = text.into_bytes();
            let body = if bytes.is_empty() {
                Body::Empty
            } else {
                match String::from_utf8(bytes.to_vec()) {
                    Ok(s) => Body::Text(s),
                    Err(e) => Body::Binary(e.into_bytes()),
                }
            };
            Ok::<_, std::convert::Infallible>(http::Response::from_parts(parts, body))
        }
    }));
    // The dedup keys the call marks are kept only once its answer is known to fit.
    let marks = CallMarks::new();
    let response = match held(
        marks.clone(),
        adapter.call(LambdaEvent::new(request, context)),
    )
    .await
    {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let text = serde_json::to_string(&response).map_err(|e| Diagnostic {
        error_type: "Runtime.SerializationError".into(),
        error_message: e.to_string(),
    })?;
    // The limit counts the response as Lambda gets it: the body escaped into the Function URL
    // response document.
    if text.len() > RESPONSE_LIMIT {
        tracing::warn!(
            bytes = text.len(),
            "the Function URL answer is over Lambda's 6 MB response limit: answered with the size error"
        );
        marks.forget().await;
        return raw(too_large_for_function_url());
    }
    marks.keep();
    raw(text)
}

/// Run the Lambda runtime loop with `app`, one invocation at a time (classic Lambda hands an
/// environment one at a time): [`run_concurrent`] with 1.
pub async fn run(app: LambdaApp) -> Result<(), lambda_runtime::Error> {
    run_concurrent(app, 1).await
}

/// Run the Lambda runtime loop with `app`: `lambda_runtime`'s types and Runtime API client, our
/// own loop (see [`Invocation`] for why the runtime's loop is not used).
///
/// With `concurrency` above 1 (Lambda Managed Instances, `AWS_LAMBDA_MAX_CONCURRENCY`, read and
/// bounded by the settings), that many loops poll `/next` side by side in this one process, as
/// `lambda_runtime`'s `run_concurrent` does for plain handlers, over one pooled client sized to
/// match. Each invocation keeps its own client context, deadline and trace id (task-locals,
/// never a process-wide variable) and its own panic isolation (in `answer`). A loop that fails
/// is logged and the others go on; the runtime ends when none is left. With 1, the loop ends
/// only when the Runtime API cannot be reached.
pub async fn run_concurrent(
    app: LambdaApp,
    concurrency: usize,
) -> Result<(), lambda_runtime::Error> {
    let config = Arc::new(lambda_runtime::Config::from_env());
    let workers = concurrency.max(1);
    let client = Arc::new(
        lambda_runtime_api_client::PooledClient::builder()
            .with_pool_size(workers)
            .build(),
    );
    if workers == 1 {
        return poll(app, config, client).await;
    }
    tracing::info!(
        workers,
        "serving invocations concurrently (AWS_LAMBDA_MAX_CONCURRENCY)"
    );
    let mut loops = tokio::task::JoinSet::new();
    for _ in 0..workers {
        loops.spawn(poll(app.clone(), config.clone(), client.clone()));
    }
    let mut last: Option<lambda_runtime::Error> = None;
    while let Some(ended) = loops.join_next().await {
        let e: lambda_runtime::Error = match ended {
            Ok(Ok(())) => "a Runtime API loop ended".into(),
            Ok(Err(e)) => e,
            Err(join) => Box::new(join),
        };
        tracing::error!(error = %e, remaining = loops.len(), "a Runtime API loop stopped");
        last = Some(e);
    }
    Err(last.unwrap_or_else(|| "no Runtime API loop ran".into()))
}

/// One Runtime API loop: `/next`, answer, post the outcome, again.
async fn poll(
    app: LambdaApp,
    config: Arc<lambda_runtime::Config>,
    client: Arc<lambda_runtime_api_client::PooledClient>,
) -> Result<(), lambda_runtime::Error> {
    loop {
        let request = lambda_runtime_api_client::build_request()
            .method(http::Method::GET)
            .uri(NEXT_PATH)
            .body(lambda_runtime_api_client::body::Body::empty())?;
        let (mut parts, body) = client.call(request).await?.into_parts();
        // hyper's header values share its read buffer: copied, they no longer hold the block
        // the head arrived in, and hyper reuses it for the payload instead of allocating
        // another (a MB less at the peak of a 5 MB page).
        parts.headers = detached(parts.headers);
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let body = super::body::read_whole(body, declared).await?;
        let Some(mut invocation) = Invocation::from_parts(parts.headers, body) else {
            tracing::error!("Runtime API event without a request id; skipped");
            continue;
        };
        let outcome = answer(&app, &config, &mut invocation).await;
        let request = completion_request(&invocation, outcome)?;
        client.call(request).await?;
    }
}

/// `headers` with every value in storage of its own.
fn detached(headers: http::HeaderMap) -> http::HeaderMap {
    let mut out = http::HeaderMap::with_capacity(headers.len());
    for (name, value) in &headers {
        let mut owned =
            http::HeaderValue::from_bytes(value.as_bytes()).unwrap_or_else(|_| value.clone());
        owned.set_sensitive(value.is_sensitive());
        out.append(name.clone(), owned);
    }
    out
}

/// An invocation's payload, as read.
enum Payload {
    Options(Options),
    Value(Value),
}

/// The handler's answer to one invocation: its JSON text, or the invocation's error.
async fn answer(
    app: &LambdaApp,
    config: &Arc<lambda_runtime::Config>,
    invocation: &mut Invocation,
) -> HandlerResult {
    let context = invocation.context(config).map_err(|e| Diagnostic {
        error_type: "Runtime.InvalidInvocation".into(),
        error_message: format!("invocation headers could not be read: {e}"),
    })?;
    let unmarshal = |e: serde_json::Error| Diagnostic {
        error_type: "Runtime.UnmarshalError".into(),
        error_message: format!("the payload is not JSON: {e}"),
    };
    // With a client context the payload is the options: kept as text (records are read
    // lazily); any other event is read as a value to find out what it is.
    let payload = if invocation.client_context.is_some() {
        Payload::Options(Options::from_payload(invocation.body.clone()).map_err(unmarshal)?)
    } else {
        Payload::Value(crate::protocol::json::from_slice(&invocation.body).map_err(unmarshal)?)
    };
    let span = lambda_runtime::layers::trace::request_span(&context);
    // The runtime's trace id (`Lambda-Runtime-Trace-Id`) is the invocation's: logged with every
    // call and forwarded on the messages it sends.
    let trace_id = context.xray_trace_id.as_deref().map(Into::into);
    let handled = CLIENT_CONTEXT.scope(
        invocation.client_context.clone(),
        crate::telemetry::with_trace_id(trace_id, async move {
            match payload {
                Payload::Options(o) => handle_invoke(app.clone(), o, context).await,
                Payload::Value(v) => handle(app.clone(), LambdaEvent::new(v, context)).await,
            }
        }),
    );
    // Functions run isolated in dispatch; this catches a panic in the transport itself, so the
    // invocation is answered and the loop goes on (what `lambda_runtime`'s loop also does).
    match AssertUnwindSafe(handled.instrument(span))
        .catch_unwind()
        .await
    {
        Ok(result) => result,
        Err(_) => Err(Diagnostic {
            error_type: "Runtime.Panic".into(),
            error_message: "the invocation panicked".into(),
        }),
    }
}

/// The Runtime API request that reports `outcome` for `invocation`.
fn completion_request(
    invocation: &Invocation,
    outcome: HandlerResult,
) -> Result<http::Request<lambda_runtime_api_client::body::Body>, lambda_runtime::Error> {
    let id = &invocation.request_id;
    let mut builder = lambda_runtime_api_client::build_request().method(http::Method::POST);
    if let Some(inv) = &invocation.invocation_id {
        builder = builder.header(INVOCATION_ID_HEADER, inv.as_str());
    }
    let request = match outcome {
        Ok(text) => builder
            .uri(format!("/2018-06-01/runtime/invocation/{id}/response"))
            .body(if text.pieces().len() <= 1 {
                // One piece (most answers): a plain full body.
                text.into_bytes().into()
            } else {
                lambda_runtime_api_client::body::Body::new(super::body::TextBody::from(text))
            })?,
        Err(diagnostic) => builder
            .uri(format!("/2018-06-01/runtime/invocation/{id}/error"))
            .header("lambda-runtime-function-error-type", "unhandled")
            .body(serde_json::to_vec(&diagnostic)?.into())?,
    };
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::Module;
    use crate::transport::system_token::TokenSet;

    fn app_with_big_answer(bytes: usize) -> LambdaApp {
        let mut m = Module::new();
        m.raw("big", move |_inv, _o: Value| async move {
            Ok::<_, crate::ExtError>(Value::String("x".repeat(bytes)))
        });
        let ext = Extension::builder().diy(m).build().expect("extension");
        LambdaApp {
            http: HttpApp::new(ext, TokenSet::default(), 1 << 20),
            consumers: Vec::new(),
        }
    }

    fn envelope() -> Value {
        // maxResponseSize far above Lambda's limit: only the platform's limit applies.
        serde_json::json!({"diy": true, "function": "big", "options": {}, "maxResponseSize": 1e9})
    }

    /// An answer over Lambda's 6 MB would come back as the platform's `ResponseSizeTooLarge`;
    /// it is the protocol's size error instead.
    #[tokio::test]
    async fn an_answer_over_lambdas_limit_is_the_size_error() {
        let app = app_with_big_answer(RESPONSE_LIMIT + 10);
        let out = handle(app, LambdaEvent::new(envelope(), Default::default())).await;
        let err = out.expect_err("over the limit");
        assert!(
            err.error_message.contains("response_size_exceeded")
                && err.error_message.contains(&RESPONSE_LIMIT.to_string()),
            "{}",
            err.error_message
        );

        let small = app_with_big_answer(1000);
        let ok = handle(small, LambdaEvent::new(envelope(), Default::default())).await;
        assert!(ok.is_ok());
    }

    /// An answer over Lambda's 6 MB (the protocol's own `maxResponseSize` far above it) was
    /// never delivered: the dedup keys its call marked are forgotten, so the retried page finds
    /// its records new. A delivered answer keeps them.
    #[tokio::test]
    async fn the_keys_of_an_answer_over_lambdas_limit_are_forgotten() {
        use crate::store::dedup::{Dedup, KeyFields, MemoryDedup, check_page};
        let dedup = Arc::new(Dedup::new(Arc::new(MemoryDedup::default())));
        let app = |bytes: usize| {
            let mut m = Module::new();
            m.raw("big", move |inv: crate::Invocation, _o: Value| async move {
                let page = [serde_json::json!({"id": 7})];
                check_page(&*inv.dedup()?, "big", &page, &["id".to_owned()], 1)
                    .await
                    .map_err(|e| crate::ExtError::new(e.to_string()))?;
                Ok::<_, crate::ExtError>(Value::String("x".repeat(bytes)))
            });
            let ext = Extension::builder()
                .diy(m)
                .services(crate::dispatch::Services::new().with_dedup(dedup.clone()))
                .build()
                .expect("extension");
            LambdaApp {
                http: HttpApp::new(ext, TokenSet::default(), 1 << 20),
                consumers: Vec::new(),
            }
        };
        let key = KeyFields::new(["id"])
            .unwrap()
            .key("big", &serde_json::json!({"id": 7}));
        let out = handle(
            app(RESPONSE_LIMIT + 10),
            LambdaEvent::new(envelope(), Default::default()),
        )
        .await;
        assert!(out.is_err());
        assert_eq!(dedup.check(&key).await.unwrap(), crate::Sighting::New);
        dedup.forget(&key).await.unwrap();
        let ok = handle(app(1000), LambdaEvent::new(envelope(), Default::default())).await;
        assert!(ok.is_ok());
        assert_eq!(dedup.check(&key).await.unwrap(), crate::Sighting::Duplicate);
    }

    #[test]
    fn detached_headers_hold_none_of_the_buffer_they_were_read_from() {
        let buffer = bytes::Bytes::from_static(b"req-1 x-secret");
        let mut h = http::HeaderMap::new();
        h.insert(
            "lambda-runtime-aws-request-id",
            http::HeaderValue::from_maybe_shared(buffer.slice(0..5)).unwrap(),
        );
        let mut secret = http::HeaderValue::from_maybe_shared(buffer.slice(6..)).unwrap();
        secret.set_sensitive(true);
        h.append("x-key", secret);
        let d = detached(h.clone());
        assert_eq!(d, h);
        assert!(d["x-key"].is_sensitive());
        let inside = |v: &http::HeaderValue| {
            let p = v.as_bytes().as_ptr() as usize;
            let b = buffer.as_ptr() as usize;
            p >= b && p < b + buffer.len()
        };
        assert!(h.values().all(inside));
        assert!(!d.values().any(inside));
    }

    /// AWS's own scheduled event (events/tick/scheduled-event.json, what an EventBridge rule
    /// without an input sends) runs the tick, as the envelope TickSchedule sends does.
    #[tokio::test]
    async fn aws_scheduled_events_run_the_tick() {
        let mut m = Module::new();
        m.utility("tick", |_inv, _o: Value| async move {
            Ok::<_, crate::ExtError>(serde_json::json!({"due": 0, "enqueued": 0}))
        });
        let ext = Extension::builder().diy(m).build().expect("extension");
        let app = LambdaApp {
            http: HttpApp::new(ext, TokenSet::default(), 1 << 20),
            consumers: Vec::new(),
        };
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/tick/scheduled-event.json"
        );
        let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(is_scheduled_event(&event));
        let scheduler = serde_json::json!({
            "version": "0", "id": "x", "detail-type": "Scheduled Event",
            "source": "aws.scheduler", "account": "1", "time": "2024-05-02T12:00:00Z",
            "region": "us-east-1", "resources": ["arn:aws:scheduler:::schedule/default/x"],
            "detail": "{}",
        });
        for e in [event, scheduler] {
            let out = handle(app.clone(), LambdaEvent::new(e, Default::default()))
                .await
                .unwrap_or_else(|d| panic!("{}", d.error_message));
            let v: Value = serde_json::from_slice(&out.into_bytes()).unwrap();
            assert_eq!(v, serde_json::json!({"due": 0, "enqueued": 0}));
        }
        // Another source's event, or one naming a function, is still read as an envelope.
        let other = serde_json::json!({"detail-type": "Scheduled Event", "source": "my.app"});
        assert!(!is_scheduled_event(&other));
        let named = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "function": "f"});
        assert!(!is_scheduled_event(&named));
    }

    #[test]
    fn the_function_url_size_error_is_a_422_document() {
        let v: Value = serde_json::from_str(&too_large_for_function_url()).unwrap();
        assert_eq!(v["statusCode"], 422);
        let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["errors"][0]["code"], "response_size_exceeded");
    }
}
