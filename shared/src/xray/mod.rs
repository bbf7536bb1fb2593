//! AWS X-Ray subsegments for sampled invocations.
//!
//! When a call's trace header (the Lambda Runtime API's `Lambda-Runtime-Trace-Id`, or a queued
//! message's `AWSTraceHeader`) says `Sampled=1` and names a `Root` and a `Parent`, every
//! outgoing HTTP request (`inv.http()`, one subsegment per request, retries included) and every
//! DynamoDB, KMS and SQS operation (one per operation, its attempts counted) becomes a
//! subsegment of the invocation's segment: `trace_id` = the header's `Root`, `parent_id` = its
//! `Parent` (the function segment Lambda records when tracing is `Active`).
//!
//! The documents follow the X-Ray daemon's UDP format (a `{"format":"json","version":1}`
//! header line, then one segment document per datagram): `name`, `id`, `trace_id`,
//! `parent_id`, `type: subsegment`, `start_time`/`end_time` (epoch seconds), `namespace`
//! (`remote` for HTTP, `aws` for the SDK), `http.request` (method, URL with query values
//! redacted) and `http.response` (status), `aws.operation`, `aws.retries`, and the flags
//! `error` (4xx), `throttle` (429, or an AWS throttling error) and `fault` (5xx, or no answer).
//!
//! They are kept with the call and handed, when the call ends, to a background thread that
//! sends them to `AWS_XRAY_DAEMON_ADDRESS` (read once at start-up): the call never waits on
//! the network, a full hand-off queue drops documents, and without a daemon (no address, or
//! nothing listening) they are lost silently. An unsampled call pays one scan of its trace
//! header: no allocation, no system call.

mod sink;
#[cfg(test)]
mod tests;

pub use sink::{MemorySink, SegmentSink, UdpSink};

use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// Subsegments a call holds before it hands them off early.
pub const FLUSH_AT: usize = 64;

static SINK: OnceLock<Arc<dyn SegmentSink>> = OnceLock::new();

/// Where segments go, set once at start-up (later calls are ignored); until then, and without
/// one, nothing is traced.
pub fn configure(sink: Arc<dyn SegmentSink>) {
    let _ = SINK.set(sink);
}

/// [`configure`] with the daemon at `value`, the value of `AWS_XRAY_DAEMON_ADDRESS`
/// (`host:port`, or the SDKs' `tcp:host:port udp:host:port` form), when it is set.
pub fn configure_daemon(value: Option<&str>) {
    if let Some(addr) = value.and_then(daemon_address) {
        configure(Arc::new(UdpSink::new(addr)));
    }
}

/// The UDP address in an `AWS_XRAY_DAEMON_ADDRESS` value.
pub fn daemon_address(value: &str) -> Option<std::net::SocketAddr> {
    use std::net::ToSocketAddrs;
    let udp = value
        .split_whitespace()
        .find_map(|p| p.strip_prefix("udp:"))
        .unwrap_or_else(|| value.trim());
    udp.to_socket_addrs().ok()?.next()
}

/// The parts of an X-Ray trace header (`Root=1-…;Parent=…;Sampled=1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceHeader<'a> {
    /// The trace id.
    pub root: Option<&'a str>,
    /// The id of the segment the call runs under.
    pub parent: Option<&'a str>,
    /// `Sampled=1`.
    pub sampled: bool,
}

impl<'a> TraceHeader<'a> {
    /// Read a header (unknown fields ignored; no allocation).
    pub fn parse(header: &'a str) -> Self {
        let mut h = Self::default();
        for part in header.split(';') {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            match k.trim() {
                "Root" => h.root = Some(v.trim()),
                "Parent" => h.parent = Some(v.trim()),
                "Sampled" => h.sampled = v.trim() == "1",
                _ => {}
            }
        }
        h
    }
}

tokio::task_local! {
    static CALL_TRACE: Arc<CallTrace>;
}

/// The subsegments of one sampled call.
pub struct CallTrace {
    trace_id: String,
    parent_id: String,
    sink: Arc<dyn SegmentSink>,
    pending: Mutex<Vec<String>>,
}

impl std::fmt::Debug for CallTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallTrace")
            .field("trace_id", &self.trace_id)
            .field("parent_id", &self.parent_id)
            .finish_non_exhaustive()
    }
}

impl CallTrace {
    /// The trace of a call with this trace header: `None` (nothing recorded) unless it is
    /// sampled, names its root and parent, and a daemon is configured.
    pub fn for_call(header: Option<&str>) -> Option<Arc<Self>> {
        let h = TraceHeader::parse(header?);
        if !h.sampled {
            return None;
        }
        Self::new(h, SINK.get()?.clone())
    }

    /// The trace of a call under `header`, sent to `sink` (when sampled, with root and parent).
    pub fn new(header: TraceHeader<'_>, sink: Arc<dyn SegmentSink>) -> Option<Arc<Self>> {
        match header {
            TraceHeader {
                root: Some(root),
                parent: Some(parent),
                sampled: true,
            } if !root.is_empty() && !parent.is_empty() => Some(Arc::new(Self {
                trace_id: root.to_owned(),
                parent_id: parent.to_owned(),
                sink,
                pending: Mutex::new(Vec::new()),
            })),
            _ => None,
        }
    }

    fn push(&self, doc: String) {
        let full = {
            let mut p = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            p.push(doc);
            p.len() >= FLUSH_AT
        };
        if full {
            self.finish();
        }
    }

    /// Hand what is pending to the sink (the dispatcher calls it when the call ends).
    pub fn finish(&self) {
        let docs =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if !docs.is_empty() {
            self.sink.send(docs);
        }
    }
}

/// The trace of the call this task works for, when it is sampled.
pub(crate) fn current() -> Option<Arc<CallTrace>> {
    CALL_TRACE.try_with(Clone::clone).ok()
}

/// Run `f` with `trace` as the current call's (a spawned task needs it scoped again). Not an
/// `async fn`, for the reason given at `log_buffer::scope`.
pub fn scope<F: std::future::Future>(
    trace: Option<Arc<CallTrace>>,
    f: F,
) -> impl std::future::Future<Output = F::Output> {
    match trace {
        Some(t) => futures_util::future::Either::Left(CALL_TRACE.scope(t, f)),
        None => futures_util::future::Either::Right(f),
    }
}

/// A random 64-bit id as 16 hex digits.
fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 8];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn now() -> f64 {
    crate::time::since_epoch().as_secs_f64()
}

/// One open subsegment; [`Subsegment::end`] records it.
#[derive(Debug, Clone)]
pub(crate) struct Subsegment {
    call: Arc<CallTrace>,
    start: f64,
}

/// How a traced operation ended.
#[derive(Debug, Default)]
pub(crate) struct Ending<'a> {
    pub name: &'a str,
    pub namespace: &'static str,
    pub http_request: Option<(&'a str, &'a str)>,
    pub status: Option<u16>,
    pub aws: Option<Value>,
    /// No answer (transport error, timeout).
    pub failed: Option<&'a str>,
    pub throttled: bool,
}

impl Subsegment {
    /// Start one, when this task's call is sampled (else `None`: nothing allocated).
    pub(crate) fn start() -> Option<Self> {
        let call = current()?;
        Some(Self { call, start: now() })
    }

    /// Record it, ended now.
    pub(crate) fn end(self, e: Ending<'_>) {
        let mut doc = json!({
            "name": e.name,
            "id": new_id(),
            "trace_id": self.call.trace_id,
            "parent_id": self.call.parent_id,
            "type": "subsegment",
            "namespace": e.namespace,
            "start_time": self.start,
            "end_time": now().max(self.start),
        });
        let mut http = serde_json::Map::new();
        if let Some((method, url)) = e.http_request {
            http.insert("request".into(), json!({"method": method, "url": url}));
        }
        if let Some(s) = e.status {
            http.insert("response".into(), json!({"status": s}));
        }
        if !http.is_empty() {
            doc["http"] = Value::Object(http);
        }
        if let Some(aws) = e.aws {
            doc["aws"] = aws;
        }
        let status = e.status.unwrap_or(0);
        let throttle = e.throttled || status == 429;
        if throttle || (400..500).contains(&status) {
            doc["error"] = json!(true);
        }
        if throttle {
            doc["throttle"] = json!(true);
        }
        if status >= 500 || e.failed.is_some() {
            doc["fault"] = json!(true);
        }
        if let Some(why) = e.failed {
            doc["cause"] = json!({"exceptions": [{"id": new_id(), "message": why}]});
        }
        self.call.push(doc.to_string());
    }
}

/// The subsegment of one outgoing HTTP request (`inv.http()`): the hook the outgoing client
/// calls. `None`, at no cost, when the call is not sampled.
pub(crate) fn http_request() -> Option<Subsegment> {
    Subsegment::start()
}

/// End an HTTP request's subsegment: `host` its name, `url` as logs show it, `status` when an
/// answer came, else `error` (the failure's code).
pub(crate) fn http_end(
    s: Subsegment,
    method: &str,
    host: &str,
    url: &str,
    status: Option<u16>,
    error: Option<&str>,
) {
    s.end(Ending {
        name: host,
        namespace: "remote",
        http_request: Some((method, url)),
        status,
        failed: if status.is_none() {
            error.or(Some("no answer"))
        } else {
            None
        },
        ..Ending::default()
    });
}
