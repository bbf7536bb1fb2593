//! Configuration from the environment (the same names locally, under SAM and on Lambda).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `INTEGRATOR_EXTENSION_SYSTEM_TOKEN_SECRET` | name of a secret holding the token(s) (KMS-encrypted; see `aws::secrets`) | none |
//! | `INTEGRATOR_EXTENSION_SYSTEM_TOKEN` | system token(s) accepted on `POST /function`; several, separated by commas, during a rotation | none: every `POST /function` gets 401 |
//! | `EXTENSION_DIY` | serve the module for `diy` calls | `true` |
//! | `EXTENSION_CONNECTOR_IDS` | serve the module for these `_connectorId`s (comma-separated) | none |
//! | `EXTENSION_TIMEOUT_SECS` | time budget when there is no Lambda deadline | `300` |
//! | `HOST`, `PORT` | local server address | `127.0.0.1`, `8080` |

use crate::dispatch::{ConfigError, Extension, Module};
use crate::transport::auth::TokenSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

pub const TOKEN_VAR: &str = "INTEGRATOR_EXTENSION_SYSTEM_TOKEN";
/// Name of a secret (see [`crate::aws::secrets`]) holding the system token(s); preferred over
/// the plain variable on AWS.
pub const TOKEN_SECRET_VAR: &str = "INTEGRATOR_EXTENSION_SYSTEM_TOKEN_SECRET";
pub const DEFAULT_PORT: u16 = 8080;

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Build the extension from one module and the environment.
pub fn extension_from_env(module: Module) -> Result<Extension, ConfigError> {
    let diy = var("EXTENSION_DIY")
        .is_none_or(|v| !matches!(v.to_ascii_lowercase().as_str(), "false" | "0" | "no"));
    let module = std::sync::Arc::new(module);
    let mut b = Extension::builder();
    if diy {
        b = b.diy((*module).clone());
    }
    for id in var("EXTENSION_CONNECTOR_IDS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        b = b.connector(id, module.clone());
    }
    if let Some(t) = var("EXTENSION_TIMEOUT_SECS")
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|t| *t > 0.0)
    {
        b = b.timeout(Duration::from_secs_f64(t));
    }
    b.build()
}

/// The system tokens from `INTEGRATOR_EXTENSION_SYSTEM_TOKEN`.
pub fn tokens_from_env() -> TokenSet {
    let raw = var(TOKEN_VAR).unwrap_or_default();
    for t in raw.split(|c: char| c == ',' || c.is_whitespace()) {
        crate::telemetry::redact(t);
    }
    TokenSet::parse(&raw)
}

/// The system tokens: from the secret named by `INTEGRATOR_EXTENSION_SYSTEM_TOKEN_SECRET` when
/// set (decrypted with KMS; a rotation takes effect at the next cold start), else from
/// `INTEGRATOR_EXTENSION_SYSTEM_TOKEN`.
pub async fn system_tokens(
    store: &crate::aws::secrets::SecretStore,
) -> Result<TokenSet, crate::aws::secrets::SecretError> {
    use secrecy::ExposeSecret;
    match var(TOKEN_SECRET_VAR) {
        Some(name) => {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            let value = store.get(&name, Some(deadline)).await?;
            Ok(TokenSet::parse(value.expose_secret()))
        }
        None => Ok(tokens_from_env()),
    }
}

/// The local server address from `HOST`/`PORT`.
pub fn listen_addr() -> SocketAddr {
    let host = var("HOST")
        .and_then(|h| h.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let port = var("PORT")
        .and_then(|p| p.parse().ok())
        .unwrap_or(DEFAULT_PORT);
    SocketAddr::new(host, port)
}

/// Are we inside a Lambda execution environment (or `cargo lambda watch`)?
pub fn on_lambda() -> bool {
    var("AWS_LAMBDA_RUNTIME_API").is_some()
}
