//! A long record array scanned in two halves at once: the second half on a thread of its own,
//! from a guessed record start, and its result taken only when the scan of the first half
//! arrives at exactly that start.
//!
//! The guess is the first `},` past the middle of the text that is followed by `{` (records that
//! are objects). It may be wrong: inside a string, or past the array's end. Then the scan of the
//! first half never stops at it, goes on through the rest itself, and the other thread's work is
//! dropped. When it does stop there, the text from there on was scanned as it would have
//! scanned it: every record starts from the same state (its flags reset, no enclosing object's
//! keys, the same depth), so the spans found are the same ones.
//!
//! Only where `available_parallelism` (which honours a cgroup's CPU quota) says two cores or
//! more, and with at least [`HALVES_FROM`] of text left at the array's start. Where the second
//! core is not really there (a Lambda function below 1,769 MB gets less than one vCPU's time),
//! the halves share the time one pass would take: the work is the same, plus the thread, plus a
//! second half scanned for nothing when the guess is wrong.

use super::{RecordSpan, Scanner, skip_ws};
use std::sync::OnceLock;

/// At least this much text left at a record array's start: scanned in halves. A thread costs
/// tens of microseconds; a MiB of records takes about a millisecond to scan.
pub(super) const HALVES_FROM: usize = 1 << 20;

/// How far past the middle the second half's start is looked for.
const SEARCH: usize = 64 * 1024;

/// `threshold` where this process may run two threads at once (`available_parallelism`, read
/// once); otherwise `usize::MAX`, never reached: the work that splits in halves from a size
/// (here, and the answer's rewrites in `protocol::text`).
pub(in crate::protocol) fn on_two_cores(threshold: usize) -> usize {
    static TWO_CORES: OnceLock<bool> = OnceLock::new();
    let two =
        *TWO_CORES.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2));
    if two { threshold } else { usize::MAX }
}

/// A thread in `scope` for a second half; `None` when the system will not make one (the
/// caller then does the work itself, as on one core).
pub(in crate::protocol) fn spawn_half<'scope, T: Send + 'scope>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    f: impl FnOnce() -> T + Send + 'scope,
) -> Option<std::thread::ScopedJoinHandle<'scope, T>> {
    #[cfg(test)]
    if NO_THREADS.get() {
        return None;
    }
    std::thread::Builder::new().spawn_scoped(scope, f).ok()
}

#[cfg(test)]
thread_local! {
    /// Tests: on this thread, [`spawn_half`] is refused, as by a system out of threads.
    pub(in crate::protocol) static NO_THREADS: std::cell::Cell<bool> =
        const { std::cell::Cell::new(false) };
}

impl Scanner<'_> {
    /// Where the second half would start (a guess, see the module notes), when enough text is
    /// left. The cursor is at the array's `[`.
    pub(super) fn halfway(&self) -> Option<usize> {
        let left = self.b.len().checked_sub(self.i)?;
        if left < self.halves_from {
            return None;
        }
        let mid = self.i + left / 2;
        let window = self.b.get(mid..self.b.len().min(mid + SEARCH))?;
        window
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w == b"},")
            .map(|(k, _)| skip_ws(self.b, mid + k + 2))
            .find(|&at| self.b.get(at) == Some(&b'{'))
    }

    /// The record array at the cursor, its records from `at` on scanned by another thread.
    pub(super) fn records_in_halves(&mut self, at: usize) -> Result<Vec<RecordSpan>, ()> {
        let text = self.b;
        let mut out = Vec::with_capacity(128);
        std::thread::scope(|scope| {
            // A thread the system will not make: one pass, as on one core.
            let skeletons = self.template.used();
            let mut second = spawn_half(scope, move || records_from(text, at, skeletons));
            self.elements(|s| {
                if s.i == at
                    && let Some(half) = second.take()
                    && let Ok(Ok((spans, end))) = half.join()
                {
                    out.extend(spans);
                    s.i = end;
                    return Ok(());
                }
                // Not there yet, past it, or the other half failed (this one then fails in the
                // same place, as one pass would).
                s.record(&mut out)
            })
        })?;
        Ok(out)
    }
}

/// The records from `at` (taken to be a record's start) to the end of their array: their spans
/// and where the last one ends (the array's `]` follows).
fn records_from(text: &[u8], at: usize, skeletons: bool) -> Result<(Vec<RecordSpan>, usize), ()> {
    let mut s = Scanner::new(text);
    s.template = super::template::Template::new(skeletons);
    s.i = at;
    let mut out = Vec::with_capacity(128);
    loop {
        s.record(&mut out)?;
        let end = s.i;
        if s.closes(b']')? {
            return if s.suspicious {
                Err(())
            } else {
                Ok((out, end))
            };
        }
        s.ws();
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Level, split_in};

    /// The options of a page of `n` records in several writers' forms.
    fn page(n: usize) -> String {
        let records: Vec<String> = (0..n)
            .map(|i| match i % 5 {
                0 => format!(r#"{{"id":{i},"name":"r{i}","tags":["a","b"],"x":{{"y":null}}}}"#),
                1 => format!(r#"{{"id": {i}.0, "name": "r\u00e9{i}"}}"#),
                2 => format!(r#"{{"b":{i},"a":true,"b":false}}"#),
                3 => format!(r#"{{"1":{i},"0":"\/"}}"#),
                _ => format!("{{\n  \"id\": {i},\n  \"ok\": [1, 2]\n}}"),
            })
            .collect();
        format!(
            r#"{{"data":[{}],"_flowId":"f","errors":[]}}"#,
            records.join(",")
        )
    }

    /// One pass, and in halves whatever the length.
    fn both(text: &str) -> (String, String) {
        let one = split_in(text.as_bytes(), Level::Options, usize::MAX);
        let halves = split_in(text.as_bytes(), Level::Options, 0);
        (format!("{one:?}"), format!("{halves:?}"))
    }

    #[test]
    fn a_long_array_scanned_in_halves_finds_what_one_pass_finds() {
        for n in [1, 2, 3, 10, 101, 2000] {
            let text = page(n);
            let (one, halves) = both(&text);
            assert!(one.starts_with("Ok("), "{n}: {one}");
            assert_eq!(one, halves, "{n} records");
        }
        // And the halves are used: the guess is a record's start.
        let text = page(2000);
        let mut s = super::Scanner::new(text.as_bytes());
        s.halves_from = 0;
        s.i = text.find('[').unwrap_or_default();
        let at = s.halfway().expect("a guess");
        assert!(text[..at].ends_with("},"), "{}", &text[at - 10..at + 10]);
    }

    #[test]
    fn a_guess_inside_a_string_is_never_taken() {
        // The first `},{` past the middle is inside a string, and what follows it there reads
        // as records (`{},{}]`): taken, the page would have two records that are not its own.
        let padding = "x".repeat(4000);
        let text = format!(
            r#"{{"data":[{{"a":1}},{{"s":"{padding}}},{{}},{{}}]"}},{{"a":2}},{{"a":3}}],"_flowId":"f"}}"#
        );
        let (one, halves) = both(&text);
        assert!(one.starts_with("Ok("), "{one}");
        assert_eq!(one, halves);
        assert_eq!(one.matches("RecordSpan").count(), 4, "{one}");
    }

    #[test]
    fn when_no_thread_can_be_made_one_pass_scans_it_all() {
        let text = page(2000);
        let one = both(&text).0;
        super::NO_THREADS.set(true);
        let (_, refused) = both(&text);
        super::NO_THREADS.set(false);
        assert!(one.starts_with("Ok("), "{one}");
        assert_eq!(one, refused);
    }

    #[test]
    fn a_guess_past_the_array_is_never_taken() {
        let text = format!(
            r#"{{"data":[{{"a":1}},{{"a":2}}],"other":[{}]}}"#,
            vec![r#"{"b":1}"#; 500].join(",")
        );
        let (one, halves) = both(&text);
        assert!(one.starts_with("Ok("), "{one}");
        assert_eq!(one, halves);
    }

    #[test]
    fn a_bad_record_in_the_second_half_fails_the_page_as_one_pass_does() {
        let good = page(400);
        for bad in [r#"{"a":01}"#, r#"{"a":1,}"#, "{\"a\":\"\u{1}\"}", r#"{"a""#] {
            let at = good.len() * 3 / 4;
            let cut = at + good[at..].find("},{").expect("a record") + 2;
            let text = format!("{}{bad},{}", &good[..cut], &good[cut..]);
            let (one, halves) = both(&text);
            assert!(one.starts_with("Err("), "{bad}: {one}");
            assert_eq!(one, halves, "{bad}");
        }
    }
}
