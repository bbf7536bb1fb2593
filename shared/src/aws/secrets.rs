//! KMS-encrypted secrets in the extension table (the layout is described in
//! [`crate::store::secrets`]).

use super::describe_sdk_error;
use crate::store::secrets::{
    CONTEXT_APP, ExposeSecret, PK_PREFIX, SecretError, SecretStore, SecretString, validate_name,
    validate_value,
};
use crate::time::EpochSeconds;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::primitives::Blob;
use std::collections::HashMap;
use std::time::Duration;

/// KMS-encrypted values in the extension DynamoDB table.
///
/// Its clients make a single attempt per call (the SDK's own retries are off), with a 3 s
/// connect and 10 s attempt timeout: [`Secrets`](crate::store::secrets::Secrets) retries transient failures itself, within
/// the caller's deadline.
#[derive(Debug, Clone)]
pub struct KmsSecrets {
    kms: aws_sdk_kms::Client,
    ddb: aws_sdk_dynamodb::Client,
    table: String,
    key_id: String,
    stack: String,
}

impl KmsSecrets {
    /// Secrets in `table`, encrypted with `key_id`, bound to `stack` in the encryption context.
    pub fn new(cfg: &SdkConfig, table: &str, key_id: &str, stack: &str) -> Self {
        use aws_sdk_kms::config::retry::RetryConfig;
        use aws_sdk_kms::config::timeout::TimeoutConfig;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(10))
            .build();
        let kms = aws_sdk_kms::config::Builder::from(cfg)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts.clone())
            .interceptor(crate::aws::xray::XrayInterceptor)
            .build();
        let ddb = aws_sdk_dynamodb::config::Builder::from(cfg)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .interceptor(crate::aws::xray::XrayInterceptor)
            .build();
        Self {
            kms: aws_sdk_kms::Client::from_conf(kms),
            ddb: aws_sdk_dynamodb::Client::from_conf(ddb),
            table: table.to_owned(),
            key_id: key_id.to_owned(),
            stack: stack.to_owned(),
        }
    }
    pub fn table(&self) -> &str {
        &self.table
    }
    pub fn key_id(&self) -> &str {
        &self.key_id
    }
    pub fn stack(&self) -> &str {
        &self.stack
    }
    /// The encryption context binding `name`'s ciphertext to this stack.
    pub fn context(&self, name: &str) -> HashMap<String, String> {
        HashMap::from([
            ("app".to_owned(), CONTEXT_APP.to_owned()),
            ("stack".to_owned(), self.stack.clone()),
            ("secret".to_owned(), name.to_owned()),
        ])
    }
    fn pk(name: &str) -> AttributeValue {
        AttributeValue::S(format!("{PK_PREFIX}{name}"))
    }
}

type HttpResponse = aws_sdk_kms::config::http::HttpResponse;

/// Classify an SDK failure. Transient: throttling, 5xx, timeouts, network. Never includes a
/// request body in the text.
fn sdk_failure<E>(
    name: &str,
    op: &str,
    e: &aws_sdk_kms::error::SdkError<E, HttpResponse>,
) -> SecretError
where
    E: aws_sdk_kms::error::ProvideErrorMetadata + std::fmt::Debug,
{
    use aws_sdk_kms::error::SdkError;
    let detail = format!("{op}: {}", describe_sdk_error(e));
    match e {
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("");
            let status = se.raw().status().as_u16();
            match code {
                "InvalidCiphertextException" | "IncorrectKeyException" => {
                    SecretError::WrongContext {
                        name: name.to_owned(),
                    }
                }
                "AccessDeniedException"
                | "AccessDenied"
                | "UnrecognizedClientException"
                | "InvalidSignatureException"
                | "ExpiredTokenException"
                | "MissingAuthenticationToken" => SecretError::AccessDenied {
                    name: name.to_owned(),
                },
                "ThrottlingException"
                | "Throttling"
                | "ThrottledException"
                | "RequestLimitExceeded"
                | "ProvisionedThroughputExceededException"
                | "TooManyRequestsException"
                | "LimitExceededException"
                | "RequestThrottled"
                | "InternalServerError"
                | "InternalFailure"
                | "ServiceUnavailable"
                | "KMSInternalException"
                | "DependencyTimeoutException"
                | "KeyUnavailableException" => SecretError::unavailable(name, detail, true),
                _ if status == 429 || status >= 500 => SecretError::unavailable(name, detail, true),
                _ => SecretError::unavailable(name, detail, false),
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            SecretError::unavailable(name, detail, true)
        }
        _ => SecretError::unavailable(name, detail, false),
    }
}

#[async_trait]
impl SecretStore for KmsSecrets {
    async fn fetch(&self, name: &str) -> Result<SecretString, SecretError> {
        let out = self
            .ddb
            .get_item()
            .table_name(&self.table)
            .key("pk", Self::pk(name))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_failure(name, "DynamoDB GetItem", &e))?;
        let Some(item) = out.item else {
            return Err(SecretError::NotFound {
                name: name.to_owned(),
            });
        };
        let Some(AttributeValue::B(ciphertext)) = item.get("ciphertext") else {
            tracing::warn!(secret = name, table = %self.table, "secret item has no binary `ciphertext` attribute");
            return Err(SecretError::Corrupt {
                name: name.to_owned(),
            });
        };
        let out = self
            .kms
            .decrypt()
            .ciphertext_blob(ciphertext.clone())
            .set_encryption_context(Some(self.context(name)))
            .send()
            .await
            .map_err(|e| sdk_failure(name, "KMS Decrypt", &e))?;
        let Some(plain) = out.plaintext else {
            return Err(SecretError::Corrupt {
                name: name.to_owned(),
            });
        };
        match String::from_utf8(plain.into_inner()) {
            Ok(s) => Ok(SecretString::from(s)),
            Err(e) => {
                secrecy::zeroize::Zeroize::zeroize(&mut e.into_bytes());
                tracing::warn!(secret = name, "decrypted secret is not UTF-8 text");
                Err(SecretError::Corrupt {
                    name: name.to_owned(),
                })
            }
        }
    }

    async fn store(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        validate_name(name)?;
        validate_value(name, value)?;
        let out = self
            .kms
            .encrypt()
            .key_id(&self.key_id)
            .plaintext(Blob::new(value.expose_secret().as_bytes()))
            .set_encryption_context(Some(self.context(name)))
            .send()
            .await
            .map_err(|e| sdk_failure(name, "KMS Encrypt", &e))?;
        let (Some(ciphertext), key_arn) = (out.ciphertext_blob, out.key_id) else {
            return Err(SecretError::unavailable(
                name,
                "KMS Encrypt returned no ciphertext",
                false,
            ));
        };
        self.ddb
            .put_item()
            .table_name(&self.table)
            .item("pk", Self::pk(name))
            .item("ciphertext", AttributeValue::B(ciphertext))
            .item(
                "key_id",
                AttributeValue::S(key_arn.unwrap_or_else(|| self.key_id.clone())),
            )
            .item(
                "updated_at",
                AttributeValue::N(EpochSeconds::now().0.to_string()),
            )
            .send()
            .await
            .map_err(|e| sdk_failure(name, "DynamoDB PutItem", &e))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("kms key {}, table {}", self.key_id, self.table)
    }
}
