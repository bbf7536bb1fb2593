//! Heap memory between large calls.
//!
//! glibc's malloc gives each thread that allocates its own arena. The server parses a request
//! on its connection's task and runs the function on another, so over a few large pages the
//! trees of earlier calls are freed into arenas the next call does not allocate from, and their
//! pages stay resident: the large-page benchmark (`make bench`, 11 sequential 5 MB pages) peaked
//! at 27× the page on the local server, where a single arena (`MALLOC_ARENA_MAX=1`) gave 14×.
//! One arena would serialize every thread's allocations under load; instead, before a large
//! body is parsed, the pages freed by earlier calls go back to the operating system
//! (`malloc_trim`): 16× the page, with no time difference the benchmark could tell from its
//! run-to-run noise. The Lambda path (one call at a time) peaks at ~16× either way.
//!
//! Only with glibc's allocator (the Lambda targets and Linux hosts); with the `mimalloc`
//! feature, or elsewhere, it does nothing.

/// A body at least this large (1 MiB) trims the heap before it is parsed.
pub const LARGE_BODY: usize = 1 << 20;

/// Called with a request body's length just before it is parsed.
pub fn before_parsing(len: usize) {
    if len >= LARGE_BODY {
        trim();
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
fn trim() {
    // SAFETY: malloc_trim only walks the allocator's own free lists and returns whole free
    // pages to the kernel; it takes no pointers and is thread-safe in glibc.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc"))))]
fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_large_bodies_are_both_safe_to_announce() {
        before_parsing(0);
        before_parsing(LARGE_BODY - 1);
        before_parsing(LARGE_BODY);
    }
}
