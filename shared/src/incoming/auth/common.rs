//! What the signature schemes share: reading one header value, hex, HMAC computed with `ring`
//! and compared in constant time, and the checks on a configured shared secret.

use super::AuthFailure;
use http::HeaderMap;
use ring::hmac;
use subtle::ConstantTimeEq;

/// Longest signature header read (several signatures during a rotation fit easily).
pub const MAX_SIGNATURE_HEADER: usize = 4096;

/// The one value of header `name` (trimmed; `None` when absent, empty or not text). A header
/// sent more than once is [`AuthFailure::RepeatedHeader`]: the signature check and the replay
/// record must read the very same value, and no sender of a valid request repeats these.
pub(crate) fn single_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<Option<&'a str>, AuthFailure> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(AuthFailure::RepeatedHeader);
    }
    Ok(first
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty()))
}

/// The one value of a header the scheme needs: absent is [`AuthFailure::MissingSignature`].
pub(crate) fn required_header<'a>(
    headers: &'a HeaderMap,
    name: &str,
) -> Result<&'a str, AuthFailure> {
    single_header(headers, name)?.ok_or(AuthFailure::MissingSignature)
}

/// Hexadecimal (either case) to bytes; `None` for an odd length or another character.
pub fn decode_hex(text: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks_exact(2)
        .map(|p| Some(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

/// Lower-case hexadecimal.
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The HMAC of the concatenation of `parts` under `key`.
pub fn mac(algorithm: hmac::Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let key = hmac::Key::new(algorithm, key);
    let mut ctx = hmac::Context::with_key(&key);
    for p in parts {
        ctx.update(p);
    }
    ctx.sign().as_ref().to_vec()
}

/// `expected == presented`, in time independent of where they differ.
pub(crate) fn same(expected: &[u8], presented: &[u8]) -> bool {
    expected.ct_eq(presented).into()
}

/// The senders that sign only the body (GitHub, Shopify): header `name`'s value, at most
/// [`MAX_SIGNATURE_HEADER`] long and turned into bytes by `decode`, must be the HMAC-SHA256 of
/// `body` keyed with `secret`.
pub(crate) fn verify_body_hmac(
    headers: &HeaderMap,
    name: &str,
    body: &[u8],
    secret: &[u8],
    decode: impl FnOnce(&str) -> Option<Vec<u8>>,
) -> Result<(), AuthFailure> {
    let value = required_header(headers, name)?;
    if value.len() > MAX_SIGNATURE_HEADER {
        return Err(AuthFailure::BadSignature);
    }
    let presented = decode(value).ok_or(AuthFailure::BadSignature)?;
    if same(&mac(hmac::HMAC_SHA256, secret, &[body]), &presented) {
        Ok(())
    } else {
        Err(AuthFailure::BadSignature)
    }
}

/// A shared secret of the provider schemes: trimmed, at least `min` bytes.
fn shared_secret(secret: &str, min: usize) -> Result<Vec<u8>, String> {
    let secret = secret.trim();
    if secret.is_empty() {
        return Err("the secret is empty".into());
    }
    if secret.len() < min {
        return Err(format!(
            "the secret is {} bytes; this scheme needs at least {min}",
            secret.len()
        ));
    }
    Ok(secret.as_bytes().to_vec())
}

/// The key of `stripe`, `github`, `shopify`, `slack`, a spelled-out `hmac` and `apiKey`.
pub fn provider_key(secret: &str) -> Result<Vec<u8>, String> {
    shared_secret(secret, super::config::MIN_SHARED_SECRET_BYTES)
}

/// A `basic` password.
pub fn password_key(secret: &str) -> Result<Vec<u8>, String> {
    shared_secret(secret, super::config::MIN_PASSWORD_BYTES)
}

/// A signed Unix time `secs` within `tolerance` of `now` (either side), or
/// [`AuthFailure::StaleTimestamp`]. Every scheme that signs a timestamp checks it here.
pub(crate) fn within_tolerance(
    secs: u64,
    now: u64,
    tolerance: std::time::Duration,
) -> Result<(), AuthFailure> {
    if now.abs_diff(secs) > tolerance.as_secs() {
        return Err(AuthFailure::StaleTimestamp);
    }
    Ok(())
}

/// A sender's timestamp header (Unix seconds as text): a number
/// ([`AuthFailure::BadTimestamp`] otherwise) within `tolerance` of `now`.
pub(crate) fn fresh_timestamp(
    ts: &str,
    now: u64,
    tolerance: std::time::Duration,
) -> Result<u64, AuthFailure> {
    let secs = ts.parse::<u64>().map_err(|_| AuthFailure::BadTimestamp)?;
    within_tolerance(secs, now, tolerance)?;
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_refuses_garbage() {
        assert_eq!(decode_hex("00ff7Fa0"), Some(vec![0, 255, 127, 160]));
        assert_eq!(encode_hex(&[0, 255, 127, 160]), "00ff7fa0");
        for bad in ["0", "0g", "é0", "+1"] {
            assert_eq!(decode_hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn short_or_empty_shared_secrets_are_refused() {
        assert!(provider_key("  ").is_err());
        assert!(provider_key("fifteen-bytes!!").is_err());
        assert_eq!(
            provider_key(" sixteen-bytes!!! ").unwrap(),
            b"sixteen-bytes!!!"
        );
        assert!(password_key("seven!!").is_err());
        assert!(password_key("eight!!!").is_ok());
    }
}
