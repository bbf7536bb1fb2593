use super::*;
use http::HeaderValue;

// The example from the Standard Webhooks reference implementations' tests.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TS: u64 = 1614265330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const EXPECTED: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn headers(id: &str, ts: u64, sig: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(ID_HEADER, HeaderValue::from_str(id).unwrap());
    h.insert(
        TIMESTAMP_HEADER,
        HeaderValue::from_str(&ts.to_string()).unwrap(),
    );
    h.insert(SIGNATURE_HEADER, HeaderValue::from_str(sig).unwrap());
    h
}

fn key() -> Vec<u8> {
    key_from_secret(SECRET).unwrap()
}

const TOL: Duration = Duration::from_secs(300);

#[test]
fn signs_like_the_reference_implementation() {
    assert_eq!(sign(&key(), ID, TS, BODY), EXPECTED);
}

#[test]
fn accepts_a_valid_signature() {
    assert_eq!(
        verify(&headers(ID, TS, EXPECTED), BODY, &key(), TOL, TS),
        Ok(())
    );
    // Within the tolerance on either side.
    assert_eq!(
        verify(&headers(ID, TS, EXPECTED), BODY, &key(), TOL, TS + 300),
        Ok(())
    );
    assert_eq!(
        verify(&headers(ID, TS, EXPECTED), BODY, &key(), TOL, TS - 300),
        Ok(())
    );
}

#[test]
fn rejects_a_wrong_secret_body_or_id() {
    let other = key_from_secret("whsec_c2VjcmV0LW51bWJlci10d28=").unwrap();
    assert_eq!(
        verify(&headers(ID, TS, EXPECTED), BODY, &other, TOL, TS),
        Err(AuthFailure::BadSignature)
    );
    assert_eq!(
        verify(
            &headers(ID, TS, EXPECTED),
            br#"{"test": 2432232315}"#,
            &key(),
            TOL,
            TS
        ),
        Err(AuthFailure::BadSignature)
    );
    assert_eq!(
        verify(&headers("msg_other", TS, EXPECTED), BODY, &key(), TOL, TS),
        Err(AuthFailure::BadSignature)
    );
    // Re-serialised JSON (different whitespace) is a different body.
    assert_eq!(
        verify(
            &headers(ID, TS, EXPECTED),
            br#"{"test":2432232314}"#,
            &key(),
            TOL,
            TS
        ),
        Err(AuthFailure::BadSignature)
    );
}

#[test]
fn rejects_stale_and_future_timestamps() {
    assert_eq!(
        verify(&headers(ID, TS, EXPECTED), BODY, &key(), TOL, TS + 301),
        Err(AuthFailure::StaleTimestamp)
    );
    assert_eq!(
        verify(&headers(ID, TS, EXPECTED), BODY, &key(), TOL, TS - 301),
        Err(AuthFailure::StaleTimestamp)
    );
    let mut h = headers(ID, TS, EXPECTED);
    h.insert(TIMESTAMP_HEADER, HeaderValue::from_static("soon"));
    assert_eq!(
        verify(&h, BODY, &key(), TOL, TS),
        Err(AuthFailure::BadTimestamp)
    );
}

#[test]
fn accepts_any_of_several_signatures() {
    let other = key_from_secret("another-raw-secret").unwrap();
    let old = sign(&other, ID, TS, BODY);
    for list in [
        format!("{old} {EXPECTED}"),
        format!("{EXPECTED} {old}"),
        format!("v1a,AAAA {old}  {EXPECTED}"),
        format!("v2,{} {EXPECTED}", &EXPECTED[3..]),
        format!("v1,not-base64!! {EXPECTED}"),
    ] {
        assert_eq!(
            verify(&headers(ID, TS, &list), BODY, &key(), TOL, TS),
            Ok(()),
            "{list}"
        );
    }
    // None of them matching is a failure.
    assert_eq!(
        verify(
            &headers(ID, TS, &format!("{old} v1,AAAA")),
            BODY,
            &key(),
            TOL,
            TS
        ),
        Err(AuthFailure::BadSignature)
    );
    // A v1 signature under another version label does not count.
    assert_eq!(
        verify(
            &headers(ID, TS, &format!("v2,{}", &EXPECTED[3..])),
            BODY,
            &key(),
            TOL,
            TS
        ),
        Err(AuthFailure::BadSignature)
    );
}

#[test]
fn missing_headers_and_key_forms() {
    let mut h = headers(ID, TS, EXPECTED);
    h.remove(SIGNATURE_HEADER);
    assert_eq!(
        verify(&h, BODY, &key(), TOL, TS),
        Err(AuthFailure::MissingSignature)
    );
    assert_eq!(key_from_secret("raw").unwrap(), b"raw");
    assert!(key_from_secret("whsec_!!!").is_err());
    assert!(key_from_secret("  ").is_err());
}

/// A `whsec_` secret with nothing after the prefix is an empty key
/// (which HMAC would happily use): refused.
#[test]
fn a_whsec_secret_that_decodes_to_nothing_is_refused() {
    for empty in ["whsec_", " whsec_ ", "whsec_\n"] {
        let e = key_from_secret(empty).unwrap_err();
        assert!(e.contains("at least one byte"), "{empty:?}: {e}");
    }
    assert_eq!(key_from_secret("whsec_AA==").unwrap(), [0u8]);
}

/// Each signature header is read once; a repeated one is refused, whatever
/// the first value is.
#[test]
fn a_repeated_signature_header_is_refused() {
    for name in [ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER] {
        let mut h = headers(ID, TS, EXPECTED);
        let again = h.get(name).unwrap().clone();
        h.append(name, again);
        assert_eq!(
            verify(&h, BODY, &key(), TOL, TS),
            Err(AuthFailure::RepeatedHeader),
            "{name}"
        );
    }
    let mut h = headers(ID, TS, EXPECTED);
    h.append(ID_HEADER, HeaderValue::from_static("msg_other"));
    assert_eq!(
        verify(&h, BODY, &key(), TOL, TS),
        Err(AuthFailure::RepeatedHeader)
    );
}

/// Standard Webhooks v1a: a `whpk_` ed25519 public key verifies `v1a` entries; a v1 HMAC
/// entry or another key's signature does not.
#[test]
fn ed25519_v1a_signatures_verify_with_a_whpk_public_key() {
    let seed = [7u8; 32];
    let public = public_key_from_secret(&public_key_of(&seed))
        .unwrap()
        .unwrap();
    let good = sign_ed25519(&seed, ID, TS, BODY);
    let other = sign_ed25519(&[8u8; 32], ID, TS, BODY);
    for list in [
        good.clone(),
        format!("{EXPECTED} {good}"),
        format!("{other} {good}"),
    ] {
        assert_eq!(
            verify_ed25519(&headers(ID, TS, &list), BODY, &public, TOL, TS),
            Ok(()),
            "{list}"
        );
    }
    for list in [other, EXPECTED.to_owned(), format!("v1,{}", &good[4..])] {
        assert_eq!(
            verify_ed25519(&headers(ID, TS, &list), BODY, &public, TOL, TS),
            Err(AuthFailure::BadSignature),
            "{list}"
        );
    }
    assert_eq!(
        verify_ed25519(&headers(ID, TS, &good), b"{}", &public, TOL, TS),
        Err(AuthFailure::BadSignature)
    );
    assert_eq!(
        verify_ed25519(&headers(ID, TS, &good), BODY, &public, TOL, TS + 301),
        Err(AuthFailure::StaleTimestamp)
    );
    assert!(public_key_from_secret("whpk_AAAA").unwrap().is_err());
    assert!(public_key_from_secret("whsec_AAAA").is_none());
}
