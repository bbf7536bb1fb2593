//! HTTP Basic authentication (`Authorization: Basic base64(user:password)`, RFC 7617), as
//! integrator.io's own webhook listeners offer it.

use super::AuthFailure;
use super::common::{required_header, same};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http::{HeaderMap, header};

/// Longest `Authorization` value read.
pub const MAX_CREDENTIALS_LEN: usize = 4096;

/// The user name and password of a `Basic` value (`None`: not Basic, or malformed).
pub fn parse(value: &str) -> Option<(String, Vec<u8>)> {
    if value.len() > MAX_CREDENTIALS_LEN {
        return None;
    }
    let (scheme, b64) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(b64.trim()).ok()?;
    let colon = decoded.iter().position(|b| *b == b':')?;
    let user = String::from_utf8(decoded[..colon].to_vec()).ok()?;
    Some((user, decoded[colon + 1..].to_vec()))
}

/// The `Authorization` value a client sends.
pub fn credentials(username: &str, password: &str) -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{username}:{password}"))
    )
}

/// Verify a request's credentials. Both the user name and the password are always compared.
pub fn verify(headers: &HeaderMap, username: &str, password: &[u8]) -> Result<(), AuthFailure> {
    let value = required_header(headers, header::AUTHORIZATION.as_str())?;
    let (user, pass) = parse(value).ok_or(AuthFailure::MalformedToken)?;
    let user_ok = same(username.as_bytes(), user.as_bytes());
    let pass_ok = same(password, &pass);
    if user_ok & pass_ok {
        Ok(())
    } else {
        Err(AuthFailure::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn basic_credentials_are_checked() {
        // RFC 7617's example.
        assert_eq!(
            credentials("Aladdin", "open sesame"),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        let ok = headers("basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(verify(&ok, "Aladdin", b"open sesame"), Ok(()));
        assert_eq!(
            verify(&ok, "aladdin", b"open sesame"),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            verify(&ok, "Aladdin", b"open sesame!"),
            Err(AuthFailure::BadSignature)
        );
        for bad in ["Bearer x", "Basic", "Basic !!!", "Basic bm9jb2xvbg=="] {
            assert_eq!(
                verify(&headers(bad), "Aladdin", b"open sesame"),
                Err(AuthFailure::MalformedToken),
                "{bad}"
            );
        }
        assert_eq!(
            verify(&HeaderMap::new(), "a", b"b"),
            Err(AuthFailure::MissingSignature)
        );
    }
}
