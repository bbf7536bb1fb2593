//! What X-Ray costs a call: a preMap page of 100 records through dispatch (the reference
//! module's echo, as `make bench`'s server scenario sends it), three ways in one run: no trace
//! header (the baseline), an unsampled header (`Sampled=0`: should cost nothing measurable) and
//! a sampled one (`Sampled=1`, subsegments to an in-memory sink). Criterion's estimates are the
//! figures; the ratios to the baseline are printed at the end.
//!
//! `cargo bench -p bench --bench trace_overhead` (not part of `make test`).

use criterion::{Criterion, criterion_group, criterion_main};
use integration_tests::reference::{Mode, extension};
use integrator_lambda::dispatch::{CallRequest, Stack};
use integrator_lambda::protocol::envelope::Envelope;
use integrator_lambda::xray::{MemorySink, configure};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const UNSAMPLED: &str =
    "Root=1-6581b5f1-0123456789abcdef01234567;Parent=a1b2c3d4e5f60718;Sampled=0";
const SAMPLED: &str = "Root=1-6581b5f1-0123456789abcdef01234567;Parent=a1b2c3d4e5f60718;Sampled=1";

fn trace_overhead(c: &mut Criterion) {
    configure(Arc::new(MemorySink::default()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ext = extension(Mode::Diy);
    let body = bytes::Bytes::from(bench::envelope("preMap", 100));
    let call = |trace: Option<&str>| {
        let (envelope, _) = Envelope::from_json(body.clone()).expect("json");
        rt.block_on(ext.call(CallRequest {
            envelope,
            stack: Stack::Http,
            request_id: "bench".into(),
            trace_id: trace.map(str::to_owned),
            deadline: None,
        }))
        .expect("preMap answers")
        .into_http()
    };
    let mut g = c.benchmark_group("trace_overhead");
    g.sample_size(50)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (name, trace) in [
        ("no_header", None),
        ("unsampled", Some(UNSAMPLED)),
        ("sampled", Some(SAMPLED)),
    ] {
        g.bench_function(name, |b| b.iter(|| call(black_box(trace))));
    }
    g.finish();
    // The same three, interleaved in one loop, as ratios to the baseline.
    let mut total = [Duration::ZERO; 3];
    for _ in 0..2_000 {
        for (i, trace) in [None, Some(UNSAMPLED), Some(SAMPLED)]
            .into_iter()
            .enumerate()
        {
            let t = Instant::now();
            black_box(call(trace));
            total[i] += t.elapsed();
        }
    }
    let base = total[0].as_secs_f64();
    let (per_call_us, unsampled, sampled) = (
        base / 2_000.0 * 1e6,
        total[1].as_secs_f64() / base,
        total[2].as_secs_f64() / base,
    );
    eprintln!(
        "preMap-100 per call: no header {per_call_us:.1} µs; unsampled {unsampled:.3}x; sampled {sampled:.3}x"
    );
    // For `make bench`'s report (section 7), beside criterion's own estimates.
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        let out = serde_json::json!({
            "calls": 2_000, "no_header_us": per_call_us,
            "unsampled_ratio": unsampled, "sampled_ratio": sampled,
        });
        let _ = std::fs::write(
            std::path::Path::new(&home).join("trace_overhead_interleaved.json"),
            out.to_string(),
        );
    }
}

criterion_group!(benches, trace_overhead);
criterion_main!(benches);
