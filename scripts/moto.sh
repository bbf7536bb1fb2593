#!/usr/bin/env bash
# Start or stop the moto server (a real-protocol AWS emulator: DynamoDB, KMS, SQS) on 127.0.0.1
# for the tests. `make test` starts it before `cargo test` and stops it afterwards, whatever
# the outcome.
#   scripts/moto.sh start   → prints `export ...` lines for the test environment
#   scripts/moto.sh stop
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${MOTO_PORT:-5055}"
RUN="$ROOT/target/moto/$PORT"
mkdir -p "$RUN"
case "${1:-}" in
  start)
    if [[ -f "$RUN/pid" ]] && kill -0 "$(cat "$RUN/pid")" 2>/dev/null; then
      :
    else
      "$ROOT/.venv/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$RUN/moto.log" 2>&1 &
      echo $! >"$RUN/pid"
    fi
    for _ in $(seq 300); do
      curl -sf "http://127.0.0.1:$PORT/moto-api/" >/dev/null 2>&1 && break
      sleep 0.1
    done
    curl -sf "http://127.0.0.1:$PORT/moto-api/" >/dev/null || { cat "$RUN/moto.log" >&2; exit 1; }
    echo "moto: ready on 127.0.0.1:$PORT (pid $(cat "$RUN/pid"))" >&2
    ;;
  stop)
    if [[ -f "$RUN/pid" ]]; then
      kill "$(cat "$RUN/pid")" 2>/dev/null || true
      rm -f "$RUN/pid"
      echo "moto: stopped" >&2
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
