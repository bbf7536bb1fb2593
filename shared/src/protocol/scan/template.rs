//! The records of one page mostly share one shape: the same keys, in the same order, around
//! different values. After a record whose verdict is the best one (canonical, no whitespace, its
//! keys in JavaScript's order), its *skeleton* is kept: the record's text with each scalar value
//! (string, number, `true`, `false`, `null`) cut out. The next record is first read against it:
//! each piece of skeleton is compared a word at a time, and each scalar between them is read as
//! the full scan reads it. Where every piece matches, the record has the same keys in the same
//! places, so their verdict is the same as before (in order, none repeated); only its scalars
//! can make it not canonical, and they were read by the same code. The first piece that does
//! not match sends the record back to its start, to the full scan, whose verdict stands (and
//! whose record becomes the skeleton, when it qualifies).
//!
//! No cliff on a page whose records differ: the bytes read for nothing (against a skeleton that
//! then failed, and to learn skeletons) are counted, and once they pass an eighth of the bytes
//! read whole against one (plus [`FREE_MISSES`]), the page's records are read by the full scan
//! only.

use super::{RecordSpan, Scanner, string_stop, word_at};

/// Bytes read for nothing (against a skeleton that then failed, or to learn one) that are
/// forgiven outright: twenty records of 200 bytes.
const FREE_MISSES: usize = 4096;

/// A record with more text than this, or more scalars than [`MAX_SLOTS`], gets no skeleton.
const MAX_SKELETON: usize = 4096;
const MAX_SLOTS: usize = 512;

/// The pad after the skeleton's bytes, so that a word can be read from any piece's start.
const PAD: usize = 8;

#[derive(Default)]
pub(super) struct Template {
    /// The skeleton's bytes, then [`PAD`] zero bytes.
    bytes: Vec<u8>,
    /// Where each piece ends in `bytes`: a scalar follows each but the last.
    ends: Vec<u32>,
    /// Bytes of records read whole against the skeleton.
    hits: usize,
    /// Bytes read against a skeleton that then did not match (read again by the full scan), and
    /// bytes read to learn a skeleton.
    misses: usize,
    /// Too many misses: the page's records go to the full scan only.
    off: bool,
    /// The last record that qualifies to be the skeleton, learned only when another record
    /// follows it (the last record of a page, and a page's only one, are never learned).
    pending: Option<(usize, usize)>,
}

impl Template {
    /// A page's template, before its first record; `used: false` reads every record by the full
    /// scan.
    pub(super) fn new(used: bool) -> Self {
        Template {
            off: !used,
            ..Template::default()
        }
    }

    /// Whether records are read against skeletons (not turned off, by the caller or misses).
    pub(super) fn used(&self) -> bool {
        !self.off
    }

    /// Learn the skeleton of the pending record, now that another record follows it. Learning
    /// reads the record again: counted as missed, paid for only by later matches.
    fn learn_pending(&mut self, b: &[u8]) {
        let Some((from, to)) = self.pending.take() else {
            return;
        };
        if let Some(record) = b.get(from..to)
            && self.learn(record)
        {
            self.misses += to - from;
        }
        self.judge();
    }

    /// Off for the rest of the page once the bytes read for nothing pass what is forgiven.
    fn judge(&mut self) {
        self.off |= self.misses > self.hits / 8 + FREE_MISSES;
    }

    /// Whether a record is worth reading against the skeleton.
    #[inline(always)]
    fn ready(&self) -> bool {
        !self.ends.is_empty() && !self.off
    }

    /// Keep the skeleton of `record`, a text the full scan found canonical, without whitespace
    /// and with its keys in order; `false` (no skeleton) when it is not an object or too big.
    fn learn(&mut self, record: &[u8]) -> bool {
        self.bytes.clear();
        self.ends.clear();
        if record.first() != Some(&b'{') || record.len() > MAX_SKELETON {
            return false;
        }
        let mut i = 0;
        while let Some(&c) = record.get(i) {
            match c {
                b'{' | b'}' | b'[' | b']' | b',' | b':' => {
                    self.bytes.push(c);
                    i += 1;
                }
                b'"' => {
                    let Some(end) = string_end(record, i + 1) else {
                        return self.forget();
                    };
                    if record.get(end) == Some(&b':') {
                        // A key: part of the skeleton.
                        self.bytes.extend_from_slice(&record[i..end]);
                    } else {
                        self.slot();
                    }
                    i = end;
                }
                _ => {
                    // A number or a literal: up to what ends a value.
                    let len = record[i..]
                        .iter()
                        .position(|c| matches!(c, b',' | b'}' | b']'))
                        .unwrap_or(record.len() - i);
                    self.slot();
                    i += len;
                }
            }
            if self.ends.len() > MAX_SLOTS {
                return self.forget();
            }
        }
        self.ends.push(self.bytes.len() as u32);
        self.bytes.extend_from_slice(&[0; PAD]);
        true
    }

    fn slot(&mut self) {
        self.ends.push(self.bytes.len() as u32);
    }

    fn forget(&mut self) -> bool {
        self.bytes.clear();
        self.ends.clear();
        false
    }
}

/// Past the closing quote of the string whose contents start at `i` (in text already checked).
fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let (off, _) = string_stop(b.get(i..)?)?;
        i += off;
        match b.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => return None,
        }
    }
}

/// Whether `b` holds `piece` from `i` on, a word at a time. `piece_at` is where `piece` starts
/// in `padded`, which has at least [`PAD`] bytes after it.
#[inline(always)]
fn holds(b: &[u8], i: usize, padded: &[u8], piece_at: usize, len: usize) -> bool {
    let mut k = 0;
    while k < len {
        let (Some(w), Some(t)) = (word_at(b, i + k), word_at(padded, piece_at + k)) else {
            // Fewer than eight bytes left in the text.
            return b.get(i + k..i + len) == padded.get(piece_at + k..piece_at + len);
        };
        let left = len - k;
        let diff = w ^ t;
        if left < 8 {
            return diff & ((1u64 << (left * 8)) - 1) == 0;
        }
        if diff != 0 {
            return false;
        }
        k += 8;
    }
    true
}

impl Scanner<'_> {
    /// The record at the cursor, read against the page's skeleton when there is one, else (or
    /// when it does not match) by the full scan; its span added to `out`.
    #[inline(always)]
    pub(super) fn record(&mut self, out: &mut Vec<RecordSpan>) -> Result<(), ()> {
        let start = self.i;
        self.template.learn_pending(self.b);
        if self.template.ready() {
            if self.reading_record(Self::against_template) {
                self.template.hits += self.i - start;
                return self.push_span(out, start);
            }
            self.template.misses += self.i - start;
            self.i = start;
        }
        self.record_scanned(out)?;
        let t = &mut self.template;
        if !t.off
            && out
                .last()
                .is_some_and(|r| r.canonical && r.keys_in_order && !r.spaced)
        {
            t.pending = Some((start, self.i));
        }
        t.judge();
        Ok(())
    }

    /// Every piece of the skeleton, and a scalar read between each two.
    #[inline(always)]
    fn against_template(&mut self) -> bool {
        let t = std::mem::take(&mut self.template);
        let mut from = 0usize;
        let mut matched = true;
        let last = t.ends.len() - 1;
        for (k, &end) in t.ends.iter().enumerate() {
            let len = end as usize - from;
            if !holds(self.b, self.i, &t.bytes, from, len) {
                matched = false;
                break;
            }
            self.i += len;
            from = end as usize;
            if k < last && self.scalar().is_err() {
                matched = false;
                break;
            }
        }
        self.template = t;
        matched
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Level, Scanner, split_with};

    /// Record `i` in one of several forms around one shape: the same skeleton with other
    /// values (some not canonical), and records that leave it early, late or not at all.
    fn record(i: usize, form: u8) -> String {
        let base = |n: &str, s: &str, t: &str| {
            format!(r#"{{"id":"rec-{i}","n":{n},"ok":true,"a":{{"s":{s},"z":null}},"t":{t}}}"#)
        };
        match form {
            0 => base(&i.to_string(), r#""x""#, r#"["a","b"]"#),
            1 => base(&format!("{i}.0"), r#""x""#, r#"["a","b"]"#),
            2 => base(&i.to_string(), r#""Z\u00fcrich\/""#, r#"["a","b"]"#),
            3 => base(&i.to_string(), r#""Zürich\n""#, r#"["a","b"]"#),
            4 => base(&i.to_string(), r#""x""#, r#"["a","b","c"]"#),
            5 => base("null", r#"{"deeper":1}"#, "[]"),
            6 => base(r#""seven""#, "false", r#"[1,-2.5e3]"#),
            7 => format!(r#"{{"id":"rec-{i}","id":"again","n":{i}}}"#),
            8 => format!(r#"{{"1":{i},"0":"zero","n":{i}}}"#),
            9 => format!(r#"{{"id": "rec-{i}", "n": {i}}}"#),
            10 => base(&i.to_string(), r#""\ud800""#, r#"["a","b"]"#),
            11 => base("1e999", r#""x""#, r#"["a","b"]"#),
            12 => base(&i.to_string(), r#""x""#, r#"["a","b"]"#).replace("\"ok\"", "\"o\\u006b\""),
            13 => base(&format!("0{i}"), r#""x""#, r#"["a","b"]"#),
            14 => "[1,2]".to_owned(),
            _ => format!(r#"{{"id":"rec-{i}","n":{i},"ok":true}}"#),
        }
    }

    fn page(forms: &[u8]) -> String {
        let records: Vec<String> = forms
            .iter()
            .enumerate()
            .map(|(i, &f)| record(i, f))
            .collect();
        format!(
            r#"{{"data":[{}],"_flowId":"f","errors":[]}}"#,
            records.join(",")
        )
    }

    /// The split with skeletons and by the full scan only, in one pass and in halves.
    fn both_ways(text: &str) -> [String; 4] {
        let b = text.as_bytes();
        [
            format!("{:?}", split_with(b, Level::Options, usize::MAX, true)),
            format!("{:?}", split_with(b, Level::Options, usize::MAX, false)),
            format!("{:?}", split_with(b, Level::Options, 0, true)),
            format!("{:?}", split_with(b, Level::Options, 0, false)),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(400))]

        /// Reading against skeletons finds the spans and verdicts the full scan finds.
        #[test]
        fn records_read_against_a_skeleton_get_the_full_scans_verdicts(
            forms in proptest::collection::vec(
                proptest::prop_oneof![
                    // Mostly the shape itself, so that skeletons are learned and matched.
                    6 => proptest::strategy::Just(0u8),
                    10 => 0u8..16,
                ],
                1..80,
            )
        ) {
            let [with, without, halves_with, halves_without] = both_ways(&page(&forms));
            proptest::prop_assert_eq!(&with, &without);
            proptest::prop_assert_eq!(&halves_with, &halves_without);
            proptest::prop_assert_eq!(&with, &halves_with);
        }
    }

    #[test]
    fn a_record_of_the_same_shape_is_judged_by_its_own_values() {
        // Each of these matches the first record's skeleton: its own scalars decide.
        for (form, canonical) in [(0, true), (1, false), (2, false), (3, true), (10, false)] {
            let text = page(&[0, form]);
            let [with, without, ..] = both_ways(&text);
            assert_eq!(with, without, "form {form}");
            let spans = split_with(text.as_bytes(), Level::Options, usize::MAX, true)
                .expect("split")
                .remove(0)
                .records
                .expect("records");
            assert_eq!(spans[1].canonical, canonical, "form {form}: {with}");
        }
    }

    #[test]
    fn a_record_that_leaves_the_shape_is_read_by_the_full_scan() {
        // Keys repeated or out of order, a scalar where an object was, a longer array,
        // whitespace, a malformed number, a record that is not an object.
        for form in [4, 5, 6, 7, 8, 9, 11, 12, 13, 14] {
            let text = page(&[0, 0, form, form, 0]);
            let [with, without, ..] = both_ways(&text);
            assert_eq!(with, without, "form {form}");
        }
    }

    /// The record array at `text`'s first `[`, read, by a scanner of one pass; its template after.
    fn scanned(text: &str, n: usize) -> super::Template {
        let mut s = Scanner::new(text.as_bytes());
        s.halves_from = usize::MAX;
        s.i = text.find('[').expect("array");
        let mut out = Vec::new();
        s.elements(|s| s.record(&mut out)).expect("records");
        assert_eq!(out.len(), n);
        s.template
    }

    #[test]
    fn records_of_one_shape_are_read_against_the_skeleton() {
        // Other values, some not canonical: all but the first record match the skeleton.
        let forms: Vec<u8> = (0..100).map(|i| [0, 1, 2, 3][i % 4]).collect();
        let text = page(&forms);
        let t = scanned(&text, 100);
        assert!(!t.off);
        let first = record(0, 0).len();
        let all: usize = (0..100).map(|i| record(i, forms[i]).len()).sum();
        assert_eq!(t.hits, all - first, "read whole against the skeleton");
        assert_eq!(t.misses, first, "only the first record's learning");
    }

    #[test]
    fn a_pages_last_record_is_not_learned() {
        // A page's only record has nothing to be matched against its skeleton.
        let t = scanned(&page(&[0]), 1);
        assert!(t.ends.is_empty(), "a skeleton of the only record");
        assert_eq!(t.misses, 0);
        // Of two, the first is learned for the second, and the second not at all.
        let t = scanned(&page(&[0, 0]), 2);
        assert_eq!(
            t.misses,
            record(0, 0).len(),
            "the first record's learning only"
        );
        assert_eq!(t.hits, record(1, 0).len());
    }

    #[test]
    fn records_that_each_leave_the_shape_at_once_stop_the_learning() {
        // Each record's first key is its own: every skeleton fails on its first piece, and
        // what it cost was learning it.
        let records: Vec<String> = (0..400)
            .map(|i| format!(r#"{{"k{i}":1,"pad":"{}"}}"#, "p".repeat(100)))
            .collect();
        let t = scanned(&format!(r#"{{"data":[{}]}}"#, records.join(",")), 400);
        assert!(t.off, "still learning after {} bytes", t.misses);
        assert!(t.misses <= super::FREE_MISSES + 2 * 130, "{}", t.misses);
    }

    #[test]
    fn records_that_each_leave_the_shape_late_turn_the_skeletons_off() {
        // Every record is the last one's shape up to its array, which is one longer each time.
        let records: Vec<String> = (0..400)
            .map(|i| {
                let tags = vec!["\"t\""; i % 7 + 1].join(",");
                format!(
                    r#"{{"id":"r{i}","pad":"{}","tags":[{tags}]}}"#,
                    "p".repeat(200)
                )
            })
            .collect();
        let t = scanned(&format!(r#"{{"data":[{}]}}"#, records.join(",")), 400);
        assert!(t.off, "still on after {} missed bytes", t.misses);
        // Bounded: no more than the free allowance, an eighth of what matched, and one record
        // read twice (against the skeleton, then to learn its own).
        let longest = records.iter().map(String::len).max().unwrap_or_default();
        assert!(
            t.misses <= super::FREE_MISSES + t.hits / 8 + 2 * longest,
            "{}",
            t.misses
        );
    }
}
