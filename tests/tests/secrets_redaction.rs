//! A secret loaded through `Secrets` never reaches the logs, whatever the level or format,
//! even when a function logs it on purpose. Needs the AWS emulator (`MOTO_ENDPOINT`).
//!
//! The logs are captured by the very subscriber `telemetry::init()` installs
//! (`telemetry::subscriber_for`), over an in-memory buffer instead of stderr. It is installed
//! with `tracing::subscriber::with_default` (thread-local) and the extension runs on a
//! current-thread runtime inside that scope, so the task dispatch spawns for the function logs
//! into it too.

use integration_tests::aws::Resources;
use integration_tests::aws::{create_key, create_table, moto_config, unique};
use integrator_lambda::dispatch::{CallRequest, Services, Stack};
use integrator_lambda::protocol::envelope::Envelope;
use integrator_lambda::store::secrets::{ExposeSecret, SecretStore, SecretString, Secrets};
use integrator_lambda::telemetry::{self, LogCapture, REDACTED};
use integrator_lambda::{ExtResult, Extension, Invocation, Module};
use serde_json::{Value, json};
use std::sync::Arc;

const SECRET_NAME: &str = "crm-api-token";

/// Logs the secret every way a careless function could.
async fn leaky(inv: Invocation, options: Value) -> ExtResult<Value> {
    let secret = inv.secret(SECRET_NAME).await?;
    let s = secret.expose_secret();
    tracing::error!("error-level {s}");
    tracing::warn!(token = %s, "warn-level");
    tracing::info!(token = ?s, "info-level");
    tracing::debug!("debug-level {s:?}");
    tracing::trace!("trace-level {s}");
    tracing::info!("whole options: {options:?}");
    tracing::warn!(?options, "options as a field");
    tracing::trace!(connection = %options["connection"], "options as JSON");
    let owned = s.to_owned();
    tokio::spawn(async move { tracing::error!("from a spawned task: {owned}") })
        .await
        .map_err(integrator_lambda::ExtError::from_error)?;
    // Not a secret: must appear as is (proves the check below can fail).
    tracing::info!("not a secret: {}", options["note"].as_str().unwrap_or(""));
    Ok(json!({"ok": true}))
}

#[test]
fn secret_never_reaches_logs() {
    let setup = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // A distinctive core (survives any escaping) inside a value that `{:?}` and JSON escape.
    let core = unique("Pl4ntedCore").replace('-', "");
    let planted = format!("s3cr3t-{core}-\"quoted\"\\back\tslash");
    let not_secret = unique("canary-not-registered");
    let res = setup.block_on(async {
        let cfg = moto_config().await;
        let res = Resources {
            table: create_table(&cfg, "redaction").await,
            kms_key_id: create_key(&cfg).await,
            queue_url: None,
            work_queue_url: None,
            stack_name: unique("stack"),
        };
        res.kms(&cfg)
            .store(SECRET_NAME, &SecretString::from(planted.clone()))
            .await
            .unwrap();
        res
    });
    drop(setup);

    for json_format in [false, true] {
        let capture = LogCapture::new();
        let subscriber = telemetry::subscriber_for(capture.clone(), json_format, "trace");
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let cfg = moto_config().await;
                let store = Arc::new(Secrets::new(Arc::new(res.kms(&cfg))));
                let mut module = Module::new();
                module.raw("leakyFunction", leaky);
                let ext = Extension::builder()
                    .diy(module)
                    .services(Services::new().with_secrets(store.clone()))
                    .build()
                    .unwrap();
                let envelope = Envelope::from_body(json!({
                    "diy": true,
                    "function": "leakyFunction",
                    "options": {
                        "_flowId": "flow-1",
                        "connection": {"apiToken": planted, "host": "crm.example.com"},
                        "note": not_secret,
                    }
                }));
                let reply = ext
                    .call(CallRequest {
                        envelope,
                        stack: Stack::Http,
                        request_id: "redaction-test".into(),
                        trace_id: None,
                        deadline: None,
                    })
                    .await;
                assert!(reply.is_ok(), "{reply:?}");
                assert_eq!(store.fetches(), 1);
            });
        });
        let logs = capture.contents();
        let format = if json_format { "json" } else { "text" };
        assert!(
            !logs.contains(&core),
            "{format}: the secret reached the logs:\n{logs}"
        );
        assert!(!logs.contains(&planted), "{format}:\n{logs}");
        assert!(logs.contains(REDACTED), "{format}:\n{logs}");
        let debug_line = if json_format {
            r#"debug-level \"[REDACTED]\""#
        } else {
            r#"debug-level "[REDACTED]""#
        };
        for line in [
            "error-level [REDACTED]",
            debug_line,
            "trace-level [REDACTED]",
            "from a spawned task: [REDACTED]",
        ] {
            assert!(logs.contains(line), "{format}: missing {line:?}:\n{logs}");
        }
        assert!(
            logs.contains("warn-level") && logs.contains("info-level"),
            "{format}:\n{logs}"
        );
        assert!(
            logs.contains("whole options") && logs.contains("options as a field"),
            "{format}:\n{logs}"
        );
        // The SDK's TRACE output (request bodies and headers) is capped away.
        assert!(!logs.contains("transmitting request"), "{format}:\n{logs}");
        // The check can fail: a value that was not registered is there, verbatim.
        assert!(
            logs.contains(&not_secret),
            "{format}: the unregistered canary is missing:\n{logs}"
        );
        assert!(
            logs.contains("extension call"),
            "{format}: dispatch's own log line is missing:\n{logs}"
        );
        eprintln!(
            "--- {format} capture ({} bytes, {} marks) ---\n{logs}",
            logs.len(),
            logs.matches(REDACTED).count()
        );
    }
}
