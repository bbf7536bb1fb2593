//! Shared pieces of `make bench`: the synthetic record pages used by the wrk runs and the
//! criterion bench, so both measure the same shapes.

use serde_json::{Value, json};

/// One synthetic integrator.io record (~200 bytes of JSON): nested object, array, numbers,
/// booleans, a non-ASCII string.
pub fn record(i: usize) -> Value {
    json!({
        "id": format!("rec-{i:08}"),
        "name": format!("Customer {i}"),
        "email": format!("customer{i}@example.com"),
        "active": !i.is_multiple_of(3),
        "amount": (i as f64) * 1.25 + 0.5,
        "address": {"street": format!("{} Main St", i % 1000), "city": "Zürich", "zip": format!("{:05}", i % 100000)},
        "tags": ["bench", if i.is_multiple_of(2) { "even" } else { "odd" }],
    })
}

/// `n` records.
pub fn records(n: usize) -> Vec<Value> {
    (0..n).map(record).collect()
}

/// The server-stack request body (`POST /function`) calling the reference module's raw hook
/// `function` (`preMap` or `preSavePage`) with `n` records.
pub fn envelope(function: &str, n: usize) -> Vec<u8> {
    let mut options = json!({
        "data": records(n),
        "_integrationId": "int-1",
        "_flowId": "flow-1",
    });
    if function == "preSavePage" {
        options["errors"] = json!([]);
    }
    let body = json!({"diy": true, "type": "hook", "function": function, "options": options});
    // Written as `JSON.stringify` writes it (integrator.io's runtime is Node): `3` where
    // serde_json would write the float `3.0`.
    integrator_lambda::protocol::json::to_vec(&body).unwrap_or_default()
}

/// A preSavePage envelope of about `bytes` bytes.
pub fn envelope_of_size(bytes: usize) -> (Vec<u8>, usize) {
    let per = serde_json::to_vec(&record(12345)).map_or(200, |v| v.len() + 1);
    let n = bytes / per;
    (envelope("preSavePage", n), n)
}

/// Median of a sample (sorted copy); 0 when empty.
pub fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
