//! The running call as the SDK's own hosts keep it (`HostApi::running_call`): the test
//! harness (`crate::testing`) and the unit tests' host set the frame they pass to the
//! module as their thread's running call while the module has it, as the runtime does.

use core::cell::Cell;
use core::ffi::c_void;

use crate::abi::CallFrame;

std::thread_local! {
    /// The frame of the innermost call this thread runs through [`running`], or null.
    static RUNNING: Cell<*mut c_void> = const { Cell::new(core::ptr::null_mut()) };
}

/// `HostApi::running_call`: the innermost frame this thread runs a call on.
pub(crate) unsafe extern "C" fn running_call() -> *mut c_void {
    RUNNING.try_with(Cell::get).unwrap_or(core::ptr::null_mut())
}

/// Runs `f`, a call on `frame`, with `frame` as this thread's running call, and puts the
/// outer call's back afterwards.
pub(crate) fn running<R>(frame: *mut CallFrame, f: impl FnOnce() -> R) -> R {
    let outer = RUNNING.with(|r| r.replace(frame.cast()));
    let result = f();
    RUNNING.with(|r| r.set(outer));
    result
}
