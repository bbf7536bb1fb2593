//! [`JsonText`]: an answer's JSON text in pieces, so that records passed through are sent from
//! the request's own bytes instead of being copied into a second page-sized buffer.
//!
//! [`to_text`] writes a value as [`super::json::to_vec`] does, except that each untouched
//! canonical [`super::Record`] leaves a one-byte mark in the writer's output and hands over its
//! text (a shared slice of the request). The output is then cut at the marks: the pieces are the
//! writer's own bytes and the records' texts, in order. When the request the records came from
//! is known ([`within`]: the dispatcher names the options' text), records that sat side by side
//! in it, with the same bytes between them as the writer wrote, become one slice of it: a page
//! whose records all pass through is sent as a few pieces, and costs the writer's few bytes, not
//! another copy of the page. In a small answer (records under 64 KiB) slices under 16 KiB are
//! copied into the writer's bytes instead: it is one piece, not a frame per record. In a large
//! one, slices from 512 bytes are sent as they are (the records that pass through between
//! rewritten ones are not held twice), and the bytes it copies are gathered in 1 MiB blocks.
//!
//! The mark is a NUL byte, which serde_json never writes (it escapes control characters in
//! strings, and raw fragments are JSON). The marks found must match the texts handed over;
//! when they do not (a function's own `Serialize` writing a record into a string of its own,
//! say), or when anything goes wrong, the value is written again whole, without marks.

use super::json;
use super::record::PageText;
use super::scan::Shape;
use bytes::{Bytes, BytesMut};
use serde::Serialize;
use std::borrow::Cow;
use std::cell::RefCell;
use std::ops::Range;

/// What a record leaves in the writer's output in place of its text.
const MARK: u8 = 0;

/// What one mark in the writer's output stands for. 12 bytes: at 24, a 5 MB page's vector of
/// ~26,000 marks (786 KB) was mapped and faulted in afresh for every page.
#[derive(Clone, Copy)]
enum Mark {
    /// This range of the source.
    Source(u32, u32),
    /// `others[i]`: a record's text from elsewhere.
    Other(u32),
    /// `rewrites[i]`: a record's text to be rewritten into `JSON.stringify`'s form.
    Rewrite(u32),
}

/// A mark's index; past `u32` (never) it names nothing and the answer is written again whole.
fn index(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

/// The records marked during one [`to_text`].
#[derive(Default)]
struct Marked {
    /// The request the records are expected to come from ([`within`]).
    source: Bytes,
    /// Per mark, in order, what it stands for.
    marks: Vec<Mark>,
    others: Vec<PageText>,
    /// Texts not in `JSON.stringify`'s form, and what the scan knows of each.
    rewrites: Vec<(PageText, Shape)>,
}

impl Marked {
    fn push(&mut self, text: &PageText) {
        match text_range_in(&self.source, text) {
            Some((s, e)) => self.marks.push(Mark::Source(s, e)),
            None => {
                self.marks.push(Mark::Other(index(self.others.len())));
                self.others.push(text.clone());
            }
        }
    }
}

/// The range of a record's `text` within `whole`: non-empty, and within `u32` as a mark's.
fn text_range_in(whole: &Bytes, text: &PageText) -> Option<(u32, u32)> {
    let (page, range) = text.in_page();
    // A record of the request's own page (the usual case): its range as it is.
    let (s, e) = if page.as_ptr() == whole.as_ptr() && page.len() == whole.len() {
        (range.start < range.end).then_some((range.start, range.end))?
    } else {
        range_in(whole, text)?
    };
    Some((u32::try_from(s).ok()?, u32::try_from(e).ok()?))
}

/// The range of `part` within `whole`, when it is a non-empty slice of it.
fn range_in(whole: &Bytes, part: &[u8]) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len() && !part.is_empty()).then_some((start, end))
}

thread_local! {
    /// While [`to_text`] writes: the records marked so far.
    static SPLICED: RefCell<Option<Marked>> = const { RefCell::new(None) };
    /// The request the records of the answer being written came from ([`within`]).
    static SOURCE: RefCell<Option<Bytes>> = const { RefCell::new(None) };
}

/// Called by a record about to be written as its own `text`: `true` when [`to_text`] is writing
/// (the text is taken, and the record writes [`MARK`] alone), `false` otherwise (the record
/// writes its text).
pub(crate) fn splice(text: &PageText) -> bool {
    SPLICED.with_borrow_mut(|s| match s {
        Some(m) => {
            m.push(text);
            true
        }
        None => false,
    })
}

/// Called by an untouched record whose `text` is not in `JSON.stringify`'s form: like
/// [`splice`], and the text is rewritten straight into the answer's bytes when the output is
/// cut (no buffer of its own). `shape` is what the scan knows of it.
pub(crate) fn splice_rewrite(text: &PageText, shape: Shape) -> bool {
    SPLICED.with_borrow_mut(|s| match s {
        Some(m) => {
            m.marks.push(Mark::Rewrite(index(m.rewrites.len())));
            m.rewrites.push((text.clone(), shape));
            true
        }
        None => false,
    })
}

/// The [`MARK`] byte as the raw text a record writes.
pub(crate) const MARK_TEXT: &str = "\0";

/// Run `f` (which writes an answer) knowing that its records come from `source`, the request's
/// text: [`to_text`] then sends neighbouring records as one slice of it.
pub fn within<T>(source: Option<Bytes>, f: impl FnOnce() -> T) -> T {
    let _source = Source::set(source);
    f()
}

/// The answer being written takes its records from this source until dropped ([`within`]).
pub struct Source(Option<Bytes>);

impl Source {
    /// Name `source` (and put back the previous one when dropped).
    pub fn set(source: Option<Bytes>) -> Self {
        Source(SOURCE.replace(source))
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        SOURCE.set(self.0.take());
    }
}

/// Sets [`SPLICED`] for one write and puts back what was there when dropped, on every path out
/// (a panic in a `Serialize` included): a mark can never leak into a writer outside [`to_text`].
pub(crate) struct Scope(Option<Option<Marked>>);

impl Scope {
    fn set(state: Option<Marked>) -> Self {
        Scope(Some(SPLICED.replace(state)))
    }
    /// Records written as their own text, never marked, until dropped: what
    /// [`json::to_vec`] does, even when called from inside a [`to_text`] (a function's
    /// `Serialize` that writes JSON of its own).
    pub(crate) fn unspliced() -> Self {
        Self::set(None)
    }
    /// The records marked in this scope.
    fn take(&mut self) -> Marked {
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
        // `Vec::from` takes the buffer without a copy when it is not shared.
        match String::from_utf8(Vec::from(self.into_bytes())) {
            Ok(s) => s,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        }
    }

    /// Length in UTF-16 code units (JavaScript's `String.length`; see [`json::utf16_len`]).
    pub fn utf16_len(&self) -> usize {
        self.pieces.iter().map(|p| json::utf16_len_bytes(p)).sum()
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
    spliced(&|| json::to_vec_marked(value))
}

/// [`to_text`] of what `write` writes (not generic: only the writing is compiled per type).
fn spliced(write: json::Writer<'_>) -> Result<JsonText, serde_json::Error> {
    let source = SOURCE.with_borrow(Clone::clone).unwrap_or_default();
    let marked = {
        let mut scope = Scope::set(Some(Marked {
            source,
            ..Marked::default()
        }));
        write().map(|(out, rewritten)| (out, rewritten, scope.take()))
    };
    if let Ok((out, false, marked)) = marked
        && let Some(text) = cut(out, marked)
    {
        return Ok(text);
    }
    // Rewritten in JavaScript's key order (it parsed its own output: marks included, so it
    // cannot have been marked), marks that are not the texts handed over, or an error: written
    // again whole.
    json::in_js_order(write).map(JsonText::from)
}

/// A slice of the request shorter than this is copied into the answer's own bytes: sent apart,
/// each piece is a frame of its own (a 100-record preMap answer would be ~200 frames, and as
/// many more writes), and copying a few KB costs less than that.
const MIN_SLICE: usize = 16 * 1024;

/// Records adding up to less than this make a small answer: room is made for all of it at once.
const SMALL_ANSWER: usize = 4 * MIN_SLICE;

/// In a large answer a slice of the request is sent as it is from this length: copied, the
/// records that pass through between rewritten ones (a page where one record in four is not in
/// `JSON.stringify`'s form) would hold the page a second time; sent, they cost a frame each.
const MIN_SLICE_LARGE: usize = 512;

/// A large answer's own bytes are gathered in blocks of this size, each sent as one piece:
/// one buffer grown by doubling would hold its old copies too (a heap that keeps what is freed
/// keeps them resident), for up to three times the bytes copied. 1 MiB: a large block of the
/// server's heap (`memory::LARGE`), kept for the next page when freed. (256 KiB blocks, while
/// glibc mapped blocks from 128 KiB apart, were faulted in afresh for each page: a
/// pretty-printed 8.9 MB page, every record rewritten, took 30 ms instead of 24 over HTTP.)
const BLOCK: usize = 1 << 20;

/// Pieces being gathered: the writer's bytes (and short records) go into `own`; the last slice
/// of the source stays open so that the next record can extend it.
struct Gather<'a> {
    source: &'a Bytes,
    pieces: Vec<Bytes>,
    own: Vec<u8>,
    /// Shorter slices of the source are copied ([`MIN_SLICE`], [`MIN_SLICE_LARGE`]).
    min_slice: usize,
    open: Option<(usize, usize)>,
    len: usize,
}

impl Gather<'_> {
    /// Bytes of our own (the writer's, or a short record's).
    fn copy(&mut self, bytes: &[u8]) {
        self.room_for(bytes.len());
        self.own.extend_from_slice(bytes);
        self.len += bytes.len();
    }
    /// Room for `n` more bytes in `own`: a block of its own when the one being filled is
    /// full ([`BLOCK`]).
    fn room_for(&mut self, n: usize) {
        if self.own.capacity() - self.own.len() >= n {
            return;
        }
        if self.own.len() >= BLOCK / 2 {
            self.flush();
        }
        if self.own.is_empty() {
            self.own = Vec::with_capacity(BLOCK.max(n));
        }
    }
    /// A piece sent as it is when long enough, else copied.
    fn push(&mut self, piece: Bytes) {
        if piece.len() < self.min_slice {
            self.copy(&piece);
        } else {
            self.flush();
            self.len += piece.len();
            self.pieces.push(piece);
        }
    }
    /// Close the open slice of the source: sent as it is, or copied when short (straight from
    /// the source: a `Bytes` of it would cost two atomic counts for nothing).
    fn close(&mut self) {
        let Some((s, e)) = self.open.take() else {
            return;
        };
        self.len -= e - s;
        if e - s < self.min_slice {
            let source = self.source;
            self.copy(&source[s..e]);
        } else {
            self.push(self.source.slice(s..e));
        }
    }
    /// What `own` holds becomes a piece. A block at least half full is handed over as it is;
    /// a few bytes (a rewritten record between two slices) are copied out, and the block is
    /// kept for what comes next: handed over, each would hold a block's worth of memory.
    fn flush(&mut self) {
        if self.own.is_empty() {
            return;
        }
        if self.own.len() * 2 >= self.own.capacity() {
            let own = std::mem::take(&mut self.own);
            self.pieces.push(Bytes::from(own));
        } else {
            self.pieces.push(Bytes::copy_from_slice(&self.own));
            self.own.clear();
        }
    }
    /// The writer's `gap` and then the source's `range`: one slice with the open one when the
    /// source has exactly `gap` between them.
    fn push_range(&mut self, gap: &[u8], (s, e): (usize, usize)) {
        if let Some((os, oe)) = self.open
            && oe + gap.len() == s
            && (next_in_array(gap) || same(self.source.get(oe..s), gap))
        {
            debug_assert!(same(self.source.get(oe..s), gap));
            self.open = Some((os, e));
            self.len += gap.len() + (e - s);
            return;
        }
        self.close();
        self.copy(gap);
        self.open = Some((s, e));
        self.len += e - s;
    }
}

/// Whether the writer's `gap` between two records one byte apart in the source is that byte,
/// known without reading it. The source's ranges are records as the scan found them, elements
/// of arrays of valid JSON: a record is followed by whitespace, `,` or `]`, and only a `,` can
/// be followed at once by another record (after whitespace comes `,` or `]`; after `]`, at
/// least `,"k":[` before another page's first record). So a one-byte gap is `,` in the source,
/// and the writer's gap matches it when it is `,`. Reading it instead cost a cache miss per
/// record: four fifths of this loop's time on a 5 MB page (`perf annotate`).
#[inline(always)]
fn next_in_array(gap: &[u8]) -> bool {
    gap == b","
}

/// Whether `a` is `b`: the gap between two records is mostly one byte (`,`), compared here
/// rather than in a call to `memcmp`.
#[inline(always)]
fn same(a: Option<&[u8]>, b: &[u8]) -> bool {
    match (a, b) {
        (Some([x]), [y]) => x == y,
        (Some(a), b) => a == b,
        (None, _) => false,
    }
}

/// Cut the writer's output at its marks, or `None` when the marks are not the records handed
/// (or a text to rewrite is not JSON after all).
fn cut(mut out: Vec<u8>, marked: Marked) -> Option<JsonText> {
    let Marked {
        source,
        marks,
        others,
        rewrites,
    } = marked;
    if marks.is_empty() {
        return (!out.contains(&MARK)).then(|| JsonText::from(out));
    }
    let at: Vec<usize> = out
        .iter()
        .enumerate()
        .filter_map(|(i, &b)| (b == MARK).then_some(i))
        .collect();
    if at.len() != marks.len() {
        return None;
    }
    // The outline: the output with a `0` where each record was.
    for &m in &at {
        out[m] = b'0';
    }
    let outline = Bytes::from(out);
    // A small answer is copied whole (its slices are short): room for all of it. A large one
    // gathers what it copies (rewritten records, short slices, the writer's bytes) in blocks.
    let marked: usize = marks
        .iter()
        .map(|m| match *m {
            Mark::Source(s, e) => e.saturating_sub(s) as usize,
            Mark::Other(i) => others.get(i as usize).map_or(0, |t| t.len()),
            Mark::Rewrite(i) => rewrites.get(i as usize).map_or(0, |(t, _)| t.len()),
        })
        .sum();
    let (room, min_slice) = if marked < SMALL_ANSWER {
        (outline.len() + marked, MIN_SLICE)
    } else {
        (BLOCK, MIN_SLICE_LARGE)
    };
    let g = Gather::new(&source, room, min_slice);
    let c = Cutting {
        outline: &outline,
        at: &at,
        marks: &marks,
        others: &others,
        rewrites: &rewrites,
    };
    let to_rewrite: usize = rewrites.iter().map(|(t, _)| t.len()).sum();
    let (pieces, len) = if to_rewrite >= halves::from_size() {
        halves::cut_in_halves(g, &c)?
    } else {
        let mut g = g;
        let from = g.fill(&c, 0..at.len(), 0)?;
        g.finish(outline.get(from..)?)
    };
    Some(JsonText {
        pieces,
        len,
        outline: Some(outline),
    })
}

/// What a cut reads: the writer's output (its marks set to `0`), where the marks were, and
/// what each stands for.
struct Cutting<'a> {
    outline: &'a [u8],
    at: &'a [usize],
    marks: &'a [Mark],
    others: &'a [PageText],
    rewrites: &'a [(PageText, Shape)],
}

impl<'a> Gather<'a> {
    fn new(source: &'a Bytes, room: usize, min_slice: usize) -> Self {
        Gather {
            source,
            pieces: Vec::new(),
            own: Vec::with_capacity(room),
            min_slice,
            open: None,
            len: 0,
        }
    }

    /// The marks in `range`, each after the writer's bytes before it (from `from` in the
    /// outline on); where the writer's bytes after the last of them start. `None` when a mark
    /// is not what was handed over, or a text to rewrite is not JSON after all.
    fn fill(&mut self, c: &Cutting<'_>, range: Range<usize>, mut from: usize) -> Option<usize> {
        let mut scratch = super::rewrite::Scratch::default();
        let at = c.at.get(range.clone())?;
        for (&m, &mark) in at.iter().zip(c.marks.get(range)?) {
            let gap = c.outline.get(from..m)?;
            match mark {
                Mark::Source(s, e) => self.push_range(gap, (s as usize, e as usize)),
                Mark::Other(i) => {
                    self.close();
                    self.copy(gap);
                    self.push(c.others.get(i as usize)?.to_bytes());
                }
                Mark::Rewrite(i) => {
                    self.close();
                    self.copy(gap);
                    let (text, shape) = c.rewrites.get(i as usize)?;
                    // A rewrite is seldom longer than its text (and may grow the block if it is).
                    self.room_for(text.len() + 8);
                    let before = self.own.len();
                    super::rewrite::rewrite_with(text, *shape, &mut scratch, &mut self.own).ok()?;
                    self.len += self.own.len() - before;
                }
            }
            from = m + 1;
        }
        Some(from)
    }

    /// The pieces and their total length, `tail` (the writer's last bytes) after them.
    fn finish(mut self, tail: &[u8]) -> (Vec<Bytes>, usize) {
        self.close();
        self.copy(tail);
        self.flush();
        (self.pieces, self.len)
    }
}

mod halves;

#[cfg(test)]
mod tests;
