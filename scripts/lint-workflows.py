#!/usr/bin/env python3
"""Lint the CI/CD example workflows: each file under .github/workflows/ must parse as YAML and
validate against SchemaStore's GitHub workflow schema (vendored in scripts/schemas/, from the
check-jsonschema package; licence beside it), plus a few rules of our own: every job has a
timeout, and a job that assumes an AWS role asks for `id-token: write`.

Uses PyYAML and jsonschema, which the tools venv already has (cfn-lint depends on both)."""

import json
import sys
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "scripts/schemas/github-workflow.json").read_text(encoding="utf-8"))


def lint(path: Path) -> list[str]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        return [f"{path}: not YAML: {e}"]
    if not isinstance(doc, dict):
        return [f"{path}: not a mapping"]
    # YAML 1.1 reads the top-level key `on` as True; GitHub reads it as "on".
    if True in doc:
        doc["on"] = doc.pop(True)
    errors = [
        f"{path}: {'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in jsonschema.Draft7Validator(SCHEMA).iter_errors(doc)
    ]
    for name, job in (doc.get("jobs") or {}).items():
        if "timeout-minutes" not in job:
            errors.append(f"{path}: job {name} has no timeout-minutes")
        uses_oidc = any(
            "configure-aws-credentials" in str(step.get("uses", "")) for step in job.get("steps", [])
        )
        if uses_oidc and (job.get("permissions") or {}).get("id-token") != "write":
            errors.append(f"{path}: job {name} assumes an AWS role without id-token: write")
    return errors


def main(argv: list[str]) -> int:
    files = [Path(a) for a in argv[1:]] or sorted((ROOT / ".github/workflows").glob("*.y*ml"))
    if not files:
        print("no workflow files", file=sys.stderr)
        return 1
    errors = [e for f in files for e in lint(f)]
    for e in errors:
        print(e, file=sys.stderr)
    if not errors:
        print(f"workflows: {len(files)} file(s) valid")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
