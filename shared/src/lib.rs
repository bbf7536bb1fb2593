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
pub mod protocol;
pub mod telemetry;
pub mod transport;

pub use dispatch::{ExtError, ExtResult, Extension, Invocation, Module, Reply};

use std::process::ExitCode;
use transport::http::{HttpApp, LAMBDA_BODY_LIMIT, LOCAL_BODY_LIMIT};

/// Serve `module`: as a Lambda function when `AWS_LAMBDA_RUNTIME_API` is set, otherwise as the
/// local HTTP server. Configuration comes from the environment (see [`config`]).
pub fn run(module: Module) -> ExitCode {
    telemetry::init();
    match config::extension_from_env(module) {
        Ok(ext) => run_extension(ext),
        Err(e) => {
            tracing::error!(error = %e, "invalid extension configuration");
            ExitCode::FAILURE
        }
    }
}

/// Serve an already-built [`Extension`] (e.g. with several connector modules).
pub fn run_extension(ext: Extension) -> ExitCode {
    run_app(ext, config::tokens_from_env())
}

/// Serve `ext` with an explicit token set (the conformance binaries use a fixed token).
pub fn run_app(ext: Extension, tokens: transport::auth::TokenSet) -> ExitCode {
    telemetry::init();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if tokens.is_empty() {
        tracing::warn!(
            "{} is not set: POST /function will answer 401",
            config::TOKEN_VAR
        );
    }
    tracing::info!(functions = %ext.describe(), tokens = tokens.len(), "extension loaded");
    let result = rt.block_on(async move {
        if config::on_lambda() {
            transport::lambda::run(HttpApp::new(ext, tokens, LAMBDA_BODY_LIMIT))
                .await
                .map_err(|e| e.to_string())
        } else {
            transport::server::serve(
                HttpApp::new(ext, tokens, LOCAL_BODY_LIMIT),
                config::listen_addr(),
            )
            .await
            .map_err(|e| e.to_string())
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

/// The multi-threaded runtime every binary uses: at least two workers, so the deadline timer
/// still fires while a handler hogs a thread.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(2, |n| n.get().max(2)))
        .enable_all()
        .build()
}
