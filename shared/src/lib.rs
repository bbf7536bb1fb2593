//! # integrator-lambda
//!
//! Host integrator.io extension functions (hooks, wrappers, integration-app functions) on AWS
//! Lambda, byte-compatible with Celigo's Node `integrator-extension` framework on both of
//! integrator.io's stacks:
//!
//! - **Lambda stack**: direct Invoke, envelope in the client context ([`transport::lambda`]);
//! - **server stack**: `POST /function` with the system token, on a Function URL or the local
//!   server ([`transport::http`], [`transport::server`]).
//!
//! A function binary is a few lines:
//!
//! ```no_run
//! use integrator_lambda::{Module, protocol::types::*, dispatch::ExtResult, Invocation};
//!
//! async fn keep_all(_inv: Invocation, o: PreMapOptions) -> ExtResult<Vec<RecordResult>> {
//!     Ok(o.data.into_iter().map(RecordResult::keep).collect())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let mut m = Module::new();
//!     m.pre_map("keepAll", keep_all);
//!     integrator_lambda::run(m)
//! }
//! ```

pub mod aws;
pub mod config;
pub mod dispatch;
pub mod incoming;
pub mod jobs;
pub mod protocol;
pub mod telemetry;
pub mod time;
pub mod transport;
pub mod worker;

/// The global allocator with feature `mimalloc` (off by default): JSON pages are many small
/// allocations, and glibc's malloc/free took about a third of a call's CPU time under load
/// (perf); mimalloc gave about +25% requests/s but about 1.6× the peak RSS (`make bench`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use dispatch::{ExtError, ExtResult, Extension, Invocation, Module, Reply};

use std::process::ExitCode;
use std::sync::Arc;
use transport::auth::TokenSet;
use transport::http::{HttpApp, LAMBDA_BODY_LIMIT, LOCAL_BODY_LIMIT};

/// How a binary is served (see [`run_with`]).
#[derive(Default)]
pub struct RunOptions {
    /// Serve `POST /incoming/{endpoint}` with these endpoints (replaced by the environment's
    /// `EXTENSION_INCOMING_CONFIG` / `EXTENSION_INCOMING_ENDPOINTS` when set).
    pub incoming: Option<incoming::IncomingConfig>,
    /// The endpoints are the binary's purpose: fail at start-up when they cannot be served
    /// (e.g. no queue on Lambda). Otherwise the functions are served without them.
    pub incoming_required: bool,
    /// Fixed system tokens (the conformance binaries) instead of the environment's.
    pub tokens: Option<TokenSet>,
    /// Integrations this binary can run as runs and streams ([`jobs::runs`]); the run engine
    /// is offered to functions as `inv.service::<jobs::runs::Runs>()`.
    pub integrations: Option<jobs::runs::Integrations>,
}

/// Serve `module`: as a Lambda function when `AWS_LAMBDA_RUNTIME_API` is set, otherwise as the
/// local HTTP server. Configuration comes from the environment (see [`config`] and [`aws`]).
pub fn run(module: Module) -> ExitCode {
    run_with(module, RunOptions::default())
}

/// [`run`] with options (incoming endpoints, fixed tokens).
pub fn run_with(module: Module, options: RunOptions) -> ExitCode {
    telemetry::init();
    match config::extension_from_env(module) {
        Ok(ext) => serve(ext, options),
        Err(e) => {
            tracing::error!(error = %e, "invalid extension configuration");
            ExitCode::FAILURE
        }
    }
}

/// Serve an already-built [`Extension`] (e.g. with several connector modules).
pub fn run_extension(ext: Extension) -> ExitCode {
    serve(ext, RunOptions::default())
}

/// Serve `ext` with a fixed token set (the conformance binaries use `SYS_TOKEN`).
pub fn run_app(ext: Extension, tokens: TokenSet) -> ExitCode {
    serve(
        ext,
        RunOptions {
            tokens: Some(tokens),
            ..RunOptions::default()
        },
    )
}

/// The one serving path of every binary: build the AWS capabilities (secrets, dedup store,
/// idempotency store, queue) from the environment, hand them to the functions, resolve the
/// system token, add the incoming endpoints, then run on Lambda or locally.
pub fn serve(ext: Extension, options: RunOptions) -> ExitCode {
    serve_with(ext, options, |app| async move {
        transport::server::serve(app, config::listen_addr())
            .await
            .map_err(|e| e.to_string())
    })
}

/// [`run_with`] for a binary that only ever runs on Lambda (the queue worker): the local HTTP
/// server is left out of the binary (smaller, and `make serve` hosts every function locally
/// anyway). Started outside Lambda it exits with an error saying so.
pub fn run_lambda_only(module: Module, options: RunOptions) -> ExitCode {
    telemetry::init();
    match config::extension_from_env(module) {
        Ok(ext) => serve_with(ext, options, |_app| async {
            Err::<(), String>(
                "this binary runs only on Lambda (AWS_LAMBDA_RUNTIME_API, e.g. `cargo lambda watch`); locally, `make serve` hosts every function".into(),
            )
        }),
        Err(e) => {
            tracing::error!(error = %e, "invalid extension configuration");
            ExitCode::FAILURE
        }
    }
}

/// [`serve`] with the local (non-Lambda) serving path given by the caller.
fn serve_with<L, F>(ext: Extension, options: RunOptions, local: L) -> ExitCode
where
    L: FnOnce(Arc<HttpApp>) -> F,
    F: std::future::Future<Output = Result<(), String>>,
{
    telemetry::init();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        let caps = aws::Capabilities::from_env().await;
        let mut services = caps.services(ext.services());
        if let Some(integrations) = options.integrations {
            match caps.runs(integrations) {
                Some(runs) => {
                    services.insert(Arc::new(runs));
                }
                None => tracing::error!(
                    "runs disabled: EXTENSION_WORK_QUEUE_URL is not set, streams would have nowhere to go"
                ),
            }
        }
        let ext = ext.with_services(services);
        if let Some(local) = &caps.local_queue {
            local.start(ext.clone());
        }
        let tokens = match options.tokens {
            Some(t) => t,
            None => config::system_tokens(&caps.secrets)
                .await
                .map_err(|e| e.to_string())?,
        };
        if tokens.is_empty() {
            tracing::warn!(
                "{} is not set: POST /function will answer 401",
                config::TOKEN_VAR
            );
        }
        let incoming = match options.incoming {
            None => None,
            Some(defaults) => incoming_app(&caps, defaults, options.incoming_required)?,
        };
        tracing::info!(
            functions = %ext.describe(),
            endpoints = ?incoming.as_ref().map(|i| i.endpoint_names()),
            tokens = tokens.len(),
            backend = ?caps.backend,
            "extension loaded"
        );
        let on_lambda = config::on_lambda();
        let mut app = HttpApp::new(
            ext,
            tokens,
            if on_lambda {
                LAMBDA_BODY_LIMIT
            } else {
                LOCAL_BODY_LIMIT
            },
        );
        if let Some(i) = incoming {
            app = app.with_incoming(Arc::new(i));
        }
        if on_lambda {
            transport::lambda::run(app).await.map_err(|e| e.to_string())
        } else {
            local(app).await
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "stopped with an error");
            ExitCode::FAILURE
        }
    }
}

/// The incoming endpoints over the process's dedup store, queue and secret store.
fn incoming_app(
    caps: &aws::Capabilities,
    defaults: incoming::IncomingConfig,
    required: bool,
) -> Result<Option<incoming::IncomingApp>, String> {
    let config = incoming::IncomingConfig::from_env_or(defaults).map_err(|e| e.to_string())?;
    let outbox = match (&caps.outbox, caps.backend) {
        (Some(o), _) => o.clone(),
        (None, aws::Backend::Embedded) => {
            aws::queue::Outbox(Arc::new(aws::queue::MemoryQueue::default()))
        }
        (None, aws::Backend::Aws) => {
            let problem =
                "EXTENSION_QUEUE_URL is not set: accepted events would have nowhere to go";
            if required {
                return Err(problem.into());
            }
            tracing::error!("incoming endpoints disabled: {problem}");
            return Ok(None);
        }
    };
    if caps.backend == aws::Backend::Embedded {
        tracing::warn!("incoming: accepted events stay in this process (in-memory queue)");
    }
    let services = incoming::IncomingServices::new(caps.dedup.clone(), outbox)
        .with_resolver(caps.secrets.clone());
    incoming::IncomingApp::new(config, services)
        .map(Some)
        .map_err(|e| e.to_string())
}
/// The multi-threaded runtime every binary uses: at least two workers, so the deadline timer
/// still fires while a handler hogs a thread.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().max(2)))
        .enable_all()
        .build()
}
