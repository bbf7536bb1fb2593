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
use lambda_http::request::LambdaRequest;
use lambda_http::{Adapter, Body};
use lambda_runtime::{Diagnostic, LambdaEvent, Service};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

mod invocation;
mod runtime_loop;

pub use invocation::{CLIENT_CONTEXT_HEADER, Invocation, current_client_context, deadline_instant};
#[cfg(test)]
use runtime_loop::detached;
pub use runtime_loop::{run, run_concurrent};

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
#[cfg(test)]
mod tests;
