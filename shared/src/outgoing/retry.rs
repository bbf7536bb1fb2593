//! The attempt loop behind [`RequestBuilder::send`](super::RequestBuilder::send): the per-host
//! gate, the per-attempt timeout, retries with back-off (or `Retry-After`), and one log line and
//! metric per attempt.

use super::{HttpClient, HttpConfig, HttpError, OutRequest, OutResponse, Response, TransportError};
use http::{HeaderMap, StatusCode};
use std::time::{Duration, Instant, SystemTime};

/// What one attempt gave.
enum Outcome {
    Answer(OutResponse),
    Failed {
        detail: String,
        /// Safe to send again whatever the method (the request was not processed).
        unsent: bool,
        /// The attempt hit the call's deadline.
        deadline: bool,
    },
}

pub(super) async fn execute(
    client: &HttpClient,
    req: OutRequest,
    shown: &str,
    host: &str,
    deadline: Instant,
    attempts: u32,
    idempotent: bool,
) -> Result<Response, HttpError> {
    let config = client.config().clone();
    let gate = client.gate(host);
    let method = req.method.as_str().to_owned();
    let deadline_error = || HttpError::Deadline {
        method: method.clone(),
        url: shown.to_owned(),
    };
    let bytes_out = req.body.len();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let now = Instant::now();
        if now >= deadline {
            return Err(deadline_error());
        }
        let Ok(Ok(permit)) =
            tokio::time::timeout_at(deadline.into(), gate.clone().acquire_owned()).await
        else {
            return Err(deadline_error());
        };
        let started = Instant::now();
        let attempt_end = deadline.min(started + config.attempt_timeout);
        let sent = tokio::time::timeout_at(
            attempt_end.into(),
            client
                .shared
                .transport
                .send(req.clone(), config.max_response_bytes),
        )
        .await;
        drop(permit);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let outcome = match sent {
            Err(_) => Outcome::Failed {
                detail: "timed out".into(),
                unsent: false,
                deadline: attempt_end >= deadline,
            },
            Ok(Err(TransportError::TooLarge(limit))) => {
                log_line(&method, shown, "response too large", ms, bytes_out, 0);
                crate::metrics::http_call(host, "error", ms);
                return Err(HttpError::TooLarge {
                    url: shown.to_owned(),
                    limit,
                });
            }
            Ok(Err(TransportError::Connect(d))) => Outcome::Failed {
                detail: format!("connect error: {d}"),
                unsent: true,
                deadline: false,
            },
            Ok(Err(TransportError::Io(d))) => Outcome::Failed {
                detail: format!("I/O error: {d}"),
                unsent: false,
                deadline: false,
            },
            Ok(Err(TransportError::Refused(d))) => {
                log_line(&method, shown, "refused", ms, bytes_out, 0);
                return Err(HttpError::Unreachable {
                    method,
                    url: shown.to_owned(),
                    attempts: attempt,
                    detail: d,
                });
            }
            Ok(Ok(resp)) => Outcome::Answer(resp),
        };
        match outcome {
            Outcome::Answer(resp) => {
                let status = resp.status;
                let reason = status.canonical_reason().unwrap_or("");
                log_line(
                    &method,
                    shown,
                    &format!("{} {reason}", status.as_u16()),
                    ms,
                    bytes_out,
                    resp.body.len(),
                );
                crate::metrics::http_call(host, status.as_str(), ms);
                let retryable = status == StatusCode::TOO_MANY_REQUESTS
                    || (status.is_server_error() && idempotent);
                if retryable && attempt < attempts {
                    let wait =
                        retry_after(&resp.headers).unwrap_or_else(|| backoff(&config, attempt));
                    if Instant::now() + wait < deadline {
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                }
                return Ok(Response {
                    status,
                    headers: resp.headers,
                    body: resp.body,
                    method,
                    url: shown.to_owned(),
                });
            }
            Outcome::Failed {
                detail,
                unsent,
                deadline: hit_deadline,
            } => {
                log_line(&method, shown, &detail, ms, bytes_out, 0);
                crate::metrics::http_call(host, "error", ms);
                if hit_deadline {
                    return Err(deadline_error());
                }
                let wait = backoff(&config, attempt);
                if (unsent || idempotent) && attempt < attempts && Instant::now() + wait < deadline
                {
                    tokio::time::sleep(wait).await;
                    continue;
                }
                return Err(HttpError::Unreachable {
                    method,
                    url: shown.to_owned(),
                    attempts: attempt,
                    detail,
                });
            }
        }
    }
}

fn log_line(method: &str, url: &str, outcome: &str, ms: f64, out: usize, inn: usize) {
    tracing::info!("HTTP {method} {url} - {outcome} ({ms:.0} ms, {out}/{inn} B)");
}

/// The back-off before attempt `attempt + 1`: `first * 2^(attempt-1)`, capped, then a random
/// point between half of it and all of it.
pub(super) fn backoff(config: &HttpConfig, attempt: u32) -> Duration {
    let exp = config
        .first_backoff
        .saturating_mul(1u32 << (attempt.saturating_sub(1)).min(16))
        .min(config.max_backoff);
    let half = exp / 2;
    half + half.mul_f64(jitter())
}

/// A random fraction in [0, 1).
fn jitter() -> f64 {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    if ring::rand::SystemRandom::new().fill(&mut b).is_err() {
        return 0.5;
    }
    f64::from(u32::from_le_bytes(b)) / (f64::from(u32::MAX) + 1.0)
}

/// `Retry-After` as a wait: delay-seconds, or an HTTP date (a date in the past: no wait).
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(
        at.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}
