//! A function's own metrics: [`Invocation::metrics`](crate::Invocation::metrics).
//!
//! ```no_run
//! use integrator_lambda::custom_metrics::{Metric, Unit};
//! use integrator_lambda::{ExtResult, Invocation};
//!
//! fn counted(inv: &Invocation, outcome: &str) -> ExtResult<()> {
//!     inv.metrics()
//!         .add(Metric::new("Lookups", Unit::Count, 1.0).dimension("Outcome", outcome))?;
//!     Ok(())
//! }
//! ```
//!
//! Each metric is kept with the call and written, when the call ends and before its answer is
//! sent, as CloudWatch Embedded Metric Format (EMF) lines on stdout: the same namespace as the
//! built-in metrics ([`crate::metrics`]), with the call's dimensions `Service` (the Lambda
//! function) and `Function` (the integrator.io function) plus the metric's own. The call's
//! request id, trace id, extension point and stack go on each line as properties (searchable
//! in CloudWatch Logs Insights, not dimensions).
//!
//! EMF's limits are met by splitting, never by dropping: metrics with different dimensions go
//! to different lines, a line carries at most [`MAX_METRICS`] metrics and at most
//! [`MAX_VALUES`] values of one metric (more make more lines). A metric whose dimensions alone
//! exceed EMF's [`MAX_DIMENSIONS`] per dimension set cannot be written at all: [`Metrics::add`]
//! refuses it with [`MetricError::TooManyDimensions`], as it refuses a name, dimension or value
//! CloudWatch would reject. A call that records very many values writes them every
//! [`FLUSH_AT`] values instead of holding them all (bounded memory).
//!
//! Metrics are written when EMF metrics are on (`EXTENSION_METRICS`, on by default on Lambda);
//! otherwise [`Metrics::add`] still checks the metric and then forgets it.

use crate::metrics;
pub use crate::metrics::Unit;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Metrics per EMF document (CloudWatch's limit).
pub const MAX_METRICS: usize = 100;
/// Dimension names per dimension set (CloudWatch's limit).
pub const MAX_DIMENSIONS: usize = 30;
/// Values of one metric per EMF document (CloudWatch's limit).
pub const MAX_VALUES: usize = 100;
/// Values a call holds before they are written early.
pub const FLUSH_AT: usize = 1000;
/// The dimensions every metric of a call carries.
const CALL_DIMENSIONS: [&str; 2] = ["Service", "Function"];
/// Top-level keys the call's lines use for properties: no metric or dimension may take them.
const RESERVED: [&str; 7] = [
    "_aws",
    "Service",
    "Function",
    "ExtensionPoint",
    "Stack",
    "RequestId",
    "TraceId",
];

/// One value of a metric of the function's own.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    name: String,
    unit: Unit,
    value: f64,
    dimensions: Vec<(String, String)>,
    high_resolution: bool,
}

impl Metric {
    /// `value` of metric `name`, in `unit`.
    pub fn new(name: impl Into<String>, unit: Unit, value: f64) -> Self {
        Self {
            name: name.into(),
            unit,
            value,
            dimensions: Vec::new(),
            high_resolution: false,
        }
    }
    /// A count (`Unit::Count`).
    pub fn count(name: impl Into<String>, n: u64) -> Self {
        Self::new(name, Unit::Count, n as f64)
    }
    /// A dimension of this value, on top of the call's (`Service`, `Function`).
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.push((name.into(), value.into()));
        self
    }
    /// Stored at one-second resolution (CloudWatch high-resolution metrics) instead of one
    /// minute.
    pub fn high_resolution(mut self) -> Self {
        self.high_resolution = true;
        self
    }
    /// The metric's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Its unit.
    pub fn unit(&self) -> Unit {
        self.unit
    }
    /// Its value.
    pub fn value(&self) -> f64 {
        self.value
    }
    /// The value of its own dimension `name`.
    pub fn dimension_value(&self, name: &str) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// Is it high resolution?
    pub fn is_high_resolution(&self) -> bool {
        self.high_resolution
    }

    fn check(&self) -> Result<(), MetricError> {
        let bad_name =
            |n: &str| n.is_empty() || n.len() > 255 || n.starts_with(':') || RESERVED.contains(&n);
        if bad_name(&self.name) {
            return Err(MetricError::InvalidName(self.name.clone()));
        }
        if !self.value.is_finite() {
            return Err(MetricError::NotFinite(self.name.clone()));
        }
        let total = CALL_DIMENSIONS.len() + self.dimensions.len();
        if total > MAX_DIMENSIONS {
            return Err(MetricError::TooManyDimensions {
                metric: self.name.clone(),
                count: total,
            });
        }
        for (i, (n, v)) in self.dimensions.iter().enumerate() {
            if bad_name(n)
                || *n == self.name
                || self.dimensions[..i].iter().any(|(m, _)| m == n)
                || v.is_empty()
                || v.len() > 1024
            {
                return Err(MetricError::InvalidDimension {
                    metric: self.name.clone(),
                    dimension: n.clone(),
                });
            }
        }
        Ok(())
    }

    /// The metric's own dimensions, sorted by name: its group.
    fn group(&self) -> Vec<(String, String)> {
        let mut d = self.dimensions.clone();
        d.sort();
        d
    }
}

/// Why [`Metrics::add`] refused a metric. It converts to a 422 `invalid_metric`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MetricError {
    /// Empty, over 255 bytes, starting with `:`, or a name the call's lines use.
    #[error(
        "metric name {0:?} is not allowed (1-255 bytes, not starting with ':', not one of the call's own keys)"
    )]
    InvalidName(String),
    /// NaN or infinite: CloudWatch rejects the whole line.
    #[error("metric {0} has a value that is not a finite number")]
    NotFinite(String),
    /// More dimensions than one EMF dimension set takes, the call's own included.
    #[error("metric {metric} has {count} dimensions with the call's; CloudWatch takes at most 30")]
    TooManyDimensions {
        /// The metric.
        metric: String,
        /// Its dimensions, the call's included.
        count: usize,
    },
    /// A dimension's name is not allowed (see [`MetricError::InvalidName`], or given twice, or
    /// the metric's own name) or its value is empty or over 1024 bytes.
    #[error("metric {metric}: dimension {dimension:?} has a bad name or value")]
    InvalidDimension {
        /// The metric.
        metric: String,
        /// The dimension's name.
        dimension: String,
    },
}

impl From<MetricError> for crate::ExtError {
    fn from(e: MetricError) -> Self {
        crate::ExtError::with_code("invalid_metric", e.to_string())
    }
}

/// What the call's lines say about the call.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallInfo {
    pub function: String,
    pub extension_point: String,
    pub stack: String,
    pub request_id: String,
    pub trace_id: Option<Arc<str>>,
}

#[derive(Debug, Default)]
struct Pending {
    info: CallInfo,
    values: Vec<Metric>,
    /// Written as they come (metrics on) rather than only recorded (tests).
    write: bool,
    /// Every value added, kept for [`Metrics::recorded`] (tests only).
    keep: bool,
    recorded: Vec<Metric>,
}

/// The metrics of one call ([`Invocation::metrics`](crate::Invocation::metrics)). Cheap to
/// clone; every clone adds to the same call.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    inner: Option<Arc<Mutex<Pending>>>,
}

impl Metrics {
    /// The metrics of a call, written when EMF metrics are on (else nothing is kept).
    pub(crate) fn for_call(info: impl FnOnce() -> CallInfo) -> Self {
        if !metrics::enabled() {
            return Self::default();
        }
        Self {
            inner: Some(Arc::new(Mutex::new(Pending {
                info: info(),
                write: true,
                ..Pending::default()
            }))),
        }
    }
    /// Metrics that are only recorded, for [`Metrics::recorded`] (what
    /// [`Invocation::for_test`](crate::Invocation::for_test) gives).
    pub fn recording() -> Self {
        Self {
            inner: Some(Arc::new(Mutex::new(Pending {
                keep: true,
                ..Pending::default()
            }))),
        }
    }

    /// Add one value. It is checked first: a metric CloudWatch would reject is refused with
    /// a [`MetricError`] (`?` turns it into a 422 `invalid_metric`).
    pub fn add(&self, metric: Metric) -> Result<(), MetricError> {
        metric.check()?;
        let Some(inner) = &self.inner else {
            return Ok(());
        };
        let full = {
            let mut p = inner.lock().unwrap_or_else(PoisonError::into_inner);
            if p.keep {
                p.recorded.push(metric.clone());
            }
            if p.write {
                p.values.push(metric);
            }
            p.values.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
        Ok(())
    }

    /// Every value added so far (with [`Metrics::recording`]; empty otherwise).
    pub fn recorded(&self) -> Vec<Metric> {
        self.inner.as_ref().map_or_else(Vec::new, |i| {
            i.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .recorded
                .clone()
        })
    }

    /// Write what is pending (the dispatcher calls it when the call ends).
    pub(crate) fn flush(&self) {
        let Some(inner) = &self.inner else {
            return;
        };
        let (values, info) = {
            let mut p = inner.lock().unwrap_or_else(PoisonError::into_inner);
            if p.values.is_empty() {
                return;
            }
            (std::mem::take(&mut p.values), p.info.clone())
        };
        let Some((namespace, service)) = metrics::destination() else {
            return;
        };
        for line in documents(&info, service, namespace, metrics::now_ms(), &values) {
            metrics::write_line(&line);
        }
    }
}

/// A metric's own dimensions, sorted.
type Dimensions = Vec<(String, String)>;
/// One metric of a group (its first value stands for name, unit and resolution) and its values.
type Series<'a> = (&'a Metric, Vec<f64>);

/// The EMF lines of `values`: one group of lines per set of dimensions, each line within
/// EMF's limits.
pub(crate) fn documents(
    info: &CallInfo,
    service: &str,
    namespace: &str,
    timestamp_ms: u64,
    values: &[Metric],
) -> Vec<String> {
    // group → metric (name, unit, resolution) → values, in order of first appearance.
    let mut groups: BTreeMap<Dimensions, Vec<Series<'_>>> = BTreeMap::new();
    for m in values {
        let series = groups.entry(m.group()).or_default();
        match series.iter_mut().find(|(s, _)| {
            s.name == m.name && s.unit == m.unit && s.high_resolution == m.high_resolution
        }) {
            Some((_, v)) => v.push(m.value),
            None => series.push((m, vec![m.value])),
        }
    }
    let mut lines = Vec::new();
    for (dims, mut series) in groups {
        // Each document: at most MAX_METRICS metrics, each name once, MAX_VALUES values each.
        // The series needing the most documents are placed first, so the others fill them.
        series.sort_by_key(|(_, v)| std::cmp::Reverse(v.len().div_ceil(MAX_VALUES)));
        let mut docs: Vec<Vec<(&Metric, &[f64])>> = Vec::new();
        for (m, vals) in &series {
            for chunk in vals.chunks(MAX_VALUES) {
                match docs
                    .iter_mut()
                    .find(|d| d.len() < MAX_METRICS && !d.iter().any(|(x, _)| x.name == m.name))
                {
                    Some(d) => d.push((m, chunk)),
                    None => docs.push(vec![(m, chunk)]),
                }
            }
        }
        let mut set: Vec<&str> = CALL_DIMENSIONS.to_vec();
        set.extend(dims.iter().map(|(n, _)| n.as_str()));
        for doc in docs {
            lines.push(document(
                info,
                service,
                namespace,
                timestamp_ms,
                &set,
                &dims,
                &doc,
            ));
        }
    }
    lines
}

fn document(
    info: &CallInfo,
    service: &str,
    namespace: &str,
    timestamp_ms: u64,
    set: &[&str],
    dims: &[(String, String)],
    doc: &[(&Metric, &[f64])],
) -> String {
    let definitions = doc
        .iter()
        .map(|(m, _)| {
            let mut d = json!({"Name": m.name, "Unit": m.unit.name()});
            if m.high_resolution {
                d["StorageResolution"] = json!(1);
            }
            d
        })
        .collect();
    let call = [
        ("Service", json!(service)),
        ("Function", json!(info.function)),
        ("ExtensionPoint", json!(info.extension_point)),
        ("Stack", json!(info.stack)),
        ("RequestId", json!(info.request_id)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v));
    let trace = info
        .trace_id
        .as_ref()
        .map(|t| ("TraceId".to_owned(), json!(t.as_ref())));
    let own = dims.iter().map(|(n, v)| (n.clone(), json!(v)));
    let values = doc.iter().map(|(m, vals)| {
        let value = match vals {
            [one] => json!(one),
            many => json!(many),
        };
        (m.name.clone(), value)
    });
    metrics::emf_line(
        namespace,
        timestamp_ms,
        json!([set]),
        definitions,
        call.chain(trace).chain(own).chain(values),
    )
}

#[cfg(test)]
mod tests;
