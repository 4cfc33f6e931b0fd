//! A module's own tests, run as the host runs its calls: [`TestContext`] calls an
//! export through the module's real entry point (`memlink_call`), in the test's process.
//!
//! A module's `cargo test` binary links the module's exports, so its method table is the
//! one a host sees. [`TestContext`] plays the host: it initializes the module once,
//! lends each call an arena it owns, hands the encoded arguments over, and gives back
//! the encoded result or the [`ModuleError`] a host would get: the arguments' checks
//! (archives validated in place, MessagePack decoded) and panics are the module's own
//! code paths, not a copy of them. Nested calls are answered by a closure.
//!
//! ```
//! use memlink_msdk::prelude::*;
//! use memlink_msdk::testing::TestContext;
//!
//! #[memlink_export]
//! pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
//!     a.checked_add(b).ok_or(ModuleError::Failed("overflow".into()))
//! }
//!
//! let host = TestContext::new();
//! assert_eq!(host.call_typed::<_, u32>("add", &(2u32, 3u32))?, 5);
//! assert!(matches!(
//!     host.call_typed::<_, u32>("add", &(u32::MAX, 1u32)),
//!     Err(ModuleError::Failed(_))
//! ));
//! # Ok::<(), ModuleError>(())
//! ```
//!
//! What it does not offer: a persistent region (`ctx.persistent()` is `None`), and
//! calls to real modules (a nested call reaches the [`on_nested`](TestContext::on_nested)
//! closure, or fails with `ModuleNotFound`); a method the crate does not export is
//! `InvalidMethod`, as the module itself answers it (a host checks the name first, and
//! says `UnknownMethod`). [`logs`](TestContext::logs) holds the module's own records,
//! not the one a runtime adds for each caught panic.
//!
//! Where it differs from a host by the test's own doing, said in the README's "Testing a
//! module": under `#[tokio::test]` the test's tokio runtime is the thread's, so an
//! export is polled inside the test's task (a timer can wait for good) and a plain `fn`
//! export finds a tokio runtime no host gives it; and a test that replaces the panic
//! hook turns off the panics' locations for the tests after it in the same binary.

use core::cell::RefCell;
use core::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::abi::{
    self, CallFrame, Format, HostApi, InitFrame, LogRecord, NestedCall, Status, StrRef,
};
use crate::error::ModuleError;
use crate::exports::{memlink_call, memlink_init, memlink_module_info};
use crate::host_running::{running, running_call};

/// What a nested call asks for, as the mock sees it.
#[derive(Debug, Clone, Copy)]
pub struct NestedRequest<'a> {
    /// The module called.
    pub module: &'a str,
    /// The method called.
    pub method: &'a str,
    /// The arguments as the module sent them: MessagePack for `call_typed`, the bytes as
    /// they are for `call`.
    pub args: &'a [u8],
    /// Whether the arguments are MessagePack of a typed call.
    pub typed: bool,
}

/// The closure that answers nested calls: MessagePack of the result (what a typed nested
/// call decodes), or the callee's error.
type Nested = dyn Fn(NestedRequest<'_>) -> Result<Vec<u8>, ModuleError> + Send + Sync;

/// A log record the module wrote during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestLog {
    /// `abi::level`: 1 error to 5 trace.
    pub level: u32,
    /// The export that logged it.
    pub method: String,
    /// The message.
    pub message: String,
    /// The fields, in order.
    pub fields: Vec<(String, String)>,
}

/// A host for a module's tests: owns the arenas, the options of each call and the mock
/// for nested calls. Calls may run on many threads at once.
pub struct TestContext {
    arena_size: usize,
    timeout: Option<Duration>,
    trace: (u64, u64),
    backpressure: f32,
    nested: Option<Box<Nested>>,
    logs: Mutex<Vec<TestLog>>,
}

impl std::fmt::Debug for TestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestContext")
            .field("arena_size", &self.arena_size)
            .field("timeout", &self.timeout)
            .field("trace", &self.trace)
            .field("backpressure", &self.backpressure)
            .field("nested", &self.nested.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for TestContext {
    fn default() -> TestContext {
        TestContext::new()
    }
}

impl TestContext {
    /// A host with a 64 KiB arena per call, no deadline, no trace ids, no load and no
    /// modules to call.
    pub fn new() -> TestContext {
        TestContext {
            arena_size: 64 << 10,
            timeout: None,
            trace: (0, 0),
            backpressure: 0.0,
            nested: None,
            logs: Mutex::new(Vec::new()),
        }
    }

    /// Each call's arena holds `bytes` (what `ctx.arena()` can hand out, and where a
    /// result built in the arena lives).
    pub fn arena_size(mut self, bytes: usize) -> Self {
        self.arena_size = bytes;
        self
    }

    /// Each call has `timeout` from when it starts (`ctx.remaining_time()`).
    pub fn deadline(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Each call carries these trace and span ids (`ctx.trace_id()`, `ctx.span_id()`).
    pub fn trace(mut self, trace_id: u64, span_id: u64) -> Self {
        self.trace = (trace_id, span_id);
        self
    }

    /// The module's load the host reports (`ctx.backpressure()`), clamped to `[0, 1]`.
    pub fn backpressure(mut self, level: f32) -> Self {
        self.backpressure = if level.is_nan() {
            0.0
        } else {
            level.clamp(0.0, 1.0)
        };
        self
    }

    /// Answers the module's nested calls (`ctx.module_caller()`) with `answer`, which
    /// returns MessagePack of the result or the callee's error.
    pub fn on_nested(
        mut self,
        answer: impl Fn(NestedRequest<'_>) -> Result<Vec<u8>, ModuleError> + Send + Sync + 'static,
    ) -> Self {
        self.nested = Some(Box::new(answer));
        self
    }

    /// Calls `method` with `args` encoded as the method takes them (MessagePack, the
    /// raw bytes, or an rkyv archive), and returns its encoded result.
    pub fn call(&self, method: &str, args: &[u8]) -> Result<Vec<u8>, ModuleError> {
        let (index, row) = find(method)?;
        self.run(index, row.id, args)
    }

    /// Calls `method` with `args` encoded for its format (as a host's typed call does)
    /// and decodes its result into `R`.
    pub fn call_typed<A, R>(&self, method: &str, args: &A) -> Result<R, ModuleError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        let (index, row) = find(method)?;
        if row.args_format == Format::Archived || row.result_format == Format::Archived {
            return Err(ModuleError::CallFailed(format!(
                "`{method}` exchanges an rkyv archive: pass the archive's bytes to `call` and read the result with rkyv"
            )));
        }
        let encoded = abi::msgpack::encode_as(row.args_format, args)?;
        let bytes = self.run(index, row.id, &encoded)?;
        abi::msgpack::decode_as(row.result_format, &bytes)
    }

    /// The records the module logged through this context so far, oldest first.
    pub fn logs(&self) -> Vec<TestLog> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn run(&self, index: u32, id: u32, args: &[u8]) -> Result<Vec<u8>, ModuleError> {
        // The arguments sit 16-aligned (archives need it) apart from the arena, as a
        // host places them.
        let mut args_buf = zeroed(args.len(), "the arguments' copy");
        let args_ptr = args_buf.as_mut_ptr().cast::<u8>();
        // SAFETY: `args_buf` holds at least `args.len()` bytes, and `args` is another
        // allocation, so the two do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(args.as_ptr(), args_ptr, args.len()) };
        let mut arena = zeroed(self.arena_size, "the arena (`TestContext::arena_size`)");
        let call = Call {
            context: self,
            output: RefCell::new(None),
            panicked: RefCell::new(None),
        };
        let mut frame = CallFrame {
            size: size_of::<CallFrame>() as u32,
            method_index: index,
            method_id: id,
            depth: 0,
            args: args_ptr,
            args_len: args.len(),
            arena: arena.as_mut_ptr().cast(),
            arena_len: self.arena_size,
            trace_id: self.trace.0,
            span_id: self.trace.1,
            timeout_ns: self.timeout.map_or(abi::NO_DEADLINE, |t| {
                u64::try_from(t.as_nanos()).unwrap_or(abi::NO_DEADLINE - 1)
            }),
            backpressure: self.backpressure,
            flags: 0,
            host: &HOST_API,
            host_call: (&raw const call).cast_mut().cast(),
            persistent: core::ptr::null_mut(),
            persistent_len: 0,
            out: core::ptr::null(),
            out_len: 0,
            arena_used: 0,
            small_out: [0; abi::SMALL_OUT_LEN],
        };
        // The host keeps the running call, for the module's logs and panics: this
        // frame, while the module has it.
        let frame_ptr = &raw mut frame;
        // SAFETY: the frame is valid as the ABI requires: `args` for `args_len` bytes
        // nobody writes during the call, the arena for `arena_len` bytes nobody else
        // uses, `host` a static, and `host_call` the live `Call` above, which the host
        // services only read through shared references (its buffers are `RefCell`s).
        // All of it outlives the call, so `running` may publish the frame meanwhile.
        let status = unsafe { running(frame_ptr, || memlink_call(frame_ptr)) };
        // The test's own closure failed (an assertion in it, say): that is the test's
        // failure, reported as such once the module has returned.
        if let Some(message) = call.panicked.borrow_mut().take() {
            panic!("the on_nested closure panicked: {message}");
        }
        let output = collect(&frame, status, &arena, &call)?;
        match Status::from_code(status) {
            Some(Status::Ok) => Ok(output),
            Some(_) => Err(ModuleError::from_status(status, &output)),
            None => Err(ModuleError::CallFailed(format!(
                "memlink_call returned {status}, which is not a status"
            ))),
        }
    }
}

/// Copies the call's output from where the module put it: its arena, the buffer the
/// host lent through `alloc_output`, or (a result of a call that returned `status`) the
/// frame's `small_out`. Anything else is the module's bug, reported.
fn collect(
    frame: &CallFrame,
    status: i32,
    arena: &[u128],
    call: &Call<'_>,
) -> Result<Vec<u8>, ModuleError> {
    let (out, len) = (frame.out, frame.out_len);
    if len == 0 {
        return Ok(Vec::new());
    }
    if frame.holds_small_result(status) {
        return Ok(frame.small_out[..len].to_vec());
    }
    let inside = |start: usize, size: usize| {
        out.addr()
            .checked_sub(start)
            .is_some_and(|offset| offset.checked_add(len).is_some_and(|end| end <= size))
    };
    // Bounds from the buffers themselves: the module could have rewritten the frame's.
    let copy = |buf: &[u128]| {
        let from = buf.as_ptr().cast::<u8>();
        let offset = out.addr() - from.addr();
        // SAFETY: `offset + len` lies inside `buf` (checked by `inside`), initialized
        // memory this function only reads, after the call returned.
        unsafe { core::slice::from_raw_parts(from.add(offset), len) }.to_vec()
    };
    if inside(arena.as_ptr().addr(), size_of_val(arena)) {
        return Ok(copy(arena));
    }
    match &*call.output.borrow() {
        Some(buf) if inside(buf.as_ptr().addr(), size_of_val(&buf[..])) => Ok(copy(buf)),
        _ => Err(ModuleError::CallFailed(format!(
            "the module returned {len} bytes at {out:p}, outside its arena and the host's buffer"
        ))),
    }
}

/// One call's host state: `CallFrame::host_call` points at it, and the host services
/// reach it through shared references only.
struct Call<'a> {
    context: &'a TestContext,
    /// The last buffer `alloc_output` lent, 16-aligned.
    output: RefCell<Option<Vec<u128>>>,
    /// What the `on_nested` closure panicked with, to report once the call returns.
    panicked: RefCell<Option<String>>,
}

/// The module as its table describes it, initialized once per process.
struct Row {
    name: String,
    id: u32,
    args_format: Format,
    result_format: Format,
}

/// `len` zeroed bytes, 16-aligned, for `what`: a size the process cannot allocate is the
/// test's setting to fix, said in a panic (the test fails with it), where `vec!` would
/// abort the whole test binary. Zeroed by the allocator, as `vec!` does (fresh pages are
/// zero already, so a large arena costs only the pages a call touches).
fn zeroed(len: usize, what: &str) -> Vec<u128> {
    let n = len.div_ceil(16);
    if n == 0 {
        return Vec::new();
    }
    let fail = |why: &dyn core::fmt::Display| -> ! {
        panic!("TestContext cannot allocate {what} of {len} bytes: {why}")
    };
    let layout = std::alloc::Layout::array::<u128>(n).unwrap_or_else(|e| fail(&e));
    // SAFETY: the layout's size is not zero (`n > 0`, and `u128` is not zero-sized).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<u128>();
    if ptr.is_null() {
        fail(&"the allocator has no room for it");
    }
    // SAFETY: `ptr` was allocated by the global allocator with the layout of `n`
    // `u128`s, which is how a `Vec<u128>` of capacity `n` allocates; all `n` are
    // initialized (zero bytes are a valid `u128`), and the `Vec` owns the allocation
    // from here on.
    unsafe { Vec::from_raw_parts(ptr, n, n) }
}

/// The method called `method`: its index in the table, and its row.
fn find(method: &str) -> Result<(u32, &'static Row), ModuleError> {
    let (index, row) = module()?
        .iter()
        .enumerate()
        .find(|(_, m)| m.name == method)
        .ok_or(ModuleError::InvalidMethod)?;
    let index = u32::try_from(index).map_err(|_| ModuleError::InvalidMethod)?;
    Ok((index, row))
}

fn module() -> Result<&'static [Row], ModuleError> {
    static MODULE: OnceLock<Result<Vec<Row>, String>> = OnceLock::new();
    MODULE
        .get_or_init(init)
        .as_deref()
        .map_err(|e| ModuleError::CallFailed(e.clone()))
}

fn init() -> Result<Vec<Row>, String> {
    let mut frame = InitFrame {
        size: size_of::<InitFrame>() as u32,
        abi_version: abi::ABI_VERSION,
        host: &HOST_API,
        max_log_level: abi::level::TRACE,
        error: StrRef::new(""),
    };
    // SAFETY: the frame is valid for the call, and `HOST_API` is a static, valid for as
    // long as the module runs.
    if unsafe { memlink_init(&mut frame) } != Status::Ok as i32 {
        // SAFETY: the module's error message lives as long as the module (static).
        let why = unsafe { frame.error.as_str() }.unwrap_or("no reason given");
        return Err(format!("memlink_init failed: {why}"));
    }
    // SAFETY: the module's description lives in its static memory and never changes.
    let info =
        unsafe { memlink_module_info().as_ref() }.ok_or("memlink_module_info returned null")?;
    let rows = if info.method_count == 0 {
        &[][..]
    } else {
        // SAFETY: `method_count` rows in the module's static memory (built by this crate).
        unsafe { core::slice::from_raw_parts(info.methods, info.method_count) }
    };
    rows.iter()
        .map(|row| {
            // SAFETY: the table's strings are static and never written.
            let name = unsafe { row.name.as_str() }.ok_or("a method name is not UTF-8")?;
            Ok(Row {
                name: name.to_owned(),
                id: row.id,
                args_format: Format::from_u8(row.args_format).ok_or("an unknown format")?,
                result_format: Format::from_u8(row.result_format).ok_or("an unknown format")?,
            })
        })
        .collect()
}

static HOST_API: HostApi = HostApi {
    size: size_of::<HostApi>() as u32,
    reserved: 0,
    alloc_output,
    call_module,
    log,
    backpressure,
    running_call: Some(running_call),
};

/// `HostApi::alloc_output`: a zeroed, 16-aligned buffer that replaces the call's last;
/// null when `len` cannot be allocated, as the ABI asks.
///
/// # Safety
///
/// `call` is null or the `host_call` of a running call of this module's tests.
unsafe extern "C" fn alloc_output(call: *mut c_void, len: usize) -> *mut u8 {
    // SAFETY: the caller's contract: a live `Call`, only ever shared.
    let Some(call) = (unsafe { call.cast::<Call<'_>>().as_ref() }) else {
        return core::ptr::null_mut();
    };
    let words = len.div_ceil(16).max(1);
    let mut buf = Vec::new();
    if isize::try_from(len).is_err() || buf.try_reserve_exact(words).is_err() {
        return core::ptr::null_mut();
    }
    buf.resize(words, 0u128);
    // The buffer's heap memory does not move when the `Vec` moves into the cell, so the
    // pointer stays valid until the next `alloc_output` or the end of the call.
    let ptr = buf.as_mut_ptr().cast();
    *call.output.borrow_mut() = Some(buf);
    ptr
}

/// `HostApi::call_module`: the context's mock answers, in MessagePack.
///
/// # Safety
///
/// `call` is null or the `host_call` of a running call; `request` points to a valid
/// `NestedCall` whose strings and arguments are valid for this call.
unsafe extern "C" fn call_module(call: *mut c_void, request: *mut NestedCall) -> i32 {
    // SAFETY: the caller's contract: the request is valid and ours to write.
    let Some(request) = (unsafe { request.as_mut() }) else {
        return Status::Abi as i32;
    };
    // SAFETY: as above; the `Call` is only read here.
    let call = unsafe { call.cast::<Call<'_>>().as_ref() };
    // SAFETY: the request's strings and arguments are valid during this call.
    let asked = unsafe {
        (
            request.module.as_str(),
            request.method.as_str(),
            bytes(request.args, request.args_len),
        )
    };
    let typed = request.flags & abi::NESTED_TYPED != 0;
    let result = match (call, asked) {
        (Some(call), (Some(module), Some(method), args)) => match &call.context.nested {
            // A panic must not unwind out of this `extern "C"` function (that aborts the
            // test binary): it is kept and reported once the call returns.
            Some(answer) => panic::catch_unwind(AssertUnwindSafe(|| {
                answer(NestedRequest {
                    module,
                    method,
                    args,
                    typed,
                })
            }))
            .unwrap_or_else(|payload| {
                // With its location, as the module's hook recorded it for the running
                // call the closure runs in (the hook prints nothing then, so the test's
                // own assertion would otherwise be reported with no file and line); the
                // payload dropped where nothing unwinds out (its drop may panic in turn).
                let message = crate::panic::message(payload, crate::current::running_frame());
                *call.panicked.borrow_mut() = Some(message);
                Err(ModuleError::CallFailed(
                    "the on_nested closure panicked".into(),
                ))
            }),
            None => Err(ModuleError::ModuleNotFound(module.to_owned())),
        },
        _ => Err(ModuleError::Abi("a malformed nested call".into())),
    };
    // As a host does: the format is set, before the sink runs, only on success.
    let (status, payload) = match result {
        Ok(bytes) => {
            request.result_format = Format::MessagePack as u8;
            (Status::Ok as i32, bytes)
        }
        Err(e) => (e.code(), e.payload()),
    };
    // The request is not touched once the sink, which may read it, runs.
    let (sink, sink_ctx) = (request.sink, request.sink_ctx);
    // SAFETY: the sink and its context come from the valid request; the bytes are valid
    // while it runs.
    unsafe { sink(sink_ctx, payload.as_ptr(), payload.len()) };
    status
}

/// `HostApi::log`: keeps the record in the context.
///
/// # Safety
///
/// `call` is null or the `host_call` of a running call; `record` points to a valid
/// `LogRecord` whose strings and fields are valid during this call.
unsafe extern "C" fn log(call: *mut c_void, record: *const LogRecord) {
    // SAFETY: the caller's contract.
    let (Some(call), Some(record)) = (unsafe { call.cast::<Call<'_>>().as_ref() }, unsafe {
        record.as_ref()
    }) else {
        return;
    };
    // SAFETY: the record's strings are valid during this call.
    let text = |s: StrRef| unsafe { s.as_str() }.unwrap_or("<not UTF-8>").to_owned();
    let fields = if record.field_count == 0 || record.fields.is_null() {
        &[][..]
    } else {
        // SAFETY: `field_count` fields, valid during this call.
        unsafe { core::slice::from_raw_parts(record.fields, record.field_count) }
    };
    let entry = TestLog {
        level: record.level,
        method: text(record.method),
        message: text(record.message),
        fields: fields
            .iter()
            .map(|f| (text(f.key), text(f.value)))
            .collect(),
    };
    call.context
        .logs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(entry);
}

/// `HostApi::backpressure`: the context's figure.
///
/// # Safety
///
/// `call` is null or the `host_call` of a running call.
unsafe extern "C" fn backpressure(call: *mut c_void) -> f32 {
    // SAFETY: the caller's contract; the `Call` is only read.
    unsafe { call.cast::<Call<'_>>().as_ref() }.map_or(0.0, |c| c.context.backpressure)
}

/// # Safety
///
/// `ptr` is valid for reads of `len` bytes during `'a`; null only if `len` is 0.
unsafe fn bytes<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 || ptr.is_null() {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { core::slice::from_raw_parts(ptr, len) }
}

#[cfg(test)]
mod tests {
    use super::zeroed;

    /// The buffers a test's call gets: as long as asked (in 16-byte units), all zero,
    /// and owned by a `Vec` that frees them as it allocated them (Miri checks the
    /// allocation's layout against the `Vec`'s).
    #[test]
    fn zeroed_buffers_are_as_long_as_asked_and_zero() {
        assert!(zeroed(0, "nothing").is_empty());
        for len in [1, 16, 17, 4096] {
            let buf = zeroed(len, "a buffer");
            assert_eq!(buf.len(), len.div_ceil(16));
            assert_eq!(buf.capacity(), len.div_ceil(16));
            assert!(buf.iter().all(|&w| w == 0));
        }
    }
}
