//! The floor for a first invocation that talks to DynamoDB: a bare `lambda_runtime` function
//! that, on its first invocation, loads the SDK's default configuration, builds a DynamoDB
//! client and sends the same three `UpdateItem`s the `import` function's dedup check sends
//! (`EXTENSION_TABLE`), then echoes the payload. Same release profile, link mode and SDK
//! configuration (`aws::config_loader()`: the same HTTP/TLS client) as the function binaries;
//! none of the project's dispatch, protocol or stores.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;
use tokio::sync::OnceCell;

static CLIENT: OnceCell<Client> = OnceCell::const_new();

async fn client() -> &'static Client {
    CLIENT
        .get_or_init(|| async {
            Client::new(&integrator_lambda::aws::config_loader().load().await)
        })
        .await
}

async fn handler(e: LambdaEvent<Value>) -> Result<Value, Error> {
    let table = std::env::var("EXTENSION_TABLE")?;
    let db = client().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let calls = (0..3).map(|i| {
        db.update_item()
            .table_name(&table)
            .key(
                "pk",
                AttributeValue::S(format!("floor#{}#{i}", e.context.request_id)),
            )
            .update_expression(
                "SET expires_at = :exp, last_seen = :now, \
                 first_seen = if_not_exists(first_seen, :now) ADD sightings :one",
            )
            .expression_attribute_values(":exp", AttributeValue::N((now + 3600).to_string()))
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .return_values(ReturnValue::AllOld)
            .send()
    });
    for r in futures_util::future::join_all(calls).await {
        r?;
    }
    Ok(e.payload)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(handler)).await
}
