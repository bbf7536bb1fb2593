//! The identity of a request: its [`IdempotencyKey`] (record key and validation hash) and the
//! [`LockToken`] of one lock acquisition.

use serde_json::Value;
use sha2::{Digest, Sha256};

#[cfg(doc)]
use super::IdempotencyError;
use super::PK_PREFIX;
use crate::codec::{canonical_json, hex};

/// The identity of one request: the record key and the payload's validation hash, both
/// computed once, from a snapshot of the payload, before any work runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    key: String,
    validation: String,
}

impl IdempotencyKey {
    /// Key on the whole `payload` within `scope` (function, queue, endpoint…). Object keys are
    /// sorted before hashing, so member order does not change the key.
    pub fn new(scope: &str, payload: &Value) -> Self {
        Self::from_part(scope, payload, payload)
    }

    /// Key on `key_part` (e.g. an event id) within `scope`; `payload` (the whole request) is
    /// hashed for validation, so reusing the key with another payload is reported as
    /// [`IdempotencyError::PayloadMismatch`].
    pub fn from_part(scope: &str, key_part: &Value, payload: &Value) -> Self {
        let mut h = Sha256::new();
        h.update(scope.as_bytes());
        h.update([0x1f]);
        h.update(canonical_json(key_part));
        Self {
            key: hex(&h.finalize()),
            validation: validation_hash(payload),
        }
    }

    /// Key on a caller-supplied key (an `Idempotency-Key` header, an SQS message id…) within
    /// `scope`; `payload` is hashed for validation.
    pub fn from_caller(scope: &str, caller_key: &str, payload: &Value) -> Self {
        let mut h = Sha256::new();
        h.update(scope.as_bytes());
        h.update([0x1e]);
        h.update(caller_key.as_bytes());
        Self {
            key: hex(&h.finalize()),
            validation: validation_hash(payload),
        }
    }

    /// The key (lowercase hex SHA-256).
    pub fn as_str(&self) -> &str {
        &self.key
    }
    /// The payload's validation hash (lowercase hex SHA-256).
    pub fn validation(&self) -> &str {
        &self.validation
    }
    /// The record's partition key: `idem#<key>`.
    pub fn pk(&self) -> String {
        format!("{PK_PREFIX}{}", self.key)
    }
}

fn validation_hash(payload: &Value) -> String {
    hex(&Sha256::digest(canonical_json(payload)))
}

/// The random token identifying one lock acquisition (`lock_id`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[doc(hidden)]
pub struct LockToken(String);

impl LockToken {
    /// A fresh random token (128 random bits as hex).
    pub fn generate() -> Self {
        Self(crate::codec::random_id())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
