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

/// How a page's text is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// As `JSON.stringify` writes it (integrator.io).
    Canonical,
    /// One record in four as Python's `json.dumps` writes it (`5.0`, `\u00e9`, spaces after
    /// `:` and `,`) with `/` escaped as `\/`; the others canonical.
    PythonQuarter,
    /// The whole body pretty-printed (two-space indent, as `JSON.stringify(v, null, 2)`).
    Pretty,
}

/// A preSavePage envelope of about `bytes` bytes, written in `form`.
pub fn envelope_of_size_in(bytes: usize, form: Form) -> (Vec<u8>, usize) {
    let (_, n) = envelope_of_size(bytes);
    (envelope_in("preSavePage", n, form), n)
}

/// [`envelope`] written in `form`.
pub fn envelope_in(function: &str, n: usize, form: Form) -> Vec<u8> {
    let canonical = envelope(function, n);
    match form {
        Form::Canonical => canonical,
        Form::Pretty => {
            let v: Value = serde_json::from_slice(&canonical).unwrap_or_default();
            serde_json::to_vec_pretty(&v).unwrap_or_default()
        }
        Form::PythonQuarter => {
            let head = format!(
                r#"{{"diy":true,"type":"hook","function":"{function}","options":{{"data":["#
            );
            let mut out = head.into_bytes();
            for i in 0..n {
                if i > 0 {
                    out.push(b',');
                }
                // i % 4 == 2: the records whose amount is whole (written `3.0` by Python).
                if i % 4 == 2 {
                    out.extend_from_slice(&python_dumps(&record(i)));
                } else {
                    out.extend_from_slice(
                        &integrator_lambda::protocol::json::to_vec(&record(i)).unwrap_or_default(),
                    );
                }
            }
            out.extend_from_slice(br#"],"_integrationId":"int-1","_flowId":"flow-1""#);
            if function == "preSavePage" {
                out.extend_from_slice(br#","errors":[]"#);
            }
            out.extend_from_slice(b"}}");
            out
        }
    }
}

/// `v` as Python's `json.dumps(v)` writes it (floats keep `.0`, non-ASCII as `\uXXXX`,
/// `", "` and `": "` separators), with `/` escaped too (as PHP and some other writers do).
pub fn python_dumps(v: &Value) -> Vec<u8> {
    use std::fmt::Write;
    fn go(v: &Value, out: &mut String) {
        match v {
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    go(x, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    string(k, out);
                    out.push_str(": ");
                    go(x, out);
                }
                out.push('}');
            }
            Value::String(s) => string(s, out),
            Value::Number(n) => match n.as_f64() {
                Some(f) if n.is_f64() && f.fract() == 0.0 => {
                    let _ = write!(out, "{f:.1}");
                }
                _ => {
                    let _ = write!(out, "{n}");
                }
            },
            other => out.push_str(&other.to_string()),
        }
    }
    fn string(s: &str, out: &mut String) {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '/' => out.push_str("\\/"),
                '\n' => out.push_str("\\n"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        let _ = write!(out, "\\u{u:04x}");
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    let mut out = String::new();
    go(v, &mut out);
    out.into_bytes()
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
