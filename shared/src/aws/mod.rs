//! The AWS adapters: the only place the AWS SDK is named. Each file implements one trait of
//! [`crate::store`] or [`crate::jobs`] over DynamoDB, KMS or SQS; this module holds what they
//! share (the one HTTPS client, the SDK configuration, error descriptions).
//!
//! | adapter | implements | service |
//! |---|---|---|
//! | [`dedup::DynamoDedup`] | [`DedupStore`](crate::store::dedup::DedupStore) | DynamoDB |
//! | [`idempotency::DynamoIdempotency`] | [`IdempotencyStore`](crate::store::idempotency::IdempotencyStore) | DynamoDB |
//! | [`secrets::KmsSecrets`] | [`SecretBackend`](crate::store::secrets::SecretBackend) | KMS + DynamoDB |
//! | [`queue::SqsQueue`] | [`Queue`](crate::store::queue::Queue) | SQS |
//! | [`jobs::DynamoJobs`] | [`JobStore`](crate::jobs::deferred::JobStore) | DynamoDB |
//! | [`limits::DynamoCounters`] | [`CounterStore`](crate::jobs::limits::CounterStore) | DynamoDB |
//! | [`runs::DynamoRuns`] | [`RunStore`](crate::jobs::runs::RunStore) | DynamoDB |

pub mod dedup;
pub mod idempotency;
pub mod jobs;
pub mod limits;
pub mod queue;
pub mod runs;
pub mod secrets;

use aws_config::{BehaviorVersion, SdkConfig};
use tokio::sync::OnceCell;

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

/// A DynamoDB client over `cfg` (one per process, shared by the table's adapters).
pub fn dynamodb_client(cfg: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(cfg)
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
