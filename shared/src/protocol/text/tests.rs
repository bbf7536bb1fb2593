use super::*;
use crate::protocol::Record;
use crate::protocol::scan;
use serde_json::json;

/// Records that are ranges of one request text sharing it, as the options make them.
fn page(source: &Bytes, ranges: &[(usize, usize)]) -> Vec<Record> {
    let whole = std::sync::Arc::new(source.clone());
    ranges
        .iter()
        .map(|&(s, e)| {
            let t = PageText::new(&whole, s..e);
            let canonical = scan::canonical(&t).unwrap_or(false);
            Record::from_page_text(t, canonical)
        })
        .collect()
}

/// The same records, each a slice of the request of its own.
fn slices(source: &Bytes, ranges: &[(usize, usize)]) -> Vec<Record> {
    ranges
        .iter()
        .map(|&(s, e)| {
            let t = source.slice(s..e);
            let canonical = scan::canonical(&t).unwrap_or(false);
            Record::from_text(t, canonical)
        })
        .collect()
}

/// `{"k":"xxx…"}` of `n` bytes in all.
fn big(k: &str, n: usize) -> String {
    format!(r#"{{"{k}":"{}"}}"#, "x".repeat(n - k.len() - 7))
}

/// A request `{"data":[r1,r2,…],"z":0}` and the records' ranges in it.
fn request(records: &[String], sep: &str) -> (Bytes, Vec<(usize, usize)>) {
    let mut text = String::from(r#"{"data":["#);
    let mut ranges = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if i > 0 {
            text.push_str(sep);
        }
        ranges.push((text.len(), text.len() + r.len()));
        text.push_str(r);
    }
    text.push_str(r#"],"z":0}"#);
    (Bytes::from(text), ranges)
}

#[test]
fn records_are_sent_from_the_request_and_the_bytes_are_the_same() {
    let records = [big("a", 20_000), big("b", 9_000), big("c", 30_000)];
    let (source, ranges) = request(&records, ",");
    let data = page(&source, &ranges);
    let value = json!({"n": 1});
    let answer = (&data, &value);
    let expected = json::to_vec(&answer).unwrap();
    // Without the source: long records are pieces of their own, the short one is copied.
    let apart = to_text(&answer).unwrap();
    assert_eq!(apart.to_bytes().as_ref(), expected.as_slice());
    assert_eq!(apart.len(), expected.len());
    assert_eq!(apart.pieces().len(), 5);
    // Within it: the three records and the commas between them are one slice of it.
    let text = within(Some(source.clone()), || to_text(&answer)).unwrap();
    assert_eq!(text.to_bytes().as_ref(), expected.as_slice());
    assert_eq!(text.len(), expected.len());
    assert_eq!(text.pieces().len(), 3);
    assert_eq!(text.pieces()[1].len(), 59_002);
    assert_eq!(text.pieces()[1].as_ptr(), source[ranges[0].0..].as_ptr());
    assert_eq!(text.outline().as_ref(), br#"[[0,0,0],{"n":1}]"#);
    // Records that are slices of the request of their own are found in it all the same.
    let data = slices(&source, &ranges);
    let sliced = within(Some(source.clone()), || to_text(&(&data, &value))).unwrap();
    assert_eq!(sliced, text);
}

#[test]
fn short_answers_are_one_piece() {
    // A preMap-sized answer: records short and apart (`{"data":…}` around each) are copied
    // into the answer's own bytes rather than sent as hundreds of frames.
    let records: Vec<String> = (0..100).map(|i| format!(r#"{{"id":{i}}}"#)).collect();
    let (source, ranges) = request(&records, ",");
    let data: Vec<_> = page(&source, &ranges)
        .into_iter()
        .map(crate::protocol::types::RecordResult::keep)
        .collect();
    let text = within(Some(source), || to_text(&data)).unwrap();
    assert_eq!(text.pieces().len(), 1);
    assert_eq!(text.into_bytes(), json::to_vec(&data).unwrap());
}

#[test]
fn a_changed_or_rewritten_record_is_written_by_the_writer() {
    let source = Bytes::from_static(br#"[{"a":1},{"b": 2},{"c":3}]"#);
    let mut data = page(&source, &[(1, 8), (9, 17), (18, 25)]);
    data[2]["d"] = json!(4);
    let text = within(Some(source.clone()), || to_text(&data)).unwrap();
    assert_eq!(text.into_string(), r#"[{"a":1},{"b":2},{"c":3,"d":4}]"#);
}

#[test]
fn separators_must_match_to_be_joined() {
    // In the request the records are separated by ", " (not canonical between them); the
    // answer writes ",": the slices stay apart.
    let records = [big("a", 20_000), big("b", 20_000)];
    let (source, ranges) = request(&records, ", ");
    let data = page(&source, &ranges);
    let text = within(Some(source.clone()), || to_text(&data)).unwrap();
    assert_eq!(text.pieces().len(), 5);
    assert_eq!(text.into_bytes(), json::to_vec(&data).unwrap());
    // Records in another order than the request's are not joined either.
    let mut data = page(&source, &ranges);
    data.reverse();
    let text = within(Some(source), || to_text(&data)).unwrap();
    assert_eq!(text.pieces().len(), 5);
    assert_eq!(text.into_bytes(), json::to_vec(&data).unwrap());
}

#[test]
fn records_from_elsewhere_are_pieces_of_their_own() {
    let source = Bytes::from_static(br#"[{"a":1},{"b":2}]"#);
    let other = Bytes::from_static(br#"[{"c":3}]"#);
    let mut data = page(&source, &[(1, 8), (9, 16)]);
    data.insert(1, page(&other, &[(1, 8)]).remove(0));
    let text = within(Some(source), || to_text(&data)).unwrap();
    assert_eq!(text.into_string(), r#"[{"a":1},{"c":3},{"b":2}]"#);
}

#[test]
fn a_record_written_inside_another_writer_is_never_marked() {
    struct Nested(Record);
    impl Serialize for Nested {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            // A function's own JSON, inside the answer: a string holding the record.
            let inner = serde_json::to_string(&self.0).map_err(serde::ser::Error::custom)?;
            s.serialize_str(&inner)
        }
    }
    let source = Bytes::from_static(br#"{"a":1}"#);
    let r = page(&source, &[(0, 7)]).remove(0);
    let answer = (Nested(r.clone()), r);
    let text = to_text(&answer).unwrap();
    assert_eq!(text.into_string(), r#"["{\"a\":1}",{"a":1}]"#);
    // And marks never outlive the write.
    assert_eq!(serde_json::to_string(&answer.1).unwrap(), r#"{"a":1}"#);
}

#[test]
fn index_keys_outside_records_take_the_whole_path() {
    let source = Bytes::from_static(br#"{"x":true}"#);
    let r = page(&source, &[(0, 10)]).remove(0);
    let answer = json!({"b": 1, "1": 2});
    let text = to_text(&(answer, r)).unwrap();
    assert_eq!(text.pieces().len(), 1);
    assert_eq!(text.into_string(), r#"[{"1":2,"b":1},{"x":true}]"#);
}

#[test]
fn utf16_length_counts_every_piece() {
    let source = Bytes::from("[\"é😀\"]".to_owned());
    let r = page(&source, &[(1, source.len() - 1)]).remove(0);
    let text = to_text(&vec![r]).unwrap();
    assert_eq!(text.utf16_len(), json::utf16_len("[\"é😀\"]"));
}

#[test]
fn records_not_in_json_stringify_form_are_rewritten_into_the_answer() {
    // A long canonical record, a pretty one (with keys to reorder), another long canonical one.
    let records = [
        big("a", 20_000),
        "{\"b\": 2.50, \"1\": \"\\u00e9\", \"b\": [1.0]}".to_owned(),
        big("c", 20_000),
    ];
    let (source, ranges) = request(&records, ",");
    let data = page(&source, &ranges);
    let answer = (&data, json!({"n": 1}));
    let expected = json::to_vec(&answer).unwrap();
    assert!(
        String::from_utf8_lossy(&expected).contains(r#",{"1":"é","b":[1]},"#),
        "{}",
        String::from_utf8_lossy(&expected[..100])
    );
    let text = within(Some(source.clone()), || to_text(&answer)).unwrap();
    assert_eq!(text.to_bytes().as_ref(), expected.as_slice());
    assert_eq!(text.len(), expected.len());
    // The long records are slices of the request; the rewritten one is written in between.
    assert_eq!(text.pieces().len(), 5);
    assert_eq!(text.pieces()[1].as_ptr(), source[ranges[0].0..].as_ptr());
    assert_eq!(text.outline().as_ref(), br#"[[0,0,0],{"n":1}]"#);
    // Inside a function's own JSON, the marks do not match: written again whole, same bytes.
    let nested = (serde_json::to_string(&data[1]).unwrap(), &data[1]);
    let text = within(Some(source), || to_text(&nested)).unwrap();
    assert_eq!(text.into_bytes(), json::to_vec(&nested).unwrap());
}

/// `n` records, those `python` picks as Python's `json.dumps` writes them (to be rewritten), the
/// others as `JSON.stringify` does: the answer's text, and what the writer writes for them.
fn python_page(n: usize, python: impl Fn(usize) -> bool) -> (JsonText, Vec<u8>) {
    let records: Vec<String> = (0..n)
        .map(|i| {
            if python(i) {
                format!(r#"{{"id": {i}, "amount": 3.0, "name": "r\u00e9cord {i}"}}"#)
            } else {
                format!(r#"{{"id":{i},"amount":1.5,"name":"récord {i}"}}"#)
            }
        })
        .collect();
    let (source, ranges) = request(&records, ",");
    let data = page(&source, &ranges);
    let expected = json::to_vec(&data).unwrap();
    (within(Some(source), || to_text(&data)).unwrap(), expected)
}

/// A large answer whose own bytes (rewritten records and the short records between them) add
/// up to megabytes is gathered in blocks, each a piece: none grown past a block and a record.
#[test]
fn a_large_answer_gathers_its_own_bytes_in_blocks() {
    let (text, expected) = python_page(60_000, |i| i % 4 == 2);
    assert_eq!(text.to_bytes().as_ref(), expected.as_slice());
    assert_eq!(text.len(), expected.len());
    let pieces = text.pieces();
    assert!(
        pieces.len() > 1 && pieces.len() < expected.len() / (BLOCK / 2) + 2,
        "{}",
        pieces.len()
    );
    assert!(pieces.iter().all(|p| p.len() <= BLOCK + 100));
}

/// In a large answer, the records that pass through between rewritten ones are sent from the
/// request (not copied a second time) once they add up to `MIN_SLICE_LARGE`.
#[test]
fn a_large_answer_sends_runs_of_records_between_rewrites_from_the_request() {
    let pad = "p".repeat(200);
    let records: Vec<String> = (0..2_000)
        .map(|i| {
            if i % 4 == 2 {
                format!(r#"{{"id": {i}, "amount": 3.0}}"#)
            } else {
                format!(r#"{{"id":{i},"pad":"{pad}"}}"#)
            }
        })
        .collect();
    let (source, ranges) = request(&records, ",");
    let data = page(&source, &ranges);
    let expected = json::to_vec(&data).unwrap();
    let text = within(Some(source.clone()), || to_text(&data)).unwrap();
    assert_eq!(text.to_bytes().as_ref(), expected.as_slice());
    let from_request: usize = text
        .pieces()
        .iter()
        .filter(|p| range_in(&source, p).is_some())
        .map(Bytes::len)
        .sum();
    // Three records of ~220 bytes between each rewritten one: about nine tenths of the answer.
    assert!(
        from_request > expected.len() * 8 / 10,
        "{from_request} of {}",
        expected.len()
    );
}

#[test]
fn a_large_answer_with_much_to_rewrite_is_cut_in_halves_into_the_same_text() {
    // More than a MiB of records to rewrite (every other one as Python writes it): on two cores
    // the second half of the marks is cut by another thread (`text/halves.rs`).
    let (text, expected) = python_page(50_000, |i| i % 2 == 0);
    // Half of it rewritten: more than a MiB.
    assert!(expected.len() > 2 << 20, "{}", expected.len());
    assert_eq!(text.len(), expected.len());
    assert!(
        text.to_bytes().as_ref() == expected.as_slice(),
        "the text differs"
    );
    assert!(text.pieces().iter().all(|p| p.len() <= BLOCK + 100));
}

#[test]
fn when_no_thread_can_be_made_the_second_half_is_cut_after_the_first() {
    let (threaded, expected) = python_page(50_000, |i| i % 2 == 0);
    crate::protocol::scan::NO_THREADS.set(true);
    let (alone, _) = python_page(50_000, |i| i % 2 == 0);
    crate::protocol::scan::NO_THREADS.set(false);
    assert!(threaded.to_bytes().as_ref() == expected.as_slice());
    assert!(
        alone.to_bytes().as_ref() == expected.as_slice(),
        "the text differs"
    );
    assert_eq!(alone.len(), expected.len());
    // Cut in pieces, not written again whole (what a failed cut falls back to).
    assert!(alone.pieces().iter().all(|p| p.len() <= BLOCK + 100));
}

#[test]
fn a_mark_is_small() {
    assert_eq!(std::mem::size_of::<Mark>(), 12);
}
