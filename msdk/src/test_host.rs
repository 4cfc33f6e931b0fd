//! A host for the unit tests: a service table whose services are never called but
//! whose `running_call` answers, and sound frames that name it.

use core::ffi::c_void;

use crate::abi::{CallFrame, HostApi};

unsafe extern "C" fn no_output(_: *mut c_void, _: usize) -> *mut u8 {
    core::ptr::null_mut()
}
unsafe extern "C" fn no_call(_: *mut c_void, _: *mut crate::abi::NestedCall) -> i32 {
    crate::abi::Status::Abi as i32
}
unsafe extern "C" fn no_log(_: *mut c_void, _: *const crate::abi::LogRecord) {}
unsafe extern "C" fn idle(_: *mut c_void) -> f32 {
    0.0
}

/// Runs `f`, a call on `frame`, as a host keeping its running call does: [`HOST`]
/// answers `running_call` with `frame` meanwhile (the module asks it once [`HOST`] is
/// connected, `crate::current::connect`).
pub(crate) use crate::host_running::running;
use crate::host_running::running_call;

/// A host table as large as this module's, for frames to name; its services are
/// never called.
pub(crate) static HOST: HostApi = HostApi {
    size: size_of::<HostApi>() as u32,
    reserved: 0,
    alloc_output: no_output,
    call_module: no_call,
    log: no_log,
    backpressure: idle,
    running_call: Some(running_call),
};

/// A sound frame over `args` and `arena` naming [`HOST`]: method 0 (id 1), trace 7,
/// span 9, depth 2, no deadline, and outputs of 99 that the boundary must overwrite.
pub(crate) fn call_frame(args: &[u8], arena: &mut [u8]) -> CallFrame {
    CallFrame {
        size: size_of::<CallFrame>() as u32,
        method_index: 0,
        method_id: 1,
        depth: 2,
        args: args.as_ptr(),
        args_len: args.len(),
        arena: arena.as_mut_ptr(),
        arena_len: arena.len(),
        trace_id: 7,
        span_id: 9,
        timeout_ns: crate::abi::NO_DEADLINE,
        backpressure: 0.0,
        flags: 0,
        host: &raw const HOST,
        host_call: core::ptr::null_mut(),
        persistent: core::ptr::null_mut(),
        persistent_len: 0,
        out: core::ptr::null(),
        out_len: 99,
        arena_used: 99,
        small_out: [99; crate::abi::SMALL_OUT_LEN],
    }
}
