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
//! `auth` objects are described in [`crate::incoming::auth::config`].
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

pub use super::auth::config::{
    ApiKeyConfig, AuthConfig, BasicConfig, DEFAULT_HMAC_TOLERANCE_SECS, DEFAULT_JWT_LEEWAY_SECS,
    DEFAULT_JWT_MAX_LIFETIME_SECS, GenericHmacConfig, HmacAlgorithm, HmacConfig, HmacEncoding,
    JwtAlgorithm, JwtConfig, MAX_HMAC_TOLERANCE_SECS, MAX_JWT_LEEWAY_SECS, MIN_PASSWORD_BYTES,
    MIN_SHARED_SECRET_BYTES, ProviderConfig,
};

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
/// Longest endpoint name.
pub const MAX_NAME_LEN: usize = 64;
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
            ep.auth.validate().map_err(err)?;
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

    /// Settings that would switch a check off are start-up errors.
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
