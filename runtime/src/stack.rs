//! How much of the calling thread's stack is left, for the calls that nest on it.
//!
//! A chain of nested calls runs on one thread's stack, each level the host's frames and
//! the module's. The depth limit (`RuntimeConfig::max_call_depth`) counts levels, not
//! bytes: set high, or with modules whose frames are large, or on a thread with a small
//! stack, a chain used the stack up and the process aborted. A nested call is refused
//! instead while less than [`RESERVE`] is left.

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
    let left = stacker::remaining_stack()?;
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
