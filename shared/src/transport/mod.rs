//! Transports: how calls arrive and how answers leave. All of them use the one dispatch path.

pub mod auth;
pub mod body;
pub mod http;
pub mod lambda;
pub mod server;
