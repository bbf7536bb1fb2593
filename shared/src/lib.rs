//! # integrator-lambda
//!
//! Write integrator.io extension functions (hooks, wrappers, integration-app functions) in Rust
//! and host them on AWS Lambda, byte-compatible with Celigo's Node `integrator-extension`
//! framework on both of integrator.io's stacks (direct Lambda Invoke, and `POST /function` on
//! a Function URL or the local server).
//!
//! This page is a five-minute tour for a function author. Everything it names is public and
//! documented; the rest of the crate (transports, queue worker, AWS adapters) is internal and
//! hidden from these docs.
//!
//! ## A function
//!
//! A function is an `async fn` that takes the call's [`Invocation`] and the typed options of
//! its extension point, and returns an [`ExtResult`]. A [`Module`] registers it under the name
//! integrator.io calls it by; [`start`] serves the module:
//!
//! ```no_run
//! use integrator_lambda::types::{PreMapOptions, RecordResult};
//! use integrator_lambda::{ExtResult, Invocation, Module};
//!
//! async fn keep_all(_inv: Invocation, o: PreMapOptions) -> ExtResult<Vec<RecordResult>> {
//!     Ok(o.data.into_iter().map(RecordResult::keep).collect())
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let mut m = Module::new();
//!     m.pre_map("keepAll", keep_all);
//!     integrator_lambda::start(m)
//! }
//! ```
//!
//! That `main` is the whole binary: on Lambda it answers direct invokes, Function URL requests
//! and queue batches; anywhere else it starts the local HTTP server. Everything else comes
//! from the environment (the table in [`app::settings`]). For more than one module (connector
//! modules by `_connectorId`), build an [`Extension`] and pass it to [`App::extension`];
//! [`App`] also adds webhook endpoints ([`App::incoming`]) and long runs
//! ([`App::integrations`]).
//!
//! ## Typed options and results
//!
//! [`types`] models each extension point's options and answer (`PreMapOptions` →
//! `Vec<RecordResult>`, `ImportOptions` → `Vec<SubmitResponse>`, `PingOptions` → `PingResult`,
//! …); the [`Module`] method of the same name (`pre_map`, `import`, `ping`, …) registers a
//! function of that kind. Fields integrator.io sends that the types do not model are kept in
//! each struct's `extra` map and sent back unchanged. A [`Record`] is one record, passed
//! through byte for byte when the function does not change it; [`Options`] is the raw options
//! object, for functions registered with [`Module::raw`].
//!
//! A registration can declare checks that run before the function
//! ([`Registration::ensure_setting`], [`Registration::ensure_record`], [`Registration::check`]):
//! a call or a record that fails one is answered without calling the function.
//!
//! ## Errors
//!
//! Return an [`ExtError`] (a message and an optional code) and integrator.io shows
//! `{"message", "code"}` with status 422; [`invalid_settings`] builds the usual one for bad
//! settings. The errors of the services below convert into `ExtError` with their own codes, so
//! `?` works on them. A panic, or an answer after the deadline ([`Invocation::deadline`]),
//! becomes a 422 too, never a dead process. Per-record errors are not `ExtError`s: they go in
//! the result ([`types::RecordError`], [`types::RecordResult::fail`]).
//!
//! ## Calling other systems: `inv.http()`
//!
//! [`Invocation::http`] is an HTTP client bound to the call: requests end by its deadline,
//! carry its trace id, are retried with back-off where that is safe (connect errors and 429
//! always, 5xx and timeouts for idempotent requests), and are logged with query values
//! redacted ([`outgoing`]; failures are [`HttpError`]).
//!
//! ## Calling back into integrator.io: `inv.integrator()`
//!
//! [`Invocation::integrator`] is a typed client of integrator.io's REST API on the call's
//! one-time `bearerToken` (exports, imports, flows, state, connections, integrations, jobs,
//! and [`Integrator::request`] for the rest), built on `inv.http()` with a per-process rate
//! limiter; its failures are [`IntegratorError`]s with `integrator_*` codes, and a call without
//! a token fails `integrator_token_missing` having sent nothing ([`outgoing::integrator`]).
//!
//! ## Secrets
//!
//! [`Invocation::secret`] reads a named secret as a [`SecretString`] (cached for a few
//! minutes, and registered so that its value is redacted from every log line). Store one with
//! `make secret NAME=…` (value on stdin): KMS-encrypted in the extension table on AWS, in the
//! git-ignored `secrets.dev.json` locally ([`store::secrets`]).
//!
//! ```no_run
//! use integrator_lambda::{ExposeSecret, ExtResult, Invocation};
//! use serde_json::Value;
//!
//! async fn customer(inv: &Invocation, id: &str) -> ExtResult<Value> {
//!     let key = inv.secret("crm-api-key").await?;
//!     let url = format!("https://crm.example.com/api/customers/{id}");
//!     let response = inv.http().get(&url).header("x-api-key", key.expose_secret()).send().await?;
//!     Ok(response.error_for_status()?.json()?)
//! }
//! ```
//!
//! ## Dedup, idempotency, cache
//!
//! Three stores, on DynamoDB when deployed and in memory locally:
//!
//! - [`Invocation::dedup`]: "seen before?" per key, remembered for days ([`Dedup`];
//!   [`check_page`] and [`store::dedup::seen_before`] check a whole page at once);
//! - [`Invocation::idempotency`]: run a piece of work once per key and replay its stored result
//!   to retries ([`Idempotency::once`]);
//! - [`Invocation::cache`]: JSON values with a time to live ([`Cache::get_or_compute`]).
//!
//! ```no_run
//! use integrator_lambda::{ExtResult, Invocation};
//! use serde_json::Value;
//! use std::time::Duration;
//!
//! async fn rates(inv: &Invocation) -> ExtResult<Value> {
//!     let cache = inv.cache()?;
//!     let http = inv.http();
//!     cache
//!         .get_or_compute("rates", Duration::from_secs(300), || async move {
//!             Ok(http.get_json::<Value>("https://rates.example.com/today").await?)
//!         })
//!         .await
//! }
//! ```
//!
//! A deployment without a store answers the call that asks for it with a clear 422
//! (`dedup_unavailable`, …).
//!
//! ## Webhooks and long runs
//!
//! [`App::incoming`] serves `POST /incoming/{endpoint}` for external systems: each endpoint
//! authenticates (JWT or HMAC), drops duplicates and queues the event, optionally for a
//! webhook function (`Module::webhook`) ([`incoming`]). [`App::integrations`] runs long
//! integration jobs as resumable streams ([`jobs::runs`]).
//!
//! ## Run it locally
//!
//! - `make serve`: every example function on `127.0.0.1:8080` (the `POST /function` route of
//!   the server stack, the webhook endpoints and an in-process work queue);
//! - `make call FN=name PAYLOAD=options.json`: one call in process, with its log lines and
//!   answer;
//! - `make new-function POINT=preMap NAME=myHook`: a new function with its registration,
//!   fixture and test.
//!
//! ## Test it
//!
//! A function is a plain `async fn`: call it in a `#[tokio::test]` with
//! [`Invocation::for_test`], and give it the stores it uses through [`Services`] with the
//! in-memory ones ([`MemoryDedup`], [`MemoryIdempotency`], [`Cache::in_memory`]):
//!
//! ```no_run
//! use integrator_lambda::{Dedup, Invocation, MemoryDedup, Services};
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! let dedup = Dedup::new(Arc::new(MemoryDedup::default()));
//! let inv = Invocation::for_test("upsertRecords", Duration::from_secs(5))
//!     .with_services(Services::new().with_dedup(Arc::new(dedup)));
//! ```
//!
//! Calls that reach other systems are tested against recorded fixtures (`make fixture`,
//! replayed by the `functions` crate's fixture test).
//!
//! ## Further reading
//!
//! The repository's `docs/` folder has one page per reader: `writing-functions.md` (everything
//! above, in more depth), `integrator-api.md`, `webhooks.md`, `queues-and-schedules.md`,
//! `deploy-and-operate.md` (deploy, alarms, metrics, traces, the configuration table),
//! `RELIABILITY.md` (what each path promises under failures), `performance.md`,
//! `compatibility.md`, `architecture.md` (how a call travels, where each concern lives, the
//! layering rules `shared/tests/layout.rs` checks) and `contributing.md`; `docs/README.md` is
//! the index.
//!
//! Modules and items marked `#[doc(hidden)]` stay `pub` for the integration tests, the
//! benchmarks and the fuzz harness; they are not part of the function author's API.

#![warn(missing_docs)]

pub mod app;
#[doc(hidden)]
pub mod aws;
mod codec;
pub mod custom_metrics;
pub mod dispatch;
pub mod incoming;
pub mod jobs;
#[doc(hidden)]
pub mod log_buffer;
#[doc(hidden)]
pub mod memory;
#[doc(hidden)]
pub mod metrics;
pub mod outgoing;
pub mod protocol;
pub mod store;
#[doc(hidden)]
pub mod telemetry;
pub mod time;
#[doc(hidden)]
pub mod transport;
mod utilities;
#[doc(hidden)]
pub mod worker;
#[doc(hidden)]
pub mod xray;

/// The global allocator with feature `mimalloc` (off by default): against glibc with one arena
/// for every thread, mimalloc gave about +25% requests/s but about 1.6× the peak RSS
/// (`make bench`); see [`memory`] for what glibc does here instead.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `integrator_lambda::server_heap!();` at the top level of a server binary (`serve`,
/// `conformance-server`) makes [`memory::PageHeap`] its global allocator: glibc's `malloc` for
/// small blocks, with an arena per thread, and large ones mapped apart and kept for the next
/// page. Not in the Lambda function binaries: any global allocator of our own adds about
/// 106 KB to each (fat LTO), and a Lambda environment serves one call at a time (one arena,
/// see [`memory`]). Nothing with the `mimalloc` feature, or off glibc.
#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
#[macro_export]
macro_rules! server_heap {
    () => {
        #[global_allocator]
        static SERVER_HEAP: $crate::memory::PageHeap = $crate::memory::PageHeap;
    };
}

/// See the other definition: nothing here (the `mimalloc` feature, or not glibc).
#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc"))))]
#[macro_export]
macro_rules! server_heap {
    () => {};
}

// What a function author needs, in one place. The modules above are the building blocks for
// embedding (the integration tests and benchmarks use them); `codec` and `utilities` are
// internal.
pub use app::{App, serve, start};
pub use dispatch::{
    ExtError, ExtResult, Extension, Invocation, Module, Registration, Reply, Services, Stack,
    invalid_settings,
};
pub use outgoing::integrator::{Integrator, IntegratorError};
pub use outgoing::{Http, HttpError};
pub use protocol::types;
pub use protocol::{Options, Record};
pub use secrecy::{ExposeSecret, SecretString};
pub use store::cache::{Cache, CacheError};
pub use store::dedup::{Dedup, DedupKey, KeyFields, MemoryDedup, Sighting, check_page};
pub use store::idempotency::{Idempotency, IdempotencyKey, MemoryIdempotency};
pub use store::secrets::Secrets;
pub use utilities::utilities;
