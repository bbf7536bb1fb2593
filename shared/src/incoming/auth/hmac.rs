//! A spelled-out HMAC (`{"type": "hmac", "header": …}`) for senders without a scheme of their
//! own: the hash, the header and its encoding and prefix, and what is signed as a template of
//! `{body}` (the raw bytes), `{timestamp}`, `{id}` and `{header:Name}`.

use super::AuthFailure;
use super::common::{MAX_SIGNATURE_HEADER, decode_hex, encode_hex, mac, required_header, same};
use super::config::{GenericHmacConfig, HmacAlgorithm, HmacEncoding};
use super::replay::Replay;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use http::{HeaderMap, HeaderName};
use std::time::Duration;

/// Longest `content` template.
pub const MAX_TEMPLATE_LEN: usize = 1024;

/// One piece of a `content` template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Text(String),
    /// The raw body.
    Body,
    /// The timestamp header's value.
    Timestamp,
    /// The id header's value.
    Id,
    /// Another header's value.
    Header(HeaderName),
}

/// Parse a `content` template; a `{` that opens no known placeholder is an error.
pub fn parse_template(template: &str) -> Result<Vec<Part>, String> {
    if template.len() > MAX_TEMPLATE_LEN {
        return Err(format!("content: at most {MAX_TEMPLATE_LEN} characters"));
    }
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("content: a '{' is not closed".into());
        };
        parts.push(match &after[..close] {
            "body" => Part::Body,
            "timestamp" => Part::Timestamp,
            "id" => Part::Id,
            other => match other.strip_prefix("header:") {
                Some(h) => Part::Header(
                    HeaderName::from_bytes(h.as_bytes())
                        .map_err(|_| format!("content: \"{h}\" is not a header name"))?,
                ),
                None => {
                    return Err(format!(
                        "content: unknown placeholder {{{other}}} (use {{body}}, {{timestamp}}, {{id}}, {{header:Name}})"
                    ));
                }
            },
        });
        rest = &after[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

/// `{timestamp}` needs `timestampHeader`, `{id}` needs `idHeader`, and `{body}` is signed.
pub fn check_template(parts: &[Part], timestamp: bool, id: bool) -> Result<(), String> {
    if !parts.contains(&Part::Body) {
        return Err("content must include {body}".into());
    }
    if parts.contains(&Part::Timestamp) && !timestamp {
        return Err("content uses {timestamp}: set \"timestampHeader\"".into());
    }
    if parts.contains(&Part::Id) && !id {
        return Err("content uses {id}: set \"idHeader\"".into());
    }
    Ok(())
}

/// The signature bytes in a header value: after `prefix`, hex or base64.
pub fn parse_signature(value: &str, prefix: &str, encoding: HmacEncoding) -> Option<Vec<u8>> {
    if value.len() > MAX_SIGNATURE_HEADER {
        return None;
    }
    let sig = value.strip_prefix(prefix)?.trim();
    match encoding {
        HmacEncoding::Hex => decode_hex(sig),
        HmacEncoding::Base64 => STANDARD
            .decode(sig)
            .or_else(|_| STANDARD_NO_PAD.decode(sig))
            .ok(),
    }
}

/// A compiled spelled-out HMAC.
#[derive(Debug)]
pub struct Generic {
    algorithm: HmacAlgorithm,
    header: HeaderName,
    encoding: HmacEncoding,
    prefix: String,
    parts: Vec<Part>,
    timestamp_header: Option<HeaderName>,
    id_header: Option<HeaderName>,
    tolerance: Duration,
}

fn name(h: &str) -> Result<HeaderName, String> {
    HeaderName::from_bytes(h.as_bytes()).map_err(|_| format!("\"{h}\" is not a header name"))
}

impl Generic {
    /// Compile a validated configuration.
    pub fn new(c: &GenericHmacConfig) -> Result<Self, String> {
        let parts = parse_template(&c.content)?;
        check_template(&parts, c.timestamp_header.is_some(), c.id_header.is_some())?;
        Ok(Self {
            algorithm: c.algorithm,
            header: name(&c.header)?,
            encoding: c.encoding,
            prefix: c.prefix.clone(),
            parts,
            timestamp_header: c.timestamp_header.as_deref().map(name).transpose()?,
            id_header: c.id_header.as_deref().map(name).transpose()?,
            tolerance: Duration::from_secs(c.tolerance_secs),
        })
    }

    /// The id header (the default dedup key), if any.
    pub fn id_header(&self) -> Option<&HeaderName> {
        self.id_header.as_ref()
    }

    fn ring_algorithm(&self) -> ring::hmac::Algorithm {
        match self.algorithm {
            HmacAlgorithm::Sha1 => ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            HmacAlgorithm::Sha256 => ring::hmac::HMAC_SHA256,
            HmacAlgorithm::Sha512 => ring::hmac::HMAC_SHA512,
        }
    }

    /// The signed content's MAC for this request (`None`: a header it signs is missing).
    fn tag(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        secret: &[u8],
        ts: Option<&str>,
        id: Option<&str>,
    ) -> Result<Vec<u8>, AuthFailure> {
        let mut pieces: Vec<&[u8]> = Vec::with_capacity(self.parts.len());
        for p in &self.parts {
            pieces.push(match p {
                Part::Text(t) => t.as_bytes(),
                Part::Body => body,
                Part::Timestamp => ts.ok_or(AuthFailure::MissingSignature)?.as_bytes(),
                Part::Id => id.ok_or(AuthFailure::MissingSignature)?.as_bytes(),
                Part::Header(h) => required_header(headers, h.as_str())?.as_bytes(),
            });
        }
        Ok(mac(self.ring_algorithm(), secret, &pieces))
    }

    /// The header value a sender computes (tests and examples).
    pub fn sign(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        secret: &[u8],
    ) -> Result<String, AuthFailure> {
        let ts = self.read(headers, self.timestamp_header.as_ref())?;
        let id = self.read(headers, self.id_header.as_ref())?;
        let tag = self.tag(headers, body, secret, ts, id)?;
        Ok(match self.encoding {
            HmacEncoding::Hex => format!("{}{}", self.prefix, encode_hex(&tag)),
            HmacEncoding::Base64 => format!("{}{}", self.prefix, STANDARD.encode(tag)),
        })
    }

    fn read<'a>(
        &self,
        headers: &'a HeaderMap,
        name: Option<&HeaderName>,
    ) -> Result<Option<&'a str>, AuthFailure> {
        name.map(|n| required_header(headers, n.as_str()))
            .transpose()
    }

    /// Verify a request against `secret` at `now`; with a timestamp header, the signed
    /// message's replay record.
    pub fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
        secret: &[u8],
        now: u64,
    ) -> Result<Option<Replay>, AuthFailure> {
        let value = required_header(headers, self.header.as_str())?;
        let ts = self.read(headers, self.timestamp_header.as_ref())?;
        let id = self.read(headers, self.id_header.as_ref())?;
        let presented =
            parse_signature(value, &self.prefix, self.encoding).ok_or(AuthFailure::BadSignature)?;
        if let Some(ts) = ts {
            super::common::fresh_timestamp(ts, now, self.tolerance)?;
        }
        let expected = self.tag(headers, body, secret, ts, id)?;
        if !same(&expected, &presented) {
            return Err(AuthFailure::BadSignature);
        }
        Ok(ts.map(|ts| {
            Replay::within(
                "hmac-generic-replay",
                format!("{ts}.{}", encode_hex(&expected)),
                self.tolerance,
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incoming::config::SecretValue;
    use http::HeaderValue;

    const SECRET: &[u8] = b"generic-shared-secret-1234";

    fn config(json: &str) -> Generic {
        let mut c: GenericHmacConfig = GenericHmacConfig {
            secret: SecretValue::inline("x"),
            header: "x-signature".into(),
            algorithm: HmacAlgorithm::Sha256,
            encoding: HmacEncoding::Hex,
            prefix: String::new(),
            content: "{body}".into(),
            timestamp_header: None,
            id_header: None,
            tolerance_secs: 300,
        };
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        if let Some(a) = v.get("algorithm") {
            c.algorithm = serde_json::from_value(a.clone()).unwrap();
        }
        if let Some(e) = v.get("encoding") {
            c.encoding = serde_json::from_value(e.clone()).unwrap();
        }
        if let Some(t) = v.get("content").and_then(|t| t.as_str()) {
            c.content = t.into();
        }
        if let Some(p) = v.get("prefix").and_then(|t| t.as_str()) {
            c.prefix = p.into();
        }
        if v.get("ts").is_some() {
            c.timestamp_header = Some("x-ts".into());
            c.id_header = Some("x-id".into());
        }
        Generic::new(&c).unwrap()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn templates_parse_and_refuse_unknown_placeholders() {
        assert_eq!(
            parse_template("v0:{timestamp}:{header:X-A}{body}").unwrap(),
            vec![
                Part::Text("v0:".into()),
                Part::Timestamp,
                Part::Text(":".into()),
                Part::Header(HeaderName::from_static("x-a")),
                Part::Body
            ]
        );
        for bad in ["{bod}", "{body", "{header:bad name}", "{}"] {
            assert!(parse_template(bad).is_err(), "{bad}");
        }
        let no_body = parse_template("{timestamp}").unwrap();
        assert!(check_template(&no_body, true, false).is_err());
        let ts = parse_template("{timestamp}.{body}").unwrap();
        assert!(check_template(&ts, false, false).is_err());
    }

    /// Vectors computed with Python's `hmac` (SHA-512 hex; SHA-1 base64 over a template).
    #[test]
    fn verifies_independently_computed_signatures() {
        let g = config(r#"{"algorithm": "sha512"}"#);
        let sig = "ae15da20db7039c85ac9722f273a1705b47a676ec8951e48c90c77d2b105b86a704815d4f98ea3115c9ae150be9be94504e6efe7b554b2c4752e61c8f7710edb";
        assert_eq!(
            g.verify(&headers(&[("x-signature", sig)]), br#"{"a":1}"#, SECRET, 0),
            Ok(None)
        );
        let g = config(
            r#"{"algorithm": "sha1", "encoding": "base64", "prefix": "sha1=", "content": "{timestamp}:{id}:{body}", "ts": true}"#,
        );
        let h = headers(&[
            ("x-signature", "sha1=Y0zZ0+m7QBAAe3afIuNJiKO2YpI="),
            ("x-ts", "1700000000"),
            ("x-id", "abc"),
        ]);
        let replay = g.verify(&h, br#"{"a":1}"#, SECRET, 1_700_000_100).unwrap();
        assert!(replay.is_some());
        assert_eq!(
            g.sign(&h, br#"{"a":1}"#, SECRET).unwrap(),
            "sha1=Y0zZ0+m7QBAAe3afIuNJiKO2YpI="
        );
        // Tampered body, stale timestamp, another id.
        assert_eq!(
            g.verify(&h, br#"{"a":2}"#, SECRET, 1_700_000_100),
            Err(AuthFailure::BadSignature)
        );
        assert_eq!(
            g.verify(&h, br#"{"a":1}"#, SECRET, 1_700_000_301),
            Err(AuthFailure::StaleTimestamp)
        );
        let mut other = h.clone();
        other.insert("x-id", HeaderValue::from_static("abd"));
        assert_eq!(
            g.verify(&other, br#"{"a":1}"#, SECRET, 1_700_000_100),
            Err(AuthFailure::BadSignature)
        );
    }
}
