#!/usr/bin/env bash
# Start, continue or inspect an integration run (shared/src/jobs/runs.rs).
#
#   scripts/runs.sh start ID [PARAMS_JSON] [ONBOARDING]   (make run-integration ID=…)
#   scripts/runs.sh continue RUN                            (make continue-run RUN=…)
#   scripts/runs.sh status RUN                              (make run-status RUN=…)
#
# Locally (default) it calls the `make serve` server: POST/GET on /runs with the system token
# (URL, TOKEN). With STACK set it invokes the deployed worker function <STACK>-worker with the
# AWS CLI instead (your credentials and region).
set -euo pipefail
URL="${URL:-http://127.0.0.1:8080}"
TOKEN="${TOKEN:-local-dev-token}"
STACK="${STACK:-}"
cmd="${1:-}"; arg="${2:-}"
[[ -n "$cmd" && -n "$arg" ]] || { sed -n '4,6p' "$0" >&2; exit 2; }

case "$cmd" in
  start)
    params="${3:-}"; [[ -n "$params" ]] || params='{}'
    onboarding="${4:-false}"
    fn=startRun
    options="{\"integration\":\"$arg\",\"onboarding\":$onboarding,\"params\":$params}" ;;
  continue) fn=continueRun; options="{\"runId\":\"$arg\"}" ;;
  status) fn=runStatus; options="{\"runId\":\"$arg\"}" ;;
  *) sed -n '4,6p' "$0" >&2; exit 2 ;;
esac

if [[ -n "$STACK" ]]; then
  out="$(mktemp)"; trap 'rm -f "$out"' EXIT
  aws lambda invoke --function-name "$STACK-worker" --cli-binary-format raw-in-base64-out \
    --payload "{\"diy\":true,\"function\":\"$fn\",\"options\":$options}" "$out" >/dev/null
  cat "$out"; echo
  exit 0
fi

auth=(-H "Authorization: Bearer $TOKEN")
case "$cmd" in
  start) curl -sS --fail-with-body "${auth[@]}" -H 'content-type: application/json' -d "$options" "$URL/runs" ;;
  continue) curl -sS --fail-with-body -X POST "${auth[@]}" "$URL/runs/$arg/continue" ;;
  status) curl -sS --fail-with-body "${auth[@]}" "$URL/runs/$arg" ;;
esac
echo
