//! [`JsonText`]: an answer's JSON text in pieces, so that records passed through are sent from
//! the request's own bytes instead of being copied into a second page-sized buffer.
//!
//! [`to_text`] writes a value as [`super::json::to_vec`] does, except that each untouched
//! canonical [`super::Record`] leaves a one-byte mark in the writer's output and hands over its
//! text (a shared slice of the request). The output is then cut at the marks: the pieces are the
//! writer's own bytes and the records' slices, in order. [`JsonText::join_within`] then merges
//! the slices that lie side by side in the request with the same bytes between them (a page
//! whose records all pass through becomes one slice), and the transports send the pieces as
//! they are: the answer costs the writer's few bytes, not another copy of the page.
//!
//! The mark is a NUL byte, which serde_json never writes (it escapes control characters in
//! strings, and raw fragments are JSON). The marks found must match the texts handed over;
//! when they do not (a function's own `Serialize` writing a record into a string of its own,
//! say), or when anything goes wrong, the value is written again whole, without marks.

use super::json;
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use std::borrow::Cow;
use std::cell::RefCell;

/// What a record leaves in the writer's output in place of its text.
const MARK: u8 = 0;

thread_local! {
    /// While [`to_text`] writes: the texts of the records marked so far, in order.
    static SPLICED: RefCell<Option<Vec<Bytes>>> = const { RefCell::new(None) };
}

/// Called by a record about to be written as its own `text`: `true` when [`to_text`] is writing
/// (the text is taken, and the record writes [`MARK`] alone), `false` otherwise (the record
/// writes its text).
pub(crate) fn splice(text: &Bytes) -> bool {
    SPLICED.with_borrow_mut(|s| match s {
        Some(v) => {
            v.push(text.clone());
            true
        }
        None => false,
    })
}

/// The [`MARK`] byte as the raw text a record writes.
pub(crate) const MARK_TEXT: &str = "\0";

/// Sets [`SPLICED`] for one write and puts back what was there when dropped, on every path out
/// (a panic in a `Serialize` included): a mark can never leak into a writer outside [`to_text`].
struct Scope(Option<Option<Vec<Bytes>>>);

impl Scope {
    fn set(state: Option<Vec<Bytes>>) -> Self {
        Scope(Some(SPLICED.replace(state)))
    }
    /// The texts handed over in this scope.
    fn take(&mut self) -> Vec<Bytes> {
        SPLICED.with_borrow_mut(|s| s.as_mut().map(std::mem::take).unwrap_or_default())
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if let Some(prev) = self.0.take() {
            SPLICED.set(prev);
        }
    }
}

/// Run `f` (a write) with records written as their own text, never marked: what
/// [`json::to_vec`] does, even when called from inside a [`to_text`] (a function's `Serialize`
/// that writes JSON of its own).
pub(crate) fn unspliced<T>(f: impl FnOnce() -> T) -> T {
    let _scope = Scope::set(None);
    f()
}

/// JSON text, as pieces sent one after the other. Built by [`to_text`], or from one string.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct JsonText {
    pieces: Vec<Bytes>,
    len: usize,
    /// When records were spliced: the writer's output with a `0` where each record was, so it
    /// is JSON of the same shape (see [`JsonText::outline`]).
    outline: Option<Bytes>,
}

impl JsonText {
    /// Total length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The pieces, to send.
    pub fn into_pieces(self) -> Vec<Bytes> {
        self.pieces
    }

    /// The text with every spliced record replaced by `0`: the same JSON shape at a fraction of
    /// the size (the number of records in an answer, for metrics). The whole text when nothing
    /// was spliced.
    pub fn outline(&self) -> Cow<'_, [u8]> {
        match &self.outline {
            Some(o) => Cow::Borrowed(o),
            None => self.to_bytes(),
        }
    }

    /// The text in one buffer (copied only when it is in more than one piece).
    pub fn to_bytes(&self) -> Cow<'_, [u8]> {
        match self.pieces.as_slice() {
            [] => Cow::Borrowed(&[]),
            [one] => Cow::Borrowed(one),
            many => {
                let mut out = Vec::with_capacity(self.len);
                for p in many {
                    out.extend_from_slice(p);
                }
                Cow::Owned(out)
            }
        }
    }

    /// The text in one buffer (no copy when it is one piece).
    pub fn into_bytes(mut self) -> Bytes {
        if self.pieces.len() == 1 {
            return self.pieces.pop().unwrap_or_default();
        }
        let mut out = BytesMut::with_capacity(self.len);
        for p in &self.pieces {
            out.extend_from_slice(p);
        }
        out.freeze()
    }

    /// The text as a `String`. Every piece is JSON text (the writer's, or a record's, checked as
    /// UTF-8 when the request was scanned), so nothing is lost; invalid UTF-8 would be replaced.
    pub fn into_string(self) -> String {
        let bytes = self.into_bytes();
        match String::from_utf8(bytes.to_vec()) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// Length in UTF-16 code units (JavaScript's `String.length`; see [`json::utf16_len`]).
    pub fn utf16_len(&self) -> usize {
        self.pieces.iter().map(|p| json::utf16_len_bytes(p)).sum()
    }

    /// Merge neighbouring pieces that are, together, one slice of `source` (the request the
    /// spliced records came from): records that sat side by side in the request, separated by
    /// the same bytes as in the answer, are sent as one slice. Pieces from elsewhere are kept.
    pub fn join_within(&mut self, source: &Bytes) {
        if self.pieces.len() < 3 || source.is_empty() {
            return;
        }
        let base = source.as_ptr() as usize;
        // The range of `p` within `source`, when it is a slice of it.
        let range = |p: &Bytes| {
            let start = (p.as_ptr() as usize).checked_sub(base)?;
            let end = start.checked_add(p.len())?;
            (end <= source.len() && !p.is_empty()).then_some((start, end))
        };
        let mut out: Vec<Bytes> = Vec::with_capacity(self.pieces.len().min(64));
        // The source range the last piece of `out` covers, when it is one.
        let mut open: Option<(usize, usize)> = None;
        let mut pieces = std::mem::take(&mut self.pieces).into_iter().peekable();
        while let Some(piece) = pieces.next() {
            let here = range(&piece);
            // A gap piece (the writer's bytes) between the open slice and a next slice of the
            // source that follows at exactly that distance with exactly those bytes.
            if let (Some((s, e)), None) = (open, here)
                && let Some((ns, ne)) = pieces.peek().and_then(&range)
                && ns.checked_sub(e) == Some(piece.len())
                && source.get(e..ns) == Some(&piece[..])
            {
                pieces.next();
                open = Some((s, ne));
                continue;
            }
            // A slice right after the open one.
            if let (Some((s, e)), Some((ns, ne))) = (open, here)
                && ns == e
            {
                open = Some((s, ne));
                continue;
            }
            if let Some((s, e)) = open.take() {
                out.push(source.slice(s..e));
            }
            match here {
                Some(r) => open = Some(r),
                None => out.push(piece),
            }
        }
        if let Some((s, e)) = open {
            out.push(source.slice(s..e));
        }
        self.pieces = out;
    }

    fn whole(bytes: Bytes) -> Self {
        let len = bytes.len();
        let pieces = if bytes.is_empty() {
            Vec::new()
        } else {
            vec![bytes]
        };
        JsonText {
            pieces,
            len,
            outline: None,
        }
    }
}

impl std::fmt::Debug for JsonText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonText")
            .field("len", &self.len)
            .field("pieces", &self.pieces.len())
            .finish()
    }
}

impl From<String> for JsonText {
    fn from(s: String) -> Self {
        JsonText::whole(Bytes::from(s))
    }
}

impl From<&'static str> for JsonText {
    fn from(s: &'static str) -> Self {
        JsonText::whole(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for JsonText {
    fn from(v: Vec<u8>) -> Self {
        JsonText::whole(Bytes::from(v))
    }
}

impl From<Bytes> for JsonText {
    fn from(b: Bytes) -> Self {
        JsonText::whole(b)
    }
}

/// Write `value` as [`json::to_vec`] does (the same bytes), with the untouched canonical records
/// in it sent from the request's bytes (see the module notes).
pub fn to_text<T: Serialize + ?Sized>(value: &T) -> Result<JsonText, serde_json::Error> {
    let marked = {
        let mut scope = Scope::set(Some(Vec::new()));
        let out = json::to_vec_marked(value);
        out.map(|(out, rewritten)| (out, rewritten, scope.take()))
    };
    match marked {
        Ok((out, false, texts)) => match cut(out, texts) {
            Some(text) => Ok(text),
            None => unspliced(|| json::to_vec(value)).map(JsonText::from),
        },
        // Rewritten in JavaScript's key order (it parsed its own output: marks included, so
        // it cannot have been marked), or an error: written again whole.
        _ => unspliced(|| json::to_vec(value)).map(JsonText::from),
    }
}

/// Cut the writer's output at its marks, or `None` when the marks are not the `texts` handed.
fn cut(mut out: Vec<u8>, texts: Vec<Bytes>) -> Option<JsonText> {
    if texts.is_empty() {
        return (!out.contains(&MARK)).then(|| JsonText::from(out));
    }
    let marks: Vec<usize> = out
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| (b == MARK).then_some(i))
        .collect();
    if marks.len() != texts.len() {
        return None;
    }
    // The outline: the output with a `0` where each record was.
    for &m in &marks {
        out[m] = b'0';
    }
    let outline = Bytes::from(out);
    let mut pieces = Vec::with_capacity(texts.len() * 2 + 1);
    let mut len = 0;
    let mut from = 0;
    for (&m, text) in marks.iter().zip(texts) {
        if m > from {
            pieces.push(outline.slice(from..m));
        }
        len += m - from + text.len();
        if !text.is_empty() {
            pieces.push(text);
        }
        from = m + 1;
    }
    if from < outline.len() {
        pieces.push(outline.slice(from..));
    }
    len += outline.len() - from;
    Some(JsonText {
        pieces,
        len,
        outline: Some(outline),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Record;
    use crate::protocol::scan;
    use serde_json::json;

    /// Records that are slices of one request text, as the scan makes them.
    fn page(source: &Bytes, ranges: &[(usize, usize)]) -> Vec<Record> {
        ranges
            .iter()
            .map(|&(s, e)| {
                let t = source.slice(s..e);
                let canonical = scan::canonical(&t).unwrap_or(false);
                Record::from_text(t, canonical)
            })
            .collect()
    }

    #[test]
    fn records_are_sent_from_the_request_and_the_bytes_are_the_same() {
        let source = Bytes::from_static(br#"{"data":[{"a":1},{"b":[2]},{"c":"x"}],"z":0}"#);
        let data = page(&source, &[(9, 16), (17, 26), (27, 36)]);
        let value = json!({"n": 1});
        let answer = (&data, &value);
        let mut text = to_text(&answer).unwrap();
        let expected = json::to_vec(&answer).unwrap();
        assert_eq!(text.to_bytes().as_ref(), expected.as_slice());
        assert_eq!(text.len(), expected.len());
        // [ mark , mark , mark ] , {"n":1} ]: 3 records, 4 pieces of the writer's.
        assert_eq!(text.pieces().len(), 7);
        text.join_within(&source);
        assert_eq!(text.to_bytes().as_ref(), expected.as_slice());
        // The three records and the commas between them are one slice of the request.
        assert_eq!(text.pieces().len(), 3);
        assert_eq!(&text.pieces()[1][..], br#"{"a":1},{"b":[2]},{"c":"x"}"#);
        assert_eq!(text.outline().as_ref(), br#"[[0,0,0],{"n":1}]"#);
    }

    #[test]
    fn a_changed_or_rewritten_record_is_written_by_the_writer() {
        let source = Bytes::from_static(br#"[{"a":1},{"b": 2},{"c":3}]"#);
        let mut data = page(&source, &[(1, 8), (9, 17), (18, 25)]);
        data[2]["d"] = json!(4);
        let mut text = to_text(&data).unwrap();
        text.join_within(&source);
        assert_eq!(text.into_string(), r#"[{"a":1},{"b":2},{"c":3,"d":4}]"#);
    }

    #[test]
    fn separators_must_match_to_be_joined() {
        // In the request the records are separated by ", " (not canonical between them); the
        // answer writes ",": the slices stay apart.
        let source = Bytes::from_static(br#"[{"a":1}, {"b":2}]"#);
        let data = page(&source, &[(1, 8), (10, 17)]);
        let mut text = to_text(&data).unwrap();
        text.join_within(&source);
        assert_eq!(text.pieces().len(), 5);
        assert_eq!(text.into_string(), r#"[{"a":1},{"b":2}]"#);
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
}
