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
        let mut sent = self.sent.lock().map_err(|_| QueueError("in-memory queue poisoned".into()))?;
        sent.push(message);
        Ok(format!("local-{}", sent.len()))
    }
}
