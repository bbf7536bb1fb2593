#!/usr/bin/env bash
# Install the Python-distributed dev tools into a git-ignored virtualenv at the repo root:
#
#   .venv/bin/moto_server   moto[server]   local AWS endpoints for the Lambda/IAM tests
#   .venv/bin/cfn-lint      (via moto)     lints template.yaml
#   .venv/bin/cargo-lambda  cargo-lambda   cross-builds the `bootstrap` binaries (ships zig)
#   .venv/bin/sam           aws-sam-cli    `sam validate --lint`, `sam local invoke` (WITH_SAM=0 skips)
#
# Idempotent: a stamp file records what was installed; a second run only checks it (milliseconds).
# Works on a fresh machine: uv is bootstrapped into .tools/uv with the machine's python3/pip; if
# uv cannot be used, a plain `python3 -m venv` + pip install is the fallback.
#
# Usage: scripts/tools.sh            install (or verify) everything
#        WITH_SAM=0 scripts/tools.sh  leave aws-sam-cli out (~90 MB of the ~700 MB venv)
#        FORCE=1 scripts/tools.sh     rebuild .venv from scratch
#        TOOLS_NO_UV=1 scripts/tools.sh  skip uv, use python3 -m venv + pip
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

UV_VERSION="0.13.9"
MOTO_SPEC="moto[server]==5.2.5"
CARGO_LAMBDA_SPEC="cargo-lambda==1.9.2"
SAM_SPEC="aws-sam-cli==1.170.0"
WITH_SAM="${WITH_SAM:-1}"
FORCE="${FORCE:-0}"

VENV="$ROOT/.venv"
TOOLS="$ROOT/.tools"
STAMP="$VENV/.tools-stamp"

# The registries are reached through the machine's CA bundle (TLS-intercepting proxies included).
if [[ -z "${SSL_CERT_FILE:-}" && -r /etc/ssl/certs/ca-certificates.crt ]]; then
    export SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
fi
export UV_NATIVE_TLS="${UV_NATIVE_TLS:-1}"
# Never let uv fetch a Python build of its own: use the machine's python3.
export UV_PYTHON_DOWNLOADS=never
export PIP_DISABLE_PIP_VERSION_CHECK=1

now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
T0="$(now)"
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }
log() { echo "tools.sh: $*" >&2; }

specs=("$MOTO_SPEC" "$CARGO_LAMBDA_SPEC")
bins=(cfn-lint moto_server cargo-lambda)
if [[ "$WITH_SAM" != "0" ]]; then
    specs+=("$SAM_SPEC")
    bins+=(sam)
fi

# --- fast path: everything asked for is already installed -----------------------------------
up_to_date() {
    [[ "$FORCE" == "0" && -f "$STAMP" && -x "$VENV/bin/python" ]] || return 1
    local s b
    for s in "${specs[@]}"; do grep -qxF "$s" "$STAMP" || return 1; done
    for b in "${bins[@]}"; do [[ -x "$VENV/bin/$b" ]] || return 1; done
    # The interpreter the venv points at must still exist (e.g. after a python upgrade).
    "$VENV/bin/python" -c '' 2>/dev/null
}

if up_to_date; then
    log "up to date (${specs[*]}) in $(elapsed "$T0")"
    exit 0
fi

# Serialise concurrent runs (make test and CI on the same tree), then re-check.
mkdir -p "$TOOLS"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$TOOLS/.lock"
    flock 9
    if up_to_date; then
        log "up to date after waiting for another run, in $(elapsed "$T0")"
        exit 0
    fi
fi

PY="$(command -v python3 || true)"
[[ -n "$PY" ]] || { log "python3 not found"; exit 1; }
# Resolve pyenv-style shims to the real interpreter so the venv does not depend on them.
PY="$("$PY" -c 'import sys; print(sys.executable)')"
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
    || { log "python >= 3.9 needed, found $("$PY" --version 2>&1)"; exit 1; }
log "installing ${specs[*]} into .venv with $("$PY" --version 2>&1)"

if [[ "$FORCE" != "0" ]] || { [[ -e "$VENV" ]] && ! "$VENV/bin/python" -c '' 2>/dev/null; }; then
    rm -rf "$VENV"
fi

# --- uv ---------------------------------------------------------------------------------------
find_uv() {
    if [[ -x "$TOOLS/uv/bin/uv" ]]; then
        echo "$TOOLS/uv/bin/uv"
    elif command -v uv >/dev/null 2>&1; then
        command -v uv
    else
        return 1
    fi
}

install_with_uv() {
    local t uv
    if ! uv="$(find_uv)"; then
        t="$(now)"
        rm -rf "$TOOLS/uv"
        "$PY" -m pip install --quiet --disable-pip-version-check --no-warn-script-location \
            --target "$TOOLS/uv" "uv==$UV_VERSION" || return 1
        uv="$TOOLS/uv/bin/uv"
        [[ -x "$uv" ]] || return 1
        log "uv $UV_VERSION installed into .tools/uv in $(elapsed "$t")"
    fi
    # A bare --target install has no entry point wrapper: the binary runs as is.
    "$uv" --version >/dev/null || return 1

    t="$(now)"
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$uv" venv --quiet --python "$PY" "$VENV" || return 1
    fi
    "$uv" pip install --python "$VENV/bin/python" "${specs[@]}" || return 1
    log "uv pip install done in $(elapsed "$t")"
}

install_with_pip() {
    local t
    t="$(now)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet "${specs[@]}"
    log "pip install done in $(elapsed "$t")"
}

if [[ "${TOOLS_NO_UV:-0}" != "0" ]] || ! install_with_uv; then
    [[ "${TOOLS_NO_UV:-0}" != "0" ]] || log "uv failed; falling back to python3 -m venv + pip"
    install_with_pip
fi

for b in "${bins[@]}"; do
    [[ -x "$VENV/bin/$b" ]] || { log "missing after install: .venv/bin/$b"; exit 1; }
done
# Keep what the stamp already lists (e.g. sam from an earlier WITH_SAM=1 run) plus this run.
{
    [[ -f "$STAMP" ]] && cat "$STAMP"
    printf '%s\n' "${specs[@]}"
} | sort -u >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"

log "$("$VENV/bin/cfn-lint" --version 2>&1), $("$VENV/bin/cargo-lambda" lambda --version 2>&1 | awk '{print $1, $2}')"
log "done in $(elapsed "$T0")"
