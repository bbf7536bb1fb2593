//! Small helpers the examples share: dotted field paths and the `settings.requiredFields` list.
//!
//! A *field path* names a value inside a record with dots: `customer.address.city`. A segment
//! that is a number indexes an array, so `lines.0.sku` is the `sku` of the first line. The
//! same notation is what [`crate::pre_map`]'s `flattenRecords` produces as keys.

use integrator_lambda::{ExtError, ExtResult};
use serde_json::Value;

/// The most field paths `settings.requiredFields` may list. Each path is checked on every
/// record, so the list is kept short on purpose.
pub const MAX_REQUIRED_FIELDS: usize = 5;

/// The value at a dotted `path` inside `value`, if there is one.
///
/// ```
/// use serde_json::json;
/// let r = json!({"a": {"b": [{"c": 1}]}});
/// assert_eq!(functions::fields::get_path(&r, "a.b.0.c"), Some(&json!(1)));
/// assert_eq!(functions::fields::get_path(&r, "a.x"), None);
/// ```
pub fn get_path<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// The paths of `required` that `record` lacks. A field is missing when the path leads
/// nowhere or to `null`; empty strings, `0` and `false` count as present.
pub fn missing_fields<'a>(record: &Value, required: &'a [String]) -> Vec<&'a str> {
    required
        .iter()
        .filter(|path| get_path(record, path).is_none_or(Value::is_null))
        .map(String::as_str)
        .collect()
}

/// Read `settings.requiredFields`: absent or `null` means "no required fields"; otherwise it
/// must be an array of at most [`MAX_REQUIRED_FIELDS`] non-empty strings. Anything else is a
/// configuration mistake reported as an `invalid_settings` error, so that a typo does not
/// silently disable the check.
pub fn required_fields(settings: Option<&Value>) -> ExtResult<Vec<String>> {
    let Some(list) = settings.and_then(|s| s.get("requiredFields")) else {
        return Ok(Vec::new());
    };
    let invalid = || {
        ExtError::with_code(
            "invalid_settings",
            format!(
                "settings.requiredFields must be an array of at most {MAX_REQUIRED_FIELDS} field paths such as \"customer.email\"."
            ),
        )
    };
    match list {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) if items.len() <= MAX_REQUIRED_FIELDS => items
            .iter()
            .map(|item| match item.as_str().map(str::trim) {
                Some(path) if !path.is_empty() => Ok(path.to_owned()),
                _ => Err(invalid()),
            })
            .collect(),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_walk_objects_and_arrays() {
        let r = json!({"a": {"b": [{"c": 1}, {"c": null}]}, "n": 0});
        assert_eq!(get_path(&r, "a.b.0.c"), Some(&json!(1)));
        assert_eq!(get_path(&r, "a.b.2.c"), None);
        assert_eq!(get_path(&r, "a.b.x"), None);
        assert_eq!(get_path(&r, "n.x"), None);
        let required = vec!["a.b.0.c".to_owned(), "a.b.1.c".to_owned(), "n".to_owned()];
        assert_eq!(missing_fields(&r, &required), ["a.b.1.c"]);
    }

    #[test]
    fn required_fields_are_validated() {
        assert_eq!(required_fields(None), Ok(vec![]));
        assert_eq!(
            required_fields(Some(&json!({"requiredFields": null}))),
            Ok(vec![])
        );
        assert_eq!(
            required_fields(Some(&json!({"requiredFields": [" id ", "a.b"]}))),
            Ok(vec!["id".to_owned(), "a.b".to_owned()])
        );
        for bad in [
            json!("id"),
            json!(["id", ""]),
            json!([1]),
            json!(["a", "b", "c", "d", "e", "f"]),
        ] {
            let err = required_fields(Some(&json!({ "requiredFields": bad }))).unwrap_err();
            assert_eq!(err.code.as_deref(), Some("invalid_settings"));
        }
    }
}
