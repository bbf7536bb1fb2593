use super::*;
use serde_json::json;

fn hdr(v: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(http::header::AUTHORIZATION, v.parse().unwrap());
    h
}

#[test]
fn header_rules() {
    assert_eq!(
        presented_token(&hdr("bearer abc"), None, None),
        Presented::Token("abc".into())
    );
    assert_eq!(
        presented_token(&hdr("Bearer  abc"), None, None),
        Presented::Invalid
    );
    assert_eq!(
        presented_token(&hdr("Basic abc"), None, None),
        Presented::Invalid
    );
    assert_eq!(presented_token(&hdr("abc"), None, None), Presented::Invalid);
    // A header is final: a right body token does not rescue a wrong header.
    let body = json!({"access_token": "abc"});
    assert_eq!(
        presented_token(&hdr("Bearer x"), body.get("access_token"), None),
        Presented::Token("x".into())
    );
}

#[test]
fn body_then_query() {
    let h = HeaderMap::new();
    let body = json!({"access_token": "b"});
    assert_eq!(
        presented_token(&h, body.get("access_token"), Some("access_token=q")),
        Presented::Token("b".into())
    );
    assert_eq!(
        presented_token(&h, json!({}).get("access_token"), Some("access_token=q%20")),
        Presented::Token("q ".into())
    );
    assert_eq!(presented_token(&h, None, Some("a=1")), Presented::Missing);
}

/// A source whose value the test changes, counting its reads.
struct Source {
    value: std::sync::Mutex<Result<String, String>>,
    reads: std::sync::atomic::AtomicUsize,
    delay: Duration,
}

impl Source {
    fn new(v: &str) -> Arc<Self> {
        Arc::new(Self {
            value: std::sync::Mutex::new(Ok(v.to_owned())),
            reads: Default::default(),
            delay: Duration::from_millis(20),
        })
    }
    fn set(&self, v: Result<&str, &str>) {
        *self.value.lock().unwrap() = v.map(str::to_owned).map_err(str::to_owned);
    }
    fn reads(&self) -> usize {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

#[async_trait::async_trait]
impl TokenSource for Source {
    async fn load(&self, _deadline: Instant) -> Result<TokenSet, String> {
        self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        self.value
            .lock()
            .unwrap()
            .clone()
            .map(|v| TokenSet::parse(&v))
    }
}

fn rotating(source: &Arc<Source>, interval: Duration) -> SystemTokens {
    let initial = TokenSet::parse("old-token");
    SystemTokens::refreshed(initial, source.clone()).with_interval(interval)
}

#[tokio::test]
async fn a_rotated_token_works_at_once_and_the_replaced_one_stops() {
    let source = Source::new("old-token");
    let tokens = rotating(&source, Duration::ZERO);
    assert!(tokens.accepts("old-token").await);
    assert_eq!(source.reads(), 0, "a matching token reads nothing");
    source.set(Ok("new-token"));
    assert!(tokens.accepts("new-token").await, "re-read on a miss");
    assert_eq!(source.reads(), 1);
    assert!(!tokens.accepts("old-token").await, "gone with the re-read");
    // During a rotation both are in the secret, and both work.
    source.set(Ok("new-token, newer-token"));
    assert!(tokens.accepts("newer-token").await && tokens.accepts("new-token").await);
}

#[tokio::test]
async fn wrong_tokens_cause_at_most_one_read_per_interval_and_none_at_once() {
    let source = Source::new("old-token");
    let tokens = Arc::new(rotating(&source, Duration::from_millis(300)));
    // Within the interval after the initial read: refused without a read.
    assert!(!tokens.accepts("wrong").await);
    assert_eq!(source.reads(), 0);
    tokio::time::sleep(Duration::from_millis(350)).await;
    // 100 wrong tokens at once: one read, the others wait for it.
    let all: Vec<_> = (0..100)
        .map(|i| {
            let t = tokens.clone();
            tokio::spawn(async move { t.accepts(&format!("wrong-{i}")).await })
        })
        .collect();
    for h in all {
        assert!(!h.await.unwrap());
    }
    assert_eq!(source.reads(), 1, "one read for the whole flood");
    // 100 more, one after the other, within the interval: no read.
    for i in 0..100 {
        assert!(!tokens.accepts(&format!("again-{i}")).await);
    }
    assert_eq!(source.reads(), 1);
    // A new token presented within the interval waits for it, then works.
    source.set(Ok("new-token"));
    let started = Instant::now();
    let mut accepted = false;
    for _ in 0..40 {
        if tokens.accepts("new-token").await {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(accepted && started.elapsed() < Duration::from_millis(700));
    assert_eq!(source.reads(), 2);
    assert!(!tokens.accepts("old-token").await);
}

#[tokio::test]
async fn a_failed_read_keeps_the_tokens_and_an_old_set_is_read_again() {
    let source = Source::new("old-token");
    let tokens = rotating(&source, Duration::ZERO).with_max_age(Duration::from_millis(50));
    source.set(Err("kms unavailable"));
    assert!(!tokens.accepts("wrong").await);
    assert!(
        tokens.accepts("old-token").await,
        "kept after a failed read"
    );
    // The token was removed from the secret; nobody presents the new one, but the set held
    // is past its age: the next request re-reads, and the removed token stops working.
    source.set(Ok("new-token"));
    tokio::time::sleep(Duration::from_millis(60)).await;
    let before = source.reads();
    assert!(!tokens.accepts("old-token").await);
    assert_eq!(source.reads(), before + 1);
    assert!(tokens.accepts("new-token").await);
    // A fixed set is never read.
    let fixed = SystemTokens::fixed(TokenSet::parse("a"));
    assert!(fixed.accepts("a").await && !fixed.accepts("b").await);
}

#[test]
fn rotation_accepts_every_configured_token() {
    let t = TokenSet::parse("old-token, new-token");
    assert_eq!(t.len(), 2);
    assert!(t.accepts("old-token") && t.accepts("new-token"));
    assert!(!t.accepts("other") && !t.accepts(""));
    assert!(TokenSet::parse("  ").is_empty());
}
