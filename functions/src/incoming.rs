//! **Incoming webhooks**: `POST /incoming/{endpoint}` on the `incoming` Lambda's Function URL
//! and on the local `serve` binary.
//!
//! External systems post JSON events; each endpoint authenticates them (none, JWT or Standard
//! Webhooks HMAC), drops duplicates and queues the flattened event for processing (see
//! [`integrator_lambda::incoming`] for the whole behaviour and the configuration format).
//!
//! The endpoints come from `EXTENSION_INCOMING_CONFIG` (a JSON file) or
//! `EXTENSION_INCOMING_ENDPOINTS` (JSON text); without either, [`default_endpoints`] applies:
//! one endpoint, `demo`, with no authentication and dedup on the whole body, whose events the
//! in-process queue hands to the webhook function `logEvent` ([`crate::webhooks`]), so that
//! locally
//!
//! ```sh
//! curl -i -XPOST localhost:8080/incoming/demo -H 'content-type: application/json' -d '{"a":1}'
//! # 200 {"status":"accepted","id":"local-<pid>-1","dedupKey":"…"}
//! curl -i -XPOST localhost:8080/incoming/demo -H 'content-type: application/json' -d '{"a":1}'
//! # 204 (a duplicate)
//! ```
//!
//! The deployed stack (template.yaml) sets `EXTENSION_INCOMING_ENDPOINTS` from its
//! `IncomingEndpoints` parameter, `{}` (no endpoints) by default, so a fresh deployment does
//! not expose an unauthenticated endpoint.

use integrator_lambda::incoming::{DedupConfig, EndpointConfig, IncomingConfig};

/// The endpoints served when the environment configures none: `demo` (no authentication,
/// dedup on the whole body; each accepted event runs the webhook function `logEvent`).
pub fn default_endpoints() -> IncomingConfig {
    IncomingConfig::default().with(
        "demo",
        EndpointConfig::open()
            .with_dedup(DedupConfig::whole_body())
            .with_function("logEvent"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use integrator_lambda::incoming::{AuthConfig, IncomingApp, IncomingStores};

    #[test]
    fn demo_is_open_and_deduplicates_whole_bodies() {
        let c = default_endpoints();
        assert_eq!(c.endpoints.keys().collect::<Vec<_>>(), ["demo"]);
        let demo = &c.endpoints["demo"];
        assert!(matches!(demo.auth, AuthConfig::None));
        assert_eq!(demo.dedup, Some(DedupConfig::whole_body()));
        c.validate().unwrap();
        let app = IncomingApp::new(c, IncomingStores::in_memory()).unwrap();
        assert_eq!(app.endpoint_names(), ["demo"]);
    }
}
