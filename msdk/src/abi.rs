//! The C ABI between a memlink host and a memlink module, written once.
//!
//! Both sides compile this file: a module through the `#[no_mangle]` entry points in
//! [`crate::exports`], the host (`memlink-runtime`) by depending on this crate. Nothing
//! else crosses the boundary. `docs/abi.md` in the repository describes the same
//! contract in prose, with the reasons behind each choice.
//!
//! # The entry points
//!
//! | symbol | signature | when |
//! |---|---|---|
//! | [`SYM_ABI_VERSION`] | `extern "C" fn() -> u32` | first: the host reads it before it trusts any struct |
//! | [`SYM_MODULE_INFO`] | `extern "C" fn() -> *const ModuleInfo` | after the version matched |
//! | [`SYM_INIT`] | `extern "C" fn(*mut InitFrame) -> i32` | once, before the first call |
//! | [`SYM_CALL`] | `extern "C" fn(*mut CallFrame) -> i32` | once per call, from any number of threads at once |
//! | [`SYM_SHUTDOWN`] | `extern "C" fn() -> i32` | once, when the host retires the module |
//!
//! Every `i32` returned is a [`Status`]. A module built with this crate never unwinds out
//! of an entry point: panics are caught inside and reported as [`Status::Panic`].
//!
//! # Thread safety
//!
//! `memlink_call` may run on many host threads at once and re-entrantly on one thread
//! (a module calling itself through the host). Each concurrent call gets its own frame
//! and its own arena; the method table is immutable after `memlink_init`.
//!
//! # Extending
//!
//! [`HostApi`] and the frames carry their own size, so a later minor version may append
//! fields: a reader checks the size before it touches a field that was added later.
//! Any other change bumps [`ABI_VERSION`], and the host refuses a module whose version
//! differs from its own.

use core::ffi::c_void;

/// Version of this ABI. Host and module must agree exactly.
pub const ABI_VERSION: u32 = 1;

/// `b"MEMLINK\0"` read as a little-endian `u64`: the first field of [`ModuleInfo`].
pub const MODULE_MAGIC: u64 = u64::from_le_bytes(*b"MEMLINK\0");

/// Symbol of `extern "C" fn() -> u32` returning [`ABI_VERSION`].
pub const SYM_ABI_VERSION: &[u8] = b"memlink_abi_version\0";
/// Symbol of `extern "C" fn() -> *const ModuleInfo`.
pub const SYM_MODULE_INFO: &[u8] = b"memlink_module_info\0";
/// Symbol of `extern "C" fn(*mut InitFrame) -> i32`.
pub const SYM_INIT: &[u8] = b"memlink_init\0";
/// Symbol of `extern "C" fn(*mut CallFrame) -> i32`.
pub const SYM_CALL: &[u8] = b"memlink_call\0";
/// Symbol of `extern "C" fn() -> i32`.
pub const SYM_SHUTDOWN: &[u8] = b"memlink_shutdown\0";
/// Symbol of [`MetricsFn`]: the module's own metrics, visited one by one.
pub const SYM_METRICS: &[u8] = b"memlink_metrics\0";

/// Signature behind [`SYM_ABI_VERSION`].
pub type AbiVersionFn = unsafe extern "C" fn() -> u32;
/// Signature behind [`SYM_MODULE_INFO`].
pub type ModuleInfoFn = unsafe extern "C" fn() -> *const ModuleInfo;
/// Signature behind [`SYM_INIT`].
pub type InitFn = unsafe extern "C" fn(*mut InitFrame) -> i32;
/// Signature behind [`SYM_CALL`].
pub type CallFn = unsafe extern "C" fn(*mut CallFrame) -> i32;
/// Signature behind [`SYM_SHUTDOWN`].
pub type ShutdownFn = unsafe extern "C" fn() -> i32;
/// Signature behind [`SYM_METRICS`]: calls `visit(ctx, record)` once per metric the
/// module recorded; each record is valid only during its `visit`.
pub type MetricsFn = unsafe extern "C" fn(
    visit: unsafe extern "C" fn(ctx: *mut c_void, record: *const MetricRecord),
    ctx: *mut c_void,
) -> i32;

/// `MetricRecord::kind` of a counter.
pub const METRIC_COUNTER: u32 = 0;
/// `MetricRecord::kind` of a gauge.
pub const METRIC_GAUGE: u32 = 1;
/// `MetricRecord::kind` of a histogram.
pub const METRIC_HISTOGRAM: u32 = 2;

/// One metric of a module, as [`MetricsFn`] reports it.
#[repr(C)]
#[derive(Debug)]
pub struct MetricRecord {
    /// The metric's name.
    pub name: StrRef,
    /// `METRIC_*`.
    pub kind: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// A counter's count, or a histogram's number of observations.
    pub count: u64,
    /// A gauge's value, or a histogram's sum of observations.
    pub value: f64,
    /// A histogram's upper bucket bounds, ascending (`+Inf` implied after the last).
    pub bounds: *const f64,
    /// A histogram's observations per bucket (not cumulative): `bucket_count` entries,
    /// the last for values above every bound.
    pub buckets: *const u64,
    /// Entries in `buckets` (`bounds` has one fewer).
    pub bucket_count: usize,
}

/// FNV-1a, 32 bits, of a method name: the method's id on the wire.
///
/// ```
/// use memlink_msdk::abi::method_id;
/// assert_eq!(method_id("echo"), 0xd49d_d484);
/// assert_eq!(method_id("add"), 0x3b39_1274);
/// assert_eq!(method_id(""), 0x811c_9dc5);
/// ```
pub const fn method_id(name: &str) -> u32 {
    let bytes = name.as_bytes();
    let mut hash: u32 = 0x811c_9dc5;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u32;
        hash = hash.wrapping_mul(16_777_619);
        i += 1;
    }
    hash
}

/// Outcome of an entry point, as the `i32` it returns.
///
/// `Ok` is 0. Every other value names a [`crate::ModuleError`] variant by its
/// [`code`](crate::ModuleError::code); the frame's output then holds the error's payload
/// (see [`CallFrame::out`]). Values not listed here are reported by the host as an ABI
/// error rather than guessed at.
#[repr(i32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Success: the output holds the result.
    Ok = 0,
    /// [`crate::ModuleError::QuotaExceeded`].
    QuotaExceeded = 1,
    /// [`crate::ModuleError::CallFailed`].
    CallFailed = 2,
    /// [`crate::ModuleError::Timeout`]; the payload is the duration in nanoseconds, `u64` LE.
    Timeout = 3,
    /// [`crate::ModuleError::Panic`].
    Panic = 4,
    /// [`crate::ModuleError::Serialize`].
    Serialize = 5,
    /// [`crate::ModuleError::ServiceUnavailable`].
    ServiceUnavailable = 6,
    /// [`crate::ModuleError::InvalidMethod`].
    InvalidMethod = 7,
    /// [`crate::ModuleError::ModuleNotFound`].
    ModuleNotFound = 8,
    /// [`crate::ModuleError::MaxCallDepthExceeded`].
    MaxCallDepthExceeded = 9,
    /// [`crate::ModuleError::Failed`].
    Failed = 10,
    /// [`crate::ModuleError::Abi`].
    Abi = 11,
}

impl Status {
    /// The status for a raw code, or `None` for a code this ABI does not define.
    pub const fn from_code(code: i32) -> Option<Status> {
        Some(match code {
            0 => Status::Ok,
            1 => Status::QuotaExceeded,
            2 => Status::CallFailed,
            3 => Status::Timeout,
            4 => Status::Panic,
            5 => Status::Serialize,
            6 => Status::ServiceUnavailable,
            7 => Status::InvalidMethod,
            8 => Status::ModuleNotFound,
            9 => Status::MaxCallDepthExceeded,
            10 => Status::Failed,
            11 => Status::Abi,
            _ => return None,
        })
    }
}

/// How a method's arguments or its result are encoded, as stored in [`MethodInfo`].
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Format {
    /// MessagePack. Arguments: the argument tuple as an array (`add(2, 3)` is `[2, 3]`),
    /// or a map keyed by parameter name; empty input means no arguments. Results: the
    /// value, structs as maps.
    MessagePack = 0,
    /// The bytes as they are: a method whose only argument is `String`, `Vec<u8>`,
    /// `&str` or `&[u8]`, or whose result is `String` or `Vec<u8>`.
    Raw = 1,
    /// One rkyv archive, read in place. Arguments: the archive of the parameters' tuple
    /// (`&Archived<T>` is `T`, `&[u8]` is `Vec<u8>`, `&str` is `String`), placed by the
    /// host in the call's arena, 16-aligned, validated by the module before use. Results:
    /// the archive of the value, in the call's arena.
    Archived = 2,
}

impl Format {
    /// The format for a raw tag, or `None` for a tag this ABI does not define.
    pub const fn from_u8(tag: u8) -> Option<Format> {
        match tag {
            0 => Some(Format::MessagePack),
            1 => Some(Format::Raw),
            2 => Some(Format::Archived),
            _ => None,
        }
    }

    /// Lower-case name, as `memlink inspect` prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Format::MessagePack => "msgpack",
            Format::Raw => "raw",
            Format::Archived => "archived",
        }
    }
}

/// A borrowed UTF-8 string crossing the boundary: pointer and length, no terminator.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// First byte; may dangle when `len` is 0.
    pub ptr: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl StrRef {
    /// Borrows `s` for as long as the pointer is used.
    pub const fn new(s: &str) -> StrRef {
        StrRef {
            ptr: s.as_ptr(),
            len: s.len(),
        }
    }

    /// Reads the string back.
    ///
    /// Returns `None` when the bytes are not UTF-8, or the pointer is null or the length
    /// over `isize::MAX` with a non-zero length.
    ///
    /// # Safety
    ///
    /// `ptr` must be valid for reads of `len` bytes for `'a`, and nothing may write
    /// those bytes during `'a`.
    pub unsafe fn as_str<'a>(self) -> Option<&'a str> {
        if self.len == 0 {
            return Some("");
        }
        if self.ptr.is_null() || isize::try_from(self.len).is_err() {
            return None;
        }
        // SAFETY: non-null, no longer than `isize::MAX`, and the caller guarantees `len`
        // readable, unchanging bytes for `'a`.
        let bytes = unsafe { core::slice::from_raw_parts(self.ptr, self.len) };
        core::str::from_utf8(bytes).ok()
    }
}

/// What a module says about itself. Returned by [`SYM_MODULE_INFO`]; lives in the
/// module's static memory and never changes.
#[repr(C)]
#[derive(Debug)]
pub struct ModuleInfo {
    /// Always [`MODULE_MAGIC`].
    pub magic: u64,
    /// The module's [`ABI_VERSION`].
    pub abi_version: u32,
    /// `size_of::<ModuleInfo>()` in the module.
    pub size: u32,
    /// The module's crate name.
    pub name: StrRef,
    /// The module's crate version.
    pub version: StrRef,
    /// The version of memlink-msdk the module was built with.
    pub sdk_version: StrRef,
    /// The method table, `method_count` entries, sorted by id.
    pub methods: *const MethodInfo,
    /// Number of entries in `methods`.
    pub method_count: usize,
    /// The rkyv format the module's archives use ([`crate::archive::format`]): host and
    /// module must agree to exchange archives.
    pub rkyv_format: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// `MethodInfo::flags` bit: the export is an `async fn`.
pub const METHOD_ASYNC: u32 = 1;

/// One row of the method table.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct MethodInfo {
    /// The exported name.
    pub name: StrRef,
    /// [`method_id`] of `name`.
    pub id: u32,
    /// Bit set of `METHOD_*` flags.
    pub flags: u32,
    /// A [`Format`] tag for the arguments.
    pub args_format: u8,
    /// A [`Format`] tag for the result.
    pub result_format: u8,
    /// Number of arguments after the context.
    pub arg_count: u16,
    /// Reserved, zero.
    pub reserved: u32,
    /// For archived arguments: the type the archive holds (the parameters' tuple), as
    /// `std::any::type_name` spells it; empty otherwise.
    pub args_type: StrRef,
    /// For archived arguments: [`crate::archive::fingerprint`] of that type; 0 otherwise.
    pub args_fingerprint: u64,
    /// For an archived result: the type the archive holds; empty otherwise.
    pub result_type: StrRef,
    /// For an archived result: its fingerprint; 0 otherwise.
    pub result_fingerprint: u64,
}

/// Passed to [`SYM_INIT`].
#[repr(C)]
#[derive(Debug)]
pub struct InitFrame {
    /// `size_of::<InitFrame>()` in the host.
    pub size: u32,
    /// The host's [`ABI_VERSION`].
    pub abi_version: u32,
    /// Services the host offers; valid until the module is shut down.
    pub host: *const HostApi,
    /// The most detailed [`level`] the host wants to receive: the module drops records
    /// above it without formatting them or calling the host.
    pub max_log_level: u32,
    /// Out: on failure, the module points this at a UTF-8 message in its own static
    /// memory.
    pub error: StrRef,
}

/// Services the host offers to a module, valid from `memlink_init` to
/// `memlink_shutdown`. Every function is thread-safe and may be called from any thread
/// that is inside a `memlink_call` of the frame it names.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    /// `size_of::<HostApi>()` in the host: a function lies within the struct only when its
    /// offset is below this.
    pub size: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Allocates `len` bytes of output for the call whose [`CallFrame::host_call`] is
    /// `call`, records it as that call's output and returns a pointer to write it
    /// through, aligned to 16. Null when the host cannot allocate. A second request
    /// replaces the first.
    pub alloc_output: unsafe extern "C" fn(call: *mut c_void, len: usize) -> *mut u8,
    /// Calls `request.method` of the module loaded under `request.module`, on behalf of
    /// the call `call`: the callee inherits its trace id, deadline and depth + 1. The
    /// result (status `Ok`) or error payload is handed to `request.sink` before this
    /// returns; the return value is the callee's [`Status`].
    pub call_module: unsafe extern "C" fn(call: *mut c_void, request: *mut NestedCall) -> i32,
    /// Delivers a log record. `call` is the running call's handle, or null for a record
    /// logged outside any call (from a module's own thread); the record and everything it
    /// points to are valid only during this function.
    pub log: unsafe extern "C" fn(call: *mut c_void, record: *const LogRecord),
    /// The host's load on the module of the call `call` now, in `[0, 1]`: 0 idle, 1
    /// saturated. Modules ask for it only when a frame's `backpressure` is
    /// [`BACKPRESSURE_ON_REQUEST`].
    pub backpressure: unsafe extern "C" fn(call: *mut c_void) -> f32,
}

/// Log levels as they cross the boundary; a record is sent only when its level is at
/// most [`InitFrame::max_log_level`].
pub mod level {
    /// Nothing is logged.
    pub const OFF: u32 = 0;
    /// Errors.
    pub const ERROR: u32 = 1;
    /// Warnings.
    pub const WARN: u32 = 2;
    /// Information.
    pub const INFO: u32 = 3;
    /// Debugging detail.
    pub const DEBUG: u32 = 4;
    /// Tracing detail.
    pub const TRACE: u32 = 5;
}

/// One structured log record, passed to [`HostApi::log`].
#[repr(C)]
#[derive(Debug)]
pub struct LogRecord {
    /// `size_of::<LogRecord>()` in the module.
    pub size: u32,
    /// One of the [`level`] constants (never `OFF`).
    pub level: u32,
    /// The module's name.
    pub module: StrRef,
    /// The export that was running, or empty outside a call.
    pub method: StrRef,
    /// The message.
    pub message: StrRef,
    /// `field_count` key/value pairs.
    pub fields: *const LogField,
    /// Number of entries in `fields`.
    pub field_count: usize,
    /// Trace id of the running call (0: none).
    pub trace_id: u64,
    /// Span id of the running call (0: none).
    pub span_id: u64,
}

/// A key/value pair of a [`LogRecord`].
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct LogField {
    /// The key.
    pub key: StrRef,
    /// The value.
    pub value: StrRef,
}

/// A module-to-module call, passed to [`HostApi::call_module`].
#[repr(C)]
#[derive(Debug)]
pub struct NestedCall {
    /// `size_of::<NestedCall>()` in the module.
    pub size: u32,
    /// Bit set of `NESTED_*` flags.
    pub flags: u32,
    /// Name of the module to call.
    pub module: StrRef,
    /// Name of the method to call.
    pub method: StrRef,
    /// The encoded arguments, valid for the duration of the call.
    pub args: *const u8,
    /// Length of `args` in bytes.
    pub args_len: usize,
    /// Receives the callee's output, once, before `call_module` returns. The bytes are
    /// valid only during the call to `sink`.
    pub sink: unsafe extern "C" fn(sink_ctx: *mut c_void, ptr: *const u8, len: usize),
    /// Passed back to `sink`.
    pub sink_ctx: *mut c_void,
    /// Out: the callee's result [`Format`] tag, set by the host before `sink` runs.
    pub result_format: u8,
}

/// `NestedCall::flags` bit: `args` are MessagePack of a typed value; the host converts
/// them to the callee's argument format (see `serialize::convert_args`).
pub const NESTED_TYPED: u32 = 1;

/// Everything one call carries, in and out. The host owns it; the module reads the
/// inputs and writes `out`/`out_len` before it returns.
#[repr(C)]
#[derive(Debug)]
pub struct CallFrame {
    /// `size_of::<CallFrame>()` in the host.
    pub size: u32,
    /// Position of the method in the module's table, as the host resolved it at load.
    pub method_index: u32,
    /// The method id; must equal the id at `method_index`.
    pub method_id: u32,
    /// Nesting depth: 0 for a call from the host, one more for each module-to-module hop.
    pub depth: u32,
    /// The encoded arguments; the host keeps them alive and unchanged for the call.
    pub args: *const u8,
    /// Length of `args` in bytes.
    pub args_len: usize,
    /// Scratch memory for the call, owned by the host, aligned to 16, not touched by
    /// anyone else during the call. May be null when `arena_len` is 0.
    pub arena: *mut u8,
    /// Length of `arena` in bytes.
    pub arena_len: usize,
    /// Trace id of the request the call belongs to (0: none).
    pub trace_id: u64,
    /// Span id of the caller (0: none).
    pub span_id: u64,
    /// Time left for the call in nanoseconds, measured when the host dispatched it.
    /// [`NO_DEADLINE`] when there is none.
    pub timeout_ns: u64,
    /// The host's load on this module at dispatch, in `[0, 1]`, or
    /// [`BACKPRESSURE_ON_REQUEST`]: the module asks [`HostApi::backpressure`] if and when
    /// it needs the figure (a host whose load is costly to gather for every call sends
    /// this).
    pub backpressure: f32,
    /// Reserved, zero.
    pub flags: u32,
    /// The host's services.
    pub host: *const HostApi,
    /// The host's handle for this call, passed back to every [`HostApi`] function.
    pub host_call: *mut c_void,
    /// The module's persistent region: memory that outlives calls, shared by all calls
    /// into this load of the module. It starts with a [`PersistentHeader`]; null when the
    /// host gives none. Aligned to 64.
    pub persistent: *mut u8,
    /// Length of `persistent` in bytes, header included.
    pub persistent_len: usize,
    /// Out: the result (status `Ok`) or the error payload (any other status).
    ///
    /// It points into `arena` or into a buffer from [`HostApi::alloc_output`]; the module
    /// never points it at its own memory. A result in the arena stays there: the host
    /// reads it in place and reuses the arena only after it is done with the result. Error payloads are the error's message in
    /// UTF-8, except for `Timeout`, whose payload is 8 bytes: nanoseconds, `u64` LE.
    pub out: *const u8,
    /// Out: length of `out` in bytes.
    pub out_len: usize,
    /// Out: bytes of the arena the call used (its high-water mark).
    pub arena_used: usize,
}

/// The start of a persistent region (see [`CallFrame::persistent`]). The host zeroes the
/// region and sets `generation` once, when it loads the module, and never writes it
/// again; modules allocate from it by bumping `used` atomically.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct PersistentHeader {
    /// Different for every region the host ever makes: a reference into an older region
    /// (kept in a module's statics across a reload) is recognised as stale.
    pub generation: u64,
    /// Bytes allocated so far, counted from the start of the region (header included).
    pub used: core::sync::atomic::AtomicU64,
}

/// [`CallFrame::backpressure`] when the module is to ask [`HostApi::backpressure`].
pub const BACKPRESSURE_ON_REQUEST: f32 = f32::NAN;

/// [`CallFrame::timeout_ns`] for a call without a deadline.
pub const NO_DEADLINE: u64 = u64::MAX;

// Safety of the raw pointers above is a property of the protocol, not of the types:
// nothing here is `Send` or `Sync` by accident, and both sides build these structs only
// on the stack of the thread that makes the call.
