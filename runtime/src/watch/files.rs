//! What a watch knows of its directory's module files, and what it does when they
//! come, change and go: the loads, reloads and unloads, and the files that wait for
//! another module (one they call, or one that holds what they need).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use std::time::Duration;

use super::event::WatchEvent;
use super::OpenGuard;
use crate::config::ModuleSettings;
use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::registry::{Registry, Retiring};
use crate::reload::ReloadPolicy;
use crate::resolver::ModuleRef;
use crate::written::Contents;

mod relook;

/// Whether `path` names a module file the watch cares about (its name UTF-8 or not: a
/// file name is bytes, and `libgr\xfcn.so` is a module file too).
pub(super) fn is_module_file(path: &Path) -> bool {
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

/// What a watch knows of its directory.
pub(super) struct State {
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
    /// What a daemon's worker does around each file opened (see [`OpenGuard`]).
    guard: Option<Arc<dyn OpenGuard>>,
    /// Paths refused for what is there being no module file (a device, a directory, a
    /// FIFO, a dangling link), with what it was: refused again only once that changes.
    /// A link to `/dev/null` (a module masked, as `systemctl mask` masks a unit) was
    /// refused, and warned of, at every write anyone made to `/dev/null`.
    others: BTreeMap<PathBuf, Other>,
    /// Files a module was followed to by a rename ([`State::follow_renames`]): the
    /// rename's events for the new name that come after are not a change of the file.
    moved: BTreeSet<PathBuf>,
    /// What each module file was when the watch last looked at it, taken before any of
    /// that look's loads: a file written since (during the loads before its own, say, by
    /// a writer that then paused) is refused by its copy (see `crate::written::Contents`)
    /// and looked at again (`relook`). A file that is gone has none.
    looked: BTreeMap<PathBuf, Contents>,
    /// Files refused for having changed since the watch looked at them
    /// ([`changed_since_looked`]), to be looked at again once no event has touched them
    /// for the debounce time ([`State::take_relook`]). A writer still writing keeps its
    /// file pending through its own events; a change that brings no event for the path
    /// (a hard link made elsewhere, a write through another link's name, a `chattr`) would
    /// otherwise have left the file unloaded, or its module on its old version, for good.
    relook: BTreeSet<PathBuf>,
    /// How many times in a row each file was refused so: the wait before its next look
    /// grows with it ([`State::take_relook`]).
    relooks: BTreeMap<PathBuf, u32>,
    /// Once the watch follows its directory (not in its first look, which loads what is
    /// there): how long a file must have seen no change (by its change time) when it is
    /// looked at, the debounce time. A file changed since it fell due, by a writer whose
    /// event had not reached the watch when it looked (it began the moment the file was
    /// due, and paused), is put back to pending, not copied: its look would have taken
    /// the mix's change time.
    settle: Option<Duration>,
    /// The threads retiring versions reloads replaced ([`State::retire_later`]), joined
    /// when the watch ends: its end waits for them, as it did when it retired each
    /// itself, so that a host dropping its watch and runtime has the old versions shut
    /// down then, not on a thread the process may end first.
    retiring: Vec<std::thread::JoinHandle<()>>,
    /// Unloads of modules whose calls were in flight, each on a thread of its own
    /// ([`State::unload`]): their files' paths, handles and threads, told (and the files
    /// waiting for what they held tried again) once done ([`State::reap`]).
    unloading: Vec<Unloading>,
}

/// An unload made on a thread of its own.
struct Unloading {
    path: PathBuf,
    handle: ModuleHandle,
    thread: std::thread::JoinHandle<Result<(), RuntimeError>>,
}

impl Drop for State {
    fn drop(&mut self) {
        for thread in self.retiring.drain(..) {
            let _ = thread.join();
        }
        for unloading in self.unloading.drain(..) {
            let _ = unloading.thread.join();
        }
    }
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
    Other(Other),
}

/// Which thing that is no module file a path leads to: the inode it leads to (the link's
/// own, when it leads nowhere) and its type, not its times or size, which a device's
/// readers and writers change without it becoming anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Other {
    #[cfg(unix)]
    inode: (u64, u64),
    kind: std::fs::FileType,
}

impl Other {
    fn of(meta: &std::fs::Metadata) -> Other {
        Other {
            #[cfg(unix)]
            inode: {
                use std::os::unix::fs::MetadataExt;
                (meta.dev(), meta.ino())
            },
            kind: meta.file_type(),
        }
    }
}

impl Entry {
    fn of(path: &Path) -> Entry {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Entry::File(Stamp::of(&meta)),
            Ok(meta) => Entry::Other(Other::of(&meta)),
            Err(_) => match std::fs::symlink_metadata(path) {
                Ok(link) => Entry::Other(Other::of(&link)),
                Err(_) => Entry::Gone,
            },
        }
    }
}

impl State {
    /// A watch's state before its first look: nothing loaded, nothing waiting.
    pub(super) fn new(
        registry: Arc<Registry>,
        policy: ReloadPolicy,
        events: SyncSender<WatchEvent>,
        dropped: Arc<AtomicU64>,
        guard: Option<Arc<dyn OpenGuard>>,
    ) -> State {
        State {
            registry,
            policy,
            loaded: BTreeMap::new(),
            waiting: BTreeSet::new(),
            blocked: BTreeSet::new(),
            freed: false,
            events,
            dropped,
            guard,
            others: BTreeMap::new(),
            moved: BTreeSet::new(),
            looked: BTreeMap::new(),
            relook: BTreeSet::new(),
            relooks: BTreeMap::new(),
            settle: None,
            retiring: Vec::new(),
            unloading: Vec::new(),
        }
    }

    /// Follows each module file of `paths` renamed within the directory: one whose
    /// module is loaded, gone from its name, and the file at another of `paths` as it
    /// was loaded (its inode, length and time: a rename keeps them). The module stays,
    /// known by its file's new name. Seen as a removal and a new file, it was unloaded
    /// and loaded again: its calls were refused meanwhile ("no module named ... is
    /// loaded"), and what it kept in memory was lost.
    fn follow_renames(&mut self, paths: &[PathBuf]) {
        let gone: Vec<(PathBuf, ModuleHandle, Stamp)> = paths
            .iter()
            .filter_map(|p| match self.loaded.get(p) {
                Some(&(handle, Some(stamp))) if matches!(Entry::of(p), Entry::Gone) => {
                    Some((p.clone(), handle, stamp))
                }
                _ => None,
            })
            .collect();
        for (from, handle, stamp) in gone {
            let to = paths.iter().find(|p| {
                is_module_file(p)
                    && !self.loaded.contains_key(*p)
                    && matches!(Entry::of(p), Entry::File(now) if now == stamp)
            });
            if let Some(to) = to.cloned() {
                self.loaded.remove(&from);
                self.forget_refusal(&from);
                // What was refused at the new name before is not what is there now.
                self.forget_refusal(&to);
                self.loaded.insert(to.clone(), (handle, Some(stamp)));
                self.moved.insert(to.clone());
                self.tell(WatchEvent::Moved { from, to, handle });
            }
        }
    }

    /// Lets `old`, a version a reload replaced, go once its calls end, on a thread of its
    /// own: the watch goes on at once. Waited for here, one call on an old version (a
    /// call with no deadline may run for hours) held up every other change of the
    /// directory: a new file was not loaded, nor a removed one unloaded, until it
    /// returned. Retired here when no thread can be started.
    fn retire_later(&mut self, old: Retiring) {
        self.retiring.retain(|thread| !thread.is_finished());
        let (give, take) = std::sync::mpsc::channel::<Retiring>();
        let registry = Arc::clone(&self.registry);
        let started = std::thread::Builder::new()
            .name("memlink-retire".to_owned())
            .spawn(move || {
                if let Ok(old) = take.recv() {
                    registry.retire(old);
                }
            });
        match started {
            Ok(thread) => {
                self.retiring.push(thread);
                // The thread waits for it: a send cannot fail while it does.
                if let Err(std::sync::mpsc::SendError(old)) = give.send(old) {
                    self.registry.retire(old);
                }
            }
            Err(_) => self.registry.retire(old),
        }
    }

    /// Opens `path` with `open` (a load or a reload), within the guard's word if the
    /// watch has one.
    fn open<T>(
        &self,
        path: &Path,
        open: impl FnOnce() -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        let Some(guard) = &self.guard else {
            return open();
        };
        guard
            .opening(path)
            .map_err(|reason| RuntimeError::NotALibrary {
                path: path.to_owned(),
                reason,
            })?;
        let opened = open();
        guard.opened();
        opened
    }
    /// Looks at every file again, those the directory holds now and those modules were
    /// loaded from: events were lost, or the directory was replaced. Files unchanged
    /// since their module was loaded are left alone.
    pub(super) fn rescan(&mut self, dir: &Path) {
        // A directory that cannot be read is told by `Watched::check` when it is gone.
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.extend(self.loaded.keys().cloned());
        paths.sort();
        paths.dedup();
        // Files no longer there (a directory replaced, say) are never looked at again.
        self.looked.retain(|p, _| paths.binary_search(p).is_ok());
        self.look_at(paths, true);
    }

    /// Brings the modules of `paths` in step with the files: unloads the removed, reloads
    /// the changed, loads the new (again and again while a load lets a waiting module's
    /// dependency in).
    pub(super) fn sync(&mut self, paths: Vec<PathBuf>) {
        self.look_at(paths, false);
    }

    /// Looks at `paths`, whose metadata alone changed, as [`rescan`](State::rescan)
    /// does: a module loaded from a file as it is now is left alone, and a file refused
    /// (one that could not be read, say) is tried again.
    pub(super) fn refresh(&mut self, paths: Vec<PathBuf>) {
        self.look_at(paths, true);
    }

    /// The reference a load of `path` is made with: the file as the watch last looked at
    /// it.
    fn reference(&self, path: &Path) -> ModuleRef {
        ModuleRef::from_named_file(path, self.looked.get(path).copied())
    }

    /// Forgets that `path` was refused and waits for another module: what is there now
    /// is looked at afresh.
    fn forget_refusal(&mut self, path: &Path) {
        self.waiting.remove(path);
        self.blocked.remove(path);
        self.relooks.remove(path);
    }

    /// [`sync`](State::sync); with `rescan`, a file whose module was loaded from it as
    /// it is now is not reloaded.
    fn look_at(&mut self, paths: Vec<PathBuf>, rescan: bool) {
        self.look_at_as(paths, rescan, true);
    }

    /// [`look_at`](State::look_at); `fresh`: what each file is now is what it is loaded
    /// as (an event, or a rescan, brought it here), else what the watch's last look at
    /// it found (a file tried again once what held it up went).
    fn look_at_as(&mut self, mut paths: Vec<PathBuf>, rescan: bool, fresh: bool) {
        // Taken of every file before any is loaded: the loads take a while, and a file
        // the look is about is to be loaded as it was when the look began. A file tried
        // again later (one waiting for a dependency, or blocked by what another module
        // held) is loaded as its last look found it: changed since, by a writer still at
        // it or by anything else, it is refused and looked at again (`relook`).
        for path in paths.iter().filter(|p| is_module_file(p)) {
            if !fresh && self.looked.contains_key(path) {
                continue;
            }
            match Contents::at(path) {
                Some(contents) => self.looked.insert(path.clone(), contents),
                None => self.looked.remove(path),
            };
        }
        if let (true, Some(settle)) = (fresh, self.settle) {
            self.defer_unsettled(&mut paths, settle);
        }
        self.follow_renames(&paths);
        let mut new = Vec::new();
        // Whether a module was loaded or reloaded: a waiting module may now find what
        // it calls. Without one, trying them again would only open a fresh image of
        // each (never unmapped) to be refused for the same reason.
        let mut changed = false;
        for path in paths.into_iter().filter(|p| is_module_file(p)) {
            let loaded = self.loaded.get(&path).copied();
            let entry = Entry::of(&path);
            if !matches!(entry, Entry::Other(_)) {
                self.others.remove(&path);
            }
            // A file changed (or gone) since a module followed it here is looked at as
            // any other.
            let unchanged =
                matches!((&entry, loaded), (Entry::File(now), Some((_, Some(was)))) if *now == was);
            if !unchanged {
                self.moved.remove(&path);
            }
            match (entry, loaded) {
                (Entry::Gone, Some((handle, _))) => {
                    self.forget_refusal(&path);
                    self.unload(path, handle);
                }
                (Entry::Gone, None) => self.forget_refusal(&path),
                (Entry::File(stamp), Some((_, was))) if rescan && was == Some(stamp) => {}
                // The rest of a rename's events, for the name the module followed it to.
                (Entry::File(stamp), Some((_, was)))
                    if was == Some(stamp) && self.moved.contains(&path) => {}
                (Entry::File(stamp), Some((handle, _))) => {
                    changed |= self.reload(path, handle, stamp);
                }
                (Entry::File(_), None) => new.push(path),
                // Refused already for being this: told once, not at every event of it.
                (Entry::Other(other), None) if self.others.get(&path) == Some(&other) => {}
                // No module file any more: its module goes, and the load below tells
                // what is there instead.
                (Entry::Other(other), loaded) => {
                    if let Some((handle, _)) = loaded {
                        self.unload(path.clone(), handle);
                    }
                    self.forget_refusal(&path);
                    self.others.insert(path.clone(), other);
                    new.push(path);
                }
            }
        }
        // What went or changed version above was gone before the loads below: a file
        // they try was tried with it gone already, and is not tried again for it.
        let freed_before = std::mem::take(&mut self.freed);
        let tried: BTreeSet<PathBuf> = new.iter().cloned().collect();
        self.load_new(new, changed);
        // A file refused for a name, a file or a slot another module held is tried again
        // once a module went or changed version: else, with the module that held it
        // gone (its file removed after the new one was written, say), the directory
        // would hold a module file and the runtime no module of it. One tried above
        // after the module went is not (a module that went during the loads, a waiting
        // one's new version, frees what any of them waits for): trying it again would
        // refuse it, and tell it, a second time for one change.
        let freed_during = std::mem::take(&mut self.freed);
        let retry: Vec<PathBuf> = if freed_during {
            std::mem::take(&mut self.blocked).into_iter().collect()
        } else if freed_before {
            let retry: Vec<PathBuf> = self.blocked.difference(&tried).cloned().collect();
            for path in &retry {
                self.blocked.remove(path);
            }
            retry
        } else {
            Vec::new()
        };
        if !retry.is_empty() {
            self.look_at_as(retry, false, false);
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
                let loaded = self.open(&path, || {
                    self.registry.load(&self.reference(&path), &settings)
                });
                match loaded {
                    Ok(handle) => {
                        changed = true;
                        self.blocked.remove(&path);
                        self.loaded.insert(path.clone(), (handle, stamp));
                        self.looked_fine(&path);
                        self.tell(WatchEvent::Loaded { path, handle });
                    }
                    Err(error @ RuntimeError::MissingDependency { .. }) => {
                        refused.push((path, error))
                    }
                    Err(error) if held_by_another(&error) => {
                        self.blocked.insert(path.clone());
                        self.tell(WatchEvent::Failed { path, error });
                    }
                    Err(error) => self.refused(path, error),
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
        let mut retiring = None;
        let reloaded = self.open(&path, || {
            self.registry
                .switch(handle, &self.reference(&path), &self.policy, |old| {
                    retiring = Some(old)
                })
        });
        if let Some(old) = retiring {
            self.retire_later(old);
        }
        match reloaded {
            Ok(reloaded) => {
                // Its old version's name may be what a blocked file waits for.
                self.freed = true;
                self.blocked.remove(&path);
                self.looked_fine(&path);
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
                self.look_at_as(vec![path], false, false);
                false
            }
            Err(RuntimeError::OtherModule { .. }) => self.replace(path, handle, stamp),
            Err(error) => {
                if held_by_another(&error) {
                    self.blocked.insert(path.clone());
                }
                // Its new version waits for what it calls, as a new file does; the old
                // version serves meanwhile.
                if matches!(error, RuntimeError::MissingDependency { .. }) {
                    self.waiting.insert(path.clone());
                }
                self.refused(path, error);
                false
            }
        }
    }

    /// The file of the module loaded as `handle` holds another module now (its file
    /// `stamp`): that one comes and the one it held goes, as if the file had been
    /// removed and another put there; but the new one is loaded first, and the old one
    /// goes only once it is, so a file replaced by one that does not load leaves its
    /// module serving, as any refused reload does (tried again once the file changes).
    /// Whether the new one was loaded.
    fn replace(&mut self, path: PathBuf, handle: ModuleHandle, stamp: Stamp) -> bool {
        let settings = ModuleSettings::default().private_copy(true);
        let loaded = self.open(&path, || {
            self.registry.load(&self.reference(&path), &settings)
        });
        match loaded {
            Ok(new) => {
                self.unload_here(path.clone(), handle);
                self.loaded.insert(path.clone(), (new, Some(stamp)));
                self.blocked.remove(&path);
                self.looked_fine(&path);
                self.tell(WatchEvent::Loaded { path, handle: new });
                true
            }
            // The runtime has no slot for both at once: the one the file held goes first,
            // and the other takes its slot, as if the file had been removed and another
            // put there.
            Err(RuntimeError::TooManyModules { .. }) => {
                self.unload_here(path.clone(), handle);
                self.look_at_as(vec![path], false, false);
                false
            }
            Err(error) => {
                // A new module that waits for what it calls is tried again as a waiting
                // new version is, one refused for what another module holds once a module
                // goes or changes version (both reloaded, which comes back here); one
                // refused for a change since the look after the debounce time (`refused`);
                // any other refusal once the file changes.
                if matches!(error, RuntimeError::MissingDependency { .. }) {
                    self.waiting.insert(path.clone());
                }
                if held_by_another(&error) {
                    self.blocked.insert(path.clone());
                }
                self.refused(path, error);
                false
            }
        }
    }

    /// Unloads the module of `path`: here when no call of it is in flight, which is
    /// quick; else on a thread of its own, told once done ([`State::reap`]). An unload
    /// waits for the module's calls (of every version: they share its gate) before its
    /// name is free; waited for here, one long call held up every other change of the
    /// directory: a new file was not loaded until that call returned.
    fn unload(&mut self, path: PathBuf, handle: ModuleHandle) {
        self.loaded.remove(&path);
        let busy = self
            .registry
            .module(handle)
            .is_ok_and(|m| m.gate.in_flight() > 0);
        if busy {
            let registry = Arc::clone(&self.registry);
            let started = std::thread::Builder::new()
                .name("memlink-unload".to_owned())
                .spawn(move || registry.unload(handle));
            if let Ok(thread) = started {
                self.unloading.push(Unloading {
                    path,
                    handle,
                    thread,
                });
                return;
            }
        }
        self.unload_here(path, handle);
    }

    /// Unloads the module of `path` here, whatever its calls: for a file whose module
    /// another one replaces, whose `Unloaded` must come before the new one's `Loaded`
    /// (a host that follows modules by their file would drop the new one), and whose
    /// slot the new one may need.
    fn unload_here(&mut self, path: PathBuf, handle: ModuleHandle) {
        self.loaded.remove(&path);
        let unloaded = self.registry.unload(handle);
        self.unloaded(path, handle, unloaded);
    }

    /// Tells how the unload of `path`'s module went.
    fn unloaded(&mut self, path: PathBuf, handle: ModuleHandle, how: Result<(), RuntimeError>) {
        match how {
            // Already unloaded by the host: nothing more to do.
            Ok(()) | Err(RuntimeError::UnknownHandle(_)) => {
                self.freed = true;
                self.tell(WatchEvent::Unloaded { path, handle })
            }
            Err(error) => self.tell(WatchEvent::Failed { path, error }),
        }
    }

    /// Tells the unloads made on threads of their own that are done, and tries again
    /// the files that waited for what they held (their module's name, its file, the
    /// runtime's last slot). Called on every turn of the watch's loop (at most 100 ms
    /// apart).
    pub(super) fn reap(&mut self) {
        if self.unloading.is_empty() {
            return;
        }
        let (done, running): (Vec<Unloading>, Vec<Unloading>) = std::mem::take(&mut self.unloading)
            .into_iter()
            .partition(|u| u.thread.is_finished());
        self.unloading = running;
        if done.is_empty() {
            return;
        }
        for Unloading {
            path,
            handle,
            thread,
        } in done
        {
            // A panic of the unload is the watch's, as when it unloaded here.
            let how = thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            self.unloaded(path, handle, how);
        }
        if std::mem::take(&mut self.freed) {
            let blocked: Vec<PathBuf> = std::mem::take(&mut self.blocked).into_iter().collect();
            if !blocked.is_empty() {
                self.look_at_as(blocked, false, false);
            }
        }
    }

    pub(super) fn tell(&self, event: WatchEvent) {
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
}
