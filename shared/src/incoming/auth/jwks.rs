//! JWT keys from an identity provider's JSON Web Key Set (`auth.jwksUrl`), as Auth0, Okta,
//! Cognito and the like publish at `…/.well-known/jwks.json`.
//!
//! The set is fetched through the outgoing client (timeouts, retries, bounded body, URLs
//! redacted in logs) on first use, kept for its `Cache-Control: max-age` (clamped to
//! [`MIN_JWKS_TTL`]..[`MAX_JWKS_TTL`], [`DEFAULT_JWKS_TTL`] without one) and fetched again
//! when a token names a `kid` the cache lacks (the identity provider rotated its keys). Fetches
//! are single-flight (concurrent misses wait for one fetch) and at most one per refetch
//! interval (so a flood of made-up `kid`s cannot make us hammer the provider); a failed fetch
//! keeps the cached keys. With no key cached and the provider unreachable, the request is
//! answered 503 with `Retry-After` (the sender retries; nothing is lost); every other miss is a
//! 401.
//!
//! Only signing keys are read (`use` absent or `sig`): `RSA` for RS256, `EC` on P-256 for ES256,
//! `OKP` Ed25519 for EdDSA, each with an `alg` that, when present, must be that algorithm. A
//! token's `alg` must be one the endpoint accepts and the `alg` of its key: HS256 with the
//! public key as secret, `none`, or an RS256 token naming an EC key are refused.

use super::AuthFailure;
use super::config::{JwtAlgorithm, JwtConfig};
use super::jwt;
use crate::outgoing::HttpClient;
use http::HeaderMap;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Largest key set document read (a provider's set is a few KiB).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Most keys read from one set.
pub const MAX_JWKS_KEYS: usize = 100;
/// How long a set is used without a `Cache-Control: max-age`.
pub const DEFAULT_JWKS_TTL: Duration = Duration::from_secs(600);
/// Shortest time a set is kept, whatever its `max-age` says.
pub const MIN_JWKS_TTL: Duration = Duration::from_secs(60);
/// Longest time a set is kept, whatever its `max-age` says.
pub const MAX_JWKS_TTL: Duration = Duration::from_secs(86_400);
/// Shortest time between two fetches of one endpoint's set (default of
/// `IncomingApp::with_jwks_refetch`).
pub const DEFAULT_JWKS_REFETCH: Duration = Duration::from_secs(30);
/// Longest a fetch may take, retries included.
const FETCH_BUDGET: Duration = Duration::from_secs(5);

/// Why a key set document is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// Over [`MAX_JWKS_BYTES`].
    #[error("the key set is over {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    /// Not `{"keys": [...]}`.
    #[error("the key set is not a JSON object with a \"keys\" array")]
    NotAKeySet,
    /// Over [`MAX_JWKS_KEYS`] keys.
    #[error("the key set has over {MAX_JWKS_KEYS} keys")]
    TooManyKeys,
}

/// One usable signing key of a set.
pub struct JwksKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl std::fmt::Debug for JwksKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwksKey({:?})", self.algorithm)
    }
}

impl JwksKey {
    /// The one algorithm this key verifies, as a JWS `alg` (`RS256`, `ES256` or `EdDSA`).
    pub fn algorithm(&self) -> &'static str {
        name(self.algorithm)
    }
}

/// The usable keys of a set, by `kid` (`""` for a key without one).
pub type KeySet = HashMap<String, Arc<JwksKey>>;

/// Parse a JWKS document: the usable signing keys, by `kid`. Keys of other types, curves or
/// uses, with an `alg` that does not fit their type, or malformed, are skipped; the first of
/// two keys with one `kid` is kept.
pub fn parse_jwks(bytes: &[u8]) -> Result<KeySet, JwksError> {
    if bytes.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge);
    }
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_slice(bytes).map_err(|_| JwksError::NotAKeySet)?;
    if set.keys.len() > MAX_JWKS_KEYS {
        return Err(JwksError::TooManyKeys);
    }
    let mut out = KeySet::new();
    for k in set.keys {
        if let Some((kid, key)) = usable(k) {
            out.entry(kid).or_insert_with(|| Arc::new(key));
        }
    }
    Ok(out)
}

fn name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RS256 => "RS256",
        Algorithm::ES256 => "ES256",
        Algorithm::EdDSA => "EdDSA",
        _ => "",
    }
}

fn algorithm(a: JwtAlgorithm) -> Option<Algorithm> {
    match a {
        JwtAlgorithm::RS256 => Some(Algorithm::RS256),
        JwtAlgorithm::ES256 => Some(Algorithm::ES256),
        JwtAlgorithm::EdDSA => Some(Algorithm::EdDSA),
        JwtAlgorithm::HS256 => None,
    }
}

/// A JWK's `kid` and key, when it is a signing key of a supported type.
fn usable(v: Value) -> Option<(String, JwksKey)> {
    let o = v.as_object()?;
    let text = |f: &str| o.get(f).and_then(Value::as_str);
    if o.contains_key("use") && text("use") != Some("sig") {
        return None;
    }
    let kid = match o.get("kid") {
        None => String::new(),
        Some(Value::String(k)) if k.len() <= jwt::MAX_KID_LEN => k.clone(),
        Some(_) => return None,
    };
    let (algorithm, key_len) = match (text("kty")?, text("crv")) {
        ("RSA", None) => (Algorithm::RS256, None),
        ("EC", Some("P-256")) => (Algorithm::ES256, Some(65)),
        ("OKP", Some("Ed25519")) => (Algorithm::EdDSA, Some(32)),
        _ => return None,
    };
    if o.contains_key("alg") && text("alg") != Some(name(algorithm)) {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(v).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    if let Some(len) = key_len
        && key.try_get_as_bytes().ok()?.len() != len
    {
        return None;
    }
    Some((kid, JwksKey { algorithm, key }))
}

/// How long a fetched set is used: its `Cache-Control: max-age` within bounds.
pub fn cache_ttl(headers: &HeaderMap) -> Duration {
    let mut ttl = None;
    for v in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(v) = v.to_str() else { continue };
        for d in v.split(',').map(str::trim) {
            let lower = d.to_ascii_lowercase();
            if lower == "no-store" || lower == "no-cache" {
                ttl = Some(0);
            } else if let Some(n) = lower.strip_prefix("max-age=")
                && let Ok(n) = n.trim_matches('"').parse::<u64>()
            {
                ttl = Some(ttl.map_or(n, |t: u64| t.min(n)));
            }
        }
    }
    ttl.map_or(DEFAULT_JWKS_TTL, |s| {
        Duration::from_secs(s).clamp(MIN_JWKS_TTL, MAX_JWKS_TTL)
    })
}

/// Why a token got no verdict from a key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwksRefusal {
    /// A 401 with this (unsaid) reason.
    Refused(AuthFailure),
    /// No key is cached and the provider could not be read: 503, retry later.
    Unavailable,
}

#[derive(Default)]
struct State {
    keys: Arc<KeySet>,
    fresh_until: Option<Instant>,
    last_fetch: Option<Instant>,
    last_ok: bool,
    fetches: u64,
}

/// One endpoint's key set: the URL, the accepted algorithms, the validation rules and the
/// cache.
pub struct Jwks {
    url: String,
    validations: Vec<(Algorithm, Validation)>,
    max_lifetime: Option<u64>,
    state: Mutex<State>,
    fetching: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").finish_non_exhaustive()
    }
}

impl Jwks {
    /// The key set of a `jwksUrl` endpoint (validated already); nothing is fetched yet.
    pub fn new(config: &JwtConfig) -> Result<Self, String> {
        super::jwt_crypto::install();
        let url = config.jwks_url.clone().ok_or("jwksUrl is missing")?;
        let mut validations = Vec::new();
        for a in config.jwks_algorithms() {
            let a = algorithm(a).ok_or("HS256 cannot be used with jwksUrl")?;
            validations.push((a, jwt::validation(config, a)));
        }
        Ok(Self {
            url,
            validations,
            max_lifetime: jwt::max_lifetime(config),
            state: Mutex::new(State::default()),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    /// Verify `token` with the key its header names, fetching the set through `client` when
    /// it is not cached (at most once per `refetch`).
    pub async fn verify(
        &self,
        token: &str,
        client: &HttpClient,
        refetch: Duration,
    ) -> Result<Map<String, Value>, JwksRefusal> {
        use JwksRefusal::Refused;
        let (alg, kid) = jwt::header_alg_kid(token).ok_or(Refused(AuthFailure::MalformedToken))?;
        let Some((alg, validation)) = self.validations.iter().find(|(a, _)| name(*a) == alg) else {
            return Err(Refused(AuthFailure::WrongAlgorithm));
        };
        let key = self.key(kid.as_deref(), client, refetch).await?;
        if key.algorithm != *alg {
            return Err(Refused(AuthFailure::WrongAlgorithm));
        }
        jwt::decode_checked(token, &key.key, validation, self.max_lifetime).map_err(Refused)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The key for `kid`: cached, or after one (shared, rate-limited) fetch.
    async fn key(
        &self,
        kid: Option<&str>,
        client: &HttpClient,
        refetch: Duration,
    ) -> Result<Arc<JwksKey>, JwksRefusal> {
        let now = Instant::now();
        let (found, fresh, may_fetch, seen) = {
            let s = self.state();
            (
                find(&s.keys, kid),
                s.fresh_until.is_some_and(|t| now < t),
                s.last_fetch
                    .is_none_or(|t| now.duration_since(t) >= refetch),
                s.fetches,
            )
        };
        match found {
            // A stale key is still served while a fetch is not allowed yet.
            Some(k) if fresh || !may_fetch => return Ok(k),
            None if !may_fetch => return Err(self.miss()),
            _ => {}
        }
        let _one_at_a_time = self.fetching.lock().await;
        // Another request fetched while this one waited: use its result.
        if self.state().fetches == seen {
            self.refresh(client).await;
        }
        let found = find(&self.state().keys, kid);
        found.ok_or_else(|| self.miss())
    }

    /// A `kid` the cache lacks: 503 while nothing could ever be read, 401 otherwise.
    fn miss(&self) -> JwksRefusal {
        let s = self.state();
        if s.keys.is_empty() && !s.last_ok {
            JwksRefusal::Unavailable
        } else {
            JwksRefusal::Refused(AuthFailure::BadTokenSignature)
        }
    }

    async fn refresh(&self, client: &HttpClient) {
        let started = Instant::now();
        let result = self.fetch(client).await;
        let mut s = self.state();
        s.fetches += 1;
        s.last_fetch = Some(started);
        match result {
            Ok((keys, ttl)) => {
                s.keys = Arc::new(keys);
                s.fresh_until = Some(started + ttl);
                s.last_ok = true;
            }
            Err(e) => {
                // The URL is shown query-redacted by the client's error text.
                tracing::warn!(error = %e, cached_keys = s.keys.len(), "incoming: the JWKS could not be read; the cached keys stay in use");
                s.last_ok = false;
            }
        }
    }

    async fn fetch(&self, client: &HttpClient) -> Result<(KeySet, Duration), String> {
        let http = client.for_call(Instant::now() + FETCH_BUDGET, None);
        let r = http
            .get(&self.url)
            .header("accept", "application/json")
            .attempts(2)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| e.to_string())?;
        let keys = parse_jwks(r.bytes()).map_err(|e| e.to_string())?;
        Ok((keys, cache_ttl(r.headers())))
    }
}

/// The key named `kid`; a token without one uses the set's only key.
fn find(keys: &KeySet, kid: Option<&str>) -> Option<Arc<JwksKey>> {
    match kid {
        Some(k) => keys.get(k).cloned(),
        None if keys.len() == 1 => keys.values().next().cloned(),
        None => None,
    }
}
