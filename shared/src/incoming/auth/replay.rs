//! Replay records: a signed message (or a single-use token's `jti`) is claimed in the dedup
//! store for as long as it would verify, and refused the second time.

use super::{AuthFailure, JwtConfig};
use crate::incoming::answers::{unauthorized, unavailable};
use crate::incoming::{Endpoint, IncomingApp};
use crate::store::dedup::{Claim, Dedup, DedupKey};
use bytes::Bytes;
use http::Response;
use serde_json::{Map, Value};
use std::time::{Duration, Instant};

/// The identity of a verified signed message, claimed so that the same message is accepted once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The record's namespace within the endpoint (`hmac-replay`, `stripe-replay`, …).
    pub kind: &'static str,
    /// What the signature covers that a sender's retry changes (its timestamp and signature).
    pub id: String,
    /// How long the message would still verify: its tolerance window, both directions.
    pub window: Duration,
}

impl Replay {
    /// A message signed at a timestamp checked within `tolerance` (both directions).
    pub fn within(kind: &'static str, id: String, tolerance: Duration) -> Self {
        Self {
            kind,
            id,
            window: tolerance
                .saturating_mul(2)
                .saturating_add(Duration::from_secs(1)),
        }
    }
}

/// The replay record (HMAC: the signed message; JWT `jtiReplay`: the token's `jti`) claimed
/// by a request still being accepted. It is held for the whole replay window, so a replay is
/// refused whatever happens next; a request that ends up not accepted releases it
/// ([`ReplayClaim::release`]), so the sender's identical retry is not refused for it.
pub(crate) struct ReplayClaim {
    dedup: Dedup,
    key: DedupKey,
    token: String,
}

impl ReplayClaim {
    /// The request was not accepted: free the record (only this request's own claim).
    pub(crate) async fn release(self, deadline: Instant, endpoint: &str) {
        let work = self.dedup.release(&self.key, &self.token);
        let failed = match tokio::time::timeout_at(deadline.into(), work).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        tracing::error!(
            endpoint = %endpoint, error = %failed,
            "incoming: could not release the replay record of a request that was not accepted; its identical retry is refused until the window ends"
        );
    }
}

/// Whole seconds from `now` until a token's `exp` (the replay record must live that long).
/// `exp` may be fractional (`Date.now() / 1000 + 3600`): rounded up, since the JWT check
/// rounds it to the nearest second; absent, negative or not a number: 0.
pub(crate) fn replay_secs_left(exp: Option<&Value>, now: u64) -> u64 {
    let exp = match exp {
        Some(Value::Number(n)) => match n.as_u64() {
            Some(u) => u,
            // Saturating: a finite float beyond u64 becomes u64::MAX, NaN cannot come from JSON.
            None => n
                .as_f64()
                .filter(|f| *f > 0.0)
                .map_or(0, |f| f.ceil() as u64),
        },
        _ => 0,
    };
    exp.saturating_sub(now)
}
impl IncomingApp {
    /// A valid signature is good for its whole tolerance window, so the exact signed message
    /// is claimed in the dedup store for that window and refused the second time (a sender's
    /// retry is signed anew).
    pub(crate) async fn refuse_replay(
        &self,
        ep: &Endpoint,
        replay: Replay,
    ) -> Result<ReplayClaim, Response<Bytes>> {
        let key = DedupKey::from_caller(&format!("{}\u{1e}{}", ep.scope, replay.kind), &replay.id);
        self.first_use(ep, key, replay.window, AuthFailure::Replayed)
            .await
    }

    /// `jtiReplay`: a token's `jti` is accepted once, and remembered until the token expires
    /// (plus the leeway), after which the token itself is refused anyway.
    pub(crate) async fn refuse_reused_token(
        &self,
        ep: &Endpoint,
        config: &JwtConfig,
        claims: &Map<String, Value>,
    ) -> Result<ReplayClaim, Response<Bytes>> {
        let Some(jti) = claims.get("jti").and_then(Value::as_str) else {
            return Err(unauthorized(&ep.auth, AuthFailure::MissingClaim("jti")));
        };
        let now = crate::time::EpochSeconds::now().0;
        let left = replay_secs_left(claims.get("exp"), now);
        let window = Duration::from_secs(left.saturating_add(config.leeway_secs).max(1));
        let key = DedupKey::from_caller(&format!("{}\u{1e}jwt-jti", ep.scope), jti);
        self.first_use(ep, key, window, AuthFailure::TokenReused)
            .await
    }

    /// Claim `key` for `window` (the claim is never confirmed: it stays held, and refusing,
    /// until the window ends, unless the request is not accepted and releases it). A key
    /// already held, by a request accepted before or one still running, is refused with
    /// `failure`.
    async fn first_use(
        &self,
        ep: &Endpoint,
        key: DedupKey,
        window: Duration,
        failure: AuthFailure,
    ) -> Result<ReplayClaim, Response<Bytes>> {
        let seen = Dedup::with_ttl(ep.dedup.store.clone(), window);
        match seen.claim(&key, window).await {
            Ok(Claim::Claimed(token)) => Ok(ReplayClaim {
                dedup: seen,
                key,
                token,
            }),
            Ok(Claim::Duplicate | Claim::InFlight) => {
                tracing::warn!(endpoint = %ep.name, reason = failure.message().as_ref(), "incoming: replay refused");
                Err(unauthorized(&ep.auth, failure))
            }
            Err(e) => {
                tracing::warn!(endpoint = %ep.name, error = %e, "incoming: replay store failed");
                Err(unavailable("dedup store unavailable"))
            }
        }
    }
}
