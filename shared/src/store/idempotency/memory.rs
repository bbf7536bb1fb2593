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
/// as [`DynamoIdempotency`](crate::aws::idempotency::DynamoIdempotency).
#[derive(Debug, Default)]
pub struct MemoryIdempotency {
    records: Mutex<HashMap<String, IdempotencyRecord>>,
}

impl MemoryIdempotency {
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
