//! JWT bearer tokens (`Authorization: Bearer <token>`), verified with `jsonwebtoken`.
//!
//! Each endpoint pins one algorithm (HS256 with a shared secret, or RS256 with a PEM public
//! key); a token whose header names anything else — another HMAC or RSA variant, `none`, a
//! public-key algorithm on an HMAC endpoint — is refused before any signature check. `exp` is
//! required (with the configured leeway); `nbf` is honoured when present; `aud` and `iss` are
//! required and checked when the endpoint configures them, and ignored otherwise.

use super::AuthFailure;
use super::config::{JwtAlgorithm, JwtConfig};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, header};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

/// Longest token accepted (a JWT is normally well under 2 KB).
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Shortest HS256 secret, in bytes: RFC 7518 §3.2 requires a key at least as long as the hash
/// output (256 bits).
pub const MIN_HS256_SECRET_BYTES: usize = 32;

/// A verifier for one endpoint: the key and the validation rules.
pub struct JwtVerifier {
    algorithm: Algorithm,
    key: DecodingKey,
    validation: Validation,
    max_lifetime: Option<u64>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwtVerifier({:?})", self.algorithm)
    }
}

impl JwtVerifier {
    /// Build the verifier from the endpoint settings and the key material: the shared secret
    /// (HS256; surrounding whitespace trimmed, like HMAC secrets, and at least
    /// [`MIN_HS256_SECRET_BYTES`] long) or the PEM public key (RS256).
    pub fn new(config: &JwtConfig, key_material: &str) -> Result<Self, String> {
        super::jwt_crypto::install();
        let (algorithm, key) = match config.algorithm {
            Some(JwtAlgorithm::HS256) => {
                let key_material = key_material.trim();
                if key_material.is_empty() {
                    return Err("the HS256 secret is empty".into());
                }
                if key_material.len() < MIN_HS256_SECRET_BYTES {
                    return Err(format!(
                        "the HS256 secret is {} bytes; at least {MIN_HS256_SECRET_BYTES} are required (RFC 7518 section 3.2)",
                        key_material.len()
                    ));
                }
                (
                    Algorithm::HS256,
                    DecodingKey::from_secret(key_material.as_bytes()),
                )
            }
            Some(JwtAlgorithm::RS256) => (
                Algorithm::RS256,
                DecodingKey::from_rsa_pem(key_material.as_bytes()).map_err(|e| {
                    format!("the RS256 public key is not a PEM RSA public key: {e}")
                })?,
            ),
            _ => {
                return Err(
                    "a fixed JWT key is HS256 or RS256 (ES256 and EdDSA need jwksUrl)".into(),
                );
            }
        };
        Ok(Self {
            algorithm,
            key,
            validation: validation(config, algorithm),
            max_lifetime: max_lifetime(config),
        })
    }
    /// Verify `token`; on success, its claims.
    pub fn verify(&self, token: &str) -> Result<Map<String, Value>, AuthFailure> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthFailure::MalformedToken);
        }
        // Name the algorithm problem precisely (jsonwebtoken cannot even parse `alg: none`).
        match header_alg(token) {
            None => return Err(AuthFailure::MalformedToken),
            Some(alg) if alg != algorithm_name(self.algorithm) => {
                return Err(AuthFailure::WrongAlgorithm);
            }
            Some(_) => {}
        }
        decode_checked(token, &self.key, &self.validation, self.max_lifetime)
    }
}

/// The validation rules of an endpoint for tokens signed with `algorithm`: `exp` required
/// (with the leeway), `nbf` honoured, `aud` and `iss` required and checked when configured.
pub(crate) fn validation(config: &JwtConfig, algorithm: Algorithm) -> Validation {
    let mut validation = Validation::new(algorithm);
    let mut required = vec!["exp"];
    validation.leeway = config.leeway_secs;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    if config.audience.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&config.audience);
        required.push("aud");
    }
    if !config.issuer.is_empty() {
        validation.set_issuer(&config.issuer);
        required.push("iss");
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// The endpoint's longest token lifetime, leeway included.
pub(crate) fn max_lifetime(config: &JwtConfig) -> Option<u64> {
    config
        .max_lifetime_secs
        .map(|m| m.saturating_add(config.leeway_secs))
}

/// Check `token`'s signature with `key` and its claims with `validation` and the lifetime.
pub(crate) fn decode_checked(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
    max_lifetime: Option<u64>,
) -> Result<Map<String, Value>, AuthFailure> {
    match jsonwebtoken::decode::<Map<String, Value>>(token, key, validation) {
        Ok(data) => lifetime_ok(data.claims, max_lifetime),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature => AuthFailure::BadTokenSignature,
            ErrorKind::ExpiredSignature => AuthFailure::TokenExpired,
            ErrorKind::ImmatureSignature => AuthFailure::TokenNotYetValid,
            ErrorKind::InvalidAudience => AuthFailure::WrongAudience,
            ErrorKind::InvalidIssuer => AuthFailure::WrongIssuer,
            ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
                AuthFailure::WrongAlgorithm
            }
            ErrorKind::MissingRequiredClaim(c) => AuthFailure::MissingClaim(match c.as_str() {
                "exp" => "exp",
                "aud" => "aud",
                "iss" => "iss",
                _ => "a required claim",
            }),
            _ => AuthFailure::MalformedToken,
        }),
    }
}

/// `exp` at most the maximum lifetime (plus the leeway) from now, and from `iat` when the
/// token has one.
fn lifetime_ok(
    claims: Map<String, Value>,
    max_lifetime: Option<u64>,
) -> Result<Map<String, Value>, AuthFailure> {
    let Some(max) = max_lifetime else {
        return Ok(claims);
    };
    let num = |c: &str| claims.get(c).and_then(Value::as_f64);
    // `exp` is required and numeric (checked by the validation above).
    let exp = num("exp").unwrap_or(f64::INFINITY);
    let now = crate::time::EpochSeconds::now().0 as f64;
    let from = num("iat").map_or(now, |iat| iat.min(now));
    if exp - from > max as f64 {
        return Err(AuthFailure::TokenLifetimeTooLong);
    }
    Ok(claims)
}

fn algorithm_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::RS256 => "RS256",
        _ => "HS256",
    }
}

/// The `alg` of a compact JWS header, without trusting anything else in it.
fn header_alg(token: &str) -> Option<String> {
    header(token)?.get("alg")?.as_str().map(str::to_owned)
}

/// Longest `kid` read from a token header.
pub const MAX_KID_LEN: usize = 256;

/// The `alg` and `kid` (when present, a string of at most [`MAX_KID_LEN`] bytes) of a compact
/// JWS header; `None` for anything else.
pub fn header_alg_kid(token: &str) -> Option<(String, Option<String>)> {
    let h = header(token)?;
    let alg = h.get("alg")?.as_str()?.to_owned();
    let kid = match h.get("kid") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if !k.is_empty() && k.len() <= MAX_KID_LEN => Some(k.clone()),
        Some(_) => return None,
    };
    Some((alg, kid))
}

/// A compact JWS's decoded header object.
fn header(token: &str) -> Option<Map<String, Value>> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let bytes = URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests;
