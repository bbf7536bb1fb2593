//! Section 3, large pages: the criterion results of `benches/large_page.rs`.

use crate::Args;
use serde_json::Value;
use std::path::Path;

pub(crate) struct LargePage {
    pub(crate) floor_ms: f64,
    pub(crate) dispatch_ms: f64,
    pub(crate) floor_ci: (f64, f64),
    pub(crate) dispatch_ci: (f64, f64),
    /// The engine replaced: the whole body parsed into a `Value`, same run.
    pub(crate) value_ms: Option<(f64, f64, f64)>,
    /// The same page in other writers' forms (bench id, median and CI), same run.
    pub(crate) forms: Vec<(&'static str, (f64, f64, f64))>,
    pub(crate) bytes: u64,
    pub(crate) records: u64,
}

fn read_estimate(dir: &Path, name: &str) -> Option<(f64, f64, f64)> {
    let p = dir.join("large_page").join(name).join("new/estimates.json");
    let j: Value = serde_json::from_slice(&std::fs::read(p).ok()?).ok()?;
    let m = j.get("median")?;
    let f = |v: Option<&Value>| v.and_then(Value::as_f64).unwrap_or(0.0) / 1e6;
    Some((
        f(m.get("point_estimate")),
        f(m.pointer("/confidence_interval/lower_bound")),
        f(m.pointer("/confidence_interval/upper_bound")),
    ))
}

pub(crate) fn large_page(a: &Args) -> Option<LargePage> {
    let (floor_ms, fl, fu) = read_estimate(&a.criterion, "floor")?;
    let (dispatch_ms, dl, du) = read_estimate(&a.criterion, "dispatch")?;
    let meta: Value = std::fs::read(a.criterion.join("large_page_input.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    Some(LargePage {
        floor_ms,
        dispatch_ms,
        floor_ci: (fl, fu),
        dispatch_ci: (dl, du),
        value_ms: read_estimate(&a.criterion, "dispatch_value"),
        forms: ["dispatch_python_quarter", "dispatch_pretty"]
            .into_iter()
            .filter_map(|n| Some((n, read_estimate(&a.criterion, n)?)))
            .collect(),
        bytes: meta.get("bytes").and_then(Value::as_u64).unwrap_or(0),
        records: meta.get("records").and_then(Value::as_u64).unwrap_or(0),
    })
}
