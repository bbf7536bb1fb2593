use super::*;
use crate::dispatch::Module;
use crate::transport::system_token::TokenSet;

fn app_with_big_answer(bytes: usize) -> LambdaApp {
    let mut m = Module::new();
    m.raw("big", move |_inv, _o: Value| async move {
        Ok::<_, crate::ExtError>(Value::String("x".repeat(bytes)))
    });
    let ext = Extension::builder().diy(m).build().expect("extension");
    LambdaApp {
        http: HttpApp::new(ext, TokenSet::default(), 1 << 20),
        consumers: Vec::new(),
    }
}

fn envelope() -> Value {
    // maxResponseSize far above Lambda's limit: only the platform's limit applies.
    serde_json::json!({"diy": true, "function": "big", "options": {}, "maxResponseSize": 1e9})
}

/// An answer over Lambda's 6 MB would come back as the platform's `ResponseSizeTooLarge`;
/// it is the protocol's size error instead.
#[tokio::test]
async fn an_answer_over_lambdas_limit_is_the_size_error() {
    let app = app_with_big_answer(RESPONSE_LIMIT + 10);
    let out = handle(app, LambdaEvent::new(envelope(), Default::default())).await;
    let err = out.expect_err("over the limit");
    assert!(
        err.error_message.contains("response_size_exceeded")
            && err.error_message.contains(&RESPONSE_LIMIT.to_string()),
        "{}",
        err.error_message
    );

    let small = app_with_big_answer(1000);
    let ok = handle(small, LambdaEvent::new(envelope(), Default::default())).await;
    assert!(ok.is_ok());
}

/// An answer over Lambda's 6 MB (the protocol's own `maxResponseSize` far above it) was
/// never delivered: the dedup keys its call marked are forgotten, so the retried page finds
/// its records new. A delivered answer keeps them.
#[tokio::test]
async fn the_keys_of_an_answer_over_lambdas_limit_are_forgotten() {
    use crate::store::dedup::{Dedup, KeyFields, MemoryDedup, check_page};
    let dedup = Arc::new(Dedup::new(Arc::new(MemoryDedup::default())));
    let app = |bytes: usize| {
        let mut m = Module::new();
        m.raw("big", move |inv: crate::Invocation, _o: Value| async move {
            let page = [serde_json::json!({"id": 7})];
            check_page(&*inv.dedup()?, "big", &page, &["id".to_owned()], 1)
                .await
                .map_err(|e| crate::ExtError::new(e.to_string()))?;
            Ok::<_, crate::ExtError>(Value::String("x".repeat(bytes)))
        });
        let ext = Extension::builder()
            .diy(m)
            .services(crate::dispatch::Services::new().with_dedup(dedup.clone()))
            .build()
            .expect("extension");
        LambdaApp {
            http: HttpApp::new(ext, TokenSet::default(), 1 << 20),
            consumers: Vec::new(),
        }
    };
    let key = KeyFields::new(["id"])
        .unwrap()
        .key("big", &serde_json::json!({"id": 7}));
    let out = handle(
        app(RESPONSE_LIMIT + 10),
        LambdaEvent::new(envelope(), Default::default()),
    )
    .await;
    assert!(out.is_err());
    assert_eq!(dedup.check(&key).await.unwrap(), crate::Sighting::New);
    dedup.forget(&key).await.unwrap();
    let ok = handle(app(1000), LambdaEvent::new(envelope(), Default::default())).await;
    assert!(ok.is_ok());
    assert_eq!(dedup.check(&key).await.unwrap(), crate::Sighting::Duplicate);
}

#[test]
fn detached_headers_hold_none_of_the_buffer_they_were_read_from() {
    let buffer = bytes::Bytes::from_static(b"req-1 x-secret");
    let mut h = http::HeaderMap::new();
    h.insert(
        "lambda-runtime-aws-request-id",
        http::HeaderValue::from_maybe_shared(buffer.slice(0..5)).unwrap(),
    );
    let mut secret = http::HeaderValue::from_maybe_shared(buffer.slice(6..)).unwrap();
    secret.set_sensitive(true);
    h.append("x-key", secret);
    let d = detached(h.clone());
    assert_eq!(d, h);
    assert!(d["x-key"].is_sensitive());
    let inside = |v: &http::HeaderValue| {
        let p = v.as_bytes().as_ptr() as usize;
        let b = buffer.as_ptr() as usize;
        p >= b && p < b + buffer.len()
    };
    assert!(h.values().all(inside));
    assert!(!d.values().any(inside));
}

/// AWS's own scheduled event (events/tick/scheduled-event.json, what an EventBridge rule
/// without an input sends) runs the tick, as the envelope TickSchedule sends does.
#[tokio::test]
async fn aws_scheduled_events_run_the_tick() {
    let mut m = Module::new();
    m.utility("tick", |_inv, _o: Value| async move {
        Ok::<_, crate::ExtError>(serde_json::json!({"due": 0, "enqueued": 0}))
    });
    let ext = Extension::builder().diy(m).build().expect("extension");
    let app = LambdaApp {
        http: HttpApp::new(ext, TokenSet::default(), 1 << 20),
        consumers: Vec::new(),
    };
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../events/tick/scheduled-event.json"
    );
    let event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(is_scheduled_event(&event));
    let scheduler = serde_json::json!({
        "version": "0", "id": "x", "detail-type": "Scheduled Event",
        "source": "aws.scheduler", "account": "1", "time": "2024-05-02T12:00:00Z",
        "region": "us-east-1", "resources": ["arn:aws:scheduler:::schedule/default/x"],
        "detail": "{}",
    });
    for e in [event, scheduler] {
        let out = handle(app.clone(), LambdaEvent::new(e, Default::default()))
            .await
            .unwrap_or_else(|d| panic!("{}", d.error_message));
        let v: Value = serde_json::from_slice(&out.into_bytes()).unwrap();
        assert_eq!(v, serde_json::json!({"due": 0, "enqueued": 0}));
    }
    // Another source's event, or one naming a function, is still read as an envelope.
    let other = serde_json::json!({"detail-type": "Scheduled Event", "source": "my.app"});
    assert!(!is_scheduled_event(&other));
    let named = serde_json::json!({"detail-type": "Scheduled Event", "source": "aws.events", "function": "f"});
    assert!(!is_scheduled_event(&named));
}

#[test]
fn the_function_url_size_error_is_a_422_document() {
    let v: Value = serde_json::from_str(&too_large_for_function_url()).unwrap();
    assert_eq!(v["statusCode"], 422);
    let body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["errors"][0]["code"], "response_size_exceeded");
}

/// An invocation's future is moved whole into the runtime loop's task: each scope around the
/// call must hold the call's future once (9,232 bytes while `held` was an `async fn` holding
/// it twice; 5,832 since, in a test build).
#[test]
fn an_invocations_future_stays_small() {
    let app = app_with_big_answer(10);
    let invocation = handle(app, LambdaEvent::new(envelope(), Default::default()));
    let size = std::mem::size_of_val(&invocation);
    assert!(size <= 8192, "an invocation's future is {size} bytes");
}
