//! GitHub webhook signatures (GitHub's "Validating webhook deliveries" documentation).
//!
//! `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body keyed with the
//! webhook's secret. GitHub signs no timestamp: `X-GitHub-Delivery` (the same on a
//! redelivery) is the endpoint's default dedup key, so a redelivery or a replay is answered 204
//! and queued once.

use super::AuthFailure;
use super::common::{decode_hex, encode_hex, mac, verify_body_hmac};
use http::HeaderMap;
use ring::hmac::HMAC_SHA256;

/// The header GitHub signs with.
pub const HEADER: &str = "x-hub-signature-256";
/// GitHub's delivery id (the default dedup key).
pub const DELIVERY_HEADER: &str = "x-github-delivery";

/// The `X-Hub-Signature-256` value GitHub sends for `body`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    format!("sha256={}", encode_hex(&mac(HMAC_SHA256, secret, &[body])))
}

/// Verify a request against `secret`.
pub fn verify(headers: &HeaderMap, body: &[u8], secret: &[u8]) -> Result<(), AuthFailure> {
    verify_body_hmac(headers, HEADER, body, secret, |v| {
        v.strip_prefix("sha256=").and_then(decode_hex)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// The example in GitHub's documentation.
    const SECRET: &[u8] = b"It's a Secret to Everybody";
    const BODY: &[u8] = b"Hello, World!";
    const EXPECTED: &str =
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn matches_githubs_documented_example() {
        assert_eq!(sign(SECRET, BODY), EXPECTED);
        assert_eq!(verify(&headers(EXPECTED), BODY, SECRET), Ok(()));
    }

    #[test]
    fn tampered_and_malformed_signatures_are_refused() {
        assert_eq!(
            verify(&headers(EXPECTED), b"Hello, World?", SECRET),
            Err(AuthFailure::BadSignature)
        );
        for bad in ["sha1=757107ea", &EXPECTED[7..], "sha256=zz", "sha256="] {
            assert_eq!(
                verify(&headers(bad), BODY, SECRET),
                Err(AuthFailure::BadSignature),
                "{bad}"
            );
        }
        assert_eq!(
            verify(&HeaderMap::new(), BODY, SECRET),
            Err(AuthFailure::MissingSignature)
        );
    }
}
