//! The supervisor: the socket, the accept loop, the connections and their segments. It
//! runs no module code, so a module's crash or hang never takes it, or a client's
//! segment, down; the worker processes' lives are in `workers`.

use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use memlink_ipc::control::{self, Answer, Claims, ToWorker};

use super::config::DaemonConfig;
use super::handshake::{welcome, LEAVE_WAIT};
use super::state::{lock, Shared, Worker};
use super::stops::{stop_workers, Stopper, Stops};
use super::{exposition, workers};

/// How long the accept loop pauses after `accept` failed for want of a resource.
const ACCEPT_PAUSE: Duration = Duration::from_millis(50);

/// Serves `config`'s modules on its socket until SIGTERM or SIGINT, then finishes the
/// calls in flight and returns.
///
/// The workers are this executable started again with
/// [`WORKER_SUBCOMMAND`](super::WORKER_SUBCOMMAND) and `--control-fd N`: an executable
/// that calls `serve` must hand that invocation to [`run_worker`](super::run_worker) (the
/// `memlink` command does), first thing in `main`: the descriptor
/// [`worker_control_fd`](super::worker_control_fd) names, taken with
/// [`take_worker_control`](super::take_worker_control).
///
/// It changes what the process's signals do, for good (a daemon is the process's
/// purpose): `SIGXFSZ` is ignored, `SIGCHLD`'s default action put back if it was ignored,
/// and `SIGTERM`, `SIGINT` and `SIGHUP` unblocked on the calling thread and caught for
/// the stop, so a host that waits for them itself (`sigwait`, `signalfd`) does not see
/// them.
pub fn serve(mut config: DaemonConfig) -> Result<(), String> {
    settle_log_level(&mut config)?;
    settle_signals();
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let plans = config.workers()?;
    // The socket's path is claimed first, so that a second daemon on it says so before
    // it binds anything else (its metrics address would be taken too), and held until
    // this one stops.
    let _claim = claim(&config)?;
    // Caught from here on, before anything is made that a stop must undo: a stop asked
    // while the workers start (their modules' init may take seconds) is kept and acted
    // on once they have, as any other. Before, it ended the daemon outright, its socket
    // file left behind and its workers told of it by a broken pipe.
    let stops = Stops::catch(&config.socket)?;
    raise_open_files()?;
    let workers = plans
        .into_iter()
        .map(|plan| Worker::new(plan, config.max_connections))
        .collect::<Result<Vec<_>, _>>()?;
    // Bound before the socket exists and the workers start, so a bad address leaves
    // neither behind.
    let metrics = config
        .metrics_addr
        .as_deref()
        .map(|addr| Ok::<_, String>((super::http::bind(addr)?, addr.to_owned())))
        .transpose()?;
    let listener = super::socket_file::bind(&config)?;
    // Only a watched directory's files load from private copies in a worker (a module
    // given by path loads from its file): a daemon that watches none makes no directory.
    let copies = config
        .watch
        .is_some()
        .then(super::copies::CopiesDir::new)
        .flatten();
    let shared = Arc::new(Shared::new(config, exe, workers, copies));
    // The threads that hold the state live as long as the process: what the daemon made
    // on disk is removed on each way out of here.
    let remove_copies = || {
        if let Some(copies) = &shared.copies {
            copies.remove();
        }
    };
    let keepers = match start_workers(&shared) {
        Ok(keepers) => keepers,
        Err(e) => {
            let _ = std::fs::remove_file(&shared.config.socket);
            remove_copies();
            return Err(format!("the modules did not load: {e}"));
        }
    };
    if let Some((server, addr)) = metrics {
        serve_metrics(&shared, server, &addr);
    }
    let stopper = Stopper::new(&listener, &shared.config.socket);
    if let Err(e) = start_watchdog(&shared) {
        stop_workers(&shared);
        let _ = std::fs::remove_file(&shared.config.socket);
        remove_copies();
        return Err(e);
    }
    stops.started(Arc::clone(&shared), stopper);
    tracing::info!(
        // Quoted, its control characters escaped: a newline in the path (any byte may be
        // one) made a line of its own in the log, which could pass for another record.
        socket = ?shared.config.socket,
        modules = ?shared.served(),
        workers = shared.workers.len(),
        "serving"
    );
    accept_until_stopped(&shared, &listener);
    tracing::info!("shutting down: finishing the calls in flight");
    bound_idle_drain(&shared);
    for keeper in keepers {
        let _ = keeper.join();
    }
    remove_copies();
    tracing::info!("stopped");
    Ok(())
}

/// Settles the dispositions and mask the daemon was started with (both survive `exec`,
/// so a wrapper or an init system may leave any), before a thread is made (each thread
/// starts with its maker's mask):
///
/// - `SIGCHLD`'s default action back if it was ignored: the kernel would then reap each
///   worker as it ends, so the daemon could not tell how one ended, nor keep its number
///   from another process until it has stopped signalling it (`workers::wait`).
/// - `SIGXFSZ` ignored: under a file-size limit (`ulimit -f`), growing a segment's or the
///   figures' memfd past it would kill the daemon (the default action) where it should
///   refuse that connection, or fail the start, saying why. The workers keep it ignored
///   (`exec` does).
/// - The stop signals unblocked: a daemon started with `SIGTERM` blocked never received
///   it, and ran on after its service manager asked it to stop.
fn settle_signals() {
    // SAFETY: `sigaction` is a plain C struct, for which all zeroes is a valid value.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: reads the action only (no new one given) into `now`, alive for the call.
    let read = unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &raw mut now) };
    if read == 0 && now.sa_sigaction == libc::SIG_IGN {
        // SAFETY: sets the default action, which runs no code of this process.
        unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
        tracing::info!("SIGCHLD was ignored: its default is put back, to reap the workers here");
    }
    // SAFETY: ignoring a signal runs no code of this process.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    // SAFETY: `sigset_t` is a plain C type, for which all zeroes is a valid value, and
    // `sigemptyset` initializes it; the signal numbers are valid.
    let mut stops: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `stops` is alive for each call; `pthread_sigmask` changes only the calling
    // thread's mask (which the daemon's threads, made from here on, inherit), and no old
    // mask is asked for.
    unsafe {
        libc::sigemptyset(&raw mut stops);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&raw mut stops, signal);
        }
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &raw const stops, std::ptr::null_mut());
    }
}

/// How long the workers may take to stop once no call of theirs runs (see
/// [`bound_idle_drain`]).
const IDLE_DRAIN: Duration = Duration::from_secs(10);

/// How long a worker that said `Drained` may take to shut its modules down and exit.
const DRAINED_GRACE: Duration = Duration::from_secs(30);

/// Bounds the shutdown once no call runs: a worker's connections' threads then see the
/// drain (and refuse later calls until it exits), and it says `Drained`, unless one
/// cannot run at all. One
/// started while the worker loaded a library whose constructor never returns (a watched
/// file) waits for the system loader's lock before its first line, and the worker
/// waited for it for good: the daemon never stopped. After [`IDLE_DRAIN`] with no call
/// running in any worker (the figures each keeps, which the worker's state does not
/// affect), the workers still alive that have not said `Drained` are ended. A call in
/// flight is waited for, as before. A worker that said `Drained` is given
/// [`DRAINED_GRACE`] to shut its modules down and exit: its teardown too can wait for
/// that lock.
fn bound_idle_drain(shared: &Arc<Shared>) {
    let shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .name("memlink-drain".to_owned())
        .spawn(move || {
            let mut idle_since = Instant::now();
            let mut ended = Vec::new();
            loop {
                std::thread::sleep(Duration::from_millis(20));
                let alive: Vec<_> = shared
                    .workers
                    .iter()
                    .filter_map(|w| {
                        let pid = lock(&w.link).as_ref()?.pid;
                        Some((w.plan.name.clone(), pid, *lock(&w.drained)))
                    })
                    .filter(|(_, pid, _)| !ended.contains(pid))
                    .collect();
                if alive.is_empty() {
                    return;
                }
                if shared.workers.iter().any(runs_a_call) {
                    idle_since = Instant::now();
                }
                for (name, pid, drained) in alive {
                    // A worker that said it drained is shutting its modules down, given
                    // `DRAINED_GRACE` for it (its teardown too can wait for the loader's
                    // lock that a library still loading holds); one that did not is
                    // given `IDLE_DRAIN` once no call runs.
                    let why = match drained {
                        Some(at) if at.elapsed() >= DRAINED_GRACE => format!(
                            "the worker has not exited {} s after its calls ended",
                            DRAINED_GRACE.as_secs()
                        ),
                        None if idle_since.elapsed() >= IDLE_DRAIN => format!(
                            "no call runs, and the worker has not stopped {} s into the \
                             shutdown (a thread of it waiting for a library that is still \
                             loading?)",
                            IDLE_DRAIN.as_secs()
                        ),
                        _ => continue,
                    };
                    tracing::error!(worker = %name, "{why}: it is ended");
                    if let Some(worker) = shared.workers.iter().find(|w| w.plan.name == name) {
                        workers::end_linked(worker, pid, None);
                    }
                    ended.push(pid);
                }
            }
        });
    // Without it the shutdown is as it was: unbounded only in that rare case.
    if let Err(e) = spawned {
        tracing::warn!("cannot start a thread to bound the shutdown: {e}");
    }
}

/// Whether worker `w` runs a call now (its figures say which of its slots do).
fn runs_a_call(w: &Worker) -> bool {
    (0..w.figures.rows())
        .filter_map(|r| w.figures.row(r))
        .flat_map(|row| row.running.iter())
        .any(|d| d.load(Ordering::Relaxed) != 0)
}

/// Starts the thread that ends calls past their deadline (`workers::watchdog`).
fn start_watchdog(shared: &Arc<Shared>) -> Result<(), String> {
    let shared = Arc::clone(shared);
    std::thread::Builder::new()
        .name("memlink-watchdog".to_owned())
        .spawn(move || workers::watchdog(&shared))
        .map(drop)
        .map_err(|e| format!("cannot start the watchdog: {e}"))
}

/// Checks the runtime's `log_level`, or, without one, sets it to what this process's
/// subscriber shows: the workers forward their modules' records at that level.
fn settle_log_level(config: &mut DaemonConfig) -> Result<(), String> {
    if let Some(level) = &config.runtime.log_level {
        level.parse::<tracing::Level>().map_err(|_| {
            format!("`[runtime] log_level` `{level}`: use error, warn, info, debug or trace")
        })?;
    } else if let Some(level) = tracing::level_filters::LevelFilter::current().into_level() {
        config.runtime.log_level = Some(level.to_string());
    }
    Ok(())
}

/// Serves the metrics and health endpoint `server` listens on (at `addr`).
fn serve_metrics(shared: &Arc<Shared>, server: std::net::TcpListener, addr: &str) {
    let (for_metrics, for_health) = (Arc::clone(shared), Arc::clone(shared));
    super::http::spawn(
        server,
        addr,
        move || exposition::render(&for_metrics),
        // Which workers are down, by name: a health check's log then says which.
        move || {
            let down: Vec<String> = for_health
                .workers
                .iter()
                .filter(|w| !w.is_up())
                .map(|w| format!("worker {}", w.plan.name))
                .collect();
            if down.is_empty() {
                Ok(())
            } else {
                Err(format!("down: {}", down.join(", ")))
            }
        },
    );
}

/// Accepts the connections `listener` is given until the daemon shuts down.
fn accept_until_stopped(shared: &Arc<Shared>, listener: &UnixListener) {
    // Whether the last accept failed for want of a resource: said once, not per failure.
    let mut starved = false;
    for stream in listener.incoming() {
        if shared.shutting_down.load(Ordering::SeqCst) {
            break;
        }
        match stream {
            Ok(stream) => {
                starved = false;
                accept(shared, stream);
            }
            // The client hung up before it was accepted: nothing is short.
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::Interrupted
                ) => {}
            // Out of descriptors (`EMFILE`: silent connections hold one each while
            // they have time to say hello), or of memory. The connection stays queued,
            // so `accept` fails again at once: tried again after a pause, not in a loop
            // that kept a core busy for as long as the shortage lasted.
            Err(e) => {
                if !std::mem::replace(&mut starved, true) {
                    tracing::warn!(
                        "cannot accept a connection: {e}; trying again every {} ms",
                        ACCEPT_PAUSE.as_millis()
                    );
                }
                std::thread::sleep(ACCEPT_PAUSE);
            }
        }
    }
}

/// Gives an accepted connection a thread of its own for its hello and its life, or
/// refuses it with the reason: past the limit of connections still to say hello, or when
/// no thread can be started (`RLIMIT_NPROC`, a pids cgroup, `RLIMIT_AS`), which costs
/// that connection only.
fn accept(shared: &Arc<Shared>, stream: UnixStream) {
    fn refuse(stream: &UnixStream, why: String) {
        tracing::warn!("connection refused: {why}");
        // A small answer into a fresh socket's empty buffer: it does not block.
        let _ = control::send(stream, &Answer::Refused(why), None);
    }
    if shared.greeting.fetch_add(1, Ordering::SeqCst) >= shared.config.max_connections as usize {
        shared.greeting.fetch_sub(1, Ordering::SeqCst);
        let why = format!(
            "{} connections are still to say hello, the daemon's limit",
            shared.config.max_connections
        );
        return refuse(&stream, why);
    }
    // Shared with the thread, so that the stream is still here to answer on when the
    // thread cannot start (the closure, and what it holds, is dropped then).
    let stream = Arc::new(stream);
    let started = {
        let (shared, stream) = (Arc::clone(shared), Arc::clone(&stream));
        std::thread::Builder::new()
            .name("memlink-client".to_owned())
            .spawn(move || client(&shared, &stream))
    };
    if let Err(e) = started {
        shared.greeting.fetch_sub(1, Ordering::SeqCst);
        let why = format!("the daemon cannot start a thread for the connection: {e}");
        refuse(&stream, why);
    }
}

/// Starts every worker, each kept by a thread of its own: the groups' workers first, so
/// the main worker learns which modules they serve and leaves those calls to them.
fn start_workers(shared: &Arc<Shared>) -> Result<Vec<std::thread::JoinHandle<()>>, String> {
    let mut keepers: Vec<std::thread::JoinHandle<()>> = Vec::new();
    let mut elsewhere = Vec::new();
    let order = (1..shared.workers.len()).chain([0]);
    for index in order {
        let worker = &shared.workers[index];
        *lock(&worker.claims) = match (index, shared.workers.len()) {
            (0, 1) => Claims::All,
            (0, _) => Claims::AllBut(elsewhere.clone()),
            _ => Claims::Own,
        };
        let (started_tx, started) = mpsc::channel();
        let keeper = {
            let shared = Arc::clone(shared);
            std::thread::Builder::new()
                .name(format!("memlink-keep-{}", worker.plan.name))
                .spawn(move || workers::keep(&shared, index, started_tx))
        };
        let first = match keeper {
            Ok(keeper) => {
                keepers.push(keeper);
                started
                    .recv()
                    .unwrap_or_else(|_| Err("the worker keeper stopped".into()))
            }
            Err(e) => Err(format!("cannot start its keeper thread: {e}")),
        };
        let failed = first.err().or_else(|| {
            // A name two workers serve would reach only one of them.
            let serves = lock(&worker.serves);
            let twice = serves.iter().find(|n| elsewhere.contains(*n))?;
            let other = shared.workers[1..]
                .iter()
                .find(|w| w.plan.name != worker.plan.name && lock(&w.serves).contains(twice))
                .map_or("another", |w| w.plan.name.as_str());
            Some(format!(
                "module `{twice}` is served by worker `{other}` already; give it one worker"
            ))
        });
        if let Some(e) = failed {
            stop_workers(shared);
            for keeper in keepers {
                let _ = keeper.join();
            }
            return Err(format!("worker {}: {e}", worker.plan.name));
        }
        let serves = lock(&worker.serves).clone();
        if index != 0 {
            // From now on, a group's worker (started again too) claims these names, and
            // the supervisor routes them to it by the same claims.
            *lock(&worker.claims) = Claims::Only(serves.clone());
        }
        elsewhere.extend(serves);
    }
    Ok(keepers)
}

/// The fewest open files the daemon starts with: its socket, lock file and figures, a
/// link to each worker, the signals' pipe, and two for each connection (its socket and
/// its segment) for a few connections. Below it, the daemon said it was serving and
/// then could accept no connection, trying again every 50 ms for good, while each
/// client waited 10 s for a welcome.
const MIN_OPEN_FILES: u64 = 32;

/// Raises the open files limit to its hard limit (each connection takes descriptors),
/// and refuses to start below [`MIN_OPEN_FILES`].
fn raise_open_files() -> Result<(), String> {
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
    match getrlimit(Resource::Nofile).current {
        Some(now) if now < MIN_OPEN_FILES => Err(format!(
            "this process may open {now} files (RLIMIT_NOFILE, `ulimit -n`; its hard limit \
             is {}): the daemon needs at least {MIN_OPEN_FILES}, for its socket, its workers \
             and its connections",
            limit
                .maximum
                .map_or_else(|| "unlimited".to_owned(), |m| m.to_string())
        )),
        _ => Ok(()),
    }
}

/// The lock that makes one daemon the socket path's: an exclusive `flock` on
/// `<socket>.lock`, held while the file stays open (the daemon's life).
struct Claim {
    /// Kept only to be closed when the daemon stops, which lets the lock go.
    _lock: std::fs::File,
}

/// Claims the socket's path for this daemon: takes `<socket>.lock` (refused while another
/// daemon holds it, starting or serving), then looks at what is at the path: nothing, or
/// a socket left by a daemon that died, which it removes. Under the lock no other daemon
/// checks or replaces the path meanwhile, so two starting at once cannot remove each
/// other's socket.
fn claim(config: &DaemonConfig) -> Result<Claim, String> {
    let path = &config.socket;
    if path.as_os_str().is_empty() {
        return Err("no socket: set `socket` in the settings".into());
    }
    // Before the lock file is made beside it: `bind` refused the path only once the
    // lock was made, which stayed behind, and the metrics address bound.
    memlink_ipc::check_socket_path(path)?;
    let mut lock_path = path.clone().into_os_string();
    lock_path.push(".lock");
    let file = super::socket_file::open_lock(path, Path::new(&lock_path))?;
    use rustix::fs::{flock, FlockOperation};
    if let Err(e) = flock(&file, FlockOperation::NonBlockingLockExclusive) {
        return Err(if e == rustix::io::Errno::WOULDBLOCK {
            format!(
                "a daemon already serves on {} (or is starting): another process holds {}; if no daemon of yours serves this path, remove that file and start again",
                path.display(),
                Path::new(&lock_path).display()
            )
        } else {
            format!("cannot lock {}: {e}", Path::new(&lock_path).display())
        });
    }
    // `symlink_metadata`: a link is judged as itself, so a link to a file is never
    // followed and its target never removed.
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            // A socket that refuses connections is left over from a daemon that died:
            // replace it. Any other failure leaves it alone, since it may still be live.
            match UnixStream::connect(path) {
                Ok(_) => return Err(format!("a daemon already serves on {}", path.display())),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path)
                        .map_err(|e| format!("cannot replace {}: {e}", path.display()))?;
                }
                Err(e) => {
                    return Err(format!(
                        "cannot tell whether a daemon serves on {}: {e}",
                        path.display()
                    ))
                }
            }
        }
        // Only a socket is ever replaced: anything else at the path is someone's file.
        Ok(meta) => {
            return Err(format!(
                "{} exists and is not a socket (it is {}): remove it or choose another socket path",
                path.display(),
                kind_of(meta.file_type())
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot look at {}: {e}", path.display())),
    }
    Ok(Claim { _lock: file })
}

/// What a file that is not a socket is, for the message refusing to replace it.
fn kind_of(kind: std::fs::FileType) -> &'static str {
    if kind.is_symlink() {
        "a symbolic link"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_file() {
        "a regular file"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else {
        "another kind of file"
    }
}

/// One client: the handshake, then waiting for it to hang up.
fn client(shared: &Arc<Shared>, stream: &Arc<UnixStream>) {
    let welcomed = welcome(shared, stream);
    let (id, row) = match welcomed {
        Ok(v) => v,
        Err(why) => {
            tracing::warn!("connection refused: {why}");
            let _ = control::send(stream, &Answer::Refused(why), None);
            return;
        }
    };
    // The client sends nothing more; its socket closing is how it says goodbye (or dies).
    let _ = stream.set_read_timeout(None);
    let mut buf = [0u8; 256];
    loop {
        match { &**stream }.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => continue,
        }
    }
    // Counted before the connection leaves the gauge, until its row is free again or
    // left to the watchdog: a client welcome once this one is gone waits for the row.
    shared.leaving.fetch_add(1, Ordering::SeqCst);
    let conn = lock(&shared.conns).remove(&id);
    match conn {
        Some(conn) => {
            conn.segment.header().closed.store(1, Ordering::SeqCst);
            for w in &shared.workers {
                w.send(&ToWorker::Detach { connection: id });
                lock(&w.stand_ins).remove(&id);
            }
            // A call of its may still run (a client killed mid-call): the watchdog
            // still holds it to its deadline, and the row goes back to the free ones
            // once no worker runs a call of this connection (`workers::release_rows`),
            // not before: a row's running calls are the watchdog's only record of them.
            lock(&shared.retired).insert(id, conn);
            // Without a call running, the workers' threads for it end at once: its row
            // is free before the next client is told the daemon holds its limit.
            let until = Instant::now() + LEAVE_WAIT;
            loop {
                workers::release_rows(shared);
                if !lock(&shared.retired).contains_key(&id) || Instant::now() >= until {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        None => lock(&shared.free_rows).push_back(row),
    }
    shared.leaving.fetch_sub(1, Ordering::SeqCst);
    tracing::debug!(connection = id, "client gone");
}

#[cfg(test)]
mod tests {
    use super::settle_log_level;
    use crate::daemon::DaemonConfig;

    /// A log level that is none names the key it came from and the levels there are.
    #[test]
    fn a_log_level_that_is_none_is_refused_naming_its_key() {
        let mut config = DaemonConfig::new("/s");
        config.runtime.log_level = Some("loud".to_owned());
        let err = settle_log_level(&mut config).unwrap_err();
        assert_eq!(
            err,
            "`[runtime] log_level` `loud`: use error, warn, info, debug or trace"
        );
        config.runtime.log_level = Some("debug".to_owned());
        assert_eq!(settle_log_level(&mut config), Ok(()));
    }
}
