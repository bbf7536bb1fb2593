#!/usr/bin/env bash
# make fuzz: run every cargo-fuzz target (fuzz/fuzz_targets) for FUZZ_RUNS executions (default
# 10 million) or FUZZ_SECS seconds each, whichever comes first, growing fuzz/corpus/<target>.
# A crash stops with its input in fuzz/artifacts/<target>/: fix it, then copy the input to
# fuzz/regressions/<target>/ so `make test` replays it forever (tests/fuzz-harness).
# Writes the figures between the fuzz markers of docs/RELIABILITY.md (FUZZ_REPORT=0: don't).
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT/fuzz"
RUNS="${FUZZ_RUNS:-10000000}"
SECS="${FUZZ_SECS:-1800}"
TARGETS="${FUZZ_TARGETS:-envelope json_writer flatten jwt signature sqs_batch incoming window client_context stripe_signature slack_signature basic_auth hmac_template jwks}"
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz"; exit 2; }
rustup toolchain list | grep -q nightly || { echo "a nightly toolchain is needed: rustup toolchain install nightly"; exit 2; }

JOBS="${FUZZ_JOBS:-1}"   # targets fuzzed at once (one core each)
mkdir -p "$ROOT/target"

# One target: its row of the report goes to target/fuzz-<target>.row.
fuzz_one() {
    local t=$1 log="$ROOT/target/fuzz-$1.log" start status secs execs peak corpus
    mkdir -p "corpus/$t"
    start=$(date +%s)
    status=ok
    # -rss_limit_mb: a target that needs more than this for one input is a finding too.
    # No sanitizer: the code under test is safe Rust (no `unsafe` of ours), so AddressSanitizer
    # would only halve the executions; panics, aborts, timeouts and memory blow-ups are caught.
    if ! cargo +nightly fuzz run --sanitizer none "$t" "corpus/$t" -- -runs="$RUNS" -max_total_time="$SECS" \
        -rss_limit_mb=1024 -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        status="CRASH (see target/fuzz-$t.log, fuzz/artifacts/$t/)"
    fi
    secs=$(( $(date +%s) - start ))
    # Keep only the inputs that add coverage (what is committed and replayed by `make test`).
    [[ "$status" != ok ]] || cargo +nightly fuzz cmin --sanitizer none "$t" "corpus/$t" >"$log.cmin" 2>&1 || true
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    peak=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    corpus=$(find "corpus/$t" -type f | wc -l)
    echo "| \`$t\` | ${execs:-?} | ${secs} s | ${corpus} | ${peak:-?} MB | $status |" >"$ROOT/target/fuzz-$t.row"
    cat "$ROOT/target/fuzz-$t.row"
}

# Build once, then run the targets JOBS at a time.
cargo +nightly fuzz build --sanitizer none >/dev/null
running=0
for t in $TARGETS; do
    rm -f "$ROOT/target/fuzz-$t.row"
    fuzz_one "$t" &
    running=$((running + 1))
    if (( running >= JOBS )); then wait -n || true; running=$((running - 1)); fi
done
wait || true
rows=()
for t in $TARGETS; do
    row=$(cat "$ROOT/target/fuzz-$t.row" 2>/dev/null || echo "| \`$t\` | ? | ? | ? | ? | not run |")
    rows+=("$row")
done

if [[ "${FUZZ_REPORT:-1}" != 0 ]]; then
    python3 - "$ROOT/docs/RELIABILITY.md" "$RUNS" "$SECS" "${rows[@]}" <<'PY'
import sys
path, runs, secs, rows = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
text = open(path, encoding="utf-8").read()
block = (
    "<!-- fuzz:begin (written by `make fuzz`) -->\n"
    "## Fuzzing\n\n"
    f"`make fuzz` (cargo-fuzz, libFuzzer; at most {int(runs):,} executions or {secs} s per target, "
    "on this machine). The corpus it grew is committed under `fuzz/corpus/`, and `make test` "
    "replays it, with every crash input kept under `fuzz/regressions/`, through the same code "
    "(`tests/fuzz-harness`).\n\n"
    "| target | executions | time | corpus files (after `cargo fuzz cmin`) | peak RSS | result |\n|---|---|---|---|---|---|\n"
    + "\n".join(rows) + "\n<!-- fuzz:end -->\n"
)
a, b = text.find("<!-- fuzz:begin"), text.find("<!-- fuzz:end -->")
if a >= 0 and b >= 0:
    # Targets not run this time keep their earlier row.
    ran = {r.split("`")[1] for r in rows}
    kept = [l for l in text[a:b].splitlines() if l.startswith("| `") and l.split("`")[1] not in ran]
    if kept:
        block = block.replace("\n<!-- fuzz:end -->", "\n" + "\n".join(kept) + "\n<!-- fuzz:end -->")
if a >= 0 and b >= 0:
    text = text[:a] + block + text[b + len("<!-- fuzz:end -->\n"):]
else:
    text = text.rstrip("\n") + "\n\n" + block
open(path, "w", encoding="utf-8").write(text)
PY
fi
