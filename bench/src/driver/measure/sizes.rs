//! Section 4, sizes: release binaries and their Lambda zips.

use crate::Args;
use crate::driver::{FUNCTION_BINS, HELLO};
use std::path::Path;
use std::process::Command;

pub(crate) fn sizes(a: &Args, work: &Path) -> Vec<(String, u64, u64)> {
    let mut out = Vec::new();
    for n in FUNCTION_BINS.iter().copied().chain([HELLO]) {
        let bin = a.bins.join(n);
        let size = std::fs::metadata(&bin).map(|m| m.len()).unwrap_or(0);
        let dir = work.join("zip").join(n);
        let _ = std::fs::create_dir_all(&dir);
        let boot = dir.join("bootstrap");
        let zip = dir.join("bootstrap.zip");
        let _ = std::fs::remove_file(&zip);
        let zipped = std::fs::copy(&bin, &boot).is_ok()
            && Command::new("zip")
                .args(["-9", "-q", "-j"])
                .arg(&zip)
                .arg(&boot)
                .status()
                .is_ok_and(|s| s.success());
        let zsize = if zipped {
            std::fs::metadata(&zip).map(|m| m.len()).unwrap_or(0)
        } else {
            0
        };
        out.push((n.to_owned(), size, zsize));
    }
    out
}
