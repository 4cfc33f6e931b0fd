//! A worker process: applies its limits, loads its modules, and serves each connection
//! it is handed on a thread of its own (`connection`). A daemon runs one worker per
//! group of modules; each claims only the calls to its own (see `Claims`).
//!
//! The worker trusts its supervisor (the control socket and the figures table) and no
//! client (see `connection`).

use std::collections::HashMap;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use memlink_ipc::control::{self, Claims, FromWorker, LogRecord, Skipped, ToWorker};
use memlink_ipc::figures::Figures;
use memlink_ipc::segment::MAX_WORKERS;
use memlink_ipc::{Geometry, Segment};

use super::config::{DaemonConfig, ModuleEntry, WorkerLimits};
use super::connection::Server;
use super::opening::Guard;
use super::upward::{send, Forward, OfNoCall};
use crate::resolver::{LocalResolver, ModuleRef};
use crate::watch::{DirectoryWatch, WatchEvent, WatchOptions};
use crate::{ModuleHandle, Runtime, RuntimeError};

/// Names this process after its executable's file, as its `argv[0]` gives it: started
/// through `/proc/self/exe` (see `workers::spawn`), the kernel named it `exe`, which is
/// what `ps -e`, `top` and `pkill memlink` show and match. Called on the main thread,
/// whose name is the process's; at most 15 bytes, as the kernel keeps.
fn name_after_executable() {
    use std::os::unix::ffi::OsStrExt;
    let Some(arg0) = std::env::args_os().next() else {
        return;
    };
    let file = std::path::Path::new(&arg0).file_name().unwrap_or(&arg0);
    let name = &file.as_bytes()[..file.len().min(15)];
    if let Ok(name) = std::ffi::CString::new(name) {
        // A name not set leaves `exe`: nothing else depends on it.
        let _ = rustix::thread::set_name(&name);
    }
}

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

/// The control descriptor `fd` a worker was started with ([`control_fd`]), owned from
/// here: refused with why when it is a standard stream or not open (the invocation was
/// not the supervisor's), and then not taken.
///
/// # Safety
///
/// Nothing else in the process may own `fd`: call this once, first thing in `main`,
/// with the number the supervisor's invocation gives (the descriptor it handed this
/// process alone).
pub unsafe fn take_control_fd(fd: RawFd) -> Result<OwnedFd, String> {
    if fd < 0 {
        return Err(format!("control descriptor {fd} is no descriptor number"));
    }
    if fd < 3 {
        return Err(format!("control descriptor {fd} is a standard stream"));
    }
    // SAFETY: `fcntl(F_GETFD)` reads a descriptor's flags, whatever the number; it
    // touches no memory of this process.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(format!(
            "control descriptor {fd} is not open: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: open (above), and owned by nothing else in the process (the caller's
    // contract).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Makes SIGTERM, SIGINT and SIGHUP do nothing here: the supervisor stops its workers
/// itself, once each has finished its calls in flight. The signals reach workers too
/// when they are sent to the daemon's whole process group (`kill -- -PGID`, `timeout`,
/// Ctrl-C, a terminal's hang-up, systemd's default `KillMode`); their default action
/// killed a worker in the middle of its calls, which then failed with `WorkerDied`. A
/// handler that only sets a flag replaces that action (it is reset at `exec`, which a
/// worker does not do); SIGKILL still ends a worker.
fn shield_from_stop_signals() -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let seen = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&seen))
            .map_err(|e| format!("cannot handle signal {signal}: {e}"))?;
    }
    Ok(())
}

/// Runs a worker on its control socket `control` (inherited from the supervisor, the
/// descriptor [`control_fd`] names, taken by [`take_control_fd`])
/// until the supervisor says stop or goes away. Returns the process's exit message on
/// failure.
///
/// This is the whole job of a worker process: it makes SIGTERM, SIGINT and SIGHUP do
/// nothing in the process (the supervisor stops its workers itself, once their calls are done),
/// and the descriptor is closed when it returns.
pub fn run(control: OwnedFd) -> Result<(), String> {
    name_after_executable();
    shield_from_stop_signals()?;
    // The supervisor's directory for this process's private copies (`super::copies`).
    if let Some(dir) = std::env::var_os(super::copies::ENV) {
        crate::reload::keep_copies_in(dir.into());
    }
    let control = take_control(control)?;
    let Init {
        config,
        figures,
        claims,
        index,
        skip,
    } = Init::receive(&control)?;
    let grace_ns = config.watchdog_grace_ms.saturating_mul(1_000_000);
    super::orphan::watch(Arc::clone(&figures), grace_ns);
    if let Err(e) = apply_limits(&config.limits) {
        // Told as a load failure, which names it, not as a worker that died loading.
        let _ = control::send(&control, &FromWorker::LoadFailed(e.clone()), None);
        return Err(e);
    }
    let out = Arc::new(Mutex::new(control.try_clone().map_err(|e| e.to_string())?));
    let sink = Arc::new(Forward::new(Arc::clone(&out)));
    // Records a module makes outside its calls are forwarded too, held until `Ready`.
    let of_no_call = Arc::new(OfNoCall::new(Arc::clone(&out)));
    crate::log::send_records_of_no_call_to(Box::new(Arc::clone(&of_no_call)));
    let runtime = Arc::new(Runtime::new(
        config.runtime_config().log_sink(sink),
        LocalResolver,
    ));
    of_no_call.names_as(&runtime);
    // A client names a module in a call's slot: a longer name, the module's own (a
    // settings' `name` is checked with the settings) or a watched file's, could be
    // served but never called.
    runtime.limit_names(memlink_ipc::slot::MAX_NAME);
    let mut configured = Vec::new();
    let loaded = load_all(&runtime, &config).and_then(|()| {
        configured = runtime.modules().into_iter().map(|(h, _)| h).collect();
        let guard = Guard {
            out: Arc::clone(&out),
            skip,
            send,
        };
        watch(&runtime, &config, Arc::new(guard))
    });
    let watch = match loaded {
        Ok(watch) => watch,
        Err(e) => {
            let _ = send(&out, &FromWorker::LoadFailed(e.clone()));
            return Err(e);
        }
    };
    let claims = Arc::new(match claims {
        Claims::Own => Claims::Only(served(&runtime)),
        other => other,
    });
    // Only the watched directory's: a configured module named like another worker's is
    // a settings error, which the supervisor refuses when this worker says it is ready.
    let shed: Vec<String> = runtime
        .modules()
        .into_iter()
        .filter(|(handle, _)| !configured.contains(handle))
        .filter_map(|(handle, _)| foreign(&runtime, &claims, handle))
        .collect();
    // Loaded: an orphan from here on drains (a supervisor killed before it reads `Ready`
    // leaves no call to drain, and the control socket's end is read soon after).
    super::orphan::serving();
    send(&out, &FromWorker::Ready(served(&runtime))).map_err(|e| e.to_string())?;
    of_no_call.release();
    // Only now: the supervisor takes nothing but `Ready` first.
    for name in shed {
        let record = watch_record("WARN", shed_message(&name));
        send(&out, &FromWorker::Log(record)).map_err(|e| e.to_string())?;
    }
    let watch = match watch {
        Some(watch) => Some(tell_changes(watch, &runtime, &claims, &out)?),
        None => None,
    };
    let scrapes = answer_scrapes(&runtime, &out)?;
    Worker {
        runtime,
        watch,
        scrapes,
        figures,
        claims,
        out,
        connections: HashMap::new(),
        detached: Vec::new(),
        spare: Arc::default(),
        draining: Arc::default(),
        helpers: config.threads_per_connection.max(1) as usize - 1,
        call_stack: super::connection::call_stack(&config.limits),
        grace_ns,
        index: match index as usize {
            i if i < MAX_WORKERS => i,
            _ => return Err(format!("worker number {index} is past {}", MAX_WORKERS - 1)),
        },
    }
    .listen(&control);
    Ok(())
}

/// The control socket `control`, inherited from the supervisor.
fn take_control(control: OwnedFd) -> Result<UnixStream, String> {
    let control = UnixStream::from(control);
    // Inherited open across exec (so this process could get it); a program a module
    // starts must not hold the supervisor's link to this worker past the worker's end.
    rustix::io::fcntl_setfd(&control, rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| format!("cannot mark the control descriptor close-on-exec: {e}"))?;
    Ok(control)
}

/// What the supervisor's first message tells a worker.
struct Init {
    config: DaemonConfig,
    /// The worker's figures table, mapped.
    figures: Arc<Figures>,
    claims: Claims,
    index: u32,
    /// The watched files that took an earlier process of this worker down.
    skip: Vec<Skipped>,
}

impl Init {
    /// Reads the supervisor's first message, which must be `Init`, from `control`.
    fn receive(control: &UnixStream) -> Result<Init, String> {
        let (init, figures_fd) =
            control::recv::<ToWorker>(control).map_err(|e| format!("no init message: {e}"))?;
        let ToWorker::Init {
            config,
            rows,
            claims,
            index,
            skip,
            ..
        } = init
        else {
            return Err("the first message was not Init".into());
        };
        let config: DaemonConfig =
            rmp_serde::from_slice(&config).map_err(|e| format!("undecodable settings: {e}"))?;
        let figures_fd = figures_fd.ok_or("no figures table with Init")?;
        let figures = Arc::new(Figures::map(&figures_fd, rows).map_err(|e| e.to_string())?);
        Ok(Init {
            config,
            figures,
            claims,
            index,
            skip,
        })
    }
}

/// Starts the thread that answers the supervisor's scrapes, each with the runtime's
/// exposition; the scrapes go to it through the sender returned, which holds one waiting.
fn answer_scrapes(
    runtime: &Arc<Runtime>,
    out: &Arc<Mutex<UnixStream>>,
) -> Result<mpsc::SyncSender<u64>, String> {
    let (scrapes, asked) = mpsc::sync_channel::<u64>(1);
    let (runtime, out) = (Arc::clone(runtime), Arc::clone(out));
    std::thread::Builder::new()
        .name("memlink-metrics".to_owned())
        .spawn(move || {
            for scrape in asked {
                let text = runtime.prometheus();
                if let Err(e) = send(&out, &FromWorker::Metrics { scrape, text }) {
                    // Past even the workers' bound: said, and answered empty, so the
                    // scrape does not wait out its timeout for an answer that never
                    // comes.
                    let why = format!("the worker's metrics cannot be sent: {e}");
                    let _ = send(&out, &FromWorker::Log(metrics_record(why)));
                    let text = String::new();
                    let _ = send(&out, &FromWorker::Metrics { scrape, text });
                }
            }
        })
        .map_err(|e| format!("cannot start the thread that answers scrapes: {e}"))?;
    Ok(scrapes)
}

/// Loads the served modules, each with its own settings, each after the modules it
/// calls, whatever order the settings list them in (as `memlink call --with` loads its
/// modules): each round loads every module whose calls are loaded, until all are, or a
/// round loads none, whose first refusal names the call no module of this worker answers.
fn load_all(runtime: &Runtime, config: &DaemonConfig) -> Result<(), String> {
    let mut pending: Vec<&ModuleEntry> = config.modules.iter().collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = None;
        let mut error = None;
        pending.retain(|entry| match load(runtime, entry) {
            Ok(()) => false,
            Err(e @ RuntimeError::MissingDependency { .. }) => {
                waiting.get_or_insert(e);
                true
            }
            // The name is the settings' or the module's own: which file wanted it says
            // which entry to change.
            Err(e @ RuntimeError::NameTaken { .. }) => {
                error.get_or_insert(format!("{}: {e}", entry.path.display()));
                true
            }
            Err(e) => {
                error.get_or_insert(e.to_string());
                true
            }
        });
        // A round that loaded nothing would load nothing again.
        let stuck = pending.len() == before;
        if let Some(e) = error.or(waiting.filter(|_| stuck).map(|e| e.to_string())) {
            return Err(e);
        }
    }
    Ok(())
}

/// Loads one served module with its own settings.
fn load(runtime: &Runtime, entry: &ModuleEntry) -> Result<(), RuntimeError> {
    let reference = match entry.path.to_str() {
        Some(text) => ModuleRef::parse(text)?,
        // A path that is not UTF-8 is loaded as it is: no name (`name@version`) is.
        None => ModuleRef::from_path(&entry.path),
    };
    runtime.load_with(reference, &entry.settings()).map(|_| ())
}

/// The names of the modules served now.
fn served(runtime: &Runtime) -> Vec<String> {
    let mut names: Vec<String> = runtime.modules().into_iter().map(|(_, m)| m.name).collect();
    names.sort();
    names.dedup();
    names
}

/// Starts watching the configured directory, if any: its modules are loaded now, each
/// file opened within `guard`'s word (see `super::opening`).
fn watch(
    runtime: &Runtime,
    config: &DaemonConfig,
    guard: Arc<Guard>,
) -> Result<Option<DirectoryWatch>, String> {
    let Some(dir) = &config.watch else {
        return Ok(None);
    };
    runtime
        .watch_guarded(dir, WatchOptions::default(), guard)
        .map(Some)
        .map_err(|e| format!("watching {}: {e}", dir.display()))
}

/// Tells the supervisor each change the watch makes (the modules served, and a log
/// record), from a thread that owns the watch for the life of the worker.
fn tell_changes(
    watch: DirectoryWatch,
    runtime: &Arc<Runtime>,
    claims: &Arc<Claims>,
    out: &Arc<Mutex<UnixStream>>,
) -> Result<WatchStop, String> {
    let (runtime, claims, out) = (Arc::clone(runtime), Arc::clone(claims), Arc::clone(out));
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    std::thread::Builder::new()
        .name("memlink-watch-events".to_owned())
        .spawn(move || loop {
            // Stopped, the watch is dropped here, which waits for what it is doing.
            if stopped.load(Ordering::Acquire) {
                return;
            }
            let event = match watch.events().recv_timeout(WATCH_POLL) {
                Ok(event) => event,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            {
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
                    // The watch's first look reports what it loaded at start, some of
                    // which may have been unloaded since as another worker's.
                    WatchEvent::Loaded { handle, .. } if !runtime.is_loaded(*handle) => continue,
                    WatchEvent::Loaded { path, handle } => {
                        match foreign(&runtime, &claims, *handle) {
                            Some(name) => (
                                "WARN",
                                format!("{}: {}", path.display(), shed_message(&name)),
                                false,
                            ),
                            None => ("INFO", format!("{}: loaded", path.display()), true),
                        }
                    }
                    WatchEvent::Unloaded { path, .. } => {
                        ("INFO", format!("{}: unloaded", path.display()), true)
                    }
                    WatchEvent::Moved { from, to, .. } => (
                        "INFO",
                        format!(
                            "{}: renamed {}, its module serving on",
                            from.display(),
                            to.display()
                        ),
                        false,
                    ),
                };
                let record = watch_record(level, message);
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
        .map(|thread| WatchStop { stop, thread })
        .map_err(|e| e.to_string())
}

/// How often the thread telling a watch's changes looks whether it is stopped.
const WATCH_POLL: Duration = Duration::from_millis(100);

/// Stops the watch of a worker's directory (see [`tell_changes`]).
struct WatchStop {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl WatchStop {
    /// Stops the watch and waits for it: no module is loaded or reloaded after.
    fn stop(self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
    }
}

/// What the log says of a watched module another worker serves.
fn shed_message(name: &str) -> String {
    format!("module `{name}` is served by another worker, so this one unloaded it")
}

/// Unloads the module loaded as `handle` (from the watched directory) when its name is
/// not this worker's to serve, and returns the name: a name has one worker, so a call
/// has one place to go and the module's figures one series.
fn foreign(runtime: &Runtime, claims: &Claims, handle: ModuleHandle) -> Option<String> {
    let info = runtime.module_info(handle).ok()?;
    if claims.takes(&info.name) {
        return None;
    }
    let _ = runtime.unload(handle);
    Some(info.name)
}

/// A warning about the worker's metrics, for the supervisor's log.
fn metrics_record(message: String) -> LogRecord {
    LogRecord {
        module: "memlink::metrics".to_owned(),
        ..watch_record("WARN", message)
    }
}

/// A log record of the watch, for the supervisor's log.
fn watch_record(level: &str, message: String) -> LogRecord {
    LogRecord {
        level: level.to_owned(),
        module: "memlink::watch".to_owned(),
        method: String::new(),
        message,
        fields: Vec::new(),
        trace_id: 0,
        own: true,
    }
}

fn apply_limits(limits: &WorkerLimits) -> Result<(), String> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let set = |resource, value: Option<u64>, above: u64, what: &str| -> Result<(), String> {
        if let Some(v) = value {
            // Within the hard limit the worker inherited, which it may not raise.
            let inherited = rustix::process::getrlimit(resource).maximum;
            let maximum = inherited.map_or(v.saturating_add(above), |h| {
                v.saturating_add(above).min(h.max(v))
            });
            let limit = Rlimit {
                current: Some(v),
                maximum: Some(maximum),
            };
            setrlimit(resource, limit).map_err(|e| format!("cannot limit {what} to {v}: {e}"))?;
        }
        Ok(())
    };
    set(Resource::As, limits.memory_bytes, 0, "memory")?;
    // At the soft limit the kernel sends `SIGXCPU`, which ends the worker, as documented;
    // at the hard one, `SIGKILL`, which it checks first: equal limits meant `SIGKILL`.
    set(
        Resource::Cpu,
        limits.cpu_seconds,
        CPU_GRACE_SECONDS,
        "CPU time",
    )?;
    set(Resource::Nofile, limits.open_files, 0, "open files")
}

/// CPU seconds past a worker's `cpu_seconds` at which it is killed, if `SIGXCPU` did not
/// end it (a module that handles the signal).
const CPU_GRACE_SECONDS: u64 = 5;

struct Connection {
    stop: Arc<AtomicBool>,
    /// Set once the worker drains and no call of the connection runs here any more.
    drained: Arc<AtomicBool>,
    segment: Arc<Segment>,
    thread: JoinHandle<()>,
}

impl Connection {
    /// Whether no call of the connection runs in this worker any more, the worker
    /// draining.
    fn is_drained(&self) -> bool {
        self.drained.load(Ordering::Acquire) || self.thread.is_finished()
    }
}

struct Worker {
    runtime: Arc<Runtime>,
    /// The watch of the directory it serves, if any: stopped before the modules' shutdown.
    watch: Option<WatchStop>,
    /// The scrapes for the thread that answers them ([`answer_scrapes`]).
    scrapes: mpsc::SyncSender<u64>,
    figures: Arc<Figures>,
    claims: Arc<Claims>,
    out: Arc<Mutex<UnixStream>>,
    connections: HashMap<u64, Connection>,
    /// The threads of connections whose clients went, each ending after the call it
    /// runs: a drain waits for them too (a call is finished even when its client is gone,
    /// as the watchdog would let it).
    detached: Vec<JoinHandle<()>>,
    /// The largest copy of an untrusted call's arguments, for the next large call.
    spare: Arc<crate::daemon::connection::Spare>,
    draining: Arc<AtomicBool>,
    /// Helper threads per connection, besides the one serving it.
    helpers: usize,
    /// The stack of each thread that runs a connection's calls, in bytes.
    call_stack: usize,
    /// How long past its deadline a call may run, in nanoseconds: the supervisor's
    /// watchdog's grace, which the worker applies itself once it has no supervisor.
    grace_ns: u64,
    /// This worker's number: its doorbell and its bit in the sleeper words of every
    /// segment's header.
    index: usize,
}

impl Worker {
    fn listen(mut self, control: &UnixStream) {
        let orphaned = loop {
            let (message, fd) = match control::recv::<ToWorker>(control) {
                Ok(m) => m,
                // The supervisor is gone (or spoke garbage): stop serving.
                Err(_) => break true,
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
                        // No thread of this worker serves it (`Row::attached`).
                        if let Some(row) = self.figures.row(row) {
                            row.attached.store(0, Ordering::Release);
                        }
                        // Nobody else takes this worker's calls on that connection: the
                        // supervisor answers them, or they would wait for ever.
                        let _ = send(&self.out, &FromWorker::AttachFailed { connection, reason });
                    }
                }
                ToWorker::Detach { connection } => {
                    // The thread ends after the call it is running, if any; waiting for
                    // it here would hold up every other connection's messages.
                    if let Some(c) = self.connections.remove(&connection) {
                        stop(&c, self.index);
                        self.detached.push(c.thread);
                    }
                    self.detached.retain(|t| !t.is_finished());
                    self.connections.retain(|_, c| !c.thread.is_finished());
                }
                ToWorker::Metrics { scrape } => {
                    // Answered by a thread of its own: reading the figures calls each
                    // module's `memlink_metrics`, which may wait (on a lock one of its
                    // calls holds); here it held up every connection's attach and
                    // detach meanwhile, and a client's call waited past its deadline for
                    // a thread to serve it. A scrape that comes while one read waits and
                    // another is queued goes without this worker, as a late one does.
                    let _ = self.scrapes.try_send(scrape);
                }
                ToWorker::Shutdown => break false,
                ToWorker::Init { .. } => {}
            }
        };
        // Finish the calls in flight; each connection's thread answers what is submitted
        // after, until the process exits.
        self.draining.store(true, Ordering::SeqCst);
        if orphaned {
            super::orphan::orphaned(Arc::clone(&self.figures), self.grace_ns);
        }
        for c in self.connections.values() {
            c.segment.header().ring(self.index);
        }
        // The calls of clients that went are waited for too, as long as an orphan's drain
        // is: nobody reads their replies, and a call that never returns must not keep the
        // daemon from stopping.
        let since = Instant::now();
        while !(self.connections.values().all(Connection::is_drained)
            && (self.detached.iter().all(JoinHandle::is_finished)
                || since.elapsed() >= super::orphan::ORPHAN_DRAIN))
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        // The supervisor bounds a shutdown until this (see `supervisor::bound_idle_drain`),
        // and the modules' own shutdown after it (`DRAINED_GRACE`).
        let _ = send(&self.out, &FromWorker::Drained);
        if let Some(watch) = self.watch.take() {
            watch.stop();
        }
        // An orphan has no supervisor to bound its modules' shutdown: it leaves it out.
        if !orphaned {
            shut_modules_down(&self.runtime);
        }
        // Its connections' threads end here, each after the refusal it is making: a slot
        // claimed and not yet answered is not left to look like the worker died.
        for c in self.connections.values() {
            stop(c, self.index);
        }
        for (_, c) in self.connections.drain() {
            let _ = c.thread.join();
        }
        // Its supervisor, which would have removed its copies' directory, is gone.
        if orphaned || super::orphan::gone() {
            crate::reload::leave_copies_dir();
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
        let drained = Arc::new(AtomicBool::new(false));
        let server = Server {
            runtime: Arc::clone(&self.runtime),
            figures: Arc::clone(&self.figures),
            claims: Arc::clone(&self.claims),
            row,
            segment: Arc::clone(&segment),
            in_place,
            stop: Arc::clone(&stop),
            draining: Arc::clone(&self.draining),
            drained: Arc::clone(&drained),
            refusing: Arc::default(),
            modules: HashMap::new(),
            last: None,
            epoch: 0,
            scratch: Vec::new(),
            spare: Arc::clone(&self.spare),
            helpers: self.helpers,
            call_stack: self.call_stack,
            helper_threads: Vec::new(),
            index: self.index,
            serving: Arc::new(std::array::from_fn(|_| AtomicBool::new(false))),
        };
        let thread = std::thread::Builder::new()
            .name(format!("memlink-conn-{connection}"))
            .stack_size(self.call_stack)
            .spawn(move || server.run())
            .map_err(|e| format!("cannot start its thread: {e}"))?;
        self.connections.insert(
            connection,
            Connection {
                stop,
                drained,
                segment,
                thread,
            },
        );
        Ok(())
    }
}

/// Unloads every module of `runtime` (in reverse order of their slots), each after its
/// calls, which runs its `memlink_shutdown` on this thread before the worker exits. Left to the last
/// reference to the runtime, it ran on whichever thread dropped that (the one answering
/// scrapes), while the process exited under it: no module's shutdown ran.
fn shut_modules_down(runtime: &Runtime) {
    for (handle, info) in runtime.modules().into_iter().rev() {
        if let Err(e) = runtime.unload(handle) {
            tracing::warn!(module = %info.name, "cannot unload the module at shutdown: {e}");
        }
    }
}

fn stop(c: &Connection, worker: usize) {
    c.stop.store(true, Ordering::SeqCst);
    c.segment.header().ring(worker);
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
