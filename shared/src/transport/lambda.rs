//! The Lambda transport on the official `lambda_runtime`.
//!
//! integrator.io's Lambda stack sends the envelope as the invocation's client context. The
//! runtime's own `ClientContext` type keeps only `client`/`custom`/`environment` and drops
//! `diy`, `function` and `type`, so [`ClientContextLayer`] (a `Runtime::layer` over
//! `LambdaInvocation`) reads the raw `Lambda-Runtime-Client-Context` header and hands it to the
//! handler through a task-local.
//!
//! One binary answers every event kind:
//! - client context present → integrator.io direct Invoke (payload = options);
//! - a Function URL / API Gateway HTTP API event → the server-stack routes via `lambda_http`;
//! - an event another component consumes (SQS batches: the queue worker, mounted by the startup
//!   module as an [`EventConsumer`]);
//! - anything else → the payload is a whole envelope (`sam local invoke -e`, queued messages).

use super::http::{HttpApp, HttpRequest};
use crate::dispatch::{CallRequest, Extension, Stack};
use crate::protocol::Envelope;
use crate::protocol::error::lambda_message;
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body};
use lambda_runtime::{Diagnostic, LambdaEvent, LambdaInvocation, Service};
use serde_json::Value;
use serde_json::value::RawValue;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

tokio::task_local! {
    static CLIENT_CONTEXT: Option<String>;
}

/// Header the Runtime API uses for the client context (plain JSON, not base64).
pub const CLIENT_CONTEXT_HEADER: &str = "lambda-runtime-client-context";

/// A `Runtime::layer` that exposes the raw client-context header to the handler.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientContextLayer;

impl<S> tower::Layer<S> for ClientContextLayer {
    type Service = ClientContextService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        ClientContextService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct ClientContextService<S> {
    inner: S,
}

impl<S> Service<LambdaInvocation> for ClientContextService<S>
where
    S: Service<LambdaInvocation, Response = (), Error = lambda_runtime::Error>,
{
    type Response = ();
    type Error = lambda_runtime::Error;
    type Future = tokio::task::futures::TaskLocalFuture<Option<String>, S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: LambdaInvocation) -> Self::Future {
        let raw = req
            .parts
            .headers
            .get(CLIENT_CONTEXT_HEADER)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|s| !s.trim().is_empty());
        CLIENT_CONTEXT.scope(raw, self.inner.call(req))
    }
}

/// The raw client context of the current invocation, if the layer saw one.
pub fn current_client_context() -> Option<String> {
    CLIENT_CONTEXT.try_with(Clone::clone).ok().flatten()
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

type HandlerResult = Result<Box<RawValue>, Diagnostic>;

fn raw(text: String) -> HandlerResult {
    RawValue::from_string(text).map_err(|e| Diagnostic {
        error_type: "Runtime.SerializationError".into(),
        error_message: e.to_string(),
    })
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
    let (envelope, stack) = match current_client_context() {
        Some(cc) => {
            // A client context that is not a JSON object yields an empty envelope, which then
            // fails validation with the usual 422 errors.
            let cc: Value = serde_json::from_str(&cc).unwrap_or(Value::Null);
            (
                Envelope::from_client_context(cc, payload),
                Stack::LambdaInvoke,
            )
        }
        None if is_http_event(&payload) => {
            return handle_http(app.http, payload, context, deadline).await;
        }
        None => {
            if let Some(c) = app.consumers.iter().find(|c| c.accepts(&payload)) {
                let ext = &app.http.extension;
                return raw(c
                    .consume(ext, payload, &context.request_id, deadline)
                    .await?);
            }
            (Envelope::from_body(payload), Stack::LambdaEnvelope)
        }
    };
    let call = CallRequest {
        envelope,
        stack,
        request_id: context.request_id.clone(),
        trace_id: context.xray_trace_id.clone(),
        deadline,
    };
    match app.http.extension.call(call).await {
        Ok(reply) => raw(reply.into_lambda()),
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
            let (parts, bytes) = resp.into_parts();
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
    let response = match adapter.call(LambdaEvent::new(request, context)).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let text = serde_json::to_string(&response).map_err(|e| Diagnostic {
        error_type: "Runtime.SerializationError".into(),
        error_message: e.to_string(),
    })?;
    raw(text)
}

/// Run the Lambda runtime loop with `app`.
pub async fn run(app: LambdaApp) -> Result<(), lambda_runtime::Error> {
    // The runtime's trace id (`Lambda-Runtime-Trace-Id`) is the invocation's: logged with every
    // call and forwarded on the messages it sends.
    let service = lambda_runtime::service_fn(move |event: LambdaEvent<Value>| {
        let trace_id = event.context.xray_trace_id.as_deref().map(Into::into);
        crate::telemetry::with_trace_id(trace_id, handle(app.clone(), event))
    });
    lambda_runtime::Runtime::new(service)
        .layer(lambda_runtime::layers::TracingLayer::new())
        .layer(ClientContextLayer)
        .run()
        .await
}
