//! Flattening nested JSON to dotted keys, and reading dotted paths.
//!
//! `{"a": {"b": [{"c": 1}]}}` becomes `{"a.b.0.c": 1}`: object keys are joined with `.`, array
//! elements are named by their index. Empty objects and arrays are kept as values (`{"a": {}}`
//! stays `{"a": {}}`), so no field silently disappears. Keys are produced in document order.
//! Two inputs can collide (`{"a.b": 1, "a": {"b": 2}}`); the later one wins.

use serde_json::{Map, Value};

/// Flatten a JSON object to dotted keys (an empty object gives an empty map). A top-level array
/// is flattened from its indexes; a scalar is returned under the key `""`.
pub fn flatten(value: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    if !children(value, &mut String::new(), &mut out) {
        out.insert(String::new(), value.clone());
    }
    out
}

/// Flatten the children of a non-empty object or array into `out`; `false` for a leaf.
fn children(value: &Value, prefix: &mut String, out: &mut Map<String, Value>) -> bool {
    match value {
        Value::Object(m) => {
            for (key, child) in m {
                descend(prefix, key, |p| walk(child, p, out));
            }
            true
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                descend(prefix, &i.to_string(), |p| walk(child, p, out));
            }
            true
        }
        _ => false,
    }
}

fn walk(value: &Value, prefix: &mut String, out: &mut Map<String, Value>) {
    let empty = match value {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => true,
    };
    if empty || !children(value, prefix, out) {
        out.insert(prefix.clone(), value.clone());
    }
}

/// Run `f` with `key` appended to `prefix` (dot-separated), then restore `prefix`.
fn descend(prefix: &mut String, key: &str, f: impl FnOnce(&mut String)) {
    let len = prefix.len();
    if len > 0 {
        prefix.push('.');
    }
    prefix.push_str(key);
    f(prefix);
    prefix.truncate(len);
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
