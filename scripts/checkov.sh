#!/usr/bin/env bash
# checkov (static security checks of template.yaml), in its own venv under .venv/checkov: its
# pinned dependencies would fight moto's and aws-sam-cli's in the main one. Installed on first
# use (uv from scripts/tools.sh when there, else pip), then run with .checkov.yaml, which lists
# every skipped check with the reason it does not apply.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SPEC="checkov==3.3.30"
VENV="$ROOT/.venv/checkov"
STAMP="$VENV/.stamp"
if [[ -z "${SSL_CERT_FILE:-}" && -r /etc/ssl/certs/ca-certificates.crt ]]; then
    export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
fi
export UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}" UV_PYTHON_DOWNLOADS=never PIP_DISABLE_PIP_VERSION_CHECK=1

if ! { [[ -x "$VENV/bin/checkov" ]] && grep -qxF "$SPEC" "$STAMP" 2>/dev/null; }; then
    rm -rf "$VENV"
    PY="$(command -v python3)"
    UV="$ROOT/.tools/uv/bin/uv"
    if [[ -x "$UV" ]] && "$UV" venv --quiet --python "$PY" "$VENV" \
        && "$UV" pip install --quiet --python "$VENV/bin/python" "$SPEC"; then
        :
    else
        rm -rf "$VENV"
        "$PY" -m venv "$VENV"
        "$VENV/bin/python" -m pip install --quiet "$SPEC"
    fi
    echo "$SPEC" >"$STAMP"
fi

"$VENV/bin/checkov" --config-file .checkov.yaml --file "${CHECKOV_FILE:-template.yaml}"
