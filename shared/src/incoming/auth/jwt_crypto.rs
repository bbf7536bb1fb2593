//! `jsonwebtoken`'s cryptography on ring, the crypto library rustls already links for the AWS
//! SDK's HTTPS client: one crypto stack per binary instead of a second one (aws-lc-rs, or
//! RustCrypto's `rsa`/`p256`/`p384`/`ed25519` crates) just for webhook tokens.
//!
//! Covers what endpoints may pin and a little more for tests: HMAC (HS256/384/512), RSA
//! PKCS#1 v1.5 (RS256/384/512, 2048–8192-bit keys, as aws-lc-rs and ring both require), and,
//! for keys read from a JWKS, verification of ES256 (P-256, fixed-length `r||s` signatures) and
//! EdDSA (Ed25519). Every other algorithm is refused with `InvalidAlgorithm`; JWK thumbprint
//! helpers are not provided (`DecodingKey::from_jwk` needs none).

use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{ErrorKind, Result};
use jsonwebtoken::signature::{self, Signer, Verifier};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, DecodingKeyKind, EncodingKey};
use ring::{hmac, rand, signature as sig};

static PROVIDER: CryptoProvider = CryptoProvider {
    signer_factory,
    verifier_factory,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Make ring `jsonwebtoken`'s process-wide provider. Idempotent; must run before the first
/// `jsonwebtoken::encode`/`decode` (the crate is built without a backend of its own, so it would
/// otherwise fall back to a provider that panics). [`super::jwt::JwtVerifier::new`] calls it.
pub fn install() {
    // Err only means a provider is already installed: ours (no other one is compiled in).
    let _ = PROVIDER.install_default();
}

fn hmac_algorithm(a: Algorithm) -> Option<hmac::Algorithm> {
    match a {
        Algorithm::HS256 => Some(hmac::HMAC_SHA256),
        Algorithm::HS384 => Some(hmac::HMAC_SHA384),
        Algorithm::HS512 => Some(hmac::HMAC_SHA512),
        _ => None,
    }
}

fn rsa_verification(a: Algorithm) -> Option<&'static sig::RsaParameters> {
    match a {
        Algorithm::RS256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
        Algorithm::RS384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
        Algorithm::RS512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
        _ => None,
    }
}

fn rsa_signing(a: Algorithm) -> Option<&'static dyn sig::RsaEncoding> {
    match a {
        Algorithm::RS256 => Some(&sig::RSA_PKCS1_SHA256),
        Algorithm::RS384 => Some(&sig::RSA_PKCS1_SHA384),
        Algorithm::RS512 => Some(&sig::RSA_PKCS1_SHA512),
        _ => None,
    }
}

/// A key of another family than the algorithm's is refused as jsonwebtoken's own providers do.
fn key_of(family: AlgorithmFamily, algorithm: AlgorithmFamily) -> Result<()> {
    if family == algorithm {
        Ok(())
    } else {
        Err(ErrorKind::InvalidKeyFormat.into())
    }
}

fn signer_factory(a: &Algorithm, key: &EncodingKey) -> Result<Box<dyn JwtSigner>> {
    let a = *a;
    if let Some(h) = hmac_algorithm(a) {
        key_of(key.family(), AlgorithmFamily::Hmac)?;
        return Ok(Box::new(Hmac {
            algorithm: a,
            key: hmac::Key::new(h, key.as_bytes()),
        }));
    }
    if let Some(encoding) = rsa_signing(a) {
        key_of(key.family(), AlgorithmFamily::Rsa)?;
        let pair = sig::RsaKeyPair::from_der(key.as_bytes())
            .map_err(|e| ErrorKind::InvalidRsaKey(e.to_string()))?;
        return Ok(Box::new(RsaSigner {
            algorithm: a,
            encoding,
            pair,
        }));
    }
    Err(ErrorKind::InvalidAlgorithm.into())
}

fn verifier_factory(a: &Algorithm, key: &DecodingKey) -> Result<Box<dyn JwtVerifier>> {
    let a = *a;
    if let Some(h) = hmac_algorithm(a) {
        key_of(key.family(), AlgorithmFamily::Hmac)?;
        return Ok(Box::new(Hmac {
            algorithm: a,
            key: hmac::Key::new(h, key.try_get_as_bytes()?),
        }));
    }
    if let Some(params) = rsa_verification(a) {
        key_of(key.family(), AlgorithmFamily::Rsa)?;
        return Ok(Box::new(RsaVerifier {
            algorithm: a,
            params,
            key: key.clone(),
        }));
    }
    let (family, params): (_, &'static dyn sig::VerificationAlgorithm) = match a {
        Algorithm::ES256 => (AlgorithmFamily::Ec, &sig::ECDSA_P256_SHA256_FIXED),
        Algorithm::EdDSA => (AlgorithmFamily::Ed, &sig::ED25519),
        _ => return Err(ErrorKind::InvalidAlgorithm.into()),
    };
    key_of(key.family(), family)?;
    // `from_ec_components`: the uncompressed point; `from_ed_components`: the 32-byte key.
    Ok(Box::new(PublicKeyVerifier {
        algorithm: a,
        params,
        key: key.try_get_as_bytes()?.to_vec(),
    }))
}

/// ES256 or EdDSA: ring's verification of a raw public key.
struct PublicKeyVerifier {
    algorithm: Algorithm,
    params: &'static dyn sig::VerificationAlgorithm,
    key: Vec<u8>,
}

impl Verifier<Vec<u8>> for PublicKeyVerifier {
    fn verify(&self, msg: &[u8], s: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        sig::UnparsedPublicKey::new(self.params, &self.key)
            .verify(msg, s)
            .map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for PublicKeyVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct Hmac {
    algorithm: Algorithm,
    key: hmac::Key,
}

impl Signer<Vec<u8>> for Hmac {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        Ok(hmac::sign(&self.key, msg).as_ref().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hmac {
    fn verify(&self, msg: &[u8], tag: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        // Constant-time comparison.
        hmac::verify(&self.key, msg, tag).map_err(|_| signature::Error::new())
    }
}

impl JwtSigner for Hmac {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

impl JwtVerifier for Hmac {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct RsaSigner {
    algorithm: Algorithm,
    encoding: &'static dyn sig::RsaEncoding,
    pair: sig::RsaKeyPair,
}

impl Signer<Vec<u8>> for RsaSigner {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<Vec<u8>, signature::Error> {
        let mut out = vec![0; self.pair.public().modulus_len()];
        self.pair
            .sign(self.encoding, &rand::SystemRandom::new(), msg, &mut out)
            .map_err(|_| signature::Error::new())?;
        Ok(out)
    }
}

impl JwtSigner for RsaSigner {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

struct RsaVerifier {
    algorithm: Algorithm,
    params: &'static sig::RsaParameters,
    key: DecodingKey,
}

impl Verifier<Vec<u8>> for RsaVerifier {
    fn verify(&self, msg: &[u8], s: &Vec<u8>) -> std::result::Result<(), signature::Error> {
        let ok = match self.key.kind() {
            // `DecodingKey::from_rsa_pem`/`from_rsa_der`: a DER RSAPublicKey.
            DecodingKeyKind::SecretOrDer(der) => {
                sig::UnparsedPublicKey::new(self.params, der).verify(msg, s)
            }
            DecodingKeyKind::RsaModulusExponent { n, e } => {
                sig::RsaPublicKeyComponents { n, e }.verify(self.params, msg, s)
            }
        };
        ok.map_err(|_| signature::Error::new())
    }
}

impl JwtVerifier for RsaVerifier {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Header, Validation, decode, encode};
    use serde_json::{Value, json};

    const RS_PRIVATE: &str = include_str!("../../../../tests/fixtures/jwt/rs256-private.pem");
    const RS_PUBLIC: &str = include_str!("../../../../tests/fixtures/jwt/rs256-public.pem");

    fn round_trip(a: Algorithm, enc: &EncodingKey, dec: &DecodingKey) -> bool {
        install();
        let claims = json!({"sub": "x", "exp": jsonwebtoken::get_current_timestamp() + 60});
        let Ok(t) = encode(&Header::new(a), &claims, enc) else {
            return false;
        };
        decode::<Value>(&t, dec, &Validation::new(a)).is_ok()
    }

    #[test]
    fn hmac_and_rsa_round_trip() {
        let (e, d) = (
            EncodingKey::from_secret(b"k"),
            DecodingKey::from_secret(b"k"),
        );
        for a in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            assert!(round_trip(a, &e, &d), "{a:?}");
        }
        assert!(!round_trip(
            Algorithm::HS256,
            &e,
            &DecodingKey::from_secret(b"other")
        ));
        let e = EncodingKey::from_rsa_pem(RS_PRIVATE.as_bytes()).unwrap();
        let d = DecodingKey::from_rsa_pem(RS_PUBLIC.as_bytes()).unwrap();
        for a in [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512] {
            assert!(round_trip(a, &e, &d), "{a:?}");
        }
    }

    #[test]
    fn other_algorithms_and_key_families_are_refused() {
        install();
        let hmac_key = EncodingKey::from_secret(b"k");
        assert!(signer_factory(&Algorithm::ES256, &hmac_key).is_err());
        assert!(signer_factory(&Algorithm::PS256, &hmac_key).is_err());
        assert!(signer_factory(&Algorithm::EdDSA, &hmac_key).is_err());
        assert!(signer_factory(&Algorithm::RS256, &hmac_key).is_err());
        let rsa_pub = DecodingKey::from_rsa_pem(RS_PUBLIC.as_bytes()).unwrap();
        assert!(verifier_factory(&Algorithm::HS256, &rsa_pub).is_err());
        assert!(verifier_factory(&Algorithm::ES256, &rsa_pub).is_err());
        assert!(verifier_factory(&Algorithm::EdDSA, &rsa_pub).is_err());
        assert!(verifier_factory(&Algorithm::PS256, &rsa_pub).is_err());
        // An Ed25519 key is not an EC key, and the other way round.
        let ed =
            DecodingKey::from_ed_components("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert!(verifier_factory(&Algorithm::ES256, &ed).is_err());
        assert!(verifier_factory(&Algorithm::EdDSA, &ed).is_ok());
    }
}
