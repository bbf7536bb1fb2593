#!/usr/bin/env bash
# One Lambda invoke of a workspace binary under AWS's own Runtime Interface Emulator
# (`aws-lambda-rie`, the emulator `sam local invoke` runs inside its container; the aws-sam-cli
# wheel in .venv ships it, so no Docker is needed).
#
#   scripts/invoke.sh <binary> <event.json> [client-context.json]
#
# The emulator and the function's Runtime API are bound to 127.0.0.1 on free ports; the client
# context is sent base64-encoded in X-Amz-Client-Context, exactly as the Lambda Invoke API takes
# it. Prints the emulator's and the function's log lines, then the answer. The emulator (and the
# function under it) is stopped when this script exits, pass or fail.
# Environment: EXTENSION_BACKEND (default `embedded`: in-memory stores, no AWS needed),
# INTEGRATOR_EXTENSION_SYSTEM_TOKEN (default local-dev-token), TRACE_ID (an X-Ray trace header
# passed as X-Amzn-Trace-Id), PROFILE (debug | release, default debug).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FN="${1:?usage: scripts/invoke.sh <binary> <event.json> [client-context.json]}"
EVENT="${2:?usage: scripts/invoke.sh <binary> <event.json> [client-context.json]}"
CC="${3:-}"
BIN="$ROOT/target/${PROFILE:-debug}/$FN"

case "$(uname -m)" in
  aarch64 | arm64) ARCH=arm64 ;;
  *) ARCH=x86_64 ;;
esac
RIE="$(ls "$ROOT"/.venv/lib/python3*/site-packages/samcli/local/rapid/aws-lambda-rie-"$ARCH" 2>/dev/null | head -n1 || true)"
[[ -x "$RIE" ]] || { echo "aws-lambda-rie not found in .venv (run: make tools)" >&2; exit 1; }
[[ -x "$BIN" ]] || { echo "no binary $BIN (cargo build --bin $FN)" >&2; exit 1; }
[[ -f "$EVENT" ]] || { echo "no event file $EVENT" >&2; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
PORT="$(free_port)"
API_PORT="$(free_port)"
LOG="$(mktemp)"
env -i PATH="$PATH" HOME="${HOME:-/tmp}" \
  AWS_REGION="${AWS_REGION:-us-east-1}" AWS_EC2_METADATA_DISABLED=true \
  AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
  AWS_LAMBDA_FUNCTION_NAME="$FN" AWS_LAMBDA_LOG_LEVEL="${AWS_LAMBDA_LOG_LEVEL:-INFO}" \
  EXTENSION_BACKEND="${EXTENSION_BACKEND:-embedded}" \
  INTEGRATOR_EXTENSION_SYSTEM_TOKEN="${INTEGRATOR_EXTENSION_SYSTEM_TOKEN:-local-dev-token}" \
  "$RIE" --runtime-interface-emulator-address "127.0.0.1:$PORT" \
  --runtime-api-address "127.0.0.1:$API_PORT" "$BIN" >"$LOG" 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; rm -f "$LOG"' EXIT

URL="http://127.0.0.1:$PORT/2015-03-31/functions/function/invocations"
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  sleep 0.1
done
HEADERS=()
[[ -n "$CC" ]] && HEADERS+=(-H "X-Amz-Client-Context: $(base64 -w0 <"$CC")")
[[ -n "${TRACE_ID:-}" ]] && HEADERS+=(-H "X-Amzn-Trace-Id: $TRACE_ID")
ANSWER="$(curl -sS --max-time 120 -XPOST "$URL" "${HEADERS[@]}" --data-binary @"$EVENT")"
sleep 0.2 # the emulator writes END/REPORT just after the answer
cat "$LOG"
echo "--- answer"
printf '%s\n' "$ANSWER"
