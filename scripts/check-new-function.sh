#!/usr/bin/env bash
# `make test`'s check of `make new-function`: copy the repository (its tracked and new files,
# as git lists them) to a temporary directory, generate one function for every supported
# extension point there, and check that the copy is still fmt-clean, clippy-clean and that the
# functions crate's tests pass, including the generated ones. The copy builds into this
# repository's target/ (CARGO_TARGET_DIR), so the dependencies are reused when their features
# match; `-p functions` selects fewer packages than the workspace build, and in a fresh clone
# that compiles the AWS SDK tree once more (most of this check's time there).
# The temporary directory is removed whatever the outcome; the whole check is time-bounded.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/new-function-check.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT
cd "$ROOT"
git ls-files -co --exclude-standard -z \
  | grep -zv -e '^\.venv$' -e '^\.tools$' -e '^target/' \
  | tar --null -T - -cf - | tar -xf - -C "$TMP"
cd "$TMP"
i=0
for point in $(python3 -c 'import runpy; print(" ".join(runpy.run_path("scripts/new-function.py", run_name="x")["POINTS"]))'); do
  i=$((i + 1))
  python3 scripts/new-function.py "$point" "generated${point^}Fn" >/dev/null
done
python3 scripts/new-function.py preMap "generatedPreMapFn" >/dev/null 2>&1 \
  && { echo "new-function: a second function with the same name was accepted" >&2; exit 1; }
echo "new-function: generated $i functions (one per extension point) in a copy"
# Every Lambda binary is a one-line `main` over the library (functions/src/bin/), and `serve`
# links every function: the copy keeps `serve` and drops the others, which would only be
# linked again (each link takes the whole dependency tree).
python3 - <<'PY'
import pathlib, re
toml = pathlib.Path("functions/Cargo.toml")
text = toml.read_text(encoding="utf-8")
kept = re.sub(r'\[\[bin\]\]\nname = "(?!serve")[^"]+"\n(?:[a-z]+ = [^\n]+\n)*\n?', "", text)
toml.write_text(kept, encoding="utf-8")
for p in pathlib.Path("functions/src/bin").glob("*.rs"):
    if p.name != "serve.rs":
        p.unlink()
PY
export CARGO_TARGET_DIR="$ROOT/target"
timeout 1200 cargo fmt --all -- --check
# Clippy inside the build (scripts/clippy-env.sh): the copy's two crates are compiled once, linted
# with -D warnings; without clippy-driver, a separate `cargo clippy`.
source "$ROOT/scripts/clippy-env.sh"
if [[ -z "${RUSTC_WORKSPACE_WRAPPER:-}" ]]; then
  timeout 1200 cargo clippy -q -p functions --all-targets -- -D warnings
fi
timeout 1200 cargo test -q -p functions --all-targets --no-run
# The unit tests (each generated function against its fixture) and the fixture runner (the
# generated fixtures through the real dispatch path).
timeout 1200 cargo test -q -p functions --lib --test fixtures 2>&1 | tail -n 3
echo "new-function: the copy is fmt- and clippy-clean and its tests pass"
