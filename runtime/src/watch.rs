//! A watched directory: every module file in it loaded, and kept in step with it (a new
//! file loads, a changed file hot-reloads, a removed file unloads).
//!
//! [`Runtime::watch`](crate::Runtime::watch) loads what the directory holds (in an order
//! that satisfies the modules' declared dependencies: see `crate::lifecycle`), then
//! follows it with the platform's file notifications (`notify`: inotify on Linux).
//! Events are debounced: a file is looked at once no event has touched it for
//! [`WatchOptions::debounce`], so a build writing it in pieces is seen once it is done.
//! A file that is still not a whole library then (a copy that stalled) is reported and
//! left alone until it changes again; a module that is already loaded keeps serving.
//!
//! A changed file that holds another module than before (the name its module declares
//! differs) is no new version: the module it held is unloaded, and the other loaded.
//!
//! Module files are those with the platform's library extension (`.so`), their names
//! UTF-8 or not; others, and names starting with `.`, are ignored. A module file may be a
//! symbolic link to a file elsewhere (into a build's output, say): a change of that file
//! reloads the link's module as a change of the link does. What has such a name
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
//! and once a directory is at the path again it is followed, and the modules brought in
//! step with it. Events the platform lost (its queue overflowed) make the watch look at every
//! file again, reloading only those changed since.
//!
//! Each is loaded from a private copy (see [`ModuleSettings::private_copy`]), so it can
//! be rewritten in place while it runs. Each module is loaded under its own name; a
//! file named `NAME@VERSION.so` is one version of `NAME` (see
//! [`DirectoryResolver`](crate::resolver::DirectoryResolver)), so several versions load
//! side by side.
//!
//! What happened is told on [`DirectoryWatch::events`] and logged (`tracing`, target
//! `memlink::watch`). The channel holds at most [`WatchOptions::events_capacity`] unread
//! events: a host that never reads them does not make the watch grow without bound.
//! Events past that are logged only, and counted ([`DirectoryWatch::dropped`]); the
//! watch goes on. Dropping the [`DirectoryWatch`] stops watching; the modules stay
//! loaded.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use notify::{RecursiveMode, Watcher};

use crate::config::ModuleSettings;
use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::registry::Registry;
use crate::reload::{ReloadPolicy, Reloaded};
use crate::resolver::ModuleRef;

mod links;

/// How a directory is watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchOptions {
    /// How long a file must see no event before it is looked at (default 250 ms).
    pub debounce: Duration,
    /// What a reload of a changed file allows (default: [`ReloadPolicy::default`]).
    pub policy: ReloadPolicy,
    /// How many events [`DirectoryWatch::events`] holds unread before later ones are
    /// dropped (default 1024; at least 1). The first scan's events count: a directory of
    /// more modules than this, watched before its events are read, has the rest dropped.
    pub events_capacity: usize,
}

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

    /// Sets [`events_capacity`](WatchOptions::events_capacity) (0 is taken as 1).
    pub fn events_capacity(mut self, capacity: usize) -> Self {
        self.events_capacity = capacity;
        self
    }
}

/// What the watch did to one file.
#[derive(Debug)]
#[non_exhaustive]
pub enum WatchEvent {
    /// A new file was loaded.
    Loaded {
        /// The file.
        path: PathBuf,
        /// Its module.
        handle: ModuleHandle,
    },
    /// A changed file was hot-reloaded.
    Reloaded {
        /// The file.
        path: PathBuf,
        /// Its module (the same handle as before).
        handle: ModuleHandle,
        /// What the reload did.
        reloaded: Reloaded,
    },
    /// A removed file's module was unloaded.
    Unloaded {
        /// The file.
        path: PathBuf,
        /// The module's handle, no longer valid.
        handle: ModuleHandle,
    },
    /// A file could not be loaded or reloaded (a module already loaded from it keeps
    /// serving); it is tried again when it changes, or, for a missing dependency, when
    /// another module loads, or, for a name and version, a file or the last slot another
    /// module holds, when the watch unloads or reloads a module.
    Failed {
        /// The file.
        path: PathBuf,
        /// Why.
        error: RuntimeError,
    },
}

/// A directory being watched ([`Runtime::watch`](crate::Runtime::watch)); dropping it
/// stops the watch, and leaves its modules loaded.
#[derive(Debug)]
pub struct DirectoryWatch {
    events: Receiver<WatchEvent>,
    dropped: Arc<AtomicU64>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
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
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Whether `path` names a module file the watch cares about (its name UTF-8 or not: a
/// file name is bytes, and `libgr\xfcn.so` is a module file too).
fn is_module_file(path: &Path) -> bool {
    let hidden = path
        .file_name()
        .is_none_or(|n| n.as_encoded_bytes().starts_with(b"."));
    !hidden
        && path
            .extension()
            .is_some_and(|e| e == std::env::consts::DLL_EXTENSION)
}

/// Whether `error` refused a file for what another loaded module holds (its module's
/// name and version, its file, the runtime's last slot), which an unload or a reload may
/// free.
fn held_by_another(error: &RuntimeError) -> bool {
    matches!(
        error,
        RuntimeError::NameTaken { .. }
            | RuntimeError::AlreadyLoaded { .. }
            | RuntimeError::TooManyModules { .. }
    )
}

/// Starts watching `dir` for the runtime whose registry is `registry` (see the module
/// docs).
pub(crate) fn start(
    registry: &Arc<Registry>,
    dir: &Path,
    options: WatchOptions,
) -> Result<DirectoryWatch, RuntimeError> {
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
    let (watcher, changes) = notifications(&dir)?;
    let (events_tx, events) = mpsc::sync_channel(options.events_capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    let (stop, stopped) = mpsc::channel();
    let mut state = State {
        registry: Arc::clone(registry),
        policy: options.policy,
        loaded: BTreeMap::new(),
        waiting: BTreeSet::new(),
        blocked: BTreeSet::new(),
        freed: false,
        events: events_tx,
        dropped: Arc::clone(&dropped),
    };
    let first: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| watch_failed(&dir, &e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let mut watched = Watched {
        id: identity(&dir),
        refused: false,
        watcher,
        dir: dir.clone(),
        links: links::Links::default(),
    };
    // The directories links lead into are watched before their modules load, so a
    // rebuild meanwhile is not missed.
    watched.relink();
    state.sync(first);
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
        .map_err(|e| watch_failed(&dir, &e))?;
    Ok(DirectoryWatch {
        events,
        dropped,
        stop: Some(stop),
        thread: Some(thread),
        dir,
    })
}

/// The platform's notifications for `dir`, started: the watcher, and the paths it tells
/// of (see [`forward`]).
fn notifications(
    dir: &Path,
) -> Result<(notify::RecommendedWatcher, Receiver<PathBuf>), RuntimeError> {
    let (changes_tx, changes) = mpsc::channel::<PathBuf>();
    let everything = dir.to_owned();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        forward(event, &changes_tx, &everything)
    })
    .map_err(|e| watch_failed(dir, &e))?;
    // Watching starts before the first scan, so a file written meanwhile is not missed.
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .map_err(|e| watch_failed(dir, &e))?;
    Ok((watcher, changes))
}

/// The watcher's handler: sends on `changes` the paths of files that came, changed or
/// went, and `everything` (the watched directory) when events were lost.
fn forward(event: notify::Result<notify::Event>, changes: &Sender<PathBuf>, everything: &Path) {
    use notify::event::{EventKind, ModifyKind};
    // Events lost (the kernel's queue overflowed, say, with thousands of files
    // written at once) or an error: the directory itself is looked at again, which
    // `follow` takes as "every file" (see `State::rescan`).
    let event = match event {
        Ok(event) if !event.need_rescan() => event,
        _ => {
            let _ = changes.send(everything.to_owned());
            return;
        }
    };
    // Files coming, changing and going; not files read (the watch's own copies read
    // them) nor their metadata.
    let changed = match event.kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        _ => false,
    };
    if changed {
        for path in event.paths {
            let _ = changes.send(path);
        }
    }
}

fn watch_failed(dir: &Path, e: &dyn std::fmt::Display) -> RuntimeError {
    RuntimeError::NotALibrary {
        path: dir.to_owned(),
        reason: format!("cannot watch it: {e}"),
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
        if now == self.id {
            return;
        }
        // The notifications followed the directory that was there: moved away, its
        // files would be told under paths they no longer have.
        let _ = self.watcher.unwatch(&self.dir);
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
                    error: watch_failed(&self.dir, &e),
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
/// directory itself (events were lost) looks at every file again.
fn follow(
    state: &mut State,
    watched: &mut Watched,
    changes: &Receiver<PathBuf>,
    stopped: &Receiver<()>,
    debounce: Duration,
) {
    let mut pending: BTreeMap<PathBuf, Instant> = BTreeMap::new();
    loop {
        match stopped.try_recv() {
            Err(mpsc::TryRecvError::Empty) => {}
            _ => return,
        }
        watched.check(state);
        match changes.recv_timeout(next_wait(pending.values(), debounce, Instant::now())) {
            Ok(path) => {
                let now = Instant::now();
                for path in watched.links.paths_for(&watched.dir, path) {
                    pending.insert(path, now);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        let ready: Vec<PathBuf> = pending
            .iter()
            .filter(|(_, &at)| now.duration_since(at) >= debounce)
            .map(|(p, _)| p.clone())
            .collect();
        for path in &ready {
            pending.remove(path);
        }
        if !ready.is_empty() {
            // Links may have come, gone or been pointed elsewhere: their files are
            // followed before their modules load.
            watched.relink();
        }
        if ready.contains(&watched.dir) {
            state.rescan(&watched.dir);
        } else if !ready.is_empty() {
            state.sync(ready);
        }
    }
}

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

/// What a watch knows of its directory.
struct State {
    registry: Arc<Registry>,
    policy: ReloadPolicy,
    /// The modules loaded from its files, with what each file was when last loaded or
    /// reloaded from.
    loaded: BTreeMap<PathBuf, (ModuleHandle, Option<Stamp>)>,
    /// Files refused for a dependency not loaded yet (a new file's module, or a loaded
    /// module's new version): tried again after a load or a reload (which may bring the
    /// dependency in), and then only.
    waiting: BTreeSet<PathBuf>,
    /// Files refused because another module holds what they need: their module's name
    /// and version, their file, or the runtime's last slot. Tried again once the watch
    /// unloads or reloads a module (which may free it), and only then.
    blocked: BTreeSet<PathBuf>,
    /// Whether the watch unloaded or reloaded a module since `blocked` was last tried.
    freed: bool,
    events: SyncSender<WatchEvent>,
    /// Events not told for want of room ([`DirectoryWatch::dropped`]).
    dropped: Arc<AtomicU64>,
}

/// What a file was when looked at: a rescan reloads only the files that changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<std::time::SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (meta.dev(), meta.ino())
            },
        }
    }
}

/// What is at a module file's path.
enum Entry {
    /// A regular file (or a link to one).
    File(Stamp),
    /// Nothing.
    Gone,
    /// Something that is no module file: a directory, a FIFO, a socket, a device, a
    /// symbolic link that leads to no file (dangling, or a loop). Loading it says which.
    Other,
}

impl Entry {
    fn of(path: &Path) -> Entry {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Entry::File(Stamp::of(&meta)),
            Ok(_) => Entry::Other,
            Err(_) if std::fs::symlink_metadata(path).is_ok() => Entry::Other,
            Err(_) => Entry::Gone,
        }
    }
}

impl State {
    /// Looks at every file again, those the directory holds now and those modules were
    /// loaded from: events were lost, or the directory was replaced. Files unchanged
    /// since their module was loaded are left alone.
    fn rescan(&mut self, dir: &Path) {
        // A directory that cannot be read is told by `Watched::check` when it is gone.
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.extend(self.loaded.keys().cloned());
        paths.sort();
        paths.dedup();
        self.look_at(paths, true);
    }

    /// Brings the modules of `paths` in step with the files: unloads the removed, reloads
    /// the changed, loads the new (again and again while a load lets a waiting module's
    /// dependency in).
    fn sync(&mut self, paths: Vec<PathBuf>) {
        self.look_at(paths, false);
    }

    /// [`sync`](State::sync); with `rescan`, a file whose module was loaded from it as
    /// it is now is not reloaded.
    fn look_at(&mut self, paths: Vec<PathBuf>, rescan: bool) {
        let mut new = Vec::new();
        // Whether a module was loaded or reloaded: a waiting module may now find what
        // it calls. Without one, trying them again would only open a fresh image of
        // each (never unmapped) to be refused for the same reason.
        let mut changed = false;
        for path in paths.into_iter().filter(|p| is_module_file(p)) {
            let loaded = self.loaded.get(&path).copied();
            match (Entry::of(&path), loaded) {
                (Entry::Gone, Some((handle, _))) => {
                    self.waiting.remove(&path);
                    self.blocked.remove(&path);
                    self.unload(path, handle);
                }
                (Entry::Gone, None) => {
                    self.waiting.remove(&path);
                    self.blocked.remove(&path);
                }
                (Entry::File(stamp), Some((_, was))) if rescan && was == Some(stamp) => {}
                (Entry::File(stamp), Some((handle, _))) => {
                    changed |= self.reload(path, handle, stamp);
                }
                (Entry::File(_), None) => new.push(path),
                // No module file any more: its module goes, and the load below tells
                // what is there instead.
                (Entry::Other, loaded) => {
                    if let Some((handle, _)) = loaded {
                        self.unload(path.clone(), handle);
                    }
                    self.waiting.remove(&path);
                    self.blocked.remove(&path);
                    new.push(path);
                }
            }
        }
        self.load_new(new, changed);
        // A file refused for a name, a file or a slot another module held is tried again
        // once a module went or changed version: else, with the module that held it
        // gone (its file removed after the new one was written, say), the directory
        // would hold a module file and the runtime no module of it.
        if std::mem::take(&mut self.freed) && !self.blocked.is_empty() {
            let blocked = std::mem::take(&mut self.blocked);
            self.look_at(blocked.into_iter().collect(), false);
        }
    }

    /// Loads the files `new` (and, when `changed` says a module was loaded or reloaded,
    /// those waiting): round after round, while a round loads something, so that a
    /// module refused for a dependency loaded later in the same look is let in.
    fn load_new(&mut self, mut new: Vec<PathBuf>, mut changed: bool) {
        // Load what can be loaded; a module refused for a dependency waits for a later
        // round, as long as each round loads something.
        loop {
            // Whether a waiting file's new version was reloaded in this round.
            let mut reloaded = false;
            if changed {
                for path in std::mem::take(&mut self.waiting) {
                    match self.loaded.get(&path).copied() {
                        // A new version of a loaded module, refused for a dependency:
                        // reloaded again (refused again, it waits again).
                        Some((handle, _)) => {
                            // Gone meanwhile: its removal's event unloads it.
                            if let Ok(meta) = std::fs::metadata(&path) {
                                reloaded |= self.reload(path, handle, Stamp::of(&meta));
                            }
                        }
                        None => new.push(path),
                    }
                }
            }
            new.sort();
            new.dedup();
            if new.is_empty() && !reloaded {
                return;
            }
            changed = reloaded;
            let mut refused = Vec::new();
            for path in new {
                let stamp = match std::fs::metadata(&path) {
                    Ok(meta) => Some(Stamp::of(&meta)),
                    Err(_) => None,
                };
                let settings = ModuleSettings::default().private_copy(true);
                match self.registry.load(&ModuleRef::from_path(&path), &settings) {
                    Ok(handle) => {
                        changed = true;
                        self.blocked.remove(&path);
                        self.loaded.insert(path.clone(), (handle, stamp));
                        self.tell(WatchEvent::Loaded { path, handle });
                    }
                    Err(error @ RuntimeError::MissingDependency { .. }) => {
                        refused.push((path, error))
                    }
                    Err(error) if held_by_another(&error) => {
                        self.blocked.insert(path.clone());
                        self.tell(WatchEvent::Failed { path, error });
                    }
                    Err(error) => self.tell(WatchEvent::Failed { path, error }),
                }
            }
            if !changed || refused.is_empty() {
                for (path, error) in refused {
                    self.waiting.insert(path.clone());
                    self.tell(WatchEvent::Failed { path, error });
                }
                if !changed {
                    return;
                }
                new = Vec::new();
            } else {
                new = refused.into_iter().map(|(p, _)| p).collect();
            }
        }
    }

    /// Reloads the module of `path`, now `stamp`; whether it was reloaded (or loaded
    /// again, when the host had unloaded it).
    fn reload(&mut self, path: PathBuf, handle: ModuleHandle, stamp: Stamp) -> bool {
        // Tried once for what the file is now; a rescan tries it again only once it
        // changes (or, refused for a dependency, once a module loads or reloads).
        self.loaded.insert(path.clone(), (handle, Some(stamp)));
        self.waiting.remove(&path);
        match self
            .registry
            .reload(handle, &ModuleRef::from_path(&path), &self.policy)
        {
            Ok(reloaded) => {
                // Its old version's name may be what a blocked file waits for.
                self.freed = true;
                self.blocked.remove(&path);
                self.tell(WatchEvent::Reloaded {
                    path,
                    handle,
                    reloaded,
                });
                true
            }
            Err(RuntimeError::UnknownHandle(_)) => {
                // Unloaded by the host meanwhile: the file is new again.
                self.loaded.remove(&path);
                self.sync(vec![path]);
                false
            }
            Err(RuntimeError::OtherModule { .. }) => {
                // The file holds another module now: the one it held goes, and the one
                // it holds comes, as if the file had been removed and another put there.
                self.unload(path.clone(), handle);
                self.sync(vec![path]);
                false
            }
            Err(error) => {
                if held_by_another(&error) {
                    self.blocked.insert(path.clone());
                }
                // Its new version waits for what it calls, as a new file does; the old
                // version serves meanwhile.
                if matches!(error, RuntimeError::MissingDependency { .. }) {
                    self.waiting.insert(path.clone());
                }
                self.tell(WatchEvent::Failed { path, error });
                false
            }
        }
    }

    fn unload(&mut self, path: PathBuf, handle: ModuleHandle) {
        self.loaded.remove(&path);
        match self.registry.unload(handle) {
            // Already unloaded by the host: nothing more to do.
            Ok(()) | Err(RuntimeError::UnknownHandle(_)) => {
                self.freed = true;
                self.tell(WatchEvent::Unloaded { path, handle })
            }
            Err(error) => self.tell(WatchEvent::Failed { path, error }),
        }
    }

    fn tell(&self, event: WatchEvent) {
        match &event {
            WatchEvent::Failed { path, error } => {
                tracing::warn!(target: "memlink::watch", path = %path.display(), "{error}");
            }
            other => tracing::info!(target: "memlink::watch", "{other:?}"),
        }
        // Never waiting for the host to read: an event with no room is dropped (it was
        // logged above), and the watch goes on, as it does once the receiver is gone.
        if let Err(TrySendError::Full(_)) = self.events.try_send(event) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_library_files_are_modules() {
        let ext = std::env::consts::DLL_EXTENSION;
        assert!(is_module_file(Path::new(&format!("/m/libgreeter.{ext}"))));
        assert!(is_module_file(Path::new(&format!(
            "/m/greeter@1.2.0.{ext}"
        ))));
        assert!(!is_module_file(Path::new(&format!("/m/.libgreeter.{ext}"))));
        assert!(!is_module_file(Path::new(&format!(
            "/m/libgreeter.{ext}.partial"
        ))));
        assert!(!is_module_file(Path::new("/m/README.md")));
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            let name = |b: &[u8]| Path::new("/m").join(std::ffi::OsStr::from_bytes(b));
            assert!(is_module_file(&name(b"gr\xfcn.so")), "a name is bytes");
            assert!(!is_module_file(&name(b".gr\xfcn.so")));
        }
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
