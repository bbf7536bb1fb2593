//! Report sections written by their own functions: 3b (large page end to end) and the second
//! half of 6 (cold `make test` build times).

use super::yes;
use crate::driver::measure::{LARGE_RUNS, LargeE2E, LargePage, LargeRun, PAIRED_RUNS, ServerStack};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// Section 3b: the large page end to end (HTTP ours vs Node, Lambda path), with its summary rows.
pub(crate) fn large_e2e_section(
    s: &mut String,
    summary: &mut Vec<(String, String, String, String)>,
    e: &LargeE2E,
    root: &Path,
) {
    let mib =
        |kib: Option<u64>| kib.map_or("n/a".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
    let page_mib = e.bytes as f64 / (1024.0 * 1024.0);
    let _ = writeln!(
        s,
        "### Large page end to end\n\nThe same {:.2} MB preSavePage page ({} records, `bench::envelope_of_size`) sent whole, \
         one request at a time, {LARGE_RUNS} timed requests after one warm-up ({PAIRED_RUNS} for ours over HTTP, taken in \
         turn with the bare echo's: see the machine's limit), each server freshly started (so its peak \
         RSS is this page's): over HTTP `POST /function` (a new connection per request; the answer read into one buffer sized for it) to \
         `conformance-server --mode diy` and to the Node reference stack; and through integrator.io's Lambda path, a \
         direct Invoke of `conformance-lambda` at the Runtime API double (envelope in the client context, options as \
         the payload; the time includes the Runtime API's HTTP transfer in and out). Both servers answer with the same \
         bytes: {}. Targets: HTTP ≥ 5× faster than Node; peak RSS ≤ 4× the page ({:.1} MiB).\n\n\
         | path | median ms | min ms | max ms | MB/s | peak RSS MiB | RSS at start MiB | peak RSS / page |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|",
        e.bytes as f64 / 1e6,
        e.records,
        yes(e.identical),
        4.0 * page_mib
    );
    let rows = [
        ("ours, HTTP", &e.ours_http),
        ("Node, HTTP", &e.node_http),
        ("ours, Lambda path", &e.lambda),
    ];
    for (label, run) in rows {
        match run {
            Some(r) if !r.ms.is_empty() => {
                let m = bench::median(&r.ms);
                let min = r.ms.iter().copied().fold(f64::MAX, f64::min);
                let max = r.ms.iter().copied().fold(0.0, f64::max);
                let per_page = r.peak_kib.map_or("n/a".to_owned(), |k| {
                    format!("{:.1}×", k as f64 / 1024.0 / page_mib)
                });
                let _ = writeln!(
                    s,
                    "| {label} | {m:.1} | {min:.1} | {max:.1} | {:.0} | {} | {} | {per_page} |",
                    e.bytes as f64 / 1e6 / (m / 1000.0),
                    mib(r.peak_kib),
                    mib(r.start_kib)
                );
            }
            _ => {
                let _ = writeln!(s, "| {label} | failed | | | | | | |");
            }
        }
    }
    let med = |r: &Option<LargeRun>| {
        r.as_ref()
            .filter(|r| !r.ms.is_empty())
            .map(|r| bench::median(&r.ms))
    };
    if let (Some(o), Some(n)) = (med(&e.ours_http), med(&e.node_http)) {
        let ratio = n / o.max(1e-9);
        let _ = writeln!(s, "\nNode / ours over HTTP: **{ratio:.2}×**.\n");
        summary.push((
            "Large page end to end over HTTP".into(),
            "≥ 5× faster than Node".into(),
            format!("{ratio:.2}× ({o:.1} ms vs {n:.1} ms)"),
            yes(ratio >= 5.0).into(),
        ));
    }
    for (label, run) in [("server", &e.ours_http), ("Lambda path", &e.lambda)] {
        if let Some(k) = run.as_ref().and_then(|r| r.peak_kib) {
            let x = k as f64 / 1024.0 / page_mib;
            summary.push((
                format!("Large page peak RSS, {label}"),
                "≤ 4× the page".into(),
                format!(
                    "{x:.1}× ({:.1} MiB for a {page_mib:.2} MiB page)",
                    k as f64 / 1024.0
                ),
                yes(x <= 4.0).into(),
            ));
        }
    }
    large_forms(s, summary, e);
    // The engine candidates: a hand-run table (not this run), kept in docs/json-candidates.md.
    if let Ok(t) = std::fs::read_to_string(root.join("docs/json-candidates.md")) {
        let _ = writeln!(
            s,
            "### Engine candidates (hand-run, not measured by this run)\n\nThe same page through each \
             candidate parser and writer, in `bench/json-candidates` (a crate outside the workspace, so \
             none of them is linked), copied from `docs/json-candidates.md`. On a machine shared with \
             other builds while it ran: compare within a table, not across.\n\n{}\n",
            t.trim()
        );
    }
    if let Some(l) = med(&e.lambda) {
        summary.push((
            "Large page through the Lambda path".into(),
            "end to end, Runtime API transfer included".into(),
            format!("{l:.1} ms (the same-run before/after ratio is in section 3)"),
            "reported".into(),
        ));
    }
}

/// Section 6, second half: the cold `make test` compile before and after the lean choices,
/// from `scripts/build-times.sh`'s JSON (measured by `make bench` before the release build).
pub(super) fn build_times_section(
    s: &mut String,
    summary: &mut Vec<(String, String, String, String)>,
    times: Option<&Value>,
) {
    let _ = writeln!(s, "### Cold `make test` build, before and after\n");
    let Some(t) = times else {
        let _ = writeln!(
            s,
            "Not measured in this run (`BENCH_BUILD_TIMES=0`, or `scripts/build-times.sh` failed).\n"
        );
        return;
    };
    let variants = t
        .get("variants")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let _ = writeln!(
        s,
        "`scripts/build-times.sh`: the working tree copied twice, each built cold in its own empty \
         target directory with the compile steps of `make test` (clippy on all targets, \
         `cargo build --workspace --bins`, `cargo test --workspace --no-run`), one after the \
         other on this machine ({} cores, {}), registry already downloaded. \"Before\" is the \
         same source with the lean choices undone in `[workspace.dependencies]`:\n",
        t.get("nproc").and_then(Value::as_u64).unwrap_or(0),
        t.get("rustc").and_then(Value::as_str).unwrap_or("rustc")
    );
    for v in &variants {
        if let Some(ch) = v.get("changes").and_then(Value::as_array)
            && !ch.is_empty()
        {
            for c in ch.iter().filter_map(Value::as_str) {
                let _ = writeln!(s, "- {c}");
            }
            s.push('\n');
        }
    }
    let _ = writeln!(
        s,
        "| variant | total s (wall) | clippy s | build bins s | test --no-run s | CPU s (user + sys) | crates compiled | aws-lc-sys | ring |\n|---|---:|---:|---:|---:|---:|---:|---|---|"
    );
    let num = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
    let step = |v: &Value, k: &str| {
        v.get("steps")
            .and_then(|x| x.get(k))
            .and_then(Value::as_f64)
            .map_or_else(|| "–".to_owned(), |x| format!("{x:.0}"))
    };
    let flag = |v: &Value, k: &str| match v.get(k).and_then(Value::as_bool) {
        Some(true) => "yes",
        Some(false) => "no",
        None => "–",
    };
    let mut totals = Vec::new();
    let mut contended = false;
    for v in &variants {
        let name = v.get("name").and_then(Value::as_str).unwrap_or("?");
        if let Some(e) = v.get("error").and_then(Value::as_str) {
            let _ = writeln!(
                s,
                "| {name} | failed: {} | | | | | | | |",
                e.replace('|', "/")
            );
            continue;
        }
        let total = num(v, "total_s");
        totals.push((name.to_owned(), total));
        if num(v, "other_cpu_s").is_some_and(|o| o > 30.0) {
            contended = true;
        }
        let _ = writeln!(
            s,
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} |",
            total.map_or_else(|| "–".to_owned(), |x| format!("{x:.0}")),
            step(v, "clippy"),
            step(v, "build_bins"),
            step(v, "test_no_run"),
            num(v, "cpu_s").map_or_else(|| "–".to_owned(), |x| format!("{x:.0}")),
            v.get("compiled").and_then(Value::as_u64).unwrap_or(0),
            flag(v, "aws_lc_sys"),
            flag(v, "ring"),
        );
    }
    if let [(_, Some(before)), (_, Some(after))] = totals.as_slice()
        && *before > 0.0
    {
        let r = after / before;
        let _ = writeln!(
            s,
            "\nAfter / before: **{r:.2}×** ({:.0} s saved on a cold build).{}\n",
            before - after,
            if contended {
                " Other load on the machine during these builds (`other_cpu_s` in the JSON) \
                 stretched the wall times; the CPU seconds are the steadier comparison."
            } else {
                ""
            }
        );
        summary.push((
            "Cold `make test` build, lean vs default features".into(),
            "report before/after".into(),
            format!("{after:.0} s vs {before:.0} s ({r:.2}×)"),
            "reported".into(),
        ));
    } else {
        s.push('\n');
    }
}

/// Section 3: the large page in other writers' forms, against the canonical page through
/// dispatch in the same run (a record not in `JSON.stringify`'s form costs its own rewrite).
pub(crate) fn forms(
    s: &mut String,
    l: &LargePage,
    summary: &mut Vec<(String, String, String, String)>,
) {
    if l.forms.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "The same page written by other tools, through dispatch, same run: one record in four as \
         Python's `json.dumps` writes it (`3.0`, `\\u00fc`, `\\/`, spaces after `:` and `,`), and the \
         whole body pretty-printed (`bench::Form`). The answer is the same bytes in every form.\n\n\
         | form | median ms | 95% CI ms | × canonical |\n|---|---:|---:|---:|"
    );
    for (name, (m, lo, hi)) in &l.forms {
        let x = m / l.dispatch_ms.max(1e-9);
        let _ = writeln!(s, "| `{name}` | {m:.2} | {lo:.2}–{hi:.2} | {x:.2}× |");
        summary.push((
            format!("Large page, `{name}`, vs the canonical page"),
            "reported (same run)".into(),
            format!("{x:.2}× ({m:.1} ms vs {:.1} ms)", l.dispatch_ms),
            "reported".into(),
        ));
    }
    let _ = writeln!(s);
}

/// The machine's limit: our server against a bare hyper server that answers the request's own
/// bytes (`echo-server`), measured in the same run: requests/s for each wrk point of section 2,
/// and the large page's time over HTTP. Goals: ≥ 0.5× the echo's requests/s (preMap, 100
/// records, c = 16); ≤ 1.5× its large-page time.
pub(crate) fn machine_limit(
    s: &mut String,
    summary: &mut Vec<(String, String, String, String)>,
    server: &ServerStack,
    e2e: &LargeE2E,
) {
    let _ = writeln!(
        s,
        "### The machine's limit: a bare hyper echo\n\n`echo-server` (`bench/src/bin/echo-server.rs`) \
         answers each request with its own bytes: no parse, routing or auth, only the kernel, hyper \
         and wrk on the same cores. Same bodies, same wrk settings, same run as section 2. Goals: \
         ours ≥ 0.5× the echo's requests/s (preMap, 100 records, c = 16); the large page ≤ 1.5× the \
         echo's time.\n\n| scenario | concurrency | ours req/s | echo req/s | ours / echo |\n|---|---:|---:|---:|---:|"
    );
    for sc in &server.scenarios {
        for ((c, ours, _), (_, echo)) in sc.points.iter().zip(&sc.echo) {
            let (Some(o), Some(e)) = (ours, echo) else {
                continue;
            };
            let x = o.rps / e.rps.max(1e-9);
            let _ = writeln!(
                s,
                "| {} | {c} | {:.0} | {:.0} | {x:.2}× |",
                sc.label, o.rps, e.rps
            );
            if sc.function == "preMap" && *c == 16 {
                summary.push((
                    format!("Server req/s vs a bare hyper echo ({}, c = 16)", sc.label),
                    "≥ 0.5× the echo".into(),
                    format!("{x:.2}× ({:.0} vs {:.0} req/s)", o.rps, e.rps),
                    yes(x >= 0.5).into(),
                ));
            }
        }
    }
    machine_limit_reading(s, summary, server);
    if let Some((o, e)) = e2e.ours_and_echo_ms() {
        let x = o / e.max(1e-9);
        let _ = writeln!(
            s,
            "\nLarge page over HTTP (section 3b's page and method): ours and the echo started side by \
             side, each warmed up once, then {PAIRED_RUNS} timed requests to each taken in turn (one to \
             each, alternating which goes first), medians: ours {o:.1} ms, echo {e:.1} ms: **{x:.2}×** \
             the echo's time. (Single requests of this page scatter by up to 2× on this shared 2-core \
             machine: timed apart, 10 requests each, the same binaries came out at 1.16× to 1.64× from \
             one run to the next, and with 10 pairs taken in turn at 1.0× to 1.75×.)\n"
        );
        summary.push((
            "Large page over HTTP vs a bare hyper echo".into(),
            "≤ 1.5× the echo's time".into(),
            format!("{x:.2}× ({o:.1} ms vs {e:.1} ms)"),
            yes(x <= 1.5).into(),
        ));
    } else {
        let _ = writeln!(s);
    }
    if let Some((o, r)) = e2e.ours_and_reading_ms() {
        let x = o / r.max(1e-9);
        let _ = writeln!(
            s,
            "The same page timed in turn the same way with the echo that reads the JSON \
             (`ECHO_READ=json`), medians: ours {o:.1} ms, reading echo {r:.1} ms: **{x:.2}×** its \
             time.\n"
        );
        summary.push((
            "Large page over HTTP vs the echo reading the JSON".into(),
            "reported (same run)".into(),
            format!("{x:.2}× ({o:.1} ms vs {r:.1} ms)"),
            "reported".into(),
        ));
    }
}

/// The same echo reading each body with serde_json before answering it (`ECHO_READ=json`):
/// what is left for any server that reads its request's JSON once, at c = 16.
fn machine_limit_reading(
    s: &mut String,
    summary: &mut Vec<(String, String, String, String)>,
    server: &ServerStack,
) {
    let _ = writeln!(
        s,
        "\nThe same echo reading each body with serde_json before it answers (`ECHO_READ=json`: \
         `from_slice::<IgnoredAny>`, the least a server that reads its JSON does), c = 16, same \
         run:\n\n| scenario | echo reading req/s | reading / echo | ours / reading |\n|---|---:|---:|---:|"
    );
    for sc in &server.scenarios {
        let echo = sc
            .echo
            .iter()
            .find(|(c, _)| *c == 16)
            .and_then(|(_, e)| e.as_ref());
        let ours = sc
            .points
            .iter()
            .find(|(c, ..)| *c == 16)
            .and_then(|(_, o, _)| o.as_ref());
        let (Some(r), Some(e), Some(o)) = (&sc.echo_reading, echo, ours) else {
            continue;
        };
        let (re, or) = (r.rps / e.rps.max(1e-9), o.rps / r.rps.max(1e-9));
        let _ = writeln!(s, "| {} | {:.0} | {re:.2}× | {or:.2}× |", sc.label, r.rps);
        if sc.function == "preMap" && sc.form == bench::Form::Canonical {
            summary.push((
                format!(
                    "Echo reading the JSON vs the bare echo ({}, c = 16)",
                    sc.label
                ),
                "reported (same run)".into(),
                format!(
                    "{re:.2}× the echo ({:.0} req/s); ours {or:.2}× the reading echo",
                    r.rps
                ),
                "reported".into(),
            ));
        }
    }
}

/// Lambda's price per GB-second on arm64 (the template's architecture; us-east-1, first tier)
/// and per million requests, in US dollars.
const ARM64_GB_SECOND: f64 = 0.000_013_333_4;
const PER_MILLION_REQUESTS: f64 = 0.20;
/// Lambda gives a function one vCPU's worth of CPU at 1,769 MB, proportionally less below.
const ONE_VCPU_MB: f64 = 1769.0;

/// What a million preMap calls (100 records) cost on Lambda, from this run's durations (wrk p50
/// at concurrency 1, loopback HTTP included: an upper bound on the handler's time) and peak RSS
/// under load: at 128 MB, and at the least memory each server's peak fits in.
pub(crate) fn lambda_bill(s: &mut String, server: &ServerStack) {
    let Some(sc) = server.scenarios.iter().find(|sc| sc.function == "preMap") else {
        return;
    };
    let Some((_, Some(ours), Some(node))) = sc.points.iter().find(|(c, _, _)| *c == 1) else {
        return;
    };
    let need = |kib: Option<u64>| kib.map_or(128.0, |k| ((k as f64 / 1024.0).ceil()).max(128.0));
    let _ = writeln!(
        s,
        "### What it costs on Lambda (preMap, 100 records)\n\nPer million calls, arm64: \
         `cost = 1e6 × ceil(ms) / 1000 × MB / 1024 × ${ARM64_GB_SECOND} + ${PER_MILLION_REQUESTS:.2}` \
         (Lambda bills each call's duration rounded up to the millisecond, times its memory, plus \
         the request charge). The duration is this run's wrk p50 at concurrency 1 on a full core, \
         scaled by 1,769 MB / memory for the CPU share Lambda gives below one vCPU (the call is \
         CPU-bound); the memory each needs is its peak RSS under section 2's load, at least 128 MB. \
         An estimate from these measurements, not a bill.\n\n\
         | | p50 ms (full core) | memory MB | est. ms at that memory | $ per million calls |\n|---|---:|---:|---:|---:|"
    );
    let rows = [
        ("ours", ours.p50_ms, 128.0),
        ("Node", node.p50_ms, 128.0),
        ("ours", ours.p50_ms, need(server.rss_ours_kib)),
        ("Node", node.p50_ms, need(server.rss_node_kib)),
    ];
    let mut costs = Vec::new();
    for (who, ms, mb) in rows {
        let est = ms * (ONE_VCPU_MB / mb).max(1.0);
        let cost = 1e6 * est.ceil() / 1000.0 * mb / 1024.0 * ARM64_GB_SECOND + PER_MILLION_REQUESTS;
        costs.push(cost);
        let _ = writeln!(s, "| {who} | {ms:.2} | {mb:.0} | {est:.1} | {cost:.2} |");
    }
    let _ = writeln!(
        s,
        "\nNode / ours at 128 MB: **{:.1}×**; each at the memory it needs: **{:.1}×**.\n",
        costs[1] / costs[0].max(1e-9),
        costs[3] / costs[2].max(1e-9)
    );
}

/// Section 3b, second table: the large page as other tools write it, over HTTP, ours and Node
/// (each server freshly started per form). Goals as for the canonical page: ≥ 5× Node, peak RSS
/// ≤ 4× the page.
fn large_forms(s: &mut String, summary: &mut Vec<(String, String, String, String)>, e: &LargeE2E) {
    if e.forms.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "The same records written by other tools, over HTTP as above: one record in four as \
         Python's `json.dumps` writes it (`PythonQuarter`), and the whole body pretty-printed \
         (`Pretty`). Node answers each in `JSON.stringify`'s form; so do we.\n\n\
         | form | page MiB | ours median ms | Node median ms | Node / ours | ours peak RSS MiB | ours peak RSS / page | Node peak RSS MiB | same bytes |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    let med = |r: &Option<LargeRun>| {
        r.as_ref()
            .filter(|r| !r.ms.is_empty())
            .map(|r| bench::median(&r.ms))
    };
    let mib = |k: Option<u64>| k.map_or("n/a".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
    for f in &e.forms {
        let page_mib = f.bytes as f64 / (1024.0 * 1024.0);
        let peak = f.ours.as_ref().and_then(|r| r.peak_kib);
        let per_page = peak.map(|k| k as f64 / 1024.0 / page_mib);
        let (o, n) = (med(&f.ours), med(&f.node));
        let ratio = o.zip(n).map(|(o, n)| n / o.max(1e-9));
        let _ = writeln!(
            s,
            "| `{:?}` | {page_mib:.2} | {} | {} | {} | {} | {} | {} | {} |",
            f.form,
            o.map_or("failed".into(), |o| format!("{o:.1}")),
            n.map_or("failed".into(), |n| format!("{n:.1}")),
            ratio.map_or("n/a".into(), |r| format!("**{r:.2}×**")),
            mib(peak),
            per_page.map_or("n/a".into(), |x| format!("{x:.1}×")),
            mib(f.node.as_ref().and_then(|r| r.peak_kib)),
            yes(f.identical)
        );
        if let (Some(r), Some(o), Some(n)) = (ratio, o, n) {
            summary.push((
                format!("Large page over HTTP, `{:?}` form", f.form),
                "≥ 5× faster than Node".into(),
                format!("{r:.2}× ({o:.1} ms vs {n:.1} ms)"),
                yes(r >= 5.0 && f.identical).into(),
            ));
        }
        if let (Some(x), Some(k)) = (per_page, peak) {
            summary.push((
                format!("Large page peak RSS, server, `{:?}` form", f.form),
                "≤ 4× the page".into(),
                format!(
                    "{x:.1}× ({:.1} MiB for a {page_mib:.2} MiB page)",
                    k as f64 / 1024.0
                ),
                yes(x <= 4.0).into(),
            ));
        }
    }
    s.push('\n');
}
