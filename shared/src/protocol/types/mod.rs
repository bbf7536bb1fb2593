//! Typed options and results of every extension function integrator.io calls (the 2.0 functions
//! and the 1.0 connector functions).
//!
//! Every struct keeps what it does not model in `extra` (in arrival order), so nothing
//! integrator.io adds is lost, and every field tolerates `null` or absence. Structs are
//! `#[non_exhaustive]`: build results with `Default` (or the constructors) and set fields.

use super::Record;
pub use super::job::JobContext;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::fmt;

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

/// Decides which fields are left out when a struct is written back.
#[doc(hidden)]
pub trait Skip {
    fn skip(&self) -> bool {
        false
    }
}
impl<T> Skip for Option<T> {
    fn skip(&self) -> bool {
        self.is_none()
    }
}
impl<T> Skip for Vec<T> {}
impl Skip for bool {}
impl Skip for u16 {}
impl Skip for String {}
impl Skip for Value {}
impl Skip for Record {}
impl Skip for Map<String, Value> {}
impl Skip for WrapperConnection {}

/// The one-time `bearerToken` integrator.io passes to every function. Its `Debug` output is
/// redacted so that logging the options never leaks it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BearerToken(String);

impl BearerToken {
    /// The token itself, for calling integrator.io's API.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

macro_rules! wire_struct {
    ($(#[$doc:meta])* $name:ident { $( $(#[$fdoc:meta])* $field:ident : $ty:ty = $key:literal ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        #[non_exhaustive]
        pub struct $name {
            $(
                $(#[$fdoc])*
                #[doc = ""]
                #[doc = concat!("Wire key: `", $key, "`.")]
                #[serde(rename = $key, default, deserialize_with = "nullable", skip_serializing_if = "Skip::skip")]
                pub $field: $ty,
            )*
            /// Fields not modelled above, kept in the order they arrived.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

wire_struct! {
    /// One error as integrator.io shows it on a record or a page.
    RecordError {
        code: Option<String> = "code",
        message: Option<String> = "message",
        source: Option<String> = "source",
    }
}

impl RecordError {
    /// An error with this code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: Some(code.into()),
            message: Some(message.into()),
            ..Default::default()
        }
    }
}

wire_struct! {
    /// One element of a preMap/postMap result: `{data}` keeps the record, `{data, errors}` keeps
    /// it and logs errors, `{errors}` fails it, `{}` ignores it.
    RecordResult {
        data: Option<Record> = "data",
        errors: Option<Vec<RecordError>> = "errors",
    }
}

impl RecordResult {
    /// Keep the record, as `data`.
    pub fn keep(data: impl Into<Record>) -> Self {
        Self {
            data: Some(data.into()),
            ..Default::default()
        }
    }
    /// Fail the record with these errors.
    pub fn fail(errors: Vec<RecordError>) -> Self {
        Self {
            errors: Some(errors),
            ..Default::default()
        }
    }
    /// Ignore the record (`{}`): it goes no further, without an error.
    pub fn ignore() -> Self {
        Self::default()
    }
}

mod apps;
mod hooks;
mod wrappers;

pub use apps::*;
pub use hooks::*;
pub use wrappers::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_kept_in_order_and_nulls_tolerated() {
        let o: PreMapOptions = serde_json::from_value(json!({
            "data": [{"a":1}], "zeta": 1, "_importId": "i1", "alpha": {"x": null}, "settings": null
        }))
        .unwrap();
        assert_eq!(o.data.len(), 1);
        assert_eq!(o.import_id.as_deref(), Some("i1"));
        assert_eq!(o.extra.keys().collect::<Vec<_>>(), ["zeta", "alpha"]);
        let n: PreMapOptions = serde_json::from_value(json!({"data": null})).unwrap();
        assert!(n.data.is_empty());
    }

    #[test]
    fn export_date_times_pass_through_as_sent() {
        for sent in [
            json!("2026-12-07T01:02:03.456Z"),
            json!(1765069323456u64),
            json!(null),
        ] {
            let body =
                json!({"data": [], "lastExportDateTime": sent, "currentExportDateTime": sent});
            let o: PreSavePageOptions = serde_json::from_value(body.clone()).unwrap();
            assert_eq!(
                o.last_export_date_time.as_ref().unwrap_or(&Value::Null),
                &sent
            );
            let back = serde_json::to_value(&o).unwrap();
            assert_eq!(back["lastExportDateTime"], sent, "{sent}");
            assert_eq!(back["currentExportDateTime"], sent, "{sent}");
        }
    }

    #[test]
    fn bearer_token_never_prints() {
        let o: PingOptions = serde_json::from_value(json!({"bearerToken": "ott-secret"})).unwrap();
        assert!(!format!("{o:?}").contains("ott-secret"));
        assert_eq!(o.bearer_token.unwrap().expose(), "ott-secret");
    }

    #[test]
    fn results_serialize_without_absent_fields() {
        let r = vec![RecordResult::keep(json!({"a":1})), RecordResult::ignore()];
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"[{"data":{"a":1}},{}]"#
        );
        assert_eq!(
            serde_json::to_string(&PingResult::ok()).unwrap(),
            r#"{"statusCode":200}"#
        );
    }
}
