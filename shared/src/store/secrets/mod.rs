//! Secrets: values encrypted with KMS, stored in the extension table, decrypted on first use
//! and cached for a few minutes.
//!
//! # Storage
//!
//! On AWS ([`KmsSecrets`](crate::aws::secrets::KmsSecrets)), one DynamoDB item per secret in
//! the extension table:
//!
//! | attribute | type | value |
//! |---|---|---|
//! | `pk` | S | `secret#<name>` |
//! | `ciphertext` | B | the KMS `Encrypt` output |
//! | `key_id` | S | the ARN of the key that encrypted it |
//! | `updated_at` | N | epoch seconds of the last `set-secret` |
//!
//! Every `Encrypt`/`Decrypt` carries the encryption context
//! `{"app": "integrator-lambda", "stack": <stack name>, "secret": <name>}`, so a ciphertext only
//! decrypts for the stack and name it was stored under: copying an item to another stack or
//! another name, or altering it, gives [`SecretError::WrongContext`].
//!
//! Secrets are written with the `set-secret` binary (`echo -n VALUE | set-secret NAME`), which
//! offers no way to read one back.
//!
//! # Use from a function
//!
//! ```no_run
//! use integrator_lambda::{ExposeSecret, ExtResult, Invocation};
//!
//! async fn call_api(inv: Invocation) -> ExtResult<()> {
//!     let token = inv.secret("crm-api-token").await?;
//!     // or: inv.secrets()?.get("crm-api-token", Some(inv.deadline())).await?
//!     let _header = format!("Bearer {}", token.expose_secret());
//!     Ok(())
//! }
//! ```
//!
//! Every value [`Secrets::get`] loads is registered with [`crate::telemetry::redact`], so it
//! is replaced by `[REDACTED]` if it ever reaches the logs.
//!
//! # Configuration
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EXTENSION_SECRET_TTL_SECS` | how long a decrypted value is cached | `300` |
//! | `EXTENSION_DEV_SECRETS_FILE` | the plaintext file of the embedded (dev-only) backend | `secrets.dev.json` |
//!
//! plus `EXTENSION_TABLE`, `EXTENSION_KMS_KEY_ID` and `EXTENSION_STACK_NAME` (see
//! [`crate::app::settings`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub use secrecy::{ExposeSecret, SecretString};

mod dev_file;
mod error;
mod retry;
mod store;
#[cfg(test)]
mod tests;
mod validate;

#[doc(hidden)]
pub use dev_file::DevFileSecrets;
pub use error::SecretError;
#[doc(hidden)]
pub use retry::{RetryPolicy, with_retries};
pub use store::SecretStore;
#[doc(hidden)]
pub use validate::{validate_name, validate_value, value_from_input};

/// The `app` entry of every encryption context.
#[doc(hidden)]
pub const CONTEXT_APP: &str = "integrator-lambda";
/// Prefix of a secret's partition key.
#[doc(hidden)]
pub const PK_PREFIX: &str = "secret#";
/// How long a decrypted value is cached when `EXTENSION_SECRET_TTL_SECS` is not set.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// The setting overriding [`DEFAULT_TTL`].
pub const TTL_VAR: &str = "EXTENSION_SECRET_TTL_SECS";
/// The setting naming the local (embedded) backend's plaintext secrets file.
pub const DEV_FILE_VAR: &str = "EXTENSION_DEV_SECRETS_FILE";
/// The local backend's file when [`DEV_FILE_VAR`] is not set.
pub const DEFAULT_DEV_FILE: &str = "secrets.dev.json";
/// KMS `Encrypt` takes at most 4096 bytes of plaintext.
pub const MAX_VALUE_LEN: usize = 4096;
/// Longest secret name, in bytes.
pub const MAX_NAME_LEN: usize = 128;

struct Cached {
    value: SecretString,
    loaded: Instant,
}

/// The secrets service handed to functions (`inv.secrets()?`): values are
/// fetched from the backend (KMS + DynamoDB, or the dev file) on first use, kept in memory as
/// [`SecretString`] for the TTL, and registered for log redaction.
///
/// Concurrent `get`s of the same name share one backend fetch.
pub struct Secrets {
    backend: Arc<dyn SecretStore>,
    ttl: Duration,
    retry: RetryPolicy,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("backend", &self.backend.describe())
            .field("ttl", &self.ttl)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// A store over `backend` with the default TTL and retry policy.
    pub fn new(backend: Arc<dyn SecretStore>) -> Self {
        Self {
            backend,
            ttl: DEFAULT_TTL,
            retry: RetryPolicy::default(),
            slots: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    /// Cache values for `ttl` (`Duration::ZERO`: fetch on every `get`).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    #[doc(hidden)]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// How long a decrypted value is cached (zero: not cached).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Where values come from (`kms key …, table …` or `dev file …`).
    #[doc(hidden)]
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Backend fetches so far (attempts included), for tests and metrics.
    #[doc(hidden)]
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The value of `name`: from the cache while fresh, else fetched (transient failures
    /// retried with exponential backoff, never past `deadline`). Pass the invocation's
    /// deadline: `store.get("name", Some(inv.deadline()))`.
    pub async fn get(
        &self,
        name: &str,
        deadline: Option<Instant>,
    ) -> Result<SecretString, SecretError> {
        validate_name(name)?;
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .clone();
        let mut cached = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), slot.lock())
                .await
                .map_err(|_| {
                    SecretError::unavailable(
                        name,
                        "the deadline passed while another call was loading it",
                        true,
                    )
                })?,
            None => slot.lock().await,
        };
        if let Some(c) = cached.as_ref()
            && c.loaded.elapsed() < self.ttl
        {
            return Ok(c.value.clone());
        }
        let value = with_retries(name, deadline, self.retry, || {
            self.fetches.fetch_add(1, Ordering::Relaxed);
            self.backend.fetch(name)
        })
        .await?;
        crate::telemetry::redact(value.expose_secret());
        *cached = Some(Cached {
            value: value.clone(),
            loaded: Instant::now(),
        });
        Ok(value)
    }

    /// Forget the cached value of `name` (the next `get` fetches it).
    pub fn invalidate(&self, name: &str) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}
