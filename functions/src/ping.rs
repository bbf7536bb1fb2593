//! **ping** wrappers: the "Test connection" button of a wrapper connection.
//!
//! The function receives the `connection` (`{encrypted: {...}, unencrypted: {...}}` as the user
//! configured it) and answers `{statusCode: 200}` when the connection works, or
//! `{statusCode: 401, errors: [{code, message}]}` when it does not.
//!
//! Register it on a wrapper connection with function name `checkConnection`.

use integrator_lambda::types::{PingOptions, PingResult, RecordError};
use integrator_lambda::{ExtResult, Invocation, Module};
use serde_json::Value;

/// The functions of this extension point: `checkConnection`.
pub fn module() -> Module {
    let mut m = Module::new();
    m.ping("checkConnection", check_connection);
    m
}

/// `checkConnection`: validate a connection's configuration before any request is made.
///
/// Requires:
///
/// - `connection.unencrypted.baseUrl` (or `host`, when `baseUrl` is absent): an `http://` or
///   `https://` URL;
/// - `connection.encrypted.apiKey` (or `token`, when `apiKey` is absent): a non-empty string.
///
/// Otherwise answers 401 with one `invalid_connection` error per problem. Messages name the
/// fields but never include their values, so neither the secret nor a URL carrying
/// credentials ends up in integrator.io's UI. A real wrapper would then call a cheap
/// authenticated endpoint of the application (e.g. `GET /me`) and map a 401/403 to the same
/// answer.
pub async fn check_connection(_inv: Invocation, options: PingOptions) -> ExtResult<PingResult> {
    let unencrypted = &options.connection.unencrypted;
    let encrypted = &options.connection.encrypted;
    let mut errors = Vec::new();

    let (url_field, url) = pick(unencrypted, "baseUrl", "host");
    match url {
        None => errors.push(problem(
            "connection.unencrypted.baseUrl (or host) is required.",
        )),
        Some(v) if !is_http_url(v) => errors.push(problem(format!(
            "connection.unencrypted.{url_field} must be an http:// or https:// URL."
        ))),
        Some(_) => {}
    }

    let (key_field, key) = pick(encrypted, "apiKey", "token");
    match key {
        None => errors.push(problem(
            "connection.encrypted.apiKey (or token) is required.",
        )),
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(_) => errors.push(problem(format!(
            "connection.encrypted.{key_field} must be a non-empty string."
        ))),
    }

    Ok(if errors.is_empty() {
        PingResult::ok()
    } else {
        PingResult::unauthorized(errors)
    })
}

/// The first of two fields that is present and not `null`, with its name.
fn pick<'a>(
    map: &'a serde_json::Map<String, Value>,
    first: &'static str,
    second: &'static str,
) -> (&'static str, Option<&'a Value>) {
    match map.get(first).filter(|v| !v.is_null()) {
        Some(v) => (first, Some(v)),
        None => (second, map.get(second).filter(|v| !v.is_null())),
    }
}

fn is_http_url(v: &Value) -> bool {
    let Some(s) = v.as_str().map(str::trim) else {
        return false;
    };
    let lower = s.to_ascii_lowercase();
    ["http://", "https://"].iter().any(|scheme| {
        lower
            .strip_prefix(scheme)
            .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
    })
}

fn problem(message: impl Into<String>) -> RecordError {
    RecordError::new("invalid_connection", message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    async fn ping(connection: Value) -> PingResult {
        let o: PingOptions = serde_json::from_value(json!({ "connection": connection })).unwrap();
        check_connection(
            Invocation::for_test("checkConnection", Duration::from_secs(5)),
            o,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn accepts_a_complete_connection() {
        for c in [
            json!({"unencrypted": {"baseUrl": "https://api.example.com/v1"}, "encrypted": {"apiKey": "k"}}),
            json!({"unencrypted": {"host": "HTTP://10.0.0.1:8080"}, "encrypted": {"token": "t"}}),
        ] {
            assert_eq!(
                serde_json::to_value(ping(c).await).unwrap(),
                json!({"statusCode": 200})
            );
        }
    }

    #[tokio::test]
    async fn lists_every_problem_without_echoing_values() {
        let out = ping(json!({
            "unencrypted": {"baseUrl": "ftp://user:pw@files.example.com"},
            "encrypted": {"apiKey": 12345}
        }))
        .await;
        let text = serde_json::to_string(&out).unwrap();
        assert!(!text.contains("pw@") && !text.contains("12345"), "{text}");
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({"statusCode": 401, "errors": [
                {"code": "invalid_connection", "message": "connection.unencrypted.baseUrl must be an http:// or https:// URL."},
                {"code": "invalid_connection", "message": "connection.encrypted.apiKey must be a non-empty string."}
            ]})
        );

        let out = ping(json!({"unencrypted": {"host": null}, "encrypted": {"token": "  "}})).await;
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({"statusCode": 401, "errors": [
                {"code": "invalid_connection", "message": "connection.unencrypted.baseUrl (or host) is required."},
                {"code": "invalid_connection", "message": "connection.encrypted.token must be a non-empty string."}
            ]})
        );

        let out = ping(json!({})).await;
        assert_eq!(out.status_code, 401);
        assert_eq!(out.errors.map(|e| e.len()), Some(2));
        assert_eq!(
            ping(json!({"unencrypted": {"baseUrl": "https://"}, "encrypted": {"apiKey": "k"}}))
                .await
                .status_code,
            401
        );
    }
}
