//! Every setting the process takes from its environment, read once at start-up, typed and
//! checked here (the same names locally, under SAM and on Lambda). Nothing else in the crate
//! reads the environment.
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `INTEGRATOR_EXTENSION_SYSTEM_TOKEN` | system token(s) accepted on `POST /function`; several, separated by commas, during a rotation | none: every `POST /function` gets 401 |
//! | `INTEGRATOR_EXTENSION_SYSTEM_TOKEN_SECRET` | name of a secret holding the token(s) (KMS-encrypted), preferred over the plain variable | none |
//! | `EXTENSION_DIY` | serve the module for `diy` calls | `true` |
//! | `EXTENSION_CONNECTOR_IDS` | serve the module for these `_connectorId`s (comma-separated) | none |
//! | `EXTENSION_TIMEOUT_SECS` | time budget when there is no Lambda deadline | `300` |
//! | `HOST`, `PORT` | local server address | `127.0.0.1`, `8080` |
//! | `EXTENSION_MAX_INFLIGHT_BYTES` | local server: request bytes held in memory at once | 256 MiB |
//! | `EXTENSION_BACKEND` | `aws` or `memory` (or `embedded`, its earlier name) | `aws` on Lambda or with `AWS_ENDPOINT_URL`, else `memory` |
//! | `EXTENSION_TABLE` | DynamoDB table (partition key `pk` S, TTL attribute `expires_at`) | `integrator-extension` |
//! | `EXTENSION_TABLE_INDEX` | the table's index (`gsi1pk`/`gsi1sk`) for due jobs and run streams | `gsi1` |
//! | `EXTENSION_KMS_KEY_ID` | KMS key (id, ARN or alias) secrets are encrypted with | `alias/integrator-extension` |
//! | `EXTENSION_STACK_NAME` | stack name bound into every secret's encryption context | `local` |
//! | `EXTENSION_QUEUE_URL` | SQS queue for accepted webhook events (the incoming queue) | none |
//! | `EXTENSION_WORK_QUEUE_URL` | SQS work queue: deferred jobs, rate-limited retries, run streams | `EXTENSION_QUEUE_URL` |
//! | `EXTENSION_RATE_LIMITS` | rate limits of queued invocations (see [`crate::jobs::limits`]) | none |
//! | `EXTENSION_STREAM_RETRY_SECS` | back-off step between retries of a failed stream | `30` |
//! | `EXTENSION_DEDUP_TTL_SECS` | how long a dedup key is remembered | 7 days |
//! | `EXTENSION_IDEMPOTENCY_TTL_SECS` | how long a completed idempotency record is kept | 24 h |
//! | `EXTENSION_SECRET_TTL_SECS` | how long a decrypted secret is cached (`0`: not cached) | `300` |
//! | `EXTENSION_DEV_SECRETS_FILE` | the memory backend's plaintext secrets file | `secrets.dev.json` |
//! | `EXTENSION_INCOMING_TIMEOUT_SECS` | time budget of an incoming webhook request off Lambda (on a Function URL: the Lambda deadline) | `10` |
//! | `EXTENSION_DEDUP_LEASE_SECS` | how long an incoming event's dedup key stays pending while it is queued | `30` |
//! | `EXTENSION_INCOMING_CONFIG` / `EXTENSION_INCOMING_ENDPOINTS` | incoming endpoints: a file path / JSON text (one of them) | the binary's defaults |
//! | `INTEGRATOR_API_URL` | integrator.io's API for `inv.integrator()`: `https://api.integrator.io` (North America) or `https://api.eu.integrator.io` (Europe), set by the template parameter `IntegratorRegion`; any `http(s)://` URL (a local double) | `https://api.integrator.io` |
//! | `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` | log level | `info` |
//! | `AWS_LAMBDA_LOG_FORMAT` or `LOG_FORMAT` | `json` for JSON lines | text |
//! | `EXTENSION_LOG_BUFFER` | `on`/`off`: a call's hidden debug lines kept and written only when it fails ([`crate::log_buffer`]) | `off` |
//! | `EXTENSION_METRICS` | `on`/`off`: CloudWatch EMF metrics on stdout ([`crate::metrics`]) | `on` on Lambda, else `off` |
//! | `EXTENSION_METRICS_NAMESPACE` | their CloudWatch namespace | `IntegratorExtensions` |
//! | `AWS_LAMBDA_FUNCTION_NAME` | the metrics' `Service` dimension | `local` |
//! | `AWS_LAMBDA_MAX_CONCURRENCY` | invocations served at once by one process (Lambda Managed Instances), 1..=1024 | `1` |
//!
//! A duration given in seconds accepts fractions. Every value is checked at start-up, with
//! bounds: call budgets at most 900 s (Lambda's maximum), leases, retry steps and the secret
//! cache at most a day, dedup and idempotency lifetimes at most a year. An unusable value — a
//! typo, a negative or infinite number, an out-of-range port, an unknown backend or flag —
//! stops the process with one error naming every offending variable, rather than quietly
//! serving with a default (a mistyped rate limit must not become "no limit").

use crate::incoming::IncomingConfig;
use crate::jobs::limits::{RateLimit, parse_limits};
use crate::store::{dedup, idempotency, secrets};
use crate::time::parse_secs;
use crate::transport::system_token::TokenSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub(crate) const TOKEN_VAR: &str = "INTEGRATOR_EXTENSION_SYSTEM_TOKEN";
pub(crate) const TOKEN_SECRET_VAR: &str = "INTEGRATOR_EXTENSION_SYSTEM_TOKEN_SECRET";
pub(crate) const INCOMING_FILE_VAR: &str = "EXTENSION_INCOMING_CONFIG";
pub(crate) const INCOMING_JSON_VAR: &str = "EXTENSION_INCOMING_ENDPOINTS";
pub(crate) const INFLIGHT_VAR: &str = "EXTENSION_MAX_INFLIGHT_BYTES";
pub(crate) const DEFAULT_PORT: u16 = 8080;
/// The name of the table's secondary index (`gsi1pk` S hash, `gsi1sk` S range) used to find
/// due jobs and the streams of a run.
pub(crate) const DEFAULT_INDEX: &str = "gsi1";
const LOG_BUFFER_VAR: &str = "EXTENSION_LOG_BUFFER";
const STREAM_RETRY_VAR: &str = "EXTENSION_STREAM_RETRY_SECS";
const DEFAULT_STREAM_RETRY: Duration = Duration::from_secs(30);

/// Where the stores are served from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// DynamoDB, KMS and SQS (on Lambda, or an emulator at `AWS_ENDPOINT_URL`).
    Aws,
    /// In-memory twins and the dev secrets file (local runs).
    Memory,
}

/// The log set-up (read before everything else, so the other settings can log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogSettings {
    pub level: String,
    pub json: bool,
    /// Buffered debug logs (`EXTENSION_LOG_BUFFER=on`, see [`crate::log_buffer`]).
    pub buffer: bool,
}

impl LogSettings {
    pub fn from_env() -> Self {
        Self::from_lookup(&env_lookup)
    }

    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Self {
        let is_json = |name: &str| get(name).is_some_and(|f| f.eq_ignore_ascii_case("json"));
        Self {
            level: get("AWS_LAMBDA_LOG_LEVEL")
                .or_else(|| get("RUST_LOG"))
                .unwrap_or_else(|| "info".into())
                .to_lowercase(),
            json: is_json("AWS_LAMBDA_LOG_FORMAT") || is_json("LOG_FORMAT"),
            buffer: get(LOG_BUFFER_VAR)
                .and_then(|v| flag(&v.to_ascii_lowercase()))
                .unwrap_or(false),
        }
    }
}

/// The names of the AWS resources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AwsNames {
    pub table: String,
    pub table_index: String,
    pub kms_key_id: String,
    pub stack_name: String,
    /// The incoming queue (accepted webhook events).
    pub incoming_queue_url: Option<String>,
    /// The work queue (deferred jobs, rate-limited retries, runs); falls back to the incoming
    /// queue.
    pub work_queue_url: Option<String>,
}

/// Every setting, typed.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Inside a Lambda execution environment (`AWS_LAMBDA_RUNTIME_API`).
    pub on_lambda: bool,
    pub backend: Backend,
    pub aws: AwsNames,
    pub diy: bool,
    pub connector_ids: Vec<String>,
    /// The time budget of a call without a Lambda deadline (`None`: the dispatcher's default).
    pub timeout: Option<Duration>,
    /// The system tokens from [`TOKEN_VAR`].
    pub tokens: TokenSet,
    /// The secret holding the system tokens ([`TOKEN_SECRET_VAR`]).
    pub token_secret: Option<String>,
    pub listen: SocketAddr,
    /// The local server's in-flight byte budget (`None`: its default; `Some(0)`: unlimited).
    pub inflight_bytes: Option<usize>,
    /// Invocations the Lambda runtime loop serves at once (`AWS_LAMBDA_MAX_CONCURRENCY`).
    pub lambda_concurrency: usize,
    pub rate_limits: Vec<RateLimit>,
    pub stream_retry: Duration,
    pub dedup_ttl: Duration,
    pub idempotency_ttl: Duration,
    pub secret_ttl: Duration,
    pub dev_secrets_file: PathBuf,
    /// Incoming endpoints configured by the environment (a file path, JSON text), read by
    /// the binaries that serve them ([`Settings::incoming_config`]).
    pub incoming_file: Option<String>,
    pub incoming_json: Option<String>,
    /// Time budget of an incoming request without a platform deadline.
    pub incoming_timeout: Duration,
    /// How long an incoming event's dedup key stays pending (at least the time budget + 5 s).
    pub dedup_lease: Duration,
    pub metrics: crate::metrics::MetricsConfig,
    /// integrator.io's API base URL (`INTEGRATOR_API_URL`).
    pub integrator_api_url: String,
}

/// A setting that cannot be served as given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SettingsError(pub String);

/// The longest call budget a setting may give: Lambda's 15-minute maximum.
const MAX_CALL: Duration = Duration::from_secs(900);
/// The longest lease, retry delay or secret cache time.
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The longest dedup or idempotency record lifetime (a year).
const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// `true`/`false` in the spellings people use (lowercase input).
fn flag(v: &str) -> Option<bool> {
    match v {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

impl Settings {
    /// The process's settings.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_lookup(&env_lookup)
    }

    /// The settings from `get` (trimmed, non-empty values), e.g. a map in tests.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        // Every unusable value is collected and the whole configuration refused at start-up
        // (a typo in a limit must not quietly become "no limit").
        let problems = std::cell::RefCell::new(Vec::<String>::new());
        let problem = |p: String| problems.borrow_mut().push(p);
        let secs = |name: &str, default: Duration, zero_ok: bool, max: Duration| match parse_secs(
            name,
            get(name).as_deref(),
            default,
            zero_ok,
        ) {
            Ok(d) if d <= max => d,
            Ok(_) => {
                problem(format!(
                    "{name} must be at most {} s (got {:?})",
                    max.as_secs(),
                    get(name).unwrap_or_default()
                ));
                default
            }
            Err(e) => {
                problem(e);
                default
            }
        };
        let on_lambda = get("AWS_LAMBDA_RUNTIME_API").is_some();
        let backend = match get("EXTENSION_BACKEND")
            .map(|v| v.to_ascii_lowercase())
            .as_deref()
        {
            Some("aws") => Backend::Aws,
            // `embedded` is the earlier name of `memory`, still accepted.
            Some("memory" | "embedded") => Backend::Memory,
            Some(other) => {
                problem(format!(
                    "EXTENSION_BACKEND must be aws or memory (got {other:?})"
                ));
                Backend::Memory
            }
            _ if on_lambda || get("AWS_ENDPOINT_URL").is_some() => Backend::Aws,
            _ => Backend::Memory,
        };
        let incoming_queue_url = get("EXTENSION_QUEUE_URL");
        let aws = AwsNames {
            table: get("EXTENSION_TABLE").unwrap_or_else(|| "integrator-extension".into()),
            table_index: get("EXTENSION_TABLE_INDEX").unwrap_or_else(|| DEFAULT_INDEX.into()),
            kms_key_id: get("EXTENSION_KMS_KEY_ID")
                .unwrap_or_else(|| "alias/integrator-extension".into()),
            stack_name: get("EXTENSION_STACK_NAME").unwrap_or_else(|| "local".into()),
            work_queue_url: get("EXTENSION_WORK_QUEUE_URL").or_else(|| incoming_queue_url.clone()),
            incoming_queue_url,
        };
        let rate_limits = match get("EXTENSION_RATE_LIMITS") {
            Some(text) => parse_limits(&text).unwrap_or_else(|e| {
                problem(format!("EXTENSION_RATE_LIMITS: {e}"));
                Vec::new()
            }),
            None => Vec::new(),
        };
        let raw_tokens = get(TOKEN_VAR).unwrap_or_default();
        let listen = SocketAddr::new(
            match get("HOST") {
                None => IpAddr::V4(Ipv4Addr::LOCALHOST),
                Some(h) => h.parse::<IpAddr>().unwrap_or_else(|_| {
                    problem(format!("HOST must be an IP address (got {h:?})"));
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                }),
            },
            match get("PORT") {
                None => DEFAULT_PORT,
                Some(p) => p.parse::<u16>().unwrap_or_else(|_| {
                    problem(format!("PORT must be a port number, 0..=65535 (got {p:?})"));
                    DEFAULT_PORT
                }),
            },
        );
        let inflight_bytes = get(INFLIGHT_VAR).and_then(|v| match v.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                problem(format!(
                    "{INFLIGHT_VAR} must be a number of bytes (got {v:?})"
                ));
                None
            }
        });
        let lambda_concurrency = match get("AWS_LAMBDA_MAX_CONCURRENCY") {
            None => 1,
            Some(v) => match v.trim().parse::<usize>() {
                Ok(n @ 1..=1024) => n,
                _ => {
                    problem(format!(
                        "AWS_LAMBDA_MAX_CONCURRENCY must be a number from 1 to 1024 (got {v:?})"
                    ));
                    1
                }
            },
        };
        let incoming_timeout = secs(
            "EXTENSION_INCOMING_TIMEOUT_SECS",
            crate::incoming::DEFAULT_TIMEOUT,
            false,
            MAX_CALL,
        );
        let diy = match get("EXTENSION_DIY").map(|v| v.to_ascii_lowercase()) {
            None => true,
            Some(v) => flag(&v).unwrap_or_else(|| {
                problem(format!("EXTENSION_DIY must be true or false (got {v:?})"));
                true
            }),
        };
        if let Some(v) = get(LOG_BUFFER_VAR)
            && flag(&v.to_ascii_lowercase()).is_none()
        {
            problem(format!("{LOG_BUFFER_VAR} must be on or off (got {v:?})"));
        }
        let metrics_on = match get("EXTENSION_METRICS").map(|v| v.to_ascii_lowercase()) {
            None => on_lambda,
            Some(v) => flag(&v).unwrap_or_else(|| {
                problem(format!("EXTENSION_METRICS must be on or off (got {v:?})"));
                on_lambda
            }),
        };
        let integrator_api_url = match get("INTEGRATOR_API_URL") {
            None => crate::outgoing::integrator::NA_URL.to_owned(),
            Some(u) if u.starts_with("https://") || u.starts_with("http://") => u,
            Some(u) => {
                problem(format!(
                    "INTEGRATOR_API_URL must be an http(s):// URL (got {u:?})"
                ));
                crate::outgoing::integrator::NA_URL.to_owned()
            }
        };
        let settings = Self {
            integrator_api_url,
            on_lambda,
            backend,
            aws,
            diy,
            connector_ids: get("EXTENSION_CONNECTOR_IDS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            timeout: get("EXTENSION_TIMEOUT_SECS")
                .is_some()
                .then(|| secs("EXTENSION_TIMEOUT_SECS", Duration::ZERO, false, MAX_CALL))
                .filter(|d| !d.is_zero()),
            tokens: TokenSet::parse_redacted(&raw_tokens),
            token_secret: get(TOKEN_SECRET_VAR),
            listen,
            inflight_bytes,
            lambda_concurrency,
            rate_limits,
            stream_retry: secs(STREAM_RETRY_VAR, DEFAULT_STREAM_RETRY, false, DAY),
            dedup_ttl: secs(dedup::TTL_VAR, dedup::DEFAULT_TTL, false, MAX_TTL),
            idempotency_ttl: secs(
                idempotency::TTL_VAR,
                idempotency::DEFAULT_TTL,
                false,
                MAX_TTL,
            ),
            secret_ttl: secs(secrets::TTL_VAR, secrets::DEFAULT_TTL, true, DAY),
            dev_secrets_file: PathBuf::from(
                get(secrets::DEV_FILE_VAR).unwrap_or_else(|| secrets::DEFAULT_DEV_FILE.into()),
            ),
            incoming_file: get(INCOMING_FILE_VAR),
            incoming_json: get(INCOMING_JSON_VAR),
            incoming_timeout,
            dedup_lease: secs(
                "EXTENSION_DEDUP_LEASE_SECS",
                crate::incoming::DEFAULT_LEASE,
                false,
                DAY,
            )
            .max(incoming_timeout + Duration::from_secs(5)),
            metrics: crate::metrics::MetricsConfig {
                enabled: metrics_on,
                namespace: get("EXTENSION_METRICS_NAMESPACE")
                    .filter(|n| !n.trim().is_empty())
                    .unwrap_or_else(|| crate::metrics::DEFAULT_NAMESPACE.into()),
                service: get("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|| "local".into()),
            },
        };
        let problems = problems.into_inner();
        if problems.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError(problems.join("; ")))
        }
    }

    /// The incoming endpoints the environment configures (replacing the binary's defaults):
    /// from [`INCOMING_FILE_VAR`] (a file) or [`INCOMING_JSON_VAR`] (JSON text); setting both
    /// is an error (which one wins would be a guess).
    pub fn incoming_config(&self) -> Result<Option<IncomingConfig>, SettingsError> {
        match (&self.incoming_file, &self.incoming_json) {
            (Some(_), Some(_)) => Err(SettingsError(format!(
                "set only one of {INCOMING_FILE_VAR} and {INCOMING_JSON_VAR}"
            ))),
            (Some(path), None) => IncomingConfig::from_file(std::path::Path::new(path))
                .map(Some)
                .map_err(|e| SettingsError(e.to_string())),
            (None, Some(text)) => IncomingConfig::from_json(text)
                .map(Some)
                .map_err(|e| SettingsError(format!("{INCOMING_JSON_VAR}: {}", e.0))),
            (None, None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests;
