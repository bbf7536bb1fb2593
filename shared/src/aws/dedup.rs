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
use crate::store::dedup::{Claim, DedupKey, DedupStore, PK_PREFIX, Sighting, StoreError, alive};
use crate::time::EpochSeconds;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
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

    /// One conditional `UpdateItem` (`attribute_not_exists(pk) OR expires_at <= :now`) that
    /// sets the lease and the claim token; when the condition fails, the item it returns (or a
    /// consistent `GetItem` on emulators that return none) says `InFlight` (it has a `claim`)
    /// or `Duplicate`; a duplicate's expiry is then pushed forward like any sighting.
    async fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let now = EpochSeconds::now().0;
        let token = crate::codec::random_id();
        let until = now.saturating_add(lease.as_secs().max(1));
        let r = self
            .table
            .update(AttributeValue::S(Self::pk(key)))
            .update_expression(
                "SET expires_at = :until, #c = :token, last_seen = :now, \
                 first_seen = if_not_exists(first_seen, :now) ADD sightings :one",
            )
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_names("#c", "claim")
            .expression_attribute_values(":until", AttributeValue::N(until.to_string()))
            .expression_attribute_values(":token", AttributeValue::S(token.clone()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let old = match r {
            Ok(_) => return Ok(Claim::Claimed(token)),
            Err(SdkError::ServiceError(se)) => match se.err() {
                UpdateItemError::ConditionalCheckFailedException(failed) => {
                    failed.item().filter(|i| !i.is_empty()).cloned()
                }
                _ => {
                    return Err(StoreError(super::describe_sdk_error(
                        &SdkError::ServiceError(se),
                    )));
                }
            },
            Err(e) => return Err(StoreError(super::describe_sdk_error(&e))),
        };
        let old = match old {
            Some(o) => Some(o),
            None => self
                .table
                .get(AttributeValue::S(Self::pk(key)))
                .await
                .map_err(|e| StoreError(super::describe_sdk_error(&e)))?,
        };
        match old {
            Some(o) if o.contains_key("claim") => Ok(Claim::InFlight),
            Some(_) => {
                // A confirmed key: count the sighting and push its expiry forward (best effort:
                // the answer is already known).
                if let Err(e) = self.check(key, ttl).await {
                    tracing::warn!(error = %e, "dedup: could not refresh a duplicate's expiry");
                }
                Ok(Claim::Duplicate)
            }
            // Gone between the two requests (expired and reaped): free again, but not retried
            // here (that could go on as long as the race does). The caller answers "in
            // progress" and the sender's retry claims it.
            None => Ok(Claim::InFlight),
        }
    }

    /// `UpdateItem`: the TTL from now, the claim removed; only while the claim is `token`'s.
    async fn confirm(&self, key: &DedupKey, token: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = EpochSeconds::now().0;
        let r = self
            .table
            .update(AttributeValue::S(Self::pk(key)))
            .update_expression("SET expires_at = :exp REMOVE #c")
            .condition_expression("#c = :token")
            .expression_attribute_names("#c", "claim")
            .expression_attribute_values(
                ":exp",
                AttributeValue::N(now.saturating_add(ttl.as_secs()).to_string()),
            )
            .expression_attribute_values(":token", AttributeValue::S(token.into()))
            .send()
            .await;
        match super::applied(r) {
            Ok(true) => Ok(()),
            Ok(false) => {
                tracing::warn!(dedup_key = %key.as_str(), "dedup: the claim was taken over before it was confirmed (its lease ran out)");
                Ok(())
            }
            Err(e) => Err(StoreError(super::describe_sdk_error(&e))),
        }
    }

    /// `DeleteItem`, only while the claim is `token`'s.
    async fn release(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        let r = self
            .table
            .delete(AttributeValue::S(Self::pk(key)))
            .condition_expression("#c = :token")
            .expression_attribute_names("#c", "claim")
            .expression_attribute_values(":token", AttributeValue::S(token.into()))
            .send()
            .await;
        super::applied(r)
            .map(|_| ())
            .map_err(|e| StoreError(super::describe_sdk_error(&e)))
    }
}
