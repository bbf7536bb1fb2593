//! Values nested past [`super::MAX_DEPTH`] inside a record: checked as JSON without recursion.

use super::{MAX_DEPTH, MAX_RECORD_DEPTH, Scanner};

impl Scanner<'_> {
    /// A value nested past [`MAX_DEPTH`] inside a record, checked with a stack of its own (one
    /// byte per open bracket, at most [`MAX_RECORD_DEPTH`]) instead of by recursion.
    pub(super) fn deep(&mut self) -> Result<(), ()> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            // A value.
            self.ws();
            match self.peek() {
                Some(c @ (b'[' | b'{')) => {
                    self.i += 1;
                    self.ws();
                    let close = if c == b'[' { b']' } else { b'}' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                    } else {
                        // The levels above this value (MAX_DEPTH) count too.
                        if open.len() + MAX_DEPTH as usize >= MAX_RECORD_DEPTH {
                            return Err(());
                        }
                        open.push(close);
                        if c == b'{' {
                            self.member_key()?;
                        }
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(()),
            }
            // After a value: close what it closes, or go on to the next element or member.
            loop {
                let Some(&close) = open.last() else {
                    return Ok(());
                };
                if !self.closes(close)? {
                    if close == b'}' {
                        self.member_key()?;
                    }
                    break;
                }
                open.pop();
            }
        }
    }

    /// A member's key and its `:` (the keys of deep objects are not compared: the record is
    /// already not canonical).
    fn member_key(&mut self) -> Result<(), ()> {
        self.ws();
        self.string()?;
        self.ws();
        self.expect(b':')
    }
}
