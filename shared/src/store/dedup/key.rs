//! Dedup keys and how they are chosen: [`DedupKey`], [`KeyFields`] (validated by
//! [`KeyFieldsError`]), [`key_for`] and [`field_at`].

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::MAX_KEY_FIELDS;
use crate::codec::hex;

/// A dedup key: lowercase hex SHA-256, namespaced by a scope (endpoint, flow, import…).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupKey(pub(super) String);

impl DedupKey {
    /// Hash `scope` and the selected `values` (JSON text of each, in order; absent = null).
    pub fn from_values(scope: &str, values: &[Option<&Value>]) -> Self {
        let mut h = Sha256::new();
        h.update(scope.as_bytes());
        for v in values {
            h.update([0x1f]);
            match v {
                Some(v) => h.update(crate::protocol::json::to_vec(v).unwrap_or_default()),
                None => h.update(b"null"),
            }
        }
        Self(hex(&h.finalize()))
    }

    /// A caller-supplied key (e.g. a dedup header), hashed with the scope so it is never stored
    /// in clear and cannot collide across scopes.
    pub fn from_caller(scope: &str, key: &str) -> Self {
        let mut h = Sha256::new();
        h.update(scope.as_bytes());
        h.update([0x1e]);
        h.update(key.as_bytes());
        Self(hex(&h.finalize()))
    }

    /// The whole record as the key (`from_values(scope, &[Some(record)])`).
    pub fn from_record(scope: &str, record: &Value) -> Self {
        Self::from_values(scope, &[Some(record)])
    }

    /// The key as hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An invalid selection of key fields (a configuration mistake, not retryable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFieldsError {
    /// No field was given.
    #[error("no dedup key fields were given; list 1 to {MAX_KEY_FIELDS} field paths")]
    Empty,
    /// More than [`MAX_KEY_FIELDS`] fields were given (how many).
    #[error("{0} dedup key fields were given; at most {MAX_KEY_FIELDS} are allowed")]
    TooMany(usize),
    /// The field at this index is an empty path.
    #[error("dedup key field {0} is an empty path; use dotted paths such as \"customer.id\"")]
    EmptyPath(usize),
}

/// The value at a dotted `path` inside `value`: object keys by name, array elements by index
/// (`lines.0.sku`). `None` when the path leads nowhere.
pub fn field_at<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |current, segment| match current {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// 1 to [`MAX_KEY_FIELDS`] dotted field paths whose values make up a record's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFields(Vec<String>);

impl KeyFields {
    /// Validate the paths (trimmed): at least one, at most [`MAX_KEY_FIELDS`], none empty.
    pub fn new<I, S>(paths: I) -> Result<Self, KeyFieldsError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let paths: Vec<String> = paths
            .into_iter()
            .map(|p| p.as_ref().trim().to_owned())
            .collect();
        if paths.is_empty() {
            return Err(KeyFieldsError::Empty);
        }
        if paths.len() > MAX_KEY_FIELDS {
            return Err(KeyFieldsError::TooMany(paths.len()));
        }
        if let Some(i) = paths.iter().position(String::is_empty) {
            return Err(KeyFieldsError::EmptyPath(i));
        }
        Ok(Self(paths))
    }

    /// The selected field paths, in order.
    pub fn paths(&self) -> &[String] {
        &self.0
    }

    /// The selected values of `record`, in order (`None` where a path leads nowhere).
    pub fn values<'a>(&self, record: &'a Value) -> Vec<Option<&'a Value>> {
        self.0.iter().map(|p| field_at(record, p)).collect()
    }

    /// Whether `record` has at least one selected field that is present and not `null`.
    pub fn any_present(&self, record: &Value) -> bool {
        self.values(record)
            .into_iter()
            .any(|v| v.is_some_and(|v| !v.is_null()))
    }

    /// The key of `record` in `scope`: [`DedupKey::from_values`] over the selected values.
    pub fn key(&self, scope: &str, record: &Value) -> DedupKey {
        DedupKey::from_values(scope, &self.values(record))
    }
}

/// The key of `record` in `scope` from `fields` (validated as by [`KeyFields::new`]).
pub fn key_for(scope: &str, record: &Value, fields: &[String]) -> Result<DedupKey, KeyFieldsError> {
    Ok(KeyFields::new(fields)?.key(scope, record))
}
