//! HTTP/1.1 as the proxy needs it: read one whole message (head and `Content-Length` or
//! chunked body) off a connection, write bytes out, and forward a request upstream over a
//! fresh connection.

use std::io;
use tokio::net::TcpStream;

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

pub(super) async fn write_all(s: &TcpStream, mut data: &[u8]) -> io::Result<()> {
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
pub(super) struct Head {
    pub(super) start: String,
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
    pub(super) fn get(&self, name: &str) -> Option<&str> {
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
pub(super) fn dechunk(buf: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
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
pub(super) async fn read_message(
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

pub(super) async fn forward(upstream: &str, head: &Head, body: &[u8]) -> io::Result<Vec<u8>> {
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
