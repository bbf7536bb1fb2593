//! Stored records and what the store and the flow answer: [`Status`], [`IdempotencyRecord`],
//! [`Acquire`], [`StoredResult`], [`Outcome`].

#[cfg(doc)]
use super::Idempotency;
use super::{EpochMillis, EpochSeconds};
use crate::time::Now;

/// The state of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum Status {
    InProgress,
    Completed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::InProgress => "INPROGRESS",
            Status::Completed => "COMPLETED",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "INPROGRESS" => Some(Status::InProgress),
            "COMPLETED" => Some(Status::Completed),
            _ => None,
        }
    }
}

/// A stored record, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct IdempotencyRecord {
    pub status: Status,
    pub expires_at: EpochSeconds,
    pub in_progress_expires_at: Option<EpochMillis>,
    pub data: Option<String>,
    pub data_omitted: bool,
    pub validation: Option<String>,
    pub lock_id: Option<String>,
}

impl IdempotencyRecord {
    /// Whether a new invocation may take this record over at `now`: it expired, or it is a
    /// lock whose holder's deadline has passed. (The put's condition, evaluated locally.)
    pub(super) fn takeable(&self, now: Now) -> bool {
        self.expires_at < now.secs
            || (self.status == Status::InProgress
                && self.in_progress_expires_at.is_some_and(|t| t < now.millis))
    }
}

/// What a store's conditional put found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub enum Acquire {
    /// The lock is ours.
    Acquired,
    /// Someone else's live record.
    Held(IdempotencyRecord),
    /// The put failed but the record was gone when read (try again).
    Vanished,
}

/// What completion stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum StoredResult<'a> {
    Data(&'a str),
    /// Too large to store (`data_omitted = true`).
    Omitted,
}

/// The result of [`Idempotency::once`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The work ran now; this is its result.
    Fresh(String),
    /// The work ran before; this is its stored result.
    Replayed(String),
}

impl Outcome {
    /// Whether the result comes from an earlier run.
    pub fn is_replayed(&self) -> bool {
        matches!(self, Outcome::Replayed(_))
    }
    /// The result text.
    pub fn as_str(&self) -> &str {
        match self {
            Outcome::Fresh(s) | Outcome::Replayed(s) => s,
        }
    }
    /// The result text, owned.
    pub fn into_string(self) -> String {
        match self {
            Outcome::Fresh(s) | Outcome::Replayed(s) => s,
        }
    }
}
