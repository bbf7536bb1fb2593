//! [`IncomingStores`]: the dedup store, queue and secret resolver the endpoints rely on.

use super::SecretResolver;
use crate::store::dedup::{Dedup, MemoryDedup};
use crate::store::queue::{MemoryQueue, QueueStore};
use std::sync::Arc;

/// What the endpoints rely on: the dedup store, the incoming queue, and (optionally) a resolver
/// for named secrets.
#[derive(Clone)]
#[doc(hidden)]
pub struct IncomingStores {
    pub dedup: Arc<Dedup>,
    pub queue: Arc<dyn QueueStore>,
    pub resolver: Option<Arc<dyn SecretResolver>>,
}

impl IncomingStores {
    pub fn new(dedup: Arc<Dedup>, queue: Arc<dyn QueueStore>) -> Self {
        Self {
            dedup,
            queue,
            resolver: None,
        }
    }

    /// In-memory dedup and queue (local runs, tests).
    pub fn in_memory() -> Self {
        Self::new(
            Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
            Arc::new(MemoryQueue::default()),
        )
    }

    pub fn with_resolver(mut self, resolver: Arc<dyn SecretResolver>) -> Self {
        self.resolver = Some(resolver);
        self
    }
}
