#!/usr/bin/env python3
"""Generate the sample events under events/ from the one table below.

For every example function this writes four files into events/<bin>/ (the binary's main
example) or events/<bin>/<function>/ (its other examples):

  invoke.json          the whole envelope {diy, function, type, options} as the payload: what
                       `sam local invoke <Id> -e ...` and `cargo lambda invoke --data-file ...`
                       send when there is no client context
  options.json         just the options: the payload of integrator.io's direct Invoke ...
  client-context.json  ... whose client context is the envelope without the options
                       (`cargo lambda invoke --data-file options.json --client-context-file ...`);
                       compact, on one line with no final newline, because cargo lambda puts
                       the file's bytes into an HTTP header
  function-url.json    a Function URL event (API Gateway HTTP API payload 2.0) for the server
                       stack: POST /function, "Authorization: Bearer local-dev-token", body = the
                       envelope as a JSON string

plus events/local-env.json (`sam local invoke --env-vars`, sets the token the Function URL
events carry) and events/tick/scheduled-event.json: what an EventBridge rule without an input
sends (`sam local generate-event cloudwatch scheduled-event` writes the same shape), which the
tick binary answers with a tick. The generated files are committed; rerun after editing the table:

  python3 scripts/gen-events.py          write events/
  python3 scripts/gen-events.py --check  exit 1 if events/ is not what the table gives

The script reads nothing: everything comes from this file.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVENTS = ROOT / "events"

LOCAL_TOKEN = "local-dev-token"
# A made-up one-time token: integrator.io sends a real one for calls back to its API.
OTT = "ott-local-example-0000000000000000"

# Made-up but well-formed integrator.io ids (24 hex digits).
INTEGRATION = "65f0c0ffee0000000000a001"
CONNECTION = "65f0c0ffee0000000000c001"
FLOW = "65f0c0ffee0000000000f001"
EXPORT = "65f0c0ffee0000000000e001"
IMPORT = "65f0c0ffee0000000000d001"
CONNECTOR = "65f0c0ffee0000000000b001"
LICENSE = "65f0c0ffee00000000001001"

WRAPPER_CONNECTION = {
    "_id": CONNECTION,
    "encrypted": {"apiKey": "example-api-key-not-a-secret"},
    "unencrypted": {"baseUrl": "https://api.example.com"},
}
LICENSE_2_0 = {
    "_id": LICENSE,
    "_connectorId": CONNECTOR,
    "_integrationId": INTEGRATION,
    "type": "integrationApp",
    "expires": "2030-01-01T00:00:00.000Z",
    "opts": {"edition": "standard"},
}
INSTALL_STEPS = [
    {
        "name": "Configure API connection",
        "description": "Enter the API key of your example.com account",
        "installerFunction": "runInstallStep",
        "uninstallerFunction": "uninstallStep",
        "completed": True,
    },
    {
        "name": "Create flows",
        "description": "Creates the order and customer flows",
        "installerFunction": "runInstallStep",
        "uninstallerFunction": "uninstallStep",
        "completed": False,
    },
]

# (binary, function, 1.0 type or None for a 2.0 function, options). The first row of each
# binary is its main example (events/<bin>/); the others go to events/<bin>/<function>/.
EXAMPLES: list[tuple[str, str, str | None, dict]] = [
    (
        "pre-save-page",
        "dropEmptyRecords",
        "hook",
        {
            "data": [
                {"id": 1001, "customer": {"name": "Ada Lovelace", "email": "ada@example.com"}, "total": 125.5},
                {},
                {"id": 1003, "customer": {"name": "Grace Hopper", "email": None}, "total": 80},
                None,
                {"id": 1005, "customer": {"name": "Alan Turing", "email": "alan@example.com"}, "total": 42},
            ],
            "errors": [],
            "_exportId": EXPORT,
            "_connectionId": CONNECTION,
            "_flowId": FLOW,
            "_integrationId": INTEGRATION,
            "pageIndex": 0,
            "lastExportDateTime": "2024-05-01T00:00:00.000Z",
            "currentExportDateTime": "2024-05-02T00:00:00.000Z",
            "settings": {"requiredFields": ["id", "customer.email"]},
            "testMode": False,
            "bearerToken": OTT,
        },
    ),
    (
        "pre-map",
        "flattenRecords",
        "hook",
        {
            "data": [
                {
                    "id": 5001,
                    "customer": {"name": "Ada Lovelace", "address": {"city": "London", "zip": "W1"}},
                    "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}],
                    "tags": [],
                },
                {"customer": {"name": "No Id"}, "lines": []},
            ],
            "_importId": IMPORT,
            "_connectionId": CONNECTION,
            "_flowId": FLOW,
            "_integrationId": INTEGRATION,
            "settings": {"requiredFields": ["id"]},
            "testMode": False,
            "bearerToken": OTT,
        },
    ),
    (
        "post-map",
        "normalizeFields",
        "hook",
        {
            "preMapData": [
                {"id": 1001, "Email": "  Ada@Example.COM ", "name": " Ada Lovelace "},
                {"id": 1002, "Email": "GRACE@EXAMPLE.COM", "name": "Grace Hopper"},
            ],
            "postMapData": [
                {"externalId": "1001", "email": "  Ada@Example.COM ", "fullName": " Ada Lovelace ", "address": {"city": " London "}},
                {"externalId": "1002", "email": "GRACE@EXAMPLE.COM", "fullName": "Grace Hopper", "address": {"city": "Arlington"}},
            ],
            "_importId": IMPORT,
            "_connectionId": CONNECTION,
            "_flowId": FLOW,
            "_integrationId": INTEGRATION,
            "settings": {},
            "bearerToken": OTT,
        },
    ),
    (
        "post-submit",
        "tagFailures",
        "hook",
        {
            "preMapData": [{"id": 1001}, {"id": 1002}, {"id": 1003}],
            "postMapData": [{"externalId": "1001"}, {"externalId": "1002"}, {"externalId": "1003"}],
            "responseData": [
                {"statusCode": 200, "errors": [], "ignored": False, "id": "SO-1001", "_json": {"id": "SO-1001", "status": "created"}},
                {"statusCode": 500, "errors": [], "ignored": False, "id": None, "_json": None},
                {
                    "statusCode": 422,
                    "errors": [{"code": "invalid_field", "message": "quantity must be positive", "source": "application"}],
                    "ignored": False,
                    "id": None,
                    "_json": {"error": "quantity must be positive"},
                },
            ],
            "_importId": IMPORT,
            "_connectionId": CONNECTION,
            "_flowId": FLOW,
            "_integrationId": INTEGRATION,
            "settings": {},
            "bearerToken": OTT,
        },
    ),
    (
        "post-response-map",
        "mergeResponse",
        "hook",
        {
            "postResponseMapData": [
                {"orderId": "SO-1001", "status": "shipped"},
                {"orderId": "SO-1002", "status": "pending", "shipment": {"warehouse": "EU-1"}},
            ],
            "responseData": [
                {"statusCode": 200, "data": {"trackingNumber": "1Z999AA10123456784", "carrier": "UPS"}, "errors": [], "ignored": False},
                {"statusCode": 200, "data": {"carrier": "DHL", "eta": "2024-05-06"}, "errors": [], "ignored": False},
            ],
            "oneToMany": False,
            "_importId": IMPORT,
            "_connectionId": CONNECTION,
            "_flowId": FLOW,
            "_integrationId": INTEGRATION,
            "settings": {"responseField": "shipment"},
            "bearerToken": OTT,
        },
    ),
    (
        "post-aggregate",
        "logAggregate",
        "hook",
        {
            "postAggregateData": {
                "success": True,
                "_json": {"bucket": "example-exports", "key": "orders/2024-05-02.csv", "size": 48213},
                "code": "",
                "message": "",
                "source": "",
            },
            "_importId": IMPORT,
            "_connectionId": CONNECTION,
            "_flowId": FLOW,
            "_integrationId": INTEGRATION,
            "settings": {},
            "bearerToken": OTT,
        },
    ),
    (
        "export",
        "pagedExport",
        "wrapper",
        {
            "connection": WRAPPER_CONNECTION,
            "type": "delta",
            "delta": {"dateField": "updatedAt", "lastExecutionTime": "2024-01-10T00:00:00.000Z"},
            "state": {"offset": 5},
            "configuration": {"pageSize": 5},
            "_exportId": EXPORT,
            "_flowId": FLOW,
            "_integrationId": INTEGRATION,
            "bearerToken": OTT,
        },
    ),
    (
        "import",
        "upsertRecords",
        "wrapper",
        {
            "connection": WRAPPER_CONNECTION,
            "configuration": {"resource": "customers"},
            "preMapData": [
                {"id": 1001, "name": "Ada Lovelace"},
                {"name": "Grace Hopper"},
                "not a record",
            ],
            "postMapData": [
                {"id": 1001, "fullName": "Ada Lovelace", "email": "ada@example.com"},
                {"fullName": "Grace Hopper", "email": "grace@example.com"},
                "not a record",
            ],
            "_importId": IMPORT,
            "_flowId": FLOW,
            "_integrationId": INTEGRATION,
            "bearerToken": OTT,
        },
    ),
    (
        "ping",
        "checkConnection",
        "wrapper",
        {
            "connection": WRAPPER_CONNECTION,
            "bearerToken": OTT,
        },
    ),
    (
        "steps",
        "runInstallStep",
        "installer",
        {
            "_integrationId": INTEGRATION,
            "_connectorId": CONNECTOR,
            "opts": {"stepName": "Create flows", "steps": INSTALL_STEPS},
            "bearerToken": OTT,
        },
    ),
    (
        "steps",
        "installConnector",
        "installer",
        {
            "_integrationId": INTEGRATION,
            "_connectorId": CONNECTOR,
            "opts": {"connectorEdition": "standard", "licenseOpts": {"edition": "standard"}},
            "bearerToken": OTT,
        },
    ),
    (
        "steps",
        "uninstallStep",
        "uninstaller",
        {
            "_integrationId": INTEGRATION,
            "_connectorId": CONNECTOR,
            "opts": {"step": {"name": "Remove flows", "uninstallerFunction": "uninstallStep", "completed": False}},
            "bearerToken": OTT,
        },
    ),
    (
        "steps",
        "installStep",
        None,
        {
            "formSubmission": {"accountId": "TSTDRV1234567", "environment": "sandbox"},
            "resource": {
                "_id": INTEGRATION,
                "name": "Example integration app",
                "_connectorId": CONNECTOR,
                "installSteps": [
                    {"name": "Configure API connection", "type": "form", "completed": False},
                ],
            },
            "license": LICENSE_2_0,
            "bearerToken": OTT,
        },
    ),
    (
        "settings",
        "settingsForm",
        None,
        {
            "resource": {
                "_id": INTEGRATION,
                "name": "Example integration app",
                "settings": {"pageSize": 50},
                "settingsForm": {
                    "form": {
                        "fieldMap": {
                            "pageSize": {"id": "pageSize", "name": "pageSize", "type": "text", "inputType": "number", "label": "Page size", "defaultValue": 20},
                            "syncCustomers": {"id": "syncCustomers", "name": "syncCustomers", "type": "checkbox", "label": "Sync customers", "defaultValue": True},
                        },
                        "layout": {"fields": ["pageSize", "syncCustomers"]},
                    },
                    "init": {"function": "settingsForm"},
                },
            },
            "license": LICENSE_2_0,
            "bearerToken": OTT,
        },
    ),
    (
        "settings",
        "persistSettings",
        "setting",
        {
            "_integrationId": INTEGRATION,
            "pending": {"general_pageSize": 50, "general_syncCustomers": True},
            "bearerToken": OTT,
        },
    ),
    (
        "settings",
        "validateSettings",
        None,
        {
            "newResource": {"settings": {"pageSize": 50}},
            "oldResource": {},
            "bearerToken": OTT,
        },
    ),
]

# Values of a Function URL event that do not depend on the call (a made-up URL id).
URL_ID = "abcdefghijklmnopqrstuvwxyz012345"
URL_DOMAIN = f"{URL_ID}.lambda-url.us-east-1.on.aws"
TIME = "02/May/2024:12:00:00 +0000"
TIME_EPOCH = 1714651200000


def envelope(function: str, kind: str | None, options: dict | None) -> dict:
    env: dict = {"diy": True, "function": function}
    if kind is not None:
        env["type"] = kind
    if options is not None:
        env["options"] = options
    return env


def function_url_event(bin_name: str, function: str, body: str) -> dict:
    # Deterministic ids, so regenerating changes nothing.
    rid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"integrator-extension/{bin_name}/{function}"))
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/function",
        "rawQueryString": "",
        "headers": {
            "accept": "application/json",
            "authorization": f"Bearer {LOCAL_TOKEN}",
            "content-length": str(len(body.encode("utf-8"))),
            "content-type": "application/json",
            "host": URL_DOMAIN,
            "user-agent": "integrator.io",
            "x-amzn-trace-id": "Root=1-6633800e-0123456789abcdef01234567",
            "x-forwarded-for": "127.0.0.1",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https",
        },
        "requestContext": {
            "accountId": "anonymous",
            "apiId": URL_ID,
            "domainName": URL_DOMAIN,
            "domainPrefix": URL_ID,
            "http": {
                "method": "POST",
                "path": "/function",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "integrator.io",
            },
            "requestId": rid,
            "routeKey": "$default",
            "stage": "$default",
            "time": TIME,
            "timeEpoch": TIME_EPOCH,
        },
        "body": body,
        "isBase64Encoded": False,
    }


def scheduled_event() -> dict:
    """AWS's own scheduled event: an EventBridge rule `rate(1 minute)` with no input (no
    `function`: the Lambda transport runs the tick for it)."""
    return {
        "version": "0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, "integrator-extension/tick/scheduled-event")),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2024-05-02T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/example-stack-tick"],
        "detail": {},
    }


def render(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def planned() -> dict[Path, str]:
    files: dict[Path, str] = {}
    seen: set[str] = set()
    for bin_name, function, kind, options in EXAMPLES:
        base = EVENTS / bin_name
        if bin_name in seen:
            base = base / function
        seen.add(bin_name)
        whole = envelope(function, kind, options)
        body = json.dumps(whole, ensure_ascii=False, separators=(",", ":"))
        files[base / "invoke.json"] = render(whole)
        files[base / "options.json"] = render(options)
        # One line, no newline: cargo lambda sends the file as an HTTP header value as is.
        files[base / "client-context.json"] = json.dumps(
            envelope(function, kind, None), ensure_ascii=False, separators=(",", ":")
        )
        files[base / "function-url.json"] = render(function_url_event(bin_name, function, body))
    # `sam local invoke --env-vars events/local-env.json`: "Parameters" applies to every function.
    files[EVENTS / "local-env.json"] = render(
        {
            "Parameters": {
                "INTEGRATOR_EXTENSION_SYSTEM_TOKEN": LOCAL_TOKEN,
                "EXTENSION_DIY": "true",
                "EXTENSION_CONNECTOR_IDS": "",
                "EXTENSION_TIMEOUT_SECS": "300",
            }
        }
    )
    files[EVENTS / "tick" / "scheduled-event.json"] = render(scheduled_event())
    return files


def main(argv: list[str]) -> int:
    check = "--check" in argv[1:]
    files = planned()
    stale = []
    for path, text in sorted(files.items()):
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    # Generated-looking files the table no longer produces, in the binaries' folders the table
    # owns (other folders, e.g. hand-written events of other binaries, are left alone).
    owned = sorted({EVENTS / bin_name for bin_name, *_ in EXAMPLES})
    extra = sorted(
        p
        for d in owned
        if d.is_dir()
        for p in d.rglob("*.json")
        if p.name in ("invoke.json", "options.json", "client-context.json", "function-url.json")
        and p not in files
    )
    rel = lambda p: p.relative_to(ROOT).as_posix()  # noqa: E731
    if check:
        for p in stale:
            print(f"out of date: {rel(p)}", file=sys.stderr)
        for p in extra:
            print(f"not generated by the table: {rel(p)}", file=sys.stderr)
        if stale or extra:
            print("run: python3 scripts/gen-events.py", file=sys.stderr)
            return 1
        print(f"events/ up to date ({len(files)} files)")
        return 0
    for p in extra:
        print(f"note: {rel(p)} is not generated by the table (left alone)", file=sys.stderr)
    print(f"wrote {len(stale)} of {len(files)} files under events/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
