//! Logging set-up: plain text locally, JSON on Lambda (`AWS_LAMBDA_LOG_FORMAT=JSON`).
//!
//! The runtime logs the whole raw event at TRACE level, and integrator.io payloads carry
//! bearer tokens and connection data, so the Lambda runtime crates are capped at DEBUG whatever
//! level is asked for. The AWS SDK's runtime and the HTTP stack are capped the same way: at
//! TRACE the SDK logs every request it sends, body and headers included, and a KMS `Encrypt`
//! body carries the plaintext (base64) while the headers carry the session token.
//!
//! # Redaction
//!
//! Every secret the process loads (see [`crate::store::secrets::Secrets`]) is registered with
//! [`redact`]. The subscriber installed by [`init`] (and by [`subscriber_for`]) writes through a
//! [`RedactingWriter`]: each formatted event is buffered whole and every registered value is
//! replaced by [`REDACTED`] before the line reaches stderr, whatever the level, the format
//! (text or JSON) or the way the value was logged (`{}`, `{:?}`, inside a bigger `{:?}`).
//!
//! What it cannot catch: a value that is transformed before it is logged (a substring, a hash,
//! upper-cased, split across two events, or encoded in a way other than the ones listed in
//! [`redact`]). Never log secrets on purpose; redaction is the safety net.

use std::borrow::Cow;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use tracing::{Metadata, Subscriber};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

/// Targets capped at DEBUG. A target directive matches by prefix: `aws_smithy` covers
/// `aws_smithy_runtime`, `aws_smithy_http_client`…, `aws_sdk` every service client.
const RUNTIME_CAP: &str = "lambda_runtime=debug,lambda_runtime_api_client=debug,lambda_http=debug,\
aws_smithy=debug,aws_sigv4=debug,aws_runtime=debug,aws_config=debug,aws_credential_types=debug,\
aws_sdk=debug,hyper=debug,hyper_util=debug,h2=debug,rustls=debug";

/// What a registered value is replaced with.
pub const REDACTED: &str = "[REDACTED]";

/// Values shorter than this many bytes are not registered. A 1–3 byte "secret" (`"1"`, `"id"`,
/// `"abc"`) occurs inside almost every log line: replacing it would shred the logs (numbers,
/// words, JSON keys) and the pattern of `[REDACTED]` marks would itself reveal the value. Such a
/// value gives no protection anyway; real secrets are longer.
pub const MIN_REDACT_LEN: usize = 4;

/// Registered values (every encoded variant), longest first.
static REGISTRY: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Register `value` so that it never appears in the logs written by [`RedactingWriter`].
///
/// Besides the value itself, the forms it takes in log output are registered too: escaped as
/// `{:?}` prints it (quotes, backslashes, control characters), escaped as a JSON string (the
/// JSON log format), both (a `{:?}` field inside a JSON line) and standard base64 (how AWS
/// request bodies carry binary data). Values shorter than [`MIN_REDACT_LEN`] bytes are ignored
/// (see there why). Registering the same value twice is harmless.
pub fn redact(value: &str) {
    if value.len() < MIN_REDACT_LEN {
        return;
    }
    let debug = format!("{value:?}");
    let debug = unquote(&debug);
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = unquote(&json);
    let json_of_debug = serde_json::to_string(debug).unwrap_or_default();
    let json_of_debug = unquote(&json_of_debug);
    let b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(value.as_bytes())
    };
    let variants = [value, debug, json, json_of_debug, b64.as_str()];
    let mut reg = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    let mut changed = false;
    for v in variants {
        if v.len() >= MIN_REDACT_LEN && !reg.iter().any(|r| r == v) {
            reg.push(v.to_owned());
            changed = true;
        }
    }
    if changed {
        reg.sort_by_key(|r| std::cmp::Reverse(r.len()));
    }
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

/// `text` with every registered value replaced by [`REDACTED`] (overlapping or adjacent
/// occurrences become one mark).
pub fn redact_text(text: &str) -> Cow<'_, str> {
    let reg = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
    if reg.is_empty() {
        return Cow::Borrowed(text);
    }
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for pattern in reg.iter() {
        ranges.extend(
            text.match_indices(pattern.as_str())
                .map(|(i, m)| (i, i + m.len())),
        );
    }
    drop(reg);
    if ranges.is_empty() {
        return Cow::Borrowed(text);
    }
    ranges.sort_unstable();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    let mut iter = ranges.into_iter().peekable();
    while let Some((start, mut end)) = iter.next() {
        while let Some(&(s, e)) = iter.peek() {
            if s > end {
                break;
            }
            end = end.max(e);
            iter.next();
        }
        // Patterns and text are UTF-8, so matches start and end on character boundaries.
        out.push_str(&text[pos..start]);
        out.push_str(REDACTED);
        pos = end;
    }
    out.push_str(&text[pos..]);
    Cow::Owned(out)
}

/// A [`MakeWriter`] that redacts registered values (see [`redact`]) from everything written
/// through it. Each writer it makes buffers one formatted event and writes it, redacted, to the
/// inner writer when dropped (the `fmt` layer makes one writer per event), so a value is never
/// split between two writes.
///
/// With buffered debug logs ([`crate::log_buffer`]), an event the configured level would not
/// show goes to the call's buffer instead (or nowhere, outside a call).
#[derive(Debug, Clone, Default)]
pub struct RedactingWriter<M> {
    inner: M,
    /// The configured level, when debug lines are buffered.
    shown: Option<Targets>,
}

impl<M> RedactingWriter<M> {
    pub fn new(inner: M) -> Self {
        Self { inner, shown: None }
    }
    /// Events `shown` would not enable are buffered per call ([`crate::log_buffer`]).
    pub fn buffering(inner: M, shown: Targets) -> Self {
        Self {
            inner,
            shown: Some(shown),
        }
    }
    fn route(&self, meta: &Metadata<'_>) -> Route {
        match &self.shown {
            Some(t) if !t.would_enable(meta.target(), meta.level()) => {
                crate::log_buffer::current().map_or(Route::Nowhere, Route::Buffer)
            }
            _ => Route::Direct,
        }
    }
}

/// Where one event goes.
enum Route {
    Direct,
    Buffer(Arc<crate::log_buffer::CallLogs>),
    Nowhere,
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for RedactingWriter<M>
where
    M::Writer: Send + 'static,
{
    type Writer = RedactingGuard<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        RedactingGuard {
            inner: Some(self.inner.make_writer()),
            buf: Vec::new(),
            route: Route::Direct,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Self::Writer {
        RedactingGuard {
            inner: Some(self.inner.make_writer_for(meta)),
            buf: Vec::new(),
            route: self.route(meta),
        }
    }
}

/// One event's buffer; see [`RedactingWriter`].
pub struct RedactingGuard<W: Write + Send + 'static> {
    inner: Option<W>,
    buf: Vec<u8>,
    route: Route,
}

impl<W: Write + Send + 'static> Write for RedactingGuard<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !matches!(self.route, Route::Nowhere) {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }
    /// Does nothing: the event is written when the guard is dropped, whole.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for RedactingGuard<W> {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let clean = redact_text(&text);
        match (&self.route, self.inner.take()) {
            (Route::Direct, Some(mut inner)) => {
                let _ = inner.write_all(clean.as_bytes());
                let _ = inner.flush();
            }
            (Route::Buffer(logs), Some(inner)) => {
                logs.push(clean.into_owned().into_bytes(), Box::new(inner));
            }
            _ => {}
        }
        drop(text);
        // The unredacted text held the secret: do not leave it in freed memory.
        secrecy::zeroize::Zeroize::zeroize(&mut self.buf);
    }
}

/// An in-memory log sink (for tests): a cloneable [`MakeWriter`] whose output is read back with
/// [`LogCapture::contents`].
#[derive(Debug, Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn new() -> Self {
        Self::default()
    }
    /// Everything written so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

/// The writer of a [`LogCapture`].
pub struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = CaptureWriter;
    fn make_writer(&'a self) -> Self::Writer {
        CaptureWriter(self.0.clone())
    }
}

/// The subscriber [`init`] installs, writing to `make_writer` through a [`RedactingWriter`]:
/// `level` is a list of target directives (`info`, `trace`, `my_crate=debug,warn`…, matched
/// by target prefix, the longest match winning; an invalid one falls back to `info`), capped for
/// the runtime and SDK crates. (A `Targets` filter: `EnvFilter`'s span and field directives are
/// not supported, which keeps the regex engine out of every binary.) `json` selects the Lambda JSON
/// format, else compact text without colours.
///
/// Tests install it with `tracing::subscriber::with_default` (or `set_default`) over a
/// [`LogCapture`] to check what would reach the logs.
pub fn subscriber_for<W>(
    make_writer: W,
    json: bool,
    level: &str,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    for<'a> <W as MakeWriter<'a>>::Writer: Send + 'static,
{
    subscriber_with(make_writer, json, level, false)
}

/// [`subscriber_for`], with buffered debug logs when `buffer` ([`crate::log_buffer`]): DEBUG
/// events pass the filter, and those `level` would not show go to the call's buffer.
pub fn subscriber_with<W>(
    make_writer: W,
    json: bool,
    level: &str,
    buffer: bool,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
    for<'a> <W as MakeWriter<'a>>::Writer: Send + 'static,
{
    let shown: Targets = format!("{level},{RUNTIME_CAP}")
        .parse()
        .or_else(|_| format!("info,{RUNTIME_CAP}").parse())
        .unwrap_or_else(|_| Targets::new().with_default(tracing::Level::INFO));
    let debug = tracing::level_filters::LevelFilter::DEBUG;
    let (filter, writer) = if buffer {
        let raised = match shown.default_level() {
            Some(l) if l >= debug => shown.clone(),
            _ => shown.clone().with_default(debug),
        };
        (raised, RedactingWriter::buffering(make_writer, shown))
    } else {
        (shown, RedactingWriter::new(make_writer))
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(tracing::level_filters::LevelFilter::TRACE)
        .with_target(false)
        .with_writer(writer);
    if json {
        Box::new(
            builder
                .json()
                .flatten_event(true)
                // The call's span (request, trace, flow… ids) on every line as `span`.
                .with_current_span(true)
                .with_span_list(false)
                .without_time()
                .finish()
                .with(filter),
        )
    } else {
        Box::new(builder.with_ansi(false).compact().finish().with(filter))
    }
}

/// Install the global subscriber (stderr, redacting; JSON lines when `json`; `level` as in
/// `RUST_LOG`; debug lines buffered per call when `buffer`, see [`crate::log_buffer`]) and a
/// panic hook that logs through it. Safe to call twice.
pub fn init(json: bool, level: &str, buffer: bool) {
    crate::log_buffer::enable(buffer);
    let installed =
        tracing::subscriber::set_global_default(subscriber_with(io::stderr, json, level, buffer))
            .is_ok();
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

tokio::task_local! {
    /// The X-Ray trace header of the call this task works for (see [`with_trace_id`]).
    static TRACE_ID: Option<Arc<str>>;
}

/// Run `f` with `trace_id` as the current call's trace header: what [`current_trace_id`] gives
/// inside it (the SQS adapter forwards it as `AWSTraceHeader`). A task spawned inside does not
/// inherit it; the dispatcher scopes the function's task again. (Not an `async fn`, for the
/// reason given at `log_buffer::scope`.)
pub fn with_trace_id<F: std::future::Future>(
    trace_id: Option<Arc<str>>,
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    TRACE_ID.scope(trace_id, f)
}

/// The current call's trace header, if any (see [`with_trace_id`]).
pub fn current_trace_id() -> Option<Arc<str>> {
    TRACE_ID.try_with(Clone::clone).ok().flatten()
}

/// The message of a panic payload (`&str` or `String`), as the panic hook and the dispatcher
/// report it.
pub fn panic_text(p: &(dyn std::any::Any + Send)) -> &str {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("non-string panic payload")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn trace_id_is_scoped_to_the_call() {
        assert_eq!(current_trace_id(), None);
        let inside = with_trace_id(Some("Root=1-a".into()), async { current_trace_id() }).await;
        assert_eq!(inside.as_deref(), Some("Root=1-a"));
        assert_eq!(current_trace_id(), None);
    }

    #[test]
    fn short_values_are_ignored() {
        redact("xyz");
        assert_eq!(redact_text("xyz and more"), "xyz and more");
    }

    #[test]
    fn replaces_raw_and_escaped_forms() {
        let secret = "unit-\"quoted\"\\path-3f9a";
        redact(secret);
        let debug = format!("{secret:?}");
        let json = serde_json::to_string(secret).unwrap();
        let json_of_debug = serde_json::to_string(&debug).unwrap();
        for text in [secret.to_owned(), debug, json, json_of_debug] {
            let out = redact_text(&text);
            assert!(out.contains(REDACTED), "{text} -> {out}");
            assert!(!out.contains("3f9a"), "{text} -> {out}");
        }
        assert_eq!(redact_text("nothing here"), "nothing here");
    }

    #[test]
    fn overlapping_values_become_one_mark() {
        redact("overlap-AAAA-BBBB");
        redact("BBBB-CCCC-overlap");
        assert_eq!(
            redact_text("x overlap-AAAA-BBBB-CCCC-overlap y"),
            format!("x {REDACTED} y")
        );
    }

    #[test]
    fn writer_redacts_each_event_whole() {
        redact("writer-secret-77");
        let cap = LogCapture::new();
        let w = RedactingWriter::new(cap.clone());
        {
            let mut g = w.make_writer();
            // Written in pieces that split the value: still redacted, written at drop.
            g.write_all(b"a writer-sec").unwrap();
            g.write_all(b"ret-77 b\n").unwrap();
            g.flush().unwrap();
            assert_eq!(cap.contents(), "");
        }
        assert_eq!(cap.contents(), format!("a {REDACTED} b\n"));
    }

    #[test]
    fn sdk_and_runtime_trace_is_capped() {
        let cap = LogCapture::new();
        tracing::subscriber::with_default(subscriber_for(cap.clone(), false, "trace"), || {
            tracing::trace!(target: "aws_smithy_runtime::client::orchestrator", "sdk-trace-line");
            tracing::trace!(target: "aws_sigv4::http_request::sign", "sigv4-trace-line");
            tracing::trace!(target: "lambda_runtime::layers", "runtime-trace-line");
            tracing::debug!(target: "aws_smithy_runtime::client::orchestrator", "sdk-debug-line");
            tracing::trace!(target: "my_function", "app-trace-line");
        });
        let out = cap.contents();
        for hidden in ["sdk-trace-line", "sigv4-trace-line", "runtime-trace-line"] {
            assert!(!out.contains(hidden), "{out}");
        }
        assert!(
            out.contains("sdk-debug-line") && out.contains("app-trace-line"),
            "{out}"
        );
    }

    #[test]
    fn subscriber_redacts_text_and_json() {
        redact("subscriber-secret-42");
        for json in [false, true] {
            let cap = LogCapture::new();
            tracing::subscriber::with_default(subscriber_for(cap.clone(), json, "trace"), || {
                tracing::trace!(value = ?"subscriber-secret-42", "got {}", "subscriber-secret-42");
            });
            let out = cap.contents();
            assert!(!out.contains("subscriber-secret-42"), "{out}");
            assert!(out.contains(REDACTED), "{out}");
        }
    }
}
