//! Unit tests of dedup keys, page checks and the in-memory store.

use super::*;
use crate::time::EpochSeconds;
use async_trait::async_trait;
use serde_json::json;

fn memory() -> Dedup {
    Dedup::new(Arc::new(MemoryDedup::default()))
}

#[tokio::test]
async fn first_is_new_then_duplicate() {
    let s = MemoryDedup::default();
    let k = DedupKey::from_values("ep", &[Some(&json!({"a": 1}))]);
    assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::New);
    assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::Duplicate);
    let other_scope = DedupKey::from_values("other", &[Some(&json!({"a": 1}))]);
    assert_ne!(k, other_scope);
    assert_eq!(k.as_str().len(), 64);
}

#[test]
fn field_paths_walk_objects_and_arrays() {
    let r = json!({"customer": {"id": 7}, "lines": [{"sku": "A"}, {"sku": "B"}]});
    assert_eq!(field_at(&r, "customer.id"), Some(&json!(7)));
    assert_eq!(field_at(&r, "lines.1.sku"), Some(&json!("B")));
    assert_eq!(field_at(&r, "lines.2.sku"), None);
    assert_eq!(field_at(&r, "lines.x"), None);
    assert_eq!(field_at(&r, "customer.id.x"), None);
}

#[test]
fn key_fields_are_validated() {
    assert_eq!(
        KeyFields::new(Vec::<String>::new()),
        Err(KeyFieldsError::Empty)
    );
    assert_eq!(
        KeyFields::new(["a", "b", "c", "d", "e", "f"]),
        Err(KeyFieldsError::TooMany(6))
    );
    assert_eq!(
        KeyFields::new(["a", " "]),
        Err(KeyFieldsError::EmptyPath(1))
    );
    let f = KeyFields::new([" customer.id ", "lines.0.sku"]).unwrap();
    assert_eq!(f.paths(), ["customer.id", "lines.0.sku"]);
    let six: Vec<String> = (0..6).map(|i| format!("f{i}")).collect();
    assert_eq!(
        key_for("s", &json!({}), &six),
        Err(KeyFieldsError::TooMany(6))
    );
}

#[test]
fn keys_depend_on_selected_values_and_scope_only() {
    let f = KeyFields::new(["customer.id", "lines.0.sku"]).unwrap();
    let a = json!({"customer": {"id": 7, "name": "x"}, "lines": [{"sku": "A"}], "n": 1});
    let b = json!({"n": 2, "lines": [{"sku": "A", "qty": 3}], "customer": {"id": 7}});
    let c = json!({"customer": {"id": 8}, "lines": [{"sku": "A"}]});
    assert_eq!(f.key("s", &a), f.key("s", &b));
    assert_ne!(f.key("s", &a), f.key("s", &c));
    assert_ne!(f.key("s", &a), f.key("t", &a));
    assert_eq!(
        f.key("s", &a),
        DedupKey::from_values("s", &[Some(&json!(7)), Some(&json!("A"))])
    );
    assert!(f.any_present(&a));
    assert!(!f.any_present(&json!({"customer": {"id": null}})));
}

#[tokio::test]
async fn a_page_keeps_order_and_flags_in_page_duplicates() {
    let d = memory();
    let fields = vec!["id".to_owned()];
    let page = [
        json!({"id": 1}),
        json!({"id": 2}),
        json!({"id": 1}),
        json!({"id": 3}),
    ];
    let out = check_page(&d, "s", &page, &fields, 2).await.unwrap();
    use Sighting::*;
    assert_eq!(out, [New, New, Duplicate, New]);
    let again = check_page(&d, "s", &page[1..], &fields, 0).await.unwrap();
    assert_eq!(again, [Duplicate, Duplicate, Duplicate]);
    let whole = check_page(
        &d,
        "s",
        &[json!({"id": 1}), json!({"id": 1, "x": 0})],
        &[],
        4,
    )
    .await
    .unwrap();
    assert_eq!(whole, [New, New]);
    let err = check_page(&d, "s", &page, &["".to_owned()], 1)
        .await
        .unwrap_err();
    assert!(!err.is_retryable());
}

/// Handlers need `Send + 'static` futures: owned inputs must give one.
#[test]
fn page_checks_are_send() {
    fn is_send<F: std::future::Future + Send + 'static>(_: F) {}
    let d = memory();
    is_send(async move {
        let records = vec![json!({"id": 1})];
        let fields = vec!["id".to_owned()];
        check_page(&d, "s", &records, &fields, 2).await
    });
}

#[tokio::test]
async fn claims_are_pending_until_confirmed_and_free_again_when_released() {
    let d = memory();
    let k = DedupKey::from_caller("s", "k");
    let lease = Duration::from_secs(30);
    let Claim::Claimed(t) = d.claim(&k, lease).await.unwrap() else {
        panic!("a new key is claimed")
    };
    assert_eq!(d.claim(&k, lease).await.unwrap(), Claim::InFlight);
    d.release(&k, "someone else").await.unwrap();
    assert_eq!(
        d.claim(&k, lease).await.unwrap(),
        Claim::InFlight,
        "not theirs to free"
    );
    d.release(&k, &t).await.unwrap();
    let Claim::Claimed(t2) = d.claim(&k, lease).await.unwrap() else {
        panic!("released, so free again")
    };
    d.confirm(&k, &t2).await.unwrap();
    assert_eq!(d.claim(&k, lease).await.unwrap(), Claim::Duplicate);
    assert_eq!(d.check(&k).await.unwrap(), Sighting::Duplicate);
}

#[tokio::test]
async fn a_claim_whose_lease_ran_out_is_taken_over() {
    let s = MemoryDedup::default();
    let k = DedupKey::from_caller("s", "k");
    s.keys.lock().unwrap().insert(
        k.as_str().to_owned(),
        (EpochSeconds::now().0 - 1, Some("dead holder".into())),
    );
    let claim = s
        .claim(&k, Duration::from_secs(5), DEFAULT_TTL)
        .await
        .unwrap();
    assert!(matches!(claim, Claim::Claimed(_)), "{claim:?}");
    s.confirm(&k, "dead holder", DEFAULT_TTL).await.unwrap();
    assert_eq!(
        s.claim(&k, Duration::from_secs(5), DEFAULT_TTL)
            .await
            .unwrap(),
        Claim::InFlight,
        "the late holder's confirm changed nothing"
    );
}

#[tokio::test]
async fn a_failed_page_leaves_no_key_marked() {
    // The third check fails: the first two keys, marked new, are forgotten again.
    struct FailsThird(MemoryDedup, std::sync::atomic::AtomicUsize);
    #[async_trait]
    impl DedupStore for FailsThird {
        async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
            if self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 2 {
                return Err(StoreError("injected".into()));
            }
            self.0.check(key, ttl).await
        }
        async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
            self.0.forget(key).await
        }
    }
    let store = Arc::new(FailsThird(MemoryDedup::default(), Default::default()));
    let d = Dedup::new(store.clone());
    let page: Vec<Value> = (0..4).map(|i| json!({"id": i})).collect();
    let fields = vec!["id".to_owned()];
    assert!(check_page(&d, "s", &page, &fields, 1).await.is_err());
    let retry = check_page(&d, "s", &page, &fields, 1).await.unwrap();
    assert_eq!(retry, vec![Sighting::New; 4], "the retried page is all new");
}

#[tokio::test]
async fn a_page_that_runs_out_of_time_marks_nothing() {
    // The fourth check never answers: past the call's deadline the page fails and the
    // three keys already marked are forgotten.
    struct HangsFourth(MemoryDedup, std::sync::atomic::AtomicUsize);
    #[async_trait]
    impl DedupStore for HangsFourth {
        async fn check(&self, key: &DedupKey, ttl: Duration) -> Result<Sighting, StoreError> {
            if self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 3 {
                std::future::pending::<()>().await;
            }
            self.0.check(key, ttl).await
        }
        async fn forget(&self, key: &DedupKey) -> Result<(), StoreError> {
            self.0.forget(key).await
        }
    }
    let d = Dedup::new(Arc::new(HangsFourth(
        MemoryDedup::default(),
        Default::default(),
    )));
    let page: Vec<Value> = (0..5).map(|i| json!({"id": i})).collect();
    let fields = vec!["id".to_owned()];
    let call = d.for_call(Instant::now() + Duration::from_millis(200));
    assert!(check_page(&call, "s", &page, &fields, 1).await.is_err());
    let retry = check_page(&d, "s", &page, &fields, 1).await.unwrap();
    assert_eq!(retry, vec![Sighting::New; 5]);
}

#[tokio::test]
async fn an_expired_key_is_new_again() {
    let s = MemoryDedup::default();
    let k = DedupKey::from_caller("s", "k");
    s.keys
        .lock()
        .unwrap()
        .insert(k.as_str().to_owned(), (EpochSeconds::now().0 - 10, None));
    assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::New);
    assert_eq!(s.check(&k, DEFAULT_TTL).await.unwrap(), Sighting::Duplicate);
}

#[tokio::test]
async fn forgetting_or_a_zero_ttl_makes_a_key_new_again() {
    let d = memory();
    let k = DedupKey::from_caller("s", "k");
    assert_eq!(d.check(&k).await.unwrap(), Sighting::New);
    d.forget(&k).await.unwrap();
    assert_eq!(d.check(&k).await.unwrap(), Sighting::New);
    assert_eq!(
        d.store.check(&k, Duration::ZERO).await.unwrap(),
        Sighting::Duplicate
    );
    assert_eq!(d.check(&k).await.unwrap(), Sighting::New);
}

/// The in-memory store is bounded: a full store drops its expired keys to make room, and when
/// every key is alive it refuses a new one (an error, never a live key dropped); a key it holds
/// is still answered.
#[tokio::test]
async fn a_full_memory_store_drops_expired_keys_and_refuses_rather_than_forget_a_live_one() {
    let s = MemoryDedup::with_capacity(2);
    let key = |i: u32| DedupKey::from_values("cap", &[Some(&json!(i))]);
    assert_eq!(s.check(&key(1), DEFAULT_TTL).await.unwrap(), Sighting::New);
    assert_eq!(s.check(&key(2), DEFAULT_TTL).await.unwrap(), Sighting::New);
    let full = s.check(&key(3), DEFAULT_TTL).await.expect_err("full");
    assert!(full.0.contains("full"), "{full}");
    assert!(
        s.claim(&key(3), Duration::from_secs(5), DEFAULT_TTL)
            .await
            .is_err()
    );
    // Keys it holds are still answered, and stay duplicates.
    assert_eq!(
        s.check(&key(1), DEFAULT_TTL).await.unwrap(),
        Sighting::Duplicate
    );
    // An expired key makes room.
    s.keys.lock().unwrap().insert(key(2).0.clone(), (1, None));
    assert_eq!(s.check(&key(3), DEFAULT_TTL).await.unwrap(), Sighting::New);
    assert_eq!(s.len(), 2);
    // A forgotten key frees its place at once.
    s.forget(&key(3)).await.unwrap();
    assert_eq!(s.len(), 1);
}
