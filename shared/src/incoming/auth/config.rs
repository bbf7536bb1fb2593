//! The `auth` of an endpoint: how `POST /incoming/{name}` authenticates a request.
//!
//! `auth` is `"none"` or an object whose `type` names a scheme (unknown keys are refused, so a
//! typo cannot switch a check off):
//!
//! - `{"type": "jwt", "algorithm": "HS256", "secret": S}` or `{"type": "jwt", "algorithm":
//!   "RS256", "publicKey": S}` (a PEM public key) or `{"type": "jwt", "jwksUrl": URL}` (an
//!   identity provider's key set, optional `algorithms`, default RS256, ES256 and EdDSA; see
//!   `jwks.rs`), plus optional `audience` and `issuer` (a
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
//!
//! - `{"type": "standardWebhooks", …}`: the same as the Standard Webhooks form of `hmac` above.
//! - `{"type": "stripe", "secret": S}` plus optional `toleranceSecs` (default 300): Stripe's
//!   `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`, HMAC-SHA256 of `<t>.<raw body>` keyed with the
//!   whole endpoint secret (`whsec_…` included, as Stripe does). Default dedup: the event's `id`.
//! - `{"type": "github", "secret": S}`: GitHub's `X-Hub-Signature-256: sha256=<hex>` over the
//!   raw body. Default dedup: `X-GitHub-Delivery` (a redelivery is answered 204).
//! - `{"type": "shopify", "secret": S}`: Shopify's `X-Shopify-Hmac-Sha256: <base64>` over the raw
//!   body (S: the app's client secret). Default dedup: `X-Shopify-Webhook-Id`.
//! - `{"type": "slack", "secret": S}` plus optional `toleranceSecs` (default 300): Slack's
//!   `X-Slack-Signature: v0=<hex>` of `v0:<X-Slack-Request-Timestamp>:<raw body>` (S: the app's
//!   signing secret). A `url_verification` request is answered 200 with its `challenge` and not
//!   queued. Default dedup: the body's `event_id` (Events API; other requests carry none).
//! - `{"type": "hmac", "header": H, "secret": S, …}`: any other sender's HMAC, spelled out:
//!   `algorithm` (`sha1`, `sha256` (default), `sha512`), `encoding` (`hex` (default) or
//!   `base64`), `prefix` (text before the signature in header H, e.g. `sha256=`), `content` (what
//!   is signed, a template of `{body}`, `{timestamp}`, `{id}` and `{header:Name}`; default
//!   `{body}`), `timestampHeader` (Unix seconds, checked within `toleranceSecs`, default 300;
//!   needed by `{timestamp}`) and `idHeader` (needed by `{id}`; the default dedup).
//! - `{"type": "basic", "username": U, "password": S}`: `Authorization: Basic …`.
//! - `{"type": "apiKey", "header": H, "key": S}` or `{"type": "apiKey", "query": Q, "key": S}`: a
//!   key sent in header H, or in the URL's query parameter Q.
//!
//! Shared secrets of `stripe`, `github`, `shopify`, `slack`, the spelled-out `hmac` and `apiKey`
//! keys must be at least [`MIN_SHARED_SECRET_BYTES`] bytes after trimming, a `basic` password at
//! least [`MIN_PASSWORD_BYTES`]. A refusal by any of these schemes is a 401 whose message does not
//! say which check failed. A signed message with a timestamp (Standard Webhooks, Stripe, Slack, a
//! spelled-out `hmac` with `timestampHeader`) is accepted once within its tolerance window; a
//! sender that only gives an id (GitHub, Shopify) is deduplicated on it, so a redelivery or a
//! replay is answered 204 and queued no second time.

use super::super::config::SecretValue;
use serde::Deserialize;
use serde_json::Value;

/// Default clock skew allowed on a JWT's `exp`.
pub const DEFAULT_JWT_LEEWAY_SECS: u64 = 60;
/// Default Standard Webhooks timestamp tolerance.
pub const DEFAULT_HMAC_TOLERANCE_SECS: u64 = 300;
/// Largest `leewaySecs`: one hour. The leeway only absorbs clock skew between the token's
/// issuer and us (seconds, minutes at worst); more would mostly extend the life of expired
/// tokens, and a value near the epoch's age breaks the `exp` check altogether.
pub const MAX_JWT_LEEWAY_SECS: u64 = 3600;
/// Largest `toleranceSecs`: one hour. Standard Webhooks recommends five minutes; a huge
/// tolerance would switch the timestamp check (and with it the replay window) off.
pub const MAX_HMAC_TOLERANCE_SECS: u64 = 3600;

/// Shortest shared secret (HMAC key or API key) of the provider schemes, in bytes.
pub const MIN_SHARED_SECRET_BYTES: usize = 16;
/// Shortest `basic` password, in bytes.
pub const MIN_PASSWORD_BYTES: usize = 8;

/// How an endpoint authenticates requests.
#[derive(Debug, Clone, Default)]
pub enum AuthConfig {
    /// Anyone who knows the URL may post.
    #[default]
    None,
    /// A bearer JWT (HS256 or RS256 with a fixed key, or RS256/ES256/EdDSA from a JWKS URL).
    Jwt(JwtConfig),
    /// A Standard Webhooks HMAC signature (`hmac` without `header`, or `standardWebhooks`).
    Hmac(HmacConfig),
    /// Stripe's `Stripe-Signature`.
    Stripe(ProviderConfig),
    /// GitHub's `X-Hub-Signature-256`.
    Github(ProviderConfig),
    /// Shopify's `X-Shopify-Hmac-Sha256`.
    Shopify(ProviderConfig),
    /// Slack's `X-Slack-Signature`.
    Slack(ProviderConfig),
    /// An HMAC spelled out field by field (`hmac` with `header`).
    GenericHmac(GenericHmacConfig),
    /// HTTP Basic authentication.
    Basic(BasicConfig),
    /// A key in a header or a query parameter.
    ApiKey(ApiKeyConfig),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
enum TaggedAuth {
    None,
    Jwt(JwtConfig),
    Hmac(HmacFields),
    StandardWebhooks(HmacConfig),
    Stripe(ProviderConfig),
    Github(ProviderConfig),
    Shopify(ProviderConfig),
    Slack(ProviderConfig),
    Basic(BasicConfig),
    ApiKey(ApiKeyConfig),
}

impl<'de> Deserialize<'de> for AuthConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let v = Value::deserialize(d)?;
        let tagged = match v {
            Value::Null => return Ok(AuthConfig::None),
            Value::String(s) if s == "none" => return Ok(AuthConfig::None),
            Value::String(s) => {
                return Err(D::Error::custom(format!(
                    "auth \"{s}\": use \"none\" or an object with a \"type\" (jwt, hmac, standardWebhooks, stripe, github, shopify, slack, basic, apiKey)"
                )));
            }
            v @ Value::Object(_) => serde_json::from_value::<TaggedAuth>(v)
                .map_err(|e| D::Error::custom(format!("auth: {e}")))?,
            _ => return Err(D::Error::custom("auth must be \"none\" or an object")),
        };
        Ok(match tagged {
            TaggedAuth::None => AuthConfig::None,
            TaggedAuth::Jwt(j) => AuthConfig::Jwt(j),
            TaggedAuth::Hmac(h) => h.into_config().map_err(D::Error::custom)?,
            TaggedAuth::StandardWebhooks(h) => AuthConfig::Hmac(h),
            TaggedAuth::Stripe(p) => AuthConfig::Stripe(p),
            TaggedAuth::Github(p) => AuthConfig::Github(p),
            TaggedAuth::Shopify(p) => AuthConfig::Shopify(p),
            TaggedAuth::Slack(p) => AuthConfig::Slack(p),
            TaggedAuth::Basic(b) => AuthConfig::Basic(b),
            TaggedAuth::ApiKey(k) => AuthConfig::ApiKey(k),
        })
    }
}

/// The JWT algorithms an endpoint can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret.
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, verified with a PEM public key or an `RSA` JWK.
    RS256,
    /// ECDSA on P-256 with SHA-256 (`EC` JWK with `crv: P-256`; `jwksUrl` only).
    ES256,
    /// Ed25519 (`OKP` JWK with `crv: Ed25519`; `jwksUrl` only).
    EdDSA,
}

/// The algorithms a `jwksUrl` endpoint accepts when it names none.
pub const DEFAULT_JWKS_ALGORITHMS: [JwtAlgorithm; 3] = [
    JwtAlgorithm::RS256,
    JwtAlgorithm::ES256,
    JwtAlgorithm::EdDSA,
];

/// `auth: {"type": "jwt", …}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtConfig {
    /// The one algorithm accepted (tokens signed otherwise are refused). Required with a fixed
    /// key; with `jwksUrl` it is a short way to write `algorithms: [it]`.
    #[serde(default)]
    pub algorithm: Option<JwtAlgorithm>,
    /// `jwksUrl` only: the algorithms accepted (default RS256, ES256 and EdDSA). HS256 and
    /// `none` are never accepted from a key set.
    #[serde(default)]
    pub algorithms: Vec<JwtAlgorithm>,
    /// The identity provider's JSON Web Key Set (`https://…/.well-known/jwks.json`), instead of
    /// a fixed `secret` or `publicKey`. Fetched on first use, cached, refreshed when a token
    /// names an unknown `kid`. `https` only (`http` is allowed for 127.0.0.1 and localhost).
    #[serde(default)]
    pub jwks_url: Option<String>,
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
    /// No key, no audience or issuer check, the default leeway and lifetime.
    fn keyless() -> Self {
        Self {
            algorithm: None,
            algorithms: Vec::new(),
            jwks_url: None,
            secret: None,
            public_key: None,
            audience: Vec::new(),
            issuer: Vec::new(),
            leeway_secs: DEFAULT_JWT_LEEWAY_SECS,
            max_lifetime_secs: default_max_lifetime(),
            jti_replay: false,
        }
    }
    /// HS256 with `secret`, no audience or issuer check.
    pub fn hs256(secret: SecretValue) -> Self {
        Self {
            algorithm: Some(JwtAlgorithm::HS256),
            secret: Some(secret),
            ..Self::keyless()
        }
    }
    /// RS256 with a PEM `public_key`, no audience or issuer check.
    pub fn rs256(public_key: SecretValue) -> Self {
        Self {
            algorithm: Some(JwtAlgorithm::RS256),
            public_key: Some(public_key),
            ..Self::keyless()
        }
    }
    /// Keys from the JWKS at `url` (RS256, ES256 and EdDSA accepted), no audience or issuer
    /// check.
    pub fn jwks(url: impl Into<String>) -> Self {
        Self {
            jwks_url: Some(url.into()),
            ..Self::keyless()
        }
    }
    /// The algorithms a `jwksUrl` endpoint accepts.
    pub fn jwks_algorithms(&self) -> Vec<JwtAlgorithm> {
        match (self.algorithm, self.algorithms.is_empty()) {
            (Some(a), _) => vec![a],
            (None, true) => DEFAULT_JWKS_ALGORITHMS.to_vec(),
            (None, false) => self.algorithms.clone(),
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

/// `auth: {"type": "stripe" | "github" | "shopify" | "slack", …}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    /// The signing secret the provider shows for the endpoint (or the app's secret).
    pub secret: SecretValue,
    /// Stripe and Slack: how far the signed timestamp may be from now, in seconds (default
    /// [`DEFAULT_HMAC_TOLERANCE_SECS`]). GitHub and Shopify sign no timestamp.
    #[serde(default)]
    pub tolerance_secs: Option<u64>,
}

impl ProviderConfig {
    /// The provider's scheme with `secret` and the default tolerance.
    pub fn new(secret: SecretValue) -> Self {
        Self {
            secret,
            tolerance_secs: None,
        }
    }
    /// The tolerance in seconds (default [`DEFAULT_HMAC_TOLERANCE_SECS`]).
    pub fn tolerance(&self) -> u64 {
        self.tolerance_secs.unwrap_or(DEFAULT_HMAC_TOLERANCE_SECS)
    }
}

/// The hash of a spelled-out HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacAlgorithm {
    /// HMAC-SHA1 (older senders only).
    Sha1,
    /// HMAC-SHA256.
    #[default]
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

/// How a spelled-out HMAC's signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HmacEncoding {
    /// Lower- or upper-case hexadecimal.
    #[default]
    Hex,
    /// Standard base64 (padding optional).
    Base64,
}

/// `auth: {"type": "hmac", "header": …}`: any other sender's HMAC.
#[derive(Debug, Clone)]
pub struct GenericHmacConfig {
    /// The shared secret (its UTF-8 bytes are the key).
    pub secret: SecretValue,
    /// The header carrying the signature.
    pub header: String,
    /// The hash.
    pub algorithm: HmacAlgorithm,
    /// How the signature is written.
    pub encoding: HmacEncoding,
    /// Text before the signature in the header (e.g. `sha256=`).
    pub prefix: String,
    /// What is signed: a template of `{body}`, `{timestamp}`, `{id}`, `{header:Name}`.
    pub content: String,
    /// The header with the signing time (Unix seconds), checked within the tolerance.
    pub timestamp_header: Option<String>,
    /// The header with the message id (`{id}`; the default dedup).
    pub id_header: Option<String>,
    /// How far the timestamp may be from now, in seconds.
    pub tolerance_secs: u64,
}

/// Every field `hmac` may have: Standard Webhooks without `header`, spelled out with it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HmacFields {
    secret: SecretValue,
    #[serde(default)]
    tolerance_secs: Option<u64>,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    algorithm: Option<HmacAlgorithm>,
    #[serde(default)]
    encoding: Option<HmacEncoding>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    timestamp_header: Option<String>,
    #[serde(default)]
    id_header: Option<String>,
}

impl HmacFields {
    fn into_config(self) -> Result<AuthConfig, String> {
        let tolerance_secs = self.tolerance_secs.unwrap_or(DEFAULT_HMAC_TOLERANCE_SECS);
        let Some(header) = self.header else {
            let spelled = self.algorithm.is_some()
                || self.encoding.is_some()
                || self.prefix.is_some()
                || self.content.is_some()
                || self.timestamp_header.is_some()
                || self.id_header.is_some();
            if spelled {
                return Err(
                    "auth: a spelled-out \"hmac\" needs \"header\" (the signature's header)".into(),
                );
            }
            return Ok(AuthConfig::Hmac(HmacConfig {
                secret: self.secret,
                tolerance_secs,
            }));
        };
        Ok(AuthConfig::GenericHmac(GenericHmacConfig {
            secret: self.secret,
            header,
            algorithm: self.algorithm.unwrap_or_default(),
            encoding: self.encoding.unwrap_or_default(),
            prefix: self.prefix.unwrap_or_default(),
            content: self.content.unwrap_or_else(|| "{body}".into()),
            timestamp_header: self.timestamp_header,
            id_header: self.id_header,
            tolerance_secs,
        }))
    }
}

/// `auth: {"type": "basic", …}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicConfig {
    /// The user name (no `:`).
    pub username: String,
    /// The password.
    pub password: SecretValue,
}

/// `auth: {"type": "apiKey", …}`: exactly one of `header` and `query`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The header carrying the key.
    #[serde(default)]
    pub header: Option<String>,
    /// The query parameter carrying the key.
    #[serde(default)]
    pub query: Option<String>,
    /// The key.
    pub key: SecretValue,
}

fn header_name(h: &str) -> Result<(), String> {
    http::HeaderName::from_bytes(h.as_bytes())
        .map(drop)
        .map_err(|_| format!("\"{h}\" is not a header name"))
}

fn tolerance(secs: u64) -> Result<(), String> {
    if (1..=MAX_HMAC_TOLERANCE_SECS).contains(&secs) {
        Ok(())
    } else {
        Err(format!(
            "toleranceSecs is {secs}; it must be 1 to {MAX_HMAC_TOLERANCE_SECS}"
        ))
    }
}

impl AuthConfig {
    /// Check what serde cannot (secrets are checked when they are read).
    pub fn validate(&self) -> Result<(), String> {
        match self {
            AuthConfig::None => Ok(()),
            AuthConfig::Jwt(j) => validate_jwt(j),
            AuthConfig::Hmac(h) => tolerance(h.tolerance_secs),
            AuthConfig::Stripe(p) | AuthConfig::Slack(p) => tolerance(p.tolerance()),
            AuthConfig::Github(p) | AuthConfig::Shopify(p) => match p.tolerance_secs {
                Some(_) => Err("toleranceSecs: this sender signs no timestamp".into()),
                None => Ok(()),
            },
            AuthConfig::GenericHmac(g) => {
                header_name(&g.header)?;
                for h in g.timestamp_header.iter().chain(&g.id_header) {
                    header_name(h)?;
                }
                tolerance(g.tolerance_secs)?;
                let parts = super::hmac::parse_template(&g.content)?;
                super::hmac::check_template(
                    &parts,
                    g.timestamp_header.is_some(),
                    g.id_header.is_some(),
                )
            }
            AuthConfig::Basic(b) => {
                if b.username.is_empty() || b.username.contains(':') {
                    return Err("basic: the username must be non-empty, without ':'".into());
                }
                Ok(())
            }
            AuthConfig::ApiKey(k) => match (&k.header, &k.query) {
                (Some(h), None) => header_name(h),
                (None, Some(q)) if !q.is_empty() => Ok(()),
                _ => Err("apiKey: give exactly one of \"header\" and \"query\"".into()),
            },
        }
    }
}

/// A `jwksUrl` endpoint: no fixed key, asymmetric algorithms only, an `https` URL (`http` only
/// on this machine's loopback, for tests and local identity providers).
fn validate_jwks(j: &JwtConfig, url: &str) -> Result<(), String> {
    if j.secret.is_some() || j.public_key.is_some() {
        return Err(
            "give exactly one of a fixed key (\"secret\" or \"publicKey\") and \"jwksUrl\"".into(),
        );
    }
    if j.algorithm.is_some() && !j.algorithms.is_empty() {
        return Err("give \"algorithm\" or \"algorithms\", not both".into());
    }
    if j.jwks_algorithms().contains(&JwtAlgorithm::HS256) {
        return Err("HS256 cannot be used with \"jwksUrl\" (a key set holds public keys)".into());
    }
    let uri: http::Uri = url
        .parse()
        .map_err(|_| format!("jwksUrl {url:?} is not a URL"))?;
    let host = uri.host().unwrap_or_default();
    let local = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    match uri.scheme_str() {
        Some("https") if !host.is_empty() => Ok(()),
        Some("http") if local => Ok(()),
        _ => Err(format!(
            "jwksUrl {url:?} must be an https:// URL (http:// only for 127.0.0.1 or localhost)"
        )),
    }
}

fn validate_jwt(j: &JwtConfig) -> Result<(), String> {
    if let Some(url) = &j.jwks_url {
        validate_jwks(j, url)?;
    } else {
        if !j.algorithms.is_empty() {
            return Err(
                "\"algorithms\" goes with \"jwksUrl\"; a fixed key takes one \"algorithm\"".into(),
            );
        }
        match (j.algorithm, &j.secret, &j.public_key) {
            (Some(JwtAlgorithm::HS256), Some(_), None)
            | (Some(JwtAlgorithm::RS256), None, Some(_)) => {}
            (None, _, _) => {
                return Err("give \"jwksUrl\", or an \"algorithm\" with its fixed key".into());
            }
            (Some(JwtAlgorithm::HS256), _, _) => {
                return Err("HS256 needs \"secret\" (and no \"publicKey\")".into());
            }
            (Some(JwtAlgorithm::RS256), _, _) => {
                return Err("RS256 needs \"publicKey\" (and no \"secret\")".into());
            }
            (Some(a @ (JwtAlgorithm::ES256 | JwtAlgorithm::EdDSA)), _, _) => {
                return Err(format!("{a:?} keys are read from \"jwksUrl\" only"));
            }
        }
    }
    if j.audience
        .iter()
        .chain(&j.issuer)
        .any(|s| s.trim().is_empty())
    {
        return Err("audience and issuer values must not be empty".into());
    }
    if j.leeway_secs > MAX_JWT_LEEWAY_SECS {
        return Err(format!(
            "leewaySecs is {}; at most {MAX_JWT_LEEWAY_SECS} is allowed (it only absorbs clock skew)",
            j.leeway_secs
        ));
    }
    Ok(())
}
