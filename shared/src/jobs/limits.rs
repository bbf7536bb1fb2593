//! Rate limits: at most `limit` runs per `interval`, for a whole function or per key.
//!
//! Counting is a fixed window: the window index is `now / interval`, and each (function, key
//! hash, interval, window) has one counter item in the extension table,
//! `rate#<function>#<key hash or *>#<interval s>#<window>`. One admission is one conditional
//! `UpdateItem` (`ADD hits 1` if `hits < limit`): DynamoDB applies it atomically, so any number
//! of concurrent workers admit at most `limit` per window. Keys are hashed before they reach
//! the table (never stored in clear). Counter items expire one interval after their window.
//!
//! Limits apply to **queued** invocations (the worker, i.e. deferred jobs, schedules and
//! anything sent to the work queue): an invocation over its limit is **deferred to the start
//! of the next window** (rescheduled under its job id, so it is neither dropped nor duplicated)
//! and logged. Direct calls from integrator.io are answered synchronously and are not limited
//! here (integrator.io has its own concurrency settings per flow step).
//!
//! Configuration: `EXTENSION_RATE_LIMITS`, a JSON array such as
//! `[{"function": "notifyPartner", "limit": 2, "interval": "1w", "per": "key"}]`; `interval` is
//! seconds or a number with `s`/`m`/`h`/`d`/`w`; `per` is `function` (default) or `key` (the
//! envelope's top-level `key`, or the job's key).
//!
//! A [`GlobalLimit`] (runs and streams) counts stream
//! executions per integration per period, with `onboarding_factor` × the allowance for
//! onboarding runs.

use crate::time::{Clock, EpochMillis, EpochSeconds};
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Errors of the limiter.
#[derive(Debug, thiserror::Error)]
#[doc(hidden)]
pub enum LimitError {
    #[error("invalid rate limit configuration: {0}")]
    Config(String),
    #[error("rate limit store unavailable: {0}")]
    Store(String),
}

/// What a limit applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum Target {
    /// Every invocation of the function.
    Function,
    /// Each key separately.
    Key,
}

/// One limit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[doc(hidden)]
pub struct RateLimit {
    pub function: String,
    pub limit: u64,
    pub interval: Duration,
    pub target: Target,
}

/// A per-integration allowance per period: how many stream executions, how long a period
/// lasts, and how many times that allowance an onboarding run gets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GlobalLimit {
    /// Streams allowed per period.
    pub limit: u64,
    /// The period's length.
    pub reset: Duration,
    /// The allowance is multiplied by this for onboarding runs.
    pub onboarding_factor: f64,
}

impl GlobalLimit {
    /// The allowance for a run.
    pub fn allowance(&self, onboarding: bool) -> u64 {
        if onboarding {
            (self.limit as f64 * self.onboarding_factor.max(0.0)).floor() as u64
        } else {
            self.limit
        }
    }
}

/// The verdict for one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub enum Admission {
    Allowed,
    /// Over the limit until `retry_at` (the next window's start).
    Limited {
        retry_at: EpochMillis,
        limit: u64,
    },
}

/// Atomic counters.
#[async_trait]
#[doc(hidden)]
pub trait CounterStore: Send + Sync + 'static {
    /// Add one to `bucket` if it is below `limit`: the new count, or `None` when full.
    async fn acquire(
        &self,
        bucket: &str,
        limit: u64,
        expires_at: EpochSeconds,
    ) -> Result<Option<u64>, LimitError>;

    /// Give back one slot of `bucket` (an admission that a later limit refused). Never below 0.
    async fn release(&self, bucket: &str) -> Result<(), LimitError>;
}

/// Parse an interval: whole seconds, or a number with `s`, `m`, `h`, `d` or `w`.
#[doc(hidden)]
pub fn parse_interval(v: &Value) -> Result<Duration, LimitError> {
    let bad = || {
        LimitError::Config(format!(
            "interval {v} is not seconds or like 30s, 5m, 1h, 1d, 1w"
        ))
    };
    let secs = match v {
        Value::Number(n) => n.as_u64().ok_or_else(bad)?,
        Value::String(s) => {
            let s = s.trim();
            let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
            let n: u64 = num.parse().map_err(|_| bad())?;
            let mult = match unit.trim() {
                "" | "s" => 1,
                "m" => 60,
                "h" => 3600,
                "d" => 86_400,
                "w" => 604_800,
                _ => return Err(bad()),
            };
            n.checked_mul(mult).ok_or_else(bad)?
        }
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(secs))
}

/// Parse the `EXTENSION_RATE_LIMITS` JSON.
#[doc(hidden)]
pub fn parse_limits(text: &str) -> Result<Vec<RateLimit>, LimitError> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| LimitError::Config(format!("not JSON: {e}")))?;
    let items = v
        .as_array()
        .ok_or_else(|| LimitError::Config("must be a JSON array of limits".into()))?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let err = |m: &str| LimitError::Config(format!("limit {i}: {m}"));
            let function = item
                .get("function")
                .and_then(Value::as_str)
                .filter(|f| !f.is_empty())
                .ok_or_else(|| err("function must name a function"))?;
            let limit = item
                .get("limit")
                .and_then(Value::as_u64)
                .filter(|l| *l > 0)
                .ok_or_else(|| err("limit must be a whole number ≥ 1"))?;
            let interval = parse_interval(item.get("interval").unwrap_or(&Value::Null))
                .map_err(|e| err(&e.to_string()))?;
            let target = match item.get("per").and_then(Value::as_str) {
                None | Some("function") => Target::Function,
                Some("key") => Target::Key,
                Some(other) => {
                    return Err(err(&format!("per must be function or key, not {other:?}")));
                }
            };
            Ok(RateLimit {
                function: function.to_owned(),
                limit,
                interval,
                target,
            })
        })
        .collect()
}

/// The limiter service (used by the worker).
#[derive(Clone)]
#[doc(hidden)]
pub struct RateLimiter {
    store: Arc<dyn CounterStore>,
    clock: Arc<dyn Clock>,
    limits: Arc<Vec<RateLimit>>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

fn window_of(now: EpochMillis, interval: Duration) -> (u64, EpochMillis) {
    let len = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let index = now.0 / len;
    (
        index,
        EpochMillis(index.saturating_add(1).saturating_mul(len)),
    )
}

impl RateLimiter {
    pub fn new(
        store: Arc<dyn CounterStore>,
        clock: Arc<dyn Clock>,
        limits: Vec<RateLimit>,
    ) -> Self {
        Self {
            store,
            clock,
            limits: Arc::new(limits),
        }
    }

    pub fn limits(&self) -> &[RateLimit] {
        &self.limits
    }

    /// Does any limit apply to `function`?
    pub fn applies_to(&self, function: &str) -> bool {
        self.limits.iter().any(|l| l.function == function)
    }

    /// One slot of `bucket` in the current window: the window's bucket name when taken, or
    /// the refusal.
    async fn acquire(
        &self,
        bucket: String,
        limit: u64,
        interval: Duration,
    ) -> Result<Result<String, Admission>, LimitError> {
        let now = self.clock.now();
        let (index, next) = window_of(now, interval);
        let bucket = format!("{bucket}#{}#{index}", interval.as_secs());
        let expires = EpochSeconds(next.0 / 1000).after(interval);
        Ok(match self.store.acquire(&bucket, limit, expires).await? {
            Some(_) => Ok(bucket),
            None => Err(Admission::Limited {
                retry_at: next,
                limit,
            }),
        })
    }

    /// Admit one invocation of `function` with the caller's `key_hash` (for per-key limits;
    /// an invocation without a key counts under the key `*`). Every limit of the function
    /// is checked in turn; the first that is full decides, and the slots already taken from
    /// the limits before it are given back (a refused invocation uses no allowance).
    pub async fn admit(
        &self,
        function: &str,
        key_hash: Option<&str>,
    ) -> Result<Admission, LimitError> {
        let mut taken: Vec<String> = Vec::new();
        for l in self.limits.iter().filter(|l| l.function == function) {
            let key = match l.target {
                Target::Function => "*",
                Target::Key => key_hash.unwrap_or("*"),
            };
            let verdict = self
                .acquire(format!("rate#{function}#{key}"), l.limit, l.interval)
                .await;
            match verdict {
                Ok(Ok(bucket)) => taken.push(bucket),
                Ok(Err(refused)) => {
                    self.give_back(&taken).await;
                    return Ok(refused);
                }
                Err(e) => {
                    self.give_back(&taken).await;
                    return Err(e);
                }
            }
        }
        Ok(Admission::Allowed)
    }

    async fn give_back(&self, buckets: &[String]) {
        for b in buckets {
            if let Err(e) = self.store.release(b).await {
                tracing::warn!(bucket = %b, error = %e, "could not give back a rate-limit slot; the window admits one fewer");
            }
        }
    }

    /// Admit one stream execution of `integration` under its global limit.
    pub async fn admit_global(
        &self,
        integration: &str,
        limit: &GlobalLimit,
        onboarding: bool,
    ) -> Result<Admission, LimitError> {
        let allowance = limit.allowance(onboarding);
        let kind = if onboarding {
            "onboarding"
        } else {
            "incremental"
        };
        let verdict = self
            .acquire(
                format!("rate#global#{integration}#{kind}"),
                allowance,
                limit.reset,
            )
            .await?;
        Ok(verdict.map_or_else(|refused| refused, |_| Admission::Allowed))
    }
}

// ---------------------------------------------------------------------------------------------
// In-memory twin

/// In-memory counters (local runs, unit tests). Bounded: at most
/// [`MemoryCounters::CAPACITY`] buckets; a new bucket in a full store first drops the buckets
/// whose period ended, and when all are current it is refused with a store error (the call is
/// not admitted and can be retried) — a current count is never dropped, which would admit
/// calls over the limit.
#[derive(Debug)]
#[doc(hidden)]
pub struct MemoryCounters {
    /// bucket → (count, expiry in epoch seconds)
    counts: Mutex<HashMap<String, (u64, u64)>>,
    capacity: usize,
}

impl Default for MemoryCounters {
    fn default() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }
}

impl MemoryCounters {
    /// Buckets kept at most by default.
    pub const CAPACITY: usize = 100_000;

    /// Counters of at most `capacity` buckets (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            counts: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Buckets held now.
    pub fn len(&self) -> usize {
        self.counts.lock().map(|c| c.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl CounterStore for MemoryCounters {
    async fn acquire(
        &self,
        bucket: &str,
        limit: u64,
        expires_at: EpochSeconds,
    ) -> Result<Option<u64>, LimitError> {
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| LimitError::Store("in-memory counters poisoned".into()))?;
        let now = EpochSeconds::now().0;
        if counts.len() >= self.capacity && !counts.contains_key(bucket) {
            counts.retain(|_, (_, exp)| *exp > now);
            if counts.len() >= self.capacity {
                return Err(LimitError::Store(format!(
                    "the in-memory counters are full ({} current buckets)",
                    counts.len()
                )));
            }
        }
        let (n, exp) = counts.entry(bucket.to_owned()).or_insert((0, 0));
        *exp = (*exp).max(expires_at.0);
        if *n >= limit {
            return Ok(None);
        }
        *n += 1;
        Ok(Some(*n))
    }

    async fn release(&self, bucket: &str) -> Result<(), LimitError> {
        let mut counts = self
            .counts
            .lock()
            .map_err(|_| LimitError::Store("in-memory counters poisoned".into()))?;
        if let Some((n, _)) = counts.get_mut(bucket) {
            *n = n.saturating_sub(1);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::ManualClock;

    #[tokio::test]
    async fn a_refusal_gives_back_the_slots_taken_before_it() {
        // Function-wide 2/min first, then 1/min per key: the second call for key A takes a
        // function-wide slot, is refused by its key's limit, and gives that slot back, so a
        // call for key B still fits in the function-wide limit.
        let limits = parse_limits(
            r#"[{"function":"f","limit":2,"interval":"1m"},
                {"function":"f","limit":1,"interval":"1m","per":"key"}]"#,
        )
        .unwrap();
        let l = RateLimiter::new(
            Arc::new(MemoryCounters::default()),
            Arc::new(ManualClock::at(600_000)),
            limits,
        );
        assert_eq!(l.admit("f", Some("A")).await.unwrap(), Admission::Allowed);
        assert!(matches!(
            l.admit("f", Some("A")).await.unwrap(),
            Admission::Limited { limit: 1, .. }
        ));
        assert_eq!(l.admit("f", Some("B")).await.unwrap(), Admission::Allowed);
        assert!(matches!(
            l.admit("f", Some("C")).await.unwrap(),
            Admission::Limited { limit: 2, .. }
        ));
    }
    use serde_json::json;

    /// The in-memory counters are bounded: a full store drops buckets whose period ended and
    /// refuses a new bucket while all are current (never forgetting a current count).
    #[tokio::test]
    async fn full_memory_counters_drop_ended_buckets_and_refuse_current_ones() {
        let c = MemoryCounters::with_capacity(2);
        let later = EpochSeconds(EpochSeconds::now().0 + 3600);
        assert_eq!(c.acquire("a", 5, later).await.unwrap(), Some(1));
        assert_eq!(c.acquire("b", 5, EpochSeconds(1)).await.unwrap(), Some(1));
        // "b"'s period ended: it makes room for "c".
        assert_eq!(c.acquire("c", 5, later).await.unwrap(), Some(1));
        assert!(matches!(
            c.acquire("d", 5, later).await,
            Err(LimitError::Store(m)) if m.contains("full")
        ));
        // Current buckets keep counting.
        assert_eq!(c.acquire("a", 5, later).await.unwrap(), Some(2));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn limits_are_read_from_json() {
        let l = parse_limits(r#"[{"function":"f","limit":2,"interval":"1w","per":"key"},{"function":"g","limit":5,"interval":60}]"#).unwrap();
        assert_eq!(l[0].interval, Duration::from_secs(604_800));
        assert_eq!(l[0].target, Target::Key);
        assert_eq!(l[1].target, Target::Function);
        assert_eq!(
            parse_interval(&json!("5m")).unwrap(),
            Duration::from_secs(300)
        );
        for bad in [
            r#"{}"#,
            r#"[{"limit":1,"interval":1}]"#,
            r#"[{"function":"f","limit":0,"interval":1}]"#,
            r#"[{"function":"f","limit":1,"interval":"1y"}]"#,
            r#"[{"function":"f","limit":1,"interval":0}]"#,
            r#"[{"function":"f","limit":1,"interval":1,"per":"user"}]"#,
        ] {
            assert!(parse_limits(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn windows_reset_and_keys_count_separately() {
        let clock = Arc::new(ManualClock::at(600_000));
        let limiter = RateLimiter::new(
            Arc::new(MemoryCounters::default()),
            clock.clone(),
            parse_limits(r#"[{"function":"f","limit":2,"interval":60,"per":"key"}]"#).unwrap(),
        );
        assert!(limiter.applies_to("f") && !limiter.applies_to("g"));
        assert_eq!(
            limiter.admit("f", Some("a")).await.unwrap(),
            Admission::Allowed
        );
        assert_eq!(
            limiter.admit("f", Some("a")).await.unwrap(),
            Admission::Allowed
        );
        assert_eq!(
            limiter.admit("f", Some("a")).await.unwrap(),
            Admission::Limited {
                retry_at: EpochMillis(660_000),
                limit: 2
            }
        );
        assert_eq!(
            limiter.admit("f", Some("b")).await.unwrap(),
            Admission::Allowed
        );
        assert_eq!(limiter.admit("g", None).await.unwrap(), Admission::Allowed);
        clock.advance(Duration::from_secs(60));
        assert_eq!(
            limiter.admit("f", Some("a")).await.unwrap(),
            Admission::Allowed
        );
    }

    #[tokio::test]
    async fn onboarding_runs_get_the_larger_global_allowance() {
        let g = GlobalLimit {
            limit: 2,
            reset: Duration::from_secs(3600),
            onboarding_factor: 1.5,
        };
        assert_eq!(g.allowance(true), 3);
        let limiter = RateLimiter::new(
            Arc::new(MemoryCounters::default()),
            Arc::new(ManualClock::at(0)),
            vec![],
        );
        let mut allowed = (0, 0);
        for _ in 0..5 {
            if limiter.admit_global("i", &g, false).await.unwrap() == Admission::Allowed {
                allowed.0 += 1;
            }
            if limiter.admit_global("i", &g, true).await.unwrap() == Admission::Allowed {
                allowed.1 += 1;
            }
        }
        assert_eq!(allowed, (2, 3));
    }
}
