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
    /// A call whose method is not known yet.
    pub(crate) fn starting(
        host: *const HostApi,
        host_call: *mut c_void,
        trace_id: u64,
        span_id: u64,
    ) -> CurrentCall {
        CurrentCall {
            host,
            host_call,
            method: "",
            module: "",
            trace_id,
            span_id,
        }
    }
}

thread_local! {
    static CURRENT: Cell<Option<CurrentCall>> = const { Cell::new(None) };
}

/// Runs `f` with this thread's running-call slot. The call boundary fills it for the
/// length of a call and then restores what it held (the outer call, when a call
/// re-enters this module through a nested call), all through one thread-local access.
pub(crate) fn with_slot<R>(f: impl FnOnce(&Cell<Option<CurrentCall>>) -> R) -> R {
    let mut f = Some(f);
    match CURRENT.try_with(|slot| f.take().map(|f| f(slot))) {
        Ok(Some(r)) => r,
        // The thread is tearing down its locals: a slot of its own, seen by nobody
        // (`try_with` failed, so `f` was not taken).
        _ => f.map_or_else(|| unreachable!("the slot ran `f`"), |f| f(&Cell::new(None))),
    }
}

/// The call running on this thread, if any (panics are captured then).
pub(crate) fn current_call() -> Option<CurrentCall> {
    CURRENT.try_with(Cell::get).ok().flatten()
}
