//! Idempotent execution (`DynamoIdempotency`) against the emulator (moto, `MOTO_ENDPOINT`):
//! record layout, requests per run counted at the emulator boundary, in-flight duplicates,
//! replays, payload mismatches, lock release, key snapshots, lock ownership and oversize
//! results.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::aws::{
    create_table, moto_config, moto_endpoint, patient_sdk_config_for, sdk_config_for,
};
use integration_tests::counting_proxy::CountingProxy;
use integrator_lambda::aws::Table;
use integrator_lambda::aws::idempotency::DynamoIdempotency;
use integrator_lambda::store::idempotency::{
    Idempotency, IdempotencyError, IdempotencyKey, MAX_STORED_RESULT_BYTES, OnceError, Outcome,
};
use integrator_lambda::time::EpochMillis;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn deadline() -> EpochMillis {
    EpochMillis::now().after(Duration::from_secs(30))
}

async fn setup() -> (SdkConfig, String, Idempotency) {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "idem").await;
    let idem = Idempotency::new(Arc::new(DynamoIdempotency::new(Table::new(&cfg, &table))));
    (cfg, table, idem)
}

async fn item(
    cfg: &SdkConfig,
    table: &str,
    key: &IdempotencyKey,
) -> HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(cfg)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(key.pk()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item()
        .cloned()
        .unwrap_or_default()
}

fn s<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn n(item: &HashMap<String, AttributeValue>, name: &str) -> Option<u64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn ok(text: &str) -> impl std::future::Future<Output = Result<String, String>> + use<> {
    let text = text.to_owned();
    async move { Ok(text) }
}

#[tokio::test]
async fn a_first_run_is_two_requests_and_a_replay_is_one() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "idem").await;
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let counted = sdk_config_for(&proxy.endpoint()).await;
    let idem = Idempotency::new(Arc::new(DynamoIdempotency::new(Table::new(
        &counted, &table,
    ))));
    let key = IdempotencyKey::new("queue:orders", &json!({"order": 1}));

    let first = idem
        .once(&key, deadline(), || ok(r#"{"done":1}"#))
        .await
        .unwrap();
    assert_eq!(first, Outcome::Fresh(r#"{"done":1}"#.into()));
    println!("first run: {:?}", proxy.counts());
    assert_eq!(proxy.count("PutItem"), 1);
    assert_eq!(proxy.count("UpdateItem"), 1);
    assert_eq!(proxy.total(), 2);

    proxy.reset();
    let replay = idem.once(&key, deadline(), || ok("not run")).await.unwrap();
    assert_eq!(replay, Outcome::Replayed(r#"{"done":1}"#.into()));
    println!("replay: {:?}", proxy.counts());
    assert_eq!(proxy.count("PutItem"), 1);
    assert_eq!(proxy.total(), 1, "ALL_OLD returns the record: no GetItem");

    let it = item(&cfg, &table, &key).await;
    println!("completed record: {it:?}");
    assert_eq!(s(&it, "status"), Some("COMPLETED"));
    assert_eq!(s(&it, "data"), Some(r#"{"done":1}"#));
    assert_eq!(s(&it, "validation"), Some(key.validation()));
    assert_eq!(s(&it, "lock_id").map(str::len), Some(32));
    assert_eq!(it.get("in_progress_expires_at"), None);
    let exp = n(&it, "expires_at").expect("expires_at");
    assert!(
        exp > now_secs() && exp <= now_secs() + 24 * 3600,
        "epoch seconds, 24 h ahead: {exp}"
    );
}

#[tokio::test]
async fn without_all_old_a_consistent_get_reads_the_existing_record() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "idem").await;
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let counted = sdk_config_for(&proxy.endpoint()).await;
    let idem = Idempotency::new(Arc::new(
        DynamoIdempotency::new(Table::new(&counted, &table)).with_return_old_on_failure(false),
    ));
    let key = IdempotencyKey::new("s", &json!({"n": 1}));
    idem.once(&key, deadline(), || ok("1")).await.unwrap();
    proxy.reset();
    let replay = idem.once(&key, deadline(), || ok("2")).await.unwrap();
    assert_eq!(replay, Outcome::Replayed("1".into()));
    println!("replay without ALL_OLD: {:?}", proxy.counts());
    assert_eq!((proxy.count("PutItem"), proxy.count("GetItem")), (1, 1));
}

#[tokio::test]
async fn the_in_progress_record_has_the_documented_layout() {
    let (cfg, table, idem) = setup().await;
    let key = IdempotencyKey::new("s", &json!({"n": 1}));
    let until = deadline();
    let seen = idem
        .once(&key, until, || async {
            Ok::<_, String>(format!("{:?}", item(&cfg, &table, &key).await))
        })
        .await
        .unwrap();
    println!("in-progress record: {}", seen.as_str());
    let text = seen.as_str();
    assert!(text.contains(r#""status": S("INPROGRESS")"#), "{text}");
    assert!(
        text.contains(&format!(r#""in_progress_expires_at": N("{}")"#, until.0)),
        "milliseconds: {text}"
    );
    assert!(text.contains(&format!(r#""validation": S("{}")"#, key.validation())));
    assert!(until.0 > 1_000_000_000_000, "epoch ms has 13 digits");
}

#[tokio::test]
async fn a_concurrent_duplicate_in_flight_is_already_in_progress() {
    let (_cfg, _table, idem) = setup().await;
    let idem = Arc::new(idem);
    let key = IdempotencyKey::new("s", &json!({"event": "e-1"}));
    let started = Arc::new(tokio::sync::Notify::new());
    let finish = Arc::new(tokio::sync::Notify::new());
    let holder = tokio::spawn({
        let (idem, key, started, finish) =
            (idem.clone(), key.clone(), started.clone(), finish.clone());
        async move {
            idem.once(&key, deadline(), || async move {
                started.notify_one();
                finish.notified().await;
                Ok::<_, String>("held".to_owned())
            })
            .await
        }
    });
    started.notified().await;
    let runs = AtomicUsize::new(0);
    let dup = idem
        .once(&key, deadline(), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>("dup".to_owned())
        })
        .await;
    let err = match dup {
        Err(OnceError::Idempotency(e)) => e,
        other => panic!("expected AlreadyInProgress, got {other:?}"),
    };
    println!("in-flight duplicate: {err}");
    assert!(matches!(err, IdempotencyError::AlreadyInProgress { .. }));
    assert!(err.is_retryable());
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    finish.notify_one();
    assert_eq!(
        holder.await.unwrap().unwrap(),
        Outcome::Fresh("held".into())
    );
    assert_eq!(
        idem.once(&key, deadline(), || ok("again")).await.unwrap(),
        Outcome::Replayed("held".into())
    );
}

#[tokio::test]
async fn a_completed_request_replays_the_same_data_without_running_the_work() {
    let (_cfg, _table, idem) = setup().await;
    let payload = json!({"b": [1, 2], "a": {"y": 1.5, "x": "é"}});
    let key = IdempotencyKey::new("s", &payload);
    let runs = AtomicUsize::new(0);
    let work = || async {
        runs.fetch_add(1, Ordering::SeqCst);
        Ok::<_, String>(r#"{"id":"A-1","note":"é"}"#.to_owned())
    };
    let first = idem.once(&key, deadline(), work).await.unwrap();
    // The same payload with its members in another order is the same request.
    let reordered = IdempotencyKey::new("s", &json!({"a": {"x": "é", "y": 1.5}, "b": [1, 2]}));
    let second = idem.once(&reordered, deadline(), work).await.unwrap();
    let third = idem.once(&key, deadline(), work).await.unwrap();
    assert!(!first.is_replayed());
    assert!(second.is_replayed() && third.is_replayed());
    assert_eq!(first.as_str(), second.as_str());
    assert_eq!(first.as_str(), third.as_str());
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_same_key_with_a_different_payload_is_a_payload_mismatch() {
    let (_cfg, _table, idem) = setup().await;
    let a = IdempotencyKey::from_caller("payments", "idem-key-1", &json!({"amount": 10}));
    let b = IdempotencyKey::from_caller("payments", "idem-key-1", &json!({"amount": 99}));
    assert_eq!(a.as_str(), b.as_str());
    idem.once(&a, deadline(), || ok("paid 10")).await.unwrap();
    let err = match idem.once(&b, deadline(), || ok("paid 99")).await {
        Err(OnceError::Idempotency(e)) => e,
        other => panic!("expected PayloadMismatch, got {other:?}"),
    };
    println!("mismatch: {err}");
    assert_eq!(err, IdempotencyError::PayloadMismatch);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_failing_handler_releases_the_lock_and_a_retry_runs() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "idem").await;
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let counted = sdk_config_for(&proxy.endpoint()).await;
    let idem = Idempotency::new(Arc::new(DynamoIdempotency::new(Table::new(
        &counted, &table,
    ))));
    let key = IdempotencyKey::new("s", &json!({"n": 1}));
    let failed = idem
        .once(&key, deadline(), || async {
            Err::<String, _>("target said 503".to_owned())
        })
        .await;
    assert!(matches!(failed, Err(OnceError::Handler(ref e)) if e == "target said 503"));
    println!("failed run: {:?}", proxy.counts());
    assert_eq!((proxy.count("PutItem"), proxy.count("DeleteItem")), (1, 1));
    assert!(item(&cfg, &table, &key).await.is_empty(), "lock released");
    let retry = idem
        .once(&key, deadline(), || ok("second try"))
        .await
        .unwrap();
    assert_eq!(retry, Outcome::Fresh("second try".into()));
}

#[tokio::test]
async fn a_handler_that_mutates_its_input_does_not_move_the_key() {
    let (cfg, table, idem) = setup().await;
    let original = json!({"order": 7, "lines": [1, 2]});
    let key = IdempotencyKey::new("s", &original);
    let mut payload = original.clone();
    let out = idem
        .once(&key, deadline(), || {
            if let Value::Object(m) = &mut payload {
                m.insert("processed".into(), json!(true));
                m.remove("lines");
            }
            let text = payload.to_string();
            async move { Ok::<_, String>(text) }
        })
        .await
        .unwrap();
    assert_eq!(out.as_str(), r#"{"order":7,"processed":true}"#);
    let it = item(&cfg, &table, &key).await;
    assert_eq!(
        s(&it, "status"),
        Some("COMPLETED"),
        "completed under the original key"
    );
    let mutated_key = IdempotencyKey::new("s", &payload);
    assert!(
        item(&cfg, &table, &mutated_key).await.is_empty(),
        "nothing under a moved key"
    );
    let replay = idem
        .once(&IdempotencyKey::new("s", &original), deadline(), || ok("x"))
        .await
        .unwrap();
    assert_eq!(replay, Outcome::Replayed(out.into_string()));
}

#[tokio::test]
async fn only_the_lock_holder_can_complete() {
    let (cfg, table, idem) = setup().await;
    let key = IdempotencyKey::new("s", &json!({"n": 1}));
    // The stale holder's deadline is already past, so a retry may take the lock over while
    // its work is still running.
    let expired = EpochMillis::now().before(Duration::from_millis(5));
    let stale = idem
        .once(&key, expired, || async {
            let taker = idem.once(&key, deadline(), || ok("taker's result")).await;
            assert_eq!(taker.unwrap(), Outcome::Fresh("taker's result".into()));
            Ok::<_, String>("stale result".to_owned())
        })
        .await;
    let err = match stale {
        Err(OnceError::Idempotency(e)) => e,
        other => panic!("expected LockLost, got {other:?}"),
    };
    println!("stale holder: {err}");
    assert_eq!(err, IdempotencyError::LockLost);
    let it = item(&cfg, &table, &key).await;
    assert_eq!(s(&it, "status"), Some("COMPLETED"));
    assert_eq!(s(&it, "data"), Some("taker's result"), "not overwritten");
    assert_eq!(
        idem.once(&key, deadline(), || ok("x")).await.unwrap(),
        Outcome::Replayed("taker's result".into())
    );
}

#[tokio::test]
async fn an_expired_completed_record_runs_again() {
    let (cfg, table, idem) = setup().await;
    let key = IdempotencyKey::new("s", &json!({"n": 1}));
    aws_sdk_dynamodb::Client::new(&cfg)
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(key.pk()))
        .item("status", AttributeValue::S("COMPLETED".into()))
        .item(
            "expires_at",
            AttributeValue::N((now_secs() - 5).to_string()),
        )
        .item("data", AttributeValue::S("old".into()))
        .item("validation", AttributeValue::S(key.validation().into()))
        .item("lock_id", AttributeValue::S("someone".into()))
        .send()
        .await
        .expect("put");
    let out = idem.once(&key, deadline(), || ok("new")).await.unwrap();
    assert_eq!(out, Outcome::Fresh("new".into()));
}

#[tokio::test]
async fn an_oversize_result_is_not_stored() {
    let (cfg, table, idem) = setup().await;
    let key = IdempotencyKey::new("s", &json!({"big": true}));
    let big = format!("\"{}\"", "x".repeat(360 * 1024));
    assert!(big.len() > MAX_STORED_RESULT_BYTES);
    let first = idem.once(&key, deadline(), || ok(&big)).await.unwrap();
    assert_eq!(first.as_str().len(), big.len(), "the caller still gets it");
    let it = item(&cfg, &table, &key).await;
    assert_eq!(s(&it, "status"), Some("COMPLETED"));
    assert_eq!(it.get("data"), None);
    assert_eq!(it.get("data_omitted"), Some(&AttributeValue::Bool(true)));
    let runs = AtomicUsize::new(0);
    let replay = idem
        .once(&key, deadline(), || async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(big.clone())
        })
        .await;
    let err = match replay {
        Err(OnceError::Idempotency(e)) => e,
        other => panic!("expected ResultNotStored, got {other:?}"),
    };
    println!("replay of an oversize result: {err}");
    assert_eq!(err, IdempotencyError::ResultNotStored);
    assert_eq!(runs.load(Ordering::SeqCst), 0, "not run again");
}

/// 32 invocations of one request at once run the work exactly once. Requests go through a
/// proxy that forwards them one at a time (see `counting_proxy`: moto does not serialize
/// writes to one item the way DynamoDB does); the invocations still race each other.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_runs_of_one_request_run_the_work_once() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "idem").await;
    let proxy = CountingProxy::start_serialized(&moto_endpoint())
        .await
        .expect("proxy");
    let counted = patient_sdk_config_for(&proxy.endpoint()).await;
    let idem = Arc::new(Idempotency::new(Arc::new(DynamoIdempotency::new(
        Table::new(&counted, &table),
    ))));
    let key = IdempotencyKey::new("s", &json!({"race": true}));
    let runs = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(32));
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (idem, key, runs, barrier) =
                (idem.clone(), key.clone(), runs.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                idem.once(&key, deadline(), || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok::<_, String>("once".to_owned())
                })
                .await
            })
        })
        .collect();
    let (mut fresh, mut in_progress, mut replayed) = (0, 0, 0);
    for t in tasks {
        match t.await.expect("task") {
            Ok(Outcome::Fresh(_)) => fresh += 1,
            Ok(Outcome::Replayed(_)) => replayed += 1,
            Err(OnceError::Idempotency(IdempotencyError::AlreadyInProgress { .. })) => {
                in_progress += 1
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    println!(
        "{fresh} Fresh, {in_progress} AlreadyInProgress, {replayed} Replayed; requests {:?}",
        proxy.counts()
    );
    assert_eq!(fresh, 1);
    assert_eq!(in_progress + replayed, 31);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}
