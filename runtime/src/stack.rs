//! How much of the calling thread's stack is left, for the calls that nest on it.
//!
//! A chain of nested calls runs on one thread's stack, each level the host's frames and
//! the module's. The depth limit (`RuntimeConfig::max_call_depth`) counts levels, not
//! bytes: set high, or with modules whose frames are large, or on a thread with a small
//! stack, a chain used the stack up and the process aborted. A nested call is refused
//! instead while less than [`RESERVE`] is left.

use std::cell::Cell;

/// Stack a nested call keeps free below it: room for the host's frames and a module's
/// of a level or more, however large, so that the refusal comes before the overflow.
pub(crate) const RESERVE: usize = 256 * 1024;

/// The lowest address of a thread's stack, read once (part of the thread's state, the
/// `thread` module, which the call path reaches anyway): 0 before it is read,
/// `usize::MAX` when it cannot be known.
#[derive(Debug)]
pub(crate) struct StackFloor(Cell<usize>);

impl StackFloor {
    /// A floor not read yet.
    pub(crate) const fn new() -> StackFloor {
        StackFloor(Cell::new(0))
    }

    /// Why a nested call would not be made now on this floor's thread: its stack has
    /// less than [`RESERVE`] left. `None` when it has more, or when its size is not known
    /// (then only the depth limit holds).
    ///
    /// Inlined: a call with room, the path every nested call takes, is two compares.
    #[inline]
    pub(crate) fn too_little_left(&self) -> Option<String> {
        // Miri runs no foreign calls, and its stacks are not the thread's.
        if cfg!(miri) {
            return None;
        }
        // Where the stack is now: the address of a local (the stack grows down here, as
        // on every target the runtime runs on).
        let here = 0u8;
        let here = core::hint::black_box(&raw const here).addr();
        // The thread's bounds, read once (a system call): each nested call then compares
        // two addresses. Asked through `stacker` on each call instead, the check cost a
        // nested call about 17 ns (`report`, `nested_in_arena_relay_echo_ns`).
        let floor = match self.0.get() {
            0 => self.read(here),
            floor => floor,
        };
        // Below the floor, the call runs on a stack other than the thread's (a
        // coroutine's a module switched to), whose bounds are not known.
        if floor == usize::MAX || here < floor || here - floor >= RESERVE {
            return None;
        }
        Some(too_little(here - floor))
    }

    /// Reads the floor of the thread's stack, and keeps it. `stacker` measures from
    /// `here`: below the thread's stack (a coroutine's, which a module or host switched
    /// to) it finds nothing left, and that is said as not known for this call, not kept
    /// as the thread's floor. Before, the coroutine's place was kept: the first nested
    /// call from it was refused with "0 KiB left", and every later chain on the thread's
    /// own stack was measured against the wrong floor and overflowed it.
    #[cold]
    #[inline(never)]
    fn read(&self, here: usize) -> usize {
        match stacker::remaining_stack() {
            Some(0) => usize::MAX,
            known => {
                let floor = known.map_or(usize::MAX, |left| here.saturating_sub(left));
                self.0.set(floor);
                floor
            }
        }
    }
}

/// The refusal of a nested call with `left` bytes of stack.
#[cold]
#[inline(never)]
fn too_little(left: usize) -> String {
    format!(
        "the host thread's stack has {} KiB left, less than the {} KiB a nested call keeps \
         free: the chain of calls is too deep for it (lower RuntimeConfig::max_call_depth, \
         or give the calling thread a larger stack)",
        left / 1024,
        RESERVE / 1024
    )
}
