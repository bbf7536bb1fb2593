//! The error answers of the endpoints, and the content-type and body checks that produce them.

use super::auth::{Auth, AuthFailure};
use super::flatten;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::time::Duration;

/// `Retry-After` on 503 answers.
const RETRY_AFTER_SECS: &str = "5";

use crate::transport::http::error_response as error;

/// 503 while another request holds the event's dedup key (retry after its lease).
pub(super) fn in_flight(lease: Duration) -> Response<Bytes> {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "in_progress",
        "The same event is being accepted by another request; retry later.",
    );
    if let Ok(v) = HeaderValue::from_str(&lease.as_secs().max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The 413 for a message over the queue's limit (`size`: its size in bytes, or a lower bound).
pub(super) fn queue_too_large(size: String, limit: usize) -> Response<Bytes> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "request_too_large",
        format!("The event is too large to queue ({size} bytes; the limit is {limit})."),
    )
}

pub(crate) fn unavailable(what: &str) -> Response<Bytes> {
    let mut r = error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        format!("The event could not be accepted right now ({what}); retry later."),
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    r
}

pub(super) fn unauthorized(auth: &Auth, failure: AuthFailure) -> Response<Bytes> {
    let message = if auth.says_why() {
        failure.message()
    } else {
        // The newer schemes say no more than this: which check failed helps only a forger.
        Cow::Borrowed("The request is not authenticated for this endpoint.")
    };
    let mut r = error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    if let Auth::Jwt { .. } | Auth::Jwks { .. } = auth {
        let v = if failure == AuthFailure::MissingToken {
            r#"Bearer realm="incoming""#
        } else {
            r#"Bearer realm="incoming", error="invalid_token""#
        };
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
    }
    if auth.is_basic() {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(r#"Basic realm="incoming", charset="UTF-8""#),
        );
    }
    r
}

/// How a request's body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyKind {
    /// A JSON object.
    Json,
    /// `application/x-www-form-urlencoded` fields.
    Form,
}

/// JSON (`application/json` or `application/*+json`) or a form
/// (`application/x-www-form-urlencoded`), UTF-8, no content coding.
pub(super) fn check_content(headers: &HeaderMap) -> Result<BodyKind, Box<Response<Bytes>>> {
    let unsupported = |code: &'static str, msg: String| {
        Box::new(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, code, msg))
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = ct.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let json =
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"));
    let kind = if json {
        BodyKind::Json
    } else if mime == "application/x-www-form-urlencoded" {
        BodyKind::Form
    } else {
        return Err(unsupported(
            "unsupported_media_type",
            "Incoming events must be JSON (Content-Type: application/json) or a form (application/x-www-form-urlencoded).".into(),
        ));
    };
    for p in parts {
        if let Some((k, v)) = p.split_once('=')
            && k.trim().eq_ignore_ascii_case("charset")
        {
            let cs = v.trim().trim_matches('"');
            if !cs.eq_ignore_ascii_case("utf-8") {
                return Err(unsupported(
                    "unsupported_charset",
                    "Send JSON as UTF-8 (charset=utf-8).".into(),
                ));
            }
        }
    }
    let encoded = headers.get(header::CONTENT_ENCODING).is_some_and(|v| {
        let e = v.to_str().unwrap_or("?").trim();
        !e.is_empty() && !e.eq_ignore_ascii_case("identity")
    });
    if encoded {
        return Err(unsupported(
            "unsupported_encoding",
            "Incoming events are not accepted with a Content-Encoding (signatures cover the bytes as sent).".into(),
        ));
    }
    Ok(kind)
}

/// The body as a JSON object.
pub(super) fn parse_object(
    body: &[u8],
    limit: usize,
) -> Result<Map<String, Value>, Box<Response<Bytes>>> {
    let bad =
        |msg: Cow<'static, str>| Box::new(error(StatusCode::BAD_REQUEST, "invalid_json", msg));
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(bad("The request body is empty: send a JSON object.".into()));
    }
    // Measured before it is parsed: parsing into values costs a fixed factor of the body, and
    // only a body whose flattened form fits the queue is worth it (see `flatten::measure`).
    let top_is_object = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    match flatten::measure(body, limit) {
        Err(flatten::Measure::TooLarge(e)) if top_is_object => {
            return Err(Box::new(queue_too_large(
                format!("more than {}", e.limit),
                e.limit,
            )));
        }
        Err(flatten::Measure::Json(e)) => {
            return Err(bad(
                format!("The request body is not valid JSON: {e}").into()
            ));
        }
        _ if !top_is_object => return Err(bad("The request body must be a JSON object.".into())),
        _ => {}
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(bad("The request body must be a JSON object.".into())),
        Err(e) => Err(bad(
            format!("The request body is not valid JSON: {e}").into()
        )),
    }
}
