//! Unit tests of the declared checks: missing paths, settings and record checks, and the
//! rejected records handed back per hook kind.

use super::*;
use crate::dispatch::kinds::{Import, PostResponseMap, PostSubmit, PreMap, PreSavePage};
use crate::protocol::types::*;
use serde_json::json;

#[test]
fn missing_means_absent_or_null_and_walks_arrays() {
    let v = json!({"a": {"b": [null, {"c": 0}]}, "e": ""});
    assert!(!missing(Some(&v), "a.b.1.c"));
    assert!(!missing(Some(&v), "e"));
    assert!(missing(Some(&v), "a.b.0"));
    assert!(missing(Some(&v), "a.x"));
    assert!(missing(None, "a"));
}

#[test]
fn settings_report_every_missing_path_as_invalid_settings() {
    let mut c = Checks::<PreMap>::default();
    c.setting("baseUrl");
    c.setting("auth.user");
    c.setting("present");
    let errors = c
        .check_settings(&json!({"settings": {"present": false, "baseUrl": null}}))
        .unwrap_err();
    let wire: Vec<(String, String)> = errors
        .iter()
        .map(|e| (e.code.to_string(), e.message.to_string()))
        .collect();
    assert_eq!(
        wire,
        [
            (
                "invalid_settings".into(),
                "settings.baseUrl is required".into()
            ),
            (
                "invalid_settings".into(),
                "settings.auth.user is required".into()
            ),
        ]
    );
    assert!(
        c.check_settings(&json!({"settings": {"baseUrl": "x", "auth": {"user": 1}, "present": 0}}))
            .is_ok()
    );
}

#[test]
fn record_checks_collect_every_error_of_a_record() {
    let mut c = Checks::<PreMap>::default();
    c.record("id");
    c.record_check(|r| {
        r.get("id")
            .is_some_and(Value::is_string)
            .then(|| RecordError::new("invalid_field", "id must be a number"))
    });
    assert_eq!(c.check_records(&json!({"data": [{"id": 1}]})), None);
    let v = c
        .check_records(&json!({"data": [{"id": 1}, {}, {"id": "x"}]}))
        .unwrap();
    assert!(v[0].is_empty());
    assert_eq!(v[1][0].code.as_deref(), Some("missing_field"));
    assert_eq!(
        v[1][0].message.as_deref(),
        Some("missing required field id")
    );
    assert_eq!(v[2][0].code.as_deref(), Some("invalid_field"));
}

fn records(values: Vec<Value>) -> Vec<crate::protocol::Record> {
    values.into_iter().map(Into::into).collect()
}

fn rejected(index: usize, removed: Value) -> Rejected {
    Rejected {
        index,
        errors: vec![RecordError::new(
            "missing_field",
            "missing required field id",
        )],
        removed,
    }
}

#[test]
fn pre_map_rejects_go_back_at_their_index() {
    let mut o = PreMapOptions {
        data: records(vec![json!(0), json!(1), json!(2), json!(3)]),
        ..Default::default()
    };
    let removed = PreMap::retain(&mut o, &[false, true, false, true]);
    assert_eq!(o.data, [json!(1), json!(3)]);
    assert_eq!(removed, [json!(0), json!(2)]);
    let out = PreMap::rejoin(
        vec![RecordResult::keep(json!(1)), RecordResult::keep(json!(3))],
        vec![rejected(0, json!(0)), rejected(2, json!(2))],
    );
    let text = crate::protocol::json::to_string(&out).unwrap();
    assert_eq!(
        text,
        r#"[{"errors":[{"code":"missing_field","message":"missing required field id"}]},{"data":1},{"errors":[{"code":"missing_field","message":"missing required field id"}]},{"data":3}]"#
    );
}

#[test]
fn pre_save_page_drops_and_reports_on_the_page() {
    let mut o = PreSavePageOptions {
        data: records(vec![json!({"id": 1}), json!({})]),
        ..Default::default()
    };
    let removed = PreSavePage::retain(&mut o, &[true, false]);
    assert_eq!(o.data.len(), 1);
    let out = PreSavePage::rejoin(
        PreSavePageResult::new(o.data, vec![json!({"code": "x", "message": "own"})]),
        vec![rejected(1, removed[0].clone())],
    );
    let text = crate::protocol::json::to_string(&out).unwrap();
    assert_eq!(
        text,
        r#"{"data":[{"id":1}],"errors":[{"code":"x","message":"own"},{"code":"missing_field","message":"data[1]: missing required field id"}],"abort":false,"newErrorsAndRetryData":[]}"#
    );
}

#[test]
fn import_post_submit_and_post_response_map_keep_their_shapes() {
    let out = Import::rejoin(vec![SubmitResponse::ok(7)], vec![rejected(0, json!({}))]);
    assert_eq!(
        crate::protocol::json::to_string(&out).unwrap(),
        r#"[{"statusCode":422,"errors":[{"code":"missing_field","message":"missing required field id"}],"ignored":false},{"statusCode":200,"ignored":false,"id":7}]"#
    );
    let mut o = PostSubmitOptions {
        post_map_data: records(vec![json!({}), json!({"id": 2})]),
        response_data: vec![SubmitResponse::ok(1), SubmitResponse::ok(2)],
        ..Default::default()
    };
    let removed = PostSubmit::retain(&mut o, &[false, true]);
    assert_eq!(o.response_data.len(), 1);
    let out = PostSubmit::rejoin(o.response_data, vec![rejected(0, removed[0].clone())]);
    assert_eq!(
        crate::protocol::json::to_string(&out).unwrap(),
        r#"[{"statusCode":200,"errors":[{"code":"missing_field","message":"missing required field id"}],"ignored":false,"id":1},{"statusCode":200,"ignored":false,"id":2}]"#
    );
    let mut o = PostResponseMapOptions {
        post_response_map_data: records(vec![json!({"a": 1}), json!({"b": 2})]),
        response_data: records(vec![json!(1)]),
        ..Default::default()
    };
    let removed = PostResponseMap::retain(&mut o, &[true, false]);
    // A parallel array of another length is left alone.
    assert_eq!(o.response_data, [json!(1)]);
    let out = PostResponseMap::rejoin(
        records(vec![json!({"a": 1, "x": true})]),
        vec![rejected(1, removed[0].clone())],
    );
    assert_eq!(out, [json!({"a": 1, "x": true}), json!({"b": 2})]);
}
