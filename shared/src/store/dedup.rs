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
use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
#[derive(Debug, Clone, thiserror::Error)]
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

    /// Claim `key` for `lease` before the work it guards (two-state keys: *pending* while the
    /// work runs, *done* once [`confirm`](Self::confirm)ed). [`Claim::Claimed`] when nobody
    /// holds it (new, expired, or an earlier claim whose lease ran out: its holder died);
    /// [`Claim::Duplicate`] when it was confirmed within its TTL; [`Claim::InFlight`] while
    /// another claim holds it. One conditional write; concurrent claims of a free key yield
    /// exactly one `Claimed`. A duplicate's expiry moves to `ttl` from now, as with any
    /// sighting. The default (stores without leases) is a plain [`check`](Self::check).
    async fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let _ = ttl;
        Ok(match self.check(key, lease).await? {
            Sighting::New => Claim::Claimed(String::new()),
            Sighting::Duplicate => Claim::Duplicate,
        })
    }

    /// The work guarded by the claim `token` is done: keep `key` as seen for `ttl`. A holder
    /// whose lease ran out and was taken over confirms nothing.
    async fn confirm(&self, key: &DedupKey, token: &str, ttl: Duration) -> Result<(), StoreError> {
        let _ = token;
        self.check(key, ttl).await.map(|_| ())
    }

    /// The work guarded by the claim `token` failed: free `key` at once, so a retry is new.
    /// Only the holder's own claim is removed.
    async fn release(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        let _ = token;
        self.forget(key).await
    }
}

/// The answer to [`DedupStore::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Ours until the lease ends: do the work, then confirm (or release) with this token.
    Claimed(String),
    /// Done before, within the TTL.
    Duplicate,
    /// Another claim holds it; try again after its lease.
    InFlight,
}

/// Whether an item expiring at `expires_at` (epoch seconds) still counts at `now`: an item
/// is expired from its `expires_at` second on, so a zero-TTL sighting leaves a key already
/// expired (what [`DedupStore::forget`]'s default relies on).
pub(crate) fn alive(expires_at: u64, now: u64) -> bool {
    expires_at > now
}

/// The dedup service handed to functions (`inv.dedup()?`): a store plus the TTL (and, for one
/// call, the time its page checks must end by: [`Dedup::for_call`]).
#[derive(Clone)]
pub struct Dedup {
    pub store: Arc<dyn DedupStore>,
    pub ttl: Duration,
    /// Page checks still running at this instant fail (and their keys are rolled back).
    pub checks_end_by: Option<Instant>,
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
        Self::with_ttl(store, DEFAULT_TTL)
    }
    /// A store with a TTL other than [`DEFAULT_TTL`].
    pub fn with_ttl(store: Arc<dyn DedupStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            checks_end_by: None,
        }
    }
    /// The service for one call due at `deadline`: its page checks end a margin before it
    /// (a fifth of the time left, at most 1 s), so a check that runs late fails the page and
    /// its keys are forgotten again instead of being cut off while marked.
    pub fn for_call(&self, deadline: Instant) -> Self {
        let left = deadline.saturating_duration_since(Instant::now());
        let margin = (left / 5).min(Duration::from_secs(1));
        Self {
            checks_end_by: deadline.checked_sub(margin),
            ..self.clone()
        }
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
    /// See [`DedupStore::claim`].
    pub async fn claim(&self, key: &DedupKey, lease: Duration) -> Result<Claim, StoreError> {
        let claim = self.store.claim(key, lease, self.ttl).await?;
        match claim {
            Claim::Claimed(_) => crate::metrics::dedup(1, 0),
            Claim::Duplicate => crate::metrics::dedup(0, 1),
            Claim::InFlight => {}
        }
        Ok(claim)
    }
    /// See [`DedupStore::confirm`] (for this service's TTL).
    pub async fn confirm(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        self.store.confirm(key, token, self.ttl).await
    }
    /// See [`DedupStore::release`].
    pub async fn release(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        self.store.release(key, token).await
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
    let (store, ttl, end_by) = (dedup.store.clone(), dedup.ttl, dedup.checks_end_by);
    let results: Vec<(DedupKey, Result<Sighting, StoreError>)> = stream::iter(to_check)
        .map(move |k| {
            let store = store.clone();
            async move {
                let r = match end_by {
                    None => store.check(&k, ttl).await,
                    Some(at) => tokio::time::timeout_at(at.into(), store.check(&k, ttl))
                        .await
                        .unwrap_or_else(|_| {
                            Err(StoreError("the page's checks ran out of time".into()))
                        }),
                };
                (k, r)
            }
        })
        .buffered(concurrency.max(1))
        .collect()
        .await;
    // All or nothing: when one check fails, the keys this call marked as new are forgotten
    // again, so a retry of the page finds them new (none is marked without its page).
    if let Some(e) = results.iter().find_map(|(_, r)| r.as_ref().err()).cloned() {
        for (k, r) in &results {
            if matches!(r, Ok(Sighting::New))
                && let Err(f) = dedup.store.forget(k).await
            {
                tracing::error!(dedup_key = %k.as_str(), error = %f, "could not forget a key of a failed page; a retry within its TTL will see it as a duplicate");
            }
        }
        return Err(e);
    }
    let checked: Vec<Sighting> = results.into_iter().filter_map(|(_, r)| r.ok()).collect();
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

/// key → (expiry in epoch seconds, the claim token while pending)
type MemoryKeys = HashMap<String, (u64, Option<String>)>;

/// In-memory twin for local runs and unit tests (one process only).
#[derive(Debug, Default)]
pub struct MemoryDedup {
    keys: Mutex<MemoryKeys>,
}

impl MemoryDedup {
    fn keys(&self) -> Result<std::sync::MutexGuard<'_, MemoryKeys>, StoreError> {
        self.keys
            .lock()
            .map_err(|_| StoreError("in-memory store poisoned".into()))
    }
}

#[async_trait]
impl DedupStore for MemoryDedup {
    async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
        let now = EpochSeconds::now().0;
        let previous = self
            .keys()?
            .insert(key.0.clone(), (now.saturating_add(ttl.as_secs()), None));
        Ok(match previous {
            Some((exp, _)) if alive(exp, now) => Sighting::Duplicate,
            _ => Sighting::New,
        })
    }

    async fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let now = EpochSeconds::now().0;
        let mut keys = self.keys()?;
        match keys.get(&key.0) {
            Some((exp, None)) if alive(*exp, now) => {
                keys.insert(key.0.clone(), (now.saturating_add(ttl.as_secs()), None));
                Ok(Claim::Duplicate)
            }
            Some((exp, Some(_))) if alive(*exp, now) => Ok(Claim::InFlight),
            _ => {
                let token = crate::codec::random_id();
                let until = now.saturating_add(lease.as_secs().max(1));
                keys.insert(key.0.clone(), (until, Some(token.clone())));
                Ok(Claim::Claimed(token))
            }
        }
    }

    async fn confirm(&self, key: &DedupKey, token: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = EpochSeconds::now().0;
        let mut keys = self.keys()?;
        if let Some(entry) = keys.get_mut(&key.0)
            && entry.1.as_deref() == Some(token)
        {
            *entry = (now.saturating_add(ttl.as_secs()), None);
        }
        Ok(())
    }

    async fn release(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        let mut keys = self.keys()?;
        if keys
            .get(&key.0)
            .is_some_and(|e| e.1.as_deref() == Some(token))
        {
            keys.remove(&key.0);
        }
        Ok(())
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
    async fn claims_are_pending_until_confirmed_and_free_again_when_released() {
        let d = memory();
        let k = DedupKey::from_caller("s", "k");
        let lease = Duration::from_secs(30);
        let Claim::Claimed(t) = d.claim(&k, lease).await.unwrap() else {
            panic!("a new key is claimed")
        };
        assert_eq!(d.claim(&k, lease).await.unwrap(), Claim::InFlight);
        d.release(&k, "someone else").await.unwrap();
        assert_eq!(
            d.claim(&k, lease).await.unwrap(),
            Claim::InFlight,
            "not theirs to free"
        );
        d.release(&k, &t).await.unwrap();
        let Claim::Claimed(t2) = d.claim(&k, lease).await.unwrap() else {
            panic!("released, so free again")
        };
        d.confirm(&k, &t2).await.unwrap();
        assert_eq!(d.claim(&k, lease).await.unwrap(), Claim::Duplicate);
        assert_eq!(d.check(&k).await.unwrap(), Sighting::Duplicate);
    }

    #[tokio::test]
    async fn a_claim_whose_lease_ran_out_is_taken_over() {
        let s = MemoryDedup::default();
        let k = DedupKey::from_caller("s", "k");
        s.keys.lock().unwrap().insert(
            k.as_str().to_owned(),
            (EpochSeconds::now().0 - 1, Some("dead holder".into())),
        );
        let claim = s
            .claim(&k, Duration::from_secs(5), DEFAULT_TTL)
            .await
            .unwrap();
        assert!(matches!(claim, Claim::Claimed(_)), "{claim:?}");
        s.confirm(&k, "dead holder", DEFAULT_TTL).await.unwrap();
        assert_eq!(
            s.claim(&k, Duration::from_secs(5), DEFAULT_TTL)
                .await
                .unwrap(),
            Claim::InFlight,
            "the late holder's confirm changed nothing"
        );
    }

    #[tokio::test]
    async fn a_failed_page_leaves_no_key_marked() {
        // The third check fails: the first two keys, marked new, are forgotten again.
        struct FailsThird(MemoryDedup, std::sync::atomic::AtomicUsize);
        #[async_trait]
        impl DedupStore for FailsThird {
            async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
                if self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 {
                    return Err(StoreError("injected".into()));
                }
                self.0.check(key, ttl).await
            }
            async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
                self.0.forget(key).await
            }
        }
        let store = Arc::new(FailsThird(MemoryDedup::default(), Default::default()));
        let d = Dedup::new(store.clone());
        let page: Vec<Value> = (0..4).map(|i| json!({"id": i})).collect();
        let fields = vec!["id".to_owned()];
        assert!(check_page(&d, "s", &page, &fields, 1).await.is_err());
        let retry = check_page(&d, "s", &page, &fields, 1).await.unwrap();
        assert_eq!(retry, vec![Sighting::New; 4], "the retried page is all new");
    }

    #[tokio::test]
    async fn a_page_that_runs_out_of_time_marks_nothing() {
        // The fourth check never answers: past the call's deadline the page fails and the
        // three keys already marked are forgotten.
        struct HangsFourth(MemoryDedup, std::sync::atomic::AtomicUsize);
        #[async_trait]
        impl DedupStore for HangsFourth {
            async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
                if self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 3 {
                    std::future::pending::<()>().await;
                }
                self.0.check(key, ttl).await
            }
            async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
                self.0.forget(key).await
            }
        }
        let d = Dedup::new(Arc::new(HangsFourth(
            MemoryDedup::default(),
            Default::default(),
        )));
        let page: Vec<Value> = (0..5).map(|i| json!({"id": i})).collect();
        let fields = vec!["id".to_owned()];
        let call = d.for_call(Instant::now() + Duration::from_millis(200));
        assert!(check_page(&call, "s", &page, &fields, 1).await.is_err());
        let retry = check_page(&d, "s", &page, &fields, 1).await.unwrap();
        assert_eq!(retry, vec![Sighting::New; 5]);
    }

    #[tokio::test]
    async fn an_expired_key_is_new_again() {
        let s = MemoryDedup::default();
        let k = DedupKey::from_caller("s", "k");
        s.keys
            .lock()
            .unwrap()
            .insert(k.as_str().to_owned(), (EpochSeconds::now().0 - 10, None));
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
