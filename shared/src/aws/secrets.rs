//! Secrets: values encrypted with KMS, stored in the extension table, decrypted on first use
//! and cached for a few minutes.
//!
//! # Storage
//!
//! One DynamoDB item per secret in the extension table ([`Resources::table`]):
//!
//! | attribute | type | value |
//! |---|---|---|
//! | `pk` | S | `secret#<name>` |
//! | `ciphertext` | B | the KMS `Encrypt` output |
//! | `key_id` | S | the ARN of the key that encrypted it |
//! | `updated_at` | N | epoch seconds of the last `set-secret` |
//!
//! Every `Encrypt`/`Decrypt` carries the encryption context
//! `{"app": "integrator-lambda", "stack": <stack name>, "secret": <name>}`, so a ciphertext only
//! decrypts for the stack and name it was stored under: copying an item to another stack or
//! another name, or altering it, gives [`SecretError::WrongContext`].
//!
//! Secrets are written with the `set-secret` binary (`echo -n VALUE | set-secret NAME`), which
//! offers no way to read one back.
//!
//! # Use from a function
//!
//! ```no_run
//! use integrator_lambda::{ExtResult, Invocation};
//! use integrator_lambda::aws::secrets::{ExposeSecret, SecretStore};
//!
//! async fn call_api(inv: Invocation) -> ExtResult<()> {
//!     let token = integrator_lambda::aws::secrets::get_secret(&inv, "crm-api-token").await?;
//!     // or: inv.service::<SecretStore>() and store.get("crm-api-token", Some(inv.deadline()))
//!     let _header = format!("Bearer {}", token.expose_secret());
//!     Ok(())
//! }
//! ```
//!
//! Every value [`SecretStore::get`] loads is registered with [`crate::telemetry::redact`], so it
//! is replaced by `[REDACTED]` if it ever reaches the logs.
//!
//! # Configuration
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `EXTENSION_SECRET_TTL_SECS` | how long a decrypted value is cached | `300` |
//! | `EXTENSION_DEV_SECRETS_FILE` | the plaintext file of the embedded (dev-only) backend | `secrets.dev.json` |
//!
//! plus `EXTENSION_TABLE`, `EXTENSION_KMS_KEY_ID` and `EXTENSION_STACK_NAME` (see [`crate::aws`]).

use super::{Backend, Resources, describe_sdk_error};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_kms::primitives::Blob;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use secrecy::{ExposeSecret, SecretString};

/// The `app` entry of every encryption context.
pub const CONTEXT_APP: &str = "integrator-lambda";
/// Prefix of a secret's partition key.
pub const PK_PREFIX: &str = "secret#";
/// How long a decrypted value is cached when `EXTENSION_SECRET_TTL_SECS` is not set.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
pub const TTL_VAR: &str = "EXTENSION_SECRET_TTL_SECS";
pub const DEV_FILE_VAR: &str = "EXTENSION_DEV_SECRETS_FILE";
pub const DEFAULT_DEV_FILE: &str = "secrets.dev.json";
/// KMS `Encrypt` takes at most 4096 bytes of plaintext.
pub const MAX_VALUE_LEN: usize = 4096;
pub const MAX_NAME_LEN: usize = 128;

/// Why a secret could not be read or written. The text names the secret, never its value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("secret {name} is not set (store it with `set-secret {name}`)")]
    NotFound { name: String },
    #[error(
        "access to secret {name} was denied (check the function role's KMS and DynamoDB permissions)"
    )]
    AccessDenied { name: String },
    #[error(
        "secret {name} cannot be decrypted here: its ciphertext is bound to another stack or name, or was altered (store it again with `set-secret {name}` for this stack)"
    )]
    WrongContext { name: String },
    /// KMS or DynamoDB could not be used: unreachable or throttled after retries
    /// (`retryable`), past the deadline, or refusing the request for a reason retrying
    /// cannot fix (missing table, disabled key…).
    #[error("secret {name} is unavailable: {detail}")]
    Unavailable {
        name: String,
        detail: String,
        /// Whether another attempt may succeed (throttling, network, 5xx, timeout).
        retryable: bool,
    },
    #[error("secret {name} is corrupt: its stored item or decrypted value is not usable")]
    Corrupt { name: String },
    /// A name or value refused before any storage is touched.
    #[error("secret {name} rejected: {reason}")]
    Invalid { name: String, reason: &'static str },
}

impl SecretError {
    /// The `code` integrator.io shows for this error.
    pub fn code(&self) -> &'static str {
        match self {
            SecretError::NotFound { .. } => "secret_not_found",
            SecretError::AccessDenied { .. } => "secret_access_denied",
            SecretError::WrongContext { .. } => "secret_invalid_context",
            SecretError::Unavailable { .. } => "secret_unavailable",
            SecretError::Corrupt { .. } => "secret_corrupt",
            SecretError::Invalid { .. } => "secret_invalid",
        }
    }
    /// Whether retrying may help.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            SecretError::Unavailable {
                retryable: true,
                ..
            }
        )
    }
    fn unavailable(name: &str, detail: impl Into<String>, retryable: bool) -> Self {
        SecretError::Unavailable {
            name: name.to_owned(),
            detail: detail.into(),
            retryable,
        }
    }
}

impl From<SecretError> for crate::ExtError {
    fn from(e: SecretError) -> Self {
        crate::ExtError::with_code(e.code(), e.to_string())
    }
}

/// A name as it may appear in an error: quoted, escaped and bounded, since it may be invalid.
fn shown(name: &str) -> String {
    let mut s: String = name.escape_debug().take(80).collect();
    if name.escape_debug().nth(80).is_some() {
        s.push('…');
    }
    format!("\"{s}\"")
}

/// Check a secret name: 1 to 128 of `A-Z a-z 0-9 _ . -`.
pub fn validate_name(name: &str) -> Result<(), SecretError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SecretError::Invalid {
            name: shown(name),
            reason: "a name is 1 to 128 characters among A-Z a-z 0-9 _ . -",
        })
    }
}

/// Check a value before storing it: not empty, at most [`MAX_VALUE_LEN`] bytes.
pub fn validate_value(name: &str, value: &SecretString) -> Result<(), SecretError> {
    let len = value.expose_secret().len();
    let reason = if len == 0 {
        "refusing to store an empty value"
    } else if len > MAX_VALUE_LEN {
        "the value is longer than 4096 bytes (the KMS Encrypt limit)"
    } else {
        return Ok(());
    };
    Err(SecretError::Invalid {
        name: shown(name),
        reason,
    })
}

/// Turn what `set-secret` read from stdin into a value: UTF-8, one trailing newline (`\n` or
/// `\r\n`) stripped, not empty. The input buffer is wiped.
pub fn value_from_input(name: &str, mut raw: Vec<u8>) -> Result<SecretString, SecretError> {
    use secrecy::zeroize::Zeroize;
    if raw.ends_with(b"\r\n") {
        raw.truncate(raw.len() - 2);
    } else if raw.ends_with(b"\n") {
        raw.truncate(raw.len() - 1);
    }
    let value = match std::str::from_utf8(&raw) {
        Ok(s) => SecretString::from(s),
        Err(_) => {
            raw.zeroize();
            return Err(SecretError::Invalid {
                name: shown(name),
                reason: "the value is not UTF-8 text",
            });
        }
    };
    raw.zeroize();
    validate_value(name, &value)?;
    Ok(value)
}

/// Where secrets are kept.
#[async_trait]
pub trait SecretBackend: Send + Sync + 'static {
    /// The current value of `name`. One attempt: retries are the caller's business
    /// ([`SecretStore`] does them).
    async fn fetch(&self, name: &str) -> Result<SecretString, SecretError>;
    /// Store (or replace) `name`.
    async fn store(&self, name: &str, value: &SecretString) -> Result<(), SecretError>;
    /// Where values go, for messages (`kms key …, table …`). Never a value.
    fn describe(&self) -> String {
        "custom backend".into()
    }
}

/// KMS-encrypted values in the extension DynamoDB table (see the [module docs](self)).
///
/// Its clients make a single attempt per call (the SDK's own retries are off), with a 3 s
/// connect and 10 s attempt timeout: [`SecretStore`] retries transient failures itself, within
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
    pub fn new(cfg: &SdkConfig, res: &Resources) -> Self {
        use aws_sdk_kms::config::retry::RetryConfig;
        use aws_sdk_kms::config::timeout::TimeoutConfig;
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(3))
            .operation_attempt_timeout(Duration::from_secs(10))
            .build();
        let kms = aws_sdk_kms::config::Builder::from(cfg)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts.clone())
            .build();
        let ddb = aws_sdk_dynamodb::config::Builder::from(cfg)
            .retry_config(RetryConfig::disabled())
            .timeout_config(timeouts)
            .build();
        Self {
            kms: aws_sdk_kms::Client::from_conf(kms),
            ddb: aws_sdk_dynamodb::Client::from_conf(ddb),
            table: res.table.clone(),
            key_id: res.kms_key_id.clone(),
            stack: res.stack_name.clone(),
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

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[async_trait]
impl SecretBackend for KmsSecrets {
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
            .item("updated_at", AttributeValue::N(now_secs().to_string()))
            .send()
            .await
            .map_err(|e| sdk_failure(name, "DynamoDB PutItem", &e))?;
        Ok(())
    }

    fn describe(&self) -> String {
        format!("kms key {}, table {}", self.key_id, self.table)
    }
}

/// **Development only.** Secrets in clear text in a local JSON file (`{"name": "value", …}`),
/// `secrets.dev.json` in the working directory unless `EXTENSION_DEV_SECRETS_FILE` says
/// otherwise. Used by the embedded backend (local runs without AWS); the file is written with
/// mode 0600 and `/secrets.dev.json` is git-ignored, but nothing is encrypted: never use it for
/// production values, and never deploy with `EXTENSION_BACKEND=embedded`.
#[derive(Debug)]
pub struct LocalSecrets {
    path: PathBuf,
    write_lock: tokio::sync::Mutex<()>,
}

impl LocalSecrets {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }
    /// The file named by `EXTENSION_DEV_SECRETS_FILE`, else `./secrets.dev.json`.
    pub fn from_env() -> Self {
        let path = std::env::var(DEV_FILE_VAR)
            .ok()
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_DEV_FILE.into());
        Self::new(path)
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}

type JsonMap = serde_json::Map<String, serde_json::Value>;

/// `Ok(None)` when the file does not exist.
fn read_dev_file(path: &Path, name: &str) -> Result<Option<JsonMap>, SecretError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(SecretError::unavailable(
                name,
                format!("cannot read {}: {e}", path.display()),
                false,
            ));
        }
    };
    let parsed = serde_json::from_str::<JsonMap>(&text);
    secrecy::zeroize::Zeroize::zeroize(&mut text.into_bytes());
    match parsed {
        Ok(map) => Ok(Some(map)),
        Err(_) => {
            tracing::warn!(file = %path.display(), "dev secrets file is not a JSON object");
            Err(SecretError::Corrupt {
                name: name.to_owned(),
            })
        }
    }
}

fn write_dev_file(path: &Path, map: &JsonMap) -> std::io::Result<()> {
    use std::io::Write;
    let text = serde_json::to_string_pretty(map).map_err(std::io::Error::other)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        // `mode` only applies to a new file: make sure a leftover temp file is private too.
        #[cfg(unix)]
        f.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    secrecy::zeroize::Zeroize::zeroize(&mut text.into_bytes());
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[async_trait]
impl SecretBackend for LocalSecrets {
    async fn fetch(&self, name: &str) -> Result<SecretString, SecretError> {
        let path = self.path.clone();
        let owned = name.to_owned();
        let map = tokio::task::spawn_blocking(move || read_dev_file(&path, &owned))
            .await
            .map_err(|e| {
                SecretError::unavailable(name, format!("dev file reader failed: {e}"), false)
            })??;
        match map.and_then(|mut m| m.remove(name)) {
            None => Err(SecretError::NotFound {
                name: name.to_owned(),
            }),
            Some(serde_json::Value::String(s)) => Ok(SecretString::from(s)),
            Some(_) => Err(SecretError::Corrupt {
                name: name.to_owned(),
            }),
        }
    }

    async fn store(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        validate_name(name)?;
        validate_value(name, value)?;
        let _guard = self.write_lock.lock().await;
        let path = self.path.clone();
        let owned = name.to_owned();
        let value = value.clone();
        tokio::task::spawn_blocking(move || {
            let mut map = read_dev_file(&path, &owned)?.unwrap_or_default();
            map.insert(
                owned.clone(),
                serde_json::Value::String(value.expose_secret().to_owned()),
            );
            write_dev_file(&path, &map).map_err(|e| {
                SecretError::unavailable(
                    &owned,
                    format!("cannot write {}: {e}", path.display()),
                    false,
                )
            })
        })
        .await
        .map_err(|e| {
            SecretError::unavailable(name, format!("dev file writer failed: {e}"), false)
        })?
    }

    fn describe(&self) -> String {
        format!("dev file {}", self.path.display())
    }
}

/// Retry schedule for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first included).
    pub attempts: u32,
    /// Delay before the second attempt; doubled before each later one.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting 50, 100, 200 and 400 ms between them.
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_millis(50),
        }
    }
}

/// Run `op` until it succeeds, fails permanently, runs out of attempts or reaches `deadline`.
async fn with_retries<T, F, Fut>(
    name: &str,
    deadline: Option<Instant>,
    policy: RetryPolicy,
    mut op: F,
) -> Result<T, SecretError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SecretError>>,
{
    let mut delay = policy.first_delay;
    let mut attempt = 1;
    let mut last: Option<String> = None;
    let past_deadline = |last: &Option<String>| {
        let detail = match last {
            Some(l) => format!("the deadline passed before it could be loaded (last error: {l})"),
            None => "the deadline passed before it could be loaded".to_owned(),
        };
        SecretError::unavailable(name, detail, true)
    };
    loop {
        let result = match deadline {
            Some(d) if Instant::now() >= d => return Err(past_deadline(&last)),
            Some(d) => match tokio::time::timeout_at(d.into(), op()).await {
                Ok(r) => r,
                Err(_) => return Err(past_deadline(&last)),
            },
            None => op().await,
        };
        let e = match result {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
        let SecretError::Unavailable { detail, .. } = &e else {
            return Err(e);
        };
        if attempt >= policy.attempts {
            return Err(SecretError::unavailable(
                name,
                format!("{detail} (gave up after {attempt} attempts)"),
                true,
            ));
        }
        if deadline.is_some_and(|d| Instant::now() + delay >= d) {
            last = Some(detail.clone());
            return Err(past_deadline(&last));
        }
        tracing::debug!(secret = name, attempt, error = %detail, "transient secret backend failure; retrying");
        last = Some(detail.clone());
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2);
        attempt += 1;
    }
}

struct Cached {
    value: SecretString,
    loaded: Instant,
}

/// The secrets service handed to functions (`inv.service::<SecretStore>()`): values are
/// fetched from the backend (KMS + DynamoDB, or the dev file) on first use, kept in memory as
/// [`SecretString`] for the TTL, and registered for log redaction.
///
/// Concurrent `get`s of the same name share one backend fetch.
pub struct SecretStore {
    backend: Arc<dyn SecretBackend>,
    ttl: Duration,
    retry: RetryPolicy,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretStore")
            .field("backend", &self.backend.describe())
            .field("ttl", &self.ttl)
            .field("fetches", &self.fetches())
            .finish_non_exhaustive()
    }
}

/// The cache TTL from `EXTENSION_SECRET_TTL_SECS` (seconds, fractions allowed, `0` = no
/// caching), else [`DEFAULT_TTL`].
pub fn ttl_from_env() -> Duration {
    std::env::var(TTL_VAR)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .unwrap_or(DEFAULT_TTL)
}

/// The backend `kind` selects: [`KmsSecrets`] over the shared SDK configuration, or the
/// dev-only [`LocalSecrets`] file.
pub async fn backend_for(kind: Backend, res: &Resources) -> Arc<dyn SecretBackend> {
    match kind {
        Backend::Aws => Arc::new(KmsSecrets::new(super::sdk_config().await, res)),
        Backend::Embedded => {
            let local = LocalSecrets::from_env();
            if crate::config::on_lambda() {
                tracing::warn!(file = %local.path().display(), "secrets come from a plaintext dev file on Lambda: use EXTENSION_BACKEND=aws");
            }
            Arc::new(local)
        }
    }
}

impl SecretStore {
    /// A store over `backend` with the default TTL and retry policy.
    pub fn new(backend: Arc<dyn SecretBackend>) -> Self {
        Self {
            backend,
            ttl: DEFAULT_TTL,
            retry: RetryPolicy::default(),
            slots: Mutex::new(HashMap::new()),
            fetches: AtomicU64::new(0),
        }
    }

    /// The store `run()` hands to functions: the backend `backend` selects, TTL from
    /// `EXTENSION_SECRET_TTL_SECS`.
    pub async fn from_env(backend: Backend, res: &Resources) -> SecretStore {
        Self::new(backend_for(backend, res).await).with_ttl(ttl_from_env())
    }

    /// Cache values for `ttl` (`Duration::ZERO`: fetch on every `get`).
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Where values come from (`kms key …, table …` or `dev file …`).
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// Backend fetches so far (attempts included), for tests and metrics.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The value of `name`: from the cache while fresh, else fetched (transient failures
    /// retried with exponential backoff, never past `deadline`). Pass the invocation's
    /// deadline: `store.get("name", Some(inv.deadline()))`.
    pub async fn get(
        &self,
        name: &str,
        deadline: Option<Instant>,
    ) -> Result<SecretString, SecretError> {
        validate_name(name)?;
        let slot = self
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(name.to_owned())
            .or_default()
            .clone();
        let mut cached = match deadline {
            Some(d) => tokio::time::timeout_at(d.into(), slot.lock())
                .await
                .map_err(|_| {
                    SecretError::unavailable(
                        name,
                        "the deadline passed while another call was loading it",
                        true,
                    )
                })?,
            None => slot.lock().await,
        };
        if let Some(c) = cached.as_ref()
            && c.loaded.elapsed() < self.ttl
        {
            return Ok(c.value.clone());
        }
        let value = with_retries(name, deadline, self.retry, || {
            self.fetches.fetch_add(1, Ordering::Relaxed);
            self.backend.fetch(name)
        })
        .await?;
        crate::telemetry::redact(value.expose_secret());
        *cached = Some(Cached {
            value: value.clone(),
            loaded: Instant::now(),
        });
        Ok(value)
    }

    /// Forget the cached value of `name` (the next `get` fetches it).
    pub fn invalidate(&self, name: &str) {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }
}

/// The secret `name` for the function serving `inv`, within its deadline. Fails with code
/// `secret_store_missing` when the deployment registered no [`SecretStore`].
pub async fn get_secret(
    inv: &crate::Invocation,
    name: &str,
) -> Result<SecretString, crate::ExtError> {
    let store = inv.service::<SecretStore>().ok_or_else(|| {
        crate::ExtError::with_code(
            "secret_store_missing",
            format!("secret {name} is needed but this deployment has no secret store"),
        )
    })?;
    Ok(store.get(name, Some(inv.deadline())).await?)
}

/// What `set-secret NAME` does: validate, register the value for redaction, and store it
/// through the backend `Backend::from_env()` selects (KMS `Encrypt` + `PutItem`, or the dev
/// file), retrying transient failures for up to 30 s. Returns the line to print:
/// `stored secret NAME (kms key …, table …)` or `stored secret NAME (dev file …)`.
pub async fn set_secret_from_env(name: &str, value: &SecretString) -> Result<String, SecretError> {
    validate_name(name)?;
    validate_value(name, value)?;
    crate::telemetry::redact(value.expose_secret());
    let backend = backend_for(Backend::from_env(), &Resources::from_env()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    with_retries(name, Some(deadline), RetryPolicy::default(), || {
        backend.store(name, value)
    })
    .await?;
    Ok(format!("stored secret {name} ({})", backend.describe()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    /// Fails with `errors` (in order), then returns `value`.
    struct Scripted {
        errors: Mutex<Vec<SecretError>>,
        calls: AtomicU32,
        delay: Duration,
    }

    impl Scripted {
        fn new(errors: Vec<SecretError>) -> Arc<Self> {
            Arc::new(Self {
                errors: Mutex::new(errors),
                calls: AtomicU32::new(0),
                delay: Duration::ZERO,
            })
        }
    }

    #[async_trait]
    impl SecretBackend for Scripted {
        async fn fetch(&self, _name: &str) -> Result<SecretString, SecretError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            let mut errors = self.errors.lock().unwrap();
            if errors.is_empty() {
                Ok(SecretString::from("scripted-value"))
            } else {
                Err(errors.remove(0))
            }
        }
        async fn store(&self, _name: &str, _value: &SecretString) -> Result<(), SecretError> {
            Ok(())
        }
    }

    fn transient() -> SecretError {
        SecretError::unavailable("n", "ThrottlingException: slow down", true)
    }

    #[tokio::test]
    async fn retries_transient_then_succeeds() {
        let b = Scripted::new(vec![transient(), transient()]);
        let store = SecretStore::new(b.clone());
        let started = Instant::now();
        let v = store.get("n", None).await.unwrap();
        assert_eq!(v.expose_secret(), "scripted-value");
        assert_eq!(store.fetches(), 3);
        // 50 + 100 ms of backoff
        assert!(started.elapsed() >= Duration::from_millis(150));
    }

    #[tokio::test]
    async fn never_retries_permanent_failures() {
        for e in [
            SecretError::NotFound { name: "n".into() },
            SecretError::AccessDenied { name: "n".into() },
            SecretError::WrongContext { name: "n".into() },
            SecretError::Corrupt { name: "n".into() },
            SecretError::unavailable("n", "ResourceNotFoundException: no table", false),
        ] {
            let store = SecretStore::new(Scripted::new(vec![e.clone()]));
            assert_eq!(store.get("n", None).await.unwrap_err(), e);
            assert_eq!(store.fetches(), 1);
        }
    }

    #[tokio::test]
    async fn gives_up_after_five_attempts() {
        let store = SecretStore::new(Scripted::new(vec![transient(); 10]));
        let e = store.get("n", None).await.unwrap_err();
        assert!(e.is_transient());
        assert!(e.to_string().contains("after 5 attempts"), "{e}");
        assert_eq!(store.fetches(), 5);
    }

    #[tokio::test]
    async fn deadline_bounds_retries() {
        let store = SecretStore::new(Scripted::new(vec![transient(); 10]));
        let started = Instant::now();
        let e = store
            .get("n", Some(Instant::now() + Duration::from_millis(120)))
            .await
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_millis(200));
        assert!(matches!(e, SecretError::Unavailable { .. }));
        assert!(e.to_string().contains("deadline"), "{e}");
        assert!(store.fetches() < 5);
    }

    #[tokio::test]
    async fn concurrent_gets_share_one_fetch() {
        let b = Arc::new(Scripted {
            errors: Mutex::new(vec![]),
            calls: AtomicU32::new(0),
            delay: Duration::from_millis(50),
        });
        let store = Arc::new(SecretStore::new(b.clone()));
        let (a, c) = tokio::join!(store.get("n", None), store.get("n", None));
        assert_eq!(a.unwrap().expose_secret(), c.unwrap().expose_secret());
        assert_eq!(b.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn names_and_values() {
        for ok in ["a", "API_key-1.prod", &"x".repeat(128)] {
            validate_name(ok).unwrap();
        }
        for bad in ["", "a b", "a/b", "é", "a#b", &"x".repeat(129)] {
            assert!(
                matches!(validate_name(bad), Err(SecretError::Invalid { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            value_from_input("n", b"v\n".to_vec())
                .unwrap()
                .expose_secret(),
            "v"
        );
        assert_eq!(
            value_from_input("n", b"v\r\n".to_vec())
                .unwrap()
                .expose_secret(),
            "v"
        );
        assert_eq!(
            value_from_input("n", b"v\n\n".to_vec())
                .unwrap()
                .expose_secret(),
            "v\n"
        );
        assert!(value_from_input("n", b"\n".to_vec()).is_err());
        assert!(value_from_input("n", vec![0xff, 0xfe]).is_err());
        assert!(value_from_input("n", vec![b'a'; MAX_VALUE_LEN + 1]).is_err());
    }

    #[test]
    fn ext_error_codes_name_the_secret() {
        let e: crate::ExtError = SecretError::WrongContext { name: "crm".into() }.into();
        assert_eq!(e.code.as_deref(), Some("secret_invalid_context"));
        assert!(e.message.contains("crm"));
        let e: crate::ExtError = SecretError::NotFound { name: "crm".into() }.into();
        assert_eq!(e.code.as_deref(), Some("secret_not_found"));
    }

    #[tokio::test]
    async fn local_file_round_trip_is_private() {
        let dir = std::env::temp_dir().join(format!("secrets-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("secrets.dev.json");
        let _ = std::fs::remove_file(&path);
        let local = LocalSecrets::new(&path);
        assert_eq!(
            local.fetch("a").await.unwrap_err(),
            SecretError::NotFound { name: "a".into() }
        );
        local
            .store("a", &SecretString::from("one-value"))
            .await
            .unwrap();
        local
            .store("b", &SecretString::from("two-value"))
            .await
            .unwrap();
        assert_eq!(local.fetch("a").await.unwrap().expose_secret(), "one-value");
        assert_eq!(local.fetch("b").await.unwrap().expose_secret(), "two-value");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
