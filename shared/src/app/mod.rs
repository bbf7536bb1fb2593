//! The startup module: the one place a process is put together. It reads the [`settings`]
//! once, wires the stores of the selected backend into the services, mounts the
//! incoming endpoints and the queue worker on the transports, and runs.
//!
//! Two ways to start:
//! - [`start`]: a function binary. On Lambda (`AWS_LAMBDA_RUNTIME_API` set) it serves
//!   integrator.io's direct Invoke, Function URL requests and SQS batches; elsewhere the same
//!   routes on the local HTTP server (`HOST`/`PORT`).
//! - [`serve`]: the local HTTP server only, on a given address (the conformance server, tools).

mod call_once;
mod fixture;
pub mod settings;
mod wiring;

#[doc(hidden)]
pub use call_once::{call_envelope, call_once, options_of};
#[doc(hidden)]
pub use fixture::record_fixture;

use crate::dispatch::{Extension, Module};
use crate::incoming::IncomingConfig;
use crate::jobs::runs::Integrations;
use crate::transport::http::{HttpApp, LAMBDA_BODY_LIMIT, LOCAL_BODY_LIMIT};
use crate::transport::lambda::{EventConsumer, LambdaApp};
use crate::transport::server::InflightBudget;
use crate::transport::system_token::TokenSet;
use settings::{LogSettings, Settings};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;

type LocalServer = fn(Arc<HttpApp>, SocketAddr, InflightBudget) -> ServeFuture;
type ServeFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// What one binary serves: its functions (a module, or a whole extension with connector
/// modules), and optionally incoming endpoints, integrations (runs) and fixed tokens.
pub struct App {
    functions: Functions,
    incoming: Option<IncomingConfig>,
    incoming_required: bool,
    integrations: Option<Integrations>,
    tokens: Option<TokenSet>,
    /// How the binary serves outside Lambda; `None` leaves the local server out of the binary.
    local: Option<LocalServer>,
}

enum Functions {
    /// One module, served for `diy` and/or the configured connector ids.
    Module(Module),
    /// An extension built by the caller.
    Extension(Extension),
}

fn local_server(app: Arc<HttpApp>, addr: SocketAddr, budget: InflightBudget) -> ServeFuture {
    Box::pin(async move {
        crate::transport::server::serve_with_budget(app, addr, budget)
            .await
            .map_err(|e| e.to_string())
    })
}

impl App {
    /// Serve `module` (on Lambda, or on the local server elsewhere).
    pub fn new(module: Module) -> Self {
        Self::with(Functions::Module(module), Some(local_server))
    }
    /// Serve `module` on Lambda only: the local server is left out of the binary (smaller), and
    /// started elsewhere the binary exits with an error saying so.
    pub fn lambda_only(module: Module) -> Self {
        Self::with(Functions::Module(module), None)
    }
    /// Serve an extension built by the caller (several connector modules, fixed timeouts).
    pub fn extension(ext: Extension) -> Self {
        Self::with(Functions::Extension(ext), Some(local_server))
    }
    fn with(functions: Functions, local: Option<LocalServer>) -> Self {
        Self {
            functions,
            incoming: None,
            incoming_required: false,
            integrations: None,
            tokens: None,
            local,
        }
    }
    /// Also serve `POST /incoming/{endpoint}` with these endpoints (the environment's
    /// `EXTENSION_INCOMING_CONFIG` / `EXTENSION_INCOMING_ENDPOINTS` replace them when set).
    /// Without a queue for accepted events they are left out, with an error in the log.
    pub fn incoming(mut self, defaults: IncomingConfig) -> Self {
        self.incoming = Some(defaults);
        self
    }
    /// The endpoints are the binary's purpose: fail at start-up when they cannot be served.
    pub fn incoming_required(mut self) -> Self {
        self.incoming_required = true;
        self
    }
    /// Integrations this binary runs as runs and streams (started with the `startRun`
    /// utility; see [`crate::jobs::runs`]).
    pub fn integrations(mut self, integrations: Integrations) -> Self {
        self.integrations = Some(integrations);
        self
    }
    /// Fixed system tokens instead of the environment's (the conformance binaries).
    pub fn tokens(mut self, tokens: TokenSet) -> Self {
        self.tokens = Some(tokens);
        self
    }
}

impl From<Module> for App {
    fn from(module: Module) -> Self {
        App::new(module)
    }
}

impl From<Extension> for App {
    fn from(ext: Extension) -> Self {
        App::extension(ext)
    }
}

/// The multi-threaded runtime every binary uses: at least two workers, so the deadline timer
/// still fires while a handler hogs a thread.
#[doc(hidden)]
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().max(2)))
        .enable_all()
        .build()
}

fn init_logging() {
    let log = LogSettings::from_env();
    crate::telemetry::init(log.json, &log.level, log.buffer);
}

/// Run a function binary: on Lambda when `AWS_LAMBDA_RUNTIME_API` is set, otherwise on the
/// local HTTP server at `HOST`/`PORT`. Everything else comes from the environment
/// ([`settings`]).
pub fn start(app: impl Into<App>) -> ExitCode {
    launch(app.into(), None)
}

/// Run the local HTTP server at `addr` (whatever the environment says about Lambda).
pub fn serve(app: impl Into<App>, addr: SocketAddr) -> ExitCode {
    launch(app.into(), Some(addr))
}

fn launch(app: App, local_addr: Option<SocketAddr>) -> ExitCode {
    init_logging();
    crate::memory::at_start();
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            return ExitCode::FAILURE;
        }
    };
    crate::metrics::configure(settings.metrics.clone());
    crate::xray::configure_daemon(std::env::var("AWS_XRAY_DAEMON_ADDRESS").ok().as_deref());
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(start_async(app, settings, local_addr)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// Build the extension the settings describe from `module`.
fn extension_of(module: Module, settings: &Settings) -> Result<Extension, String> {
    let module = Arc::new(module);
    let mut b = Extension::builder();
    if settings.diy {
        b = b.diy((*module).clone());
    }
    for id in &settings.connector_ids {
        b = b.connector(id, module.clone());
    }
    if let Some(t) = settings.timeout {
        b = b.timeout(t);
    }
    b.build()
        .map_err(|e| format!("invalid extension configuration: {e}"))
}

async fn start_async(
    app: App,
    settings: Settings,
    local_addr: Option<SocketAddr>,
) -> Result<(), String> {
    let ext = match app.functions {
        Functions::Module(m) => extension_of(m, &settings)?,
        Functions::Extension(e) => e,
    };
    let wired = wiring::wire(&settings, app.integrations).await;
    let services = wired.services;
    let ext = ext.with_services(services.clone());
    if let Some(q) = &wired.local_queue {
        q.start(ext.clone());
    }
    let tokens = match app.tokens {
        Some(t) => crate::transport::system_token::SystemTokens::fixed(t),
        None => wiring::system_tokens(&settings, &services)
            .await
            .map_err(|e| e.to_string())?,
    };
    let incoming = match app.incoming {
        None => None,
        Some(defaults) => {
            wiring::incoming_app(&settings, &services, defaults, app.incoming_required)?
        }
    };
    tracing::info!(
        functions = %ext.describe(),
        endpoints = ?incoming.as_ref().map(|i| i.endpoint_names()),
        tokens = tokens.len(),
        backend = ?settings.backend,
        "extension loaded"
    );
    let on_lambda = settings.on_lambda && local_addr.is_none();
    let limit = if on_lambda {
        LAMBDA_BODY_LIMIT
    } else {
        LOCAL_BODY_LIMIT
    };
    let mut http = HttpApp::new(ext, tokens, limit);
    if let Some(i) = incoming {
        http = http.with_mount(Arc::new(i));
    }
    if on_lambda {
        let worker: Arc<dyn EventConsumer> = Arc::new(crate::worker::SqsWorker);
        let app = LambdaApp {
            http,
            consumers: vec![worker],
        };
        return crate::transport::lambda::run_concurrent(app, settings.lambda_concurrency)
            .await
            .map_err(|e| e.to_string());
    }
    let budget = settings
        .inflight_bytes
        .map_or_else(InflightBudget::default, InflightBudget::bytes);
    match app.local {
        Some(serve) => serve(http, local_addr.unwrap_or(settings.listen), budget).await,
        None => Err("this binary runs only on Lambda (AWS_LAMBDA_RUNTIME_API, e.g. `cargo lambda watch`); locally, `make serve` hosts every function".into()),
    }
}

/// What `set-secret NAME` does: validate, register the value for redaction, and store it
/// through the backend the environment selects (KMS `Encrypt` + `PutItem`, or the dev file),
/// retrying transient failures for up to 30 s. Returns the line to print:
/// `stored secret NAME (kms key …, table …)` or `stored secret NAME (dev file …)`.
#[doc(hidden)]
pub fn store_secret(
    name: &str,
    value: &crate::store::secrets::SecretString,
) -> Result<String, String> {
    use crate::store::secrets::{RetryPolicy, validate_name, validate_value, with_retries};
    use secrecy::ExposeSecret;
    init_logging();
    validate_name(name).map_err(|e| e.to_string())?;
    validate_value(name, value).map_err(|e| e.to_string())?;
    crate::telemetry::redact(value.expose_secret());
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    let rt = runtime().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async {
        let backend = wiring::secret_backend(&settings).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        with_retries(name, Some(deadline), RetryPolicy::default(), || {
            backend.store(name, value)
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok(format!("stored secret {name} ({})", backend.describe()))
    })
}
