//! AWS-backed capabilities. Each seam is a trait with an AWS implementation and an embedded
//! (in-memory or local-file) twin: the embedded one is the default for local runs, the AWS one
//! on Lambda (or whenever `AWS_ENDPOINT_URL` points at an emulator).
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EXTENSION_BACKEND` | `aws` or `embedded` | `aws` on Lambda or with `AWS_ENDPOINT_URL`, else `embedded` |
//! | `EXTENSION_TABLE` | DynamoDB table (partition key `pk` S, TTL attribute `expires_at`) | `integrator-extension` |
//! | `EXTENSION_KMS_KEY_ID` | KMS key (id, ARN or alias) secrets are encrypted with | `alias/integrator-extension` |
//! | `EXTENSION_QUEUE_URL` | SQS queue for accepted events and deferred work | none |
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
    pub stack_name: String,
}

impl Resources {
    pub fn from_env() -> Self {
        Self {
            table: var("EXTENSION_TABLE").unwrap_or_else(|| "integrator-extension".into()),
            kms_key_id: var("EXTENSION_KMS_KEY_ID")
                .unwrap_or_else(|| "alias/integrator-extension".into()),
            queue_url: var("EXTENSION_QUEUE_URL"),
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
}

impl Capabilities {
    pub async fn from_env() -> Self {
        let backend = Backend::from_env();
        let resources = Resources::from_env();
        Self {
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
        s
    }
}
