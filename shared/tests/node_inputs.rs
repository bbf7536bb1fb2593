//! Records holding what `JSON.parse` takes and a `serde_json::Value` cannot (a lone surrogate,
//! a number beyond f64, 500 nested arrays), and invalid UTF-8, in a page read through the
//! dispatcher as the server stack reads it: a function that passes the records through answers
//! what Node's `JSON.stringify` writes for them (one such record never fails its page); a
//! function that reads such a record fails the call with a clear error.

use integrator_lambda::dispatch::{CallRequest, Extension, Module, Stack};
use integrator_lambda::protocol::Envelope;
use integrator_lambda::types::{PreMapOptions, RecordResult};
use std::time::{Duration, Instant};

fn extension() -> Extension {
    let mut m = Module::new();
    m.pre_map("keep", |_inv, o: PreMapOptions| async move {
        Ok(o.data
            .into_iter()
            .map(RecordResult::keep)
            .collect::<Vec<_>>())
    });
    m.pre_map("readAll", |_inv, o: PreMapOptions| async move {
        Ok(o.data
            .into_iter()
            .map(|r| {
                let _ = r.get("id");
                RecordResult::keep(r)
            })
            .collect::<Vec<_>>())
    });
    Extension::builder().diy(m).build().expect("extension")
}

async fn call(function: &str, page: &[u8]) -> Result<String, String> {
    let body = [
        format!(r#"{{"diy":true,"type":"hook","function":"{function}","options":{{"data":"#)
            .as_bytes(),
        page,
        b"}}",
    ]
    .concat();
    let (envelope, _) = Envelope::from_json(body.into()).map_err(|e| format!("400: {e}"))?;
    let req = CallRequest {
        envelope,
        stack: Stack::Http,
        request_id: "r".into(),
        trace_id: None,
        deadline: Some(Instant::now() + Duration::from_secs(5)),
    };
    match extension().call(req).await {
        Ok(reply) => {
            Ok(String::from_utf8(reply.into_http().to_bytes().into_owned()).expect("UTF-8"))
        }
        Err(errors) => Err(format!("422: {errors:?}")),
    }
}

/// The page: ordinary records around ones only `JSON.parse` reads (140 nested arrays: past
/// serde_json's 128 levels).
fn page() -> Vec<u8> {
    let deep = format!("{}{}", "[".repeat(140), "]".repeat(140));
    [
        br#"[{"id":1},{"id":2,"s":"\ud800"},{"id":3,"n":1e999},{"id":4,"deep":"#,
        deep.as_bytes(),
        b"},{\"id\":5,\"bad\":\"a\xffb\"}, {\"id\": 6.0}]",
    ]
    .concat()
}

/// What Node's `JSON.stringify` writes for each record's `{"data": …}` answer (checked with
/// `node -e` on the same bytes read by a `Buffer`).
fn node_answer() -> String {
    let deep = format!("{}{}", "[".repeat(140), "]".repeat(140));
    format!(
        r#"[{{"data":{{"id":1}}}},{{"data":{{"id":2,"s":"\ud800"}}}},{{"data":{{"id":3,"n":null}}}},{{"data":{{"id":4,"deep":{deep}}}}},{{"data":{{"id":5,"bad":"a�b"}}}},{{"data":{{"id":6}}}}]"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_only_json_parse_reads_pass_through_as_node_writes_them() {
    assert_eq!(call("keep", &page()).await.expect("200"), node_answer());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_reading_such_a_record_fails_the_call_clearly() {
    let err = call("readAll", &page()).await.expect_err("fails");
    assert!(err.starts_with("422"), "{err}");
    assert!(
        err.contains("a record could not be read as a value"),
        "{err}"
    );
    // The readable records alone pass, read or not.
    let fine = b"[{\"id\":1},{\"id\":5,\"bad\":\"a\xffb\"}, {\"id\": 6.0}]";
    assert_eq!(
        call("readAll", fine).await.expect("200"),
        r#"[{"data":{"id":1}},{"data":{"id":5,"bad":"a�b"}},{"data":{"id":6}}]"#
    );
}
