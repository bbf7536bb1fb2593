#!/usr/bin/env python3
"""make new-function POINT=<extension point> NAME=<functionName>

Adds a working function to the module of its extension point (functions/src/<point>.rs), its
registration in that module's module(), a fixture (functions/fixtures/<NAME>/basic.json, the
format the fixture runner reads) and a unit test that checks the function against that
fixture; it also adds the new names to the list `functions::tests::all_registers_every_function_once`
guards. The function starts as a pass-through (records unchanged); replace its body.

Every extension point integrator.io calls already has its binary and template resource (a
point's functions share it: hooks and wrappers one binary each, the 1.0/2.0 install steps
`steps`, the integration-app settings functions `settings`, webhook functions the worker), so
the function is served by that binary, by `make serve` and by the queue worker as soon as it
is registered: no bin file, resource or event is added.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
T = "integrator_lambda::types::"

# point: (module file, registration, options type, output type, body, fixture options,
#         fixture expected, namespaces the name is listed under ("" = top level), binary)
POINTS = {
    "preSavePage": (
        "pre_save_page", "pre_save_page", "PreSavePageOptions", f"{T}PreSavePageResult",
        f"Ok({T}PreSavePageResult::new(options.data, options.errors))",
        {"data": [{"id": 1}], "errors": []},
        {"data": [{"id": 1}], "errors": [], "abort": False, "newErrorsAndRetryData": []},
        ["", "hooks"], "pre-save-page",
    ),
    "preMap": (
        "pre_map", "pre_map", "PreMapOptions", f"Vec<{T}RecordResult>",
        f"Ok(options.data.into_iter().map({T}RecordResult::keep).collect())",
        {"data": [{"id": 1}]},
        [{"data": {"id": 1}}],
        ["", "hooks"], "pre-map",
    ),
    "postMap": (
        "post_map", "post_map", "PostMapOptions", f"Vec<{T}RecordResult>",
        f"Ok(options.post_map_data.into_iter().map({T}RecordResult::keep).collect())",
        {"preMapData": [{"id": 1}], "postMapData": [{"id": 1}]},
        [{"data": {"id": 1}}],
        ["", "hooks"], "post-map",
    ),
    "postSubmit": (
        "post_submit", "post_submit", "PostSubmitOptions", f"Vec<{T}SubmitResponse>",
        "Ok(options.response_data)",
        {"preMapData": [{"id": 1}], "postMapData": [{"id": 1}],
         "responseData": [{"statusCode": 200, "id": "1"}]},
        [{"statusCode": 200, "id": "1"}],
        ["", "hooks"], "post-submit",
    ),
    "postResponseMap": (
        "post_response_map", "post_response_map", "PostResponseMapOptions",
        "Vec<integrator_lambda::Record>",
        "Ok(options.post_response_map_data)",
        {"postResponseMapData": [{"id": 1}], "responseData": [{"id": 1}]},
        [{"id": 1}],
        ["", "hooks"], "post-response-map",
    ),
    "postAggregate": (
        "post_aggregate", "post_aggregate", "PostAggregateOptions", "()",
        "let _ = options;\n    Ok(())",
        {"postAggregateData": {"success": True}},
        None,
        ["", "hooks"], "post-aggregate",
    ),
    "ping": (
        "ping", "ping", "PingOptions", f"{T}PingResult",
        f"let _ = options;\n    Ok({T}PingResult::ok())",
        {"connection": {"unencrypted": {}, "encrypted": {}}},
        {"statusCode": 200},
        ["", "wrappers"], "ping",
    ),
    "import": (
        "import", "import", "ImportOptions", f"Vec<{T}SubmitResponse>",
        f"Ok(options.post_map_data.iter().enumerate().map(|(i, _)| {T}SubmitResponse::ok(i)).collect())",
        {"preMapData": [{"id": 1}], "postMapData": [{"id": 1}]},
        [{"statusCode": 200, "ignored": False, "id": 0}],
        ["", "wrappers"], "import",
    ),
    "export": (
        "export", "export", "ExportOptions", f"{T}ExportResult",
        f"let _ = options;\n    let mut page = {T}ExportResult::default();\n    page.last_page = true;\n    Ok(page)",
        {"connection": {"unencrypted": {}, "encrypted": {}}, "configuration": {}},
        {"data": [], "lastPage": True, "errors": []},
        ["", "wrappers"], "export",
    ),
    # Integration apps, framework 1.0 (steps and settings binaries).
    "installer": (
        "steps", "installer", "ConnectorOptions", f"Option<{T}StepResult>",
        "let _ = options;\n    Ok(None)",
        {"_integrationId": "65f0c0ffee0000000000a001", "opts": {}},
        None,
        ["", "installer"], "steps",
    ),
    "uninstaller": (
        "steps", "uninstaller", "ConnectorOptions", f"Option<{T}StepResult>",
        "let _ = options;\n    Ok(None)",
        {"_integrationId": "65f0c0ffee0000000000a001", "opts": {}},
        None,
        ["", "uninstaller"], "steps",
    ),
    "update": (
        "steps", "update", "UpdateOptions", "()",
        "let _ = options;\n    Ok(())",
        {"_integrationId": "65f0c0ffee0000000000a001", "opts": {}},
        None,
        ["", "installer"], "steps",
    ),
    "persistSettings": (
        "settings", "persist_settings", "PersistSettingsOptions", f"{T}PersistSettingsResult",
        f"let _ = options;\n    let mut saved = {T}PersistSettingsResult::default();\n    saved.success = true;\n    Ok(saved)",
        {"_integrationId": "65f0c0ffee0000000000a001", "pending": {"pageSize": 10}},
        {"success": True},
        ["", "settings"], "settings",
    ),
    "refreshMetadata": (
        "settings", "refresh_metadata", "ConnectorOptions", "serde_json::Value",
        "Ok(options.opts.unwrap_or_default())",
        {"_integrationId": "65f0c0ffee0000000000a001", "opts": {"name": "pageSize", "options": []}},
        {"name": "pageSize", "options": []},
        ["", "settings"], "settings",
    ),
    "changeEdition": (
        "settings", "change_edition", "ChangeEditionOptions", "()",
        "let _ = options;\n    Ok(())",
        {"fromEdition": "standard", "toEdition": "premium"},
        None,
        ["", "settings"], "settings",
    ),
    "getMappingMetadata": (
        "settings", "get_mapping_metadata", "MappingMetadataOptions",
        "serde_json::Map<String, serde_json::Value>",
        "let _ = options;\n    Ok(serde_json::Map::new())",
        {"_integrationId": "65f0c0ffee0000000000a001"},
        {},
        ["", "settings"], "settings",
    ),
    # Integration apps, framework 2.0 (top-level names only).
    "step": (
        "steps", "step", "InstallStepOptions", "()",
        "let _ = options;\n    Ok(())",
        {"formSubmission": {}, "resource": {"_id": "step-1"}},
        None,
        [""], "steps",
    ),
    "formInit": (
        "settings", "form_init", "FormInitOptions", "serde_json::Value",
        "let _ = options;\n    Ok(serde_json::json!({\"fieldMap\": {}, \"layout\": {\"fields\": []}}))",
        {"resource": {"_id": "65f0c0ffee0000000000a001", "settings": {}}},
        {"fieldMap": {}, "layout": {"fields": []}},
        [""], "settings",
    ),
    "preSave": (
        "settings", "pre_save", "PreSaveOptions", "serde_json::Value",
        "Ok(options.new_resource.unwrap_or_default())",
        {"newResource": {"settings": {"pageSize": 10}}, "oldResource": {"settings": {}}},
        {"settings": {"pageSize": 10}},
        [""], "settings",
    ),
    "initChild": (
        "settings", "init_child", "InitChildOptions", "serde_json::Value",
        "let _ = options;\n    Ok(serde_json::json!({\"name\": \"child\"}))",
        {"parentIntegration": {"_id": "65f0c0ffee0000000000a001"}},
        {"name": "child"},
        [""], "settings",
    ),
    "webhook": (
        "webhooks", "webhook", "WebhookOptions", "()",
        "tracing::info!(endpoint = %options.endpoint, fields = options.event.len(), \"webhook event\");\n    Ok(())",
        {"endpoint": "demo", "event": {"order.id": 7}, "headers": {}, "dedupKey": "k1"},
        None,
        ["webhooks"], "worker",
    ),
}


def fail(msg):
    print(f"new-function: {msg}", file=sys.stderr)
    sys.exit(2)


def snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def add_names(lib, names):
    """Insert `names` into the sorted list of all_registers_every_function_once."""
    text = lib.read_text()
    m = re.search(r"(m\.function_names\(\),\s*\[)(.*?)(\n\s*\]\s*\n?\s*\);)", text, re.S)
    if not m:
        fail(f"cannot find the function list in {lib}")
    items = re.findall(r'"([^"]+)"', m.group(2))
    items = sorted(set(items) | set(names))
    indent = " " * 16
    body = "".join(f"\n{indent}\"{i}\"," for i in items)
    lib.write_text(text[: m.start(2)] + body + text[m.end(2):])


def main():
    if len(sys.argv) != 3:
        fail("usage: new-function.py <extension point> <functionName>")
    point, name = sys.argv[1], sys.argv[2]
    if point not in POINTS:
        fail(f"unknown extension point {point!r}; one of: {', '.join(POINTS)}")
    if not re.fullmatch(r"[a-z][A-Za-z0-9]{0,62}", name):
        fail("NAME must be lowerCamelCase letters and digits (e.g. enrichOrders)")
    module, method, options, output, body, fx_options, expected, namespaces, binary = POINTS[point]
    # A module is a file, or a folder (`<module>/mod.rs`, its tests in a sibling `tests.rs`).
    src = ROOT / "functions" / "src" / f"{module}.rs"
    if not src.exists():
        src = ROOT / "functions" / "src" / module / "mod.rs"
    fixture = ROOT / "functions" / "fixtures" / name / "basic.json"
    if not src.exists():
        fail(f"{src} is missing")
    for f in (ROOT / "functions" / "src").rglob("*.rs"):
        if f'"{name}"' in f.read_text():
            fail(f"{name} is already used in {f.relative_to(ROOT)}")
    if fixture.exists():
        fail(f"{fixture.relative_to(ROOT)} already exists")
    fn = snake(name)
    if output == "()":
        check = f'{fn}(inv, options).await.unwrap();\n        assert!(fixture["expected"].is_null());'
    else:
        check = f'let out = {fn}(inv, options).await.unwrap();\n        assert_eq!(serde_json::to_value(out).unwrap(), fixture["expected"]);'
    text = src.read_text()

    # The registration: the last line of module() before it returns `m`.
    m = re.search(r"pub fn module\(\) -> Module \{.*?\n(    m\n\})", text, re.S)
    if not m:
        fail(f"cannot find `pub fn module() -> Module {{ … m }}` in {src}")
    text = text[: m.start(1)] + f'    m.{method}("{name}", {fn});\n' + text[m.start(1):]

    fixtures_rel = os.path.relpath(ROOT / "functions" / "fixtures", src.parent)
    text = text.rstrip("\n") + f"""

/// `{name}` ({point}): made by `make new-function`; replace the body with your own. It
/// answers like its fixture, `functions/fixtures/{name}/basic.json`.
pub async fn {fn}(
    _inv: integrator_lambda::Invocation,
    options: {T}{options},
) -> integrator_lambda::ExtResult<{output}> {{
    {body}
}}

#[cfg(test)]
mod {fn}_tests {{
    use super::*;
    use std::time::Duration;

    /// The function answers what its fixture expects.
    #[tokio::test]
    async fn answers_its_fixture() {{
        let fixture: serde_json::Value =
            serde_json::from_str(include_str!("{fixtures_rel}/{name}/basic.json")).unwrap();
        let options = serde_json::from_value(fixture["options"].clone()).unwrap();
        let inv = integrator_lambda::Invocation::for_test("{name}", Duration::from_secs(5));
        {check}
    }}
}}
"""
    src.write_text(text)
    fixture.parent.mkdir(parents=True, exist_ok=True)
    fixture.write_text(json.dumps({
        "description": f"{name} ({point}) as generated: a pass-through",
        "options": fx_options,
        "expected": expected,
    }, indent=2) + "\n")
    add_names(ROOT / "functions" / "src" / "lib.rs",
              [f"{ns}.{name}" if ns else name for ns in namespaces])
    subprocess.run(["rustfmt", "--edition", "2024", str(src)], check=True)
    subprocess.run(["rustfmt", "--edition", "2024", str(ROOT / "functions" / "src" / "lib.rs")], check=True)
    print(f"added {name} ({point}) to functions/src/{module}.rs, registered in its module()")
    print(f"  fixture  functions/fixtures/{name}/basic.json")
    print(f"  test     functions/src/{module}.rs ({fn}_tests)")
    print(f"  served by the {binary} binary, make serve and the worker; try:")
    print(f"  make call FN={name} PAYLOAD=functions/fixtures/{name}/basic.json")


if __name__ == "__main__":
    main()
