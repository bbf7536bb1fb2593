//! The AWS SDK's side: an interceptor that measures each DynamoDB, KMS or SQS operation
//! (`AwsCalls`/`AwsDuration` by service and operation, when metrics are on: see
//! [`crate::metrics::aws_call`]) and makes each one of a sampled call one subsegment (`namespace: aws`, `aws.operation`, `aws.retries`, the request
//! id, the final status, the attempts AWS throttled (`aws.throttled_attempts`) and the
//! `throttle` flag when its final answer was a throttle).

use crate::xray::{Ending, Subsegment};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::retries::RequestAttempts;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::json;

/// Add it to an SDK client's config (`.interceptor(XrayInterceptor)`); it does nothing for
/// calls that are not sampled.
#[derive(Debug, Clone, Copy, Default)]
pub struct XrayInterceptor;

/// The operation's open subsegment, kept in its config bag.
#[derive(Debug, Clone)]
struct Open(Subsegment);

impl Storable for Open {
    type Storer = StoreReplace<Self>;
}

/// When the operation started (kept when metrics are on).
#[derive(Debug, Clone, Copy)]
struct Started(std::time::Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// Attempts AWS throttled so far.
#[derive(Debug, Clone, Copy)]
struct Throttled(u32);

impl Storable for Throttled {
    type Storer = StoreReplace<Self>;
}

/// Did AWS throttle this attempt (429, or a throttling error code in the error's headers, body
/// or the error the SDK read from them)?
fn throttled(context: &FinalizerInterceptorContextRef<'_>) -> bool {
    let Some(r) = context.response() else {
        return false;
    };
    let status = r.status().as_u16();
    let header = |n| r.headers().get(n).map(str::as_bytes).unwrap_or(b"");
    status == 429
        || (status >= 400
            && (mentions_throttle(header("x-amzn-errortype"))
                || mentions_throttle(header("x-amzn-query-error"))
                || r.body().bytes().is_some_and(mentions_throttle)
                || matches!(context.output_or_error(),
                    Some(Err(e)) if mentions_throttle(format!("{e:?}").as_bytes()))))
}

/// Error codes AWS answers a throttled request with (DynamoDB, KMS, SQS, and the generic ones).
const THROTTLES: [&[u8]; 6] = [
    b"Throttl",
    b"ProvisionedThroughputExceeded",
    b"RequestLimitExceeded",
    b"TooManyRequests",
    b"SlowDown",
    b"LimitExceeded",
];

fn mentions_throttle(text: &[u8]) -> bool {
    THROTTLES
        .iter()
        .any(|t| text.windows(t.len()).any(|w| w == *t))
}

impl Intercept for XrayInterceptor {
    fn name(&self) -> &'static str {
        "XrayInterceptor"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if crate::metrics::enabled() {
            cfg.interceptor_state()
                .store_put(Started(std::time::Instant::now()));
        }
        if let Some(s) = Subsegment::start() {
            cfg.interceptor_state().store_put(Open(s));
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Open>().is_some() && throttled(context) {
            let n = cfg.load::<Throttled>().map_or(0, |t| t.0);
            cfg.interceptor_state().store_put(Throttled(n + 1));
        }
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let meta = cfg.load::<Metadata>();
        let service = meta.map_or("AWS", Metadata::service);
        let operation = meta.map_or("", Metadata::name);
        if let Some(Started(at)) = cfg.load::<Started>() {
            let status = context
                .response()
                .map_or_else(|| "error".to_owned(), |r| r.status().as_u16().to_string());
            let ms = at.elapsed().as_secs_f64() * 1000.0;
            crate::metrics::aws_call(service, operation, &status, ms);
        }
        let Some(Open(s)) = cfg.load::<Open>().cloned() else {
            return Ok(());
        };
        let attempts = cfg.load::<RequestAttempts>().map_or(1, |a| a.attempts());
        let response = context.response();
        let status = response.map(|r| r.status().as_u16());
        let request_id = response
            .and_then(|r| {
                r.headers()
                    .get("x-amzn-requestid")
                    .or_else(|| r.headers().get("x-amz-request-id"))
            })
            .unwrap_or("");
        let throttled = throttled(context);
        let throttled_attempts = cfg.load::<Throttled>().map_or(0, |t| t.0);
        let failed = match context.output_or_error() {
            Some(Err(_)) if status.is_none() => Some("no answer from AWS"),
            None if status.is_none() => Some("no answer from AWS"),
            _ => None,
        };
        s.end(Ending {
            name: service,
            namespace: "aws",
            status,
            aws: Some(json!({
                "operation": operation,
                "retries": attempts.saturating_sub(1),
                "throttled_attempts": throttled_attempts,
                "request_id": request_id,
            })),
            failed,
            throttled,
            ..Ending::default()
        });
        Ok(())
    }
}
