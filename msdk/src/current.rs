//! The call running on this thread: what the entry points, the panic hook and the log
//! know of it.
//!
//! The call boundary describes its call on its own stack and points the thread's slot
//! at it for the length of the call, restoring what the slot held afterwards (the outer
//! call, when a call re-enters the module through a nested call). A log record takes its
//! export, trace and span from here; the panic hook records a panic's message only
//! while a call is running. Entering a call is one thread-local access, a counter bumped
//! and a pointer stored.

use core::ffi::c_void;
use core::ptr::NonNull;
use std::cell::Cell;

use crate::abi::{CallFrame, HostApi};
use crate::dispatch::MethodEntry;
use crate::frame_ref::FrameRef;

/// The running call on this thread, for the records it logs.
#[derive(Clone, Copy)]
pub(crate) struct CurrentCall {
    /// Different for every call a thread makes: the panic hook tags what it records with
    /// it, so a panic of an earlier call never names a later one.
    pub(crate) seq: u64,
    /// The frame the host made the call with (checked by the boundary, and valid while
    /// the call runs); null outside a host's call (`panic::isolate`).
    frame: *mut CallFrame,
    /// The export running; `None` outside a host's call.
    entry: Option<&'static MethodEntry>,
}

impl CurrentCall {
    /// The call on `frame` to `entry`, the boundary's `seq`th.
    ///
    /// # Safety
    ///
    /// The description (and every copy of it) must be used only while the call on
    /// `frame` runs: `enter` installs it for that call alone.
    #[inline(always)]
    pub(crate) unsafe fn new(
        seq: u64,
        frame: FrameRef<'_>,
        entry: &'static MethodEntry,
    ) -> CurrentCall {
        CurrentCall {
            seq,
            frame: frame.as_mut_ptr(),
            entry: Some(entry),
        }
    }

    /// A call with no host behind it (`panic::isolate`).
    pub(crate) fn isolated(seq: u64) -> CurrentCall {
        CurrentCall {
            seq,
            frame: core::ptr::null_mut(),
            entry: None,
        }
    }

    fn frame(&self) -> Option<FrameRef<'_>> {
        // SAFETY: the pointer is null, or the frame of the call this describes, which
        // still runs (`new`'s contract); the boundary reaches that frame through copies
        // of one pointer, as this does, and it passed the boundary's checks.
        NonNull::new(self.frame).map(|f| unsafe { FrameRef::new(f) })
    }

    /// The services of the host that made the call (a record goes to the host whose
    /// call logged it, even when two hosts share the image); null outside a host's call.
    pub(crate) fn host(&self) -> *const HostApi {
        self.frame().map_or(core::ptr::null(), FrameRef::host)
    }

    /// The host's handle of the call; null outside a host's call.
    pub(crate) fn host_call(&self) -> *mut c_void {
        self.frame()
            .map_or(core::ptr::null_mut(), FrameRef::host_call)
    }

    /// The call's trace and span ids (0 outside a host's call).
    pub(crate) fn trace(&self) -> (u64, u64) {
        self.frame().map_or((0, 0), |f| (f.trace_id(), f.span_id()))
    }

    /// The running export's name, `""` outside a host's call.
    pub(crate) fn method(&self) -> &'static str {
        self.entry.map_or("", |e| e.name)
    }

    /// The crate the running export belongs to (the module's name).
    pub(crate) fn module(&self) -> &'static str {
        self.entry
            .map_or_else(crate::dispatch::module_name, |e| e.crate_name)
    }
}

/// A thread's running call, and the number its next call gets.
struct Slot {
    /// Points at the running call's description on its boundary's stack, or is null.
    current: Cell<*const CurrentCall>,
    next_seq: Cell<u64>,
}

thread_local! {
    static SLOT: Slot = const {
        Slot {
            current: Cell::new(core::ptr::null()),
            next_seq: Cell::new(1),
        }
    };
}

/// Puts the slot back as it was when the call ends, on return or unwind.
struct Restore<'s> {
    slot: &'s Cell<*const CurrentCall>,
    outer: *const CurrentCall,
}

impl Drop for Restore<'_> {
    #[inline]
    fn drop(&mut self) {
        self.slot.set(self.outer);
    }
}

/// Runs `f` as the call `describe` describes, given the call's number: the thread's slot
/// points at the description while `f` runs and is restored afterwards, however `f`
/// ends. A thread tearing down its locals has no slot: `f` runs as no call.
#[inline]
pub(crate) fn enter<R>(describe: impl FnOnce(u64) -> CurrentCall, f: impl FnOnce(u64) -> R) -> R {
    let Ok(slot) = SLOT.try_with(core::ptr::from_ref) else {
        return f(0);
    };
    // SAFETY: the slot lives until this thread destroys its locals, which cannot happen
    // while this function runs on the thread (a destructor calling here either got `Err`
    // above or runs before the slot's own destructor).
    let slot = unsafe { &*slot };
    let seq = slot.next_seq.get();
    slot.next_seq.set(seq.wrapping_add(1));
    let call = describe(seq);
    let _restore = Restore {
        slot: &slot.current,
        outer: slot.current.replace(&raw const call),
    };
    f(seq)
}

/// The call running on this thread, if any (panics are captured then).
#[inline]
pub(crate) fn current_call() -> Option<CurrentCall> {
    let ptr = SLOT.try_with(|s| s.current.get()).ok()?;
    // SAFETY: a non-null pointer in the slot was put there by `enter`, whose stack frame
    // holds the description and is still running: `enter` restores the slot before it
    // returns or unwinds past the description.
    unsafe { ptr.as_ref() }.copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_holds_the_innermost_call_and_is_restored() {
        assert!(current_call().is_none());
        enter(CurrentCall::isolated, |outer| {
            assert_eq!(current_call().map(|c| c.seq), Some(outer));
            enter(CurrentCall::isolated, |inner| {
                assert_ne!(inner, outer, "each call has its own number");
                assert_eq!(current_call().map(|c| c.seq), Some(inner));
            });
            assert_eq!(current_call().map(|c| c.seq), Some(outer));
        });
        assert!(current_call().is_none());
    }

    #[test]
    fn an_unwinding_call_restores_the_slot() {
        let unwound = std::panic::catch_unwind(|| {
            enter(CurrentCall::isolated, |_| {
                std::panic::resume_unwind(Box::new(()))
            })
        });
        assert!(unwound.is_err());
        assert!(
            current_call().is_none(),
            "nothing points at the unwound stack"
        );
    }
}
