//! Flattening nested JSON to dotted keys, and reading dotted paths.
//!
//! `{"a": {"b": [{"c": 1}]}}` becomes `{"a.b.0.c": 1}`: object keys are joined with `.`, array
//! elements are named by their index. Empty objects and arrays are kept as values (`{"a": {}}`
//! stays `{"a": {}}`), so no field silently disappears. Keys are produced in document order.
//! Two inputs can collide (`{"a.b": 1, "a": {"b": 2}}`); the later one wins.

use serde_json::{Map, Value};

/// Flattening stopped: the flattened map's JSON text would exceed `limit` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the flattened event exceeds {limit} bytes")]
pub struct TooLarge {
    pub limit: usize,
}

/// Flatten a JSON object to dotted keys (an empty object gives an empty map). A top-level array
/// is flattened from its indexes; a scalar is returned under the key `""`. Unbounded: for
/// trusted values only; outside input goes through [`flatten_within`].
pub fn flatten(value: &Value) -> Map<String, Value> {
    match flatten_within(value, usize::MAX) {
        Ok(map) => map,
        // A budget of usize::MAX cannot be exceeded (sizes saturate).
        Err(_) => Map::new(),
    }
}

/// [`flatten`], stopping at the first entry that takes the output's JSON text past `limit`
/// bytes. Each entry is weighed as it is produced by a lower bound of its JSON text (key and
/// quotes, colon, value, comma; the braces less one comma), so nothing that would fit is refused
/// (a key produced twice, see the module docs, counts twice), and the work and memory
/// spent on an input that does not fit are bounded by `limit` (plus one key), not by how much
/// flattening amplifies it: `{"<1,000-char key>": [0, 0, …]}` repeats the key for every element.
pub fn flatten_within(value: &Value, limit: usize) -> Result<Map<String, Value>, TooLarge> {
    let mut out = Flat {
        map: Map::new(),
        size: 1,
        limit,
    };
    if !children(value, &mut String::new(), &mut out)? {
        out.insert(String::new(), value)?;
    }
    Ok(out.map)
}

/// The output being built and its weight so far.
struct Flat {
    map: Map<String, Value>,
    size: usize,
    limit: usize,
}

impl Flat {
    fn insert(&mut self, key: String, value: &Value) -> Result<(), TooLarge> {
        // "key":value, — escaping only lengthens the key, so this is a lower bound.
        let weight = key
            .len()
            .saturating_add(4)
            .saturating_add(scalar_weight(value));
        self.size = self.size.saturating_add(weight);
        if self.size > self.limit {
            return Err(TooLarge { limit: self.limit });
        }
        self.map.insert(key, value.clone());
        Ok(())
    }
}

/// A lower bound of the JSON text of a leaf (a scalar, or an empty object or array).
fn scalar_weight(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(_) => 1,
        Value::String(s) => s.len().saturating_add(2),
        Value::Array(_) | Value::Object(_) => 2,
    }
}

/// Flatten the children of a non-empty object or array into `out`; `false` for a leaf.
fn children(value: &Value, prefix: &mut String, out: &mut Flat) -> Result<bool, TooLarge> {
    match value {
        Value::Object(m) => {
            for (key, child) in m {
                descend(prefix, key, |p| walk(child, p, out))?;
            }
            Ok(true)
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                descend(prefix, &i.to_string(), |p| walk(child, p, out))?;
            }
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn walk(value: &Value, prefix: &mut String, out: &mut Flat) -> Result<(), TooLarge> {
    let empty = match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => true,
    };
    if empty || !children(value, prefix, out)? {
        out.insert(prefix.clone(), value)?;
    }
    Ok(())
}

/// Why [`measure`] stopped.
#[derive(Debug, thiserror::Error)]
pub enum Measure {
    #[error(transparent)]
    TooLarge(TooLarge),
    #[error("{0}")]
    Json(serde_json::Error),
}

/// Check, straight from the JSON text and without building it, that the flattened form of
/// `body` fits in `limit` bytes (the same lower bound as [`flatten_within`]). A key repeated
/// within one object is weighed at each occurrence, as written, although parsing keeps only its
/// last value: such a body may be refused although its parsed form would fit, never the
/// other way round. Memory: the
/// nesting depth (serde_json stops at 128) and one key at a time; no value is built. This runs
/// before the body is parsed into values, because parsing alone costs a fixed factor of the
/// input (16× for `[0,0,…]`) and flattening much more.
pub fn measure(body: &[u8], limit: usize) -> Result<(), Measure> {
    let mut state = SizeState {
        size: 1,
        limit,
        exceeded: false,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = Sizer {
        prefix: 0,
        top: true,
        state: &mut state,
    };
    let result = serde::de::DeserializeSeed::deserialize(seed, &mut de).and_then(|()| de.end());
    match result {
        _ if state.exceeded => Err(Measure::TooLarge(TooLarge { limit })),
        Ok(()) => Ok(()),
        Err(e) => Err(Measure::Json(e)),
    }
}

struct SizeState {
    size: usize,
    limit: usize,
    exceeded: bool,
}

impl SizeState {
    /// One flattened entry: a key of `key_len` bytes and a leaf of `leaf` bytes.
    fn entry<E: serde::de::Error>(&mut self, key_len: usize, leaf: usize) -> Result<(), E> {
        self.size = self
            .size
            .saturating_add(key_len.saturating_add(4).saturating_add(leaf));
        if self.size > self.limit {
            self.exceeded = true;
            return Err(E::custom("the flattened event is too large"));
        }
        Ok(())
    }
}

/// Weighs the value it is given as flattened under a key of `prefix` bytes.
struct Sizer<'s> {
    prefix: usize,
    top: bool,
    state: &'s mut SizeState,
}

impl Sizer<'_> {
    /// The length of `prefix.child` (no dot under the empty prefix).
    fn child(&self, child_len: usize) -> usize {
        let dot = usize::from(self.prefix > 0);
        self.prefix.saturating_add(dot).saturating_add(child_len)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Sizer<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

/// The decimal length of an array index.
fn digits(i: usize) -> usize {
    i.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Reads an object key and returns its length.
struct KeyLen;

impl<'de> serde::de::DeserializeSeed<'de> for KeyLen {
    type Value = usize;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_str(self)
    }
}

impl serde::de::Visitor<'_> for KeyLen {
    type Value = usize;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, v: &str) -> Result<usize, E> {
        Ok(v.len())
    }
}

impl<'de> serde::de::Visitor<'de> for Sizer<'_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<(), E> {
        self.state.entry(self.prefix, if v { 4 } else { 5 })
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.state.entry(self.prefix, 1)
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.state.entry(self.prefix, 1)
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.state.entry(self.prefix, 1)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.state.entry(self.prefix, v.len().saturating_add(2))
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.state.entry(self.prefix, 4)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0usize;
        loop {
            let prefix = self.child(digits(i));
            let seed = Sizer {
                prefix,
                top: false,
                state: &mut *self.state,
            };
            if seq.next_element_seed(seed)?.is_none() {
                break;
            }
            i += 1;
        }
        if i == 0 && !self.top {
            self.state.entry(self.prefix, 2)?;
        }
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut n = 0usize;
        while let Some(key_len) = map.next_key_seed(KeyLen)? {
            let prefix = self.child(key_len);
            map.next_value_seed(Sizer {
                prefix,
                top: false,
                state: &mut *self.state,
            })?;
            n += 1;
        }
        if n == 0 && !self.top {
            self.state.entry(self.prefix, 2)?;
        }
        Ok(())
    }
}

/// Run `f` with `key` appended to `prefix` (dot-separated), then restore `prefix`.
fn descend<T>(prefix: &mut String, key: &str, f: impl FnOnce(&mut String) -> T) -> T {
    let len = prefix.len();
    if len > 0 {
        prefix.push('.');
    }
    prefix.push_str(key);
    let r = f(prefix);
    prefix.truncate(len);
    r
}

/// The value at a dotted `path` (`a.b.0.c`) inside `value`: object keys by name, array elements
/// by index.
pub fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// A copy of `value` with every object's keys sorted, so that two documents differing only in
/// key order (or whitespace, once serialized) hash alike.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A repeated key is weighed at each occurrence by `measure` (the text as written), while
    /// the parsed value keeps one: refused on the text, it would have fit once parsed. Found by
    /// the `flatten` fuzz target; conservative on purpose (never the other way round).
    #[test]
    fn a_repeated_key_is_weighed_at_each_occurrence() {
        let big = "x".repeat(60);
        let text = format!(r#"{{"a":"{big}","a":"{big}"}}"#);
        let parsed: Value = serde_json::from_str(&text).unwrap();
        // One entry: 1 + "a" (1) + 4 + 62 = 68 bytes; two: 130.
        assert!(flatten_within(&parsed, 100).is_ok());
        assert!(matches!(
            measure(text.as_bytes(), 100),
            Err(Measure::TooLarge(_))
        ));
        assert!(measure(&serde_json::to_vec(&parsed).unwrap(), 100).is_ok());
    }

    #[test]
    fn flattens_objects_and_arrays_by_index() {
        let v = json!({
            "a": {"b": [{"c": 1}, {"c": [true, null]}]},
            "s": "x",
            "n": {"m": {"o": 2.5}}
        });
        assert_eq!(
            Value::Object(flatten(&v)),
            json!({"a.b.0.c": 1, "a.b.1.c.0": true, "a.b.1.c.1": null, "s": "x", "n.m.o": 2.5})
        );
        // Document order is kept.
        let keys: Vec<String> = flatten(&v).keys().cloned().collect();
        assert_eq!(keys, ["a.b.0.c", "a.b.1.c.0", "a.b.1.c.1", "s", "n.m.o"]);
    }

    #[test]
    fn keeps_empty_containers_as_values() {
        let v = json!({"e": {}, "l": [], "x": {"y": {}, "z": [[]]}});
        assert_eq!(
            Value::Object(flatten(&v)),
            json!({"e": {}, "l": [], "x.y": {}, "x.z.0": []})
        );
        assert_eq!(Value::Object(flatten(&json!({}))), json!({}));
    }

    #[test]
    fn flat_input_is_unchanged() {
        let v = json!({"a": 1, "b": "two", "c": null});
        assert_eq!(Value::Object(flatten(&v)), v);
    }

    #[test]
    fn later_keys_win_on_collision() {
        let v = json!({"a.b": 1, "a": {"b": 2}});
        assert_eq!(Value::Object(flatten(&v)), json!({"a.b": 2}));
    }

    #[test]
    fn the_bound_is_a_lower_bound_of_the_json_text() {
        let samples = [
            json!({"a": {"b": [{"c": 1}, {"c": [true, null, false]}]}, "s": "x\"y", "e": {}}),
            json!([1, [2, [3, []]]]),
            json!("scalar"),
            json!({"k\u{1}": "\u{e9}\n", "n": -1.5e300}),
        ];
        for v in samples {
            let full = flatten(&v);
            let text = serde_json::to_string(&full).unwrap();
            // Exactly the text's length fits; a byte less may not, never more than the text.
            assert_eq!(flatten_within(&v, text.len()), Ok(full), "{v}");
        }
    }

    #[test]
    fn stops_at_the_first_entry_past_the_limit() {
        // 1,000-char key, 100,000 elements: unbounded this is ~100 MB of keys.
        let key = "k".repeat(1000);
        let v = json!({ key: vec![0; 100_000] });
        let limit = 256 * 1024;
        assert_eq!(flatten_within(&v, limit), Err(TooLarge { limit }));
        // The first entry that does not fit stops it: a 300-entry object is refused at 10 KB.
        let small = json!({ "k".repeat(1000): vec![0; 300] });
        assert_eq!(
            flatten_within(&small, 10_000),
            Err(TooLarge { limit: 10_000 })
        );
        assert_eq!(flatten_within(&small, usize::MAX).map(|m| m.len()), Ok(300));
    }

    #[test]
    fn measure_agrees_with_flatten_within() {
        let samples = [
            r#"{"a": {"b": [{"c": 1}, {"c": [true, null, false]}]}, "s": "x\"y", "e": {}, "l": []}"#,
            r#"[1, [2, [3, []]], {}]"#,
            r#""scalar""#,
            r#"{}"#,
            r#"{"":{"":[{"":1}]}}"#,
            r#"{"k\u0001": "\u00e9\n", "n": -1.5e300, "big": 123456789012345678901234567890}"#,
            r#"[0,1,2,3,4,5,6,7,8,9,10,11]"#,
        ];
        for text in samples {
            let v: Value = serde_json::from_str(text).unwrap();
            let exact = serde_json::to_string(&flatten(&v)).unwrap().len();
            for limit in [0, 1, 2, 5, 10, 20, 40, 80, exact] {
                assert_eq!(
                    measure(text.as_bytes(), limit).is_ok(),
                    flatten_within(&v, limit).is_ok(),
                    "{text} at {limit}"
                );
            }
            assert!(measure(text.as_bytes(), exact).is_ok(), "{text}");
        }
        assert!(matches!(
            measure(b"{\"a\":[0,0", 1000),
            Err(Measure::Json(_))
        ));
        assert!(matches!(measure(b"{} x", 1000), Err(Measure::Json(_))));
    }

    #[test]
    fn measure_stops_at_the_limit_without_building_values() {
        let mut body = format!("{{\"{}\":[", "k".repeat(1000));
        body.push_str(&vec!["0"; 1_000_000].join(","));
        body.push_str("]}");
        let limit = 256 * 1024;
        assert!(matches!(
            measure(body.as_bytes(), limit),
            Err(Measure::TooLarge(TooLarge { limit: 262_144 }))
        ));
    }

    #[test]
    fn paths_and_canonical_form() {
        let v = json!({"a": {"b": [{"c": 1}]}});
        assert_eq!(get_path(&v, "a.b.0.c"), Some(&json!(1)));
        assert_eq!(get_path(&v, "a.b.1.c"), None);
        assert_eq!(get_path(&v, "a.x"), None);
        let x: Value = serde_json::from_str(r#"{"b": 1, "a": {"d": 2, "c": 3}}"#).unwrap();
        let y: Value = serde_json::from_str(r#"{"a": {"c": 3, "d": 2}, "b": 1}"#).unwrap();
        assert_ne!(x.to_string(), y.to_string());
        assert_eq!(canonical(&x).to_string(), canonical(&y).to_string());
    }
}

/// Property tests (proptest, from crates.io; `cargo fuzz` is not set up here): the measuring
/// walk over outside bytes agrees with flattening the parsed value, on generated documents.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((".{0,8}", inner), 0..6)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn measure_agrees_with_flatten_within(v in json(), limit in 0usize..600) {
            let text = serde_json::to_string(&v).unwrap();
            prop_assert_eq!(
                measure(text.as_bytes(), limit).is_ok(),
                flatten_within(&v, limit).is_ok()
            );
        }

        #[test]
        fn the_bound_never_refuses_what_fits(v in json()) {
            let flat = flatten(&v);
            // Colliding keys count twice (see `flatten_within`): collision-free documents only.
            prop_assume!(count_entries(&v) == flat.len());
            let exact = serde_json::to_string(&flat).unwrap().len();
            prop_assert!(flatten_within(&v, exact).is_ok());
        }

        #[test]
        fn measure_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256), limit in 0usize..1000) {
            let _ = measure(&bytes, limit);
        }
    }

    /// How many entries flattening produces (collisions included).
    fn count_entries(v: &Value) -> usize {
        match v {
            Value::Object(m) if !m.is_empty() => m.values().map(count_entries).sum(),
            Value::Array(a) if !a.is_empty() => a.iter().map(count_entries).sum(),
            _ => 1,
        }
    }
}
