//! The services the host offers every module (`HostApi`): one static table, whose
//! functions find the running call through the handle the module passes back.
//!
//! Every function here is called by module code through the ABI: none unwinds (a panic
//! in the host, or in a log subscriber, is caught and reported as a status), and each
//! accepts a null call handle, which the ABI allows for a module's own threads.

use core::ffi::c_void;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

use memlink_abi::{self as abi, Format, HostApi, LogRecord, ModuleError, NestedCall, Status};

use crate::buffer::AlignedBuf;
use crate::host_call::{HostCall, NestedRequest};
use crate::output::{CallOutput, OwnedArgs, Receive};

/// The services every module gets, one static table for all.
pub(crate) static HOST_API: HostApi = HostApi {
    size: size_of::<HostApi>() as u32,
    reserved: 0,
    alloc_output: host_alloc_output,
    call_module: host_call_module,
    log: host_log,
    backpressure: host_backpressure,
    running_call: Some(host_running_call),
};

/// `HostApi::running_call`: the frame this thread's innermost call runs on (a state of
/// one `Cell`, which never panics).
unsafe extern "C" fn host_running_call() -> *mut c_void {
    crate::thread::running_frame()
}

/// The running call behind a call handle, if there is one.
///
/// # Safety
///
/// `call` must be null or the `host_call` of a frame whose call is running.
unsafe fn call_of<'r>(call: *mut c_void) -> Option<&'r HostCall<'r>> {
    // SAFETY: the caller's contract; the `HostCall` lives until its call returns, and
    // the registry and module it borrows live longer.
    unsafe { call.cast::<HostCall<'r>>().as_ref() }
}

/// `HostApi::log`.
///
/// # Safety
///
/// `record` must point to a valid [`LogRecord`] whose strings and fields are valid for
/// the duration of this call.
unsafe extern "C" fn host_log(call: *mut c_void, record: *const LogRecord) {
    // A subscriber that panics must not unwind into the module.
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract: null, or the running call's handle.
        let host = unsafe { call_of(call) };
        let sink = host.and_then(|c| c.registry.config.log_sink.clone());
        // The name the host knows the module by (it may have been loaded under another).
        let name = host.map(|c| c.module.name.as_str());
        // SAFETY: the caller's contract.
        let record = unsafe { record.as_ref() };
        // A record smaller than this runtime's lacks fields it would read: dropped.
        if let Some(record) = record.filter(|r| r.size as usize >= size_of::<LogRecord>()) {
            // SAFETY: the caller's contract covers the record's strings and fields.
            unsafe { crate::log::emit(record, name, sink.as_deref()) };
        }
    }));
}

/// `HostApi::alloc_output`.
///
/// # Safety
///
/// `call` must be the `host_call` of a frame whose call is running.
unsafe extern "C" fn host_alloc_output(call: *mut c_void, len: usize) -> *mut u8 {
    if call.is_null() || isize::try_from(len).is_err() {
        return core::ptr::null_mut();
    }
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract: `call` is a live `HostCall` of this thread's
        // running call (not null, checked above), and no other reference to it is in use
        // while the module runs.
        let host_call = unsafe { &mut *call.cast::<HostCall<'_>>() };
        // A length the allocator cannot give is a null return, not an abort.
        let mut buf = AlignedBuf::try_zeroed(len)?;
        let ptr = buf.as_mut_ptr();
        host_call.output = Some(buf);
        Some(ptr)
    }));
    result.ok().flatten().unwrap_or(core::ptr::null_mut())
}

/// `HostApi::backpressure`: the larger of the module's load (calls running against its
/// concurrency limit) and the arena pool's.
///
/// # Safety
///
/// `call` must be the `host_call` of a frame whose call is running.
unsafe extern "C" fn host_backpressure(call: *mut c_void) -> f32 {
    // SAFETY: the caller's contract; the `HostCall` is only read.
    match unsafe { call_of(call) } {
        Some(c) => crate::backpressure::now(&c.module.gate, &c.registry.pool),
        None => 0.0,
    }
}

/// `HostApi::call_module`.
///
/// # Safety
///
/// `call` must be the `host_call` of a frame whose call is running; `request` must point
/// to a valid [`NestedCall`] whose pointers are valid for the duration of this call.
unsafe extern "C" fn host_call_module(call: *mut c_void, request: *mut NestedCall) -> i32 {
    if call.is_null() || request.is_null() {
        // No call to act for, or no request to answer through: nothing can be reported
        // but the status.
        return Status::Abi as i32;
    }
    // SAFETY: `request` points to a valid `NestedCall` (the caller's contract), a struct
    // of plain fields with no `Drop`, so a copy of it is a request as good. The host reads
    // the copy and writes only `result_format` in the module's.
    let copy = unsafe { request.read() };
    // SAFETY: as above; no reference to the module's request is made.
    let format_out = unsafe { &raw mut (*request).result_format };
    let given = Cell::new(false);
    let sink = Sink {
        sink: copy.sink,
        ctx: copy.sink_ctx,
        given: &given,
    };
    // The ABI has the callee's result format set before the sink runs.
    let receive = |format: Format| {
        // SAFETY: `request` is valid and its `result_format` ours to write for this call
        // (contract above).
        unsafe { format_out.write(format as u8) };
        sink
    };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract; the nested call only reads the `HostCall`.
        let host_call = unsafe { &*call.cast::<HostCall<'_>>() };
        // SAFETY: forwarded from this function's contract.
        unsafe { nested(host_call, &copy, receive) }
    }));
    let result =
        outcome.unwrap_or_else(|_| Err(ModuleError::CallFailed("the host panicked".into())));
    match result {
        // The output went to the sink as the call returned.
        Ok(()) => Status::Ok as i32,
        // The callee's output was handed over, and the host failed after it (a panic
        // while the call was counted): the call itself succeeded, and the sink is
        // called once.
        Err(_) if given.get() => Status::Ok as i32,
        Err(e) => {
            sink.give(&e.payload());
            e.code()
        }
    }
}

/// The calling module's sink for a nested call's output (or its error's payload), which
/// gets it where it lies, once.
#[derive(Clone, Copy)]
struct Sink<'g> {
    sink: unsafe extern "C" fn(*mut c_void, *const u8, usize),
    ctx: *mut c_void,
    /// Whether the sink has been called.
    given: &'g Cell<bool>,
}

impl Sink<'_> {
    /// Hands `bytes` to the module.
    fn give(self, bytes: &[u8]) {
        self.given.set(true);
        // SAFETY: the sink is the calling module's, for this nested call, which has not
        // returned (`host_call_module`'s contract); its contract asks only that the
        // bytes stay valid while it runs, which the borrow guarantees.
        unsafe { (self.sink)(self.ctx, bytes.as_ptr(), bytes.len()) }
    }
}

impl Receive for Sink<'_> {
    type Out = ();

    #[inline(always)]
    fn empty(self, _args: Option<OwnedArgs>) {
        self.give(&[]);
    }

    #[inline(always)]
    fn small(self, arena: &AlignedBuf, offset: usize, len: usize, _args: Option<OwnedArgs>) {
        self.give(&arena.as_slice()[offset..offset + len]);
    }

    #[inline(always)]
    fn output(self, output: CallOutput) {
        self.give(&output);
    }
}

/// Reads the nested call `request` and runs it on behalf of `host_call`, its output
/// handed to the receiver that `receive` makes of the callee's result format.
///
/// # Safety
///
/// The request's strings and arguments must be valid for the duration of this call.
unsafe fn nested<R: Receive>(
    host_call: &HostCall<'_>,
    request: &NestedCall,
    receive: impl FnOnce(Format) -> R,
) -> Result<R::Out, ModuleError> {
    if (request.size as usize) < size_of::<NestedCall>() {
        return Err(ModuleError::Abi("nested call request is too small".into()));
    }
    let name = |s: abi::StrRef, what: &str| {
        // SAFETY: valid for this call (the caller's contract).
        unsafe { s.as_bytes() }.ok_or_else(|| {
            ModuleError::Abi(format!(
                "{what} is null with a length, or longer than isize::MAX"
            ))
        })
    };
    if isize::try_from(request.args_len).is_err() {
        return Err(ModuleError::Abi(format!(
            "nested call arguments are {} bytes, more than isize::MAX",
            request.args_len
        )));
    }
    let args = if request.args_len == 0 || request.args.is_null() {
        &[][..]
    } else {
        // SAFETY: `args_len` readable bytes (the caller's contract), at most isize::MAX.
        unsafe { std::slice::from_raw_parts(request.args, request.args_len) }
    };
    let request = NestedRequest {
        module: name(request.module, "module name")?,
        method: name(request.method, "method name")?,
        args,
        typed: request.flags & abi::NESTED_TYPED != 0,
    };
    crate::call::nested(host_call, &request, receive)
}
#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn keep(_ctx: *mut c_void, _ptr: *const u8, _len: usize) {}

    /// A module may call a service with no running call (from a thread of its own); the
    /// handle is then null. `log` and `backpressure` take that, and so must the others:
    /// before, they dereferenced it.
    #[test]
    fn services_given_a_null_call_refuse_instead_of_dereferencing_it() {
        // SAFETY: a null handle is what is being tested; the functions must not touch it.
        let out = unsafe { (HOST_API.alloc_output)(core::ptr::null_mut(), 16) };
        assert!(out.is_null());
        let mut request = NestedCall {
            size: size_of::<NestedCall>() as u32,
            flags: 0,
            module: abi::StrRef::new("any"),
            method: abi::StrRef::new("echo"),
            args: core::ptr::null(),
            args_len: 0,
            sink: keep,
            sink_ctx: core::ptr::null_mut(),
            result_format: 0,
        };
        // SAFETY: as above; the request is valid.
        let status = unsafe { (HOST_API.call_module)(core::ptr::null_mut(), &mut request) };
        assert_eq!(status, Status::Abi as i32);
        // SAFETY: as above.
        let status =
            unsafe { (HOST_API.call_module)(core::ptr::null_mut(), core::ptr::null_mut()) };
        assert_eq!(status, Status::Abi as i32);
        // SAFETY: null is allowed here by the ABI.
        let load = unsafe { (HOST_API.backpressure)(core::ptr::null_mut()) };
        assert_eq!(load, 0.0);
    }
}
