//! Queues: the incoming queue (accepted webhook events) and the work queue (deferred jobs,
//! rate-limited retries, run streams). Amazon SQS on AWS ([`SqsQueue`](crate::aws::queue::SqsQueue)),
//! [`MemoryQueue`] in tests, and locally the in-process work queue that delivers to the worker
//! ([`crate::worker::local::MemoryWorkQueue`]).

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
    /// The X-Ray trace header to send as the `AWSTraceHeader` system attribute; `None` means
    /// the current call's ([`crate::telemetry::current_trace_id`]), if any.
    pub trace_header: Option<String>,
}

/// The SQS system attribute that carries the X-Ray trace header from sender to consumer.
pub const TRACE_ATTRIBUTE: &str = "AWSTraceHeader";

impl OutMessage {
    /// The trace header to send: the message's own, else the current call's.
    pub fn trace_header(&self) -> Option<String> {
        self.trace_header
            .clone()
            .or_else(|| crate::telemetry::current_trace_id().map(|t| t.to_string()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("queue unavailable: {0}")]
pub struct QueueError(pub String);

/// A message queue.
#[async_trait]
pub trait QueueStore: Send + Sync + 'static {
    /// Send one message; returns the queue's message id.
    async fn send(&self, message: OutMessage) -> Result<String, QueueError>;
}

/// In-memory twin for local runs and unit tests: keeps what was sent. Bounded: it holds at
/// most [`MemoryQueue::CAPACITY`] messages; a send to a full queue is refused with an error (a
/// queued message is never dropped to make room: it is work someone was told is queued).
#[derive(Debug)]
pub struct MemoryQueue {
    sent: Mutex<Vec<OutMessage>>,
    capacity: usize,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

impl MemoryQueue {
    /// Messages held at most by default.
    pub const CAPACITY: usize = 10_000;

    /// A queue of at most `capacity` messages (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            sent: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Everything sent so far, oldest first.
    pub fn sent(&self) -> Vec<OutMessage> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl QueueStore for MemoryQueue {
    async fn send(&self, message: OutMessage) -> Result<String, QueueError> {
        let mut sent = self
            .sent
            .lock()
            .map_err(|_| QueueError("in-memory queue poisoned".into()))?;
        if sent.len() >= self.capacity {
            return Err(QueueError(format!(
                "the in-memory queue is full ({} messages)",
                sent.len()
            )));
        }
        sent.push(message);
        Ok(format!("local-{}", sent.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_queue_keeps_messages() {
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
    }

    /// A full queue refuses a send (an error the sender sees) and keeps what it holds.
    #[tokio::test]
    async fn a_full_memory_queue_refuses_rather_than_drop() {
        let q = MemoryQueue::with_capacity(1);
        let m = || OutMessage {
            body: "{}".into(),
            ..OutMessage::default()
        };
        q.send(m()).await.unwrap();
        let full = q.send(m()).await.expect_err("full");
        assert!(full.0.contains("full"), "{full:?}");
        assert_eq!(q.sent().len(), 1);
    }
}
