//! Verification keys: known at start-up, or named secrets resolved through the
//! [`SecretResolver`](crate::incoming::SecretResolver), cached, and read again (at most once per
//! interval per endpoint) when a presented signature or token matches none of them.

use crate::incoming::answers::unavailable;
use crate::incoming::config::SecretValue;
use crate::incoming::{IncomingApp, ResolveError};
use crate::transport::http::error_response as error;
use bytes::Bytes;
use http::{Response, StatusCode};
use secrecy::ExposeSecret;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A `SecretValue` that can be used right away (inline or file), or the name to resolve.
enum Material {
    Now(secrecy::SecretString),
    Later(String),
}

fn material(v: &SecretValue) -> Result<Material, String> {
    let now = match v {
        SecretValue::Inline(s) => s.clone(),
        SecretValue::File(p) => std::fs::read_to_string(p)
            .map(secrecy::SecretString::from)
            .map_err(|e| format!("cannot read {}: {e}", p.display()))?,
        // Resolved through the secret store, which registers what it fetches.
        SecretValue::Named(n) => return Ok(Material::Later(n.clone())),
    };
    // Inline and file secrets never reach a log either (as read, and without the file's
    // trailing newline).
    crate::telemetry::redact(now.expose_secret());
    crate::telemetry::redact(now.expose_secret().trim());
    Ok(Material::Now(now))
}

pub(crate) fn compile_key<K>(
    v: &SecretValue,
    compile: impl Fn(&str) -> Result<K, String>,
) -> Result<Key<K>, String> {
    Ok(match material(v)? {
        Material::Now(s) => Key::Ready(Arc::new(compile(s.expose_secret())?)),
        Material::Later(name) => Key::Named {
            name,
            cache: Mutex::new(None),
            reread: tokio::sync::Mutex::new(None),
        },
    })
}

/// A verification key: known at start-up, or resolved by name and cached.
pub(crate) enum Key<K> {
    Ready(Arc<K>),
    Named {
        name: String,
        cache: Mutex<Option<(Arc<K>, Instant)>>,
        /// Re-reads after a mismatch ([`IncomingApp::reread`]): one at a time, and when the
        /// last one started.
        reread: tokio::sync::Mutex<Option<Instant>>,
    },
}

impl IncomingApp {
    /// The key to verify with: ready, cached, or resolved now (then cached for the TTL).
    pub(crate) async fn key<K>(
        &self,
        key: &Key<K>,
        compile: impl Fn(&str) -> Result<K, String>,
    ) -> Result<Arc<K>, Response<Bytes>> {
        let (name, cache) = match key {
            Key::Ready(k) => return Ok(k.clone()),
            Key::Named { name, cache, .. } => (name, cache),
        };
        if let Ok(c) = cache.lock()
            && let Some((k, at)) = c.as_ref()
            && at.elapsed() < self.secret_ttl
        {
            return Ok(k.clone());
        }
        self.load(name, cache, compile, false).await
    }

    /// Resolve `name` (`fresh`: past every cache, the secret store's included), compile it and
    /// cache the key. A secret that is gone or unusable also empties the cache, so a removed
    /// secret stops working.
    async fn load<K>(
        &self,
        name: &str,
        cache: &Mutex<Option<(Arc<K>, Instant)>>,
        compile: impl Fn(&str) -> Result<K, String>,
        fresh: bool,
    ) -> Result<Arc<K>, Response<Bytes>> {
        let Some(resolver) = &self.resolver else {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "misconfigured",
                "This endpoint's secret cannot be resolved.",
            ));
        };
        let resolved = if fresh {
            resolver.refresh(name).await
        } else {
            resolver.resolve(name).await
        };
        let forget = || {
            if let Ok(mut c) = cache.lock() {
                *c = None;
            }
        };
        let value = match resolved {
            Ok(v) => v,
            Err(ResolveError::Unavailable(e)) => {
                tracing::warn!(secret = %name, error = %e, "incoming: secret store unavailable");
                return Err(unavailable("secret store unavailable"));
            }
            Err(e @ (ResolveError::NotFound(_) | ResolveError::Unusable(_))) => {
                forget();
                tracing::error!(error = %e, "incoming: endpoint secret missing");
                return Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "misconfigured",
                    "This endpoint's secret is not configured.",
                ));
            }
        };
        match compile(value.expose_secret()) {
            Ok(k) => {
                let k = Arc::new(k);
                if let Ok(mut c) = cache.lock() {
                    *c = Some((k.clone(), Instant::now()));
                }
                Ok(k)
            }
            Err(e) => {
                forget();
                tracing::error!(secret = %name, error = %e, "incoming: endpoint secret is unusable");
                Err(error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "misconfigured",
                    "This endpoint's secret is not usable.",
                ))
            }
        }
    }

    /// A presented signature or token matched none of the keys in `used`: when the key is a
    /// named secret, the key to try again — another request's re-read that finished while this
    /// one waited, or this one's own re-read from the store (a rotation: the new secret works
    /// at once, and the old one stops with it). At most one re-read per
    /// `DEFAULT_SECRET_REREAD` per endpoint, one at a time: a flood of bad signatures costs
    /// the store one read per interval. `None`: nothing new to try.
    pub(crate) async fn reread<K>(
        &self,
        key: &Key<K>,
        used: &Arc<K>,
        compile: impl Fn(&str) -> Result<K, String>,
    ) -> Result<Option<Arc<K>>, Response<Bytes>> {
        let Key::Named {
            name,
            cache,
            reread,
        } = key
        else {
            return Ok(None);
        };
        let mut last = reread.lock().await;
        let current = cache
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(k, _)| k.clone()));
        if let Some(k) = current
            && !Arc::ptr_eq(&k, used)
        {
            return Ok(Some(k));
        }
        if last.is_some_and(|at| at.elapsed() < self.secret_reread) {
            return Ok(None);
        }
        *last = Some(Instant::now());
        tracing::info!(secret = %name, "incoming: no key matched; reading the endpoint's secret again");
        self.load(name, cache, compile, true).await.map(Some)
    }
}
