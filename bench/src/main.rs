//! `bench-driver`: the `make bench` run. Measures, in one run on this machine, every figure of
//! `docs/BENCHMARKS.md` against a baseline measured in the same run, then writes the whole
//! document and its charts:
//!
//! 1. cold init of every function binary vs a bare `lambda_runtime` hello-world (Runtime API
//!    double), plus exec → first response, and the first invocation that calls DynamoDB vs a
//!    bare SDK function making the same calls (`hello-dynamodb`);
//! 2. server-stack throughput/latency with wrk, ours vs the Node reference stack;
//! 3. large pages (reads the criterion results of `benches/large_page.rs`), and a ~5 MB page end
//!    to end: over HTTP, ours vs Node, and through the Lambda path (time and peak RSS);
//! 4. peak RSS under that load, binary and zip sizes;
//! 5. AWS requests per operation counted at the emulator (when `MOTO_ENDPOINT` is set);
//! 6. the dependency graph's TLS/HTTP stacks (`cargo tree`), and the cold `make test` compile
//!    before/after the lean choices (`scripts/build-times.sh`'s JSON, measured by `make bench`).
//!
//! 7. many calls per environment: preMap-100 at `AWS_LAMBDA_MAX_CONCURRENCY` 1, 8 and 64.
//!
//! Usage: `bench-driver --root DIR --bins DIR --criterion DIR [--starts N] [--wrk-secs S]
//! [--build-times FILE] [--large-only yes] [--concurrency-only yes]`.

mod driver;

use driver::measure::{
    aws_round_trips, build_lean, cold_init, concurrency, install_copies, large_e2e, large_page,
    server_stack, sizes,
};
use driver::report::{
    concurrency_section, keep_measured_elsewhere, large_e2e_section, put_concurrency_section,
    report,
};
use driver::{FUNCTION_BINS, HELLO, HELLO_DDB};
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

struct Args {
    root: PathBuf,
    bins: PathBuf,
    criterion: PathBuf,
    starts: usize,
    wrk_secs: u64,
    /// `scripts/build-times.sh`'s result for this run (section 6), if it was measured.
    build_times: PathBuf,
    /// `--large-only yes`: measure only the large page end to end and print its section (a quick
    /// look while working on the JSON path; `docs/BENCHMARKS.md` is not written).
    large_only: bool,
    /// `--concurrency-only yes`: measure only section 9 and rewrite just that section of
    /// `docs/BENCHMARKS.md`.
    concurrency_only: bool,
}

fn args() -> Args {
    let mut a = Args {
        root: PathBuf::from("."),
        bins: PathBuf::from("target/bench/release"),
        criterion: PathBuf::from("target/bench/criterion"),
        starts: 20,
        wrk_secs: 5,
        build_times: PathBuf::from("target/bench/build-times.json"),
        large_only: false,
        concurrency_only: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--root" => a.root = v.into(),
            "--bins" => a.bins = v.into(),
            "--criterion" => a.criterion = v.into(),
            "--starts" => a.starts = v.parse().unwrap_or(20).clamp(1, 200),
            "--wrk-secs" => a.wrk_secs = v.parse().unwrap_or(5).clamp(1, 30),
            "--build-times" => a.build_times = v.into(),
            "--large-only" => a.large_only = v == "yes",
            "--concurrency-only" => a.concurrency_only = v == "yes",
            other => {
                eprintln!("bench-driver: unknown argument {other:?}");
                std::process::exit(2);
            }
        }
    }
    a
}

fn main() {
    let a = args();
    let work = a.bins.join("bench-work");
    let _ = std::fs::create_dir_all(&work);
    let docs = a.root.join("docs");
    let _ = std::fs::create_dir_all(&docs);
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    if a.large_only {
        let e2e = large_e2e(&a, &rt);
        let mut s = String::new();
        let mut summary = Vec::new();
        large_e2e_section(&mut s, &mut summary, &e2e, &a.root);
        println!("{s}");
        for (what, target, got, met) in summary {
            println!("| {what} | {target} | {got} | {met} |");
        }
        if let Some((o, e)) = e2e.ours_and_echo_ms() {
            println!(
                "| Large page over HTTP vs a bare hyper echo | ≤ 1.5× the echo's time | {:.2}× ({o:.1} ms vs {e:.1} ms) | |",
                o / e.max(1e-9)
            );
        }
        return;
    }
    let conformance_lambda = a.bins.join("conformance-lambda");
    if a.concurrency_only {
        let levels = rt.block_on(concurrency(&conformance_lambda, a.wrk_secs));
        let section = concurrency_section(&levels, a.wrk_secs);
        print!("{section}");
        let path = docs.join("BENCHMARKS.md");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        std::fs::write(&path, put_concurrency_section(&old, &section))
            .expect("write BENCHMARKS.md");
        return;
    }
    eprintln!("== 1. cold init");
    let lambda_dir = work.join("lambda");
    let mut installed: Vec<&str> = vec![HELLO, HELLO_DDB];
    installed.extend(FUNCTION_BINS);
    if let Err(e) = install_copies(&a.bins, &lambda_dir, &installed) {
        eprintln!("cannot copy the binaries to {}: {e}", lambda_dir.display());
        std::process::exit(1);
    }
    let cold = rt.block_on(cold_init(&a, &lambda_dir));
    eprintln!("== 2. server stack (wrk)");
    let server = server_stack(&a, &work);
    eprintln!("== 3. large pages (criterion results; end to end over HTTP and Lambda)");
    let large = large_page(&a);
    let e2e = large_e2e(&a, &rt);
    eprintln!("== 4. sizes");
    let sizes = sizes(&a, &work);
    eprintln!("== 5. AWS round trips");
    let aws = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(120), aws_round_trips())
            .await
            .unwrap_or_else(|_| Err("timed out after 120 s".into()))
    });
    eprintln!("== 6. build lean (cargo tree)");
    let lean = build_lean(&a);
    eprintln!("== 7. many calls per environment");
    let levels = rt.block_on(concurrency(&conformance_lambda, a.wrk_secs));
    let build_times = std::fs::read(&a.build_times)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());

    let md = report(
        &a,
        &cold,
        &server,
        large.as_ref(),
        &e2e,
        &sizes,
        &aws,
        &lean,
        build_times.as_ref(),
        started.elapsed(),
        &docs,
    );
    let md = put_concurrency_section(&md, &concurrency_section(&levels, a.wrk_secs));
    let md = keep_measured_elsewhere(md, &docs.join("BENCHMARKS.md"));
    std::fs::write(docs.join("BENCHMARKS.md"), md).expect("write docs/BENCHMARKS.md");
    eprintln!("wrote {}", docs.join("BENCHMARKS.md").display());
}
