//! Section 1, cold init: exec → first Runtime API poll, exec → first response, and the first
//! invocation that calls DynamoDB.

use super::memory::minor_faults;
use crate::Args;
use crate::driver::{FUNCTION_BINS, HELLO, HELLO_DDB, ms};
use integration_tests::process;
use integration_tests::runtime_api::{Outcome, RuntimeApi};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Exec → first `GET /next` at a fresh Runtime API double, and the process's minor page faults
/// at that moment. The wait spins on `polls()` with 50 µs sleeps (in `block_in_place`, so the
/// double keeps serving).
async fn one_cold_init(bin: &Path) -> Option<(Duration, Option<u64>)> {
    let api = RuntimeApi::start().await.ok()?;
    let addr = api.address();
    let t0 = Instant::now();
    let p = process::lambda(
        &bin.to_path_buf(),
        &addr,
        &[("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", "local-dev-token")],
    );
    tokio::task::block_in_place(|| {
        while t0.elapsed() < Duration::from_secs(10) {
            if api.polls() > 0 {
                return Some((t0.elapsed(), minor_faults(p.id())));
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        None
    })
}

/// Copy each binary into `dir` the way Lambda installs a function: the bytes written into a
/// new file (the zip's `bootstrap`). A binary fresh from the linker was written through a
/// memory map, and its page-cache pages fault in measurably slower than a written file's;
/// measuring the copies times every binary, and the baselines, alike.
pub(crate) fn install_copies(bins: &Path, dir: &Path, names: &[&str]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    for n in names {
        let bytes = std::fs::read(bins.join(n))?;
        let dst = dir.join(n);
        let _ = std::fs::remove_file(&dst);
        std::fs::write(&dst, bytes)?;
        std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Whether an ELF executable is position-independent (`e_type` `ET_DYN`) or not (`ET_EXEC`).
fn link_mode(bin: &Path) -> &'static str {
    match std::fs::read(bin)
        .ok()
        .and_then(|b| b.get(16..18).map(|t| [t[0], t[1]]))
    {
        Some([2, 0]) => "position-dependent (`ET_EXEC`, `-no-pie`)",
        Some([3, 0]) => "position-independent (`ET_DYN`, PIE)",
        _ => "unknown",
    }
}

/// Exec → first response posted back (one direct invocation with `payload`).
async fn one_first_invoke(bin: &Path, payload: &str, env: &[(&str, &str)]) -> Option<Duration> {
    let api = RuntimeApi::start().await.ok()?;
    let t0 = Instant::now();
    let mut all_env = vec![("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", "local-dev-token")];
    all_env.extend_from_slice(env);
    let _p = process::lambda(&bin.to_path_buf(), &api.address(), &all_env);
    match api
        .invoke(payload.to_owned(), None, Duration::from_secs(10))
        .await
    {
        Some(Outcome::Response(_)) => Some(t0.elapsed()),
        other => {
            eprintln!(
                "first invocation of {} failed: {:?}",
                bin.display(),
                other.map(|o| o.text())
            );
            None
        }
    }
}

/// The label of the first-invocation row that includes the first AWS call.
pub(crate) const FIRST_AWS: &str = "import + first DynamoDB call";

pub(crate) struct ColdInit {
    /// binary → samples (ms)
    pub(crate) init: BTreeMap<String, Vec<f64>>,
    /// binary → minor page faults at the first poll, per start
    pub(crate) faults: BTreeMap<String, Vec<f64>>,
    /// binary → link mode
    pub(crate) link: BTreeMap<String, &'static str>,
    pub(crate) failures: BTreeMap<String, usize>,
    pub(crate) first_invoke: Vec<(String, Vec<f64>)>,
    /// The emulator's time for the import's 3 dedup checks, warm and sequential (ms).
    pub(crate) emulator_ms: Option<f64>,
    pub(crate) starts: usize,
}

pub(crate) async fn cold_init(a: &Args, dir: &Path) -> ColdInit {
    let mut names: Vec<&str> = vec![HELLO];
    names.extend(FUNCTION_BINS);
    let mut init: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut faults: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut failures = BTreeMap::new();
    let link = names
        .iter()
        .map(|n| (n.to_string(), link_mode(&dir.join(n))))
        .collect();
    // Warm the page cache once per binary (the figure is process init, not disk reads).
    for n in &names {
        let _ = one_cold_init(&dir.join(n)).await;
    }
    // Round-robin, so drift on a shared machine hits every binary alike.
    for round in 0..a.starts {
        for n in &names {
            match one_cold_init(&dir.join(n)).await {
                Some((d, f)) => {
                    init.entry(n.to_string()).or_default().push(ms(d));
                    if let Some(f) = f {
                        faults.entry(n.to_string()).or_default().push(f as f64);
                    }
                }
                None => *failures.entry(n.to_string()).or_insert(0) += 1,
            }
        }
        eprintln!("cold init: round {}/{}", round + 1, a.starts);
    }
    let payload = std::fs::read_to_string(a.root.join("events/pre-map/invoke.json"))
        .unwrap_or_else(|_| {
            r#"{"diy":true,"function":"flattenRecords","options":{"data":[]}}"#.into()
        });
    let mut first: Vec<(String, Vec<f64>)> =
        vec![(HELLO.into(), vec![]), ("pre-map".into(), vec![])];
    for _ in 0..a.starts {
        for (n, v) in first.iter_mut() {
            if let Some(d) = one_first_invoke(&dir.join(n.as_str()), &payload, &[]).await {
                v.push(ms(d));
            }
        }
    }
    // The first invocation that makes the first AWS call: `import`'s upsertRecords checks
    // each record's key in DynamoDB (the emulator, plain HTTP: no TLS handshake), so the
    // figure includes loading the SDK configuration and the client's first connection.
    let mut emulator_ms = None;
    if let Ok(moto) = std::env::var("MOTO_ENDPOINT") {
        let cfg = integration_tests::aws::moto_config().await;
        let table = integration_tests::aws::create_table(&cfg, "bench-first").await;
        let import =
            std::fs::read_to_string(a.root.join("events/import/invoke.json")).unwrap_or_default();
        let env = [
            ("EXTENSION_BACKEND", "aws"),
            ("AWS_ENDPOINT_URL", moto.as_str()),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
            ("AWS_REGION", "us-east-1"),
            ("EXTENSION_TABLE", table.as_str()),
        ];
        // Round-robin with the floor: the same three UpdateItems from a bare SDK client.
        let (mut v, mut floor) = (Vec::new(), Vec::new());
        for _ in 0..a.starts {
            if let Some(d) = one_first_invoke(&dir.join(HELLO_DDB), &import, &env).await {
                floor.push(ms(d));
            }
            if let Some(d) = one_first_invoke(&dir.join("import"), &import, &env).await {
                v.push(ms(d));
            }
        }
        first.push((HELLO_DDB.into(), floor));
        first.push((FIRST_AWS.into(), v));
        // The emulator's own time for the same 3 dedup checks, warm, from this process.
        use integrator_lambda::aws::dedup::DynamoDedup;
        use integrator_lambda::store::dedup::{Dedup, DedupKey};
        let dedup = Dedup::new(std::sync::Arc::new(DynamoDedup::new(
            integrator_lambda::aws::Table::new(&cfg, &table),
        )));
        let mut per_page = Vec::new();
        for round in 0..(a.starts + 1) {
            let t0 = Instant::now();
            for i in 0..3 {
                let key = DedupKey::from_caller("bench-rtt", &format!("{round}-{i}"));
                let _ = dedup.check(&key).await;
            }
            if round > 0 {
                per_page.push(ms(t0.elapsed()));
            }
        }
        emulator_ms = Some(bench::median(&per_page));
    }
    ColdInit {
        init,
        faults,
        link,
        failures,
        first_invoke: first,
        emulator_ms,
        starts: a.starts,
    }
}
