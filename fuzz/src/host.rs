//! A host for the exports linked into this binary: the three `HostApi` services, arenas
//! with guard bytes, and the checks a host makes on what a call hands back.
//!
//! The module here is the fuzz binary itself: its method table is the one
//! `memlink_module_info` describes, and nested calls to the module named [`SELF`] come
//! back into `memlink_call` on the same thread, as they would through the runtime.

use core::ffi::c_void;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use memlink_msdk::abi::{
    self, CallFrame, Format, HostApi, InitFrame, LogField, LogRecord, NestedCall, Status, StrRef,
};
use memlink_msdk::exports::{memlink_call, memlink_init, memlink_module_info};
use memlink_msdk::ModuleError;

pub use crate::exports::SELF;

/// Deepest nested call the host makes; deeper requests get `MaxCallDepthExceeded`.
pub const MAX_NESTED_DEPTH: u32 = 6;

/// Bytes of guard on each side of an arena, checked after every call.
const GUARD: usize = 64;
const GUARD_BYTE: u8 = 0xa5;

/// The services this host offers: one static table, as the runtime has.
pub static HOST_API: HostApi = HostApi {
    size: size_of::<HostApi>() as u32,
    reserved: 0,
    alloc_output,
    call_module,
    log,
    backpressure,
    running_call: Some(running_call),
};

std::thread_local! {
    /// The frame of the innermost call this thread runs through [`call_running`].
    static RUNNING: core::cell::Cell<*mut c_void> =
        const { core::cell::Cell::new(core::ptr::null_mut()) };
}

/// `HostApi::running_call`.
unsafe extern "C" fn running_call() -> *mut c_void {
    RUNNING
        .try_with(core::cell::Cell::get)
        .unwrap_or(core::ptr::null_mut())
}

std::thread_local! {
    /// Whether this thread's next call enters the method's own entry point rather than
    /// `memlink_call`: the two take turns, so every target drives both.
    static OWN_TURN: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
}

/// Calls the module on `frame` as the runtime does: through the method's own entry point
/// (`ModuleInfo::method_calls`) or `memlink_call`, in turns, with the frame as this
/// thread's running call (`HostApi::running_call`) until it returns.
///
/// # Safety
///
/// As for `memlink_call`; `frame` points to a whole `CallFrame` (its `size` may lie).
pub unsafe fn call_running(frame: *mut CallFrame) -> i32 {
    let own = OWN_TURN.with(|t| t.replace(!t.get()));
    // SAFETY: the caller's contract: a whole frame, readable.
    let index = unsafe { (&raw const (*frame).method_index).read() };
    let enter = own
        .then(|| own_entry(index))
        .flatten()
        .unwrap_or(memlink_call);
    let outer = RUNNING.with(|r| r.replace(frame.cast()));
    // SAFETY: the caller's contract, which a method's own entry point shares.
    let status = unsafe { enter(frame) };
    RUNNING.with(|r| r.set(outer));
    status
}

/// Method `index`'s own entry point, if the module's table has the method and gives it
/// one.
fn own_entry(index: u32) -> Option<abi::MethodCallFn> {
    // SAFETY: this binary's description, built once and never changed.
    let info = unsafe { memlink_module_info().as_ref() }?;
    let index = index as usize;
    if info.method_calls.is_null() || index >= info.method_count {
        return None;
    }
    // SAFETY: `method_calls` has `method_count` entries (the ABI).
    unsafe { *info.method_calls.add(index) }
}

/// Log records delivered so far, all checked.
pub static LOGS: AtomicU64 = AtomicU64::new(0);

/// A method as the module's table describes it.
#[derive(Debug, Clone)]
pub struct Method {
    /// The exported name.
    pub name: String,
    /// Its id.
    pub id: u32,
    /// How its arguments are encoded.
    pub args_format: Format,
    /// How its result is encoded.
    pub result_format: Format,
}

/// The module's methods, in table order; initializes the module on first use.
pub fn methods() -> &'static [Method] {
    static METHODS: OnceLock<Vec<Method>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let mut frame = InitFrame {
            size: size_of::<InitFrame>() as u32,
            abi_version: abi::ABI_VERSION,
            host: &HOST_API,
            max_log_level: abi::level::TRACE,
            error: StrRef::new(""),
        };
        // SAFETY: the frame is valid for the call and `HOST_API` is a static, valid for
        // as long as the module runs.
        let status = unsafe { memlink_init(&mut frame) };
        assert_eq!(status, Status::Ok as i32, "memlink_init failed");
        // SAFETY: the module's description lives in its static memory, never changes,
        // and its rows and strings are valid for the life of the process.
        let methods = unsafe {
            let info = memlink_module_info()
                .as_ref()
                .expect("memlink_module_info returned null");
            let rows = std::slice::from_raw_parts(info.methods, info.method_count);
            rows.iter()
                .map(|row| Method {
                    name: row
                        .name
                        .as_str()
                        .expect("method names are UTF-8")
                        .to_owned(),
                    id: row.id,
                    args_format: Format::from_u8(row.args_format).expect("known format"),
                    result_format: Format::from_u8(row.result_format).expect("known format"),
                })
                .collect::<Vec<_>>()
        };
        // linkme gathers the exports at link time: a missing one means the linker
        // dropped it, and the fuzzer would silently test less.
        for name in [
            "echo",
            "add",
            "ping",
            "profile",
            "tree_depth",
            "big",
            "relay",
            "archived_points",
        ] {
            assert!(
                methods.iter().any(|m| m.name == name),
                "export `{name}` is not in the method table"
            );
        }
        methods
    })
}

/// The index of the method called `name`.
pub fn index_of(name: &str) -> Option<u32> {
    methods()
        .iter()
        .position(|m| m.name == name)
        .map(|i| i as u32)
}

/// The host's side of one call: `CallFrame::host_call` points at it.
#[derive(Debug)]
pub struct HostCall {
    /// Depth of the call (for nested calls it makes).
    pub depth: u32,
    /// `alloc_output` refuses (returns null) for more than this many bytes.
    pub alloc_limit: usize,
    /// The last buffer `alloc_output` handed out: the only place besides the arena
    /// where output may be.
    pub output: Option<OutBuf>,
    /// Requests `alloc_output` refused.
    pub refused: u32,
}

impl HostCall {
    /// A call at `depth` whose output buffers may be up to `alloc_limit` bytes.
    pub fn new(depth: u32, alloc_limit: usize) -> HostCall {
        HostCall {
            depth,
            alloc_limit,
            output: None,
            refused: 0,
        }
    }
}

/// An output buffer aligned to 16, as `alloc_output` promises.
#[derive(Debug)]
pub struct OutBuf {
    words: Vec<u128>,
    len: usize,
}

impl OutBuf {
    fn zeroed(len: usize) -> OutBuf {
        OutBuf {
            words: vec![0; len.div_ceil(16)],
            len,
        }
    }

    fn start(&self) -> usize {
        self.words.as_ptr().addr()
    }
}

/// An arena region with guard bytes on both sides, placed `misalign` bytes past a
/// 16-byte boundary.
#[derive(Debug)]
pub struct ArenaBuf {
    words: Vec<u128>,
    start: usize,
    len: usize,
}

impl ArenaBuf {
    /// `len` bytes, `misalign` bytes off a 16-byte boundary, guards filled in.
    pub fn new(len: usize, misalign: usize) -> ArenaBuf {
        let total = GUARD + misalign + len + GUARD;
        let mut words = vec![u128::from_ne_bytes([GUARD_BYTE; 16]); total.div_ceil(16)];
        let start = GUARD + misalign;
        // The arena's own bytes start zeroed (the runtime's are); only guards are marked.
        // SAFETY: `start + len <= total <= words.len() * 16`, so the range is inside the
        // allocation, and nothing else borrows `words` now.
        unsafe {
            words
                .as_mut_ptr()
                .cast::<u8>()
                .add(start)
                .write_bytes(0, len)
        };
        ArenaBuf { words, start, len }
    }

    /// The region's first byte, to hand to the module.
    pub fn ptr(&mut self) -> *mut u8 {
        // SAFETY: `start` is within the allocation (see `new`).
        unsafe { self.words.as_mut_ptr().cast::<u8>().add(self.start) }
    }

    /// Length of the region.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `words` is initialized memory of `words.len() * 16` bytes, and the
        // call that could write it has returned.
        unsafe { std::slice::from_raw_parts(self.words.as_ptr().cast(), self.words.len() * 16) }
    }

    /// Panics if the module wrote outside the region.
    pub fn check_guards(&self) {
        let bytes = self.bytes();
        let end = self.start + self.len;
        let before = bytes[..self.start].iter().position(|&b| b != GUARD_BYTE);
        let after = bytes[end..].iter().position(|&b| b != GUARD_BYTE);
        assert!(
            before.is_none() && after.is_none(),
            "the module wrote outside its arena of {} bytes (guard byte changed at {:?} before / {:?} after)",
            self.len,
            before.map(|i| self.start - i),
            after
        );
    }

    fn range(&self, ptr: *const u8, len: usize) -> Option<&[u8]> {
        let start = self.words.as_ptr().addr() + self.start;
        let offset = ptr.addr().checked_sub(start)?;
        (offset.checked_add(len)? <= self.len)
            .then(|| &self.bytes()[self.start + offset..self.start + offset + len])
    }
}

/// Where a call's output was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// No output bytes.
    Empty,
    /// Inside the call's arena.
    Arena,
    /// At the start of the last buffer `alloc_output` handed out.
    HostBuffer,
    /// In the frame's `small_out` (a result of at most 16 bytes).
    Frame,
}

/// What a call returned, after the host's checks.
#[derive(Debug)]
pub struct Outcome {
    /// The status, a known [`Status`].
    pub status: Status,
    /// The output bytes (result or error payload).
    pub output: Vec<u8>,
    /// Where they were.
    pub place: Place,
}

impl Outcome {
    /// The error this outcome carries, as the host rebuilds it; `None` on success.
    pub fn error(&self) -> Option<ModuleError> {
        (self.status != Status::Ok)
            .then(|| ModuleError::from_status(self.status as i32, &self.output))
    }
}

/// Reads a finished call's status and output the way a host must: the status is one the
/// ABI defines, and output bytes lie in the arena, in the host's output buffer or (a
/// result of at most 16 bytes) in the frame's `small_out`.
pub fn collect(
    status: i32,
    frame: &CallFrame,
    arena: Option<&ArenaBuf>,
    host: &HostCall,
) -> Outcome {
    let status = Status::from_code(status)
        .unwrap_or_else(|| panic!("memlink_call returned {status}, which is not a Status"));
    if (frame.size as usize) < size_of::<CallFrame>() {
        // A frame smaller than the module's has no room for outputs: the module refuses
        // it with the status alone and writes nothing.
        assert_eq!(
            status,
            Status::Abi,
            "a frame smaller than the module's was accepted"
        );
        return Outcome {
            status,
            output: Vec::new(),
            place: Place::Empty,
        };
    }
    let (out, len) = (frame.out, frame.out_len);
    if len == 0 {
        return Outcome {
            status,
            output: Vec::new(),
            place: Place::Empty,
        };
    }
    if frame.holds_small_result(status as i32) {
        return Outcome {
            status,
            output: frame.small_out[..len].to_vec(),
            place: Place::Frame,
        };
    }
    if let Some(bytes) = arena.and_then(|a| a.range(out, len)) {
        return Outcome {
            status,
            output: bytes.to_vec(),
            place: Place::Arena,
        };
    }
    match &host.output {
        Some(buf) if out.addr() == buf.start() && len <= buf.len => {
            // SAFETY: the buffer holds `buf.len >= len` initialized bytes from its start.
            let bytes = unsafe { std::slice::from_raw_parts(buf.words.as_ptr().cast::<u8>(), len) };
            Outcome {
                status,
                output: bytes.to_vec(),
                place: Place::HostBuffer,
            }
        }
        _ => panic!(
            "status {status:?} with {len} output bytes at {out:p}: outside the arena and the host's buffer"
        ),
    }
}

/// Calls method `index` with a well-formed frame (a fresh 4 KiB arena, no deadline), as
/// the host does for a nested call, and checks what comes back.
pub fn call_valid(index: u32, args: &[u8], depth: u32) -> Outcome {
    let mut arena = ArenaBuf::new(4096, 0);
    let mut host = HostCall::new(depth, 64 << 20);
    let mut frame = CallFrame {
        size: size_of::<CallFrame>() as u32,
        method_index: index,
        method_id: methods()[index as usize].id,
        depth,
        args: args.as_ptr(),
        args_len: args.len(),
        arena: arena.ptr(),
        arena_len: arena.len(),
        trace_id: 0,
        span_id: 0,
        timeout_ns: abi::NO_DEADLINE,
        backpressure: 0.0,
        flags: 0,
        host: &HOST_API,
        host_call: (&raw mut host).cast(),
        persistent: core::ptr::null_mut(),
        persistent_len: 0,
        out: core::ptr::null(),
        out_len: 0,
        arena_used: 0,
        small_out: [0; abi::SMALL_OUT_LEN],
    };
    // SAFETY: every pointer in the frame is valid as the ABI requires: `args` for
    // `args_len` unchanging bytes, the arena for `arena_len` bytes used by no one else,
    // `host` a static and `host_call` a live `HostCall` on this stack.
    let status = unsafe { call_running(&raw mut frame) };
    let outcome = collect(status, &frame, Some(&arena), &host);
    arena.check_guards();
    outcome
}

/// `HostApi::backpressure`: out of range on purpose (the module must clamp it), and 0
/// without a call.
unsafe extern "C" fn backpressure(call: *mut c_void) -> f32 {
    if call.is_null() {
        0.0
    } else {
        1.5
    }
}

/// `HostApi::alloc_output`: a zeroed, 16-aligned buffer that replaces the call's last
/// one; null above the call's limit or without a call.
///
/// # Safety
///
/// `call` must be null or the `host_call` of a running call made by this host.
unsafe extern "C" fn alloc_output(call: *mut c_void, len: usize) -> *mut u8 {
    // SAFETY: the caller's contract; the harness does not touch the `HostCall` while
    // the module runs.
    let Some(host) = (unsafe { call.cast::<HostCall>().as_mut() }) else {
        return core::ptr::null_mut();
    };
    if len > host.alloc_limit {
        host.refused += 1;
        return core::ptr::null_mut();
    }
    let mut buf = OutBuf::zeroed(len);
    let ptr = buf.words.as_mut_ptr().cast::<u8>();
    host.output = Some(buf);
    ptr
}

/// `HostApi::call_module`: calls into this binary's own module under [`SELF`],
/// converting typed arguments (`NESTED_TYPED`) to the callee's format through
/// `msgpack::nested_args`, as the runtime does.
///
/// # Safety
///
/// `call` must be null or the `host_call` of a running call made by this host;
/// `request` must point to a valid `NestedCall` whose pointers are valid for the call.
unsafe extern "C" fn call_module(call: *mut c_void, request: *mut NestedCall) -> i32 {
    // SAFETY: the caller's contract: a valid request, ours to write for this call.
    let request = unsafe { request.as_mut() }.expect("call_module got a null request");
    assert!(
        request.size as usize >= size_of::<NestedCall>(),
        "nested call request of {} bytes",
        request.size
    );
    // SAFETY: as above; the `HostCall` is only read.
    let parent = unsafe { call.cast::<HostCall>().as_ref() };
    // SAFETY: the request's strings and arguments are valid for this call.
    let (module, method, args) = unsafe {
        (
            request.module.as_str().expect("module name is UTF-8"),
            request.method.as_str().expect("method name is UTF-8"),
            slice(request.args, request.args_len),
        )
    };
    let result = match parent {
        None => Err(ModuleError::CallFailed("no call handle".into())),
        Some(_) if module != SELF => Err(ModuleError::ModuleNotFound(module.to_owned())),
        Some(p) => match p.depth.checked_add(1).filter(|&d| d <= MAX_NESTED_DEPTH) {
            None => Err(ModuleError::MaxCallDepthExceeded),
            Some(depth) => match index_of(method) {
                None => Err(ModuleError::InvalidMethod),
                Some(_) if !crate::exports::callable(method) => Err(ModuleError::CallFailed(
                    format!("`{method}` is not called here"),
                )),
                Some(index) => {
                    let callee = &methods()[index as usize];
                    request.result_format = callee.result_format as u8;
                    let converted = memlink_msdk::abi::msgpack::nested_args(
                        request.flags,
                        callee.args_format,
                        args,
                    )
                    .map(|args| args.into_owned());
                    let outcome = match converted {
                        Ok(args) => call_valid(index, &args, depth),
                        Err(e) => return sink_error(request, e),
                    };
                    check_error_decodes(&outcome, false);
                    match outcome.status {
                        Status::Ok => Ok(outcome.output),
                        _ => Err(outcome.error().expect("an error status")),
                    }
                }
            },
        },
    };
    match result {
        Ok(bytes) => {
            // SAFETY: the sink and its context come from the valid request; the bytes
            // are valid while it runs.
            unsafe { (request.sink)(request.sink_ctx, bytes.as_ptr(), bytes.len()) };
            Status::Ok as i32
        }
        Err(e) => sink_error(request, e),
    }
}

/// Hands an error's payload to the request's sink and returns its status.
fn sink_error(request: &NestedCall, error: ModuleError) -> i32 {
    let payload = error.payload();
    // SAFETY: the sink and its context come from a valid request; the bytes are valid
    // while it runs.
    unsafe { (request.sink)(request.sink_ctx, payload.as_ptr(), payload.len()) };
    error.code()
}

/// A host check on every error: the payload turns back into the same variant. The one
/// exception is a payload the host could not take (`alloc_output` refused it): then
/// the error arrives without one, and a `Timeout` without its 8 bytes reads as `Abi`.
pub fn check_error_decodes(outcome: &Outcome, payload_refused: bool) {
    if payload_refused && outcome.output.is_empty() {
        return;
    }
    if let Some(err) = outcome.error() {
        assert_eq!(
            err.code(),
            outcome.status as i32,
            "status {:?} with payload {:02x?} decodes as {err:?}",
            outcome.status,
            outcome.output
        );
    }
}

/// `HostApi::log`: checks the record is well formed and counts it.
///
/// # Safety
///
/// `record` must point to a valid `LogRecord` whose strings and fields are valid during
/// this call.
unsafe extern "C" fn log(_call: *mut c_void, record: *const LogRecord) {
    // SAFETY: the caller's contract.
    let record = unsafe { record.as_ref() }.expect("log got a null record");
    assert!(record.size as usize >= size_of::<LogRecord>());
    assert!(
        (abi::level::ERROR..=abi::level::TRACE).contains(&record.level),
        "log level {}",
        record.level
    );
    let text = |s: StrRef| {
        // SAFETY: the record's strings are valid during this call.
        unsafe { s.as_str() }.expect("log strings are UTF-8")
    };
    let _ = (
        text(record.module),
        text(record.method),
        text(record.message),
    );
    let fields: &[LogField] = if record.field_count == 0 {
        &[]
    } else {
        assert!(
            !record.fields.is_null(),
            "null fields with a non-zero count"
        );
        // SAFETY: `field_count` fields, valid during this call.
        unsafe { std::slice::from_raw_parts(record.fields, record.field_count) }
    };
    for f in fields {
        let _ = (text(f.key), text(f.value));
    }
    LOGS.fetch_add(1, Ordering::Relaxed);
}

/// # Safety
///
/// `ptr` must be valid for reads of `len` bytes during `'a`; null only if `len` is 0.
unsafe fn slice<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if len == 0 {
        return &[];
    }
    // SAFETY: the caller's contract.
    unsafe { std::slice::from_raw_parts(ptr, len) }
}
