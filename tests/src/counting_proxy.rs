//! A tiny counting, fault-injecting HTTP/1.1 reverse proxy at the emulator boundary: it measures
//! AWS requests and, on request, breaks them.
//!
//! # Faults
//!
//! [`CountingProxy::inject`] adds a [`Rule`]: requests whose operation matches (`X-Amz-Target`
//! suffix such as `SendMessage` or `UpdateItem`, or a query-protocol `Action=`) are answered
//! with a [`Fault`] instead of being forwarded — an HTTP 500, a throttling error, a reset
//! connection, a stall longer than any client timeout, the reply lost after the emulator
//! applied the request (or held until after the client's timeout), or a callback (e.g. killing the function process: a crash point).
//! A rule hits the `skip`+1-th matching request and the `times` after it, or a seeded
//! pseudo-random share of them ([`Rule::with_probability`]): the same seed and the same request
//! order give the same faults.
//!
//! Point an SDK client at [`CountingProxy::endpoint`]; every request is read whole (head and
//! `Content-Length` or chunked body), counted by its `X-Amz-Target` header (e.g.
//! `DynamoDB_20120810.UpdateItem`; requests without one count as `-`), forwarded to the
//! upstream over a fresh connection with `Connection: close`, and the whole response is relayed
//! back with a `Content-Length`. Client connections are kept alive: several requests may
//! arrive on one connection, each counted and forwarded in turn.
//!
//! [`CountingProxy::start_serialized`] forwards one request at a time, in arrival order. moto's
//! threaded server does not serialize writes to one item (its `update_item` reads the item,
//! then creates it, with no lock), while DynamoDB does; serializing at the boundary restores
//! DynamoDB's per-item ordering for race tests, and the clients still race each other.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let proxy = integration_tests::counting_proxy::CountingProxy::start("http://127.0.0.1:5055").await?;
//! // … SDK calls against proxy.endpoint() …
//! assert_eq!(proxy.count("UpdateItem"), 1);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

type Counts = Arc<Mutex<HashMap<String, u64>>>;
type Serial = Arc<tokio::sync::Mutex<()>>;
type Rules = Arc<Mutex<Vec<RuleState>>>;

/// What a matching request gets instead of its answer.
#[derive(Clone)]
pub enum Fault {
    /// HTTP 500 with an `InternalFailure` error body (retryable for the SDK).
    Http500,
    /// HTTP 400 with this AWS error code (`ThrottlingException`,
    /// `ProvisionedThroughputExceededException`, …).
    Error(&'static str),
    /// The connection is reset before anything is answered (the request never arrives).
    Reset,
    /// The request is forwarded and applied, then the connection is reset: the client cannot
    /// tell whether it happened.
    LostReply,
    /// The request is forwarded and applied, then nothing is answered for this long (longer
    /// than the client's read timeout, so it gives up and retries), then the connection is
    /// closed: the reply arrives, if at all, after the client stopped waiting.
    LateReply(std::time::Duration),
    /// Nothing is answered for this long, then the connection is closed.
    Stall(std::time::Duration),
    /// Run this (e.g. kill the function process), then stall until the client gives up.
    Call(Arc<dyn Fn() + Send + Sync>),
}

impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Http500 => write!(f, "http-500"),
            Fault::Error(code) => write!(f, "{code}"),
            Fault::Reset => write!(f, "reset"),
            Fault::LostReply => write!(f, "lost-reply"),
            Fault::LateReply(d) => write!(f, "late-reply-{}ms", d.as_millis()),
            Fault::Stall(d) => write!(f, "stall-{}ms", d.as_millis()),
            Fault::Call(_) => write!(f, "crash-point"),
        }
    }
}

impl Fault {
    /// A crash point: SIGKILL the process whose id `pid` holds when the request is seen.
    pub fn kill(pid: Arc<std::sync::atomic::AtomicU32>) -> Self {
        Fault::Call(Arc::new(move || {
            let _ = std::process::Command::new("kill")
                .args([
                    "-9",
                    &pid.load(std::sync::atomic::Ordering::SeqCst).to_string(),
                ])
                .status();
        }))
    }

    /// A short name for reports.
    pub fn kind(&self) -> String {
        format!("{self:?}")
    }
}

/// When a fault applies.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The operation (`SendMessage`, `UpdateItem`…); `*` for every request.
    pub op: String,
    pub fault: Fault,
    /// Matching requests let through before the first fault.
    pub skip: u64,
    /// Faults in all (after `skip`); 0 for no limit.
    pub times: u64,
    /// A share in 0..=1 of the matching requests (after `skip`), drawn from a generator seeded
    /// with `seed`; 1 hits every one.
    pub probability: f64,
    pub seed: u64,
}

impl Rule {
    /// `fault` on the first request for `op`, once.
    pub fn once(op: &str, fault: Fault) -> Self {
        Self {
            op: op.into(),
            fault,
            skip: 0,
            times: 1,
            probability: 1.0,
            seed: 0,
        }
    }
    /// `fault` on every request for `op`.
    pub fn always(op: &str, fault: Fault) -> Self {
        Self {
            times: 0,
            ..Self::once(op, fault)
        }
    }
    /// Let `n` matching requests through first.
    pub fn after(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }
    /// At most `n` faults.
    pub fn times(mut self, n: u64) -> Self {
        self.times = n;
        self
    }
    /// A seeded share of the matching requests.
    pub fn with_probability(mut self, p: f64, seed: u64) -> Self {
        self.probability = p;
        self.seed = seed;
        self
    }
}

struct RuleState {
    rule: Rule,
    seen: u64,
    hit: u64,
    rng: u64,
}

impl RuleState {
    /// Whether this request gets the fault (and count it).
    fn fires(&mut self, op: &str) -> bool {
        if !matches_op(&self.rule.op, op) {
            return false;
        }
        self.seen += 1;
        if self.seen <= self.rule.skip || (self.rule.times > 0 && self.hit >= self.rule.times) {
            return false;
        }
        if self.rule.probability < 1.0 {
            // xorshift64*: deterministic for a seed and a request order.
            self.rng ^= self.rng >> 12;
            self.rng ^= self.rng << 25;
            self.rng ^= self.rng >> 27;
            let x = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11;
            if (x as f64) / ((1u64 << 53) as f64) >= self.rule.probability {
                return false;
            }
        }
        self.hit += 1;
        true
    }
}

fn matches_op(pattern: &str, op: &str) -> bool {
    pattern == "*" || op == pattern || op.ends_with(&format!(".{pattern}"))
}

/// A running proxy; stops when dropped.
pub struct CountingProxy {
    addr: SocketAddr,
    counts: Counts,
    rules: Rules,
    faults: Counts,
    task: JoinHandle<()>,
}

impl CountingProxy {
    /// Listen on 127.0.0.1 (any free port) and forward to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> io::Result<Self> {
        Self::start_with(upstream, None).await
    }

    /// Like [`CountingProxy::start`], but forwarding one request at a time (see the module
    /// docs).
    pub async fn start_serialized(upstream: &str) -> io::Result<Self> {
        Self::start_with(upstream, Some(Arc::default())).await
    }

    async fn start_with(upstream: &str, serial: Option<Serial>) -> io::Result<Self> {
        let upstream = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counts: Counts = Arc::default();
        let rules: Rules = Arc::default();
        let faults: Counts = Arc::default();
        let task = tokio::spawn({
            let counts = counts.clone();
            let rules = rules.clone();
            let faults = faults.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let shared = Shared {
                        counts: counts.clone(),
                        rules: rules.clone(),
                        faults: faults.clone(),
                        serial: serial.clone(),
                    };
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(client, &upstream, &shared).await {
                            eprintln!("counting proxy: {e}");
                        }
                    });
                }
            }
        });
        Ok(Self {
            addr,
            counts,
            rules,
            faults,
            task,
        })
    }

    /// Add a fault rule (rules are tried in the order added; the first that fires wins).
    pub fn inject(&self, rule: Rule) {
        if let Ok(mut r) = self.rules.lock() {
            let rng = rule.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            r.push(RuleState {
                rule,
                seen: 0,
                hit: 0,
                rng,
            });
        }
    }

    /// Remove every fault rule.
    pub fn clear_faults(&self) {
        if let Ok(mut r) = self.rules.lock() {
            r.clear();
        }
    }

    /// Faults injected so far, by kind.
    pub fn faults(&self) -> HashMap<String, u64> {
        self.faults.lock().map(|c| c.clone()).unwrap_or_default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, for `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen so far, by `X-Amz-Target`.
    pub fn counts(&self) -> HashMap<String, u64> {
        self.counts.lock().map(|c| c.clone()).unwrap_or_default()
    }

    /// Requests whose target is `op` or ends with `.op` (`"UpdateItem"` matches
    /// `DynamoDB_20120810.UpdateItem`).
    pub fn count(&self, op: &str) -> u64 {
        let suffix = format!(".{op}");
        self.counts()
            .into_iter()
            .filter(|(k, _)| k == op || k.ends_with(&suffix))
            .map(|(_, n)| n)
            .sum()
    }

    /// All requests seen so far.
    pub fn total(&self) -> u64 {
        self.counts().values().sum()
    }

    /// Forget the counts.
    pub fn reset(&self) {
        if let Ok(mut c) = self.counts.lock() {
            c.clear();
        }
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_some(s: &TcpStream, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        s.readable().await?;
        match s.try_read(&mut chunk) {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

async fn write_all(s: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        s.writable().await?;
        match s.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A parsed message head: the start line and the headers in order.
struct Head {
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(bytes: &[u8]) -> io::Result<Self> {
        let text = std::str::from_utf8(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "head is not UTF-8"))?;
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let headers = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            })
            .collect();
        Ok(Self { start, headers })
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn chunked(&self) -> bool {
        self.get("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }
    fn content_length(&self) -> io::Result<Option<usize>> {
        self.get("content-length")
            .map(|v| {
                v.parse::<usize>()
                    .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))
            })
            .transpose()
    }
    /// The head re-serialized without hop-by-hop and framing headers, plus `extra` lines.
    fn render(&self, extra: &[String]) -> Vec<u8> {
        const DROP: [&str; 5] = [
            "connection",
            "keep-alive",
            "proxy-connection",
            "transfer-encoding",
            "content-length",
        ];
        let mut out = format!("{}\r\n", self.start);
        for (k, v) in &self.headers {
            if !DROP.iter().any(|d| k.eq_ignore_ascii_case(d)) {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        for line in extra {
            out.push_str(line);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

/// Decode a chunked body at the start of `buf`: `Some((body, bytes consumed))` once complete.
fn dechunk(buf: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad chunked encoding");
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let Some(eol) = find(&buf[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = std::str::from_utf8(&buf[pos..pos + eol]).map_err(|_| bad())?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        pos += eol + 2;
        if size == 0 {
            // Trailers, up to an empty line.
            loop {
                let Some(eol) = find(&buf[pos..], b"\r\n") else {
                    return Ok(None);
                };
                pos += eol + 2;
                if eol == 0 {
                    return Ok(Some((body, pos)));
                }
            }
        }
        if buf.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

/// Read one message (head and body) from `s`, with `pending` holding bytes already read.
/// `None` when the peer closed before a new message began. `to_eof` reads a body without
/// framing up to the end of the stream (responses).
async fn read_message(
    s: &TcpStream,
    pending: &mut Vec<u8>,
    to_eof: bool,
) -> io::Result<Option<(Head, Vec<u8>)>> {
    let head_end = loop {
        if let Some(i) = find(pending, b"\r\n\r\n") {
            break i;
        }
        if read_some(s, pending).await? == 0 {
            if pending.is_empty() {
                return Ok(None);
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a message head",
            ));
        }
    };
    let head = Head::parse(&pending[..head_end])?;
    let mut rest: Vec<u8> = pending.split_off(head_end + 4);
    pending.clear();
    let body = if head.chunked() {
        loop {
            if let Some((body, used)) = dechunk(&rest)? {
                *pending = rest.split_off(used);
                break body;
            }
            if read_some(s, &mut rest).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a chunked body",
                ));
            }
        }
    } else if let Some(len) = head.content_length()? {
        while rest.len() < len {
            if read_some(s, &mut rest).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a body",
                ));
            }
        }
        *pending = rest.split_off(len);
        rest
    } else if to_eof {
        while read_some(s, &mut rest).await? > 0 {}
        rest
    } else {
        *pending = rest;
        Vec::new()
    };
    Ok(Some((head, body)))
}

async fn forward(upstream: &str, head: &Head, body: &[u8]) -> io::Result<Vec<u8>> {
    let up = TcpStream::connect(upstream).await?;
    let mut request = head.render(&[
        "Connection: close".to_owned(),
        format!("Content-Length: {}", body.len()),
    ]);
    request.extend_from_slice(body);
    write_all(&up, &request).await?;
    let mut pending = Vec::new();
    let (resp_head, resp_body) = read_message(&up, &mut pending, true)
        .await?
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "no response"))?;
    let mut response = resp_head.render(&[format!("Content-Length: {}", resp_body.len())]);
    response.extend_from_slice(&resp_body);
    Ok(response)
}

/// What every connection of one proxy shares.
struct Shared {
    counts: Counts,
    rules: Rules,
    faults: Counts,
    serial: Option<Serial>,
}

/// The operation of a request: its `X-Amz-Target`, else a query-protocol `Action=`, else `-`.
fn operation(head: &Head, body: &[u8]) -> String {
    if let Some(t) = head.get("x-amz-target") {
        return t.to_owned();
    }
    let query = head.start.split_whitespace().nth(1).unwrap_or_default();
    let form = std::str::from_utf8(body).unwrap_or_default();
    query
        .split(['?', '&'])
        .chain(form.split('&'))
        .find_map(|kv| kv.strip_prefix("Action="))
        .unwrap_or("-")
        .to_owned()
}

/// An AWS JSON-protocol error answer.
fn error_response(status: u16, reason: &str, code: &str) -> Vec<u8> {
    let body = format!(r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#);
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-ErrorType: {code}\r\nx-amzn-query-error: {code};Sender\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Reset `client` (RST, not FIN) and end the connection.
fn reset(client: TcpStream) -> io::Result<()> {
    client.set_zero_linger()?;
    drop(client);
    Ok(())
}

async fn serve(client: TcpStream, upstream: &str, shared: &Shared) -> io::Result<()> {
    let mut pending = Vec::new();
    while let Some((head, body)) = read_message(&client, &mut pending, false).await? {
        let target = operation(&head, &body);
        if let Ok(mut c) = shared.counts.lock() {
            *c.entry(target.clone()).or_insert(0) += 1;
        }
        let fault = shared.rules.lock().ok().and_then(|mut rules| {
            rules
                .iter_mut()
                .find_map(|r| r.fires(&target).then(|| r.rule.fault.clone()))
        });
        if let Some(fault) = fault {
            if let Ok(mut f) = shared.faults.lock() {
                *f.entry(fault.kind()).or_insert(0) += 1;
            }
            match fault {
                Fault::Http500 => {
                    write_all(
                        &client,
                        &error_response(500, "Internal Server Error", "InternalFailure"),
                    )
                    .await?;
                    continue;
                }
                Fault::Error(code) => {
                    write_all(&client, &error_response(400, "Bad Request", code)).await?;
                    continue;
                }
                Fault::Reset => return reset(client),
                Fault::LostReply => {
                    let _ = forward(upstream, &head, &body).await;
                    return reset(client);
                }
                Fault::LateReply(d) => {
                    let _ = forward(upstream, &head, &body).await;
                    tokio::time::sleep(d).await;
                    return Ok(());
                }
                Fault::Stall(d) => {
                    tokio::time::sleep(d).await;
                    return Ok(());
                }
                Fault::Call(f) => {
                    f();
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                    return Ok(());
                }
            }
        }
        let close = head
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let turn = match &shared.serial {
            Some(s) => Some(s.lock().await),
            None => None,
        };
        let forwarded = forward(upstream, &head, &body).await;
        drop(turn);
        let response = match forwarded {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("counting proxy: upstream failed: {e}");
                format!(
                    "HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{msg}",
                    msg.len()
                )
                .into_bytes()
            }
        };
        write_all(&client, &response).await?;
        if close {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dechunks_complete_bodies_only() {
        let full = b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\nNEXT";
        let (body, used) = dechunk(full).unwrap().unwrap();
        assert_eq!(body, b"Wikipedia");
        assert_eq!(&full[used..], b"NEXT");
        assert!(dechunk(&full[..10]).unwrap().is_none());
    }

    #[test]
    fn rules_fire_by_count_and_by_seeded_share() {
        let mut r = RuleState {
            rule: Rule::once("SendMessage", Fault::Reset).after(2),
            seen: 0,
            hit: 0,
            rng: 1,
        };
        let fired: Vec<bool> = (0..5).map(|_| r.fires("AmazonSQS.SendMessage")).collect();
        assert_eq!(fired, [false, false, true, false, false]);
        assert!(!r.fires("DynamoDB_20120810.UpdateItem"));
        let share = |seed| {
            let rule = Rule::always("*", Fault::Http500).with_probability(0.1, seed);
            let mut st = RuleState {
                rng: rule.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
                rule,
                seen: 0,
                hit: 0,
            };
            (0..10_000).filter(|_| st.fires("x")).count()
        };
        assert_eq!(share(7), share(7), "deterministic for a seed");
        assert!((800..1200).contains(&share(7)), "{}", share(7));
    }
}
