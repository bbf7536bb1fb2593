use super::*;
use crate::incoming::config::SecretValue;
use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::json;

const SECRET: &str = "a-shared-secret-of-reasonable-length";

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn hs(claims: &Value, secret: &str) -> String {
    crate::incoming::jwt_crypto::install();
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn hs_verifier(aud: &[&str], iss: &[&str]) -> JwtVerifier {
    let mut c = JwtConfig::hs256(SecretValue::inline(SECRET));
    c.audience = aud.iter().map(|s| s.to_string()).collect();
    c.issuer = iss.iter().map(|s| s.to_string()).collect();
    JwtVerifier::new(&c, SECRET).unwrap()
}

fn unsigned(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

#[test]
fn hs256_valid_token() {
    let t = hs(&json!({"sub": "crm", "exp": now() + 600}), SECRET);
    let claims = hs_verifier(&[], &[]).verify(&t).unwrap();
    assert_eq!(claims["sub"], "crm");
}

#[test]
fn hs256_wrong_secret() {
    let t = hs(&json!({"exp": now() + 600}), "another-secret");
    assert_eq!(
        hs_verifier(&[], &[]).verify(&t),
        Err(AuthFailure::BadTokenSignature)
    );
}

#[test]
fn expired_token() {
    let v = hs_verifier(&[], &[]);
    let t = hs(&json!({"exp": now() - 3600}), SECRET);
    assert_eq!(v.verify(&t), Err(AuthFailure::TokenExpired));
    // Within the 60 s leeway it is still accepted.
    let t = hs(&json!({"exp": now() - 30}), SECRET);
    assert!(v.verify(&t).is_ok());
}

#[test]
fn a_token_valid_for_longer_than_the_maximum_lifetime_is_refused() {
    let v = hs_verifier(&[], &[]);
    // Default one hour: 30 days ahead is refused, even though it is signed.
    let t = hs(&json!({"exp": now() + 30 * 86_400}), SECRET);
    assert_eq!(v.verify(&t), Err(AuthFailure::TokenLifetimeTooLong));
    // An old iat with a near exp is a long lifetime too.
    let t = hs(&json!({"iat": now() - 86_400, "exp": now() + 60}), SECRET);
    assert_eq!(v.verify(&t), Err(AuthFailure::TokenLifetimeTooLong));
    let t = hs(&json!({"iat": now(), "exp": now() + 3000}), SECRET);
    assert!(v.verify(&t).is_ok());
    // `maxLifetimeSecs: null` lifts the limit.
    let mut c = JwtConfig::hs256(SecretValue::inline(SECRET));
    c.max_lifetime_secs = None;
    let t = hs(&json!({"exp": now() + 30 * 86_400}), SECRET);
    assert!(JwtVerifier::new(&c, SECRET).unwrap().verify(&t).is_ok());
}

#[test]
fn missing_exp() {
    let t = hs(&json!({"sub": "crm"}), SECRET);
    assert_eq!(
        hs_verifier(&[], &[]).verify(&t),
        Err(AuthFailure::MissingClaim("exp"))
    );
}

#[test]
fn audience_and_issuer_are_checked_when_configured() {
    let v = hs_verifier(&["extension"], &["https://crm.example.com"]);
    let exp = now() + 600;
    let ok = hs(
        &json!({"exp": exp, "aud": "extension", "iss": "https://crm.example.com"}),
        SECRET,
    );
    assert!(v.verify(&ok).is_ok());
    let wrong_aud = hs(
        &json!({"exp": exp, "aud": "other", "iss": "https://crm.example.com"}),
        SECRET,
    );
    assert_eq!(v.verify(&wrong_aud), Err(AuthFailure::WrongAudience));
    let wrong_iss = hs(
        &json!({"exp": exp, "aud": "extension", "iss": "https://evil.example"}),
        SECRET,
    );
    assert_eq!(v.verify(&wrong_iss), Err(AuthFailure::WrongIssuer));
    let no_aud = hs(
        &json!({"exp": exp, "iss": "https://crm.example.com"}),
        SECRET,
    );
    assert_eq!(v.verify(&no_aud), Err(AuthFailure::MissingClaim("aud")));
    let no_iss = hs(&json!({"exp": exp, "aud": "extension"}), SECRET);
    assert_eq!(v.verify(&no_iss), Err(AuthFailure::MissingClaim("iss")));
    // Not configured: any aud/iss is fine.
    assert!(hs_verifier(&[], &[]).verify(&wrong_aud).is_ok());
}

#[test]
fn alg_none_and_other_algorithms_are_refused() {
    let v = hs_verifier(&[], &[]);
    let claims = json!({"exp": now() + 600});
    for alg in ["none", "None", "NONE", "HS512", "HS384", "RS256", "ES256"] {
        let t = unsigned(&json!({"alg": alg, "typ": "JWT"}), &claims);
        assert_eq!(v.verify(&t), Err(AuthFailure::WrongAlgorithm), "{alg}");
    }
    // A genuine HS512 token with the right secret is refused too: the algorithm is pinned.
    crate::incoming::jwt_crypto::install();
    let t = encode(
        &Header::new(Algorithm::HS512),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(v.verify(&t), Err(AuthFailure::WrongAlgorithm));
}

// Throwaway test key pairs (tests/fixtures/jwt/README.md).
const RS_PRIVATE: &str = include_str!("../../../../../tests/fixtures/jwt/rs256-private.pem");
const RS_PUBLIC: &str = include_str!("../../../../../tests/fixtures/jwt/rs256-public.pem");
const OTHER_PRIVATE: &str = include_str!("../../../../../tests/fixtures/jwt/other-private.pem");

fn rs(claims: &Value, private_pem: &str) -> String {
    crate::incoming::jwt_crypto::install();
    encode(
        &Header::new(Algorithm::RS256),
        claims,
        &EncodingKey::from_rsa_pem(private_pem.as_bytes()).unwrap(),
    )
    .unwrap()
}

fn rs_verifier() -> JwtVerifier {
    JwtVerifier::new(&JwtConfig::rs256(SecretValue::inline(RS_PUBLIC)), RS_PUBLIC).unwrap()
}

#[test]
fn rs256_valid_token_and_wrong_key() {
    let v = rs_verifier();
    let claims = json!({"sub": "crm", "exp": now() + 600});
    assert_eq!(v.verify(&rs(&claims, RS_PRIVATE)).unwrap()["sub"], "crm");
    assert_eq!(
        v.verify(&rs(&claims, OTHER_PRIVATE)),
        Err(AuthFailure::BadTokenSignature)
    );
    let expired = json!({"exp": now() - 3600});
    assert_eq!(
        v.verify(&rs(&expired, RS_PRIVATE)),
        Err(AuthFailure::TokenExpired)
    );
}

#[test]
fn hs256_token_is_refused_when_rs256_is_pinned() {
    let v = rs_verifier();
    let claims = json!({"exp": now() + 600});
    // The classic confusion attack: HMAC-sign with the public key's text as the secret.
    let forged = hs(&claims, RS_PUBLIC);
    assert_eq!(v.verify(&forged), Err(AuthFailure::WrongAlgorithm));
    let t = unsigned(&json!({"alg": "none"}), &claims);
    assert_eq!(v.verify(&t), Err(AuthFailure::WrongAlgorithm));
    // And an RS256 token on an HS256 endpoint.
    assert_eq!(
        hs_verifier(&[], &[]).verify(&rs(&claims, RS_PRIVATE)),
        Err(AuthFailure::WrongAlgorithm)
    );
}

#[test]
fn rs256_needs_a_pem_public_key() {
    let c = JwtConfig::rs256(SecretValue::inline("x"));
    assert!(JwtVerifier::new(&c, "not a pem").is_err());
    assert!(JwtVerifier::new(&JwtConfig::hs256(SecretValue::inline("x")), "").is_err());
}

/// An HS256 secret shorter than the hash output is refused; secrets are
/// trimmed like HMAC ones (a file's trailing newline is not part of the key).
#[test]
fn hs256_secrets_are_trimmed_and_at_least_32_bytes() {
    let c = JwtConfig::hs256(SecretValue::inline("x"));
    let short = "s".repeat(MIN_HS256_SECRET_BYTES - 1);
    let e = JwtVerifier::new(&c, &short).unwrap_err();
    assert!(e.contains("at least 32"), "{e}");
    // Padding does not make a short secret long enough.
    assert!(JwtVerifier::new(&c, &format!("  {short}\n")).is_err());
    // The trailing newline of a secret file is not part of the key.
    let v = JwtVerifier::new(&c, &format!("{SECRET}\n")).unwrap();
    let t = hs(&json!({"exp": now() + 600}), SECRET);
    assert!(v.verify(&t).is_ok());
}

#[test]
fn malformed_tokens() {
    let v = hs_verifier(&[], &[]);
    for t in [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.",
        &"x".repeat(MAX_TOKEN_LEN + 1),
    ] {
        assert_eq!(v.verify(t), Err(AuthFailure::MalformedToken), "{t:.20}");
    }
}

#[test]
fn bearer_header() {
    let mut h = HeaderMap::new();
    assert_eq!(bearer_token(&h), None);
    h.insert(header::AUTHORIZATION, "Bearer abc.def.ghi".parse().unwrap());
    assert_eq!(bearer_token(&h), Some("abc.def.ghi"));
    h.insert(header::AUTHORIZATION, "bearer   t ".parse().unwrap());
    assert_eq!(bearer_token(&h), Some("t"));
    h.insert(header::AUTHORIZATION, "Basic dXNlcjpwdw==".parse().unwrap());
    assert_eq!(bearer_token(&h), None);
    h.insert(header::AUTHORIZATION, "Bearer ".parse().unwrap());
    assert_eq!(bearer_token(&h), None);
}
