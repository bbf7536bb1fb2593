//! The wire model of integrator.io's extension protocol. No I/O here.

#[doc(hidden)]
pub mod envelope;
#[doc(hidden)]
pub mod error;
#[doc(hidden)]
pub mod job;
pub mod json;
pub mod options;
pub mod record;
mod rewrite;
#[doc(hidden)]
pub mod scan;
#[doc(hidden)]
pub mod text;
pub mod types;

#[doc(hidden)]
pub use envelope::{Envelope, ResponseLimit, namespace_for_type, truthy};
#[doc(hidden)]
pub use error::{KeyOrder, WireError};
pub use options::Options;
pub use record::Record;
#[doc(hidden)]
pub use text::JsonText;
