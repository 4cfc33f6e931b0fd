//! Structured logging that reaches the host.
//!
//! ```
//! use memlink_msdk::log::info;
//! info("Processing request", &[("user", "alice")]);
//! ```
//!
//! A record carries its level, message and fields; the host adds nothing it cannot see
//! itself, and the module adds its name, the running export and the call's trace and
//! span ids. The host announces its level filter at `memlink_init`: a record above it
//! costs one atomic load and a comparison, and never calls the host. Outside a module
//! loaded by a host (unit tests), records go nowhere.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::abi::{level, LogField, LogRecord, StrRef};
use crate::current;

static MAX_LEVEL: AtomicU32 = AtomicU32::new(level::OFF);

/// Lets records through up to the host's level filter (at `memlink_init`); the hosts
/// themselves are `crate::current`'s. Hosts that share the image (two runtimes loading
/// one file) each init it: the most verbose of their levels is kept, not the last one
/// (which would silence a host that asked for more), and each host drops the records
/// past its own level.
pub(crate) fn connect(max_level: u32) {
    MAX_LEVEL.fetch_max(max_level.min(level::TRACE), Ordering::AcqRel);
}

/// Turns logging off (at the image's last `memlink_shutdown`).
pub(crate) fn disconnect() {
    MAX_LEVEL.store(level::OFF, Ordering::Release);
}

/// Whether a record at `lvl` would reach the host.
pub fn enabled(lvl: u32) -> bool {
    lvl != level::OFF && lvl <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Logs `message` with `fields` at `lvl` (one of [`crate::abi::level`]).
pub fn log(lvl: u32, message: &str, fields: &[(&str, &str)]) {
    if !enabled(lvl) {
        return;
    }
    current::with_current_call(|current| {
        // The host whose call is running; outside a host's call (a module's own thread,
        // or `panic::isolate`), the host that initialized the module.
        let host = match current.map(|c| c.host()) {
            Some(h) if !h.is_null() => h,
            _ => current::latest_host(),
        };
        if host.is_null() {
            return;
        }
        let fields: Vec<LogField> = fields
            .iter()
            .map(|(k, v)| LogField {
                key: StrRef::new(k),
                value: StrRef::new(v),
            })
            .collect();
        let (trace_id, span_id) = current.map_or((0, 0), |c| c.trace());
        let record = LogRecord {
            size: size_of::<LogRecord>() as u32,
            level: lvl,
            module: StrRef::new(current.map_or_else(crate::dispatch::module_name, |c| c.module())),
            method: StrRef::new(current.map_or("", |c| c.method())),
            message: StrRef::new(message),
            fields: fields.as_ptr(),
            field_count: fields.len(),
            trace_id,
            span_id,
        };
        let call = current.map_or(core::ptr::null_mut(), |c| c.host_call());
        // SAFETY: inside a call, `host` is the connected host that answered for the
        // running call (valid until the image's last shutdown and while the module's
        // threads may log: `current::connect`); outside, the host that initialized the
        // image last, valid as long. `call` is this thread's running call or null, as
        // `log` allows; the record and its fields outlive the call.
        unsafe { ((*host).log)(call, &record) };
    });
}

/// Logs at error level.
pub fn error(message: &str, fields: &[(&str, &str)]) {
    log(level::ERROR, message, fields);
}

/// Logs at warn level.
pub fn warn(message: &str, fields: &[(&str, &str)]) {
    log(level::WARN, message, fields);
}

/// Logs at info level.
pub fn info(message: &str, fields: &[(&str, &str)]) {
    log(level::INFO, message, fields);
}

/// Logs at debug level.
pub fn debug(message: &str, fields: &[(&str, &str)]) {
    log(level::DEBUG, message, fields);
}

/// Logs at trace level.
pub fn trace(message: &str, fields: &[(&str, &str)]) {
    log(level::TRACE, message, fields);
}

/// Logs a formatted message at `level` (one of [`crate::abi::level`]); the arguments are
/// not even formatted when the host does not want that level.
///
/// ```
/// memlink_msdk::log!(memlink_msdk::abi::level::INFO, "loaded {} rows", 12);
/// ```
#[macro_export]
macro_rules! log {
    // The level is bound once: an expression given for it runs once, as a function's
    // argument would, not once to test it and again to log with it.
    ($level:expr, $($arg:tt)+) => {{
        let level: u32 = $level;
        if $crate::log::enabled(level) {
            $crate::log::log(level, &::std::format!($($arg)+), &[]);
        }
    }};
}

/// `log!` at error level: `memlink_msdk::error!("failed: {e}")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::abi::level::ERROR, $($arg)+) };
}

/// `log!` at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::abi::level::WARN, $($arg)+) };
}

/// `log!` at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log!($crate::abi::level::INFO, $($arg)+) };
}

/// `log!` at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log!($crate::abi::level::DEBUG, $($arg)+) };
}

/// `log!` at trace level.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log!($crate::abi::level::TRACE, $($arg)+) };
}
