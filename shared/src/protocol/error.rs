//! The error objects integrator.io receives, byte for byte.
//!
//! Node's framework builds two families of error objects with different key order:
//! envelope-validation errors are `{"code","message"}`, everything raised after validation is
//! `{"message","code"}`. We keep that order because integrator.io users diff these bodies and
//! the conformance suite compares bytes.

use serde::ser::{Serialize, SerializeMap, Serializer};
use std::borrow::Cow;

/// Wire error codes and messages of the reference framework (wording kept, typo included).
pub mod text {
    pub const UNAUTHORIZED: &str = "Invalid system token.";
    pub const NEED_DIY_OR_CONNECTOR: &str =
        "Need to set either the diy or _connectorId field in extension options.";
    pub const DIY_NOT_CONFIGURED: &str = "DIY is not configured in the extension configuration.";
    pub const CONNECTOR_NOT_FOUND: &str = "The _connectorId set in the extension options does't match any of the _connectorId's present in extension configuration.";
    pub const MISSING_FUNCTION: &str = "Missing required field function in the extension options.";
    pub const FUNCTION_NOT_STRING: &str =
        "The function field in the extension options must be of type string.";
    pub const MISSING_OPTIONS: &str = "Function options haven't been provided.";
    pub const INVALID_FUNCTION: &str =
        "The function passed in the extension options doesn't map to a function.";
    pub const NOT_SERIALIZABLE: &str = "Extension response is not serializable.";
}

/// Which key comes first when the object is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    /// `{"code":…,"message":…}` (authentication and envelope validation).
    CodeFirst,
    /// `{"message":…,"code":…}` (dispatch, function and response errors).
    MessageFirst,
}

/// One element of the `errors` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError {
    pub code: Cow<'static, str>,
    pub message: Cow<'static, str>,
    pub order: KeyOrder,
}

impl WireError {
    pub fn code_first(code: &'static str, message: &'static str) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            order: KeyOrder::CodeFirst,
        }
    }

    pub fn message_first(
        message: impl Into<Cow<'static, str>>,
        code: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            order: KeyOrder::MessageFirst,
        }
    }

    pub fn unauthorized() -> Self {
        Self::code_first("unauthorized", text::UNAUTHORIZED)
    }

    pub fn object_not_found(type_as_sent: &str) -> Self {
        Self::message_first(
            format!("The object {type_as_sent} doesn't exist in the module."),
            "object_not_found",
        )
    }

    pub fn invalid_function() -> Self {
        Self::message_first(text::INVALID_FUNCTION, "invalid_function")
    }

    pub fn response_too_large(limit_as_sent: &str) -> Self {
        Self::message_first(
            format!("response stream exceeded limit of {limit_as_sent} bytes."),
            "response_size_exceeded",
        )
    }

    pub fn invalid_response(message: impl Into<Cow<'static, str>>) -> Self {
        Self::message_first(message, "invalid_extension_response")
    }
}

impl Serialize for WireError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        match self.order {
            KeyOrder::CodeFirst => {
                m.serialize_entry("code", &self.code)?;
                m.serialize_entry("message", &self.message)?;
            }
            KeyOrder::MessageFirst => {
                m.serialize_entry("message", &self.message)?;
                m.serialize_entry("code", &self.code)?;
            }
        }
        m.end()
    }
}

/// The server-stack error body: `{"errors":[…]}`.
pub fn http_body(errors: &[WireError]) -> String {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        errors: &'a [WireError],
    }
    super::json::to_string(&Body { errors }).unwrap_or_default()
}

/// The Lambda-stack error string: `{"statusCode":422,"errors":[…]}`.
pub fn lambda_message(errors: &[WireError]) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        status_code: u16,
        errors: &'a [WireError],
    }
    super::json::to_string(&Body {
        status_code: 422,
        errors,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_follows_the_family() {
        assert_eq!(
            http_body(&[WireError::unauthorized()]),
            r#"{"errors":[{"code":"unauthorized","message":"Invalid system token."}]}"#
        );
        assert_eq!(
            lambda_message(&[WireError::object_not_found("hook")]),
            r#"{"statusCode":422,"errors":[{"message":"The object hook doesn't exist in the module.","code":"object_not_found"}]}"#
        );
    }
}
