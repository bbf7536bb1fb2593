//! Unit tests of the secrets service, its checks and the dev-file backend.

use super::*;
use async_trait::async_trait;
use std::sync::atomic::AtomicU32;

/// Fails with `errors` (in order), then returns `value`.
struct Scripted {
    errors: Mutex<Vec<SecretError>>,
    calls: AtomicU32,
    delay: Duration,
}

impl Scripted {
    fn new(errors: Vec<SecretError>) -> Arc<Self> {
        Arc::new(Self {
            errors: Mutex::new(errors),
            calls: AtomicU32::new(0),
            delay: Duration::ZERO,
        })
    }
}

#[async_trait]
impl SecretStore for Scripted {
    async fn fetch(&self, _name: &str) -> Result<SecretString, SecretError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        let mut errors = self.errors.lock().unwrap();
        if errors.is_empty() {
            Ok(SecretString::from("scripted-value"))
        } else {
            Err(errors.remove(0))
        }
    }
    async fn store(&self, _name: &str, _value: &SecretString) -> Result<(), SecretError> {
        Ok(())
    }
}

fn transient() -> SecretError {
    SecretError::unavailable("n", "ThrottlingException: slow down", true)
}

#[tokio::test]
async fn retries_transient_then_succeeds() {
    let b = Scripted::new(vec![transient(), transient()]);
    let store = Secrets::new(b.clone());
    let started = Instant::now();
    let v = store.get("n", None).await.unwrap();
    assert_eq!(v.expose_secret(), "scripted-value");
    assert_eq!(store.fetches(), 3);
    // 50 + 100 ms of backoff
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn never_retries_permanent_failures() {
    for e in [
        SecretError::NotFound { name: "n".into() },
        SecretError::AccessDenied { name: "n".into() },
        SecretError::WrongContext { name: "n".into() },
        SecretError::Corrupt { name: "n".into() },
        SecretError::unavailable("n", "ResourceNotFoundException: no table", false),
    ] {
        let store = Secrets::new(Scripted::new(vec![e.clone()]));
        assert_eq!(store.get("n", None).await.unwrap_err(), e);
        assert_eq!(store.fetches(), 1);
    }
}

#[tokio::test]
async fn gives_up_after_five_attempts() {
    let store = Secrets::new(Scripted::new(vec![transient(); 10]));
    let e = store.get("n", None).await.unwrap_err();
    assert!(e.is_transient());
    assert!(e.to_string().contains("after 5 attempts"), "{e}");
    assert_eq!(store.fetches(), 5);
}

#[tokio::test]
async fn deadline_bounds_retries() {
    let store = Secrets::new(Scripted::new(vec![transient(); 10]));
    let started = Instant::now();
    let e = store
        .get("n", Some(Instant::now() + Duration::from_millis(120)))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_millis(200));
    assert!(matches!(e, SecretError::Unavailable { .. }));
    assert!(e.to_string().contains("deadline"), "{e}");
    assert!(store.fetches() < 5);
}

#[tokio::test]
async fn concurrent_gets_share_one_fetch() {
    let b = Arc::new(Scripted {
        errors: Mutex::new(vec![]),
        calls: AtomicU32::new(0),
        delay: Duration::from_millis(50),
    });
    let store = Arc::new(Secrets::new(b.clone()));
    let (a, c) = tokio::join!(store.get("n", None), store.get("n", None));
    assert_eq!(a.unwrap().expose_secret(), c.unwrap().expose_secret());
    assert_eq!(b.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn names_and_values() {
    for ok in ["a", "API_key-1.prod", &"x".repeat(128)] {
        validate_name(ok).unwrap();
    }
    for bad in ["", "a b", "a/b", "é", "a#b", &"x".repeat(129)] {
        assert!(
            matches!(validate_name(bad), Err(SecretError::Invalid { .. })),
            "{bad}"
        );
    }
    assert_eq!(
        value_from_input("n", b"v\n".to_vec())
            .unwrap()
            .expose_secret(),
        "v"
    );
    assert_eq!(
        value_from_input("n", b"v\r\n".to_vec())
            .unwrap()
            .expose_secret(),
        "v"
    );
    assert_eq!(
        value_from_input("n", b"v\n\n".to_vec())
            .unwrap()
            .expose_secret(),
        "v\n"
    );
    assert!(value_from_input("n", b"\n".to_vec()).is_err());
    assert!(value_from_input("n", vec![0xff, 0xfe]).is_err());
    assert!(value_from_input("n", vec![b'a'; MAX_VALUE_LEN + 1]).is_err());
}

#[test]
fn ext_error_codes_name_the_secret() {
    let e: crate::ExtError = SecretError::WrongContext { name: "crm".into() }.into();
    assert_eq!(e.code.as_deref(), Some("secret_invalid_context"));
    assert!(e.message.contains("crm"));
    let e: crate::ExtError = SecretError::NotFound { name: "crm".into() }.into();
    assert_eq!(e.code.as_deref(), Some("secret_not_found"));
}

#[tokio::test]
async fn local_file_round_trip_is_private() {
    let dir = std::env::temp_dir().join(format!("secrets-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("secrets.dev.json");
    let _ = std::fs::remove_file(&path);
    let local = DevFileSecrets::new(&path);
    assert_eq!(
        local.fetch("a").await.unwrap_err(),
        SecretError::NotFound { name: "a".into() }
    );
    local
        .store("a", &SecretString::from("one-value"))
        .await
        .unwrap();
    local
        .store("b", &SecretString::from("two-value"))
        .await
        .unwrap();
    assert_eq!(local.fetch("a").await.unwrap().expose_secret(), "one-value");
    assert_eq!(local.fetch("b").await.unwrap().expose_secret(), "two-value");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
