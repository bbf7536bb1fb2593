//! The client side of integrator.io's rate limit: a leaky bucket per account (1,000 requests
//! deep, draining 300 a second; over it integrator.io answers 429). Every request of the process
//! takes a place in one shared bucket before it is sent, so a page of records fanned out into
//! parallel calls waits its turn here instead of being refused there.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// integrator.io's bucket size.
pub const BURST: u32 = 1_000;
/// integrator.io's drain rate, requests per second.
pub const PER_SECOND: u32 = 300;

/// A leaky bucket: `level` requests in it at `at`, draining at `rate` a second.
#[derive(Debug)]
pub struct LeakyBucket {
    capacity: f64,
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl Default for LeakyBucket {
    fn default() -> Self {
        Self::new(BURST, PER_SECOND)
    }
}

impl LeakyBucket {
    /// A bucket `capacity` deep draining `per_second` a second (both at least 1).
    pub fn new(capacity: u32, per_second: u32) -> Self {
        Self {
            capacity: f64::from(capacity.max(1)),
            rate: f64::from(per_second.max(1)),
            state: Mutex::new((0.0, Instant::now())),
        }
    }

    /// Take a place for one request at `now`: how long to wait before sending it. A request
    /// that would have to wait until `deadline` or later takes no place and gets `None`.
    pub fn reserve(&self, now: Instant, deadline: Instant) -> Option<Duration> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (level, at) = *state;
        // Drained since the last reservation (`at` may be ahead of `now`: nothing drained).
        let drained = now.saturating_duration_since(at).as_secs_f64() * self.rate;
        let level = (level - drained).max(0.0);
        let over = level + 1.0 - self.capacity;
        let wait = if over > 0.0 {
            Duration::from_secs_f64(over / self.rate)
        } else {
            Duration::ZERO
        };
        if now + wait >= deadline {
            return None;
        }
        *state = (level + 1.0, now.max(at));
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_the_bucket_size_goes_at_once_then_requests_drain_at_the_rate() {
        let b = LeakyBucket::default();
        let t0 = Instant::now();
        let far = t0 + Duration::from_secs(3600);
        for _ in 0..BURST {
            assert_eq!(b.reserve(t0, far), Some(Duration::ZERO));
        }
        // The 1,001st waits for one place to drain: 1/300 s.
        let w = b.reserve(t0, far).unwrap();
        assert!((w.as_secs_f64() - 1.0 / 300.0).abs() < 1e-6, "{w:?}");
        // The next ones wait longer and longer (they are queued behind it).
        let w2 = b.reserve(t0, far).unwrap();
        assert!(w2 > w);
        // A second later 300 places drained.
        let t1 = t0 + Duration::from_secs(1);
        let mut free = 0;
        while b.reserve(t1, far) == Some(Duration::ZERO) {
            free += 1;
        }
        assert!((297..=299).contains(&free), "{free}");
    }

    #[test]
    fn a_wait_past_the_deadline_takes_no_place() {
        let b = LeakyBucket::new(1, 1);
        let t0 = Instant::now();
        assert_eq!(
            b.reserve(t0, t0 + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
        // The next would wait 1 s: past a deadline 0.5 s away.
        assert_eq!(b.reserve(t0, t0 + Duration::from_millis(500)), None);
        // It took no place: with a later deadline it still waits 1 s, not 2.
        let w = b.reserve(t0, t0 + Duration::from_secs(5)).unwrap();
        assert!((w.as_secs_f64() - 1.0).abs() < 1e-6, "{w:?}");
    }
}
