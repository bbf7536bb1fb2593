//! Test helpers for the AWS emulator (moto server on 127.0.0.1, started by `make test` and
//! announced in `MOTO_ENDPOINT`). Every test creates its own uniquely named resources, so tests
//! run in parallel against one emulator without interfering.

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::{Credentials, Region};
use std::sync::atomic::{AtomicU64, Ordering};

/// The emulator's URL. Panics with instructions when it is not running.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!("MOTO_ENDPOINT is not set: run the tests with `make test` (it starts moto), or `bash scripts/moto.sh start` and MOTO_ENDPOINT=http://127.0.0.1:5055")
    })
}

/// SDK configuration pointing at `endpoint` with dummy credentials.
pub async fn sdk_config_for(endpoint: &str) -> SdkConfig {
    loader_for(endpoint).load().await
}

/// The project's SDK configuration loader (its HTTP client and timeouts) aimed at `endpoint`.
fn loader_for(endpoint: &str) -> aws_config::ConfigLoader {
    integrator_lambda::aws::config_loader()
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "static"))
}

/// SDK configuration pointing at `endpoint` that waits up to a minute for a reply, for tests
/// that queue many requests on purpose behind a serialized proxy
/// ([`crate::counting_proxy::CountingProxy::start_serialized`]): the last of 64 racing
/// requests waits for the 126 before it, and under load that is more than the production read
/// timeout. What those tests prove is the outcome of the race, not the emulator's speed.
pub async fn patient_sdk_config_for(endpoint: &str) -> SdkConfig {
    let patient = aws_config::timeout::TimeoutConfig::builder()
        .read_timeout(std::time::Duration::from_secs(60))
        .operation_attempt_timeout(std::time::Duration::from_secs(60))
        .operation_timeout(std::time::Duration::from_secs(120))
        .build();
    loader_for(endpoint).timeout_config(patient).load().await
}

/// SDK configuration pointing at the emulator.
pub async fn moto_config() -> SdkConfig {
    sdk_config_for(&moto_endpoint()).await
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this test process and call: `prefix-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// Create the extension table as the template declares it (partition key `pk`, TTL on
/// `expires_at`, index `gsi1` on `gsi1pk`/`gsi1sk`) and return its name.
pub async fn create_table(cfg: &SdkConfig, prefix: &str) -> String {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType,
        Projection, ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
    };
    let attr = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("attr")
    };
    let key = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .expect("key")
    };
    let ddb = aws_sdk_dynamodb::Client::new(cfg);
    let name = unique(prefix);
    ddb.create_table()
        .table_name(&name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attr("pk"))
        .attribute_definitions(attr("gsi1pk"))
        .attribute_definitions(attr("gsi1sk"))
        .key_schema(key("pk", KeyType::Hash))
        .global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name("gsi1")
                .key_schema(key("gsi1pk", KeyType::Hash))
                .key_schema(key("gsi1sk", KeyType::Range))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .expect("gsi"),
        )
        .send()
        .await
        .expect("create table");
    ddb.update_time_to_live()
        .table_name(&name)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()
                .expect("ttl"),
        )
        .send()
        .await
        .expect("ttl");
    name
}

/// Create a symmetric KMS key and return its id.
pub async fn create_key(cfg: &SdkConfig) -> String {
    let kms = aws_sdk_kms::Client::new(cfg);
    let k = kms
        .create_key()
        .description("integrator-lambda test")
        .send()
        .await
        .expect("create key");
    k.key_metadata()
        .map(|m| m.key_id().to_owned())
        .expect("key id")
}

/// Create a standard SQS queue and return its URL.
pub async fn create_queue(cfg: &SdkConfig, prefix: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(cfg);
    let q = sqs
        .create_queue()
        .queue_name(unique(prefix))
        .send()
        .await
        .expect("create queue");
    q.queue_url().expect("queue url").to_owned()
}

/// The names of one test's AWS resources (the shape of the deployment's settings), and the
/// secret backend over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resources {
    pub table: String,
    pub kms_key_id: String,
    pub queue_url: Option<String>,
    pub work_queue_url: Option<String>,
    pub stack_name: String,
}

impl Resources {
    /// KMS + DynamoDB secrets in these resources.
    pub fn kms(&self, cfg: &SdkConfig) -> integrator_lambda::aws::secrets::KmsSecrets {
        integrator_lambda::aws::secrets::KmsSecrets::new(
            cfg,
            &self.table,
            &self.kms_key_id,
            &self.stack_name,
        )
    }
}

/// The environment of a real binary on the AWS backend, reaching the emulator (or a proxy in
/// front of it) at `endpoint`, with the extension table and the incoming queue, a 2 s request
/// budget and the shortest dedup lease (the budget + 5 s).
pub fn incoming_env(endpoint: &str, table: &str, queue_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PORT", "0".into()),
        ("EXTENSION_BACKEND", "aws".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("EXTENSION_TABLE", table.into()),
        ("EXTENSION_QUEUE_URL", queue_url.into()),
        ("EXTENSION_INCOMING_TIMEOUT_SECS", "2".into()),
        ("EXTENSION_DEDUP_LEASE_SECS", "1".into()),
    ]
}

/// Every message of `queue_url`, consumed: each batch read is deleted, so that a message is
/// counted once however long the drain takes (the emulator answers a receive from a queue of a
/// thousand messages in seconds under load, and a message whose visibility timeout ran out
/// would be read again). A few empty receives end it; bounded.
pub async fn drain_bodies(cfg: &SdkConfig, queue_url: &str) -> Vec<serde_json::Value> {
    let sqs = aws_sdk_sqs::Client::new(cfg);
    let mut out = Vec::new();
    let (mut empty, mut errors) = (0, 0);
    for _ in 0..2000 {
        // The emulator can be slow to answer right after a burst: a failed receive is tried
        // again (bounded) rather than ending the drain.
        let r = match sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(900)
            .wait_time_seconds(1)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => {
                errors += 1;
                assert!(errors <= 10, "receive kept failing: {e:?}");
                continue;
            }
        };
        if r.messages().is_empty() {
            empty += 1;
            if empty >= 3 {
                break;
            }
            continue;
        }
        empty = 0;
        let mut delete = sqs.delete_message_batch().queue_url(queue_url);
        for (i, m) in r.messages().iter().enumerate() {
            out.push(serde_json::from_str(m.body().unwrap_or("{}")).unwrap_or_default());
            if let Ok(entry) = aws_sdk_sqs::types::DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .build()
            {
                delete = delete.entries(entry);
            }
        }
        // Best effort: a message not deleted stays invisible for the rest of the drain.
        let _ = delete.send().await;
    }
    out
}

/// One record of a Lambda SQS event as the event source mapping sends it (from queue `queue`;
/// no `messageId` when `id` is `None`; a FIFO group when `group` is given).
pub fn sqs_record(
    id: Option<&str>,
    body: &str,
    queue: &str,
    group: Option<&str>,
) -> serde_json::Value {
    let mut r = serde_json::json!({
        "receiptHandle": "AQEBexample",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1715000000000"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{queue}"),
        "awsRegion": "us-east-1"
    });
    if let Some(id) = id {
        r["messageId"] = serde_json::json!(id);
    }
    if let Some(g) = group {
        r["attributes"]["MessageGroupId"] = serde_json::json!(g);
    }
    r
}

/// Every message on `queue_url` as `(message id, body)`: three 1 s long polls of up to 10,
/// each message hidden for `visibility_secs` once read (not deleted).
pub async fn receive_all(
    cfg: &SdkConfig,
    queue_url: &str,
    visibility_secs: i32,
) -> Vec<(String, String)> {
    let sqs = aws_sdk_sqs::Client::new(cfg);
    let mut out = Vec::new();
    for _ in 0..3 {
        let r = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility_secs)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in r.messages() {
            out.push((
                m.message_id().unwrap_or_default().to_owned(),
                m.body().unwrap_or_default().to_owned(),
            ));
        }
    }
    out
}
