#!/usr/bin/env bash
# make bench: build release binaries into target/bench, run the criterion large-page bench and
# the bench driver (cold init, wrk vs Node, memory/size, AWS round trips, cargo tree), which
# writes docs/BENCHMARKS.md and docs/bench-*.svg. Only 127.0.0.1; every process started here is
# stopped on exit (the driver runs in its own process group; moto only if this script started it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET="$ROOT/target/bench"
BINS="$TARGET/release"
export CRITERION_HOME="$TARGET/criterion"
STARTS="${BENCH_STARTS:-20}"
WRK_SECS="${BENCH_WRK_SECS:-5}"
MOTO_PORT="${MOTO_PORT:-5055}"
t0=$SECONDS

# Tools (like .ci/run does for its own): wrk, zip, curl from Debian when missing.
missing=()
for t in wrk zip curl; do command -v "$t" >/dev/null || missing+=("$t"); done
if ((${#missing[@]})); then
  echo "bench: installing ${missing[*]}" >&2
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get install -y "${missing[@]}" >/dev/null || { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y "${missing[@]}" >/dev/null; }
fi
command -v node >/dev/null || { echo "bench: node is required for the Node reference stack" >&2; exit 1; }

# The Node reference stack (git-ignored node_modules).
if [[ ! -d bench/node/node_modules/integrator-extension || bench/node/package.json -nt bench/node/node_modules ]]; then
  (cd bench/node && npm install --no-audit --no-fund --loglevel=error)
  touch bench/node/node_modules
fi

# Only the binaries measured here (the 14 function binaries, the conformance server, the
# hello-world floor and the driver).
FUNCTION_BINS=(pre-save-page pre-map post-map post-submit post-response-map post-aggregate export
  import ping steps settings incoming worker tick)
bin_args=()
for b in "${FUNCTION_BINS[@]}" conformance-server conformance-lambda hello-world hello-dynamodb echo-server bench-driver; do bin_args+=(--bin "$b"); done

# Section 6's cold `make test` compile, lean vs default features: two cold builds in their own
# target dirs (~10 min on 2 cores), first, so nothing else competes with the timed runs.
# BENCH_BUILD_TIMES=0 skips it (the report then says it was not measured).
rm -f "$TARGET/build-times.json"
if [[ "${BENCH_BUILD_TIMES:-1}" != 0 ]]; then
  mkdir -p "$TARGET"
  bash scripts/build-times.sh "$TARGET/build-times.json" || echo "bench: build-times failed; section 6 will say so" >&2
fi
cargo build --release --target-dir "$TARGET" --workspace "${bin_args[@]}"
mkdir -p "$CRITERION_HOME"
cargo bench --target-dir "$TARGET" -p bench --bench large_page
# Tracing overhead: preMap-100 through dispatch with no trace header, Sampled=0 and
# Sampled=1, ratios to the first in the same run (section 7 of BENCHMARKS.md).
cargo bench --target-dir "$TARGET" -p bench --bench trace_overhead

started_moto=0
driver_pgid=""
cleanup() {
  if [[ -n "$driver_pgid" ]]; then kill -- "-$driver_pgid" 2>/dev/null || true; fi
  if ((started_moto)); then bash scripts/moto.sh stop || true; fi
}
trap cleanup EXIT INT TERM
if ! curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then
  if [[ -x .venv/bin/moto_server ]]; then
    MOTO_PORT=$MOTO_PORT bash scripts/moto.sh start && started_moto=1
  else
    echo "bench: no moto (.venv missing): AWS round trips are skipped" >&2
  fi
fi
if curl -sf "http://127.0.0.1:$MOTO_PORT/moto-api/" >/dev/null 2>&1; then
  export MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
fi

# The driver in its own process group, so everything it starts can be stopped by that id.
set -m
timeout 900 "$BINS/bench-driver" --root "$ROOT" --bins "$BINS" --criterion "$CRITERION_HOME" \
  --starts "$STARTS" --wrk-secs "$WRK_SECS" --build-times "$TARGET/build-times.json" &
driver_pgid=$!
set +m
wait "$driver_pgid"
driver_pgid=""
echo "bench: done in $((SECONDS - t0)) s: docs/BENCHMARKS.md" >&2
