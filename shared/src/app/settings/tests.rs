use super::*;
use std::collections::HashMap;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, SettingsError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::from_lookup(&move |k| map.get(k).cloned())
}

/// `memory` names the in-memory backend; `embedded`, its earlier name, still selects it.
#[test]
fn the_memory_backend_has_two_names() {
    for name in ["memory", "embedded", "MEMORY"] {
        let s = settings(&[("EXTENSION_BACKEND", name)]).unwrap();
        assert_eq!(s.backend, Backend::Memory, "{name}");
    }
    assert!(settings(&[("EXTENSION_BACKEND", "local")]).is_err());
}

#[test]
fn the_integrator_api_url_defaults_to_north_america_and_must_be_http() {
    assert_eq!(
        settings(&[]).unwrap().integrator_api_url,
        "https://api.integrator.io"
    );
    let eu = settings(&[("INTEGRATOR_API_URL", "https://api.eu.integrator.io")]).unwrap();
    assert_eq!(eu.integrator_api_url, "https://api.eu.integrator.io");
    let e = settings(&[("INTEGRATOR_API_URL", "api.eu.integrator.io")]).unwrap_err();
    assert!(e.0.contains("INTEGRATOR_API_URL"), "{}", e.0);
}

#[test]
fn lambda_max_concurrency_is_bounded() {
    assert_eq!(settings(&[]).unwrap().lambda_concurrency, 1);
    let s = settings(&[("AWS_LAMBDA_MAX_CONCURRENCY", "64")]).unwrap();
    assert_eq!(s.lambda_concurrency, 64);
    for bad in ["0", "-1", "1025", "many"] {
        assert!(
            settings(&[("AWS_LAMBDA_MAX_CONCURRENCY", bad)]).is_err(),
            "{bad}"
        );
    }
}

#[test]
fn defaults() {
    let s = settings(&[]).unwrap();
    assert!(!s.on_lambda);
    assert_eq!(s.backend, Backend::Memory);
    assert_eq!(s.aws.table, "integrator-extension");
    assert_eq!(s.aws.table_index, DEFAULT_INDEX);
    assert_eq!(s.aws.work_queue_url, None);
    assert!(s.diy);
    assert!(s.connector_ids.is_empty());
    assert_eq!(s.timeout, None);
    assert!(s.tokens.is_empty());
    assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
    assert_eq!(s.dedup_ttl, dedup::DEFAULT_TTL);
    assert_eq!(s.secret_ttl, secrets::DEFAULT_TTL);
    assert!(s.incoming_config().unwrap().is_none());
}

#[test]
fn values_and_fallbacks() {
    let s = settings(&[
        ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
        ("EXTENSION_QUEUE_URL", " http://q "),
        ("EXTENSION_DIY", "No"),
        ("EXTENSION_CONNECTOR_IDS", "a, b,,"),
        ("EXTENSION_TIMEOUT_SECS", "2.5"),
        ("EXTENSION_SECRET_TTL_SECS", "0"),
        ("PORT", "9000"),
    ])
    .unwrap();
    assert!(s.on_lambda);
    assert_eq!(s.backend, Backend::Aws);
    assert_eq!(s.aws.work_queue_url.as_deref(), Some("http://q"));
    assert!(!s.diy);
    assert_eq!(s.connector_ids, ["a", "b"]);
    assert_eq!(s.timeout, Some(Duration::from_millis(2500)));
    assert_eq!(s.secret_ttl, Duration::ZERO);
    assert_eq!(s.listen.port(), 9000);
}

#[test]
fn an_unusable_value_is_a_start_up_error_never_a_panic_or_a_default() {
    let cases: &[(&str, &str)] = &[
        ("EXTENSION_TIMEOUT_SECS", "inf"),
        ("EXTENSION_TIMEOUT_SECS", "-1"),
        ("EXTENSION_TIMEOUT_SECS", "0"),
        ("EXTENSION_TIMEOUT_SECS", "soon"),
        ("EXTENSION_TIMEOUT_SECS", "1e300"),
        ("EXTENSION_TIMEOUT_SECS", "901"),
        ("EXTENSION_INCOMING_TIMEOUT_SECS", "NaN"),
        ("EXTENSION_DEDUP_LEASE_SECS", "1e12"),
        ("EXTENSION_DEDUP_TTL_SECS", "0"),
        ("EXTENSION_DEDUP_TTL_SECS", "1e15"),
        ("EXTENSION_IDEMPOTENCY_TTL_SECS", "-5"),
        ("EXTENSION_SECRET_TTL_SECS", "99999999"),
        ("EXTENSION_STREAM_RETRY_SECS", "1e20"),
        ("EXTENSION_RATE_LIMITS", "nonsense"),
        ("EXTENSION_BACKEND", "dynamo"),
        ("EXTENSION_DIY", "maybe"),
        ("EXTENSION_METRICS", "sometimes"),
        ("PORT", "70000"),
        ("HOST", "localhost:80"),
        (INFLIGHT_VAR, "-1"),
    ];
    for (name, bad) in cases {
        let e = settings(&[(name, bad)]).expect_err(&format!("{name}={bad}"));
        assert!(e.0.contains(name), "{name}={bad}: {e}");
    }
    // Several problems are reported together.
    let e = settings(&[("PORT", "x"), ("EXTENSION_DIY", "y")]).unwrap_err();
    assert!(e.0.contains("PORT") && e.0.contains("EXTENSION_DIY"), "{e}");
}

#[test]
fn incoming_from_one_variable_only() {
    let both = settings(&[
        (INCOMING_FILE_VAR, "/x.json"),
        (INCOMING_JSON_VAR, r#"{"endpoints":{}}"#),
    ])
    .unwrap();
    let e = both.incoming_config().unwrap_err();
    assert!(e.0.contains("only one"), "{e}");
    let bad = settings(&[(INCOMING_JSON_VAR, "{")]).unwrap();
    let e = bad.incoming_config().unwrap_err();
    assert!(e.0.starts_with(INCOMING_JSON_VAR), "{e}");
}

#[test]
fn log_settings() {
    let l = LogSettings::from_lookup(&|k| (k == "LOG_FORMAT").then(|| "JSON".to_owned()));
    assert_eq!(
        l,
        LogSettings {
            level: "info".into(),
            json: true,
            buffer: false
        }
    );
    let l = LogSettings::from_lookup(&|k| (k == LOG_BUFFER_VAR).then(|| "ON".to_owned()));
    assert!(l.buffer);
}
