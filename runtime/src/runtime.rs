//! [`Runtime`]: what a host holds to load modules and call them, with every method in
//! one place.
//!
//! Calls take one of three shapes, each a handle with one `call`:
//!
//! - by name, untyped: [`Runtime::call`] / [`Runtime::call_with`], and resolved once:
//!   [`Runtime::method`] then [`Runtime::call_method`]: encoded bytes in, [`CallOutput`]
//!   out;
//! - typed, MessagePack or raw: [`Runtime::typed`] gives a [`TypedMethod`] whose `call`
//!   encodes the arguments and decodes the result;
//! - typed, zero-copy: [`Runtime::archived`] gives an [`ArchivedMethod`] whose `call`
//!   archives the arguments straight into the call's arena (or takes a buffer the caller
//!   filled in place).
//!
//! Each checks, when it is made, that the method's formats (and for archives, the
//! types' fingerprints) are what its types say.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use memlink_abi::ModuleError;

use crate::archived::ArchivedMethod;
use crate::args::{ArgBuffer, Args, CallArgs};
use crate::call;
use crate::config::{ModuleSettings, RuntimeConfig};
use crate::describe::Method;
use crate::error::RuntimeError;
use crate::handle::{MethodRef, ModuleHandle};
use crate::health::{BreakerState, Health, HEALTH_CHECK};
use crate::metrics::ModuleMetrics;
use crate::module::Module;
use crate::options::CallOptions;
use crate::output::CallOutput;
use crate::registry::Registry;
use crate::reload::{ReloadPolicy, Reloaded};
use crate::resolver::{LocalResolver, ModuleRef, Resolver};
use crate::typed::{TypedMethod, TypedResult};

/// The operations every memlink host offers (the SDK's published README imports it).
/// [`Runtime`] has the same methods inherently; this trait delegates to them.
pub trait ModuleRuntime {
    /// Loads the module `module` refers to, checks it and initializes it.
    fn load(&self, module: ModuleRef) -> Result<ModuleHandle, RuntimeError>;
    /// Calls `method` with encoded `args`; the output derefs to the encoded result.
    fn call(
        &self,
        handle: ModuleHandle,
        method: &str,
        args: &[u8],
    ) -> Result<CallOutput, RuntimeError>;
    /// Shuts the module down and stops calls into it (see [`Runtime::unload`]).
    fn unload(&self, handle: ModuleHandle) -> Result<(), RuntimeError>;
    /// The module's methods.
    fn methods(&self, handle: ModuleHandle) -> Result<Vec<Method>, RuntimeError>;
}

/// What a loaded module says about itself, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModuleInfo {
    /// The name the runtime knows it by (what nested calls address it by).
    pub name: String,
    /// The module's own version (its crate's).
    pub version: String,
    /// The version of memlink-msdk it was built with.
    pub sdk_version: String,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// The deadline its calls made without one get: its own setting, else the runtime's.
    pub default_timeout: Option<Duration>,
    /// The most time any call to it is given, which no caller can extend: its own
    /// setting, else the runtime's.
    pub max_call_time: Option<Duration>,
    /// Whether it was built with `panic = "abort"`, as it says: a panic in it ends the
    /// process instead of failing its call. `false` for a module built to unwind, and
    /// for one that does not say: a C module, which has no panics, or one built with a
    /// memlink-msdk older than `memlink_panic_strategy`.
    pub aborts_on_panic: bool,
}

/// Loads memlink modules and calls them, from any number of threads.
///
/// ```no_run
/// use memlink_runtime::runtime::{Runtime, ModuleRuntime};
/// use memlink_runtime::resolver::ModuleRef;
///
/// let runtime = Runtime::with_local_resolver();
/// let handle = runtime.load(ModuleRef::parse("./my_module.so")?)?;
/// let result = runtime.call(handle, "echo", b"hello")?;
/// assert_eq!(result, b"hello");
/// let add = runtime.typed::<(u32, u32), u32>(handle, "add")?;
/// assert_eq!(add.call(&(2, 3))?, 5);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A call takes an arena from a lock-free pool and runs on the calling thread, which it
/// blocks until the module returns (from async code, call inside
/// `tokio::task::spawn_blocking` or `block_in_place`; only the call's deadline ends it,
/// not a timeout or an abort around it); no lock is held while module code runs.
/// Modules are never `dlclose`d: see
/// [`unload`](Runtime::unload). A `Runtime` is cheap to clone (one `Arc`) and
/// `Send + Sync`.
///
/// # Across `fork()`
///
/// A child forked from the process that made a runtime does not use it: `fork()` copies
/// the calling thread alone, and a lock, an admission slot or a module another thread
/// held at that moment would stay held in the child for good (and an async module's
/// runtime lost its thread). In the child every operation that returns a `Result` is
/// refused with [`RuntimeError::Forked`], [`is_loaded`](Runtime::is_loaded) says
/// `false`, and [`modules`](Runtime::modules), [`metrics`](Runtime::metrics),
/// [`prometheus`](Runtime::prometheus), [`cache_stats`](Runtime::cache_stats) and
/// [`arg_buffer`](Runtime::arg_buffer) panic, saying so; dropping it there leaves its
/// modules to the parent. The child makes a `Runtime` of its own and loads what it
/// needs: a file its parent had loaded is then loaded from a private copy, a fresh image
/// (the loader would hand back the parent's, initialized there). Fork while no thread of
/// the parent is inside a call, load or unload of any runtime, and no
/// [`watch`](Runtime::watch) runs (its thread loads whenever a file changes), as for any
/// library that holds locks; a pre-forking server best forks before it makes its
/// runtime. A child made without the C library's `fork` (a raw `clone`, `_Fork`) runs
/// no fork handlers, and is not told apart: it must not touch the inherited runtime.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) registry: Arc<Registry>,
}

impl Runtime {
    /// A runtime that loads modules from local paths, with the default settings.
    pub fn with_local_resolver() -> Runtime {
        Runtime::new(RuntimeConfig::default(), LocalResolver)
    }

    /// A runtime with `config` that finds modules through `resolver`.
    pub fn new(config: RuntimeConfig, resolver: impl Resolver + 'static) -> Runtime {
        Runtime {
            registry: Arc::new(Registry::new(
                config.normalized(),
                Box::new(resolver),
                &crate::host_api::HOST_API,
                call::export,
                call::hold_running_calls,
            )),
        }
    }

    /// Loads the module `module` refers to under its crate's name, checks it (the file,
    /// the ABI version, the method table) and initializes it.
    ///
    /// **A module is native code, trusted as the host's own.** Loading one runs its
    /// library's initializers and `memlink_init` in this process, and its calls run
    /// there too: the checks here, and those of every call, refuse a module that breaks
    /// the ABI (a malformed table, an output out of bounds), not one that means harm
    /// (docs/security.md says what a module can do, and what isolating one in a daemon's
    /// worker process gives). Load only files you would link into the host; the same
    /// holds for [`load_as`](Self::load_as), [`load_with`](Self::load_with),
    /// [`reload`](Self::reload) and [`watch`](Self::watch).
    ///
    /// A load holds the runtime's loads, unloads and reloads until it returns: one asked
    /// for from code it runs on its thread (a log sink given a record the module logs
    /// from its `memlink_dependencies` export) is refused with
    /// [`RuntimeError::InsideLoad`]. One asked for from inside a call (a log sink given
    /// the call's record) that would wait for a load whose own code waits, in turn, for
    /// that call to end (an unload of its module) is refused with
    /// [`RuntimeError::InsideAwaitedCall`].
    pub fn load(&self, module: ModuleRef) -> Result<ModuleHandle, RuntimeError> {
        self.registry.load(&module, &ModuleSettings::default())
    }

    /// Loads a module under a name other than its crate name (the name nested calls use).
    /// A name that is empty or holds `@` (which separates a name from a version
    /// requirement) or a control character is refused ([`RuntimeError::BadSetting`])
    /// before the file is opened; so is a module whose own name is such a name
    /// ([`RuntimeError::InvalidModule`]), once opened.
    pub fn load_as(&self, module: ModuleRef, name: &str) -> Result<ModuleHandle, RuntimeError> {
        self.registry
            .load(&module, &ModuleSettings::default().name(name))
    }

    /// Loads a module with settings of its own: its name, concurrency limit, default
    /// timeout, most time a call is given and persistent region's size; what `settings`
    /// leaves `None` is the runtime's.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # use memlink_runtime::{ModuleRef, ModuleSettings, Runtime};
    /// let runtime = Runtime::with_local_resolver();
    /// let settings = ModuleSettings::default()
    ///     .max_concurrency(2)
    ///     .default_timeout(Duration::from_millis(100));
    /// let resize = runtime.load_with(ModuleRef::parse("./libresize.so")?, &settings)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_with(
        &self,
        module: ModuleRef,
        settings: &ModuleSettings,
    ) -> Result<ModuleHandle, RuntimeError> {
        self.registry.load(&module, settings)
    }

    /// Retires the module: refuses new calls, waits for the calls in flight, calls
    /// `memlink_shutdown` once, and gives back what the module took: its slot (a later
    /// load reuses it, and `handle` is refused from now on), its persistent region, its
    /// figures and its description. The library itself stays mapped: `dlclose` on a Rust
    /// cdylib can crash the process later, when a thread-local destructor it registered
    /// runs after its code was unmapped. Loading the same file again initializes that
    /// same image again (its statics are not reset); another file put at its path since
    /// (a new build renamed over it) is loaded from a private copy, as an image of its
    /// own, since the loader would hand back the old file's for that path: each load of
    /// it is a fresh image (its statics start anew), and each stays mapped.
    ///
    /// Waiting for the calls in flight, it must not run inside one of them: asked for from
    /// an interceptor or a log sink while a call to this module (or a nested call it
    /// made) runs on the same thread, it is refused with [`RuntimeError::InsideCall`];
    /// asked for from host code the module's own reload runs (a `tracing` layer given
    /// its new version's records), with [`RuntimeError::InsideReload`]. Asked for from
    /// host code that holds what one of the calls it waits for waits for in turn (a sink
    /// of another runtime's load, while the call's own sink loads into that runtime), one
    /// of the two is refused, [`RuntimeError::InsideLoad`] here or
    /// [`RuntimeError::InsideAwaitedCall`] there, and the other goes on. (Code there that
    /// waits for another thread to unload it, not through the runtime, is not seen, and
    /// waits for ever.)
    pub fn unload(&self, handle: ModuleHandle) -> Result<(), RuntimeError> {
        self.not_inside_a_call_to(handle, "unload")?;
        self.registry.unload(handle)
    }

    /// Refuses `action` on the module behind `handle` when this thread runs inside a call
    /// to it (see [`unload`](Runtime::unload)): it would wait for itself for ever.
    fn not_inside_a_call_to(
        &self,
        handle: ModuleHandle,
        action: &'static str,
    ) -> Result<(), RuntimeError> {
        let module = self.registry.module(handle)?;
        if call::chain_on_thread_holds(&self.registry, &module)
            || crate::chain::hooks_hold(module.lineage)
        {
            return Err(RuntimeError::InsideCall {
                module: module.name.clone(),
                action,
            });
        }
        Ok(())
    }

    /// Replaces the module behind `handle` with a new version of it, loaded from the
    /// file `module` refers to, with the default [`ReloadPolicy`] (a version that drops
    /// or changes an export is refused; no state crosses).
    ///
    /// The handle, the name nested calls use and the module's settings stay. Calls
    /// already running finish on the old version; every call that starts after this
    /// returns runs the new one, and none is refused meanwhile. The old version is shut
    /// down (`memlink_shutdown`) once its last call has returned (this waits for it, so a
    /// reload returns only after the calls running when it switched have, and is refused
    /// inside one of them, as [`unload`](Runtime::unload) is), and its persistent
    /// region and description freed; its image stays mapped (see
    /// [`unload`](Runtime::unload)). The new version is loaded from a private copy of the
    /// file, so reloading from the same path after rebuilding it loads the rebuilt code.
    ///
    /// A new version that cannot be loaded (not a library, another ABI, a failing
    /// `memlink_init`), that is another module ([`RuntimeError::OtherModule`]: the file's
    /// module declares another name), that is a version another module loaded beside it
    /// already is ([`RuntimeError::NameTaken`]) or that the policy refuses leaves the old
    /// one serving, and the error says why.
    ///
    /// A reload holds the module's other reloads while the new version starts and the
    /// state is carried. Host code that runs meanwhile (a log sink given the new
    /// version's records) may load, unload or reload, in this runtime or another, unless
    /// that would wait in a loop (a load whose code asks for this same reload while the
    /// reload's asks for that load): it is refused then with
    /// [`RuntimeError::InsideReload`] (or, on the load's side,
    /// [`RuntimeError::InsideLoad`]; or, from inside a call to the module the reload
    /// waits for at its end, [`RuntimeError::InsideAwaitedCall`]), and the rest goes on.
    ///
    /// ```no_run
    /// # use memlink_runtime::{ModuleRef, Runtime};
    /// let runtime = Runtime::with_local_resolver();
    /// let handle = runtime.load(ModuleRef::parse("./libgreeter.so")?)?;
    /// // ... rebuild libgreeter.so ...
    /// let reloaded = runtime.reload(handle, ModuleRef::parse("./libgreeter.so")?)?;
    /// println!("{} -> {}", reloaded.from_version, reloaded.to_version);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reload(
        &self,
        handle: ModuleHandle,
        module: ModuleRef,
    ) -> Result<Reloaded, RuntimeError> {
        self.reload_with(handle, module, &ReloadPolicy::default())
    }

    /// [`reload`](Runtime::reload) with a policy of its own: whether a changed method
    /// table is allowed, and whether the old version's state is handed to the new one
    /// (see [`crate::reload`]).
    pub fn reload_with(
        &self,
        handle: ModuleHandle,
        module: ModuleRef,
        policy: &ReloadPolicy,
    ) -> Result<Reloaded, RuntimeError> {
        self.not_inside_a_call_to(handle, "reload")?;
        self.registry.reload(handle, &module, policy)
    }

    /// Loads every module in `dir` and keeps the runtime in step with it: a new file
    /// loads, a changed file hot-reloads, a removed file unloads (see [`crate::watch`]).
    /// Modules load in an order that satisfies their declared dependencies. A `dir` that
    /// is no directory is refused ([`RuntimeError::BadReference`]), and so is one that
    /// cannot be read or followed ([`RuntimeError::CannotWatch`]). A directory this
    /// runtime watches already (by another path to it too) is refused
    /// ([`RuntimeError::BadReference`]) until that watch is dropped.
    ///
    /// ```no_run
    /// use memlink_runtime::watch::{WatchEvent, WatchOptions};
    /// use memlink_runtime::Runtime;
    ///
    /// let runtime = Runtime::with_local_resolver();
    /// let watch = runtime.watch("/opt/modules", WatchOptions::default())?;
    /// for event in watch.events() {
    ///     if let WatchEvent::Failed { path, error } = event {
    ///         eprintln!("{}: {error}", path.display());
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "watch")]
    pub fn watch(
        &self,
        dir: impl AsRef<std::path::Path>,
        options: crate::watch::WatchOptions,
    ) -> Result<crate::watch::DirectoryWatch, RuntimeError> {
        crate::watch::start(&self.registry, dir.as_ref(), options, None)
    }

    /// Refuses every later load of a module under a name longer than `bytes`: a daemon's
    /// worker serves only names its clients can send.
    #[cfg(feature = "daemon")]
    pub(crate) fn limit_names(&self, bytes: usize) {
        self.registry.limit_names(bytes);
    }

    /// [`watch`](Runtime::watch) with `guard` around each file the watch opens: a
    /// daemon's worker's, which tells its supervisor what it opens.
    #[cfg(feature = "daemon")]
    pub(crate) fn watch_guarded(
        &self,
        dir: &std::path::Path,
        options: crate::watch::WatchOptions,
        guard: std::sync::Arc<dyn crate::watch::OpenGuard>,
    ) -> Result<crate::watch::DirectoryWatch, RuntimeError> {
        crate::watch::start(&self.registry, dir, options, Some(guard))
    }

    /// How the module is doing (see [`crate::health`]): `Failing` while its breaker is
    /// open, `Live` once its cool-down is over (the next call is its trial) and while that
    /// trial runs, else what its `memlink_health` export says (asked now, as a call), else
    /// `Ready`. A handle of no loaded module, the module unloaded while it is asked
    /// included, is `UnknownHandle`.
    ///
    /// The check is a call like any other, with the module's default timeout as its
    /// deadline: an `async` check is cancelled when it passes, and a plain `fn` one is
    /// `Failing` once it returns past it. A plain `fn` check that never returns keeps
    /// `health` from returning, as any call of it would: a module whose check may block
    /// makes it `async` and gets a default timeout
    /// ([`RuntimeConfig::default_timeout`](crate::RuntimeConfig::default_timeout),
    /// [`ModuleSettings::default_timeout`](crate::ModuleSettings::default_timeout), or the
    /// daemon's `default_timeout_ms`).
    pub fn health(&self, handle: ModuleHandle) -> Result<Health, RuntimeError> {
        let module = self.registry.module(handle)?;
        if let Some(config) = &self.registry.config.breaker {
            match module.breaker.state() {
                // Its cool-down over, it waits for a call to try: a host that sends calls
                // only to modules that are not failing must still send that one.
                BreakerState::Open if module.breaker.cooled(config) => {
                    return Ok(Health::Live {
                        reason:
                            "its circuit breaker's cool-down is over: the next call is its trial"
                                .to_owned(),
                    })
                }
                BreakerState::Open => {
                    return Ok(Health::Failing {
                        reason: "its circuit breaker is open".to_owned(),
                    })
                }
                BreakerState::HalfOpen => {
                    return Ok(Health::Live {
                        reason: "its circuit breaker is letting a trial call through".to_owned(),
                    })
                }
                _ => {}
            }
        }
        let Some((index, _)) = module.method(HEALTH_CHECK) else {
            return Ok(Health::Ready);
        };
        let options = CallOptions::default();
        let asked = call::from_host(
            &self.registry,
            handle,
            &module,
            index,
            Args::Borrowed(&[]),
            &options,
        );
        Ok(match asked {
            Ok(_) => Health::Ready,
            // Unloaded while it was asked: as gone as for a check that came after.
            Err(gone @ RuntimeError::UnknownHandle(_)) => return Err(gone),
            // A check that panics, runs out of time, or breaks the ABI (a status no
            // module may return) says the module itself is in trouble; one that returns
            // an error says why it is not ready.
            Err(RuntimeError::Call {
                error:
                    error @ (ModuleError::Panic(_) | ModuleError::Timeout(_) | ModuleError::Abi(_)),
                ..
            }) => Health::Failing {
                reason: format!("its health check failed: {error}"),
            },
            Err(RuntimeError::Call { error, .. }) => Health::Live {
                reason: format!("its health check says: {error}"),
            },
            Err(other) => Health::Live {
                reason: other.to_string(),
            },
        })
    }

    /// The module's methods, as its table describes them.
    pub fn methods(&self, handle: ModuleHandle) -> Result<Vec<Method>, RuntimeError> {
        Ok(self.registry.module(handle)?.methods.clone())
    }

    /// What the module says about itself, and where it was loaded from.
    pub fn module_info(&self, handle: ModuleHandle) -> Result<ModuleInfo, RuntimeError> {
        let module = self.registry.module(handle)?;
        Ok(info_of(&module))
    }

    /// Whether `handle` is a module of this runtime that is still loaded (`false` in a
    /// process forked from the one that made the runtime).
    pub fn is_loaded(&self, handle: ModuleHandle) -> bool {
        self.registry.module(handle).is_ok()
    }

    /// Every loaded module: its handle and what it says about itself.
    ///
    /// # Panics
    ///
    /// In a process forked from the one that made the runtime (see
    /// [`Runtime`], "Across `fork()`").
    pub fn modules(&self) -> Vec<(ModuleHandle, ModuleInfo)> {
        self.registry.assert_this_process();
        self.registry
            .live()
            .map(|(h, m)| (h, info_of(&m)))
            .collect()
    }

    /// The handle of the module loaded under `name` (what nested calls address it by):
    /// its highest release (the highest prerelease when no release is loaded), or, for
    /// `name@requirement`, the highest version that matches (Cargo's rules).
    pub fn handle_of(&self, name: &str) -> Result<ModuleHandle, RuntimeError> {
        self.registry.handle_of(name)
    }

    /// How loaded the module is now, in `[0, 1]`: what a call entering it would read
    /// from `CallContext::backpressure` (its calls in flight against its concurrency
    /// limit, or the arena pool's pile-up, whichever is larger).
    pub fn backpressure(&self, handle: ModuleHandle) -> Result<f32, RuntimeError> {
        let module = self.registry.module(handle)?;
        Ok(self.load_of(&module))
    }

    fn load_of(&self, module: &Module) -> f32 {
        let gate = crate::backpressure::load(module.gate.in_flight() + 1, module.gate.limit());
        let pool = crate::backpressure::load(
            self.registry.pool.piled_up() + 1,
            self.registry.pool.soft_limit(),
        );
        gate.max(pool)
    }

    /// [`backpressure`](Runtime::backpressure) as the call finds it, then
    /// [`call_method`](Runtime::call_method), with the module looked up once for both:
    /// the daemon's worker reports the one with the reply of the other.
    ///
    /// `checked` is the digest of the method a client's typed handle checked (0: none):
    /// the method in the version this call runs must still be that, or the call is
    /// refused with [`RuntimeError::MethodChanged`], before it runs. Compared here, on
    /// the module the call runs in, so no reload comes between the check and the call.
    #[cfg(feature = "daemon")]
    pub(crate) fn call_method_loaded(
        &self,
        method: MethodRef,
        checked: u64,
        args: &[u8],
        options: &CallOptions,
    ) -> Result<(f32, Result<CallOutput, RuntimeError>), RuntimeError> {
        let module = self.registry.module(method.handle)?;
        let backpressure = self.load_of(&module);
        let output = module.method_at(method).and_then(|index| {
            if checked != 0 && module.digests[index as usize] != checked {
                let m = &module.methods[index as usize];
                return Err(crate::typed::changed(&module, m));
            }
            call::from_host(
                &self.registry,
                method.handle,
                &module,
                index,
                Args::Borrowed(args),
                options,
            )
        });
        Ok((backpressure, output))
    }

    /// Calls `method` with encoded `args` and the default options.
    pub fn call(
        &self,
        handle: ModuleHandle,
        method: &str,
        args: &[u8],
    ) -> Result<CallOutput, RuntimeError> {
        // The path written out rather than through `call_with`: one call fewer, and the
        // default options are constants in this copy of it.
        call::handle_from_host(
            &self.registry,
            handle,
            |module| index_of(module, method),
            Args::Borrowed(args),
            &CallOptions::default(),
        )
    }

    /// Calls `method` with encoded `args` and per-call `options`.
    pub fn call_with(
        &self,
        handle: ModuleHandle,
        method: &str,
        args: &[u8],
        options: &CallOptions,
    ) -> Result<CallOutput, RuntimeError> {
        call::handle_from_host(
            &self.registry,
            handle,
            |module| index_of(module, method),
            Args::Borrowed(args),
            options,
        )
    }

    /// Resolves `method` of the module once, for [`call_method`](Runtime::call_method).
    pub fn method(&self, handle: ModuleHandle, method: &str) -> Result<MethodRef, RuntimeError> {
        let module = self.registry.module(handle)?;
        let (index, m) = resolve(&module, method)?;
        Ok(MethodRef {
            handle,
            index,
            id: m.id,
        })
    }

    /// Calls a method resolved with [`method`](Runtime::method): no name hashing, no
    /// search, straight to the module's table by index. `args` are encoded bytes lent
    /// for the call, or an [`ArgBuffer`] filled in place.
    pub fn call_method<'a>(
        &self,
        method: MethodRef,
        args: impl CallArgs<'a>,
        options: &CallOptions,
    ) -> Result<CallOutput, RuntimeError> {
        call::method_from_host(&self.registry, method, args.into_args().0, options)
    }

    /// Memory for `len` bytes of arguments that the caller writes itself, aligned for an
    /// archive and zeroed: an arena from the pool when they fit in one, else a buffer of
    /// its own. Hand it to [`call_method`](Runtime::call_method) or
    /// [`ArchivedMethod::call_buffer`]; the module reads it where it lies.
    ///
    /// # Panics
    ///
    /// As `Vec::with_capacity` does, if `len` is larger than any allocation can be
    /// (`isize::MAX` bytes); if the allocator has no memory for it, the process aborts.
    /// In a process forked from the one that made the runtime (see [`Runtime`],
    /// "Across `fork()`").
    pub fn arg_buffer(&self, len: usize) -> ArgBuffer {
        self.registry.assert_this_process();
        ArgBuffer::new(&self.registry.pool, self.registry.config.arena_size, len)
    }

    /// Resolves `method` as a typed handle, in the spirit of wasmtime's `TypedFunc`: its
    /// arguments `A` are encoded as the method takes them (MessagePack, or raw for a
    /// single string or byte argument) and its result read as `R` (see
    /// [`TypedMethod`]). The method's formats are checked now: a method that takes an
    /// archive is refused, naming what to use instead.
    ///
    /// ```no_run
    /// # use memlink_runtime::{Runtime, ModuleRef};
    /// # let runtime = Runtime::with_local_resolver();
    /// # let handle = runtime.load(ModuleRef::parse("./libbasic.so")?)?;
    /// let add = runtime.typed::<(u32, u32), u32>(handle, "add")?;
    /// assert_eq!(add.call(&(2, 3))?, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn typed<A, R>(
        &self,
        handle: ModuleHandle,
        method: &str,
    ) -> Result<TypedMethod<A, R>, RuntimeError>
    where
        A: serde::Serialize + ?Sized,
        R: TypedResult,
    {
        let module = self.registry.module(handle)?;
        let (index, m) = resolve(&module, method)?;
        TypedMethod::new(
            Arc::clone(&self.registry),
            &module,
            MethodRef {
                handle,
                index,
                id: m.id,
            },
            m,
        )
    }

    /// Calls a method with typed arguments and result in one go: [`typed`](Runtime::typed)
    /// and its `call`. A caller making the same call often keeps the [`TypedMethod`].
    /// Called by name, it follows a reload as [`call`](ModuleRuntime::call) does: a reload
    /// that lands between the method's look-up and the call makes it look the method up
    /// again in the version that serves (its arguments serialized again only if that
    /// version's method takes them in another format).
    ///
    /// ```no_run
    /// # use memlink_runtime::{Runtime, ModuleRef};
    /// # let runtime = Runtime::with_local_resolver();
    /// # let handle = runtime.load(ModuleRef::parse("./libbasic.so")?)?;
    /// let sum: u32 = runtime.call_typed(handle, "add", &(2u32, 3u32))?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn call_typed<A, R>(
        &self,
        handle: ModuleHandle,
        method: &str,
        args: &A,
    ) -> Result<R, RuntimeError>
    where
        A: serde::Serialize + ?Sized,
        R: TypedResult<Output = R>,
    {
        let look_up = || {
            call::with_module(&self.registry, handle, |module| {
                let (index, m) = resolve(module, method)?;
                let checked = crate::typed::check::<R>(module, m)?;
                let id = m.id;
                Ok((MethodRef { handle, index, id }, checked))
            })
        };
        crate::typed::call_by_name::<A, R>(&self.registry, look_up, args)
    }

    /// Resolves `method` as a zero-copy handle: its arguments are the archive of `A`
    /// (the tuple of its parameters' types: `&Archived<T>` is `T`, `&[u8]` is
    /// `Vec<u8>`, `&str` is `String`), written straight into the call's arena, and its
    /// result read as `R` (see [`ArchivedMethod`]). `A`'s fingerprint, and `R`'s for an
    /// archived result, are checked against the method table now.
    pub fn archived<A, R>(
        &self,
        handle: ModuleHandle,
        method: &str,
    ) -> Result<ArchivedMethod<A, R>, RuntimeError>
    where
        A: memlink_abi::archive::Archivable,
        R: TypedResult,
    {
        let module = self.registry.module(handle)?;
        let (index, m) = resolve(&module, method)?;
        ArchivedMethod::new(
            Arc::clone(&self.registry),
            &module,
            MethodRef {
                handle,
                index,
                id: m.id,
            },
            m,
        )
    }

    /// Every loaded module's figures: the built-ins per export, and the module's own
    /// metrics (read from the module now). Versions of one module loaded side by side are
    /// told apart as `name@version`, and so is, from the start, a module loaded as a
    /// version (from a file named `NAME@VERSION.so`): its series keep their labels when
    /// another version comes and goes.
    ///
    /// # Panics
    ///
    /// In a process forked from the one that made the runtime (see
    /// [`Runtime`], "Across `fork()`").
    pub fn metrics(&self) -> Vec<ModuleMetrics> {
        self.registry.assert_this_process();
        let breaker = self.registry.config.breaker.is_some();
        let mut all: Vec<(String, bool, ModuleMetrics)> = self
            .registry
            .live()
            .map(|(_, m)| {
                let versioned = crate::resolver::versioned_file_name(&m.path).is_some();
                (m.version.clone(), versioned, m.metrics(breaker))
            })
            .collect();
        // Versions of one module loaded side by side share its name: each series then
        // names its version (`greeter@1.4.2`), so no two series carry the same labels. A
        // module loaded as a version (from a file `NAME@VERSION.so`) names it from the
        // start, so that its series keep their labels when another version loads beside
        // it, and when that one goes.
        let shared: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(i, (_, _, m))| all[..*i].iter().any(|(_, _, o)| o.module == m.module))
            .map(|(_, (_, _, m))| m.module.clone())
            .collect();
        for (version, versioned, m) in &mut all {
            if *versioned || shared.contains(&m.module) {
                m.module = format!("{}@{version}", m.module);
                for method in &mut m.methods {
                    method.module.clone_from(&m.module);
                }
            }
        }
        all.into_iter().map(|(_, _, m)| m).collect()
    }

    /// What the result cache has done, when the runtime has one (see [`crate::cache`]).
    ///
    /// # Panics
    ///
    /// In a process forked from the one that made the runtime (see
    /// [`Runtime`], "Across `fork()`").
    pub fn cache_stats(&self) -> Option<crate::cache::CacheStats> {
        self.registry.assert_this_process();
        self.registry.cache.as_ref().map(|c| c.stats())
    }

    /// [`metrics`](Runtime::metrics) in the Prometheus text exposition format.
    ///
    /// A module's own metric keeps the family it was first exposed under for the
    /// runtime's life, whatever names and kinds its modules record later.
    ///
    /// # Panics
    ///
    /// In a process forked from the one that made the runtime (see
    /// [`Runtime`], "Across `fork()`").
    pub fn prometheus(&self) -> String {
        let metrics = self.metrics();
        let mut families = self
            .registry
            .families
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        crate::prometheus::render_with(
            &metrics,
            &mut families,
            self.registry.config.builtin_metrics,
        )
    }
}

fn info_of(m: &Module) -> ModuleInfo {
    ModuleInfo {
        name: m.name.clone(),
        version: m.version.clone(),
        sdk_version: m.sdk_version.clone(),
        path: m.path.clone(),
        default_timeout: m.default_timeout,
        max_call_time: m.max_call_time,
        aborts_on_panic: m.aborts_on_panic,
    }
}

/// The method `name` of `module`, or the error naming both.
fn resolve<'m>(module: &'m Module, name: &str) -> Result<(u32, &'m Method), RuntimeError> {
    module
        .method(name)
        .ok_or_else(|| unknown_method(module, name))
}

/// The index of the method `name` of `module`, for a call by name: inlined into the call
/// path, with the error made out of line.
#[inline(always)]
fn index_of(module: &Module, name: &str) -> Result<u32, RuntimeError> {
    match module.method(name) {
        Some((index, _)) => Ok(index),
        None => Err(unknown_method(module, name)),
    }
}

/// The error of a call to a method `module` does not have.
#[cold]
#[inline(never)]
fn unknown_method(module: &Module, name: &str) -> RuntimeError {
    RuntimeError::UnknownMethod {
        module: module.name.clone(),
        method: name.to_owned(),
    }
}

impl ModuleRuntime for Runtime {
    fn load(&self, module: ModuleRef) -> Result<ModuleHandle, RuntimeError> {
        Runtime::load(self, module)
    }

    fn call(
        &self,
        handle: ModuleHandle,
        method: &str,
        args: &[u8],
    ) -> Result<CallOutput, RuntimeError> {
        Runtime::call(self, handle, method, args)
    }

    fn unload(&self, handle: ModuleHandle) -> Result<(), RuntimeError> {
        Runtime::unload(self, handle)
    }

    fn methods(&self, handle: ModuleHandle) -> Result<Vec<Method>, RuntimeError> {
        Runtime::methods(self, handle)
    }
}
