//! Building the [`IncomingApp`] from its configuration (endpoints compiled, inline and file
//! secrets read), its settings, and its mount on the router.

use super::jwt::JwtVerifier;
use super::{
    Auth, AuthConfig, DEFAULT_LEASE, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SECRET_REREAD,
    DEFAULT_SECRET_TTL, DEFAULT_TIMEOUT, Endpoint, IncomingApp, IncomingConfig,
    IncomingConfigError, IncomingStores, JwtAlgorithm, Key, PATH_PREFIX, SecretValue,
    is_secret_header, signature,
};
use crate::transport::http::HttpRequest;
use bytes::Bytes;
use http::{HeaderName, Response};
use secrecy::ExposeSecret;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

fn compile_key<K>(
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

impl IncomingApp {
    /// Compile `config` (inline and file secrets are read and checked now; named ones need a
    /// resolver in `stores` and are looked up on first use).
    pub fn new(
        config: IncomingConfig,
        stores: IncomingStores,
    ) -> Result<Self, IncomingConfigError> {
        config.validate()?;
        let IncomingStores {
            dedup,
            queue,
            resolver,
        } = stores;
        let mut endpoints = BTreeMap::new();
        for (name, ep) in config.endpoints {
            let err = |m: String| IncomingConfigError::new(format!("endpoint \"{name}\": {m}"));
            let needs_resolver =
                |v: &SecretValue| matches!(v, SecretValue::Named(_)) && resolver.is_none();
            let auth = match ep.auth {
                AuthConfig::None => Auth::None,
                AuthConfig::Jwt(j) => {
                    let v = match (j.algorithm, &j.secret, &j.public_key) {
                        (JwtAlgorithm::HS256, Some(s), _) | (JwtAlgorithm::RS256, _, Some(s)) => {
                            s.clone()
                        }
                        _ => return Err(err("the JWT key is missing".into())),
                    };
                    if needs_resolver(&v) {
                        return Err(err(format!(
                            "{v:?} needs a SecretResolver, and none is configured"
                        )));
                    }
                    let key = compile_key(&v, |m| JwtVerifier::new(&j, m)).map_err(err)?;
                    Auth::Jwt {
                        config: Box::new(j),
                        key,
                    }
                }
                AuthConfig::Hmac(h) => {
                    if needs_resolver(&h.secret) {
                        return Err(err(format!(
                            "{:?} needs a SecretResolver, and none is configured",
                            h.secret
                        )));
                    }
                    Auth::Hmac {
                        tolerance: Duration::from_secs(h.tolerance_secs),
                        key: compile_key(&h.secret, signature::key_from_secret).map_err(err)?,
                    }
                }
            };
            let mut endpoint_dedup = (*dedup).clone();
            if let Some(t) = ep.dedup.as_ref().and_then(|d| d.ttl_secs) {
                endpoint_dedup.ttl = Duration::from_secs(t);
            }
            let forward = ep
                .forward_headers
                .iter()
                .filter_map(|h| HeaderName::from_bytes(h.as_bytes()).ok())
                .filter(|h| !is_secret_header(h.as_str()))
                .collect();
            endpoints.insert(
                name.clone(),
                Endpoint {
                    scope: format!("incoming/{name}"),
                    name,
                    auth,
                    dedup_config: ep.dedup,
                    dedup: endpoint_dedup,
                    forward,
                    function: ep.function,
                },
            );
        }
        Ok(Self {
            endpoints,
            queue,
            resolver,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            secret_ttl: DEFAULT_SECRET_TTL,
            secret_reread: DEFAULT_SECRET_REREAD,
            lease: DEFAULT_LEASE,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Largest queued message (default [`DEFAULT_MAX_MESSAGE_BYTES`]; SQS accepts up to 1 MiB
    /// when the queue's `MaximumMessageSize` allows it).
    pub fn with_max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// How long a claimed dedup key stays pending while its event is being queued (default
    /// [`DEFAULT_LEASE`]): a sender's retry within it is answered 503, after it (the first
    /// attempt died) the key is free again. Kept above the request's time budget.
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// The time budget of a request without a platform deadline (default
    /// [`DEFAULT_TIMEOUT`]; on a Function URL, the Lambda deadline).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long a resolved named secret is reused (default [`DEFAULT_SECRET_TTL`]).
    pub fn with_secret_ttl(mut self, ttl: Duration) -> Self {
        self.secret_ttl = ttl;
        self
    }

    /// The shortest time between two re-reads of an endpoint's named secret after a
    /// signature or token matched no key (default [`DEFAULT_SECRET_REREAD`]).
    pub fn with_secret_reread(mut self, interval: Duration) -> Self {
        self.secret_reread = interval;
        self
    }

    /// The configured endpoint names, sorted.
    pub fn endpoint_names(&self) -> Vec<&str> {
        self.endpoints.keys().map(String::as_str).collect()
    }
}

#[async_trait::async_trait]
impl crate::transport::http::Mount for IncomingApp {
    fn prefix(&self) -> &str {
        PATH_PREFIX
    }
    async fn handle(&self, name: &str, req: HttpRequest) -> Response<Bytes> {
        IncomingApp::handle(self, name, req).await
    }
}
