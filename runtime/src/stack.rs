//! How much of the calling thread's stack is left, for the calls that nest on it.
//!
//! A chain of nested calls runs on one thread's stack, each level the host's frames and
//! the module's. The depth limit (`RuntimeConfig::max_call_depth`) counts levels, not
//! bytes: set high, or with modules whose frames are large, or on a thread with a small
//! stack, a chain used the stack up and the process aborted. A nested call is refused
//! instead while less than [`RESERVE`] is left.

use std::cell::Cell;

std::thread_local! {
    /// The lowest address of this thread's stack, read once: 0 before it is, `usize::MAX`
    /// when it cannot be known.
    static FLOOR: Cell<usize> = const { Cell::new(0) };
}

/// Stack a nested call keeps free below it: room for the host's frames and a module's
/// of a level or more, however large, so that the refusal comes before the overflow.
pub(crate) const RESERVE: usize = 256 * 1024;

/// Why a nested call would not be made now: the calling thread's stack has less than
/// [`RESERVE`] left. `None` when it has more, or when its size is not known (then only
/// the depth limit holds).
pub(crate) fn too_little_left() -> Option<String> {
    // Miri runs no foreign calls, and its stacks are not the thread's.
    if cfg!(miri) {
        return None;
    }
    // Where the stack is now: the address of a local (the stack grows down here, as on
    // every target the runtime runs on).
    let here = 0u8;
    let here = core::hint::black_box(&raw const here).addr();
    // The thread's bounds, read once (a system call): each nested call then compares two
    // addresses. Asked through `stacker` on each call instead, the check cost a nested
    // call about 17 ns (`report`, `nested_in_arena_relay_echo_ns`).
    let floor = FLOOR
        .try_with(|floor| {
            if floor.get() == 0 {
                let known = stacker::remaining_stack().map(|left| here.saturating_sub(left));
                floor.set(known.unwrap_or(usize::MAX));
            }
            floor.get()
        })
        // `FLOOR` has no destructor, so it is there until the thread ends; were it not,
        // the bounds would be unknown.
        .unwrap_or(usize::MAX);
    // Below the floor, the call runs on a stack other than the thread's (a coroutine's a
    // module switched to), whose bounds are not known.
    if floor == usize::MAX || here < floor {
        return None;
    }
    let left = here - floor;
    (left < RESERVE).then(|| {
        format!(
            "the host thread's stack has {} KiB left, less than the {} KiB a nested call \
             keeps free: the chain of calls is too deep for it (lower \
             RuntimeConfig::max_call_depth, or give the calling thread a larger stack)",
            left / 1024,
            RESERVE / 1024
        )
    })
}
