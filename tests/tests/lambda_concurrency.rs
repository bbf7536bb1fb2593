//! Lambda Managed Instances: with `AWS_LAMBDA_MAX_CONCURRENCY` above 1 one process serves that
//! many invocations at once (the real `serve` bootstrap against the Runtime API double, which
//! serves concurrent `/next`); with 1, or unset, one at a time as before.

use integration_tests::process;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use std::sync::Arc;
use std::time::Duration;

const CC: &str = r#"{"diy":true,"function":"sleepDemo"}"#;

/// Send `n` invocations of `sleepDemo` (each sleeping `ms`) at once; every answer, in order.
async fn burst(api: &Arc<RuntimeApi>, n: u64, ms: u64) -> Vec<Option<Outcome>> {
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                api.invoke(
                    format!(r#"{{"ms":{}}}"#, ms + i),
                    Some(CC),
                    Duration::from_secs(30),
                )
                .await
            })
        })
        .collect();
    let mut out = Vec::new();
    for c in calls {
        out.push(c.await.expect("invocation task"));
    }
    out
}

fn answers(n: u64, ms: u64) -> Vec<Option<Outcome>> {
    (0..n)
        .map(|i| {
            Some(Outcome::Response(
                format!(r#"{{"sleptMs":{}}}"#, ms + i).into_bytes(),
            ))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_above_one_serves_that_many_invocations_at_once() {
    let api = Arc::new(RuntimeApi::start().await.expect("runtime api"));
    let mut f = process::lambda(
        &process::bin("serve"),
        &api.address(),
        &[("AWS_LAMBDA_MAX_CONCURRENCY", "4")],
    );
    // Eight invocations of ~1 s each: four at a time, each answered with its own payload.
    assert_eq!(burst(&api, 8, 1000).await, answers(8, 1000));
    assert_eq!(api.max_in_flight(), 4, "invocations held at once");
    assert!(!f.exited());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_max_concurrency_invocations_are_served_one_at_a_time() {
    let api = Arc::new(RuntimeApi::start().await.expect("runtime api"));
    let mut f = process::lambda(&process::bin("serve"), &api.address(), &[]);
    assert_eq!(burst(&api, 3, 300).await, answers(3, 300));
    assert_eq!(api.max_in_flight(), 1, "invocations held at once");
    assert!(!f.exited());
}
