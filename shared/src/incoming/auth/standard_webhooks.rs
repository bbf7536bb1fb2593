//! Standard Webhooks signatures (<https://www.standardwebhooks.com>, spec 1.0.0).
//!
//! The sender puts three headers on the request:
//!
//! - `webhook-id`: the message id (the same on every retry of one message);
//! - `webhook-timestamp`: Unix seconds when it signed;
//! - `webhook-signature`: one or more space-separated `v1,<base64 HMAC-SHA256>` entries (several
//!   while the sender rotates its secret).
//!
//! The signed content is `"{id}.{timestamp}.{raw body}"` over the body's exact bytes. A request
//! is accepted when the timestamp is within the tolerance (300 s by default, both directions)
//! and any `v1` entry matches; the comparison is constant-time (`Mac::verify_slice`).

use super::AuthFailure;
pub(crate) use super::common::single_header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use std::time::Duration;

pub const ID_HEADER: &str = "webhook-id";
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const SIGNATURE_HEADER: &str = "webhook-signature";
/// The prefix Standard Webhooks puts on base64 secrets.
pub const SECRET_PREFIX: &str = "whsec_";

use super::common::MAX_SIGNATURE_HEADER;

type HmacSha256 = Hmac<Sha256>;

/// The HMAC key a configured secret stands for: `whsec_<base64>` is decoded, anything else is
/// used as its UTF-8 bytes.
pub fn key_from_secret(secret: &str) -> Result<Vec<u8>, String> {
    let secret = secret.trim();
    match secret.strip_prefix(SECRET_PREFIX) {
        Some(b64) => match STANDARD.decode(b64) {
            Ok(key) if key.is_empty() => Err(format!(
                "a {SECRET_PREFIX} secret must decode to a key of at least one byte"
            )),
            Ok(key) => Ok(key),
            Err(_) => Err(format!(
                "a {SECRET_PREFIX} secret must be base64 after the prefix"
            )),
        },
        None if secret.is_empty() => Err("the secret is empty".into()),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

fn mac(key: &[u8], id: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    // Not input-dependent: HMAC takes keys of any length, so this cannot fail.
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(id.as_bytes());
    m.update(b".");
    m.update(timestamp.as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `webhook-signature` value for one message (`v1,<base64>`): what a sender computes.
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &[u8]) -> String {
    let tag = mac(key, id, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1,{}", STANDARD.encode(tag))
}

/// The signed message's `webhook-id` and `webhook-timestamp`, as [`verify`] read them.
pub(crate) fn signed_id(headers: &HeaderMap) -> Result<(&str, &str), AuthFailure> {
    match (
        single_header(headers, ID_HEADER)?,
        single_header(headers, TIMESTAMP_HEADER)?,
    ) {
        (Some(id), Some(ts)) => Ok((id, ts)),
        _ => Err(AuthFailure::MissingSignature),
    }
}

/// The signed message's id, timestamp and signature list, once the timestamp is within
/// `tolerance` of `now`.
fn signed_parts(
    headers: &HeaderMap,
    tolerance: Duration,
    now: u64,
) -> Result<(&str, &str, &str), AuthFailure> {
    let (id, ts) = signed_id(headers)?;
    let Some(sigs) = single_header(headers, SIGNATURE_HEADER)? else {
        return Err(AuthFailure::MissingSignature);
    };
    if sigs.len() > MAX_SIGNATURE_HEADER {
        return Err(AuthFailure::BadSignature);
    }
    super::common::fresh_timestamp(ts, now, tolerance)?;
    Ok((id, ts, sigs))
}

/// The decoded signatures of one version (`v1`, `v1a`) in a `webhook-signature` list.
fn entries<'a>(sigs: &'a str, version: &'a str) -> impl Iterator<Item = Vec<u8>> + 'a {
    sigs.split(' ')
        .filter_map(move |e| match e.split_once(',') {
            Some((v, b64)) if v == version => STANDARD.decode(b64).ok(),
            _ => None,
        })
}

/// Verify a request's Standard Webhooks signature against `key` at time `now` (Unix seconds).
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    key: &[u8],
    tolerance: Duration,
    now: u64,
) -> Result<(), AuthFailure> {
    let (id, ts, sigs) = signed_parts(headers, tolerance, now)?;
    let expected = mac(key, id, ts, body);
    let mut matched = false;
    // Other versions (v1a: asymmetric) are not checked with a symmetric key. Every entry is
    // checked (no early exit), each in constant time.
    for tag in entries(sigs, "v1") {
        matched |= expected.clone().verify_slice(&tag).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(AuthFailure::BadSignature)
    }
}

/// The prefix of a Standard Webhooks ed25519 public key (`whpk_<base64 of 32 bytes>`).
pub const PUBLIC_KEY_PREFIX: &str = "whpk_";

/// The ed25519 public key of a `whpk_` value; `None` when the value is not one.
pub fn public_key_from_secret(secret: &str) -> Option<Result<Vec<u8>, String>> {
    let b64 = secret.trim().strip_prefix(PUBLIC_KEY_PREFIX)?;
    Some(match STANDARD.decode(b64) {
        Ok(k) if k.len() == 32 => Ok(k),
        _ => Err(format!(
            "a {PUBLIC_KEY_PREFIX} key must be the base64 of a 32-byte ed25519 public key"
        )),
    })
}

/// Verify a request's `v1a` (ed25519) signature against `public_key` at `now`.
pub fn verify_ed25519(
    headers: &HeaderMap,
    body: &[u8],
    public_key: &[u8],
    tolerance: Duration,
    now: u64,
) -> Result<(), AuthFailure> {
    use ring::signature::{ED25519, UnparsedPublicKey};
    let (id, ts, sigs) = signed_parts(headers, tolerance, now)?;
    let message = [id.as_bytes(), b".", ts.as_bytes(), b".", body].concat();
    let key = UnparsedPublicKey::new(&ED25519, public_key);
    let mut matched = false;
    for sig in entries(sigs, "v1a") {
        matched |= key.verify(&message, &sig).is_ok();
    }
    if matched {
        Ok(())
    } else {
        Err(AuthFailure::BadSignature)
    }
}

/// The `v1a` entry a sender holding the ed25519 key with `seed` computes (tests, examples).
pub fn sign_ed25519(seed: &[u8; 32], id: &str, timestamp: u64, body: &[u8]) -> String {
    // Not input-dependent: any 32 bytes are a seed.
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .expect("any 32 bytes are an ed25519 seed");
    let message = [
        id.as_bytes(),
        b".",
        timestamp.to_string().as_bytes(),
        b".",
        body,
    ]
    .concat();
    format!("v1a,{}", STANDARD.encode(pair.sign(&message)))
}

/// The `whpk_` public key of the ed25519 key with `seed` (tests, examples).
pub fn public_key_of(seed: &[u8; 32]) -> String {
    use ring::signature::KeyPair;
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .expect("any 32 bytes are an ed25519 seed");
    format!(
        "{PUBLIC_KEY_PREFIX}{}",
        STANDARD.encode(pair.public_key().as_ref())
    )
}

#[cfg(test)]
mod tests;
