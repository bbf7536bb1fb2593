//! Every integration test of this package except the soak, in one test binary (one link of the
//! AWS SDK tree instead of one per file). Each file is a module: run one file's tests with
//! `cargo test --workspace --test integration <file>::`, one test with its full name.

mod cache;
mod concurrency;
mod conformance_http;
mod conformance_lambda;
mod dedup;
mod dedup_delivery;
mod enrich_records;
mod faults;
mod hostile_lambda;
mod hostile_memory;
mod hostile_server;
mod idempotency;
mod incoming;
mod integrator_api;
mod jobs;
mod lambda_functions;
mod lost_replies;
mod lost_replies_runs;
mod metrics;
mod rie_events;
mod runbook;
mod secrets;
mod secrets_redaction;
mod server_behaviour;
mod traces;
mod validation;
mod webhooks;
mod worker;
mod xray;
