//! The `options` of one call, as they reach the function.
//!
//! The transports keep the options as the text they arrived in, split once into top-level fields
//! and records ([`super::scan`]). A typed function of a kind that carries pages gets its options
//! with every record a [`Record`] sharing the request's bytes ([`Options::deserialize_pages`]):
//! only the other fields are parsed, and a page costs one `Record` (40 bytes) per record. A raw
//! function (options as a `serde_json::Value`) has the whole text parsed. Calls built in code
//! (queued jobs, fixtures, tests) carry a `Value`, read the usual serde way.

use super::Record;
use super::record::PageText;
use super::scan::{self, FieldSpan};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// A field of typed options that holds a page: what [`Options::deserialize_pages`] fills.
pub trait PageField {
    /// Put the page's records in the field.
    fn fill(&mut self, records: Vec<Record>);
    /// The records in the field.
    fn records(&self) -> &[Record];
}

impl PageField for Vec<Record> {
    fn fill(&mut self, records: Vec<Record>) {
        *self = records;
    }
    fn records(&self) -> &[Record] {
        self
    }
}

impl PageField for Option<Vec<Record>> {
    fn fill(&mut self, records: Vec<Record>) {
        *self = Some(records);
    }
    fn records(&self) -> &[Record] {
        self.as_deref().unwrap_or_default()
    }
}

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
    /// object of checked JSON is parsed the general way. Invalid UTF-8 is read as Node reads
    /// it, each bad sequence as U+FFFD ([`scan::as_node_reads`]).
    pub fn from_payload(payload: Bytes) -> Result<Self, serde_json::Error> {
        match scan::split_options(&payload) {
            Err(scan::NotSplit::NotUtf8) => Self::from_payload(scan::as_node_reads(payload)),
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

    /// The request text the options were read from (records in them are slices of it).
    pub fn source(&self) -> Option<Bytes> {
        match self {
            Options::Value(_) => None,
            Options::Text(t) => Some(t.text.clone()),
        }
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

    /// The options read as `T` (the usual serde way; records in it are parsed).
    pub fn deserialize<T: DeserializeOwned>(self) -> Result<T, serde_json::Error> {
        self.deserialize_pages(&[], |_: &mut T, _, _| {})
    }

    /// The options read as `T`, the arrays under the keys `pages` as records that stay text
    /// until read. `T` is read from a `Value` of the other fields (the same reader as for any
    /// options, so no second one is linked per options type), each page an empty array in it;
    /// `fill` then puts each page's records in its field (see [`PageField`]). A page is never
    /// built as values: one `Record` per record, sharing the request's bytes.
    pub fn deserialize_pages<T: DeserializeOwned>(
        self,
        pages: &[&str],
        fill: impl Fn(&mut T, &str, Vec<Record>),
    ) -> Result<T, serde_json::Error> {
        let (rest, records) = match self {
            Options::Value(v) => return serde_json::from_value(v),
            Options::Text(t) => t.split_pages(pages)?,
        };
        let mut out: T = serde_json::from_value(rest)?;
        for (key, page) in records {
            fill(&mut out, &key, page);
        }
        Ok(out)
    }
}

/// Pages by key, their records made.
type Pages = Vec<(String, Vec<Record>)>;

impl TextOptions {
    /// The options without their pages (each an empty array), and the pages' records. Not
    /// generic: only the reading of the other fields is compiled per options type.
    fn split_pages(self, pages: &[&str]) -> Result<(Value, Pages), serde_json::Error> {
        let TextOptions { text, fields, .. } = self;
        let is_page = |f: &FieldSpan| f.records.is_some() && pages.contains(&f.key.as_str());
        let mut object = Map::with_capacity(fields.len());
        for f in &fields {
            let value = if is_page(f) {
                Value::Array(Vec::new())
            } else {
                super::json::from_slice(&text[f.start..f.end])?
            };
            object.insert(f.key.clone(), value);
        }
        // Keys are unique here: the scan keeps a repeated key's last value at its first place.
        let mut filled = Vec::new();
        // The pages' records share one count of the request ([`PageText`]).
        let whole = Arc::new(text);
        for f in fields {
            if !is_page(&f) {
                continue;
            }
            let Some(records) = f.records else { continue };
            let page = records
                .iter()
                .map(|r| Record::from_span(PageText::new(&whole, r.range()), r))
                .collect();
            // The spans go before the next page is built.
            drop(records);
            filled.push((f.key, page));
        }
        Ok((Value::Object(object), filled))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dispatch::kinds::{FunctionKind, PreMap, PreSavePage};
    use crate::protocol::types::PreSavePageOptions;
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
        let lazy: PreSavePageOptions = PreSavePage::read_options(text(t)).unwrap();
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
    fn options_that_do_not_fit_fail_with_the_words_of_the_value_path() {
        let e = PreMap::read_options(text(r#"{"data":5}"#))
            .unwrap_err()
            .to_string();
        let v = PreMap::read_options(Options::Value(json!({"data": 5})))
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
            // Every page the kind names is still the request's text (none of it parsed).
            let pages = K::pages(&lazy);
            assert!(!pages.is_empty(), "{} names no page", K::NAME);
            for page in pages {
                assert!(!page.is_empty(), "{}: an empty page", K::NAME);
                assert!(
                    page.iter().all(Record::is_text),
                    "{}: a page was parsed",
                    K::NAME
                );
            }
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
    fn a_repeated_page_key_keeps_its_last_value() {
        let t = r#"{"data":[{"a":1}],"data":[{"b":2},{"c":3}]}"#;
        let o = PreSavePage::read_options(text(t)).unwrap();
        assert_eq!(o.data, vec![json!({"b":2}), json!({"c":3})]);
        let t = r#"{"data":[{"a":1}],"data":null}"#;
        assert!(PreSavePage::read_options(text(t)).unwrap().data.is_empty());
        let t = r#"{"data":null,"data":[{"a":1}]}"#;
        assert_eq!(PreSavePage::read_options(text(t)).unwrap().data.len(), 1);
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
