#!/usr/bin/env bash
# `make test`: every check, in order, with the one slow tool build overlapped.
#
# cargo-deny is built from crates.io the first time (~3 CPU-minutes unoptimized, by scripts/deny.sh).
# Built before the tests, it was the longest single step of a fresh clone's `make test`; here it
# builds in the background (at low priority) while the workspace builds and the tests run
# against moto (which leave cores idle), and `deny` runs last. The background build is stopped
# when this script exits, pass or fail.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
start=$(date +%s)

deny_pid=""
stop_deny() {
    if [[ -n "$deny_pid" ]] && kill -0 "$deny_pid" 2>/dev/null; then
        kill -- -"$deny_pid" 2>/dev/null || kill "$deny_pid" 2>/dev/null || true
        wait "$deny_pid" 2>/dev/null || true
    fi
}
trap stop_deny EXIT
mkdir -p .tools
# Its own process group (setsid), so stopping it stops cargo and rustc too.
setsid nice -n 10 bash scripts/deny.sh --install-only >.tools/deny-install.log 2>&1 &
deny_pid=$!

step() {
    local t0
    t0=$(date +%s)
    make --no-print-directory "$@"
    echo "make test: $* done in $(($(date +%s) - t0)) s"
}

# Clippy runs inside the build (scripts/clippy-env.sh): every later cargo step inherits it, so
# the workspace is compiled once. Without clippy-driver, a separate `cargo clippy` runs.
source scripts/clippy-env.sh
step fmt-check
step promises
if [[ -n "${RUSTC_WORKSPACE_WRAPPER:-}" ]]; then
    step lint-build
else
    step clippy
fi
step build-bins
step cargo-test
step new-function-check
step lint-template
step lint-workflows
step events-check
t0=$(date +%s)
if ! wait "$deny_pid"; then
    deny_pid=""
    cat .tools/deny-install.log >&2
    echo "make test: cargo-deny could not be installed" >&2
    exit 1
fi
deny_pid=""
echo "make test: cargo-deny ready ($(($(date +%s) - t0)) s waited)"
step deny
echo "make test: all checks passed in $(($(date +%s) - start)) s"
