//! Test support: the conformance reference module, a Lambda Runtime API double, a byte-exact
//! HTTP client and helpers that start the real binaries.

pub mod aws;
pub mod counting_proxy;
pub mod http_client;
pub mod process;
pub mod reference;
pub mod rie;
pub mod runtime_api;

/// The repository root (for `events/` and `tests/fixtures/`).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Into::into)
        .unwrap_or_default()
}
