//! DynamoDB rate counters: one item per bucket (`hits`, `expires_at`).
//!
//! Lost replies: each admission writes its own token into `last`, each release into
//! `released`, and the condition refuses a write whose token is already there. An SDK retry of
//! an attempt that was applied but whose reply was lost therefore neither counts the call twice
//! nor gives a slot back twice. The window this leaves: when another admission to the same
//! bucket lands between the attempt and its retry, the retry counts once more — the bucket then
//! admits one call fewer in that interval, never one more.

use super::{Table, describe_sdk_error, is_condition_failure};
use crate::jobs::limits::*;
use crate::time::EpochSeconds;
use async_trait::async_trait;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};

/// Counter items in the extension table: one conditional `UpdateItem` per admission.
#[derive(Debug, Clone)]
pub struct DynamoCounters {
    table: Table,
}

impl DynamoCounters {
    /// The store in `table`.
    pub fn new(table: Table) -> Self {
        Self { table }
    }
}

#[async_trait]
impl CounterStore for DynamoCounters {
    async fn acquire(
        &self,
        bucket: &str,
        limit: u64,
        expires_at: EpochSeconds,
    ) -> Result<Option<u64>, LimitError> {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
        // `last` holds the token of the latest admission. A retry of an attempt that landed but
        // whose reply was lost fails the `last <> :tok` condition and finds its own token in
        // the returned item: admitted once, counted once.
        let token = crate::codec::random_id();
        let r = self
            .table
            .update(AttributeValue::S(bucket.to_owned()))
            .update_expression("ADD hits :one SET expires_at = :exp, #last = :tok")
            .condition_expression(
                "(attribute_not_exists(hits) OR hits < :limit) \
                 AND (attribute_not_exists(#last) OR #last <> :tok)",
            )
            .expression_attribute_names("#last", "last")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.0.to_string()))
            .expression_attribute_values(":tok", AttributeValue::S(token.clone()))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let hits = |item: Option<&std::collections::HashMap<String, AttributeValue>>| {
            item.and_then(|a| a.get("hits"))
                .and_then(|v| v.as_n().ok())
                .and_then(|n| n.parse().ok())
        };
        match r {
            Ok(out) => Ok(Some(hits(out.attributes()).unwrap_or(1))),
            Err(SdkError::ServiceError(se))
                if matches!(
                    se.err(),
                    UpdateItemError::ConditionalCheckFailedException(_)
                ) =>
            {
                let UpdateItemError::ConditionalCheckFailedException(failed) = se.err() else {
                    return Ok(None);
                };
                let old = match failed.item().filter(|i| !i.is_empty()) {
                    Some(i) => Some(i.clone()),
                    None => self
                        .table
                        .get(AttributeValue::S(bucket.to_owned()))
                        .await
                        .map_err(|e| LimitError::Store(describe_sdk_error(&e)))?,
                };
                let ours = old
                    .as_ref()
                    .is_some_and(|i| i.get("last").and_then(|v| v.as_s().ok()) == Some(&token));
                Ok(if ours {
                    Some(hits(old.as_ref()).unwrap_or(1))
                } else {
                    None
                })
            }
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(LimitError::Store(describe_sdk_error(&e))),
        }
    }

    /// One conditional `UpdateItem`: `hits - 1` while above 0.
    async fn release(&self, bucket: &str) -> Result<(), LimitError> {
        // `released` holds the latest release's token, so a retry whose first attempt landed
        // does not give back a second slot.
        let r = self
            .table
            .update(AttributeValue::S(bucket.to_owned()))
            .update_expression("ADD hits :minus SET released = :tok")
            .condition_expression(
                "hits > :zero AND (attribute_not_exists(released) OR released <> :tok)",
            )
            .expression_attribute_values(":tok", AttributeValue::S(crate::codec::random_id()))
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await;
        super::applied(r)
            .map(|_| ())
            .map_err(|e| LimitError::Store(describe_sdk_error(&e)))
    }
}
