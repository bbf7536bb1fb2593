//! One pass over the options text of a call: where each top-level field and each record is, and
//! whether a record's text is already what `JSON.stringify` would write for it.
//!
//! The pass also checks the text as JSON, as strictly as serde_json does (UTF-8, no control
//! characters in strings, the number grammar, no trailing commas); anything it does not accept
//! goes to serde_json, which either reads it or answers with its usual error. A record is
//! *canonical* when writing it back unchanged is byte-identical to
//! `JSON.stringify(JSON.parse(text))`:
//! - no whitespace between tokens;
//! - strings use only the escapes `JSON.stringify` writes (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`,
//!   `\t`, and lowercase `\u00xx` for the other control characters); any other character raw;
//! - numbers are integers of at most 15 digits, or decimals of at most 15 significant digits,
//!   no trailing zero in the fraction, at least 1e-6, no exponent, and not `-0`; every such
//!   number reads as a double whose shortest form is the text itself;
//! - no object repeats a key, and keys that are array indices (`"0"`, `"42"`) come first, in
//!   ascending order, as JavaScript lists them.
//!
//! Anything else is still correct, only not canonical: the record is rewritten on its own into
//! `JSON.stringify`'s form when it is written back untouched (`super::rewrite`), and parsed
//! when a function reads it. Some texts are *suspicious*: a surrogate escape (`\ud800`), a
//! number that may be outside f64's range, or nesting deeper than [`MAX_DEPTH`]. Inside a
//! record they only make it not canonical (`JSON.parse` takes them, and so does the rewrite:
//! one such record never fails its page; nesting there may go to [`MAX_RECORD_DEPTH`]).
//! Anywhere else the general parser may refuse them, so the caller sends the whole call down
//! the general path, where the same error comes out as before.
//!
//! The records of a page mostly share one shape: each is read first against the last record's
//! skeleton (its keys and punctuation, compared a word at a time, its scalars read as here), and
//! by the full scan only where it leaves that shape (`scan/template.rs`).

/// Nesting below the options object past which a text is suspicious (serde_json's own parser
/// stops at 128 levels).
pub const MAX_DEPTH: u32 = 100;

/// Nesting (counted from the options) past which a record's text is refused (bounded work and memory; Node takes
/// deeper texts, but no record of integrator.io's comes near).
pub const MAX_RECORD_DEPTH: usize = 10_000;

/// More keys than this in one object: not canonical (the repeated-key check is linear).
const MAX_KEYS_CHECKED: usize = 64;

/// The top-level keys of the options whose arrays are records.
pub const RECORD_KEYS: [&str; 5] = [
    "data",
    "preMapData",
    "postMapData",
    "responseData",
    "postResponseMapData",
];

/// One record of a record array: its byte range in the text (12 bytes: a 5 MB page has ~26,000
/// of them; texts past 4 GiB are not split).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordSpan {
    start: u32,
    end: u32,
    /// Written back as it is (see the module notes).
    pub canonical: bool,
    /// No object in the record repeats a key, and array-index keys come first, ascending:
    /// JavaScript's key order is the text's own (the rewrite need not check it again). Only
    /// claimed for keys without escapes and objects of fewer than 64 keys; `false` is unknown.
    pub keys_in_order: bool,
    /// Canonical but for whitespace between its tokens.
    pub spaced: bool,
}

/// What the scan knows of a record that is not canonical, for its rewrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Nothing: the rewrite reads every token and checks every object's keys.
    Unknown,
    /// Its keys are in JavaScript's order ([`RecordSpan::keys_in_order`]).
    KeysInOrder,
    /// Canonical but for whitespace between tokens (a pretty-printed record): the rewrite only
    /// drops that whitespace.
    Spaced,
}

impl RecordSpan {
    /// The record's byte range in the text.
    pub fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..self.end as usize
    }

    /// What the rewrite may take as known of the record.
    pub fn shape(&self) -> Shape {
        if self.spaced {
            Shape::Spaced
        } else if self.keys_in_order {
            Shape::KeysInOrder
        } else {
            Shape::Unknown
        }
    }
}

/// One top-level field of the options object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSpan {
    pub key: String,
    pub start: usize,
    pub end: usize,
    /// The records, when the key is one of [`RECORD_KEYS`] and the value is an array.
    pub records: Option<Vec<RecordSpan>>,
    /// The fields of the value, split further: a request body's `options` object.
    pub fields: Option<Vec<FieldSpan>>,
}

/// Which object is being split.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    /// A request body: its `options` object is split too.
    Body,
    /// The options: their record arrays are split into records.
    Options,
}

/// Why the text is not split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSplit {
    /// The options are not an object.
    NotObject,
    /// Suspicious or malformed: the caller takes the general path.
    Suspicious,
    /// Not UTF-8: the caller reads it as Node does ([`as_node_reads`]) and splits that.
    NotUtf8,
}

/// A request that is not valid UTF-8, read as Node reads it (a `Buffer`'s UTF-8 decoding): each
/// invalid sequence (its longest well-formed start) becomes U+FFFD, the WHATWG rule that Rust's
/// lossy decoding follows too. Valid UTF-8 comes back as it is, not copied.
pub fn as_node_reads(text: bytes::Bytes) -> bytes::Bytes {
    match String::from_utf8_lossy(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(s) => bytes::Bytes::from(s),
    }
}

/// Split the options text into its top-level fields (a repeated key keeps its first place and
/// its last value, as `JSON.parse` does) and its record arrays into records.
pub fn split_options(text: &[u8]) -> Result<Vec<FieldSpan>, NotSplit> {
    split(text, Level::Options)
}

/// Split a request body (the server stack's envelope) into its top-level fields, its `options`
/// object into the options' fields ([`FieldSpan::fields`]), and their record arrays into records.
pub fn split_body(text: &[u8]) -> Result<Vec<FieldSpan>, NotSplit> {
    split(text, Level::Body)
}

fn split(text: &[u8], level: Level) -> Result<Vec<FieldSpan>, NotSplit> {
    split_in(text, level, halves::on_two_cores(halves::HALVES_FROM))
}

fn split_in(text: &[u8], level: Level, halves_from: usize) -> Result<Vec<FieldSpan>, NotSplit> {
    split_with(text, level, halves_from, true)
}

/// [`split_in`], its records read against skeletons ([`template`]) or by the full scan only.
fn split_with(
    text: &[u8],
    level: Level,
    halves_from: usize,
    skeletons: bool,
) -> Result<Vec<FieldSpan>, NotSplit> {
    if u32::try_from(text.len()).is_err() {
        return Err(NotSplit::Suspicious);
    }
    // UTF-8 is checked as the pass goes (only strings may hold bytes past ASCII; anything
    // else past ASCII is not JSON). A text the pass refuses is checked whole: invalid UTF-8
    // anywhere in it is `NotUtf8`, as if it had been checked first.
    let not_split = |other: NotSplit| match std::str::from_utf8(text) {
        Ok(_) => other,
        Err(_) => NotSplit::NotUtf8,
    };
    let mut s = Scanner::new(text);
    s.halves_from = halves_from;
    s.template = template::Template::new(skeletons);
    s.ws();
    if s.peek() != Some(b'{') {
        return Err(not_split(NotSplit::NotObject));
    }
    let fields = s
        .fields(level)
        .map_err(|()| not_split(NotSplit::Suspicious))?;
    s.ws();
    if s.i != text.len() || s.suspicious {
        return Err(not_split(NotSplit::Suspicious));
    }
    Ok(fields)
}

/// Whether `text` (one JSON value) is canonical; `None` when it is suspicious or malformed.
pub fn canonical(text: &[u8]) -> Option<bool> {
    // UTF-8 is checked string by string as the pass goes (see `split`).
    let mut s = Scanner::new(text);
    s.ws();
    s.value(0).ok()?;
    s.ws();
    (s.i == text.len() && !s.suspicious).then_some(s.canon && !s.spaced)
}

struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
    /// Cleared by anything not canonical in the current record but whitespace.
    canon: bool,
    /// Set by whitespace between tokens in the current record.
    spaced: bool,
    /// Cleared by a repeated key, an array-index key out of JavaScript's order, or a key the
    /// check does not read (escaped, past [`MAX_KEYS_CHECKED`], deeper than [`MAX_DEPTH`]).
    keys_ok: bool,
    suspicious: bool,
    /// Key ranges of the objects being scanned (a stack: each object truncates back to its base).
    keys: Vec<(usize, usize)>,
    /// Inside a record: what is suspicious elsewhere only makes the record not canonical.
    in_record: bool,
    /// A record array with at least this much text from its start on is scanned in two halves
    /// at once ([`halves`]).
    halves_from: usize,
    /// The skeleton of the page's last record of the best verdict ([`template`]).
    template: template::Template,
}

impl<'a> Scanner<'a> {
    fn new(b: &'a [u8]) -> Self {
        Self {
            b,
            i: 0,
            canon: true,
            spaced: false,
            keys_ok: true,
            suspicious: false,
            keys: Vec::with_capacity(64),
            in_record: false,
            halves_from: halves::on_two_cores(halves::HALVES_FROM),
            template: template::Template::new(true),
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Something the general parser may refuse: inside a record only not canonical.
    fn suspect(&mut self) {
        self.canon = false;
        if !self.in_record {
            self.suspicious = true;
        }
    }

    #[inline(always)]
    fn expect(&mut self, c: u8) -> Result<(), ()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(())
        }
    }

    /// Skip whitespace; any makes the current record not canonical ([`Self::spaced`]).
    #[inline(always)]
    fn ws(&mut self) {
        // Canonical text has none: one look.
        if !matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            return;
        }
        self.spaced = true;
        self.i = skip_ws(self.b, self.i);
    }

    /// The fields of the object at the cursor.
    fn fields(&mut self, level: Level) -> Result<Vec<FieldSpan>, ()> {
        self.expect(b'{')?;
        let mut fields: Vec<FieldSpan> = Vec::new();
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(fields);
        }
        loop {
            self.ws();
            let (ks, ke, plain) = self.string()?;
            let key = if plain {
                std::str::from_utf8(&self.b[ks..ke])
                    .map_err(|_| ())?
                    .to_owned()
            } else {
                serde_json::from_slice::<String>(&self.b[ks - 1..ke + 1]).map_err(|_| ())?
            };
            self.ws();
            self.expect(b':')?;
            self.ws();
            let start = self.i;
            let (mut records, mut inner) = (None, None);
            match (level, self.peek()) {
                (Level::Options, Some(b'[')) if RECORD_KEYS.contains(&key.as_str()) => {
                    records = Some(self.records()?);
                }
                (Level::Body, Some(b'{')) if key == "options" => {
                    inner = Some(self.fields(Level::Options)?);
                }
                _ => self.value(1)?,
            }
            let field = FieldSpan {
                key,
                start,
                end: self.i,
                records,
                fields: inner,
            };
            match fields.iter_mut().find(|f| f.key == field.key) {
                Some(existing) => {
                    *existing = FieldSpan {
                        key: std::mem::take(&mut existing.key),
                        ..field
                    }
                }
                None => fields.push(field),
            }
            if self.closes(b'}')? {
                return Ok(fields);
            }
        }
    }

    /// A record array: each element's span and whether it is canonical. A long one is scanned
    /// in two halves at once ([`Self::records_in_halves`]).
    fn records(&mut self) -> Result<Vec<RecordSpan>, ()> {
        if let Some(at) = self.halfway() {
            return self.records_in_halves(at);
        }
        // Room for a page of 100 records up front (1.2 KB), not six steps of growth.
        let mut out = Vec::with_capacity(128);
        self.elements(|s| s.record(&mut out))?;
        Ok(out)
    }

    /// The record at the cursor read by the full scan, its span added to `out` ([`Self::record`]
    /// reads it against the page's skeleton first).
    #[inline(always)]
    fn record_scanned(&mut self, out: &mut Vec<RecordSpan>) -> Result<(), ()> {
        let start = self.i;
        self.reading_record(|s| s.value(2))?;
        self.push_span(out, start)
    }

    /// `read` run on the record at the cursor from a record's first state: its verdict's flags
    /// reset, and what is suspicious elsewhere only making it not canonical.
    #[inline(always)]
    fn reading_record<T>(&mut self, read: impl FnOnce(&mut Self) -> T) -> T {
        self.canon = true;
        self.spaced = false;
        self.keys_ok = true;
        self.in_record = true;
        let read = read(self);
        self.in_record = false;
        read
    }

    /// The span of the record from `start` to the cursor, with the verdict of its reading.
    #[inline(always)]
    fn push_span(&mut self, out: &mut Vec<RecordSpan>, start: usize) -> Result<(), ()> {
        // `split` refuses texts whose offsets do not fit.
        out.push(RecordSpan {
            start: u32::try_from(start).map_err(|_| ())?,
            end: u32::try_from(self.i).map_err(|_| ())?,
            canonical: self.canon && !self.spaced,
            keys_in_order: self.keys_ok,
            spaced: self.canon && self.spaced,
        });
        Ok(())
    }

    /// After an element or a member: `,` (false: more follow) or the `close` bracket (true).
    #[inline(always)]
    fn closes(&mut self, close: u8) -> Result<bool, ()> {
        self.ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(false)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(true)
            }
            _ => Err(()),
        }
    }

    /// An array at the cursor, `each` called at the start of every element.
    fn elements(&mut self, mut each: impl FnMut(&mut Self) -> Result<(), ()>) -> Result<(), ()> {
        self.expect(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            each(self)?;
            if self.closes(b']')? {
                return Ok(());
            }
        }
    }

    fn value(&mut self, depth: u32) -> Result<(), ()> {
        if depth > MAX_DEPTH {
            if self.in_record {
                self.canon = false;
                self.keys_ok = false;
                return self.deep();
            }
            self.suspicious = true;
            return Err(());
        }
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            _ => self.scalar(),
        }
    }

    /// A string, number or literal at the cursor (anything else: `Err`).
    #[inline(always)]
    fn scalar(&mut self) -> Result<(), ()> {
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(()),
        }
    }

    #[inline(always)]
    fn literal<const N: usize>(&mut self, word: &[u8; N]) -> Result<(), ()> {
        // Compared as an array of known length: a few instructions, not a call to `memcmp`.
        if self
            .b
            .get(self.i..self.i + N)
            .and_then(|w| <&[u8; N]>::try_from(w).ok())
            == Some(word)
        {
            self.i += word.len();
            Ok(())
        } else {
            Err(())
        }
    }

    fn array(&mut self, depth: u32) -> Result<(), ()> {
        self.elements(|s| s.value(depth + 1))
    }

    fn object(&mut self, depth: u32) -> Result<(), ()> {
        self.expect(b'{')?;
        let base = self.keys.len();
        let result = self.members(depth, base);
        self.keys.truncate(base);
        result
    }

    fn members(&mut self, depth: u32, base: usize) -> Result<(), ()> {
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        let mut last_index: Option<u64> = None;
        let mut named = false;
        // One bit per key seen in this object, from its length and last byte: a key whose bit
        // is clear is not among them, and is not compared with each.
        let mut seen_bits = 0u64;
        loop {
            self.ws();
            let (ks, ke, plain) = self.string()?;
            let key = &self.b[ks..ke];
            // Checked in records that are not canonical too: the rewrite takes the verdict.
            if self.keys_ok {
                // Too many keys to compare, a repeated one, or one written with an escape
                // `JSON.stringify` does not write (`"\u0061"` is `"a"`: its text is not the
                // only one for its name): not known to be in order.
                let seen = &self.keys[base..];
                let bit =
                    1u64 << ((key.len() + 7 * usize::from(key.last().copied().unwrap_or(0))) % 64);
                let maybe_seen = seen_bits & bit != 0;
                seen_bits |= bit;
                if (!plain && !escaped_as_node_writes(key))
                    || seen.len() >= MAX_KEYS_CHECKED
                    || (maybe_seen && seen.iter().any(|&(s, e)| self.b.get(s..e) == Some(key)))
                {
                    self.keys_ok = false;
                } else {
                    self.keys.push((ks, ke));
                }
                match plain.then(|| array_index(key)).flatten() {
                    Some(n) => {
                        if named || last_index.is_some_and(|l| l >= n) {
                            self.keys_ok = false;
                        }
                        last_index = Some(n);
                    }
                    None => named = true,
                }
                // Keys out of order are not canonical either.
                self.canon &= self.keys_ok;
            }
            self.ws();
            self.expect(b':')?;
            self.ws();
            // Most values are strings: read here, without a call (not past the depth where
            // `value` takes over).
            if self.peek() == Some(b'"') && depth < MAX_DEPTH {
                self.string()?;
            } else {
                self.value(depth + 1)?;
            }
            if self.closes(b'}')? {
                return Ok(());
            }
        }
    }

    /// A string at the cursor: the range of its contents and whether it has no escapes. Most
    /// strings are short plain ASCII, found here a word at a time up to the closing quote;
    /// anything else goes on in [`Self::string_rest`].
    #[inline(always)]
    fn string(&mut self) -> Result<(usize, usize, bool), ()> {
        self.expect(b'"')?;
        let start = self.i;
        let mut i = start;
        while let Some(w) = word_at(self.b, i) {
            let stop = plain_stop(w);
            if stop != 0 {
                let at = i + stop.trailing_zeros() as usize / 8;
                // The lowest stop is the closing quote (told from the word, not a load).
                if stop & stop.wrapping_neg() & quote_flags(w) != 0 {
                    self.i = at + 1;
                    return Ok((start, at, true));
                }
                i = at;
                break;
            }
            i += 8;
        }
        // The bytes from `start` to `i` are plain ASCII.
        self.i = i;
        self.string_rest(start)
    }
}

mod chars;
mod deep;
mod halves;
mod number;
mod strings;
mod template;
mod words;

#[cfg(test)]
pub(super) use halves::NO_THREADS;
pub(super) use halves::{on_two_cores, spawn_half};
use words::{plain_stop, quote_flags, word_at};
pub(super) use words::{skip_ws, string_stop};

use chars::{array_index, escaped_as_node_writes};

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
