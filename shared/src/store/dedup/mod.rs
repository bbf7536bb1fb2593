//! Dedup keys: "have we seen this before?" for records, webhook events and pages.
//!
//! A key is the SHA-256 of up to five selected fields (or a caller-supplied key). The first
//! sighting is [`Sighting::New`], later ones [`Sighting::Duplicate`]; every sighting pushes the
//! expiry to `ttl` after *now*, so a key lives 7 days (by default) after its **last** sighting.
//!
//! # Stores
//!
//! - [`MemoryDedup`]: one process, for local runs and unit tests.
//! - [`DynamoDedup`](crate::aws::dedup::DynamoDedup): the extension table, one conditional
//!   `UpdateItem` per new key and a second write per duplicate (its layout and how a lost reply
//!   is recognised are described there).
//!
//! # Choosing keys
//!
//! [`KeyFields`] selects up to [`MAX_KEY_FIELDS`] dotted field paths (`customer.id`,
//! `lines.0.sku`: a numeric segment indexes an array); [`check_page`] checks a whole page with
//! bounded parallelism and keeps the page's order.

use futures_util::stream::{self, StreamExt};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod key;
mod marks;
mod memory;
mod store;
#[cfg(test)]
mod tests;

pub use key::{DedupKey, KeyFields, KeyFieldsError};
#[doc(hidden)]
pub use key::{field_at, key_for};
#[doc(hidden)]
pub use marks::{CallMarks, held, held_marks};
pub use memory::MemoryDedup;
pub(crate) use store::alive;
pub use store::{Claim, DedupStore, Sighting, StoreError};

/// Default lifetime of a key after its last sighting.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this many fields make up a key.
pub const MAX_KEY_FIELDS: usize = 5;
/// The setting overriding [`DEFAULT_TTL`] (whole seconds, at least 1).
pub const TTL_VAR: &str = "EXTENSION_DEDUP_TTL_SECS";
/// Prefix of the partition key of dedup items.
#[doc(hidden)]
pub const PK_PREFIX: &str = "dedup#";

/// Why a page could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    /// The key fields are invalid (a configuration mistake).
    #[error(transparent)]
    Fields(#[from] KeyFieldsError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DedupError {
    /// Store failures may succeed on retry; invalid fields never do.
    pub fn is_retryable(&self) -> bool {
        matches!(self, DedupError::Store(_))
    }
}

/// The dedup service handed to functions (`inv.dedup()?`): a store plus the TTL (and, for one
/// call, the time its page checks must end by: [`Dedup::for_call`]).
#[derive(Clone)]
pub struct Dedup {
    /// Where the keys live.
    pub store: Arc<dyn DedupStore>,
    /// How long a key is remembered after its last sighting.
    pub ttl: Duration,
    /// Page checks still running at this instant fail (and their keys are rolled back).
    pub checks_end_by: Option<Instant>,
    /// The call whose answer reports the keys [`check_keys`] marks: they are held there and
    /// forgotten again when that answer is not delivered (see [`CallMarks`]).
    pub marks: Option<CallMarks>,
}

impl std::fmt::Debug for Dedup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dedup")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Dedup {
    /// The service on `store`, remembering keys for [`DEFAULT_TTL`].
    pub fn new(store: Arc<dyn DedupStore>) -> Self {
        Self::with_ttl(store, DEFAULT_TTL)
    }
    /// A store with a TTL other than [`DEFAULT_TTL`].
    pub fn with_ttl(store: Arc<dyn DedupStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            checks_end_by: None,
            marks: None,
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
    /// Record a sighting of `key`: [`Sighting::New`] the first time within the TTL, else
    /// [`Sighting::Duplicate`].
    pub async fn check(&self, key: &DedupKey) -> Result<Sighting, StoreError> {
        let sighting = self.store.check(key, self.ttl).await?;
        let new = usize::from(sighting == Sighting::New);
        crate::metrics::dedup(new, 1 - new);
        Ok(sighting)
    }
    /// The same service, its page checks' marks held by `marks` (see [`CallMarks`]).
    pub fn holding(&self, marks: CallMarks) -> Self {
        Self {
            marks: Some(marks),
            ..self.clone()
        }
    }
    /// See [`DedupStore::forget`].
    pub async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
        self.store.forget(key).await
    }
    /// See [`DedupStore::claim`].
    #[doc(hidden)]
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
    #[doc(hidden)]
    pub async fn confirm(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        self.store.confirm(key, token, self.ttl).await
    }
    /// See [`DedupStore::release`].
    #[doc(hidden)]
    pub async fn release(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        self.store.release(key, token).await
    }
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
                let token = crate::codec::random_id();
                let r = match end_by {
                    None => store.check_as(&k, ttl, &token).await,
                    Some(at) => {
                        match tokio::time::timeout_at(at.into(), store.check_as(&k, ttl, &token))
                            .await
                        {
                            Ok(r) => r,
                            Err(_) => {
                                // Cut off while a request may have been applied: take back
                                // this check's own write, so the failed page leaves no mark.
                                if let Err(e) = store.undo_check(&k, &token).await {
                                    tracing::warn!(dedup_key = %k.as_str(), error = %e, "dedup: a check cut off by its time could not undo its write; the key stays marked until its TTL");
                                }
                                Err(StoreError("the page's checks ran out of time".into()))
                            }
                        }
                    }
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
    // Marked, but not delivered yet: the call holds the new keys until its answer is sent,
    // and forgets them when it is not (see [`CallMarks`]).
    if let Some(marks) = &dedup.marks {
        let new: Vec<DedupKey> = results
            .iter()
            .filter(|(_, r)| matches!(r, Ok(Sighting::New)))
            .map(|(k, _)| k.clone())
            .collect();
        if let Err(e) = marks.hold(&dedup.store, &new) {
            let marked: Vec<_> = new.into_iter().map(|k| (dedup.store.clone(), k)).collect();
            marks::forget_all(&marked).await;
            return Err(e);
        }
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
