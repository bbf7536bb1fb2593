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
//! | `writer` (S) | the token of the check or claim that made the item new |
//! | `claim` (S) | while a two-state key is pending: its holder's token |
//! | `confirmed_by` (S) | the token of the claim that confirmed the key |
//!
//! ## One conditional write per check, and lost replies
//!
//! A check is one conditional `UpdateItem`:
//!
//! ```text
//! SET expires_at = :exp, last_seen = :now, first_seen = if_not_exists(first_seen, :now),
//!     writer = :token  ADD sightings :one
//! CONDITION attribute_not_exists(pk) OR expires_at <= :now
//! ReturnValuesOnConditionCheckFailure = ALL_OLD
//! ```
//!
//! The sighting is new iff the write is applied: there was no item, or its `expires_at` is not
//! after now (expired but not yet reaped: TTL deletion may lag by up to two days, so expiry is
//! decided here, never trusted to TTL). DynamoDB serializes writes to one item, so of any
//! number of concurrent checks of a fresh key exactly one is applied.
//!
//! `:token` is new for every check and is the same in every attempt the SDK makes of that one
//! request. When an attempt is applied but its reply is lost (a dropped connection, a read
//! timeout that fires after the write landed), the SDK retries, the condition fails on the
//! item the first attempt wrote, and the returned item carries **this check's own token**: the
//! sighting is still new. Without the token the retry would take the record for a duplicate and
//! drop it. Nothing else ever overwrites `writer` while the item is alive, so the answer does not
//! depend on what other checks did in between.
//!
//! A duplicate costs a second, unconditional write that pushes its expiry forward (keys live TTL
//! after their *last* sighting); that write does not decide anything, so retrying it is
//! harmless. Claims work the same way: the claim's token is in the item, so a retried claim
//! whose first attempt landed finds its own token and holds the claim.
//!
use super::Table;
use crate::store::dedup::{Claim, DedupKey, DedupStore, PK_PREFIX, Sighting, StoreError};
use crate::time::EpochSeconds;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
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

/// An item as a conditional write's failure returned it, or `None` for no item.
type Item = std::collections::HashMap<String, AttributeValue>;

/// The string attribute `name` of `item`.
fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

impl DynamoDedup {
    /// The item a failed conditional write returned, or (emulators that return none) one
    /// consistent `GetItem`.
    async fn item_after_failure(
        &self,
        key: &DedupKey,
        returned: Option<Item>,
    ) -> Result<Option<Item>, StoreError> {
        match returned.filter(|i| !i.is_empty()) {
            Some(item) => Ok(Some(item)),
            None => self
                .table
                .get(AttributeValue::S(Self::pk(key)))
                .await
                .map_err(|e| StoreError(super::describe_sdk_error(&e))),
        }
    }

    /// A duplicate's sighting: its expiry moves to `ttl` from now and the sighting is counted.
    /// Unconditional and idempotent in effect (a retried attempt only moves the expiry again);
    /// it never touches `writer` or `claim`, so it cannot change another check's answer.
    async fn refresh(&self, key: &DedupKey, ttl: Duration) -> Result<(), StoreError> {
        let now = EpochSeconds::now().0;
        self.table
            .update(AttributeValue::S(Self::pk(key)))
            .update_expression("SET expires_at = :exp, last_seen = :now ADD sightings :one")
            .condition_expression("attribute_exists(pk)")
            .expression_attribute_values(
                ":exp",
                AttributeValue::N(now.saturating_add(ttl.as_secs()).to_string()),
            )
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .send()
            .await
            .map(|_| ())
            .or_else(|e| {
                // Reaped between the two writes: nothing left to refresh.
                if super::is_condition_failure(&e) {
                    Ok(())
                } else {
                    Err(StoreError(super::describe_sdk_error(&e)))
                }
            })
    }

    /// [`DedupStore::check`] with its token: one conditional `UpdateItem` (see the module docs);
    /// a duplicate's expiry is then pushed forward by a second write.
    async fn check_with(
        &self,
        key: &DedupKey,
        ttl: Duration,
        token: &str,
    ) -> Result<Sighting, StoreError> {
        let now = EpochSeconds::now().0;
        let r = self
            .table
            .update(AttributeValue::S(Self::pk(key)))
            .update_expression(
                "SET expires_at = :exp, last_seen = :now, \
                 first_seen = if_not_exists(first_seen, :now), writer = :token \
                 ADD sightings :one",
            )
            .condition_expression("attribute_not_exists(pk) OR expires_at <= :now")
            .expression_attribute_values(
                ":exp",
                AttributeValue::N(now.saturating_add(ttl.as_secs()).to_string()),
            )
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":token", AttributeValue::S(token.to_owned()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let returned = match update_condition_failed(r)? {
            Ok(()) => return Ok(Sighting::New),
            Err(returned) => returned,
        };
        match self.item_after_failure(key, returned).await? {
            // This check's own earlier attempt was applied; only its reply was lost.
            Some(item) if text(&item, "writer") == Some(token) => Ok(Sighting::New),
            // The item that failed the condition is gone by the time it is read. Live items
            // are only ever deleted by a rollback (`forget`, `release`), which makes the key
            // free again: the sighting is new (a later check sees this one's item).
            None => Ok(Sighting::New),
            Some(_) => {
                self.refresh(key, ttl).await?;
                Ok(Sighting::Duplicate)
            }
        }
    }

    /// [`DedupStore::claim`] with its token (see there).
    async fn claim_as(
        &self,
        key: &DedupKey,
        lease: Duration,
        ttl: Duration,
        token: String,
    ) -> Result<Claim, StoreError> {
        let now = EpochSeconds::now().0;
        let until = now.saturating_add(lease.as_secs().max(1));
        let r = self
            .table
            .update(AttributeValue::S(Self::pk(key)))
            .update_expression(
                "SET expires_at = :until, #c = :token, writer = :token, last_seen = :now, \
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
        let returned = match update_condition_failed(r)? {
            Ok(()) => return Ok(Claim::Claimed(token)),
            Err(returned) => returned,
        };
        match self.item_after_failure(key, returned).await? {
            // This claim's own earlier attempt was applied; only its reply was lost.
            Some(o) if text(&o, "claim") == Some(token.as_str()) => Ok(Claim::Claimed(token)),
            Some(o) if o.contains_key("claim") => Ok(Claim::InFlight),
            Some(_) => {
                // A confirmed key: count the sighting and push its expiry forward (best effort:
                // the answer is already known).
                if let Err(e) = self.refresh(key, ttl).await {
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

    /// Best effort: delete `key`'s item if its `attr` still holds `token` (this call's own
    /// write, applied although the call failed). A condition that fails means the item is
    /// someone else's, or gone: nothing to undo.
    async fn undo(&self, key: &DedupKey, attr: &str, token: &str) {
        if let Err(e) = self.delete_if(key, attr, token).await {
            tracing::warn!(
                dedup_key = %key.as_str(),
                error = %e,
                "dedup: a failed check could not undo its own write; the key stays marked until its TTL"
            );
        }
    }

    /// One `DeleteItem` of `key`'s item while its `attr` holds `token`; a condition that does
    /// not hold (someone else's item, or none: a retry whose first attempt deleted it) is not
    /// an error.
    async fn delete_if(&self, key: &DedupKey, attr: &str, token: &str) -> Result<(), StoreError> {
        let r = self
            .table
            .delete(AttributeValue::S(Self::pk(key)))
            .condition_expression("#a = :token")
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":token", AttributeValue::S(token.into()))
            .send()
            .await;
        super::applied(r)
            .map(|_| ())
            .map_err(|e| StoreError(super::describe_sdk_error(&e)))
    }
}

/// The failed condition's returned item of an `UpdateItem`, or the error to report.
fn update_condition_failed(
    r: Result<
        aws_sdk_dynamodb::operation::update_item::UpdateItemOutput,
        SdkError<
            aws_sdk_dynamodb::operation::update_item::UpdateItemError,
            aws_sdk_dynamodb::config::http::HttpResponse,
        >,
    >,
) -> Result<Result<(), Option<Item>>, StoreError> {
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
    match r {
        Ok(_) => Ok(Ok(())),
        Err(SdkError::ServiceError(se)) => match se.err() {
            UpdateItemError::ConditionalCheckFailedException(failed) => {
                Ok(Err(failed.item().cloned()))
            }
            _ => Err(StoreError(super::describe_sdk_error(
                &SdkError::ServiceError(se),
            ))),
        },
        Err(e) => Err(StoreError(super::describe_sdk_error(&e))),
    }
}

#[async_trait]
impl DedupStore for DynamoDedup {
    /// One conditional `UpdateItem` carrying this check's token (see the module docs); a
    /// duplicate's expiry is then pushed forward by a second write.
    async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
        self.check_as(key, ttl, &crate::codec::random_id()).await
    }
    /// [`DedupStore::check`] with the caller's token in `writer`.
    async fn check_as(
        &self,
        key: &DedupKey,
        ttl: Duration,
        token: &str,
    ) -> Result<Sighting, StoreError> {
        let out = self.check_with(key, ttl, token).await;
        if out.is_err() {
            // The caller takes a failed check as "not checked" and rolls its page back; an
            // attempt that was applied before the failure (its reply lost or late, then the
            // retries ran out) must not leave the key marked by this check.
            self.undo(key, "writer", token).await;
        }
        out
    }
    /// One conditional `DeleteItem` (`writer` = `token`).
    async fn undo_check(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        self.delete_if(key, "writer", token).await
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
    /// consistent `GetItem` on emulators that return none) says `Claimed` (it carries this
    /// claim's own token: an earlier attempt landed and its reply was lost), `InFlight` (another
    /// claim) or `Duplicate`; a duplicate's expiry is then pushed forward like any sighting.
    async fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let token = crate::codec::random_id();
        let out = self.claim_as(key, lease, ttl, token.clone()).await;
        if out.is_err() {
            // The caller answers 503 and the sender retries: an attempt that was applied
            // before the failure must not hold the key as "in flight" until its lease ends.
            self.undo(key, "claim", &token).await;
        }
        out
    }

    /// `UpdateItem`: the TTL from now, the claim removed and `confirmed_by` set; only while the
    /// claim is `token`'s. A retried attempt whose first one landed finds `confirmed_by = token`
    /// and is not mistaken for a takeover.
    async fn confirm(&self, key: &DedupKey, token: &str, ttl: Duration) -> Result<(), StoreError> {
        let now = EpochSeconds::now().0;
        let r = self
            .table
            .update(AttributeValue::S(Self::pk(key)))
            .update_expression("SET expires_at = :exp, confirmed_by = :token REMOVE #c")
            .condition_expression("#c = :token")
            .expression_attribute_names("#c", "claim")
            .expression_attribute_values(
                ":exp",
                AttributeValue::N(now.saturating_add(ttl.as_secs()).to_string()),
            )
            .expression_attribute_values(":token", AttributeValue::S(token.into()))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let returned = match update_condition_failed(r)? {
            Ok(()) => return Ok(()),
            Err(returned) => returned,
        };
        match self.item_after_failure(key, returned).await? {
            Some(o) if text(&o, "confirmed_by") == Some(token) => {}
            _ => tracing::warn!(
                dedup_key = %key.as_str(),
                "dedup: the claim was taken over before it was confirmed (its lease ran out)"
            ),
        }
        Ok(())
    }

    /// `DeleteItem`, only while the claim is `token`'s. A retried attempt whose first one landed
    /// finds no item: the claim is released either way.
    async fn release(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        self.delete_if(key, "claim", token).await
    }
}
