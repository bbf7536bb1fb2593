//! [`MemoryIdempotency`], the in-memory twin of the idempotency store.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

use super::{
    Acquire, EpochMillis, EpochSeconds, IdempotencyError, IdempotencyKey, IdempotencyRecord,
    IdempotencyStore, LockToken, Status, StoredResult,
};
use crate::time::Now;

/// In-memory twin for local runs and unit tests (one process only), with the same semantics
/// as [`DynamoIdempotency`](crate::aws::idempotency::DynamoIdempotency). Bounded: at most
/// [`MemoryIdempotency::CAPACITY`] records; a new record in a full store first drops the
/// expired ones, and when all are alive it is refused with a store error (the call fails and
/// can be retried) — a live record, which keeps a call from running twice, is never dropped.
#[derive(Debug)]
pub struct MemoryIdempotency {
    records: Mutex<HashMap<String, IdempotencyRecord>>,
    capacity: usize,
}

impl Default for MemoryIdempotency {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

impl MemoryIdempotency {
    /// Records kept at most by default.
    pub const CAPACITY: usize = 100_000;

    /// A store of at most `capacity` records (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Records held now (expired ones until a full store drops them).
    pub fn len(&self) -> usize {
        self.records.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn records(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, HashMap<String, IdempotencyRecord>>, IdempotencyError>
    {
        self.records
            .lock()
            .map_err(|_| IdempotencyError::Store("in-memory store poisoned".into()))
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotency {
    async fn acquire(
        &self,
        key: &IdempotencyKey,
        lock: &LockToken,
        in_progress_until: EpochMillis,
        expires_at: EpochSeconds,
    ) -> Result<Acquire, IdempotencyError> {
        let now = Now::read();
        let mut records = self.records()?;
        if let Some(existing) = records.get(key.as_str())
            && !existing.takeable(now)
        {
            return Ok(Acquire::Held(existing.clone()));
        }
        if records.len() >= self.capacity && !records.contains_key(key.as_str()) {
            records.retain(|_, r| r.expires_at >= now.secs);
            if records.len() >= self.capacity {
                return Err(IdempotencyError::Store(format!(
                    "the in-memory idempotency store is full ({} live records)",
                    records.len()
                )));
            }
        }
        records.insert(
            key.as_str().to_owned(),
            IdempotencyRecord {
                status: Status::InProgress,
                expires_at,
                in_progress_expires_at: Some(in_progress_until),
                data: None,
                data_omitted: false,
                validation: Some(key.validation().to_owned()),
                lock_id: Some(lock.as_str().to_owned()),
            },
        );
        Ok(Acquire::Acquired)
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        lock: &LockToken,
        result: StoredResult<'_>,
        expires_at: EpochSeconds,
    ) -> Result<(), IdempotencyError> {
        let mut records = self.records()?;
        let Some(record) = records
            .get_mut(key.as_str())
            .filter(|r| r.lock_id.as_deref() == Some(lock.as_str()))
        else {
            return Err(IdempotencyError::LockLost);
        };
        record.status = Status::Completed;
        record.expires_at = expires_at;
        record.in_progress_expires_at = None;
        match result {
            StoredResult::Data(d) => {
                record.data = Some(d.to_owned());
                record.data_omitted = false;
            }
            StoredResult::Omitted => {
                record.data = None;
                record.data_omitted = true;
            }
        }
        Ok(())
    }

    async fn release(
        &self,
        key: &IdempotencyKey,
        lock: &LockToken,
    ) -> Result<(), IdempotencyError> {
        let mut records = self.records()?;
        match records.get(key.as_str()) {
            Some(r) if r.lock_id.as_deref() == Some(lock.as_str()) => {
                records.remove(key.as_str());
                Ok(())
            }
            _ => Err(IdempotencyError::LockLost),
        }
    }

    async fn get(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, IdempotencyError> {
        Ok(self.records()?.get(key.as_str()).cloned())
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    /// A full store drops expired records to make room and refuses a new record while all are
    /// alive; the records it holds keep answering.
    #[tokio::test]
    async fn a_full_memory_store_drops_expired_records_and_refuses_live_ones() {
        let s = MemoryIdempotency::with_capacity(2);
        let key =
            |i: u32| IdempotencyKey::from_caller("cap", &i.to_string(), &serde_json::json!({}));
        let later = EpochSeconds(EpochSeconds::now().0 + 3600);
        let lock_until = EpochMillis(EpochMillis::now().0 + 60_000);
        for i in [1, 2] {
            let acquired = s
                .acquire(&key(i), &LockToken::generate(), lock_until, later)
                .await;
            assert_eq!(acquired.unwrap(), Acquire::Acquired);
        }
        let refused = s
            .acquire(&key(3), &LockToken::generate(), lock_until, later)
            .await;
        assert!(matches!(refused, Err(IdempotencyError::Store(m)) if m.contains("full")));
        assert!(matches!(
            s.acquire(&key(1), &LockToken::generate(), lock_until, later)
                .await,
            Ok(Acquire::Held(_))
        ));
        if let Some(r) = s.records.lock().unwrap().get_mut(key(2).as_str()) {
            r.expires_at = EpochSeconds(1);
        }
        let room = s
            .acquire(&key(3), &LockToken::generate(), lock_until, later)
            .await;
        assert_eq!(room.unwrap(), Acquire::Acquired);
        assert_eq!(s.len(), 2);
    }
}
