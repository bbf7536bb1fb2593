//! The wire model of integrator.io's extension protocol. No I/O here.

pub mod envelope;
pub mod error;
pub mod json;
pub mod types;

pub use envelope::{Envelope, ResponseLimit, namespace_for_type, truthy};
pub use error::{KeyOrder, WireError};
