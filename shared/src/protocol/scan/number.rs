//! A number: checked against JSON's grammar, and whether `JSON.stringify` would write it as it
//! is (see the module notes of [`super`]).

use super::Scanner;

impl Scanner<'_> {
    fn digits(&mut self) -> usize {
        let start = self.i;
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
        self.i - start
    }

    pub(super) fn number(&mut self) -> Result<(), ()> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.i += 1;
        }
        let int_start = self.i;
        let int_digits = self.digits();
        if int_digits == 0 || (int_digits > 1 && self.b[int_start] == b'0') {
            return Err(());
        }
        let int_zero = self.b[int_start] == b'0';
        let mut frac_digits = 0;
        let mut frac_start = self.i;
        if self.peek() == Some(b'.') {
            self.i += 1;
            frac_start = self.i;
            frac_digits = self.digits();
            if frac_digits == 0 {
                return Err(());
            }
        }
        let frac = &self.b[frac_start..frac_start + frac_digits];
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            self.canon = false;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            let exp_start = self.i;
            let exp_digits = self.digits();
            if exp_digits == 0 {
                return Err(());
            }
            let exp = &self.b[exp_start..self.i];
            let big = exp_digits > 3
                || std::str::from_utf8(exp)
                    .ok()
                    .and_then(|e| e.parse::<u32>().ok())
                    .is_none_or(|e| e >= 290);
            if big {
                self.suspect();
            }
        }
        if int_digits + frac_digits > 290 {
            self.suspect();
        }
        if !self.canon {
            return Ok(());
        }
        let canonical = if frac_digits == 0 {
            int_digits <= 15 && !(negative && int_zero)
        } else if frac.last() == Some(&b'0') {
            false
        } else if int_zero {
            let zeros = frac.iter().take_while(|&&d| d == b'0').count();
            zeros <= 5 && frac_digits - zeros <= 15
        } else {
            int_digits + frac_digits <= 15
        };
        if !canonical {
            self.canon = false;
        }
        Ok(())
    }
}
