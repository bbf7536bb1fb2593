//! The rewrite of a record that is `JSON.stringify`'s form but for whitespace between tokens
//! ([`crate::protocol::scan::Shape::Spaced`]): the whitespace dropped, nothing else read.

/// Append `text` to `out` without the whitespace between its tokens (strings are copied as they
/// are). For a text the scan found canonical but for that whitespace, this is what
/// `JSON.stringify` writes for it.
///
/// One pass, writing into room made up front (a call per token to `extend_from_slice` cost
/// more than the copying): bytes outside strings are copied one by one unless whitespace, and
/// strings eight bytes at a time, through their closing quote.
pub(super) fn unspace(text: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
    const WORD: usize = 8;
    let base = out.len();
    // Room for the text, and a word more: a string's last word may be written past its end
    // (the bytes after it are written over, or cut off below).
    out.resize(base + text.len() + WORD, 0);
    let dst = &mut out[base..];
    let (mut i, mut w) = (0, 0);
    while let Some(&c) = text.get(i) {
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i = crate::protocol::scan::skip_ws(text, i),
            b'"' => {
                let start = i;
                i += 1;
                loop {
                    let (at, _) =
                        crate::protocol::scan::string_stop(text.get(i..).ok_or(())?).ok_or(())?;
                    i += at;
                    match text.get(i) {
                        Some(b'"') => break,
                        Some(b'\\') => i += 2,
                        _ => return Err(()),
                    }
                }
                i += 1;
                // `text[start..i]`, the string with its quotes, word by word.
                let mut k = start;
                while k < i {
                    match (text.get(k..k + WORD), dst.get_mut(w..w + WORD)) {
                        (Some(from), Some(to)) => to.copy_from_slice(from),
                        // The text's last word: the rest of the string, as it is.
                        _ => {
                            let rest = text.get(k..i).ok_or(())?;
                            dst.get_mut(w..w + rest.len())
                                .ok_or(())?
                                .copy_from_slice(rest);
                        }
                    }
                    (k, w) = (k + WORD, w + WORD);
                }
                // Back to the string's end: the word's bytes past it are not the string's.
                w -= k - i;
            }
            _ => {
                *dst.get_mut(w).ok_or(())? = c;
                (i, w) = (i + 1, w + 1);
            }
        }
    }
    out.truncate(base + w);
    Ok(())
}
