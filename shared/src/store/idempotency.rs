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
//! # Algorithm ([`Idempotency::run`])
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

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::codec::{canonical_json, hex};
use crate::time::Now;
pub use crate::time::{EpochMillis, EpochSeconds};

/// Default lifetime of a completed record.
pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The setting overriding [`DEFAULT_TTL`] (whole seconds, at least 1).
pub const TTL_VAR: &str = "EXTENSION_IDEMPOTENCY_TTL_SECS";
/// Results longer than this (bytes of JSON text) are not stored.
pub const MAX_STORED_RESULT_BYTES: usize = 350 * 1024;
/// Prefix of the partition key of idempotency records.
pub const PK_PREFIX: &str = "idem#";
/// Conditional puts tried before giving up with [`IdempotencyError::Inconsistent`].
const MAX_ATTEMPTS: usize = 3;

// ---------------------------------------------------------------------------------------------
// Keys and locks

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

// ---------------------------------------------------------------------------------------------
// Records

/// The state of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    fn takeable(&self, now: Now) -> bool {
        self.expires_at < now.secs
            || (self.status == Status::InProgress
                && self.in_progress_expires_at.is_some_and(|t| t < now.millis))
    }
}

/// What a store's conditional put found.
#[derive(Debug, Clone, PartialEq, Eq)]
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
pub enum StoredResult<'a> {
    Data(&'a str),
    /// Too large to store (`data_omitted = true`).
    Omitted,
}

// ---------------------------------------------------------------------------------------------
// Errors and outcomes

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

/// The result of [`Idempotency::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The work ran now; this is its result.
    Fresh(String),
    /// The work ran before; this is its stored result.
    Replayed(String),
}

impl Outcome {
    pub fn is_replayed(&self) -> bool {
        matches!(self, Outcome::Replayed(_))
    }
    pub fn as_str(&self) -> &str {
        match self {
            Outcome::Fresh(s) | Outcome::Replayed(s) => s,
        }
    }
    pub fn into_string(self) -> String {
        match self {
            Outcome::Fresh(s) | Outcome::Replayed(s) => s,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Store trait and service

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

/// The idempotency service (`inv.idempotency()?`): a store plus the TTL of
/// completed records.
#[derive(Clone)]
pub struct Idempotency {
    pub store: Arc<dyn IdempotencyStore>,
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
    pub fn new(store: Arc<dyn IdempotencyStore>) -> Self {
        Self {
            store,
            ttl: DEFAULT_TTL,
        }
    }
    pub fn with_ttl(store: Arc<dyn IdempotencyStore>, ttl: Duration) -> Self {
        Self { store, ttl }
    }

    /// Run `work` once for `key` (see the module docs for the algorithm): its result text
    /// ([`Outcome::Fresh`]), or the stored result of an earlier run ([`Outcome::Replayed`]).
    /// `in_progress_until` bounds the lock: past it, a retry may take over (pass the
    /// invocation's deadline, [`EpochMillis::from_deadline`]).
    pub async fn run<F, Fut, E>(
        &self,
        key: &IdempotencyKey,
        in_progress_until: EpochMillis,
        work: F,
    ) -> Result<Outcome, RunError<E>>
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
                    return Self::answer_from(key, record).map_err(RunError::Idempotency);
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
                Err(RunError::Handler(e))
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

// ---------------------------------------------------------------------------------------------
// In-memory twin

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn service() -> Idempotency {
        Idempotency::new(Arc::new(MemoryIdempotency::default()))
    }

    fn deadline() -> EpochMillis {
        EpochMillis::now().after(Duration::from_secs(30))
    }

    #[test]
    fn keys_ignore_member_order_and_depend_on_scope() {
        let a = IdempotencyKey::new("s", &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}));
        let b = IdempotencyKey::new("s", &json!({"b": [1, {"x": 1, "y": 2}], "a": 1}));
        assert_eq!(a, b);
        assert_ne!(
            a,
            IdempotencyKey::new("t", &json!({"a": 1, "b": [1, {"x": 1, "y": 2}]}))
        );
        assert_eq!(a.as_str().len(), 64);
        assert!(a.pk().starts_with("idem#"));
        let c1 = IdempotencyKey::from_caller("s", "evt-1", &json!({"amount": 1}));
        let c2 = IdempotencyKey::from_caller("s", "evt-1", &json!({"amount": 2}));
        assert_eq!(c1.as_str(), c2.as_str());
        assert_ne!(c1.validation(), c2.validation());
        assert_eq!(
            String::from_utf8(canonical_json(
                &json!({"b": 1.0, "a": "é", "c": [null, true]})
            ))
            .unwrap(),
            r#"{"a":"é","b":1,"c":[null,true]}"#
        );
    }

    /// Queue and incoming handlers need `Send + 'static` futures.
    #[test]
    fn runs_are_send() {
        fn is_send<F: Future + Send + 'static>(_: F) {}
        let idem = service();
        is_send(async move {
            let key = IdempotencyKey::new("s", &json!({"n": 1}));
            idem.run(&key, deadline(), || async {
                Ok::<_, String>("x".to_owned())
            })
            .await
        });
    }

    #[test]
    fn lock_tokens_are_distinct() {
        let a = LockToken::generate();
        let b = LockToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
    }

    /// A store whose `complete` always fails (the table stalls after the work ran).
    struct CompleteFails(MemoryIdempotency);

    #[async_trait]
    impl IdempotencyStore for CompleteFails {
        async fn acquire(
            &self,
            key: &IdempotencyKey,
            lock: &LockToken,
            until: EpochMillis,
            expires_at: EpochSeconds,
        ) -> Result<Acquire, IdempotencyError> {
            self.0.acquire(key, lock, until, expires_at).await
        }
        async fn complete(
            &self,
            _: &IdempotencyKey,
            _: &LockToken,
            _: StoredResult<'_>,
            _: EpochSeconds,
        ) -> Result<(), IdempotencyError> {
            Err(IdempotencyError::Store("stalled".into()))
        }
        async fn release(
            &self,
            key: &IdempotencyKey,
            lock: &LockToken,
        ) -> Result<(), IdempotencyError> {
            self.0.release(key, lock).await
        }
        async fn get(
            &self,
            key: &IdempotencyKey,
        ) -> Result<Option<IdempotencyRecord>, IdempotencyError> {
            self.0.get(key).await
        }
    }

    /// Work that succeeded is answered as such even when its record cannot be completed: an
    /// error would make SQS (or the caller) retry, and the retry would run the work again
    /// once the lock expires.
    #[tokio::test]
    async fn work_done_is_answered_even_when_its_record_cannot_be_completed() {
        let idem = Idempotency::new(Arc::new(CompleteFails(MemoryIdempotency::default())));
        let key = IdempotencyKey::new("s", &json!({"n": 1}));
        let out = idem
            .run(&key, deadline(), || async {
                Ok::<_, String>("done".to_owned())
            })
            .await;
        assert!(
            matches!(&out, Ok(Outcome::Fresh(r)) if r == "done"),
            "{:?}",
            out.map_err(|e| e.to_string())
        );
    }

    #[tokio::test]
    async fn runs_once_then_replays() {
        let idem = service();
        let key = IdempotencyKey::new("s", &json!({"n": 1}));
        let runs = AtomicUsize::new(0);
        let work = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>("{\"ok\":true}".to_owned())
        };
        assert_eq!(
            idem.run(&key, deadline(), work).await.unwrap(),
            Outcome::Fresh("{\"ok\":true}".into())
        );
        assert_eq!(
            idem.run(&key, deadline(), work).await.unwrap(),
            Outcome::Replayed("{\"ok\":true}".into())
        );
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn in_flight_duplicates_mismatches_and_failures() {
        let idem = service();
        let payload = json!({"n": 1});
        let key = IdempotencyKey::from_caller("s", "k", &payload);
        let other = IdempotencyKey::from_caller("s", "k", &json!({"n": 2}));
        let out = idem
            .run(&key, deadline(), || async {
                let inner = idem
                    .run(&key, deadline(), || async { Ok::<_, String>("x".into()) })
                    .await;
                assert!(matches!(
                    inner,
                    Err(RunError::Idempotency(
                        IdempotencyError::AlreadyInProgress { .. }
                    ))
                ));
                let mismatch = idem
                    .run(&other, deadline(), || async { Ok::<_, String>("x".into()) })
                    .await;
                assert!(matches!(
                    mismatch,
                    Err(RunError::Idempotency(IdempotencyError::PayloadMismatch))
                ));
                Err::<String, _>("boom".to_owned())
            })
            .await;
        assert!(matches!(out, Err(RunError::Handler(ref e)) if e == "boom"));
        assert_eq!(idem.store.get(&key).await.unwrap(), None, "lock released");
        let retry = idem
            .run(&key, deadline(), || async {
                Ok::<_, String>("second".into())
            })
            .await
            .unwrap();
        assert_eq!(retry, Outcome::Fresh("second".into()));
    }

    #[tokio::test]
    async fn a_stale_holder_cannot_complete_and_oversize_is_not_stored() {
        let idem = service();
        let key = IdempotencyKey::new("s", &json!({"n": 1}));
        let expired = EpochMillis::now().before(Duration::from_millis(1));
        let stale = idem
            .run(&key, expired, || async {
                let taker = idem
                    .run(&key, deadline(), || async {
                        Ok::<_, String>("taker".into())
                    })
                    .await
                    .unwrap();
                assert_eq!(taker, Outcome::Fresh("taker".into()));
                Ok::<_, String>("stale".into())
            })
            .await;
        assert!(matches!(
            stale,
            Err(RunError::Idempotency(IdempotencyError::LockLost))
        ));
        let replay = idem
            .run(&key, deadline(), || async { Ok::<_, String>("x".into()) })
            .await
            .unwrap();
        assert_eq!(replay, Outcome::Replayed("taker".into()));

        let big = IdempotencyKey::new("s", &json!({"big": true}));
        let text = "x".repeat(MAX_STORED_RESULT_BYTES + 1);
        let fresh = idem
            .run(&big, deadline(), || async { Ok::<_, String>(text.clone()) })
            .await
            .unwrap();
        assert_eq!(fresh.as_str().len(), MAX_STORED_RESULT_BYTES + 1);
        let again = idem
            .run(&big, deadline(), || async { Ok::<_, String>(text.clone()) })
            .await;
        assert!(matches!(
            again,
            Err(RunError::Idempotency(IdempotencyError::ResultNotStored))
        ));
        assert!(!IdempotencyError::ResultNotStored.is_retryable());
        assert!(
            IdempotencyError::AlreadyInProgress {
                until: EpochMillis(0)
            }
            .is_retryable()
        );
    }
}
