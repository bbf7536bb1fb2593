//! Slack request signatures (Slack's "Verifying requests from Slack" documentation).
//!
//! `X-Slack-Signature: v0=<hex>`, the HMAC-SHA256 keyed with the app's signing secret of
//! `v0:<X-Slack-Request-Timestamp>:<raw body>`; the timestamp must be within the tolerance
//! (Slack recommends five minutes). The Events API's `url_verification` request is answered
//! with its `challenge` ([`challenge`]).

use super::AuthFailure;
use super::common::{decode_hex, encode_hex, mac, required_header, same};
use super::replay::Replay;
use http::HeaderMap;
use ring::hmac::HMAC_SHA256;
use serde_json::{Map, Value};
use std::time::Duration;

/// The header Slack signs with.
pub const SIGNATURE_HEADER: &str = "x-slack-signature";
/// The header with the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-slack-request-timestamp";

/// The signature in an `X-Slack-Signature` value (`v0=` and 64 hex digits).
pub fn parse_signature(value: &str) -> Result<Vec<u8>, AuthFailure> {
    value
        .strip_prefix("v0=")
        .filter(|h| h.len() == 64)
        .and_then(decode_hex)
        .ok_or(AuthFailure::BadSignature)
}

fn tag(secret: &[u8], timestamp: &str, body: &[u8]) -> Vec<u8> {
    mac(
        HMAC_SHA256,
        secret,
        &[b"v0:", timestamp.as_bytes(), b":", body],
    )
}

/// The `X-Slack-Signature` value Slack sends for `body` signed at `timestamp`.
pub fn sign(secret: &[u8], timestamp: u64, body: &[u8]) -> String {
    format!(
        "v0={}",
        encode_hex(&tag(secret, &timestamp.to_string(), body))
    )
}

/// Verify a request against `secret` at `now`; the signed message's replay record.
pub fn verify(
    headers: &HeaderMap,
    body: &[u8],
    secret: &[u8],
    tolerance: Duration,
    now: u64,
) -> Result<Replay, AuthFailure> {
    let ts = required_header(headers, TIMESTAMP_HEADER)?;
    let presented = parse_signature(required_header(headers, SIGNATURE_HEADER)?)?;
    super::common::fresh_timestamp(ts, now, tolerance)?;
    let expected = tag(secret, ts, body);
    if !same(&expected, &presented) {
        return Err(AuthFailure::BadSignature);
    }
    Ok(Replay::within(
        "slack-replay",
        format!("{ts}.{}", encode_hex(&expected)),
        tolerance,
    ))
}

/// The `challenge` of an Events API `url_verification` request (answered, not queued).
pub fn challenge(body: &Map<String, Value>) -> Option<&str> {
    match (body.get("type"), body.get("challenge")) {
        (Some(Value::String(t)), Some(Value::String(c))) if t == "url_verification" => Some(c),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    /// The example in Slack's documentation (a slash command's form body).
    const SECRET: &[u8] = b"8f742231b10e8888abcd99yyyzzz85a5";
    const TS: u64 = 1531420618;
    pub(crate) const BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const EXPECTED: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
    const TOL: Duration = Duration::from_secs(300);

    fn headers(ts: &str, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(ts).unwrap());
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).unwrap());
        h
    }

    #[test]
    fn matches_slacks_documented_example() {
        assert_eq!(sign(SECRET, TS, BODY.as_bytes()), EXPECTED);
        let h = headers(&TS.to_string(), EXPECTED);
        assert!(verify(&h, BODY.as_bytes(), SECRET, TOL, TS + 299).is_ok());
    }

    #[test]
    fn tampered_stale_and_malformed_requests_are_refused() {
        let h = headers(&TS.to_string(), EXPECTED);
        assert_eq!(
            verify(&h, b"token=other", SECRET, TOL, TS).unwrap_err(),
            AuthFailure::BadSignature
        );
        assert_eq!(
            verify(&h, BODY.as_bytes(), SECRET, TOL, TS + 301).unwrap_err(),
            AuthFailure::StaleTimestamp
        );
        let moved = headers(&(TS + 1).to_string(), EXPECTED);
        assert_eq!(
            verify(&moved, BODY.as_bytes(), SECRET, TOL, TS).unwrap_err(),
            AuthFailure::BadSignature
        );
        for bad in ["", "v0=", "v1=ab", &EXPECTED[3..], "v0=zz"] {
            assert!(parse_signature(bad).is_err(), "{bad}");
        }
        assert_eq!(
            verify(&headers("soon", EXPECTED), BODY.as_bytes(), SECRET, TOL, TS).unwrap_err(),
            AuthFailure::BadTimestamp
        );
    }
}
