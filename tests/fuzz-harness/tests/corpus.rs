//! Replays every committed input of every fuzz target (`fuzz/corpus/<target>/`, the inputs
//! the fuzzer found interesting, and `fuzz/regressions/<target>/`, every crash it found, kept
//! after the fix) through the same code the targets run, on stable, in `make test`.

use std::path::Path;

#[test]
fn every_corpus_and_regression_input_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut ran = 0;
    let mut failed = Vec::new();
    for (name, target) in fuzz_harness::TARGETS {
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join(name)) else {
                continue;
            };
            let mut files: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
            files.sort();
            for f in files {
                let Ok(data) = std::fs::read(&f) else {
                    continue;
                };
                ran += 1;
                if std::panic::catch_unwind(|| target(&data)).is_err() {
                    failed.push(f.display().to_string());
                }
            }
        }
    }
    println!("{ran} inputs replayed");
    assert!(
        ran >= fuzz_harness::TARGETS.len(),
        "every target has inputs ({ran})"
    );
    assert!(failed.is_empty(), "inputs that fail: {failed:#?}");
}
