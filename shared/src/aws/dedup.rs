//! Dedup keys: "have we seen this before?" for records, webhook events and pages.
//!
//! A key is the SHA-256 of up to five selected fields (or a caller-supplied key). The first
//! sighting is [`Sighting::New`], later ones [`Sighting::Duplicate`]; every sighting pushes the
//! expiry to `ttl` after *now*, so a key lives 7 days (by default) after its **last** sighting.

use async_trait::async_trait;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Default lifetime of a key after its last sighting.
pub const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// At most this many fields make up a key.
pub const MAX_KEY_FIELDS: usize = 5;

/// A dedup key: lowercase hex SHA-256, namespaced by a scope (endpoint, flow, import…).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DedupKey(String);

impl DedupKey {
    /// Hash `scope` and the selected `values` (JSON text of each, in order; absent = null).
    pub fn from_values(scope: &str, values: &[Option<&Value>]) -> Self {
        let mut h = Sha256::new();
        h.update(scope.as_bytes());
        for v in values {
            h.update([0x1f]);
            match v {
                Some(v) => h.update(crate::protocol::json::to_vec(v).unwrap_or_default()),
                None => h.update(b"null"),
            }
        }
        Self(hex(&h.finalize()))
    }

    /// A caller-supplied key (e.g. a dedup header), hashed with the scope so it is never stored
    /// in clear and cannot collide across scopes.
    pub fn from_caller(scope: &str, key: &str) -> Self {
        let mut h = Sha256::new();
        h.update(scope.as_bytes());
        h.update([0x1e]);
        h.update(key.as_bytes());
        Self(hex(&h.finalize()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    New,
    Duplicate,
}

/// A store failure (never the key's inputs, which may be personal data).
#[derive(Debug, thiserror::Error)]
#[error("dedup store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where dedup keys live.
#[async_trait]
pub trait DedupStore: Send + Sync + 'static {
    /// Record a sighting of `key` and say whether it is the first one still alive. Exactly one
    /// store write; concurrent checks of a new key yield exactly one `New`.
    async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError>;
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The dedup service handed to functions (`inv.service::<Dedup>()`): a store plus the TTL.
#[derive(Clone)]
pub struct Dedup {
    pub store: std::sync::Arc<dyn DedupStore>,
    pub ttl: Duration,
}

impl Dedup {
    pub fn new(store: std::sync::Arc<dyn DedupStore>) -> Self {
        Self { store, ttl: DEFAULT_TTL }
    }
    pub async fn check(&self, key: &DedupKey) -> Result<Sighting, StoreError> {
        self.store.check(key, self.ttl).await
    }
}

/// In-memory twin for local runs and unit tests (one process only).
#[derive(Debug, Default)]
pub struct MemoryDedup {
    /// key → expiry (epoch seconds)
    keys: Mutex<HashMap<String, u64>>,
}

#[async_trait]
impl DedupStore for MemoryDedup {
    async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
        let now = now_secs();
        let mut keys = self.keys.lock().map_err(|_| StoreError("in-memory store poisoned".into()))?;
        let previous = keys.insert(key.0.clone(), now + ttl.as_secs());
        Ok(match previous {
            Some(exp) if exp > now => Sighting::Duplicate,
            _ => Sighting::New,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn first_is_new_then_duplicate() {
        let s = MemoryDedup::default();
        let k = DedupKey::from_values("ep", &[Some(&json!({"a": 1}))]);
        assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::New);
        assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::Duplicate);
        let other_scope = DedupKey::from_values("other", &[Some(&json!({"a": 1}))]);
        assert_ne!(k, other_scope);
        assert_eq!(k.as_str().len(), 64);
    }
}
