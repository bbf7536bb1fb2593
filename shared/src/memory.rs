//! Heap memory of large pages.
//!
//! A 5 MB page passes through a few large buffers: the request body, the vector of its records,
//! the parts of the answer. With glibc's defaults each of them gets its own `mmap` at first and
//! is unmapped when freed; the threshold then rises, and later ones come from the heap arena of
//! whichever thread allocates them, where they stay when freed: over a few pages on different
//! threads the process keeps several pages' worth of memory. Mapping and unmapping every buffer
//! instead (the threshold pinned low) keeps the peak down, but each page is then faulted in
//! afresh: on the 5 MB page about a third of the server's CPU time went to page faults and
//! `munmap`.
//!
//! [`at_start`] sets glibc up for pages instead: one arena for every thread, and large blocks
//! served from it (no mapping of their own below 32 MiB) and kept when freed (the heap is not
//! trimmed below 64 MiB free). The next page reuses the memory the last one freed, already
//! faulted in, whichever thread serves it. The peak is the same as with every buffer mapped;
//! the memory stays resident between pages (Lambda bills the configured memory, not the
//! resident set). Measured in docs/json-candidates.md ("Answers in pieces"). Small
//! allocations keep glibc's per-thread caches.
//!
//! Only with glibc's allocator (the Lambda targets and Linux hosts); with the `mimalloc`
//! feature, or elsewhere, it does nothing.

/// Blocks below this size (32 MiB) come from the heap; larger ones get their own mapping.
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// Free memory at the top of the heap is kept up to this much (64 MiB).
pub const TRIM_THRESHOLD: usize = 64 << 20;

/// Called once, before the runtime starts.
pub fn at_start() {
    heap_for_pages();
}

#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
fn heap_for_pages() {
    // SAFETY: mallopt only sets the allocator's parameters (no pointers); it is called before
    // any other thread exists.
    let set = unsafe {
        [
            libc::mallopt(libc::M_ARENA_MAX, 1),
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int),
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int),
        ]
    };
    if set.contains(&0) {
        tracing::warn!("malloc could not be set up for large pages; they may be slower");
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc"))))]
fn heap_for_pages() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_up_the_heap_is_safe_to_call() {
        at_start();
        let v = vec![0u8; 5 << 20];
        assert_eq!(v.len(), 5 << 20);
        drop(v);
        let w = vec![1u8; 5 << 20];
        assert_eq!(w[0], 1);
    }
}
