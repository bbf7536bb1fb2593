//! One SQS batch, read (its records, grouped), and the partial batch response or the error that
//! fails the invocation.

use super::GROUP_ATTRIBUTE;
use crate::store::queue::TRACE_ATTRIBUTE;
use aws_lambda_events::sqs::SqsMessage;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashSet;

/// One failed message of the partial batch response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

/// The partial batch response (`{"batchItemFailures":[…]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct BatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<ItemFailure>,
}

impl BatchResponse {
    /// The exact JSON text Lambda receives.
    pub fn to_json(&self) -> String {
        let items: Vec<String> = self
            .batch_item_failures
            .iter()
            .map(|f| {
                format!(
                    "{{\"itemIdentifier\":{}}}",
                    Value::String(f.item_identifier.clone())
                )
            })
            .collect();
        format!("{{\"batchItemFailures\":[{}]}}", items.join(","))
    }
}

/// Why the whole invocation fails (the batch is retried as a whole).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error(
        "record {index} of the batch has no messageId, so its failure could not be reported; no record was processed and the whole batch will be retried"
    )]
    MissingMessageId { index: usize },
    #[error("the SQS event could not be read: {0}")]
    InvalidEvent(String),
    #[error("every message of the batch failed ({}): {}", .failed.len(), .failed.join(", "))]
    AllFailed { failed: Vec<String> },
}

impl BatchError {
    /// The Lambda `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            BatchError::MissingMessageId { .. } => "Worker.MissingMessageId",
            BatchError::InvalidEvent(_) => "Worker.InvalidEvent",
            BatchError::AllFailed { .. } => "Worker.BatchFailed",
        }
    }
}

pub(super) struct Record {
    pub(super) index: usize,
    pub(super) id: String,
    pub(super) body: Option<String>,
    /// The sender's X-Ray trace header (the `AWSTraceHeader` system attribute).
    pub(super) trace: Option<String>,
}

/// One batch, read: its records grouped (a FIFO group, or one record of a standard queue).
pub(super) struct Batch {
    pub(super) total: usize,
    pub(super) groups: Vec<(Option<String>, Vec<Record>)>,
    /// Copies of a message id already in the batch (skipped).
    pub(super) duplicates: usize,
}

/// Read every record first (a missing id fails the invocation before anything runs), skip
/// repeated ids, and group the records.
pub(super) fn read_batch(payload: Value) -> Result<Batch, BatchError> {
    let raw = match payload {
        Value::Object(mut map) => match map.remove("Records") {
            Some(Value::Array(records)) => records,
            _ => return Err(BatchError::InvalidEvent("no Records array".into())),
        },
        _ => return Err(BatchError::InvalidEvent("not a JSON object".into())),
    };
    let total = raw.len();
    let mut records = Vec::with_capacity(total);
    for (index, value) in raw.into_iter().enumerate() {
        let id_in_json = value
            .get("messageId")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let message: SqsMessage = serde_json::from_value(value).unwrap_or_default();
        let id = message
            .message_id
            .clone()
            .or(id_in_json)
            .filter(|id| !id.is_empty());
        let Some(id) = id else {
            let e = BatchError::MissingMessageId { index };
            tracing::error!(records = total, error = %e, "sqs batch rejected");
            return Err(e);
        };
        let group = message.attributes.get(GROUP_ATTRIBUTE).cloned();
        let trace = message.attributes.get(TRACE_ATTRIBUTE).cloned();
        records.push((index, id, message.body, group, trace));
    }
    let mut groups: Vec<(Option<String>, Vec<Record>)> = Vec::new();
    let mut seen = HashSet::new();
    let mut duplicates = 0usize;
    for (index, id, body, group, trace) in records {
        if !seen.insert(id.clone()) {
            duplicates += 1;
            tracing::warn!(message_id = %id, "message delivered twice in one batch; the copy is skipped");
            continue;
        }
        let record = Record {
            index,
            id,
            body,
            trace,
        };
        match &group {
            Some(g) => match groups.iter_mut().find(|(k, _)| k.as_deref() == Some(g)) {
                Some((_, list)) => list.push(record),
                None => groups.push((group, vec![record])),
            },
            None => groups.push((None, vec![record])),
        }
    }
    Ok(Batch {
        total,
        groups,
        duplicates,
    })
}
