//! `enrichRecords` (preMap): look each record's customer up in a CRM and put the answer under
//! `customer`, before mapping.
//!
//! For each record with `customerId`: `GET {settings.baseUrl}/customers/{customerId}` with
//! `Authorization: Bearer <secret crm-api-key>`; the JSON answer goes under `customer`.
//!
//! | case | result |
//! |---|---|
//! | `settings.baseUrl` missing or not an http(s) URL | the whole call fails: 422 `invalid_settings` |
//! | `settings.cacheSecs` not a number ≥ 0 | the whole call fails: 422 `invalid_settings` |
//! | a record without `customerId` (absent, `null`, `""`) | that record fails: `missing_field` |
//! | `customerId` neither a string nor an integer | that record fails: `invalid_field` |
//! | 2xx | `{"data": {…record, "customer": <answer>}}` |
//! | 404 | that record fails: `not_found` |
//! | 429, 5xx | retried by the client (back-off, `Retry-After`, within the deadline); still failing: that record fails `crm_error` |
//! | any other status, or an answer that is not JSON | that record fails: `crm_error` |
//! | the CRM unreachable, or the deadline reached | the whole call fails (`http_unreachable`, `http_timeout`): integrator.io retries the page |
//!
//! Answers are cached per base URL and `customerId` for `settings.cacheSecs` seconds (default
//! 300; `0`: no caching), so a second call within that time sends no request. The secret is
//! loaded once per call, and only when a request is needed. Up to 8 look-ups run at once (the
//! client's per-host limit applies on top).
//!
//! Each look-up counts one `CustomerLookups` (Count) in the function's own metrics
//! (`inv.metrics()`), with dimension `Outcome`: `hit` (answered from the cache), `miss`
//! (fetched from the CRM), `not_found` (the CRM answered 404) or `error` (the record failed
//! `crm_error`). Records without a usable `customerId` are not looked up and not counted.

use integrator_lambda::custom_metrics::Metric;
use integrator_lambda::types::{PreMapOptions, RecordError, RecordResult};
use integrator_lambda::{ExtError, ExtResult, Invocation, SecretString};
use serde_json::Value;
use std::time::Duration;

/// The secret holding the CRM's API key.
pub const SECRET: &str = "crm-api-key";
/// How long answers are cached when `settings.cacheSecs` is absent.
pub const DEFAULT_CACHE_SECS: u64 = 300;
/// What is escaped in a `customerId` put in the URL path (one segment: `/` and `%` too).
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');
/// Look-ups in flight at once.
const PARALLEL: usize = 8;
/// The function's metric: one per look-up, by `Outcome`.
pub const LOOKUPS_METRIC: &str = "CustomerLookups";

fn count_lookup(inv: &Invocation, outcome: &'static str) -> ExtResult<()> {
    inv.metrics()
        .add(Metric::count(LOOKUPS_METRIC, 1).dimension("Outcome", outcome))?;
    Ok(())
}

fn invalid(message: impl Into<String>) -> ExtError {
    ExtError::with_code("invalid_settings", message)
}

/// `settings.baseUrl` (no trailing `/`) and the cache lifetime.
fn parse_settings(settings: Option<&Value>) -> ExtResult<(String, Duration)> {
    let base = settings
        .and_then(|s| s.get("baseUrl"))
        .and_then(Value::as_str)
        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
        .ok_or_else(|| {
            invalid("settings.baseUrl is required: the CRM's base URL, e.g. https://crm.example.com/api")
        })?;
    let ttl = match settings.and_then(|s| s.get("cacheSecs")) {
        None | Some(Value::Null) => DEFAULT_CACHE_SECS,
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| *f >= 0.0 && f.is_finite())
                    .map(|f| f as u64)
            })
            .ok_or_else(|| invalid("settings.cacheSecs must be a number of seconds, 0 or more"))?,
    };
    Ok((
        base.trim_end_matches('/').to_owned(),
        Duration::from_secs(ttl),
    ))
}

/// The record's `customerId` as URL text, or the record's error (code, message).
fn customer_id(record: &Value) -> Result<String, (&'static str, &'static str)> {
    const MISSING: (&str, &str) = ("missing_field", "missing required field customerId");
    match record.get("customerId") {
        None | Some(Value::Null) => Err(MISSING),
        Some(Value::String(s)) if s.is_empty() => Err(MISSING),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        Some(_) => Err(("invalid_field", "customerId must be a string or an integer")),
    }
}

/// What one look-up gave: the customer, a record error, or a failure of the whole call.
enum Lookup {
    Found(Value),
    Failed(RecordError),
}

pub async fn enrich_records(
    inv: Invocation,
    options: PreMapOptions,
) -> ExtResult<Vec<RecordResult>> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let (base, ttl) = parse_settings(options.settings.as_ref())?;
    let cache = if ttl.is_zero() {
        None
    } else {
        inv.cache().ok()
    };
    let key: tokio::sync::OnceCell<SecretString> = tokio::sync::OnceCell::new();
    let (inv, base, cache, key) = (&inv, &base, &cache, &key);
    stream::iter(options.data)
        .map(|record| async move {
            let id = match customer_id(&record) {
                Ok(id) => id,
                Err((code, message)) => {
                    return Ok(RecordResult::fail(vec![RecordError::new(code, message)]));
                }
            };
            let cache_key = format!("enrichRecords:{base}:{id}");
            if let Some(c) = cache
                && let Ok(Some(hit)) = c.get::<Value>(&cache_key).await
            {
                count_lookup(inv, "hit")?;
                return Ok(with_customer(record.into_value(), hit));
            }
            let key = key.get_or_try_init(|| inv.secret(SECRET)).await?;
            match lookup(inv, base, &id, key).await? {
                Lookup::Found(customer) => {
                    count_lookup(inv, "miss")?;
                    if let Some(c) = cache
                        && let Err(e) = c.set(&cache_key, &customer, ttl).await
                    {
                        tracing::warn!(error = %e, "customer not cached");
                    }
                    Ok(with_customer(record.into_value(), customer))
                }
                Lookup::Failed(e) => {
                    let outcome = if e.code.as_deref() == Some("not_found") {
                        "not_found"
                    } else {
                        "error"
                    };
                    count_lookup(inv, outcome)?;
                    Ok(RecordResult::fail(vec![e]))
                }
            }
        })
        .buffered(PARALLEL)
        .try_collect()
        .await
}

async fn lookup(inv: &Invocation, base: &str, id: &str, key: &SecretString) -> ExtResult<Lookup> {
    use integrator_lambda::outgoing::HttpError;
    let segment = percent_encoding::utf8_percent_encode(id, SEGMENT);
    let url = format!("{base}/customers/{segment}");
    let resp = inv.http().get(&url).bearer_auth(key).send().await?;
    if resp.status().as_u16() == 404 {
        return Ok(Lookup::Failed(RecordError::new(
            "not_found",
            format!("customer {id} not found"),
        )));
    }
    match resp.error_for_status().and_then(|r| r.json::<Value>()) {
        Ok(customer) => Ok(Lookup::Found(customer)),
        Err(e @ (HttpError::Status { .. } | HttpError::Json { .. })) => {
            Ok(Lookup::Failed(RecordError::new("crm_error", e.to_string())))
        }
        Err(e) => Err(e.into()),
    }
}

fn with_customer(record: Value, customer: Value) -> RecordResult {
    match record {
        Value::Object(mut map) => {
            map.insert("customer".into(), customer);
            RecordResult::keep(Value::Object(map))
        }
        other => RecordResult::keep(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Key;

    #[async_trait::async_trait]
    impl integrator_lambda::store::secrets::SecretStore for Key {
        async fn fetch(
            &self,
            _: &str,
        ) -> Result<SecretString, integrator_lambda::store::secrets::SecretError> {
            Ok(SecretString::from("k"))
        }
        async fn store(
            &self,
            name: &str,
            _: &SecretString,
        ) -> Result<(), integrator_lambda::store::secrets::SecretError> {
            Err(integrator_lambda::store::secrets::SecretError::NotFound { name: name.into() })
        }
    }

    /// One CRM exchange for the replaying client.
    fn exchange(id: &str, status: u16) -> integrator_lambda::outgoing::replay::Exchange {
        serde_json::from_value(json!({
            "request": {"method": "GET", "url": format!("http://crm.test/api/customers/{id}")},
            "response": {"status": status, "headers": {"content-type": "application/json"},
                         "body": {"id": id}},
        }))
        .expect("exchange")
    }

    #[tokio::test]
    async fn each_lookup_counts_customer_lookups_by_outcome() {
        use integrator_lambda::outgoing::replay::ReplayTransport;
        use integrator_lambda::outgoing::{HttpClient, HttpConfig};
        use integrator_lambda::{Cache, Secrets, Services};
        use std::sync::Arc;
        let replay = Arc::new(ReplayTransport::new(vec![
            exchange("7", 200),
            exchange("8", 404),
            exchange("9", 400),
        ]));
        let services = Arc::new(
            Services::new()
                .with_secrets(Arc::new(Secrets::new(Arc::new(Key))))
                .with_cache(Arc::new(Cache::in_memory()))
                .with_http(HttpClient::new(replay.clone(), HttpConfig::default())),
        );
        let options = |ids: &[i64]| -> PreMapOptions {
            let data: Vec<Value> = ids.iter().map(|i| json!({"customerId": i})).collect();
            serde_json::from_value(json!({
                "data": data, "settings": {"baseUrl": "http://crm.test/api"}
            }))
            .expect("options")
        };
        // Sorted: look-ups run concurrently.
        let outcomes = |inv: &Invocation| -> Vec<String> {
            let mut o: Vec<String> = inv
                .metrics()
                .recorded()
                .iter()
                .map(|m| {
                    assert_eq!((m.name(), m.value()), (LOOKUPS_METRIC, 1.0));
                    m.dimension_value("Outcome").unwrap_or("").to_owned()
                })
                .collect();
            o.sort();
            o
        };
        let first = Invocation::for_test("enrichRecords", Duration::from_secs(5))
            .with_services(services.clone());
        enrich_records(first.clone(), options(&[7, 8, 9]))
            .await
            .expect("answer");
        assert_eq!(outcomes(&first), ["error", "miss", "not_found"]);
        // 7 again: answered from the cache, no request.
        let second =
            Invocation::for_test("enrichRecords", Duration::from_secs(5)).with_services(services);
        enrich_records(second.clone(), options(&[7]))
            .await
            .expect("answer");
        assert_eq!(outcomes(&second), ["hit"]);
        assert!(replay.problems().is_empty(), "{:?}", replay.problems());
    }

    #[test]
    fn settings_need_a_base_url_and_a_sane_ttl() {
        let ok = parse_settings(Some(&json!({"baseUrl": "http://h/api/"}))).unwrap();
        assert_eq!(ok, ("http://h/api".into(), Duration::from_secs(300)));
        let ok = parse_settings(Some(&json!({"baseUrl": "https://h", "cacheSecs": 0}))).unwrap();
        assert_eq!(ok.1, Duration::ZERO);
        for bad in [
            json!({}),
            json!({"baseUrl": ""}),
            json!({"baseUrl": "ftp://h"}),
            json!({"baseUrl": "http://h", "cacheSecs": -1}),
            json!({"baseUrl": "http://h", "cacheSecs": "x"}),
        ] {
            let e = parse_settings(Some(&bad)).unwrap_err();
            assert_eq!(e.code.as_deref(), Some("invalid_settings"), "{bad}");
        }
        assert!(parse_settings(None).is_err());
    }

    #[test]
    fn customer_ids_are_strings_or_integers() {
        assert_eq!(customer_id(&json!({"customerId": 7})).unwrap(), "7");
        assert_eq!(customer_id(&json!({"customerId": "a/b"})).unwrap(), "a/b");
        for (r, code) in [
            (json!({}), "missing_field"),
            (json!({"customerId": null}), "missing_field"),
            (json!({"customerId": ""}), "missing_field"),
            (json!("scalar"), "missing_field"),
            (json!({"customerId": 1.5}), "invalid_field"),
            (json!({"customerId": {}}), "invalid_field"),
        ] {
            assert_eq!(customer_id(&r).unwrap_err().0, code, "{r}");
        }
    }
}
