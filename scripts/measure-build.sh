#!/usr/bin/env bash
# Measures `make build` as a new user meets it: a fresh clone (of HEAD) in a temporary
# directory, its own empty target directory and tools venv, then `make build` (every function
# binary in one cargo-lambda build, release, arm64) timed apart from the tool install. Writes
# the figures between the build markers of docs/BENCHMARKS.md (kept by `make bench`).
# The cargo registry (~/.cargo/registry) is shared with this checkout: downloads are not timed.
#   bash scripts/measure-build.sh        (~10-20 min on 2 cores)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d /tmp/measure-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
git clone -q "$ROOT" "$work/repo"
cd "$work/repo"
commit=$(git rev-parse --short HEAD)
t0=$(date +%s)
make tools >"$work/tools.log" 2>&1
t1=$(date +%s)
make build 2>&1 | tee "$work/build.log" | grep -E '^build.sh:' || true
t2=$(date +%s)
[[ -f .aws-sam/build/template.yaml ]] || { echo "measure-build: make build failed (log: $work/build.log)"; tail -30 "$work/build.log"; exit 1; }
bins=$(find target/lambda -name bootstrap | wc -l)
sizes=$(for d in target/lambda/*/; do b=$(basename "$d"); printf '%s %s\n' "$b" "$(stat -c %s "$d/bootstrap")"; done)
zips=$(cd target/lambda && for d in */; do b=${d%/}; (cd "$b" && zip -q -9 "$work/$b.zip" bootstrap) && printf '%s %s\n' "$b" "$(stat -c %s "$work/$b.zip")"; done)
python3 - "$ROOT/docs/BENCHMARKS.md" "$commit" "$((t1 - t0))" "$((t2 - t1))" "$bins" "$(nproc)" "$(rustc --version)" "$sizes" "$zips" <<'PY'
import sys
path, commit, tools, build, bins, cores, rustc, sizes, zips = sys.argv[1:]
size = dict(l.split() for l in sizes.splitlines() if l.strip())
zipd = dict(l.split() for l in zips.splitlines() if l.strip())
baseline = 1178  # `sam build` (one cargo build per function), measured cold on this machine before the change
rows = "\n".join(
    f"| `{b}` | {int(size[b]) / 1e6:.2f} MB | {int(zipd.get(b, 0)) / 1e6:.2f} MB |" for b in sorted(size)
)
block = f"""<!-- build:begin (written by scripts/measure-build.sh) -->
## 7. `make build`, cold, from a fresh clone

`scripts/measure-build.sh` at commit `{commit}`: `git clone`, `make tools` (the venv with
cargo-lambda; {tools} s, not counted), then `make build`: one `cargo lambda build --release --arm64`
for all {bins} function binaries and a built template whose functions point at them
(`.aws-sam/build/template.yaml`, what `sam deploy` reads). Empty target directory; the cargo
registry was already downloaded. {cores} cores, {rustc}.

| | time |
|---|---|
| before: `sam build` (one cargo build per function, each with its own fat-LTO link and dependency build) | {baseline} s |
| after: `make build` | **{build} s** ({int(build) / baseline:.2f}× of before; target ≤ 0.33×) |

| binary (aarch64) | bootstrap | zip |
|---|---|---|
{rows}
<!-- build:end -->"""
text = open(path, encoding="utf-8").read()
b, e = text.find("<!-- build:begin"), text.find("<!-- build:end -->")
if b >= 0 and e > b:
    text = text[:b] + block + text[e + len("<!-- build:end -->"):]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w", encoding="utf-8").write(text)
print(f"measure-build: make build {build} s cold ({bins} binaries); docs/BENCHMARKS.md updated")
PY
