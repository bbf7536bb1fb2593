//! The AWS adapters: the only place the AWS SDK is named. Each file implements one trait of
//! [`crate::store`] or [`crate::jobs`] over DynamoDB, KMS or SQS; this module holds what they
//! share (the one HTTPS client, the SDK configuration, error descriptions).
//!
//! | adapter | implements | service |
//! |---|---|---|
//! | [`cache::DynamoCache`] | [`CacheStore`](crate::store::cache::CacheStore) | DynamoDB |
//! | [`dedup::DynamoDedup`] | [`DedupStore`](crate::store::dedup::DedupStore) | DynamoDB |
//! | [`idempotency::DynamoIdempotency`] | [`IdempotencyStore`](crate::store::idempotency::IdempotencyStore) | DynamoDB |
//! | [`secrets::KmsSecrets`] | [`SecretStore`](crate::store::secrets::SecretStore) | KMS + DynamoDB |
//! | [`queue::SqsQueue`] | [`QueueStore`](crate::store::queue::QueueStore) | SQS |
//! | [`jobs::DynamoJobs`] | [`JobStore`](crate::jobs::deferred::JobStore) | DynamoDB |
//! | [`limits::DynamoCounters`] | [`CounterStore`](crate::jobs::limits::CounterStore) | DynamoDB |
//! | [`runs::DynamoRuns`] | [`RunStore`](crate::jobs::runs::RunStore) | DynamoDB |

pub mod cache;
pub mod dedup;
pub mod idempotency;
pub mod jobs;
pub mod limits;
pub mod queue;
pub mod runs;
pub mod secrets;
pub mod xray;

use aws_config::{BehaviorVersion, SdkConfig};
use std::time::Duration;
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

/// Time limits of every AWS request (a stalled DynamoDB, KMS or SQS call must not hold an
/// invocation until Lambda kills it): connect, read (time to the first response byte), one
/// attempt, and the whole operation with the SDK's retries (3 attempts, exponential back-off).
/// Callers bound their calls by the invocation's deadline on top of these.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const READ_TIMEOUT: Duration = Duration::from_secs(4);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(12);

/// The timeouts above as an SDK configuration.
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .read_timeout(READ_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// The SDK's default configuration chain with [`http_client`] as its HTTP client and
/// [`timeouts`]. Every `SdkConfig` in this workspace must come from here: the SDK is built
/// without a default client, so a config without one fails at the first request.
pub fn config_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .timeout_config(timeouts())
}

/// The shared SDK configuration, loaded on first use (not at cold start): region, credentials
/// and `AWS_ENDPOINT_URL` from the environment, as the SDK's default chain reads them.
pub async fn sdk_config() -> &'static SdkConfig {
    SDK_CONFIG.get_or_init(|| config_loader().load()).await
}

/// The extension table as the DynamoDB adapters address it: a client (shared by every adapter
/// of a process), the table's name and its secondary index (`gsi1pk`/`gsi1sk`).
#[derive(Debug, Clone)]
pub struct Table {
    pub(crate) client: aws_sdk_dynamodb::Client,
    pub(crate) name: String,
    pub(crate) index: String,
}

impl Table {
    /// The table `name` with a client over `cfg`, index `gsi1`.
    pub fn new(cfg: &SdkConfig, name: impl Into<String>) -> Self {
        let conf = aws_sdk_dynamodb::config::Builder::from(cfg)
            .interceptor(crate::aws::xray::XrayInterceptor)
            .build();
        Self::from_client(aws_sdk_dynamodb::Client::from_conf(conf), name)
    }
    /// The table `name` reached with `client`.
    pub fn from_client(client: aws_sdk_dynamodb::Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
            index: "gsi1".into(),
        }
    }
    /// The same table with another index name.
    pub fn with_index(mut self, index: impl Into<String>) -> Self {
        self.index = index.into();
        self
    }
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One consistent `GetItem` of the item with partition key `pk`: its attributes, or `None`
    /// when there is no such item.
    pub(crate) async fn get(
        &self,
        pk: aws_sdk_dynamodb::types::AttributeValue,
    ) -> Result<Option<Item>, GetItemFailure> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .key("pk", pk)
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.filter(|i| !i.is_empty()))
    }

    /// An `UpdateItem` of the item `pk`.
    pub(crate) fn update(
        &self,
        pk: aws_sdk_dynamodb::types::AttributeValue,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.name)
            .key("pk", pk)
    }

    /// A `DeleteItem` of the item `pk`.
    pub(crate) fn delete(
        &self,
        pk: aws_sdk_dynamodb::types::AttributeValue,
    ) -> aws_sdk_dynamodb::operation::delete_item::builders::DeleteItemFluentBuilder {
        self.client
            .delete_item()
            .table_name(&self.name)
            .key("pk", pk)
    }

    /// A `PutItem` into the table.
    pub(crate) fn put(
        &self,
    ) -> aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder {
        self.client.put_item().table_name(&self.name)
    }

    /// [`Table::get`], the item read with `parse`.
    pub(crate) async fn get_as<T>(
        &self,
        pk: aws_sdk_dynamodb::types::AttributeValue,
        parse: impl Fn(&Item) -> Option<T>,
    ) -> Result<Option<T>, GetItemFailure> {
        Ok(self.get(pk).await?.as_ref().and_then(parse))
    }
}

impl Table {
    /// The items of the index partition `gsi1pk = partition` (and `gsi1sk <= until` when
    /// given), in sort-key order, that `keep` turns into values: at most `limit` values, read
    /// in at most `max_pages` pages.
    pub(crate) async fn query_index<T>(
        &self,
        partition: &str,
        until: Option<&str>,
        limit: usize,
        max_pages: usize,
        keep: impl Fn(&Item) -> Option<T>,
    ) -> Result<Vec<T>, QueryFailure> {
        use aws_sdk_dynamodb::types::AttributeValue;
        let mut out = Vec::new();
        let mut start: Option<Item> = None;
        for _ in 0..max_pages {
            let mut q = self
                .client
                .query()
                .table_name(&self.name)
                .index_name(&self.index)
                .expression_attribute_values(":p", AttributeValue::S(partition.into()))
                .limit(i32::try_from(limit.saturating_sub(out.len()).min(100)).unwrap_or(100))
                .set_exclusive_start_key(start.take());
            q = match until {
                Some(u) => q
                    .key_condition_expression("gsi1pk = :p AND gsi1sk <= :until")
                    .expression_attribute_values(":until", AttributeValue::S(u.into())),
                None => q.key_condition_expression("gsi1pk = :p"),
            };
            let page = q.send().await?;
            out.extend(page.items().iter().filter_map(&keep));
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() && out.len() < limit => start = Some(k.clone()),
                _ => break,
            }
        }
        out.truncate(limit);
        Ok(out)
    }
}

/// Why a `Query` failed.
pub(crate) type QueryFailure = aws_sdk_dynamodb::error::SdkError<
    aws_sdk_dynamodb::operation::query::QueryError,
    aws_sdk_dynamodb::config::http::HttpResponse,
>;

/// A DynamoDB item.
pub(crate) type Item = std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>;
/// Why a `GetItem` failed.
pub(crate) type GetItemFailure = aws_sdk_dynamodb::error::SdkError<
    aws_sdk_dynamodb::operation::get_item::GetItemError,
    aws_sdk_dynamodb::config::http::HttpResponse,
>;

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
        // Never the raw response: its body may echo what was sent (items, ciphertexts).
        SdkError::ResponseError(_) => {
            "the service's response could not be read (its body is not logged)".into()
        }
        SdkError::ConstructionFailure(_) => "the request could not be built".into(),
        other => other.to_string(),
    }
}

/// A conditional write's outcome: `Ok(true)` when it was applied, `Ok(false)` when its condition
/// did not hold, the error otherwise.
pub(crate) fn applied<T, E, R>(
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<bool, aws_sdk_dynamodb::error::SdkError<E, R>>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(e),
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

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::SdkError;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_types::body::SdkBody;

    /// A response the SDK could not read is described without its body (which may echo the
    /// request: items, ciphertexts).
    #[test]
    fn unreadable_responses_are_described_without_their_body() {
        let raw = HttpResponse::new(
            500.try_into().expect("status"),
            SdkBody::from(r#"{"Item":{"pk":{"S":"secret#x"},"ciphertext":"AQICAHh-LEAK"}}"#),
        );
        let e: SdkError<GetItemError, HttpResponse> =
            SdkError::response_error(std::io::Error::other("truncated JSON"), raw);
        let text = describe_sdk_error(&e);
        assert!(
            !text.contains("LEAK") && !text.contains("ciphertext"),
            "{text}"
        );
        assert!(text.contains("could not be read"), "{text}");
    }
}
