//! [`MemoryDedup`], the in-memory twin of the dedup store.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{Claim, DedupKey, DedupStore, Sighting, StoreError, alive};
use crate::time::EpochSeconds;

/// key → (expiry in epoch seconds, the claim token while pending)
type MemoryKeys = HashMap<String, (u64, Option<String>)>;

/// In-memory twin for local runs and unit tests (one process only). Bounded: at most
/// [`MemoryDedup::CAPACITY`] keys (or the capacity given to [`MemoryDedup::with_capacity`]).
/// A write that would add a key to a full store first drops the expired keys; when every key
/// is still alive it is refused with a store error (the page or webhook fails and can be
/// retried) — a live key is never dropped, since that would let a duplicate through.
#[derive(Debug)]
pub struct MemoryDedup {
    pub(super) keys: Mutex<MemoryKeys>,
    capacity: usize,
}

impl Default for MemoryDedup {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

impl MemoryDedup {
    /// Keys kept at most by default.
    pub const CAPACITY: usize = 100_000;

    /// A store of at most `capacity` keys (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            keys: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Keys held now, expired ones included until a full store drops them.
    pub fn len(&self) -> usize {
        self.keys.lock().map(|k| k.len()).unwrap_or(0)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn keys(&self) -> Result<std::sync::MutexGuard<'_, MemoryKeys>, StoreError> {
        self.keys
            .lock()
            .map_err(|_| StoreError("in-memory store poisoned".into()))
    }

    /// Room for `key` in `keys`: there already, or below capacity once the expired keys are
    /// gone; otherwise the refusal.
    fn room(&self, keys: &mut MemoryKeys, key: &str, now: u64) -> Result<(), StoreError> {
        if keys.len() < self.capacity || keys.contains_key(key) {
            return Ok(());
        }
        keys.retain(|_, (exp, _)| alive(*exp, now));
        if keys.len() < self.capacity {
            return Ok(());
        }
        Err(StoreError(format!(
            "the in-memory dedup store is full ({} live keys); no key is dropped before it expires",
            keys.len()
        )))
    }
}

#[async_trait]
impl DedupStore for MemoryDedup {
    async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
        let now = EpochSeconds::now().0;
        let mut keys = self.keys()?;
        self.room(&mut keys, &key.0, now)?;
        let previous = keys.insert(key.0.clone(), (now.saturating_add(ttl.as_secs()), None));
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
                self.room(&mut keys, &key.0, now)?;
                let token = crate::codec::random_id();
                let until = now.saturating_add(lease.as_secs().max(1));
                keys.insert(key.0.clone(), (until, Some(token.clone())));
                Ok(Claim::Claimed(token))
            }
        }
    }

    async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
        self.keys()?.remove(&key.0);
        Ok(())
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
