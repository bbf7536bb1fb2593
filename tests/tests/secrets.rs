//! Secrets against the AWS emulator (moto: real KMS encryption-context checks, real DynamoDB):
//! storage layout, stack/name binding, caching, unreachable services and the `set-secret`
//! binary. Run with `MOTO_ENDPOINT=http://127.0.0.1:5055` (make test sets it).

use aws_sdk_dynamodb::types::AttributeValue;
use integration_tests::aws::Resources;
use integration_tests::aws::{
    create_key, create_table, moto_config, moto_endpoint, sdk_config_for, unique,
};
use integrator_lambda::ExtError;
use integrator_lambda::store::secrets::{
    ExposeSecret, SecretError, SecretStore, SecretString, Secrets,
};
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn resources(table: &str, key: &str, stack: &str) -> Resources {
    Resources {
        table: table.to_owned(),
        kms_key_id: key.to_owned(),
        queue_url: None,
        work_queue_url: None,
        stack_name: stack.to_owned(),
    }
}

/// A fresh table and key, and the resources of a new stack using them.
async fn setup() -> (aws_config::SdkConfig, Resources) {
    let cfg = moto_config().await;
    let table = create_table(&cfg, "secrets").await;
    let key = create_key(&cfg).await;
    let res = resources(&table, &key, &unique("stack"));
    (cfg, res)
}

fn value(tag: &str) -> String {
    format!("v4lue-{tag}-{}", unique("s"))
}

#[tokio::test]
async fn store_then_fetch_round_trip() {
    let (cfg, res) = setup().await;
    let secrets = res.kms(&cfg);
    let v = value("round");
    secrets
        .store("crm-api-token", &SecretString::from(v.clone()))
        .await
        .unwrap();
    let got = secrets.fetch("crm-api-token").await.unwrap();
    assert_eq!(got.expose_secret(), v);

    // The item layout: pk, binary ciphertext (not the plaintext), key ARN, epoch seconds.
    let ddb = aws_sdk_dynamodb::Client::new(&cfg);
    let item = ddb
        .get_item()
        .table_name(&res.table)
        .key("pk", AttributeValue::S("secret#crm-api-token".into()))
        .send()
        .await
        .unwrap()
        .item
        .expect("item stored");
    let Some(AttributeValue::B(ct)) = item.get("ciphertext") else {
        panic!("ciphertext is not B: {item:?}")
    };
    assert!(!ct.as_ref().windows(v.len()).any(|w| w == v.as_bytes()));
    let Some(AttributeValue::S(key_id)) = item.get("key_id") else {
        panic!("key_id is not S")
    };
    assert!(key_id.contains(&res.kms_key_id), "{key_id}");
    let Some(AttributeValue::N(updated)) = item.get("updated_at") else {
        panic!("updated_at is not N")
    };
    let updated: u64 = updated.parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(updated.abs_diff(now) < 60);

    // Storing again replaces the value.
    secrets
        .store("crm-api-token", &SecretString::from("replaced-value"))
        .await
        .unwrap();
    assert_eq!(
        secrets
            .fetch("crm-api-token")
            .await
            .unwrap()
            .expose_secret(),
        "replaced-value"
    );
}

#[tokio::test]
async fn ciphertext_of_another_stack_or_name_is_wrong_context() {
    let (cfg, res_a) = setup().await;
    let v = value("stackA");
    res_a
        .kms(&cfg)
        .store("shared-name", &SecretString::from(v.clone()))
        .await
        .unwrap();

    // Same table, key and name, another stack: KMS refuses the context.
    let res_b = resources(&res_a.table, &res_a.kms_key_id, &unique("stackB"));
    let store_b = Secrets::new(Arc::new(res_b.kms(&cfg)));
    let err = store_b
        .get(
            "shared-name",
            Some(Instant::now() + Duration::from_secs(10)),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err,
        SecretError::WrongContext {
            name: "shared-name".into()
        }
    );
    assert_eq!(store_b.fetches(), 1, "a permanent failure is not retried");
    let text = err.to_string();
    assert!(!text.contains(&v), "{text}");
    assert!(text.contains("shared-name"), "{text}");
    let ext = ExtError::from(err);
    assert_eq!(ext.code.as_deref(), Some("secret_invalid_context"));
    assert!(!ext.message.contains(&v) && !format!("{ext:?}").contains(&v));

    // Same stack, the item copied under another name: the name is bound too.
    let ddb = aws_sdk_dynamodb::Client::new(&cfg);
    let mut item = ddb
        .get_item()
        .table_name(&res_a.table)
        .key("pk", AttributeValue::S("secret#shared-name".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    item.insert("pk".into(), AttributeValue::S("secret#copied-name".into()));
    ddb.put_item()
        .table_name(&res_a.table)
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
    let err = res_a.kms(&cfg).fetch("copied-name").await.unwrap_err();
    assert_eq!(
        err,
        SecretError::WrongContext {
            name: "copied-name".into()
        }
    );

    // Tampered ciphertext.
    ddb.put_item()
        .table_name(&res_a.table)
        .item("pk", AttributeValue::S("secret#tampered".into()))
        .item(
            "ciphertext",
            AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(
                b"not a kms ciphertext at all".to_vec(),
            )),
        )
        .item("key_id", AttributeValue::S(res_a.kms_key_id.clone()))
        .item("updated_at", AttributeValue::N("0".into()))
        .send()
        .await
        .unwrap();
    let err = res_a.kms(&cfg).fetch("tampered").await.unwrap_err();
    assert!(
        matches!(
            err,
            SecretError::WrongContext { .. } | SecretError::Corrupt { .. }
        ),
        "{err:?}"
    );

    // The original stack still reads it.
    let got = res_a.kms(&cfg).fetch("shared-name").await.unwrap();
    assert_eq!(got.expose_secret(), v);
}

#[tokio::test]
async fn missing_secret_is_not_found() {
    let (cfg, res) = setup().await;
    let store = Secrets::new(Arc::new(res.kms(&cfg)));
    let err = store.get("never-stored", None).await.unwrap_err();
    assert_eq!(
        err,
        SecretError::NotFound {
            name: "never-stored".into()
        }
    );
    assert_eq!(store.fetches(), 1);
    let ext = ExtError::from(err);
    assert_eq!(ext.code.as_deref(), Some("secret_not_found"));
    assert!(ext.message.contains("never-stored"));
}

#[tokio::test]
async fn values_are_cached_for_the_ttl() {
    let (cfg, res) = setup().await;
    let backend = Arc::new(res.kms(&cfg));
    let v = value("cache");
    backend
        .store("cached", &SecretString::from(v.clone()))
        .await
        .unwrap();

    // Default TTL (300 s): the second get is served from memory.
    let store = Secrets::new(backend.clone());
    assert_eq!(store.get("cached", None).await.unwrap().expose_secret(), v);
    assert_eq!(store.get("cached", None).await.unwrap().expose_secret(), v);
    assert_eq!(store.fetches(), 1);

    // A tiny TTL: within it one fetch, after it a second one (which sees a new value).
    let store = Secrets::new(backend.clone()).with_ttl(Duration::from_millis(300));
    store.get("cached", None).await.unwrap();
    store.get("cached", None).await.unwrap();
    assert_eq!(store.fetches(), 1);
    backend
        .store("cached", &SecretString::from("rotated-value"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        store.get("cached", None).await.unwrap().expose_secret(),
        "rotated-value"
    );
    assert_eq!(store.fetches(), 2);
}

#[tokio::test]
async fn unreachable_services_are_unavailable_within_the_deadline() {
    let cfg = sdk_config_for("http://127.0.0.1:1").await;
    let res = resources("no-table", "no-key", "stack");
    let store = Secrets::new(Arc::new(res.kms(&cfg)));
    let started = Instant::now();
    let err = store
        .get("anything", Some(Instant::now() + Duration::from_secs(2)))
        .await
        .unwrap_err();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(matches!(err, SecretError::Unavailable { .. }), "{err:?}");
    assert!(
        store.fetches() > 1,
        "transient failures are retried ({} fetches)",
        store.fetches()
    );
    assert_eq!(
        ExtError::from(err).code.as_deref(),
        Some("secret_unavailable")
    );
}

fn run_set_secret(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(integration_tests::process::bin("set-secret"));
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start set-secret");
    let mut input = child.stdin.take().expect("stdin");
    // A refused invocation exits without reading stdin: a broken pipe is expected then.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("set-secret output")
}

#[tokio::test]
async fn set_secret_binary_stores_without_printing() {
    let (cfg, res) = setup().await;
    let endpoint = moto_endpoint();
    let env = [
        ("EXTENSION_BACKEND", "aws"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("EXTENSION_TABLE", res.table.as_str()),
        ("EXTENSION_KMS_KEY_ID", res.kms_key_id.as_str()),
        ("EXTENSION_STACK_NAME", res.stack_name.as_str()),
        ("RUST_LOG", "trace"),
    ];
    let v = value("cli");
    let out = run_set_secret(&["cli-token"], format!("{v}\n").as_bytes(), &env);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
    assert_eq!(
        stdout.trim(),
        format!(
            "stored secret cli-token (kms key {}, table {})",
            res.kms_key_id, res.table
        )
    );
    assert!(
        !stdout.contains(&v) && !stderr.contains(&v),
        "value printed:\n{stdout}\n{stderr}"
    );

    // Stored bound to the stack, trailing newline stripped.
    let got = res.kms(&cfg).fetch("cli-token").await.unwrap();
    assert_eq!(got.expose_secret(), v);

    // Refusals: empty value, bad name, no name, a value as an extra argument.
    let out = run_set_secret(&["empty"], b"\n", &env);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    assert_eq!(
        res.kms(&cfg).fetch("empty").await.unwrap_err(),
        SecretError::NotFound {
            name: "empty".into()
        }
    );
    let out = run_set_secret(&["bad/name"], b"x-value\n", &env);
    assert_eq!(out.status.code(), Some(2));
    let out = run_set_secret(&[], b"x-value\n", &env);
    assert_eq!(out.status.code(), Some(2));
    let out = run_set_secret(&["n", "value-as-arg"], b"", &env);
    assert_eq!(out.status.code(), Some(2));
}

/// `POST /function` with the bearer `token` on the server at `addr`: its status.
async fn status_with(addr: &str, token: &str) -> u16 {
    let (addr, token) = (addr.to_owned(), token.to_owned());
    tokio::task::spawn_blocking(move || {
        let envelope =
            serde_json::json!({"diy": true, "function": "noSuchFunction", "options": {}});
        integration_tests::http_client::post_function(&addr, &token, &envelope).status
    })
    .await
    .expect("request thread")
}

/// System-token rotation on the real server binary (`ping`, AWS backend: the token is the KMS
/// secret `system-token`, read through a counting proxy in front of the emulator). After the
/// secret changes, the new token is accepted within the refresh interval (5 s) and the old one
/// refused, without a restart; a flood of wrong tokens costs at most one secret read (GetItem +
/// Decrypt) per interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_system_token_works_within_seconds_and_the_old_one_stops() {
    use integration_tests::counting_proxy::CountingProxy;
    use integration_tests::process::{bin, server};
    const INTERVAL: Duration = integrator_lambda::transport::system_token::TOKEN_REFRESH_INTERVAL;
    let (cfg, res) = setup().await;
    let secrets = res.kms(&cfg);
    let old = value("token-old");
    let new = value("token-new");
    secrets
        .store("system-token", &SecretString::from(old.clone()))
        .await
        .unwrap();
    let proxy = CountingProxy::start(&moto_endpoint()).await.expect("proxy");
    let endpoint = proxy.endpoint();
    let (_server, addr) = server(
        &bin("ping"),
        &[],
        &[
            ("PORT", "0"),
            ("EXTENSION_BACKEND", "aws"),
            ("AWS_ENDPOINT_URL", &endpoint),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("EXTENSION_TABLE", &res.table),
            ("EXTENSION_KMS_KEY_ID", &res.kms_key_id),
            ("EXTENSION_STACK_NAME", &res.stack_name),
            ("INTEGRATOR_EXTENSION_SYSTEM_TOKEN_SECRET", "system-token"),
        ],
    );
    assert_eq!(proxy.count("Decrypt"), 1, "read once at start-up");
    // Authenticated: the unknown function's 422, not a 401.
    assert_eq!(status_with(&addr, &old).await, 422);

    // The token is rotated in the secret (integrator.io stops the old one at once).
    secrets
        .store("system-token", &SecretString::from(new.clone()))
        .await
        .unwrap();
    let rotated = Instant::now();
    let mut accepted_after = None;
    for _ in 0..100 {
        if status_with(&addr, &new).await == 422 {
            accepted_after = Some(rotated.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = accepted_after.expect("the new token is never accepted (10 s)");
    assert!(
        after <= INTERVAL + Duration::from_secs(2),
        "the new token was accepted only after {after:?}"
    );
    assert_eq!(
        status_with(&addr, &old).await,
        401,
        "the old token still works"
    );

    // 100 wrong tokens, 10 at a time: one re-read per interval at most, one at a time.
    proxy.reset();
    let started = Instant::now();
    for round in 0..10 {
        let all: Vec<_> = (0..10)
            .map(|i| {
                let addr = addr.clone();
                tokio::spawn(async move { status_with(&addr, &format!("wrong-{round}-{i}")).await })
            })
            .collect();
        for h in all {
            assert_eq!(h.await.unwrap(), 401);
        }
    }
    let intervals = started.elapsed().as_secs() / INTERVAL.as_secs() + 1;
    let (gets, decrypts) = (proxy.count("GetItem"), proxy.count("Decrypt"));
    assert!(
        gets <= intervals && decrypts <= intervals,
        "100 wrong tokens in {:?} read the secret {gets} (GetItem) / {decrypts} (Decrypt) times",
        started.elapsed()
    );
    assert_eq!(
        status_with(&addr, &new).await,
        422,
        "the new token still works"
    );
}
