//! Outgoing messages: accepted webhook events now, deferred and scheduled work later.

use async_trait::async_trait;
use std::sync::Mutex;
use std::time::Duration;

/// One message to enqueue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutMessage {
    pub body: String,
    /// Up to 15 minutes (SQS `DelaySeconds`; not allowed per message on FIFO queues).
    pub delay: Option<Duration>,
    /// FIFO queues: the message group.
    pub group_id: Option<String>,
    /// FIFO queues: the deduplication id.
    pub dedup_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

/// A message queue.
#[async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Send one message; returns the queue's message id.
    async fn send(&self, message: OutMessage) -> Result<String, QueueError>;
}

/// The queue service handed to functions (`inv.service::<Outbox>()`).
#[derive(Clone)]
pub struct Outbox(pub std::sync::Arc<dyn Queue>);

/// In-memory twin for local runs and unit tests: keeps what was sent.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    sent: Mutex<Vec<OutMessage>>,
}

impl MemoryQueue {
    /// Everything sent so far, oldest first.
    pub fn sent(&self) -> Vec<OutMessage> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, message: OutMessage) -> Result<String, QueueError> {
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| QueueError("in-memory queue poisoned".into()))?;
        sent.push(message);
        Ok(format!("local-{}", sent.len()))
    }
}

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
        Self::from_client(aws_sdk_sqs::Client::new(config), queue_url)
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
impl Queue for SqsQueue {
    async fn send(&self, message: OutMessage) -> Result<String, QueueError> {
        let delay = message
            .delay
            .map(|d| d.as_secs().min(MAX_DELAY_SECS) as i32);
        let out = self
            .client
            .send_message()
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

/// The queue for this environment: SQS at `EXTENSION_QUEUE_URL` on AWS, an in-memory queue
/// when embedded; `None` on AWS without a queue URL.
pub async fn outbox_from_env(backend: super::Backend, res: &super::Resources) -> Option<Outbox> {
    match backend {
        super::Backend::Embedded => Some(Outbox(std::sync::Arc::new(MemoryQueue::default()))),
        super::Backend::Aws => {
            let url = res.queue_url.as_deref()?;
            let config = super::sdk_config().await;
            Some(Outbox(std::sync::Arc::new(SqsQueue::new(config, url))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_queue_keeps_messages_and_embedded_outbox() {
        let q = MemoryQueue::default();
        let id = q
            .send(OutMessage {
                body: "{}".into(),
                ..OutMessage::default()
            })
            .await
            .unwrap();
        assert_eq!(id, "local-1");
        assert_eq!(q.sent().len(), 1);
        let res = super::super::Resources {
            table: "t".into(),
            kms_key_id: "k".into(),
            queue_url: None,
            work_queue_url: None,
            stack_name: "s".into(),
        };
        let outbox = outbox_from_env(super::super::Backend::Embedded, &res).await;
        assert!(outbox.is_some());
        // AWS without a queue URL: no outbox (and no SDK configuration is loaded).
        assert!(
            outbox_from_env(super::super::Backend::Aws, &res)
                .await
                .is_none()
        );
    }
}
