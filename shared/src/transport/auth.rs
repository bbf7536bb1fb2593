//! Server-stack authentication: where the system token is read from, and how it is compared.

use http::HeaderMap;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use subtle::ConstantTimeEq;

/// The system tokens this deployment accepts. Several may be active at once so a token can be
/// rotated in integrator.io without downtime. Only SHA-256 digests are held; comparison is
/// constant-time and always checks every configured token.
#[derive(Clone, Default)]
pub struct TokenSet {
    digests: Vec<[u8; 32]>,
}

impl fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenSet({} token(s))", self.digests.len())
    }
}

fn digest(s: &[u8]) -> [u8; 32] {
    Sha256::digest(s).into()
}

impl TokenSet {
    pub fn new<I, S>(tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let digests = tokens
            .into_iter()
            .map(|t| t.as_ref().trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(|t| digest(t.as_bytes()))
            .collect();
        Self { digests }
    }

    /// Parse a configuration value holding one or more tokens separated by commas or whitespace.
    pub fn parse(list: &str) -> Self {
        Self::new(split_tokens(list))
    }

    /// [`parse`](Self::parse), registering every token for log redaction one by one (the list
    /// as a whole never appears in a log; each token may).
    pub fn parse_redacted(list: &str) -> Self {
        for t in split_tokens(list) {
            crate::telemetry::redact(t);
        }
        Self::parse(list)
    }

    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Constant-time membership test.
    pub fn accepts(&self, candidate: &str) -> bool {
        let d = digest(candidate.as_bytes());
        let mut ok = subtle::Choice::from(0u8);
        for known in &self.digests {
            ok |= known.ct_eq(&d);
        }
        bool::from(ok)
    }
}

/// The tokens of a configuration value: separated by commas or whitespace, empty ones skipped.
pub fn split_tokens(list: &str) -> impl Iterator<Item = &str> {
    list.split(|c: char| c == ',' || c.is_whitespace())
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Where a token was found, following the reference server's rules.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// A token to check.
    Token(String),
    /// Something was presented that can never match (malformed header, non-string body token).
    Invalid,
    /// No token anywhere.
    Missing,
}

/// Find the presented token:
/// 1. With an `Authorization` header: split on single spaces; exactly two parts and a
///    case-insensitive `Bearer` scheme, else no token (and nothing else is consulted).
/// 2. Without one: the body's `access_token` (`body_token`) when truthy (final, even if wrong), else the
///    query's `access_token`.
pub fn presented_token(
    headers: &HeaderMap,
    body_token: Option<&Value>,
    query: Option<&str>,
) -> Presented {
    if let Some(h) = headers.get(http::header::AUTHORIZATION) {
        let Ok(h) = h.to_str() else {
            return Presented::Invalid;
        };
        let parts: Vec<&str> = h.split(' ').collect();
        return match parts.as_slice() {
            [scheme, token] if scheme.eq_ignore_ascii_case("bearer") => {
                Presented::Token((*token).to_owned())
            }
            _ => Presented::Invalid,
        };
    }
    if let Some(t) = body_token
        && crate::protocol::truthy(Some(t))
    {
        return match t {
            Value::String(s) => Presented::Token(s.clone()),
            _ => Presented::Invalid,
        };
    }
    if let Some(q) = query {
        let mut found: Vec<String> = form_urlencoded::parse(q.as_bytes())
            .filter(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
            .collect();
        return match found.len() {
            0 => Presented::Missing,
            // Express turns a repeated parameter into an array, which never equals the token.
            1 => Presented::Token(found.remove(0)),
            _ => Presented::Invalid,
        };
    }
    Presented::Missing
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hdr(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn header_rules() {
        assert_eq!(
            presented_token(&hdr("bearer abc"), None, None),
            Presented::Token("abc".into())
        );
        assert_eq!(
            presented_token(&hdr("Bearer  abc"), None, None),
            Presented::Invalid
        );
        assert_eq!(
            presented_token(&hdr("Basic abc"), None, None),
            Presented::Invalid
        );
        assert_eq!(presented_token(&hdr("abc"), None, None), Presented::Invalid);
        // A header is final: a right body token does not rescue a wrong header.
        let body = json!({"access_token": "abc"});
        assert_eq!(
            presented_token(&hdr("Bearer x"), body.get("access_token"), None),
            Presented::Token("x".into())
        );
    }

    #[test]
    fn body_then_query() {
        let h = HeaderMap::new();
        let body = json!({"access_token": "b"});
        assert_eq!(
            presented_token(&h, body.get("access_token"), Some("access_token=q")),
            Presented::Token("b".into())
        );
        assert_eq!(
            presented_token(&h, json!({}).get("access_token"), Some("access_token=q%20")),
            Presented::Token("q ".into())
        );
        assert_eq!(presented_token(&h, None, Some("a=1")), Presented::Missing);
    }

    #[test]
    fn rotation_accepts_every_configured_token() {
        let t = TokenSet::parse("old-token, new-token");
        assert_eq!(t.len(), 2);
        assert!(t.accepts("old-token") && t.accepts("new-token"));
        assert!(!t.accepts("other") && !t.accepts(""));
        assert!(TokenSet::parse("  ").is_empty());
    }
}
