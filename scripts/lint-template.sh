#!/usr/bin/env bash
# Lint template.yaml as deployed with each setting of StaticEgressIp (its VPC resources exist
# only with "true"): cfn-lint, `sam validate --lint`, the least-privilege rules
# (scripts/check-iam.py) and checkov (.checkov.yaml; scripts/checkov.sh installs it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
mkdir -p target
python3 - <<'PY'
import re
s = open("template.yaml", encoding="utf-8").read()
pat = re.compile(r'(  StaticEgressIp:\n    Type: String\n    Default: )"false"')
assert pat.search(s), "StaticEgressIp parameter not found"
open("target/template-static-ip.yaml", "w", encoding="utf-8").write(pat.sub(r'\1"true"', s))
PY
for t in template.yaml target/template-static-ip.yaml; do
    label="$t"; [[ "$t" == template.yaml ]] && label="template.yaml (StaticEgressIp=false)" \
        || label="template.yaml (StaticEgressIp=true)"
    "$VENV/bin/cfn-lint" "$t"
    echo "cfn-lint: $label clean"
    if [[ -x "$VENV/bin/sam" ]]; then
        SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1 "$VENV/bin/sam" validate --lint -t "$t" >/dev/null
        echo "sam validate --lint: $label valid"
        "$VENV/bin/python" scripts/check-iam.py "$t" 2>&1 | grep -v 'Feature Toggle'
    fi
    if ! CHECKOV_FILE="$t" bash scripts/checkov.sh >target/checkov.txt 2>&1; then
        cat target/checkov.txt
        exit 1
    fi
    echo "checkov: $label clean, $(grep -o 'Passed checks: [0-9]*' target/checkov.txt | head -1) (skips justified in .checkov.yaml)"
done
