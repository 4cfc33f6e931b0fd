//! The worker processes' lives: starting each (and again when it dies), the handshake,
//! handing it the connections, reading what it says, failing the calls it was running
//! when it died, and the watchdog that ends one whose call overran its deadline.

use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use memlink_ipc::control::{self, FromWorker, LogRecord, ToWorker};
use memlink_ipc::figures::Figures;
use memlink_ipc::slot::{Name, SlotState};
use memlink_ipc::{clock, Failure};
use rustix::process::{kill_process, Pid, Signal};

use super::config::WorkerPlan;
use super::late::late_call;
use super::opening;
use super::stand_in::StandIn;
use super::state::{lock, Conn, Shared, Worker, WorkerLink};
use super::WORKER_SUBCOMMAND;

/// How long a worker has to load its modules.
const LOAD_TIMEOUT: Duration = Duration::from_secs(60);

/// Held while a worker's end of its control socket is inheritable (see [`start`]).
static SPAWNING: Mutex<()> = Mutex::new(());
/// The link to the executable of the process reading it.
const SELF_EXE: &str = "/proc/self/exe";

/// How often the watchdog looks at the running calls.
const WATCH_EVERY: Duration = Duration::from_millis(5);

/// Starts worker `index`, and a new one each time it dies, until shutdown. The first
/// start's outcome goes to `started`.
pub(super) fn keep(shared: &Arc<Shared>, index: usize, started: mpsc::Sender<Result<(), String>>) {
    let worker = &shared.workers[index];
    let mut first = Some(started);
    let mut backoff = Duration::from_millis(20);
    loop {
        let (child, reader_done) = match start(shared, index) {
            Ok(started) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                // Started while the daemon began to stop (the last one died meanwhile):
                // the shutdown found no worker to tell, so this one is told here. `start`
                // set the link first, so either the shutdown saw it, or this sees the
                // flag the shutdown set before it looked (both may: a second Shutdown
                // is one the worker no longer reads).
                if shared.shutting_down.load(Ordering::SeqCst) {
                    worker.send(&ToWorker::Shutdown);
                }
                started
            }
            Err(e) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                tracing::error!(worker = %worker.plan.name, "cannot start a worker: {e}");
                if shared.shutting_down.load(Ordering::SeqCst) {
                    refuse_while_stopping(shared, index);
                    return;
                }
                // Until a start succeeds, no process takes its calls: they are answered
                // with why, not left to wait in their slots (a client without a
                // deadline waited for good).
                let reason = format!(
                    "the worker serving the module is down: it died, and could not be \
                     started again ({e}); it is tried again every few seconds"
                );
                stand_in_while_down(shared, index, reason);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        let pid = Pid::from_child(&child);
        let began = Instant::now();
        // No process to end any more: the watchdog leaves this worker alone from here,
        // before the reap (after it, the pid may be another process's).
        let status = wait(shared, child, || *lock(&worker.link) = None);
        let killed = lock(&worker.kill_reason).take();
        let ended_by_us = killed.is_some();
        let crashed = killed.is_none() && opening::crashed(&status);
        let reason = killed.unwrap_or_else(|| describe_with_limits(status, &worker.plan));
        // What it said before it died is read before it is judged: its reader ends at
        // the end of its socket, which a process it forked and never exec'd may hold.
        let _ = reader_done.recv_timeout(Duration::from_secs(2));
        worker
            .openings
            .took_down(&worker.plan.name, pid, &reason, crashed);
        // Its stand-ins end before its running calls are failed: a call one of them is
        // failing is not failed twice, and calls submitted from now on wait for the next
        // worker, which is handed every connection anew.
        let stand_ins = std::mem::take(&mut *lock(&worker.stand_ins));
        StandIn::finish_all(stand_ins.into_values());
        let failed = fail_running(shared, index, &reason);
        // Its threads are gone with it: no row is held for them any more.
        for row in (0..worker.figures.rows()).filter_map(|r| worker.figures.row(r)) {
            row.attached.store(0, Ordering::Release);
        }
        if shared.shutting_down.load(Ordering::SeqCst) {
            refuse_while_stopping(shared, index);
            return;
        }
        worker.restarts.fetch_add(1, Ordering::Relaxed);
        let lived = began.elapsed();
        // Died on its own soon after it started, running no call (a limit of the
        // machine's it meets at once, say): started again after a pause that doubles
        // each time. Before, it was started again at once, dozens of times a second,
        // each logged. A worker the watchdog ended, or one a call took down, is started
        // again at once: its death says nothing of the next one's.
        if lived >= STEADY || ended_by_us || failed > 0 {
            backoff = Duration::from_millis(20);
            tracing::error!(
                worker = %worker.plan.name,
                calls_failed = failed,
                "the worker died ({reason}); starting a new one"
            );
            continue;
        }
        tracing::error!(
            worker = %worker.plan.name,
            "the worker died {lived:.0?} after it started, running no call ({reason}); \
             starting a new one in {backoff:.0?}"
        );
        // Its calls wait for the next one meanwhile, as for any restart, each until its
        // deadline; a stop ends the pause, and starts no worker.
        if pause_unless_stopping(shared, backoff) {
            refuse_while_stopping(shared, index);
            return;
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Sleeps for `pause`, in slices, unless the daemon starts to stop meanwhile: whether
/// it did.
fn pause_unless_stopping(shared: &Shared, pause: Duration) -> bool {
    let until = Instant::now() + pause;
    loop {
        if shared.shutting_down.load(Ordering::SeqCst) {
            return true;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        std::thread::sleep(left.min(Duration::from_millis(10)));
    }
}

/// How long a worker must have served for its death to start the next one at once: one
/// that dies sooner is started again after a pause that grows (see [`keep`]).
const STEADY: Duration = Duration::from_secs(5);

/// Waits for worker process `child` to end, runs `ended`, removes the private copies of
/// modules it left (see `super::copies`), and reaps it: until the reap, the process's
/// number is no new process's.
fn wait(shared: &Shared, mut child: Child, ended: impl FnOnce()) -> io::Result<ExitStatus> {
    use rustix::process::{waitid, WaitId, WaitIdOptions};
    let pid = Pid::from_child(&child);
    let exited = loop {
        match waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other.is_ok(),
        }
    };
    ended();
    if let (true, Some(copies)) = (exited, &shared.copies) {
        copies.remove_copies_of(child.id());
    }
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

/// [`describe`], with what the worker's limits make of an abort: a process past its
/// `memory_bytes` (`RLIMIT_AS`) fails an allocation, and Rust aborts the process when an
/// allocation fails, so a call that needed more memory than the limit leaves ends there.
///
/// `SIGXCPU` is what `cpu_seconds` (`RLIMIT_CPU`) sends a worker that has used it up.
fn describe_with_limits(status: io::Result<ExitStatus>, plan: &WorkerPlan) -> String {
    let signal = status.as_ref().ok().and_then(|s| s.signal());
    let ended = describe(status);
    match (signal, plan.limits.memory_bytes, plan.limits.cpu_seconds) {
        (Some(6), Some(limit), _) => format!(
            "{ended}; its memory is limited to {limit} bytes (`memory_bytes`), and a \
             worker aborts when an allocation fails: a call that needed more memory than \
             that may have ended it (as may a module's own abort)"
        ),
        (Some(24), _, Some(limit)) => format!(
            "{ended}; its CPU time is limited to {limit} s (`cpu_seconds`), over the \
             worker's whole life, which it had used up"
        ),
        _ => ended,
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

/// Starts a process for worker `index`: the process, and what says that the thread
/// reading it ended. A watched file that takes the process down as it loads it at its
/// start is left alone by the next, started at once (see `super::opening`).
fn start(shared: &Arc<Shared>, index: usize) -> Result<(Child, mpsc::Receiver<()>), String> {
    loop {
        if let Some(started) = start_once(shared, index)? {
            return Ok(started);
        }
    }
}

/// One try of [`start`]: `None` when a watched file took the process down as it
/// loaded it, which is now left alone.
fn start_once(
    shared: &Arc<Shared>,
    index: usize,
) -> Result<Option<(Child, mpsc::Receiver<()>)>, String> {
    let worker = &shared.workers[index];
    // A reason set for the last process after it was reaped is no reason of this one's.
    *lock(&worker.kill_reason) = None;
    let (child, ours) = spawn(shared, index)?;
    let pid = Pid::from_child(&child);
    let modules = match handshake(shared, index, &ours, pid) {
        Ok(modules) => modules,
        Err(failed) => return not_started(shared, index, child, failed),
    };
    keep_serves(&worker.plan.name, &worker.serves, index, modules);
    // Read before handing it the connections: it answers each it cannot take, and a
    // full socket would stop it reading ours while we send under the lock. Without a
    // reader the worker cannot be kept: it is ended, and started again after a while.
    let (done, reader_done) = mpsc::channel::<()>();
    let reading = ours.try_clone().and_then(|reader| {
        let shared = Arc::clone(shared);
        std::thread::Builder::new()
            .name(format!("memlink-read-{}", worker.plan.name))
            .spawn(move || {
                read(&reader, &shared, index, pid);
                drop(done);
            })
    });
    if let Err(e) = reading {
        let _ = kill_process(pid, Signal::KILL);
        let _ = wait(shared, child, || {});
        return Err(format!("cannot start a thread to read the worker: {e}"));
    }
    // Connections that came while there was no worker are handed over with the rest;
    // the lock keeps a new one from slipping between the two.
    let conns = lock(&shared.conns);
    // A new process may take the connections the last one could not, and the ones it
    // could not be started for.
    *lock(&worker.down) = None;
    lock(&worker.stand_ins).clear();
    for (&id, conn) in conns.iter() {
        attach(&ours, &worker.figures, id, conn);
    }
    *lock(&worker.link) = Some(WorkerLink { pid, control: ours });
    drop(conns);
    Ok(Some((child, reader_done)))
}

/// Starts the process of worker `index`, and its end of the control socket.
fn spawn(shared: &Shared, index: usize) -> Result<(Child, UnixStream), String> {
    let worker = &shared.workers[index];
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    // The worker inherits its end; ours stays close-on-exec. Until the end is closed
    // here, any process started would inherit it: two workers starting at once (both
    // restarted after a crash) would each hold the other's end, which then never reads
    // as closed when that worker dies, and the thread reading it never ends. Starts
    // take turns over that window.
    let spawning = SPAWNING.lock().unwrap_or_else(|p| p.into_inner());
    rustix::io::fcntl_setfd(&theirs, rustix::io::FdFlags::empty()).map_err(|e| e.to_string())?;
    // The executable the supervisor runs, through the link the kernel keeps to it: a
    // worker started again after `worker_exe` was removed or replaced (a package
    // upgrade renames a new build over it) runs the supervisor's own build, where the
    // path would name nothing, or a build of another version. (`worker_exe` was read
    // through the same link, so a daemon runs where `/proc` is.) Its path is the
    // worker's `argv[0]`, which `ps` shows; the worker names itself for the rest
    // (`worker::run`), where the kernel would name it `exe`.
    let child = Command::new(SELF_EXE)
        .arg0(&shared.worker_exe)
        .arg(WORKER_SUBCOMMAND)
        .arg("--control-fd")
        .arg(theirs.as_raw_fd().to_string())
        // Not read by the worker (the supervisor tells it everything): it names the
        // process in `ps`.
        .arg("--worker")
        .arg(&worker.plan.name)
        .stdin(Stdio::null())
        .envs(malloc_env(&worker.plan))
        // Not inherited from this process's own environment when it has no directory.
        .env_remove(super::copies::ENV)
        .envs(
            shared
                .copies
                .as_ref()
                .map(|c| (super::copies::ENV, c.path())),
        )
        // Whom the worker's lifeline watches (`super::orphan`): a supervisor that dies
        // before the worker looks is seen gone all the same.
        .env(
            super::orphan::SUPERVISOR_ENV,
            std::process::id().to_string(),
        )
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", shared.worker_exe.display()))?;
    drop(theirs);
    drop(spawning);
    Ok((child, ours))
}

/// The end of a start whose handshake `failed`: the process ended and reaped, and
/// either `None` (a watched file took it down as it loaded it, and is now left alone:
/// [`start`] tries again) or the error that names what it was loading.
fn not_started(
    shared: &Shared,
    index: usize,
    child: Child,
    failed: Handshake,
) -> Result<Option<(Child, mpsc::Receiver<()>)>, String> {
    let worker = &shared.workers[index];
    let pid = Pid::from_child(&child);
    let e = match failed {
        Handshake::Refused(why) => {
            let _ = kill_process(pid, Signal::KILL);
            let _ = wait(shared, child, || {});
            let elsewhere = served_elsewhere(shared, index, &why);
            return Err(why + &elsewhere);
        }
        // A worker that died while it loaded (a library's constructor crashed it) is
        // reaped for how it ended; one that took too long (a constructor that never
        // returns) is ended first. Either way the error names what it was loading.
        Handshake::Ended(e) => e,
    };
    let timed_out = matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    );
    let _ = kill_process(pid, Signal::KILL);
    let status = wait(shared, child, || {});
    // A start that timed out had been opening its last file for the whole bound (the
    // handshake's wait starts again at each file).
    let blame = timed_out || opening::crashed(&status);
    let ended = describe(status);
    let how = match timed_out {
        true => format!(
            "it did not finish loading it within {}s",
            LOAD_TIMEOUT.as_secs()
        ),
        false => ended.clone(),
    };
    if worker
        .openings
        .took_down(&worker.plan.name, pid, &how, blame)
    {
        return Ok(None);
    }
    let loading = loading(shared, index);
    Err(if timed_out {
        format!(
            "the worker did not get ready within {}s while it loaded {loading}: it was ended",
            LOAD_TIMEOUT.as_secs()
        )
    } else {
        format!("the worker died while it loaded {loading}: {ended}")
    })
}

/// Records the `modules` a started process of worker `index` (named `worker`) serves.
/// A group's worker keeps the names it started with, which the main worker leaves to it
/// (its claims, set after its first start): a name it no longer serves is answered
/// `UnknownModule` by it, and a new one by the main worker, rather than by nobody.
fn keep_serves(worker: &str, serves: &Mutex<Vec<String>>, index: usize, modules: Vec<String>) {
    let mut serves = lock(serves);
    if index == 0 || serves.is_empty() {
        *serves = modules;
    } else if *serves != modules {
        tracing::warn!(
            worker,
            before = ?*serves,
            now = ?modules,
            "a restarted worker serves other modules than before; calls keep going to it \
             for the first ones only"
        );
    }
}

/// The environment a worker with a memory limit starts with: the C allocator's pools
/// kept to [`MALLOC_ARENAS`], unless the daemon's own environment says otherwise. glibc
/// reserves 64 MiB of address space for each pool, and makes one for each thread that
/// allocates while the others are busy, up to 8 a core; a limit on address space
/// (`memory_bytes`) counts those reservations, untouched as they are, and a few busy
/// connections used it up. A worker without the limit keeps the allocator's default.
fn malloc_env(plan: &WorkerPlan) -> Option<(&'static str, String)> {
    const VAR: &str = "MALLOC_ARENA_MAX";
    let limited = plan.limits.memory_bytes.is_some() && std::env::var_os(VAR).is_none();
    limited.then(|| (VAR, MALLOC_ARENAS.to_string()))
}

/// The C allocator's pools in a worker with a memory limit (see [`malloc_env`]).
const MALLOC_ARENAS: u32 = 2;

/// For worker `index`'s load refusal `why`: when it is a module's call to one this
/// worker does not load (`calls `basic`, which is not loaded`) that another worker
/// serves, what to do, since "load it first" reads as if it were loaded nowhere: a
/// module's nested calls reach the modules of its own worker only.
fn served_elsewhere(shared: &Shared, index: usize, why: &str) -> String {
    for (_, w) in shared
        .workers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
    {
        let mut names: Vec<String> = w
            .plan
            .modules
            .iter()
            .filter_map(|m| m.name.clone())
            .collect();
        names.extend(lock(&w.serves).iter().cloned());
        // The call names the module, and perhaps the versions it takes (`greeter@^1`).
        let calls = |n: &String| {
            why.contains(&format!("calls `{n}`, which is not loaded"))
                || why.contains(&format!("calls `{n}@")) && why.contains("which is not loaded")
        };
        if let Some(name) = names.iter().find(|n| calls(n)) {
            return format!(
                "; `{name}` is served by worker `{}`, and a module's calls reach the modules \
                 of its own worker only: give both the same `worker`",
                w.plan.name
            );
        }
    }
    String::new()
}

/// Why a worker did not get ready.
enum Handshake {
    /// It said why (a module that did not load), or could not be told its settings.
    Refused(String),
    /// It went silent: it ended, or took longer than [`LOAD_TIMEOUT`].
    Ended(io::Error),
}

/// The modules worker `index` loads when it starts, as an error names them: its files,
/// and the watched directory for the main worker.
fn loading(shared: &Shared, index: usize) -> String {
    let w = &shared.workers[index];
    let mut what: Vec<String> = w
        .plan
        .modules
        .iter()
        .map(|m| format!("{}", m.path.display()))
        .collect();
    if let (0, Some(dir)) = (index, &shared.config.watch) {
        what.push(format!("the modules in {}", dir.display()));
    }
    match what.is_empty() {
        true => "no module".to_owned(),
        false => what.join(", "),
    }
}

/// Sends the worker its settings and waits until it loaded its modules.
fn handshake(
    shared: &Shared,
    index: usize,
    worker: &UnixStream,
    pid: Pid,
) -> Result<Vec<String>, Handshake> {
    let w = &shared.workers[index];
    let config = shared.config.for_worker(&w.plan);
    let refused = |e: String| Handshake::Refused(e);
    let config = rmp_serde::to_vec(&config).map_err(|e| refused(e.to_string()))?;
    let init = ToWorker::Init {
        config,
        rows: w.figures.rows(),
        name: w.plan.name.clone(),
        index: index as u32,
        claims: lock(&w.claims).clone(),
        skip: w.openings.skipped(),
    };
    control::send(worker, &init, Some(w.figures_fd.as_fd()))
        .map_err(|e| refused(format!("cannot reach the worker: {e}")))?;
    worker
        .set_read_timeout(Some(LOAD_TIMEOUT))
        .map_err(|e| refused(e.to_string()))?;
    // The watched files it opens as it starts are told first, each before it is opened.
    // The bound is on the modules the settings list, then on each watched file (a
    // socket's timeout is per read): a directory of many modules slow to start is
    // waited for, one that never finishes loading is not.
    let mut until = std::time::Instant::now() + LOAD_TIMEOUT;
    let answer = loop {
        match control::recv_up_to::<FromWorker>(worker, control::MAX_WORKER_FRAME) {
            Ok((FromWorker::Opening(file), _)) => {
                w.openings.said(pid, Some(file));
                until = std::time::Instant::now() + LOAD_TIMEOUT;
            }
            Ok((FromWorker::Opened, _)) => w.openings.said(pid, None),
            other => break other,
        }
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break Err(io::Error::from(io::ErrorKind::TimedOut));
        }
        worker
            .set_read_timeout(Some(left))
            .map_err(|e| refused(e.to_string()))?;
    };
    worker
        .set_read_timeout(None)
        .map_err(|e| refused(e.to_string()))?;
    match answer {
        Ok((FromWorker::Ready(modules), _)) => Ok(modules),
        Ok((FromWorker::LoadFailed(why), _)) => Err(refused(why)),
        Ok((other, _)) => Err(refused(format!(
            "the worker said {other:?} before it was ready"
        ))),
        Err(e) => Err(Handshake::Ended(e)),
    }
}

/// Hands a connection to a worker, whose figures table is `figures`.
pub(super) fn attach(worker: &UnixStream, figures: &Figures, id: u64, conn: &Conn) {
    let message = ToWorker::Attach {
        connection: id,
        geometry: conn.segment.geometry(),
        in_place: conn.in_place,
        row: conn.row,
    };
    // Before the worker can start a thread for it (see `Row::attached`).
    if let Some(row) = figures.row(conn.row) {
        row.attached.store(1, Ordering::Release);
    }
    if let Err(e) = control::send(worker, &message, Some(conn.fd.as_fd())) {
        // The worker is dying; the next one is handed every connection.
        tracing::warn!(
            connection = id,
            "cannot hand the connection to the worker: {e}"
        );
    }
}

/// Reads what worker `index`, its process `pid`, says after it is ready: module logs,
/// metrics, changes, connections it cannot take.
fn read(stream: &UnixStream, shared: &Arc<Shared>, index: usize, pid: Pid) {
    let worker = &shared.workers[index];
    // Connections it cannot take go to a thread of their own, started with the first:
    // starting a stand-in takes the connections' lock, which the supervisor may hold
    // while it sends to this worker, and this thread must keep reading meanwhile.
    let mut cannot_take: Option<mpsc::Sender<(u64, String)>> = None;
    // Frames up to the workers' bound: a worker's metrics, and a module's log record,
    // may be megabytes (within `MAX_FRAME` a worker's metrics past it were never sent,
    // and every scrape waited out its timeout and went without them).
    while let Ok((message, _)) =
        control::recv_up_to::<FromWorker>(stream, control::MAX_WORKER_FRAME)
    {
        match message {
            FromWorker::Log(record) => log(&record),
            FromWorker::Metrics { scrape, text } => worker.metrics.answer(scrape, text),
            FromWorker::Drained => *lock(&worker.drained) = Some(std::time::Instant::now()),
            FromWorker::Modules(names) => {
                tracing::info!(worker = %worker.plan.name, modules = ?names, "the served modules changed");
                *lock(&worker.serves) = names;
            }
            FromWorker::AttachFailed { connection, reason } => {
                if cannot_take.is_none() {
                    cannot_take = stand_in_starter(shared, index, pid);
                }
                match &cannot_take {
                    Some(starter) => drop(starter.send((connection, reason))),
                    None => tracing::error!(
                        worker = %worker.plan.name,
                        connection,
                        "the worker cannot serve the connection ({reason}), and no thread \
                         can be started to answer its calls there: they wait for their deadlines"
                    ),
                }
            }
            FromWorker::Opening(file) => worker.openings.said(pid, Some(file)),
            FromWorker::Opened => worker.openings.said(pid, None),
            FromWorker::Ready(_) | FromWorker::LoadFailed(_) => {}
        }
    }
}

/// Starts the thread that starts stand-ins for the connections worker `index`, its
/// process `pid`, cannot take; `None` (logged) when no thread can be started, which the
/// next refused connection tries again.
fn stand_in_starter(
    shared: &Arc<Shared>,
    index: usize,
    pid: Pid,
) -> Option<mpsc::Sender<(u64, String)>> {
    let (tx, refused) = mpsc::channel::<(u64, String)>();
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("memlink-stand-ins".to_owned())
        .spawn(move || {
            for (connection, reason) in refused {
                stand_in(&shared, index, pid, connection, &reason);
            }
        })
        .map_err(|e| tracing::error!("cannot start a thread for stand-ins: {e}"))
        .ok()?;
    Some(tx)
}

/// Answers the calls to worker `index`'s modules on connection `id`, which its process
/// `pid` could not take, with `reason` (see `stand_in`).
fn stand_in(shared: &Arc<Shared>, index: usize, pid: Pid, id: u64, reason: &str) {
    let worker = &shared.workers[index];
    let conns = lock(&shared.conns);
    // The client is gone already: nothing to answer.
    let Some(conn) = conns.get(&id) else {
        return;
    };
    // The process was replaced meanwhile, and its successor handed the connection anew:
    // the successor answers for itself.
    if lock(&worker.link).as_ref().map(|l| l.pid) != Some(pid) {
        return;
    }
    tracing::warn!(
        worker = %worker.plan.name,
        connection = id,
        "the worker cannot serve the connection ({reason}); its calls there fail with that reason"
    );
    start_stand_in(shared, index, id, conn, reason);
}

/// Starts the stand-in answering the calls to worker `index`'s modules on connection
/// `id` (`conn`) with `reason`, kept among the worker's.
fn start_stand_in(shared: &Arc<Shared>, index: usize, id: u64, conn: &Conn, reason: &str) {
    let name = &shared.workers[index].plan.name;
    let failure = Failure::Other(format!(
        "worker `{name}` cannot serve this connection: {reason}"
    ));
    start_stand_in_failing(shared, index, id, conn, failure);
}

/// Answers the calls to worker `index`'s modules, which has exited at shutdown, with
/// "the daemon is shutting down" on every connection until the daemon stops: other
/// workers may still be finishing their calls, and a call submitted meanwhile was
/// answered by no one until the daemon was gone.
fn refuse_while_stopping(shared: &Arc<Shared>, index: usize) {
    let conns = lock(&shared.conns);
    for (&id, conn) in conns.iter() {
        start_stand_in_failing(shared, index, id, conn, Failure::ShuttingDown);
    }
}

/// Answers every call on connection `id` (`conn`), welcomed as the daemon began to stop,
/// with "the daemon is shutting down": no worker takes a connection any more.
pub(super) fn refuse_stopping(shared: &Arc<Shared>, id: u64, conn: &Conn) {
    for index in 0..shared.workers.len() {
        start_stand_in_failing(shared, index, id, conn, Failure::ShuttingDown);
    }
}

/// [`start_stand_in`] failing each call with `failure`.
fn start_stand_in_failing(
    shared: &Arc<Shared>,
    index: usize,
    id: u64,
    conn: &Conn,
    failure: Failure,
) {
    let worker = &shared.workers[index];
    // The rule the workers claim by, a name no client writes read as the empty one.
    let router = Arc::clone(shared);
    let ours = move |name: Result<Name, String>| {
        router.route(name.as_ref().map_or("", |n| n.as_str())) == index
    };
    // Counted as the worker counts a call (`connection::serve`). Left uncounted, the
    // calls a down worker's modules were asked for went missing from the client's
    // figures, failures and all.
    let (shared_row, row) = (Arc::clone(shared), conn.row);
    let count = move |args_len: Option<usize>| {
        if let Some(r) = shared_row.workers[index].figures.row(row) {
            r.count_refused(args_len.unwrap_or(0) as u64);
        }
    };
    let segment = Arc::clone(&conn.segment);
    match StandIn::start(segment, index, &worker.plan.name, failure, ours, count) {
        Ok(s) => {
            lock(&worker.stand_ins).insert(id, s);
        }
        Err(e) => tracing::error!(connection = id, "cannot start a stand-in: {e}"),
    }
}

/// Answers the calls to worker `index`'s modules on every connection with `reason`, while
/// no process runs it (see [`Worker::down`]); connections that come meanwhile get a
/// stand-in as they are accepted ([`stand_in_if_down`]).
///
/// [`Worker::down`]: super::state::Worker::down
fn stand_in_while_down(shared: &Arc<Shared>, index: usize, reason: String) {
    let conns = lock(&shared.conns);
    let worker = &shared.workers[index];
    let first = lock(&worker.down).replace(reason).is_none();
    if first {
        tracing::warn!(
            worker = %worker.plan.name,
            "calls to the worker's modules fail at once until it is started again"
        );
    }
    for (&id, conn) in conns.iter() {
        stand_in_if_down(shared, index, id, conn);
    }
}

/// Starts a stand-in for connection `id` answering the calls to worker `index`'s
/// modules, if no process runs it (called under the connections' lock, so that a start
/// that succeeds meanwhile, which takes it to clear them, comes after).
pub(super) fn stand_in_if_down(shared: &Arc<Shared>, index: usize, id: u64, conn: &Conn) {
    let worker = &shared.workers[index];
    let Some(reason) = lock(&worker.down).clone() else {
        return;
    };
    if lock(&worker.stand_ins).contains_key(&id) {
        return;
    }
    start_stand_in(shared, index, id, conn, &reason);
}

/// Emits a module's log record through this process's `tracing` subscriber; a worker's
/// own line as the daemon's, naming the part that said it (`from=memlink::watch`), with
/// none of a module record's empty fields.
fn log(r: &LogRecord) {
    if r.own {
        macro_rules! emit_own {
            ($level:expr) => {
                tracing::event!($level, from = %r.module, "{}", crate::log::OneLine(&r.message))
            };
        }
        return match r.level.as_str() {
            "ERROR" => emit_own!(tracing::Level::ERROR),
            "WARN" => emit_own!(tracing::Level::WARN),
            "INFO" => emit_own!(tracing::Level::INFO),
            "DEBUG" => emit_own!(tracing::Level::DEBUG),
            _ => emit_own!(tracing::Level::TRACE),
        };
    }
    let fields =
        crate::log::one_line_fields(r.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    macro_rules! emit {
        ($level:expr) => {
            tracing::event!(
                $level,
                module = %r.module,
                method = %r.method,
                trace_id = r.trace_id,
                fields = %fields,
                "{}",
                crate::log::OneLine(&r.message)
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

/// Completes every call dead worker `index` was running with `reason`. Calls submitted
/// but not yet claimed stay for the next worker; calls running in other workers go on.
///
/// A running call is the dead worker's when its table says so, or when the slot names
/// one of its modules (the worker clears its table entry just before it writes the
/// reply, so a death between the two leaves only the name to tell).
fn fail_running(shared: &Shared, index: usize, reason: &str) -> usize {
    let worker = &shared.workers[index];
    let failure = Failure::WorkerDied(reason.to_owned());
    let mut failed = 0;
    // A connection whose client is gone too: its calls' entries are cleared, so its row
    // can be freed (the replies go to a segment no one may read, which harms nobody).
    let (conns, retired) = (lock(&shared.conns), lock(&shared.retired));
    for conn in conns.values().chain(retired.values()) {
        let row = worker.figures.row(conn.row);
        let mut here = 0;
        for i in 0..conn.segment.geometry().slots {
            let slot = conn.segment.slot(i).expect("index below the slot count");
            let listed = row.is_some_and(|r| r.running[i as usize].swap(0, Ordering::Relaxed) != 0);
            if slot.state() != Some(SlotState::Running) {
                continue;
            }
            let named = slot
                .module_name()
                .map_or(index == 0, |n| shared.route(n.as_str()) == index);
            if listed || named {
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

/// Ends a worker when a call it runs is past its deadline by more than the grace: a
/// module that does not return cannot be stopped any other way. The calls of connections
/// whose client hung up are watched too, as their own connection's; and their rows are
/// freed once no call of theirs runs.
pub(super) fn watchdog(shared: &Shared) {
    let grace = shared.config.watchdog_grace_ms.saturating_mul(1_000_000);
    loop {
        std::thread::sleep(WATCH_EVERY);
        for worker in &shared.workers {
            let Some(pid) = lock(&worker.link).as_ref().map(|w| w.pid) else {
                continue;
            };
            let now = clock::now_ns();
            let late = {
                let (conns, retired) = (lock(&shared.conns), lock(&shared.retired));
                let rows = conns.iter().chain(retired.iter());
                rows.filter_map(|(&id, conn)| Some((id, worker.figures.row(conn.row)?)))
                    .find_map(|(id, row)| late_call(row, now, grace).map(|(s, ms)| (id, s, ms)))
            };
            if let Some((id, slot, ms)) = late {
                end_linked(worker, pid, Some(format!(
                    "timeout: a call (connection {id}, slot {slot}) ran {ms} ms past its deadline and the watchdog ended the worker"
                )));
            } else if let Some(reason) = worker.openings.overdue(pid, LOAD_TIMEOUT) {
                end_linked(worker, pid, Some(reason));
            }
        }
        release_rows(shared);
    }
}

/// Ends worker process `pid` for `reason` (given as how it ended), if it is still the
/// worker's: the link is cleared before the process is reaped (see [`wait`]), so a
/// process ended under the link's lock is no other process that took its number.
pub(super) fn end_linked(worker: &Worker, pid: Pid, reason: Option<String>) {
    let link = lock(&worker.link);
    if link.as_ref().map(|l| l.pid) == Some(pid) {
        if let Some(reason) = reason {
            *lock(&worker.kill_reason) = Some(reason);
        }
        let _ = kill_process(pid, Signal::KILL);
    }
}

/// Frees the rows of the connections whose client is gone once no worker runs a call of
/// theirs or has a thread that could (`Row::attached`, which a worker's thread clears
/// only after its last call's entry). The row then goes to the back of the free ones, a
/// connection's figures start from zero, and no call of another connection writes its
/// entries.
pub(super) fn release_rows(shared: &Shared) {
    let busy = |conn: &Conn| {
        shared.workers.iter().any(|w| {
            w.figures.row(conn.row).is_some_and(|r| {
                r.attached.load(Ordering::Acquire) != 0
                    || r.running.iter().any(|e| e.load(Ordering::Relaxed) != 0)
            })
        })
    };
    lock(&shared.retired).retain(|_, conn| {
        let keep = busy(conn);
        if !keep {
            lock(&shared.free_rows).push_back(conn.row);
        }
        keep
    });
}
