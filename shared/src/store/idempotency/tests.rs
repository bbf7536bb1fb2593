//! Unit tests of the idempotency flow and its in-memory store.

use super::*;
use crate::codec::canonical_json;
use async_trait::async_trait;
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
        idem.once(&key, deadline(), || async {
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
        .once(&key, deadline(), || async {
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
        idem.once(&key, deadline(), work).await.unwrap(),
        Outcome::Fresh("{\"ok\":true}".into())
    );
    assert_eq!(
        idem.once(&key, deadline(), work).await.unwrap(),
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
        .once(&key, deadline(), || async {
            let inner = idem
                .once(&key, deadline(), || async { Ok::<_, String>("x".into()) })
                .await;
            assert!(matches!(
                inner,
                Err(OnceError::Idempotency(
                    IdempotencyError::AlreadyInProgress { .. }
                ))
            ));
            let mismatch = idem
                .once(&other, deadline(), || async { Ok::<_, String>("x".into()) })
                .await;
            assert!(matches!(
                mismatch,
                Err(OnceError::Idempotency(IdempotencyError::PayloadMismatch))
            ));
            Err::<String, _>("boom".to_owned())
        })
        .await;
    assert!(matches!(out, Err(OnceError::Handler(ref e)) if e == "boom"));
    assert_eq!(idem.store.get(&key).await.unwrap(), None, "lock released");
    let retry = idem
        .once(&key, deadline(), || async {
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
        .once(&key, expired, || async {
            let taker = idem
                .once(&key, deadline(), || async {
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
        Err(OnceError::Idempotency(IdempotencyError::LockLost))
    ));
    let replay = idem
        .once(&key, deadline(), || async { Ok::<_, String>("x".into()) })
        .await
        .unwrap();
    assert_eq!(replay, Outcome::Replayed("taker".into()));

    let big = IdempotencyKey::new("s", &json!({"big": true}));
    let text = "x".repeat(MAX_STORED_RESULT_BYTES + 1);
    let fresh = idem
        .once(&big, deadline(), || async { Ok::<_, String>(text.clone()) })
        .await
        .unwrap();
    assert_eq!(fresh.as_str().len(), MAX_STORED_RESULT_BYTES + 1);
    let again = idem
        .once(&big, deadline(), || async { Ok::<_, String>(text.clone()) })
        .await;
    assert!(matches!(
        again,
        Err(OnceError::Idempotency(IdempotencyError::ResultNotStored))
    ));
    assert!(!IdempotencyError::ResultNotStored.is_retryable());
    assert!(
        IdempotencyError::AlreadyInProgress {
            until: EpochMillis(0)
        }
        .is_retryable()
    );
}
