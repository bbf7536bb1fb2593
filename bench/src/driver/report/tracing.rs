//! Section 7, what X-Ray tracing costs a call: the criterion results of
//! `benches/trace_overhead.rs` (preMap, 100 records, through dispatch) with no trace header, an
//! unsampled header and a sampled one, plus the same three interleaved in one loop (the ratios
//! least disturbed by a busy machine).

use super::yes;
use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

/// Criterion's median and 95% interval for one variant, in microseconds.
fn estimate(criterion: &Path, name: &str) -> Option<(f64, f64, f64)> {
    let p = criterion
        .join("trace_overhead")
        .join(name)
        .join("new/estimates.json");
    let j: Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    let m = j.get("median")?;
    let us = |v: Option<&Value>| v.and_then(Value::as_f64).unwrap_or(0.0) / 1e3;
    Some((
        us(m.get("point_estimate")),
        us(m.pointer("/confidence_interval/lower_bound")),
        us(m.pointer("/confidence_interval/upper_bound")),
    ))
}

/// Unsampled: "nothing measurable", taken as within 2 % (the interleaved loop's run-to-run
/// spread on this machine). Sampled: under 5 % of the call.
const UNSAMPLED_GOAL: f64 = 1.02;
const SAMPLED_GOAL: f64 = 1.05;

pub(super) fn trace_section(
    s: &mut String,
    summary: &mut Vec<(String, String, String, String)>,
    criterion: &Path,
) {
    let _ = writeln!(s, "## 7. Tracing overhead (X-Ray subsegments)\n");
    let base = estimate(criterion, "no_header");
    let interleaved: Option<Value> =
        std::fs::read(criterion.join("trace_overhead_interleaved.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
    let Some((b, _, _)) = base else {
        let _ = writeln!(
            s,
            "Not measured in this run (`cargo bench -p bench --bench trace_overhead` did not run).\n"
        );
        return;
    };
    let _ = writeln!(
        s,
        "preMap with 100 records through dispatch (`bench/benches/trace_overhead.rs`, release, one \
         thread): no trace header (the baseline), an unsampled X-Ray header (`Sampled=0`) and a \
         sampled one (`Sampled=1`: a subsegment per outgoing request, handed to an in-memory sink \
         in place of the UDP sender). Criterion medians of 50 samples, then the three interleaved \
         in one loop of 2,000 calls each, whose ratios a busy machine disturbs least. Goals: an \
         unsampled call pays nothing measurable (≤ {UNSAMPLED_GOAL:.2}×), a sampled one under 5 % \
         (≤ {SAMPLED_GOAL:.2}×).\n\n\
         | trace header | criterion median µs | 95% CI µs | × no header | interleaved × no header |\n\
         |---|---:|---:|---:|---:|"
    );
    let ratio = |k: &str| {
        interleaved
            .as_ref()
            .and_then(|j| j.get(k))
            .and_then(Value::as_f64)
    };
    for (label, name, key) in [
        ("none", "no_header", None),
        ("`Sampled=0`", "unsampled", Some("unsampled_ratio")),
        ("`Sampled=1`", "sampled", Some("sampled_ratio")),
    ] {
        let Some((m, lo, hi)) = estimate(criterion, name) else {
            continue;
        };
        let inter = key
            .and_then(ratio)
            .map_or("1.000×".to_owned(), |r| format!("{r:.3}×"));
        let _ = writeln!(
            s,
            "| {label} | {m:.1} | {lo:.1}–{hi:.1} | {:.3}× | {inter} |",
            m / b.max(1e-9)
        );
    }
    s.push('\n');
    for (what, name, key, goal) in [
        (
            "Unsampled trace header, preMap-100",
            "unsampled",
            "unsampled_ratio",
            UNSAMPLED_GOAL,
        ),
        (
            "Sampled call (X-Ray subsegments), preMap-100",
            "sampled",
            "sampled_ratio",
            SAMPLED_GOAL,
        ),
    ] {
        // The interleaved ratio decides; criterion's medians are the fallback.
        let r = ratio(key).or_else(|| estimate(criterion, name).map(|(m, _, _)| m / b.max(1e-9)));
        if let Some(r) = r {
            summary.push((
                what.into(),
                format!("≤ {goal:.2}× no header"),
                format!("{r:.3}×"),
                yes(r <= goal).into(),
            ));
        }
    }
}
