//! Module log records, delivered to the host's `tracing` subscriber and to a
//! [`LogSink`] if the host installed one.

use std::fmt;

use memlink_abi::{level, LogField, LogRecord, StrRef};
use tracing::level_filters::LevelFilter;

/// A module log record, as a [`LogSink`] receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogEvent<'a> {
    /// The record's level.
    pub level: tracing::Level,
    /// The module's name.
    pub module: &'a str,
    /// The export that was running (empty outside a call).
    pub method: &'a str,
    /// The message.
    pub message: &'a str,
    /// Key/value fields, in order.
    pub fields: Vec<(&'a str, &'a str)>,
    /// Trace id of the call (0: none).
    pub trace_id: u64,
    /// Span id of the call (0: none).
    pub span_id: u64,
}

/// Receives module log records, beside the `tracing` events the runtime emits.
///
/// A sink runs on the thread of the call that logs, inside that call: keep it short, and
/// an unload or a reload of a module from it is refused while the call runs (it would
/// wait for the very call it runs in).
///
/// A call it makes through the runtime, this one or another, is part of the logging
/// call's chain, one level deeper (when the record comes from the call's own thread): it
/// ends by the logging call's deadline if that comes first, carries its trace unless the
/// call's options carry one, and a sink whose calls log, and so call again, stops at
/// `max_call_depth`, sinks of two runtimes calling each other's modules included. A
/// call to the module that logs re-enters it without waiting for a slot, through this
/// runtime or back through another runtime's sink. The record
/// of a caught panic comes once the call is over: the sink's calls then go one level
/// deeper and carry its trace, not its deadline, and the module may not be unloaded or
/// reloaded from there. A panic of the sink goes no further than its own delivery of the
/// record: the call goes on, and the record still reaches `tracing`. A slow sink slows
/// the call that logs: its time is the call's.
///
/// It gets the records up to `RuntimeConfig::log_level`; without one, up to what the
/// `tracing` subscriber installed when the module was loaded enables (none at all
/// without a subscriber). Messages and field values arrive whole, never truncated.
pub trait LogSink: Send + Sync {
    /// One record.
    fn record(&self, event: &LogEvent<'_>);
}

/// The module's filter: the configured level, else what the installed subscriber wants.
pub(crate) fn max_level(configured: Option<tracing::Level>) -> u32 {
    let level = match configured {
        Some(level) => Some(level),
        None => LevelFilter::current().into_level(),
    };
    match level {
        None => level::OFF,
        Some(tracing::Level::ERROR) => level::ERROR,
        Some(tracing::Level::WARN) => level::WARN,
        Some(tracing::Level::INFO) => level::INFO,
        Some(tracing::Level::DEBUG) => level::DEBUG,
        Some(tracing::Level::TRACE) => level::TRACE,
    }
}

/// Logs a caught panic at error level, with the module and the export (`source`), the
/// message (which carries the panic's location) and the call's trace and span ids,
/// under the target `memlink::panic`: a host that already reports the failed call can
/// filter these out.
///
/// Out of line: a panic is rare, and its record's `catch_unwind`, inlined into the paths
/// that call this, made the compiler lay the call by name out anew, 10 ns slower a call
/// with the same instructions (`report`, `export_noargs_by_name_ns`).
#[cold]
#[inline(never)]
pub(crate) fn panicked(
    (module, method): (&str, &str),
    message: &str,
    (trace_id, span_id): (u64, u64),
    sink: Option<&dyn LogSink>,
) {
    // A sink or subscriber that panics goes no further, as from any other record: this
    // runs inside the call, before the call's breaker hears how it went, and unwinding
    // from here left a trial call's breaker half-open for good. Each is shielded on its
    // own (`apart`): a subscriber that panics does not cost the sink the record.
    apart(|| {
        let message = OneLine(message);
        tracing::error!(target: "memlink::panic", module, method, trace_id, span_id, "panicked: {message}");
    });
    if let Some(sink) = sink {
        let text = format!("panicked: {message}");
        to_sink(
            sink,
            &LogEvent {
                level: tracing::Level::ERROR,
                module,
                method,
                message: &text,
                fields: Vec::new(),
                trace_id,
                span_id,
            },
        );
    }
}

/// Where records of no call go besides `tracing`, in a process that asked for them: the
/// daemon's worker, whose own log leaves module records to the daemon, so that a record
/// a module makes outside its calls (from `memlink_init`, or a thread of its own) would
/// otherwise reach no log at all.
#[cfg(feature = "daemon")]
static OF_NO_CALL: std::sync::OnceLock<Box<dyn LogSink>> = std::sync::OnceLock::new();

/// Sends the records of no call, of every runtime in this process, to `sink` too (the
/// first sink given keeps them).
#[cfg(feature = "daemon")]
pub(crate) fn send_records_of_no_call_to(sink: Box<dyn LogSink>) {
    let _ = OF_NO_CALL.set(sink);
}

/// Runs `f`, and stops a panic of it here.
fn apart(f: impl FnOnce()) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
}

/// Gives `event` to the host's sink; a panic of the sink ends there. Without this, a
/// sink that panicked on a record took the record's `tracing` event with it (the
/// event is sent after the sink), and so hid it from the host's own logs.
fn to_sink(sink: &dyn LogSink, event: &LogEvent<'_>) {
    apart(|| sink.record(event));
}

/// Delivers `record` to the sink and to `tracing`, under the name `name` the host knows
/// the module by (it may have been loaded under another), else the record's own; a
/// record whose level is no level is dropped.
///
/// # Safety
///
/// The record's strings and fields must be valid for the duration of this call.
pub(crate) unsafe fn emit(record: &LogRecord, name: Option<&str>, sink: Option<&dyn LogSink>) {
    // SAFETY: valid for this call (the caller's contract). A string that cannot be read
    // (null with a length, or a length past `isize::MAX`) says so, apart from one that is
    // not UTF-8.
    let text = |s: StrRef| match unsafe { s.as_bytes() } {
        Some(bytes) => memlink_abi::text::utf8(bytes).unwrap_or("<not UTF-8>"),
        None => "<unreadable: null or too long for its length>",
    };
    let pairs: &[LogField] = if record.field_count == 0
        || record.fields.is_null()
        || record.field_count > isize::MAX as usize / size_of::<LogField>()
    {
        &[]
    } else {
        // SAFETY: `field_count` valid fields (the caller's contract).
        unsafe { std::slice::from_raw_parts(record.fields, record.field_count) }
    };
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|f| (text(f.key), text(f.value))).collect();
    let fields = one_line_fields(pairs.iter().copied());
    let (module, method, message) = (
        name.unwrap_or_else(|| text(record.module)),
        text(record.method),
        text(record.message),
    );
    let (trace_id, span_id) = (record.trace_id, record.span_id);
    let Some(level) = level_of(record.level) else {
        return;
    };
    // No name: the record is of no call (the host names the module of a call).
    #[cfg(feature = "daemon")]
    let sink = sink.or_else(|| OF_NO_CALL.get().filter(|_| name.is_none()).map(|s| &**s));
    if let Some(sink) = sink {
        let event = LogEvent {
            level,
            module,
            method,
            message,
            fields: pairs,
            trace_id,
            span_id,
        };
        to_sink(sink, &event);
    }
    macro_rules! event {
        ($lvl:expr) => {
            tracing::event!(target: "memlink::module", $lvl, module, method, trace_id, span_id, fields = %fields, "{}", OneLine(message))
        };
    }
    match level {
        tracing::Level::ERROR => event!(tracing::Level::ERROR),
        tracing::Level::WARN => event!(tracing::Level::WARN),
        tracing::Level::INFO => event!(tracing::Level::INFO),
        tracing::Level::DEBUG => event!(tracing::Level::DEBUG),
        tracing::Level::TRACE => event!(tracing::Level::TRACE),
    }
}

/// The level a record's `level` field names; `None` for `OFF` (never a record's) and a
/// number that is no level, whose records are dropped.
pub(crate) fn level_of(level: u32) -> Option<tracing::Level> {
    Some(match level {
        level::ERROR => tracing::Level::ERROR,
        level::WARN => tracing::Level::WARN,
        level::INFO => tracing::Level::INFO,
        level::DEBUG => tracing::Level::DEBUG,
        level::TRACE => tracing::Level::TRACE,
        _ => return None,
    })
}

/// Which kinds of records the host said it skipped, once each, for one version of a
/// module (`crate::module::Module::told`): a module that writes them wrong writes many.
#[derive(Debug, Default)]
pub(crate) struct Told {
    log: std::sync::atomic::AtomicBool,
    metric: std::sync::atomic::AtomicBool,
}

impl Told {
    /// Says, once for `module`, that its log record was skipped for `why`.
    pub(crate) fn log_skipped(&self, module: &str, why: &str) {
        if !self.log.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(target: "memlink::host", module, "a log record of the module was skipped: {why} (said once)");
        }
    }

    /// Says, once for `module`, that its metric record was skipped for `why`.
    pub(crate) fn metric_skipped(&self, module: &str, why: &str) {
        if !self.metric.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(target: "memlink::host", module, "a metric record of the module was skipped: {why} (said once)");
        }
    }
}

/// Text for a line of a log or a terminal: a control character (a newline, a carriage
/// return, the escape that starts a terminal's control sequence), a Unicode line or
/// paragraph separator or a bidirectional override is written escaped, as `\n`,
/// `\u{1b}` or `\u{2028}`. A record's text is the module's to choose, and often its caller's:
/// written as it is, a newline in it ended the record's line and forged the next. The
/// runtime writes module records so; a host printing a module's text (an error's
/// message) can too.
///
/// ```
/// use memlink_runtime::log::OneLine;
///
/// assert_eq!(OneLine("a\nb\u{1b}[2J").to_string(), "a\\nb\\u{1b}[2J");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct OneLine<'a>(pub &'a str);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some((at, c)) = rest.char_indices().find(|&(_, c)| escaped(c)) {
            f.write_str(&rest[..at])?;
            write!(f, "{}", c.escape_default())?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Whether [`OneLine`] writes `c` escaped: a control character, a line or paragraph
/// separator (U+2028, U+2029: not control characters, but JSON readers, log viewers and
/// `str.splitlines` end a line at them), or a bidirectional override, embedding or
/// isolate (U+202A to U+202E, U+2066 to U+2069: they reorder what a terminal shows of
/// the rest of the line, so a record could read as another).
fn escaped(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A record's fields as one line of `key=value` pairs, each written as [`OneLine`].
pub(crate) fn one_line_fields<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let fields: Vec<String> = pairs
        .map(|(k, v)| format!("{}={}", OneLine(k), OneLine(v)))
        .collect();
    fields.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_of_a_log_holds_no_control_character_and_keeps_the_rest() {
        let text = OneLine("done\nINFO forged\r\u{1b}[31m\tä ok").to_string();
        assert_eq!(text, "done\\nINFO forged\\r\\u{1b}[31m\\tä ok");
        assert_eq!(
            OneLine("plain \"text\" \\ as is").to_string(),
            "plain \"text\" \\ as is"
        );
        // Not control characters, but lines end at the separators, and an override
        // makes the rest of a line read otherwise on a terminal.
        assert_eq!(
            OneLine("a\u{2028}b\u{2029}c\u{202e}d\u{2066}e").to_string(),
            "a\\u{2028}b\\u{2029}c\\u{202e}d\\u{2066}e"
        );
        let fields = one_line_fields([("user", "a\nb"), ("n", "7")].into_iter());
        assert_eq!(fields, "user=a\\nb n=7");
    }
}
