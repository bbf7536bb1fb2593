//! The wire model of integrator.io's extension protocol. No I/O here.

pub mod envelope;
pub mod error;
pub mod json;
pub mod options;
pub mod record;
pub mod scan;
pub mod text;
pub mod types;

pub use envelope::{Envelope, ResponseLimit, namespace_for_type, truthy};
pub use error::{KeyOrder, WireError};
pub use options::Options;
pub use record::Record;
pub use text::JsonText;
