//! [`Record`]: one record of a page, kept as the text it arrived in until a function looks at it.
//!
//! Pages are most of what integrator.io sends, and most hooks read a few fields of each record
//! or pass records through. A `Record` holds its slice of the request (shared, not copied) and
//! parses it into a [`serde_json::Value`] the first time it is read ([`Deref`]); writing to it
//! ([`DerefMut`]) makes it an owned value. A record nobody changed is written back as the text it
//! came in when that text is already what `JSON.stringify` would write ([`super::scan`]), and
//! rewritten from its own text into that form otherwise (`super::rewrite`: no value is built),
//! so the answer is the same byte for byte either way.
//!
//! A record may hold what `JSON.parse` takes and a `serde_json::Value` cannot: a lone surrogate
//! (`"\ud800"`), a number beyond f64 (`1e999`), nesting deeper than serde_json's 128 levels.
//! Untouched, it is written back as Node writes it. Read by a function, it cannot be given as a
//! value: the read panics with serde_json's reason, which the dispatcher's isolation turns into
//! the call's error (the function's own answer is never built on a value that is not Node's).

use super::scan::Shape;
#[cfg(test)]
use bytes::Bytes;
pub(crate) use page_text::PageText;
use serde::de::{Deserialize, Deserializer};
use serde::ser::{Serialize, SerializeStruct, Serializer};
use serde_json::Value;
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::OnceLock;

mod page_text;

/// serde_json's marker for a raw JSON fragment (what `serde_json::value::RawValue` serializes
/// as): the writer copies the text through its formatter's `write_raw_fragment`.
const RAW_TOKEN: &str = "$serde_json::private::RawValue";

/// One record: a JSON value, read lazily from the request. Use it as a
/// [`serde_json::Value`] (`record["id"]`, `record.get("id")`, `record["x"] = json!(1)`).
#[derive(Clone)]
pub struct Record(Repr);

#[derive(Clone)]
enum Repr {
    /// The text as it arrived (JSON that `JSON.parse` reads), parsed on first read.
    Text {
        text: PageText,
        canonical: bool,
        /// What the scan knows of the text, for its rewrite.
        shape: Shape,
        parsed: OnceLock<Box<Value>>,
    },
    /// Boxed, as is the parsed value above: a page is a vector of records, most of them never
    /// parsed, so a record is kept small (40 bytes, not a `Value`'s size plus the text's).
    Value(Box<Value>),
}

impl Record {
    /// A record from its JSON text. `canonical` must be [`super::scan::canonical`]'s verdict
    /// (the text is then written back as it is).
    #[cfg(test)]
    pub(crate) fn from_text(text: Bytes, canonical: bool) -> Self {
        Self::from_page_text(PageText::whole(text), canonical)
    }

    /// A record from its range of a page, as [`super::options`] makes them.
    #[cfg(test)]
    pub(crate) fn from_page_text(text: PageText, canonical: bool) -> Self {
        Record(Repr::Text {
            text,
            canonical,
            shape: Shape::Unknown,
            parsed: OnceLock::new(),
        })
    }

    /// A record from its text and what the scan found of it.
    pub(crate) fn from_span(text: PageText, span: &super::scan::RecordSpan) -> Self {
        Record(Repr::Text {
            text,
            canonical: span.canonical,
            shape: span.shape(),
            parsed: OnceLock::new(),
        })
    }

    /// The record as an owned value.
    pub fn into_value(self) -> Value {
        match self.0 {
            Repr::Value(v) => *v,
            Repr::Text { text, parsed, .. } => {
                parsed.into_inner().map_or_else(|| parse(&text), |v| *v)
            }
        }
    }

    /// The record as a value.
    pub fn value(&self) -> &Value {
        match &self.0 {
            Repr::Value(v) => v,
            Repr::Text { text, parsed, .. } => parsed.get_or_init(|| Box::new(parse(text))),
        }
    }

    /// The record as a value to change.
    pub fn value_mut(&mut self) -> &mut Value {
        if let Repr::Text { text, parsed, .. } = &mut self.0 {
            let v = parsed.take().unwrap_or_else(|| Box::new(parse(text)));
            self.0 = Repr::Value(v);
        }
        match &mut self.0 {
            Repr::Value(v) => v,
            // Replaced just above.
            Repr::Text { .. } => unreachable!("a record's text was replaced by its value"),
        }
    }

    /// Whether the record is still the text it arrived in (not parsed, not changed).
    pub fn is_text(&self) -> bool {
        matches!(&self.0, Repr::Text { parsed, .. } if parsed.get().is_none())
    }

    /// The text this record is written as without parsing, when there is one.
    fn passthrough(&self) -> Option<&PageText> {
        match &self.0 {
            Repr::Text {
                text,
                canonical: true,
                ..
            } => Some(text),
            _ => None,
        }
    }

    /// A record still in its text that is not in `JSON.stringify`'s form: the text, and
    /// what the scan knows of it.
    fn to_rewrite(&self) -> Option<(&PageText, Shape)> {
        match &self.0 {
            Repr::Text {
                text,
                canonical: false,
                shape,
                ..
            } => Some((text, *shape)),
            _ => None,
        }
    }

    /// What `JSON.stringify` writes for a record still in its text that is not in that form.
    fn rewritten(&self) -> Option<String> {
        let (text, shape) = self.to_rewrite()?;
        let mut out = Vec::with_capacity(text.len());
        let mut scratch = super::rewrite::Scratch::default();
        super::rewrite::rewrite_with(text, shape, &mut scratch, &mut out).ok()?;
        String::from_utf8(out).ok()
    }
}

/// A record's text as a value. The scan lets through what `JSON.parse` reads (see the module
/// notes); what serde_json cannot hold fails the read, with its reason.
fn parse(text: &[u8]) -> Value {
    match super::json::from_slice(text) {
        Ok(v) => v,
        Err(e) => panic!(
            "a record could not be read as a value ({e}): it holds what JSON.parse accepts and \
             Rust cannot represent (a lone surrogate, a number beyond f64, or nesting past 128 \
             levels); written back untouched it would pass through"
        ),
    }
}

impl Deref for Record {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.value()
    }
}

impl DerefMut for Record {
    fn deref_mut(&mut self) -> &mut Value {
        self.value_mut()
    }
}

impl Default for Record {
    fn default() -> Self {
        Record(Repr::Value(Box::new(Value::Null)))
    }
}

impl From<Value> for Record {
    fn from(v: Value) -> Self {
        Record(Repr::Value(Box::new(v)))
    }
}

impl From<Record> for Value {
    fn from(r: Record) -> Self {
        r.into_value()
    }
}

/// Debug and Display never read a record that cannot be a value: they show its text.
impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unreadable() {
            Some(text) => f.debug_tuple("Record").field(&text).finish(),
            None => fmt::Debug::fmt(self.value(), f),
        }
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.unreadable() {
            Some(text) => f.write_str(&text),
            None => fmt::Display::fmt(self.value(), f),
        }
    }
}

impl Record {
    /// `JSON.stringify`'s text of a record that serde_json cannot read as a value.
    fn unreadable(&self) -> Option<String> {
        match &self.0 {
            Repr::Text { text, parsed, .. }
                if parsed.get().is_none() && super::json::from_slice(text).is_err() =>
            {
                let mut out = Vec::new();
                super::rewrite::rewrite(text, &mut out).ok()?;
                String::from_utf8(out).ok()
            }
            _ => None,
        }
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl PartialEq<Value> for Record {
    fn eq(&self, other: &Value) -> bool {
        self.value() == other
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let rewritten;
        let raw = match self.passthrough() {
            // Sent from the request's bytes: the writer gets a mark (see `super::text`).
            Some(text) if super::text::splice(text) => super::text::MARK_TEXT,
            // The scan checked the text as UTF-8; this does not fail.
            Some(text) => match std::str::from_utf8(text) {
                Ok(t) => t,
                Err(_) => return self.value().serialize(s),
            },
            // Unchanged but not in JSON.stringify's form, and [`super::text::to_text`] writing:
            // rewritten from its text straight into the answer when the output is cut.
            None if self
                .to_rewrite()
                .is_some_and(|(text, shape)| super::text::splice_rewrite(text, shape)) =>
            {
                super::text::MARK_TEXT
            }
            // Otherwise rewritten here, from its text alone.
            None => match self.rewritten() {
                Some(t) => {
                    rewritten = t;
                    &rewritten
                }
                None => return self.value().serialize(s),
            },
        };
        let mut w = s.serialize_struct(RAW_TOKEN, 1)?;
        w.serialize_field(RAW_TOKEN, raw)?;
        w.end()
    }
}

/// Read as a value: records that stay text are made by [`super::options`] from the request.
impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Record::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text(t: &str) -> Record {
        let canonical = super::super::scan::canonical(t.as_bytes()).unwrap();
        Record::from_text(Bytes::copy_from_slice(t.as_bytes()), canonical)
    }

    #[test]
    fn an_untouched_canonical_record_is_written_as_it_came() {
        let r = text(r#"{"b":1,"a":[2,"x"]}"#);
        assert_eq!(
            super::super::json::to_string(&r).unwrap(),
            r#"{"b":1,"a":[2,"x"]}"#
        );
        assert_eq!(r["a"][1], "x");
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({"b":1,"a":[2,"x"]})
        );
    }

    #[test]
    fn other_texts_are_written_as_json_stringify_would() {
        let r = text(r#"{"b": 1.0, "1": "\u0041", "b": 2e0}"#);
        assert_eq!(
            super::super::json::to_string(&r).unwrap(),
            r#"{"1":"A","b":2}"#
        );
    }

    #[test]
    fn a_changed_record_is_written_from_its_value() {
        let mut r = text(r#"{"a":1}"#);
        r["z"] = json!(true);
        assert_eq!(
            super::super::json::to_string(&r).unwrap(),
            r#"{"a":1,"z":true}"#
        );
        assert_eq!(r.into_value(), json!({"a":1,"z":true}));
    }

    #[test]
    fn a_record_is_small() {
        assert!(
            std::mem::size_of::<Record>() <= 40,
            "{}",
            std::mem::size_of::<Record>()
        );
    }

    #[test]
    fn outside_the_options_path_a_record_reads_as_a_value() {
        let r: Record = serde_json::from_str(r#"{"a": 1}"#).unwrap();
        assert_eq!(r, json!({"a":1}));
        let r: Record = serde_json::from_value(json!([1])).unwrap();
        assert_eq!(super::super::json::to_string(&r).unwrap(), "[1]");
    }
}
