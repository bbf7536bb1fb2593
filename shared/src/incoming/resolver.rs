//! Where named endpoint secrets (`{"secret": "<name>"}`) come from.
//!
//! [`IncomingApp`](super::IncomingApp) takes an optional `Arc<dyn SecretResolver>`. The
//! encrypted [`Secrets`](crate::store::secrets::Secrets) implements it (KMS on AWS, the
//! dev file locally) and is what the runner plugs in; tests use [`StaticResolver`]
//! or [`resolver_fn`]. The endpoint keeps the key built from a
//! resolved value (e.g. a parsed RSA public key) for
//! [`IncomingApp::with_secret_ttl`](super::IncomingApp::with_secret_ttl) (5 minutes by
//! default), so the store is not read on every request. When a signature or token matches no
//! key, the endpoint reads its secret again with [`SecretResolver::refresh`] (past every
//! cache), at most once every few seconds
//! ([`IncomingApp::with_secret_reread`](super::IncomingApp::with_secret_reread)): a rotated
//! secret works at once, and the old one stops working with that re-read (at the latest when
//! the TTL ends).

use async_trait::async_trait;
use secrecy::SecretString;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// Why a named secret could not be resolved.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ResolveError {
    /// No such secret: a configuration mistake (the request gets a 500).
    #[error("secret {0:?} does not exist")]
    NotFound(String),
    /// The store could not be reached (the request gets a retryable 503).
    #[error("secret store unavailable: {0}")]
    Unavailable(String),
    /// The secret exists but cannot be used here (access denied, corrupt…): a configuration
    /// problem retrying will not fix (the request gets a 500).
    #[error("secret unusable: {0}")]
    Unusable(String),
}

/// Looks up a secret by name.
#[async_trait]
pub trait SecretResolver: Send + Sync + 'static {
    async fn resolve(&self, name: &str) -> Result<SecretString, ResolveError>;

    /// The current value of `name`, past any cache the resolver keeps (the secret may have
    /// been rotated). The default resolves again.
    async fn refresh(&self, name: &str) -> Result<SecretString, ResolveError> {
        self.resolve(name).await
    }
}

/// A fixed set of secrets (tests, local runs).
#[derive(Clone, Default)]
pub struct StaticResolver(HashMap<String, SecretString>);

impl StaticResolver {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.0.insert(name.into(), SecretString::from(value.into()));
        self
    }
}

impl std::fmt::Debug for StaticResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StaticResolver({} secrets)", self.0.len())
    }
}

#[async_trait]
impl SecretResolver for StaticResolver {
    async fn resolve(&self, name: &str) -> Result<SecretString, ResolveError> {
        self.0
            .get(name)
            .cloned()
            .ok_or_else(|| ResolveError::NotFound(name.to_owned()))
    }
}

struct FnResolver<F>(F);

#[async_trait]
impl<F, Fut> SecretResolver for FnResolver<F>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SecretString, ResolveError>> + Send + 'static,
{
    async fn resolve(&self, name: &str) -> Result<SecretString, ResolveError> {
        (self.0)(name.to_owned()).await
    }
}

/// A resolver from an async closure: `resolver_fn(move |name| { let s = store.clone(); async
/// move { … } })`.
pub fn resolver_fn<F, Fut>(f: F) -> Arc<dyn SecretResolver>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<SecretString, ResolveError>> + Send + 'static,
{
    Arc::new(FnResolver(f))
}

/// Endpoint secrets by name from the [`Secrets`](crate::store::secrets::Secrets) (KMS on
/// AWS, the dev file locally).
#[async_trait]
impl SecretResolver for crate::store::secrets::Secrets {
    async fn resolve(&self, name: &str) -> Result<SecretString, ResolveError> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        match self.get(name, Some(deadline)).await {
            Ok(v) => Ok(v),
            Err(crate::store::secrets::SecretError::NotFound { .. }) => {
                Err(ResolveError::NotFound(name.to_owned()))
            }
            Err(e) if e.is_transient() => Err(ResolveError::Unavailable(e.to_string())),
            Err(e) => Err(ResolveError::Unusable(e.to_string())),
        }
    }

    /// The store's cached value is dropped first, so the value is read from the backend.
    async fn refresh(&self, name: &str) -> Result<SecretString, ResolveError> {
        self.invalidate(name);
        self.resolve(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[tokio::test]
    async fn static_and_closure_resolvers() {
        let s = StaticResolver::new().with("a", "1");
        assert_eq!(s.resolve("a").await.unwrap().expose_secret(), "1");
        assert_eq!(
            s.resolve("b").await.unwrap_err(),
            ResolveError::NotFound("b".into())
        );
        let f = resolver_fn(|name: String| async move {
            if name == "up" {
                Ok(SecretString::from("v"))
            } else {
                Err(ResolveError::Unavailable("down".into()))
            }
        });
        assert_eq!(f.resolve("up").await.unwrap().expose_secret(), "v");
        assert!(matches!(
            f.resolve("x").await,
            Err(ResolveError::Unavailable(_))
        ));
    }
}
