//! A tiny counting HTTP/1.1 reverse proxy, to measure AWS requests at the emulator boundary.
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

/// A running proxy; stops when dropped.
pub struct CountingProxy {
    addr: SocketAddr,
    counts: Counts,
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
        let task = tokio::spawn({
            let counts = counts.clone();
            async move {
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        continue;
                    };
                    let counts = counts.clone();
                    let upstream = upstream.clone();
                    let serial = serial.clone();
                    tokio::spawn(async move {
                        if let Err(e) = serve(client, &upstream, &counts, serial.as_ref()).await {
                            eprintln!("counting proxy: {e}");
                        }
                    });
                }
            }
        });
        Ok(Self { addr, counts, task })
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

async fn serve(
    client: TcpStream,
    upstream: &str,
    counts: &Counts,
    serial: Option<&Serial>,
) -> io::Result<()> {
    let mut pending = Vec::new();
    while let Some((head, body)) = read_message(&client, &mut pending, false).await? {
        let target = head.get("x-amz-target").unwrap_or("-").to_owned();
        if let Ok(mut c) = counts.lock() {
            *c.entry(target).or_insert(0) += 1;
        }
        let close = head
            .get("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        let turn = match serial {
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
}
