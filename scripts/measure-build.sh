#!/usr/bin/env bash
# Measures `make build` as a new user meets it: a fresh clone (of HEAD) in a temporary
# directory, its own empty target directory and tools venv, then `make build STAGE=<stage>`
# (every function binary in one cargo-lambda build, arm64) timed apart from the tool install.
# Writes the figures between the build markers of docs/BENCHMARKS.md (kept by `make bench`):
# the measured stage's row and binary sizes; the other stage's row is kept from its last run.
# The cargo registry (~/.cargo/registry) is shared with this checkout: downloads are not timed.
#   bash scripts/measure-build.sh              (STAGE=dev, the default: ~4-5 min on 2 cores)
#   STAGE=prod bash scripts/measure-build.sh   (fat LTO: ~11-13 min)
set -euo pipefail
STAGE=${STAGE:-dev}
case "$STAGE" in dev|prod) ;; *) echo "measure-build: STAGE must be dev or prod" >&2; exit 2 ;; esac
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d /tmp/measure-build.XXXXXX)"
trap 'rm -rf "$work"' EXIT
git clone -q "$ROOT" "$work/repo"
cd "$work/repo"
commit=$(git rev-parse --short HEAD)
t0=$(date +%s)
make tools >"$work/tools.log" 2>&1
t1=$(date +%s)
make build STAGE="$STAGE" 2>&1 | tee "$work/build.log" | grep -E '^build.sh:' || true
t2=$(date +%s)
[[ -f .aws-sam/build/template.yaml ]] || { echo "measure-build: make build failed (log: $work/build.log)"; tail -30 "$work/build.log"; exit 1; }
bins=$(find target/lambda -name bootstrap | wc -l)
sizes=$(for d in target/lambda/*/; do b=$(basename "$d"); printf '%s %s\n' "$b" "$(stat -c %s "$d/bootstrap")"; done)
zips=$(cd target/lambda && for d in */; do b=${d%/}; (cd "$b" && zip -q -9 "$work/$b.zip" bootstrap) && printf '%s %s\n' "$b" "$(stat -c %s "$work/$b.zip")"; done)
python3 - "$ROOT/docs/BENCHMARKS.md" "$commit" "$((t1 - t0))" "$((t2 - t1))" "$bins" "$(nproc)" "$(rustc --version)" "$sizes" "$zips" "$STAGE" <<'PY'
import re, sys
path, commit, tools, build, bins, cores, rustc, sizes, zips, stage = sys.argv[1:]
size = {k: int(v) for k, v in (l.split() for l in sizes.splitlines() if l.strip())}
zipd = {k: int(v) for k, v in (l.split() for l in zips.splitlines() if l.strip())}
baseline = 1178  # `sam build` (one cargo build per function), measured cold on this machine before the change
profile = {"dev": "lambda-dev", "prod": "release"}[stage]
label = {"dev": "`make build` (STAGE=dev, the default; profile `lambda-dev`, no LTO)",
         "prod": "`make build STAGE=prod` (profile `release`, fat LTO)"}
text = open(path, encoding="utf-8").read()
b, e = text.find("<!-- build:begin"), text.find("<!-- build:end -->")
old = text[b:e] if b >= 0 and e > b else ""
largest = max(size, key=size.get)
row = (f"| {label[stage]} | **{build} s** | {int(build) / baseline:.2f}× | `{largest}` {size[largest] / 1e6:.2f} MB "
       f"| {max(zipd.values()) / 1e6:.2f} MB | `{commit}` |")
rows = {}
for st in ("dev", "prod"):
    m = re.search(r"^\| " + re.escape(label[st]) + r" \|.*$", old, re.M)
    rows[st] = m.group(0) if m else f"| {label[st]} | not measured yet | | | | |"
rows[stage] = row
sizes_rows = "\n".join(
    f"| `{k}` | {size[k] / 1e6:.2f} MB | {zipd.get(k, 0) / 1e6:.2f} MB |" for k in sorted(size)
)
block = f"""<!-- build:begin (written by scripts/measure-build.sh) -->
## 8. `make build`, cold, from a fresh clone

`STAGE=<stage> scripts/measure-build.sh`: `git clone`, `make tools` (the venv with cargo-lambda;
{tools} s in the last run, not counted), then `make build STAGE=<stage>`: one `cargo lambda build --arm64` for all {bins}
function binaries and a built template whose functions point at them
(`.aws-sam/build/template.yaml`, what `sam deploy` reads). Empty target directory; the cargo
registry already downloaded. {cores} cores, {rustc}. Target: ≤ 0.33× of `sam build`.

The dev stage (what `make build` and `make deploy` do by default) builds without LTO: every
dependency is compiled to machine code once and each binary is a plain link. The prod stage keeps
fat LTO, which re-optimizes the whole program, AWS SDK included, once per binary (~78 s each on
this machine, 14 times): slower to build, ~2.6 MB smaller binaries, and the profile `make bench`
measures against the size targets (binary ≤ 8 MB, zip ≤ 4 MB).

| build | time cold | × `sam build` | largest binary (aarch64) | largest zip | commit |
|---|---:|---:|---|---:|---|
| before: `sam build` (one cargo build per function, each with its own fat-LTO link and dependency build) | 1178 s | 1.00× | | | |
{rows["dev"]}
{rows["prod"]}

Binaries of the last run (STAGE={stage}, profile `{profile}`, `{commit}`):

| binary (aarch64) | bootstrap | zip |
|---|---|---|
{sizes_rows}
<!-- build:end -->"""
if old:
    text = text[:b] + block + text[e + len("<!-- build:end -->"):]
else:
    text = text.rstrip("\n") + "\n\n" + block + "\n"
open(path, "w", encoding="utf-8").write(text)
print(f"measure-build: make build STAGE={stage} {build} s cold ({bins} binaries); docs/BENCHMARKS.md updated")
PY
