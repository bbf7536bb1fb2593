//! Why idempotent execution failed: [`IdempotencyError`] and [`OnceError`].

#[cfg(doc)]
use super::Idempotency;
use super::{EpochMillis, MAX_STORED_RESULT_BYTES};

/// Why idempotent execution could not run or replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyError {
    /// Another invocation holds the lock on this key until `until`.
    #[error(
        "another invocation is already processing this request (its lock expires at {until}); retry after that"
    )]
    AlreadyInProgress {
        /// When the other invocation's lock expires.
        until: EpochMillis,
    },
    /// The key was used before with a different payload.
    #[error(
        "this request's key was already used with a different payload; send a different request under a new key"
    )]
    PayloadMismatch,
    /// The work ran before, but its result was too large to keep, so it cannot be replayed.
    #[error(
        "this request was already processed, but its result was too large to store (over {MAX_STORED_RESULT_BYTES} bytes), so it cannot be replayed"
    )]
    ResultNotStored,
    /// This run outlived its lock and another invocation took over; its result was dropped.
    #[error(
        "the lock on this request was taken over by another invocation after this one's deadline passed; this run's result was not recorded"
    )]
    LockLost,
    /// The record kept changing while it was read.
    #[error("the idempotency record kept changing while it was being read; retry")]
    Inconsistent,
    /// The stored record cannot be read.
    #[error("the stored idempotency record is unreadable: {0}")]
    InvalidRecord(String),
    /// The store could not be reached or refused the request.
    #[error("idempotency store unavailable: {0}")]
    Store(String),
}

impl IdempotencyError {
    /// Whether the same request may succeed if sent again later: `AlreadyInProgress`,
    /// `LockLost` (a retry replays the new holder's result), `Inconsistent` and store
    /// failures. `PayloadMismatch`, `ResultNotStored` and `InvalidRecord` never will.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            IdempotencyError::AlreadyInProgress { .. }
                | IdempotencyError::LockLost
                | IdempotencyError::Inconsistent
                | IdempotencyError::Store(_)
        )
    }
    /// A short machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            IdempotencyError::AlreadyInProgress { .. } => "already_in_progress",
            IdempotencyError::PayloadMismatch => "idempotency_payload_mismatch",
            IdempotencyError::ResultNotStored => "idempotency_result_not_stored",
            IdempotencyError::LockLost => "idempotency_lock_lost",
            IdempotencyError::Inconsistent => "idempotency_inconsistent",
            IdempotencyError::InvalidRecord(_) => "idempotency_invalid_record",
            IdempotencyError::Store(_) => "idempotency_unavailable",
        }
    }
}

/// The failure of [`Idempotency::once`]: the idempotency layer's, or the work's own (the lock
/// was released, so a retry runs the work again).
#[derive(Debug, thiserror::Error)]
pub enum OnceError<E> {
    /// The idempotency layer failed; the work may not have run.
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    /// The work itself failed.
    #[error("{0}")]
    Handler(E),
}
