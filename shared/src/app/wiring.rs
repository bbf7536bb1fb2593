//! Wiring: the backend the settings select → the stores (AWS adapters or in-memory twins) →
//! the services handed to functions, the incoming endpoints and the system tokens. No network
//! call happens here: the SDK clients connect on first use.

use super::settings::{Backend, Settings, TOKEN_VAR};
use crate::aws;
use crate::dispatch::Services;
use crate::incoming::{IncomingApp, IncomingConfig, IncomingStores};
use crate::jobs::deferred::{JobStore, MemoryJobs, Scheduler};
use crate::jobs::limits::{CounterStore, MemoryCounters, RateLimiter};
use crate::jobs::runs::{Integrations, MemoryRuns, RunStore, Runs};
use crate::store::cache::{Cache, CacheStore, MemoryCache};
use crate::store::dedup::{Dedup, DedupStore, MemoryDedup};
use crate::store::idempotency::{Idempotency, IdempotencyStore, MemoryIdempotency};
use crate::store::queue::{MemoryQueue, QueueStore};
use crate::store::secrets::{DevFileSecrets, SecretError, SecretStore, Secrets};
use crate::time::{Clock, SystemClock};
use crate::transport::system_token::{SystemTokens, TokenSet, TokenSource};
use crate::worker::local::MemoryWorkQueue;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one process runs on.
pub(crate) struct Wired {
    pub services: Services,
    /// Memory backend: the in-process work queue, started once the extension is built.
    pub local_queue: Option<Arc<MemoryWorkQueue>>,
}

/// The secret backend `settings` select: KMS + DynamoDB, or the dev-only plaintext file.
pub(crate) async fn secret_backend(settings: &Settings) -> Arc<dyn SecretStore> {
    match settings.backend {
        Backend::Aws => Arc::new(aws::secrets::KmsSecrets::new(
            aws::sdk_config().await,
            &settings.aws.table,
            &settings.aws.kms_key_id,
            &settings.aws.stack_name,
        )),
        Backend::Memory => {
            let local = DevFileSecrets::new(settings.dev_secrets_file.clone());
            if settings.on_lambda {
                tracing::warn!(file = %local.path().display(), "secrets come from a plaintext dev file on Lambda: use EXTENSION_BACKEND=aws");
            }
            Arc::new(local)
        }
    }
}

/// The stores and engines of `settings`' backend, as services; runs for `integrations` when
/// there is a work queue.
pub(crate) async fn wire(settings: &Settings, integrations: Option<Integrations>) -> Wired {
    let names = &settings.aws;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let local_queue =
        (settings.backend == Backend::Memory).then(|| Arc::new(MemoryWorkQueue::default()));
    let secrets = Secrets::new(secret_backend(settings).await).with_ttl(settings.secret_ttl);

    let cache: Arc<dyn CacheStore>;
    let dedup: Arc<dyn DedupStore>;
    let idempotency: Arc<dyn IdempotencyStore>;
    let jobs: Arc<dyn JobStore>;
    let counters: Arc<dyn CounterStore>;
    let run_store: Arc<dyn RunStore>;
    let incoming_queue: Option<Arc<dyn QueueStore>>;
    let work_queue: Option<Arc<dyn QueueStore>>;
    match settings.backend {
        Backend::Memory => {
            cache = Arc::new(MemoryCache::default());
            dedup = Arc::new(MemoryDedup::default());
            idempotency = Arc::new(MemoryIdempotency::default());
            jobs = Arc::new(MemoryJobs::default());
            counters = Arc::new(MemoryCounters::default());
            run_store = Arc::new(MemoryRuns::default());
            // Accepted webhooks go to the in-process queue too, so the worker code runs the
            // webhook function an endpoint names, as the stack's IncomingQueue mapping does.
            incoming_queue = local_queue
                .clone()
                .map(|q| q as Arc<dyn QueueStore>)
                .or_else(|| Some(Arc::new(MemoryQueue::default())));
            work_queue = local_queue.clone().map(|q| q as Arc<dyn QueueStore>);
        }
        Backend::Aws => {
            let cfg = aws::sdk_config().await;
            let table = aws::Table::new(cfg, &names.table).with_index(&names.table_index);
            cache = Arc::new(aws::cache::DynamoCache::new(table.clone()));
            dedup = Arc::new(aws::dedup::DynamoDedup::new(table.clone()));
            idempotency = Arc::new(aws::idempotency::DynamoIdempotency::new(table.clone()));
            jobs = Arc::new(aws::jobs::DynamoJobs::new(table.clone()));
            counters = Arc::new(aws::limits::DynamoCounters::new(table.clone()));
            run_store = Arc::new(aws::runs::DynamoRuns::new(table));
            let sqs =
                |url: &str| Arc::new(aws::queue::SqsQueue::new(cfg, url)) as Arc<dyn QueueStore>;
            incoming_queue = names.incoming_queue_url.as_deref().map(sqs);
            work_queue = names.work_queue_url.as_deref().map(sqs);
        }
    }

    let scheduler = work_queue
        .clone()
        .map(|q| Arc::new(Scheduler::new(jobs, q, clock.clone())));
    let limiter = Arc::new(RateLimiter::new(
        counters,
        clock.clone(),
        settings.rate_limits.clone(),
    ));
    let runs = match (integrations, &work_queue) {
        (None, _) => None,
        (Some(_), None) => {
            tracing::error!(
                "runs disabled: EXTENSION_WORK_QUEUE_URL is not set, streams would have nowhere to go"
            );
            None
        }
        (Some(integrations), Some(queue)) => Some(Arc::new(
            Runs::new(run_store, queue.clone(), integrations, clock)
                .with_scheduler(scheduler.clone())
                .with_limiter(Some(limiter.clone()))
                .with_retry_delay(settings.stream_retry),
        )),
    };
    let mut services = Services::new()
        .with_secrets(Arc::new(secrets))
        .with_dedup(Arc::new(Dedup::with_ttl(dedup, settings.dedup_ttl)))
        .with_idempotency(Arc::new(Idempotency::with_ttl(
            idempotency,
            settings.idempotency_ttl,
        )))
        .with_limiter(limiter)
        .with_cache(Arc::new(Cache::new(cache)))
        .with_integrator(crate::outgoing::integrator::IntegratorApi::new(
            &settings.integrator_api_url,
        ));
    if let Some(q) = incoming_queue {
        services = services.with_incoming_queue(q);
    }
    if let Some(s) = scheduler {
        services = services.with_scheduler(s);
    }
    if let Some(r) = runs {
        services = services.with_runs(r);
    }
    Wired {
        services,
        local_queue,
    }
}

/// The incoming endpoints (the environment's configuration, else `defaults`) over the
/// services' dedup store, incoming queue and secret store. `None` when they cannot be served
/// and are not `required`.
pub(crate) fn incoming_app(
    settings: &Settings,
    services: &Services,
    defaults: IncomingConfig,
    required: bool,
) -> Result<Option<IncomingApp>, String> {
    let config = settings
        .incoming_config()
        .map_err(|e| e.to_string())?
        .unwrap_or(defaults);
    let Ok(queue) = services.incoming_queue() else {
        let problem = "EXTENSION_QUEUE_URL is not set: accepted events would have nowhere to go";
        if required {
            return Err(problem.into());
        }
        tracing::error!("incoming endpoints disabled: {problem}");
        return Ok(None);
    };
    if settings.backend == Backend::Memory {
        tracing::warn!("incoming: accepted events stay in this process (in-memory queue)");
    }
    let (Ok(dedup), Ok(secrets)) = (services.dedup(), services.secrets()) else {
        return Err("incoming endpoints need the dedup and secret stores".into());
    };
    let stores = IncomingStores::new(dedup, queue).with_resolver(secrets);
    IncomingApp::new(config, stores)
        .map(|app| {
            Some(
                app.with_timeout(settings.incoming_timeout)
                    .with_lease(settings.dedup_lease),
            )
        })
        .map_err(|e| e.to_string())
}

/// The system token secret as a [`TokenSource`]: every load bypasses the secret cache (KMS
/// `Decrypt` + DynamoDB `GetItem` on AWS, the dev file locally), and registers each token for
/// log redaction.
struct SecretTokens {
    store: Arc<Secrets>,
    name: String,
}

#[async_trait::async_trait]
impl TokenSource for SecretTokens {
    async fn load(&self, deadline: Instant) -> Result<TokenSet, String> {
        use secrecy::ExposeSecret;
        self.store.invalidate(&self.name);
        let value = self
            .store
            .get(&self.name, Some(deadline))
            .await
            .map_err(|e| e.to_string())?;
        Ok(TokenSet::parse_redacted(value.expose_secret()))
    }
}

/// The system tokens: from the secret named by `INTEGRATOR_EXTENSION_SYSTEM_TOKEN_SECRET` when
/// set (decrypted with KMS at start-up, then re-read when a presented token matches none or the
/// tokens held are old: a rotation takes effect within seconds, see [`SystemTokens`]), else
/// the fixed `INTEGRATOR_EXTENSION_SYSTEM_TOKEN`.
pub(crate) async fn system_tokens(
    settings: &Settings,
    services: &Services,
) -> Result<SystemTokens, SecretError> {
    use secrecy::ExposeSecret;
    let tokens = match (&settings.token_secret, services.secrets()) {
        (Some(name), Ok(store)) => {
            let deadline = Instant::now() + Duration::from_secs(10);
            let value = store.get(name, Some(deadline)).await?;
            // The store registered the whole value; each token is registered too.
            let initial = TokenSet::parse_redacted(value.expose_secret());
            let source = SecretTokens {
                store,
                name: name.clone(),
            };
            SystemTokens::refreshed(initial, Arc::new(source))
        }
        _ => SystemTokens::fixed(settings.tokens.clone()),
    };
    if tokens.is_empty() {
        tracing::warn!("{TOKEN_VAR} is not set: POST /function will answer 401");
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::dedup::{DedupKey, Sighting};

    #[tokio::test]
    async fn system_tokens_from_a_secret_are_redacted_one_by_one() {
        use crate::store::secrets::{DevFileSecrets, Secrets};
        let dir = std::env::temp_dir().join(format!("wiring-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secrets.json");
        std::fs::write(&file, r#"{"sys":"first-token-Qm7x9, second-token-Zr4k2"}"#).unwrap();
        let settings = Settings::from_lookup(&|k| {
            (k == crate::app::settings::TOKEN_SECRET_VAR).then(|| "sys".to_owned())
        })
        .unwrap();
        let store = Arc::new(Secrets::new(Arc::new(DevFileSecrets::new(&file))));
        let services = Services::new().with_secrets(store);
        let tokens = system_tokens(&settings, &services).await.unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(tokens.accepts("second-token-Zr4k2").await);
        let line = crate::telemetry::redact_text("presented second-token-Zr4k2 alone");
        assert!(!line.contains("second-token-Zr4k2"), "{line}");
        let line = crate::telemetry::redact_text("presented first-token-Qm7x9 alone");
        assert!(!line.contains("first-token-Qm7x9"), "{line}");
    }

    /// The secret store caches values for minutes: a re-read of the token secret bypasses the
    /// cache, so a token written to the secret works at its first use and the one it replaced
    /// stops.
    #[tokio::test]
    async fn a_token_rotated_in_the_secret_works_without_a_restart() {
        use crate::store::secrets::{DevFileSecrets, Secrets};
        let dir = std::env::temp_dir().join(format!("wiring-rotation-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secrets.json");
        std::fs::write(&file, r#"{"sys":"token-before-Hq2"}"#).unwrap();
        let settings = Settings::from_lookup(&|k| {
            (k == crate::app::settings::TOKEN_SECRET_VAR).then(|| "sys".to_owned())
        })
        .unwrap();
        let store = Arc::new(Secrets::new(Arc::new(DevFileSecrets::new(&file))));
        let services = Services::new().with_secrets(store.clone());
        let tokens = system_tokens(&settings, &services)
            .await
            .unwrap()
            .with_interval(Duration::ZERO);
        assert!(tokens.accepts("token-before-Hq2").await);
        std::fs::write(&file, r#"{"sys":"token-after-Jw5"}"#).unwrap();
        let accepted = tokens.accepts("token-after-Jw5").await;
        let old = tokens.accepts("token-before-Hq2").await;
        let _ = std::fs::remove_dir_all(&dir);
        assert!(accepted, "the new token is read from the secret");
        assert!(!old, "the replaced token stops working");
        assert_eq!(
            store.fetches(),
            3,
            "the start-up read, then one per miss (no interval here)"
        );
    }

    #[tokio::test]
    async fn the_memory_backend_is_in_memory() {
        let settings = Settings::from_lookup(&|_| None).unwrap();
        let wired = wire(&settings, None).await;
        let d = wired.services.dedup().unwrap();
        let k = DedupKey::from_caller("s", "k");
        assert_eq!(d.check(&k).await.unwrap(), Sighting::New);
        assert_eq!(d.check(&k).await.unwrap(), Sighting::Duplicate);
        assert!(wired.services.incoming_queue().is_ok());
        assert!(
            wired.services.scheduler().is_ok(),
            "the in-process work queue"
        );
        assert!(wired.services.runs().is_err(), "no integrations");
        assert!(wired.local_queue.is_some());
    }
}
