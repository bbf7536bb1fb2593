//! Section 3b, the large page through integrator.io's Lambda path (Runtime API double).

use super::large_e2e::{LARGE_RUNS, LargeRun};
use super::memory::vm_hwm_kib;
use integration_tests::process;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use std::path::Path;
use std::time::{Duration, Instant};

/// The page through integrator.io's Lambda path: a direct Invoke of `conformance-lambda` at the
/// Runtime API double, the envelope in the client context and the options as the payload.
pub(super) async fn large_lambda(bin: &Path, options: Vec<u8>) -> Option<LargeRun> {
    let api = RuntimeApi::start().await.ok()?;
    let p = process::lambda(&bin.to_path_buf(), &api.address(), &[]);
    let cc = r#"{"diy":true,"type":"hook","function":"preSavePage"}"#;
    // Initialized (waiting for its first invocation) before its RSS at start is read.
    api.wait_first_poll(Duration::from_secs(10)).await;
    let start_kib = vm_hwm_kib(p.id());
    let mut ms = Vec::new();
    for i in 0..=LARGE_RUNS {
        let payload = options.clone();
        let t0 = Instant::now();
        let out = api.invoke(payload, Some(cc), Duration::from_secs(60)).await;
        let took = t0.elapsed();
        match out {
            Some(Outcome::Response(_)) => {
                if i > 0 {
                    ms.push(took.as_secs_f64() * 1000.0);
                }
            }
            other => {
                eprintln!(
                    "large page through the Lambda path failed: {:?}",
                    other.map(|o| o.text().chars().take(200).collect::<String>())
                );
                return None;
            }
        }
    }
    Some(LargeRun {
        ms,
        peak_kib: vm_hwm_kib(p.id()),
        start_kib,
    })
}
