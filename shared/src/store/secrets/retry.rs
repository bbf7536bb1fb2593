//! Retries of transient backend failures: [`RetryPolicy`] and [`with_retries`].

use std::future::Future;
use std::time::{Duration, Instant};

use super::SecretError;

/// Retry schedule for transient failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (the first included).
    pub attempts: u32,
    /// Delay before the second attempt; doubled before each later one.
    pub first_delay: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, waiting 50, 100, 200 and 400 ms between them.
    fn default() -> Self {
        Self {
            attempts: 5,
            first_delay: Duration::from_millis(50),
        }
    }
}

/// Run `op` until it succeeds, fails permanently, runs out of attempts or reaches `deadline`.
pub async fn with_retries<T, F, Fut>(
    name: &str,
    deadline: Option<Instant>,
    policy: RetryPolicy,
    mut op: F,
) -> Result<T, SecretError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SecretError>>,
{
    let mut delay = policy.first_delay;
    let mut attempt = 1;
    let mut last: Option<String> = None;
    let past_deadline = |last: &Option<String>| {
        let detail = match last {
            Some(l) => format!("the deadline passed before it could be loaded (last error: {l})"),
            None => "the deadline passed before it could be loaded".to_owned(),
        };
        SecretError::unavailable(name, detail, true)
    };
    loop {
        let result = match deadline {
            Some(d) if Instant::now() >= d => return Err(past_deadline(&last)),
            Some(d) => match tokio::time::timeout_at(d.into(), op()).await {
                Ok(r) => r,
                Err(_) => return Err(past_deadline(&last)),
            },
            None => op().await,
        };
        let e = match result {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => e,
            Err(e) => return Err(e),
        };
        let SecretError::Unavailable { detail, .. } = &e else {
            return Err(e);
        };
        if attempt >= policy.attempts {
            return Err(SecretError::unavailable(
                name,
                format!("{detail} (gave up after {attempt} attempts)"),
                true,
            ));
        }
        if deadline.is_some_and(|d| Instant::now() + delay >= d) {
            last = Some(detail.clone());
            return Err(past_deadline(&last));
        }
        tracing::debug!(secret = name, attempt, error = %detail, "transient secret backend failure; retrying");
        last = Some(detail.clone());
        tokio::time::sleep(delay).await;
        delay = delay.saturating_mul(2);
        attempt += 1;
    }
}
