//! Section 2 + 4, server stack with wrk (ours vs the Node reference stack), and peak RSS
//! under that load.

use super::memory::vm_hwm_kib;
use crate::Args;
use crate::driver::TOKEN;
use integration_tests::process::{self, Proc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const WRK_LUA: &str = r#"
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer SYS_TOKEN"
local f = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"p50_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"errors\":%d,\"non2xx\":%d}\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect + e.read + e.write + e.timeout, e.status))
end
"#;

#[derive(Clone, Debug, Default)]
pub(crate) struct WrkPoint {
    pub(crate) rps: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
}

fn wrk(addr: &str, body: &Path, lua: &Path, conns: usize, secs: u64) -> Option<WrkPoint> {
    let threads = conns.min(2);
    let out = Command::new("wrk")
        .args([
            "-t",
            &threads.to_string(),
            "-c",
            &conns.to_string(),
            "-d",
            &format!("{secs}s"),
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(lua)
        .arg(format!("http://{addr}/function"))
        .env("BENCH_BODY", body)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let json = text
        .lines()
        .find_map(|l| l.strip_prefix("BENCH_JSON "))
        .and_then(|j| serde_json::from_str::<Value>(j).ok());
    let Some(j) = json else {
        eprintln!(
            "wrk gave no result: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    };
    let g = |k: &str| j.get(k).and_then(Value::as_u64).unwrap_or(0);
    let dur = g("duration_us").max(1) as f64 / 1e6;
    Some(WrkPoint {
        rps: g("requests") as f64 / dur,
        p50_ms: g("p50_us") as f64 / 1e3,
        p99_ms: g("p99_us") as f64 / 1e3,
        requests: g("requests"),
        errors: g("errors") + g("non2xx"),
    })
}

/// POST `body` once with curl; the response body.
fn post_once(addr: &str, body: &Path) -> Option<Vec<u8>> {
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-H",
            "content-type: application/json",
        ])
        .args(["-H", &format!("authorization: Bearer {TOKEN}")])
        .arg("--data-binary")
        .arg(format!("@{}", body.display()))
        .arg(format!("http://{addr}/function"))
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

pub(crate) struct Scenario {
    pub(crate) label: String,
    pub(crate) function: &'static str,
    /// How the page's text is written (canonical: as integrator.io writes it).
    pub(crate) form: bench::Form,
    pub(crate) body_bytes: usize,
    pub(crate) identical: bool,
    /// serde_json parse + serialize of the request body alone, µs (median of 200).
    pub(crate) floor_us: f64,
    /// (concurrency, ours, node)
    pub(crate) points: Vec<(usize, Option<WrkPoint>, Option<WrkPoint>)>,
    /// (concurrency, the bare hyper echo of the request's bytes): the machine's limit.
    pub(crate) echo: Vec<(usize, Option<WrkPoint>)>,
    /// The same echo reading the body with serde_json first (`ECHO_READ=json`), concurrency 16:
    /// the limit for any server that reads its request's JSON once.
    pub(crate) echo_reading: Option<WrkPoint>,
}

/// The per-request JSON floor: parse the body into a `Value` and serialize it back (what any
/// server answering with the page must at least do), median of 200 runs, µs.
fn json_floor_us(body: &[u8]) -> f64 {
    let mut xs = Vec::with_capacity(200);
    for _ in 0..200 {
        let t0 = Instant::now();
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let out = serde_json::to_vec(&v).unwrap_or_default();
        std::hint::black_box(out);
        xs.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    bench::median(&xs)
}

pub(crate) struct ServerStack {
    pub(crate) scenarios: Vec<Scenario>,
    pub(crate) rss_ours_kib: Option<u64>,
    pub(crate) rss_node_kib: Option<u64>,
    pub(crate) rss_ours_idle_kib: Option<u64>,
    pub(crate) rss_node_idle_kib: Option<u64>,
    pub(crate) node_version: String,
}

pub(crate) fn server_stack(a: &Args, work: &Path) -> ServerStack {
    let lua = work.join("post.lua");
    std::fs::write(&lua, WRK_LUA).expect("write lua");
    let (ours, ours_addr): (Proc, String) = process::server(
        &a.bins.join("conformance-server"),
        &["--mode", "diy", "--port", "0"],
        &[("RUST_LOG", "warn")],
    );
    let node_dir = a.root.join("bench/node");
    let (node, node_addr): (Proc, String) = process::server(
        &PathBuf::from("node"),
        &[node_dir.join("server.js").to_string_lossy().as_ref()],
        &[("PORT", "0"), ("SYSTEM_TOKEN", TOKEN)],
    );
    let (echo, echo_addr): (Proc, String) =
        process::server(&a.bins.join("echo-server"), &[], &[("PORT", "0")]);
    let (echo_reading, echo_reading_addr): (Proc, String) = process::server(
        &a.bins.join("echo-server"),
        &[],
        &[("PORT", "0"), ("ECHO_READ", "json")],
    );
    let rss_ours_idle_kib = vm_hwm_kib(ours.id());
    let rss_node_idle_kib = vm_hwm_kib(node.id());
    let node_version = Command::new("node")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let mut scenarios = Vec::new();
    for (function, records, form) in [
        ("preMap", 100usize, bench::Form::Canonical),
        ("preSavePage", 1000usize, bench::Form::Canonical),
        // The same preMap page, one record in four as Python's json.dumps writes it.
        ("preMap", 100usize, bench::Form::PythonQuarter),
        // And pretty-printed, as a person or a script's debug output writes it.
        ("preMap", 100usize, bench::Form::Pretty),
    ] {
        let body = bench::envelope_in(function, records, form);
        let path = work.join(format!("{function}-{records}-{form:?}.json"));
        std::fs::write(&path, &body).expect("write body");
        let r1 = post_once(&ours_addr, &path);
        let r2 = post_once(&node_addr, &path);
        let identical = r1.is_some() && r1 == r2;
        if !identical {
            eprintln!(
                "{function}: responses differ (ours {} bytes, node {} bytes)",
                r1.as_ref().map_or(0, Vec::len),
                r2.as_ref().map_or(0, Vec::len)
            );
        }
        let mut points = Vec::new();
        for c in [1usize, 16, 64] {
            eprintln!("wrk: {function} {records} records, concurrency {c}");
            let o = wrk(&ours_addr, &path, &lua, c, a.wrk_secs);
            let n = wrk(&node_addr, &path, &lua, c, a.wrk_secs);
            points.push((c, o, n));
        }
        let mut echo_points = Vec::new();
        for c in [1usize, 16, 64] {
            eprintln!("wrk: {function} {records} records, concurrency {c}, bare hyper echo");
            echo_points.push((c, wrk(&echo_addr, &path, &lua, c, a.wrk_secs)));
        }
        eprintln!("wrk: {function} {records} records, concurrency 16, echo reading the JSON");
        let reading = wrk(&echo_reading_addr, &path, &lua, 16, a.wrk_secs);
        let floor_us = json_floor_us(&body);
        scenarios.push(Scenario {
            label: match form {
                bench::Form::Canonical => format!("{function}, {records} records"),
                _ => format!("{function}, {records} records, {form:?}"),
            },
            function,
            form,
            body_bytes: body.len(),
            identical,
            floor_us,
            points,
            echo: echo_points,
            echo_reading: reading,
        });
    }
    drop(echo);
    drop(echo_reading);
    ServerStack {
        scenarios,
        rss_ours_kib: vm_hwm_kib(ours.id()),
        rss_node_kib: vm_hwm_kib(node.id()),
        rss_ours_idle_kib,
        rss_node_idle_kib,
        node_version,
    }
}
