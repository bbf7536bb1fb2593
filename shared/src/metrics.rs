//! Metrics in CloudWatch's Embedded Metric Format (EMF): one JSON line on stdout per record,
//! which CloudWatch Logs turns into metrics (no API call, no agent). A line is written whole,
//! synchronously, before the call that produced it answers, so nothing is buffered and nothing
//! is lost when the execution environment is frozen or shut down.
//!
//! Namespace `EXTENSION_METRICS_NAMESPACE` (default [`DEFAULT_NAMESPACE`]); on by default on
//! Lambda, off locally (`EXTENSION_METRICS=on|off`), both read in `app/settings.rs`.
//!
//! | record | dimensions | metrics |
//! |---|---|---|
//! | each call ([`call`]) | `Service`, `Function`, `ExtensionPoint`, `Stack`, `Status`; and `Service` alone | `Calls`, `Errors`, `Duration` (ms), `RecordsIn`, `RecordsOut`, `ResponseBytes`, `ColdStart` |
//! | each dedup check ([`dedup`]) | `Service` | `DedupNew`, `DedupDuplicate` |
//! | each SQS batch ([`batch`]) | `Service` | `BatchRecords`, `BatchSucceeded`, `BatchFailed`, `BatchSkipped`, `BatchReplayed`, `BatchDeferred`, `BatchStale` |
//! | each outgoing HTTP attempt ([`http_call`]) | `Service`, `Host`, `Status` (the HTTP status, or `error`); and `Service` alone | `HttpCalls`, `HttpDuration` (ms) |
//! | each AWS SDK operation ([`aws_call`], retries included) | `Service`, `AwsService`, `Operation` (`Status` as a property) | `AwsCalls`, `AwsDuration` (ms) |
//!
//! `Service` is the Lambda function's name (`AWS_LAMBDA_FUNCTION_NAME`, or `local`).

use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

pub const DEFAULT_NAMESPACE: &str = "IntegratorExtensions";

/// Where metrics go and whether they are written at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsConfig {
    pub enabled: bool,
    pub namespace: String,
    /// The `Service` dimension: the Lambda function's name.
    pub service: String,
}

static CONFIG: OnceLock<MetricsConfig> = OnceLock::new();
static WARM: AtomicBool = AtomicBool::new(false);

/// Set once at start-up (later calls are ignored); until then nothing is written.
pub fn configure(config: MetricsConfig) {
    let _ = CONFIG.set(config);
}

fn config() -> Option<&'static MetricsConfig> {
    CONFIG.get().filter(|c| c.enabled)
}

/// Is any metric written? (Callers skip work, e.g. counting records, when not.)
pub fn enabled() -> bool {
    config().is_some()
}

/// The unit of a metric, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unit {
    /// A number of things.
    Count,
    /// Milliseconds.
    Milliseconds,
    /// Bytes.
    Bytes,
    /// Seconds.
    Seconds,
    /// Microseconds.
    Microseconds,
    /// A percentage.
    Percent,
    /// No unit.
    None,
    /// Things per second.
    CountPerSecond,
    /// Bytes per second.
    BytesPerSecond,
}

impl Unit {
    /// The unit's name in EMF (`Count`, `Count/Second`…).
    pub fn name(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Bytes => "Bytes",
            Unit::Seconds => "Seconds",
            Unit::Microseconds => "Microseconds",
            Unit::Percent => "Percent",
            Unit::None => "None",
            Unit::CountPerSecond => "Count/Second",
            Unit::BytesPerSecond => "Bytes/Second",
        }
    }
}

/// One EMF record: dimension sets, dimension values and metric values.
#[derive(Debug, Default)]
pub struct Record {
    dimension_sets: Vec<Vec<&'static str>>,
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<(&'static str, f64, Unit)>,
}

impl Record {
    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }
    /// A dimension set: the names of dimensions CloudWatch aggregates these metrics by.
    pub fn dimension_set(mut self, names: &[&'static str]) -> Self {
        self.dimension_sets.push(names.to_vec());
        self
    }
    pub fn metric(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.metrics.push((name, value, unit));
        self
    }

    /// The EMF JSON line (without newline).
    pub fn to_line(&self, namespace: &str, timestamp_ms: u64) -> String {
        let definitions = self
            .metrics
            .iter()
            .map(|(n, _, u)| json!({"Name": n, "Unit": u.name()}))
            .collect();
        let dimensions = self
            .dimensions
            .iter()
            .map(|(k, v)| ((*k).into(), Value::String(v.clone())));
        let values = self.metrics.iter().map(|(k, v, _)| ((*k).into(), json!(v)));
        emf_line(
            namespace,
            timestamp_ms,
            json!(self.dimension_sets),
            definitions,
            dimensions.chain(values),
        )
    }

    /// Write the line to stdout now (when metrics are on), with the `Service` dimension.
    pub fn emit(self) {
        let Some(c) = config() else {
            return;
        };
        let record = self.dimension("Service", c.service.clone());
        let line = record.to_line(&c.namespace, now_ms());
        write_line(&line);
    }
}

/// One EMF document as a JSON line (without newline): the `_aws` metadata (timestamp, namespace,
/// the dimension sets and the metric definitions), then `fields` at the top level in the order
/// given (dimension values, then metric values). The one writer of the built-in metrics
/// ([`Record`]) and a function's own (`custom_metrics`).
pub(crate) fn emf_line(
    namespace: &str,
    timestamp_ms: u64,
    dimension_sets: Value,
    definitions: Vec<Value>,
    fields: impl IntoIterator<Item = (String, Value)>,
) -> String {
    let mut root = Map::new();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": dimension_sets,
                "Metrics": definitions,
            }],
        }),
    );
    root.extend(fields);
    Value::Object(root).to_string()
}

/// Milliseconds since the epoch (EMF's `Timestamp`).
pub(crate) fn now_ms() -> u64 {
    crate::time::since_epoch().as_millis() as u64
}

/// The namespace and `Service` dimension, when metrics are on.
pub(crate) fn destination() -> Option<(&'static str, &'static str)> {
    config().map(|c| (c.namespace.as_str(), c.service.as_str()))
}

/// One EMF line on stdout, whole, flushed.
pub(crate) fn write_line(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The figures of one call.
#[derive(Debug, Default)]
pub struct CallFigures<'a> {
    pub function: &'a str,
    pub extension_point: &'a str,
    pub stack: &'a str,
    pub status: u16,
    pub duration_ms: f64,
    pub records_in: Option<usize>,
    pub records_out: Option<usize>,
    pub response_bytes: usize,
}

/// The per-call record; the first call of the process also counts a cold start.
pub fn call(f: CallFigures<'_>) {
    if !enabled() {
        return;
    }
    let cold = !WARM.swap(true, Ordering::Relaxed);
    let count = |n: Option<usize>| n.unwrap_or(0) as f64;
    Record::default()
        .dimension_set(&["Service", "Function", "ExtensionPoint", "Stack", "Status"])
        .dimension_set(&["Service"])
        .dimension("Function", f.function)
        .dimension("ExtensionPoint", f.extension_point)
        .dimension("Stack", f.stack)
        .dimension("Status", f.status.to_string())
        .metric("Calls", 1.0, Unit::Count)
        .metric("Errors", f64::from(u8::from(f.status >= 400)), Unit::Count)
        .metric("Duration", f.duration_ms, Unit::Milliseconds)
        .metric("RecordsIn", count(f.records_in), Unit::Count)
        .metric("RecordsOut", count(f.records_out), Unit::Count)
        .metric("ResponseBytes", f.response_bytes as f64, Unit::Bytes)
        .metric("ColdStart", f64::from(u8::from(cold)), Unit::Count)
        .emit();
}

/// Dedup checks (one key, or a page of them): how many were new, how many duplicates.
pub fn dedup(new: usize, duplicate: usize) {
    Record::default()
        .dimension_set(&["Service"])
        .metric("DedupNew", new as f64, Unit::Count)
        .metric("DedupDuplicate", duplicate as f64, Unit::Count)
        .emit();
}

/// One outgoing HTTP attempt (`inv.http()`): its host (`host[:port]`), its status (`200`…, or
/// `error` when no response came) and how long it took.
pub fn http_call(host: &str, status: &str, duration_ms: f64) {
    if !enabled() {
        return;
    }
    Record::default()
        .dimension_set(&["Service", "Host", "Status"])
        .dimension_set(&["Service"])
        .dimension("Host", host)
        .dimension("Status", status)
        .metric("HttpCalls", 1.0, Unit::Count)
        .metric("HttpDuration", duration_ms, Unit::Milliseconds)
        .emit();
}

/// One AWS SDK operation (DynamoDB, KMS, SQS; its retries included): the service, the
/// operation, its final status (`200`…, or `error` when no response came) and how long it took.
pub fn aws_call(service: &str, operation: &str, status: &str, duration_ms: f64) {
    if !enabled() {
        return;
    }
    Record::default()
        .dimension_set(&["Service", "AwsService", "Operation"])
        .dimension("AwsService", service)
        .dimension("Operation", operation)
        .dimension("Status", status)
        .metric("AwsCalls", 1.0, Unit::Count)
        .metric("AwsDuration", duration_ms, Unit::Milliseconds)
        .emit();
}

/// One SQS batch's outcomes, as `(metric name, count)`.
pub fn batch(outcomes: &[(&'static str, usize)]) {
    outcomes
        .iter()
        .fold(
            Record::default().dimension_set(&["Service"]),
            |r, (name, n)| r.metric(name, *n as f64, Unit::Count),
        )
        .emit();
}

/// The records of a page: the length of the first array among integrator.io's page fields.
pub fn records_in(options: Option<&Value>) -> Option<usize> {
    let o = options?.as_object()?;
    ["data", "postMapData", "responseData", "postResponseMapData"]
        .iter()
        .find_map(|k| o.get(*k).and_then(Value::as_array).map(Vec::len))
}

/// The records of an answer: a top-level array's length, or an export's `data` length.
pub fn records_out(text: &[u8]) -> Option<usize> {
    use serde::de::IgnoredAny;
    #[derive(serde::Deserialize)]
    struct Page {
        data: Vec<IgnoredAny>,
    }
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    match text[start] {
        b'[' => serde_json::from_slice::<Vec<IgnoredAny>>(text)
            .ok()
            .map(|v| v.len()),
        b'{' => serde_json::from_slice::<Page>(text)
            .ok()
            .map(|p| p.data.len()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_a_valid_emf_line() {
        let line = Record::default()
            .dimension_set(&["Service", "Function"])
            .dimension("Service", "pre-map")
            .dimension("Function", "flattenRecords")
            .metric("Calls", 1.0, Unit::Count)
            .metric("Duration", 2.5, Unit::Milliseconds)
            .to_line("NS", 1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).expect("json");
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(v["_aws"]["Timestamp"], 1_700_000_000_000u64);
        assert_eq!(cw["Namespace"], "NS");
        assert_eq!(cw["Dimensions"], json!([["Service", "Function"]]));
        assert_eq!(
            cw["Metrics"][1],
            json!({"Name": "Duration", "Unit": "Milliseconds"})
        );
        // Every dimension and metric named in _aws has its value at the top level.
        assert_eq!(v["Service"], "pre-map");
        assert_eq!(v["Function"], "flattenRecords");
        assert_eq!(v["Calls"], 1.0);
        assert_eq!(v["Duration"], 2.5);
        assert!(!line.contains('\n'));
    }

    /// The built-in metrics' EMF line, byte for byte (key order, number forms): pinned so that
    /// a change to how the document is assembled cannot change what CloudWatch reads.
    #[test]
    fn a_record_line_is_written_byte_for_byte() {
        let line = Record::default()
            .dimension_set(&["Service", "Function"])
            .dimension_set(&["Service"])
            .dimension("Service", "pre-map")
            .dimension("Function", "flattenRecords")
            .metric("Calls", 1.0, Unit::Count)
            .metric("Duration", 2.5, Unit::Milliseconds)
            .metric("ResponseBytes", 1e21, Unit::Bytes)
            .to_line("NS", 1_700_000_000_000);
        assert_eq!(
            line,
            r#"{"_aws":{"Timestamp":1700000000000,"CloudWatchMetrics":[{"Namespace":"NS","Dimensions":[["Service","Function"],["Service"]],"Metrics":[{"Name":"Calls","Unit":"Count"},{"Name":"Duration","Unit":"Milliseconds"},{"Name":"ResponseBytes","Unit":"Bytes"}]}]},"Service":"pre-map","Function":"flattenRecords","Calls":1.0,"Duration":2.5,"ResponseBytes":1e+21}"#
        );
    }

    #[test]
    fn records_are_counted_in_pages_and_answers() {
        assert_eq!(records_in(Some(&json!({"data": [1, 2, 3]}))), Some(3));
        assert_eq!(records_in(Some(&json!({"postMapData": [1]}))), Some(1));
        assert_eq!(records_in(Some(&json!({"x": 1}))), None);
        assert_eq!(records_out(br#"[{"data":{}},{"errors":[]}]"#), Some(2));
        assert_eq!(records_out(br#"{"data":[1,2],"lastPage":true}"#), Some(2));
        assert_eq!(records_out(br#"{"statusCode":200}"#), None);
        assert_eq!(records_out(b"null"), None);
    }
}
