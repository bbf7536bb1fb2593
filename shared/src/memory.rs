//! Heap memory: many small blocks per call on every thread, and a few large ones per page.
//!
//! A call allocates mostly small blocks (the records' vectors, the answer, hyper's and axum's
//! per-request state), on whichever thread serves it; a 5 MB page adds a few large buffers (the
//! request body, the vector of its records, the blocks of the answer). The two want different
//! things from glibc's allocator when many calls run at once:
//! - **Small blocks** want its per-thread arenas. With one arena for every thread (what this
//!   module used to set up everywhere), concurrent calls took turns on its lock: on preMap-100
//!   at 16 connections the server spent about a third of its CPU time waking and waiting for it
//!   (`perf`: `futex_wake` under `malloc`, and `finish_task_switch`), serving 17.1k requests/s
//!   where an arena per thread serves 28–29k.
//! - **Large blocks** want to be reused by the next page, already faulted in, whichever thread
//!   serves it. With an arena per thread each keeps what it freed: the large page's peak RSS
//!   went from 3.1× to 4.6× the page (5.5× and 4.9× for the Python-form and pretty-printed
//!   pages). Mapping and unmapping each one instead costs a page fault per 4 KiB each time:
//!   about a third of the server's CPU time on the 5 MB page.
//!
//! So how the heap is used is chosen once per process, at start:
//! - **One call at a time** (a Lambda environment: `AWS_LAMBDA_RUNTIME_API` set, and no
//!   `AWS_LAMBDA_MAX_CONCURRENCY` above 1): nothing contends, so one arena for every thread,
//!   blocks under 32 MiB served from it and freed memory kept (up to 64 MiB at its top): the
//!   least memory, and the next page finds its memory faulted in.
//! - **Many calls at once** (the local server, Lambda Managed Instances): an arena per thread,
//!   and glibc maps blocks from 512 KiB on their own.
//!
//! The server binaries (`serve`, `conformance-server`) also take [`PageHeap`] as their global
//! allocator (`integrator_lambda::server_heap!()`), which keeps large blocks apart: blocks from
//! [`LARGE`] (1 MiB) are mapped on their own, their length rounded up to a size class (at most
//! an eighth more); a growing one is moved by the kernel (`mremap`), not copied. When freed they
//! are kept, up to [`KEPT_MAX`] bytes in all, for the next large block on any thread (the
//! smallest kept one that holds it, its tail unmapped). One lock guards what is kept, taken a
//! few times per page, never per small block. Without it (glibc alone, arenas per thread, blocks
//! from 1 MiB mapped apart) each large page is faulted in afresh: the pretty-printed page took
//! 34–35 ms instead of 25–27 over HTTP, and the Python-form page's peak RSS was 4.0–4.1×.
//! The Lambda function binaries do not take it: any global allocator of our own adds about
//! 106 KB to each binary (fat LTO), and a Lambda environment serves one call at a time unless
//! Managed Instances run it with more. Measured in docs/performance.md ("One heap for pages").

#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod page_heap;
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub use page_heap::{KEPT_MAX, LARGE, PageHeap};

/// Called once, before the runtime starts (glibc targets, without the `mimalloc` feature):
/// how the heap is used is chosen then.
pub fn at_start() {
    #[cfg(all(target_os = "linux", target_env = "gnu", not(feature = "mimalloc")))]
    page_heap::at_start();
}
