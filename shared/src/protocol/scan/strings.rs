//! The rest of a string that is not short plain ASCII: escapes, bytes past ASCII (checked as
//! UTF-8), and the end of a long one.

use super::{Scanner, string_stop};

impl Scanner<'_> {
    /// The string whose contents start at `start`, from the cursor on (what lies between is
    /// plain ASCII): the range of its contents and whether it has no escapes.
    #[inline(never)]
    pub(super) fn string_rest(&mut self, start: usize) -> Result<(usize, usize, bool), ()> {
        let mut plain = true;
        let mut ascii = true;
        loop {
            let (off, high) = string_stop(&self.b[self.i..]).ok_or(())?;
            ascii &= !high;
            self.i += off;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    // The only bytes past ASCII a JSON text may hold are in its strings.
                    if !ascii && std::str::from_utf8(&self.b[start..self.i - 1]).is_err() {
                        return Err(());
                    }
                    return Ok((start, self.i - 1, plain));
                }
                b'\\' => {}
                // A raw control character: not JSON.
                _ => return Err(()),
            }
            plain = false;
            match self.b.get(self.i + 1) {
                Some(b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                Some(b'/') => {
                    self.canon = false;
                    self.i += 2;
                }
                Some(b'u') => {
                    let hex = self.b.get(self.i + 2..self.i + 6).ok_or(())?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(());
                    }
                    let text = std::str::from_utf8(hex).map_err(|_| ())?;
                    let cp = u32::from_str_radix(text, 16).map_err(|_| ())?;
                    if (0xD800..=0xDFFF).contains(&cp) {
                        // Lone surrogates are refused by the general parser; pairs are rare.
                        self.suspect();
                    } else if cp >= 0x20
                        || matches!(cp, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d)
                        || hex.iter().any(u8::is_ascii_uppercase)
                    {
                        self.canon = false;
                    }
                    self.i += 6;
                }
                _ => return Err(()),
            }
        }
    }
}
