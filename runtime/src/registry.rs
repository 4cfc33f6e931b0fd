//! The registry: what a runtime holds (its modules, their names, the arena pool, the
//! clock) and how modules come and go (load, install, unload).
//!
//! A module's slot is written once, when it is loaded, so a call finds its module with
//! no lock; loads and unloads are serialized by a lock a call never takes, and an
//! unload waits for the module's calls outside it.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use memlink_abi::{self as abi, HostApi, InitFrame, Status, StrRef};

use crate::config::{ModuleSettings, RuntimeConfig};
use crate::error::RuntimeError;
use crate::handle::ModuleHandle;
use crate::module::{Module, PersistentRegion};
use crate::pool::ArenaPool;
use crate::resolver::{ModuleRef, Resolver};

/// A runtime's state, shared by every clone of the [`Runtime`](crate::Runtime) and by
/// the handles it hands out.
pub(crate) struct Registry {
    id: u32,
    pub(crate) config: RuntimeConfig,
    /// The services every module of this runtime gets (the runtime's `HOST_API`).
    pub(crate) host: &'static HostApi,
    resolver: Box<dyn Resolver>,
    /// One slot per module ever loaded; a slot is written once, so calls read it without
    /// a lock.
    slots: Box<[OnceLock<Module>]>,
    /// Serializes loads and unloads (never held during a call, nor while an unload
    /// waits for calls); counts the slots used.
    loading: Mutex<usize>,
    /// Live modules by name, for nested calls.
    names: RwLock<HashMap<String, u32, Fnv>>,
    pub(crate) pool: Arc<ArenaPool>,
    /// Times calls for the latency histogram: the CPU's time-stamp counter where it is
    /// invariant (about 9 ns a read against 21 for `Instant::now` on the machine in
    /// benches/README.md), calibrated once per process; the OS clock elsewhere.
    pub(crate) clock: quanta::Clock,
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

/// FNV-1a, the hash the ABI names methods by, for the table of module names a nested
/// call looks its callee up in: a short name hashes in a few instructions, where the
/// default hasher (built to resist flooding by untrusted keys) costs a hundred. The
/// names are the host's own, given at load.
#[derive(Default, Clone, Copy)]
struct Fnv;

impl std::hash::BuildHasher for Fnv {
    type Hasher = FnvHasher;
    fn build_hasher(&self) -> FnvHasher {
        FnvHasher(0xcbf2_9ce4_8422_2325)
    }
}

struct FnvHasher(u64);

impl std::hash::Hasher for FnvHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Registry {
    /// An empty registry with `config` that finds modules through `resolver` and offers
    /// them `host`.
    pub(crate) fn new(
        config: RuntimeConfig,
        resolver: Box<dyn Resolver>,
        host: &'static HostApi,
    ) -> Registry {
        Registry {
            id: NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed),
            host,
            pool: ArenaPool::new(
                config.arena_size,
                config.arena_pool,
                config.arena_soft_limit,
            ),
            slots: (0..config.max_modules).map(|_| OnceLock::new()).collect(),
            config,
            resolver,
            loading: Mutex::new(0),
            names: RwLock::new(HashMap::default()),
            clock: quanta::Clock::new(),
        }
    }

    /// The live module behind `handle`.
    #[inline]
    pub(crate) fn module(&self, handle: ModuleHandle) -> Result<&Module, RuntimeError> {
        if handle.runtime != self.id {
            return Err(RuntimeError::UnknownHandle(handle));
        }
        match self
            .slots
            .get(handle.index as usize)
            .and_then(OnceLock::get)
        {
            Some(m) if !m.is_retired() => Ok(m),
            _ => Err(RuntimeError::UnknownHandle(handle)),
        }
    }

    /// The handle of the live module loaded under `name`.
    pub(crate) fn handle_of(&self, name: &str) -> Result<ModuleHandle, RuntimeError> {
        let index = self
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied();
        let handle = index.map(|index| ModuleHandle {
            runtime: self.id,
            index,
        });
        match handle {
            Some(h) if self.module(h).is_ok() => Ok(h),
            _ => Err(RuntimeError::UnknownModule {
                name: name.to_owned(),
            }),
        }
    }

    /// The module loaded under `name`, for a nested call: live, or being retired (its
    /// calls in flight may still re-enter it).
    pub(crate) fn by_name(&self, name: &str) -> Option<&Module> {
        let index = self
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .copied()?;
        self.slots.get(index as usize).and_then(OnceLock::get)
    }

    /// Every live module, with its slot.
    pub(crate) fn live(&self) -> impl Iterator<Item = (u32, &Module)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.get().map(|m| (i as u32, m)))
            .filter(|(_, m)| !m.is_retired())
    }

    pub(crate) fn handle(&self, index: u32) -> ModuleHandle {
        ModuleHandle {
            runtime: self.id,
            index,
        }
    }

    /// Loads the module `reference` names, with its own `settings`.
    pub(crate) fn load(
        &self,
        reference: &ModuleRef,
        settings: &ModuleSettings,
    ) -> Result<ModuleHandle, RuntimeError> {
        let path = self.resolver.resolve(reference)?;
        let concurrency = settings
            .max_concurrency
            .unwrap_or(self.config.max_concurrency);
        self.install(settings, || {
            if let Some((index, _)) = self.live().find(|(_, m)| m.path == path) {
                return Err(RuntimeError::AlreadyLoaded {
                    path: path.clone(),
                    handle: self.handle(index),
                });
            }
            Module::open(&path, concurrency)
        })
    }

    /// Installs the module `open` makes (called under the loading lock) with its own
    /// `settings` (name, persistent size, default timeout), and initializes it.
    pub(crate) fn install(
        &self,
        settings: &ModuleSettings,
        open: impl FnOnce() -> Result<Module, RuntimeError>,
    ) -> Result<ModuleHandle, RuntimeError> {
        let mut next = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if *next >= self.slots.len() {
            return Err(RuntimeError::TooManyModules {
                limit: self.slots.len(),
            });
        }
        let mut module = open()?;
        module.persistent = PersistentRegion::new(
            settings
                .persistent_size
                .unwrap_or(self.config.persistent_size),
        );
        module.default_timeout = settings.default_timeout.or(self.config.default_timeout);
        if let Some(name) = &settings.name {
            module.name = name.clone();
        }
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        if names.contains_key(&module.name) {
            return Err(RuntimeError::NameTaken { name: module.name });
        }
        init(&module, &self.config, self.host)?;
        let index = *next as u32;
        names.insert(module.name.clone(), index);
        let _ = self.slots[*next].set(module);
        *next += 1;
        Ok(self.handle(index))
    }

    /// Retires the module: closes its gate, waits for its calls, frees its name and
    /// shuts it down.
    pub(crate) fn unload(&self, handle: ModuleHandle) -> Result<(), RuntimeError> {
        // Closing the gate under the loading lock decides which of two racing unloads
        // retires the module; the wait for its calls happens outside the lock, so loads
        // and unloads of other modules go on meanwhile.
        let module = {
            let _loading = self.loading.lock().unwrap_or_else(|p| p.into_inner());
            let module = self.module(handle)?;
            module.gate.close();
            module
        };
        // Calls in flight finish; a call of theirs that re-enters the module runs within
        // their slot (see `Saturation`), so nothing they do waits on this.
        module.gate.drain();
        // The name stays taken until the calls are done: nested calls by name into a
        // module being retired are told it is gone, but only once nothing of it runs can
        // another module take the name.
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        if names.get(&module.name) == Some(&handle.index) {
            names.remove(&module.name);
        }
        drop(names);
        shutdown(module);
        Ok(())
    }
}

fn init(
    module: &Module,
    config: &RuntimeConfig,
    host: &'static HostApi,
) -> Result<(), RuntimeError> {
    let mut frame = InitFrame {
        size: size_of::<InitFrame>() as u32,
        abi_version: abi::ABI_VERSION,
        host,
        max_log_level: crate::log::max_level(config.log_level),
        error: StrRef {
            ptr: core::ptr::null(),
            len: 0,
        },
    };
    // SAFETY: `init` is the module's entry point with the ABI's signature; the frame is
    // valid for the call and `host` is a static.
    let status = unsafe { (module.entry.init)(&mut frame) };
    if status == Status::Ok as i32 {
        return Ok(());
    }
    // SAFETY: on failure the module points `error` at a message in its static memory.
    let message = unsafe { frame.error.as_str() }
        .filter(|m| !m.is_empty())
        .map_or_else(|| format!("status {status}"), str::to_owned);
    Err(RuntimeError::InitFailed {
        module: module.name.clone(),
        message,
    })
}

fn shutdown(module: &Module) {
    // SAFETY: the module's entry point, called once, after its last call finished.
    unsafe { (module.entry.shutdown)() };
}

impl Drop for Registry {
    fn drop(&mut self) {
        for slot in self.slots.iter() {
            if let Some(m) = slot.get() {
                if !m.is_retired() {
                    m.gate.close();
                    shutdown(m);
                }
            }
        }
    }
}
