//! `DynamoCache` against the emulator (moto, `MOTO_ENDPOINT`): the item layout, TTL on read
//! (an expired item that DynamoDB has not deleted yet is a miss), oversize values refused
//! before any write, and `get_or_compute` computing once.

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::aws::{create_table, moto_config};
use integrator_lambda::aws::Table;
use integrator_lambda::aws::cache::DynamoCache;
use integrator_lambda::store::cache::{Cache, CacheError, MAX_VALUE_BYTES};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn dynamo_cache_stores_json_with_a_ttl_and_decides_expiry_on_read() {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "cache").await;
    let cache = Cache::new(Arc::new(DynamoCache::new(Table::new(&cfg, &table))));
    let client = aws_sdk_dynamodb::Client::new(&cfg);

    let value = json!({"id": 7, "name": "Ada", "tags": ["a", "b"]});
    let before = now();
    cache
        .set("customer:7", &value, Duration::from_secs(300))
        .await
        .unwrap();
    let after = now();
    assert_eq!(
        cache.get::<Value>("customer:7").await.unwrap(),
        Some(value.clone())
    );
    let item = client
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("cache#customer:7".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    assert_eq!(item["value"].as_s().unwrap(), &value.to_string());
    let exp: u64 = item["expires_at"].as_n().unwrap().parse().unwrap();
    assert!((before + 299..=after + 301).contains(&exp), "{exp}");

    // Expired but still in the table (moto, like DynamoDB for a while, does not delete it).
    client
        .put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("cache#old".into()))
        .item("value", AttributeValue::S("1".into()))
        .item("expires_at", AttributeValue::N((now() - 1).to_string()))
        .send()
        .await
        .unwrap();
    assert_eq!(cache.get::<u32>("old").await.unwrap(), None);
    let mut computed = 0;
    let v: u32 = cache
        .get_or_compute("old", Duration::from_secs(60), || {
            computed += 1;
            async { Ok::<_, CacheError>(2) }
        })
        .await
        .unwrap();
    assert_eq!((v, computed), (2, 1));
    let v: u32 = cache
        .get_or_compute("old", Duration::from_secs(60), || {
            computed += 1;
            async { Ok::<_, CacheError>(3) }
        })
        .await
        .unwrap();
    assert_eq!((v, computed), (2, 1), "served from the table");

    // Over the item limit: refused, nothing written.
    let big = "x".repeat(MAX_VALUE_BYTES);
    let e = cache
        .set("big", &big, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "cache_value_too_large");
    assert_eq!(cache.get::<String>("big").await.unwrap(), None);

    cache.remove("customer:7").await.unwrap();
    assert_eq!(cache.get::<Value>("customer:7").await.unwrap(), None);
}
