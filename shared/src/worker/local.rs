//! The work queue of local runs (`make serve`, embedded backend): messages are delivered to the
//! same worker code Lambda runs ([`super::handle_batch`], one record per batch) after
//! their delay, so deferred jobs, rate-limited retries and runs really progress locally. A
//! message that fails is delivered again after [`RETRY_AFTER`], at most [`MAX_RECEIVES`] times
//! (like the stack's redrive policy), then dropped with an error log (the local "dead-letter
//! queue").

use crate::dispatch::Extension;
use crate::store::queue::{OutMessage, QueueError, QueueStore};
use async_trait::async_trait;
use serde_json::json;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Deliveries of one message at most.
pub const MAX_RECEIVES: u32 = 5;
/// Wait before a failed message is delivered again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);
/// Messages held at once (waiting for their delay, being delivered or waiting to be delivered
/// again); a send beyond it is refused with an error, never dropped.
pub const CAPACITY: usize = 10_000;

type Item = (String, OutMessage, Held);

/// An in-process queue feeding the worker; it holds at most [`CAPACITY`] messages.
#[derive(Debug)]
pub struct MemoryWorkQueue {
    tx: mpsc::UnboundedSender<Item>,
    rx: Mutex<Option<mpsc::UnboundedReceiver<Item>>>,
    counter: AtomicU64,
    held: Arc<AtomicUsize>,
    capacity: usize,
}

/// One held message: the count goes down when its delivery ends (or it is never delivered).
#[derive(Debug)]
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for MemoryWorkQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Self {
            tx,
            rx: Mutex::new(Some(rx)),
            counter: AtomicU64::new(0),
            held: Arc::default(),
            capacity: CAPACITY,
        }
    }
}

/// The SQS event Lambda would send for one message.
pub fn sqs_event(message_id: &str, body: &str, receive_count: u32) -> serde_json::Value {
    json!({"Records": [{
        "messageId": message_id,
        "receiptHandle": message_id,
        "body": body,
        "attributes": {"ApproximateReceiveCount": receive_count.to_string()},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:local:000000000000:work",
        "awsRegion": "local"
    }]})
}

impl MemoryWorkQueue {
    /// Start delivering to `ext` (once; later calls do nothing). Needs a Tokio runtime.
    pub fn start(&self, ext: Extension) {
        let Some(mut rx) = self.rx.lock().ok().and_then(|mut r| r.take()) else {
            return;
        };
        tokio::spawn(async move {
            while let Some((id, message, held)) = rx.recv().await {
                let ext = ext.clone();
                tokio::spawn(async move {
                    deliver(ext, id, message).await;
                    drop(held);
                });
            }
        });
    }
}

async fn deliver(ext: Extension, id: String, message: OutMessage) {
    if let Some(d) = message.delay {
        tokio::time::sleep(d).await;
    }
    for receive in 1..=MAX_RECEIVES {
        let event = sqs_event(&id, &message.body, receive);
        match super::handle_batch(&ext, event, &id, None).await {
            Ok(r) if r.batch_item_failures.is_empty() => return,
            _ => tokio::time::sleep(RETRY_AFTER).await,
        }
    }
    tracing::error!(message_id = %id, receives = MAX_RECEIVES, "local work queue: message failed every delivery; dropped (dead-letter)");
}

#[async_trait]
impl QueueStore for MemoryWorkQueue {
    async fn send(&self, message: OutMessage) -> Result<String, QueueError> {
        let taken = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            });
        if let Err(n) = taken {
            return Err(QueueError(format!(
                "the local work queue is full ({n} messages held)"
            )));
        }
        let held = Held(self.held.clone());
        let id = format!(
            "local-{}-{}",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed) + 1
        );
        self.tx
            .send((id.clone(), message, held))
            .map_err(|_| QueueError("local work queue closed".into()))?;
        Ok(id)
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    /// The local queue holds at most its capacity: a send beyond it is refused (the sender
    /// sees the error), and a place frees when a held message is done with.
    #[tokio::test]
    async fn a_full_local_queue_refuses_a_send() {
        let q = MemoryWorkQueue {
            capacity: 2,
            ..MemoryWorkQueue::default()
        };
        let m = || OutMessage {
            body: "{}".into(),
            ..OutMessage::default()
        };
        q.send(m()).await.unwrap();
        q.send(m()).await.unwrap();
        let full = q.send(m()).await.expect_err("full");
        assert!(full.0.contains("full"), "{full:?}");
        // Not started: take one message off the channel as delivery would, and finish it.
        let (_, _, held) = q.rx.lock().unwrap().as_mut().unwrap().try_recv().unwrap();
        drop(held);
        q.send(m()).await.unwrap();
    }
}
