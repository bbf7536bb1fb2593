//! AWS-backed capabilities. Each seam is a trait with an AWS implementation and an embedded
//! (in-memory or local-file) twin: the embedded one is the default for local runs, the AWS one
//! on Lambda (or whenever `AWS_ENDPOINT_URL` points at an emulator).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EXTENSION_BACKEND` | `aws` or `embedded` | `aws` on Lambda or with `AWS_ENDPOINT_URL`, else `embedded` |
//! | `EXTENSION_TABLE` | DynamoDB table (partition key `pk` S, TTL attribute `expires_at`) | `integrator-extension` |
//! | `EXTENSION_KMS_KEY_ID` | KMS key (id, ARN or alias) secrets are encrypted with | `alias/integrator-extension` |
//! | `EXTENSION_QUEUE_URL` | SQS queue for accepted webhook events | none |
//! | `EXTENSION_WORK_QUEUE_URL` | SQS work queue: deferred jobs, rate-limited retries, run streams | `EXTENSION_QUEUE_URL` |
//! | `EXTENSION_TABLE_INDEX` | the table's index (`gsi1pk`/`gsi1sk`) for due jobs and run streams | `gsi1` |
//! | `EXTENSION_RATE_LIMITS` | rate limits of queued invocations (see [`crate::jobs::limits`]) | none |
//! | `EXTENSION_STREAM_RETRY_SECS` | back-off step between retries of a failed stream | `30` |
//! | `EXTENSION_STACK_NAME` | stack name bound into every secret's encryption context | `AWS_LAMBDA_FUNCTION_NAME`'s stack, else `local` |

pub mod dedup;
pub mod idempotency;
pub mod queue;
pub mod secrets;

use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

/// Where the AWS seams are served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Aws,
    Embedded,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl Backend {
    pub fn from_env() -> Self {
        match var("EXTENSION_BACKEND")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            Some("aws") => Backend::Aws,
            Some("embedded") => Backend::Embedded,
            _ if crate::config::on_lambda() || var("AWS_ENDPOINT_URL").is_some() => Backend::Aws,
            _ => Backend::Embedded,
        }
    }
}

/// Names of the AWS resources, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub table: String,
    pub kms_key_id: String,
    pub queue_url: Option<String>,
    /// The work queue (deferred jobs, runs); falls back to `queue_url`.
    pub work_queue_url: Option<String>,
    pub stack_name: String,
}

impl Resources {
    pub fn from_env() -> Self {
        Self {
            table: var("EXTENSION_TABLE").unwrap_or_else(|| "integrator-extension".into()),
            kms_key_id: var("EXTENSION_KMS_KEY_ID")
                .unwrap_or_else(|| "alias/integrator-extension".into()),
            queue_url: var("EXTENSION_QUEUE_URL"),
            work_queue_url: var("EXTENSION_WORK_QUEUE_URL").or_else(|| var("EXTENSION_QUEUE_URL")),
            stack_name: var("EXTENSION_STACK_NAME").unwrap_or_else(|| "local".into()),
        }
    }
}

/// Parse a TTL in whole seconds from the variable `var`: absent or blank → `default`; `0`,
/// negative or non-numeric → an error naming the variable.
pub fn parse_ttl(
    var: &str,
    value: Option<&str>,
    default: std::time::Duration,
) -> Result<std::time::Duration, String> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => match v.parse::<u64>() {
            Ok(0) | Err(_) => Err(format!(
                "{var} must be a whole number of seconds, at least 1 (got {v:?})"
            )),
            Ok(secs) => Ok(std::time::Duration::from_secs(secs)),
        },
    }
}

/// [`parse_ttl`] of the variable `var` as set in the environment; an invalid value is logged
/// and `default` used.
pub fn ttl_from_env(var: &str, default: std::time::Duration) -> std::time::Duration {
    parse_ttl(var, std::env::var(var).ok().as_deref(), default).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring {var}; using the default of {} s", default.as_secs());
        default
    })
}

static SDK_CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

/// The one HTTPS client of the AWS SDK: hyper + rustls with the ring crypto provider and the
/// platform's root certificates (the SDK's default client minus aws-lc-rs, which it would
/// otherwise compile in as a second crypto library). Cheap to clone; connections are pooled
/// per clone of the returned handle.
pub fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK's default configuration chain with [`http_client`] as its HTTP client. Every
/// `SdkConfig` in this workspace must come from here: the SDK is built without a default
/// client, so a config without one fails at the first request.
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest()).http_client(http_client())
}

/// The shared SDK configuration, loaded on first use (not at cold start): region, credentials
/// and `AWS_ENDPOINT_URL` from the environment, as the SDK's default chain reads them.
pub async fn sdk_config() -> &'static SdkConfig {
    SDK_CONFIG.get_or_init(|| config_loader().load()).await
}

/// A short description of an SDK error: the service's code and message, or the transport error.
pub fn describe_sdk_error<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> String
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::SdkError;
    match e {
        SdkError::ServiceError(se) => {
            format!(
                "{}: {}",
                se.err().code().unwrap_or("ServiceError"),
                se.err().message().unwrap_or("")
            )
        }
        SdkError::TimeoutError(_) => "request timed out".into(),
        SdkError::DispatchFailure(d) => format!("could not reach the service: {d:?}"),
        other => format!("{other:?}"),
    }
}

/// The job store, rate counters, run store and work queue of one backend.
type JobSeams = (
    std::sync::Arc<dyn crate::jobs::deferred::JobStore>,
    std::sync::Arc<dyn crate::jobs::limits::CounterStore>,
    std::sync::Arc<dyn crate::jobs::runs::RunStore>,
    Option<std::sync::Arc<dyn queue::Queue>>,
);

/// Did a conditional write lose (`ConditionalCheckFailedException`)? Then the caller's
/// precondition no longer holds: not an outage.
pub(crate) fn is_condition_failure<E, R>(e: &aws_sdk_dynamodb::error::SdkError<E, R>) -> bool
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    e.as_service_error()
        .and_then(|se| se.code())
        .is_some_and(|c| c == "ConditionalCheckFailedException")
}

/// Everything the AWS seams provide to one process, built once at start-up from the
/// environment (no network calls: clients connect on first use).
#[derive(Clone)]
pub struct Capabilities {
    pub backend: Backend,
    pub resources: Resources,
    pub secrets: std::sync::Arc<secrets::SecretStore>,
    pub dedup: std::sync::Arc<dedup::Dedup>,
    pub idempotency: std::sync::Arc<idempotency::Idempotency>,
    /// `None` on AWS without `EXTENSION_QUEUE_URL`.
    pub outbox: Option<queue::Outbox>,
    /// Deferred invocations; `None` on AWS without a work queue.
    pub scheduler: Option<std::sync::Arc<crate::jobs::deferred::Scheduler>>,
    /// Rate limits of queued invocations (`EXTENSION_RATE_LIMITS`).
    pub limiter: std::sync::Arc<crate::jobs::limits::RateLimiter>,
    /// Runs and streams storage, and the work queue (for [`Capabilities::runs`]).
    pub run_store: std::sync::Arc<dyn crate::jobs::runs::RunStore>,
    pub work_queue: Option<std::sync::Arc<dyn queue::Queue>>,
    /// Embedded backend: the in-process work queue, started by the server.
    pub local_queue: Option<std::sync::Arc<crate::jobs::local::LocalQueue>>,
}

impl Capabilities {
    pub async fn from_env() -> Self {
        use crate::jobs::{SystemClock, deferred, limits, runs};
        use std::sync::Arc;
        let backend = Backend::from_env();
        let resources = Resources::from_env();
        let index = crate::jobs::index_from_env();
        let clock: Arc<dyn crate::jobs::Clock> = Arc::new(SystemClock);
        let limits = match std::env::var("EXTENSION_RATE_LIMITS") {
            Ok(text) if !text.trim().is_empty() => {
                limits::parse_limits(&text).unwrap_or_else(|e| {
                    tracing::error!(error = %e, "EXTENSION_RATE_LIMITS ignored");
                    Vec::new()
                })
            }
            _ => Vec::new(),
        };
        let local_queue = (backend == Backend::Embedded)
            .then(|| Arc::new(crate::jobs::local::LocalQueue::default()));
        let (job_store, counters, run_store, work_queue): JobSeams = match backend {
            Backend::Embedded => (
                Arc::new(deferred::MemoryJobs::default()),
                Arc::new(limits::MemoryCounters::default()),
                Arc::new(runs::MemoryRuns::default()),
                local_queue.clone().map(|q| q as Arc<dyn queue::Queue>),
            ),
            Backend::Aws => {
                let cfg = sdk_config().await;
                let ddb = aws_sdk_dynamodb::Client::new(cfg);
                (
                    Arc::new(deferred::DynamoJobs::from_client(
                        ddb.clone(),
                        &resources.table,
                        &index,
                    )),
                    Arc::new(limits::DynamoCounters::from_client(
                        ddb.clone(),
                        &resources.table,
                    )),
                    Arc::new(runs::DynamoRuns::from_client(ddb, &resources.table, &index)),
                    resources.work_queue_url.as_deref().map(|url| {
                        Arc::new(queue::SqsQueue::new(cfg, url)) as Arc<dyn queue::Queue>
                    }),
                )
            }
        };
        let scheduler = work_queue
            .clone()
            .map(|q| Arc::new(deferred::Scheduler::new(job_store, q, clock.clone())));
        let limiter = Arc::new(limits::RateLimiter::new(counters, clock, limits));
        Self {
            scheduler,
            limiter,
            run_store,
            work_queue,
            local_queue,
            secrets: std::sync::Arc::new(secrets::SecretStore::from_env(backend, &resources).await),
            dedup: std::sync::Arc::new(dedup::dedup_from_env(backend, &resources).await),
            idempotency: std::sync::Arc::new(
                idempotency::idempotency_from_env(backend, &resources).await,
            ),
            outbox: queue::outbox_from_env(backend, &resources).await,
            backend,
            resources,
        }
    }

    /// `base` plus these capabilities, as the services handed to functions
    /// (`inv.service::<SecretStore>()`, `::<Dedup>()`, `::<Idempotency>()`, `::<Outbox>()`).
    pub fn services(&self, base: &crate::dispatch::Services) -> crate::dispatch::Services {
        let mut s = base.clone();
        s.insert(self.secrets.clone())
            .insert(self.dedup.clone())
            .insert(self.idempotency.clone());
        if let Some(o) = &self.outbox {
            s.insert(std::sync::Arc::new(o.clone()));
        }
        s.insert(self.limiter.clone());
        if let Some(sch) = &self.scheduler {
            s.insert(sch.clone());
        }
        s
    }

    /// The run engine over these capabilities, for `integrations` (needs a work queue).
    pub fn runs(
        &self,
        integrations: crate::jobs::runs::Integrations,
    ) -> Option<crate::jobs::runs::Runs> {
        let queue = self.work_queue.clone()?;
        let retry = ttl_from_env(
            "EXTENSION_STREAM_RETRY_SECS",
            std::time::Duration::from_secs(30),
        );
        Some(
            crate::jobs::runs::Runs::new(
                self.run_store.clone(),
                queue,
                integrations,
                std::sync::Arc::new(crate::jobs::SystemClock),
            )
            .with_scheduler(self.scheduler.clone())
            .with_limiter(Some(self.limiter.clone()))
            .with_retry_delay(retry),
        )
    }
}
