//! The services the host offers every module (`HostApi`): one static table, whose
//! functions find the running call through the handle the module passes back.
//!
//! Every function here is called by module code through the ABI: none unwinds (a panic
//! in the host, or in a log subscriber, is caught and reported as a status), and each
//! accepts a null call handle, which the ABI allows for a module's own threads, and
//! takes a handle that names no call this thread runs (one a module kept past its call)
//! as null, never reading through it.

use core::ffi::c_void;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};

use memlink_abi::{
    self as abi, Format, HostApi, LogRecord, ModuleError, NestedCall, NestedSink, Status,
};

use crate::buffer::AlignedBuf;
use crate::host_call::{CallMeta, HostCall, NestedRequest};
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
    crate::chain::running_frame()
}

/// The running call behind a call handle: the call it names if that is a call this
/// thread runs in a module (the innermost, or one whose nested call led to it), else
/// `None`. A module written to the ABI alone may keep a handle past its call and pass it
/// back later, or from another thread: the `HostCall` it pointed at (on the stack of the
/// call that made it) is gone, or another call's, so it is compared, never read.
///
/// For the services that only read (`log`, `backpressure`); the ones that act for the
/// call take [`innermost_of`].
///
/// # Safety
///
/// The reference must not be used after the service that asked for it returns.
unsafe fn call_of<'r>(call: *mut c_void) -> Option<&'r HostCall<'r>> {
    // SAFETY: forwarded (the contract).
    unsafe { on_chain(call) }.map(|(named, _)| named)
}

/// The innermost call this thread runs in a module, if `call` names it or a call whose
/// nested calls led to it (else `None`, as [`call_of`]): the call a nested call or an
/// output buffer is for. A handle of an outer call that is waiting for its nested call
/// acts as the innermost: a nested call made with it is one level below the call that
/// is really running, so the depth limit counts it and the chain's re-entry rule sees
/// every module in between (made for the outer call, it would start the depth again
/// there, so a loop of such calls would never end, and it would wait for a slot that a
/// call in between holds).
///
/// # Safety
///
/// As [`call_of`].
unsafe fn innermost_of<'r>(call: *mut c_void) -> Option<&'r HostCall<'r>> {
    // SAFETY: forwarded (the contract).
    unsafe { on_chain(call) }.map(|(_, innermost)| innermost)
}

/// The call `call` names among the calls this thread runs in a module, and the
/// innermost of them.
///
/// # Safety
///
/// As [`call_of`].
unsafe fn on_chain<'r>(call: *mut c_void) -> Option<(&'r HostCall<'r>, &'r HostCall<'r>)> {
    if call.is_null() {
        return None;
    }
    // SAFETY: `running_call` is null or the host's side of the innermost call this thread
    // runs in a module, which returns after the service running on this thread for it
    // does. Each `parent` is the call that made the one before, running below it on this
    // thread, so alive longer; all are used within the service (the contract).
    let innermost = unsafe { HostCall::of_running(crate::chain::running_call()) }?;
    let mut running = Some(innermost);
    while let Some(c) = running {
        if c.handle == call.addr() {
            return Some((c, innermost));
        }
        running = c.parent;
    }
    None
}

/// Why a service refuses a handle [`call_of`] does not find.
const NOT_RUNNING: &str =
    "the call handle is null, or not a call running on this thread (a handle is valid only while its call runs, on its thread)";

/// A copy of `record`, logged in the call `named`, with that call's trace where the
/// record carries none, and with its method where the record names none: a module
/// written to the ABI alone may not fill them in. `None` when there is nothing to fill
/// in, as for the SDK's records.
#[inline]
fn filled_in(record: &LogRecord, named: &HostCall<'_>) -> Option<LogRecord> {
    let method = record.method.len == 0;
    // Nothing to fill in when the call has no trace either (most calls).
    let trace = (record.trace_id, record.span_id) == (0, 0)
        && (named.meta.trace_id, named.meta.span_id) != (0, 0);
    (method || trace).then(|| fill_in(record, named, method, trace))
}

/// [`filled_in`]'s copy, out of the way of the records that need none: with the running
/// call's method when `method`, and `named`'s trace when `trace`.
#[cold]
#[inline(never)]
fn fill_in(record: &LogRecord, named: &HostCall<'_>, method: bool, trace: bool) -> LogRecord {
    let mut copy = *record;
    if let Some(m) = method
        .then(|| named.module.methods.get(named.index as usize))
        .flatten()
    {
        copy.method = abi::StrRef::new(&m.name);
    }
    if trace {
        (copy.trace_id, copy.span_id) = (named.meta.trace_id, named.meta.span_id);
    }
    copy
}

/// `HostApi::log`.
///
/// # Safety
///
/// `record` must be null or point to a readable `size` field; when that `size` is at
/// least this host's `size_of::<LogRecord>()`, to a valid [`LogRecord`] whose strings
/// and fields are valid for the duration of this call. (A module built against an
/// older, smaller `LogRecord` passes one that is only its own `size` bytes long.)
unsafe extern "C" fn host_log(call: *mut c_void, record: *const LogRecord) {
    // A subscriber that panics must not unwind into the module.
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: used within this function. A handle of no running call on this thread
        // is taken as null: the record is the module's, of no call.
        let chain = unsafe { on_chain(call) };
        let host = chain.map(|(named, _)| named);
        let sink = host.and_then(|c| c.registry.config.log_sink.clone());
        if record.is_null() {
            return;
        }
        // A record smaller than this runtime's lacks fields it would read: dropped. Its
        // size is read through the pointer first: a reference to a `LogRecord` would
        // claim this host's size of it, past the end of a smaller one.
        // SAFETY: not null, and its `size` is readable (the caller's contract).
        if (unsafe { (&raw const (*record).size).read() } as usize) < size_of::<LogRecord>() {
            return;
        }
        // SAFETY: a whole `LogRecord`, by its size (the caller's contract).
        let record = unsafe { &*record };
        if crate::log::level_of(record.level).is_none() {
            // No level (0, or past `TRACE`): dropped, as docs/abi.md says, and said once
            // for the module of the call (a record of no call names no module the host
            // can be sure of).
            if let Some(c) = host {
                let why = format!(
                    "its level {} is none of 1 (error) to 5 (trace)",
                    record.level
                );
                c.module.told.log_skipped(&c.module.name, &why);
            }
            return;
        }
        // One more detailed than the runtime's level (its `log_level`, else its
        // subscriber's) was not asked for: a module is to drop those itself, but one
        // whose image another runtime loaded with a more detailed level keeps that one,
        // and one that does not drop them gets them dropped here. A record of no call
        // belongs to no runtime, and goes on.
        let max = host.map(|c| crate::log::max_level(c.registry.config.log_level));
        if max.is_none_or(|max| record.level <= max) {
            // The name the host knows the module by (it may have been loaded under
            // another).
            let name = host.map(|c| c.module.name.as_str());
            let filled = chain.and_then(|(named, _)| filled_in(record, named));
            let record = filled.as_ref().unwrap_or(record);
            let emit = || {
                // SAFETY: the caller's contract covers the record's strings and fields
                // for the duration of this service, which runs `emit` within it; a
                // filled-in copy's method names a method of the module, alive as long.
                unsafe { crate::log::emit(record, name, sink.as_deref()) }
            };
            match host {
                // The sink runs as the call's host code, as an interceptor does: a call
                // it makes through another runtime is part of this call's chain too, one
                // level deeper (the running call names only its own runtime's calls).
                // Without it, two runtimes whose sinks call each other's logging modules
                // started a chain of depth 0 at each hop, and overflowed the stack.
                Some(c) => {
                    crate::chain::hooked_by(*c.meta, c.module.lineage, &c.module.name, true, emit)
                }
                None => emit(),
            }
        }
    }));
}

/// `HostApi::alloc_output`.
///
/// # Safety
///
/// `call` must be the `host_call` of a frame whose call is running.
unsafe extern "C" fn host_alloc_output(call: *mut c_void, len: usize) -> *mut u8 {
    if isize::try_from(len).is_err() {
        return core::ptr::null_mut();
    }
    let result = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: used within this closure. A handle of no running call on this thread
        // (null, or kept past its call) gets no buffer, and neither does an outer call
        // waiting for its nested call: replacing its buffer would free memory its module
        // may still write. Only a shared reference is made: the host holds others while
        // the module runs (a nested call's sink, say, may ask for its own call's output),
        // and the buffer is kept in a `Cell`.
        let (host_call, innermost) = unsafe { on_chain(call) }?;
        if !core::ptr::eq(host_call, innermost) {
            return None;
        }
        // A length the allocator cannot give is a null return, not an abort.
        let Some(mut buf) = AlignedBuf::try_zeroed(len) else {
            no_output_buffer(host_call, len);
            return None;
        };
        let ptr = buf.as_mut_ptr();
        host_call.output.set(Some(buf));
        Some(ptr)
    }));
    result.ok().flatten().unwrap_or(core::ptr::null_mut())
}

/// Says, once a second at most, that a call's output buffer of `len` bytes could not be
/// allocated: its module then fails the call (the SDK with `QuotaExceeded`), which alone
/// says nothing of the memory, or of a daemon worker's `memory_bytes`.
#[cold]
fn no_output_buffer(call: &HostCall<'_>, len: usize) {
    static LAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    if crate::pool::first_this_second(&LAST) {
        tracing::warn!(
            target: "memlink::runtime",
            len,
            "cannot allocate {len} bytes for the output of {}::{}: the memory is exhausted \
             (or limited: a daemon worker's memory_bytes); the module is given none (the \
             SDK fails the call with `QuotaExceeded`)",
            call.module.name,
            call.module.methods[call.index as usize].name
        );
    }
}

/// `HostApi::backpressure`: the larger of the module's load (calls running against its
/// concurrency limit) and the arena pool's.
///
/// # Safety
///
/// `call` must be the `host_call` of a frame whose call is running.
unsafe extern "C" fn host_backpressure(call: *mut c_void) -> f32 {
    // SAFETY: used within this function, and only read.
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
/// to a [`NestedCall`] of at least the size its `size` field gives, whose pointers are
/// valid for the duration of this call.
unsafe extern "C" fn host_call_module(call: *mut c_void, request: *mut NestedCall) -> i32 {
    if request.is_null() {
        // No request to answer through: nothing can be reported but the status.
        return Status::Abi as i32;
    }
    // SAFETY: `request` is not null and points to a request (the caller's contract).
    let Some(fields) = (unsafe { Fields::read(request) }) else {
        // Too small to hold a sink, or none in it: the status alone.
        return Status::Abi as i32;
    };
    let given = Cell::new(false);
    let sink = Sink {
        sink: fields.sink,
        ctx: fields.sink_ctx,
        // SAFETY: within the request (`Fields::read` checked its size); no reference to
        // the module's request is made, and the host writes nothing else in it.
        format_out: unsafe { &raw mut (*request).result_format },
        format: 0,
        given: &given,
        depth: 0,
    };
    // SAFETY: used within this function. The `HostCall` is only read through shared
    // references (`alloc_output` too: its buffer is in a `Cell`).
    // A handle of an outer call acts for the innermost (`innermost_of`).
    let Some(host_call) = (unsafe { innermost_of(call) }) else {
        // No call to act for (null, or a handle kept past its call): refused, saying so.
        let e = ModuleError::Abi(format!("nested call refused: {NOT_RUNNING}"));
        sink.give(&e.payload());
        return e.code();
    };
    let meta = host_call.nested_meta();
    let depth = meta.depth;
    // A call made from the sink of a call refused for the depth limit (its depth past
    // the limit + 1) is refused too, its sink not called: given the same refusal, a
    // sink that calls again whatever it gets would stack calls on the host's stack
    // without end (the pager of `crate::chain::in_sink`).
    if depth > host_call.registry.config.max_call_depth.saturating_add(1) {
        return ModuleError::MaxCallDepthExceeded.code();
    }
    let sink = Sink { depth, ..sink };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: forwarded from this function's contract.
        unsafe {
            nested(host_call, meta, &fields, |format| Sink {
                format: format as u8,
                ..sink
            })
        }
    }));
    let result = outcome.unwrap_or_else(|_| {
        tracing::error!(target: "memlink::host", "the host panicked in a nested call");
        Err(ModuleError::CallFailed("the host panicked".into()))
    });
    match result {
        // The output went to the sink as the call returned.
        Ok(()) => Status::Ok as i32,
        // The callee's output was handed over, and the host failed after it (a panic
        // while the call was counted, logged above): the call itself succeeded, and the
        // sink is called once.
        Err(_) if given.get() => Status::Ok as i32,
        Err(e) => {
            sink.give(&e.payload());
            e.code()
        }
    }
}

/// The fields of a module's [`NestedCall`] the host reads, each read on its own: the
/// request may be older and smaller than this host's, and its sink may be null, which
/// the struct's function pointer cannot hold.
struct Fields {
    flags: u32,
    module: abi::StrRef,
    method: abi::StrRef,
    args: *const u8,
    args_len: usize,
    sink: NestedSink,
    sink_ctx: *mut c_void,
}

impl Fields {
    /// The request's fields, or `None` when it is smaller than this host's `NestedCall`
    /// (it may lack `result_format`, or the sink itself) or its sink is null.
    ///
    /// # Safety
    ///
    /// `request` must point to a readable `size` field, and to as many readable bytes
    /// as it gives.
    unsafe fn read(request: *const NestedCall) -> Option<Fields> {
        // SAFETY: the first field, readable (the contract).
        let size = unsafe { (&raw const (*request).size).read() };
        if (size as usize) < size_of::<NestedCall>() {
            return None;
        }
        // SAFETY: every field lies within the request's `size` bytes (checked above). The
        // sink is read as an `Option`, whose `None` is the null pointer, so a null sink
        // is a value and not undefined behaviour.
        unsafe {
            let sink = (&raw const (*request).sink)
                .cast::<Option<NestedSink>>()
                .read()?;
            Some(Fields {
                flags: (&raw const (*request).flags).read(),
                module: (&raw const (*request).module).read(),
                method: (&raw const (*request).method).read(),
                args: (&raw const (*request).args).read(),
                args_len: (&raw const (*request).args_len).read(),
                sink,
                sink_ctx: (&raw const (*request).sink_ctx).read(),
            })
        }
    }
}

/// The calling module's sink for a nested call's output (or its error's payload), which
/// gets it where it lies, once; on success, with the callee's result format written
/// into the request first, as the ABI promises.
#[derive(Clone, Copy)]
struct Sink<'g> {
    sink: NestedSink,
    ctx: *mut c_void,
    /// The request's `result_format`.
    format_out: *mut u8,
    /// The callee's result format, written there on success.
    format: u8,
    /// Whether the sink has been called.
    given: &'g Cell<bool>,
    /// The depth of the nested call whose output it is given.
    depth: u32,
}

impl Sink<'_> {
    /// Hands `bytes` to the module.
    fn give(self, bytes: &[u8]) {
        self.given.set(true);
        // SAFETY: the sink is the calling module's, for this nested call, which has not
        // returned (`host_call_module`'s contract); its contract asks only that the
        // bytes stay valid while it runs, which the borrow guarantees.
        crate::chain::in_sink(self.depth, || unsafe {
            (self.sink)(self.ctx, bytes.as_ptr(), bytes.len())
        })
    }

    /// Hands the callee's output to the module, its result format written first.
    fn deliver(self, bytes: &[u8]) {
        // SAFETY: `format_out` is the request's `result_format`, within it and ours to
        // write for this call (`host_call_module`).
        unsafe { self.format_out.write(self.format) };
        self.give(bytes);
    }
}

impl Receive for Sink<'_> {
    type Out = ();

    #[inline(always)]
    fn empty(self, _args: Option<OwnedArgs>) {
        self.deliver(&[]);
    }

    #[inline(always)]
    fn small(self, arena: &AlignedBuf, offset: usize, len: usize, _args: Option<OwnedArgs>) {
        self.deliver(&arena.as_slice()[offset..offset + len]);
    }

    #[inline(always)]
    fn in_frame(self, small_out: [u8; abi::SMALL_OUT_LEN], len: usize, _args: Option<OwnedArgs>) {
        self.deliver(&small_out[..len]);
    }

    #[inline(always)]
    fn output(self, output: CallOutput) {
        self.deliver(&output);
    }
}

/// Reads the nested call `request` and runs it on behalf of `host_call`, carrying `meta`
/// (`HostCall::nested_meta`), its output handed to the receiver that `receive` makes of
/// the callee's result format.
///
/// # Safety
///
/// The request's strings and arguments must be valid for the duration of this call.
unsafe fn nested<R: Receive>(
    host_call: &HostCall<'_>,
    meta: CallMeta,
    request: &Fields,
    receive: impl FnOnce(Format) -> R,
) -> Result<R::Out, ModuleError> {
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
    let args = if request.args_len == 0 {
        &[][..]
    } else if request.args.is_null() {
        // As a name with a length is refused: the module meant bytes it did not give.
        return Err(ModuleError::Abi(format!(
            "nested call arguments are null with a length ({} bytes)",
            request.args_len
        )));
    } else {
        // SAFETY: `args_len` readable bytes (the caller's contract), at most isize::MAX.
        unsafe { std::slice::from_raw_parts(request.args, request.args_len) }
    };
    let request = NestedRequest {
        module: name(request.module, "module name")?,
        method: name(request.method, "method name")?,
        args,
        flags: request.flags,
    };
    crate::call::nested(host_call, meta, &request, receive)
}
#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn keep(_ctx: *mut c_void, _ptr: *const u8, _len: usize) {}

    /// A request is read field by field: one smaller than this host's `NestedCall`, or
    /// with a null sink, is refused without reading past it or calling through null.
    #[test]
    fn a_request_too_small_or_without_a_sink_is_refused() {
        let words = size_of::<NestedCall>().div_ceil(8);
        // Zeroed words: a request whose every field is zero, its sink null.
        let mut buf = vec![0u64; words];
        let request = buf.as_mut_ptr().cast::<NestedCall>();
        let set_size = move |size: usize| {
            // SAFETY: `size` is the first field, within the buffer.
            unsafe { (&raw mut (*request).size).write(size as u32) };
        };
        set_size(size_of::<NestedCall>());
        // SAFETY: the buffer holds a whole request.
        assert!(unsafe { Fields::read(request) }.is_none(), "a null sink");
        let keep_fn: NestedSink = keep;
        // SAFETY: the sink field is within the buffer, and `keep` is a valid sink.
        unsafe { (&raw mut (*request).sink).write(keep_fn) };
        // SAFETY: as above.
        let fields = unsafe { Fields::read(request) }.expect("a whole request");
        assert_eq!((fields.args_len, fields.flags), (0, 0));
        set_size(size_of::<NestedCall>() - 8);
        // SAFETY: as above; only `size` is read of a request that says it is smaller.
        assert!(unsafe { Fields::read(request) }.is_none(), "too small");
        // Through the service: the status alone.
        let call = core::ptr::NonNull::<u8>::dangling()
            .as_ptr()
            .cast::<c_void>();
        // SAFETY: the request is refused before the call handle is used.
        let status = unsafe { (HOST_API.call_module)(call, request) };
        assert_eq!(status, Status::Abi as i32);
    }

    /// A record from a module built against a smaller `LogRecord` is dropped having read
    /// only its `size`: a reference to the whole struct would reach past its end (Miri
    /// reported the reference before, as out of bounds).
    #[test]
    fn a_log_record_smaller_than_the_hosts_is_read_no_further_than_its_size() {
        // `size` and `level` alone, as an older module's record might end.
        let short = [8u32, abi::level::ERROR];
        // SAFETY: null is a call of none; the record's `size` is readable and says 8.
        unsafe { (HOST_API.log)(core::ptr::null_mut(), short.as_ptr().cast()) };
        // SAFETY: null is no record.
        unsafe { (HOST_API.log)(core::ptr::null_mut(), core::ptr::null()) };
    }

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
