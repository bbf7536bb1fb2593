//! The services a deployment hands to every function, typed: a function asks its
//! [`Invocation`](super::Invocation) for one (`inv.dedup()?`, `inv.secrets()?`…) and gets it, or a
//! clear 422 naming what this deployment lacks.

use super::ExtError;
use crate::jobs::deferred::Scheduler;
use crate::jobs::limits::RateLimiter;
use crate::jobs::runs::Runs;
use crate::outgoing::HttpClient;
use crate::outgoing::integrator::{IntegratorApi, IntegratorError};
use crate::store::cache::Cache;
use crate::store::dedup::Dedup;
use crate::store::idempotency::Idempotency;
use crate::store::queue::QueueStore;
use crate::store::secrets::Secrets;
use std::sync::Arc;

/// What a deployment provides to its functions. The startup module fills it from the
/// environment; unit tests set only what the function under test uses.
#[derive(Clone, Default)]
pub struct Services {
    pub(crate) secrets: Option<Arc<Secrets>>,
    pub(crate) dedup: Option<Arc<Dedup>>,
    pub(crate) idempotency: Option<Arc<Idempotency>>,
    pub(crate) incoming_queue: Option<Arc<dyn QueueStore>>,
    pub(crate) scheduler: Option<Arc<Scheduler>>,
    pub(crate) limiter: Option<Arc<RateLimiter>>,
    pub(crate) runs: Option<Arc<Runs>>,
    pub(crate) cache: Option<Arc<Cache>>,
    pub(crate) http: Option<HttpClient>,
    pub(crate) integrator: Option<IntegratorApi>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services")
            .field("secrets", &self.secrets.is_some())
            .field("dedup", &self.dedup.is_some())
            .field("idempotency", &self.idempotency.is_some())
            .field("incoming_queue", &self.incoming_queue.is_some())
            .field("scheduler", &self.scheduler.is_some())
            .field("limiter", &self.limiter.is_some())
            .field("runs", &self.runs.is_some())
            .field("cache", &self.cache.is_some())
            .field("http", &self.http.is_some())
            .field(
                "integrator",
                &self.integrator.as_ref().map(IntegratorApi::base_url),
            )
            .finish()
    }
}

impl From<crate::store::secrets::SecretError> for ExtError {
    fn from(e: crate::store::secrets::SecretError) -> Self {
        ExtError::with_code(e.code(), e.to_string())
    }
}

impl From<crate::store::cache::CacheError> for ExtError {
    fn from(e: crate::store::cache::CacheError) -> Self {
        ExtError::with_code(e.code(), e.to_string())
    }
}

impl From<crate::outgoing::HttpError> for ExtError {
    fn from(e: crate::outgoing::HttpError) -> Self {
        ExtError::with_code(e.code(), e.to_string())
    }
}

impl From<IntegratorError> for ExtError {
    fn from(e: IntegratorError) -> Self {
        ExtError::with_code(e.code(), e.to_string())
    }
}

fn unavailable(code: &str, message: &str) -> ExtError {
    ExtError::with_code(code, message)
}

impl Services {
    /// No services: every accessor answers "unavailable" (add the ones a test needs).
    pub fn new() -> Self {
        Self::default()
    }
    /// The secret store functions read with `inv.secret(name)`.
    pub fn with_secrets(mut self, s: Arc<Secrets>) -> Self {
        self.secrets = Some(s);
        self
    }
    /// The dedup store behind `inv.dedup()`.
    pub fn with_dedup(mut self, s: Arc<Dedup>) -> Self {
        self.dedup = Some(s);
        self
    }
    /// The idempotency store behind `inv.idempotency()`.
    pub fn with_idempotency(mut self, s: Arc<Idempotency>) -> Self {
        self.idempotency = Some(s);
        self
    }
    /// The queue accepted webhook events go to.
    #[doc(hidden)]
    pub fn with_incoming_queue(mut self, q: Arc<dyn QueueStore>) -> Self {
        self.incoming_queue = Some(q);
        self
    }
    #[doc(hidden)]
    pub fn with_scheduler(mut self, s: Arc<Scheduler>) -> Self {
        self.scheduler = Some(s);
        self
    }
    #[doc(hidden)]
    pub fn with_limiter(mut self, s: Arc<RateLimiter>) -> Self {
        self.limiter = Some(s);
        self
    }
    #[doc(hidden)]
    pub fn with_runs(mut self, s: Arc<Runs>) -> Self {
        self.runs = Some(s);
        self
    }
    /// The cache behind `inv.cache()`.
    pub fn with_cache(mut self, c: Arc<Cache>) -> Self {
        self.cache = Some(c);
        self
    }
    /// The outgoing HTTP client (a replaying one in fixture tests); without one, functions get
    /// the process's real client.
    #[doc(hidden)]
    pub fn with_http(mut self, c: HttpClient) -> Self {
        self.http = Some(c);
        self
    }

    /// Where `inv.integrator()` calls integrator.io (`INTEGRATOR_API_URL`), with the process's
    /// rate-limit bucket.
    pub fn with_integrator(mut self, api: IntegratorApi) -> Self {
        self.integrator = Some(api);
        self
    }
    /// The integrator.io API of this deployment: the configured one, else the process's
    /// default (North America).
    #[doc(hidden)]
    pub fn integrator_api(&self) -> IntegratorApi {
        self.integrator
            .clone()
            .unwrap_or_else(IntegratorApi::shared_default)
    }

    /// The secret store (KMS on AWS, the dev file locally).
    pub fn secrets(&self) -> Result<Arc<Secrets>, ExtError> {
        self.secrets.clone().ok_or_else(|| {
            unavailable(
                "secret_store_missing",
                "this deployment has no secret store",
            )
        })
    }
    /// The dedup store ("seen before?" per key, with a TTL).
    pub fn dedup(&self) -> Result<Arc<Dedup>, ExtError> {
        self.dedup.clone().ok_or_else(|| {
            unavailable(
                "dedup_unavailable",
                "this deployment provides no dedup store",
            )
        })
    }
    /// The idempotency store (run once, replay the stored result).
    pub fn idempotency(&self) -> Result<Arc<Idempotency>, ExtError> {
        self.idempotency.clone().ok_or_else(|| {
            unavailable(
                "idempotency_unavailable",
                "this deployment provides no idempotency store",
            )
        })
    }
    /// The incoming queue (where accepted webhook events go).
    #[doc(hidden)]
    pub fn incoming_queue(&self) -> Result<Arc<dyn QueueStore>, ExtError> {
        self.incoming_queue.clone().ok_or_else(|| {
            unavailable(
                "queue_unavailable",
                "this deployment has no incoming queue (EXTENSION_QUEUE_URL)",
            )
        })
    }
    /// Deferred invocations.
    #[doc(hidden)]
    pub fn scheduler(&self) -> Result<Arc<Scheduler>, ExtError> {
        self.scheduler.clone().ok_or_else(|| {
            unavailable(
                "scheduler_unavailable",
                "deferred invocations need a work queue (EXTENSION_WORK_QUEUE_URL)",
            )
        })
    }
    /// Rate limits of queued invocations.
    #[doc(hidden)]
    pub fn limiter(&self) -> Result<Arc<RateLimiter>, ExtError> {
        self.limiter.clone().ok_or_else(|| {
            unavailable(
                "limiter_unavailable",
                "this deployment provides no rate limiter",
            )
        })
    }
    /// The cache (DynamoDB on AWS, in memory locally).
    pub fn cache(&self) -> Result<Arc<Cache>, ExtError> {
        self.cache
            .clone()
            .ok_or_else(|| unavailable("cache_unavailable", "this deployment provides no cache"))
    }
    /// The outgoing HTTP client: the configured one, else the process's real one.
    #[doc(hidden)]
    pub fn http_client(&self) -> HttpClient {
        self.http.clone().unwrap_or_else(HttpClient::shared_default)
    }
    /// Runs and streams.
    #[doc(hidden)]
    pub fn runs(&self) -> Result<Arc<Runs>, ExtError> {
        self.runs.clone().ok_or_else(|| {
            unavailable(
                "runs_unavailable",
                "runs need integrations and a work queue (EXTENSION_WORK_QUEUE_URL)",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dedup::MemoryDedup;

    #[test]
    fn a_missing_service_is_a_named_error() {
        let s = Services::new();
        assert_eq!(
            s.dedup().unwrap_err().code.as_deref(),
            Some("dedup_unavailable")
        );
        assert_eq!(
            s.scheduler().unwrap_err().code.as_deref(),
            Some("scheduler_unavailable")
        );
        assert_eq!(
            s.runs().unwrap_err().code.as_deref(),
            Some("runs_unavailable")
        );
        let s = s.with_dedup(Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))));
        assert!(s.dedup().is_ok());
    }

    #[tokio::test]
    async fn work_without_a_call_token_uses_the_stack_token_secret() {
        use crate::outgoing::integrator::double::IntegratorDouble;
        use crate::store::secrets::DevFileSecrets;
        let double = IntegratorDouble::start(0, Some("stack-token-5150"))
            .await
            .unwrap();
        let file = std::env::temp_dir().join(format!("stack-token-{}.json", std::process::id()));
        std::fs::write(&file, r#"{"integrator-api-token": "stack-token-5150"}"#).unwrap();
        let services = Services::new()
            .with_integrator(IntegratorApi::new(&double.url()))
            .with_secrets(Arc::new(Secrets::new(Arc::new(DevFileSecrets::new(&file)))));
        let inv = crate::Invocation::for_test("job", std::time::Duration::from_secs(5))
            .with_services(services);
        // No call token: the call's client sends nothing.
        let e = inv.integrator().token_info().await.unwrap_err();
        assert_eq!(e.code(), "integrator_token_missing");
        assert!(double.received().is_empty());
        let api = inv.integrator_with_stack_token().await.unwrap();
        api.token_info().await.unwrap();
        assert!(double.received()[0].token_ok);
        let _ = std::fs::remove_file(&file);
        // Without the secret: a clear error naming it.
        let inv = crate::Invocation::for_test("job", std::time::Duration::from_secs(5))
            .with_services(
                Services::new()
                    .with_secrets(Arc::new(Secrets::new(Arc::new(DevFileSecrets::new(&file))))),
            );
        let e = inv.integrator_with_stack_token().await.unwrap_err();
        assert!(e.message.contains("integrator-api-token"), "{e}");
    }
}
