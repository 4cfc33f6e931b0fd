//! Telling a process forked from one that had a runtime.
//!
//! `fork()` copies the calling thread alone: a runtime's other threads (a watch's, a
//! module's async runtime's worker) and the threads that were in a call, a load or an
//! unload at that moment do not come along, but what they held does: a lock, an
//! admission slot, a hazard pointer a retirement waits for. A child that used the
//! runtime it inherited could wait for good on any of them. So a runtime refuses every
//! use in a forked child ([`RuntimeError::Forked`](crate::RuntimeError::Forked)), and the
//! child makes its own; the images its loader inherited (their statics, an async
//! module's runtime without its thread) are not handed to it either: a file loaded
//! before the fork loads from a private copy, a fresh image (see `crate::module`).
//!
//! The forks are counted by a handler `pthread_atfork` runs in each child, registered
//! when the process makes its first runtime: a fork before that copies no runtime. A
//! child made without the C library's `fork` (a raw `clone`, `_Fork`) runs no handler,
//! and is not told apart.

use std::sync::atomic::{AtomicU64, Ordering};

/// How many forks led from the process that made its first runtime to this one.
static FORKS: AtomicU64 = AtomicU64::new(0);

/// Run in each child as `fork()` returns there: async-signal-safe, as a child's fork
/// handler of a threaded process must be.
// Miri runs no `fork` and has no `pthread_atfork`.
#[cfg(all(target_os = "linux", not(miri)))]
extern "C" fn forked() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// The forks counted so far, the counting started if it was not: what a runtime (or
/// anything else a child must not inherit) keeps when it is made, and compares with
/// [`since`].
pub(crate) fn generation() -> u64 {
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        static WATCH: std::sync::Once = std::sync::Once::new();
        WATCH.call_once(|| {
            // SAFETY: `forked` is a plain function, valid for the life of the process,
            // that only bumps an atomic. A registration that fails (no memory) leaves
            // forks uncounted, and a child then uses what it inherited, as a process
            // without this check would.
            unsafe { libc::pthread_atfork(None, None, Some(forked)) };
        });
    }
    FORKS.load(Ordering::Relaxed)
}

/// Whether this process was forked since [`generation`] returned `made`: what was made
/// then belongs to an ancestor.
#[inline(always)]
pub(crate) fn since(made: u64) -> bool {
    FORKS.load(Ordering::Relaxed) != made
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_did_not_fork_is_not_a_child() {
        let made = generation();
        assert!(!since(made));
        assert_eq!(generation(), made);
    }
}
