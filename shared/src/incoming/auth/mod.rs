//! Webhook authentication: one file per scheme, the endpoint's compiled authentication, its
//! keys (`keys.rs`) and the replay records of signed messages (`replay.rs`).
//!
//! The schemes and their settings are described in [`config`]. Every scheme reads the raw body
//! bytes as sent, reads each header it needs once (a repeated one is refused), compares in
//! constant time, and never echoes what it was given.

#[doc(hidden)]
pub mod api_key;
#[doc(hidden)]
pub mod basic;
#[doc(hidden)]
pub mod common;
pub mod config;
#[doc(hidden)]
pub mod github;
#[doc(hidden)]
pub mod hmac;
#[doc(hidden)]
pub mod jwks;
#[doc(hidden)]
pub mod jwt;
#[doc(hidden)]
pub mod jwt_crypto;
pub(crate) mod keys;
#[doc(hidden)]
pub mod replay;
#[doc(hidden)]
pub mod shopify;
#[doc(hidden)]
pub mod slack;
#[doc(hidden)]
pub mod standard_webhooks;
#[doc(hidden)]
pub mod stripe;

use self::config::{AuthConfig, JwtAlgorithm, JwtConfig};
use self::jwt::JwtVerifier;
use self::keys::{Key, compile_key};
use self::replay::{Replay, ReplayClaim};
use super::answers::{unauthorized, unavailable};
use super::config::{DedupConfig, SecretValue};
use super::{Endpoint, IncomingApp};
use crate::transport::http::HttpRequest;
use bytes::Bytes;
use http::{HeaderName, Response};
use serde_json::{Map, Value, json};
use std::borrow::Cow;
use std::time::Duration;

/// Why a request failed authentication. The messages are fixed texts: they never echo the
/// token, the signature or the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum AuthFailure {
    MissingToken,
    MalformedToken,
    WrongAlgorithm,
    BadTokenSignature,
    TokenExpired,
    TokenNotYetValid,
    WrongAudience,
    WrongIssuer,
    MissingClaim(&'static str),
    MissingSignature,
    BadTimestamp,
    StaleTimestamp,
    BadSignature,
    /// The exact signed message (`webhook-id` and `webhook-timestamp`) was accepted before.
    Replayed,
    /// The token is valid for longer than the endpoint's `maxLifetimeSecs`.
    TokenLifetimeTooLong,
    /// The endpoint wants single-use tokens (`jtiReplay`) and this `jti` was accepted before.
    TokenReused,
    /// A header the authentication reads (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`, `Authorization`) was sent more than once.
    RepeatedHeader,
}

impl AuthFailure {
    pub fn message(&self) -> Cow<'static, str> {
        match self {
            Self::MissingToken => "Missing bearer token (Authorization: Bearer <JWT>).".into(),
            Self::MalformedToken => "The bearer token is not a well-formed JWT.".into(),
            Self::WrongAlgorithm => {
                "The token's algorithm is not the one this endpoint accepts.".into()
            }
            Self::BadTokenSignature => "The token's signature is invalid.".into(),
            Self::TokenExpired => "The token has expired.".into(),
            Self::TokenNotYetValid => "The token is not valid yet.".into(),
            Self::WrongAudience => "The token's audience is not accepted.".into(),
            Self::WrongIssuer => "The token's issuer is not accepted.".into(),
            Self::MissingClaim(c) => format!("The token has no \"{c}\" claim.").into(),
            Self::MissingSignature => {
                "Missing webhook-id, webhook-timestamp or webhook-signature header.".into()
            }
            Self::BadTimestamp => "The webhook-timestamp header is not a Unix time.".into(),
            Self::StaleTimestamp => "The webhook-timestamp is outside the accepted window.".into(),
            Self::BadSignature => "No webhook signature matches.".into(),
            Self::TokenLifetimeTooLong => {
                "The token is valid for longer than this endpoint accepts.".into()
            }
            Self::Replayed => {
                "This signed message was already received (a sender's retry is signed anew).".into()
            }
            Self::TokenReused => {
                "This token was already used; this endpoint takes a new token (jti) per request."
                    .into()
            }
            Self::RepeatedHeader => {
                "An authentication header (webhook-id, webhook-timestamp, webhook-signature or Authorization) was sent more than once."
                    .into()
            }
        }
    }
}

/// A scheme's key: a shared secret's bytes, or (Standard Webhooks `whpk_`) an ed25519 public
/// key.
pub(crate) struct SchemeKey {
    bytes: Vec<u8>,
    ed25519: bool,
}

impl SchemeKey {
    fn shared(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            ed25519: false,
        }
    }
    fn ed25519(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            ed25519: true,
        }
    }
}

/// A shared-secret scheme, compiled.
pub(crate) enum Scheme {
    StandardWebhooks { tolerance: Duration },
    Stripe { tolerance: Duration },
    Github,
    Shopify,
    Slack { tolerance: Duration },
    Hmac(Box<hmac::Generic>),
    Basic { username: String },
    ApiKey(api_key::Place),
}

impl Scheme {
    fn kind(&self) -> &'static str {
        match self {
            // Today's name in the queued message's `auth`, kept.
            Scheme::StandardWebhooks { .. } | Scheme::Hmac(_) => "hmac",
            Scheme::Stripe { .. } => "stripe",
            Scheme::Github => "github",
            Scheme::Shopify => "shopify",
            Scheme::Slack { .. } => "slack",
            Scheme::Basic { .. } => "basic",
            Scheme::ApiKey(_) => "apiKey",
        }
    }

    /// The key a configured secret stands for (checked at start-up, or when first resolved).
    fn compile(&self) -> fn(&str) -> Result<SchemeKey, String> {
        match self {
            Scheme::StandardWebhooks { .. } => {
                |s| match standard_webhooks::public_key_from_secret(s) {
                    Some(k) => k.map(SchemeKey::ed25519),
                    None => standard_webhooks::key_from_secret(s).map(SchemeKey::shared),
                }
            }
            Scheme::Basic { .. } => |s| common::password_key(s).map(SchemeKey::shared),
            _ => |s| common::provider_key(s).map(SchemeKey::shared),
        }
    }

    /// Check a request against `key` at `now`: the replay record of a signed message, if the
    /// scheme signs a timestamp.
    fn verify(
        &self,
        req: &HttpRequest,
        key: &SchemeKey,
        now: u64,
    ) -> Result<Option<Replay>, AuthFailure> {
        let (h, body) = (&req.headers, &req.body[..]);
        let ed25519 = key.ed25519;
        let key = &key.bytes[..];
        match self {
            Scheme::StandardWebhooks { tolerance } => {
                if ed25519 {
                    standard_webhooks::verify_ed25519(h, body, key, *tolerance, now)?;
                } else {
                    standard_webhooks::verify(h, body, key, *tolerance, now)?;
                }
                let (id, ts) = standard_webhooks::signed_id(h)?;
                Ok(Some(Replay::within(
                    "hmac-replay",
                    format!("{id}\u{1e}{ts}"),
                    *tolerance,
                )))
            }
            Scheme::Stripe { tolerance } => stripe::verify(h, body, key, *tolerance, now).map(Some),
            Scheme::Github => github::verify(h, body, key).map(|()| None),
            Scheme::Shopify => shopify::verify(h, body, key).map(|()| None),
            Scheme::Slack { tolerance } => slack::verify(h, body, key, *tolerance, now).map(Some),
            Scheme::Hmac(g) => g.verify(h, body, key, now),
            Scheme::Basic { username } => basic::verify(h, username, key).map(|()| None),
            Scheme::ApiKey(place) => {
                api_key::verify(place, h, req.query.as_deref(), key).map(|()| None)
            }
        }
    }
}

/// An endpoint's authentication, compiled.
pub(crate) enum Auth {
    None,
    Jwt {
        config: Box<JwtConfig>,
        key: Key<JwtVerifier>,
    },
    /// A JWT checked with the keys of an identity provider's key set (`jwksUrl`).
    Jwks {
        config: Box<JwtConfig>,
        jwks: Box<jwks::Jwks>,
    },
    Signed {
        scheme: Scheme,
        key: Key<SchemeKey>,
    },
}

impl Auth {
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Auth::None => "none",
            Auth::Jwt { .. } | Auth::Jwks { .. } => "jwt",
            Auth::Signed { scheme, .. } => scheme.kind(),
        }
    }

    /// A refusal's answer names no check (every scheme but the two of old, whose messages
    /// are kept).
    pub(crate) fn says_why(&self) -> bool {
        matches!(
            self,
            Auth::None
                | Auth::Jwt { .. }
                | Auth::Signed {
                    scheme: Scheme::StandardWebhooks { .. },
                    ..
                }
        )
    }

    pub(crate) fn is_basic(&self) -> bool {
        matches!(
            self,
            Auth::Signed {
                scheme: Scheme::Basic { .. },
                ..
            }
        )
    }

    /// Slack's `url_verification` challenge, when this is a Slack endpoint and `body` is one.
    pub(crate) fn challenge<'a>(&self, body: &'a Map<String, Value>) -> Option<&'a str> {
        match self {
            Auth::Signed {
                scheme: Scheme::Slack { .. },
                ..
            } => slack::challenge(body),
            _ => None,
        }
    }

    /// Compile an endpoint's `auth` (inline and file secrets are read and checked now;
    /// named ones need a resolver).
    pub(crate) fn compile(auth: AuthConfig, has_resolver: bool) -> Result<Self, String> {
        let needs_resolver = |v: &SecretValue| -> Result<(), String> {
            if matches!(v, SecretValue::Named(_)) && !has_resolver {
                return Err(format!(
                    "{v:?} needs a SecretResolver, and none is configured"
                ));
            }
            Ok(())
        };
        let secs = Duration::from_secs;
        let (scheme, secret) = match auth {
            AuthConfig::None => return Ok(Auth::None),
            AuthConfig::Jwt(j) if j.jwks_url.is_some() => {
                let jwks = Box::new(jwks::Jwks::new(&j)?);
                return Ok(Auth::Jwks {
                    config: Box::new(j),
                    jwks,
                });
            }
            AuthConfig::Jwt(j) => {
                let v = match (j.algorithm, &j.secret, &j.public_key) {
                    (Some(JwtAlgorithm::HS256), Some(s), _)
                    | (Some(JwtAlgorithm::RS256), _, Some(s)) => s.clone(),
                    _ => return Err("the JWT key is missing".into()),
                };
                needs_resolver(&v)?;
                let key = compile_key(&v, |m| JwtVerifier::new(&j, m))?;
                return Ok(Auth::Jwt {
                    config: Box::new(j),
                    key,
                });
            }
            AuthConfig::Hmac(h) => (
                Scheme::StandardWebhooks {
                    tolerance: secs(h.tolerance_secs),
                },
                h.secret,
            ),
            AuthConfig::Stripe(p) => (
                Scheme::Stripe {
                    tolerance: secs(p.tolerance()),
                },
                p.secret,
            ),
            AuthConfig::Github(p) => (Scheme::Github, p.secret),
            AuthConfig::Shopify(p) => (Scheme::Shopify, p.secret),
            AuthConfig::Slack(p) => (
                Scheme::Slack {
                    tolerance: secs(p.tolerance()),
                },
                p.secret,
            ),
            AuthConfig::GenericHmac(g) => {
                (Scheme::Hmac(Box::new(hmac::Generic::new(&g)?)), g.secret)
            }
            AuthConfig::Basic(b) => (
                Scheme::Basic {
                    username: b.username,
                },
                b.password,
            ),
            AuthConfig::ApiKey(k) => {
                let place = match (k.header, k.query) {
                    (Some(h), None) => api_key::Place::Header(
                        HeaderName::from_bytes(h.as_bytes())
                            .map_err(|_| format!("\"{h}\" is not a header name"))?,
                    ),
                    (None, Some(q)) => api_key::Place::Query(q),
                    _ => return Err("apiKey: give exactly one of \"header\" and \"query\"".into()),
                };
                (Scheme::ApiKey(place), k.key)
            }
        };
        needs_resolver(&secret)?;
        let key = compile_key(&secret, scheme.compile())?;
        Ok(Auth::Signed { scheme, key })
    }

    /// The dedup an endpoint without a `dedup` setting gets: the sender's own event id.
    pub(crate) fn default_dedup(&self) -> Option<DedupConfig> {
        let Auth::Signed { scheme, .. } = self else {
            return None;
        };
        let header = |h: &str| DedupConfig {
            headers: vec![h.to_owned()],
            ..DedupConfig::default()
        };
        match scheme {
            Scheme::Stripe { .. } => Some(DedupConfig::fields(["id"])),
            Scheme::Slack { .. } => Some(DedupConfig::fields(["event_id"])),
            Scheme::Github => Some(header(github::DELIVERY_HEADER)),
            Scheme::Shopify => Some(header(shopify::WEBHOOK_ID_HEADER)),
            Scheme::Hmac(g) => g.id_header().map(|h| header(h.as_str())),
            _ => None,
        }
    }
}

impl IncomingApp {
    /// Authenticate; on success, what the queued event says about the caller, and the replay
    /// record the request holds (signed messages with a timestamp, and JWT with `jtiReplay`).
    pub(crate) async fn authenticate(
        &self,
        ep: &Endpoint,
        req: &HttpRequest,
    ) -> Result<(Value, Option<ReplayClaim>), Response<Bytes>> {
        match &ep.auth {
            Auth::None => Ok((json!({"type": "none"}), None)),
            Auth::Signed { scheme, key } => {
                let used = self.key(key, scheme.compile()).await?;
                let now = crate::time::EpochSeconds::now().0;
                let mut verdict = scheme.verify(req, &used, now);
                if verdict == Err(AuthFailure::BadSignature)
                    && let Some(k) = self.reread(key, &used, scheme.compile()).await?
                {
                    verdict = scheme.verify(req, &k, now);
                }
                let replay = verdict.map_err(|f| {
                    tracing::info!(endpoint = %ep.name, reason = f.message().as_ref(), "incoming: authentication failed");
                    unauthorized(&ep.auth, f)
                })?;
                let claim = match replay {
                    Some(r) => Some(self.refuse_replay(ep, r).await?),
                    None => None,
                };
                let mut info = Map::new();
                info.insert("type".into(), scheme.kind().into());
                if let Scheme::Basic { username } = scheme {
                    info.insert("username".into(), username.clone().into());
                }
                Ok((Value::Object(info), claim))
            }
            Auth::Jwks { config, jwks } => {
                let token = bearer(req).map_err(|f| unauthorized(&ep.auth, f))?;
                let claims = jwks
                    .verify(token, &self.http, self.jwks_refetch)
                    .await
                    .map_err(|r| match r {
                        jwks::JwksRefusal::Refused(f) => {
                            tracing::info!(endpoint = %ep.name, reason = f.message().as_ref(), "incoming: authentication failed");
                            unauthorized(&ep.auth, f)
                        }
                        jwks::JwksRefusal::Unavailable => {
                            unavailable("the identity provider's key set could not be read")
                        }
                    })?;
                self.jwt_accepted(ep, config, claims).await
            }
            Auth::Jwt { config, key } => {
                let token = bearer(req).map_err(|f| unauthorized(&ep.auth, f))?;
                let compile = |m: &str| JwtVerifier::new(config, m);
                let used = self.key(key, compile).await?;
                let mut verdict = used.verify(token);
                if verdict == Err(AuthFailure::BadTokenSignature)
                    && let Some(v) = self.reread(key, &used, compile).await?
                {
                    verdict = v.verify(token);
                }
                let claims = verdict.map_err(|f| unauthorized(&ep.auth, f))?;
                self.jwt_accepted(ep, config, claims).await
            }
        }
    }

    /// A verified token: its `jti` claimed when the endpoint wants single-use tokens, and what
    /// the queued event says of the caller.
    async fn jwt_accepted(
        &self,
        ep: &Endpoint,
        config: &JwtConfig,
        claims: Map<String, Value>,
    ) -> Result<(Value, Option<ReplayClaim>), Response<Bytes>> {
        let claim = if config.jti_replay {
            Some(self.refuse_reused_token(ep, config, &claims).await?)
        } else {
            None
        };
        let mut info = Map::new();
        info.insert("type".into(), "jwt".into());
        for c in ["sub", "iss"] {
            if let Some(v @ Value::String(_)) = claims.get(c) {
                info.insert(c.into(), v.clone());
            }
        }
        Ok((Value::Object(info), claim))
    }
}

/// The request's one bearer token.
fn bearer(req: &HttpRequest) -> Result<&str, AuthFailure> {
    let count = req
        .headers
        .get_all(http::header::AUTHORIZATION)
        .iter()
        .count();
    if count > 1 {
        return Err(AuthFailure::RepeatedHeader);
    }
    jwt::bearer_token(&req.headers).ok_or(AuthFailure::MissingToken)
}

#[cfg(test)]
mod jwks_tests;
#[cfg(test)]
mod provider_vectors;
#[cfg(test)]
mod tests;
