//! One record's JSON text rewritten straight into what Node's
//! `JSON.stringify(JSON.parse(text))` writes, without building a value.
//!
//! A record that is not already in `JSON.stringify`'s form (whitespace, `5.0`, `\u00e9`, `\/`,
//! a repeated key, array-index keys out of JavaScript's order) is written back through here when
//! the function did not change it: the cost is one pass over its own bytes, not a parse into a
//! `serde_json::Value` and a write of that. The rewrite also takes what `JSON.parse` accepts and
//! a `serde_json::Value` cannot hold, so that a record nobody reads never fails its page:
//! - a lone surrogate escape (`"\ud800"`) is written back escaped, lowercase, as
//!   `JSON.stringify` does since ES2019 (a pair of escapes becomes the character itself);
//! - a number beyond f64's range (`1e999`) is Infinity in JavaScript, written `null`;
//! - nesting deeper than serde_json's 128 levels is rewritten like any other (the loop keeps its
//!   own stack, one small frame per open array or object).
//!
//! The text must be one JSON value that the scan ([`super::scan`]) accepted, in valid UTF-8
//! (the transports read invalid UTF-8 as Node does, each bad sequence as U+FFFD, before the
//! scan). Anything else is refused with `Err(())`, and nothing is promised about `out` then.

use super::json::{is_array_index, js_number};
use super::scan::Shape;
use unspace::unspace;

mod unspace;

/// An open array or object. An object whose keys may need reordering notes where it starts in
/// the output and where its members are in [`Scratch::members`].
#[derive(Clone, Copy, PartialEq, Eq)]
enum Frame {
    Array,
    /// Keys known to be in JavaScript's order (the scan said so): written as they come.
    Object,
    Sorted {
        start: usize,
        base: usize,
    },
}

/// One member of an object being written: `out[key.0..key.1]` is its key (with quotes),
/// `out[key.1 + 1..end]` its value.
#[derive(Clone, Copy)]
struct Member {
    key: (usize, usize),
    end: usize,
}

/// The rewrite's working memory, kept from one record to the next (a page rewrites thousands
/// of records: none of them allocates a stack or a member list of its own).
#[derive(Default)]
pub(crate) struct Scratch {
    stack: Vec<Frame>,
    /// The members of every open [`Frame::Sorted`] object, each object's after its parent's.
    members: Vec<Member>,
}

/// Append to `out` what `JSON.stringify(JSON.parse(text))` writes for `text`.
pub(crate) fn rewrite(text: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    rewrite_with(text, Shape::Unknown, &mut Scratch::default(), out)
}

/// [`rewrite`], with `shape` what the scan knows of the text ([`super::scan::RecordSpan::shape`]):
/// with its keys in order (no key repeated, array-index keys first and ascending) members are
/// not tracked nor checked; a text canonical but for whitespace only loses the whitespace.
/// `scratch` is working memory to reuse.
pub(crate) fn rewrite_with(
    text: &[u8],
    shape: Shape,
    scratch: &mut Scratch,
    out: &mut Vec<u8>,
) -> Result<(), ()> {
    let keys_in_order = match shape {
        Shape::Spaced => return unspace(text, out),
        Shape::KeysInOrder => true,
        Shape::Unknown => false,
    };
    scratch.stack.clear();
    scratch.members.clear();
    let Scratch { stack, members } = scratch;
    let mut r = Rewriter { b: text, i: 0 };
    'value: loop {
        r.ws();
        match r.peek().ok_or(())? {
            b'{' => {
                r.i += 1;
                r.ws();
                if r.peek() == Some(b'}') {
                    r.i += 1;
                    out.extend_from_slice(b"{}");
                } else {
                    let start = out.len();
                    out.push(b'{');
                    let key = r.key(out)?;
                    if keys_in_order {
                        stack.push(Frame::Object);
                    } else {
                        stack.push(Frame::Sorted {
                            start,
                            base: members.len(),
                        });
                        members.push(Member { key, end: 0 });
                    }
                    continue 'value;
                }
            }
            b'[' => {
                r.i += 1;
                r.ws();
                if r.peek() == Some(b']') {
                    r.i += 1;
                    out.extend_from_slice(b"[]");
                } else {
                    out.push(b'[');
                    stack.push(Frame::Array);
                    continue 'value;
                }
            }
            b'"' => r.string(out)?,
            b't' => r.literal(b"true", out)?,
            b'f' => r.literal(b"false", out)?,
            b'n' => r.literal(b"null", out)?,
            b'-' | b'0'..=b'9' => r.number(out)?,
            _ => return Err(()),
        }
        // A value is written: close what it closes, then go on to the next one.
        loop {
            r.ws();
            let Some(&top) = stack.last() else {
                return if r.i == r.b.len() { Ok(()) } else { Err(()) };
            };
            match (top, r.peek()) {
                (Frame::Array, Some(b',')) => {
                    r.i += 1;
                    out.push(b',');
                    continue 'value;
                }
                (Frame::Array, Some(b']')) => {
                    r.i += 1;
                    out.push(b']');
                    stack.pop();
                }
                (Frame::Object | Frame::Sorted { .. }, Some(b',')) => {
                    r.i += 1;
                    if let Some(m) = members.last_mut().filter(|_| top != Frame::Object) {
                        m.end = out.len();
                    }
                    out.push(b',');
                    r.ws();
                    let key = r.key(out)?;
                    if top != Frame::Object {
                        members.push(Member { key, end: 0 });
                    }
                    continue 'value;
                }
                (Frame::Object, Some(b'}')) => {
                    r.i += 1;
                    out.push(b'}');
                    stack.pop();
                }
                (Frame::Sorted { start, base }, Some(b'}')) => {
                    r.i += 1;
                    if let Some(m) = members.last_mut() {
                        m.end = out.len();
                    }
                    out.push(b'}');
                    stack.pop();
                    in_js_order(out, start, &members[base..]);
                    members.truncate(base);
                }
                _ => return Err(()),
            }
        }
    }
}

/// The object written at `out[start..]` as `JSON.parse` builds it and `JSON.stringify` lists
/// it: a repeated key keeps its first place and its last value, and array-index keys come
/// first, ascending. Left as written when it is already so (the usual case).
fn in_js_order(out: &mut Vec<u8>, start: usize, members: &[Member]) {
    let key = |m: &Member| &out[m.key.0..m.key.1];
    let name = |m: &Member| std::str::from_utf8(&out[m.key.0 + 1..m.key.1 - 1]).ok();
    let index = |m: &Member| {
        name(m)
            .filter(|k| is_array_index(k))
            .and_then(|k| k.parse::<u64>().ok())
    };
    let repeated = if members.len() <= 16 {
        members
            .iter()
            .enumerate()
            .any(|(i, m)| members[..i].iter().any(|p| key(p) == key(m)))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(members.len());
        !members.iter().all(|m| seen.insert(key(m)))
    };
    let mut ordered = true;
    let (mut named, mut last) = (false, None);
    for m in members {
        match index(m) {
            Some(n) => {
                ordered &= !named && last.is_none_or(|l| l < n);
                last = Some(n);
            }
            None => named = true,
        }
    }
    if !repeated && ordered {
        return;
    }
    // Each key at its first place, with its last value.
    let mut at: std::collections::HashMap<&[u8], usize> =
        std::collections::HashMap::with_capacity(members.len());
    let mut kept: Vec<(Member, Member)> = Vec::with_capacity(members.len());
    for m in members {
        match at.get(key(m)) {
            Some(&i) => kept[i].1 = *m,
            None => {
                at.insert(key(m), kept.len());
                kept.push((*m, *m));
            }
        }
    }
    let mut entries: Vec<(Option<u64>, Vec<u8>)> = kept
        .iter()
        .map(|(first, last)| {
            let mut e = key(first).to_vec();
            e.push(b':');
            e.extend_from_slice(&out[last.key.1 + 1..last.end]);
            (index(first), e)
        })
        .collect();
    // A stable sort: index keys ascending first, the others in their order.
    entries.sort_by_key(|(n, _)| n.map_or((1, 0), |n| (0, n)));
    out.truncate(start);
    out.push(b'{');
    for (i, (_, e)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(e);
    }
    out.push(b'}');
}

struct Rewriter<'a> {
    b: &'a [u8],
    i: usize,
}

impl Rewriter<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        if let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.i = super::scan::skip_ws(self.b, self.i);
        }
    }

    fn literal(&mut self, word: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
        if !self.b[self.i..].starts_with(word) {
            return Err(());
        }
        self.i += word.len();
        out.extend_from_slice(word);
        Ok(())
    }

    /// A member's key and its `:`; the key's output range (quotes included).
    fn key(&mut self, out: &mut Vec<u8>) -> Result<(usize, usize), ()> {
        let start = out.len();
        self.string(out)?;
        let end = out.len();
        self.ws();
        if self.peek() != Some(b':') {
            return Err(());
        }
        self.i += 1;
        out.push(b':');
        Ok((start, end))
    }

    /// Four hex digits at `at`, as a code unit.
    fn hex(&self, at: usize) -> Result<u32, ()> {
        let h = self.b.get(at..at + 4).ok_or(())?;
        let mut v = 0u32;
        for &c in h {
            v = v * 16 + char::from(c).to_digit(16).ok_or(())?;
        }
        Ok(v)
    }

    /// A string, written with `JSON.stringify`'s escapes.
    fn string(&mut self, out: &mut Vec<u8>) -> Result<(), ()> {
        if self.peek() != Some(b'"') {
            return Err(());
        }
        self.i += 1;
        out.push(b'"');
        loop {
            let run = self.b[self.i..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or(())?;
            out.extend_from_slice(&self.b[self.i..self.i + run]);
            self.i += run;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    out.push(b'"');
                    return Ok(());
                }
                b'\\' => {}
                _ => return Err(()),
            }
            let esc = *self.b.get(self.i + 1).ok_or(())?;
            self.i += 2;
            let unit = match esc {
                b'"' => 0x22,
                b'\\' => 0x5c,
                b'/' => 0x2f,
                b'b' => 0x08,
                b'f' => 0x0c,
                b'n' => 0x0a,
                b'r' => 0x0d,
                b't' => 0x09,
                b'u' => {
                    let u = self.hex(self.i)?;
                    self.i += 4;
                    u
                }
                _ => return Err(()),
            };
            if (0xD800..0xDC00).contains(&unit)
                && self.b.get(self.i..self.i + 2) == Some(b"\\u")
                && let Ok(low @ 0xDC00..0xE000) = self.hex(self.i + 2)
            {
                self.i += 6;
                let cp = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                push_char(out, cp);
            } else {
                push_unit(out, unit);
            }
        }
    }

    /// A number, written as JavaScript prints the double it reads as.
    fn number(&mut self, out: &mut Vec<u8>) -> Result<(), ()> {
        let start = self.i;
        while let Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        let tok = &self.b[start..self.i];
        if plain(tok) {
            out.extend_from_slice(tok);
            return Ok(());
        }
        // `3.0`, `1.50` (Python's floats): the same number without its fraction's trailing
        // zeros, which JavaScript prints as it is when that text is plain.
        if let Some(short) = without_trailing_zeros(tok)
            && plain(short)
        {
            out.extend_from_slice(short);
            return Ok(());
        }
        // The scan checked the grammar; Rust reads a decimal text as the nearest double, as
        // `JSON.parse` does, and beyond f64's range as an infinity (written `null`).
        let v: f64 = std::str::from_utf8(tok)
            .map_err(|_| ())?
            .parse()
            .map_err(|_| ())?;
        let mut s = String::with_capacity(24);
        js_number(v, &mut s);
        out.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Whether a number's text is what JavaScript prints for it (the scan's rule for canonical
/// numbers): an integer of at most 15 digits other than `-0`, or a decimal of at most 15
/// significant digits, no trailing zero, no exponent, and at least 1e-6.
fn plain(tok: &[u8]) -> bool {
    let digits = tok.strip_prefix(b"-").unwrap_or(tok);
    let (int, frac) = match digits.iter().position(|&c| c == b'.') {
        Some(p) => (&digits[..p], Some(&digits[p + 1..])),
        None => (digits, None),
    };
    if int.is_empty() || !int.iter().all(u8::is_ascii_digit) || (int.len() > 1 && int[0] == b'0') {
        return false;
    }
    match frac {
        None => int.len() <= 15 && !(tok[0] == b'-' && int == b"0"),
        Some(f) => {
            if f.is_empty() || !f.iter().all(u8::is_ascii_digit) || f.last() == Some(&b'0') {
                return false;
            }
            if int == b"0" {
                let zeros = f.iter().take_while(|&&d| d == b'0').count();
                zeros <= 5 && f.len() - zeros <= 15
            } else {
                int.len() + f.len() <= 15
            }
        }
    }
}

/// A decimal without exponent (`-12.500`, `3.0`) without its fraction's trailing zeros, and
/// without the point when nothing is left after it (`-12.5`, `3`): the same number. `None` for
/// other texts.
fn without_trailing_zeros(tok: &[u8]) -> Option<&[u8]> {
    if tok.last() != Some(&b'0') || tok.iter().any(|&c| c == b'e' || c == b'E') {
        return None;
    }
    let point = tok.iter().position(|&c| c == b'.')?;
    let mut end = tok.len();
    while end > point + 1 && tok[end - 1] == b'0' {
        end -= 1;
    }
    if end == point + 1 {
        end = point;
    }
    Some(&tok[..end])
}

/// One UTF-16 code unit (not half of a pair) as `JSON.stringify` writes it.
fn push_unit(out: &mut Vec<u8>, unit: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match unit {
        0x22 => Some(b'"'),
        0x5c => Some(b'\\'),
        0x08 => Some(b'b'),
        0x0c => Some(b'f'),
        0x0a => Some(b'n'),
        0x0d => Some(b'r'),
        0x09 => Some(b't'),
        _ => None,
    };
    if let Some(c) = short {
        out.extend_from_slice(&[b'\\', c]);
    } else if unit < 0x20 || (0xD800..0xE000).contains(&unit) {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[((unit >> shift) & 0xf) as usize]);
        }
    } else {
        push_char(out, unit);
    }
}

/// A code point (not a surrogate) in UTF-8.
fn push_char(out: &mut Vec<u8>, cp: u32) {
    let c = char::from_u32(cp).unwrap_or(char::REPLACEMENT_CHARACTER);
    let mut buf = [0u8; 4];
    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(t: &str) -> String {
        let mut out = Vec::new();
        rewrite(t.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn other_writers_forms_come_out_as_json_stringify_writes_them() {
        // Python's json.dumps, pretty-printed, escaped.
        assert_eq!(
            rw("{\"a\": 5.0, \"b\": [1, 2.50, -0, 1e2, 1E-7],\n  \"c\": \"\\u00e9\\/x\\u0041\"}"),
            r#"{"a":5,"b":[1,2.5,0,100,1e-7],"c":"é/xA"}"#
        );
        assert_eq!(
            rw(r#""\u0000\u001F\b\f\n\r\t\"\\\u2028""#),
            "\"\\u0000\\u001f\\b\\f\\n\\r\\t\\\"\\\\\u{2028}\""
        );
        assert_eq!(rw(r#""\ud83d\ude00""#), "\"😀\"");
        assert_eq!(rw("1234567890123456789"), "1234567890123456800");
        assert_eq!(rw(" [ ] "), "[]");
        assert_eq!(rw("{ }"), "{}");
    }

    #[test]
    fn inputs_a_value_cannot_hold_come_out_as_node_writes_them() {
        assert_eq!(
            rw(r#"["\ud800","\uDC00x","\ud800\ud800\udc00"]"#),
            "[\"\\ud800\",\"\\udc00x\",\"\\ud800𐀀\"]"
        );
        assert_eq!(rw("[1e999,-1e999,1e-999,-1e-999]"), "[null,null,0,0]");
        let deep = format!("{}1{}", "[".repeat(500), "]".repeat(500));
        assert_eq!(rw(&deep), deep);
    }

    #[test]
    fn objects_take_json_parses_key_order() {
        assert_eq!(rw(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
        assert_eq!(
            rw(r#"{"b":1,"2":{"y":1,"1":2},"0":3}"#),
            r#"{"0":3,"2":{"1":2,"y":1},"b":1}"#
        );
        assert_eq!(rw(r#"{"\u0061":1,"a":[2]}"#), r#"{"a":[2]}"#);
        let many: String = (0..40).map(|i| format!("\"k{}\":{i},", i % 20)).collect();
        let want: String = (0..20).map(|i| format!("\"k{i}\":{},", i + 20)).collect();
        assert_eq!(
            rw(&format!("{{{}}}", many.trim_end_matches(','))),
            format!("{{{}}}", want.trim_end_matches(','))
        );
    }

    #[test]
    fn canonical_texts_are_unchanged() {
        for t in [
            r#"{"a":1,"b":[true,false,null],"c":{"d":"x\ny\u001f"},"e":-1.5,"f":0.000001}"#,
            r#"{"0":1,"2":2,"b":3}"#,
            "123456789012345",
        ] {
            assert_eq!(rw(t), t);
        }
    }

    /// With the scan's word that keys are in order, objects are written as they come; one
    /// scratch serves many texts.
    #[test]
    fn keys_in_order_and_reused_scratch_give_the_same_text() {
        let mut scratch = Scratch::default();
        for t in [
            "{\"a\": 1.0, \"b\": {\"0\": [1, {\"c\": \"\\u00e9\"}]}, \"d\": {}}",
            " [ {\"x\": [ ]} , 2.50 ] ",
            "{\"k\": {\"1\": 1, \"2\": {\"3\": 1e2}}}",
        ] {
            for shape in [Shape::Unknown, Shape::KeysInOrder] {
                let mut out = b"prefix".to_vec();
                rewrite_with(t.as_bytes(), shape, &mut scratch, &mut out).unwrap();
                assert_eq!(&out[..6], b"prefix");
                assert_eq!(String::from_utf8(out[6..].to_vec()).unwrap(), rw(t), "{t}");
            }
        }
        // Without that word, a reused scratch still reorders each text on its own.
        for _ in 0..2 {
            let mut out = Vec::new();
            let t = r#"{"b":{"1":1,"0":0},"a":2,"b":3}"#;
            rewrite_with(t.as_bytes(), Shape::Unknown, &mut scratch, &mut out).unwrap();
            assert_eq!(out, br#"{"b":3,"a":2}"#);
        }
    }

    /// Trailing zeros of a fraction dropped only where the rest is what JavaScript prints;
    /// the other spellings go through the number's value.
    #[test]
    fn decimals_lose_their_trailing_zeros_as_javascript_prints_them() {
        for (t, want) in [
            ("3.0", "3"),
            ("-12.500", "-12.5"),
            ("0.0", "0"),
            ("-0.0", "0"),
            ("-0.000", "0"),
            ("100.00", "100"),
            ("0.0000010", "0.000001"),
            ("0.00000010", "1e-7"),
            ("123456789012345.0", "123456789012345"),
            ("1234567890123456.0", "1234567890123456"),
            ("12345678901234567.0", "12345678901234568"),
            ("0.1234567890123450", "0.123456789012345"),
            ("0.12345678901234560", "0.1234567890123456"),
            ("1.0e2", "100"),
            ("10", "10"),
        ] {
            assert_eq!(rw(t), want, "{t}");
        }
        assert_eq!(without_trailing_zeros(b"10"), None);
        assert_eq!(without_trailing_zeros(b"1e10"), None);
        assert_eq!(without_trailing_zeros(b"1.5"), None);
    }

    #[test]
    fn malformed_text_is_refused() {
        for t in ["[1,]", "{\"a\" 1}", "[1] x", "\"\\x\"", "[", ""] {
            assert!(rewrite(t.as_bytes(), &mut Vec::new()).is_err(), "{t}");
        }
    }
}
