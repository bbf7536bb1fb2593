#!/usr/bin/env python3
"""Least-privilege rules of template.yaml, checked on the template as SAM expands it.

Run by `make lint-template` (needs the aws-sam-cli venv for samtranslator). Each rule is what a
reviewer would otherwise check by hand:

1. The system token (plain or its secret's name) is given only to functions with a Function
   URL: they are the only ones that check it.
2. Every statement granting DynamoDB actions on the table or its index is limited by
   `dynamodb:LeadingKeys` (item key prefixes), and no function may write a `secret#` item.
3. Every kms:Decrypt is limited to this stack's encryption context.
4. No function role gets SQS actions on `*` (each names its queues).

Exit 1 with one line per violation.
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

TOKEN_VARS = ("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", "INTEGRATOR_EXTENSION_SYSTEM_TOKEN_SECRET")
ITEM_WRITES = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:*")


class NoManagedPolicies:
    def load(self):
        return {}


def as_list(v):
    return v if isinstance(v, list) else [v]


def branches(statement):
    """A statement, or both arms of an Fn::If around it (AWS::NoValue dropped)."""
    if isinstance(statement, dict) and "Fn::If" in statement:
        for arm in statement["Fn::If"][1:]:
            if arm != {"Ref": "AWS::NoValue"}:
                yield from branches(arm)
    else:
        yield statement


def leading_keys(statement):
    cond = statement.get("Condition", {})
    for op, kv in cond.items():
        if "dynamodb:LeadingKeys" in kv:
            return kv["dynamodb:LeadingKeys"]
    return None


def main(path: str) -> int:
    src = open(path, encoding="utf-8").read()
    # samtranslator wants an S3 CodeUri; the local one is only for `sam build`.
    src = src.replace("CodeUri: .", "CodeUri: s3://bucket/code.zip")
    out = transform(yaml_parse(src), {}, NoManagedPolicies())
    res = out["Resources"]
    problems = []

    functions = {k: v for k, v in res.items() if v["Type"] == "AWS::Lambda::Function"}
    urls = {
        v["Properties"]["TargetFunctionArn"]["Ref"].split(".")[0].removesuffix("Aliaslive")
        for v in res.values()
        if v["Type"] == "AWS::Lambda::Url"
    }
    for name, fn in functions.items():
        env = fn["Properties"].get("Environment", {}).get("Variables", {})
        has_token = any(v in env for v in TOKEN_VARS)
        checks_token = name in urls and name != "IncomingFunction"
        if has_token and not checks_token:
            problems.append(f"{name}: has the system token but does not serve POST /function")
        if checks_token and not has_token:
            problems.append(f"{name}: serves POST /function without the system token settings")

    # Every policy document a function role can use: inline policies and the managed ones.
    docs = []
    for name, r in res.items():
        if r["Type"] == "AWS::IAM::Role" and name.endswith("FunctionRole"):
            for p in r["Properties"].get("Policies", []):
                docs.append((name, p["PolicyDocument"]))
        if r["Type"] == "AWS::IAM::ManagedPolicy":
            docs.append((name, r["Properties"]["PolicyDocument"]))
    for owner, doc in docs:
        for raw in as_list(doc.get("Statement", [])):
            for st in branches(raw):
                actions = [a for a in as_list(st.get("Action", [])) if isinstance(a, str)]
                sid = st.get("Sid", "?")
                if any(a.startswith("dynamodb:") for a in actions):
                    keys = leading_keys(st)
                    if keys is None:
                        problems.append(f"{owner}/{sid}: DynamoDB access without dynamodb:LeadingKeys")
                    elif isinstance(keys, list) and any(
                        isinstance(k, str) and k.startswith("secret#") for k in keys
                    ) and any(a in ITEM_WRITES for a in actions):
                        problems.append(f"{owner}/{sid}: may write secret items")
                    elif isinstance(keys, list) and "*" in keys:
                        problems.append(f"{owner}/{sid}: LeadingKeys allows every item")
                if "kms:Decrypt" in actions or "kms:*" in actions:
                    text = json.dumps(st.get("Condition", {}))
                    if owner != "SecretsKey" and "kms:EncryptionContext:stack" not in text:
                        problems.append(f"{owner}/{sid}: kms:Decrypt not bound to the stack's context")
                if any(a.startswith("sqs:") for a in actions) and st.get("Resource") == "*":
                    problems.append(f"{owner}/{sid}: SQS actions on every queue")

    for p in problems:
        print(f"check-iam: {p}")
    if not problems:
        print(f"check-iam: {len(functions)} functions, {len(docs)} policy documents: least privilege holds")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
