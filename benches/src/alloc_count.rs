//! A global allocator that counts the allocations of each thread, for the report's
//! allocations-per-call figures.
//!
//! It sees the host's allocations only: a module is a cdylib with its own copy of std,
//! whose allocations go to the C allocator without passing through the host's global
//! allocator. The module's side is counted under callgrind (see README.md).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // Const-initialized and without a destructor, so reading it never allocates (which
    // would recurse into the allocator).
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// The system allocator, counting `alloc`, `alloc_zeroed` and `realloc` per thread.
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

fn count() {
    // `try_with`: the thread may be tearing its locals down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` with the caller's arguments unchanged, so
// `System`'s guarantees hold; counting touches only a thread-local integer.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded from the caller, who upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, that is from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as in `dealloc`, with the caller's `new_size` contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by this thread so far (0 forever unless [`CountingAlloc`] is the
/// global allocator).
pub fn allocations() -> u64 {
    ALLOCATIONS.try_with(Cell::get).unwrap_or(0)
}

/// Whether [`CountingAlloc`] is the global allocator of this binary.
pub fn installed() -> bool {
    let before = allocations();
    drop(std::hint::black_box(Box::new(0u64)));
    allocations() != before
}

/// Host allocations per call of `op`, over `calls` calls (after one call of warm-up).
pub fn per_call<T>(calls: u64, mut op: impl FnMut() -> T) -> f64 {
    drop(op());
    let before = allocations();
    for _ in 0..calls {
        drop(std::hint::black_box(op()));
    }
    (allocations() - before) as f64 / calls as f64
}
