//! `DynamoDedup` against the emulator (moto, `MOTO_ENDPOINT`): sightings, expiry refresh,
//! expired-but-unreaped keys, the 64-way race, whole pages, and the number of DynamoDB
//! requests per check, counted at the emulator boundary.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::aws::{
    create_table, moto_config, moto_endpoint, patient_sdk_config_for, sdk_config_for,
};
use integration_tests::counting_proxy::CountingProxy;
use integrator_lambda::aws::Table;
use integrator_lambda::aws::dedup::DynamoDedup;
use integrator_lambda::store::dedup::{Dedup, DedupKey, Sighting, check_page};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

async fn dedup_on(cfg: &SdkConfig, table: &str) -> Dedup {
    Dedup::new(Arc::new(DynamoDedup::new(Table::new(cfg, table))))
}

async fn item(cfg: &SdkConfig, table: &str, key: &DedupKey) -> HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(cfg)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(DynamoDedup::pk(key)))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item()
        .cloned()
        .unwrap_or_default()
}

fn n(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number in {item:?}"))
}

#[tokio::test]
async fn a_new_key_is_new_then_duplicate_and_the_item_has_the_documented_layout() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "dedup").await;
    let dedup = dedup_on(&cfg, &table).await;
    let key = DedupKey::from_values("scope", &[Some(&json!("order-1"))]);
    let before = now();
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::New);
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::Duplicate);
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::Duplicate);
    let other = DedupKey::from_values("other-scope", &[Some(&json!("order-1"))]);
    assert_eq!(dedup.check(&other).await.unwrap(), Sighting::New);

    let it = item(&cfg, &table, &key).await;
    println!("item: {it:?}");
    assert_eq!(
        it.get("pk").and_then(|v| v.as_s().ok()).map(String::as_str),
        Some(format!("dedup#{}", key.as_str()).as_str())
    );
    let ttl = Duration::from_secs(7 * 24 * 3600).as_secs();
    let exp = n(&it, "expires_at");
    assert!(
        exp >= before + ttl && exp <= now() + ttl,
        "expires_at is epoch seconds + 7 days: {exp}"
    );
    assert_eq!(n(&it, "sightings"), 3);
    assert!(n(&it, "first_seen") >= before);
    assert!(n(&it, "last_seen") >= n(&it, "first_seen"));
}

#[tokio::test]
async fn a_duplicate_pushes_the_expiry_forward() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "dedup").await;
    let dedup = Dedup::with_ttl(
        Arc::new(DynamoDedup::new(Table::new(&cfg, &table))),
        Duration::from_secs(60),
    );
    let key = DedupKey::from_caller("scope", "evt-1");
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::New);
    let first = item(&cfg, &table, &key).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::Duplicate);
    let second = item(&cfg, &table, &key).await;
    let (e1, e2) = (n(&first, "expires_at"), n(&second, "expires_at"));
    println!("expires_at before the duplicate: {e1}, after: {e2}");
    assert!(
        e2 > e1,
        "the duplicate moved the expiry forward ({e1} → {e2})"
    );
    assert_eq!(e2, n(&second, "last_seen") + 60);
    assert_eq!(n(&second, "first_seen"), n(&first, "first_seen"));
}

#[tokio::test]
async fn an_expired_but_unreaped_key_counts_as_new() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "dedup").await;
    let dedup = dedup_on(&cfg, &table).await;
    let key = DedupKey::from_caller("scope", "old");
    let past = now() - 10;
    aws_sdk_dynamodb::Client::new(&cfg)
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S(DynamoDedup::pk(&key)))
        .item("expires_at", AttributeValue::N(past.to_string()))
        .item("first_seen", AttributeValue::N((past - 100).to_string()))
        .item("last_seen", AttributeValue::N((past - 100).to_string()))
        .item("sightings", AttributeValue::N("4".into()))
        .send()
        .await
        .expect("put");
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::New);
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::Duplicate);
    assert!(n(&item(&cfg, &table, &key).await, "expires_at") > now());
}

/// 64 clients race to check one fresh key. DynamoDB serializes writes to one item; moto's
/// threaded server does not (its `update_item` reads, then creates, without a lock, and about
/// one run in fifty hands out two `New`s when hit directly), so the requests go through a
/// proxy that forwards them one at a time, as DynamoDB applies them. The clients still race:
/// an algorithm that decides on the client (read, then write) fails this test.
#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn sixty_four_concurrent_checks_of_one_new_key_give_exactly_one_new() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "dedup").await;
    let proxy = CountingProxy::start_serialized(&moto_endpoint())
        .await
        .expect("proxy");
    let counted = patient_sdk_config_for(&proxy.endpoint()).await;
    let dedup = Arc::new(dedup_on(&counted, &table).await);
    for round in 0..3 {
        proxy.reset();
        let key = DedupKey::from_caller("race", &format!("key-{round}"));
        let barrier = Arc::new(tokio::sync::Barrier::new(64));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (dedup, key, barrier) = (dedup.clone(), key.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    dedup.check(&key).await
                })
            })
            .collect();
        let mut new = 0;
        let mut duplicate = 0;
        for t in tasks {
            match t.await.expect("task").expect("check") {
                Sighting::New => new += 1,
                Sighting::Duplicate => duplicate += 1,
            }
        }
        println!(
            "round {round}: {new} New, {duplicate} Duplicate; requests {:?}",
            proxy.counts()
        );
        assert_eq!((new, duplicate), (1, 63));
        assert_eq!(
            proxy.count("UpdateItem"),
            64 + 63,
            "one conditional write per check, one refresh per duplicate"
        );
        let it = item(&cfg, &table, &key).await;
        assert_eq!(n(&it, "sightings"), 64, "every check counted once");
    }
}

#[tokio::test]
async fn check_page_keeps_order_and_flags_in_page_duplicates() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "dedup").await;
    let dedup = dedup_on(&cfg, &table).await;
    let fields = vec!["customer.id".to_owned(), "lines.0.sku".to_owned()];
    let page: Vec<Value> = (0..20)
        .map(|i| json!({"customer": {"id": i % 15}, "lines": [{"sku": "A"}], "seq": i}))
        .collect();
    let out = check_page(&dedup, "export-1", &page, &fields, 8)
        .await
        .unwrap();
    let expected: Vec<Sighting> = (0..20)
        .map(|i| {
            if i < 15 {
                Sighting::New
            } else {
                Sighting::Duplicate
            }
        })
        .collect();
    assert_eq!(out, expected);
    let again = check_page(&dedup, "export-1", &page[10..], &fields, 4)
        .await
        .unwrap();
    assert!(again.iter().all(|s| *s == Sighting::Duplicate), "{again:?}");
    let elsewhere = check_page(&dedup, "export-2", &page[..2], &fields, 4)
        .await
        .unwrap();
    assert_eq!(elsewhere, [Sighting::New, Sighting::New]);
    let too_many: Vec<String> = (0..6).map(|i| format!("f{i}")).collect();
    let err = check_page(&dedup, "export-1", &page, &too_many, 4)
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
}

#[tokio::test]
async fn a_new_key_costs_one_dynamodb_request_and_a_duplicate_two_writes() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "dedup").await;
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let counted = sdk_config_for(&proxy.endpoint()).await;
    let dedup = dedup_on(&counted, &table).await;
    let key = DedupKey::from_caller("count", "k");

    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::New);
    println!("new check: {:?}", proxy.counts());
    assert_eq!(proxy.total(), 1);
    assert_eq!(proxy.count("UpdateItem"), 1);

    // A duplicate: the conditional write fails, then a second write pushes its expiry forward
    // (plus one read on emulators whose failed condition returns no item; DynamoDB returns it).
    proxy.reset();
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::Duplicate);
    println!("duplicate check: {:?}", proxy.counts());
    assert_eq!(proxy.count("UpdateItem"), 2);
    assert!(proxy.total() <= 3, "{:?}", proxy.counts());

    proxy.reset();
    let page: Vec<Value> = [1, 2, 3, 2, 1].iter().map(|i| json!({"id": i})).collect();
    let out = check_page(&dedup, "count", &page, &["id".to_owned()], 4)
        .await
        .unwrap();
    use Sighting::*;
    assert_eq!(out, [New, New, New, Duplicate, Duplicate]);
    println!("page of 5 records (3 distinct keys): {:?}", proxy.counts());
    assert_eq!(
        proxy.total(),
        3,
        "one request per distinct key; in-page repeats cost nothing"
    );
}

#[tokio::test]
async fn forget_and_a_zero_ttl_sighting_make_a_key_new_again() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "dedup").await;
    let dedup = dedup_on(&cfg, &table).await;
    let key = DedupKey::from_caller("scope", "released");
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::New);
    // What the incoming endpoint does when the queue send fails: a zero-TTL sighting.
    assert_eq!(
        dedup.store.check(&key, Duration::ZERO).await.unwrap(),
        Sighting::Duplicate
    );
    assert_eq!(
        dedup.check(&key).await.unwrap(),
        Sighting::New,
        "retry accepted"
    );
    dedup.forget(&key).await.unwrap();
    assert!(
        item(&cfg, &table, &key).await.is_empty(),
        "forget deletes the item"
    );
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::New);
    assert_eq!(dedup.check(&key).await.unwrap(), Sighting::Duplicate);
}
