//! The ABI's version, the symbols a module exports and their signatures.

use core::ffi::c_void;

use crate::frames::{CallFrame, InitFrame};
use crate::metrics::MetricRecord;
use crate::module_info::ModuleInfo;

/// Version of this ABI. Host and module must agree exactly.
///
/// Version 2 carries the host's "ask for backpressure" request as a flag bit of
/// [`CallFrame::flags`] where version 1 sent a NaN. Version 3 adds each method's
/// signature to the method table ([`MethodInfo::signature`]). Version 4 has the host keep
/// the running call ([`HostApi::running_call`]) and lets a module give each method an
/// entry point of its own ([`ModuleInfo::method_calls`]). Version 5 has the host set a
/// nested call's [`NestedCall::result_format`] only when the call succeeds, before its
/// sink runs, so that the sink tells a result from an error's payload. Version 6 adds
/// [`CallFrame::small_out`], where a module may put a result of at most 16 bytes.
///
/// [`CallFrame::small_out`]: crate::CallFrame::small_out
/// [`NestedCall::result_format`]: crate::NestedCall::result_format
/// [`MethodInfo::signature`]: crate::MethodInfo::signature
/// [`HostApi::running_call`]: crate::HostApi::running_call
/// [`ModuleInfo::method_calls`]: crate::ModuleInfo::method_calls
pub const ABI_VERSION: u32 = 6;

/// `b"MEMLINK\0"` read as a little-endian `u64`: the first field of [`ModuleInfo`]
/// (written as a literal so that C sees it too).
pub const MODULE_MAGIC: u64 = 0x004b_4e49_4c4d_454d;

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
/// Symbol of [`PanicStrategyFn`] (optional): how a panic in the module ends,
/// [`PANIC_UNWIND`] or [`PANIC_ABORT`] (`MEMLINK_PANIC_UNWIND`, `MEMLINK_PANIC_ABORT` in
/// C).
pub const SYM_PANIC_STRATEGY: &[u8] = b"memlink_panic_strategy\0";

/// What `memlink_panic_strategy` returns for a module built to unwind (Rust's default,
/// `panic = "unwind"`): a panic in it is caught at its entry point and fails the call
/// with the status `Panic`.
pub const PANIC_UNWIND: u32 = 0;
/// What `memlink_panic_strategy` returns for a module built with `panic = "abort"`: a
/// panic in it ends the process that loaded it, host and all, since nothing unwinds to
/// the entry point that would catch it.
pub const PANIC_ABORT: u32 = 1;

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
/// Signature behind [`SYM_PANIC_STRATEGY`] (`memlink_panic_strategy`):
/// [`PANIC_UNWIND`] or [`PANIC_ABORT`] (`MEMLINK_PANIC_UNWIND`, `MEMLINK_PANIC_ABORT` in
/// C; any other value is read as not known). A module in C need not export it (a host
/// reads its absence as not known); one in C++ whose exceptions could escape an entry
/// point, which ends the process as a panic that cannot unwind does, may return
/// `MEMLINK_PANIC_ABORT`.
pub type PanicStrategyFn = unsafe extern "C" fn() -> u32;
/// Signature behind [`SYM_METRICS`]: calls `visit(ctx, record)` once per metric the
/// module recorded; each record is valid only during its `visit`.
pub type MetricsFn = unsafe extern "C" fn(
    visit: unsafe extern "C" fn(ctx: *mut c_void, record: *const MetricRecord),
    ctx: *mut c_void,
) -> i32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_magic_is_memlink_in_ascii() {
        assert_eq!(MODULE_MAGIC.to_le_bytes(), *b"MEMLINK\0");
    }
}
