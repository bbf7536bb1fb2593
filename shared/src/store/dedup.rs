//! Dedup keys: "have we seen this before?" for records, webhook events and pages.
//!
//! A key is the SHA-256 of up to five selected fields (or a caller-supplied key). The first
//! sighting is [`Sighting::New`], later ones [`Sighting::Duplicate`]; every sighting pushes the
//! expiry to `ttl` after *now*, so a key lives 7 days (by default) after its **last** sighting.
//!
//! # Stores
//!
//! - [`MemoryDedup`]: one process, for local runs and unit tests.
//! - [`DynamoDedup`](crate::aws::dedup::DynamoDedup): the extension table, one `UpdateItem` per
//!   check (its layout is described there).
//!
//! # Choosing keys
//!
//! [`KeyFields`] selects up to [`MAX_KEY_FIELDS`] dotted field paths (`customer.id`,
//! `lines.0.sku`: a numeric segment indexes an array); [`check_page`] checks a whole page with
//! bounded parallelism and keeps the page's order.

use async_trait::async_trait;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::codec::hex;
use crate::time::EpochSeconds;

/// Default lifetime of a key after its last sighting.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this many fields make up a key.
pub const MAX_KEY_FIELDS: usize = 5;
/// The setting overriding [`DEFAULT_TTL`] (whole seconds, at least 1).
pub const TTL_VAR: &str = "EXTENSION_DEDUP_TTL_SECS";
/// Prefix of the partition key of dedup items.
pub const PK_PREFIX: &str = "dedup#";

/// A dedup key: lowercase hex SHA-256, namespaced by a scope (endpoint, flow, import…).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupKey(String);

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

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    New,
    Duplicate,
}

impl Sighting {
    pub fn is_new(self) -> bool {
        self == Sighting::New
    }
}

/// A store failure (never the key's inputs, which may be personal data).
#[derive(Debug, thiserror::Error)]
#[error("dedup store unavailable: {0}")]
pub struct StoreError(pub String);

/// An invalid selection of key fields (a configuration mistake, not retryable).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFieldsError {
    #[error("no dedup key fields were given; list 1 to {MAX_KEY_FIELDS} field paths")]
    Empty,
    #[error("{0} dedup key fields were given; at most {MAX_KEY_FIELDS} are allowed")]
    TooMany(usize),
    #[error("dedup key field {0} is an empty path; use dotted paths such as \"customer.id\"")]
    EmptyPath(usize),
}

/// Why a page could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error(transparent)]
    Fields(#[from] KeyFieldsError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DedupError {
    /// Store failures may succeed on retry; invalid fields never do.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DedupError::Store(_))
    }
}

/// Where dedup keys live.
#[async_trait]
pub trait DedupStore: Send + Sync + 'static {
    /// Record a sighting of `key` and say whether it is the first one still alive. Exactly one
    /// store write; concurrent checks of a new key yield exactly one `New`.
    async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError>;

    /// Make `key` count as new again (e.g. when the work it guarded failed, so the sender's
    /// retry is not taken for a duplicate). One write. The default records a zero-TTL sighting,
    /// which leaves the key expired.
    async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
        self.check(key, Duration::ZERO).await.map(|_| ())
    }
}

/// Whether an item expiring at `expires_at` (epoch seconds) still counts at `now`: an item
/// is expired from its `expires_at` second on, so a zero-TTL sighting leaves a key already
/// expired (what [`DedupStore::forget`]'s default relies on).
pub(crate) fn alive(expires_at: u64, now: u64) -> bool {
    expires_at > now
}

/// The dedup service handed to functions (`inv.dedup()?`): a store plus the TTL.
#[derive(Clone)]
pub struct Dedup {
    pub store: Arc<dyn DedupStore>,
    pub ttl: Duration,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Dedup {
    pub fn new(store: Arc<dyn DedupStore>) -> Self {
        Self {
            store,
            ttl: DEFAULT_TTL,
        }
    }
    /// A store with a TTL other than [`DEFAULT_TTL`].
    pub fn with_ttl(store: Arc<dyn DedupStore>, ttl: Duration) -> Self {
        Self { store, ttl }
    }
    pub async fn check(&self, key: &DedupKey) -> Result<Sighting, StoreError> {
        let sighting = self.store.check(key, self.ttl).await?;
        let new = usize::from(sighting == Sighting::New);
        crate::metrics::dedup(new, 1 - new);
        Ok(sighting)
    }
    /// See [`DedupStore::forget`].
    pub async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
        self.store.forget(key).await
    }
}

// ---------------------------------------------------------------------------------------------
// Key selection

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

/// Check every key, at most `concurrency` store calls at a time (0 counts as 1), and return
/// the sightings in the order of `keys`. A key repeated within `keys` is checked once, at its
/// first position; its later occurrences are [`Sighting::Duplicate`] whatever the store says,
/// so the answer never depends on which of two parallel calls reached the store first.
pub async fn check_keys(
    dedup: &Dedup,
    keys: &[DedupKey],
    concurrency: usize,
) -> Result<Vec<Sighting>, StoreError> {
    let mut seen: HashSet<&DedupKey> = HashSet::with_capacity(keys.len());
    let repeated: Vec<bool> = keys.iter().map(|k| !seen.insert(k)).collect();
    // Owned keys and store: a closure over borrowed keys would make the future fail the
    // `Send` check of handlers (higher-ranked lifetime inference).
    let to_check: Vec<DedupKey> = keys
        .iter()
        .zip(&repeated)
        .filter(|(_, r)| !**r)
        .map(|(k, _)| k.clone())
        .collect();
    let (store, ttl) = (dedup.store.clone(), dedup.ttl);
    let checked: Vec<Sighting> = stream::iter(to_check)
        .map(move |k| {
            let store = store.clone();
            async move { store.check(&k, ttl).await }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    let mut checked = checked.into_iter();
    let sightings: Vec<Sighting> = repeated
        .into_iter()
        .map(|r| {
            if r {
                Sighting::Duplicate
            } else {
                checked.next().unwrap_or(Sighting::Duplicate)
            }
        })
        .collect();
    let new = sightings.iter().filter(|s| **s == Sighting::New).count();
    crate::metrics::dedup(new, sightings.len() - new);
    Ok(sightings)
}

/// Which records of a page were seen before: each record `key_of` gives a key for is checked
/// (with [`check_keys`]: page order kept, a repeat within the page is a duplicate); a record
/// without a key is never a duplicate and is not remembered. `true` marks a duplicate.
pub async fn seen_before<T>(
    dedup: &Dedup,
    records: &[T],
    key_of: impl Fn(&T) -> Option<DedupKey>,
    concurrency: usize,
) -> Result<Vec<bool>, StoreError> {
    let (positions, keys): (Vec<usize>, Vec<DedupKey>) = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| key_of(r).map(|k| (i, k)))
        .unzip();
    let sightings = check_keys(dedup, &keys, concurrency).await?;
    let mut seen = vec![false; records.len()];
    for (i, s) in positions.into_iter().zip(sightings) {
        if let Some(d) = seen.get_mut(i) {
            *d = s == Sighting::Duplicate;
        }
    }
    Ok(seen)
}

/// Check a whole page: each record's key is [`key_for`]`(scope, record, fields)`, or the
/// whole record when `fields` is empty. Sightings come back in page order; two identical
/// records in one page give `New` then `Duplicate` (see [`check_keys`]).
pub async fn check_page(
    dedup: &Dedup,
    scope: &str,
    records: &[Value],
    fields: &[String],
    concurrency: usize,
) -> Result<Vec<Sighting>, DedupError> {
    let keys: Vec<DedupKey> = if fields.is_empty() {
        records
            .iter()
            .map(|r| DedupKey::from_record(scope, r))
            .collect()
    } else {
        let fields = KeyFields::new(fields)?;
        records.iter().map(|r| fields.key(scope, r)).collect()
    };
    Ok(check_keys(dedup, &keys, concurrency).await?)
}

// ---------------------------------------------------------------------------------------------
// Stores

/// In-memory twin for local runs and unit tests (one process only).
#[derive(Debug, Default)]
pub struct MemoryDedup {
    /// key → expiry (epoch seconds)
    keys: Mutex<HashMap<String, u64>>,
}

#[async_trait]
impl DedupStore for MemoryDedup {
    async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
        let now = EpochSeconds::now().0;
        let mut keys = self
            .keys
            .lock()
            .map_err(|_| StoreError("in-memory store poisoned".into()))?;
        let previous = keys.insert(key.0.clone(), now.saturating_add(ttl.as_secs()));
        Ok(match previous {
            Some(exp) if alive(exp, now) => Sighting::Duplicate,
            _ => Sighting::New,
        })
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn memory() -> Dedup {
        Dedup::new(Arc::new(MemoryDedup::default()))
    }

    #[tokio::test]
    async fn first_is_new_then_duplicate() {
        let s = MemoryDedup::default();
        let k = DedupKey::from_values("ep", &[Some(&json!({"a": 1}))]);
        assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::New);
        assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::Duplicate);
        let other_scope = DedupKey::from_values("other", &[Some(&json!({"a": 1}))]);
        assert_ne!(k, other_scope);
        assert_eq!(k.as_str().len(), 64);
    }

    #[test]
    fn field_paths_walk_objects_and_arrays() {
        let r = json!({"customer": {"id": 7}, "lines": [{"sku": "A"}, {"sku": "B"}]});
        assert_eq!(field_at(&r, "customer.id"), Some(&json!(7)));
        assert_eq!(field_at(&r, "lines.1.sku"), Some(&json!("B")));
        assert_eq!(field_at(&r, "lines.2.sku"), None);
        assert_eq!(field_at(&r, "lines.x"), None);
        assert_eq!(field_at(&r, "customer.id.x"), None);
    }

    #[test]
    fn key_fields_are_validated() {
        assert_eq!(
            KeyFields::new(Vec::<String>::new()),
            Err(KeyFieldsError::Empty)
        );
        assert_eq!(
            KeyFields::new(["a", "b", "c", "d", "e", "f"]),
            Err(KeyFieldsError::TooMany(6))
        );
        assert_eq!(
            KeyFields::new(["a", " "]),
            Err(KeyFieldsError::EmptyPath(1))
        );
        let f = KeyFields::new([" customer.id ", "lines.0.sku"]).unwrap();
        assert_eq!(f.paths(), ["customer.id", "lines.0.sku"]);
        let six: Vec<String> = (0..6).map(|i| format!("f{i}")).collect();
        assert_eq!(
            key_for("s", &json!({}), &six),
            Err(KeyFieldsError::TooMany(6))
        );
    }

    #[test]
    fn keys_depend_on_selected_values_and_scope_only() {
        let f = KeyFields::new(["customer.id", "lines.0.sku"]).unwrap();
        let a = json!({"customer": {"id": 7, "name": "x"}, "lines": [{"sku": "A"}], "n": 1});
        let b = json!({"n": 2, "lines": [{"sku": "A", "qty": 3}], "customer": {"id": 7}});
        let c = json!({"customer": {"id": 8}, "lines": [{"sku": "A"}]});
        assert_eq!(f.key("s", &a), f.key("s", &b));
        assert_ne!(f.key("s", &a), f.key("s", &c));
        assert_ne!(f.key("s", &a), f.key("t", &a));
        assert_eq!(
            f.key("s", &a),
            DedupKey::from_values("s", &[Some(&json!(7)), Some(&json!("A"))])
        );
        assert!(f.any_present(&a));
        assert!(!f.any_present(&json!({"customer": {"id": null}})));
    }

    #[tokio::test]
    async fn a_page_keeps_order_and_flags_in_page_duplicates() {
        let d = memory();
        let fields = vec!["id".to_owned()];
        let page = [
            json!({"id": 1}),
            json!({"id": 2}),
            json!({"id": 1}),
            json!({"id": 3}),
        ];
        let out = check_page(&d, "s", &page, &fields, 2).await.unwrap();
        use Sighting::*;
        assert_eq!(out, [New, New, Duplicate, New]);
        let again = check_page(&d, "s", &page[1..], &fields, 0).await.unwrap();
        assert_eq!(again, [Duplicate, Duplicate, Duplicate]);
        let whole = check_page(
            &d,
            "s",
            &[json!({"id": 1}), json!({"id": 1, "x": 0})],
            &[],
            4,
        )
        .await
        .unwrap();
        assert_eq!(whole, [New, New]);
        let err = check_page(&d, "s", &page, &["".to_owned()], 1)
            .await
            .unwrap_err();
        assert!(!err.is_retryable());
    }

    /// Handlers need `Send + 'static` futures: owned inputs must give one.
    #[test]
    fn page_checks_are_send() {
        fn is_send<F: std::future::Future + Send + 'static>(_: F) {}
        let d = memory();
        is_send(async move {
            let records = vec![json!({"id": 1})];
            let fields = vec!["id".to_owned()];
            check_page(&d, "s", &records, &fields, 2).await
        });
    }

    #[tokio::test]
    async fn an_expired_key_is_new_again() {
        let s = MemoryDedup::default();
        let k = DedupKey::from_caller("s", "k");
        s.keys
            .lock()
            .unwrap()
            .insert(k.as_str().to_owned(), EpochSeconds::now().0 - 10);
        assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::New);
        assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::Duplicate);
    }

    #[tokio::test]
    async fn forgetting_or_a_zero_ttl_makes_a_key_new_again() {
        let d = memory();
        let k = DedupKey::from_caller("s", "k");
        assert_eq!(d.check(&k).await.unwrap(), Sighting::New);
        d.forget(&k).await.unwrap();
        assert_eq!(d.check(&k).await.unwrap(), Sighting::New);
        assert_eq!(
            d.store.check(&k, Duration::ZERO).await.unwrap(),
            Sighting::Duplicate
        );
        assert_eq!(d.check(&k).await.unwrap(), Sighting::New);
    }
}
