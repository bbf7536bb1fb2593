//! Endpoint configuration: what each `POST /incoming/{name}` accepts, how it authenticates and
//! how it deduplicates.
//!
//! The configuration is one JSON object mapping endpoint names to endpoint settings, read from
//! a file named by `EXTENSION_INCOMING_CONFIG` or from the JSON text in
//! `EXTENSION_INCOMING_ENDPOINTS` (see [`crate::app::settings`]):
//!
//! ```json
//! {
//!   "demo":   { "auth": "none", "dedup": "body" },
//!   "orders": {
//!     "auth":  { "type": "hmac", "secret": { "secret": "orders-webhook" } },
//!     "dedup": { "fields": ["order.id"], "headers": ["webhook-id"] },
//!     "forwardHeaders": ["webhook-id", "x-shop-domain"]
//!   },
//!   "crm": {
//!     "auth":  { "type": "jwt", "algorithm": "RS256", "publicKey": { "file": "/opt/crm.pem" },
//!                "audience": "integrator-extension", "issuer": "https://crm.example.com" },
//!     "dedup": { "callerHeader": "x-dedup-key" }
//!   }
//! }
//! ```
//!
//! Endpoint settings (unknown keys are rejected, so a typo cannot silently disable a check):
//!
//! | key | meaning | default |
//! |---|---|---|
//! | `auth` | `"none"`, `{"type":"jwt",…}` or `{"type":"hmac",…}` (below) | `"none"` |
//! | `dedup` | absent/`null`: no dedup (always 200); `"body"`: the whole body; `"header"`: only the caller's header; or an object (below) | none |
//! | `forwardHeaders` | request headers copied into the queued event (secret-looking ones are never copied) | `content-type`, `user-agent`, `x-request-id`, `webhook-id`, `webhook-timestamp` |
//! | `function` | the webhook function the queue worker runs with each accepted event (registered with `Module::webhook`; see [`crate::worker`]) | none: the event waits in the queue for another consumer and, on the stack, reaches its dead-letter queue |
//!
//! `auth` objects:
//!
//! - `{"type": "jwt", "algorithm": "HS256", "secret": S}` or `{"type": "jwt", "algorithm":
//!   "RS256", "publicKey": S}` (a PEM public key), plus optional `audience` and `issuer` (a
//!   string or a list; checked and required when set) and `leewaySecs` (clock skew allowed on
//!   `exp`, default 60, at most 3600) and `maxLifetimeSecs` (`exp` at most this far from now and from `iat`,
//!   default 3600; `null` for no limit) and `jtiReplay` (`true`: single-use tokens — `jti` is
//!   required and a `jti` already accepted is refused until the token expires, so the sender
//!   mints a new token per request, retries included; default `false`). The algorithm is pinned: a token signed with any other algorithm
//!   (including `none`) is refused; `exp` is required. The token is read from
//!   `Authorization: Bearer …`.
//! - `{"type": "hmac", "secret": S}` plus optional `toleranceSecs` (default 300, 1 to 3600):
//!   Standard Webhooks signatures (`webhook-id`, `webhook-timestamp`, `webhook-signature:
//!   v1,<base64>`). A secret starting with `whsec_` is the base64 of the key (as Standard
//!   Webhooks issues them; it must decode to at least one byte); any other string is used as
//!   the key's bytes. Surrounding whitespace is trimmed.
//!
//! An HS256 secret is trimmed the same way and must be at least 32 bytes (RFC 7518 §3.2: a
//! key at least as long as the hash output). Inline and file secrets are checked at start-up;
//! a named secret when it is first resolved (an unusable one answers 500 `misconfigured`).
//! A request carrying any of `webhook-id`, `webhook-timestamp`, `webhook-signature` (HMAC
//! endpoints) or `Authorization` (JWT endpoints) more than once is refused (401): the
//! signature and the replay record must read the same single value.
//!
//! `dedup` objects: `fields` (dotted paths into the *original* body, `a.b.0.c`), `headers`
//! (header names), at most five in all; or `"wholeBody": true`; plus `callerHeader` (opt-in: a
//! header that, when present, is the dedup key and overrides the selection, e.g.
//! `"x-dedup-key"`; off by default, because a caller who chooses keys can burn them in advance;
//! `"dedup": "header"` is `{"callerHeader": "x-dedup-key"}`) and `ttlSecs` (how long after its last sighting a key
//! keeps rejecting duplicates; default 7 days).
//!
//! Secrets (`S` above) are one of:
//!
//! - a JSON string: the value itself. **Development only**: on Lambda the configuration lives
//!   in the function's environment, readable by anyone allowed
//!   `lambda:GetFunctionConfiguration`;
//! - `{"secret": "<name>"}`: a name looked up through the [`SecretResolver`] given to
//!   [`IncomingApp`](super::IncomingApp) (on AWS: the encrypted secret store); this is what a
//!   deployed configuration should use;
//! - `{"file": "<path>"}`: the contents of a file, read once at start-up (PEM keys, mounted
//!   secrets).
//!
//! [`SecretResolver`]: super::SecretResolver

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// The caller's dedup header when the configuration does not name one.
pub const DEFAULT_CALLER_HEADER: &str = "x-dedup-key";
/// Headers copied into the queued event when `forwardHeaders` is not set.
pub const DEFAULT_FORWARD_HEADERS: [&str; 5] = [
    "content-type",
    "user-agent",
    "x-request-id",
    "webhook-id",
    "webhook-timestamp",
];
/// Default clock skew allowed on a JWT's `exp`.
pub const DEFAULT_JWT_LEEWAY_SECS: u64 = 60;
/// Default Standard Webhooks timestamp tolerance.
pub const DEFAULT_HMAC_TOLERANCE_SECS: u64 = 300;
/// Longest endpoint name.
pub const MAX_NAME_LEN: usize = 64;
/// Largest `leewaySecs`: one hour. The leeway only absorbs clock skew between the token's
/// issuer and us (seconds, minutes at worst); more would mostly extend the life of expired
/// tokens, and a value near the epoch's age breaks the `exp` check altogether.
pub const MAX_JWT_LEEWAY_SECS: u64 = 3600;
/// Largest `toleranceSecs`: one hour. Standard Webhooks recommends five minutes; a huge
/// tolerance would switch the timestamp check (and with it the replay window) off.
pub const MAX_HMAC_TOLERANCE_SECS: u64 = 3600;

/// A configuration problem found at start-up.
#[derive(Debug, thiserror::Error)]
#[error("incoming endpoints: {0}")]
pub struct IncomingConfigError(pub String);

impl IncomingConfigError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        Self(msg.into())
    }
}

/// Every endpoint, by name.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct IncomingConfig {
    /// The endpoints, by the name in `/incoming/{name}`.
    pub endpoints: BTreeMap<String, EndpointConfig>,
}

/// One endpoint's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointConfig {
    /// How requests are authenticated (default: not at all).
    #[serde(default)]
    pub auth: AuthConfig,
    /// How duplicates are recognised; `None`: every event is queued.
    #[serde(default)]
    pub dedup: Option<DedupConfig>,
    /// Request headers copied into the queued event ([`DEFAULT_FORWARD_HEADERS`] by default).
    #[serde(default = "default_forward_headers")]
    pub forward_headers: Vec<String>,
    /// The webhook function (registered with `Module::webhook`) the queue worker runs for each
    /// accepted event; `None`: the event is queued for another consumer.
    #[serde(default)]
    pub function: Option<String>,
}

fn default_forward_headers() -> Vec<String> {
    DEFAULT_FORWARD_HEADERS
        .iter()
        .map(|h| (*h).to_owned())
        .collect()
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self {
            auth: AuthConfig::None,
            dedup: None,
            forward_headers: default_forward_headers(),
            function: None,
        }
    }
}

impl EndpointConfig {
    /// An endpoint without authentication or dedup.
    pub fn open() -> Self {
        Self::default()
    }
    /// The same endpoint, authenticated by `auth`.
    pub fn with_auth(mut self, auth: AuthConfig) -> Self {
        self.auth = auth;
        self
    }
    /// The same endpoint, dropping duplicates as `dedup` says.
    pub fn with_dedup(mut self, dedup: DedupConfig) -> Self {
        self.dedup = Some(dedup);
        self
    }
    /// Run the webhook function `name` for each accepted event (see [`crate::worker`]).
    pub fn with_function(mut self, name: impl Into<String>) -> Self {
        self.function = Some(name.into());
        self
    }
}

/// How an endpoint authenticates requests.
#[derive(Debug, Clone, Default)]
pub enum AuthConfig {
    /// Anyone who knows the URL may post.
    #[default]
    None,
    /// A bearer JWT (HS256 or RS256).
    Jwt(JwtConfig),
    /// A Standard Webhooks HMAC signature.
    Hmac(HmacConfig),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum TaggedAuth {
    None,
    Jwt(JwtConfig),
    Hmac(HmacConfig),
}

impl<'de> Deserialize<'de> for AuthConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        match v {
            Value::Null => Ok(AuthConfig::None),
            Value::String(s) if s == "none" => Ok(AuthConfig::None),
            Value::String(s) => Err(D::Error::custom(format!(
                "auth \"{s}\": use \"none\" or an object with \"type\": \"jwt\" or \"hmac\""
            ))),
            v @ Value::Object(_) => match serde_json::from_value::<TaggedAuth>(v) {
                Ok(TaggedAuth::None) => Ok(AuthConfig::None),
                Ok(TaggedAuth::Jwt(j)) => Ok(AuthConfig::Jwt(j)),
                Ok(TaggedAuth::Hmac(h)) => Ok(AuthConfig::Hmac(h)),
                Err(e) => Err(D::Error::custom(format!("auth: {e}"))),
            },
            _ => Err(D::Error::custom("auth must be \"none\" or an object")),
        }
    }
}

/// The JWT algorithms an endpoint can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, verified with a PEM public key.
    RS256,
}

/// `auth: {"type": "jwt", …}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtConfig {
    /// The one algorithm accepted (tokens signed otherwise are refused).
    pub algorithm: JwtAlgorithm,
    /// HS256: the shared secret.
    #[serde(default)]
    pub secret: Option<SecretValue>,
    /// RS256: the PEM public key (`-----BEGIN PUBLIC KEY-----` or `BEGIN RSA PUBLIC KEY`).
    #[serde(default)]
    pub public_key: Option<SecretValue>,
    /// Accepted `aud` values; when set, `aud` is required and must match one of them.
    #[serde(default, deserialize_with = "one_or_many")]
    pub audience: Vec<String>,
    /// Accepted `iss` values; when set, `iss` is required and must be one of them.
    #[serde(default, deserialize_with = "one_or_many")]
    pub issuer: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_secs: u64,
    /// The longest a token may be valid: `exp` at most this far from now (and from `iat` when
    /// present). A stolen long-lived token is then useless soon. `null`: no limit.
    #[serde(default = "default_max_lifetime")]
    pub max_lifetime_secs: Option<u64>,
    /// Single-use tokens: `jti` is required, and a token whose `jti` was accepted before is
    /// refused until it expires. The sender must then mint a new token for every request,
    /// retries included. Off by default.
    #[serde(default)]
    pub jti_replay: bool,
}

fn default_leeway() -> u64 {
    DEFAULT_JWT_LEEWAY_SECS
}

/// Default [`JwtConfig::max_lifetime_secs`]: one hour.
pub const DEFAULT_JWT_MAX_LIFETIME_SECS: u64 = 3600;

fn default_max_lifetime() -> Option<u64> {
    Some(DEFAULT_JWT_MAX_LIFETIME_SECS)
}

impl JwtConfig {
    /// HS256 with `secret`, no audience or issuer check.
    pub fn hs256(secret: SecretValue) -> Self {
        Self {
            algorithm: JwtAlgorithm::HS256,
            secret: Some(secret),
            public_key: None,
            audience: Vec::new(),
            issuer: Vec::new(),
            leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
            max_lifetime_secs: default_max_lifetime(),
            jti_replay: false,
        }
    }
    /// RS256 with a PEM `public_key`, no audience or issuer check.
    pub fn rs256(public_key: SecretValue) -> Self {
        Self {
            algorithm: JwtAlgorithm::RS256,
            secret: None,
            public_key: Some(public_key),
            audience: Vec::new(),
            issuer: Vec::new(),
            leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
            max_lifetime_secs: default_max_lifetime(),
            jti_replay: false,
        }
    }
}

/// `auth: {"type": "hmac", …}`: Standard Webhooks signatures.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HmacConfig {
    /// The signing secret (`whsec_`-prefixed base64, or raw bytes).
    pub secret: SecretValue,
    /// How far the `webhook-timestamp` may be from now, in seconds.
    #[serde(default = "default_tolerance")]
    pub tolerance_secs: u64,
}

fn default_tolerance() -> u64 {
    DEFAULT_HMAC_TOLERANCE_SECS
}

impl HmacConfig {
    /// HMAC with `secret` and the default tolerance ([`DEFAULT_HMAC_TOLERANCE_SECS`]).
    pub fn new(secret: SecretValue) -> Self {
        Self {
            secret,
            tolerance_secs: DEFAULT_HMAC_TOLERANCE_SECS,
        }
    }
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

/// Which requests count as the same event.
/// The default selects nothing and takes no caller key (opt-in: a caller-chosen key lets
/// whoever can call the endpoint burn keys in advance).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DedupConfig {
    /// Hash the whole body (canonical JSON: key order and whitespace do not matter).
    pub whole_body: bool,
    /// Dotted paths into the original body.
    pub fields: Vec<String>,
    /// Header names (case-insensitive).
    pub headers: Vec<String>,
    /// A header whose value, when present, is the key (hashed with the endpoint name).
    pub caller_header: Option<String>,
    /// Lifetime of a key after its last sighting; `None` = the [`Dedup`] service's TTL.
    ///
    /// [`Dedup`]: crate::store::dedup::Dedup
    pub ttl_secs: Option<u64>,
}

impl DedupConfig {
    /// `"dedup": "body"`.
    pub fn whole_body() -> Self {
        Self {
            whole_body: true,
            ..Self::default()
        }
    }
    /// `"dedup": {"fields": …}`.
    pub fn fields<S: Into<String>>(fields: impl IntoIterator<Item = S>) -> Self {
        Self {
            fields: fields.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
    /// `"dedup": "header"`: only the caller's header (requests without it are not deduplicated).
    pub fn caller_header_only() -> Self {
        Self {
            caller_header: Some(DEFAULT_CALLER_HEADER.to_owned()),
            ..Self::default()
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DedupObject {
    #[serde(default)]
    whole_body: bool,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    headers: Vec<String>,
    #[serde(default)]
    caller_header: Option<String>,
    #[serde(default)]
    ttl_secs: Option<u64>,
}

impl<'de> Deserialize<'de> for DedupConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        match v {
            Value::String(s) if s == "body" => Ok(Self::whole_body()),
            Value::String(s) if s == "header" => Ok(Self::caller_header_only()),
            Value::String(s) => Err(D::Error::custom(format!(
                "dedup \"{s}\": use \"body\", \"header\" or an object"
            ))),
            v @ Value::Object(_) => {
                let o: DedupObject = serde_json::from_value(v)
                    .map_err(|e| D::Error::custom(format!("dedup: {e}")))?;
                Ok(Self {
                    whole_body: o.whole_body,
                    fields: o.fields,
                    headers: o.headers,
                    caller_header: o.caller_header,
                    ttl_secs: o.ttl_secs,
                })
            }
            _ => Err(D::Error::custom(
                "dedup must be \"body\", \"header\", an object or null",
            )),
        }
    }
}

/// A secret in the configuration (see the module docs).
#[derive(Clone)]
pub enum SecretValue {
    /// The value itself (development).
    Inline(SecretString),
    /// A name for the [`SecretResolver`](super::SecretResolver).
    Named(String),
    /// A file read at start-up.
    File(PathBuf),
}

impl SecretValue {
    /// The value itself (development and tests).
    pub fn inline(value: impl Into<String>) -> Self {
        Self::Inline(SecretString::from(value.into()))
    }
    /// A secret looked up by name at start-up.
    pub fn named(name: impl Into<String>) -> Self {
        Self::Named(name.into())
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretValue::Inline(s) => {
                write!(f, "Inline(<{} bytes redacted>)", s.expose_secret().len())
            }
            SecretValue::Named(n) => write!(f, "Named({n:?})"),
            SecretValue::File(p) => write!(f, "File({p:?})"),
        }
    }
}

impl<'de> Deserialize<'de> for SecretValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Named {
            secret: String,
        }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            file: PathBuf,
        }
        let v = Value::deserialize(d)?;
        let bad = || {
            D::Error::custom(
                "a secret is a string (development only), {\"secret\": \"<name>\"} or {\"file\": \"<path>\"}",
            )
        };
        match v {
            Value::String(s) if !s.is_empty() => Ok(Self::Inline(SecretString::from(s))),
            v @ Value::Object(_) if v.get("secret").is_some() => {
                let n: Named = serde_json::from_value(v).map_err(|_| bad())?;
                if n.secret.trim().is_empty() {
                    return Err(bad());
                }
                Ok(Self::Named(n.secret))
            }
            v @ Value::Object(_) if v.get("file").is_some() => {
                let f: File = serde_json::from_value(v).map_err(|_| bad())?;
                Ok(Self::File(f.file))
            }
            _ => Err(bad()),
        }
    }
}

impl IncomingConfig {
    /// Parse the JSON configuration text.
    pub fn from_json(text: &str) -> Result<Self, IncomingConfigError> {
        let c: Self =
            serde_json::from_str(text).map_err(|e| IncomingConfigError::new(e.to_string()))?;
        c.validate()?;
        Ok(c)
    }

    /// Read the configuration from the file at `path`.
    pub fn from_file(path: &std::path::Path) -> Result<Self, IncomingConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            IncomingConfigError::new(format!("cannot read {}: {e}", path.display()))
        })?;
        Self::from_json(&text)
            .map_err(|e| IncomingConfigError::new(format!("{}: {}", path.display(), e.0)))
    }

    /// Add (or replace) an endpoint.
    pub fn with(mut self, name: impl Into<String>, endpoint: EndpointConfig) -> Self {
        self.endpoints.insert(name.into(), endpoint);
        self
    }

    /// Check names and settings that serde cannot (also done by `IncomingApp::new`).
    pub fn validate(&self) -> Result<(), IncomingConfigError> {
        for (name, ep) in &self.endpoints {
            let err = |m: String| IncomingConfigError::new(format!("endpoint \"{name}\": {m}"));
            if !valid_name(name) {
                return Err(err(format!(
                    "names are 1 to {MAX_NAME_LEN} characters from A-Z a-z 0-9 _ - ."
                )));
            }
            if ep.function.as_deref().is_some_and(|f| f.trim().is_empty()) {
                return Err(err("\"function\" must name a webhook function".into()));
            }
            if let AuthConfig::Jwt(j) = &ep.auth {
                match (j.algorithm, &j.secret, &j.public_key) {
                    (JwtAlgorithm::HS256, Some(_), None) | (JwtAlgorithm::RS256, None, Some(_)) => {
                    }
                    (JwtAlgorithm::HS256, _, _) => {
                        return Err(err("HS256 needs \"secret\" (and no \"publicKey\")".into()));
                    }
                    (JwtAlgorithm::RS256, _, _) => {
                        return Err(err("RS256 needs \"publicKey\" (and no \"secret\")".into()));
                    }
                }
                if j.audience
                    .iter()
                    .chain(&j.issuer)
                    .any(|s| s.trim().is_empty())
                {
                    return Err(err("audience and issuer values must not be empty".into()));
                }
                if j.leeway_secs > MAX_JWT_LEEWAY_SECS {
                    return Err(err(format!(
                        "leewaySecs is {}; at most {MAX_JWT_LEEWAY_SECS} is allowed (it only absorbs clock skew)",
                        j.leeway_secs
                    )));
                }
            }
            if let AuthConfig::Hmac(h) = &ep.auth
                && !(1..=MAX_HMAC_TOLERANCE_SECS).contains(&h.tolerance_secs)
            {
                return Err(err(format!(
                    "toleranceSecs is {}; it must be 1 to {MAX_HMAC_TOLERANCE_SECS}",
                    h.tolerance_secs
                )));
            }
            if let Some(d) = &ep.dedup {
                let selected = d.fields.len() + d.headers.len();
                if selected > crate::store::dedup::MAX_KEY_FIELDS {
                    return Err(err(format!(
                        "dedup selects {selected} fields and headers; at most {} are allowed",
                        crate::store::dedup::MAX_KEY_FIELDS
                    )));
                }
                if d.whole_body && selected > 0 {
                    return Err(err(
                        "dedup: \"wholeBody\" cannot be combined with fields or headers".into(),
                    ));
                }
                if !d.whole_body && selected == 0 && d.caller_header.is_none() {
                    return Err(err("dedup selects nothing (use null to turn it off)".into()));
                }
                if d.fields.iter().any(|f| f.trim().is_empty()) {
                    return Err(err("dedup fields must not be empty".into()));
                }
                for h in d.headers.iter().chain(&d.caller_header) {
                    if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                        return Err(err(format!("\"{h}\" is not a header name")));
                    }
                }
                if d.ttl_secs == Some(0) {
                    return Err(err("dedup ttlSecs must be positive".into()));
                }
            }
            for h in &ep.forward_headers {
                if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    return Err(err(format!("\"{h}\" is not a header name")));
                }
            }
        }
        Ok(())
    }
}

/// Is `name` usable as an endpoint name (and so safe to echo)?
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && name != "."
        && name != ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let c = IncomingConfig::from_json(
            r#"{
              "demo": {"auth": "none", "dedup": "body"},
              "plain": {},
              "hook": {"auth": {"type": "hmac", "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "toleranceSecs": 60},
                       "dedup": {"fields": ["order.id"], "headers": ["webhook-id"], "callerHeader": null}},
              "jwt": {"auth": {"type": "jwt", "algorithm": "RS256", "publicKey": {"file": "/k.pem"},
                               "audience": "me", "issuer": ["a", "b"]},
                      "dedup": "header", "forwardHeaders": ["x-a"]},
              "named": {"auth": {"type": "jwt", "algorithm": "HS256", "secret": {"secret": "crm"}}}
            }"#,
        )
        .unwrap();
        let demo = &c.endpoints["demo"];
        assert!(matches!(demo.auth, AuthConfig::None));
        assert_eq!(demo.dedup, Some(DedupConfig::whole_body()));
        assert!(c.endpoints["plain"].dedup.is_none());
        assert_eq!(c.endpoints["plain"].forward_headers.len(), 5);
        let AuthConfig::Hmac(h) = &c.endpoints["hook"].auth else {
            panic!("hmac")
        };
        assert_eq!(h.tolerance_secs, 60);
        let d = c.endpoints["hook"].dedup.as_ref().unwrap();
        assert_eq!(d.caller_header, None);
        assert_eq!(d.fields, ["order.id"]);
        let AuthConfig::Jwt(j) = &c.endpoints["jwt"].auth else {
            panic!("jwt")
        };
        assert_eq!(j.audience, ["me"]);
        assert_eq!(j.issuer, ["a", "b"]);
        assert!(matches!(j.public_key, Some(SecretValue::File(_))));
        assert_eq!(
            c.endpoints["jwt"]
                .dedup
                .as_ref()
                .unwrap()
                .caller_header
                .as_deref(),
            Some("x-dedup-key")
        );
        let AuthConfig::Jwt(j) = &c.endpoints["named"].auth else {
            panic!("jwt")
        };
        assert!(matches!(&j.secret, Some(SecretValue::Named(n)) if n == "crm"));
        // Inline secrets never show in Debug output.
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("MfKQ9r8"), "{dbg}");
    }

    #[test]
    fn rejects_mistakes() {
        for bad in [
            r#"{"a": {"dedupe": "body"}}"#,
            r#"{"a": {"auth": "jwt"}}"#,
            r#"{"a": {"auth": {"type": "jwt", "algorithm": "none", "secret": "s"}}}"#,
            r#"{"a": {"auth": {"type": "jwt", "algorithm": "HS512", "secret": "s"}}}"#,
            r#"{"a": {"auth": {"type": "jwt", "algorithm": "RS256", "secret": "s"}}}"#,
            r#"{"a": {"auth": {"type": "jwt", "algorithm": "HS256"}}}"#,
            r#"{"a": {"auth": {"type": "hmac"}}}"#,
            r#"{"a": {"auth": {"type": "hmac", "secret": ""}}}"#,
            r#"{"a": {"dedup": {"fields": ["a","b","c"], "headers": ["d","e","f"]}}}"#,
            r#"{"a": {"dedup": {"wholeBody": true, "fields": ["a"]}}}"#,
            r#"{"a": {"dedup": {"callerHeader": null}}}"#,
            r#"{"a": {"dedup": "everything"}}"#,
            r#"{"a b": {}}"#,
            r#"{"": {}}"#,
            r#"[]"#,
        ] {
            assert!(IncomingConfig::from_json(bad).is_err(), "{bad}");
        }
    }

    /// Issue 22 item 9: settings that would switch a check off are start-up errors.
    #[test]
    fn leeway_and_tolerance_are_bounded() {
        let jwt = |leeway: &str| {
            format!(
                r#"{{"a": {{"auth": {{"type": "jwt", "algorithm": "HS256", "secret": "s", "leewaySecs": {leeway}}}}}}}"#
            )
        };
        let hmac = |tol: &str| {
            format!(
                r#"{{"a": {{"auth": {{"type": "hmac", "secret": "s", "toleranceSecs": {tol}}}}}}}"#
            )
        };
        for ok in [jwt("0"), jwt("3600"), hmac("1"), hmac("3600")] {
            assert!(IncomingConfig::from_json(&ok).is_ok(), "{ok}");
        }
        for (bad, says) in [
            (jwt("3601"), "leewaySecs"),
            (jwt("18446744073709551615"), "leewaySecs"),
            (hmac("0"), "toleranceSecs"),
            (hmac("3601"), "toleranceSecs"),
            (hmac("18446744073709551615"), "toleranceSecs"),
        ] {
            let e = IncomingConfig::from_json(&bad).unwrap_err().to_string();
            assert!(
                e.contains(says) && e.contains("endpoint \"a\""),
                "{bad}: {e}"
            );
        }
        // Programmatic configurations are checked too (IncomingApp::new validates).
        let mut j = JwtConfig::hs256(SecretValue::inline("s"));
        j.leeway_secs = u64::MAX;
        let c = IncomingConfig::default()
            .with("a", EndpointConfig::open().with_auth(AuthConfig::Jwt(j)));
        assert!(c.validate().is_err());
    }
}
