//! Module log records, delivered to the host's `tracing` subscriber.

use core::ffi::c_void;
use std::panic::{self, AssertUnwindSafe};

use memlink_msdk::abi::{level, LogField, LogRecord, StrRef};
use tracing::level_filters::LevelFilter;

/// The most detailed level the current subscriber wants, as the module's filter.
pub(crate) fn max_level() -> u32 {
    match LevelFilter::current().into_level() {
        None => level::OFF,
        Some(tracing::Level::ERROR) => level::ERROR,
        Some(tracing::Level::WARN) => level::WARN,
        Some(tracing::Level::INFO) => level::INFO,
        Some(tracing::Level::DEBUG) => level::DEBUG,
        Some(tracing::Level::TRACE) => level::TRACE,
    }
}

/// `HostApi::log`.
///
/// # Safety
///
/// `record` must point to a valid [`LogRecord`] whose strings and fields are valid for
/// the duration of this call.
pub(crate) unsafe extern "C" fn host_log(_call: *mut c_void, record: *const LogRecord) {
    // A subscriber that panics must not unwind into the module.
    let _ = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller's contract.
        if let Some(record) = unsafe { record.as_ref() } {
            // SAFETY: the caller's contract covers the record's strings and fields.
            unsafe { emit(record) };
        }
    }));
}

/// # Safety
///
/// As for [`host_log`].
unsafe fn emit(record: &LogRecord) {
    // SAFETY: valid for this call (the caller's contract).
    let text = |s: StrRef| unsafe { s.as_str() }.unwrap_or("<not UTF-8>");
    let pairs: &[LogField] = if record.field_count == 0 || record.fields.is_null() {
        &[]
    } else {
        // SAFETY: `field_count` valid fields (the caller's contract).
        unsafe { std::slice::from_raw_parts(record.fields, record.field_count) }
    };
    let fields: Vec<String> = pairs
        .iter()
        .map(|f| format!("{}={}", text(f.key), text(f.value)))
        .collect();
    let fields = fields.join(" ");
    let (module, method, message) = (
        text(record.module),
        text(record.method),
        text(record.message),
    );
    let (trace_id, span_id) = (record.trace_id, record.span_id);
    macro_rules! event {
        ($lvl:expr) => {
            tracing::event!(target: "memlink::module", $lvl, module, method, trace_id, span_id, fields = %fields, "{message}")
        };
    }
    match record.level {
        level::ERROR => event!(tracing::Level::ERROR),
        level::WARN => event!(tracing::Level::WARN),
        level::INFO => event!(tracing::Level::INFO),
        level::DEBUG => event!(tracing::Level::DEBUG),
        _ => event!(tracing::Level::TRACE),
    }
}
