//! A worker process: loads its modules and serves each connection's slots on a thread
//! of its own. A daemon runs one worker per group of modules; each claims only the calls
//! to its own (see `Claims`).
//!
//! The worker trusts its supervisor (the control socket and the figures table) and no
//! client: every field of a slot is read once and checked, and arguments are copied into
//! private memory first unless the supervisor said the client is trusted.

use std::collections::HashMap;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memlink_ipc::control::{self, Claims, FromWorker, LogRecord, MethodInfo, ToWorker};
use memlink_ipc::figures::{Figures, Row, NO_DEADLINE};
use memlink_ipc::slot::{Name, Op, Request, Slot};
use memlink_ipc::{clock, futex, Failure, Geometry, Segment};

use super::config::{DaemonConfig, WorkerLimits};
use crate::log::{LogEvent, LogSink};
use crate::resolver::{LocalResolver, ModuleRef};
use crate::watch::{DirectoryWatch, WatchEvent, WatchOptions};
use crate::{CallOptions, ModuleHandle, Runtime, RuntimeError};

/// How long a connection's thread spins on its doorbell after a call before it sleeps.
const SPIN: Duration = Duration::from_micros(50);
/// How long a sleeping connection thread sleeps at most. Stopping rings the doorbell, so
/// this only bounds the cost of a wakeup lost some other way; idle connections stay
/// asleep (1,000 of them wake 1,000 times a second, not more).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// The control descriptor of a worker's invocation: `args` (without the executable) are
/// `__worker --control-fd N [--worker NAME]`, as the supervisor starts one. The name only
/// tells the processes apart in `ps`.
pub fn control_fd(args: &[String]) -> Option<RawFd> {
    match args {
        [sub, flag, fd, rest @ ..]
            if sub == super::WORKER_SUBCOMMAND
                && flag == "--control-fd"
                && matches!(rest, [] | [_, _])
                && rest.first().is_none_or(|f| f == "--worker") =>
        {
            fd.parse().ok()
        }
        _ => None,
    }
}

/// Runs a worker on the control socket `control_fd` (inherited from the supervisor) until
/// the supervisor says stop or goes away. Returns the process's exit message on failure.
pub fn run(control_fd: RawFd) -> Result<(), String> {
    if control_fd < 3 {
        return Err(format!(
            "control descriptor {control_fd} is a standard stream"
        ));
    }
    // SAFETY: the supervisor started this process with `control_fd` open, without
    // close-on-exec, and nothing else in this process owns it: this is its only owner.
    let control = UnixStream::from(unsafe { OwnedFd::from_raw_fd(control_fd) });
    let (init, figures_fd) =
        control::recv::<ToWorker>(&control).map_err(|e| format!("no init message: {e}"))?;
    let ToWorker::Init {
        config,
        rows,
        claims,
        index,
        ..
    } = init
    else {
        return Err("the first message was not Init".into());
    };
    let config: DaemonConfig =
        rmp_serde::from_slice(&config).map_err(|e| format!("undecodable settings: {e}"))?;
    let figures_fd = figures_fd.ok_or("no figures table with Init")?;
    let figures = Arc::new(Figures::map(&figures_fd, rows).map_err(|e| e.to_string())?);
    apply_limits(&config.limits)?;
    let out = Arc::new(Mutex::new(control.try_clone().map_err(|e| e.to_string())?));
    let sink = Arc::new(Forward {
        out: Arc::clone(&out),
    });
    let runtime = Arc::new(Runtime::new(
        config.runtime_config().log_sink(sink),
        LocalResolver,
    ));
    let loaded = load_all(&runtime, &config).and_then(|()| watch(&runtime, &config));
    let watch = match loaded {
        Ok(watch) => watch,
        Err(e) => {
            let _ = send(&out, &FromWorker::LoadFailed(e.clone()));
            return Err(e);
        }
    };
    let serving = served(&runtime);
    let claims = Arc::new(match claims {
        Claims::Own => Claims::Only(serving.clone()),
        other => other,
    });
    send(&out, &FromWorker::Ready(serving)).map_err(|e| e.to_string())?;
    // Only now: the supervisor takes nothing but `Ready` first.
    if let Some(watch) = watch {
        tell_changes(watch, &runtime, &out)?;
    }
    Worker {
        runtime,
        figures,
        claims,
        out,
        connections: HashMap::new(),
        draining: Arc::default(),
        helpers: config.threads_per_connection.max(1) as usize - 1,
        bit: 1u32
            .checked_shl(index)
            .ok_or(format!("worker number {index} is past 31"))?,
    }
    .listen(&control);
    Ok(())
}

fn send(out: &Mutex<UnixStream>, message: &FromWorker) -> io::Result<()> {
    let out = out.lock().unwrap_or_else(|p| p.into_inner());
    control::send(&*out, message, None)
}

/// Loads the served modules, each with its own settings.
fn load_all(runtime: &Runtime, config: &DaemonConfig) -> Result<(), String> {
    for entry in &config.modules {
        let reference =
            ModuleRef::parse(&entry.path.to_string_lossy()).map_err(|e| e.to_string())?;
        runtime
            .load_with(reference, &entry.settings())
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The names of the modules served now.
fn served(runtime: &Runtime) -> Vec<String> {
    let mut names: Vec<String> = runtime.modules().into_iter().map(|(_, m)| m.name).collect();
    names.sort();
    names.dedup();
    names
}

/// Starts watching the configured directory, if any: its modules are loaded now.
fn watch(runtime: &Runtime, config: &DaemonConfig) -> Result<Option<DirectoryWatch>, String> {
    let Some(dir) = &config.watch else {
        return Ok(None);
    };
    runtime
        .watch(dir, WatchOptions::default())
        .map(Some)
        .map_err(|e| format!("watching {}: {e}", dir.display()))
}

/// Tells the supervisor each change the watch makes (the modules served, and a log
/// record), from a thread that owns the watch for the life of the worker.
fn tell_changes(
    watch: DirectoryWatch,
    runtime: &Arc<Runtime>,
    out: &Arc<Mutex<UnixStream>>,
) -> Result<(), String> {
    let (runtime, out) = (Arc::clone(runtime), Arc::clone(out));
    std::thread::Builder::new()
        .name("memlink-watch-events".to_owned())
        .spawn(move || {
            while let Ok(event) = watch.events().recv() {
                let (level, message, changed) = match &event {
                    WatchEvent::Failed { path, error } => {
                        ("WARN", format!("{}: {error}", path.display()), false)
                    }
                    WatchEvent::Reloaded { path, reloaded, .. } => (
                        "INFO",
                        format!(
                            "{}: reloaded {} -> {}",
                            path.display(),
                            reloaded.from_version,
                            reloaded.to_version
                        ),
                        false,
                    ),
                    WatchEvent::Loaded { path, .. } => {
                        ("INFO", format!("{}: loaded", path.display()), true)
                    }
                    WatchEvent::Unloaded { path, .. } => {
                        ("INFO", format!("{}: unloaded", path.display()), true)
                    }
                };
                let record = LogRecord {
                    level: level.to_owned(),
                    module: "memlink::watch".to_owned(),
                    method: String::new(),
                    message,
                    fields: Vec::new(),
                    trace_id: 0,
                };
                let mut sent = send(&out, &FromWorker::Log(record));
                if changed {
                    sent = sent.and(send(&out, &FromWorker::Modules(served(&runtime))));
                }
                if sent.is_err() {
                    // The supervisor is gone; the worker is about to end.
                    return;
                }
            }
        })
        .map(drop)
        .map_err(|e| e.to_string())
}

fn apply_limits(limits: &WorkerLimits) -> Result<(), String> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let set = |resource, value: Option<u64>, what: &str| -> Result<(), String> {
        if let Some(v) = value {
            let limit = Rlimit {
                current: Some(v),
                maximum: Some(v),
            };
            setrlimit(resource, limit).map_err(|e| format!("cannot limit {what} to {v}: {e}"))?;
        }
        Ok(())
    };
    set(Resource::As, limits.memory_bytes, "memory")?;
    set(Resource::Cpu, limits.cpu_seconds, "CPU time")?;
    set(Resource::Nofile, limits.open_files, "open files")
}

/// Forwards module logs to the supervisor, which aggregates every worker's.
struct Forward {
    out: Arc<Mutex<UnixStream>>,
}

impl LogSink for Forward {
    fn record(&self, event: &LogEvent<'_>) {
        let record = LogRecord {
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
        };
        // A supervisor that is gone takes the worker with it soon; a lost record then
        // is no loss.
        let _ = send(&self.out, &FromWorker::Log(record));
    }
}

struct Connection {
    stop: Arc<AtomicBool>,
    segment: Arc<Segment>,
    thread: JoinHandle<()>,
}

struct Worker {
    runtime: Arc<Runtime>,
    figures: Arc<Figures>,
    claims: Arc<Claims>,
    out: Arc<Mutex<UnixStream>>,
    connections: HashMap<u64, Connection>,
    draining: Arc<AtomicBool>,
    /// Helper threads per connection, besides the one serving it.
    helpers: usize,
    /// This worker's bit in the segment header's sleeper words.
    bit: u32,
}

impl Worker {
    fn listen(mut self, control: &UnixStream) {
        loop {
            let (message, fd) = match control::recv::<ToWorker>(control) {
                Ok(m) => m,
                // The supervisor is gone (or spoke garbage): stop serving.
                Err(_) => break,
            };
            match message {
                ToWorker::Attach {
                    connection,
                    geometry,
                    in_place,
                    row,
                } => {
                    if let Err(reason) = self.attach(connection, geometry, in_place, row, fd) {
                        tracing::warn!(connection, "cannot serve the connection: {reason}");
                        // Nobody else takes this worker's calls on that connection: the
                        // supervisor answers them, or they would wait for ever.
                        let _ = send(&self.out, &FromWorker::AttachFailed { connection, reason });
                    }
                }
                ToWorker::Detach { connection } => {
                    // The thread ends after the call it is running, if any; waiting for
                    // it here would hold up every other connection's messages.
                    if let Some(c) = self.connections.remove(&connection) {
                        stop(&c);
                    }
                    self.connections.retain(|_, c| !c.thread.is_finished());
                }
                ToWorker::Metrics => {
                    let _ = send(&self.out, &FromWorker::Metrics(self.runtime.prometheus()));
                }
                ToWorker::Shutdown => break,
                ToWorker::Init { .. } => {}
            }
        }
        // Finish the calls in flight; each thread refuses what was submitted after.
        self.draining.store(true, Ordering::SeqCst);
        for c in self.connections.values() {
            ring(&c.segment);
        }
        for (_, c) in self.connections.drain() {
            let _ = c.thread.join();
        }
    }

    fn attach(
        &mut self,
        connection: u64,
        geometry: Geometry,
        in_place: bool,
        row: u32,
        fd: Option<OwnedFd>,
    ) -> Result<(), String> {
        let fd = fd.ok_or("no segment attached")?;
        let segment = Arc::new(
            Segment::map(&fd, geometry)
                .map_err(|e| format!("cannot map its segment of {} bytes: {e}", geometry.len()))?,
        );
        if self.figures.row(row).is_none() {
            return Err(format!("figures row {row} out of range"));
        }
        let stop = Arc::new(AtomicBool::new(false));
        let server = Server {
            runtime: Arc::clone(&self.runtime),
            figures: Arc::clone(&self.figures),
            claims: Arc::clone(&self.claims),
            row,
            segment: Arc::clone(&segment),
            in_place,
            stop: Arc::clone(&stop),
            draining: Arc::clone(&self.draining),
            modules: HashMap::new(),
            scratch: Vec::new(),
            helpers: self.helpers,
            helper_threads: Vec::new(),
            bit: self.bit,
        };
        let thread = std::thread::Builder::new()
            .name(format!("memlink-conn-{connection}"))
            .spawn(move || server.run())
            .map_err(|e| format!("cannot start its thread: {e}"))?;
        self.connections.insert(
            connection,
            Connection {
                stop,
                segment,
                thread,
            },
        );
        Ok(())
    }
}

fn stop(c: &Connection) {
    c.stop.store(true, Ordering::SeqCst);
    ring(&c.segment);
}

/// Rings a connection's doorbell from the worker's side: the serving thread, if it is
/// about to sleep, sees the count change and does not.
fn ring(segment: &Segment) {
    segment.header().doorbell.fetch_add(1, Ordering::SeqCst);
    futex::wake_all(&segment.header().doorbell);
}

/// Serves one connection's slots.
struct Server {
    runtime: Arc<Runtime>,
    figures: Arc<Figures>,
    /// Which calls are this worker's.
    claims: Arc<Claims>,
    row: u32,
    segment: Arc<Segment>,
    in_place: bool,
    stop: Arc<AtomicBool>,
    draining: Arc<AtomicBool>,
    /// Each module's handle and default timeout, looked up once.
    modules: HashMap<String, (ModuleHandle, Option<Duration>)>,
    /// Private memory arguments are copied into (16-aligned, for archives).
    scratch: Vec<u128>,
    /// Helper threads to start with the connection's first call (see [`Server::help`]).
    helpers: usize,
    helper_threads: Vec<JoinHandle<()>>,
    /// This worker's bit in the segment header's sleeper words.
    bit: u32,
}

impl Server {
    /// Serves the connection until it is stopped or the worker drains, then ends its
    /// helpers.
    fn run(mut self) {
        self.serve_connection();
        let header = self.segment.header();
        header.overflow.fetch_add(1, Ordering::SeqCst);
        futex::wake_all(&header.overflow);
        for helper in self.helper_threads.drain(..) {
            let _ = helper.join();
        }
    }

    /// A server of the same connection with caches of its own, for a helper.
    fn sibling(&self) -> Server {
        Server {
            runtime: Arc::clone(&self.runtime),
            figures: Arc::clone(&self.figures),
            claims: Arc::clone(&self.claims),
            row: self.row,
            segment: Arc::clone(&self.segment),
            in_place: self.in_place,
            stop: Arc::clone(&self.stop),
            draining: Arc::clone(&self.draining),
            modules: HashMap::new(),
            scratch: Vec::new(),
            helpers: 0,
            helper_threads: Vec::new(),
            bit: self.bit,
        }
    }

    /// Starts the helpers, once: on the connection's first call, so a connection that
    /// never calls costs one thread.
    fn start_helpers(&mut self) {
        if self.helper_threads.len() >= self.helpers {
            return;
        }
        for _ in self.helper_threads.len()..self.helpers {
            let helper = self.sibling();
            match std::thread::Builder::new()
                .name("memlink-conn-helper".to_owned())
                .spawn(move || helper.help())
            {
                Ok(thread) => self.helper_threads.push(thread),
                Err(e) => {
                    tracing::warn!("cannot start a connection helper: {e}");
                    self.helpers = self.helper_threads.len();
                }
            }
        }
    }

    /// A helper: asleep on the connection's `overflow` word, which a client bumps when a
    /// call of its is still not taken after its spin while another of its calls is in
    /// flight; it serves what the connection's thread, busy with a call, cannot take. It
    /// never spins, so a client calling one call at a time, or a batch of short calls,
    /// never wakes it.
    fn help(mut self) {
        let segment = Arc::clone(&self.segment);
        let header = segment.header();
        loop {
            let seen = header.overflow.load(Ordering::SeqCst);
            let mut served = true;
            while served {
                served = false;
                for i in 0..segment.geometry().slots {
                    // Draining, the connection's thread refuses what is left.
                    if self.stop.load(Ordering::Acquire) || self.draining.load(Ordering::Acquire) {
                        return;
                    }
                    let slot = segment.slot(i).expect("index below the slot count");
                    if self.claim(&slot) {
                        served = true;
                        self.serve(i, slot);
                    }
                }
            }
            if self.stop.load(Ordering::Acquire) || self.draining.load(Ordering::Acquire) {
                return;
            }
            header.helpers_waiting.fetch_or(self.bit, Ordering::SeqCst);
            if header.overflow.load(Ordering::SeqCst) == seen {
                futex::wait(&header.overflow, seen, Some(IDLE_POLL));
            }
            // Another helper of this worker may still sleep with the bit cleared: it is
            // this one's turn to look, and it sets the bit again before it sleeps.
            header
                .helpers_waiting
                .fetch_and(!self.bit, Ordering::SeqCst);
        }
    }

    fn serve_connection(&mut self) {
        let segment = Arc::clone(&self.segment);
        let header = segment.header();
        let slots = segment.geometry().slots;
        let mut last_work = Instant::now();
        loop {
            let bell = header.doorbell.load(Ordering::Acquire);
            let mut served = false;
            for i in 0..slots {
                let slot = segment.slot(i).expect("index below the slot count");
                if self.claim(&slot) {
                    served = true;
                    self.start_helpers();
                    self.serve(i, slot);
                }
            }
            if self.stop.load(Ordering::Acquire) {
                return;
            }
            if self.draining.load(Ordering::Acquire) {
                return self.refuse_all();
            }
            if served {
                last_work = Instant::now();
                continue;
            }
            let idle = last_work.elapsed();
            if idle < SPIN {
                memlink_ipc::slot::relax(idle);
                continue;
            }
            // A bit of this worker's: each worker process has a thread asleep here.
            header.worker_waiting.fetch_or(self.bit, Ordering::SeqCst);
            if header.doorbell.load(Ordering::SeqCst) == bell {
                futex::wait(&header.doorbell, bell, Some(IDLE_POLL));
            }
            header.worker_waiting.fetch_and(!self.bit, Ordering::SeqCst);
            last_work = Instant::now();
        }
    }

    /// Claims the slot if it holds a call this worker serves.
    fn claim(&self, slot: &Slot<'_>) -> bool {
        if *self.claims == Claims::All {
            return slot.claim();
        }
        let Some(name) = slot.submitted_module() else {
            return false;
        };
        if !(self.takes(name) && slot.claim()) {
            return false;
        }
        // The slot may have been served and submitted again for another module between
        // the look and the claim (the state word has no generation): look again, now that
        // the call is this claim's.
        if self.takes(slot.module_name()) {
            return true;
        }
        slot.unclaim();
        ring(&self.segment);
        false
    }

    /// Whether a call naming `module` (as read from its slot) is this worker's. A name
    /// no client writes is answered by whoever takes unknown names.
    fn takes(&self, module: Result<Name, String>) -> bool {
        match module {
            Ok(name) => self.claims.takes(name.as_str()),
            Err(_) => self.claims.takes(""),
        }
    }

    /// Answers every call of this worker's submitted after it began to drain.
    fn refuse_all(&self) {
        for i in 0..self.segment.geometry().slots {
            let slot = self.segment.slot(i).expect("index below the slot count");
            if self.claim(&slot) {
                slot.finish_failure(&Failure::ShuttingDown, 1.0);
            }
        }
    }

    fn row(&self) -> &Row {
        self.figures.row(self.row).expect("row checked at attach")
    }

    fn serve(&mut self, index: u32, slot: Slot<'_>) {
        let mut request = match slot.read_request() {
            Ok(r) => r,
            Err(failure) => {
                self.row().errors.fetch_add(1, Ordering::Relaxed);
                return slot.finish_failure(&failure, 0.0);
            }
        };
        let module = self.module(request.module.as_str());
        // A call made without a deadline gets its module's default timeout here, so the
        // watchdog holds it to the deadline the runtime gives it.
        if let Ok((_, Some(timeout))) = module {
            if request.deadline_ns == 0 && request.op == Op::Call {
                let t = u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX);
                request.deadline_ns = clock::now_ns().saturating_add(t);
            }
        }
        let handle = module.map(|(h, _)| h);
        let running = &self.row().running[index as usize];
        running.store(
            if request.deadline_ns == 0 {
                NO_DEADLINE
            } else {
                request.deadline_ns
            },
            Ordering::Relaxed,
        );
        let backpressure = handle
            .as_ref()
            .ok()
            .and_then(|h| self.runtime.backpressure(*h).ok())
            .unwrap_or(0.0);
        let row = self.figures.row(self.row).expect("row checked at attach");
        row.calls.fetch_add(1, Ordering::Relaxed);
        row.bytes_in
            .fetch_add(request.args_len as u64, Ordering::Relaxed);
        let result = handle.and_then(|h| self.answer(h, &request, slot));
        // Cleared before the slot completes, so the watchdog never blames a finished call.
        let row = self.figures.row(self.row).expect("row checked at attach");
        row.running[index as usize].store(0, Ordering::Relaxed);
        match result {
            Ok((at, len)) => {
                row.bytes_out.fetch_add(len as u64, Ordering::Relaxed);
                slot.complete_ok(at, len, backpressure);
            }
            Err(failure) => {
                row.errors.fetch_add(1, Ordering::Relaxed);
                slot.finish_failure(&failure, backpressure);
            }
        }
    }

    fn module(&mut self, module: &str) -> Result<(ModuleHandle, Option<Duration>), Failure> {
        // A module unloaded from a watched directory leaves its handle stale; another
        // module may be loaded under its name since.
        if let Some(found) = self.modules.get(module) {
            if self.runtime.is_loaded(found.0) {
                return Ok(*found);
            }
            self.modules.remove(module);
        }
        let failed = |e| failure_of(e, module, "");
        let h = self.runtime.handle_of(module).map_err(failed)?;
        let timeout = self.runtime.module_info(h).map_err(failed)?.default_timeout;
        self.modules.insert(module.to_owned(), (h, timeout));
        Ok((h, timeout))
    }

    /// Runs the request; on success the reply is in the slot's data area, where the
    /// returned offset and length say.
    fn answer(
        &mut self,
        h: ModuleHandle,
        r: &Request,
        slot: Slot<'_>,
    ) -> Result<(usize, usize), Failure> {
        let module = r.module.as_str();
        match r.op {
            Op::Methods => {
                let methods = self
                    .runtime
                    .methods(h)
                    .map_err(|e| failure_of(e, module, ""))?;
                let infos: Vec<MethodInfo> = methods
                    .iter()
                    .map(|m| MethodInfo {
                        name: m.name.clone(),
                        args: m.args_format as u8,
                        result: m.result_format as u8,
                        arg_count: m.arg_count,
                        args_type: m.args_type.as_ref().map(|t| t.name.clone()),
                        result_type: m.result_type.as_ref().map(|t| t.name.clone()),
                        args_fingerprint: m.args_type.as_ref().map(|t| t.fingerprint),
                        result_fingerprint: m.result_type.as_ref().map(|t| t.fingerprint),
                        signature: m.signature.clone(),
                    })
                    .collect();
                let bytes = rmp_serde::to_vec(&infos).map_err(|e| Failure::Other(e.to_string()))?;
                put(slot, &bytes)
            }
            Op::Backpressure => {
                let b = self
                    .runtime
                    .backpressure(h)
                    .map_err(|e| failure_of(e, module, ""))?;
                put(slot, &b.to_le_bytes())
            }
            Op::Call => {
                let method = r.method.as_str();
                let options = CallOptions {
                    trace_id: r.trace_id,
                    span_id: r.span_id,
                    deadline: clock::from_ns(r.deadline_ns),
                };
                let output = if self.in_place {
                    // SAFETY: the slot is `Running` and the supervisor vouched that this
                    // client (running as the daemon's own user) does not write a slot it
                    // submitted; the slice lives only for the call.
                    let args = unsafe { slot.data(r.args_len) };
                    self.runtime.call_with(h, method, args, &options)
                } else {
                    let words = r.args_len.div_ceil(16);
                    if self.scratch.len() < words {
                        self.scratch.resize(words, 0);
                    }
                    // SAFETY: `u128` has no padding and every byte pattern is valid `u8`;
                    // the view covers `words * 16 >= args_len` bytes of the vector.
                    let bytes: &mut [u8] = unsafe {
                        std::slice::from_raw_parts_mut(
                            self.scratch.as_mut_ptr().cast::<u8>(),
                            words * 16,
                        )
                    };
                    slot.copy_data(0, &mut bytes[..r.args_len]);
                    self.runtime
                        .call_with(h, method, &bytes[..r.args_len], &options)
                };
                let output = output.map_err(|e| failure_of(e, module, method))?;
                put(slot, &output)
            }
        }
    }
}

/// Writes a reply into the slot (after the arguments when it fits there).
fn put(slot: Slot<'_>, bytes: &[u8]) -> Result<(usize, usize), Failure> {
    if bytes.len() > slot.capacity() {
        return Err(Failure::TooLarge {
            len: bytes.len() as u64,
            capacity: slot.capacity() as u64,
        });
    }
    let at = slot.reply_at(bytes.len());
    slot.write_data(at, bytes);
    Ok((at, bytes.len()))
}

/// The wire form of a runtime error.
fn failure_of(e: RuntimeError, module: &str, method: &str) -> Failure {
    match e {
        RuntimeError::Call {
            module,
            method,
            error,
        } => Failure::Module {
            module,
            method,
            code: error.status() as i32,
            payload: error.payload(),
        },
        RuntimeError::UnknownModule { name } => Failure::UnknownModule(name),
        // Unloaded between the lookup and the call (a watched file removed).
        RuntimeError::UnknownHandle(_) => Failure::UnknownModule(module.to_owned()),
        RuntimeError::UnknownMethod { module, method } => Failure::UnknownMethod { module, method },
        RuntimeError::Saturated {
            module,
            method,
            limit,
        } => Failure::Saturated {
            module,
            method,
            limit: limit as u64,
        },
        other => Failure::Other(format!("{module}::{method}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::control_fd;

    #[test]
    fn a_worker_invocation_names_its_descriptor_and_maybe_its_group() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            control_fd(&args(&["__worker", "--control-fd", "7"])),
            Some(7)
        );
        let named = args(&["__worker", "--control-fd", "7", "--worker", "main"]);
        assert_eq!(control_fd(&named), Some(7));
        for bad in [
            &["__worker", "--control-fd"][..],
            &["__worker", "--control-fd", "x"],
            &["__worker", "--control-fd", "7", "--other", "a"],
            &["serve", "--control-fd", "7"],
        ] {
            assert_eq!(control_fd(&args(bad)), None, "{bad:?}");
        }
    }
}
