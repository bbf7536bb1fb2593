#!/usr/bin/env bash
# Dependency policy (deny.toml): licenses, bans (duplicate versions, banned crates), sources.
# cargo-deny is built from crates.io once (`cargo install --locked`, ~7 min on 2 cores) into the
# git-ignored .tools/cargo-deny and reused after that. Advisories are not checked: the RustSec
# database is fetched from GitHub, which this project's machines cannot reach.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD" VERSION="0.20.2"
DIR="$ROOT/.tools/cargo-deny" && BIN="$DIR/bin/cargo-deny"
if ! [[ -x "$BIN" ]] || [[ "$("$BIN" --version 2>/dev/null)" != "cargo-deny $VERSION" ]]; then
    echo "deny.sh: installing cargo-deny $VERSION into .tools/cargo-deny" >&2
    mkdir -p "$ROOT/.tools"
    # One install at a time (make test and CI on the same tree).
    exec 8>"$ROOT/.tools/.deny-lock"
    command -v flock >/dev/null 2>&1 && flock 8
    if ! [[ -x "$BIN" ]] || [[ "$("$BIN" --version 2>/dev/null)" != "cargo-deny $VERSION" ]]; then
        cargo install --locked --quiet "cargo-deny@$VERSION" --root "$DIR"
    fi
fi
[[ "${1:-}" == "--install-only" ]] && exit 0
"$BIN" check licenses bans sources
