//! Compact JSON output that matches what Node's `JSON.stringify` writes.
//!
//! `serde_json` (with `preserve_order`) already keeps object keys in the order they were
//! received and escapes strings the way `JSON.stringify` does (lowercase `\u00xx` for control
//! characters, raw non-ASCII, raw U+2028, no `/` escaping). The one difference is numbers that
//! were parsed as floating point: serde prints `100.0`, `1e21` and `-0.0` where JavaScript prints
//! `100`, `1e+21` and `0`. [`JsFormatter`] prints floats with ECMAScript's `Number::toString`
//! rules, so echoed values come back exactly as the Node stack would send them.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io;

/// A `serde_json` formatter that writes floats like JavaScript.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsFormatter;

impl Formatter for JsFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        // The common case (no exponent) straight from ryu's stack buffer, without allocating.
        let mut ryu_buf = ryu::Buffer::new();
        if let Some(s) = plain_decimal(value, &mut ryu_buf) {
            return writer.write_all(s.as_bytes());
        }
        let mut buf = String::with_capacity(24);
        js_number(value, &mut buf);
        writer.write_all(buf.as_bytes())
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        self.write_f64(writer, f64::from(value))
    }
}

/// Serialize `value` as compact JSON text with JavaScript number formatting.
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, JsFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
}

/// Like [`to_vec`], as a `String`.
pub fn to_string<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    // serde_json only ever writes valid UTF-8.
    to_vec(value).map(|v| String::from_utf8(v).unwrap_or_default())
}

/// `v` as JavaScript prints it when ryu prints it without an exponent, else `None`.
///
/// ryu uses plain decimal notation exactly when the decimal exponent `n` (value =
/// 0.d1d2…dk × 10^n) is in -5 < n <= 16, a subset of ECMAScript's -6 < n <= 21; in that range
/// both print the same shortest digits, except that ryu marks integers with a trailing `.0`.
/// Zero (ryu prints `-0.0` for negative zero) and non-finite values are left to [`js_number`].
fn plain_decimal(v: f64, buf: &mut ryu::Buffer) -> Option<&str> {
    if !v.is_finite() || v == 0.0 {
        return None;
    }
    let s = buf.format_finite(v);
    if s.contains(['e', 'E']) {
        return None;
    }
    Some(s.strip_suffix(".0").unwrap_or(s))
}

/// Append ECMAScript `Number::prototype::toString(10)` of `v` to `out`.
/// NaN and infinities become `null`, as `JSON.stringify` does.
pub fn js_number(v: f64, out: &mut String) {
    if !v.is_finite() {
        out.push_str("null");
        return;
    }
    if v == 0.0 {
        out.push('0');
        return;
    }
    let mut ryu_buf = ryu::Buffer::new();
    if let Some(s) = plain_decimal(v, &mut ryu_buf) {
        out.push_str(s);
        return;
    }
    let s = ryu_buf.format_finite(v);
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    // Split ryu's shortest representation into significant digits and a decimal exponent `n`
    // such that value = 0.d1d2...dk × 10^n (the `n` of the ECMAScript algorithm).
    let (mantissa, exp) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (s, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let mut digits: String = int_part.chars().chain(frac_part.chars()).collect();
    let mut n = int_part.len() as i32 + exp;
    // Strip leading zeros (e.g. "0.001") and trailing zeros (e.g. "100.0").
    let lead = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..lead);
    n -= lead as i32;
    let trimmed = digits.trim_end_matches('0').len();
    digits.truncate(trimmed);
    let k = digits.len() as i32;

    if neg {
        out.push('-');
    }
    if k <= n && n <= 21 {
        out.push_str(&digits);
        out.extend(std::iter::repeat_n('0', (n - k) as usize));
    } else if 0 < n && n <= 21 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        let e = n - 1;
        out.push(if e < 0 { '-' } else { '+' });
        out.push_str(&e.abs().to_string());
    }
}

/// Length of a JSON text in UTF-16 code units, which is what JavaScript's `String.length`
/// returns and what integrator.io's response-size limit counts.
pub fn utf16_len(s: &str) -> usize {
    // Every UTF-8 sequence start byte is one code point; 4-byte sequences (lead byte >= 0xF0)
    // are outside the BMP and take a surrogate pair.
    s.as_bytes()
        .iter()
        .map(|&b| usize::from((b & 0xC0) != 0x80) + usize::from(b >= 0xF0))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn js(v: f64) -> String {
        let mut s = String::new();
        js_number(v, &mut s);
        s
    }

    #[test]
    fn numbers_print_like_javascript() {
        let cases = [
            (1.0, "1"),
            (100.0, "100"),
            (2.5, "2.5"),
            (-3.25, "-3.25"),
            (0.1, "0.1"),
            (0.001, "0.001"),
            (1e-6, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e-7, "1.5e-7"),
            (1e16, "10000000000000000"),
            (1e21, "1e+21"),
            (1.5e21, "1.5e+21"),
            (123456789012345680000.0, "123456789012345680000"),
            (-0.0, "0"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ];
        for (v, want) in cases {
            assert_eq!(js(v), want, "formatting {v:e}");
        }
    }

    /// The general algorithm of `js_number`, without the plain-decimal shortcut.
    fn js_general(v: f64) -> String {
        let mut ryu_buf = ryu::Buffer::new();
        let s = ryu_buf.format_finite(v);
        let (neg, s) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let (mantissa, exp) = match s.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i32>().unwrap()),
            None => (s, 0),
        };
        let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits: String = int_part.chars().chain(frac_part.chars()).collect();
        let n0 = int_part.len() as i32 + exp;
        let lead = digits.len() - digits.trim_start_matches('0').len();
        let digits = digits[lead..].trim_end_matches('0').to_owned();
        let n = n0 - lead as i32;
        let k = digits.len() as i32;
        let mut out = String::from(if neg { "-" } else { "" });
        if k <= n && n <= 21 {
            out.push_str(&digits);
            out.extend(std::iter::repeat_n('0', (n - k) as usize));
        } else if 0 < n && n <= 21 {
            out.push_str(&format!(
                "{}.{}",
                &digits[..n as usize],
                &digits[n as usize..]
            ));
        } else if -6 < n && n <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', (-n) as usize));
            out.push_str(&digits);
        } else {
            let e = n - 1;
            let frac = if k > 1 {
                format!(".{}", &digits[1..])
            } else {
                String::new()
            };
            out.push_str(&format!(
                "{}{frac}e{}{}",
                &digits[..1],
                if e < 0 { '-' } else { '+' },
                e.abs()
            ));
        }
        out
    }

    #[test]
    fn plain_decimal_shortcut_agrees_with_the_general_algorithm() {
        let mut vals = vec![
            0.5, 1.25, 3.0, 123.456, 1e15, 9.999e15, 1e16, 1.5e16, 1e-4, 1.5e-5,
        ];
        // Deterministic spread over many magnitudes (xorshift).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mantissa = (x >> 11) as f64 / (1u64 << 53) as f64;
            let exp = (x % 60) as i32 - 30;
            vals.push(mantissa * 10f64.powi(exp));
            vals.push((x % 1_000_000) as f64 * 0.25);
        }
        for v in vals {
            for v in [v, -v] {
                if v != 0.0 {
                    assert_eq!(js(v), js_general(v), "formatting {v:e}");
                    let mut out = Vec::new();
                    JsFormatter.write_f64(&mut out, v).unwrap();
                    assert_eq!(String::from_utf8(out).unwrap(), js_general(v));
                }
            }
        }
    }

    #[test]
    fn compact_output_keeps_key_order_and_js_escapes() {
        let v: Value = serde_json::from_str(
            r#"{"b":1,"a":[1.0,2.50,-0.0],"s":"q\"b\\s/t\tn\nc\u0001d\u007f","ls":"a\u2028b"}"#,
        )
        .unwrap();
        assert_eq!(
            to_string(&v).unwrap(),
            "{\"b\":1,\"a\":[1,2.5,0],\"s\":\"q\\\"b\\\\s/t\\tn\\nc\\u0001d\u{7f}\",\"ls\":\"a\u{2028}b\"}"
        );
    }

    #[test]
    fn utf16_length_counts_surrogate_pairs() {
        assert_eq!(utf16_len(&to_string(&json!(["é€😀"])).unwrap()), 8);
        assert_eq!(utf16_len("null"), 4);
        assert_eq!(utf16_len(""), 0);
        assert_eq!(utf16_len("中文"), 2);
    }
}
