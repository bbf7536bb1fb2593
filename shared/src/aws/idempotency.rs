//! DynamoDB idempotency store: one item per request in the extension table (the layout and the
//! requests are described in [`crate::store::idempotency`]).

use super::Table;
use crate::store::idempotency::*;
use crate::time::Now;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use std::collections::HashMap;
use std::fmt;

/// DynamoDB store (see [`crate::store::idempotency`] for the layout and the requests).
#[derive(Debug, Clone)]
pub struct DynamoIdempotency {
    table: Table,
    return_old: bool,
}

const PUT_CONDITION: &str = "attribute_not_exists(pk) OR expires_at < :now_s \
     OR (#status = :inprogress AND in_progress_expires_at < :now_ms)";

impl DynamoIdempotency {
    /// The store in `table`.
    pub fn new(table: Table) -> Self {
        Self {
            table,
            return_old: true,
        }
    }
    /// Whether a failed put asks DynamoDB for the existing item (`ALL_OLD`, the default). Off,
    /// the existing item is read with a consistent `GetItem` (one more request): for emulators
    /// that lack `ReturnValuesOnConditionCheckFailure`.
    pub fn with_return_old_on_failure(mut self, on: bool) -> Self {
        self.return_old = on;
        self
    }
    pub fn table(&self) -> &str {
        &self.table.name
    }

    fn store_error<E, R>(e: &SdkError<E, R>) -> IdempotencyError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + fmt::Debug,
        R: fmt::Debug,
    {
        IdempotencyError::Store(super::describe_sdk_error(e))
    }
}

fn parse_record(
    item: &HashMap<String, AttributeValue>,
) -> Result<IdempotencyRecord, IdempotencyError> {
    let invalid = |what: &str| IdempotencyError::InvalidRecord(what.to_owned());
    let s = |name: &str| item.get(name).and_then(|v| v.as_s().ok()).cloned();
    let n = |name: &str| -> Result<Option<u64>, IdempotencyError> {
        match item.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_n()
                .ok()
                .and_then(|n| n.parse::<u64>().ok())
                .map(Some)
                .ok_or_else(|| invalid(&format!("{name} is not a whole number"))),
        }
    };
    let status = s("status")
        .as_deref()
        .and_then(Status::parse)
        .ok_or_else(|| invalid("unknown or missing status"))?;
    Ok(IdempotencyRecord {
        status,
        expires_at: EpochSeconds(n("expires_at")?.ok_or_else(|| invalid("no expires_at"))?),
        in_progress_expires_at: n("in_progress_expires_at")?.map(EpochMillis),
        data: s("data"),
        data_omitted: item
            .get("data_omitted")
            .and_then(|v| v.as_bool().ok())
            .copied()
            .unwrap_or(false),
        validation: s("validation"),
        lock_id: s("lock_id"),
    })
}

/// What a failed acquisition found: `record`, held by someone, unless it carries `lock` — then
/// this acquisition's own earlier attempt was applied and only its reply was lost (the SDK
/// retried the put and the retry met its own item): the lock is ours.
fn held_or_ours(record: IdempotencyRecord, lock: &LockToken) -> Acquire {
    if record.status == Status::InProgress && record.lock_id.as_deref() == Some(lock.as_str()) {
        Acquire::Acquired
    } else {
        Acquire::Held(record)
    }
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotency {
    async fn acquire(
        &self,
        key: &IdempotencyKey,
        lock: &LockToken,
        in_progress_until: EpochMillis,
        expires_at: EpochSeconds,
    ) -> Result<Acquire, IdempotencyError> {
        use aws_sdk_dynamodb::operation::put_item::PutItemError;
        let now = Now::read();
        let mut put = self
            .table
            .put()
            .item("pk", AttributeValue::S(key.pk()))
            .item(
                "status",
                AttributeValue::S(Status::InProgress.as_str().into()),
            )
            .item("expires_at", AttributeValue::N(expires_at.0.to_string()))
            .item(
                "in_progress_expires_at",
                AttributeValue::N(in_progress_until.0.to_string()),
            )
            .item("validation", AttributeValue::S(key.validation().into()))
            .item("lock_id", AttributeValue::S(lock.as_str().into()))
            .condition_expression(PUT_CONDITION)
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", AttributeValue::N(now.secs.0.to_string()))
            .expression_attribute_values(":now_ms", AttributeValue::N(now.millis.0.to_string()))
            .expression_attribute_values(
                ":inprogress",
                AttributeValue::S(Status::InProgress.as_str().into()),
            );
        if self.return_old {
            put = put.return_values_on_condition_check_failure(
                ReturnValuesOnConditionCheckFailure::AllOld,
            );
        }
        match put.send().await {
            Ok(_) => return Ok(Acquire::Acquired),
            Err(SdkError::ServiceError(se)) => {
                let PutItemError::ConditionalCheckFailedException(failed) = se.err() else {
                    return Err(IdempotencyError::Store(format!(
                        "{}: {}",
                        aws_sdk_dynamodb::error::ProvideErrorMetadata::code(se.err())
                            .unwrap_or("ServiceError"),
                        aws_sdk_dynamodb::error::ProvideErrorMetadata::message(se.err())
                            .unwrap_or("")
                    )));
                };
                if let Some(old) = failed.item().filter(|i| !i.is_empty()) {
                    return parse_record(old).map(|r| held_or_ours(r, lock));
                }
            }
            Err(e) => return Err(Self::store_error(&e)),
        }
        // The condition failed but no old item came back: read it.
        Ok(match self.get(key).await? {
            Some(record) => held_or_ours(record, lock),
            None => Acquire::Vanished,
        })
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        lock: &LockToken,
        result: StoredResult<'_>,
        expires_at: EpochSeconds,
    ) -> Result<(), IdempotencyError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        let mut update = self
            .table
            .update(AttributeValue::S(key.pk()))
            .condition_expression("lock_id = :mine")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#data", "data")
            .expression_attribute_values(":mine", AttributeValue::S(lock.as_str().into()))
            .expression_attribute_values(
                ":completed",
                AttributeValue::S(Status::Completed.as_str().into()),
            )
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.0.to_string()));
        update = match result {
            StoredResult::Data(data) => update
                .update_expression(
                    "SET #status = :completed, #data = :data, expires_at = :exp \
                     REMOVE in_progress_expires_at, data_omitted",
                )
                .expression_attribute_values(":data", AttributeValue::S(data.to_owned())),
            StoredResult::Omitted => update
                .update_expression(
                    "SET #status = :completed, data_omitted = :omitted, expires_at = :exp \
                     REMOVE in_progress_expires_at, #data",
                )
                .expression_attribute_values(":omitted", AttributeValue::Bool(true)),
        };
        match update.send().await {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                Err(IdempotencyError::LockLost)
            }
            Err(e) => Err(Self::store_error(&e)),
        }
    }

    async fn release(
        &self,
        key: &IdempotencyKey,
        lock: &LockToken,
    ) -> Result<(), IdempotencyError> {
        use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
        let out = self
            .table
            .delete(AttributeValue::S(key.pk()))
            .condition_expression("lock_id = :mine")
            .expression_attribute_values(":mine", AttributeValue::S(lock.as_str().into()))
            .send()
            .await;
        match out {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    DeleteItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                // No item at all: this release's own earlier attempt deleted it (its reply was
                // lost) or it expired; either way no one holds the lock. An item held by
                // another lock is a lost lock.
                match self.get(key).await? {
                    None => Ok(()),
                    Some(_) => Err(IdempotencyError::LockLost),
                }
            }
            Err(e) => Err(Self::store_error(&e)),
        }
    }

    async fn get(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, IdempotencyError> {
        let item = self
            .table
            .get(AttributeValue::S(key.pk()))
            .await
            .map_err(|e| Self::store_error(&e))?;
        item.as_ref().map(parse_record).transpose()
    }
}
