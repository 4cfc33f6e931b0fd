//! The supervisor: the socket, the handshakes, the connections and their segments, the
//! worker's life and the watchdog. It runs no module code, so a module's crash or hang
//! never takes it, or a client's segment, down.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use memlink_ipc::control::{self, Answer, FromWorker, Hello, LogRecord, ToWorker, Welcome};
use memlink_ipc::figures::{Figures, NO_DEADLINE};
use memlink_ipc::slot::SlotState;
use memlink_ipc::{clock, Failure, Segment, PROTOCOL_VERSION};
use rustix::process::{kill_process, Pid, Signal};

use super::config::{DaemonConfig, Trust};
use super::WORKER_SUBCOMMAND;

/// How long a client has to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a worker has to load the modules.
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the watchdog looks at the running calls.
const WATCH_EVERY: Duration = Duration::from_millis(5);

/// One client's connection.
pub(super) struct Conn {
    pub(super) segment: Arc<Segment>,
    fd: OwnedFd,
    in_place: bool,
    pub(super) row: u32,
    pub(super) pid: i32,
    pub(super) uid: u32,
}

/// The running worker, as the supervisor reaches it.
struct WorkerLink {
    pid: Pid,
    control: UnixStream,
}

/// What the supervisor's threads share.
struct Shared {
    pub(super) config: DaemonConfig,
    worker_exe: PathBuf,
    figures: Figures,
    figures_fd: OwnedFd,
    pub(super) conns: Mutex<HashMap<u64, Conn>>,
    free_rows: Mutex<Vec<u32>>,
    next_id: AtomicU64,
    worker: Mutex<Option<WorkerLink>>,
    pub(super) modules: Mutex<Vec<String>>,
    pub(super) shutting_down: AtomicBool,
    kill_reason: Mutex<Option<String>>,
    pub(super) restarts: AtomicU64,
    metrics: Mutex<Option<mpsc::Sender<String>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Serves `config`'s modules on its socket until SIGTERM or SIGINT, then finishes the
/// calls in flight and returns.
///
/// The worker is this executable started again with [`WORKER_SUBCOMMAND`] and
/// `--control-fd N`: an executable that calls `serve` must hand that invocation to
/// [`run_worker`](super::run_worker) (the `memlink` command does).
pub fn serve(mut config: DaemonConfig) -> Result<(), String> {
    if let Some(level) = &config.runtime.log_level {
        level
            .parse::<tracing::Level>()
            .map_err(|_| format!("log level `{level}`: use error, warn, info, debug or trace"))?;
    } else if let Some(level) = tracing::level_filters::LevelFilter::current().into_level() {
        // The worker forwards what this process's subscriber would show.
        config.runtime.log_level = Some(level.to_string());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    raise_open_files();
    let listener = bind(&config)?;
    let (figures, figures_fd) =
        Figures::create(config.max_connections).map_err(|e| format!("figures table: {e}"))?;
    let shared = Arc::new(Shared {
        free_rows: Mutex::new((0..config.max_connections).rev().collect()),
        config,
        worker_exe: exe,
        figures,
        figures_fd,
        conns: Mutex::default(),
        next_id: AtomicU64::new(1),
        worker: Mutex::default(),
        modules: Mutex::default(),
        shutting_down: AtomicBool::new(false),
        kill_reason: Mutex::default(),
        restarts: AtomicU64::new(0),
        metrics: Mutex::default(),
    });
    let (started_tx, started) = mpsc::channel();
    let keeper = {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || keep_worker(&shared, started_tx))
    };
    let first = started
        .recv()
        .unwrap_or_else(|_| Err("the worker keeper stopped".into()));
    if let Err(e) = first {
        let _ = std::fs::remove_file(&shared.config.socket);
        let _ = keeper.join();
        return Err(format!("the modules did not load: {e}"));
    }
    if let Some(addr) = shared.config.metrics_addr.clone() {
        let (for_metrics, for_health) = (Arc::clone(&shared), Arc::clone(&shared));
        super::http::spawn(
            &addr,
            move || render_metrics(&for_metrics),
            move || worker_up(&for_health),
        )?;
    }
    {
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || watchdog(&shared));
    }
    on_signals(Arc::clone(&shared))?;
    tracing::info!(
        socket = %shared.config.socket.display(),
        modules = ?*lock(&shared.modules),
        "serving"
    );
    for stream in listener.incoming() {
        if shared.shutting_down.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        std::thread::spawn(move || client(&shared, stream));
    }
    tracing::info!("shutting down: finishing the calls in flight");
    let _ = keeper.join();
    tracing::info!("stopped");
    Ok(())
}

/// Each connection holds a socket and a segment descriptor here: the soft limit on open
/// files is raised to the hard one, as servers do, so the connection limit is what
/// refuses clients rather than `EMFILE`.
fn raise_open_files() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("cannot raise the open files limit: {e}");
        }
    }
}

fn bind(config: &DaemonConfig) -> Result<UnixListener, String> {
    let path = &config.socket;
    if path.exists() {
        // A socket nobody answers on is left over from a daemon that died: replace it.
        if UnixStream::connect(path).is_ok() {
            return Err(format!("a daemon already serves on {}", path.display()));
        }
        std::fs::remove_file(path)
            .map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
    }
    let listener =
        UnixListener::bind(path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.socket_mode))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    Ok(listener)
}

fn on_signals(shared: Arc<Shared>) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            shared.shutting_down.store(true, Ordering::SeqCst);
            if let Some(w) = &*lock(&shared.worker) {
                let _ = control::send(&w.control, &ToWorker::Shutdown, None);
            }
            // Wakes the accept loop, which sees the flag; then no one can connect.
            let _ = UnixStream::connect(&shared.config.socket);
            let _ = std::fs::remove_file(&shared.config.socket);
        }
    });
    Ok(())
}

/// Starts the worker, and a new one each time it dies, until shutdown.
fn keep_worker(shared: &Arc<Shared>, started: mpsc::Sender<Result<(), String>>) {
    let mut first = Some(started);
    let mut backoff = Duration::from_millis(20);
    loop {
        let child = match start_worker(shared) {
            Ok(child) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                backoff = Duration::from_millis(20);
                child
            }
            Err(e) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                tracing::error!("cannot start a worker: {e}");
                if shared.shutting_down.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let status = wait(child);
        let reason = lock(&shared.kill_reason)
            .take()
            .unwrap_or_else(|| describe(status));
        *lock(&shared.worker) = None;
        let failed = fail_running(shared, &reason);
        if shared.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        shared.restarts.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            calls_failed = failed,
            "the worker died ({reason}); starting a new one"
        );
    }
}

fn wait(mut child: Child) -> io::Result<ExitStatus> {
    child.wait()
}

fn describe(status: io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("it exited with status {code}"),
            (None, Some(sig)) => format!("killed by signal {sig} ({})", signal_name(sig)),
            _ => format!("it ended: {s}"),
        },
        Err(e) => format!("it could not be waited for: {e}"),
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        4 => "SIGILL",
        6 => "SIGABRT",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        15 => "SIGTERM",
        24 => "SIGXCPU",
        _ => "a signal",
    }
}

fn start_worker(shared: &Arc<Shared>) -> Result<Child, String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    // The worker inherits its end; ours stays close-on-exec.
    rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty()).map_err(|e| e.to_string())?;
    let child = Command::new(&shared.worker_exe)
        .arg(WORKER_SUBCOMMAND)
        .arg("--control-fd")
        .arg(theirs.as_raw_fd().to_string())
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", shared.worker_exe.display()))?;
    drop(theirs);
    let pid = Pid::from_child(&child);
    let modules = match handshake(shared, &ours) {
        Ok(modules) => modules,
        Err(e) => {
            let _ = kill_process(pid, Signal::KILL);
            let _ = wait(child);
            return Err(e);
        }
    };
    *lock(&shared.modules) = modules;
    let reader = ours.try_clone().map_err(|e| e.to_string())?;
    // Connections that came while there was no worker are handed over with the rest;
    // the lock keeps a new one from slipping between the two.
    let conns = lock(&shared.conns);
    for (&id, conn) in conns.iter() {
        attach(&ours, id, conn);
    }
    *lock(&shared.worker) = Some(WorkerLink { pid, control: ours });
    drop(conns);
    let shared = Arc::clone(shared);
    std::thread::spawn(move || read_worker(&reader, &shared));
    Ok(child)
}

/// Sends the worker its settings and waits until it loaded the modules.
fn handshake(shared: &Shared, worker: &UnixStream) -> Result<Vec<String>, String> {
    let config = rmp_serde::to_vec(&shared.config).map_err(|e| e.to_string())?;
    let init = ToWorker::Init {
        config,
        rows: shared.figures.rows(),
    };
    control::send(worker, &init, Some(shared.figures_fd.as_fd()))
        .map_err(|e| format!("cannot reach the worker: {e}"))?;
    worker
        .set_read_timeout(Some(LOAD_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let answer = control::recv::<FromWorker>(worker);
    worker.set_read_timeout(None).map_err(|e| e.to_string())?;
    match answer {
        Ok((FromWorker::Ready(modules), _)) => Ok(modules),
        Ok((FromWorker::LoadFailed(why), _)) => Err(why),
        Ok((other, _)) => Err(format!("the worker said {other:?} before it was ready")),
        Err(e) => Err(format!("the worker did not get ready: {e}")),
    }
}

fn attach(worker: &UnixStream, id: u64, conn: &Conn) {
    let message = ToWorker::Attach {
        connection: id,
        geometry: conn.segment.geometry(),
        in_place: conn.in_place,
        row: conn.row,
    };
    if let Err(e) = control::send(worker, &message, Some(conn.fd.as_fd())) {
        // The worker is dying; the next one is handed every connection.
        tracing::warn!(
            connection = id,
            "cannot hand the connection to the worker: {e}"
        );
    }
}

/// Reads what the worker says after it is ready: module logs and metrics.
fn read_worker(worker: &UnixStream, shared: &Shared) {
    while let Ok((message, _)) = control::recv::<FromWorker>(worker) {
        match message {
            FromWorker::Log(record) => log(&record),
            FromWorker::Metrics(text) => {
                if let Some(tx) = lock(&shared.metrics).take() {
                    let _ = tx.send(text);
                }
            }
            FromWorker::Modules(names) => {
                tracing::info!(modules = ?names, "the served modules changed");
                *lock(&shared.modules) = names;
            }
            FromWorker::Ready(_) | FromWorker::LoadFailed(_) => {}
        }
    }
}

/// Emits a module's log record through this process's `tracing` subscriber.
fn log(r: &LogRecord) {
    let fields = r
        .fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                $level,
                module = %r.module,
                method = %r.method,
                trace_id = r.trace_id,
                fields = %fields,
                "{}",
                r.message
            )
        };
    }
    match r.level.as_str() {
        "ERROR" => emit!(tracing::Level::ERROR),
        "WARN" => emit!(tracing::Level::WARN),
        "INFO" => emit!(tracing::Level::INFO),
        "DEBUG" => emit!(tracing::Level::DEBUG),
        _ => emit!(tracing::Level::TRACE),
    }
}

/// Completes every call the dead worker was running with `reason`. Calls submitted but
/// not yet claimed stay for the next worker.
fn fail_running(shared: &Shared, reason: &str) -> usize {
    let failure = Failure::WorkerDied(reason.to_owned());
    let mut failed = 0;
    for conn in lock(&shared.conns).values() {
        let row = shared.figures.row(conn.row);
        let mut here = 0;
        for i in 0..conn.segment.geometry().slots {
            let slot = conn.segment.slot(i).expect("index below the slot count");
            if let Some(row) = row {
                row.running[i as usize].store(0, Ordering::Relaxed);
            }
            if slot.state() == Some(SlotState::Running) {
                slot.finish_failure(&failure, 1.0);
                here += 1;
            }
        }
        if let Some(row) = row {
            row.errors.fetch_add(here, Ordering::Relaxed);
        }
        failed += here as usize;
    }
    failed
}

/// Ends the worker when a call runs past its deadline by more than the grace: a module
/// that does not return cannot be stopped any other way.
fn watchdog(shared: &Shared) {
    let grace = shared.config.watchdog_grace_ms.saturating_mul(1_000_000);
    loop {
        std::thread::sleep(WATCH_EVERY);
        let Some(pid) = lock(&shared.worker).as_ref().map(|w| w.pid) else {
            continue;
        };
        let now = clock::now_ns();
        let mut late = None;
        for (&id, conn) in lock(&shared.conns).iter() {
            let Some(row) = shared.figures.row(conn.row) else {
                continue;
            };
            for (slot, running) in row.running.iter().enumerate() {
                let deadline = running.load(Ordering::Relaxed);
                if deadline != 0 && deadline != NO_DEADLINE && now > deadline.saturating_add(grace)
                {
                    late = Some((id, slot, (now - deadline) / 1_000_000));
                }
            }
        }
        if let Some((id, slot, ms)) = late {
            *lock(&shared.kill_reason) = Some(format!(
                "timeout: a call (connection {id}, slot {slot}) ran {ms} ms past its deadline and the watchdog ended the worker"
            ));
            let _ = kill_process(pid, Signal::KILL);
        }
    }
}

/// One client: the handshake, then waiting for it to hang up.
fn client(shared: &Shared, stream: UnixStream) {
    let (id, row) = match welcome(shared, &stream) {
        Ok(v) => v,
        Err(why) => {
            tracing::warn!("connection refused: {why}");
            let _ = control::send(&stream, &Answer::Refused(why), None);
            return;
        }
    };
    // The client sends nothing more; its socket closing is how it says goodbye (or dies).
    let _ = stream.set_read_timeout(None);
    let mut buf = [0u8; 256];
    loop {
        match (&stream).read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    let conn = lock(&shared.conns).remove(&id);
    if let Some(conn) = conn {
        conn.segment.header().closed.store(1, Ordering::SeqCst);
        if let Some(w) = &*lock(&shared.worker) {
            let _ = control::send(&w.control, &ToWorker::Detach { connection: id }, None);
        }
    }
    lock(&shared.free_rows).push(row);
    tracing::debug!(connection = id, "client gone");
}

/// Checks a client's hello, makes its segment and hands it to the worker and the client.
fn welcome(shared: &Shared, stream: &UnixStream) -> Result<(u64, u32), String> {
    stream
        .set_read_timeout(Some(HELLO_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let (hello, fd) = control::recv::<Hello>(stream).map_err(|e| format!("bad hello: {e}"))?;
    if fd.is_some() {
        return Err("a hello with a descriptor".into());
    }
    if hello.version != PROTOCOL_VERSION {
        return Err(format!(
            "the client speaks protocol {}, the daemon {PROTOCOL_VERSION}",
            hello.version
        ));
    }
    let geometry = hello.geometry.checked()?;
    if geometry.len() > shared.config.max_shm_per_client {
        return Err(format!(
            "the client asks for {} bytes of shared memory; the limit per client is {}",
            geometry.len(),
            shared.config.max_shm_per_client
        ));
    }
    let cred = rustix::net::sockopt::socket_peercred(stream)
        .map_err(|e| format!("cannot learn the client's credentials: {e}"))?;
    let uid = cred.uid.as_raw();
    let in_place =
        shared.config.trust == Trust::SameUser && uid == rustix::process::getuid().as_raw();
    let row = lock(&shared.free_rows).pop().ok_or_else(|| {
        format!(
            "the daemon holds its limit of {} connections",
            shared.config.max_connections
        )
    })?;
    let made = Segment::create(geometry);
    let (segment, fd) = match made {
        Ok(v) => v,
        Err(e) => {
            lock(&shared.free_rows).push(row);
            return Err(format!("cannot make the segment: {e}"));
        }
    };
    if let Some(r) = shared.figures.row(row) {
        for v in [&r.calls, &r.errors, &r.bytes_in, &r.bytes_out] {
            v.store(0, Ordering::Relaxed);
        }
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let conn = Conn {
        segment: Arc::new(segment),
        fd,
        in_place,
        row,
        pid: cred.pid.as_raw_nonzero().get(),
        uid,
    };
    let welcome = Answer::Welcome(Welcome {
        version: PROTOCOL_VERSION,
        connection: id,
        geometry,
        in_place,
        max_shm: shared.config.max_shm_per_client,
        modules: lock(&shared.modules).clone(),
    });
    let sent = control::send(stream, &welcome, Some(conn.fd.as_fd()));
    let mut conns = lock(&shared.conns);
    if let Some(w) = &*lock(&shared.worker) {
        attach(&w.control, id, &conn);
    }
    conns.insert(id, conn);
    drop(conns);
    if let Err(e) = sent {
        lock(&shared.conns).remove(&id);
        lock(&shared.free_rows).push(row);
        return Err(format!("cannot answer the client: {e}"));
    }
    tracing::debug!(connection = id, uid, in_place, "client connected");
    Ok((id, row))
}

/// Asks the worker for its runtime's metrics.
fn worker_metrics(shared: &Shared) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    *lock(&shared.metrics) = Some(tx);
    {
        let worker = lock(&shared.worker);
        control::send(&worker.as_ref()?.control, &ToWorker::Metrics, None).ok()?;
    }
    rx.recv_timeout(Duration::from_secs(2)).ok()
}

/// Whether a worker is up.
fn worker_up(shared: &Shared) -> bool {
    lock(&shared.worker).is_some()
}

/// The per-connection figures.
fn figures_of<'a>(shared: &'a Shared, conn: &Conn) -> Option<&'a memlink_ipc::figures::Row> {
    shared.figures.row(conn.row)
}

/// The whole exposition: the worker's runtime, then the daemon's own figures.
fn render_metrics(shared: &Shared) -> String {
    let mut out = worker_metrics(shared).unwrap_or_default();
    let conns = shared.conns.lock().unwrap_or_else(|p| p.into_inner());
    let _ = writeln!(
        out,
        "# HELP memlink_daemon_connections Client connections open."
    );
    let _ = writeln!(out, "# TYPE memlink_daemon_connections gauge");
    let _ = writeln!(out, "memlink_daemon_connections {}", conns.len());
    let _ = writeln!(
        out,
        "# HELP memlink_daemon_worker_restarts_total Workers started again after one died."
    );
    let _ = writeln!(out, "# TYPE memlink_daemon_worker_restarts_total counter");
    let _ = writeln!(
        out,
        "memlink_daemon_worker_restarts_total {}",
        shared.restarts.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP memlink_daemon_worker_up Whether a worker is serving."
    );
    let _ = writeln!(out, "# TYPE memlink_daemon_worker_up gauge");
    let _ = writeln!(
        out,
        "memlink_daemon_worker_up {}",
        u8::from(worker_up(shared))
    );
    let families = [
        ("calls", "Calls a client made."),
        ("errors", "Calls of a client that ended in an error."),
        ("bytes_in", "Bytes of arguments a client sent."),
        ("bytes_out", "Bytes of results a client received."),
    ];
    for (name, help) in families {
        let _ = writeln!(out, "# HELP memlink_daemon_client_{name}_total {help}");
        let _ = writeln!(out, "# TYPE memlink_daemon_client_{name}_total counter");
        let mut ids: Vec<_> = conns.keys().copied().collect();
        ids.sort_unstable();
        for id in ids {
            let conn = &conns[&id];
            let Some(row) = figures_of(shared, conn) else {
                continue;
            };
            let value = match name {
                "calls" => &row.calls,
                "errors" => &row.errors,
                "bytes_in" => &row.bytes_in,
                _ => &row.bytes_out,
            };
            let _ = writeln!(
                out,
                "memlink_daemon_client_{name}_total{{connection=\"{id}\",pid=\"{}\",uid=\"{}\"}} {}",
                conn.pid,
                conn.uid,
                value.load(Ordering::Relaxed)
            );
        }
    }
    out
}
