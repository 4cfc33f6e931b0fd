//! The services a host offers a module, and what the module hands them.

use core::ffi::c_void;

use crate::text::StrRef;

/// Services the host offers to a module, valid from `memlink_init` until the image's
/// last `memlink_shutdown` (see [`InitFrame::host`](crate::InitFrame::host)). Every
/// function is thread-safe and may be called from any thread, a module's own included:
/// what a function does for a call it does only on the thread running that call (a
/// thread of the module's own passes a null handle, or has its handle taken as null).
///
/// A call handle ([`CallFrame::host_call`](crate::CallFrame::host_call)) is valid while
/// its call runs, on the thread that runs it: memlink's runtime takes any other handle
/// (one a module kept past its call, or passed to another thread) as null.
///
/// A host fills every function but `running_call`, which alone may be null: a module
/// calls the others without checking them (in Rust they are function pointers, which
/// cannot be null), so a host that leaves one null crashes the module's process when
/// it is called. A host without a service fills it with a function that refuses it: an
/// `alloc_output` that returns null, a `log` that drops the record.
#[repr(C)]
#[derive(Debug)]
pub struct HostApi {
    /// `size_of::<HostApi>()` in the host: a function lies within the struct only when its
    /// offset is below this.
    pub size: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// Allocates `len` bytes of output for the call whose
    /// [`CallFrame::host_call`](crate::CallFrame::host_call) is
    /// `call`, records it as that call's output and returns a pointer to write it
    /// through, aligned to 16. Null when the host cannot allocate. A second request
    /// replaces the first, which the host frees at once: the module must not write
    /// through the first pointer again.
    pub alloc_output: unsafe extern "C" fn(call: *mut c_void, len: usize) -> *mut u8,
    /// Calls `request.method` of the module loaded under `request.module`, on behalf of
    /// the call `call`: the callee inherits its trace id, deadline and depth + 1. The
    /// result (status `Ok`) or error payload is handed to `request.sink` before this
    /// returns; the return value is the callee's [`Status`](crate::Status) when the
    /// call was made, else the host's reason it was not (`ModuleNotFound`,
    /// `InvalidMethod`, `CallFailed`, `MaxCallDepthExceeded`, `Timeout` for a deadline
    /// that passed before it started or while it waited for a slot, `Serialize` for
    /// [`NESTED_TYPED`] arguments the callee's format cannot take,
    /// or `Abi` for a request it cannot read), whose payload goes to the sink as well
    /// (but for a request too small or without a sink, which gets the status alone). A
    /// call made from a sink, while it is given a nested call's output, is one level
    /// deeper than that nested call; one made from the sink given a refusal for the
    /// depth limit is refused with `MaxCallDepthExceeded`, its own sink not called.
    pub call_module: unsafe extern "C" fn(call: *mut c_void, request: *mut NestedCall) -> i32,
    /// Delivers a log record. `call` is the running call's handle, or null for a record
    /// logged outside any call (from a module's own thread); the record and everything it
    /// points to are valid only during this function.
    pub log: unsafe extern "C" fn(call: *mut c_void, record: *const LogRecord),
    /// The host's load on the module of the call `call` now, in `[0, 1]`: 0 idle, 1
    /// saturated. Modules ask for it only when a frame's `flags` has
    /// [`CALL_BACKPRESSURE_ON_REQUEST`](crate::CALL_BACKPRESSURE_ON_REQUEST). `call` may
    /// be null (0 then).
    pub backpressure: unsafe extern "C" fn(call: *mut c_void) -> f32,
    /// The [`CallFrame`](crate::CallFrame) of the innermost call this host is running on
    /// the calling thread (the frame it passed to a module's `memlink_call` or to a
    /// method's own entry point, which has not returned; untyped here because the frame
    /// names this table), or null
    /// when it runs none there. The module's boundary keeps no record of the running
    /// call: what logs and panics outside the export's own code need of it (the export,
    /// the trace, the host's handle) is asked for here, and only when they need it.
    ///
    /// Null when the host keeps no running call: the module's log records then carry no
    /// export or trace, and its panics keep their message but not their location.
    ///
    /// Thread safety: answers for the calling thread only, from any thread. The frame
    /// stays valid until the call it belongs to returns; a module reads from it only the
    /// fields the host wrote (`host`, `host_call`, the method and the trace) and only
    /// while that call runs below it on the same thread.
    pub running_call: Option<unsafe extern "C" fn() -> *mut c_void>,
}

/// Log levels as they cross the boundary; a record is sent only when its level is at
/// most [`InitFrame::max_log_level`](crate::InitFrame::max_log_level).
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
#[derive(Debug, Clone, Copy)]
pub struct LogRecord {
    /// `size_of::<LogRecord>()` in the module.
    pub size: u32,
    /// One of the [`level`] constants (never `OFF`).
    pub level: u32,
    /// The module's name.
    pub module: StrRef,
    /// The export that was running, or empty outside a call. (Given one empty with the
    /// handle of a call the thread runs, memlink's runtime names that call's export
    /// itself.)
    pub method: StrRef,
    /// The message.
    pub message: StrRef,
    /// `field_count` key/value pairs.
    pub fields: *const LogField,
    /// Number of entries in `fields`.
    pub field_count: usize,
    /// Trace id of the running call (0: none). (Given 0 with a span id of 0 and the
    /// call's handle, memlink's runtime takes the call's trace.)
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
    /// Receives the callee's output (or its error's payload), once, before
    /// `call_module` returns. The bytes are valid only during the call to `sink`. Not
    /// null: a request without a sink is refused with [`Status::Abi`](crate::Status)
    /// and nothing else.
    pub sink: NestedSink,
    /// Passed back to `sink`.
    pub sink_ctx: *mut c_void,
    /// Out: the callee's result [`Format`](crate::Format) tag, set by the host before
    /// `sink` runs when the call succeeds; left as it was when it fails.
    pub result_format: u8,
}

/// The type of [`NestedCall::sink`]: receives `len` bytes at `ptr` (valid only during the
/// call), with the request's `sink_ctx`.
pub type NestedSink = unsafe extern "C" fn(sink_ctx: *mut c_void, ptr: *const u8, len: usize);

/// `NestedCall::flags` bit: `args` are MessagePack of a typed value; the host converts
/// them to the callee's argument format (see `msgpack::nested_args`).
pub const NESTED_TYPED: u32 = 1;

/// `NestedCall::flags` bit, with [`NESTED_TYPED`]: the typed value is not one a raw
/// argument is made of (a string or bytes, alone or in a tuple of one), as its
/// `Serialize` said before it was encoded (`msgpack::typed_nested_flags`). The host
/// refuses it for a callee that takes raw arguments with `Serialize`.
///
/// Why it is needed: encoded, MessagePack cannot tell a tuple of small integers,
/// `(2u32, 3u32)`, from the bytes `[2, 3]`, and without the bit a host reads the array
/// as bytes. A module that leaves it clear (one built before it, or a C module that
/// does not set it) has its arguments read from the bytes alone: a string or byte
/// string, or an array of integers in `0..=255`, each alone or in an array of one, or
/// an array of one such integer (that one byte), is taken as the raw argument.
pub const NESTED_NOT_RAW: u32 = 2;
