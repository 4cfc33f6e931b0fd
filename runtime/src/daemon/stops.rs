//! How the daemon stops: its stop signals caught from its start, and the accept loop
//! woken and its socket file removed when they come.

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use memlink_ipc::control::ToWorker;

use super::state::{lock, Shared};

/// What stops the accept loop: the listening socket, and the file it was bound to.
///
/// The loop was woken by connecting to the socket's path: once the file was gone
/// (removed by hand, or by a cleaner of `/tmp`), nothing woke it, and the daemon stopped
/// its workers but never exited, on that SIGTERM or any later one. Shutting the listener
/// down wakes `accept` whatever is at the path, and refuses later connections at once.
pub(super) struct Stopper {
    listener: Option<UnixListener>,
    /// The socket file's device and inode as bound: only that file is removed, not
    /// another put at the path since (another daemon's socket, someone's file).
    file: Option<(u64, u64)>,
}

impl Stopper {
    pub(super) fn new(listener: &UnixListener, path: &Path) -> Stopper {
        use std::os::unix::fs::MetadataExt;
        Stopper {
            listener: listener
                .try_clone()
                .map_err(|e| tracing::warn!("cannot keep the socket to stop it: {e}"))
                .ok(),
            file: std::fs::symlink_metadata(path)
                .ok()
                .map(|m| (m.dev(), m.ino())),
        }
    }

    /// Wakes the accept loop, which sees the shutdown flag, and removes the socket file.
    fn stop(&self, path: &Path) {
        use std::os::unix::fs::MetadataExt;
        match &self.listener {
            Some(listener) => {
                let _ = rustix::net::shutdown(listener, rustix::net::Shutdown::Both);
            }
            // Without a descriptor of its own, the path is all there is.
            None => drop(UnixStream::connect(path)),
        }
        let at_path = std::fs::symlink_metadata(path).ok();
        if at_path.is_some_and(|m| Some((m.dev(), m.ino())) == self.file) {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The daemon's stop signals: `SIGTERM`, `SIGINT`, and `SIGHUP` (the terminal it was
/// started from closing: an ssh session that drops) unless it is ignored (`nohup`: a
/// handler would override that). Caught from the daemon's start ([`Stops::catch`]), on a
/// thread of their own.
///
/// Once the workers have started ([`Stops::started`]), a stop signal stops the daemon,
/// its calls in flight finished. While they start (their modules' init may take
/// seconds), the first is kept, and acted on once they have; a second stops the daemon
/// at once, its socket file removed, as the signal's default action would have (a
/// module's init that never returns leaves no other way). Before, the signals were
/// caught only once the workers had started: the first ended the daemon outright, its
/// socket file left, its workers told by a broken pipe; and before that, a hang-up's
/// default action ended a started daemon and its workers at once, the calls in flight
/// lost.
pub(super) struct Stops {
    state: Arc<StopState>,
}

struct StopState {
    /// The daemon once its workers have started: what a stop stops.
    started: std::sync::OnceLock<(Arc<Shared>, Stopper)>,
    /// Stop signals that came while the workers started.
    early: std::sync::atomic::AtomicU32,
    /// Whether the stop was made (by the signals' thread or by `started`).
    stopped: std::sync::atomic::AtomicBool,
}

impl Stops {
    pub(super) fn catch(socket: &Path) -> Result<Stops, String> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut stops = vec![SIGTERM, SIGINT];
        if !ignored(SIGHUP) {
            stops.push(SIGHUP);
        }
        let mut signals = signal_hook::iterator::Signals::new(stops)
            .map_err(|e| format!("cannot handle signals: {e}"))?;
        let state = Arc::new(StopState {
            started: std::sync::OnceLock::new(),
            early: std::sync::atomic::AtomicU32::new(0),
            stopped: std::sync::atomic::AtomicBool::new(false),
        });
        let seen = Arc::clone(&state);
        let socket = socket.to_owned();
        std::thread::Builder::new()
            .name("memlink-signals".to_owned())
            .spawn(move || {
                for signal in signals.forever() {
                    if seen.stop_if_started() {
                        return;
                    }
                    if seen.early.fetch_add(1, Ordering::SeqCst) == 0 {
                        tracing::info!(
                            "asked to stop while the modules start: stopping once they have \
                             (ask again to stop at once)"
                        );
                        // Started meanwhile: `started` saw no signal yet, and left it here.
                        if seen.stop_if_started() {
                            return;
                        }
                        continue;
                    }
                    tracing::warn!("asked to stop again while the modules start: stopping at once");
                    let _ = std::fs::remove_file(&socket);
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    std::process::exit(128 + signal);
                }
            })
            .map_err(|e| format!("cannot start the signal thread: {e}"))?;
        Ok(Stops { state })
    }

    /// The workers have started: a stop signal from now on stops them, and one that came
    /// while they started does now.
    pub(super) fn started(&self, shared: Arc<Shared>, stopper: Stopper) {
        let state = &self.state;
        if state.started.set((shared, stopper)).is_ok() && state.early.load(Ordering::SeqCst) > 0 {
            state.stop_if_started();
        }
    }
}

impl StopState {
    /// Stops the daemon, once, if its workers have started (the workers finish their
    /// calls, the socket is shut); whether they had.
    fn stop_if_started(&self) -> bool {
        let Some((shared, stopper)) = self.started.get() else {
            return false;
        };
        if !self.stopped.swap(true, Ordering::SeqCst) {
            stop_workers(shared);
            stopper.stop(&shared.config.socket);
        }
        true
    }
}

/// Whether `signal` is ignored in this process (as `nohup` leaves `SIGHUP` for the
/// program it starts).
fn ignored(signal: i32) -> bool {
    let mut old = core::mem::MaybeUninit::<libc::sigaction>::zeroed();
    // SAFETY: a null new action only reads the current one into `old`, a place for it
    // (zeroed, so initialized whatever the call does).
    let read = unsafe { libc::sigaction(signal, core::ptr::null(), old.as_mut_ptr()) };
    // SAFETY: zeroed above, and written by the call when it succeeded.
    let old = unsafe { old.assume_init() };
    read == 0 && old.sa_sigaction == libc::SIG_IGN
}

/// Tells every worker to finish its calls in flight and exit.
pub(super) fn stop_workers(shared: &Shared) {
    // Under the connections' lock: a connection being welcomed is attached before the
    // workers are told (its `Attach` comes before their `Shutdown`), or sees the flag
    // and is refused by stand-ins (`welcome`).
    {
        let _conns = lock(&shared.conns);
        shared.shutting_down.store(true, Ordering::SeqCst);
    }
    // The stand-ins answering for a worker that is down, or that could not take a
    // connection, go on answering until the daemon exits; a worker that exits is
    // replaced by stand-ins saying the daemon is shutting down (`workers::keep`).
    for w in &shared.workers {
        w.send(&ToWorker::Shutdown);
    }
}
