use super::*;
use crate::protocol::envelope::Envelope;
use serde_json::json;
use std::future::Ready;

fn call(function: &str, deadline: Duration) -> CallRequest {
    CallRequest {
        envelope: Envelope::from_body(
            json!({"diy": true, "function": function, "options": {"n": 1}}),
        ),
        stack: Stack::LambdaEnvelope,
        request_id: "r".into(),
        trace_id: None,
        deadline: Some(Instant::now() + deadline),
    }
}

fn sync_panic(_inv: Invocation, _v: Value) -> Ready<ExtResult<Value>> {
    panic!("synchronous part panicked")
}

fn leaky_panic(_inv: Invocation, _v: Value) -> Ready<ExtResult<Value>> {
    panic!("cannot connect with password hunter2-Xk8q")
}

fn sync_spin(_inv: Invocation, _v: Value) -> Ready<ExtResult<Value>> {
    std::thread::sleep(Duration::from_millis(1500));
    std::future::ready(Ok(json!("late")))
}

async fn async_spin(_inv: Invocation, _v: Value) -> ExtResult<Value> {
    // CPU-bound: never yields.
    std::thread::sleep(Duration::from_millis(1500));
    Ok(json!("late"))
}

fn extension() -> Extension {
    let mut m = Module::new();
    m.raw("syncPanic", sync_panic)
        .raw("leakyPanic", leaky_panic)
        .raw("syncSpin", sync_spin)
        .raw("asyncSpin", async_spin);
    m.pre_map("typed", |_inv, o: crate::types::PreMapOptions| async move {
        Ok(o.data
            .into_iter()
            .map(crate::types::RecordResult::keep)
            .collect::<Vec<_>>())
    });
    Extension::builder().diy(m).build().expect("extension")
}

#[tokio::test]
async fn only_registered_names_dispatch() {
    let ext = extension();
    for name in [
        "toString",
        "__proto__",
        "constructor",
        "hasOwnProperty",
        "hooks",
        "typ",
    ] {
        let errors = ext
            .call(call(name, Duration::from_secs(5)))
            .await
            .expect_err(name);
        assert_eq!(errors[0].code, "invalid_function", "{name}");
    }
}

#[test]
fn a_name_registered_twice_is_a_start_up_error() {
    let mut m = Module::new();
    m.raw("same", sync_panic).raw("other", sync_panic);
    m.raw("same", leaky_panic);
    let Err(ConfigError::Duplicates(names)) = Extension::builder().diy(m).build() else {
        panic!("a duplicate name must stop the build");
    };
    assert_eq!(names, ["diy:<top>.same"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_functions_synchronous_part_is_a_422() {
    let ext = extension();
    let errors = ext
        .call(call("syncPanic", Duration::from_secs(5)))
        .await
        .expect_err("422");
    assert_eq!(
        errors[0].message,
        "Function syncPanic panicked: synchronous part panicked"
    );
}

/// One blocked function at a time: each holds its worker until it returns (see
/// `run_isolated`), so each case gets a fresh runtime.
async fn answered_in_time(function: &str) {
    let ext = extension();
    let started = Instant::now();
    let errors = ext
        .call(call(function, Duration::from_millis(300)))
        .await
        .expect_err("422");
    assert_eq!(errors[0].code, "timeout", "{function}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{function}: answered after {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_blocking_before_its_first_await_is_answered_in_time() {
    answered_in_time("syncSpin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpu_bound_async_function_is_answered_in_time() {
    answered_in_time("asyncSpin").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_secrets_never_reach_a_422_body() {
    crate::telemetry::redact("hunter2-Xk8q");
    crate::telemetry::redact("opt-secret-Pw3z");
    let ext = extension();
    let errors = ext
        .call(call("leakyPanic", Duration::from_secs(5)))
        .await
        .expect_err("422");
    assert!(!errors[0].message.contains("hunter2-Xk8q"), "{errors:?}");
    assert!(errors[0].message.contains(crate::telemetry::REDACTED));
    // serde's description of options that do not fit quotes the value.
    let mut req = call("typed", Duration::from_secs(5));
    req.envelope = Envelope::from_body(json!({"diy": true, "type": "hook",
            "function": "typed", "options": {"data": "opt-secret-Pw3z"}}));
    let errors = ext.call(req).await.expect_err("422");
    let all = format!("{errors:?}");
    assert!(!all.contains("opt-secret-Pw3z"), "{all}");
}

/// A function that checks a page of two new records, then answers `"x" × size` or fails.
async fn check_then(inv: Invocation, o: Value) -> ExtResult<Value> {
    let dedup = inv.dedup()?;
    let page = [json!({"id": 1}), json!({"id": 2})];
    crate::store::dedup::check_page(&dedup, "marks", &page, &["id".to_owned()], 2)
        .await
        .map_err(|e| ExtError::with_code("dedup_unavailable", e.to_string()))?;
    if o["fail"] == true {
        return Err(ExtError::with_code("target_unavailable", "after the check"));
    }
    Ok(json!("x".repeat(o["size"].as_u64().unwrap_or(1) as usize)))
}

async fn still_new(dedup: &crate::store::dedup::Dedup) -> Vec<crate::Sighting> {
    let page = [json!({"id": 1}), json!({"id": 2})];
    let sightings = crate::store::dedup::check_page(dedup, "marks", &page, &["id".to_owned()], 2)
        .await
        .unwrap();
    for k in [1, 2] {
        let key = crate::store::dedup::KeyFields::new(["id"])
            .unwrap()
            .key("marks", &json!({"id": k}));
        dedup.forget(&key).await.unwrap();
    }
    sightings
}

/// The keys a call marks are forgotten when its answer is not delivered — over
/// `maxResponseSize`, or the function fails after its checks — and kept when it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keys_of_an_undelivered_answer_are_forgotten() {
    use crate::Sighting::{Duplicate, New};
    let dedup = Arc::new(crate::store::dedup::Dedup::new(Arc::new(
        crate::store::dedup::MemoryDedup::default(),
    )));
    let mut m = Module::new();
    m.raw("checkThen", check_then);
    let ext = Extension::builder()
        .diy(m)
        .services(Services::new().with_dedup(dedup.clone()))
        .build()
        .unwrap();
    let req = |options: Value, max: u64| CallRequest {
        envelope: Envelope::from_body(json!({"diy": true, "function": "checkThen",
                "options": options, "maxResponseSize": max})),
        ..call("checkThen", Duration::from_secs(5))
    };
    let errors = ext
        .call(req(json!({"size": 100}), 10))
        .await
        .expect_err("over the size");
    assert_eq!(errors[0].code, "response_size_exceeded");
    assert_eq!(still_new(&dedup).await, [New, New], "oversized answer");
    let errors = ext
        .call(req(json!({"fail": true}), 1000))
        .await
        .expect_err("failed");
    assert_eq!(errors[0].code, "target_unavailable");
    assert_eq!(still_new(&dedup).await, [New, New], "failed call");
    ext.call(req(json!({"size": 1}), 1000))
        .await
        .expect("delivered");
    assert_eq!(still_new(&dedup).await, [Duplicate, Duplicate], "delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_that_do_not_fit_the_kind_are_a_422_inside_the_guard() {
    let ext = extension();
    let mut req = call("typed", Duration::from_secs(5));
    req.envelope = Envelope::from_body(
        json!({"diy": true, "type": "hook", "function": "typed", "options": {"data": 5}}),
    );
    let errors = ext.call(req).await.expect_err("422");
    assert!(!errors.is_empty());
}

/// A call's future is moved whole each time it is boxed or spawned (the HTTP handler's,
/// the runtime loop's task): 16.6 KB when the three scopes around the dispatch were `async fn`s,
/// each holding its inner future twice (as its argument and inside what it awaits).
#[test]
fn a_calls_future_stays_small() {
    let ext = extension();
    let call = ext.call(call("typed", Duration::from_secs(5)));
    let size = std::mem::size_of_val(&call);
    assert!(size <= 4096, "Extension::call's future is {size} bytes");
}
