//! The watched files that take a worker down as they are opened: a library whose
//! constructor crashes the process loading it, or never returns (the worker is ended
//! once it has been opening one file for [`Openings::overdue`]'s limit: meanwhile the file holds
//! the system loader's lock, which every thread the worker starts waits for).
//!
//! Before its watch opens a file (loads or reloads it), a worker tells its supervisor
//! which file, as it is then ([`Guard`]); once opened, that it survived it. A worker
//! that dies in between died of that file: the supervisor logs it, and keeps the file in
//! the worker's skip list ([`took_down`]), which every process it starts for that worker
//! is given and leaves the file alone by while it is what it was. Without it, the
//! next process opened the same file at its start and died the same way, again and
//! again, and every module of that worker was down with it. A configured module
//! (`--module`, `[[modules]]`) is not skipped: that is the operator's list, and a
//! worker that cannot load it fails to start, saying which file it was loading.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use memlink_ipc::control::{FromWorker, Skipped, WatchedFile};
use rustix::process::Pid;

use crate::watch::OpenGuard;

/// `path`'s file as it is now, if it can be looked at (a file that cannot is refused by
/// the load, saying why).
fn watched_file(path: &Path) -> Option<WatchedFile> {
    let meta = std::fs::metadata(path).ok()?;
    Some(WatchedFile {
        path: path.as_os_str().as_bytes().to_vec(),
        len: meta.len(),
        modified: (meta.mtime(), meta.mtime_nsec()),
        inode: (meta.dev(), meta.ino()),
    })
}

/// A worker's guard around its watch's opens: tells the supervisor each file before it
/// is opened and after, and leaves alone the files that took a worker down.
pub(super) struct Guard {
    pub(super) out: Arc<Mutex<UnixStream>>,
    pub(super) skip: Vec<Skipped>,
    /// How the worker sends to its supervisor.
    pub(super) send: fn(&Mutex<UnixStream>, &FromWorker) -> std::io::Result<()>,
}

impl OpenGuard for Guard {
    fn opening(&self, path: &Path) -> Result<(), String> {
        let Some(file) = watched_file(path) else {
            return Ok(());
        };
        if let Some(skipped) = self.skip.iter().find(|s| s.file == file) {
            return Err(format!(
                "it took the daemon's worker down as it was loaded ({}); it is not loaded \
                 again until the file changes",
                skipped.ended
            ));
        }
        // Sent before the file is opened, and read by the supervisor even if the file
        // then takes this process down. A supervisor that is gone is the worker's end.
        let _ = (self.send)(&self.out, &FromWorker::Opening(file));
        Ok(())
    }

    fn opened(&self) {
        let _ = (self.send)(&self.out, &FromWorker::Opened);
    }
}

/// What a worker's process said it is opening: the file, since when, and whether the
/// watchdog ended the process for it ([`Openings::overdue`]).
struct Opening {
    pid: Pid,
    file: WatchedFile,
    since: Instant,
    overdue: bool,
}

/// One worker's record of the watched files its processes open: the one its process
/// said it is opening, while it has not said it opened it (if that process dies
/// meanwhile, the file took it down), and the files that took one of its processes down
/// as they were opened, left alone by the next while they are what they were.
#[derive(Default)]
pub(super) struct Openings {
    opening: Mutex<Option<Opening>>,
    skip: Mutex<Vec<Skipped>>,
}

/// A lock that a thread which panicked while holding it leaves usable: each record is
/// replaced whole, so none is ever seen half written.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Openings {
    /// Records what the worker's process `pid` said it opens (`Some`) or opened
    /// (`None`): an `Opened` clears only that process's record (a late word of a process
    /// gone must not clear its successor's).
    pub(super) fn said(&self, pid: Pid, file: Option<WatchedFile>) {
        let mut opening = lock(&self.opening);
        match file {
            Some(file) => {
                *opening = Some(Opening {
                    pid,
                    file,
                    since: Instant::now(),
                    overdue: false,
                })
            }
            None if opening.as_ref().is_some_and(|o| o.pid == pid) => *opening = None,
            None => {}
        }
    }

    /// Why the worker's process `pid` is to be ended, if it has been opening a watched
    /// file for longer than `limit`: a library whose constructor never returns holds the
    /// system loader's lock, and every thread the worker starts (one per new connection)
    /// waits for it. The record is marked: the process, ended, died of that file
    /// ([`Openings::took_down`]).
    pub(super) fn overdue(&self, pid: Pid, limit: Duration) -> Option<String> {
        let mut opening = lock(&self.opening);
        let o = opening
            .as_mut()
            .filter(|o| o.pid == pid && o.since.elapsed() > limit)?;
        o.overdue = true;
        Some(format!(
            "it did not finish loading {} within {}s, and was ended",
            path_of(&o.file).display(),
            limit.as_secs()
        ))
    }

    /// After the process `pid` of the worker named `worker` ended (`ended` says how):
    /// the watched file it was opening, if it was and the file is to blame, put in the
    /// skip list (in place of what that path was before) and logged. The file is to
    /// blame when the process `crashed` (a signal of a fault, not one the supervisor
    /// sent, nor a limit's) or was ended for taking too long over it
    /// ([`Openings::overdue`]): a process ended for another module's late call, or
    /// stopping, blames nothing. Whether a file was blamed.
    pub(super) fn took_down(&self, worker: &str, pid: Pid, ended: &str, crashed: bool) -> bool {
        // One guard for the look and the put back.
        let mut opening = lock(&self.opening);
        let file = match opening.take() {
            Some(o) if o.pid == pid && (crashed || o.overdue) => o.file,
            // Another process's word, read late, or nothing to blame: left as it was, but
            // for this process's own record, which it took with it.
            Some(o) if o.pid != pid => {
                *opening = Some(o);
                return false;
            }
            _ => return false,
        };
        drop(opening);
        tracing::error!(
            worker,
            file = %path_of(&file).display(),
            "the watched file took the worker down as it was loaded ({ended}); it is left \
             alone until it changes"
        );
        let mut skip = lock(&self.skip);
        skip.retain(|s| s.file.path != file.path);
        skip.push(Skipped {
            file,
            ended: ended.to_owned(),
        });
        true
    }

    /// The files the next process of the worker leaves alone.
    pub(super) fn skipped(&self) -> Vec<Skipped> {
        lock(&self.skip).clone()
    }
}

fn path_of(file: &WatchedFile) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(&file.path))
}

/// Whether a process that ended so died of a fault of its own: a signal a crash raises
/// (`SIGILL`, `SIGABRT`, `SIGBUS`, `SIGFPE`, `SIGSEGV`), not one sent to end it.
pub(super) fn crashed(status: &std::io::Result<std::process::ExitStatus>) -> bool {
    use std::os::unix::process::ExitStatusExt;
    matches!(status, Ok(s) if matches!(s.signal(), Some(4 | 6 | 7 | 8 | 11)))
}
