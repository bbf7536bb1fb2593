//! Steps 6–7 of the module docs: claim the dedup key, send the event to the queue, then
//! confirm or release the key.

use super::answers::{in_flight, unavailable};
use super::{Accepted, IncomingApp};
use crate::store::dedup::{Claim, Dedup, DedupKey};
use crate::store::queue::OutMessage;
use crate::transport::http::json_response;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::json;
use std::time::{Duration, Instant};

/// Time kept back from the send for the bookkeeping write that follows it (confirm or release).
const BOOKKEEPING: Duration = Duration::from_secs(2);

impl IncomingApp {
    /// Steps 6–7: dedup first (a duplicate must never reach the queue), then send; a failed
    /// send releases the key so the sender's retry is accepted.
    pub(super) async fn enqueue(
        &self,
        accepted: Accepted<'_>,
        deadline: Instant,
    ) -> Response<Bytes> {
        let Accepted {
            endpoint: ep,
            message,
            key,
            request_id,
        } = accepted;
        let send_by = deadline
            .checked_sub(BOOKKEEPING)
            .filter(|d| *d > Instant::now())
            .unwrap_or(deadline);
        let claim = match &key {
            None => None,
            Some(k) => match within(send_by, ep.dedup.claim(k, self.lease)).await {
                Ok(Claim::Claimed(token)) => Some((k, token)),
                Ok(Claim::Duplicate) => {
                    tracing::info!(endpoint = %ep.name, dedup_key = %k.as_str(), request_id = %request_id, "incoming: duplicate");
                    let mut r = Response::new(Bytes::new());
                    *r.status_mut() = StatusCode::NO_CONTENT;
                    return r;
                }
                Ok(Claim::InFlight) => {
                    tracing::info!(endpoint = %ep.name, dedup_key = %k.as_str(), request_id = %request_id, "incoming: the same event is being queued by another request");
                    return in_flight(self.lease);
                }
                Err(e) => {
                    tracing::warn!(endpoint = %ep.name, error = %e, "incoming: dedup store failed");
                    return unavailable("dedup store unavailable");
                }
            },
        };
        let send = self.queue.send(OutMessage {
            body: message,
            ..OutMessage::default()
        });
        match within(send_by, send).await {
            Ok(id) => {
                if let Some((k, token)) = &claim {
                    confirm(&ep.dedup, k, token, deadline, &ep.name).await;
                }
                tracing::info!(endpoint = %ep.name, message_id = %id, request_id = %request_id, dedup = key.is_some(), "incoming: accepted");
                let answer = json!({
                    "status": "accepted",
                    "id": id,
                    "dedupKey": key.as_ref().map(DedupKey::as_str),
                });
                json_response(StatusCode::OK, answer.to_string())
            }
            Err(e) => {
                tracing::warn!(endpoint = %ep.name, error = %e, request_id = %request_id, "incoming: queue send failed");
                if let Some((k, token)) = &claim {
                    release(&ep.dedup, k, token, deadline, &ep.name).await;
                }
                unavailable("queue unavailable")
            }
        }
    }
}

/// `work`, given up at `deadline` (a stalled store or queue must not hold the request).
async fn within<T, E: std::fmt::Display>(
    deadline: Instant,
    work: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout_at(deadline.into(), work).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("timed out".into()),
    }
}

/// The event is queued: mark its key as done (a few attempts within the deadline). If that
/// fails, the key stays pending until its lease ends, and a retry after that queues the event
/// again (the consumer sees the same `dedupKey`).
async fn confirm(dedup: &Dedup, key: &DedupKey, token: &str, deadline: Instant, endpoint: &str) {
    let mut last = String::new();
    for _ in 0..3 {
        match within(deadline, dedup.confirm(key, token)).await {
            Ok(()) => return,
            Err(e) => last = e,
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    tracing::error!(
        endpoint = %endpoint, dedup_key = %key.as_str(), error = %last,
        "incoming: event queued, but its dedup key could not be confirmed; a retry after the lease may queue it again"
    );
}

/// The event could not be queued: free its key at once, so the sender's retry is accepted. If
/// that fails too, the retry is accepted once the lease ends.
async fn release(dedup: &Dedup, key: &DedupKey, token: &str, deadline: Instant, endpoint: &str) {
    if let Err(e) = within(deadline, dedup.release(key, token)).await {
        tracing::error!(
            endpoint = %endpoint, dedup_key = %key.as_str(), error = %e,
            "incoming: could not release the dedup key; a retry is accepted once its lease ends"
        );
    }
}
