//! What a worker sends up to its supervisor, over its control socket: its messages, and
//! the log records of its modules (those of their calls, and those they make outside
//! any call, held until the worker is ready).

use std::io;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use memlink_ipc::control::{self, FromWorker, LogRecord};

use crate::log::{LogEvent, LogSink};
use crate::Runtime;

/// Sends `message` to the supervisor.
pub(super) fn send(out: &Mutex<UnixStream>, message: &FromWorker) -> io::Result<()> {
    let out = out.lock().unwrap_or_else(|p| p.into_inner());
    // Up to the supervisor's bound for its workers: the runtime's metrics, and a module's
    // log record, may be megabytes.
    control::send_up_to(&*out, message, None, control::MAX_WORKER_FRAME)
}

/// Forwards module logs to the supervisor, which aggregates every worker's.
pub(super) struct Forward {
    out: Arc<Mutex<UnixStream>>,
}

impl LogSink for Forward {
    fn record(&self, event: &LogEvent<'_>) {
        self.send(record_of(event));
    }
}

impl Forward {
    pub(super) fn new(out: Arc<Mutex<UnixStream>>) -> Forward {
        Forward { out }
    }

    /// Sends `record` to the supervisor.
    fn send(&self, record: LogRecord) {
        let message = FromWorker::Log(record);
        let Err(e) = send(&self.out, &message) else {
            return;
        };
        // Refused before a byte was written: past the bound of a worker's frame. A
        // warning in its place says it was dropped, and what it began with. (A
        // supervisor that is gone takes the worker with it soon; a lost record then is
        // no loss.)
        if let (io::ErrorKind::Other, FromWorker::Log(record)) = (e.kind(), &message) {
            let _ = send(&self.out, &FromWorker::Log(dropped(record, &e)));
        }
    }
}

/// The warning forwarded in place of `record`, which could not be (`why`: longer than
/// a worker's frame, 64 MiB).
#[cold]
fn dropped(record: &LogRecord, why: &io::Error) -> LogRecord {
    let fields: usize = record.fields.iter().map(|(k, v)| k.len() + v.len()).sum();
    let begins: String = record.message.chars().take(200).collect();
    LogRecord {
        level: "WARN".to_owned(),
        module: record.module.clone(),
        method: record.method.clone(),
        message: format!(
            "a record ({}) of {} bytes of message and {fields} of fields could not be \
             forwarded to the daemon ({why}), and was dropped; its message began: {begins}",
            record.level,
            record.message.len(),
        ),
        fields: Vec::new(),
        trace_id: record.trace_id,
        own: record.own,
    }
}

/// `event` as the supervisor takes it.
fn record_of(event: &LogEvent<'_>) -> LogRecord {
    LogRecord {
        level: event.level.to_string(),
        module: event.module.to_owned(),
        method: event.method.to_owned(),
        message: event.message.to_owned(),
        fields: event
            .fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        trace_id: event.trace_id,
        own: false,
    }
}

/// Forwards the records a module makes outside its calls (from `memlink_init`, or a
/// thread of its own), which reach no runtime's sink. Those made before the worker said
/// `Ready` (the supervisor takes nothing else first) are held until then, at most
/// [`HELD_RECORDS`] of them.
pub(super) struct OfNoCall {
    forward: Forward,
    /// The records held, until `release`; `None` once released.
    held: Mutex<Option<Vec<LogRecord>>>,
    /// The worker's runtime, whose names its modules are served under.
    runtime: OnceLock<Weak<Runtime>>,
}

/// The most records of no call held until the worker is ready; later ones are dropped.
const HELD_RECORDS: usize = 1024;

impl OfNoCall {
    /// Holds the records until [`release`](OfNoCall::release).
    pub(super) fn new(out: Arc<Mutex<UnixStream>>) -> OfNoCall {
        OfNoCall {
            forward: Forward::new(out),
            held: Mutex::new(Some(Vec::new())),
            runtime: OnceLock::new(),
        }
    }

    /// Names the records of `runtime`'s modules as it serves them (see `served_as`).
    pub(super) fn names_as(&self, runtime: &Arc<Runtime>) {
        let _ = self.runtime.set(Arc::downgrade(runtime));
    }

    /// Forwards the records held, and from now on each as it comes.
    pub(super) fn release(&self) {
        // Held while they are sent, so that a record that comes meanwhile follows them.
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        for record in held.take().into_iter().flatten() {
            self.forward(record);
        }
    }

    /// Forwards `record`, named as its module is served.
    fn forward(&self, mut record: LogRecord) {
        if let Some(name) = self.served_as(&record.module) {
            record.module = name;
        }
        self.forward.send(record);
    }

    /// The name the module whose own name is `own` is served under, when it is one
    /// module's of this worker and that name is another: a record of no call carries
    /// the module's own name (no call says which module it is), and the records of its
    /// calls the served one.
    fn served_as(&self, own: &str) -> Option<String> {
        let runtime = self.runtime.get()?.upgrade()?;
        let mut named = runtime
            .registry
            .live()
            .filter(|(_, m)| m.own_name == own)
            .map(|(_, m)| m.name.clone());
        match (named.next(), named.next()) {
            (Some(name), None) if name != own => Some(name),
            _ => None,
        }
    }
}

impl LogSink for Arc<OfNoCall> {
    fn record(&self, event: &LogEvent<'_>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut() {
            Some(records) if records.len() < HELD_RECORDS => records.push(record_of(event)),
            Some(_) => {}
            None => {
                drop(held);
                self.forward(record_of(event));
            }
        }
    }
}
