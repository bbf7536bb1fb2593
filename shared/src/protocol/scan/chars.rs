//! What the scan reads of a key: whether it is an array index, and whether its escapes are
//! those `JSON.stringify` writes.

/// The value of an array-index key ([`crate::protocol::json::is_array_index`]).
pub(super) fn array_index(key: &[u8]) -> Option<u64> {
    // Most keys are names: one look.
    if !key.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    let key = std::str::from_utf8(key).ok()?;
    if !crate::protocol::json::is_array_index(key) {
        return None;
    }
    key.parse().ok()
}

/// Whether every escape in a string's contents (`key`, valid JSON) is one `JSON.stringify`
/// writes (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, lowercase `\u00xx` for the other control
/// characters): then the text is the only spelling of its name, and two keys are the same
/// exactly when their texts are.
pub(super) fn escaped_as_node_writes(key: &[u8]) -> bool {
    let mut i = 0;
    while let Some(at) = key
        .get(i..)
        .and_then(|k| k.iter().position(|&c| c == b'\\'))
    {
        i += at;
        match key.get(i + 1) {
            Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
            Some(b'u') => {
                let Some(hex) = key.get(i + 2..i + 6) else {
                    return false;
                };
                let lower = hex
                    .iter()
                    .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c));
                let cp = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u32::from_str_radix(h, 16).ok());
                match cp {
                    Some(cp) if lower && cp < 0x20 && !matches!(cp, 0x08..=0x0a | 0x0c | 0x0d) => {
                        i += 6
                    }
                    _ => return false,
                }
            }
            _ => return false,
        }
    }
    true
}
