//! Execution windows: "only on these days, only between these times" (UTC).
//!
//! A window is written as integrator engineers write it in a scheduling call:
//! `{"day": "monday-friday", "time": "09:00-17:00"}`. Both parts are optional.
//!
//! - `day`: a day (`monday`), a range (`monday-friday`, wrapping allowed: `friday-monday`), or
//!   a comma-separated list of those (`monday,wednesday-thursday`). Three-letter names work too.
//! - `time`: `HH:MM-HH:MM`, start inclusive, end exclusive. A range that ends before it starts
//!   (`22:00-06:00`) runs past midnight; its early-morning part belongs to the day it falls on.
//!   `00:00-24:00` (or no `time`) is the whole day.

use std::fmt;

const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 86_400_000;
const DAY_NAMES: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// Why a window could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    #[error(
        "window.day: unknown day {0:?} (use monday … sunday, a range like monday-friday, or a comma-separated list)"
    )]
    Day(String),
    #[error("window.time: {0:?} is not a range like 09:00-17:00 (UTC)")]
    Time(String),
    #[error("window: {0}")]
    Shape(String),
}

/// Allowed days (bit `d` = weekday `d`, Sunday = 0) and an allowed time range in minutes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Window {
    days: u8,
    start_min: u32,
    end_min: u32,
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days: Vec<&str> = (0..7)
            .filter(|d| self.days & (1 << d) != 0)
            .map(|d| &DAY_NAMES[d][..3])
            .collect();
        write!(
            f,
            "Window({} {:02}:{:02}-{:02}:{:02})",
            days.join(","),
            self.start_min / 60,
            self.start_min % 60,
            self.end_min / 60,
            self.end_min % 60
        )
    }
}

fn weekday(name: &str) -> Option<u8> {
    let n = name.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| *d == n || (n.len() == 3 && d.starts_with(&n)))
        .map(|d| d as u8)
}

fn parse_days(spec: &str) -> Result<u8, WindowError> {
    let mut mask = 0u8;
    for part in spec.split(',') {
        let bad = || WindowError::Day(part.trim().to_owned());
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (weekday(a).ok_or_else(bad)?, weekday(b).ok_or_else(bad)?);
                let mut d = a;
                // At most 7 steps: a range covers each weekday once.
                for _ in 0..7 {
                    mask |= 1 << d;
                    if d == b {
                        break;
                    }
                    d = (d + 1) % 7;
                }
            }
            None => mask |= 1 << weekday(part).ok_or_else(bad)?,
        }
    }
    Ok(mask)
}

fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    match (h, m) {
        (24, 0) => Some(24 * 60),
        (0..=23, 0..=59) => Some(h * 60 + m),
        _ => None,
    }
}

fn parse_time(spec: &str) -> Result<(u32, u32), WindowError> {
    let bad = || WindowError::Time(spec.to_owned());
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (start, end) = (
        parse_clock(a).ok_or_else(bad)?,
        parse_clock(b).ok_or_else(bad)?,
    );
    if start == end || start == 24 * 60 {
        return Err(bad());
    }
    Ok((start, end))
}

/// Day of the week of a day number since 1970-01-01 (a Thursday); Sunday = 0.
fn weekday_of(day: u64) -> u8 {
    ((day + 4) % 7) as u8
}

impl Window {
    /// A window from its two optional parts.
    pub fn parse(day: Option<&str>, time: Option<&str>) -> Result<Self, WindowError> {
        let days = match day.map(str::trim).filter(|d| !d.is_empty()) {
            Some(d) => parse_days(d)?,
            None => 0x7f,
        };
        let (start_min, end_min) = match time.map(str::trim).filter(|t| !t.is_empty()) {
            Some(t) => parse_time(t)?,
            None => (0, 24 * 60),
        };
        Ok(Self {
            days,
            start_min,
            end_min,
        })
    }

    /// A window from its JSON form `{"day": "...", "time": "..."}`.
    pub fn from_json(v: &serde_json::Value) -> Result<Self, WindowError> {
        let obj = v
            .as_object()
            .ok_or_else(|| WindowError::Shape("must be an object with day and/or time".into()))?;
        let text = |k: &str| -> Result<Option<&str>, WindowError> {
            match obj.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
                Some(_) => Err(WindowError::Shape(format!("{k} must be a string"))),
            }
        };
        Self::parse(text("day")?, text("time")?)
    }

    /// The allowed intervals of day `day` (days since the epoch), in ms since the epoch.
    fn intervals(&self, day: u64) -> Vec<(u64, u64)> {
        let base = day * DAY_MS;
        let ms = |min: u32| base + u64::from(min) * MINUTE_MS;
        let mut out = Vec::with_capacity(2);
        if self.days & (1 << weekday_of(day)) == 0 {
            return out;
        }
        if self.start_min < self.end_min {
            out.push((ms(self.start_min), ms(self.end_min)));
        } else {
            // Past midnight: the early part of this day, then the late part.
            out.push((ms(0), ms(self.end_min)));
            out.push((ms(self.start_min), ms(24 * 60)));
        }
        out
    }

    /// Is `at` (ms since the epoch) inside the window?
    pub fn contains(&self, at: u64) -> bool {
        self.intervals(at / DAY_MS)
            .iter()
            .any(|(a, b)| (*a..*b).contains(&at))
    }

    /// The first instant at or after `at` (ms since the epoch) inside the window. Every window
    /// allows at least one minute a week, so the answer is at most 8 days away.
    pub fn next_allowed(&self, at: u64) -> u64 {
        let first = at / DAY_MS;
        for day in first..first + 8 {
            for (a, b) in self.intervals(day) {
                if b > at {
                    return a.max(at);
                }
            }
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-23 is a Monday.
    const MONDAY: u64 = 20_780 * DAY_MS;
    const H: u64 = 3_600_000;

    #[test]
    fn the_reference_day_is_a_monday() {
        assert_eq!(weekday_of(MONDAY / DAY_MS), 1);
        assert_eq!(
            crate::time::iso_millis(MONDAY as i64),
            "2026-11-23T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_days_and_times() {
        let w = Window::parse(Some("monday-friday"), Some("09:00-17:00")).unwrap();
        assert_eq!(w.days, 0b0011_1110);
        assert_eq!((w.start_min, w.end_min), (540, 1020));
        assert_eq!(
            Window::parse(Some("fri-mon"), None).unwrap().days,
            0b0110_0011
        );
        assert_eq!(
            Window::parse(Some("sunday, wed"), None).unwrap().days,
            0b0000_1001
        );
        assert_eq!(Window::parse(None, Some("00:00-24:00")).unwrap().days, 0x7f);
        assert!(matches!(
            Window::parse(Some("someday"), None),
            Err(WindowError::Day(_))
        ));
        for bad in [
            "9-17",
            "09:00",
            "25:00-26:00",
            "09:00-09:00",
            "24:00-01:00",
            "9:0-10:00",
        ] {
            assert!(
                matches!(Window::parse(None, Some(bad)), Err(WindowError::Time(_))),
                "{bad}"
            );
        }
        let j = serde_json::json!({"day": "monday-friday", "time": "09:00-17:00"});
        assert_eq!(Window::from_json(&j).unwrap(), w);
        assert!(Window::from_json(&serde_json::json!({"day": 1})).is_err());
        assert!(Window::from_json(&serde_json::json!("monday")).is_err());
    }

    #[test]
    fn next_allowed_moves_into_the_window() {
        let w = Window::parse(Some("monday-friday"), Some("09:00-17:00")).unwrap();
        // Monday 08:00 → Monday 09:00; Monday 10:30 stays; Monday 17:00 → Tuesday 09:00.
        assert_eq!(w.next_allowed(MONDAY + 8 * H), MONDAY + 9 * H);
        assert_eq!(
            w.next_allowed(MONDAY + 10 * H + H / 2),
            MONDAY + 10 * H + H / 2
        );
        assert_eq!(w.next_allowed(MONDAY + 17 * H), MONDAY + 24 * H + 9 * H);
        // Friday 18:00 → next Monday 09:00.
        let friday = MONDAY + 4 * 24 * H;
        assert_eq!(w.next_allowed(friday + 18 * H), MONDAY + 7 * 24 * H + 9 * H);
        assert!(w.contains(MONDAY + 9 * H));
        assert!(!w.contains(MONDAY + 17 * H));
        assert!(!w.contains(MONDAY + 5 * 24 * H + 10 * H)); // Saturday
    }

    #[test]
    fn overnight_windows_wrap_midnight() {
        let w = Window::parse(Some("saturday"), Some("22:00-02:00")).unwrap();
        let saturday = MONDAY + 5 * 24 * H;
        // Saturday 01:00 is inside (the early part of Saturday); Saturday 03:00 → 22:00.
        assert_eq!(w.next_allowed(saturday + H), saturday + H);
        assert_eq!(w.next_allowed(saturday + 3 * H), saturday + 22 * H);
        // Sunday is not allowed: Sunday 01:00 → next Saturday 00:00.
        assert_eq!(w.next_allowed(saturday + 24 * H + H), saturday + 7 * 24 * H);
    }
}
