//! Building the [`IncomingApp`] from its configuration (endpoints compiled, inline and file
//! secrets read), its settings, and its mount on the router.

use super::auth::Auth;
use super::{
    DEFAULT_LEASE, DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_SECRET_REREAD, DEFAULT_SECRET_TTL,
    DEFAULT_TIMEOUT, Endpoint, IncomingApp, IncomingConfig, IncomingConfigError, IncomingStores,
    PATH_PREFIX, is_secret_header,
};
use crate::transport::http::HttpRequest;
use bytes::Bytes;
use http::{HeaderName, Response};
use std::collections::BTreeMap;
use std::time::Duration;

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
            let auth = Auth::compile(ep.auth, resolver.is_some()).map_err(err)?;
            let dedup_config = ep.dedup.or_else(|| auth.default_dedup());
            let mut endpoint_dedup = (*dedup).clone();
            if let Some(t) = dedup_config.as_ref().and_then(|d| d.ttl_secs) {
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
                    dedup_config,
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
            http: crate::outgoing::HttpClient::shared_default(),
            jwks_refetch: super::auth::jwks::DEFAULT_JWKS_REFETCH,
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

    /// The outgoing client that fetches `jwksUrl` key sets (default: the process's shared
    /// client, as `inv.http()` uses).
    pub fn with_http(mut self, client: crate::outgoing::HttpClient) -> Self {
        self.http = client;
        self
    }

    /// The shortest time between two fetches of one endpoint's key set (`jwksUrl`) when a
    /// token names an unknown `kid` (default 30 s).
    pub fn with_jwks_refetch(mut self, interval: Duration) -> Self {
        self.jwks_refetch = interval;
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
