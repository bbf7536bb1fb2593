//! A large answer with many records to rewrite (a page another tool wrote, pretty-printed or
//! Python's spelling) is cut in two halves at once: the second half of its marks on a thread of
//! its own, into pieces that follow the first half's. The bytes are the same as one pass would
//! send; only where the pieces break can differ (a run of the request's records across the
//! middle goes out as two slices).
//!
//! Only where the scan's halves are used too (two cores or more, see
//! `protocol::scan::on_two_cores`), and from [`HALVES_FROM`] bytes of records to rewrite.

use super::{BLOCK, Bytes, Cutting, Gather};
use crate::protocol::scan::{on_two_cores, spawn_half};

/// From this many bytes of records to rewrite: a thread costs tens of microseconds, rewriting
/// a MiB of records a few milliseconds.
const HALVES_FROM: usize = 1 << 20;

/// [`HALVES_FROM`] on two cores or more; otherwise never.
pub(super) fn from_size() -> usize {
    on_two_cores(HALVES_FROM)
}

/// The pieces of the answer and their length, the second half of the marks cut by another
/// thread; `None` as [`Gather::fill`] says, or when that thread failed.
pub(super) fn cut_in_halves(mut first: Gather<'_>, c: &Cutting<'_>) -> Option<(Vec<Bytes>, usize)> {
    let k = c.at.len() / 2;
    // The writer's bytes between the two halves open the second.
    let start = c.at.get(k.checked_sub(1)?)? + 1;
    let (source, min_slice) = (first.source, first.min_slice);
    let second_half = move || {
        let mut g = Gather::new(source, BLOCK, min_slice);
        let from = g.fill(c, k..c.at.len(), start)?;
        Some(g.finish(c.outline.get(from..)?))
    };
    let (done, second) = std::thread::scope(|scope| {
        match spawn_half(scope, second_half) {
            Some(second) => (first.fill(c, 0..k, 0), second.join().ok().flatten()),
            // A thread the system will not make: the second half after the first, here.
            None => (first.fill(c, 0..k, 0), second_half()),
        }
    });
    if done? != start {
        return None;
    }
    let (mut pieces, len) = first.finish(&[]);
    let (more, more_len) = second?;
    pieces.extend(more);
    Some((pieces, len + more_len))
}
