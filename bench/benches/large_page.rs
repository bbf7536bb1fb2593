//! Large pages: a ~5 MB preSavePage page end to end through dispatch (request bytes →
//! `Envelope` → `Extension::call` → the reply's JSON text), two ways: `dispatch`, as the
//! transports do it (`Envelope::from_json`: options kept as text, records passed through), and
//! `dispatch_value`, the engine before it (the whole body parsed into a `serde_json::Value`,
//! `Envelope::from_body`); against the floor, `serde_json::from_slice::<Value>` +
//! `serde_json::to_vec` of the same bytes. `dispatch_python_quarter` and `dispatch_pretty` run
//! the same page written by other tools (one record in four as Python's `json.dumps` writes it;
//! the whole body pretty-printed), and `envelope_only_*` the scan alone of each. Run by
//! `make bench` only (harness = false; `cargo test` does not run it).

use criterion::{Criterion, criterion_group};
use integration_tests::reference::{Mode, extension};
use integrator_lambda::dispatch::{CallRequest, Stack};
use integrator_lambda::protocol::envelope::Envelope;
use integrator_lambda::protocol::text::JsonText;
use serde_json::Value;
use std::hint::black_box;
use std::time::Duration;

fn large_page(c: &mut Criterion) {
    let (bytes, records) = bench::envelope_of_size(5 * 1024 * 1024);
    eprintln!("large page: {} bytes, {records} records", bytes.len());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ext = extension(Mode::Diy);
    let call = |envelope: Envelope| answer(&rt, &ext, envelope);
    let through_dispatch = |bytes: &bytes::Bytes| dispatched(&rt, &ext, bytes);
    let through_values = |bytes: &[u8]| {
        let body: Value = serde_json::from_slice(bytes).expect("json");
        call(Envelope::from_body(body))
    };
    let bytes = bytes::Bytes::from(bytes);
    let (lazy, whole) = (through_dispatch(&bytes), through_values(&bytes));
    assert_eq!(lazy.to_bytes(), whole.to_bytes());
    // The echo must really carry the page through.
    assert!(lazy.len() > bytes.len() / 2);
    eprintln!(
        "the answer: {} bytes in {} pieces",
        lazy.len(),
        lazy.pieces().len()
    );

    let mut g = c.benchmark_group("large_page");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(6));
    g.bench_function("floor", |b| {
        b.iter(|| {
            let v: Value = serde_json::from_slice(black_box(&bytes)).expect("json");
            serde_json::to_vec(&v).expect("serialize")
        })
    });
    g.bench_function("dispatch", |b| {
        b.iter(|| through_dispatch(black_box(&bytes)))
    });
    g.bench_function("envelope_only", |b| {
        b.iter(|| Envelope::from_json(black_box(bytes.clone())).expect("json"))
    });
    g.bench_function("serde_skip_only", |b| {
        b.iter(|| serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&bytes)).expect("json"))
    });
    g.bench_function("dispatch_value", |b| {
        b.iter(|| through_values(black_box(&bytes)))
    });
    // The same page in other writers' forms (`dispatch` above is the baseline of the same run):
    // a record not in JSON.stringify's form costs its own rewrite, not the page's.
    for (name, form) in [
        ("dispatch_python_quarter", bench::Form::PythonQuarter),
        ("dispatch_pretty", bench::Form::Pretty),
    ] {
        let (other, _) = bench::envelope_of_size_in(5 * 1024 * 1024, form);
        let other = bytes::Bytes::from(other);
        eprintln!("{name}: {} bytes", other.len());
        // The same answer, byte for byte, whichever form the page came in.
        assert_eq!(through_dispatch(&other).to_bytes(), lazy.to_bytes());
        g.bench_function(name, |b| b.iter(|| through_dispatch(black_box(&other))));
        // The scan alone for this form: what the rest of `name` costs is the answer's writing.
        let scan = name.replace("dispatch", "envelope_only");
        g.bench_function(scan, |b| {
            b.iter(|| Envelope::from_json(black_box(other.clone())).expect("json"))
        });
    }
    g.finish();
    let meta = serde_json::json!({"bytes": bytes.len(), "records": records});
    if let Ok(dir) = std::env::var("CRITERION_HOME") {
        let _ = std::fs::write(format!("{dir}/large_page_input.json"), meta.to_string());
    }
}

/// preMap with 100 records (the body `make bench` sends over HTTP), per call in process: the
/// scan alone and through dispatch. What the server adds over a bare echo is these plus the HTTP
/// layer's share.
fn premap_100(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ext = extension(Mode::Diy);
    let mut g = c.benchmark_group("premap_100");
    g.sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, form) in [
        ("canonical", bench::Form::Canonical),
        ("python_quarter", bench::Form::PythonQuarter),
    ] {
        let bytes = bytes::Bytes::from(bench::envelope_in("preMap", 100, form));
        g.bench_function(format!("envelope_only_{name}"), |b| {
            b.iter(|| Envelope::from_json(black_box(bytes.clone())).expect("json"))
        });
        // The least any JSON service does with this body: serde_json checking it, no more.
        g.bench_function(format!("serde_skip_only_{name}"), |b| {
            b.iter(|| {
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&bytes)).expect("json")
            })
        });
        g.bench_function(format!("dispatch_{name}"), |b| {
            b.iter(|| dispatched(&rt, &ext, black_box(&bytes)))
        });
    }
    g.finish();
}

criterion_group!(benches, large_page, premap_100);

/// `PROFILE_PREMAP=N`: only run N preMap calls (`PROFILE_RECORDS` records each, 100 unless set)
/// through dispatch ([`profile_premap`]) and exit, for an instruction-count profile (`valgrind
/// --tool=callgrind --toggle-collect='*profile_premap*'`), which unlike timings does not vary
/// with the machine.
fn main() {
    if let Some(n) = std::env::var("PROFILE_PREMAP")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        let form = match std::env::var("PROFILE_FORM").as_deref() {
            Ok("python") => bench::Form::PythonQuarter,
            Ok("pretty") => bench::Form::Pretty,
            _ => bench::Form::Canonical,
        };
        let records = std::env::var("PROFILE_RECORDS")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(100);
        let bytes = bytes::Bytes::from(bench::envelope_in("preMap", records, form));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let ext = extension(Mode::Diy);
        let len = profile_premap(&rt, &ext, &bytes, n);
        eprintln!("{n} calls, {len} bytes answered");
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}

/// `n` preMap calls through dispatch: the scan, the call and the answer's text.
#[inline(never)]
fn profile_premap(
    rt: &tokio::runtime::Runtime,
    ext: &integrator_lambda::Extension,
    bytes: &bytes::Bytes,
    n: usize,
) -> usize {
    let mut len = 0;
    for _ in 0..n {
        len += black_box(dispatched(rt, ext, bytes)).len();
    }
    len
}

/// The request's bytes through dispatch as the transports do it (`Envelope::from_json`: one
/// scan, options kept as text), then [`answer`].
fn dispatched(
    rt: &tokio::runtime::Runtime,
    ext: &integrator_lambda::Extension,
    bytes: &bytes::Bytes,
) -> JsonText {
    let (envelope, _) = Envelope::from_json(bytes.clone()).expect("json");
    answer(rt, ext, envelope)
}

/// The answer as the transports send it: its pieces, records passed through as slices of the
/// request (`protocol::text`).
fn answer(
    rt: &tokio::runtime::Runtime,
    ext: &integrator_lambda::Extension,
    envelope: Envelope,
) -> JsonText {
    rt.block_on(ext.call(CallRequest {
        envelope,
        stack: Stack::Http,
        request_id: "bench".into(),
        trace_id: None,
        deadline: None,
    }))
    .expect("the function answers")
    .into_http()
}
