//! A worker whose supervisor is gone: it ends itself, bounded, rather than serve nobody
//! for good.
//!
//! A worker learns of its supervisor's death two ways: the control socket ends, which
//! [`Worker::listen`](super::worker) reads while it serves, and its parent changes, which
//! the lifeline ([`watch`]) looks at for the whole life of the process. The control
//! socket is not read while the worker loads its modules (a library whose constructor
//! never returns kept an orphan loading for good) nor once the supervisor has told it to
//! stop (a stop whose supervisor was then killed kept the orphan draining a call that
//! never returns, for good).
//!
//! The lifeline does its work on its own thread, and touches no thread-local with a
//! destructor and starts no thread once it has begun (it logs by a plain write): either
//! takes the system loader's lock, which a library's constructor that never returns
//! holds for good.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlink_ipc::clock;
use memlink_ipc::figures::{Figures, NO_DEADLINE};
use rustix::process::{getpid, getppid, kill_process, Pid, Signal};

use super::late::late_call;

/// How long a worker whose supervisor is gone lets a call without a deadline run before
/// it ends itself. Its clients were told the daemon is gone, so the call's reply has no
/// reader: the wait only spares a module being cut off in the middle of a short call.
pub(super) const ORPHAN_DRAIN: Duration = Duration::from_secs(10);

/// How long an orphan may take in all, from its supervisor's death: its drain, then its
/// modules' shutdown when the supervisor had told it to stop (the supervisor's own bound
/// of that, `DRAINED_GRACE`, died with it).
const ORPHAN_LAST: Duration = Duration::from_secs(30);

/// The environment variable that tells a worker its supervisor's process number.
pub(super) const SUPERVISOR_ENV: &str = "MEMLINK_SUPERVISOR";

/// How long an orphan that runs no call more may take to exit (it has nothing else to do).
const IDLE_EXIT: Duration = Duration::from_secs(2);

/// How often the lifeline looks at the process's parent and, once orphaned, its calls.
const LOOK_EVERY: Duration = Duration::from_millis(20);

/// The supervisor's process number, once [`watch`] has read it (0 before).
static SUPERVISOR: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// Whether the supervisor is gone: the process's parent is no longer it.
pub(super) fn gone() -> bool {
    let supervisor = SUPERVISOR.load(Ordering::Relaxed);
    supervisor != 0 && getppid().map_or(0, |p| p.as_raw_nonzero().get()) != supervisor
}

/// Set once the worker serves (its modules loaded, as it sends `Ready`).
static SERVING: AtomicBool = AtomicBool::new(false);
/// Set when [`Worker::listen`](super::worker) reads the end of the control socket.
static ORPHANED: AtomicBool = AtomicBool::new(false);
/// Whether the lifeline runs (else an orphan's drain is bounded by a thread of its own).
static LIFELINE: AtomicBool = AtomicBool::new(false);

/// Ends this process, saying why on standard error by a plain write: a thread stuck in
/// module code cannot be unwound, and the watchdog that would have ended it died with the
/// supervisor.
fn end(why: &str) {
    let line =
        format!("memlink worker: the supervisor is gone and {why}: the worker ends itself\n");
    // Written only if it can be at once: a full pipe whose reader does not read would
    // otherwise keep the process from ending.
    let mut out = libc::pollfd {
        fd: 2,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: `out` is one valid `pollfd`, alive for the call; a zero timeout does not
    // wait.
    if unsafe { libc::poll(&raw mut out, 1, 0) } == 1 && out.revents & libc::POLLOUT != 0 {
        // SAFETY: writes `line`'s bytes, alive for the call, to descriptor 2; a closed
        // or bad descriptor is an error returned, and ignored.
        let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
    }
    crate::reload::leave_copies_dir();
    let _ = kill_process(getpid(), Signal::KILL);
}

/// Starts the lifeline: a thread that waits for the supervisor's death (the process's
/// parent changing, or [`orphaned`]), then ends the process at once if it does not serve
/// yet (no call runs; nobody will ever take what it loads), else bounds its drain as the
/// watchdog did and ends it [`ORPHAN_LAST`] on.
pub(super) fn watch(figures: Arc<Figures>, grace_ns: u64) {
    // The supervisor's number, as it told it (it may be gone, and this process another's
    // child, already); else the parent now.
    let parent = std::env::var(SUPERVISOR_ENV)
        .ok()
        .and_then(|pid| pid.parse().ok())
        .and_then(Pid::from_raw)
        .or_else(getppid);
    if let Some(pid) = parent {
        SUPERVISOR.store(pid.as_raw_nonzero().get(), Ordering::Relaxed);
    }
    let lifeline = std::thread::Builder::new()
        .name("memlink-lifeline".to_owned())
        .spawn(move || {
            while getppid() == parent && !ORPHANED.load(Ordering::Acquire) {
                std::thread::sleep(LOOK_EVERY);
            }
            if !SERVING.load(Ordering::Acquire) {
                return end("the worker had not finished loading its modules");
            }
            bound(&figures, grace_ns, Some(ORPHAN_LAST));
        });
    match lifeline {
        Ok(_) => LIFELINE.store(true, Ordering::Release),
        // The worker is as it was without one: the control socket's end is still noticed.
        Err(e) => tracing::warn!("cannot start a thread to watch the supervisor: {e}"),
    }
}

/// Tells the lifeline the worker serves: from now on an orphan drains its calls.
pub(super) fn serving() {
    SERVING.store(true, Ordering::Release);
}

/// The control socket ended: the supervisor is gone. The lifeline bounds the drain; without
/// one, a thread of its own does.
pub(super) fn orphaned(figures: Arc<Figures>, grace_ns: u64) {
    ORPHANED.store(true, Ordering::Release);
    if LIFELINE.load(Ordering::Acquire) {
        return;
    }
    let bounding = std::thread::Builder::new()
        .name("memlink-orphan".to_owned())
        .spawn(move || bound(&figures, grace_ns, None));
    // Nothing could bound the drain: end now rather than perhaps never.
    if bounding.is_err() {
        end("no thread can be started to bound its drain");
    }
}

/// Bounds an orphan's drain. Its watchdog went with the supervisor, and the drain joins
/// every connection's thread: a call that never returns kept the orphan, its modules and
/// their resources alive for good, out of reach of a restarted daemon. This applies the
/// watchdog's rule (a call past its deadline by more than the grace ends the process),
/// [`ORPHAN_DRAIN`] to a call without a deadline or with one past it, and `last` to the
/// whole, and ends the process with SIGKILL, as the watchdog would have ended it.
fn bound(figures: &Figures, grace_ns: u64, last: Option<Duration>) {
    let since = Instant::now();
    // Since when no call runs.
    let mut idle_since: Option<Instant> = None;
    // A deadline past the drain's end is held to it, as none is: a client may send one
    // years away, and only the deadlines within it are the watchdog's rule to apply.
    let drain_end = clock::now_ns().saturating_add(ORPHAN_DRAIN.as_nanos() as u64);
    loop {
        std::thread::sleep(LOOK_EVERY);
        let rows = (0..figures.rows()).filter_map(|r| figures.row(r));
        let now = clock::now_ns();
        if rows
            .clone()
            .any(|row| late_call(row, now, grace_ns).is_some())
        {
            return end("a call ran past its deadline");
        }
        let running: Vec<u64> = rows
            .flat_map(|row| row.running.iter())
            .map(|e| e.load(Ordering::Relaxed))
            .filter(|&d| d != 0)
            .collect();
        let unbounded = running.iter().any(|&d| d == NO_DEADLINE || d > drain_end);
        idle_since = match (running.is_empty(), idle_since) {
            (true, None) => Some(Instant::now()),
            (true, idle) => idle,
            (false, _) => None,
        };
        // An orphan that learnt it from its control socket skips its modules' shutdown:
        // with no call left it exits at once, unless a thread it waits for cannot end (a
        // watched library's constructor that never returns holds the watch's).
        if ORPHANED.load(Ordering::Acquire) && idle_since.is_some_and(|i| i.elapsed() >= IDLE_EXIT)
        {
            return end(&format!(
                "no call runs, and the worker has not exited {} s on (a module's load that \
                 never finishes?)",
                IDLE_EXIT.as_secs()
            ));
        }
        if unbounded && since.elapsed() >= ORPHAN_DRAIN {
            return end(&format!(
                "a call without a deadline within it still runs after {} s",
                ORPHAN_DRAIN.as_secs()
            ));
        }
        if last.is_some_and(|last| since.elapsed() >= last) {
            return end(&format!(
                "the worker has not exited {} s on",
                ORPHAN_LAST.as_secs()
            ));
        }
    }
}
