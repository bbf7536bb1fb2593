//! # integrator-lambda
//!
//! Host integrator.io extension functions (hooks, wrappers, integration-app functions) on AWS
//! Lambda, byte-compatible with Celigo's Node `integrator-extension` framework on both of
//! integrator.io's stacks:
//!
//! - **Lambda stack**: direct Invoke, envelope in the client context ([`transport::lambda`]);
//! - **server stack**: `POST /function` with the system token, on a Function URL or the local
//!   server ([`transport::http`], [`transport::server`]).
//!
//! A function binary is a few lines:
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
//!     integrator_lambda::run(m)
//! }
//! ```
//!
//! # Layout
//!
//! Each module uses only the ones listed before it (a test in `make test` checks this):
//!
//! | module | role |
//! |---|---|
//! | [`time`], [`telemetry`], [`metrics`], [`memory`] | epoch times and clocks; logs and redaction; CloudWatch EMF metrics; the allocator's setting for large pages |
//! | [`protocol`] | the wire model, no I/O: envelope, error objects, typed options and results |
//! | `codec` | canonical JSON (JavaScript's number format), hex, key hashes, ids |
//! | [`store`], [`jobs`], [`outgoing`] | dedup, idempotency, secrets, queues, cache; deferred jobs, rate limits, runs: logic, traits, in-memory twins; the outgoing HTTP client and its transport seam |
//! | [`dispatch`] | modules, registration, one call: validate → resolve → run isolated → check |
//! | `utilities` | the built-in job and run functions |
//! | [`transport`] | Lambda runtime, HTTP routes, local server, token rules |
//! | [`worker`], [`incoming`] | SQS batches; webhooks (mounted on the transports) |
//! | [`aws`] | the DynamoDB, KMS and SQS adapters: the only place the AWS SDK is named |
//! | [`app`] | settings from the environment, wiring, the two entry points |

pub mod app;
pub mod aws;
mod codec;
pub mod dispatch;
pub mod incoming;
pub mod jobs;
pub mod memory;
pub mod metrics;
pub mod outgoing;
pub mod protocol;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod transport;
mod utilities;
pub mod worker;

/// The global allocator with feature `mimalloc` (off by default): JSON pages are many small
/// allocations, and glibc's malloc/free took about a third of a call's CPU time under load
/// (perf); mimalloc gave about +25% requests/s but about 1.6× the peak RSS (`make bench`).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// What a function author needs, in one place. The modules above are the building blocks for
// embedding (the integration tests and benchmarks use them); `codec` and `utilities` are
// internal.
pub use app::{App, run, serve};
pub use dispatch::{
    ExtError, ExtResult, Extension, Invocation, Module, Registration, Reply, Services, Stack,
    invalid_settings,
};
pub use outgoing::{Http, HttpError};
pub use protocol::types;
pub use protocol::{Options, Record};
pub use secrecy::{ExposeSecret, SecretString};
pub use store::cache::{Cache, CacheError};
pub use store::dedup::{Dedup, DedupKey, KeyFields, MemoryDedup, Sighting, check_page};
pub use store::idempotency::{Idempotency, IdempotencyKey, MemoryIdempotency};
pub use store::secrets::SecretStore;
pub use utilities::utilities;
