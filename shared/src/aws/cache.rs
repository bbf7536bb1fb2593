//! DynamoDB cache store: one item per entry in the extension table.
//!
//! | attribute | meaning |
//! |---|---|
//! | `pk` (S) | `cache#<key>` |
//! | `value` (S) | the value's JSON text (at most 350 KB: [`MAX_VALUE_BYTES`](crate::store::cache::MAX_VALUE_BYTES)) |
//! | `expires_at` (N) | epoch **seconds**; the table's TTL attribute |
//!
//! A read is one consistent `GetItem`; a write one unconditional `PutItem` (last writer wins:
//! two calls computing the same entry store the same kind of value). Expiry is decided by
//! [`Cache`](crate::store::cache::Cache) on read, since DynamoDB's TTL deletion lags.

use super::{Table, describe_sdk_error};
use crate::store::cache::{CacheEntry, CacheError, CacheStore, PK_PREFIX};
use crate::time::EpochSeconds;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;

#[derive(Debug, Clone)]
pub struct DynamoCache {
    table: Table,
}

impl DynamoCache {
    pub fn new(table: Table) -> Self {
        Self { table }
    }
    /// The partition key of `key`'s entry.
    pub fn pk(key: &str) -> String {
        format!("{PK_PREFIX}{key}")
    }
}

#[async_trait]
impl CacheStore for DynamoCache {
    async fn get(&self, key: &str) -> Result<Option<CacheEntry>, CacheError> {
        let item = self
            .table
            .get(AttributeValue::S(Self::pk(key)))
            .await
            .map_err(|e| CacheError::Unavailable(describe_sdk_error(&e)))?;
        let Some(item) = item else {
            return Ok(None);
        };
        let json = item.get("value").and_then(|v| v.as_s().ok());
        let expires = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse::<u64>().ok());
        match (json, expires) {
            (Some(json), Some(exp)) => Ok(Some(CacheEntry {
                json: json.clone(),
                expires_at: EpochSeconds(exp),
            })),
            _ => Err(CacheError::Corrupt {
                key: key.to_owned(),
                detail: "the item lacks value or expires_at".into(),
            }),
        }
    }

    async fn put(&self, key: &str, entry: CacheEntry) -> Result<(), CacheError> {
        self.table
            .put()
            .item("pk", AttributeValue::S(Self::pk(key)))
            .item("value", AttributeValue::S(entry.json))
            .item(
                "expires_at",
                AttributeValue::N(entry.expires_at.0.to_string()),
            )
            .send()
            .await
            .map_err(|e| CacheError::Unavailable(describe_sdk_error(&e)))?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.table
            .delete(AttributeValue::S(Self::pk(key)))
            .send()
            .await
            .map_err(|e| CacheError::Unavailable(describe_sdk_error(&e)))?;
        Ok(())
    }
}
