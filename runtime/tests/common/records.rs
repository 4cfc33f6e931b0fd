//! A log sink that keeps every record it is given, for tests to look at.

use std::sync::Mutex;

use memlink_runtime::{LogEvent, LogSink};

/// A record, owned: level, module, method, message, fields, trace id, span id.
pub type Owned = (
    tracing::Level,
    String,
    String,
    String,
    Vec<(String, String)>,
    u64,
    u64,
);

/// A sink that keeps every record.
#[derive(Default)]
pub struct Collect(pub Mutex<Vec<Owned>>);

impl LogSink for Collect {
    fn record(&self, e: &LogEvent<'_>) {
        let fields = e
            .fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0.lock().unwrap().push((
            e.level,
            e.module.to_owned(),
            e.method.to_owned(),
            e.message.to_owned(),
            fields,
            e.trace_id,
            e.span_id,
        ));
    }
}
