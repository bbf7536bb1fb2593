//! [`PageHeap`] (see the notes of [`super`]). Built on glibc targets only (`mmap`, `mremap`,
//! `mallopt`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Mutex, Once};

/// Blocks from this size (1 MiB) are page blocks when pages are kept apart: mapped on their own
/// and kept for reuse when freed. Below it, down to 512 KiB, glibc maps them apart and unmaps
/// them when freed (at 128 KiB, the Python-form page's peak RSS was 4.8× the page: 256 KiB
/// blocks kept for reuse added up).
pub const LARGE: usize = 1 << 20;

/// Freed page blocks are kept up to this many bytes in all (64 MiB); past it the oldest are
/// unmapped.
pub const KEPT_MAX: usize = 64 << 20;

/// How many freed page blocks are kept at most.
const SLOTS: usize = 32;

/// Page blocks are mapped at this alignment (or more); a larger one goes to glibc.
const PAGE: usize = 4096;

/// The global allocator: see the module notes.
pub struct PageHeap;

/// Freed page blocks: `(address, length)` in the order they were freed; `(0, 0)` is empty.
struct Kept {
    blocks: [(usize, usize); SLOTS],
    bytes: usize,
}

static KEPT: Mutex<Kept> = Mutex::new(Kept {
    blocks: [(0, 0); SLOTS],
    bytes: 0,
});

fn kept() -> std::sync::MutexGuard<'static, Kept> {
    // Nothing panics while holding it; were it poisoned, what it holds is still consistent.
    KEPT.lock().unwrap_or_else(|e| e.into_inner())
}

/// The mapped length of a page block of `size` bytes: rounded up to an eighth of its power of
/// two (and to whole pages). `None` past what can be mapped.
fn class(size: usize) -> Option<usize> {
    let log = usize::BITS - 1 - size.max(1).leading_zeros();
    let step = ((1usize << log) >> 3).max(PAGE);
    Some(size.checked_add(step - 1)? & !(step - 1))
}

/// Whether a block of this layout is a page block.
fn is_page(size: usize, align: usize) -> bool {
    size >= LARGE && align <= PAGE && pages_apart()
}

/// [`MODE`]: not chosen yet, one arena for everything, or pages apart.
const UNSET: u8 = 0;
const ONE_ARENA: u8 = 1;
const APART: u8 = 2;

/// How this process uses the heap, chosen once (at the first large block, or [`at_start`],
/// whichever comes first) and never changed: every block is freed as it was allocated.
static MODE: AtomicU8 = AtomicU8::new(UNSET);

/// Whether large blocks are kept apart ([`PageHeap`]); else everything is glibc's, in one
/// arena.
#[inline]
fn pages_apart() -> bool {
    match MODE.load(Ordering::Acquire) {
        UNSET => choose(),
        mode => mode == APART,
    }
}

/// One call at a time (a Lambda environment, `AWS_LAMBDA_RUNTIME_API` set, without
/// `AWS_LAMBDA_MAX_CONCURRENCY` above 1): nothing contends for the heap, so one glibc arena for
/// every thread holds the least memory (large blocks within it, kept when freed, so the next
/// page finds its memory faulted in). Many calls at once (the local server, Lambda Managed
/// Instances): an arena per thread, and large blocks apart ([`PageHeap`]).
#[cold]
fn choose() -> bool {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let apart = !one_call_at_a_time();
        // SAFETY: mallopt only sets the allocator's parameters (no pointers).
        let set = unsafe {
            if apart {
                // glibc maps blocks from 512 KiB apart, always: its default threshold rises as
                // such blocks are freed, and those under `LARGE` would stay in each arena.
                libc::mallopt(libc::M_MMAP_THRESHOLD, APART_MMAP_THRESHOLD as libc::c_int) != 0
            } else {
                [
                    libc::mallopt(libc::M_ARENA_MAX, 1),
                    libc::mallopt(
                        libc::M_MMAP_THRESHOLD,
                        ONE_ARENA_MMAP_THRESHOLD as libc::c_int,
                    ),
                    libc::mallopt(
                        libc::M_TRIM_THRESHOLD,
                        ONE_ARENA_TRIM_THRESHOLD as libc::c_int,
                    ),
                ]
                .iter()
                .all(|&r| r != 0)
            }
        };
        // Told by `at_start`, which may log (this may run inside the allocator, which may not).
        SET_UP.store(set, Ordering::Relaxed);
        MODE.store(if apart { APART } else { ONE_ARENA }, Ordering::Release);
    });
    MODE.load(Ordering::Acquire) == APART
}

/// Pages apart: glibc maps blocks from this size (512 KiB) on their own, below [`LARGE`]. hyper's
/// read buffers (up to about 400 KiB) stay below it, in the arenas, reused from page to page; at
/// 128 KiB they were mapped afresh for each, and an 8.9 MB page was faulted in twice.
const APART_MMAP_THRESHOLD: usize = 512 << 10;

/// With one arena: blocks below this size (32 MiB) come from it.
const ONE_ARENA_MMAP_THRESHOLD: usize = 32 << 20;
/// With one arena: free memory at its top is kept up to this much (64 MiB).
const ONE_ARENA_TRIM_THRESHOLD: usize = 64 << 20;

/// Whether this process is a Lambda runtime serving one call at a time (read without
/// allocating: this runs inside the allocator).
fn one_call_at_a_time() -> bool {
    // SAFETY: getenv reads the environment; nothing writes it while the allocator chooses
    // (before the runtime starts, or at its first large block).
    let (api, max) = unsafe {
        (
            libc::getenv(c"AWS_LAMBDA_RUNTIME_API".as_ptr()),
            libc::getenv(c"AWS_LAMBDA_MAX_CONCURRENCY".as_ptr()),
        )
    };
    if api.is_null() {
        return false;
    }
    if max.is_null() {
        return true;
    }
    // SAFETY: getenv's result is a NUL-terminated string.
    let max = unsafe { std::ffi::CStr::from_ptr(max) };
    std::str::from_utf8(max.to_bytes())
        .ok()
        .and_then(|m| m.trim().parse::<u32>().ok())
        .is_none_or(|m| m <= 1)
}

/// A kept block for `len` bytes, taken out of [`KEPT`]: the smallest that holds it (and at most
/// four times it: large blocks stay for large needs), its tail past `len` unmapped. So a freed
/// body buffer can serve the next page's vector of records.
fn take(len: usize) -> Option<*mut u8> {
    let (p, l) = {
        let mut k = kept();
        let (i, _) = k
            .blocks
            .iter()
            .enumerate()
            .filter(|&(_, &(p, l))| p != 0 && l >= len && l / 4 <= len)
            .min_by_key(|&(_, &(_, l))| l)?;
        let (p, l) = k.blocks[i];
        // Keep the order of the rest (oldest first): shift the later ones down.
        k.blocks.copy_within(i + 1.., i);
        k.blocks[SLOTS - 1] = (0, 0);
        k.bytes -= l;
        (p, l)
    };
    if l > len {
        // Both are whole pages (`class`).
        unmap((p + len) as *mut u8, l - len);
    }
    Some(p as *mut u8)
}

/// Keep a freed block of `len` bytes, unmapping the oldest kept ones as needed; `false` when it
/// is not kept (larger than [`KEPT_MAX`]): the caller unmaps it.
fn keep(p: *mut u8, len: usize) -> bool {
    if len > KEPT_MAX {
        return false;
    }
    let mut k = kept();
    // The kept blocks are packed at the front, oldest first: room is made from the front.
    for _ in 0..SLOTS {
        if k.bytes + len <= KEPT_MAX && k.blocks[SLOTS - 1].0 == 0 {
            break;
        }
        let (old, old_len) = k.blocks[0];
        k.blocks.copy_within(1.., 0);
        k.blocks[SLOTS - 1] = (0, 0);
        k.bytes -= old_len;
        if old != 0 {
            unmap(old as *mut u8, old_len);
        }
    }
    let Some(free) = k.blocks.iter().position(|&(q, _)| q == 0) else {
        return false;
    };
    if k.bytes + len > KEPT_MAX {
        return false;
    }
    k.blocks[free] = (p as usize, len);
    k.bytes += len;
    true
}

/// A fresh mapping of `len` bytes (zeroed), or null.
fn map(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
    // existing memory.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        std::ptr::null_mut()
    } else {
        p.cast()
    }
}

fn unmap(p: *mut u8, len: usize) {
    // SAFETY: `p` and `len` are a mapping made by `map` that nothing refers to any more.
    unsafe { libc::munmap(p.cast(), len) };
}

/// A page block of `size` bytes: a kept one ([`take`]), or a fresh mapping (`fresh`: zeroed).
fn page_block(size: usize) -> (*mut u8, bool) {
    let Some(len) = class(size) else {
        return (std::ptr::null_mut(), true);
    };
    match take(len) {
        Some(p) => (p, false),
        None => (map(len), true),
    }
}

// SAFETY: small blocks are glibc's as they were; a page block is a mapping of its class's
// length, page-aligned (at least the layout's alignment), owned by whoever holds it until it is
// freed, and its length is found again from the layout's size when it is freed or resized.
unsafe impl GlobalAlloc for PageHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !is_page(layout.size(), layout.align()) {
            // SAFETY: the caller's contract, passed on.
            return unsafe { System.alloc(layout) };
        }
        page_block(layout.size()).0
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !is_page(layout.size(), layout.align()) {
            // SAFETY: the caller's contract, passed on.
            return unsafe { System.alloc_zeroed(layout) };
        }
        let (p, fresh) = page_block(layout.size());
        if !p.is_null() && !fresh {
            // SAFETY: a kept block of at least `size` bytes, now the caller's.
            unsafe { std::ptr::write_bytes(p, 0, layout.size()) };
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !is_page(layout.size(), layout.align()) {
            // SAFETY: the caller's contract, passed on.
            return unsafe { System.dealloc(ptr, layout) };
        }
        if let Some(len) = class(layout.size())
            && !keep(ptr, len)
        {
            unmap(ptr, len);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        let (was_page, is_now_page) = (is_page(size, align), is_page(new_size, align));
        if !was_page && !is_now_page {
            // SAFETY: the caller's contract, passed on.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        if was_page && is_now_page {
            let (Some(len), Some(new_len)) = (class(size), class(new_size)) else {
                return std::ptr::null_mut();
            };
            if len == new_len {
                // The mapping already has room (or shrinks within its class).
                return ptr;
            }
            // Grown or shrunk where it is, or its pages moved: no copy, and no freed block of
            // each size on the way (a vector doubling to 8 MiB would leave 16 MiB of them).
            // SAFETY: `ptr` and `len` are a mapping of `map`'s, now the kernel's to move.
            let moved = unsafe { libc::mremap(ptr.cast(), len, new_len, libc::MREMAP_MAYMOVE) };
            if moved != libc::MAP_FAILED {
                return moved.cast();
            }
        }
        // SAFETY: `new_size` is non-zero and, rounded to `align`, does not overflow (the
        // caller's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, align) };
        // SAFETY: as for `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks hold at least the bytes copied, and are distinct.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, size.min(new_size));
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

/// Whether glibc took every setting [`choose`] gave it.
static SET_UP: AtomicBool = AtomicBool::new(true);

/// How the heap is used is chosen now, before other threads exist ([`choose`]).
pub(super) fn at_start() {
    pages_apart();
    if !SET_UP.load(Ordering::Relaxed) {
        tracing::warn!("malloc could not be set up for pages; large pages may be slower");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tests that free many page blocks, or count on one staying kept, take turns.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn a_class_holds_its_size_and_wastes_at_most_an_eighth() {
        for size in (LARGE..64 << 20)
            .step_by(12_345)
            .chain([LARGE, 5 << 20, (5 << 20) + 1])
        {
            let len = class(size).unwrap();
            assert!(len >= size && len.is_multiple_of(PAGE), "{size} -> {len}");
            assert!(len - size <= size / 8 + PAGE, "{size} -> {len}");
            assert!(class(size + 1).unwrap() >= len);
        }
        assert_eq!(class(usize::MAX), None);
    }

    /// The property the module exists for: a large block freed on one thread is the one the
    /// next block of its size gets on another (an arena per thread keeps each its own, and the
    /// page's memory twice). No other test allocates 12 MiB or more at once, so none takes this
    /// block (48 MiB, never touched).
    #[test]
    fn a_page_block_freed_on_one_thread_is_reused_on_another() {
        const SIZE: usize = (45 << 20) + 4321;
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let layout = Layout::from_size_align(SIZE, 8).unwrap();
        // SAFETY: a non-zero size; each block is freed once, with its layout.
        let at = unsafe {
            let p = PageHeap.alloc(layout);
            PageHeap.dealloc(p, layout);
            p as usize
        };
        let again = std::thread::spawn(move || unsafe {
            let p = PageHeap.alloc(layout);
            PageHeap.dealloc(p, layout);
            p as usize
        })
        .join()
        .unwrap();
        assert_eq!(again, at);
    }

    /// A page block of `size` bytes from [`PageHeap`], every byte `fill`.
    fn filled(size: usize, fill: u8) -> (*mut u8, Layout) {
        let layout = Layout::from_size_align(size, 8).unwrap();
        // SAFETY: a non-zero size; the block is written within it.
        let p = unsafe { PageHeap.alloc(layout) };
        assert!(!p.is_null() && (p as usize).is_multiple_of(PAGE));
        unsafe { std::ptr::write_bytes(p, fill, size) };
        (p, layout)
    }

    #[test]
    fn resizing_within_a_class_keeps_the_block_and_across_classes_keeps_the_bytes() {
        let heap = PageHeap;
        let (p, layout) = filled((3 << 20) + 1, 7);
        unsafe {
            // 3 MiB + 1 byte and 3 MiB + 100 KiB are both in the 3.25 MiB class.
            let q = heap.realloc(p, layout, (3 << 20) + (100 << 10));
            assert_eq!(q, p);
            let grown = Layout::from_size_align((3 << 20) + (100 << 10), 8).unwrap();
            let r = heap.realloc(q, grown, 9 << 20);
            assert!(!r.is_null());
            let bytes = std::slice::from_raw_parts(r, 3 << 20);
            assert!(bytes.iter().all(|&b| b == 7));
            // Down to a small block: the bytes that fit come along.
            let big = Layout::from_size_align(9 << 20, 8).unwrap();
            let s = heap.realloc(r, big, 1000);
            assert!(std::slice::from_raw_parts(s, 1000).iter().all(|&b| b == 7));
            heap.dealloc(s, Layout::from_size_align(1000, 8).unwrap());
        }
    }

    #[test]
    fn a_reused_block_asked_for_zeroed_is_zeroed() {
        let heap = PageHeap;
        let (p, layout) = filled((7 << 20) + 777, 0xff);
        unsafe {
            heap.dealloc(p, layout);
            let z = heap.alloc_zeroed(layout);
            assert!(
                std::slice::from_raw_parts(z, layout.size())
                    .iter()
                    .all(|&b| b == 0)
            );
            heap.dealloc(z, layout);
        }
    }

    #[test]
    fn what_is_kept_stays_within_its_bound() {
        let _turn = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let heap = PageHeap;
        // Forty blocks of distinct classes, 5 MiB and up: far more than is kept.
        let layouts: Vec<Layout> = (0..40)
            .map(|i| Layout::from_size_align((5 << 20) + i * (1 << 20), 8).unwrap())
            .collect();
        unsafe {
            let blocks: Vec<*mut u8> = layouts.iter().map(|&l| heap.alloc(l)).collect();
            for (&p, &l) in blocks.iter().zip(&layouts) {
                heap.dealloc(p, l);
            }
        }
        let k = kept();
        assert!(k.bytes <= KEPT_MAX, "{} kept", k.bytes);
        let counted: usize = k.blocks.iter().map(|&(_, l)| l).sum();
        assert_eq!(counted, k.bytes);
    }

    #[test]
    fn small_and_aligned_blocks_are_glibcs() {
        let heap = PageHeap;
        unsafe {
            let small = Layout::from_size_align(1000, 8).unwrap();
            let p = heap.alloc(small);
            assert!(!p.is_null());
            heap.dealloc(p, small);
            let aligned = Layout::from_size_align(LARGE, 2 * PAGE).unwrap();
            let q = heap.alloc(aligned);
            assert!(!q.is_null() && (q as usize).is_multiple_of(2 * PAGE));
            heap.dealloc(q, aligned);
        }
    }
}
