//! Transports: how calls arrive and how answers leave. All of them use the one dispatch path.

pub mod body;
pub mod http;
pub mod lambda;
pub mod server;
pub mod system_token;
