//! `make fixture FN=… CASE=…`: run one function once against the real API and keep what
//! happened as a fixture (`functions/fixtures/<function>/<case>.json`, the format the fixture
//! runner replays): the options, the names of the secrets it loaded, every HTTP exchange, and
//! its answer.
//!
//! The function runs through the same dispatch path as a real call, with the secrets of this
//! environment's backend (the dev file locally, KMS with `EXTENSION_BACKEND=aws`), the real
//! outgoing client under a recording transport, and fresh in-memory dedup, idempotency and
//! cache stores (so every request is really made). Before anything is written, every loaded
//! secret's value is replaced by `<redacted:NAME>` wherever it occurs (URLs, headers, bodies,
//! options, the answer).

use super::settings::Settings;
use super::wiring;
use crate::dispatch::{CallRequest, Extension, Module, Reply, Services, Stack};
use crate::outgoing::integrator::IntegratorApi;
use crate::outgoing::replay::{RecordingTransport, redact_secrets};
use crate::outgoing::{HttpClient, HttpConfig, HyperTransport};
use crate::protocol::envelope::Envelope;
use crate::store::cache::Cache;
use crate::store::dedup::{Dedup, MemoryDedup};
use crate::store::idempotency::{Idempotency, MemoryIdempotency};
use crate::store::secrets::{SecretError, SecretStore, Secrets};
use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex, PoisonError};

/// A secret backend that remembers the values it handed out, to redact them.
struct Remembering {
    inner: Arc<dyn SecretStore>,
    seen: Mutex<Vec<(String, String)>>,
}

#[async_trait]
impl SecretStore for Remembering {
    async fn fetch(&self, name: &str) -> Result<SecretString, SecretError> {
        let v = self.inner.fetch(name).await?;
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if !seen.iter().any(|(n, _)| n == name) {
            seen.push((name.to_owned(), v.expose_secret().to_owned()));
        }
        Ok(v)
    }
    async fn store(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        self.inner.store(name, value).await
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// The placeholder name of the call's `bearerToken` in fixtures (`<redacted:bearerToken>`).
const BEARER_TOKEN: &str = "bearerToken";

/// The options' `bearerToken`, when a string.
fn call_token(options: &Value) -> Option<String> {
    options.get(BEARER_TOKEN)?.as_str().map(str::to_owned)
}

/// Run `function` of `module` once with `options` and return the fixture (a JSON object with
/// `description`, `options`, `secrets`, `http`, `expected`), secrets redacted.
pub fn record_fixture(
    module: Module,
    function: &str,
    options: Value,
    description: &str,
) -> Result<Value, String> {
    super::init_logging();
    let settings = Settings::from_env().map_err(|e| e.to_string())?;
    record_with(&settings, module, function, options, description)
}

/// [`record_fixture`] with these settings.
fn record_with(
    settings: &Settings,
    module: Module,
    function: &str,
    options: Value,
    description: &str,
) -> Result<Value, String> {
    let rt = super::runtime().map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async {
        let secrets = Arc::new(Remembering {
            inner: wiring::secret_backend(settings).await,
            seen: Mutex::new(Vec::new()),
        });
        let recorder = Arc::new(RecordingTransport::new(Arc::new(HyperTransport::new())));
        let services = Services::new()
            .with_secrets(Arc::new(Secrets::new(secrets.clone())))
            .with_dedup(Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))))
            .with_idempotency(Arc::new(Idempotency::new(Arc::new(
                MemoryIdempotency::default(),
            ))))
            .with_cache(Arc::new(Cache::in_memory()))
            .with_http(HttpClient::new(recorder.clone(), HttpConfig::default()))
            .with_integrator(IntegratorApi::new(&settings.integrator_api_url));
        let mut builder = Extension::builder().diy(module).services(services);
        if let Some(t) = settings.timeout {
            builder = builder.timeout(t);
        }
        let ext = builder.build().map_err(|e| e.to_string())?;
        let answer = ext
            .call(CallRequest {
                envelope: Envelope::from_body(
                    json!({"diy": true, "function": function, "options": options}),
                ),
                stack: Stack::Http,
                request_id: "fixture-recording".into(),
                trace_id: None,
                deadline: None,
            })
            .await;
        let expected = match answer {
            Ok(Reply::Nothing) => Value::Null,
            Ok(Reply::Json(text)) => {
                serde_json::from_slice(&text.to_bytes()).map_err(|e| e.to_string())?
            }
            Err(errors) => json!({ "errors": errors }),
        };
        let mut seen = secrets
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // The call's one-time integrator.io token is redacted like a secret (options, the
        // `Authorization` of `inv.integrator()` requests, answers), and replays as the same
        // placeholder.
        let token = call_token(&options);
        if let Some(t) = token.filter(|t| !t.is_empty()) {
            seen.push((BEARER_TOKEN.to_owned(), t));
        }
        let mut case = Map::new();
        case.insert("description".into(), Value::String(description.to_owned()));
        case.insert("options".into(), options);
        case.insert(
            "secrets".into(),
            Value::Array(
                seen.iter()
                    .filter(|(n, _)| n != BEARER_TOKEN)
                    .map(|(n, _)| Value::String(n.clone()))
                    .collect(),
            ),
        );
        case.insert(
            "http".into(),
            serde_json::to_value(recorder.exchanges()).map_err(|e| e.to_string())?,
        );
        case.insert("expected".into(), expected);
        let mut case = Value::Object(case);
        redact_secrets(&mut case, &seen);
        Ok(case)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outgoing::integrator::double::IntegratorDouble;

    #[test]
    fn a_recording_of_integrator_calls_redacts_the_call_token_everywhere() {
        const TOKEN: &str = "ott-recorded-77aa";
        // The double runs on its own runtime; the recording builds another, as `make fixture`.
        let server = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let double = server
            .block_on(IntegratorDouble::start(0, Some(TOKEN)))
            .unwrap();
        let url = double.url();
        let settings = Settings::from_lookup(&|k| match k {
            "INTEGRATOR_API_URL" => Some(url.clone()),
            "EXTENSION_BACKEND" => Some("memory".into()),
            "EXTENSION_DEV_SECRETS_FILE" => Some("/nonexistent/secrets.dev.json".into()),
            _ => None,
        })
        .unwrap();
        let mut module = Module::new();
        module.raw(
            "echoToken",
            |inv: crate::Invocation, _o: Value| async move {
                let info = inv.integrator().token_info().await?;
                // A careless function answering what it saw, token included.
                Ok(json!({"user": info.user_id, "sawToken": TOKEN}))
            },
        );
        let case = record_with(
            &settings,
            module,
            "echoToken",
            json!({"bearerToken": TOKEN, "x": 1}),
            "token",
        )
        .unwrap();
        let text = case.to_string();
        assert!(!text.contains(TOKEN), "{text}");
        assert_eq!(case["options"]["bearerToken"], "<redacted:bearerToken>");
        assert_eq!(
            case["http"][0]["request"]["headers"]["authorization"],
            "Bearer <redacted:bearerToken>"
        );
        assert_eq!(
            case["http"][0]["request"]["url"],
            format!("{url}/v1/tokenInfo")
        );
        assert_eq!(case["expected"]["sawToken"], "<redacted:bearerToken>");
        assert_eq!(case["secrets"], json!([]));
        assert!(double.received()[0].token_ok);
        drop(double);
    }
}
