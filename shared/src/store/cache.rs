//! A cache of JSON values with a time to live, for functions (`inv.cache()?`): look-ups of an
//! API's answers, tokens, reference data.
//!
//! ```no_run
//! use integrator_lambda::{ExtResult, Invocation};
//! use std::time::Duration;
//!
//! async fn rates(inv: Invocation) -> ExtResult<serde_json::Value> {
//!     let http = inv.http();
//!     inv.cache()?
//!         .get_or_compute("rates:EUR", Duration::from_secs(300), || async {
//!             Ok(http.get_json("https://rates.example.com/EUR").await?)
//!         })
//!         .await
//! }
//! ```
//!
//! On AWS ([`DynamoCache`](crate::aws::cache::DynamoCache)) an entry is one item of the
//! extension table, `pk = cache#<key>`, with the value's JSON text and `expires_at` (epoch
//! seconds, the table's TTL attribute). DynamoDB deletes expired items up to days late, so
//! expiry is decided on read: an entry whose `expires_at` is not after now is a miss. Locally
//! ([`MemoryCache`]) entries live in the process.
//!
//! **Size.** A DynamoDB item holds at most 400 KB. A value whose JSON is over
//! [`MAX_VALUE_BYTES`] (350 KB, room left for the key and attributes) is refused by
//! [`Cache::set`] with [`CacheError::TooLarge`] on every backend, so local runs behave like
//! AWS; [`Cache::get_or_compute`] then returns the computed value uncached (and logs it).
//! The cache is a help, not a store: `get_or_compute` also computes when the backend is
//! unreachable.

use crate::time::{Clock, EpochSeconds, SystemClock};
use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Prefix of a cache entry's partition key.
#[doc(hidden)]
pub const PK_PREFIX: &str = "cache#";
/// Largest value (its compact JSON text) the cache takes.
pub const MAX_VALUE_BYTES: usize = 350 * 1024;
/// Longest key.
pub const MAX_KEY_LEN: usize = 512;

/// Why the cache could not answer or store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The value's JSON is over [`MAX_VALUE_BYTES`]; nothing was stored.
    #[error("cache value for {key} is {bytes} bytes of JSON, over the {limit}-byte limit")]
    TooLarge {
        /// The key.
        key: String,
        /// The size of the value's JSON.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The key is empty, too long or has control characters.
    #[error("invalid cache key: {0}")]
    InvalidKey(&'static str),
    /// The store could not be reached or refused the request.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// The stored value does not read as the type asked for.
    #[error("cache entry {key} is not the JSON expected: {detail}")]
    Corrupt {
        /// The key.
        key: String,
        /// The parser's complaint.
        detail: String,
    },
}

impl CacheError {
    /// The `code` integrator.io shows for this error.
    pub fn code(&self) -> &'static str {
        match self {
            CacheError::TooLarge { .. } => "cache_value_too_large",
            CacheError::InvalidKey(_) => "cache_invalid_key",
            CacheError::Unavailable(_) => "cache_unavailable",
            CacheError::Corrupt { .. } => "cache_corrupt",
        }
    }
}

/// A stored entry: the value's JSON text and when it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct CacheEntry {
    pub json: String,
    pub expires_at: EpochSeconds,
}

/// Where entries are kept. Stores return entries as stored, expired or not: [`Cache`] decides.
#[async_trait]
#[doc(hidden)]
pub trait CacheStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<CacheEntry>, CacheError>;
    async fn put(&self, key: &str, entry: CacheEntry) -> Result<(), CacheError>;
    async fn delete(&self, key: &str) -> Result<(), CacheError>;
}

/// The in-memory twin (local runs, tests): at most [`MemoryCache::CAPACITY`] entries; when
/// full, expired entries go first, then the ones closest to expiry.
#[derive(Debug, Default)]
#[doc(hidden)]
pub struct MemoryCache {
    entries: Mutex<HashMap<String, CacheEntry>>,
}

impl MemoryCache {
    pub const CAPACITY: usize = 10_000;
}

#[async_trait]
impl CacheStore for MemoryCache {
    async fn get(&self, key: &str) -> Result<Option<CacheEntry>, CacheError> {
        let map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(map.get(key).cloned())
    }
    async fn put(&self, key: &str, entry: CacheEntry) -> Result<(), CacheError> {
        let mut map = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= Self::CAPACITY && !map.contains_key(key) {
            let now = EpochSeconds::now();
            map.retain(|_, e| e.expires_at > now);
            if map.len() >= Self::CAPACITY
                && let Some(first) = map
                    .iter()
                    .min_by_key(|(_, e)| e.expires_at)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&first);
            }
        }
        map.insert(key.to_owned(), entry);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
        Ok(())
    }
}

/// The cache functions use: JSON values, a TTL per entry, expiry decided on read.
#[derive(Clone)]
pub struct Cache {
    store: Arc<dyn CacheStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").finish_non_exhaustive()
    }
}

fn check_key(key: &str) -> Result<(), CacheError> {
    if key.is_empty() {
        return Err(CacheError::InvalidKey("a key must not be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(CacheError::InvalidKey("a key is at most 512 bytes"));
    }
    Ok(())
}

impl Cache {
    /// A cache on `store`, with the system clock.
    pub fn new(store: Arc<dyn CacheStore>) -> Self {
        Self::with_clock(store, Arc::new(SystemClock))
    }
    /// With another clock (tests).
    pub fn with_clock(store: Arc<dyn CacheStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }
    /// An in-memory cache.
    pub fn in_memory() -> Self {
        Self::new(Arc::new(MemoryCache::default()))
    }
    fn now(&self) -> EpochSeconds {
        EpochSeconds(self.clock.now().0 / 1000)
    }

    /// The live value under `key`, or `None` (absent or expired).
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CacheError> {
        check_key(key)?;
        let Some(entry) = self.store.get(key).await? else {
            return Ok(None);
        };
        if entry.expires_at <= self.now() {
            return Ok(None);
        }
        serde_json::from_str(&entry.json)
            .map(Some)
            .map_err(|e| CacheError::Corrupt {
                key: key.to_owned(),
                detail: e.to_string(),
            })
    }

    /// Store `value` under `key` for `ttl` (whole seconds, at least 1).
    pub async fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Duration,
    ) -> Result<(), CacheError> {
        check_key(key)?;
        let json = serde_json::to_string(value).map_err(|e| CacheError::Corrupt {
            key: key.to_owned(),
            detail: e.to_string(),
        })?;
        if json.len() > MAX_VALUE_BYTES {
            return Err(CacheError::TooLarge {
                key: key.to_owned(),
                bytes: json.len(),
                limit: MAX_VALUE_BYTES,
            });
        }
        let expires_at = self.now().after(ttl.max(Duration::from_secs(1)));
        self.store.put(key, CacheEntry { json, expires_at }).await
    }

    /// Forget `key`.
    pub async fn remove(&self, key: &str) -> Result<(), CacheError> {
        check_key(key)?;
        self.store.delete(key).await
    }

    /// The live value under `key`; else `compute()`'s, stored for `ttl`. A value too large to
    /// cache, or a cache that cannot be reached, is logged and the value returned anyway; an
    /// error of `compute` is returned and nothing is stored.
    pub async fn get_or_compute<T, E, F, Fut>(
        &self,
        key: &str,
        ttl: Duration,
        compute: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: From<CacheError>,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        match self.get::<T>(key).await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e @ CacheError::InvalidKey(_)) => return Err(e.into()),
            Err(e) => tracing::warn!(key, error = %e, "cache read failed; computing the value"),
        }
        let value = compute().await?;
        if let Err(e) = self.set(key, &value, ttl).await {
            tracing::warn!(key, error = %e, "value not cached");
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualClock;
    use serde_json::{Value, json};

    /// The in-memory cache is bounded: a put into a full cache drops the expired entries,
    /// then the entry closest to expiry; it never holds more than its capacity.
    #[tokio::test]
    async fn a_full_memory_cache_drops_expired_then_soonest_entries() {
        let c = MemoryCache::default();
        let later = EpochSeconds(EpochSeconds::now().0 + 3600);
        let entry = |at: EpochSeconds| CacheEntry {
            json: "1".into(),
            expires_at: at,
        };
        c.put("expired", entry(EpochSeconds(1))).await.unwrap();
        c.put("soonest", entry(EpochSeconds(later.0 - 60)))
            .await
            .unwrap();
        for i in 2..MemoryCache::CAPACITY {
            c.put(&format!("k{i}"), entry(later)).await.unwrap();
        }
        c.put("new-1", entry(later)).await.unwrap();
        assert!(c.get("expired").await.unwrap().is_none());
        assert!(c.get("soonest").await.unwrap().is_some());
        c.put("new-2", entry(later)).await.unwrap();
        assert!(c.get("soonest").await.unwrap().is_none());
        assert!(c.get("new-1").await.unwrap().is_some());
        assert_eq!(c.entries.lock().unwrap().len(), MemoryCache::CAPACITY);
    }

    fn cache() -> (Cache, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::at(1_000_000_000_000));
        (
            Cache::with_clock(Arc::new(MemoryCache::default()), clock.clone()),
            clock,
        )
    }

    #[tokio::test]
    async fn values_live_for_their_ttl() {
        let (c, clock) = cache();
        c.set("k", &json!({"a": 1}), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(c.get::<Value>("k").await.unwrap(), Some(json!({"a": 1})));
        clock.advance(Duration::from_secs(59));
        assert!(c.get::<Value>("k").await.unwrap().is_some());
        clock.advance(Duration::from_secs(1));
        assert_eq!(c.get::<Value>("k").await.unwrap(), None, "expired at ttl");
        c.set("k", &1, Duration::from_secs(60)).await.unwrap();
        c.remove("k").await.unwrap();
        assert_eq!(c.get::<u32>("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn get_or_compute_computes_once_within_the_ttl() {
        let (c, clock) = cache();
        let mut calls = 0;
        for _ in 0..3 {
            let v: u32 = c
                .get_or_compute("n", Duration::from_secs(10), || {
                    calls += 1;
                    async { Ok::<_, CacheError>(42) }
                })
                .await
                .unwrap();
            assert_eq!(v, 42);
        }
        assert_eq!(calls, 1);
        clock.advance(Duration::from_secs(11));
        let _: u32 = c
            .get_or_compute("n", Duration::from_secs(10), || {
                calls += 1;
                async { Ok::<_, CacheError>(43) }
            })
            .await
            .unwrap();
        assert_eq!(calls, 2);
    }

    #[tokio::test]
    async fn oversize_values_are_refused_and_computed_uncached() {
        let (c, _) = cache();
        let big = "x".repeat(MAX_VALUE_BYTES);
        let e = c
            .set("big", &big, Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "cache_value_too_large");
        let v: String = c
            .get_or_compute("big", Duration::from_secs(10), || async {
                Ok::<_, CacheError>(big.clone())
            })
            .await
            .unwrap();
        assert_eq!(v.len(), MAX_VALUE_BYTES);
        assert_eq!(c.get::<String>("big").await.unwrap(), None);
        assert_eq!(
            c.get::<u8>("").await.unwrap_err().code(),
            "cache_invalid_key"
        );
    }
}
