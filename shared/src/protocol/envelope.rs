//! The extension envelope ("extension options") and the JavaScript value rules it is read with.
//!
//! integrator.io sends `diy` / `_connectorId`, `function`, `type` and `maxResponseSize` either in
//! the HTTP body next to `options` (server stack) or as the Lambda client context with the
//! options as the payload (Lambda stack). The reference framework reads them with JavaScript
//! truthiness and coercion, so we do the same here, in one place.

use super::json::js_number;
use super::options::Options;
use bytes::Bytes;
use serde_json::{Map, Value};

/// Default `maxResponseSize`: 5 × 1024 × 1024 UTF-16 code units.
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 5 * 1024 * 1024;

/// JavaScript truthiness of an optional JSON value: absent, `null`, `false`, `0` and `""` are
/// falsy; everything else (including `{}` and `[]`) is truthy.
pub fn truthy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_f64().is_some_and(|f| f != 0.0 && !f.is_nan()),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(_) | Value::Object(_)) => true,
    }
}

/// JavaScript `String(value)` for the scalar values that show up in error messages.
pub fn js_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            (_, _, Some(f)) => {
                let mut s = String::new();
                js_number(f, &mut s);
                s
            }
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".into(),
        Value::Array(items) => items
            .iter()
            .map(|i| {
                if i.is_null() {
                    String::new()
                } else {
                    js_string(i)
                }
            })
            .collect::<Vec<_>>()
            .join(","),
        Value::Object(_) => "[object Object]".into(),
    }
}

/// JavaScript `Number(string)`: trims whitespace, accepts decimal, `0x`/`0o`/`0b` and
/// `Infinity`; anything else is NaN.
pub fn js_string_to_number(s: &str) -> f64 {
    let t = s.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if t.is_empty() {
        return 0.0;
    }
    let radix = |digits: &str, r: u32| {
        if digits.is_empty() {
            f64::NAN
        } else {
            u128::from_str_radix(digits, r)
                .map(|v| v as f64)
                .unwrap_or(f64::NAN)
        }
    };
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return radix(h, 16);
    }
    if let Some(o) = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")) {
        return radix(o, 8);
    }
    if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        return radix(b, 2);
    }
    match t {
        "Infinity" | "+Infinity" => return f64::INFINITY,
        "-Infinity" => return f64::NEG_INFINITY,
        _ => {}
    }
    // Rust also accepts "inf", "nan" and "infinity", which JavaScript does not.
    let body = t.trim_start_matches(['+', '-']);
    if body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && t.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        t.parse::<f64>().unwrap_or(f64::NAN)
    } else {
        f64::NAN
    }
}

/// The response-size limit of one call, as integrator.io set it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseLimit {
    /// The limit in UTF-16 code units; NaN means "never exceeded" (JavaScript compares with NaN).
    pub units: f64,
    /// The value as sent, for the error message.
    pub as_sent: String,
}

impl Default for ResponseLimit {
    fn default() -> Self {
        Self {
            units: DEFAULT_MAX_RESPONSE_SIZE as f64,
            as_sent: DEFAULT_MAX_RESPONSE_SIZE.to_string(),
        }
    }
}

impl ResponseLimit {
    /// Read `maxResponseSize`: falsy means the default; numbers and numeric strings are honoured.
    pub fn from_value(v: Option<&Value>) -> Self {
        if !truthy(v) {
            return Self::default();
        }
        let Some(v) = v else { return Self::default() };
        let units = match v {
            Value::Number(n) => n.as_f64().unwrap_or(f64::NAN),
            Value::String(s) => js_string_to_number(s),
            Value::Bool(true) => 1.0,
            _ => f64::NAN,
        };
        Self {
            units,
            as_sent: js_string(v),
        }
    }

    /// `size > limit` fails; `size == limit` passes.
    pub fn exceeded_by(&self, size_units: usize) -> bool {
        (size_units as f64) > self.units
    }
}

/// The envelope of one call, read but not yet validated.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub diy: Option<Value>,
    pub connector_id: Option<Value>,
    pub function: Option<Value>,
    pub r#type: Option<Value>,
    pub max_response_size: Option<Value>,
    pub options: Option<Options>,
}

impl Envelope {
    /// Server stack (and queued messages): the whole body is the envelope, `options` inside it.
    /// A body that is not an object (e.g. a top-level array) yields an empty envelope, which
    /// then fails validation exactly as in the reference.
    pub fn from_body(body: Value) -> Self {
        match body {
            Value::Object(mut map) => {
                let options = map.remove("options");
                let mut env = Self::from_map(&mut map);
                env.options = options.map(Options::Value);
                env
            }
            _ => Self::default(),
        }
    }

    /// Lambda stack: the client context carries the envelope, the payload is the options.
    pub fn from_client_context(client_context: Value, payload: Value) -> Self {
        let mut env = match client_context {
            Value::Object(mut map) => Self::from_map(&mut map),
            _ => Self::default(),
        };
        env.options = Some(Options::Value(payload));
        env
    }

    /// Lambda stack, with the options already read from the payload ([`Options::from_payload`]).
    pub fn from_client_context_options(client_context: Value, options: Options) -> Self {
        let mut env = Self::from_client_context(client_context, Value::Null);
        env.options = Some(options);
        env
    }

    /// Server stack: the envelope from the request body, with the options kept as text
    /// ([`Options`]), and the body's `access_token` (the token a caller may send there). The
    /// body is checked as JSON exactly as [`super::json::from_slice`] checks it: the same texts
    /// fail, with the same error.
    pub fn from_json(body: Bytes) -> Result<(Self, Option<Value>), serde_json::Error> {
        // Not an object, not JSON, or unusual (see `scan`): the general parser decides.
        let general = |body: &[u8]| {
            let v = super::json::from_slice(body)?;
            let token = v.get("access_token").cloned();
            Ok((Self::from_body(v), token))
        };
        let fields = match super::scan::split_body(&body) {
            Ok(fields) => fields,
            // Read as Node reads it, each invalid sequence as U+FFFD.
            Err(super::scan::NotSplit::NotUtf8) => {
                return Self::from_json(super::scan::as_node_reads(body));
            }
            Err(_) => return general(&body),
        };
        let mut env = Self::default();
        let mut token = None;
        for f in fields {
            let slot = match f.key.as_str() {
                "diy" => &mut env.diy,
                "_connectorId" => &mut env.connector_id,
                "function" => &mut env.function,
                "type" => &mut env.r#type,
                "maxResponseSize" => &mut env.max_response_size,
                "access_token" => &mut token,
                "options" => {
                    env.options = Some(match f.fields {
                        Some(inner) => Options::from_fields(body.clone(), f.start..f.end, inner),
                        None => match super::json::from_slice(&body[f.start..f.end]) {
                            Ok(v) => Options::Value(v),
                            Err(_) => return general(&body),
                        },
                    });
                    continue;
                }
                _ => continue,
            };
            match super::json::from_slice(&body[f.start..f.end]) {
                Ok(v) => *slot = Some(v),
                Err(_) => return general(&body),
            }
        }
        Ok((env, token))
    }

    fn from_map(map: &mut Map<String, Value>) -> Self {
        Self {
            diy: map.remove("diy"),
            connector_id: map.remove("_connectorId"),
            function: map.remove("function"),
            r#type: map.remove("type"),
            max_response_size: map.remove("maxResponseSize"),
            options: None,
        }
    }

    /// The function name when it is a string (for logging before validation).
    pub fn function_name(&self) -> Option<&str> {
        self.function.as_ref().and_then(Value::as_str)
    }

    /// The `type` when truthy, as JavaScript would print it.
    pub fn type_name(&self) -> Option<String> {
        truthy(self.r#type.as_ref())
            .then(|| self.r#type.as_ref().map(js_string).unwrap_or_default())
    }

    pub fn connector_key(&self) -> Option<String> {
        truthy(self.connector_id.as_ref()).then(|| {
            self.connector_id
                .as_ref()
                .map(js_string)
                .unwrap_or_default()
        })
    }

    pub fn response_limit(&self) -> ResponseLimit {
        ResponseLimit::from_value(self.max_response_size.as_ref())
    }
}

/// Map a framework-1.0 `type` to its namespace: the four singular names are pluralised and any
/// other string is used verbatim (`installer`, `uninstaller`, `settings`, `custom`, …).
pub fn namespace_for_type(t: &str) -> &str {
    match t {
        "hook" => "hooks",
        "wrapper" => "wrappers",
        "setting" => "settings",
        "utility" => "utilities",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn truthiness_is_javascripts() {
        for v in [json!(null), json!(false), json!(0), json!(0.0), json!("")] {
            assert!(!truthy(Some(&v)), "{v} should be falsy");
        }
        assert!(!truthy(None));
        for v in [
            json!({}),
            json!([]),
            json!(1),
            json!("0"),
            json!(true),
            json!(-1),
        ] {
            assert!(truthy(Some(&v)), "{v} should be truthy");
        }
    }

    #[test]
    fn response_limit_rules() {
        assert_eq!(ResponseLimit::from_value(None).units, 5_242_880.0);
        assert_eq!(
            ResponseLimit::from_value(Some(&json!(0))).as_sent,
            "5242880"
        );
        let l = ResponseLimit::from_value(Some(&json!("2")));
        assert_eq!((l.units, l.as_sent.as_str()), (2.0, "2"));
        assert!(!l.exceeded_by(2));
        assert!(l.exceeded_by(3));
        assert!(!ResponseLimit::from_value(Some(&json!("abc"))).exceeded_by(usize::MAX));
        assert_eq!(js_string_to_number(" 0x10 "), 16.0);
        assert!(js_string_to_number("inf").is_nan());
    }

    #[test]
    fn body_and_client_context_read_the_same_fields() {
        let e =
            Envelope::from_body(json!({"diy":true,"function":"f","type":"hook","options":{"a":1}}));
        assert_eq!(e.function_name(), Some("f"));
        assert_eq!(e.type_name().as_deref(), Some("hook"));
        assert_eq!(
            e.options.map(|o| o.into_value().unwrap()),
            Some(json!({"a":1}))
        );
        let l =
            Envelope::from_client_context(json!({"_connectorId":"c","function":"g"}), json!([]));
        assert_eq!(l.connector_key().as_deref(), Some("c"));
        assert_eq!(l.options.map(|o| o.into_value().unwrap()), Some(json!([])));
        assert!(Envelope::from_body(json!([1, 2])).function.is_none());
    }
}
