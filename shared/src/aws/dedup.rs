//! DynamoDB dedup store: one item per key in the extension table.
//!
//! | attribute | meaning |
//! |---|---|
//! | `pk` (S) | `dedup#<key hex>` |
//! | `expires_at` (N) | epoch **seconds**: last sighting + TTL (the table's TTL attribute) |
//! | `first_seen` (N) | epoch seconds of the first sighting the item remembers |
//! | `last_seen` (N) | epoch seconds of the latest sighting |
//! | `sightings` (N) | how many checks hit the item |
//!
//! ## One write per check
//!
//! A check is **one** `UpdateItem`:
//!
//! ```text
//! SET expires_at = :exp, last_seen = :now, first_seen = if_not_exists(first_seen, :now)
//! ADD sightings :one
//! ReturnValues = ALL_OLD
//! ```
//!
//! The sighting is new iff DynamoDB returns no old item, or the old item's `expires_at` is
//! not after now (`expires_at <= now`: expired, but not yet reaped: TTL deletion may lag by up to two days, so expiry
//! is decided here, never trusted to TTL). DynamoDB serializes writes to one item, so of any
//! number of concurrent checks of a fresh key exactly one sees "no old item". The same write
//! refreshes the expiry of a duplicate, which is what makes keys live TTL after their *last*
//! sighting.
//!
//! The alternative — a conditional `PutItem` (`attribute_not_exists(pk) OR expires_at < :now`)
//! that returns the old item on failure, with a consistent `GetItem` fallback — needs a second
//! write to push a duplicate's expiry forward, so it is not used. The price of the single
//! unconditional update: when a key expired but was not yet reaped, `first_seen` and
//! `sightings` carry over from its previous life (the answer, `New`, is still right).
//!

use super::Table;
use crate::store::dedup::{DedupKey, DedupStore, PK_PREFIX, Sighting, StoreError, alive};
use crate::time::EpochSeconds;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use std::time::Duration;

/// DynamoDB store: one `UpdateItem` per check (see the module docs).
#[derive(Debug, Clone)]
pub struct DynamoDedup {
    table: Table,
}

impl DynamoDedup {
    /// The store in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }
    pub fn table(&self) -> &str {
        &self.table.name
    }
    /// The partition key of `key`'s item: `dedup#<key hex>`.
    pub fn pk(key: &DedupKey) -> String {
        format!("{PK_PREFIX}{}", key.as_str())
    }
}

#[async_trait]
impl DedupStore for DynamoDedup {
    async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
        let now = EpochSeconds::now().0;
        let out = self
            .table
            .update(AttributeValue::S(Self::pk(key)))
            .update_expression(
                "SET expires_at = :exp, last_seen = :now, \
                 first_seen = if_not_exists(first_seen, :now) ADD sightings :one",
            )
            .expression_attribute_values(
                ":exp",
                AttributeValue::N(now.saturating_add(ttl.as_secs()).to_string()),
            )
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError(super::describe_sdk_error(&e)))?;
        Ok(match out.attributes() {
            None => Sighting::New,
            Some(old) if old.is_empty() => Sighting::New,
            // An item whose expiry cannot be read is treated as alive: it exists, and dropping
            // a duplicate is the safer mistake for a store that is only ever written here.
            Some(old) => match old
                .get("expires_at")
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse::<u64>().ok())
            {
                Some(exp) if !alive(exp, now) => Sighting::New,
                _ => Sighting::Duplicate,
            },
        })
    }

    /// One `DeleteItem`.
    async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
        self.table
            .delete(AttributeValue::S(Self::pk(key)))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| StoreError(super::describe_sdk_error(&e)))
    }
}
