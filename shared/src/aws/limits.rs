//! DynamoDB rate counters.

use super::{Table, describe_sdk_error, is_condition_failure};
use crate::jobs::limits::*;
use crate::time::EpochSeconds;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

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
        let r = self
            .table
            .update(AttributeValue::S(bucket.to_owned()))
            .update_expression("ADD hits :one SET expires_at = :exp")
            .condition_expression("attribute_not_exists(hits) OR hits < :limit")
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":limit", AttributeValue::N(limit.to_string()))
            .expression_attribute_values(":exp", AttributeValue::N(expires_at.0.to_string()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match r {
            Ok(out) => Ok(Some(
                out.attributes()
                    .and_then(|a| a.get("hits"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
            )),
            Err(e) if is_condition_failure(&e) => Ok(None),
            Err(e) => Err(LimitError::Store(describe_sdk_error(&e))),
        }
    }

    /// One conditional `UpdateItem`: `hits - 1` while above 0.
    async fn release(&self, bucket: &str) -> Result<(), LimitError> {
        let r = self
            .table
            .update(AttributeValue::S(bucket.to_owned()))
            .update_expression("ADD hits :minus")
            .condition_expression("hits > :zero")
            .expression_attribute_values(":minus", AttributeValue::N("-1".into()))
            .expression_attribute_values(":zero", AttributeValue::N("0".into()))
            .send()
            .await;
        super::applied(r)
            .map(|_| ())
            .map_err(|e| LimitError::Store(describe_sdk_error(&e)))
    }
}
