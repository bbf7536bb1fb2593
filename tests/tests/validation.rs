//! Validation declared at registration (`ensure_setting`, `ensure_record`, `check`), through
//! the real `serve` binary over HTTP: the example `stampSource` (postMap) declares
//! `settings.source` and each record's `id`.

use integration_tests::http_client::{RawResponse, post_function};
use integration_tests::process;
use serde_json::{Value, json};

const TOKEN: &str = "validation-token-0123456789";

fn call(addr: &str, options: Value) -> RawResponse {
    let envelope =
        json!({"diy": true, "type": "hook", "function": "stampSource", "options": options});
    post_function(addr, TOKEN, &envelope)
}

#[test]
fn declared_checks_run_before_the_function_and_keep_the_contract() {
    let (_server, addr) = process::server(
        &process::bin("serve"),
        &[],
        &[("PORT", "0"), ("INTEGRATOR_EXTENSION_SYSTEM_TOKEN", TOKEN)],
    );

    // A record without `id` is rejected in place; the others run.
    let r = call(
        &addr,
        json!({"settings": {"source": "shop"}, "preMapData": [{}, {}, {}],
               "postMapData": [{"id": 1}, {"id": null, "name": "x"}, {"id": "b"}]}),
    );
    assert_eq!(
        (r.status, r.text()),
        (
            200,
            r#"[{"data":{"id":1,"source":"shop"}},{"errors":[{"code":"missing_field","message":"missing required field id"}]},{"data":{"id":"b","source":"shop"}}]"#
                .to_owned()
        )
    );

    // A missing setting fails the whole call with `invalid_settings`.
    let r = call(&addr, json!({"settings": {}, "postMapData": [{"id": 1}]}));
    assert_eq!(
        (r.status, r.text()),
        (
            422,
            r#"{"errors":[{"message":"settings.source is required","code":"invalid_settings"}]}"#
                .to_owned()
        )
    );

    // The custom check.
    let r = call(
        &addr,
        json!({"settings": {"source": ""}, "postMapData": [{"id": 1}]}),
    );
    assert_eq!(
        (r.status, r.text()),
        (
            422,
            r#"{"errors":[{"message":"settings.source must be a non-empty string","code":"invalid_settings"}]}"#
                .to_owned()
        )
    );

    // Every record rejected: the function runs on an empty page, the answer keeps one result
    // per record.
    let r = call(
        &addr,
        json!({"settings": {"source": "s"}, "postMapData": [{}, {}]}),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json().as_array().map(Vec::len), Some(2), "{}", r.text());
}
