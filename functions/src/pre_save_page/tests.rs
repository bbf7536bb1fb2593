//! Unit tests of `dropDuplicates` and `dropEmptyRecords`.

use super::*;
use integrator_lambda::Dedup;
use integrator_lambda::dispatch::Services;
use integrator_lambda::store::dedup::{DedupStore, MemoryDedup, Sighting, StoreError};
use std::sync::Arc;
use std::time::Duration;

fn dedup_inv() -> (Invocation, Arc<Dedup>) {
    let dedup = Arc::new(Dedup::new(Arc::new(MemoryDedup::default())));
    let inv = Invocation::for_test("dropDuplicates", Duration::from_secs(5))
        .with_services(Services::new().with_dedup(dedup.clone()));
    (inv, dedup)
}

fn page(v: Value) -> PreSavePageOptions {
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn drop_duplicates_drops_records_seen_before_and_keeps_order() {
    let (inv, _) = dedup_inv();
    let settings = json!({"dedupFields": ["id", "lines.0.sku"]});
    let first = drop_duplicates(
        inv.clone(),
        page(json!({
            "data": [
                {"id": 1, "lines": [{"sku": "A"}]},
                {"id": 2, "lines": [{"sku": "A"}]},
                {"id": 1, "lines": [{"sku": "A"}], "note": "same key, other content"},
                {"id": 1, "lines": [{"sku": "B"}]}
            ],
            "errors": [{"code": "earlier"}],
            "_exportId": "e1",
            "settings": settings
        })),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(&first).unwrap(),
        json!({
            "data": [
                {"id": 1, "lines": [{"sku": "A"}]},
                {"id": 2, "lines": [{"sku": "A"}]},
                {"id": 1, "lines": [{"sku": "B"}]}
            ],
            "errors": [{"code": "earlier"}],
            "abort": false,
            "newErrorsAndRetryData": []
        })
    );
    let retried = drop_duplicates(
        inv.clone(),
        page(json!({
            "data": [{"id": 3, "lines": [{"sku": "A"}]}, {"id": 2, "lines": [{"sku": "A"}]}, {"id": 4}],
            "_exportId": "e1",
            "settings": settings
        })),
    )
    .await
    .unwrap();
    assert_eq!(
        retried.data,
        vec![json!({"id": 3, "lines": [{"sku": "A"}]}), json!({"id": 4})]
    );
    // Another export has its own keys.
    let other = drop_duplicates(
        inv,
        page(json!({"data": [{"id": 2, "lines": [{"sku": "A"}]}], "_exportId": "e2", "settings": settings})),
    )
    .await
    .unwrap();
    assert_eq!(other.data.len(), 1);
}

#[tokio::test]
async fn drop_duplicates_mark_mode_keeps_and_reports() {
    let (inv, _) = dedup_inv();
    let settings = json!({"dedupFields": ["customer.id"], "dedupMode": "mark"});
    let out = drop_duplicates(
        inv,
        page(json!({
            "data": [{"customer": {"id": 7}}, {"customer": {"id": 8}}, {"customer": {"id": 7}}],
            "errors": [{"code": "earlier"}],
            "_flowId": "f1",
            "settings": settings
        })),
    )
    .await
    .unwrap();
    assert_eq!(out.data.len(), 3);
    assert_eq!(
        out.errors,
        vec![
            json!({"code": "earlier"}),
            json!({"code": "duplicate_record", "message": "record 2 was already seen by this export", "source": "dropDuplicates"})
        ]
    );
}

#[tokio::test]
async fn drop_duplicates_keeps_records_without_key_fields_and_skips_preview() {
    let (inv, _) = dedup_inv();
    let settings = json!({"dedupFields": ["id"]});
    let out = drop_duplicates(
        inv.clone(),
        page(json!({"data": [{"x": 1}, {"id": null}, {"x": 1}, null], "_exportId": "e", "settings": settings})),
    )
    .await
    .unwrap();
    assert_eq!(out.data.len(), 4);
    let preview =
        page(json!({"data": [{"id": 1}], "_exportId": "e", "preview": true, "settings": settings}));
    assert_eq!(
        drop_duplicates(inv.clone(), preview.clone())
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    assert_eq!(
        drop_duplicates(inv.clone(), preview)
            .await
            .unwrap()
            .data
            .len(),
        1
    );
    let real = page(json!({"data": [{"id": 1}], "_exportId": "e", "settings": settings}));
    assert_eq!(
        drop_duplicates(inv, real).await.unwrap().data.len(),
        1,
        "previews remembered nothing"
    );
}

#[tokio::test]
async fn drop_duplicates_rejects_bad_settings_and_missing_services() {
    let (inv, _) = dedup_inv();
    for settings in [
        json!(null),
        json!({}),
        json!({"dedupFields": "id"}),
        json!({"dedupFields": []}),
        json!({"dedupFields": ["id", ""]}),
        json!({"dedupFields": [1]}),
        json!({"dedupFields": ["a", "b", "c", "d", "e", "f"]}),
        json!({"dedupFields": ["id"], "dedupMode": "delete"}),
    ] {
        let err = drop_duplicates(
            inv.clone(),
            page(json!({"data": [], "_exportId": "e", "settings": settings})),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code.as_deref(), Some("invalid_settings"), "{settings}");
    }
    let ok_settings = json!({"dedupFields": ["id"]});
    let err = drop_duplicates(
        inv,
        page(json!({"data": [{"id": 1}], "settings": ok_settings})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("missing_scope"));
    let err = drop_duplicates(
        Invocation::for_test("dropDuplicates", Duration::from_secs(5)),
        page(json!({"data": [{"id": 1}], "_exportId": "e", "settings": ok_settings})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("dedup_unavailable"));
}

struct Down;
#[async_trait::async_trait]
impl DedupStore for Down {
    async fn check(
        &self,
        _: &integrator_lambda::store::dedup::DedupKey,
        _: Duration,
    ) -> Result<Sighting, StoreError> {
        Err(StoreError("ServiceUnavailable".into()))
    }
}

#[tokio::test]
async fn drop_duplicates_fails_the_page_when_the_store_fails() {
    let inv = Invocation::for_test("dropDuplicates", Duration::from_secs(5))
        .with_services(Services::new().with_dedup(Arc::new(Dedup::new(Arc::new(Down)))));
    let err = drop_duplicates(
        inv,
        page(json!({"data": [{"id": 1}], "_exportId": "e", "settings": {"dedupFields": ["id"]}})),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code.as_deref(), Some("dedup_unavailable"));
    assert!(
        err.message.contains("ServiceUnavailable"),
        "{}",
        err.message
    );
}

fn inv() -> Invocation {
    Invocation::for_test("dropEmptyRecords", Duration::from_secs(5))
}

#[tokio::test]
async fn drops_null_and_empty_records_and_reports_them() {
    let o: PreSavePageOptions = serde_json::from_value(json!({
        "data": [{"id": 1}, null, {}, "text", {"id": 2}],
        "errors": [{"code": "earlier", "message": "kept as is"}],
        "_exportId": "e1",
        "pageIndex": 0
    }))
    .unwrap();
    let out = drop_empty_records(inv(), o).await.unwrap();
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        json!({
            "data": [{"id": 1}, "text", {"id": 2}],
            "errors": [
                {"code": "earlier", "message": "kept as is"},
                {"code": "missing_required_field", "message": "record 1 is empty", "source": "preSavePage"},
                {"code": "missing_required_field", "message": "record 2 is empty", "source": "preSavePage"}
            ],
            "abort": false,
            "newErrorsAndRetryData": []
        })
    );
}

#[tokio::test]
async fn drops_records_missing_required_fields() {
    let o: PreSavePageOptions = serde_json::from_value(json!({
        "data": [
            {"id": 1, "customer": {"email": "a@example.com"}},
            {"id": 2, "customer": {}},
            {"customer": {"email": null}},
            {"id": 0, "customer": {"email": ""}}
        ],
        "settings": {"requiredFields": ["id", "customer.email"]}
    }))
    .unwrap();
    let out = drop_empty_records(inv(), o).await.unwrap();
    assert_eq!(
        out.data,
        vec![
            json!({"id": 1, "customer": {"email": "a@example.com"}}),
            json!({"id": 0, "customer": {"email": ""}})
        ]
    );
    assert_eq!(
        out.errors,
        vec![
            json!({"code": "missing_required_field", "message": "record 1 is missing field customer.email", "source": "preSavePage"}),
            json!({"code": "missing_required_field", "message": "record 2 is missing field id", "source": "preSavePage"}),
            json!({"code": "missing_required_field", "message": "record 2 is missing field customer.email", "source": "preSavePage"}),
        ]
    );
    assert!(!out.abort);
}

#[tokio::test]
async fn rejects_invalid_required_fields() {
    let o: PreSavePageOptions = serde_json::from_value(json!({
        "data": [{"id": 1}],
        "settings": {"requiredFields": "id"}
    }))
    .unwrap();
    let err = drop_empty_records(inv(), o).await.unwrap_err();
    assert_eq!(err.code.as_deref(), Some("invalid_settings"));
}
