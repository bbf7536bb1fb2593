//! Idempotent execution: run a piece of work once per request, and answer repeats of the same
//! request with the stored result instead of running it again (queued and incoming
//! invocations, which their senders may deliver more than once).
//!
//! # Record layout
//!
//! One item per request in the extension table (`EXTENSION_TABLE`; the DynamoDB adapter is
//! [`DynamoIdempotency`](crate::aws::idempotency::DynamoIdempotency)):
//!
//! | attribute | meaning | type |
//! |---|---|---|
//! | `pk` | `idem#<key>` ([`IdempotencyKey`]: SHA-256 hex of the scope and the key material) | S |
//! | `status` | `INPROGRESS` or `COMPLETED` (expiry is computed on read, never stored) | S |
//! | `expires_at` | when the record stops counting; the table's TTL attribute | N, epoch **seconds** ([`EpochSeconds`]) |
//! | `in_progress_expires_at` | deadline of the invocation holding the lock; removed on completion | N, epoch **milliseconds** ([`EpochMillis`]) |
//! | `data` | the stored result (JSON text) | S, optional |
//! | `data_omitted` | `true` when the result was too large to store | BOOL, optional |
//! | `validation` | SHA-256 hex of the whole payload | S |
//! | `lock_id` | random token of the invocation that took the lock | S |
//!
//! Seconds and milliseconds are distinct types and are never compared with each other.
//!
//! # Algorithm ([`Idempotency::once`])
//!
//! The key and the validation hash are computed **once**, before the work runs
//! ([`IdempotencyKey::new`] hashes a snapshot of the payload), so work that mutates its input
//! cannot move the key.
//!
//! 1. Conditional `PutItem` of an `INPROGRESS` record with a fresh `lock_id`, condition
//!    `attribute_not_exists(pk) OR expires_at < :now_s OR (#status = :inprogress AND
//!    in_progress_expires_at < :now_ms)`, `ReturnValuesOnConditionCheckFailure = ALL_OLD`.
//!    If the put fails and no old item comes back (emulators without the feature), a
//!    consistent `GetItem` reads it; if that finds nothing (the record vanished in between)
//!    the put is tried again, three attempts in all.
//! 2. Put succeeded: run the work. On success, `UpdateItem` to `COMPLETED` with `data` and a new
//!    `expires_at`, **conditioned on `lock_id = :mine`**: only the lock holder completes, so an
//!    invocation that overran its deadline and lost the lock to a retry gets
//!    [`IdempotencyError::LockLost`] and overwrites nothing. On failure, `DeleteItem`
//!    conditioned on `lock_id = :mine` releases the lock (never someone else's) and the work's
//!    error is returned, so a retry runs the work again.
//! 3. Put failed: the existing record decides. A different `validation` hash →
//!    [`IdempotencyError::PayloadMismatch`]; `INPROGRESS` (lock not expired) →
//!    [`IdempotencyError::AlreadyInProgress`] (retryable); `COMPLETED` → the stored result is
//!    replayed ([`Outcome::Replayed`]) without running the work.
//!
//! DynamoDB requests: a first run is 2 (`PutItem` + `UpdateItem`, or `PutItem` +
//! `DeleteItem` when the work fails); a replay is 1 (`PutItem`, whose failure returns the
//! record).
//!
//! # Limits
//!
//! - A result larger than [`MAX_STORED_RESULT_BYTES`] (350 KiB; DynamoDB items are at most
//!   400 KB) is **not stored**: the record is completed with `data_omitted = true`, so repeats
//!   are still recognised, but a replay returns [`IdempotencyError::ResultNotStored`] instead
//!   of the result.
//! - If the work panics, or the process dies, the lock is held until `in_progress_expires_at`
//!   (pass the invocation's deadline, [`EpochMillis::from_deadline`]); retries meanwhile get
//!   `AlreadyInProgress`, then take the lock over and run the work again.
//! - If completing fails for a store error after the work succeeded, the record stays
//!   `INPROGRESS` until that deadline, after which a retry runs the work again.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::time::Now;
pub use crate::time::{EpochMillis, EpochSeconds};

mod error;
mod key;
mod memory;
mod record;
mod store;
#[cfg(test)]
mod tests;

pub use error::{IdempotencyError, OnceError};
pub use key::IdempotencyKey;
#[doc(hidden)]
pub use key::LockToken;
pub use memory::MemoryIdempotency;
pub use record::Outcome;
#[doc(hidden)]
pub use record::{Acquire, IdempotencyRecord, Status, StoredResult};
#[doc(hidden)]
pub use store::IdempotencyStore;

/// Default lifetime of a completed record.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The setting overriding [`DEFAULT_TTL`] (whole seconds, at least 1).
pub const TTL_VAR: &str = "EXTENSION_IDEMPOTENCY_TTL_SECS";
/// Results longer than this (bytes of JSON text) are not stored.
pub const MAX_STORED_RESULT_BYTES: usize = 350 * 1024;
/// Prefix of the partition key of idempotency records.
#[doc(hidden)]
pub const PK_PREFIX: &str = "idem#";
/// Conditional puts tried before giving up with [`IdempotencyError::Inconsistent`].
const MAX_ATTEMPTS: usize = 3;

/// The idempotency service (`inv.idempotency()?`): a store plus the TTL of
/// completed records.
#[derive(Clone)]
pub struct Idempotency {
    /// Where the records live.
    pub store: Arc<dyn IdempotencyStore>,
    /// How long a completed record is kept.
    pub ttl: Duration,
}

impl fmt::Debug for Idempotency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Idempotency")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl Idempotency {
    /// The service on `store`, keeping completed records for [`DEFAULT_TTL`].
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self {
            store,
            ttl: DEFAULT_TTL,
        }
    }
    /// The service on `store`, keeping completed records for `ttl`.
    pub fn with_ttl(store: Arc<dyn IdempotencyStore>, ttl: Duration) -> Self {
        Self { store, ttl }
    }

    /// Run `work` once for `key` (see the module docs for the algorithm): its result text
    /// ([`Outcome::Fresh`]), or the stored result of an earlier run ([`Outcome::Replayed`]).
    /// `in_progress_until` bounds the lock: past it, a retry may take over (pass the
    /// invocation's deadline, [`EpochMillis::from_deadline`]).
    pub async fn once<F, Fut, E>(
        &self,
        key: &IdempotencyKey,
        in_progress_until: EpochMillis,
        work: F,
    ) -> Result<Outcome, OnceError<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<String, E>>,
    {
        let lock = LockToken::generate();
        let mut acquired = false;
        for _ in 0..MAX_ATTEMPTS {
            let expires_at = EpochSeconds::now().after(self.ttl);
            match self
                .store
                .acquire(key, &lock, in_progress_until, expires_at)
                .await?
            {
                Acquire::Acquired => {
                    acquired = true;
                    break;
                }
                Acquire::Vanished => continue,
                Acquire::Held(record) => {
                    if record.takeable(Now::read()) {
                        // Read back (fallback path) after it expired: try the put again.
                        continue;
                    }
                    return Self::answer_from(key, record).map_err(OnceError::Idempotency);
                }
            }
        }
        if !acquired {
            return Err(IdempotencyError::Inconsistent.into());
        }
        match work().await {
            Ok(result) => {
                let stored = if result.len() > MAX_STORED_RESULT_BYTES {
                    StoredResult::Omitted
                } else {
                    StoredResult::Data(&result)
                };
                let expires_at = EpochSeconds::now().after(self.ttl);
                // The work is done: its result is the answer even when the record cannot say
                // so. Failing here would make the caller (or SQS) retry, and the retry would
                // run the work again once the lock expires. What is lost is only the
                // protection against a *later* duplicate of this request, until the lock
                // expires.
                // A lost lock is different: another delivery took the record over, and its
                // result is the one every retry will be answered with.
                match self.store.complete(key, &lock, stored, expires_at).await {
                    Ok(()) => {}
                    Err(IdempotencyError::LockLost) => {
                        return Err(IdempotencyError::LockLost.into());
                    }
                    Err(e) => tracing::warn!(
                        code = e.code(),
                        error = %e,
                        "the work succeeded but its idempotency record could not be completed; a duplicate arriving after the lock expires would run again"
                    ),
                }
                Ok(Outcome::Fresh(result))
            }
            Err(e) => {
                if let Err(release) = self.store.release(key, &lock).await {
                    tracing::warn!(
                        error = %release,
                        "could not release the idempotency lock after the work failed; retries wait for its deadline"
                    );
                }
                Err(OnceError::Handler(e))
            }
        }
    }

    /// What a live record held by someone else means for this request.
    fn answer_from(
        key: &IdempotencyKey,
        record: IdempotencyRecord,
    ) -> Result<Outcome, IdempotencyError> {
        if record
            .validation
            .as_deref()
            .is_some_and(|v| v != key.validation())
        {
            return Err(IdempotencyError::PayloadMismatch);
        }
        match record.status {
            Status::InProgress => Err(IdempotencyError::AlreadyInProgress {
                until: record.in_progress_expires_at.unwrap_or(EpochMillis(0)),
            }),
            Status::Completed if record.data_omitted => Err(IdempotencyError::ResultNotStored),
            Status::Completed => record.data.map(Outcome::Replayed).ok_or_else(|| {
                IdempotencyError::InvalidRecord("a completed record without data".into())
            }),
        }
    }
}
