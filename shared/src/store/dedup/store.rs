//! The [`DedupStore`] trait and what it answers: [`Sighting`], [`Claim`], [`StoreError`].

use async_trait::async_trait;
use std::time::Duration;

use super::DedupKey;

/// Result of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sighting {
    /// Not seen within the TTL.
    New,
    /// Seen before within the TTL.
    Duplicate,
}

impl Sighting {
    /// Whether this is the first sighting.
    pub fn is_new(self) -> bool {
        self == Sighting::New
    }
}

/// A store failure (never the key's inputs, which may be personal data).
#[derive(Debug, Clone, thiserror::Error)]
#[error("dedup store unavailable: {0}")]
pub struct StoreError(pub String);

/// Where dedup keys live.
#[async_trait]
pub trait DedupStore: Send + Sync + 'static {
    /// Record a sighting of `key` and say whether it is the first one still alive. One store write
    /// for a new key (a duplicate may cost a second, to refresh its expiry); concurrent checks
    /// of a new key yield exactly one `New`, and a retried write that meets its own earlier
    /// attempt still answers `New`.
    async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError>;

    /// [`check`](Self::check) whose write carries `token` (new for the check, the same in
    /// every attempt), so that [`undo_check`](Self::undo_check) can take back this check's own
    /// write when the check is cut off before its answer. The default ignores the token.
    async fn check_as(
        &self,
        key: &DedupKey,
        ttl: Duration,
        token: &str,
    ) -> Result<Sighting, StoreError> {
        let _ = token;
        self.check(key, ttl).await
    }

    /// A [`check_as`](Self::check_as) with `token` was cut off before it answered (its time ran
    /// out): if its write was applied, remove it, so the key is not left marked by a check
    /// whose page failed. Only the item `token` wrote is removed. The default does nothing
    /// (stores whose checks are applied whole or not at all within one poll).
    async fn undo_check(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        let _ = (key, token);
        Ok(())
    }

    /// Make `key` count as new again (e.g. when the work it guarded failed, so the sender's
    /// retry is not taken for a duplicate). One write. The default records a zero-TTL sighting,
    /// which leaves the key expired.
    async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
        self.check(key, Duration::ZERO).await.map(|_| ())
    }

    /// Claim `key` for `lease` before the work it guards (two-state keys: *pending* while the
    /// work runs, *done* once [`confirm`](Self::confirm)ed). [`Claim::Claimed`] when nobody
    /// holds it (new, expired, or an earlier claim whose lease ran out: its holder died);
    /// [`Claim::Duplicate`] when it was confirmed within its TTL; [`Claim::InFlight`] while
    /// another claim holds it. One conditional write; concurrent claims of a free key yield
    /// exactly one `Claimed`. A duplicate's expiry moves to `ttl` from now, as with any
    /// sighting. The default (stores without leases) is a plain [`check`](Self::check).
    async fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
        ttl: Duration,
    ) -> Result<Claim, StoreError> {
        let _ = ttl;
        Ok(match self.check(key, lease).await? {
            Sighting::New => Claim::Claimed(String::new()),
            Sighting::Duplicate => Claim::Duplicate,
        })
    }

    /// The work guarded by the claim `token` is done: keep `key` as seen for `ttl`. A holder
    /// whose lease ran out and was taken over confirms nothing.
    async fn confirm(&self, key: &DedupKey, token: &str, ttl: Duration) -> Result<(), StoreError> {
        let _ = token;
        self.check(key, ttl).await.map(|_| ())
    }

    /// The work guarded by the claim `token` failed: free `key` at once, so a retry is new.
    /// Only the holder's own claim is removed.
    async fn release(&self, key: &DedupKey, token: &str) -> Result<(), StoreError> {
        let _ = token;
        self.forget(key).await
    }
}

/// The answer to [`DedupStore::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub enum Claim {
    /// Ours until the lease ends: do the work, then confirm (or release) with this token.
    Claimed(String),
    /// Done before, within the TTL.
    Duplicate,
    /// Another claim holds it; try again after its lease.
    InFlight,
}

/// Whether an item expiring at `expires_at` (epoch seconds) still counts at `now`: an item
/// is expired from its `expires_at` second on, so a zero-TTL sighting leaves a key already
/// expired (what [`DedupStore::forget`]'s default relies on).
pub(crate) fn alive(expires_at: u64, now: u64) -> bool {
    expires_at > now
}
