//! The pieces of `bench-driver` (`make bench`), by role: `measure` takes every figure, `chart`
//! draws the SVG bar charts and `report` writes `docs/BENCHMARKS.md`.

pub(crate) mod chart;
pub(crate) mod measure;
pub(crate) mod report;

use std::time::Duration;

pub(crate) const FUNCTION_BINS: [&str; 14] = [
    "pre-save-page",
    "pre-map",
    "post-map",
    "post-submit",
    "post-response-map",
    "post-aggregate",
    "export",
    "import",
    "ping",
    "steps",
    "settings",
    "incoming",
    "worker",
    "tick",
];
pub(crate) const HELLO: &str = "hello-world";
/// The floor for the first invocation that makes DynamoDB calls (`bench/src/bin/hello-dynamodb.rs`).
pub(crate) const HELLO_DDB: &str = "hello-dynamodb";
const TOKEN: &str = "SYS_TOKEN";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
