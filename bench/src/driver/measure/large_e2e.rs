//! Section 3b, large page end to end: over HTTP (ours vs Node) and through the Lambda path.

use super::lambda_path::large_lambda;
use super::memory::vm_hwm_kib;
use crate::Args;
use crate::driver::TOKEN;
use integration_tests::process::{self, Proc};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Timed requests per server for the large page (after one warm-up request).
pub(crate) const LARGE_RUNS: usize = 10;

pub(crate) struct LargeRun {
    /// Per-request wall time, ms.
    pub(crate) ms: Vec<f64>,
    /// Peak RSS (`VmHWM`) of the serving process after the runs, KiB.
    pub(crate) peak_kib: Option<u64>,
    /// RSS at start, KiB.
    pub(crate) start_kib: Option<u64>,
}

pub(crate) struct LargeE2E {
    pub(crate) bytes: usize,
    pub(crate) records: usize,
    pub(crate) ours_http: Option<LargeRun>,
    pub(crate) node_http: Option<LargeRun>,
    pub(crate) lambda: Option<LargeRun>,
    /// The bare hyper echo (`echo-server`): the machine's limit for this page over HTTP.
    pub(crate) echo_http: Option<LargeRun>,
    /// Ours and Node answered the page with the same bytes.
    pub(crate) identical: bool,
    /// The same records written by other tools (`bench::Form`), over HTTP, ours and Node.
    pub(crate) forms: Vec<LargeForm>,
}

impl LargeE2E {
    /// The canonical page over HTTP: our median time and the bare echo's, ms.
    pub(crate) fn ours_and_echo_ms(&self) -> Option<(f64, f64)> {
        let med = |r: &Option<LargeRun>| r.as_ref().map(|r| bench::median(&r.ms));
        Some((med(&self.ours_http)?, med(&self.echo_http)?))
    }
}

/// The large page in one of the other writers' forms, over HTTP.
pub(crate) struct LargeForm {
    pub(crate) form: bench::Form,
    pub(crate) bytes: usize,
    pub(crate) ours: Option<LargeRun>,
    pub(crate) node: Option<LargeRun>,
    /// Ours and Node answered with the same bytes.
    pub(crate) identical: bool,
}

/// POST the page `LARGE_RUNS + 1` times, one at a time, to a freshly started server; the
/// first answer and the timings of the others. The first request goes through the tests' client
/// (which parses the answer fully, chunked or not: its body is compared with the other
/// server's); the timed ones through [`post_timed`], which reads the answer into one buffer
/// sized for it, so that the client's own copying weighs as little as it can on both servers.
fn large_http(addr: &str, body: &[u8], pid: u32) -> (Option<Vec<u8>>, Option<LargeRun>) {
    let start_kib = vm_hwm_kib(pid);
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("Content-Type", "application/json"),
        ("Authorization", auth.as_str()),
    ];
    let first =
        match integration_tests::http_client::send(addr, "POST", "/function", &headers, body) {
            Ok(r) if r.status == 200 => r.body,
            other => {
                eprintln!(
                    "large page over HTTP failed: {:?}",
                    other.map(|r| (r.status, r.text().chars().take(200).collect::<String>()))
                );
                return (None, None);
            }
        };
    let head = format!(
        "POST /function HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: {auth}\r\nContent-Length: {}\r\nAccept-Encoding: identity\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let mut ms = Vec::new();
    for _ in 0..LARGE_RUNS {
        let t0 = Instant::now();
        let r = post_timed(addr, &head, body, first.len());
        let took = t0.elapsed();
        match r {
            Ok((200, n)) if n == first.len() => ms.push(took.as_secs_f64() * 1000.0),
            other => {
                eprintln!("large page over HTTP failed: {other:?}");
                return (Some(first), None);
            }
        }
    }
    let peak_kib = vm_hwm_kib(pid);
    (
        Some(first),
        Some(LargeRun {
            ms,
            peak_kib,
            start_kib,
        }),
    )
}

/// One request (`head` then `body`) on a new connection; the answer's status and body length.
/// The answer is read to the end into a buffer with room for `expected` body bytes and a head.
fn post_timed(
    addr: &str,
    head: &str,
    body: &[u8],
    expected: usize,
) -> std::io::Result<(u16, usize)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::with_capacity(expected + 4096);
    s.read_to_end(&mut raw)?;
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "not an HTTP answer");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(bad)?;
    let status = std::str::from_utf8(raw.get(9..12).ok_or_else(bad)?)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(bad)?;
    Ok((status, raw.len() - end - 4))
}

/// The Node reference stack, freshly started, through [`large_http`].
fn node_large_http(a: &Args, body: &[u8]) -> (Option<Vec<u8>>, Option<LargeRun>) {
    let node_dir = a.root.join("bench/node");
    let (node, node_addr): (Proc, String) = process::server(
        &PathBuf::from("node"),
        &[node_dir.join("server.js").to_string_lossy().as_ref()],
        &[("PORT", "0"), ("SYSTEM_TOKEN", TOKEN)],
    );
    let out = large_http(&node_addr, body, node.id());
    drop(node);
    out
}

pub(crate) fn large_e2e(a: &Args, rt: &tokio::runtime::Runtime) -> LargeE2E {
    let (body, records) = bench::envelope_of_size(5 * 1024 * 1024);
    let (ours, ours_addr): (Proc, String) = process::server(
        &a.bins.join("conformance-server"),
        &["--mode", "diy", "--port", "0"],
        &[("RUST_LOG", "warn")],
    );
    let (ours_first, ours_http) = large_http(&ours_addr, &body, ours.id());
    drop(ours);
    let (node_first, node_http) = node_large_http(a, &body);
    let (echo, echo_addr): (Proc, String) =
        process::server(&a.bins.join("echo-server"), &[], &[("PORT", "0")]);
    let (_, echo_http) = large_http(&echo_addr, &body, echo.id());
    drop(echo);
    let identical = ours_first.is_some() && ours_first == node_first;
    if !identical {
        eprintln!("large page: ours and Node answered differently");
    }
    let options = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|mut v| v.get_mut("options").map(Value::take))
        .and_then(|o| serde_json::to_vec(&o).ok())
        .unwrap_or_default();
    let lambda = rt.block_on(large_lambda(&a.bins.join("conformance-lambda"), options));
    // The same page as other tools write it: each server freshly started again, so that each
    // peak RSS is this form's.
    let forms = [bench::Form::PythonQuarter, bench::Form::Pretty]
        .into_iter()
        .map(|form| {
            let (body, _) = bench::envelope_of_size_in(5 * 1024 * 1024, form);
            eprintln!("large page, {form:?}: {} bytes", body.len());
            let (ours, addr): (Proc, String) = process::server(
                &a.bins.join("conformance-server"),
                &["--mode", "diy", "--port", "0"],
                &[("RUST_LOG", "warn")],
            );
            let (ours_first, ours_run) = large_http(&addr, &body, ours.id());
            drop(ours);
            let (node_first, node_run) = node_large_http(a, &body);
            LargeForm {
                form,
                bytes: body.len(),
                identical: ours_first.is_some() && ours_first == node_first,
                ours: ours_run,
                node: node_run,
            }
        })
        .collect();
    LargeE2E {
        forms,
        bytes: body.len(),
        records,
        ours_http,
        node_http,
        lambda,
        echo_http,
        identical,
    }
}
