//! The Runtime API loops: `/next`, answer, post the outcome, again; one loop for classic
//! Lambda ([`run`]) or many side by side in one process for Lambda Managed Instances
//! ([`run_concurrent`]), each invocation with its own client context and panic isolation.

use super::invocation::{CLIENT_CONTEXT, INVOCATION_ID_HEADER, Invocation};
use super::{HandlerResult, LambdaApp, handle, handle_invoke};
use crate::protocol::Options;
use futures_util::FutureExt;
use lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::Value;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tracing::Instrument;

const NEXT_PATH: &str = "/2018-06-01/runtime/invocation/next";

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
        let body = crate::transport::body::read_whole(body, declared).await?;
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
pub(super) fn detached(headers: http::HeaderMap) -> http::HeaderMap {
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
                lambda_runtime_api_client::body::Body::new(crate::transport::body::TextBody::from(
                    text,
                ))
            })?,
        Err(diagnostic) => builder
            .uri(format!("/2018-06-01/runtime/invocation/{id}/error"))
            .header("lambda-runtime-function-error-type", "unhandled")
            .body(serde_json::to_vec(&diagnostic)?.into())?,
    };
    Ok(request)
}
