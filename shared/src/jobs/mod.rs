//! Work that is not a direct call from integrator.io: deferred invocations ([`deferred`]),
//! rate limits ([`limits`]) and long runs split into streams ([`runs`]). All of it travels
//! through the work queue (SQS) to the queue worker ([`crate::worker`]) and keeps its state in
//! the extension table (DynamoDB; the adapters are in [`crate::aws`]), with in-memory twins for
//! local runs and unit tests.
//!
//! Time comes from a [`Clock`](crate::time::Clock), so tests can move it
//! ([`ManualClock`](crate::time::ManualClock)).

#[doc(hidden)]
pub mod deferred;
pub mod limits;
pub mod runs;
#[doc(hidden)]
pub mod window;
