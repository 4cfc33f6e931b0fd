//! The registry: what a runtime holds (its modules, their names, the arena pool, the
//! clock) and how modules come and go (load, install, reload, unload).
//!
//! Each module sits in a slot as an `Arc` a call reaches without a lock (`arc_swap`: a
//! load marks the pointer in a thread-local list, no shared count is touched), and holds
//! for the length of the call, so a module's memory (its persistent region, its figures,
//! its description) is freed only once no call can see it. A call from the host on a
//! thread that owns a shard holds it more cheaply still, with a hazard pointer
//! (`crate::hazard`): the slot's plain pointer, announced in the thread's cell with a
//! plain store, which a reload or unload waits for before it frees the module. Loads,
//! unloads and the switch of a reload are serialized by a lock a call never takes
//! (`loading`), and their waits for a module's calls happen outside it; a reload makes
//! its next version ready (opened, started, the old state taken) outside it too, under a
//! lock of its module's slot that orders the reloads of that module alone. A slot freed
//! by an unload is reused, with the next generation, so a handle of the module unloaded
//! is refused rather than taken for its successor.

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use arc_swap::{ArcSwapOption, Guard};

use memlink_abi::HostApi;

use crate::barrier::Barriers;
use crate::cache::ResultCache;
use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::hazard::{self, Pinned};
use crate::locks::Holding;
use crate::module::Module;
use crate::names::Names;
use crate::pool::ArenaPool;
use crate::resolver::Resolver;
use crate::thread::ThreadState;

mod loading;
mod retiring;
mod versions;

use retiring::shutdown;

/// A runtime's state, shared by every clone of the [`Runtime`](crate::Runtime) and by
/// the handles it hands out.
pub(crate) struct Registry {
    id: u32,
    pub(crate) config: RuntimeConfig,
    /// The services every module of this runtime gets (the runtime's `HOST_API`).
    pub(crate) host: &'static HostApi,
    resolver: Box<dyn Resolver>,
    /// One slot per module loaded at once; the module in it is swapped by a reload and
    /// taken out by an unload.
    slots: Box<[ArcSwapOption<Module>]>,
    /// Each slot's module as a plain pointer (null when it is empty), for the calls that
    /// hold their module with a hazard pointer ([`Registry::pin`]); written with the slot,
    /// under the `loading` lock.
    raw: Box<[AtomicPtr<Module>]>,
    /// The hazard pointers' barriers in this process.
    barriers: Barriers,
    /// Serializes loads, unloads and the switch of a reload (not held while they wait
    /// for calls, nor while a reload makes its next version ready; a load starts its
    /// module under it: its init and its dependencies export); knows which slots are
    /// free.
    loading: Mutex<Slots>,
    /// One per slot: serializes the reloads of the module in it, held while a reload
    /// makes its next version ready (and takes its state, which may wait for a call),
    /// so that reloads of one module follow one another and hold up nothing else.
    reloading: Box<[Mutex<()>]>,
    /// Live modules by name and version, for nested calls and `handle_of`.
    names: RwLock<Names>,
    /// Moved on twice by every change of a slot or a name (see [`Registry::changing`]):
    /// a reader that sees the same even number before and after reading a slot read
    /// what a lookup at that number finds, which lets a thread's nested calls skip the
    /// lookup (`crate::targets`).
    epoch: AtomicU64,
    pub(crate) pool: Arc<ArenaPool>,
    /// Times calls for the latency histogram: the CPU's time-stamp counter where it is
    /// invariant (about 9 ns a read against 21 for `Instant::now` on the machine in
    /// benches/README.md), calibrated once per process; the OS clock elsewhere.
    pub(crate) clock: quanta::Clock,
    /// Calls a module's lifecycle exports (dependencies, state); see `export_caller`.
    call_export: CallExport,
    /// Holds the calls the asking thread runs while a load, unload or reload waits.
    hold_running_calls: HoldRunningCalls,
    /// Results of pure methods, when the runtime keeps them.
    pub(crate) cache: Option<ResultCache>,
    /// Whether a call runs through nothing but the module: no interceptors, no breaker
    /// and no result cache (`crate::call`'s `run` reads this one flag, not three).
    pub(crate) unguarded: bool,
    /// The families its Prometheus text gave the modules' own metrics, kept so that
    /// each keeps its own from one scrape to the next.
    pub(crate) families: Mutex<crate::prometheus::Families>,
    /// The longest name a module may be loaded under, in bytes (`usize::MAX`: any): a
    /// daemon's worker serves only names a call's slot can carry (`limit_names`).
    longest_name: AtomicUsize,
    /// The forks counted when it was made, and the process that made it: a child forked
    /// since refuses to use it (see `crate::fork`).
    forks: u64,
    made_in: u32,
}

/// The call path, as the registry calls a module's lifecycle exports with it.
pub(crate) type CallExport = fn(&Registry, &Module, u32, &[u8]) -> Result<Vec<u8>, String>;

/// The calls the thread runs, held (`locks::Lock::Calls`) until the holds are dropped:
/// a load, unload or reload asked from inside them takes them at its start, so that its
/// waits are recorded as theirs (`crate::call::hold_running_calls`, which the call path
/// above the registry gives it, as it gives `CallExport`).
pub(crate) type HoldRunningCalls = fn() -> Vec<Holding>;

/// Which slots hold no module, and each slot's generation.
#[derive(Debug)]
struct Slots {
    /// Slots never used are `used..`; those freed by an unload are kept here.
    free: Vec<u32>,
    used: usize,
    /// The generation the next module installed in each slot gets.
    generations: Box<[u32]>,
}

impl Slots {
    fn has_room(&self) -> bool {
        !self.free.is_empty() || self.used < self.generations.len()
    }

    /// A free slot and its generation (call [`has_room`](Slots::has_room) first).
    fn take(&mut self) -> Option<(u32, u32)> {
        let index = match self.free.pop() {
            Some(index) => index,
            None if self.used < self.generations.len() => {
                self.used += 1;
                (self.used - 1) as u32
            }
            None => return None,
        };
        Some((index, self.generations[index as usize]))
    }

    /// Gives `index` back, for a later module of the next generation.
    fn give_back(&mut self, index: u32) {
        let generation = &mut self.generations[index as usize];
        *generation = generation.wrapping_add(1).max(1);
        self.free.push(index);
    }
}

/// A module reached through its slot, kept alive (with everything it owns) while this
/// lives. Hold it only for the length of a call: an unload or reload waits for it.
pub(crate) struct Live(Guard<Option<Arc<Module>>>);

impl Deref for Live {
    type Target = Module;
    #[inline]
    fn deref(&self) -> &Module {
        match &*self.0 {
            Some(module) => module,
            // `Live` is only made from a guard holding a module (`Live::of`).
            None => unreachable!("a `Live` holds a module"),
        }
    }
}

/// A module held with the calling thread's hazard pointer (see [`Registry::pin`]): alive
/// while this lives, and, like a [`Live`], to be held only for the length of a call.
pub(crate) struct PinnedModule(Pinned<Module>);

impl Deref for PinnedModule {
    type Target = Module;
    #[inline]
    fn deref(&self) -> &Module {
        // SAFETY: the pointer was in its slot after the thread announced it in a cell of
        // the thread's own shard (`hazard::pin`, called by `Registry::pin` and
        // `Registry::hinted` with the calling thread's `ThreadState`, so no other thread
        // writes that cell), so the `Arc` the slot held was alive then. A module leaves
        // its slot only through `Registry::put`, which hands it back as a `Retiring`:
        // that frees it only in `Registry::retire`, after every announcement of it was
        // withdrawn, and leaks it when dropped any other way (an unwind) or when the
        // barrier cannot be run. This announcement is withdrawn only when `self` drops.
        // The registry outlives `self`: a pin is held for a call made through `&Registry`
        // (`Registry::drop`, which frees modules without waiting, cannot run meanwhile).
        unsafe { &*self.0.get() }
    }
}

/// A module taken out of its slot, which a call may still hold with a hazard pointer: it
/// is freed only by [`Registry::retire`], after the wait for them. Dropped any other way
/// (an unwind between taking it out and retiring it), it is leaked rather than freed
/// under a call.
pub(crate) struct Retiring(ManuallyDrop<Arc<Module>>);

impl Deref for Retiring {
    type Target = Module;
    fn deref(&self) -> &Module {
        &self.0
    }
}

/// A module held for a call, one way or the other.
pub(crate) enum Held {
    /// With the thread's hazard pointer.
    Pinned(PinnedModule),
    /// Through its `Arc`.
    Live(Live),
}

impl Deref for Held {
    type Target = Module;
    #[inline]
    fn deref(&self) -> &Module {
        match self {
            Held::Pinned(m) => m,
            Held::Live(m) => m,
        }
    }
}

impl Live {
    #[inline]
    fn of(guard: Guard<Option<Arc<Module>>>) -> Option<Live> {
        guard.is_some().then(|| Live(guard))
    }
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

static NEXT_RUNTIME: AtomicU32 = AtomicU32::new(1);

impl Registry {
    /// An empty registry with `config` that finds modules through `resolver` and offers
    /// them `host`.
    pub(crate) fn new(
        config: RuntimeConfig,
        resolver: Box<dyn Resolver>,
        host: &'static HostApi,
        call_export: CallExport,
        hold_running_calls: HoldRunningCalls,
    ) -> Registry {
        let cache = config.result_cache.map(ResultCache::new);
        let unguarded =
            config.interceptors.is_empty() && config.breaker.is_none() && cache.is_none();
        Registry {
            id: NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed),
            host,
            pool: ArenaPool::new(
                config.arena_size,
                config.arena_pool,
                config.arena_soft_limit,
            ),
            slots: (0..config.max_modules)
                .map(|_| ArcSwapOption::empty())
                .collect(),
            raw: (0..config.max_modules)
                .map(|_| AtomicPtr::new(core::ptr::null_mut()))
                .collect(),
            barriers: Barriers::of_process(),
            reloading: (0..config.max_modules).map(|_| Mutex::new(())).collect(),
            loading: Mutex::new(Slots {
                free: Vec::new(),
                used: 0,
                generations: vec![1; config.max_modules].into(),
            }),
            config,
            resolver,
            names: RwLock::new(Names::default()),
            epoch: AtomicU64::new(0),
            clock: quanta::Clock::new(),
            call_export,
            hold_running_calls,
            cache,
            unguarded,
            families: Mutex::default(),
            longest_name: AtomicUsize::new(usize::MAX),
            forks: crate::fork::generation(),
            made_in: std::process::id(),
        }
    }

    /// Refuses a use of this runtime in a process forked from the one that made it (see
    /// `crate::fork`).
    #[inline(always)]
    pub(crate) fn this_process(&self) -> Result<(), RuntimeError> {
        if crate::fork::since(self.forks) {
            return Err(self.forked());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn forked(&self) -> RuntimeError {
        RuntimeError::Forked {
            made_in: self.made_in,
        }
    }

    /// [`this_process`](Self::this_process) for an operation with no error to return.
    ///
    /// # Panics
    ///
    /// In a process forked from the one that made the runtime, saying so.
    pub(crate) fn assert_this_process(&self) {
        if let Err(e) = self.this_process() {
            panic!("{e}");
        }
    }

    /// Refuses every later load of a module under a name longer than `bytes` (its own, or
    /// the one its settings give): for a daemon's worker,
    /// whose clients name a module in at most a slot's bytes.
    #[cfg(feature = "daemon")]
    pub(crate) fn limit_names(&self, bytes: usize) {
        self.longest_name.store(bytes, Ordering::Relaxed);
    }

    /// The module in `handle`'s slot, whatever its state: `None` when the handle is
    /// another runtime's, stale, or its slot is empty.
    #[inline]
    fn slot(&self, handle: ModuleHandle) -> Option<Live> {
        if handle.runtime != self.id {
            return None;
        }
        let live = Live::of(self.slots.get(handle.index as usize)?.load())?;
        (live.generation == handle.generation).then_some(live)
    }

    /// The module behind `handle`, held with a hazard pointer of `thread` (the calling
    /// thread's state): `None` when it cannot be held that way (the shared shard, the
    /// thread's cells all taken, a slot changing meanwhile) or is not live; then
    /// [`module`](Self::module) says which, and holds it with the locked path.
    #[inline]
    pub(crate) fn pin(&self, thread: &ThreadState, handle: ModuleHandle) -> Option<PinnedModule> {
        // A forked child's call takes the locked path, which refuses it.
        if handle.runtime != self.id || crate::fork::since(self.forks) {
            return None;
        }
        let slot = self.raw.get(handle.index as usize)?;
        let pinned = PinnedModule(hazard::pin(thread.shard(), slot, self.barriers)?);
        (pinned.generation == handle.generation && !pinned.is_retired()).then_some(pinned)
    }

    /// Puts `module` in slot `index`, both where the locked path and where hazard
    /// pointers read it, and returns what the slot held, to be retired.
    fn put(&self, index: u32, module: Option<Arc<Module>>) -> Option<Retiring> {
        let raw = module
            .as_ref()
            .map_or(core::ptr::null_mut(), |m| Arc::as_ptr(m).cast_mut());
        let old = self.slots[index as usize].swap(module);
        // Release: the module's construction happens before a reader that pins it.
        self.raw[index as usize].store(raw, Ordering::Release);
        old.map(|m| Retiring(ManuallyDrop::new(m)))
    }

    /// The live module behind `handle`.
    #[inline]
    pub(crate) fn module(&self, handle: ModuleHandle) -> Result<Live, RuntimeError> {
        self.this_process()?;
        match self.slot(handle) {
            Some(m) if !m.is_retired() => Ok(m),
            _ if handle.runtime != self.id => Err(RuntimeError::OtherRuntimesHandle(handle)),
            _ => Err(RuntimeError::UnknownHandle(handle)),
        }
    }

    /// The module `name` names, read from its slot under the same read lock as the name:
    /// a module installed in a slot takes its name under the write lock, so the slot
    /// cannot hold another module (one loaded after an unload freed the slot) meanwhile.
    fn named(&self, name: &str) -> Option<(u32, Live)> {
        let names = self.names.read().unwrap_or_else(|p| p.into_inner());
        let index = names.lookup(name)?;
        let live = Live::of(self.slots.get(index as usize)?.load())?;
        drop(names);
        Some((index, live))
    }

    /// The handle of the live module loaded under `name`.
    pub(crate) fn handle_of(&self, name: &str) -> Result<ModuleHandle, RuntimeError> {
        self.this_process()?;
        match self.named(name) {
            Some((index, m)) if !m.is_retired() => Ok(self.handle(index, m.generation)),
            // The client's `Caller::module` refuses a malformed name with the same error.
            _ => Err(
                crate::caller::malformed_module_name(name).unwrap_or_else(|| {
                    RuntimeError::UnknownModule {
                        name: name.to_owned(),
                    }
                }),
            ),
        }
    }

    /// The module loaded under `name`, for a nested call: live, or being retired (its
    /// calls in flight may still re-enter it). After a reload, the new version. With it,
    /// where it was found: its slot, and the epoch at which the name led there (`None`
    /// when a change ran meanwhile), for [`hinted`](Self::hinted).
    pub(crate) fn by_name(&self, name: &str) -> Option<(Live, u32, Option<u64>)> {
        let before = self.epoch.load(Ordering::Acquire);
        let (index, live) = self.named(name)?;
        // Orders the reads above before the epoch's second reading: a change whose
        // writes they saw has moved it on (see `changing`).
        fence(Ordering::Acquire);
        let after = self.epoch.load(Ordering::Relaxed);
        let epoch = (before == after && before.is_multiple_of(2)).then_some(before);
        Some((live, index, epoch))
    }

    /// The registry's epoch now: a cache of where names led, kept with the epoch it was
    /// filled at, is stale once this differs (a module loaded, reloaded or unloaded may
    /// have made a name lead elsewhere, as a higher version loaded beside it does).
    /// Only the daemon's connections keep such a cache.
    #[cfg(feature = "daemon")]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The module in `slot`, if the registry is still at `epoch`, an even number
    /// [`by_name`](Self::by_name) returned with that slot: then no slot or name has
    /// changed since, and the module is the one the same name finds now. Held with the
    /// calling thread's hazard pointer when it can be, else through its `Arc`.
    #[inline]
    pub(crate) fn hinted(&self, thread: &ThreadState, slot: u32, epoch: u64) -> Option<Held> {
        if self.epoch.load(Ordering::Acquire) != epoch {
            return None;
        }
        let raw = self.raw.get(slot as usize)?;
        let held = match hazard::pin(thread.shard(), raw, self.barriers) {
            Some(pinned) => Held::Pinned(PinnedModule(pinned)),
            None => Held::Live(Live::of(self.slots.get(slot as usize)?.load())?),
        };
        // As in `by_name`: a change that the slot's reading saw has moved the epoch on.
        fence(Ordering::Acquire);
        (self.epoch.load(Ordering::Relaxed) == epoch).then_some(held)
    }

    /// This registry's id, unique in the process.
    pub(crate) fn id(&self) -> u32 {
        self.id
    }

    /// Runs `change`, a change of slots or names made under the `loading` lock (so one
    /// at a time), with the epoch odd: moved on before it writes anything, and again
    /// after. Readers that saw an even epoch before and the same one after saw none of
    /// it (the seqlock pattern: `fetch_add`, release fence, writes, release add).
    fn changing<R>(&self, change: impl FnOnce() -> R) -> R {
        /// Moves the epoch on to even when dropped, so that a change that unwinds
        /// leaves it even too (an odd epoch left behind would turn the rule around).
        struct Done<'a>(&'a AtomicU64);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::Release);
            }
        }
        let before = self.epoch.fetch_add(1, Ordering::Relaxed);
        debug_assert!(
            before.is_multiple_of(2),
            "one change at a time (the `loading` lock)"
        );
        fence(Ordering::Release);
        let _done = Done(&self.epoch);
        change()
    }

    /// Every live module, with its handle.
    pub(crate) fn live(&self) -> impl Iterator<Item = (ModuleHandle, Live)> + '_ {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let m = Live::of(s.load())?;
            (!m.is_retired()).then(|| (self.handle(i as u32, m.generation), m))
        })
    }

    fn handle(&self, index: u32, generation: u32) -> ModuleHandle {
        ModuleHandle {
            runtime: self.id,
            index,
            generation,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        // In a forked child the modules are the parent's, which shuts them down: their
        // shutdown here could wait for threads that did not come with the fork.
        if crate::fork::since(self.forks) {
            return;
        }
        // No call runs: every call holds the runtime (through a `Runtime` or a handle of
        // one), so the last of them has returned.
        for (slot, raw) in self.slots.iter().zip(self.raw.iter()) {
            raw.store(core::ptr::null_mut(), Ordering::Relaxed);
            if let Some(m) = slot.swap(None) {
                if !m.is_retired() {
                    m.gate.close();
                    shutdown(&m);
                }
            }
        }
    }
}
