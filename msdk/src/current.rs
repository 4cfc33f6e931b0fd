//! The call running on this thread: what the entry points, the panic hook and the log
//! know of it.
//!
//! The call boundary fills the thread's slot for the length of a call and restores what
//! it held afterwards (the outer call, when a call re-enters the module through a nested
//! call). A log record takes its export, trace and span from here; the panic hook
//! records a panic's message only while a call is running.

use core::ffi::c_void;
use std::cell::Cell;

use crate::abi::HostApi;

/// The running call on this thread, for the records it logs.
#[derive(Clone, Copy)]
pub(crate) struct CurrentCall {
    /// Different for every call a thread makes: the panic hook tags what it records with
    /// it, so a panic of an earlier call never names a later one.
    pub(crate) seq: u64,
    /// The services of the host that made the call (a record goes to the host whose
    /// call logged it, even when two hosts share the image).
    pub(crate) host: *const HostApi,
    pub(crate) host_call: *mut c_void,
    pub(crate) method: &'static str,
    pub(crate) module: &'static str,
    pub(crate) trace_id: u64,
    pub(crate) span_id: u64,
}

impl CurrentCall {
    /// A call with no host behind it (`panic::isolate`).
    pub(crate) fn isolated(seq: u64) -> CurrentCall {
        CurrentCall {
            seq,
            host: core::ptr::null(),
            host_call: core::ptr::null_mut(),
            method: "",
            module: "",
            trace_id: 0,
            span_id: 0,
        }
    }
}

/// A thread's running call, and the number its next call gets.
struct Slot {
    current: Cell<Option<CurrentCall>>,
    next_seq: Cell<u64>,
}

thread_local! {
    static CURRENT: Slot = const {
        Slot {
            current: Cell::new(None),
            next_seq: Cell::new(1),
        }
    };
}

/// Runs `f` with this thread's running-call slot and a number for the call that fills
/// it. The call boundary fills the slot for the length of a call and then restores what
/// it held (the outer call, when a call re-enters this module through a nested call),
/// all through one thread-local access.
#[inline]
pub(crate) fn with_slot<R>(f: impl FnOnce(&Cell<Option<CurrentCall>>, u64) -> R) -> R {
    let mut f = Some(f);
    let ran = CURRENT.try_with(|slot| {
        let seq = slot.next_seq.get();
        slot.next_seq.set(seq.wrapping_add(1));
        f.take().map(|f| f(&slot.current, seq))
    });
    match ran {
        Ok(Some(r)) => r,
        // The thread is tearing down its locals: a slot of its own, seen by nobody
        // (`try_with` failed, so `f` was not taken).
        _ => f.map_or_else(
            || unreachable!("the slot ran `f`"),
            |f| f(&Cell::new(None), 0),
        ),
    }
}

/// The call running on this thread, if any (panics are captured then).
#[inline]
pub(crate) fn current_call() -> Option<CurrentCall> {
    CURRENT.try_with(|s| s.current.get()).ok().flatten()
}
