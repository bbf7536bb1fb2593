//! `application/x-www-form-urlencoded` bodies read as a JSON object: each field a string (a
//! field sent several times: an array of its values, in order), and a `payload` field that
//! holds a JSON object or array (as Slack sends interactive requests) decoded. The signature
//! has been checked over the raw bytes before.

use crate::transport::http::error_response as error;
use bytes::Bytes;
use http::{Response, StatusCode};
use serde_json::{Map, Value};

/// The form fields of `body` as a JSON object.
pub(super) fn parse_form(body: &[u8]) -> Result<Map<String, Value>, Box<Response<Bytes>>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_form",
            "The request body is empty: send form fields.",
        )));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_form",
            "The form body is not UTF-8.",
        )));
    }
    let mut out = Map::new();
    let mut repeated = std::collections::HashSet::new();
    for (k, v) in form_urlencoded::parse(body) {
        let value = if k == "payload" {
            match serde_json::from_str::<Value>(&v) {
                Ok(j @ (Value::Object(_) | Value::Array(_))) => j,
                _ => Value::String(v.into_owned()),
            }
        } else {
            Value::String(v.into_owned())
        };
        match out.get_mut(k.as_ref()) {
            None => {
                out.insert(k.into_owned(), value);
            }
            Some(prev) if repeated.contains(k.as_ref()) => {
                if let Value::Array(a) = prev {
                    a.push(value);
                }
            }
            Some(prev) => {
                let first = prev.take();
                *prev = Value::Array(vec![first, value]);
                repeated.insert(k.into_owned());
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn form_fields_become_a_json_object() {
        let m =
            parse_form(b"a=1&b=x+y%21&a=2&payload=%7B%22type%22%3A%22block_actions%22%7D").unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"a": ["1", "2"], "b": "x y!", "payload": {"type": "block_actions"}})
        );
        let m = parse_form(b"payload=not-json&c=").unwrap();
        assert_eq!(Value::Object(m), json!({"payload": "not-json", "c": ""}));
        assert_eq!(
            parse_form(b"").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            parse_form(b"a=\xff").unwrap_err().status(),
            StatusCode::BAD_REQUEST
        );
    }
}
