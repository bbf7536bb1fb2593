//! The conformance suite's reference module (its README §2), written against our API.

use integrator_lambda::protocol::envelope::js_string;
use integrator_lambda::types::{
    PreMapOptions, PreSavePageOptions, PreSavePageResult, RecordResult,
};
use integrator_lambda::{ExtError, ExtResult, Extension, Invocation, Module};
use serde_json::{Value, json};

/// Namespaces `whereAmI` is registered in (plus the top level).
const WHERE_AM_I: &[&str] = &[
    "hooks",
    "wrappers",
    "installer",
    "uninstaller",
    "settings",
    "utilities",
    "custom",
];

const UNICODE_RESULT: &str = r#"{"text":"h\u00e9llo w\u00f6rld","emoji":"\ud83d\ude00\ud83d\udc4d\ud83c\udffd","cjk":"\u4e2d\u6587","\u043a\u043b\u044e\u0447":"\u0437\u043d\u0430\u0447\u0435\u043d\u0438\u0435","escapes":"q\"b\\s/t\tn\nc\u0001d\u007f","ls":"a\u2028b"}"#;

fn field<'a>(o: &'a Value, k: &str) -> Option<&'a Value> {
    o.as_object().and_then(|m| m.get(k))
}

/// Register the functions that live both in `hooks` and at the top level.
fn hooks_and_top(m: &mut Module) {
    // Typed, as a function author writes it: the records pass through as the text they came
    // in (see `integrator_lambda::Record`), which is what the large-page benchmark measures.
    m.pre_save_page("preSavePage", |_i, o: PreSavePageOptions| async move {
        ExtResult::Ok(PreSavePageResult::new(o.data, o.errors))
    });
    m.pre_map("preMap", |_i, o: PreMapOptions| async move {
        ExtResult::Ok(
            o.data
                .into_iter()
                .map(RecordResult::keep)
                .collect::<Vec<_>>(),
        )
    });
    for ns in [Some("hooks"), None] {
        macro_rules! reg {
            ($name:literal, $f:expr) => {
                match ns {
                    Some(ns) => m.raw_in(ns, $name, $f),
                    None => m.raw($name, $f),
                }
            };
        }
        reg!("echoOptions", |_i: Invocation, o: Value| async move {
            ExtResult::Ok(o)
        });
        reg!("echoResp", |_i: Invocation, o: Value| async move {
            ExtResult::Ok(field(&o, "resp").cloned())
        });
        reg!("returnNothing", |_i: Invocation, _o: Value| async move {
            ExtResult::Ok(())
        });
        reg!("returnNull", |_i: Invocation, _o: Value| async move {
            ExtResult::Ok(Value::Null)
        });
        reg!("errCode", |_i: Invocation, _o: Value| async move {
            ExtResult::<()>::Err(ExtError::with_code("my_code", "withcode"))
        });
        reg!("errMessage", |_i: Invocation, _o: Value| async move {
            ExtResult::<()>::Err(ExtError::new("plain"))
        });
        reg!("errEcho", |_i: Invocation, o: Value| async move {
            let message = field(&o, "message").map(js_string).unwrap_or_default();
            let code = field(&o, "code")
                .and_then(Value::as_str)
                .filter(|c| !c.is_empty())
                .map(str::to_owned);
            ExtResult::<()>::Err(ExtError { message, code })
        });
        reg!("unicodeResult", |_i: Invocation, _o: Value| async move {
            serde_json::from_str::<Value>(UNICODE_RESULT).map_err(ExtError::from_error)
        });
        reg!("bigString", |_i: Invocation, o: Value| async move {
            let n = field(&o, "n")
                .and_then(Value::as_u64)
                .unwrap_or(0)
                .min(64 * 1024 * 1024) as usize;
            ExtResult::Ok(Value::String("x".repeat(n)))
        });
    }
}

/// The reference module.
pub fn module() -> Module {
    let mut m = Module::new();
    hooks_and_top(&mut m);
    for ns in WHERE_AM_I.iter().copied().map(Some).chain([None]) {
        let label = ns.unwrap_or("top");
        let f = move |_i: Invocation, _o: Value| async move {
            ExtResult::Ok(json!({ "namespace": label }))
        };
        match ns {
            Some(ns) => m.raw_in(ns, "whereAmI", f),
            None => m.raw("whereAmI", f),
        };
    }
    m.raw_in("wrappers", "ping", |_i, _o| async move {
        ExtResult::Ok(json!({"statusCode": 200}))
    });
    m.raw_in("settings", "persistSettings", |_i, o: Value| async move {
        let mut out = json!({"success": true});
        if let (Some(p), Some(obj)) = (field(&o, "pending"), out.as_object_mut()) {
            obj.insert("pending".into(), p.clone());
        }
        ExtResult::Ok(out)
    });
    m.raw(
        "topOnly",
        |_i, _o| async move { ExtResult::Ok(json!("flat")) },
    );
    m
}

/// Conformance mode: the reference module as DIY, or as connector `conn1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Diy,
    Connectors,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "diy" => Ok(Mode::Diy),
            "connectors" => Ok(Mode::Connectors),
            other => Err(format!(
                "unknown mode {other:?} (expected diy or connectors)"
            )),
        }
    }
}

/// The system token of the conformance configuration.
pub const SYSTEM_TOKEN: &str = "SYS_TOKEN";
/// The connector id of the conformance configuration.
pub const CONNECTOR_ID: &str = "conn1";

pub fn extension(mode: Mode) -> Extension {
    let b = Extension::builder();
    let b = match mode {
        Mode::Diy => b.diy(module()),
        Mode::Connectors => b.connector(CONNECTOR_ID, module()),
    };
    b.build()
        .unwrap_or_else(|e| panic!("reference module is misconfigured: {e}"))
}
