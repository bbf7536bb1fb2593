//! **Diagnostics**: raw top-level functions for checking the hosting itself, served only by
//! the all-in-one `serve` binary (through [`crate::all`]), never by a per-extension-point
//! Lambda.
//!
//! - `panicDemo` panics, to show that a panicking function becomes a 422 error
//!   (`Function panicDemo panicked: panicDemo was asked to panic`) instead of a dead process.
//! - `sleepDemo` sleeps `options.ms` milliseconds, to exercise the deadline handling
//!   (a call that outlives its time budget gets a `timeout` error).

use integrator_lambda::{ExtError, ExtResult, Invocation, Module};
use serde_json::{Value, json};
use std::time::Duration;

/// Longest sleep `sleepDemo` accepts, in milliseconds (10 minutes).
pub const MAX_SLEEP_MS: u64 = 600_000;

/// The diagnostic functions: `panicDemo`, `sleepDemo` (top level, raw JSON).
pub fn module() -> Module {
    let mut m = Module::new();
    m.raw("panicDemo", panic_demo).raw("sleepDemo", sleep_demo);
    m
}

/// `panicDemo`: always panics with "panicDemo was asked to panic".
pub async fn panic_demo(_inv: Invocation, _options: Value) -> ExtResult<Value> {
    panic!("panicDemo was asked to panic")
}

/// `sleepDemo`: sleep `options.ms` milliseconds (absent: 0; larger values are capped at
/// [`MAX_SLEEP_MS`]; fractions are dropped), then answer `{"sleptMs": n}`. A negative or
/// non-numeric `ms` fails with `invalid_options`.
pub async fn sleep_demo(_inv: Invocation, options: Value) -> ExtResult<Value> {
    let ms = requested_ms(&options)?;
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(json!({ "sleptMs": ms }))
}

/// `options.ms` as whole milliseconds, capped at [`MAX_SLEEP_MS`].
fn requested_ms(options: &Value) -> ExtResult<u64> {
    match options.get("ms") {
        None | Some(Value::Null) => Ok(0),
        Some(v) => match v.as_f64() {
            Some(n) if n >= 0.0 && n.is_finite() => Ok((n as u64).min(MAX_SLEEP_MS)),
            _ => Err(ExtError::with_code(
                "invalid_options",
                "options.ms must be a non-negative number of milliseconds.",
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Invocation {
        Invocation::for_test("sleepDemo", Duration::from_secs(5))
    }

    #[tokio::test]
    async fn sleeps_and_reports() {
        assert_eq!(
            sleep_demo(inv(), json!({"ms": 5})).await,
            Ok(json!({"sleptMs": 5}))
        );
        assert_eq!(
            sleep_demo(inv(), json!({})).await,
            Ok(json!({"sleptMs": 0}))
        );
        assert_eq!(
            sleep_demo(inv(), json!({"ms": 1.9})).await,
            Ok(json!({"sleptMs": 1}))
        );
    }

    #[test]
    fn caps_long_sleeps() {
        assert_eq!(requested_ms(&json!({"ms": 10_000_000})), Ok(MAX_SLEEP_MS));
        assert_eq!(requested_ms(&json!({"ms": 600_000})), Ok(MAX_SLEEP_MS));
        assert_eq!(requested_ms(&json!({"ms": null})), Ok(0));
    }

    #[tokio::test]
    async fn rejects_bad_durations() {
        for bad in [json!(-1), json!("5"), json!([5])] {
            let err = sleep_demo(inv(), json!({ "ms": bad })).await.unwrap_err();
            assert_eq!(err.code.as_deref(), Some("invalid_options"));
        }
    }

    #[tokio::test]
    #[should_panic(expected = "panicDemo was asked to panic")]
    async fn panic_demo_panics() {
        let _ = panic_demo(inv(), json!({})).await;
    }
}
