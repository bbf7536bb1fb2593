//! The `options` of one call, as they reach the function.
//!
//! The transports keep the options as the text they arrived in, split once into top-level fields
//! and records ([`super::scan`]). A typed function of a kind that carries pages gets its options
//! with every record a [`Record`](super::Record) sharing the request's bytes ([`Options::deserialize`]);
//! only the other fields are parsed. A raw function (options as a `serde_json::Value`) has the
//! whole text parsed. Calls built in code (queued jobs, fixtures, tests) carry a `Value`, read
//! the usual serde way.

use super::record::with_texts;
use super::scan::{self, FieldSpan};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::VecDeque;
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

    /// The options read as `T`, the arrays under `pages` (fields of `T` that are
    /// `Vec<Record>`) as records that stay text until read. `T` is read from a `Value` (the
    /// same reader as for any other options, so no second one per options type is linked), in
    /// which each of those records is a placeholder that hands its `Record` the text.
    pub fn deserialize<T: DeserializeOwned>(self, pages: &[&str]) -> Result<T, serde_json::Error> {
        let t = match self {
            Options::Value(v) => return serde_json::from_value(v),
            Options::Text(t) => t,
        };
        let mut object = Map::with_capacity(t.fields.len());
        let mut texts = VecDeque::new();
        for f in &t.fields {
            let value = match &f.records {
                Some(records) if pages.contains(&f.key.as_str()) => {
                    texts.extend(
                        records
                            .iter()
                            .map(|r| (t.text.slice(r.start..r.end), r.canonical)),
                    );
                    Value::Array(vec![Value::Null; records.len()])
                }
                _ => super::json::from_slice(&t.text[f.start..f.end])?,
            };
            object.insert(f.key.clone(), value);
        }
        with_texts(texts, || serde_json::from_value(Value::Object(object)))
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
        let lazy: PreSavePageOptions = text(t).deserialize(&["data"]).unwrap();
        let eager: PreSavePageOptions = Options::Value(serde_json::from_str(t).unwrap())
            .deserialize(&["data"])
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
    fn options_that_do_not_fit_fail_with_the_words_of_the_value_path() {
        let e = text(r#"{"data":5}"#)
            .deserialize::<PreMapOptions>(&["data"])
            .unwrap_err()
            .to_string();
        let v = Options::Value(json!({"data": 5}))
            .deserialize::<PreMapOptions>(&["data"])
            .unwrap_err()
            .to_string();
        assert_eq!(e, v);
    }

    #[test]
    fn every_kind_with_pages_reads_the_same_from_text() {
        use crate::dispatch::kinds::*;
        fn same<K: FunctionKind>(t: &str)
        where
            K::Options: PartialEq + std::fmt::Debug,
        {
            let lazy = K::read_options(text(t)).unwrap();
            let eager: K::Options = serde_json::from_str(t).unwrap();
            assert_eq!(lazy, eager, "{}", K::NAME);
        }
        let t = r#"{"data":[{"a":1},[2]],"preMapData":[{"p":1},{"p":2}],"postMapData":[{"q":1},{"q":2}],"responseData":[{"statusCode":200,"id":"x","data":{"r":1}},{"statusCode":422,"errors":[{"code":"c"}]}],"postResponseMapData":[{"m":1},{"m":2}],"errors":[],"_importId":"i","connection":{"_id":"c"}}"#;
        same::<PreSavePage>(t);
        same::<PreMap>(t);
        same::<PostMap>(t);
        same::<PostSubmit>(t);
        same::<PostResponseMap>(t);
        same::<Import>(t);
        same::<Export>(t);
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
