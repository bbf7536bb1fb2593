#!/usr/bin/env bash
# `make cargo-test`: every test of the workspace, AWS behaviour against moto (a real-protocol
# emulator) on 127.0.0.1, started here and stopped when this script exits, pass or fail.
#
# Most integration tests spend their time waiting, not computing: on replies held past the
# SDK's timeout (lost and late replies), on visibility timeouts, on killed processes coming
# back. So each test binary runs TEST_THREADS tests at once (default 4, where `cargo test`
# would run one per core), and the soak, a single test that mostly waits, runs in a second
# `cargo test` beside all the others. Its output is shown when it ends; a failure of either
# fails the step.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
THREADS="${TEST_THREADS:-4}"
SOAK_TEST=soak_nothing_lost_nothing_run_twice
mkdir -p target
SOAK_LOG="target/soak-test.log"

# The soak gets a moto of its own (one Python process each): it sends hundreds of requests a
# second, and sharing one emulator made the other tests' requests wait past the SDK's timeouts.
MOTO_PORT="${MOTO_PORT:-5055}"
SOAK_MOTO_PORT="$((MOTO_PORT + 1))"
soak_pid=""
finish() {
    # The soak in its own process group (setsid): stopping it stops the processes it started.
    if [[ -n "$soak_pid" ]] && kill -0 "$soak_pid" 2>/dev/null; then
        kill -- -"$soak_pid" 2>/dev/null || kill "$soak_pid" 2>/dev/null || true
        wait "$soak_pid" 2>/dev/null || true
    fi
    bash scripts/moto.sh stop
    MOTO_PORT="$SOAK_MOTO_PORT" bash scripts/moto.sh stop
}
trap finish EXIT
bash scripts/moto.sh start
MOTO_PORT="$SOAK_MOTO_PORT" bash scripts/moto.sh start
export MOTO_ENDPOINT="http://127.0.0.1:$MOTO_PORT"

# Built once, before both start (a no-op after `make lint-build`).
cargo test --workspace --no-run -q
# `--workspace --test soak`, not `-p integration-tests`: features are unified over the packages
# a command selects, and one package alone would compile the AWS SDK tree again.
MOTO_ENDPOINT="http://127.0.0.1:$SOAK_MOTO_PORT" setsid \
    cargo test -q --workspace --test soak -- "$SOAK_TEST" --exact >"$SOAK_LOG" 2>&1 &
soak_pid=$!

status=0
cargo test --workspace -- --test-threads="$THREADS" --skip "$SOAK_TEST" || status=$?

soak_status=0
wait "$soak_pid" || soak_status=$?
soak_pid=""
echo "--- the soak ($SOAK_TEST), run beside the others:"
cat "$SOAK_LOG"
if ((status != 0 || soak_status != 0)); then
    echo "cargo-test: failed (the workspace's tests: exit $status; the soak: exit $soak_status)" >&2
    exit 1
fi
