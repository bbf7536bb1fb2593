//! `jwksUrl` endpoints through the whole request pipeline, against a key set served over real
//! HTTP on 127.0.0.1 (which counts its requests), with tokens signed by PyJWT
//! (`jwks_vectors.json`, written by `scripts/jwks-vectors.py`) and, for key rotation and the
//! made-up-`kid` flood, by `jsonwebtoken` here.

use super::jwks::{
    DEFAULT_JWKS_TTL, JwksError, MAX_JWKS_BYTES, MAX_JWKS_TTL, MIN_JWKS_TTL, cache_ttl, parse_jwks,
};
use crate::incoming::{IncomingApp, IncomingConfig, IncomingStores};
use crate::outgoing::HttpClient;
use crate::store::dedup::{Dedup, MemoryDedup};
use crate::store::queue::MemoryQueue;
use crate::transport::http::HttpRequest;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn vectors() -> Value {
    serde_json::from_str(include_str!("jwks_vectors.json")).expect("vectors")
}

fn token(name: &str) -> String {
    vectors()["tokens"][name].as_str().expect(name).to_owned()
}

fn doc(name: &str) -> String {
    vectors()[name].to_string()
}

/// The identity provider's key set endpoint: what it serves, and how often it was asked.
struct Idp {
    doc: Mutex<String>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    hits: AtomicUsize,
}

impl Idp {
    fn set(&self, doc: String) {
        *self.doc.lock().unwrap() = doc;
    }
    fn fail(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }
    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// Serve `doc` at `http://127.0.0.1:<port>/.well-known/jwks.json` for the test's lifetime.
async fn idp(doc: String) -> (Arc<Idp>, String) {
    use axum::extract::State;
    use axum::response::IntoResponse;
    let state = Arc::new(Idp {
        doc: Mutex::new(doc),
        status: AtomicU16::new(200),
        delay_ms: AtomicU64::new(0),
        hits: AtomicUsize::new(0),
    });
    async fn jwks(State(idp): State<Arc<Idp>>) -> axum::response::Response {
        idp.hits.fetch_add(1, Ordering::SeqCst);
        let delay = idp.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let status = http::StatusCode::from_u16(idp.status.load(Ordering::SeqCst)).unwrap();
        let body = idp.doc.lock().unwrap().clone();
        (
            status,
            [
                ("content-type", "application/json"),
                ("cache-control", "public, max-age=300"),
            ],
            body,
        )
            .into_response()
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/.well-known/jwks.json", axum::routing::get(jwks))
        .with_state(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        state,
        format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
    )
}

fn app_with(auth: Value, refetch: Duration) -> IncomingApp {
    let config = IncomingConfig::from_json(&json!({"idp": {"auth": auth}}).to_string()).unwrap();
    let stores = IncomingStores::new(
        Arc::new(Dedup::new(Arc::new(MemoryDedup::default()))),
        Arc::new(MemoryQueue::default()),
    );
    IncomingApp::new(config, stores)
        .unwrap()
        .with_http(HttpClient::hyper())
        .with_jwks_refetch(refetch)
}

/// The PyJWT tokens' endpoint: their audience and issuer, no lifetime limit (they are valid
/// until 2100).
fn app(url: &str, refetch: Duration) -> IncomingApp {
    app_with(
        json!({"type": "jwt", "jwksUrl": url, "audience": "extension",
               "issuer": "https://idp.example.com", "maxLifetimeSecs": null}),
        refetch,
    )
}

async fn post(app: &IncomingApp, token: &str) -> (u16, Value, HeaderMap) {
    let mut h = HeaderMap::new();
    h.insert("content-type", HeaderValue::from_static("application/json"));
    h.insert(
        "authorization",
        HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
    );
    let req = HttpRequest {
        method: Method::POST,
        path: String::new(),
        query: None,
        headers: h,
        body: Bytes::from_static(br#"{"event":"contact.updated"}"#),
        deadline: None,
        request_id: Some("req-1".into()),
    };
    let r = app.handle("idp", req).await;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let v = serde_json::from_slice(r.body()).unwrap_or(Value::Null);
    (status, v, headers)
}

const REFUSED: &str = "The request is not authenticated for this endpoint.";

fn refused(s: u16, v: &Value) {
    assert_eq!(s, 401, "{v}");
    assert_eq!(v["errors"][0]["message"], REFUSED, "{v}");
}

const LONG: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn rs256_es256_and_eddsa_tokens_signed_by_pyjwt_are_accepted() {
    let (idp, url) = idp(doc("jwks")).await;
    let app = app(&url, LONG);
    for name in ["rs256", "es256", "eddsa"] {
        let (s, v, _) = post(&app, &token(name)).await;
        assert_eq!(s, 200, "{name}: {v}");
    }
    // One fetch served all three.
    assert_eq!(idp.hits(), 1);
}

/// Tampered, expired, wrong audience, algorithm confusion (an RS256 token naming the EC key,
/// HS256 keyed with the public key's PEM or JWK, `none`), an encryption key, and a `kid` the
/// set lacks: each a 401 with one and the same body.
#[tokio::test]
async fn forged_expired_and_confused_tokens_are_refused_with_one_body() {
    let (_idp, url) = idp(doc("jwks")).await;
    let app = app(&url, LONG);
    let good = token("es256");
    let (head, rest) = good.split_once('.').unwrap();
    let (claims, sig) = rest.split_once('.').unwrap();
    let mut tampered_sig = sig.to_owned().into_bytes();
    tampered_sig[5] = if tampered_sig[5] == b'A' { b'B' } else { b'A' };
    use base64::Engine;
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let other_claims = b64(&json!({"sub": "admin", "aud": "extension",
        "iss": "https://idp.example.com", "exp": 4_102_444_800u64}));
    let none = format!(
        "{}.{other_claims}.",
        b64(&json!({"alg": "none", "kid": "ec-1"}))
    );
    let cases = [
        (
            "tampered signature",
            format!(
                "{head}.{claims}.{}",
                String::from_utf8(tampered_sig).unwrap()
            ),
        ),
        ("tampered claims", format!("{head}.{other_claims}.{sig}")),
        ("expired", token("es256_expired")),
        ("wrong audience", token("es256_wrong_audience")),
        ("RS256 naming the EC key", token("rs256_naming_the_ec_key")),
        (
            "HS256 keyed with the public PEM",
            token("hs256_with_the_public_pem"),
        ),
        ("HS256 keyed with the JWK", token("hs256_with_the_jwk")),
        ("alg none", none),
        ("encryption key", token("rs256_with_the_encryption_key")),
        ("kid not in the set", token("rs256_rotated")),
        ("not a JWT", "abc.def".into()),
    ];
    let mut bodies = Vec::new();
    for (what, t) in &cases {
        let (s, v, h) = post(&app, t).await;
        refused(s, &v);
        assert_eq!(
            h["www-authenticate"], r#"Bearer realm="incoming", error="invalid_token""#,
            "{what}"
        );
        bodies.push(v);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
}

#[tokio::test]
async fn an_endpoint_accepts_only_the_algorithms_it_names() {
    let (_idp, url) = idp(doc("jwks")).await;
    let app = app_with(
        json!({"type": "jwt", "jwksUrl": url, "algorithms": ["ES256"], "maxLifetimeSecs": null}),
        LONG,
    );
    assert_eq!(post(&app, &token("es256")).await.0, 200);
    for name in ["rs256", "eddsa"] {
        let (s, v, _) = post(&app, &token(name)).await;
        refused(s, &v);
    }
}

fn rs256(kid: &str, private: &str) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    crate::incoming::jwt_crypto::install();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    let now = crate::time::EpochSeconds::now().0;
    let claims = json!({"sub": "crm", "aud": "extension", "iss": "https://idp.example.com",
                        "iat": now, "exp": now + 300});
    encode(
        &h,
        &claims,
        &EncodingKey::from_rsa_pem(private.as_bytes()).unwrap(),
    )
    .unwrap()
}

const RS1: &str = include_str!("../../../../tests/fixtures/jwt/rs256-private.pem");
const RS2: &str = include_str!("../../../../tests/fixtures/jwt/other-private.pem");

#[tokio::test]
async fn an_unknown_kid_fetches_the_set_again_and_the_rotated_key_is_accepted() {
    let (idp, url) = idp(doc("jwks")).await;
    let app = app(&url, Duration::ZERO);
    assert_eq!(post(&app, &rs256("rsa-1", RS1)).await.0, 200);
    assert_eq!(idp.hits(), 1);
    // The provider rotates: rsa-2 joins the set; its first token makes one fetch.
    idp.set(doc("jwks_rotated"));
    assert_eq!(post(&app, &rs256("rsa-2", RS2)).await.0, 200);
    assert_eq!(idp.hits(), 2);
    // Both keys now come from the cache.
    assert_eq!(post(&app, &rs256("rsa-1", RS1)).await.0, 200);
    assert_eq!(post(&app, &token("rs256_rotated")).await.0, 200);
    assert_eq!(idp.hits(), 2);
}

#[tokio::test]
async fn a_flood_of_made_up_kids_fetches_at_most_once_per_interval() {
    let (idp, url) = idp(doc("jwks")).await;
    let app = Arc::new(app(&url, Duration::from_secs(30)));
    assert_eq!(post(&app, &rs256("rsa-1", RS1)).await.0, 200);
    // 200 tokens naming kids the set lacks, 20 at a time: no fetch (the last one is recent).
    for round in 0..10 {
        let mut tasks = Vec::new();
        for i in 0..20 {
            let app = app.clone();
            let t = rs256(&format!("bogus-{round}-{i}"), RS1);
            tasks.push(tokio::spawn(async move { post(&app, &t).await }));
        }
        for t in tasks {
            let (s, v, _) = t.await.unwrap();
            refused(s, &v);
        }
    }
    assert_eq!(
        idp.hits(),
        1,
        "made-up kids must not reach the identity provider"
    );
}

#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let (idp, url) = idp(doc("jwks")).await;
    idp.delay_ms.store(200, Ordering::SeqCst);
    let app = Arc::new(app(&url, Duration::ZERO));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let app = app.clone();
        tasks.push(tokio::spawn(
            async move { post(&app, &token("es256")).await.0 },
        ));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(idp.hits(), 1);
}

/// Nothing cached and the provider failing: 503 with Retry-After (the sender retries; nothing
/// is lost), then accepted once the provider answers.
#[tokio::test]
async fn a_provider_down_at_start_answers_503_until_it_is_back() {
    let (idp, url) = idp(doc("jwks")).await;
    idp.fail(500);
    let app = app(&url, Duration::ZERO);
    let (s, v, h) = post(&app, &token("es256")).await;
    assert_eq!(s, 503, "{v}");
    assert_eq!(h["retry-after"], "5");
    assert!(!v.to_string().contains("127.0.0.1"), "{v}");
    idp.fail(200);
    assert_eq!(post(&app, &token("es256")).await.0, 200);

    // Nothing listening at all.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = app_for_port(closed);
    assert_eq!(post(&app, &token("es256")).await.0, 503);
}

fn app_for_port(port: u16) -> IncomingApp {
    app(
        &format!("http://127.0.0.1:{port}/.well-known/jwks.json"),
        Duration::ZERO,
    )
}

/// Keys already fetched stay in use while the provider fails; a `kid` they lack is a 401.
#[tokio::test]
async fn a_failed_refresh_keeps_serving_the_cached_keys() {
    let (idp, url) = idp(doc("jwks")).await;
    let app = app(&url, Duration::ZERO);
    assert_eq!(post(&app, &token("rs256")).await.0, 200);
    idp.fail(503);
    let (s, v, _) = post(&app, &token("rs256_rotated")).await;
    refused(s, &v);
    assert!(idp.hits() > 1, "the unknown kid tried a fetch");
    for name in ["rs256", "es256", "eddsa"] {
        assert_eq!(post(&app, &token(name)).await.0, 200, "{name}");
    }
    // A garbage answer is a failed fetch too: the cached keys stay.
    idp.fail(200);
    idp.set("<html>maintenance</html>".into());
    let (s, v, _) = post(&app, &token("rs256_rotated")).await;
    refused(s, &v);
    assert_eq!(post(&app, &token("es256")).await.0, 200);
}

#[tokio::test]
async fn an_oversized_or_malformed_key_set_is_not_used() {
    let big = json!({"keys": [], "padding": "x".repeat(MAX_JWKS_BYTES)}).to_string();
    for bad in [big, "not json".into(), r#"{"keys": "none"}"#.into()] {
        let (_idp, url) = idp(bad).await;
        let (s, v, _) = post(&app(&url, Duration::ZERO), &token("es256")).await;
        assert_eq!(s, 503, "{v}");
    }
}

#[test]
fn the_parser_keeps_only_usable_signing_keys() {
    let set = parse_jwks(doc("jwks").as_bytes()).unwrap();
    let mut kids: Vec<_> = set.keys().cloned().collect();
    kids.sort();
    assert_eq!(kids, ["ec-1", "ed-1", "rsa-1"]);
    let ec = vectors()["jwks"]["keys"][1].clone();
    let with = |f: &str, v: Value| {
        let mut k = ec.clone();
        k[f] = v;
        json!({"keys": [k]}).to_string()
    };
    let skipped = [
        with("alg", json!("RS256")),
        with("alg", json!("HS256")),
        with("use", json!("enc")),
        with("crv", json!("P-384")),
        with("kty", json!("oct")),
        with("x", json!("AAAA")),
        with("x", json!("!!not base64!!")),
        with("kid", json!(7)),
        with("kid", json!("k".repeat(300))),
        json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "ec-1"}]}).to_string(),
        json!({"keys": [1, null, "x", []]}).to_string(),
    ];
    for s in skipped {
        assert!(parse_jwks(s.as_bytes()).unwrap().is_empty(), "{s}");
    }
    assert_eq!(parse_jwks(b"[]").unwrap_err(), JwksError::NotAKeySet);
    assert_eq!(parse_jwks(b"{").unwrap_err(), JwksError::NotAKeySet);
    let many = json!({"keys": vec![ec.clone(); 101]}).to_string();
    assert_eq!(
        parse_jwks(many.as_bytes()).unwrap_err(),
        JwksError::TooManyKeys
    );
    let big = vec![b' '; MAX_JWKS_BYTES + 1];
    assert_eq!(parse_jwks(&big).unwrap_err(), JwksError::TooLarge);
}

#[test]
fn the_cache_time_follows_max_age_within_bounds() {
    let ttl = |v: &str| {
        let mut h = HeaderMap::new();
        h.insert("cache-control", HeaderValue::from_str(v).unwrap());
        cache_ttl(&h)
    };
    assert_eq!(cache_ttl(&HeaderMap::new()), DEFAULT_JWKS_TTL);
    assert_eq!(ttl("public, max-age=3600"), Duration::from_secs(3600));
    assert_eq!(ttl("max-age=1"), MIN_JWKS_TTL);
    assert_eq!(ttl("no-store"), MIN_JWKS_TTL);
    assert_eq!(ttl("max-age=99999999999"), MAX_JWKS_TTL);
    assert_eq!(ttl("max-age=nonsense"), DEFAULT_JWKS_TTL);
}

#[test]
fn a_jwks_endpoint_is_checked_at_start_up() {
    let url = "https://idp.example.com/.well-known/jwks.json";
    let bad = [
        (
            json!({"type": "jwt", "jwksUrl": url, "algorithm": "RS256", "publicKey": "x"}),
            "exactly one",
        ),
        (
            json!({"type": "jwt", "jwksUrl": url, "secret": "x"}),
            "exactly one",
        ),
        (json!({"type": "jwt"}), "jwksUrl"),
        (
            json!({"type": "jwt", "jwksUrl": url, "algorithms": ["HS256"]}),
            "HS256",
        ),
        (
            json!({"type": "jwt", "jwksUrl": url, "algorithm": "HS256"}),
            "HS256",
        ),
        (
            json!({"type": "jwt", "jwksUrl": "http://idp.example.com/jwks.json"}),
            "https",
        ),
        (
            json!({"type": "jwt", "jwksUrl": "ftp://127.0.0.1/jwks.json"}),
            "https",
        ),
        (json!({"type": "jwt", "jwksUrl": "not a url"}), "URL"),
        (
            json!({"type": "jwt", "algorithm": "ES256", "publicKey": "x"}),
            "jwksUrl",
        ),
        (
            json!({"type": "jwt", "algorithm": "RS256", "publicKey": "x", "algorithms": ["RS256"]}),
            "algorithms",
        ),
    ];
    for (auth, says) in bad {
        let e = IncomingConfig::from_json(&json!({"idp": {"auth": auth}}).to_string())
            .map(drop)
            .unwrap_err()
            .to_string();
        assert!(e.contains(says), "{auth}: {e}");
    }
    for ok in [url, "http://127.0.0.1:9/jwks", "http://localhost/jwks"] {
        IncomingConfig::from_json(
            &json!({"idp": {"auth": {"type": "jwt", "jwksUrl": ok}}}).to_string(),
        )
        .unwrap();
    }
}

/// The reasons behind the one 401 body: algorithm confusion is caught before any signature
/// check (the token's `alg` must be the key's), an encryption key is never found.
#[tokio::test]
async fn algorithm_confusion_is_refused_before_the_signature_check() {
    use super::AuthFailure;
    use super::config::JwtConfig;
    use super::jwks::{Jwks, JwksRefusal};
    let (_idp, url) = idp(doc("jwks")).await;
    let mut config = JwtConfig::jwks(url);
    config.max_lifetime_secs = None;
    let jwks = Jwks::new(&config).unwrap();
    let client = HttpClient::hyper();
    let verdict = |t: String| {
        let (jwks, client) = (&jwks, &client);
        async move { jwks.verify(&t, client, LONG).await.map(drop) }
    };
    let wrong_alg = Err(JwksRefusal::Refused(AuthFailure::WrongAlgorithm));
    for name in [
        "rs256_naming_the_ec_key",
        "hs256_with_the_public_pem",
        "hs256_with_the_jwk",
    ] {
        assert_eq!(verdict(token(name)).await, wrong_alg, "{name}");
    }
    assert_eq!(
        verdict(token("rs256_with_the_encryption_key")).await,
        Err(JwksRefusal::Refused(AuthFailure::BadTokenSignature))
    );
    assert_eq!(verdict(token("es256")).await, Ok(()));
}

/// A token without `kid` is verified with the set's only key, and refused when the set has
/// several.
#[tokio::test]
async fn a_token_without_kid_uses_the_only_key_of_the_set() {
    let one = json!({"keys": [vectors()["jwks"]["keys"][0].clone()]}).to_string();
    let (_idp, url) = idp(one).await;
    let no_kid = {
        use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
        crate::incoming::jwt_crypto::install();
        let now = crate::time::EpochSeconds::now().0;
        let claims =
            json!({"aud": "extension", "iss": "https://idp.example.com", "exp": now + 300});
        let key = EncodingKey::from_rsa_pem(RS1.as_bytes()).unwrap();
        encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
    };
    assert_eq!(post(&app(&url, LONG), &no_kid).await.0, 200);
    let (_idp, url) = idp(doc("jwks")).await;
    let (s, v, _) = post(&app(&url, LONG), &no_kid).await;
    refused(s, &v);
}

/// `jtiReplay` works on a `jwksUrl` endpoint as on a fixed-key one: a token is accepted once.
#[tokio::test]
async fn a_single_use_token_from_the_key_set_is_accepted_once() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let (_idp, url) = idp(doc("jwks")).await;
    let app = app_with(
        json!({"type": "jwt", "jwksUrl": url, "jtiReplay": true}),
        LONG,
    );
    crate::incoming::jwt_crypto::install();
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("rsa-1".into());
    let now = crate::time::EpochSeconds::now().0;
    let claims = json!({"jti": "once-1", "iat": now, "exp": now + 300});
    let key = EncodingKey::from_rsa_pem(RS1.as_bytes()).unwrap();
    let t = encode(&h, &claims, &key).unwrap();
    assert_eq!(post(&app, &t).await.0, 200);
    let (s, v, _) = post(&app, &t).await;
    refused(s, &v);
}
