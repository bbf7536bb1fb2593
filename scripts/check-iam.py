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
5. Which secret items each role may read (DynamoDB GetItem on `secret#<name>`) and decrypt
   (kms:Decrypt with `{"secret": <name>}` in the encryption context), evaluated on the expanded
   template for every combination of the secret parameters in SCENARIOS (FunctionSecrets "*",
   WebhookSecrets "*", a list naming the token's secret, ...): the system token's secret must be
   readable and decryptable by the functions that check the token (Function URL, POST /function)
   and by no other role, whatever those parameters say. The table for the defaults is printed.

Exit 1 with one line per violation.
"""

from __future__ import annotations

import fnmatch
import itertools
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


# The secret parameters and the values tried for each: every combination is checked.
SCENARIOS = {
    "SystemTokenSecret": ["system-token", "rotated-token"],
    "FunctionSecrets": ["*", "", "crm-api-key", "system-token,crm-api-key", "rotated-token", "sys*"],
    "WebhookSecrets": ["", "*", "hook-key", "system-token", "rotated-token"],
}
# Names probed in the per-role table (besides the token's secret).
PROBES = ["crm-api-key", "hook-key"]
STACK = "example-stack"


class Unresolved(Exception):
    pass


def resolve(v, params, conditions):
    """Evaluate the intrinsic functions of `v` for these parameter values. Resource attributes
    and other resources' ids become placeholders ("<Name.Attr>", "<Name>"); AWS::NoValue is None
    and is dropped from lists and maps."""
    if isinstance(v, list):
        out = [resolve(x, params, conditions) for x in v]
        return [x for x in out if x is not None]
    if not isinstance(v, dict):
        return v
    if len(v) == 1:
        (k, a), = v.items()
        if k == "Ref":
            if a == "AWS::NoValue":
                return None
            if a == "AWS::StackName":
                return STACK
            if a.startswith("AWS::"):
                return f"<{a}>"
            return params.get(a, f"<{a}>")
        if k == "Fn::GetAtt":
            return "<" + (".".join(a) if isinstance(a, list) else a) + ">"
        if k == "Fn::If":
            cond, yes, no = a
            return resolve(yes if conditions[cond] else no, params, conditions)
        if k == "Fn::Sub":
            text, names = (a, {}) if isinstance(a, str) else (a[0], a[1])
            names = {n: resolve(x, params, conditions) for n, x in names.items()}
            out, i = "", 0
            while i < len(text):
                j = text.find("${", i)
                if j < 0:
                    out += text[i:]
                    break
                end = text.index("}", j)
                out += text[i:j]
                name = text[j + 2 : end]
                if name in names:
                    out += str(names[name])
                elif "." in name:
                    out += f"<{name}>"
                else:
                    out += str(resolve({"Ref": name}, params, conditions))
                i = end + 1
            return out
        if k == "Fn::Join":
            sep, items = a
            return sep.join(str(x) for x in resolve(items, params, conditions))
        if k == "Fn::Split":
            sep, text = a
            return str(resolve(text, params, conditions)).split(sep)
        if k == "Fn::Select":
            i, items = a
            return resolve(items, params, conditions)[int(resolve(i, params, conditions))]
        if k in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"):
            return evaluate(v, params, conditions)
        if k.startswith("Fn::"):
            return f"<{k}>"
    out = {k: resolve(x, params, conditions) for k, x in v.items()}
    return {k: x for k, x in out.items() if x is not None}


def evaluate(c, params, conditions):
    (k, a), = c.items()
    if k == "Fn::Equals":
        x, y = (resolve(e, params, conditions) for e in a)
        return x == y
    if k == "Fn::Not":
        return not evaluate(a[0], params, conditions)
    if k == "Fn::And":
        return all(evaluate(e, params, conditions) for e in a)
    if k == "Fn::Or":
        return any(evaluate(e, params, conditions) for e in a)
    if k == "Condition":
        return conditions[a]
    raise Unresolved(k)


def all_conditions(template, params):
    raw = template.get("Conditions", {})
    done = {}

    class Lazy(dict):
        def __missing__(self, name):
            done[name] = evaluate(raw[name], params, self)
            return done[name]

    lazy = Lazy()
    for name in raw:
        lazy[name]  # noqa: B018 (evaluates it)
    return lazy


def matches(op, patterns, value):
    """One condition operator (without its ForAllValues:/ForAnyValue: prefix) on one value."""
    patterns = [str(p) for p in as_list(patterns)]
    if op in ("StringEquals", "StringEqualsIgnoreCase"):
        return value in patterns
    if op == "StringNotEquals":
        return value not in patterns
    if op == "StringLike":
        return any(fnmatch.fnmatchcase(value, p) for p in patterns)
    if op == "StringNotLike":
        return not any(fnmatch.fnmatchcase(value, p) for p in patterns)
    raise Unresolved(op)


def condition_holds(condition, context):
    """Does a statement's Condition hold for a request with `context` (key -> list of values)?
    A key the request lacks fails a positive operator and passes a negative one; ForAllValues
    needs every value to match, ForAnyValue (and a plain operator) one."""
    for op, kv in condition.items():
        quant, _, base = op.rpartition(":")
        for key, patterns in kv.items():
            values = context.get(key)
            if values is None:
                if "Not" not in base:
                    return False
                continue
            results = [matches(base, patterns, v) for v in values]
            if quant == "ForAllValues":
                ok = all(results)
            else:
                ok = any(results)
            if not ok:
                return False
    return True


def allows(statements, action, context):
    """Allowed by one Allow statement and denied by none (resources are not checked: every
    secret lives in the one table, under the one key)."""
    def applies(st):
        acts = [a for a in as_list(st.get("Action", [])) if isinstance(a, str)]
        service = action.split(":")[0]
        return any(a == action or a == f"{service}:*" or a == "*" for a in acts) and condition_holds(
            st.get("Condition", {}), context
        )

    allowed = any(applies(st) for st in statements if st.get("Effect") == "Allow")
    denied = any(applies(st) for st in statements if st.get("Effect") == "Deny")
    return allowed and not denied


def read_context(name):
    return {"dynamodb:LeadingKeys": [f"secret#{name}"]}


def decrypt_context(name):
    return {
        "kms:EncryptionContext:app": ["integrator-lambda"],
        "kms:EncryptionContext:stack": [STACK],
        "kms:EncryptionContext:secret": [name],
    }


def role_statements(res, params, conditions):
    """Every function role's statements (inline and attached managed policies), resolved."""
    by_role = {}
    for name, r in res.items():
        if r["Type"] != "AWS::IAM::Role" or not name.endswith("FunctionRole"):
            continue
        props = resolve(r["Properties"], params, conditions)
        sts = []
        for p in props.get("Policies", []):
            sts += as_list(p["PolicyDocument"].get("Statement", []))
        for arn in props.get("ManagedPolicyArns", []):
            ref = arn.strip("<>") if isinstance(arn, str) else None
            mp = res.get(ref)
            if mp and mp["Type"] == "AWS::IAM::ManagedPolicy":
                if "Condition" in mp and not conditions[mp["Condition"]]:
                    continue
                doc = resolve(mp["Properties"]["PolicyDocument"], params, conditions)
                sts += as_list(doc.get("Statement", []))
        by_role[name] = [s for s in sts if isinstance(s, dict)]
    return by_role


def secret_access(template, token_readers):
    """Rule 5: one line per violation, and the table of the default parameters."""
    res = template["Resources"]
    defaults = {
        k: v.get("Default")
        for k, v in template.get("Parameters", {}).items()
        if isinstance(v, dict) and "Default" in v
    }
    problems, table = {}, []
    keys = list(SCENARIOS)
    combos = 0
    for combo in itertools.product(*(SCENARIOS[k] for k in keys)):
        combos += 1
        params = {**defaults, **dict(zip(keys, combo))}
        is_default = all(params[k] == defaults.get(k) for k in keys)
        conditions = all_conditions(template, params)
        token = params["SystemTokenSecret"]
        for role, sts in sorted(role_statements(res, params, conditions).items()):
            reads = {n for n in [token, *PROBES] if allows(sts, "dynamodb:GetItem", read_context(n))}
            decrypts = {n for n in [token, *PROBES] if allows(sts, "kms:Decrypt", decrypt_context(n))}
            fn = role.removesuffix("Role")
            if is_default:
                table.append(f"  {role}: reads {sorted(reads) or '-'}, decrypts {sorted(decrypts) or '-'}")
            where = ", ".join(f"{k}={params[k]!r}" for k in keys)
            if fn not in token_readers and (token in reads or token in decrypts):
                what = " and ".join(w for w, s in (("read", reads), ("decrypt", decrypts)) if token in s)
                problems.setdefault(f"{role}: may {what} the system token's secret", []).append(where)
            if fn in token_readers and not (token in reads and token in decrypts):
                problems.setdefault(f"{role}: cannot read and decrypt its system token's secret", []).append(where)
    lines = [
        f"{p} in {len(wheres)} of {combos} parameter combinations, e.g. {wheres[0]}"
        for p, wheres in sorted(problems.items())
    ]
    return lines, table


def safe_deploy_problems(res):
    """Safe deploys: every function publishes versions behind the alias `live` with a CodeDeploy
    deployment group (canary in prod, all at once in dev), and everything that invokes a function
    (Function URLs, SQS event source mappings, schedules) targets that alias, never the bare
    function, so a caller always reaches the version CodeDeploy promoted."""
    problems = []
    functions = [k for k, v in res.items() if v["Type"] == "AWS::Lambda::Function"]
    for name in functions:
        alias = res.get(f"{name}Aliaslive")
        if alias is None or alias["Type"] != "AWS::Lambda::Alias":
            problems.append(f"{name}: no alias `live` (AutoPublishAlias)")
        elif "UpdatePolicy" not in alias or "CodeDeployLambdaAliasUpdate" not in alias["UpdatePolicy"]:
            problems.append(f"{name}: alias `live` is not moved by CodeDeploy (DeploymentPreference)")

    def target(v):
        return v.get("Ref") if isinstance(v, dict) else v

    for k, v in res.items():
        props = v.get("Properties", {})
        if v["Type"] == "AWS::Lambda::Url":
            t = target(props.get("TargetFunctionArn"))
        elif v["Type"] == "AWS::Lambda::EventSourceMapping":
            t = target(props.get("FunctionName"))
        elif v["Type"] == "AWS::Scheduler::Schedule":
            arn = props.get("Target", {}).get("Arn")
            if isinstance(arn, dict) and "Ref" not in arn:
                continue  # a queue or another service, not a function
            t = target(arn)
        else:
            continue
        if not (isinstance(t, str) and t.endswith("Aliaslive")):
            problems.append(f"{k}: invokes {t!r}, not a function's alias `live`")
    return problems


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

    token_readers = {n for n in urls if n != "IncomingFunction"}
    problems += safe_deploy_problems(res)
    secret_problems, table = secret_access(out, token_readers)
    problems += secret_problems
    print("check-iam: secret items each role may read and decrypt (default parameters):")
    for line in table:
        print(line)

    for p in problems:
        print(f"check-iam: {p}")
    if not problems:
        print(f"check-iam: {len(functions)} functions, {len(docs)} policy documents: least privilege holds")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "template.yaml"))
