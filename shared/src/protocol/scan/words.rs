//! Searches eight bytes at a time (SWAR, in a `u64`): the end of a string's run of plain
//! characters, and the end of a run of whitespace. Property tests hold both to byte-by-byte
//! searches (`scan_tests.rs`).

/// In `b`, the first `"`, `\` or control character (what ends a string's run of plain
/// characters), and whether any byte before it is past ASCII; `None` when there is none. Eight
/// bytes at a time (SWAR): for each test, the lowest flagged byte is exact (a false flag can
/// only sit above a true one), and that is the one taken.
#[inline(always)]
pub(in crate::protocol) fn string_stop(b: &[u8]) -> Option<(usize, bool)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut i = 0;
    let mut high = 0u64;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let quote = w ^ (ONES * u64::from(b'"'));
        let slash = w ^ (ONES * u64::from(b'\\'));
        let stop = (quote.wrapping_sub(ONES) & !quote)
            | (slash.wrapping_sub(ONES) & !slash)
            | (w.wrapping_sub(ONES * 0x20) & !w);
        let stop = stop & HIGH;
        if stop != 0 {
            let at = stop.trailing_zeros() as usize / 8;
            // The bytes before the stop: past ASCII when their top bit is set.
            let before = (1u64 << (at * 8)).wrapping_sub(1);
            high |= w & HIGH & before;
            return Some((i + at, high != 0));
        }
        high |= w & HIGH;
        i += 8;
    }
    let rest = b.get(i..)?;
    let at = rest
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let high = high != 0 || !rest[..at].is_ascii();
    Some((i + at, high))
}

/// The eight bytes of `b` from `i` as a little-endian word; `None` when fewer remain.
#[inline(always)]
pub(in crate::protocol) fn word_at(b: &[u8], i: usize) -> Option<u64> {
    let chunk = b.get(i..i.checked_add(8)?)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    Some(u64::from_le_bytes(word))
}

/// The top bit of each byte of `w` that ends a run of plain ASCII string characters: `"`, `\`,
/// a control character or a byte past ASCII. The lowest set bit is exact (each test's false
/// flags sit above a true one of the same test); zero when all eight bytes are plain.
#[inline(always)]
pub(in crate::protocol) fn plain_stop(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * u64::from(b'"'));
    let slash = w ^ (ONES * u64::from(b'\\'));
    ((quote.wrapping_sub(ONES) & !quote)
        | (slash.wrapping_sub(ONES) & !slash)
        | (w.wrapping_sub(ONES * 0x20) & !w)
        | w)
        & HIGH
}

/// The top bit of each byte of `w` that is `"`: exact up to and including the lowest of
/// [`plain_stop`]'s flags (a false flag sits above a true `"`, itself a stop). So the lowest
/// stop is a quote exactly when its bit is set here, which needs no load of the byte.
#[inline(always)]
pub(in crate::protocol) fn quote_flags(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let quote = w ^ (ONES * u64::from(b'"'));
    quote.wrapping_sub(ONES) & !quote & HIGH
}

/// The first byte of `b` from `i` on that is not JSON whitespace (`b.len()` when none is),
/// eight bytes at a time: a pretty-printed text has a newline and an indent between tokens.
#[inline(always)]
pub(in crate::protocol) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    // The top bit of each byte that is zero, exactly (no carry crosses a byte).
    let zero = |x: u64| !(((x & LOW).wrapping_add(LOW)) | x) & HIGH;
    while let Some(chunk) = b.get(i..i + 8) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let w = u64::from_le_bytes(word);
        let ws = zero(w ^ (ONES * 0x20))
            | zero(w ^ (ONES * 0x0a))
            | zero(w ^ (ONES * 0x0d))
            | zero(w ^ (ONES * 0x09));
        let other = !ws & HIGH;
        if other != 0 {
            return i + other.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = b.get(i) {
        i += 1;
    }
    i
}
