//! # memlink-abi
//!
//! The memlink ABI, written once: everything that crosses the boundary between a host
//! and a module. A host (`memlink-runtime`, or a host in C) and a module (built with
//! `memlink-msdk`, or written in C) agree on these `#[repr(C)]` structs, the codes in
//! them and the rules around them, and on nothing else. `include/memlink.h` in the
//! repository is generated from this crate for C; `docs/abi.md` describes the same
//! contract in prose, with the reasons behind each choice.
//!
//! # The entry points
//!
//! A module exports these symbols ([`symbols`]):
//!
//! | symbol | signature | when |
//! |---|---|---|
//! | `memlink_abi_version` | `extern "C" fn() -> u32` | first: the host reads it before it trusts any struct |
//! | `memlink_module_info` | `extern "C" fn() -> *const ModuleInfo` | after the version matched |
//! | `memlink_init` | `extern "C" fn(*mut InitFrame) -> i32` | once, before the first call |
//! | `memlink_call` | `extern "C" fn(*mut CallFrame) -> i32` | once per call, from any number of threads at once |
//! | `memlink_shutdown` | `extern "C" fn() -> i32` | once, when the host retires the module |
//! | `memlink_metrics` (optional) | [`MetricsFn`] | when the host takes a snapshot of the module's metrics |
//! | `memlink_panic_strategy` (optional) | [`PanicStrategyFn`] | at load: whether a panic in the module fails its call or ends the process |
//!
//! Every `i32` returned is a [`Status`]. A module never unwinds out of an entry point.
//!
//! # Thread safety
//!
//! `memlink_call` may run on many host threads at once and re-entrantly on one thread
//! (a module calling itself through the host). Each concurrent call gets its own frame
//! and its own arena; the method table never changes after `memlink_module_info`
//! first returns it. Every [`HostApi`] function is thread-safe.
//!
//! # Extending
//!
//! [`HostApi`], the frames and the records carry their own size, so a later minor
//! version may append fields: a reader checks the size before it touches a field that
//! was added later. Any other change bumps [`ABI_VERSION`], and a host refuses a module
//! whose version differs from its own.
//!
//! # The pieces
//!
//! - [`symbols`]: the version, the symbol names and the entry points' signatures;
//! - [`text`]: [`StrRef`], a borrowed UTF-8 string;
//! - [`status`]: [`Status`], what every entry point returns;
//! - [`mod@format`]: [`Format`], how a method's arguments and result are encoded;
//! - [`module_info`]: [`ModuleInfo`] and the method table, [`method_id`];
//! - [`frames`]: [`InitFrame`], [`CallFrame`] and the persistent region's header;
//! - [`host`]: [`HostApi`], the services a host offers, with their requests and records;
//! - [`metrics`]: a module's own metrics as the host reads them, histogram bounds;
//! - [`error`]: [`ModuleError`], the error a status and its payload stand for;
//! - `archive` (feature `rkyv`): the rkyv format record, type fingerprints, and
//!   in-place validation of archived values;
//! - `msgpack` (feature `msgpack`): MessagePack as both Rust sides encode it;
//! - [`spill`]: [`Encoded`], an encoding written once into a buffer, or past it onto
//!   the heap.

#![warn(missing_docs)]

#[cfg(feature = "rkyv")]
pub mod archive;
pub mod error;
pub mod format;
pub mod frames;
pub mod host;
pub mod metrics;
pub mod module_info;
#[cfg(feature = "msgpack")]
pub mod msgpack;
pub mod spill;
pub mod status;
pub mod symbols;
pub mod text;

pub use error::ModuleError;
pub use format::Format;
pub use frames::{
    CallFrame, InitFrame, PersistentHeader, CALL_BACKPRESSURE_ON_REQUEST, NO_DEADLINE,
    SMALL_OUT_LEN,
};
pub use host::{
    level, HostApi, LogField, LogRecord, NestedCall, NestedSink, NESTED_NOT_RAW, NESTED_TYPED,
};
pub use metrics::{
    MetricRecord, MetricValue, BUCKETS, METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM,
};
pub use module_info::{
    method_id, MethodCall, MethodCallFn, MethodInfo, ModuleInfo, METHOD_ASYNC, METHOD_PURE,
};
pub use spill::{Encoded, Spilling};
pub use status::Status;
pub use symbols::*;
pub use text::StrRef;
