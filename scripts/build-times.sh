#!/usr/bin/env bash
# Cold `make test` build time, before and after the lean-build choices (for `make bench`).
#
#   bash scripts/build-times.sh [OUT.json]        (default: target/bench/build-times.json)
#   env: BUILD_TIMES_DIR   copies + their target dirs (default: target/bench/build-times)
#        KEEP=1            keep the copies' target dirs (several GB each; deleted by default)
#        BUILD_TIMES_STEP_TIMEOUT   seconds per cargo step before it is killed (default 3600)
#
# "Cold make test build" = on an empty target dir, the compile steps of `make test`, timed
# (wall seconds) one after the other, and in total:
#   clippy       cargo clippy --workspace --all-targets -- -D warnings
#                ('before': plain `cargo clippy --workspace --all-targets`, so that a warning in
#                code built against the default features cannot fail the measurement; the
#                compile work is the same)
#   build_bins   cargo build --workspace --bins
#   test_no_run  cargo test --workspace --no-run
#                (`make test` compiles doctests when they run; not included here)
# `cargo fetch` runs first for each variant, untimed: the registry cache (~/.cargo) stays warm
# and no download time is counted. fmt-check, cfn-lint and running the tests are not builds.
#
# Variants, both from ONE snapshot of the working tree (`git ls-files -co --exclude-standard`:
# tracked + untracked non-ignored files) copied to $BUILD_TIMES_DIR/<variant>/src, each built in
# its own fresh $BUILD_TIMES_DIR/<variant>/target:
#   after  (lean)              the workspace as it is.
#   before (default features)  the root Cargo.toml's [workspace.dependencies] with the default
#                              features restored where the project turned them off. Exactly
#                              these 9 entries change (feature lists are kept):
#     aws-config          default-features = false -> true  (features kept: behavior-version-latest,
#                         rt-tokio; brings back default-https-client = rustls on aws-lc-rs, the
#                         aws-lc-sys C build next to our ring provider, plus sso, credentials-process)
#     aws-sdk-dynamodb    default-features = false -> true  (rt-tokio kept; default-https-client)
#     aws-sdk-kms         default-features = false -> true  (rt-tokio kept; default-https-client)
#     aws-sdk-sqs         default-features = false -> true  (rt-tokio kept; default-https-client)
#     aws_lambda_events   default-features = false -> true  (sqs kept; all event types)
#     lambda_runtime      default-features = false -> true  (tracing kept)
#     lambda_http         default-features = false -> true  (apigw_http kept; all event sources)
#     tracing-subscriber  default-features = false -> true, features + "env-filter"
#                         (fmt, json, ansi kept)
#     tokio               features = [rt-multi-thread, macros, net, time, signal, sync]
#                         -> features = ["full"]
#   The rewrite matches each entry's line by name inside [workspace.dependencies], fails loudly
#   if one is missing or not in the expected shape, and checks the result with tomllib.
#
# Output JSON: {"nproc","rustc","cargo",...,"variants":[{"name","changes","total_s","cpu_s","steps":
# {"clippy","build_bins","test_no_run"},"compiled" (Compiling lines of all three steps),
# "distinct_crates","aws_lc_sys","openssl_sys","ring",...}, ...]}. A variant that fails (rewrite,
# fetch or a cargo step) gets an "error" field instead of aborting the run; the script then still
# writes the JSON and exits 0 (it exits non-zero only on usage/setup errors). Every cargo step
# runs under `timeout` in the foreground of this script; nothing is left running on exit.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
die() { echo "build-times: $*" >&2; exit 2; }
abspath() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$PWD/$1" ;; esac; }

(($# <= 1)) || die "usage: bash scripts/build-times.sh [OUT.json]"
OUT="$(abspath "${1:-$ROOT/target/bench/build-times.json}")"
DIR="$(abspath "${BUILD_TIMES_DIR:-$ROOT/target/bench/build-times}")"
DIR="${DIR%/}"
STEP_TIMEOUT="${BUILD_TIMES_STEP_TIMEOUT:-3600}"
KEEP="${KEEP:-0}"
[[ $STEP_TIMEOUT =~ ^[0-9]+$ ]] || die "BUILD_TIMES_STEP_TIMEOUT must be a number of seconds"
[[ -n $DIR && $DIR != / && "$ROOT/" != "$DIR/"* ]] || die "BUILD_TIMES_DIR=$DIR would contain the repository"
if [[ "$DIR/" == "$ROOT/"* ]] && ! git -C "$ROOT" check-ignore -q "$DIR"; then
  die "BUILD_TIMES_DIR=$DIR is inside the repository but not git-ignored (the copies would copy themselves)"
fi
for t in git python3 tar timeout flock cargo awk du; do
  command -v "$t" >/dev/null || die "$t is required"
done
cargo clippy --version >/dev/null 2>&1 || die "clippy is required (rustup component add clippy)"

mkdir -p "$DIR" "$(dirname "$OUT")"
exec 9>"$DIR/.lock"
flock -n 9 || die "another build-times run is using $DIR"

VARIANTS=(before after)
declare -A LABEL=([before]="before (default features)" [after]="after (lean)")
child=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $child ]]; then
    kill -TERM "$child" 2>/dev/null || true   # timeout forwards it to cargo's process group
    wait "$child" 2>/dev/null || true
  fi
  if [[ $KEEP != 1 ]]; then
    for v in "${VARIANTS[@]}"; do rm -rf "${DIR:?}/$v/target"; done
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# cargo with this variant's target dir, in its own copy, under a timeout. No MAKEFLAGS (a make
# jobserver would cap the parallelism), no rustc wrapper (sccache would make it warm).
cargo_in() { # vdir log cargo-args...
  local vdir=$1 log=$2 rc=0
  shift 2
  echo "+ cargo $*" >>"$log"
  (cd "$vdir/src" && exec env -u MAKEFLAGS -u MFLAGS -u CARGO_MAKEFLAGS \
    CARGO_TARGET_DIR="$vdir/target" RUSTC_WRAPPER= CARGO_BUILD_RUSTC_WRAPPER= \
    CARGO_TERM_COLOR=never CARGO_TERM_PROGRESS_WHEN=never \
    timeout --kill-after=30 "$STEP_TIMEOUT" cargo "$@") >>"$log" 2>&1 &
  child=$!
  wait "$child" || rc=$?
  child=""
  return "$rc"
}

# CPU seconds (user + sys) of every process this shell has waited for, cargo's rustc included.
# `times` must run in this shell, not in a $(...) subshell (which reports its own, empty,
# children), hence a file.
save_cpu() { times >"$1"; } # file
cpu_of() { # file
  awk 'NR == 2 { s = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); s += a[1] * 60 + a[2] }
    printf "%.2f", s }' "$1"
}
# Busy CPU seconds of the whole machine (/proc/stat: all but idle and iowait), to tell how much
# of it was someone else's (other load stretches the wall times).
machine_busy() { awk -v hz="$(getconf CLK_TCK)" '$1 == "cpu" { printf "%.2f", ($2 + $3 + $4 + $7 + $8 + $9) / hz }' /proc/stat; }

fail() { # vdir headline [log]
  local vdir=$1 head=$2 log=${3:-}
  {
    echo "$head"
    if [[ -n $log && -f $log ]]; then
      if grep -q '^error' "$log"; then grep -E -A 8 '^error' "$log" | head -n 40; else tail -n 20 "$log"; fi
    fi
  } >"$vdir/error.txt"
  echo "build-times: ${LABEL[$(basename "$vdir")]}: $head (see $vdir/error.txt)" >&2
}

# One snapshot of the working tree for both variants (files deleted but still tracked are skipped).
echo "build-times: copying the source tree to $DIR/{before,after}/src" >&2
for v in "${VARIANTS[@]}"; do
  rm -rf "${DIR:?}/$v"
  mkdir -p "$DIR/$v"
done
mkdir -p "$DIR/after/src"
(cd "$ROOT" && git ls-files -co --exclude-standard -z |
  while IFS= read -r -d '' f; do if [[ -e $f || -L $f ]]; then printf '%s\0' "$f"; fi; done |
  tar --null -T - -cf -) | tar -xf - -C "$DIR/after/src"
[[ -f $DIR/after/src/Cargo.toml ]] || die "the copy has no Cargo.toml"
cp -a "$DIR/after/src" "$DIR/before/src"
echo '[]' >"$DIR/after/changes.json"

# The 'before' rewrite of the root Cargo.toml.
if ! python3 - "$DIR/before/src/Cargo.toml" "$DIR/before/changes.json" >"$DIR/before/rewrite.log" 2>&1 <<'PY'; then
import json, re, sys, tomllib

path, changes_path = sys.argv[1], sys.argv[2]
text = open(path, encoding="utf-8").read()
head = re.search(r"(?m)^\[workspace\.dependencies\][ \t]*$", text)
if not head:
    sys.exit("rewrite: no [workspace.dependencies] section in Cargo.toml")
nxt = re.compile(r"(?m)^\[").search(text, head.end())
start, end = head.end(), (nxt.start() if nxt else len(text))
section = text[start:end]
changes = []

def entry(name):
    pat = re.compile(r"(?m)^" + re.escape(name) + r"[ \t]*=[ \t]*\{(?P<body>[^\n]*)\}[ \t]*$")
    found = list(pat.finditer(section))
    if len(found) != 1:
        sys.exit(f"rewrite: expected exactly one `{name} = {{ ... }}` line in [workspace.dependencies], found {len(found)}")
    return found[0]

def features_of(body, name):
    m = re.search(r"features[ \t]*=[ \t]*\[([^\]]*)\]", body)
    if not m:
        sys.exit(f"rewrite: `{name}` has no `features = [...]` list")
    return m, re.findall(r'"([^"]+)"', m.group(1))

def replace(name, old_body, new_body, what):
    global section
    m = entry(name)
    line = m.group(0)
    section = section[:m.start()] + line.replace(old_body, new_body, 1) + section[m.end():]
    changes.append(f"{name}: {what}")

def default_on(name, extra=()):
    body = entry(name).group("body")
    if len(re.findall(r"default-features[ \t]*=[ \t]*false", body)) != 1:
        sys.exit(f"rewrite: `{name}` does not have `default-features = false`: {{{body}}}")
    fm, feats = features_of(body, name)
    new = re.sub(r"default-features[ \t]*=[ \t]*false", "default-features = true", body)
    what = "default-features = false -> true"
    if feats:
        what += f" (features kept: {', '.join(feats)})"
    add = [f for f in extra if f not in feats]
    if add:
        fm2, _ = features_of(new, name)
        new = new.replace(fm2.group(0), "features = [" + ", ".join(f'"{f}"' for f in feats + add) + "]", 1)
        what += ", features + " + ", ".join(add)
    replace(name, body, new, what)

for crate in ["aws-config", "aws-sdk-dynamodb", "aws-sdk-kms", "aws-sdk-sqs",
              "aws_lambda_events", "lambda_runtime", "lambda_http"]:
    default_on(crate)
default_on("tracing-subscriber", extra=["env-filter"])
body = entry("tokio").group("body")
if re.search(r"default-features", body):
    sys.exit(f"rewrite: `tokio` unexpectedly sets default-features: {{{body}}}")
fm, feats = features_of(body, "tokio")
replace("tokio", body, body.replace(fm.group(0), 'features = ["full"]', 1),
        f'features = [{", ".join(feats)}] -> ["full"]')

new_text = text[:start] + section + text[end:]
deps = tomllib.loads(new_text)["workspace"]["dependencies"]
for c in ["aws-config", "aws-sdk-dynamodb", "aws-sdk-kms", "aws-sdk-sqs", "aws_lambda_events",
          "lambda_runtime", "lambda_http", "tracing-subscriber"]:
    assert deps[c].get("default-features", True) is True, c
assert "env-filter" in deps["tracing-subscriber"]["features"]
assert deps["tokio"]["features"] == ["full"]
open(path, "w", encoding="utf-8").write(new_text)
json.dump(changes, open(changes_path, "w"), indent=1)
for c in changes:
    print(c)
PY
  fail "$DIR/before" "the Cargo.toml rewrite failed" "$DIR/before/rewrite.log"
  cat "$DIR/before/rewrite.log" >&2
else
  sed 's/^/build-times: before: /' "$DIR/before/rewrite.log" >&2
fi

STEPS=(clippy build_bins test_no_run)
measure() { # variant
  local v=$1 vdir="$DIR/$1" step rc t0 t1 tt m0
  local -a args
  [[ -f $vdir/error.txt ]] && return 0
  rm -rf "${vdir:?}/target"
  : >"$vdir/steps.tsv"
  echo "build-times: ${LABEL[$v]}: cargo fetch (untimed)" >&2
  if ! cargo_in "$vdir" "$vdir/fetch.log" fetch; then
    cargo_in "$vdir" "$vdir/fetch.log" fetch --offline ||
      { fail "$vdir" "cargo fetch failed" "$vdir/fetch.log"; return 0; }
  fi
  rm -rf "${vdir:?}/target"   # cold: nothing in it but what the timed steps build
  m0=$(machine_busy)
  tt=$EPOCHREALTIME
  for step in "${STEPS[@]}"; do
    case $step in
      clippy) if [[ $v == before ]]; then args=(clippy --workspace --all-targets)
              else args=(clippy --workspace --all-targets -- -D warnings); fi ;;
      build_bins) args=(build --workspace --bins) ;;
      test_no_run) args=(test --workspace --no-run) ;;
    esac
    printf '%s\tcargo %s\n' "$step" "${args[*]}" >>"$vdir/commands.tsv"
    echo "build-times: ${LABEL[$v]}: cargo ${args[*]}" >&2
    rc=0
    save_cpu "$vdir/.cpu0"
    t0=$EPOCHREALTIME
    cargo_in "$vdir" "$vdir/$step.log" "${args[@]}" || rc=$?
    t1=$EPOCHREALTIME
    save_cpu "$vdir/.cpu1"
    printf '%s\t%s\t%s\t%s\n' "$step" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')" "$rc" \
      "$(awk -v a="$(cpu_of "$vdir/.cpu0")" -v b="$(cpu_of "$vdir/.cpu1")" 'BEGIN { printf "%.1f", b - a }')" >>"$vdir/steps.tsv"
    if ((rc != 0)); then
      if ((rc == 124 || rc == 137)); then
        fail "$vdir" "cargo ${args[*]} timed out after ${STEP_TIMEOUT} s" "$vdir/$step.log"
      else
        fail "$vdir" "cargo ${args[*]} failed (exit $rc)" "$vdir/$step.log"
      fi
      break
    fi
    echo "build-times: ${LABEL[$v]}: $step $(tail -n 1 "$vdir/steps.tsv" | cut -f2) s" >&2
  done
  awk -v a="$tt" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f\n", b - a }' >"$vdir/total_s"
  awk -v a="$m0" -v b="$(machine_busy)" 'BEGIN { printf "%.1f\n", b - a }' >"$vdir/machine_busy_s"
  du -sm "$vdir/target" 2>/dev/null | cut -f1 >"$vdir/target_mb" || true
  if [[ $KEEP != 1 ]]; then rm -rf "${vdir:?}/target"; fi   # several GB: free it before the next one
}

for v in "${VARIANTS[@]}"; do measure "$v"; done

# The JSON.
python3 - "$OUT" "$DIR" "$ROOT" "$STEP_TIMEOUT" "$KEEP" <<'PY'
import datetime, json, os, re, subprocess, sys

out, d, root, step_timeout, keep = sys.argv[1:6]
def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None
def read(p):
    try:
        return open(p, encoding="utf-8", errors="replace").read()
    except OSError:
        return None

rev = sh("git", "-C", root, "rev-parse", "--short", "HEAD")
dirty = bool(sh("git", "-C", root, "status", "--porcelain"))
STEPS = ["clippy", "build_bins", "test_no_run"]
LABEL = {"before": "before (default features)", "after": "after (lean)"}
compiling = re.compile(r"^\s*Compiling (\S+) v(\S+)", re.M)
checking = re.compile(r"^\s*Checking (\S+) v(\S+)", re.M)
variants = []
for v in ["before", "after"]:
    vd = os.path.join(d, v)
    r = {"name": LABEL[v], "changes": json.load(open(os.path.join(vd, "changes.json")))
         if os.path.exists(os.path.join(vd, "changes.json")) else None}
    cmds = dict(l.split("\t", 1) for l in (read(os.path.join(vd, "commands.tsv")) or "").splitlines() if "\t" in l)
    steps, rcs, cpu = {}, {}, {}
    for line in (read(os.path.join(vd, "steps.tsv")) or "").splitlines():
        name, secs, rc, cpus = line.split("\t")
        steps[name], rcs[name], cpu[name] = float(secs), int(rc), float(cpus)
    err = read(os.path.join(vd, "error.txt"))
    ok = err is None and all(rcs.get(s) == 0 for s in STEPS)
    total = read(os.path.join(vd, "total_s"))
    r["total_s"] = float(total) if ok and total else None
    r["steps"] = {s: steps.get(s) for s in STEPS}
    r["cpu_s"] = round(sum(cpu.values()), 1) if ok else None
    r["steps_cpu_s"] = {s: cpu.get(s) for s in STEPS}
    busy = (read(os.path.join(vd, "machine_busy_s")) or "").strip()
    # CPU the rest of the machine used meanwhile (~0 when nothing else ran; a few s of noise).
    r["other_cpu_s"] = round(float(busy) - sum(cpu.values()), 1) if ok and busy else None
    if r["other_cpu_s"] is not None and r["other_cpu_s"] > max(20.0, 0.05 * r["cpu_s"]):
        r["warning"] = (f"other processes used {r['other_cpu_s']} CPU s during this measurement: "
                        "its wall times are inflated (compare cpu_s, or re-run on an idle machine)")
    per_step, crates, checked = {}, set(), 0
    for s in STEPS:
        log = read(os.path.join(vd, s + ".log")) or ""
        found = compiling.findall(log)
        per_step[s] = len(found)
        crates.update(found)
        checked += len(checking.findall(log))
        crates.update(checking.findall(log))
    names = {n for n, _ in crates}
    r["compiled"] = sum(per_step.values())
    r["compiled_per_step"] = per_step
    r["checked"] = checked
    r["distinct_crates"] = len(crates)
    r["aws_lc_sys"] = "aws-lc-sys" in names
    r["openssl_sys"] = "openssl-sys" in names
    r["ring"] = "ring" in names
    lock = read(os.path.join(vd, "src", "Cargo.lock"))
    r["lock_packages"] = lock.count("[[package]]") if lock else None
    mb = (read(os.path.join(vd, "target_mb")) or "").strip()
    r["target_mb"] = int(mb) if mb.isdigit() else None
    r["commands"] = cmds
    r["dir"] = vd
    if not ok:
        r["error"] = (err or "a step did not finish").strip()
    variants.append(r)

res = {
    "what": "cold `make test` build: clippy + build --bins + test --no-run on an empty target dir, "
            "registry cache warm (cargo fetch untimed), wall seconds",
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    "git": f"{rev}{' + uncommitted changes' if dirty else ''}" if rev else None,
    "nproc": int(sh("nproc") or os.cpu_count()),
    "rustc": sh("rustc", "--version"),
    "cargo": sh("cargo", "--version"),
    "clippy": sh("cargo", "clippy", "--version"),
    "step_timeout_s": int(step_timeout),
    "notes": "total_s/steps: wall seconds (what a developer waits); cpu_s/steps_cpu_s: user+sys "
             "seconds of cargo and everything it ran (less sensitive to other load on the machine); "
             "other_cpu_s: busy CPU seconds of the rest of the machine meanwhile (if large, the "
             "wall times are stretched by it); "
             "compiled: `Compiling` lines of the three steps (clippy prints `Checking` for the "
             "crates it only checks: see checked); 'before' clippy runs without -D warnings",
    "target_dirs_kept": keep == "1",
    "variants": variants,
}
b, a = variants[0]["total_s"], variants[1]["total_s"]
if a and b:
    res["saved_s"] = round(b - a, 1)
    res["before_over_after"] = round(b / a, 2)
tmp = out + ".tmp"
with open(tmp, "w") as f:
    json.dump(res, f, indent=2)
    f.write("\n")
os.replace(tmp, out)
for r in variants:
    print(f"build-times: {r['name']}: " + (f"{r['total_s']} s, {r['compiled']} compiled" if r["total_s"] is not None
          else "ERROR: " + r["error"].splitlines()[0]), file=sys.stderr)
    if r.get("warning"):
        print(f"build-times: WARNING: {r['name']}: {r['warning']}", file=sys.stderr)
if a and b:
    print(f"build-times: before - after = {res['saved_s']} s (x{res['before_over_after']})", file=sys.stderr)
print(f"build-times: wrote {out}", file=sys.stderr)
PY
