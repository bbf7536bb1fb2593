//! What can go wrong calling integrator.io, and the one code scheme these errors carry when
//! they reach integrator.io as a function's error (a 422 `{"message", "code"}`):
//!
//! | code | when |
//! |---|---|
//! | `integrator_token_missing` | the call carries no `bearerToken` (nothing is sent) |
//! | `integrator_bad_request` | integrator.io answered 400 or 422 |
//! | `integrator_unauthorized` | 401: the token is expired, used up or not valid |
//! | `integrator_forbidden` | 403: the token may not reach this resource (an integration app's token reaches only the app's own resources) |
//! | `integrator_not_found` | 404 |
//! | `integrator_conflict` | 409 |
//! | `integrator_rate_limited` | 429 after every retry, or no place in the client's own bucket before the deadline |
//! | `integrator_unavailable` | 5xx after every retry (for requests that may be retried) |
//! | `integrator_error` | any other error status |
//! | `integrator_timeout` | no answer before the call's deadline |
//! | `integrator_unreachable` | no connection, or a broken one, after every retry |
//! | `integrator_invalid_response` | a success whose body is not the JSON expected |
//! | `integrator_response_too_large` | a body over the client's limit |
//! | `integrator_invalid_request` | the request could not be built (nothing is sent) |
//!
//! Messages name the method and the path (`GET /v1/exports/…`) and, for an error status,
//! integrator.io's own `errors` (`code: message`). The token never appears in them.

use crate::outgoing::HttpError;
use serde::Deserialize;

/// One entry of integrator.io's `{"errors": [{"code", "message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiError {
    /// integrator.io's code (may be empty).
    #[serde(default)]
    pub code: String,
    /// integrator.io's message (may be empty).
    #[serde(default)]
    pub message: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    errors: Vec<ApiError>,
}

/// A failed call to integrator.io.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntegratorError {
    /// The call has no `bearerToken` (and no stack token was asked for): nothing was sent.
    #[error(
        "this call carries no bearerToken to call integrator.io with (work without a call token may use the stack's API token: inv.integrator_with_stack_token())"
    )]
    TokenMissing,
    /// The request could not be built: nothing was sent.
    #[error("invalid integrator.io request: {0}")]
    InvalidRequest(String),
    /// integrator.io answered an error status (after retries, for retryable ones).
    #[error("integrator.io answered {status} to {method} {path}{}", describe(.errors, .body))]
    Status {
        /// The HTTP method.
        method: String,
        /// The path, from `/v1`.
        path: String,
        /// The status code.
        status: u16,
        /// integrator.io's errors, when the body carried them.
        errors: Vec<ApiError>,
        /// The start of the body when it did not (at most 300 characters).
        body: String,
    },
    /// No place in the client's bucket before the call's deadline.
    #[error(
        "{method} {path}: the integrator.io rate limit leaves no room before the call's deadline"
    )]
    RateLimited {
        /// The HTTP method.
        method: String,
        /// The path, from `/v1`.
        path: String,
    },
    /// No answer before the call's deadline.
    #[error("{method} {path}: integrator.io did not answer before the call's deadline")]
    Timeout {
        /// The HTTP method.
        method: String,
        /// The path, from `/v1`.
        path: String,
    },
    /// No connection, or a broken one, after every retry.
    #[error("{method} {path}: integrator.io could not be reached: {detail}")]
    Unreachable {
        /// The HTTP method.
        method: String,
        /// The path, from `/v1`.
        path: String,
        /// What went wrong on the last attempt.
        detail: String,
    },
    /// A success whose body is not the JSON expected, or one over the size limit.
    #[error("{method} {path}: integrator.io's answer is not usable: {detail}")]
    InvalidResponse {
        /// The HTTP method.
        method: String,
        /// The path, from `/v1`.
        path: String,
        /// The parser's complaint.
        detail: String,
        /// The body was over the limit.
        too_large: bool,
    },
}

fn describe(errors: &[ApiError], body: &str) -> String {
    if errors.is_empty() {
        return if body.is_empty() {
            String::new()
        } else {
            format!(": {body}")
        };
    }
    let parts: Vec<String> = errors
        .iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!("{}: {}", e.code, e.message),
            (false, true) => e.code.clone(),
            _ => e.message.clone(),
        })
        .collect();
    format!(": {}", parts.join("; "))
}

impl IntegratorError {
    /// The code integrator.io shows for this error (the table in the module docs).
    pub fn code(&self) -> &'static str {
        match self {
            Self::TokenMissing => "integrator_token_missing",
            Self::InvalidRequest(_) => "integrator_invalid_request",
            Self::Status { status, .. } => match status {
                400 | 422 => "integrator_bad_request",
                401 => "integrator_unauthorized",
                403 => "integrator_forbidden",
                404 => "integrator_not_found",
                409 => "integrator_conflict",
                429 => "integrator_rate_limited",
                500..=599 => "integrator_unavailable",
                _ => "integrator_error",
            },
            Self::RateLimited { .. } => "integrator_rate_limited",
            Self::Timeout { .. } => "integrator_timeout",
            Self::Unreachable { .. } => "integrator_unreachable",
            Self::InvalidResponse {
                too_large: true, ..
            } => "integrator_response_too_large",
            Self::InvalidResponse { .. } => "integrator_invalid_response",
        }
    }
    /// The HTTP status integrator.io answered, for [`IntegratorError::Status`].
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    /// integrator.io's own errors, for [`IntegratorError::Status`].
    pub fn api_errors(&self) -> &[ApiError] {
        match self {
            Self::Status { errors, .. } => errors,
            _ => &[],
        }
    }

    /// The error of an error status: integrator.io's `errors` when the body has them, else the
    /// start of the body. `scrub` removes the token should the body echo it.
    pub(super) fn from_status(
        method: &str,
        path: &str,
        status: u16,
        body: &[u8],
        scrub: &dyn Fn(&str) -> String,
    ) -> Self {
        let errors = serde_json::from_slice::<ErrorBody>(body)
            .map(|b| b.errors)
            .unwrap_or_default()
            .into_iter()
            .map(|e| ApiError {
                code: scrub(&clip(&e.code)),
                message: scrub(&clip(&e.message)),
            })
            .take(10)
            .collect::<Vec<_>>();
        let body = if errors.is_empty() {
            scrub(&clip(&String::from_utf8_lossy(body)))
        } else {
            String::new()
        };
        Self::Status {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            errors,
            body,
        }
    }

    /// A transport failure of [`crate::outgoing::Http`], in this scheme.
    pub(super) fn from_http(method: &str, path: &str, e: HttpError) -> Self {
        let (method, path) = (method.to_owned(), path.to_owned());
        match e {
            HttpError::InvalidRequest(d) => Self::InvalidRequest(d),
            HttpError::Deadline { .. } => Self::Timeout { method, path },
            HttpError::Unreachable { detail, .. } => Self::Unreachable {
                method,
                path,
                detail,
            },
            HttpError::TooLarge { limit, .. } => Self::InvalidResponse {
                method,
                path,
                detail: format!("body over {limit} bytes"),
                too_large: true,
            },
            HttpError::Json { detail, .. } => Self::InvalidResponse {
                method,
                path,
                detail,
                too_large: false,
            },
            HttpError::Status { status, body, .. } => Self::Status {
                method,
                path,
                status,
                errors: Vec::new(),
                body,
            },
        }
    }
}

/// At most 300 characters.
fn clip(s: &str) -> String {
    s.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn statuses_map_to_one_code_scheme_with_integrator_ios_own_errors_in_the_message() {
        let e = IntegratorError::from_status(
            "GET",
            "/v1/exports/x",
            404,
            br#"{"errors":[{"code":"not_found","message":"Export not found."}]}"#,
            &keep,
        );
        assert_eq!(e.code(), "integrator_not_found");
        assert_eq!(
            e.to_string(),
            "integrator.io answered 404 to GET /v1/exports/x: not_found: Export not found."
        );
        assert_eq!(e.api_errors().len(), 1);
        for (status, code) in [
            (400, "integrator_bad_request"),
            (401, "integrator_unauthorized"),
            (403, "integrator_forbidden"),
            (409, "integrator_conflict"),
            (429, "integrator_rate_limited"),
            (503, "integrator_unavailable"),
            (418, "integrator_error"),
        ] {
            let e = IntegratorError::from_status("GET", "/v1/x", status, b"<html>", &keep);
            assert_eq!(e.code(), code, "{status}");
            assert!(e.to_string().ends_with(": <html>"), "{e}");
        }
    }

    #[test]
    fn an_error_body_that_echoes_the_token_is_scrubbed() {
        let scrub = |s: &str| s.replace("ott-123456", "[REDACTED]");
        let e = IntegratorError::from_status(
            "GET",
            "/v1/tokenInfo",
            401,
            br#"{"errors":[{"code":"unauthorized","message":"bad token ott-123456"}]}"#,
            &scrub,
        );
        assert!(!e.to_string().contains("ott-123456"), "{e}");
        let e = IntegratorError::from_status("GET", "/v1/x", 500, b"echo ott-123456", &scrub);
        assert!(!e.to_string().contains("ott-123456"), "{e}");
    }
}
