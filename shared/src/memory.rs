//! Heap memory of large pages.
//!
//! glibc's malloc serves a large block (a 5 MB request body, its answer) with its own `mmap`
//! and unmaps it when freed, but only up to a threshold that it raises, up to 32 MiB, each time
//! such a block is freed. After the first large page, the next ones come from the heap arena of
//! whichever thread allocates them and stay resident when freed; over a few pages on different
//! threads the process keeps several pages' worth of memory. [`at_start`] pins the threshold at
//! 1 MiB: every large buffer is mapped and unmapped, and a grown buffer is moved by `mremap`
//! instead of copied (the large-page benchmark's server peak went from 8.3× to 5.3× the page
//! in the run that decided this; see docs/json-candidates.md). Small allocations are unchanged.
//!
//! Only with glibc's allocator (the Lambda targets and Linux hosts); with the `mimalloc`
//! feature, or elsewhere, it does nothing.

/// Blocks of at least this size (1 MiB) get their own mapping.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Called once, before the runtime starts.
pub fn at_start() {
    pin_mmap_threshold();
}

#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
fn pin_mmap_threshold() {
    // SAFETY: mallopt only sets one of the allocator's parameters (no pointers); it is called
    // before any other thread exists.
    let set = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
    if set != 1 {
        tracing::warn!("malloc's mmap threshold could not be set; large pages may stay resident");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc"))))]
fn pin_mmap_threshold() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinning_the_threshold_is_safe_to_call() {
        at_start();
        let v = vec![0u8; MMAP_THRESHOLD * 2];
        assert_eq!(v.len(), MMAP_THRESHOLD * 2);
    }
}
