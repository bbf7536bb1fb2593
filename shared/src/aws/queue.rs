//! Amazon SQS as a [`QueueStore`].

use crate::store::queue::{OutMessage, QueueError, QueueStore};
use async_trait::async_trait;
use aws_sdk_sqs::types::{MessageSystemAttributeNameForSends, MessageSystemAttributeValue};

/// Amazon SQS. Standard or FIFO: `group_id`/`dedup_id` are passed through as given (FIFO
/// queues require a group id; standard queues reject a deduplication id).
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
    queue_url: String,
}

/// SQS's largest `DelaySeconds`.
const MAX_DELAY_SECS: u64 = 900;

impl SqsQueue {
    /// A queue at `queue_url`, reached with `config` (region, credentials, endpoint).
    pub fn new(config: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        let conf = aws_sdk_sqs::config::Builder::from(config)
            .interceptor(crate::aws::xray::XrayInterceptor)
            .build();
        Self::from_client(aws_sdk_sqs::Client::from_conf(conf), queue_url)
    }

    pub fn from_client(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

#[async_trait]
impl QueueStore for SqsQueue {
    async fn send(&self, message: OutMessage) -> Result<String, QueueError> {
        let delay = message
            .delay
            .map(|d| d.as_secs().min(MAX_DELAY_SECS) as i32);
        let mut request = self.client.send_message();
        // The sender's trace continues in the consumer (X-Ray links the two).
        if let Some(trace) = message.trace_header() {
            let value = MessageSystemAttributeValue::builder()
                .data_type("String")
                .string_value(trace)
                .build()
                .map_err(|e| QueueError(e.to_string()))?;
            request = request.message_system_attributes(
                MessageSystemAttributeNameForSends::AwsTraceHeader,
                value,
            );
        }
        let out = request
            .queue_url(&self.queue_url)
            .message_body(message.body)
            .set_delay_seconds(delay)
            .set_message_group_id(message.group_id)
            .set_message_deduplication_id(message.dedup_id)
            .send()
            .await
            .map_err(|e| QueueError(super::describe_sdk_error(&e)))?;
        out.message_id()
            .map(str::to_owned)
            .ok_or_else(|| QueueError("SendMessage returned no message id".into()))
    }
}
