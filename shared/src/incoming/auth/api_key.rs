//! A key sent in a header or a query parameter, compared in constant time.

use super::AuthFailure;
use super::common::{required_header, same};
use http::{HeaderMap, HeaderName};

/// Where the key is sent.
#[derive(Debug, Clone)]
pub enum Place {
    /// In this header.
    Header(HeaderName),
    /// In this query parameter.
    Query(String),
}

/// The one value of query parameter `name` (sent twice: [`AuthFailure::RepeatedHeader`]).
pub fn query_value(query: Option<&str>, name: &str) -> Result<Option<String>, AuthFailure> {
    let mut found = None;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == name {
            if found.is_some() {
                return Err(AuthFailure::RepeatedHeader);
            }
            found = Some(v.into_owned());
        }
    }
    Ok(found.filter(|v| !v.is_empty()))
}

/// Verify the key of a request.
pub fn verify(
    place: &Place,
    headers: &HeaderMap,
    query: Option<&str>,
    key: &[u8],
) -> Result<(), AuthFailure> {
    let presented = match place {
        Place::Header(h) => required_header(headers, h.as_str())?.to_owned(),
        Place::Query(q) => query_value(query, q)?.ok_or(AuthFailure::MissingSignature)?,
    };
    if same(key, presented.as_bytes()) {
        Ok(())
    } else {
        Err(AuthFailure::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn keys_in_headers_and_queries() {
        let key = b"0123456789abcdef-key";
        let place = Place::Header(HeaderName::from_static("x-api-key"));
        let mut h = HeaderMap::new();
        h.insert(
            "x-api-key",
            HeaderValue::from_static("0123456789abcdef-key"),
        );
        assert_eq!(verify(&place, &h, None, key), Ok(()));
        h.insert(
            "x-api-key",
            HeaderValue::from_static("0123456789abcdef-kez"),
        );
        assert_eq!(
            verify(&place, &h, None, key),
            Err(AuthFailure::BadSignature)
        );
        let q = Place::Query("key".into());
        let empty = HeaderMap::new();
        assert_eq!(
            verify(&q, &empty, Some("a=1&key=0123456789abcdef-key"), key),
            Ok(())
        );
        assert_eq!(
            verify(&q, &empty, Some("key=0123456789abcdef-key&key=x"), key),
            Err(AuthFailure::RepeatedHeader)
        );
        assert_eq!(
            verify(&q, &empty, None, key),
            Err(AuthFailure::MissingSignature)
        );
    }
}
