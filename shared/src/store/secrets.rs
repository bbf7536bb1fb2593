//! Secrets: values encrypted with KMS, stored in the extension table, decrypted on first use
//! and cached for a few minutes.
//!
//! # Storage
//!
//! On AWS ([`KmsSecrets`](crate::aws::secrets::KmsSecrets)), one DynamoDB item per secret in
//! the extension table:
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
//! use integrator_lambda::{ExposeSecret, ExtResult, Invocation};
//!
//! async fn call_api(inv: Invocation) -> ExtResult<()> {
//!     let token = inv.secret("crm-api-token").await?;
//!     // or: inv.secrets()?.get("crm-api-token", Some(inv.deadline())).await?
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
//! plus `EXTENSION_TABLE`, `EXTENSION_KMS_KEY_ID` and `EXTENSION_STACK_NAME` (see
//! [`crate::app::settings`]).

use async_trait::async_trait;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

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
    pub fn unavailable(name: &str, detail: impl Into<String>, retryable: bool) -> Self {
        SecretError::Unavailable {
            name: name.to_owned(),
            detail: detail.into(),
            retryable,
        }
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
pub async fn with_retries<T, F, Fut>(
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

/// The secrets service handed to functions (`inv.secrets()?`): values are
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
