//! Handler traits: what user functions look like and how they are called.

use crate::protocol::{JsonText, Options, WireError, text};
use serde::Serialize;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[doc(hidden)]
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Which transport a call arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stack {
    /// integrator.io's Lambda stack: direct Invoke with the envelope in the client context.
    LambdaInvoke,
    /// A Lambda invocation whose payload is the whole envelope (no client context).
    LambdaEnvelope,
    /// integrator.io's server stack: `POST /function`, on a Function URL or the local server.
    Http,
    /// A message of an SQS batch (the queue worker, [`crate::worker`]).
    Queue,
}

/// What a handler knows about the call it is serving.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub(crate) function: Arc<str>,
    pub(crate) namespace: Option<Arc<str>>,
    pub(crate) request_id: Arc<str>,
    pub(crate) trace_id: Option<Arc<str>>,
    pub(crate) deadline: Instant,
    pub(crate) stack: Stack,
    pub(crate) services: Arc<super::Services>,
    /// The dedup keys this call marks, forgotten when its answer is not delivered.
    pub(crate) marks: crate::store::dedup::CallMarks,
    /// The function's own metrics, written when the call ends.
    pub(crate) metrics: crate::custom_metrics::Metrics,
    /// The call's one-time `bearerToken` (for `inv.integrator()`), when it carries one.
    pub(crate) bearer: Option<secrecy::SecretString>,
}

impl Invocation {
    /// A context for unit tests of user functions.
    pub fn for_test(function: &str, time_left: Duration) -> Self {
        Self {
            function: function.into(),
            namespace: None,
            request_id: "test".into(),
            trace_id: None,
            deadline: Instant::now() + time_left,
            stack: Stack::Http,
            services: Default::default(),
            marks: Default::default(),
            metrics: crate::custom_metrics::Metrics::recording(),
            bearer: None,
        }
    }
    /// The same context with the call's `bearerToken` (for unit tests of functions that call
    /// back into integrator.io).
    pub fn with_bearer_token(mut self, token: &str) -> Self {
        self.bearer = Some(token.into());
        self
    }
    /// The same context with `services` (for unit tests of functions that use them).
    pub fn with_services(mut self, services: impl Into<Arc<super::Services>>) -> Self {
        self.services = services.into();
        self
    }
    /// Everything this deployment provides ([`Services`](super::Services)).
    pub fn services(&self) -> &super::Services {
        &self.services
    }
    /// The secret store; a 422 `secret_store_missing` when the deployment has none.
    pub fn secrets(&self) -> Result<Arc<crate::store::secrets::Secrets>, ExtError> {
        self.services.secrets()
    }
    /// The secret `name`, fetched within this call's deadline (cached, redacted from logs).
    pub async fn secret(&self, name: &str) -> Result<secrecy::SecretString, ExtError> {
        let store = self.services.secrets.clone().ok_or_else(|| {
            ExtError::with_code(
                "secret_store_missing",
                format!("secret {name} is needed but this deployment has no secret store"),
            )
        })?;
        Ok(store.get(name, Some(self.deadline)).await?)
    }
    /// The dedup store; a 422 `dedup_unavailable` when the deployment has none. The keys its
    /// page checks mark as new are held by this call and forgotten again when its answer is
    /// not delivered (the call fails, times out, or its answer is over the size limit), so
    /// the caller's retry finds them new ([`CallMarks`](crate::store::dedup::CallMarks)).
    pub fn dedup(&self) -> Result<Arc<crate::store::dedup::Dedup>, ExtError> {
        Ok(Arc::new(self.services.dedup()?.holding(self.marks.clone())))
    }
    /// The dedup keys this call's checks marked so far (see [`Invocation::dedup`]).
    pub fn dedup_marks(&self) -> &crate::store::dedup::CallMarks {
        &self.marks
    }
    /// The idempotency store; a 422 `idempotency_unavailable` when the deployment has none.
    pub fn idempotency(&self) -> Result<Arc<crate::store::idempotency::Idempotency>, ExtError> {
        self.services.idempotency()
    }
    /// Deferred invocations; a 422 `scheduler_unavailable` without a work queue.
    #[doc(hidden)]
    pub fn scheduler(&self) -> Result<Arc<crate::jobs::deferred::Scheduler>, ExtError> {
        self.services.scheduler()
    }
    /// The outgoing HTTP client of this call: bounded by its deadline, carrying its trace id,
    /// retrying, logging and measuring every request (see [`crate::outgoing`]).
    pub fn http(&self) -> crate::outgoing::Http {
        let trace = self
            .trace_id
            .clone()
            .or_else(crate::telemetry::current_trace_id);
        self.services.http_client().for_call(self.deadline, trace)
    }
    /// The integrator.io API client of this call, on its one-time `bearerToken` (see
    /// [`crate::outgoing::integrator`]). A call without a token gets a client whose every request
    /// fails with `integrator_token_missing` (a 422) and sends nothing.
    pub fn integrator(&self) -> crate::outgoing::integrator::Integrator {
        self.services
            .integrator_api()
            .client(self.integrator_http(), self.bearer.clone())
    }
    /// `inv.http()` ending a little before the call's deadline (a twentieth of the time left,
    /// at most 100 ms), so that an API that stalls fails the call with the client's own
    /// `integrator_timeout` rather than racing the call's `timeout`.
    fn integrator_http(&self) -> crate::outgoing::Http {
        let trace = self
            .trace_id
            .clone()
            .or_else(crate::telemetry::current_trace_id);
        let margin = (self.remaining() / 20).min(Duration::from_millis(100));
        self.services
            .http_client()
            .for_call(self.deadline - margin, trace)
    }
    /// The integrator.io API client on the stack's own API token (the secret
    /// `integrator-api-token`), for work that has no call token (queued jobs, schedules).
    pub async fn integrator_with_stack_token(
        &self,
    ) -> Result<crate::outgoing::integrator::Integrator, ExtError> {
        let token = self
            .secret(crate::outgoing::integrator::STACK_TOKEN_SECRET)
            .await?;
        Ok(self
            .services
            .integrator_api()
            .client(self.http(), Some(token)))
    }
    /// The cache of JSON values with a TTL; a 422 `cache_unavailable` when the deployment has
    /// none (see [`crate::store::cache`]).
    pub fn cache(&self) -> Result<Arc<crate::store::cache::Cache>, ExtError> {
        self.services.cache()
    }
    /// Runs and streams; a 422 `runs_unavailable` without integrations or a work queue.
    #[doc(hidden)]
    pub fn runs(&self) -> Result<Arc<crate::jobs::runs::Runs>, ExtError> {
        self.services.runs()
    }
    /// The function's own metrics: each value added is written as CloudWatch EMF with the
    /// call's dimensions when the call ends, before its answer (see [`crate::custom_metrics`]).
    /// Under [`Invocation::for_test`] they are only recorded
    /// ([`Metrics::recorded`](crate::custom_metrics::Metrics::recorded)).
    pub fn metrics(&self) -> &crate::custom_metrics::Metrics {
        &self.metrics
    }
    /// The function name integrator.io asked for.
    pub fn function(&self) -> &str {
        &self.function
    }
    /// The namespace it was found in (`hooks`, `wrappers`, …), or `None` at the top level.
    pub fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }
    /// The Lambda request id, or a generated id on the local server.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
    /// integrator.io's `traceid` header (server stack), when sent.
    pub fn trace_id(&self) -> Option<&str> {
        self.trace_id.as_deref()
    }
    /// When the handler's answer is due (the Lambda deadline less a safety margin, or the
    /// configured timeout locally). Past it, the caller gets a `timeout` error.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }
    /// Time left before [`Invocation::deadline`].
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
    /// Which integrator.io stack sent the call.
    pub fn stack(&self) -> Stack {
        self.stack
    }
}

/// The error a user function returns: integrator.io shows `message`, and `code` (default
/// `"Error"`), as `{"message":…,"code":…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtError {
    /// What integrator.io shows.
    pub message: String,
    /// A short machine-readable code; `None` is sent as `"Error"`.
    pub code: Option<String>,
}

impl ExtError {
    /// An error with this message and the default code.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: None,
        }
    }
    /// An error with this code and message.
    pub fn with_code(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: Some(code.into()),
        }
    }
    /// Any error, with its `Display` text as the message.
    pub fn from_error(e: impl std::error::Error) -> Self {
        Self::new(e.to_string())
    }
}

impl fmt::Display for ExtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(c) => write!(f, "{c}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ExtError {}

impl From<ExtError> for WireError {
    fn from(e: ExtError) -> Self {
        WireError::message_first(e.message, e.code.unwrap_or_else(|| "Error".into()))
    }
}

/// The result type of user functions.
pub type ExtResult<T> = Result<T, ExtError>;

/// A function's answer, already serialized (compact JSON with JavaScript number formatting).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// No result: an empty HTTP body, or `null` on Lambda.
    Nothing,
    /// The JSON text of the result (records passed through are slices of the request: see
    /// [`JsonText`]). `Reply::Json(text.into())` from a `String` or a `&'static str`.
    Json(JsonText),
}

impl Reply {
    /// `value` as JSON text (JavaScript's number format).
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, WireError> {
        text::to_text(value).map(Reply::Json).map_err(|_| {
            WireError::invalid_response(crate::protocol::error::text::NOT_SERIALIZABLE)
        })
    }
    /// The text Lambda receives (`null` for no result).
    #[doc(hidden)]
    pub fn into_lambda(self) -> JsonText {
        match self {
            Reply::Nothing => JsonText::from("null"),
            Reply::Json(s) => s,
        }
    }
    /// The server-stack body (empty for no result).
    #[doc(hidden)]
    pub fn into_http(self) -> JsonText {
        match self {
            Reply::Nothing => JsonText::default(),
            Reply::Json(s) => s,
        }
    }
    /// The JSON text, when there is one.
    pub fn text(&self) -> Option<&JsonText> {
        match self {
            Reply::Nothing => None,
            Reply::Json(s) => Some(s),
        }
    }
}

/// Values a function may return. `()` and `None` mean "no result".
pub trait IntoReply: Send + 'static {
    /// Serialize the value (an error when it cannot be: a non-finite number, a map with
    /// non-string keys…).
    fn into_reply(self) -> Result<Reply, WireError>;
}

impl IntoReply for () {
    fn into_reply(self) -> Result<Reply, WireError> {
        Ok(Reply::Nothing)
    }
}

impl<T: Serialize + Send + 'static> IntoReply for Option<T> {
    fn into_reply(self) -> Result<Reply, WireError> {
        match self {
            None => Ok(Reply::Nothing),
            Some(v) => Reply::json(&v),
        }
    }
}

macro_rules! json_reply {
    ($($t:ty),* $(,)?) => {$(
        impl IntoReply for $t {
            fn into_reply(self) -> Result<Reply, WireError> {
                Reply::json(&self)
            }
        }
    )*};
}
use crate::protocol::types::*;
json_reply!(
    Value,
    Vec<Value>,
    Vec<crate::protocol::Record>,
    Vec<RecordResult>,
    Vec<SubmitResponse>,
    PreSavePageResult,
    PingResult,
    ExportResult,
    StepResult,
    PersistSettingsResult,
    serde_json::Map<String, Value>,
);

/// Why a call failed after dispatch; each becomes one wire error.
#[derive(Debug, thiserror::Error)]
#[doc(hidden)]
pub enum CallFailure {
    #[error("{0}")]
    Function(ExtError),
    #[error("options do not match {kind}: {detail}")]
    BadOptions { kind: &'static str, detail: String },
    #[error("{0}")]
    Contract(String),
    #[error("{}", .0.message)]
    Wire(WireError),
    /// A declared check failed ([`super::checks`]): every error, in order.
    #[error("{}", .0.first().map(|e| e.message.as_ref()).unwrap_or("invalid call"))]
    Invalid(Vec<WireError>),
}

impl CallFailure {
    /// The wire errors of this failure (several only for [`CallFailure::Invalid`]).
    pub fn into_errors(self) -> Vec<WireError> {
        match self {
            CallFailure::Invalid(errors) => errors,
            other => vec![other.into()],
        }
    }
}

impl From<CallFailure> for WireError {
    fn from(f: CallFailure) -> Self {
        match f {
            CallFailure::Function(e) => e.into(),
            CallFailure::BadOptions { kind, detail } => WireError::message_first(
                format!("The options do not match what {kind} expects: {detail}"),
                "invalid_options",
            ),
            CallFailure::Contract(msg) => WireError::invalid_response(Cow::Owned(msg)),
            CallFailure::Wire(w) => w,
            CallFailure::Invalid(errors) => errors
                .into_iter()
                .next()
                .unwrap_or_else(|| WireError::message_first("invalid call", "invalid_settings")),
        }
    }
}

/// A registered function, type-erased.
#[doc(hidden)]
pub trait Handler: Send + Sync + 'static {
    fn call(&self, inv: Invocation, options: Options) -> BoxFuture<Result<Reply, CallFailure>>;
}

/// A raw-JSON handler: options in as a `serde_json::Value`, any [`IntoReply`] out, no contract
/// checks. Used for utilities and for anything the typed kinds do not cover.
#[doc(hidden)]
pub struct RawFn<F>(pub F);

impl<F, Fut, R> Handler for RawFn<F>
where
    F: Fn(Invocation, Value) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ExtResult<R>> + Send + 'static,
    R: IntoReply,
{
    fn call(&self, inv: Invocation, options: Options) -> BoxFuture<Result<Reply, CallFailure>> {
        let options = match options.into_value() {
            Ok(v) => v,
            Err(e) => {
                return Box::pin(async move {
                    Err(CallFailure::BadOptions {
                        kind: "a raw function",
                        detail: e.to_string(),
                    })
                });
            }
        };
        let fut = (self.0)(inv, options);
        Box::pin(async move {
            let out = fut.await.map_err(CallFailure::Function)?;
            out.into_reply().map_err(CallFailure::Wire)
        })
    }
}
