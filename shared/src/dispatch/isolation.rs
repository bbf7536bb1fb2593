//! Step 3 of a call: the function run in its own task until the invocation's deadline, and
//! the future that names the request text its answer is written with.

use super::{CallFailure, Handler, Invocation, Reply};
use crate::protocol::{Options, WireError};
use std::sync::Arc;
use tracing::Instrument;

/// 3. Run in its own task until the invocation's deadline: a panic or an overrun becomes a 422,
///    never a dead process. A function that blocks its thread (CPU-bound, or a blocking call)
///    past the deadline still gets its 422 in time: the timer runs on another worker thread of
///    the multi-threaded runtime (at least two, see `app`). Rust cannot pre-empt a thread, so
///    the aborted task keeps that worker busy until the function next yields or returns; the
///    other workers go on serving (on Lambda, the next invocation).
pub(super) async fn run_isolated(
    handler: Arc<dyn Handler>,
    inv: Invocation,
    options: Options,
) -> Result<Reply, Vec<WireError>> {
    let function = inv.function.clone();
    let budget = inv.remaining();
    // `Handler::call` deserializes the options and calls the function (whose code up to its
    // first await may be synchronous) before it returns the future: all of it runs inside the
    // task, so a panic there is caught and its time counts against the deadline. The task
    // keeps the call's span, trace id, X-Ray trace and log buffer (a spawned task inherits none of them).
    let trace_id = inv.trace_id.clone();
    // The answer's records are mostly the request's: named, they are sent as slices of it.
    let source = options.source();
    let logs = crate::log_buffer::current();
    let xray = crate::xray::current();
    let call = crate::xray::scope(
        xray,
        crate::log_buffer::scope(
            logs,
            crate::telemetry::with_trace_id(
                trace_id,
                async move { handler.call(inv, options).await },
            ),
        ),
    );
    let call = Sourced {
        source,
        inner: Box::pin(call),
    };
    let mut task = tokio::spawn(call.in_current_span());
    match tokio::time::timeout(budget, &mut task).await {
        Err(_) => {
            task.abort();
            tracing::warn!(function = %function, budget_ms = budget.as_millis() as u64, "function overran its deadline");
            Err(vec![WireError::message_first(
                format!(
                    "Function {function} did not finish within its time budget of {:.3} s (the invocation deadline less a safety margin).",
                    budget.as_secs_f64()
                ),
                "timeout",
            )])
        }
        Ok(Err(join)) => {
            let detail = if join.is_panic() {
                crate::telemetry::panic_text(&*join.into_panic()).to_owned()
            } else {
                "task cancelled".into()
            };
            tracing::error!(function = %function, panic = %detail, "function panicked");
            Err(vec![WireError::message_first(
                format!("Function {function} panicked: {detail}"),
                "Error",
            )])
        }
        Ok(Ok(r)) => r.map_err(CallFailure::into_errors),
    }
}

/// A call's future, polled with the request text its records come from named
/// ([`crate::protocol::text::Source`]): what the function's answer is written with.
struct Sourced<F> {
    source: Option<bytes::Bytes>,
    inner: std::pin::Pin<Box<F>>,
}

impl<F: std::future::Future> std::future::Future for Sourced<F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let _named = crate::protocol::text::Source::set(self.source.clone());
        self.inner.as_mut().poll(cx)
    }
}
