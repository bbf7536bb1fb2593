//! The stores functions and the transports rely on, each as a trait with its logic and an
//! in-memory twin; the AWS adapters that implement the traits are in [`crate::aws`].
//!
//! | store | trait | twin | on AWS |
//! |---|---|---|---|
//! | [`dedup`]: "seen before?" per key, with a TTL | [`DedupStore`](dedup::DedupStore) | [`MemoryDedup`](dedup::MemoryDedup) | DynamoDB |
//! | [`idempotency`]: run once, replay the stored result | [`IdempotencyStore`](idempotency::IdempotencyStore) | [`MemoryIdempotency`](idempotency::MemoryIdempotency) | DynamoDB |
//! | [`secrets`]: encrypted values, cached and redacted | [`SecretStore`](secrets::SecretStore) | [`DevFileSecrets`](secrets::DevFileSecrets) (dev file) | KMS + DynamoDB |
//! | [`cache`]: JSON values with a TTL, for functions | [`CacheStore`](cache::CacheStore) | [`MemoryCache`](cache::MemoryCache) | DynamoDB |
//! | [`queue`]: outgoing messages | [`QueueStore`](queue::QueueStore) | [`MemoryQueue`](queue::MemoryQueue) | SQS |

pub mod cache;
pub mod dedup;
pub mod idempotency;
#[doc(hidden)]
pub mod queue;
pub mod secrets;
