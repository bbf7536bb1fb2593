//! Buffered debug logs (`EXTENSION_LOG_BUFFER=on`): the
//! debug lines of a call that the log level would hide are kept, in a bounded buffer of that
//! call, and written only when the call fails (its answer is an error: the function returned
//! one, panicked or overran its deadline). A call that succeeds writes none of them.
//!
//! With the buffer on, the subscriber lets DEBUG events through ([`crate::telemetry`]); each
//! one that the configured level (`AWS_LAMBDA_LOG_LEVEL`/`RUST_LOG`) would not show is, inside
//! a call, redacted and appended to the call's buffer, and outside a call, dropped as before.
//! Lines the level shows are written at once, as always. The buffer keeps the last
//! [`MAX_BYTES`] of lines; when older ones had to make room, the flush says how many.
//!
//! Flushed lines come after the call's own error lines (they are written when the answer is
//! known), each as it was formatted at the time it was logged.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The most bytes of lines one call keeps.
pub const MAX_BYTES: usize = 64 * 1024;

static ON: AtomicBool = AtomicBool::new(false);

/// Turn buffering on or off for the process (at start-up, from `EXTENSION_LOG_BUFFER`).
pub fn enable(on: bool) {
    ON.store(on, Ordering::Relaxed);
}

/// Is buffering on?
pub fn enabled() -> bool {
    ON.load(Ordering::Relaxed)
}

tokio::task_local! {
    static CALL_LOGS: Arc<CallLogs>;
}

type Line = (Vec<u8>, Box<dyn Write + Send>);

#[derive(Default)]
struct State {
    lines: VecDeque<Line>,
    bytes: usize,
    dropped: usize,
    closed: bool,
}

/// The buffered lines of one call.
#[derive(Default)]
pub struct CallLogs {
    state: Mutex<State>,
}

impl std::fmt::Debug for CallLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallLogs").finish_non_exhaustive()
    }
}

impl CallLogs {
    /// A buffer for a new call when buffering is on.
    pub fn for_call() -> Option<Arc<Self>> {
        enabled().then(|| Arc::new(Self::default()))
    }

    /// Keep `line` (already redacted), to be written to `out` if the call fails.
    pub(crate) fn push(&self, line: Vec<u8>, out: Box<dyn Write + Send>) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.closed || line.len() > MAX_BYTES {
            // After the call ended (a task it left running), or one line bigger than the
            // whole buffer: counted, not kept.
            s.dropped += 1;
            return;
        }
        while s.bytes + line.len() > MAX_BYTES {
            let Some((old, _)) = s.lines.pop_front() else {
                break;
            };
            s.bytes -= old.len();
            s.dropped += 1;
        }
        s.bytes += line.len();
        s.lines.push_back((line, out));
    }

    /// The call ended: write its lines when it `failed`, else forget them.
    pub fn finish(&self, failed: bool) {
        let (lines, dropped) = {
            let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            s.closed = true;
            s.bytes = 0;
            (std::mem::take(&mut s.lines), std::mem::take(&mut s.dropped))
        };
        if !failed {
            return;
        }
        let mut first = true;
        for (line, mut out) in lines {
            if first && dropped > 0 {
                let note = if line.first() == Some(&b'{') {
                    format!(
                        "{{\"level\":\"WARN\",\"message\":\"{dropped} earlier debug lines of this call were dropped (the buffer keeps the last {MAX_BYTES} bytes)\"}}\n"
                    )
                } else {
                    format!(
                        "WARN {dropped} earlier debug lines of this call were dropped (the buffer keeps the last {MAX_BYTES} bytes)\n"
                    )
                };
                let _ = out.write_all(note.as_bytes());
            }
            first = false;
            let _ = out.write_all(&line);
            let _ = out.flush();
        }
    }
}

/// The buffer of the call this task works for, when buffering is on.
pub(crate) fn current() -> Option<Arc<CallLogs>> {
    if !enabled() {
        return None;
    }
    CALL_LOGS.try_with(Clone::clone).ok()
}

/// Run `f` with `logs` as the current call's buffer (a spawned task needs it scoped again).
/// Not an `async fn`: that would hold `f` twice (as its argument and inside the future it
/// awaits), and the scopes of a call nest (`dispatch::tests::a_calls_future_stays_small`).
pub fn scope<F: std::future::Future>(
    logs: Option<Arc<CallLogs>>,
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    match logs {
        Some(l) => futures_util::future::Either::Left(CALL_LOGS.scope(l, f)),
        None => futures_util::future::Either::Right(f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::{CallRequest, Extension, Invocation, Module, Stack};
    use crate::protocol::envelope::Envelope;
    use crate::telemetry::{LogCapture, subscriber_with};
    use crate::{ExtError, ExtResult};
    use serde_json::{Value, json};
    use std::time::{Duration, Instant};

    async fn ok(_inv: Invocation, _v: Value) -> ExtResult<Value> {
        tracing::debug!("debug-of-ok-call");
        tracing::info!("info-of-ok-call");
        Ok(json!(1))
    }
    async fn fails(_inv: Invocation, _v: Value) -> ExtResult<Value> {
        tracing::debug!(token = "buffer-secret-9Qz", "debug-of-failed-call");
        Err(ExtError::new("no"))
    }
    async fn panics(_inv: Invocation, _v: Value) -> ExtResult<Value> {
        tracing::debug!("debug-of-panicked-call");
        panic!("boom")
    }
    async fn overruns(_inv: Invocation, _v: Value) -> ExtResult<Value> {
        tracing::debug!("debug-of-late-call");
        tokio::time::sleep(Duration::from_secs(5)).await;
        Ok(json!(1))
    }
    async fn chatty(_inv: Invocation, _v: Value) -> ExtResult<Value> {
        for i in 0..5_000 {
            tracing::debug!("chatty-line-{i:05}-{}", "x".repeat(64));
        }
        Err(ExtError::new("no"))
    }

    fn extension() -> Extension {
        let mut m = Module::new();
        m.raw("ok", ok)
            .raw("fails", fails)
            .raw("panics", panics)
            .raw("overruns", overruns)
            .raw("chatty", chatty);
        Extension::builder().diy(m).build().expect("extension")
    }

    async fn run(ext: &Extension, function: &str) -> bool {
        ext.call(CallRequest {
            envelope: Envelope::from_body(
                json!({"diy": true, "function": function, "options": {"n": 1}}),
            ),
            stack: Stack::Http,
            request_id: "r".into(),
            trace_id: None,
            deadline: Some(Instant::now() + Duration::from_millis(400)),
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn debug_lines_are_written_only_for_a_failed_panicked_or_late_call() {
        enable(true);
        crate::telemetry::redact("buffer-secret-9Qz");
        let ext = extension();
        for json_format in [false, true] {
            let cap = LogCapture::new();
            let _g = tracing::subscriber::set_default(subscriber_with(
                cap.clone(),
                json_format,
                "info",
                true,
            ));
            tracing::callsite::rebuild_interest_cache();
            assert!(run(&ext, "ok").await);
            for f in ["fails", "panics", "overruns"] {
                assert!(!run(&ext, f).await, "{f}");
            }
            tracing::debug!("debug-outside-a-call");
            let out = cap.contents();
            assert!(out.contains("info-of-ok-call"), "{out}");
            assert!(!out.contains("debug-of-ok-call"), "{out}");
            for line in [
                "debug-of-failed-call",
                "debug-of-panicked-call",
                "debug-of-late-call",
            ] {
                assert!(out.contains(line), "{line} missing: {out}");
            }
            // The level hides it and no call failed: not written.
            assert!(!out.contains("debug-outside-a-call"), "{out}");
            // Buffered lines are redacted like the others.
            assert!(!out.contains("buffer-secret-9Qz"), "{out}");
        }
    }

    #[tokio::test]
    async fn a_chatty_call_keeps_its_last_lines_within_the_bound() {
        enable(true);
        let ext = extension();
        let cap = LogCapture::new();
        let _g =
            tracing::subscriber::set_default(subscriber_with(cap.clone(), false, "info", true));
        tracing::callsite::rebuild_interest_cache();
        assert!(!run(&ext, "chatty").await);
        let out = cap.contents();
        let kept: Vec<&str> = out.lines().filter(|l| l.contains("chatty-line-")).collect();
        let bytes: usize = kept.iter().map(|l| l.len() + 1).sum();
        assert!(bytes <= MAX_BYTES, "{bytes} bytes kept");
        assert!(kept.len() > 100, "{} lines kept", kept.len());
        // The last ones, and a note of how many earlier ones were dropped.
        assert!(
            kept.last().is_some_and(|l| l.contains("chatty-line-04999")),
            "{out}"
        );
        let note = format!(
            "{} earlier debug lines of this call were dropped",
            5_000 - kept.len()
        );
        assert!(
            out.contains(&note),
            "{note}: {}",
            &out[..out.len().min(400)]
        );
    }
}
