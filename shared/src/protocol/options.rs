//! The `options` of one call, as they reach the function.
//!
//! The transports keep the options as the text they arrived in, split once into top-level fields
//! and records ([`super::scan`]): a typed function's options are read straight from that text,
//! with every record a [`Record`](super::Record) sharing the request's bytes; only a raw function (options as a
//! `serde_json::Value`) has the whole text parsed. Calls built in code (queued jobs, fixtures,
//! tests) carry a `Value`, read the usual serde way.

use super::record::{RECORD_TOKEN, with_handoff};
use super::scan::{self, FieldSpan, RecordSpan};
use bytes::Bytes;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::Value;
use std::fmt;

/// The options of one call.
#[derive(Clone)]
pub enum Options {
    /// Parsed (calls built in code, options that are not an object, or suspicious text).
    Value(Value),
    /// The text as it arrived, split into fields.
    Text(TextOptions),
}

/// Options kept as text: an object, checked as JSON and split into fields.
#[derive(Clone)]
pub struct TextOptions {
    /// The request (a whole body, or a Lambda payload); the spans below index it.
    text: Bytes,
    /// Where the options object is in `text`.
    span: std::ops::Range<usize>,
    fields: Vec<FieldSpan>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Options::Value(v) => f.debug_tuple("Value").field(v).finish(),
            Options::Text(t) => f
                .debug_struct("Text")
                .field("bytes", &t.span.len())
                .field("fields", &t.fields.len())
                .finish(),
        }
    }
}

impl From<Value> for Options {
    fn from(v: Value) -> Self {
        Options::Value(v)
    }
}

impl Options {
    /// Options from a Lambda payload (the options themselves). The same payloads fail as with
    /// [`super::json::from_slice`], with the same error: whatever the scan does not take as an
    /// object of checked JSON is parsed the general way.
    pub fn from_payload(payload: Bytes) -> Result<Self, serde_json::Error> {
        match scan::split_options(&payload) {
            Ok(fields) => Ok(Options::Text(TextOptions {
                span: 0..payload.len(),
                text: payload,
                fields,
            })),
            Err(_) => super::json::from_slice(&payload).map(Options::Value),
        }
    }

    /// Options already split out of `text` (a request body: [`scan::split_body`]), the object
    /// at `span`.
    pub(crate) fn from_fields(
        text: Bytes,
        span: std::ops::Range<usize>,
        fields: Vec<FieldSpan>,
    ) -> Self {
        Options::Text(TextOptions { text, span, fields })
    }

    /// JavaScript truthiness of the options (text options are an object: truthy).
    pub fn truthy(&self) -> bool {
        match self {
            Options::Value(v) => super::truthy(Some(v)),
            Options::Text(_) => true,
        }
    }

    /// A top-level string field (`_flowId`, …), for logging.
    pub fn str_field(&self, key: &str) -> Option<String> {
        match self {
            Options::Value(v) => v.get(key).and_then(Value::as_str).map(str::to_owned),
            Options::Text(t) => {
                let f = t.fields.iter().find(|f| f.key == key)?;
                serde_json::from_slice::<String>(&t.text[f.start..f.end]).ok()
            }
        }
    }

    /// How many records came in: the length of the first record array present.
    pub fn records_in(&self) -> Option<usize> {
        match self {
            Options::Value(v) => crate::metrics::records_in(Some(v)),
            Options::Text(t) => scan::RECORD_KEYS.iter().find_map(|k| {
                let f = t.fields.iter().find(|f| f.key == *k)?;
                f.records.as_ref().map(Vec::len)
            }),
        }
    }

    /// The options as a value (what a raw function receives).
    pub fn into_value(self) -> Result<Value, serde_json::Error> {
        match self {
            Options::Value(v) => Ok(v),
            Options::Text(t) => super::json::from_slice(&t.text[t.span.clone()]),
        }
    }

    /// The options read as `T`; records stay text until read.
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        match self {
            Options::Value(v) => serde_json::from_value(v),
            Options::Text(t) => T::deserialize(&t),
        }
    }
}

/// serde_json's error for a field read on its own, without the position (which would be
/// relative to the field, not the request).
fn unplaced(e: serde_json::Error) -> serde_json::Error {
    if e.line() == 0 {
        return e;
    }
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    de::Error::custom(text.strip_suffix(&suffix).unwrap_or(&text))
}

impl<'a> de::Deserializer<'a> for &'a TextOptions {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, Self::Error> {
        v.visit_map(Fields {
            options: self,
            next: 0,
        })
    }

    forward_to_deserialize_any! {
        <W: Visitor<'a>>
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// The fields of text options, as a map.
struct Fields<'a> {
    options: &'a TextOptions,
    next: usize,
}

impl<'a> MapAccess<'a> for Fields<'a> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'a>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let Some(f) = self.options.fields.get(self.next) else {
            return Ok(None);
        };
        seed.deserialize(de::value::BorrowedStrDeserializer::new(f.key.as_str()))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'a>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, Self::Error> {
        let f = self
            .options
            .fields
            .get(self.next)
            .ok_or_else(|| de::Error::custom("value without a key"))?;
        self.next += 1;
        seed.deserialize(Field {
            text: &self.options.text,
            span: f,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.options.fields.len() - self.next)
    }
}

/// `read` with serde_json on `json`, which must hold nothing more; errors without a position.
fn read_json<'a, T>(
    json: &'a [u8],
    read: impl FnOnce(
        &mut serde_json::Deserializer<serde_json::de::SliceRead<'a>>,
    ) -> Result<T, serde_json::Error>,
) -> Result<T, serde_json::Error> {
    let mut d = serde_json::Deserializer::from_slice(json);
    let out = read(&mut d).map_err(unplaced)?;
    d.end().map_err(unplaced)?;
    Ok(out)
}

/// Runs serde_json on one slice of the text, for every method but the ones named.
macro_rules! by_serde_json {
    ($($method:ident $(($($arg:ident : $ty:ty),*))?;)*) => {$(
        fn $method<V: Visitor<'a>>(self, $($($arg: $ty,)*)? v: V) -> Result<V::Value, Self::Error> {
            read_json(self.json(), |d| d.$method($($($arg,)*)? v))
        }
    )*};
}

/// A slice of the request's text.
#[derive(Clone, Copy)]
struct Slice<'a> {
    text: &'a Bytes,
    start: usize,
    end: usize,
}

impl<'a> Slice<'a> {
    fn json(self) -> &'a [u8] {
        &self.text[self.start..self.end]
    }
}

/// One top-level field.
struct Field<'a> {
    text: &'a Bytes,
    span: &'a FieldSpan,
}

impl<'a> Field<'a> {
    fn json(&self) -> &'a [u8] {
        Slice {
            text: self.text,
            start: self.span.start,
            end: self.span.end,
        }
        .json()
    }
}

impl<'a> de::Deserializer<'a> for Field<'a> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, Self::Error> {
        match &self.span.records {
            Some(records) => v.visit_seq(Records {
                text: self.text,
                records: records.iter(),
            }),
            None => read_json(self.json(), |d| de::Deserializer::deserialize_any(d, v)),
        }
    }

    fn deserialize_seq<V: Visitor<'a>>(self, v: V) -> Result<V::Value, Self::Error> {
        match &self.span.records {
            Some(_) => self.deserialize_any(v),
            None => read_json(self.json(), |d| de::Deserializer::deserialize_seq(d, v)),
        }
    }

    fn deserialize_option<V: Visitor<'a>>(self, v: V) -> Result<V::Value, Self::Error> {
        match &self.span.records {
            Some(_) => v.visit_some(self),
            None => read_json(self.json(), |d| de::Deserializer::deserialize_option(d, v)),
        }
    }

    by_serde_json! {
        deserialize_bool; deserialize_i8; deserialize_i16; deserialize_i32; deserialize_i64;
        deserialize_i128; deserialize_u8; deserialize_u16; deserialize_u32; deserialize_u64;
        deserialize_u128; deserialize_f32; deserialize_f64; deserialize_char; deserialize_str;
        deserialize_string; deserialize_bytes; deserialize_byte_buf; deserialize_unit;
        deserialize_map; deserialize_identifier; deserialize_ignored_any;
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }
}

/// The records of a record array, in order.
struct Records<'a> {
    text: &'a Bytes,
    records: std::slice::Iter<'a, RecordSpan>,
}

impl<'a> SeqAccess<'a> for Records<'a> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'a>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        match self.records.next() {
            None => Ok(None),
            Some(span) => seed
                .deserialize(OneRecord {
                    slice: Slice {
                        text: self.text,
                        start: span.start,
                        end: span.end,
                    },
                    canonical: span.canonical,
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.records.len())
    }
}

/// One record of a record array: a [`Record`](super::Record) takes its text as it is; anything else reads it.
struct OneRecord<'a> {
    slice: Slice<'a>,
    canonical: bool,
}

impl<'a> OneRecord<'a> {
    fn json(&self) -> &'a [u8] {
        self.slice.json()
    }
}

impl<'a> de::Deserializer<'a> for OneRecord<'a> {
    type Error = serde_json::Error;

    fn deserialize_newtype_struct<V: Visitor<'a>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, Self::Error> {
        if name == RECORD_TOKEN {
            let text = self.slice.text.slice(self.slice.start..self.slice.end);
            return with_handoff(text, self.canonical, || {
                v.visit_newtype_struct(de::value::UnitDeserializer::new())
            });
        }
        let mut d = serde_json::Deserializer::from_slice(self.json());
        let out =
            de::Deserializer::deserialize_newtype_struct(&mut d, name, v).map_err(unplaced)?;
        d.end().map_err(unplaced)?;
        Ok(out)
    }

    fn deserialize_any<V: Visitor<'a>>(self, v: V) -> Result<V::Value, Self::Error> {
        read_json(self.json(), |d| de::Deserializer::deserialize_any(d, v))
    }

    fn deserialize_seq<V: Visitor<'a>>(self, v: V) -> Result<V::Value, Self::Error> {
        read_json(self.json(), |d| de::Deserializer::deserialize_seq(d, v))
    }

    fn deserialize_option<V: Visitor<'a>>(self, v: V) -> Result<V::Value, Self::Error> {
        read_json(self.json(), |d| de::Deserializer::deserialize_option(d, v))
    }

    by_serde_json! {
        deserialize_bool; deserialize_i8; deserialize_i16; deserialize_i32; deserialize_i64;
        deserialize_i128; deserialize_u8; deserialize_u16; deserialize_u32; deserialize_u64;
        deserialize_u128; deserialize_f32; deserialize_f64; deserialize_char; deserialize_str;
        deserialize_string; deserialize_bytes; deserialize_byte_buf; deserialize_unit;
        deserialize_map; deserialize_identifier; deserialize_ignored_any;
        deserialize_unit_struct(name: &'static str);
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::types::{PreMapOptions, PreSavePageOptions};
    use serde_json::json;

    fn text(t: &str) -> Options {
        match Options::from_payload(Bytes::copy_from_slice(t.as_bytes())) {
            Ok(o @ Options::Text(_)) => o,
            _ => panic!("not kept as text: {t}"),
        }
    }

    #[test]
    fn typed_options_read_from_text_match_the_value_path() {
        let t = r#"{"data":[{"id":1,"n":"a"},{"id": 2.50}],"errors":[],"_flowId":"f1","pageIndex":3,"zeta":{"k":[1]},"_flowId":"f2"}"#;
        let lazy: PreSavePageOptions = text(t).deserialize().unwrap();
        let eager: PreSavePageOptions = Options::Value(serde_json::from_str(t).unwrap())
            .deserialize()
            .unwrap();
        // Nothing was parsed to read them: the records are the request's text.
        assert!(lazy.data.iter().all(|r| r.is_text()));
        assert_eq!(lazy, eager);
        assert!(!lazy.data[0].is_text());
        assert_eq!(lazy.flow_id.as_deref(), Some("f2"));
        assert_eq!(lazy.extra.keys().collect::<Vec<_>>(), ["zeta"]);
        assert_eq!(
            crate::protocol::json::to_string(&lazy.data).unwrap(),
            r#"[{"id":1,"n":"a"},{"id":2.5}]"#
        );
    }

    #[test]
    fn options_that_do_not_fit_fail_with_serdes_words_and_no_position() {
        let e = text(r#"{"data":5}"#)
            .deserialize::<PreMapOptions>()
            .unwrap_err()
            .to_string();
        let v = Options::Value(json!({"data": 5}))
            .deserialize::<PreMapOptions>()
            .unwrap_err()
            .to_string();
        assert_eq!(e, v);
    }

    #[test]
    fn ids_counts_and_values_come_from_the_text() {
        let o = text(r#"{"_flowId":"f","postMapData":[1,2],"data":[{}]}"#);
        assert_eq!(o.str_field("_flowId").as_deref(), Some("f"));
        assert_eq!(o.records_in(), Some(1));
        assert!(o.truthy());
        assert_eq!(
            o.into_value().unwrap(),
            json!({"_flowId":"f","postMapData":[1,2],"data":[{}]})
        );
        assert!(matches!(
            Options::from_payload(Bytes::from_static(b"0")),
            Ok(Options::Value(v)) if v == json!(0)
        ));
    }
}
