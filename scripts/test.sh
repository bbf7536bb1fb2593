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
# The Python tools (moto, cfn-lint, sam, checkov) import thousands of modules: let Python cache
# their bytecode in the git-ignored .venv, or each start compiles them all again (some machine
# images set PYTHONDONTWRITEBYTECODE for the whole system).
unset PYTHONDONTWRITEBYTECODE

deny_pid=""
stop_deny() {
    if [[ -n "$deny_pid" ]] && kill -0 "$deny_pid" 2>/dev/null; then
        kill -- -"$deny_pid" 2>/dev/null || kill "$deny_pid" 2>/dev/null || true
        wait "$deny_pid" 2>/dev/null || true
    fi
}
stop_checks() {
    if [[ -n "${checks_pid:-}" ]] && kill -0 "$checks_pid" 2>/dev/null; then
        kill -- -"$checks_pid" 2>/dev/null || kill "$checks_pid" 2>/dev/null || true
        wait "$checks_pid" 2>/dev/null || true
    fi
}
trap 'stop_checks; stop_deny' EXIT
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
# The tests mostly wait (on moto, on timeouts, on killed processes) and leave the cores idle:
# the template, workflow and events checks run beside them. Their output is shown when they
# end. (lint-build has built every binary the tests start; new-function-check builds into the
# same target/ and replaces binaries, so it comes after the tests.)
checks_log=target/checks.log
mkdir -p target
checks_pid=""
# Its own process group (setsid), so stopping it stops the linters too.
setsid bash -c 'set -euo pipefail
    for t in lint-template lint-workflows events-check; do
        t0=$(date +%s)
        make --no-print-directory "$t"
        echo "make test: $t done in $(($(date +%s) - t0)) s"
    done' >"$checks_log" 2>&1 &
checks_pid=$!
step cargo-test
step new-function-check
t0=$(date +%s)
checks_status=0
wait "$checks_pid" || checks_status=$?
checks_pid=""
cat "$checks_log"
if ((checks_status != 0)); then
    echo "make test: the template, workflow or events checks failed (above)" >&2
    exit 1
fi
echo "make test: the template, workflow and events checks ran beside the tests ($(($(date +%s) - t0)) s waited)"
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
