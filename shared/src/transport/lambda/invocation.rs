//! One invocation as the Runtime API hands it over: its request id, deadline and raw client
//! context, taken out of the `/next` response's headers before `lambda_runtime` could parse
//! them, and the task-local that carries the client context to the handler.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Header the Runtime API uses for the client context (plain JSON, not base64).
pub const CLIENT_CONTEXT_HEADER: &str = "lambda-runtime-client-context";
const REQUEST_ID_HEADER: &str = "lambda-runtime-aws-request-id";
const DEADLINE_HEADER: &str = "lambda-runtime-deadline-ms";
pub(super) const INVOCATION_ID_HEADER: &str = "lambda-runtime-invocation-id";

tokio::task_local! {
    pub(super) static CLIENT_CONTEXT: Option<String>;
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
