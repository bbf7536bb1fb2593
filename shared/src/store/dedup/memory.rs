//! [`MemoryDedup`], the in-memory twin of the dedup store.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use super::{Claim, DedupKey, DedupStore, Sighting, StoreError, alive};
use crate::time::EpochSeconds;

/// key → (expiry in epoch seconds, the claim token while pending)
type MemoryKeys = HashMap<String, (u64, Option<String>)>;

/// In-memory twin for local runs and unit tests (one process only).
#[derive(Debug, Default)]
pub struct MemoryDedup {
    pub(super) keys: Mutex<MemoryKeys>,
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
