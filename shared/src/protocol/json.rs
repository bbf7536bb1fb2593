//! JSON in and out, byte for byte as Node's `JSON.parse` / `JSON.stringify` would do it.
//!
//! [`from_slice`] is the general parse entry point (see the end of these notes). `serde_json` (with
//! `preserve_order`) keeps object keys in arrival order and, for a repeated key, the last value
//! at the first key's place, as `JSON.parse` does; `float_roundtrip` makes every float the exact
//! nearest double, as `JSON.parse` reads it. [`to_vec`] writes compact JSON the way
//! `JSON.stringify` does: serde_json already escapes strings like it (lowercase `\u00xx` for
//! control characters, raw non-ASCII and U+2028, no `/` escaping); [`JsFormatter`] adds
//! ECMAScript's `Number::toString` for floats (`100`, `1e+21`, `0` where serde prints `100.0`,
//! `1e21`, `-0.0`) and writes integers beyond 2^53 as the double JavaScript would hold; and keys
//! that are array indices (`"0"`, `"42"`) come first, ascending, as in any JavaScript object,
//! whether they are strings or the integer keys of a typed map (`HashMap<u32, _>`, written in
//! hash order by serde), which also keep every digit (a key is a string in JavaScript).
//!
//! `shared/tests/json_differential.rs` checks all of this against `node` on generated texts.
//! Two inputs Node accepts are refused by [`from_slice`]: a lone surrogate escape (`"\ud800"`),
//! which no Rust `String` can hold, and a number beyond f64's range (`1e400`, Infinity in
//! JavaScript, written back as `null`). Inside a page's records they are taken: a record nobody
//! reads is rewritten from its text as Node writes it (`super::rewrite`).
//!
//! Requests do not come through [`from_slice`] whole any more: the transports scan them once
//! ([`super::scan`]) and keep the options as text ([`super::options`]), with every record a
//! [`super::Record`] that is parsed here only when a function reads it, and written back as
//! its own text when it is already in `JSON.stringify`'s form. [`from_slice`] reads what the
//! scan leaves to it, and everything else. Engines measured (docs/BENCHMARKS.md, "Engine
//! candidates"): a SIMD parser only pays off with its own value type (sonic-rs `Value`: ~5×
//! faster parse, but it keeps repeated keys and the function API is `serde_json::Value`);
//! parsing into `serde_json::Value` costs the same whichever parser feeds it, because building
//! the maps is the cost, so the fix was not to build them.

use serde::Serialize;
use serde_json::Value;
use serde_json::ser::Formatter;
use std::io;

/// A `serde_json` formatter that writes numbers like JavaScript: floats with ECMAScript's
/// `Number::toString`, and integers beyond 2^53 as the nearest double (what `JSON.parse` makes
/// of them).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsFormatter;

/// 2^53: integers up to it are exact doubles.
const MAX_EXACT: u64 = 1 << 53;

fn write_js_f64<W: ?Sized + io::Write>(writer: &mut W, value: f64) -> io::Result<()> {
    // The common case (no exponent) straight from ryu's stack buffer, without allocating.
    let mut ryu_buf = ryu::Buffer::new();
    if let Some(s) = plain_decimal(value, &mut ryu_buf) {
        return writer.write_all(s.as_bytes());
    }
    let mut buf = String::with_capacity(24);
    js_number(value, &mut buf);
    writer.write_all(buf.as_bytes())
}

impl Formatter for JsFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        write_js_f64(writer, value)
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        write_js_f64(writer, f64::from(value))
    }

    fn write_u64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u64) -> io::Result<()> {
        if value <= MAX_EXACT {
            writer.write_all(itoa::Buffer::new().format(value).as_bytes())
        } else {
            write_js_f64(writer, value as f64)
        }
    }

    fn write_i64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i64) -> io::Result<()> {
        if value.unsigned_abs() <= MAX_EXACT {
            writer.write_all(itoa::Buffer::new().format(value).as_bytes())
        } else {
            write_js_f64(writer, value as f64)
        }
    }

    fn write_u128<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: u128) -> io::Result<()> {
        match u64::try_from(value) {
            Ok(v) => self.write_u64(writer, v),
            Err(_) => write_js_f64(writer, value as f64),
        }
    }

    fn write_i128<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: i128) -> io::Result<()> {
        match i64::try_from(value) {
            Ok(v) => self.write_i64(writer, v),
            Err(_) => write_js_f64(writer, value as f64),
        }
    }
}

/// Is `key` an array index (the canonical decimal form of an integer below 2^32 − 1)? A
/// JavaScript object lists such keys first, in ascending numeric order, before its other keys
/// in insertion order, so `JSON.stringify` writes them that way.
pub fn is_array_index(key: &str) -> bool {
    let b = key.as_bytes();
    if b.is_empty() || b.len() > 10 || !b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    if b.len() > 1 && b[0] == b'0' {
        return false;
    }
    key.parse::<u64>().is_ok_and(|n| n < u64::from(u32::MAX))
}

/// Where [`Noting`] is: outside a key, or inside one whose text so far is empty, one fragment
/// that is an array index, or anything else.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KeyState {
    Outside,
    Empty,
    Index,
    Other,
}

/// [`JsFormatter`] that also notes whether any object key it wrote is an array index.
struct Noting<'a> {
    seen: &'a std::cell::Cell<bool>,
    key: KeyState,
}

impl Noting<'_> {
    /// An integer key's exact digits, noted like a string key's text.
    fn key_digits<W: ?Sized + io::Write>(&mut self, w: &mut W, digits: &str) -> io::Result<()> {
        self.key = match self.key {
            KeyState::Empty if is_array_index(digits) => KeyState::Index,
            _ => KeyState::Other,
        };
        w.write_all(digits.as_bytes())
    }
}

impl Formatter for Noting<'_> {
    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f64) -> io::Result<()> {
        write_js_f64(w, v)
    }
    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, v: f32) -> io::Result<()> {
        write_js_f64(w, f64::from(v))
    }
    // An integer inside a key is a typed map's integer key (`HashMap<u32, _>`): serde_json
    // writes it between the key's quotes with these methods, not as a string fragment. In
    // JavaScript a key is a string, so it keeps every digit (no rounding above 2^53), and it
    // is noted when it is an array index so that the keys are put in JavaScript's order.
    fn write_u8<W: ?Sized + io::Write>(&mut self, w: &mut W, v: u8) -> io::Result<()> {
        self.write_u64(w, u64::from(v))
    }
    fn write_u16<W: ?Sized + io::Write>(&mut self, w: &mut W, v: u16) -> io::Result<()> {
        self.write_u64(w, u64::from(v))
    }
    fn write_u32<W: ?Sized + io::Write>(&mut self, w: &mut W, v: u32) -> io::Result<()> {
        self.write_u64(w, u64::from(v))
    }
    fn write_i8<W: ?Sized + io::Write>(&mut self, w: &mut W, v: i8) -> io::Result<()> {
        self.write_i64(w, i64::from(v))
    }
    fn write_i16<W: ?Sized + io::Write>(&mut self, w: &mut W, v: i16) -> io::Result<()> {
        self.write_i64(w, i64::from(v))
    }
    fn write_i32<W: ?Sized + io::Write>(&mut self, w: &mut W, v: i32) -> io::Result<()> {
        self.write_i64(w, i64::from(v))
    }
    fn write_u64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: u64) -> io::Result<()> {
        match self.key {
            KeyState::Outside => JsFormatter.write_u64(w, v),
            _ => self.key_digits(w, itoa::Buffer::new().format(v)),
        }
    }
    fn write_i64<W: ?Sized + io::Write>(&mut self, w: &mut W, v: i64) -> io::Result<()> {
        match self.key {
            KeyState::Outside => JsFormatter.write_i64(w, v),
            _ => self.key_digits(w, itoa::Buffer::new().format(v)),
        }
    }
    fn write_u128<W: ?Sized + io::Write>(&mut self, w: &mut W, v: u128) -> io::Result<()> {
        match self.key {
            KeyState::Outside => JsFormatter.write_u128(w, v),
            _ => self.key_digits(w, itoa::Buffer::new().format(v)),
        }
    }
    fn write_i128<W: ?Sized + io::Write>(&mut self, w: &mut W, v: i128) -> io::Result<()> {
        match self.key {
            KeyState::Outside => JsFormatter.write_i128(w, v),
            _ => self.key_digits(w, itoa::Buffer::new().format(v)),
        }
    }
    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.key = KeyState::Empty;
        if first { Ok(()) } else { w.write_all(b",") }
    }
    fn end_object_key<W: ?Sized + io::Write>(&mut self, _w: &mut W) -> io::Result<()> {
        if self.key == KeyState::Index {
            self.seen.set(true);
        }
        self.key = KeyState::Outside;
        Ok(())
    }
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        self.key = match self.key {
            KeyState::Outside => KeyState::Outside,
            KeyState::Empty if is_array_index(fragment) => KeyState::Index,
            _ => KeyState::Other,
        };
        w.write_all(fragment.as_bytes())
    }
    fn write_char_escape<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        escape: serde_json::ser::CharEscape,
    ) -> io::Result<()> {
        if self.key != KeyState::Outside {
            self.key = KeyState::Other;
        }
        serde_json::ser::CompactFormatter.write_char_escape(w, escape)
    }
}

/// A value written in JavaScript's key order: array-index keys first, ascending.
struct JsOrder<'a>(&'a Value);

impl Serialize for JsOrder<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self.0 {
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(&JsOrder(i))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut index: Vec<(u64, &String, &Value)> = map
                    .iter()
                    .filter(|(k, _)| is_array_index(k))
                    .map(|(k, v)| (k.parse::<u64>().unwrap_or(0), k, v))
                    .collect();
                index.sort_by_key(|(n, _, _)| *n);
                let mut m = s.serialize_map(Some(map.len()))?;
                for (_, k, v) in &index {
                    m.serialize_entry(k, &JsOrder(v))?;
                }
                for (k, v) in map.iter().filter(|(k, _)| !is_array_index(k)) {
                    m.serialize_entry(k, &JsOrder(v))?;
                }
                m.end()
            }
            other => other.serialize(s),
        }
    }
}

/// Serialize `value` as compact JSON text, byte for byte what `JSON.stringify` writes for the
/// same data: JavaScript number formatting, and object keys in JavaScript's order (keys that are
/// array indices first, ascending; the rare text with such keys is rewritten in that order).
pub fn to_vec<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    in_js_order(&|| to_vec_marked(value))
}

/// The writer's output (from `write`) in JavaScript's key order, records written as their own
/// text. Not generic, so that only the writing itself is compiled per type.
pub(crate) fn in_js_order(write: Writer<'_>) -> Result<Vec<u8>, serde_json::Error> {
    let _scope = super::text::Scope::unspliced();
    let (mut out, seen) = write()?;
    if seen {
        // Our own output: it parses, with every key in the order it was written.
        let v: Value = serde_json::from_slice(&out)?;
        out.clear();
        JsOrder(&v).serialize(&mut serde_json::Serializer::with_formatter(
            &mut out,
            JsFormatter,
        ))?;
    }
    Ok(out)
}

/// A write of one value: the writer's output, and whether an object key in it is an array
/// index (see [`to_vec_marked`]).
pub(crate) type Writer<'a> = &'a dyn Fn() -> Result<(Vec<u8>, bool), serde_json::Error>;

/// The writer's output for `value`, and whether an object key in it is an array index (then
/// the keys are not yet in JavaScript's order: [`to_vec`] rewrites it). Records write what
/// [`super::text`] tells them to.
pub(crate) fn to_vec_marked<T: Serialize + ?Sized>(
    value: &T,
) -> Result<(Vec<u8>, bool), serde_json::Error> {
    let mut out = Out(Vec::with_capacity(128));
    let seen = std::cell::Cell::new(false);
    let fmt = Noting {
        seen: &seen,
        key: KeyState::Outside,
    };
    value.serialize(&mut serde_json::Serializer::with_formatter(&mut out, fmt))?;
    Ok((out.0, seen.get()))
}

/// The writer's bytes. serde_json writes its punctuation and short keys a few bytes at a time:
/// into a bare `Vec<u8>`, each was a call to `extend_from_slice` and one to `memcpy`, a seventh
/// of a 100-record preMap call's instructions (callgrind); here a short write is pushed.
struct Out(Vec<u8>);

impl io::Write for Out {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // Up to a word's worth pushed in place (more cost more than the call to copy them).
        if buf.len() <= 8 {
            self.0.reserve(8);
            for &b in buf {
                self.0.push(b);
            }
        } else {
            self.0.extend_from_slice(buf);
        }
        Ok(())
    }

    #[inline]
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Parse a JSON text the way `JSON.parse` reads it: object keys keep their first position and a
/// repeated key keeps its last value. Every whole-text parse of outside JSON goes through here
/// (what the transports' scan leaves to it, records when first read, other payloads), so the
/// engine behind it can change in one place.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice(bytes)
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
    utf16_len_bytes(s.as_bytes())
}

/// [`utf16_len`] of UTF-8 text given as bytes.
pub fn utf16_len_bytes(s: &[u8]) -> usize {
    // Every UTF-8 sequence start byte is one code point; 4-byte sequences (lead byte >= 0xF0)
    // are outside the BMP and take a surrogate pair.
    s.iter()
        .map(|&b| usize::from((b & 0xC0) != 0x80) + usize::from(b >= 0xF0))
        .sum()
}

#[cfg(test)]
mod tests;
