#!/usr/bin/env bash
# Dependency policy (deny.toml): licenses, bans (duplicate versions, banned crates), sources.
# cargo-deny is built from crates.io once (`cargo install --locked`, unoptimized: ~3 CPU-min) into the
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
        # Built without optimization: cargo-deny's own release profile (fat LTO, one codegen
        # unit) took ~7 min of a 2-core machine; unoptimized it took 179 CPU-s here (267 at
        # opt-level 1 without LTO) and still checks this workspace in ~3 s. Only the tool's
        # build changes; its checks are the same.
        CARGO_PROFILE_RELEASE_OPT_LEVEL=0 CARGO_PROFILE_RELEASE_LTO=off \
            CARGO_PROFILE_RELEASE_CODEGEN_UNITS=256 CARGO_PROFILE_RELEASE_DEBUG=false \
            cargo install --locked --quiet "cargo-deny@$VERSION" --root "$DIR"
    fi
fi
[[ "${1:-}" == "--install-only" ]] && exit 0
"$BIN" check licenses bans sources
