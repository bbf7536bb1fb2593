//! Logging set-up: plain text locally, JSON on Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`).
//!
//! The runtime logs the whole raw event at TRACE level, and integrator.io payloads carry
//! bearer tokens and connection data, so the Lambda runtime crates are capped at DEBUG whatever
//! level is asked for.

use tracing_subscriber::EnvFilter;

const RUNTIME_CAP: &str = "lambda_runtime=debug,lambda_runtime_api_client=debug,lambda_http=debug";

/// Install the global subscriber and a panic hook that logs through it. Safe to call twice.
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into())
        .to_lowercase();
    let filter = EnvFilter::try_new(format!("{level},{RUNTIME_CAP}"))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
        || std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let installed = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .without_time()
            .try_init()
            .is_ok()
    } else {
        builder.with_ansi(false).compact().try_init().is_ok()
    };
    if installed {
        std::panic::set_hook(Box::new(|info| {
            let location = info
                .location()
                .map(|l| format!("{}:{}", l.file(), l.line()))
                .unwrap_or_default();
            tracing::error!(%location, "panic: {}", panic_text(info.payload()));
        }));
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}
