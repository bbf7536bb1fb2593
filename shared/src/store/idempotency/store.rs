//! The [`IdempotencyStore`] trait: where idempotency records live.

use async_trait::async_trait;

use super::{
    Acquire, EpochMillis, EpochSeconds, IdempotencyError, IdempotencyKey, IdempotencyRecord,
    LockToken, StoredResult,
};

/// Where idempotency records live.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// One conditional write of an `INPROGRESS` record holding `lock`: [`Acquire::Acquired`]
    /// when there was no live record (none, expired, or a lock past its deadline), else the
    /// live record.
    async fn acquire(
        &self,
        key: &IdempotencyKey,
        lock: &LockToken,
        in_progress_until: EpochMillis,
        expires_at: EpochSeconds,
    ) -> Result<Acquire, IdempotencyError>;

    /// Mark the record `COMPLETED` with `result`, if `lock` still holds it
    /// ([`IdempotencyError::LockLost`] otherwise).
    async fn complete(
        &self,
        key: &IdempotencyKey,
        lock: &LockToken,
        result: StoredResult<'_>,
        expires_at: EpochSeconds,
    ) -> Result<(), IdempotencyError>;

    /// Delete the record if `lock` still holds it ([`IdempotencyError::LockLost`] otherwise).
    async fn release(&self, key: &IdempotencyKey, lock: &LockToken)
    -> Result<(), IdempotencyError>;

    /// The record as stored (strongly consistent), expired or not.
    async fn get(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, IdempotencyError>;
}
