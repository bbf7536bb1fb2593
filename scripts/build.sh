#!/usr/bin/env bash
# make build: every function binary in ONE cargo-lambda build (arm64), then a copy of
# template.yaml whose functions point at those binaries, where `sam deploy` looks for a built
# template (.aws-sam/build/template.yaml). Same binaries and outputs as `sam build`, which
# would run one cargo build per function (each paying the fat-LTO link of the AWS SDK and,
# in SAM's scratch directories, the dependencies again).
#
# The cargo profile follows the stage (STAGE=dev, the default, or prod): dev builds with
# `lambda-dev` (no LTO: each dependency compiled once, 14 plain links; ~4 min cold on 2 cores,
# binaries 9.3-9.9 MB), prod with `release` (fat LTO, re-optimizing the whole program once per
# binary: ~11 min cold, binaries 6.6-7.2 MB). PROFILE=<cargo profile> overrides the choice.
#
#   bash scripts/build.sh                    build (dev) + template
#   STAGE=prod bash scripts/build.sh         build (prod) + template
#   TEMPLATE_ONLY=1 bash scripts/build.sh    only the template (binaries already built)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
OUT=.aws-sam/build
if [[ "${TEMPLATE_ONLY:-0}" == 0 ]]; then
    bins=$(python3 - <<'PY'
import re
s = open("template.yaml", encoding="utf-8").read()
print(" ".join(sorted(set(re.findall(r"^\s+Binary: ([\w-]+)\s*$", s, re.M)))))
PY
)
    args=()
    for b in $bins; do args+=(--bin "$b"); done
    start=$(date +%s)
    case "${STAGE:-dev}" in
        dev) profile=${PROFILE:-lambda-dev} ;;
        prod) profile=${PROFILE:-release} ;;
        *) echo "build.sh: STAGE must be dev or prod, not '${STAGE}'" >&2; exit 2 ;;
    esac
    cargo lambda build --profile "$profile" --arm64 -p functions "${args[@]}"
    echo "build.sh: $(wc -w <<<"$bins") binaries in one build (profile $profile, stage ${STAGE:-dev}), $(( $(date +%s) - start )) s"
fi
mkdir -p "$OUT"
python3 - "$OUT" <<'PY'
import os, re, sys
out = sys.argv[1]
text = open("template.yaml", encoding="utf-8").read()
# Each function resource: drop its BuildMethod/BuildProperties (nothing left for SAM to build)
# and point CodeUri at the directory holding its bootstrap.
blocks = re.split(r"(?m)^(?=  [A-Za-z0-9]+:\n)", text)
rel = os.path.relpath("target/lambda", out)
count = 0
for i, b in enumerate(blocks):
    m = re.search(r"^      BuildProperties:\n        Binary: ([\w-]+)\n", b, re.M)
    if not m or "Type: AWS::Serverless::Function" not in b:
        continue
    binary = m.group(1)
    if not os.path.isfile(f"target/lambda/{binary}/bootstrap"):
        sys.exit(f"build.sh: target/lambda/{binary}/bootstrap is missing (run without TEMPLATE_ONLY)")
    b = b.replace(m.group(0), "")
    b = re.sub(r"(?m)^      BuildMethod: rust-cargolambda\n", "", b)
    b = re.sub(r"(?m)^    Metadata:\n(?=    \S)", "", b)
    b = b.replace("      CodeUri: .\n", f"      CodeUri: {rel}/{binary}\n", 1)
    blocks[i] = b
    count += 1
open(os.path.join(out, "template.yaml"), "w", encoding="utf-8").write("".join(blocks))
print(f"build.sh: {out}/template.yaml: {count} functions point at target/lambda/<binary>/bootstrap")
PY
