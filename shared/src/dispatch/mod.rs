//! Dispatch: validate the envelope, pick the module and namespace, run the function in
//! isolation (panics caught, deadline enforced), check its answer.

pub mod checks;
pub(crate) mod handler;
pub mod kinds;
pub(crate) mod module;
pub(crate) mod services;

mod isolation;

pub use checks::invalid_settings;
#[doc(hidden)]
pub use handler::{CallFailure, Handler};
pub use handler::{ExtError, ExtResult, IntoReply, Invocation, Reply, Stack};
pub use module::{Module, Registration};
pub use services::Services;

use crate::protocol::envelope::{Envelope, namespace_for_type, truthy};
use crate::protocol::error::text;
use crate::protocol::{JsonText, Options, WireError};
use isolation::run_isolated;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Default time budget when the platform gives no deadline (local server, tests): Lambda's
/// recommended 300 s timeout for extension functions.
#[doc(hidden)]
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Neither a DIY module nor a connector module was given.
    #[error("Either DIY or connectors field needs to be set.")]
    NoModules,
    #[error("functions registered more than once: {}", .0.join(", "))]
    /// These functions (`diy:name`, `connector:name`) or connectors were registered twice.
    Duplicates(Vec<String>),
    #[error("connector id must not be empty")]
    /// A connector module was given an empty id.
    EmptyConnectorId,
}

/// The extension configuration: a DIY module and/or connector modules by `_connectorId`.
#[derive(Clone)]
pub struct Extension {
    diy: Option<Arc<Module>>,
    connectors: HashMap<String, Arc<Module>>,
    timeout: Duration,
    services: Arc<Services>,
}

/// Builds an [`Extension`].
#[derive(Default)]
pub struct ExtensionBuilder {
    diy: Option<Module>,
    connectors: Vec<(String, Arc<Module>)>,
    timeout: Option<Duration>,
    services: Option<Arc<Services>>,
}

impl ExtensionBuilder {
    /// Serve `module` for calls with a truthy `diy`.
    pub fn diy(mut self, module: Module) -> Self {
        self.diy = Some(module);
        self
    }
    /// Serve `module` for calls with `_connectorId == id` (case-sensitive).
    pub fn connector(mut self, id: impl Into<String>, module: impl Into<Arc<Module>>) -> Self {
        self.connectors.push((id.into(), module.into()));
        self
    }
    /// Time budget when the platform gives no deadline.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = Some(t);
        self
    }
    /// Services handed to every function ([`Invocation::services`]).
    pub fn services(mut self, services: impl Into<Arc<Services>>) -> Self {
        self.services = Some(services.into());
        self
    }
    /// The extension, or why it cannot be served (no module, duplicate names, empty ids).
    pub fn build(self) -> Result<Extension, ConfigError> {
        if self.diy.is_none() && self.connectors.is_empty() {
            return Err(ConfigError::NoModules);
        }
        let mut dups = Vec::new();
        if let Some(m) = &self.diy {
            dups.extend(m.duplicates().iter().map(|d| format!("diy:{d}")));
        }
        let mut connectors = HashMap::new();
        for (id, m) in self.connectors {
            if id.is_empty() {
                return Err(ConfigError::EmptyConnectorId);
            }
            dups.extend(m.duplicates().iter().map(|d| format!("{id}:{d}")));
            if connectors.insert(id.clone(), m).is_some() {
                dups.push(format!("connector {id}"));
            }
        }
        if !dups.is_empty() {
            return Err(ConfigError::Duplicates(dups));
        }
        Ok(Extension {
            diy: self.diy.map(Arc::new),
            connectors,
            timeout: self.timeout.unwrap_or(DEFAULT_TIMEOUT),
            services: self.services.unwrap_or_default(),
        })
    }
}

/// One call to dispatch, from any transport.
#[derive(Debug)]
#[doc(hidden)]
pub struct CallRequest {
    pub envelope: Envelope,
    pub stack: Stack,
    pub request_id: String,
    pub trace_id: Option<String>,
    /// The platform deadline (Lambda); `None` means "use the configured timeout".
    pub deadline: Option<Instant>,
}

/// The ids integrator.io puts in options, for the per-call log line.
#[derive(Debug, Default)]
struct LogIds {
    integration: Option<String>,
    flow: Option<String>,
    export: Option<String>,
    import: Option<String>,
    connection: Option<String>,
}

impl LogIds {
    fn from_options(options: Option<&Options>) -> Self {
        let Some(o) = options else {
            return Self::default();
        };
        let get = |k: &str| o.str_field(k);
        Self {
            integration: get("_integrationId"),
            flow: get("_flowId"),
            export: get("_exportId"),
            import: get("_importId"),
            connection: get("_connectionId"),
        }
    }
}

impl Extension {
    /// Start building an extension.
    pub fn builder() -> ExtensionBuilder {
        ExtensionBuilder::default()
    }

    /// Every function of the DIY module, for start-up logs.
    #[doc(hidden)]
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(m) = &self.diy {
            parts.push(format!("diy: {}", m.function_names().join(" ")));
        }
        for (id, m) in &self.connectors {
            parts.push(format!("connector {id}: {}", m.function_names().join(" ")));
        }
        parts.join("; ")
    }

    /// The time budget used when the platform gives no deadline.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same extension with `services` handed to its functions.
    pub fn with_services(mut self, services: impl Into<Arc<Services>>) -> Self {
        self.services = services.into();
        self
    }

    /// The services handed to every function.
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Validate and dispatch one call; errors come back as the wire error list (422).
    #[doc(hidden)]
    pub async fn call(&self, req: CallRequest) -> Result<Reply, Vec<WireError>> {
        let started = Instant::now();
        let function = req.envelope.function_name().unwrap_or("").to_owned();
        let type_name = req.envelope.type_name();
        let connector = req.envelope.connector_key();
        let ids = LogIds::from_options(req.envelope.options.as_ref());
        let records_in = crate::metrics::enabled()
            .then(|| req.envelope.options.as_ref().and_then(Options::records_in))
            .flatten();
        // The transport's trace id, else the one the Lambda runtime gave the invocation.
        let trace_id: Option<Arc<str>> = req
            .trace_id
            .as_deref()
            .map(Into::into)
            .or_else(crate::telemetry::current_trace_id);
        // Every line logged during the call (the function's own included: its task is
        // instrumented with this span too) carries these ids.
        let span = tracing::info_span!(
            "call",
            request_id = %req.request_id,
            trace_id = trace_id.as_deref().unwrap_or(""),
            function = %function,
            stack = ?req.stack,
            flow = ids.flow.as_deref().unwrap_or(""),
            export = ids.export.as_deref().unwrap_or(""),
            import = ids.import.as_deref().unwrap_or(""),
            connection = ids.connection.as_deref().unwrap_or(""),
        );
        // The dedup keys the call marks: forgotten here when it fails (its answer is an
        // error, not the records the marks stand for); kept when it succeeds, unless the
        // transport holds them until it has sent the answer (`store::dedup::held`).
        let outer = crate::store::dedup::held_marks();
        let marks = outer.clone().unwrap_or_default();
        let own_metrics =
            crate::custom_metrics::Metrics::for_call(|| crate::custom_metrics::CallInfo {
                function: function.clone(),
                extension_point: type_name.as_deref().unwrap_or("function").to_owned(),
                stack: format!("{:?}", req.stack),
                request_id: req.request_id.clone(),
                trace_id: trace_id.clone(),
            });
        // Buffered debug logs (`EXTENSION_LOG_BUFFER=on`): written below only if the call fails.
        let logs = crate::log_buffer::CallLogs::for_call();
        // X-Ray subsegments of a sampled call (`None` otherwise: nothing allocated).
        let xray = crate::xray::CallTrace::for_call(trace_id.as_deref());
        let traced = crate::telemetry::with_trace_id(
            trace_id.clone(),
            self.dispatch(
                req.envelope,
                req.stack,
                &req.request_id,
                trace_id.as_deref(),
                req.deadline,
                CallHeld {
                    marks: marks.clone(),
                    metrics: own_metrics.clone(),
                },
            ),
        );
        let result =
            crate::xray::scope(xray.clone(), crate::log_buffer::scope(logs.clone(), traced))
                .instrument(span.clone())
                .await;
        if let Some(x) = &xray {
            x.finish();
        }
        // The function's own metrics, before the answer (and whatever it is).
        own_metrics.flush();
        match &result {
            Err(_) => marks.forget().instrument(span.clone()).await,
            Ok(_) if outer.is_none() => marks.keep(),
            Ok(_) => {}
        }
        if let Some(logs) = &logs {
            logs.finish(result.is_err());
        }
        let _entered = span.enter();
        // A 422 carries messages built from outside data (a panic's text, serde's description
        // of the options, the function's own words): registered secrets never leave in them.
        let result = result.map_err(redact_errors);
        let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
        let status = if result.is_ok() { 200 } else { 422 };
        let first_error = result
            .as_ref()
            .err()
            .and_then(|e| e.first())
            .map(|e| e.code.as_ref())
            .unwrap_or("");
        tracing::info!(
            function = %function,
            r#type = type_name.as_deref().unwrap_or(""),
            connector = connector.as_deref().unwrap_or(""),
            integration = ids.integration.as_deref().unwrap_or(""),
            flow = ids.flow.as_deref().unwrap_or(""),
            export = ids.export.as_deref().unwrap_or(""),
            import = ids.import.as_deref().unwrap_or(""),
            connection = ids.connection.as_deref().unwrap_or(""),
            request_id = %req.request_id,
            trace_id = trace_id.as_deref().unwrap_or(""),
            stack = ?req.stack,
            duration_ms = format_args!("{elapsed_ms:.3}"),
            status,
            error = first_error,
            "extension call"
        );
        if crate::metrics::enabled() {
            let text = result.as_ref().ok().and_then(Reply::text);
            crate::metrics::call(crate::metrics::CallFigures {
                function: &function,
                extension_point: type_name.as_deref().unwrap_or("function"),
                stack: &format!("{:?}", req.stack),
                status,
                duration_ms: elapsed_ms,
                records_in,
                records_out: text.and_then(|t| crate::metrics::records_out(&t.outline())),
                // No result counts as Lambda's `null`.
                response_bytes: match &result {
                    Ok(r) => r.text().map_or(4, JsonText::len),
                    Err(_) => 0,
                },
            });
        }
        result
    }

    /// One call, step by step: validate → resolve → run isolated → size check. (The result
    /// contract of typed registrations is checked by the handler itself, as it turns the
    /// function's typed answer into JSON: see [`kinds`].)
    async fn dispatch(
        &self,
        mut env: Envelope,
        stack: Stack,
        request_id: &str,
        trace_id: Option<&str>,
        deadline: Option<Instant>,
        held: CallHeld,
    ) -> Result<Reply, Vec<WireError>> {
        let (module, function, options) = self.validate(&mut env)?;
        let (handler, namespace) = resolve(&module, &env, &function)?;
        let mut inv = self.invocation(
            &function,
            namespace.as_deref(),
            request_id,
            trace_id,
            deadline,
            stack,
        );
        inv.marks = held.marks;
        inv.metrics = held.metrics;
        inv.bearer = options
            .str_field("bearerToken")
            .filter(|t| !t.is_empty())
            .map(secrecy::SecretString::from);
        let reply = run_isolated(handler, inv, options).await?;
        check_size(&env, reply)
    }

    /// 1. Validation: every envelope error, in the reference's order; the module, the function
    ///    name and the options when there is none.
    fn validate(
        &self,
        env: &mut Envelope,
    ) -> Result<(Arc<Module>, String, Options), Vec<WireError>> {
        let mut errors = Vec::new();
        let module = if truthy(env.diy.as_ref()) {
            if self.diy.is_none() {
                errors.push(WireError::code_first(
                    "missing_required_field",
                    text::DIY_NOT_CONFIGURED,
                ));
            }
            self.diy.clone()
        } else if let Some(id) = env.connector_key() {
            let m = self.connectors.get(&id).cloned();
            if m.is_none() {
                errors.push(WireError::code_first(
                    "invalid_field",
                    text::CONNECTOR_NOT_FOUND,
                ));
            }
            m
        } else {
            errors.push(WireError::code_first(
                "missing_required_field",
                text::NEED_DIY_OR_CONNECTOR,
            ));
            None
        };
        let function = if !truthy(env.function.as_ref()) {
            errors.push(WireError::code_first(
                "missing_required_field",
                text::MISSING_FUNCTION,
            ));
            None
        } else if let Some(Value::String(f)) = &env.function {
            Some(f.clone())
        } else {
            errors.push(WireError::code_first(
                "invalid_field",
                text::FUNCTION_NOT_STRING,
            ));
            None
        };
        if !env.options.as_ref().is_some_and(Options::truthy) {
            errors.push(WireError::code_first(
                "missing_required_field",
                text::MISSING_OPTIONS,
            ));
        }
        match (module, function, env.options.take(), errors.is_empty()) {
            (Some(module), Some(function), Some(options), true) => Ok((module, function, options)),
            _ => Err(errors),
        }
    }

    /// The handler's context: the deadline (the platform's, else the configured timeout) less a
    /// safety margin, and the services.
    fn invocation(
        &self,
        function: &str,
        namespace: Option<&str>,
        request_id: &str,
        trace_id: Option<&str>,
        deadline: Option<Instant>,
        stack: Stack,
    ) -> Invocation {
        let now = Instant::now();
        let hard_deadline = deadline.unwrap_or(now + self.timeout);
        let remaining = hard_deadline.saturating_duration_since(now);
        // Answer before the platform kills us: keep a tenth of the time (at most 1 s) for
        // serializing and posting the error.
        let budget = remaining.saturating_sub((remaining / 10).min(Duration::from_secs(1)));
        Invocation {
            function: function.into(),
            namespace: namespace.map(Into::into),
            request_id: request_id.into(),
            trace_id: trace_id.map(Into::into),
            deadline: now + budget,
            stack,
            services: self.services.clone(),
            marks: Default::default(),
            metrics: Default::default(),
            bearer: None,
        }
    }
}

/// What the dispatcher keeps of a call while its function runs: the dedup keys it marks and
/// its own metrics.
struct CallHeld {
    marks: crate::store::dedup::CallMarks,
    metrics: crate::custom_metrics::Metrics,
}

/// `errors` with every registered secret replaced in their messages.
fn redact_errors(mut errors: Vec<WireError>) -> Vec<WireError> {
    for e in &mut errors {
        if let std::borrow::Cow::Owned(clean) = crate::telemetry::redact_text(&e.message) {
            e.message = clean.into();
        }
    }
    errors
}

/// A resolved function: its handler and the namespace it was found in.
type Resolved = (Arc<dyn Handler>, Option<String>);

/// 2. Resolve: the namespace from `type` (1.0) or the top level (2.0); registered names only.
fn resolve(module: &Module, env: &Envelope, function: &str) -> Result<Resolved, Vec<WireError>> {
    let type_name = env.type_name();
    let namespace = type_name.as_deref().map(namespace_for_type);
    let handler = module
        .resolve(namespace, type_name.as_deref().unwrap_or(""), function)
        .map_err(|e| vec![e])?;
    Ok((handler, namespace.map(str::to_owned)))
}

/// 4. Size rule: UTF-16 code units of the compact JSON; `size == limit` passes. A text never
///    has more UTF-16 units than UTF-8 bytes, so the units are only counted when the byte length
///    alone is over the limit.
fn check_size(env: &Envelope, reply: Reply) -> Result<Reply, Vec<WireError>> {
    let limit = env.response_limit();
    let too_large = match &reply {
        Reply::Nothing => limit.exceeded_by(0),
        Reply::Json(s) => limit.exceeded_by(s.len()) && limit.exceeded_by(s.utf16_len()),
    };
    if too_large {
        return Err(vec![WireError::response_too_large(&limit.as_sent)]);
    }
    Ok(reply)
}

#[cfg(test)]
mod tests;
