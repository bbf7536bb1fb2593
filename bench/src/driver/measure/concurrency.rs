//! Many calls per Lambda environment: preMap with 100 records through the Lambda path
//! (`conformance-lambda` at the Runtime API double) with `AWS_LAMBDA_MAX_CONCURRENCY` at 1, 8
//! and 64, each level in a fresh process kept full (as many invocations outstanding as it
//! serves at once) for a fixed time: invocations per second, peak RSS, and the memory each
//! extra in-flight call costs over the one-at-a-time process.

use super::memory::vm_hwm_kib;
use integration_tests::process;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The levels measured.
pub(crate) const LEVELS: [usize; 3] = [1, 8, 64];

/// One level's figures.
#[derive(Debug, Clone)]
pub(crate) struct Level {
    pub(crate) concurrency: usize,
    pub(crate) per_sec: f64,
    pub(crate) invocations: u64,
    pub(crate) failed: u64,
    pub(crate) max_in_flight: u64,
    pub(crate) start_kib: Option<u64>,
    pub(crate) peak_kib: Option<u64>,
}

/// Every level of [`LEVELS`], `secs` seconds each (after a one-second warm-up).
pub(crate) async fn concurrency(bin: &Path, secs: u64) -> Vec<Level> {
    let mut out = Vec::new();
    for n in LEVELS {
        match level(bin, n, secs).await {
            Some(l) => out.push(l),
            None => eprintln!("concurrency {n}: the function did not start"),
        }
    }
    out
}

async fn level(bin: &Path, n: usize, secs: u64) -> Option<Level> {
    let api = Arc::new(RuntimeApi::start().await.ok()?);
    let p = process::lambda(
        &bin.to_path_buf(),
        &api.address(),
        &[("AWS_LAMBDA_MAX_CONCURRENCY", &n.to_string())],
    );
    if !api.wait_polls(n as u64, Duration::from_secs(20)).await {
        return None;
    }
    let start_kib = vm_hwm_kib(p.id());
    let options = json!({
        "data": bench::records(100),
        "_integrationId": "int-1",
        "_flowId": "flow-1",
    });
    let payload = integrator_lambda::protocol::json::to_vec(&options).unwrap_or_default();
    let cc = r#"{"diy":true,"type":"hook","function":"preMap"}"#;
    let warm_until = Instant::now() + Duration::from_secs(1);
    let end = warm_until + Duration::from_secs(secs);
    let (done, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut clients = Vec::new();
    for _ in 0..n {
        let (api, payload, done, failed) =
            (api.clone(), payload.clone(), done.clone(), failed.clone());
        clients.push(tokio::spawn(async move {
            // Bounded: the time window ends the loop; each invocation is bounded by its own
            // time limit.
            while Instant::now() < end {
                let out = api
                    .invoke(payload.clone(), Some(cc), Duration::from_secs(10))
                    .await;
                if Instant::now() < warm_until {
                    continue;
                }
                match out {
                    Some(Outcome::Response(_)) => done.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for c in clients {
        let _ = c.await;
    }
    let invocations = done.load(Ordering::Relaxed);
    Some(Level {
        concurrency: n,
        per_sec: invocations as f64 / secs.max(1) as f64,
        invocations,
        failed: failed.load(Ordering::Relaxed),
        max_in_flight: api.max_in_flight(),
        start_kib,
        peak_kib: vm_hwm_kib(p.id()),
    })
}
