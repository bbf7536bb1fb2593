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
    // A budget of usize::MAX cannot be exceeded (sizes saturate): never the empty default.
    flatten_within(value, usize::MAX).unwrap_or_default()
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
mod tests;
