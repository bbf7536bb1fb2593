//! The [`SecretStore`] trait: where secrets are kept.

use async_trait::async_trait;

#[cfg(doc)]
use super::Secrets;
use super::{SecretError, SecretString};

/// Where secrets are kept.
#[async_trait]
pub trait SecretStore: Send + Sync + 'static {
    /// The current value of `name`. One attempt: retries are the caller's business
    /// ([`Secrets`] does them).
    async fn fetch(&self, name: &str) -> Result<SecretString, SecretError>;
    /// Store (or replace) `name`.
    async fn store(&self, name: &str, value: &SecretString) -> Result<(), SecretError>;
    /// Where values go, for messages (`kms key …, table …`). Never a value.
    fn describe(&self) -> String {
        "custom backend".into()
    }
}
