//! A loaded module: its library, its checked description and its entry points.

use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use libloading::Library;
use memlink_abi as abi;

use crate::admission::{Admitted, Gate, Refused, Saturation};
use crate::buffer::AlignedBuf;
use crate::describe::{describe, Method};
use crate::error::RuntimeError;
use crate::handle::MethodRef;
use crate::health::Breaker;
use crate::method_index::MethodIndex;
use crate::metrics::{read_custom, MethodStats, ModuleMetrics};

/// The entry points, as plain function pointers: the library is never unloaded (see
/// [`Module::library`]), so they stay valid for the life of the process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EntryPoints {
    pub(crate) init: abi::InitFn,
    pub(crate) call: abi::CallFn,
    pub(crate) shutdown: abi::ShutdownFn,
    /// Optional: a module built without metrics support has none.
    pub(crate) metrics: Option<abi::MetricsFn>,
}

/// What a call to one method needs of it, together: what the call path reads of the
/// method, with one bounds check.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MethodCall {
    /// The method's id, which its frame carries.
    pub(crate) id: u32,
    /// The method's own entry point where the module has one
    /// (`ModuleInfo::method_calls`), which runs the export with nothing looked up, else
    /// the module's `memlink_call`.
    pub(crate) enter: abi::CallFn,
}

/// A module the runtime loaded.
#[derive(Debug)]
pub(crate) struct Module {
    /// Never dropped: unloading a Rust cdylib (`dlclose`) unmaps code that thread-local
    /// destructors it registered still point to, and they crash the process at thread
    /// exit. Retiring a module stops calls into it; the image stays mapped. `None` for a
    /// module linked into the host itself.
    _library: Option<ManuallyDrop<Library>>,
    pub(crate) path: PathBuf,
    /// The file the library was loaded from (the loader keeps one image per file,
    /// however it is reached): `None` for a module linked into the host, or a file that
    /// could not be told.
    pub(crate) file: Option<FileId>,
    pub(crate) name: String,
    /// The name the module gives itself (its crate's), whatever it is loaded as.
    pub(crate) own_name: String,
    pub(crate) version: String,
    /// `version` as semver, when it is (what versions side by side are told apart by).
    pub(crate) semver: Option<semver::Version>,
    pub(crate) sdk_version: String,
    /// Whether the module says it was built with `panic = "abort"` (its
    /// `memlink_panic_strategy`): a panic in it ends the process.
    pub(crate) aborts_on_panic: bool,
    /// Sorted by id, as the module's table is.
    pub(crate) methods: Vec<Method>,
    /// `methods` by name, for the calls made by name.
    by_name: MethodIndex,
    pub(crate) entry: EntryPoints,
    /// What a call to each method enters (same order as `methods`).
    pub(crate) calls: Box<[MethodCall]>,
    /// Admission: the concurrency limit, and whether the module still takes calls (its
    /// gate closes when it is retired). Shared by the versions a reload puts in its slot:
    /// the calls still running on an old version hold slots of the limit until they end,
    /// and an unload's drain waits for them too.
    pub(crate) gate: Arc<Gate>,
    /// Memory the module keeps across calls; a new region (and generation) per load.
    pub(crate) persistent: Option<PersistentRegion>,
    /// The deadline of a call made without one: the module's setting, else the runtime's.
    pub(crate) default_timeout: Option<Duration>,
    /// The most time any call to it is given: the module's setting, else the runtime's.
    pub(crate) max_call_time: Option<Duration>,
    /// Built-in figures, one per method (same order as `methods`); a reload hands the
    /// figures of each method both versions export to the new version, so its counters
    /// run on.
    pub(crate) stats: Box<[Arc<MethodStats>]>,
    /// The generation of the slot the module is installed in: what its handle carries.
    pub(crate) generation: u32,
    /// Its circuit breaker, used when the runtime has one configured.
    pub(crate) breaker: Breaker,
    /// Whether the host said already that it skipped a log record (of no level) or a
    /// metric record (malformed) of this version: said once, not on every record.
    pub(crate) told: crate::log::Told,
    /// An id no other module opened in this process has had (each reload's version has
    /// its own): what its cached results are kept under.
    pub(crate) id: u64,
    /// The `id` of the first version of the module a reload replaced by this one (its
    /// own, unless it came by a reload): a call chain that runs in one version and
    /// reaches another re-enters the module it holds, without waiting for a slot.
    pub(crate) lineage: u64,
    /// The methods reloads took away from the module's versions before this one, by id:
    /// a handle resolved on an older version names the method it lost.
    pub(crate) removed: Vec<(u32, String)>,
    /// Each method's digest as a daemon's client checks it (`methods`' order; see
    /// `memlink_ipc::control::method_digest`): computed once per load, so the worker
    /// compares a call's digest with a word.
    #[cfg(feature = "daemon")]
    pub(crate) digests: Box<[u64]>,
}

/// `m`'s digest, as a daemon's client computes it from the method's description.
#[cfg(feature = "daemon")]
fn digest(m: &Method) -> u64 {
    memlink_ipc::control::method_digest(
        m.args_format as u8,
        m.result_format as u8,
        m.args_type.as_ref().map(|t| t.fingerprint),
        m.result_type.as_ref().map(|t| t.fingerprint),
        m.signature.as_deref(),
    )
}

/// A file's identity, as the dynamic loader tells files apart (device and inode): two
/// paths to one file, a symbolic link and its target say, map one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId(u64, u64);

/// The file the dynamic loader was handed at each path, in this process. The loader keeps
/// the image it mapped for a path (images are never unmapped) and hands that image back
/// for the same path later, whatever file is there by then: a new build renamed over the
/// file after its module was unloaded, or while another runtime holds it.
///
/// Each path keeps the forks counted when it was handed (`crate::fork`): an image mapped
/// before this process was forked is its ancestor's, initialized there, with statics (an
/// async module's runtime) whose threads did not come along.
static HANDED: std::sync::Mutex<std::collections::BTreeMap<PathBuf, (Option<FileId>, u64)>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Whether the loader, handed `path` (already resolved), would return an image that is
/// not a fresh one of the file there now: another file's, one it mapped for that path
/// before, or one mapped before this process was forked from its parent.
pub(crate) fn loader_holds_another_file(path: &Path) -> bool {
    let target = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let now = FileId::of(&target);
    let handed = HANDED.lock().unwrap_or_else(|p| p.into_inner());
    handed
        .get(&target)
        .is_some_and(|&(was, forks)| was != now || crate::fork::since(forks))
}

impl FileId {
    /// The identity of the file at `path` (following links), if it can be read.
    pub(crate) fn of(path: &Path) -> Option<FileId> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(path)
                .ok()
                .map(|m| FileId(m.dev(), m.ino()))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            None
        }
    }
}

/// A module's persistent region (see `memlink_msdk::persist`): zeroed, stamped with a
/// generation no other region has had, then written only by the module's calls.
#[derive(Debug)]
pub(crate) struct PersistentRegion {
    buf: AlignedBuf,
    ptr: *mut u8,
}

// SAFETY: after construction the runtime never touches the buffer; the module's calls,
// from any thread, follow the region's protocol (atomics for the header and bitmap,
// records written once before they are published).
unsafe impl Send for PersistentRegion {}
// SAFETY: as above.
unsafe impl Sync for PersistentRegion {}

/// A buffer of this many bytes could not be allocated.
#[derive(Debug)]
pub(crate) struct CannotAllocate(pub(crate) usize);

impl CannotAllocate {
    /// The error that the size `setting` asked for cannot be had.
    pub(crate) fn refused(self, setting: &str) -> RuntimeError {
        RuntimeError::BadSetting {
            setting: format!("{setting} = {}", self.0),
            reason: self.to_string(),
        }
    }
}

impl std::fmt::Display for CannotAllocate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot allocate {} bytes", self.0)
    }
}

static NEXT_GENERATION: AtomicU64 = AtomicU64::new(0);

/// A generation no other region of this process has had, and most likely none of another
/// process: a count from a random start. Counted from 1 in every process, the first
/// region of each run had the same generation, and a `Ref` a module saved (in a file, in
/// a state another run restores) resolved in the next run's region, to whatever record
/// of its type lay at its offset there.
fn next_generation() -> u64 {
    static START: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let start = *START.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(std::process::id())
    });
    start.wrapping_add(NEXT_GENERATION.fetch_add(1, Ordering::Relaxed))
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl PersistentRegion {
    /// The region's length.
    pub(crate) fn len(&self) -> usize {
        self.buf.len()
    }

    /// [`new`](Self::new) for a size `setting` asked for, its failure that setting's error.
    pub(crate) fn asked(
        len: usize,
        setting: &str,
    ) -> Result<Option<PersistentRegion>, RuntimeError> {
        PersistentRegion::new(len).map_err(|e| e.refused(setting))
    }

    /// A region of `len` bytes, `Ok(None)` for 0, or `Err` when the allocator cannot give
    /// that many (or no allocation can be that large).
    pub(crate) fn new(len: usize) -> Result<Option<PersistentRegion>, CannotAllocate> {
        if len == 0 {
            return Ok(None);
        }
        let len = len.max(size_of::<abi::PersistentHeader>());
        let mut buf = AlignedBuf::try_zeroed(len).ok_or(CannotAllocate(len))?;
        let ptr = buf.as_mut_ptr();
        let generation = next_generation();
        // SAFETY: the buffer is 64-aligned (as `PersistentHeader` needs), at least one
        // header long, zeroed, and not shared with anyone yet.
        unsafe { (*ptr.cast::<abi::PersistentHeader>()).generation = generation };
        Ok(Some(PersistentRegion { buf, ptr }))
    }

    /// Where the region is and how long, for a call frame.
    #[inline]
    pub(crate) fn raw(&self) -> (*mut u8, usize) {
        (self.ptr, self.buf.len())
    }
}

/// Whether a new image of `path` may be mapped: it stays mapped for good, and with it
/// the thread-local keys it takes; past the process's last few, a module's thread would
/// abort the process.
pub(crate) fn room_for_image(path: &Path) -> Result<(), RuntimeError> {
    match crate::images::too_few_keys() {
        Some(reason) => Err(RuntimeError::NoRoomForImage {
            path: path.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

impl Module {
    /// Opens the library at `path` (already resolved) and checks that it is a memlink
    /// module this runtime can call. Does not call `memlink_init`.
    pub(crate) fn open(path: &Path, concurrency: usize) -> Result<Module, RuntimeError> {
        Module::open_as(path, concurrency, true)
    }

    /// [`open`](Module::open) of a private copy of a file: its path is new, and no load
    /// hands it to the loader again, so it is not kept among the paths the loader holds.
    pub(crate) fn open_private(path: &Path, concurrency: usize) -> Result<Module, RuntimeError> {
        Module::open_as(path, concurrency, false)
    }

    fn open_as(path: &Path, concurrency: usize, remember: bool) -> Result<Module, RuntimeError> {
        // A truncated file would load, then crash the process with SIGBUS when its pages
        // are touched: refuse it before the loader maps anything.
        crate::elf::check(path).map_err(|reason| RuntimeError::NotALibrary {
            path: path.to_owned(),
            reason,
        })?;
        // The loader is given the file a symbolic link leads to: the library's `$ORIGIN`
        // (where it finds libraries of its own) is the directory it was built for, not the
        // link's. The module keeps the path it was given, whose name may say its version.
        let target = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        let file = FileId::of(&target);
        // A path the loader holds gives back its image, which takes nothing more; a new
        // one is mapped for good (a private copy's room was looked at before it was made).
        let held = HANDED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&target);
        if remember && !held {
            room_for_image(path)?;
        }
        // Every symbol bound now (`RTLD_NOW`), not at its first use: a library that names
        // one nothing defines (a C module built without a library it uses) is refused
        // here, where lazily it loaded and then ended the process, with the loader's
        // "symbol lookup error", at the first call that reached it. Local: its symbols
        // are its own, not for the libraries loaded after it.
        let flags = libc::RTLD_NOW | libc::RTLD_LOCAL;
        // SAFETY: loading a library runs its initializers; a memlink module is native code
        // the host chose to trust (see docs/security.md). Nothing else is assumed here.
        let library = unsafe { libloading::os::unix::Library::open(Some(&target), flags) }
            .map(Library::from)
            .map_err(|source| RuntimeError::NotALibrary {
                path: path.to_owned(),
                reason: loader_reason(&target, source.to_string()),
            })?;
        if remember {
            // Mapped under this path from now on, module or not.
            HANDED
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(target.clone(), (file, crate::fork::generation()));
        }
        let library = ManuallyDrop::new(library);
        // SAFETY: `memlink_abi_version` is declared `extern "C" fn() -> u32` by every
        // version of the ABI, so reading it is sound before the version is known.
        let version_fn: abi::AbiVersionFn = unsafe { get(&library, path, abi::SYM_ABI_VERSION)? };
        // SAFETY: a nullary function returning a `u32`, as above.
        let version = unsafe { version_fn() };
        if version != abi::ABI_VERSION {
            return Err(RuntimeError::AbiMismatch {
                path: path.to_owned(),
                module: version,
                host: abi::ABI_VERSION,
            });
        }
        // SAFETY: the version matched, so each symbol has the signature this ABI version
        // gives it in `memlink_msdk::abi`.
        let (info_fn, init, call, shutdown) = unsafe {
            (
                get::<abi::ModuleInfoFn>(&library, path, abi::SYM_MODULE_INFO)?,
                get::<abi::InitFn>(&library, path, abi::SYM_INIT)?,
                get::<abi::CallFn>(&library, path, abi::SYM_CALL)?,
                get::<abi::ShutdownFn>(&library, path, abi::SYM_SHUTDOWN)?,
            )
        };
        // SAFETY: declared with the ABI's `MetricsFn` and `PanicStrategyFn` signatures
        // (the version matched above). A module without the first has no metrics of its
        // own; one without the second does not say how its panics end.
        let (metrics, strategy) = unsafe {
            (
                get_optional::<abi::MetricsFn>(&library, path, abi::SYM_METRICS)?,
                get_optional::<abi::PanicStrategyFn>(&library, path, abi::SYM_PANIC_STRATEGY)?,
            )
        };
        // SAFETY: a nullary function returning a `u32`, as the ABI declares it.
        let aborts_on_panic = strategy.is_some_and(|s| (unsafe { s() }) == abi::PANIC_ABORT);
        let entry = EntryPoints {
            init,
            call,
            shutdown,
            metrics,
        };
        // SAFETY: the module's ABI version matched, so its entry points have the ABI's
        // signatures, and `info_fn` returns null or a `ModuleInfo` in its static memory,
        // valid while the library is mapped (forever: it is never unloaded).
        let mut module = unsafe {
            Module::from_entry_points(path, Some(library), info_fn, entry, true, concurrency)
        }?;
        module.file = file;
        module.aborts_on_panic = aborts_on_panic;
        Ok(module)
    }

    /// Warns that the module, now loaded (or its new version, now started), was built
    /// with `panic = "abort"`. Loaded all the same: the host chose to trust the module's
    /// code, and a module that never panics runs as well. Said under the runtime's own
    /// target (a host that keeps modules' records apart, or a daemon worker, which sends
    /// them on, would take it for the module's), naming the file the host gave.
    pub(crate) fn warn_if_it_aborts(&self) {
        if self.aborts_on_panic {
            tracing::warn!(
                target: "memlink::registry",
                module = %self.name,
                "{} was built with panic = \"abort\": a panic in it ends this process \
                 instead of failing its call (build it with panic = \"unwind\", the \
                 default, to have its panics caught)",
                self.path.display()
            );
        }
    }

    /// A module from its entry points: checks the description `info` returns.
    ///
    /// # Safety
    ///
    /// `info` and the entry points must be the ABI's functions of one module, valid (with
    /// everything `info` points to) for the life of the process.
    ///
    /// With `own_entries`, a method the module gives an entry point of its own is called
    /// through it; without, every call goes through `entry.call`.
    pub(crate) unsafe fn from_entry_points(
        path: &Path,
        library: Option<ManuallyDrop<Library>>,
        info: abi::ModuleInfoFn,
        entry: EntryPoints,
        own_entries: bool,
        concurrency: usize,
    ) -> Result<Module, RuntimeError> {
        // SAFETY: the caller's contract: `info` is the module's, which returns null or
        // its description, valid (header first, then as much as its size says) and
        // unchanged for the life of the process.
        let described =
            unsafe { describe(info()) }.map_err(|reason| RuntimeError::InvalidModule {
                path: path.to_owned(),
                reason,
            })?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        #[cfg(feature = "daemon")]
        let digests = described.methods.iter().map(digest).collect();
        Ok(Module {
            _library: library,
            path: path.to_owned(),
            own_name: described.name.clone(),
            name: described.name,
            semver: semver::Version::parse(&described.version).ok(),
            version: described.version,
            sdk_version: described.sdk_version,
            stats: (0..described.methods.len())
                .map(|_| Arc::default())
                .collect(),
            by_name: MethodIndex::new(
                &described
                    .methods
                    .iter()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>(),
            ),
            calls: described
                .methods
                .iter()
                .zip(&described.calls)
                .map(|(method, own)| MethodCall {
                    id: method.id,
                    enter: own.filter(|_| own_entries).unwrap_or(entry.call),
                })
                .collect(),
            methods: described.methods,
            entry,
            gate: Arc::new(Gate::new(concurrency)),
            persistent: None,
            default_timeout: None,
            max_call_time: None,
            generation: 0,
            breaker: Breaker::new(),
            told: crate::log::Told::default(),
            id,
            lineage: id,
            removed: Vec::new(),
            file: None,
            // A module linked into the host panics as the host does; a library says so
            // itself (`open_as`).
            aborts_on_panic: !cfg!(panic = "unwind"),
            #[cfg(feature = "daemon")]
            digests,
        })
    }

    /// Where the method `method` refers to is in this module's table: where it was when it
    /// was resolved, unless a reload moved it (then found again by its id).
    #[inline]
    pub(crate) fn method_at(&self, method: MethodRef) -> Result<u32, RuntimeError> {
        // `calls` is what the call reads next, with the same index: one bounds check for
        // both (`methods` has the same order and length).
        match self.calls.get(method.index as usize) {
            Some(m) if m.id == method.id => Ok(method.index),
            _ => self.moved(method),
        }
    }

    #[cold]
    fn moved(&self, method: MethodRef) -> Result<u32, RuntimeError> {
        match self.methods.binary_search_by_key(&method.id, |m| m.id) {
            Ok(i) => Ok(i as u32),
            Err(_) => Err(RuntimeError::MethodRemoved {
                module: self.name.clone(),
                method: self
                    .removed
                    .iter()
                    .find(|(id, _)| *id == method.id)
                    .map(|(_, name)| name.clone()),
                id: method.id,
                version: self.version.clone(),
            }),
        }
    }

    /// The method named `name`, in one probe of its index (`crate::method_index`).
    /// Always inlined: a call by name looks its method up on the call path.
    #[inline(always)]
    pub(crate) fn method(&self, name: &str) -> Option<(u32, &Method)> {
        let i = self.by_name.find(name, |i| self.is_named(i, name))?;
        Some((i, &self.methods[i as usize]))
    }

    /// Whether method `i` is named `name`: a name longer than the index compares whole,
    /// out of the way of the short names most methods have.
    #[cold]
    #[inline(never)]
    fn is_named(&self, i: u32, name: &str) -> bool {
        self.methods[i as usize].name == name
    }
}

fn symbol_name(name: &'static [u8]) -> &'static str {
    std::str::from_utf8(&name[..name.len() - 1]).unwrap_or("?")
}

/// Looks up `name` and copies the function pointer out of the symbol. A symbol of that
/// name that holds data (`crate::elf::symbol_kind`), or whose address is null (a weak
/// symbol left undefined), is refused, never called.
///
/// # Safety
///
/// `T` must be a function pointer type, the true type of the symbol when it is a
/// function.
unsafe fn get<T: Copy>(
    library: &Library,
    path: &Path,
    name: &'static [u8],
) -> Result<T, RuntimeError> {
    const { assert!(size_of::<T>() == size_of::<*const core::ffi::c_void>()) };
    // SAFETY: a symbol's address taken as a pointer, whatever the symbol holds: nothing
    // is read or called through it here.
    let addr = match unsafe { library.get::<*const core::ffi::c_void>(name) } {
        Ok(symbol) if !symbol.is_null() => *symbol,
        _ => {
            return Err(RuntimeError::NotAModule {
                path: path.to_owned(),
                missing: symbol_name(name),
            })
        }
    };
    if crate::elf::symbol_kind(addr) == crate::elf::SymbolKind::Data {
        return Err(RuntimeError::InvalidModule {
            path: path.to_owned(),
            reason: format!(
                "its `{}` is data, not a function (in C, define it as the function \
                 include/memlink.h declares)",
                symbol_name(name)
            ),
        });
    }
    // SAFETY: `T` is a function pointer type (the caller's contract), of the size of an
    // address (checked above) and represented as one; the address is not null, and it
    // is the function's when the symbol is one, as the caller promises of its type.
    Ok(unsafe { core::mem::transmute_copy::<*const core::ffi::c_void, T>(&addr) })
}

/// [`get`] for an entry point a module may leave out: `None` when it has no such symbol.
/// One whose symbol is data is refused as for the others.
///
/// # Safety
///
/// As for [`get`].
unsafe fn get_optional<T: Copy>(
    library: &Library,
    path: &Path,
    name: &'static [u8],
) -> Result<Option<T>, RuntimeError> {
    // SAFETY: forwarded from this function's contract.
    match unsafe { get::<T>(library, path, name) } {
        Ok(function) => Ok(Some(function)),
        Err(RuntimeError::NotAModule { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why a call could not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotEntered {
    Retired,
    Refused(Refused),
}

impl Module {
    /// Takes a slot for a call from a thread whose shard is `shard`, unless the module is
    /// retired or saturated.
    #[inline(always)]
    pub(crate) fn enter(
        &self,
        shard: usize,
        policy: Saturation,
        deadline: Option<Instant>,
    ) -> Result<Admitted, NotEntered> {
        let entered = self.gate.enter(shard, policy, deadline);
        // Checked after taking the slot: `unload` closes the gate first and then drains
        // the slots, so a call either sees it closed or is waited for. A call refused
        // while the drain holds the slots is told the module is gone.
        if self.is_retired() {
            if let Ok(admitted) = entered {
                self.gate.leave(admitted);
            }
            return Err(NotEntered::Retired);
        }
        entered.map_err(|refused| match refused {
            Refused::Closed => NotEntered::Retired,
            other => NotEntered::Refused(other),
        })
    }

    /// Marks a call admitted as `admitted` as finished.
    #[inline(always)]
    pub(crate) fn leave(&self, admitted: Admitted) {
        self.gate.leave(admitted);
    }

    /// The module's figures: its exports' built-ins and, through its `memlink_metrics`
    /// export, its own metrics; with `breaker`, its breaker's state.
    pub(crate) fn metrics(&self, breaker: bool) -> ModuleMetrics {
        let methods = self
            .methods
            .iter()
            .zip(self.stats.iter())
            .map(|(m, s)| s.snapshot(&self.name, &m.name))
            .collect();
        ModuleMetrics {
            module: self.name.clone(),
            methods,
            custom: self
                .entry
                .metrics
                .map(|read| read_custom(read, &self.name, &self.told))
                .unwrap_or_default(),
            breaker: breaker.then(|| self.breaker.state()),
            breaker_opened: self.breaker.times_opened(),
        }
    }

    /// Whether the module is linked into the host rather than loaded from a file.
    pub(crate) fn is_linked(&self) -> bool {
        self._library.is_none()
    }

    /// Takes over what `old`, the version this one replaces, knew of the methods
    /// reloads took away, and the methods of its own this one lacks.
    pub(crate) fn carry_removed_of(&mut self, old: &Module) {
        let lost = old.methods.iter().map(|m| (m.id, m.name.clone()));
        self.removed = old
            .removed
            .iter()
            .cloned()
            .chain(lost)
            .filter(|(id, _)| self.methods.binary_search_by_key(id, |m| m.id).is_err())
            .collect();
    }

    /// Takes over `old`'s figures for each method both export under one name, so a
    /// reloaded module's counters run on (a method `old` lacks starts at zero), and the
    /// count of times its breaker opened (the breaker itself starts closed).
    pub(crate) fn carry_figures_of(&mut self, old: &Module) {
        for (method, stats) in self.methods.iter().zip(self.stats.iter_mut()) {
            if let Some((i, _)) = old.method(&method.name) {
                *stats = Arc::clone(&old.stats[i as usize]);
            }
        }
        self.breaker.carry_count_of(&old.breaker);
    }

    /// Whether the module was retired (unloaded): it takes no more calls.
    #[inline]
    pub(crate) fn is_retired(&self) -> bool {
        self.gate.is_closed()
    }
}

/// The loader's `reason` for refusing `file`, with why when the file's file system is
/// mounted `noexec`: the loader says only that it "failed to map segment from shared
/// object", which reads as a fault of the file, where any library there is refused.
fn loader_reason(file: &Path, reason: String) -> String {
    if mounted_noexec(file) {
        return format!(
            "{reason} (its file system is mounted noexec, from which no library can be \
             mapped, whatever it holds: load it from one that allows running code)"
        );
    }
    reason
}

/// Whether `path` lies on a file system mounted `noexec`, from which the loader can map
/// no library; `false` where that cannot be told.
pub(crate) fn mounted_noexec(path: &Path) -> bool {
    use rustix::fs::{statvfs, StatVfsMountFlags};
    statvfs(path).is_ok_and(|fs| fs.f_flag.contains(StatVfsMountFlags::NOEXEC))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Generations count from a random start: counted from 1, every run's first region
    /// had generation 1, and a `Ref` saved by one run resolved in the next.
    #[test]
    fn generations_count_from_a_random_start() {
        let generation = |r: &PersistentRegion| {
            // SAFETY: the region starts with its header, written when it was made.
            unsafe { (*r.ptr.cast::<abi::PersistentHeader>()).generation }
        };
        let a = PersistentRegion::new(4096).unwrap().unwrap();
        let b = PersistentRegion::new(4096).unwrap().unwrap();
        let (a, b) = (generation(&a), generation(&b));
        assert_ne!(a, b, "no two regions share one");
        // A random start is below 2^32 once in 2^32 runs; a count from 1 always was.
        assert!(a > u64::from(u32::MAX), "{a}");
    }
}
