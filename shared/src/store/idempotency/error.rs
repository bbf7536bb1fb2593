//! Why idempotent execution failed: [`IdempotencyError`] and [`RunError`].

#[cfg(doc)]
use super::Idempotency;
use super::{EpochMillis, MAX_STORED_RESULT_BYTES};

/// Why idempotent execution could not run or replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdempotencyError {
    #[error(
        "another invocation is already processing this request (its lock expires at {until}); retry after that"
    )]
    AlreadyInProgress { until: EpochMillis },
    #[error(
        "this request's key was already used with a different payload; send a different request under a new key"
    )]
    PayloadMismatch,
    #[error(
        "this request was already processed, but its result was too large to store (over {MAX_STORED_RESULT_BYTES} bytes), so it cannot be replayed"
    )]
    ResultNotStored,
    #[error(
        "the lock on this request was taken over by another invocation after this one's deadline passed; this run's result was not recorded"
    )]
    LockLost,
    #[error("the idempotency record kept changing while it was being read; retry")]
    Inconsistent,
    #[error("the stored idempotency record is unreadable: {0}")]
    InvalidRecord(String),
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

/// The failure of [`Idempotency::run`]: the idempotency layer's, or the work's own (the lock
/// was released, so a retry runs the work again).
#[derive(Debug, thiserror::Error)]
pub enum RunError<E> {
    #[error(transparent)]
    Idempotency(#[from] IdempotencyError),
    #[error("{0}")]
    Handler(E),
}
