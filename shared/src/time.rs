//! Time: epoch timestamps ([`EpochSeconds`], [`EpochMillis`]), an injectable [`Clock`], RFC 3339
//! text without a date-time dependency, and the one parser of durations given in seconds.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A point in time in whole seconds since the Unix epoch (`expires_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EpochSeconds(pub u64);

/// A point in time in milliseconds since the Unix epoch (`in_progress_expires_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EpochMillis(pub u64);

/// Time since the Unix epoch (zero if the clock is before it): the one place the wall clock
/// is read.
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl EpochSeconds {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self(since_epoch().as_secs())
    }
    /// `d` after this instant (whole seconds).
    pub fn after(self, d: Duration) -> Self {
        Self(self.0.saturating_add(d.as_secs()))
    }
}

impl EpochMillis {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Self(millis(since_epoch()))
    }
    /// `d` after this instant.
    pub fn after(self, d: Duration) -> Self {
        Self(self.0.saturating_add(millis(d)))
    }
    /// `d` before this instant.
    pub fn before(self, d: Duration) -> Self {
        Self(self.0.saturating_sub(millis(d)))
    }
    /// The wall-clock time of a monotonic `deadline` (e.g. `Invocation::deadline()`). A
    /// deadline already past gives *now*: the lock is then immediately expired, never
    /// missing (a missing in-progress expiry would lock the record until `expires_at`).
    pub fn from_deadline(deadline: Instant) -> Self {
        Self::now().after(deadline.saturating_duration_since(Instant::now()))
    }
}

impl fmt::Display for EpochSeconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s since the epoch", self.0)
    }
}

impl fmt::Display for EpochMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms since the epoch", self.0)
    }
}

/// One reading of the clock in both units, so the two conditions agree on "now".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    pub(crate) secs: EpochSeconds,
    pub(crate) millis: EpochMillis,
}

impl Now {
    pub(crate) fn read() -> Self {
        let d = since_epoch();
        Self {
            secs: EpochSeconds(d.as_secs()),
            millis: EpochMillis(millis(d)),
        }
    }
}

/// Wall-clock time, injectable.
pub trait Clock: Send + Sync + 'static {
    /// The time now.
    fn now(&self) -> EpochMillis;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> EpochMillis {
        EpochMillis::now()
    }
}

/// A clock that only moves when told (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock standing at `ms` milliseconds since the epoch.
    pub fn at(ms: u64) -> Self {
        Self(AtomicU64::new(ms))
    }
    /// Move the clock to `ms`.
    pub fn set(&self, ms: u64) {
        self.0.store(ms, Ordering::SeqCst);
    }
    /// Move the clock `d` forward.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> EpochMillis {
        EpochMillis(self.0.load(Ordering::SeqCst))
    }
}

/// Parse a duration in seconds (fractions allowed) given in the setting `name`: absent or
/// blank → `default`; negative, non-numeric or out of range → an error naming the setting;
/// `0` only when `zero_ok` (e.g. "no caching").
pub fn parse_secs(
    name: &str,
    value: Option<&str>,
    default: Duration,
    zero_ok: bool,
) -> Result<Duration, String> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(default);
    };
    let least = if zero_ok { "0" } else { "more than 0" };
    match v.parse::<f64>().ok().map(Duration::try_from_secs_f64) {
        Some(Ok(d)) if zero_ok || !d.is_zero() => Ok(d),
        _ => Err(format!(
            "{name} must be a number of seconds, {least} (got {v:?})"
        )),
    }
}

/// Epoch milliseconds as RFC 3339 UTC with milliseconds (`2026-01-02T03:04:05.678Z`), clamped to
/// the years 1970..=9999.
pub fn iso_millis(ms: i64) -> String {
    const MAX_MS: i64 = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z
    let ms = ms.clamp(0, MAX_MS);
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// A `SystemTime` as [`iso_millis`] text.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis();
    iso_millis(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(iso_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso_millis(1_767_323_045_678), "2026-01-02T03:04:05.678Z");
        assert_eq!(iso_millis(-5), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1000);
        assert_eq!(c.now(), EpochMillis(1000));
        c.advance(Duration::from_secs(2));
        assert_eq!(c.now(), EpochMillis(3000));
        c.set(5);
        assert_eq!(c.now(), EpochMillis(5));
    }

    #[test]
    fn seconds_settings() {
        let d = Duration::from_secs(7);
        assert_eq!(parse_secs("X", None, d, false), Ok(d));
        assert_eq!(parse_secs("X", Some(" "), d, false), Ok(d));
        assert_eq!(
            parse_secs("X", Some("60"), d, false),
            Ok(Duration::from_secs(60))
        );
        assert_eq!(
            parse_secs("X", Some("0.5"), d, false),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(parse_secs("X", Some("0"), d, true), Ok(Duration::ZERO));
        for bad in ["0", "-5", "1h", "inf", "NaN", "1e300"] {
            let e = parse_secs("X", Some(bad), d, false).unwrap_err();
            assert!(e.starts_with("X must be"), "{bad}: {e}");
        }
    }

    #[test]
    fn deadlines_convert_to_wall_clock_millis() {
        let now = EpochMillis::now();
        let later = EpochMillis::from_deadline(Instant::now() + Duration::from_secs(10));
        assert!(later.0 >= now.0 + 9_000 && later.0 <= now.0 + 11_000);
        let past = EpochMillis::from_deadline(Instant::now());
        assert!(past.0 >= now.0);
    }
}
