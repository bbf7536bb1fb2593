//! **Webhook functions**: run by the queue worker for each event an incoming endpoint
//! (`POST /incoming/{endpoint}`, see [`crate::incoming`]) accepted, when the endpoint's
//! configuration names the function: `{"orders": {"auth": …, "dedup": …, "function":
//! "recordOrder"}}`.
//!
//! A webhook function gets [`WebhookOptions`]: `endpoint`, `event` (the body flattened to
//! dotted keys), `headers` (the endpoint's forwarded headers, never credentials), `dedupKey`
//! (the same on every copy of one event), `auth` (how the sender authenticated), `receivedAt`
//! and `requestId`. It returns nothing: the sender was answered when the event was queued. An
//! error (or a panic, or a timeout) leaves the message for redelivery; after the queue's
//! redrive count it goes to the incoming dead-letter queue. Each event with a dedup key runs
//! once, however many copies of it arrive (see `integrator_lambda::worker`), but a crash after
//! the function ran and before its run was recorded runs it again: keep side effects
//! idempotent (key them on `dedupKey`).
//!
//! Register with `m.webhook("name", f)`: the namespace `webhooks` only, so integrator.io's own
//! calls never reach it.

use integrator_lambda::types::WebhookOptions;
use integrator_lambda::{ExtResult, Invocation, Module};

/// The functions of this extension point: `logEvent`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.webhook("logEvent", log_event);
    m
}

/// `logEvent`: log one line per accepted event with its endpoint, dedup key and field names
/// (not the values, which may be personal data). The local `demo` endpoint names it.
pub async fn log_event(_inv: Invocation, o: WebhookOptions) -> ExtResult<()> {
    let fields: Vec<&str> = o.event.keys().map(String::as_str).collect();
    tracing::info!(
        endpoint = %o.endpoint,
        dedup_key = o.dedup_key.as_deref().unwrap_or(""),
        fields = fields.len(),
        names = %fields.join(","),
        "webhook event"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    #[tokio::test]
    async fn logs_and_succeeds() {
        let o: WebhookOptions = serde_json::from_value(json!({
            "endpoint": "demo", "event": {"a": 1}, "headers": {}, "dedupKey": "k"
        }))
        .unwrap();
        log_event(Invocation::for_test("logEvent", Duration::from_secs(1)), o)
            .await
            .unwrap();
    }
}
