//! A watched directory: every module file in it loaded, and kept in step with it (a new
//! file loads, a changed file hot-reloads, a removed file unloads).
//!
//! [`Runtime::watch`](crate::Runtime::watch) loads what the directory holds (in an order
//! that satisfies the modules' declared dependencies: see `crate::lifecycle`), then
//! follows it with the platform's file notifications (`notify`: inotify on Linux).
//! Events are debounced: a file is looked at once no event has touched it for
//! [`WatchOptions::debounce`], so a build writing it in pieces is seen once it is done.
//! A file written through a file still open is looked at only once its writer has
//! closed it, however long it pauses: written in place at its full length (over the old
//! version without cutting it first, as `rsync --inplace` does, or given its length
//! before its bytes), it passes every check of its headers while half of it is old or
//! zeros, and the system's loader crashed the process on it. A writer that starts once
//! the watch has looked at the file is caught by the copy made for its fresh image
//! (`crate::written`): the watch takes each file's change time before it loads any of
//! the files it looks at, and the copy is refused if the file changed since (written, or
//! its metadata), or was written while it was copied; that is reported, and the file
//! looked at again once no event has touched it for the debounce time (a writer still at
//! it keeps it pending until it closes the file; a change that brings no event, a hard
//! link made elsewhere, is looked at again all the same). One that began the moment the
//! file fell due, before the look, and whose event had not reached the watch yet (under
//! load, milliseconds) is told by the change time the look takes: a file changed less
//! than the debounce time before its look is put back to pending, not copied. (Not
//! seen: a write whose event takes longer than the debounce time to reach the watch, nor
//! one where the file system keeps change times coarser than the debounce time, to the
//! second, and the write falls in the same tick as the change before it: the checks of
//! the copy's headers refuse most such mixes.) The watch's first look loads what the
//! directory holds however recently it changed. A file that is still not a
//! whole library then (a copy that stalled) is reported and left alone until it changes
//! again; a module that is already loaded keeps serving.
//! A change of a file's metadata alone is looked at too: a file refused (one the host's
//! user could not read) is tried again once made readable, and a module's file touched
//! (its time changed) is reloaded; one whose permissions alone changed is left alone.
//!
//! A changed file that holds another module than before (the name its module declares
//! differs) is no new version: the other is loaded, and once it is, the module the file
//! held is unloaded. One that does not load (its init fails, say) leaves the module the
//! file held serving, as a refused reload does, and is told.
//!
//! Module files are those with the platform's library extension (`.so`), their names
//! UTF-8 or not; others, and names starting with `.`, are ignored. A module file may be a
//! symbolic link to a file elsewhere (into a build's output, say): a change of that file
//! reloads the link's module as a change of the link does, and that file removed and
//! written again (while its directory stays) unloads the module and loads it again. What has such a name
//! but is no file to load from (a directory, a FIFO, a symbolic link that leads nowhere
//! or in a loop) is reported, and its module, if one was loaded from the file that was
//! there, unloaded. A module refused because a module it calls is not loaded is tried
//! again after a module loads or reloads, and only then (each try opens a fresh image);
//! so is a loaded module's new version refused for that reason (the old one serves
//! meanwhile).
//! A module refused because another holds its name and version (a second file of it,
//! written before the first is removed), or the runtime's last slot, is tried again
//! after the watch unloads or reloads a module.
//!
//! The directory itself may go: removed, or moved away. That is reported (a
//! [`WatchEvent::Failed`] naming the directory, with
//! [`RuntimeError::WatchedDirectoryGone`]); its modules stay loaded (but for those whose
//! files were removed first, as `rm -r` removes them: each is unloaded as its file goes),
//! and once a directory is at the path again (one made there at once too) it is followed,
//! and the modules brought in step with it. Events the platform lost (its queue
//! overflowed) make the watch look at every file again, reloading only those changed
//! since.
//!
//! Each is loaded from a private copy (see
//! [`ModuleSettings::private_copy`](crate::config::ModuleSettings::private_copy)), so it can
//! be rewritten in place while it runs. Each module is loaded under its own name; a
//! file named `NAME@VERSION.so` is one version of `NAME` (see
//! [`DirectoryResolver`](crate::resolver::DirectoryResolver)), so several versions load
//! side by side; such a file that holds another module or version is refused
//! ([`RuntimeError::WrongFile`]), as the resolver refuses
//! it.
//!
//! What happened is told on [`DirectoryWatch::events`] and logged (`tracing`, target
//! `memlink::watch`). The channel holds at most [`WatchOptions::events_capacity`] unread
//! events: a host that never reads them does not make the watch grow without bound.
//! Events past that are logged only, and counted ([`DirectoryWatch::dropped`]); the
//! watch goes on. Dropping the [`DirectoryWatch`] stops watching; the modules stay
//! loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::error::RuntimeError;
use crate::registry::Registry;
use crate::reload::ReloadPolicy;

mod event;
mod files;
mod links;

pub use event::WatchEvent;
use files::{is_module_file, State};

/// What a daemon's worker does around each file its watch opens (`crate::daemon`): it
/// tells its supervisor first, so that a library whose constructor takes the worker down
/// is known, and left alone by the worker started next instead of taking it down too.
pub(crate) trait OpenGuard: Send + Sync {
    /// Before `path` is loaded or reloaded: `Err(why)` leaves it alone, told as a
    /// library that cannot be loaded, for why.
    fn opening(&self, path: &Path) -> Result<(), String>;
    /// After the file [`opening`](OpenGuard::opening) let through was loaded, reloaded or
    /// refused.
    fn opened(&self);
}

/// How a directory is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchOptions {
    /// How long a file must see no event before it is looked at (default 250 ms).
    pub debounce: Duration,
    /// What a reload of a changed file allows (default: [`ReloadPolicy::default`]).
    pub policy: ReloadPolicy,
    /// How many events [`DirectoryWatch::events`] holds unread before later ones are
    /// dropped (default 1024; at least 1, at most 65 536: the channel makes room for them
    /// all up front). The first scan's events count: a directory of more modules than
    /// this, watched before its events are read, has the rest dropped.
    pub events_capacity: usize,
}

/// The most events a watch holds unread, whatever [`WatchOptions::events_capacity`]
/// says.
const MOST_UNREAD_EVENTS: usize = 1 << 16;

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            debounce: Duration::from_millis(250),
            policy: ReloadPolicy::default(),
            events_capacity: 1024,
        }
    }
}

impl WatchOptions {
    /// Sets [`debounce`](WatchOptions::debounce).
    pub fn debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// Sets [`policy`](WatchOptions::policy).
    pub fn policy(mut self, policy: ReloadPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`events_capacity`](WatchOptions::events_capacity) (0 is taken as 1, more
    /// than 65 536 as 65 536).
    pub fn events_capacity(mut self, capacity: usize) -> Self {
        self.events_capacity = capacity;
        self
    }
}

/// A directory being watched ([`Runtime::watch`](crate::Runtime::watch)); dropping it
/// stops the watch, and leaves its modules loaded. The drop waits for what the watch
/// still has under way: the old versions its reloads replaced, and the modules of files
/// it unloaded, shut down once their last calls return (a call with no deadline may
/// hold the drop as long as it runs). Dropped inside a call (from a log sink or an
/// interceptor), it does not wait (an unload or a reload may be waiting for that call):
/// that ends after the drop returns.
#[derive(Debug)]
pub struct DirectoryWatch {
    events: Receiver<WatchEvent>,
    dropped: Arc<AtomicU64>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
    /// The directory's place among the runtime's watched ones, given back on drop.
    claim: Claim,
    /// The forks counted when it started: in a forked child its thread is gone, and
    /// nothing of it is waited for (see `crate::fork`).
    forks: u64,
}

/// The directories each runtime watches, by the registry's id and the directory's
/// identity: one runtime watching one directory twice served each of its files twice,
/// two watches racing to load and reload them (one serving a version the file no
/// longer held).
static WATCHED: std::sync::Mutex<Vec<(u32, DirId)>> = std::sync::Mutex::new(Vec::new());

/// A directory a runtime watches, claimed in [`WATCHED`] until dropped.
#[derive(Debug)]
struct Claim(Option<(u32, DirId)>);

impl Claim {
    /// Claims directory `id` for runtime `runtime`, or `None` if it watches it already.
    fn take(runtime: u32, id: Option<DirId>) -> Option<Claim> {
        let Some(id) = id else {
            return Some(Claim(None));
        };
        let mut watched = WATCHED.lock().unwrap_or_else(|p| p.into_inner());
        if watched.contains(&(runtime, id)) {
            return None;
        }
        watched.push((runtime, id));
        Some(Claim(Some((runtime, id))))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if let Some(claimed) = self.0.take() {
            let mut watched = WATCHED.lock().unwrap_or_else(|p| p.into_inner());
            watched.retain(|c| *c != claimed);
        }
    }
}

impl DirectoryWatch {
    /// What the watch did, in order, from its first scan on; at most
    /// [`WatchOptions::events_capacity`] of them wait unread (see
    /// [`dropped`](DirectoryWatch::dropped)).
    pub fn events(&self) -> &Receiver<WatchEvent> {
        &self.events
    }

    /// How many events were dropped, not told on [`events`](DirectoryWatch::events),
    /// because it held [`WatchOptions::events_capacity`] unread ones. Each was logged all
    /// the same; what the watch did to the modules is in the runtime either way.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The directory watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DirectoryWatch {
    fn drop(&mut self) {
        // In a process forked from the one that started it, its thread did not come
        // along: joining it panicked ("threads should not terminate unexpectedly"), and
        // the claims' lock may be held by a thread that did not come along either. The
        // watch is the parent's; the child lets it go.
        if crate::fork::since(self.forks) {
            self.claim.0 = None;
            std::mem::forget(self.thread.take());
            // Disconnecting a channel locks what the parent's watch thread may have held.
            std::mem::forget(self.stop.take());
            let (_, empty) = mpsc::channel();
            std::mem::forget(std::mem::replace(&mut self.events, empty));
            return;
        }
        drop(self.stop.take());
        // Inside a call (a log sink's, an interceptor's), the watch's thread may be
        // unloading or reloading a module that call holds, waiting for it to leave:
        // waiting for the thread here would wait for ever. It is let go instead; told
        // to stop, it ends once what it is doing is done.
        let in_a_call = !crate::chain::idle();
        if let Some(thread) = self.thread.take().filter(|_| !in_a_call) {
            let _ = thread.join();
        }
    }
}

/// Starts watching `dir` for the runtime whose registry is `registry` (see the module
/// docs).
pub(crate) fn start(
    registry: &Arc<Registry>,
    dir: &Path,
    options: WatchOptions,
    guard: Option<Arc<dyn OpenGuard>>,
) -> Result<DirectoryWatch, RuntimeError> {
    registry.this_process()?;
    // The path as given (made absolute), not where it leads: a symbolic link to a
    // directory that is later pointed elsewhere is followed there, as a directory
    // replaced at the path is.
    let missing = || RuntimeError::BadReference {
        reference: dir.display().to_string(),
        reason: "a watch needs a directory, and there is none there",
    };
    let dir = std::path::absolute(dir).map_err(|_| missing())?;
    if !dir.exists() {
        return Err(missing());
    }
    if !dir.is_dir() {
        return Err(RuntimeError::BadReference {
            reference: dir.display().to_string(),
            reason: "a watch needs a directory",
        });
    }
    // Only where a directory has an identity of its own (dev, inode).
    let id = identity(&dir).filter(|_| cfg!(unix));
    let claim = Claim::take(registry.id(), id).ok_or_else(|| RuntimeError::BadReference {
        reference: dir.display().to_string(),
        reason: "this runtime watches that directory already (drop that watch first: \
                     two would serve each file twice)",
    })?;
    let lost = Arc::new(AtomicBool::new(false));
    let (watcher, changes) = notifications(&dir, &lost)?;
    // The channel makes room for every event it may hold when it is made: room for
    // `usize::MAX` of them (a host meaning "no limit") panicked here.
    let capacity = options.events_capacity.clamp(1, MOST_UNREAD_EVENTS);
    let (events_tx, events) = mpsc::sync_channel(capacity);
    let dropped = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = mpsc::channel();
    let mut state = State::new(
        Arc::clone(registry),
        options.policy,
        events_tx,
        Arc::clone(&dropped),
        guard,
    );
    let first: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| watch_failed(&dir, &e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let mut watched = Watched {
        id: identity(&dir),
        lost,
        refused: false,
        watcher,
        dir: dir.clone(),
        links: links::Links::default(),
    };
    // The directories links lead into are watched before their modules load, so a
    // rebuild meanwhile is not missed.
    watched.relink();
    state.sync(first);
    // The first look loads what is there, however recently it changed (a file still
    // being written is refused by its copy, or by its checks); from here, a file is
    // looked at only once it has settled.
    state.settle_for(options.debounce);
    let thread = std::thread::Builder::new()
        .name("memlink-watch".to_owned())
        .spawn(move || {
            // The watcher lives as long as the thread that reads its events.
            let mut watched = watched;
            follow(
                &mut state,
                &mut watched,
                &changes,
                &stopped,
                options.debounce,
            );
        })
        .map_err(|e| watch_failed(&dir, &NoThread(&e)))?;
    Ok(DirectoryWatch {
        events,
        dropped,
        stop: Some(stop),
        thread: Some(thread),
        dir,
        claim,
        forks: crate::fork::generation(),
    })
}

/// The platform's notifications for `dir`, started: the watcher, and the paths it tells
/// of (see [`forward`]); `lost` is set when they tell that `dir` itself went.
fn notifications(
    dir: &Path,
    lost: &Arc<AtomicBool>,
) -> Result<(notify::RecommendedWatcher, Receiver<Touched>), RuntimeError> {
    let (changes_tx, changes) = mpsc::channel::<Touched>();
    let everything = dir.to_owned();
    let lost = Arc::clone(lost);
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        forward(event, &changes_tx, &everything, &lost)
    })
    .map_err(|e| watch_failed(dir, &Limited(&e)))?;
    // Watching starts before the first scan, so a file written meanwhile is not missed.
    // The watcher starts its event loop's thread without looking whether it started:
    // where none can be (the limit on a user's processes and threads, `RLIMIT_NPROC`,
    // reached), its first `watch` panics, and so did its drop then, which aborted the
    // process. The panic is caught, the watcher forgotten (its descriptor with it: a
    // drop would panic again), and the watch refused, saying why.
    let first = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        watcher.watch(dir, RecursiveMode::NonRecursive)
    }));
    match first {
        Ok(watching) => watching.map_err(|e| watch_failed(dir, &Limited(&e)))?,
        Err(_) => {
            std::mem::forget(watcher);
            return Err(watch_failed(
                dir,
                &"the thread that reads the file notifications could not be started (the \
                  limit on this user's processes and threads, RLIMIT_NPROC, reached?)",
            ));
        }
    }
    Ok((watcher, changes))
}

/// A path the platform told of: a file that came, changed or went (`contents`), or only
/// had its metadata changed (its permissions, its times); and whether a writer is
/// writing it now (`Some(true)`: bytes were written through a file still open) or is
/// done (`Some(false)`: the writer closed it, or the file was removed or renamed).
struct Touched {
    path: PathBuf,
    contents: bool,
    writing: Option<bool>,
}

/// The watcher's handler: sends on `changes` the paths of files that came, changed or
/// went, or had their metadata changed, and `everything` (the watched directory) when
/// events were lost; sets `lost` when the watched directory itself was removed or moved.
fn forward(
    event: notify::Result<notify::Event>,
    changes: &Sender<Touched>,
    everything: &Path,
    lost: &AtomicBool,
) {
    use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
    // Events lost (the kernel's queue overflowed, say, with thousands of files
    // written at once) or an error: the directory itself is looked at again, which
    // `follow` takes as "every file" (see `State::rescan`).
    let event = match event {
        Ok(event) if !event.need_rescan() => event,
        _ => {
            let _ = changes.send(Touched {
                path: everything.to_owned(),
                contents: true,
                writing: None,
            });
            return;
        }
    };
    // The directory itself removed or moved away: the platform's watch went with it. A
    // directory made at the path at once may be given the very inode just freed, and so
    // look like the one watched; this tells them apart.
    let itself = event.paths.iter().any(|p| p == everything);
    if itself
        && matches!(
            event.kind,
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
        )
    {
        lost.store(true, Ordering::Relaxed);
    }
    // Files coming, changing and going, and their metadata changing (a file refused as
    // unreadable is tried again once it is made readable); not files read (the watch's
    // own copies read them). Writes, and their writer closing the file: a file written
    // in place at its full length (over the old version, not cut first; or given its
    // length before its bytes) is whole to every check of its headers while it is
    // written, and the system's loader crashed the process on such a file. It is looked
    // at once its writer has closed it.
    let (contents, writing) = match event.kind {
        EventKind::Create(_) => (true, None),
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) => (true, Some(false)),
        EventKind::Modify(ModifyKind::Metadata(_)) => (false, None),
        EventKind::Modify(ModifyKind::Data(_)) => (true, Some(true)),
        EventKind::Modify(_) => (true, None),
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => (true, Some(false)),
        _ => return,
    };
    for path in event.paths {
        let _ = changes.send(Touched {
            path,
            contents,
            writing,
        });
    }
}

/// A watcher's error, with the system limit it most likely ran into named: the
/// platform says "Too many open files" when the user's inotify instances run out too
/// (128 by default, shared by every process of the user, and freed by the kernel a
/// little after each watch is dropped), and "No space left on device" when its watches
/// do.
pub(super) struct Limited<'e>(pub(super) &'e notify::Error);

impl std::fmt::Display for Limited<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        match limit_reached(self.0) {
            Some(limit) => write!(f, "; the limit most likely reached: {limit}"),
            None => Ok(()),
        }
    }
}

/// The inotify limit (or the open-file limit) a watcher's error `e` says was reached.
#[cfg(target_os = "linux")]
fn limit_reached(e: &notify::Error) -> Option<&'static str> {
    use rustix::io::Errno;
    let errno = match &e.kind {
        notify::ErrorKind::Io(e) => Errno::from_io_error(e),
        _ => None,
    };
    match (errno, &e.kind) {
        (Some(Errno::MFILE), _) => Some(
            "the process's open-file limit, or the user's inotify instances \
             (fs.inotify.max_user_instances)",
        ),
        (Some(Errno::NOSPC), _) | (_, notify::ErrorKind::MaxFilesWatch) => {
            Some("the user's inotify watches (fs.inotify.max_user_watches)")
        }
        _ => None,
    }
}

/// Elsewhere no limit is named.
#[cfg(not(target_os = "linux"))]
fn limit_reached(_: &notify::Error) -> Option<&'static str> {
    None
}

/// A thread of the watch's that could not be started, for its error: the limit most
/// likely reached named when the system said it was out of them (`EAGAIN`), which reads
/// as "Resource temporarily unavailable" alone.
struct NoThread<'e>(&'e std::io::Error);

impl std::fmt::Display for NoThread<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "its thread could not be started: {}", self.0)?;
        if self.0.kind() == std::io::ErrorKind::WouldBlock {
            write!(
                f,
                "; the limit most likely reached: this user's processes and threads \
                 (RLIMIT_NPROC, ulimit -u), or the system's (kernel.threads-max, a pids \
                 cgroup's pids.max)"
            )?;
        }
        Ok(())
    }
}

fn watch_failed(dir: &Path, e: &dyn std::fmt::Display) -> RuntimeError {
    RuntimeError::CannotWatch {
        dir: dir.to_owned(),
        reason: e.to_string(),
    }
}

/// Which directory a path is: its device and inode, so that another directory put at
/// the same path (the old one removed, or moved away) is told from it.
#[cfg(unix)]
type DirId = (u64, u64);
#[cfg(not(unix))]
type DirId = ();

/// The identity of the directory at `dir`, or `None`: no directory there.
fn identity(dir: &Path) -> Option<DirId> {
    let meta = std::fs::metadata(dir).ok().filter(|m| m.is_dir())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        drop(meta);
        Some(())
    }
}

/// The directory a watch follows, and the notifications that follow it.
struct Watched {
    watcher: notify::RecommendedWatcher,
    dir: PathBuf,
    /// The directory the notifications come from (`None` once it has gone).
    id: Option<DirId>,
    /// Set when the notifications told that the directory itself went (see [`forward`]).
    lost: Arc<AtomicBool>,
    /// Whether following the directory now at the path failed (and was told).
    refused: bool,
    /// Its module files that are links to files elsewhere, whose directories are
    /// followed too.
    links: links::Links,
}

impl Watched {
    /// Whether the directory at the watched path is still the one watched. When it has
    /// gone (removed, moved away), the watch says so and waits; when a directory is
    /// there again (the same one moved back, or a new one), it follows that one from
    /// now on, and brings the modules in step with what it holds.
    fn check(&mut self, state: &mut State) {
        let now = identity(&self.dir);
        // Told gone, a directory is gone, whatever is at the path now: removed, and a new
        // one made there at once with the inode it freed, it looks like the one watched,
        // whose platform watch ended with it (nothing in the new one would be seen).
        if now == self.id && !self.lost.swap(false, Ordering::Relaxed) {
            return;
        }
        // The notifications followed the directory that was there: moved away, its
        // files would be told under paths they no longer have.
        let _ = self.watcher.unwatch(&self.dir);
        // Once unwatched, its events have all been handled (the watcher takes the
        // request between them): what it told of itself is no news of the next one.
        self.lost.store(false, Ordering::Relaxed);
        if self.id.is_some() {
            self.id = None;
            state.tell(WatchEvent::Failed {
                path: self.dir.clone(),
                error: RuntimeError::WatchedDirectoryGone {
                    dir: self.dir.clone(),
                },
            });
        }
        if now.is_none() {
            return;
        }
        if let Err(e) = self.watcher.watch(&self.dir, RecursiveMode::NonRecursive) {
            // Tried again at the next look; told once, not at each.
            if !std::mem::replace(&mut self.refused, true) {
                state.tell(WatchEvent::Failed {
                    path: self.dir.clone(),
                    error: watch_failed(&self.dir, &Limited(&e)),
                });
            }
            return;
        }
        self.refused = false;
        self.id = now;
        self.relink();
        state.rescan(&self.dir);
    }

    /// Follows the files the directory's links lead to as they are now.
    fn relink(&mut self) {
        self.links
            .update(&self.dir, &mut self.watcher, is_module_file);
    }
}

/// Reads file events until `stopped` says stop (or its sender is gone), handing each
/// path to `state` once `debounce` has passed without an event for it. An event for the
/// directory itself (events were lost) looks at every file again. A file whose metadata
/// alone changed is looked at as a rescan looks at it: loaded from it as it is, its
/// module is left alone (a `chmod` reloads nothing); refused, it is tried again.
fn follow(
    state: &mut State,
    watched: &mut Watched,
    changes: &Receiver<Touched>,
    stopped: &Receiver<()>,
    debounce: Duration,
) {
    // Each path's last event, and whether any of its events changed more than metadata.
    let mut pending: BTreeMap<PathBuf, (Instant, bool)> = BTreeMap::new();
    // Paths written through a file still open: left pending until their writer closes
    // them, however long it pauses between writes.
    let mut open: BTreeSet<PathBuf> = BTreeSet::new();
    loop {
        match stopped.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {}
            _ => return,
        }
        watched.check(state);
        state.reap();
        // Files refused for having changed since the watch looked at them: looked at
        // again as if an event had come for their contents, once none has for the
        // debounce time (one whose writer is still at it stays pending through its own).
        let now = Instant::now();
        for (path, extra) in state.take_relook(debounce) {
            let at = now.checked_add(extra).unwrap_or(now);
            let seen = pending.entry(path).or_insert((at, true));
            *seen = (seen.0.max(at), true);
        }
        let waiting = pending
            .iter()
            .filter(|(p, _)| !open.contains(*p))
            .map(|(_, (at, _))| at);
        let wait = next_wait(waiting, debounce, Instant::now());
        let mut note = |touched: Touched| {
            let now = Instant::now();
            for path in watched.links.paths_for(&watched.dir, touched.path) {
                match touched.writing {
                    Some(true) => open.insert(path.clone()),
                    Some(false) => open.remove(&path),
                    None => false,
                };
                let seen = pending.entry(path).or_insert((now, false));
                *seen = (now, seen.1 || touched.contents);
            }
        };
        match changes.recv_timeout(wait) {
            Ok(touched) => note(touched),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Every event already here is taken in before any file is looked at: those that
        // came while the last look ran (a load may take a while) may say a writer began
        // writing a file that is due. Looked at then, the file was copied while half
        // rewritten, with no write during the copy itself to refuse it (the writer
        // paused), and could pass every check of its headers. At most a bounded number
        // a round, so a flood of events cannot hold the loop here.
        for touched in changes.try_iter().take(DRAIN_AT_MOST) {
            note(touched);
        }
        let now = Instant::now();
        let ready: Vec<PathBuf> = pending
            .iter()
            .filter(|(p, &(at, _))| now.duration_since(at) >= debounce && !open.contains(*p))
            .map(|(p, _)| p.clone())
            .collect();
        let (mut changed, mut touched) = (Vec::new(), Vec::new());
        for path in ready {
            match pending.remove(&path) {
                Some((_, true)) => changed.push(path),
                _ => touched.push(path),
            }
        }
        if !changed.is_empty() || !touched.is_empty() {
            // Links may have come, gone or been pointed elsewhere: their files are
            // followed before their modules load.
            watched.relink();
        }
        let dir = &watched.dir;
        if changed.contains(dir) || touched.contains(dir) {
            state.rescan(dir);
            continue;
        }
        if !changed.is_empty() {
            state.sync(changed);
        }
        if !touched.is_empty() {
            state.refresh(touched);
        }
    }
}

/// The most events taken in at once before the due files are looked at (see `follow`).
const DRAIN_AT_MOST: usize = 4096;

/// How long to wait for the next event: until the first pending file has seen no event
/// for `debounce`, at most 100 ms (so a stop is seen). A debounce no `Instant` can add
/// (`Duration::MAX`, say) waits the 100 ms: such a file is never due.
fn next_wait<'a>(
    pending: impl Iterator<Item = &'a Instant>,
    debounce: Duration,
    now: Instant,
) -> Duration {
    const AT_MOST: Duration = Duration::from_millis(100);
    pending
        .map(|&at| match at.checked_add(debounce) {
            Some(due) => due.saturating_duration_since(now),
            None => AT_MOST,
        })
        .min()
        .unwrap_or(AT_MOST)
        .min(AT_MOST)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// "Too many open files" from a watcher's start names the inotify instance limit too,
    /// which is what a host that starts and drops watches quickly runs into with few
    /// files open; a watch limit is named as such; any other error is told as it is.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_watchers_limit_is_named() {
        let shown = |e: notify::Error| Limited(&e).to_string();
        let text = shown(notify::Error::io(std::io::Error::from_raw_os_error(
            rustix::io::Errno::MFILE.raw_os_error(),
        )));
        assert!(
            text.contains("Too many open files")
                && text.ends_with(
                    "; the limit most likely reached: the process's open-file limit, or the \
                     user's inotify instances (fs.inotify.max_user_instances)"
                ),
            "{text}"
        );
        let text = shown(notify::Error::new(notify::ErrorKind::MaxFilesWatch));
        assert!(text.ends_with("(fs.inotify.max_user_watches)"), "{text}");
        let text = shown(notify::Error::io(std::io::Error::from_raw_os_error(
            rustix::io::Errno::ACCESS.raw_os_error(),
        )));
        assert!(!text.contains("limit"), "{text}");
    }

    /// A watch whose thread could not be started for want of threads names the limits
    /// that run out; any other failure is told as it is.
    #[test]
    fn a_thread_that_cannot_start_names_the_limit() {
        let again = std::io::Error::from_raw_os_error(rustix::io::Errno::AGAIN.raw_os_error());
        let text = NoThread(&again).to_string();
        assert!(
            text.starts_with("its thread could not be started: Resource temporarily unavailable")
                && text.contains("(RLIMIT_NPROC, ulimit -u)"),
            "{text}"
        );
        let other = std::io::Error::from_raw_os_error(rustix::io::Errno::NOMEM.raw_os_error());
        assert!(!NoThread(&other).to_string().contains("limit"));
    }

    #[test]
    fn the_wait_for_a_pending_file_never_overflows() {
        let now = Instant::now();
        let second = Duration::from_secs(1);
        let ms = Duration::from_millis;
        // Nothing pending, or nothing due soon: the stop check's 100 ms.
        assert_eq!(next_wait([].iter(), second, now), ms(100));
        assert_eq!(next_wait([now].iter(), second, now), ms(100));
        // Due sooner: until then; overdue: at once.
        assert_eq!(next_wait([now].iter(), ms(30), now), ms(30));
        assert_eq!(
            next_wait([now].iter(), ms(30), now + ms(50)),
            Duration::ZERO
        );
        // A debounce past what an `Instant` can hold (the watch thread panicked on it,
        // and the watch stopped without a word): never due.
        assert_eq!(next_wait([now].iter(), Duration::MAX, now), ms(100));
    }
}
