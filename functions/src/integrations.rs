//! Example integration for runs and streams ([`integrator_lambda::jobs::runs`]):
//! `paged-numbers` pages through a numbered source, one stream per source and one follow-up
//! stream per page.
//!
//! Run parameters (all optional): `{"sources": ["alpha", "beta"], "total": 25, "pageSize": 10,
//! "sleep": 0, "failSource": "beta"}`: each source holds records `1..=total`; a page returns
//! `pageSize` of them as operations plus a `nextPageStream` for the next page (with `sleep`
//! seconds before it); `failSource` always fails (to see retries and the `error` state).
//!
//! ```text
//! make serve                                   # in one terminal
//! make run-integration ID=paged-numbers PARAMS='{"total":25}'
//! make run-status RUN=<id>                     # processed: 3 streams, 25 records
//! ```

use integrator_lambda::jobs::limits::GlobalLimit;
use integrator_lambda::jobs::runs::{
    IntegrationService, Integrations, RunContext, StreamResult, StreamSpec,
};
use serde_json::{Value, json};
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every example integration.
pub fn all() -> Integrations {
    Integrations::new().with(PagedNumbers)
}

/// The `paged-numbers` integration.
pub struct PagedNumbers;

fn param_u64(params: &Value, key: &str, default: u64) -> u64 {
    params.get(key).and_then(Value::as_u64).unwrap_or(default)
}

#[async_trait::async_trait]
impl IntegrationService for PagedNumbers {
    fn integration_type(&self) -> &str {
        "paged-numbers"
    }

    fn max_retries(&self) -> u32 {
        2
    }

    /// The source allows 1,000 page requests an hour; onboarding runs may use twice that.
    fn global_limit(&self) -> Option<GlobalLimit> {
        Some(GlobalLimit {
            limit: 1000,
            reset: Duration::from_secs(3600),
            onboarding_factor: 2.0,
        })
    }

    async fn get_streams(&self, ctx: &RunContext) -> Result<Vec<StreamSpec>, BoxError> {
        let sources: Vec<String> = match ctx.params.get("sources") {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => vec!["alpha".to_owned()],
        };
        Ok(sources
            .into_iter()
            .map(|s| StreamSpec::new(format!("{s} page 1"), json!({"source": s, "page": 1})))
            .collect())
    }

    async fn process_stream(
        &self,
        ctx: &RunContext,
        stream: &StreamSpec,
    ) -> Result<StreamResult, BoxError> {
        let source = stream
            .params
            .get("source")
            .and_then(Value::as_str)
            .ok_or("stream without a source")?;
        if ctx.params.get("failSource").and_then(Value::as_str) == Some(source) {
            return Err(format!("source {source} is unavailable (HTTP 503)").into());
        }
        let page = param_u64(&stream.params, "page", 1).max(1);
        let total = param_u64(&ctx.params, "total", 25);
        let size = param_u64(&ctx.params, "pageSize", 10).max(1);
        let first = (page - 1) * size + 1;
        let last = (page * size).min(total);
        let operations: Vec<Value> = (first..=last)
            .map(|n| json!({"type": "upsert", "source": source, "id": n}))
            .collect();
        let next_page_stream = (last < total).then(|| {
            StreamSpec::new(
                format!("{source} page {}", page + 1),
                json!({"source": source, "page": page + 1}),
            )
        });
        let sleep = param_u64(&ctx.params, "sleep", 0);
        Ok(StreamResult {
            operations,
            next_page_stream,
            new_streams: Vec::new(),
            sleep: (sleep > 0).then(|| Duration::from_secs(sleep)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(params: Value) -> RunContext {
        RunContext {
            run_id: "r".into(),
            integration: "paged-numbers".into(),
            onboarding: true,
            params,
        }
    }

    #[tokio::test]
    async fn pages_until_the_source_is_exhausted() {
        let c = ctx(json!({"total": 25, "pageSize": 10}));
        let roots = PagedNumbers.get_streams(&c).await.unwrap();
        assert_eq!(roots.len(), 1);
        let mut stream = roots[0].clone();
        let mut seen = Vec::new();
        for _ in 0..10 {
            let r = PagedNumbers.process_stream(&c, &stream).await.unwrap();
            seen.extend(r.operations.iter().map(|o| o["id"].as_u64().unwrap()));
            match r.next_page_stream {
                Some(next) => stream = next,
                None => break,
            }
        }
        assert_eq!(seen, (1..=25).collect::<Vec<_>>());
        let failing = ctx(json!({"failSource": "alpha"}));
        assert!(
            PagedNumbers
                .process_stream(&failing, &roots[0])
                .await
                .is_err()
        );
    }
}
