//! The runtime: loads modules, resolves methods and calls them.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use memlink_msdk::abi::{self, Format, InitFrame, Status, StrRef};
use memlink_msdk::{serialize, ModuleError};

use crate::admission::{Refused, Saturation};
use crate::arena::ArenaPool;
use crate::call::{self, ArgsIn, CallMeta, CallOutput, HostCall, HOST_API};
use crate::error::RuntimeError;
use crate::log::LogSink;
use crate::metrics::{CallRecord, ModuleMetrics};
use crate::module::{Method, Module, NotEntered};
use crate::resolver::{LocalResolver, ModuleRef, Resolver};

/// A loaded module, as a small copyable id. Valid only with the runtime that issued it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModuleHandle {
    runtime: u32,
    index: u32,
}

impl fmt::Display for ModuleHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.runtime, self.index)
    }
}

/// The operations every memlink host offers.
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

/// Settings of a [`Runtime`].
#[derive(Clone)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// Bytes of arena each call gets (default 64 KiB).
    pub arena_size: usize,
    /// Idle arenas kept for reuse (default 64).
    pub arena_pool: usize,
    /// Most modules one runtime can load over its life (default 256).
    pub max_modules: usize,
    /// Deepest chain of module-to-module calls (default 8): a call from the host is depth
    /// 0, and a nested call deeper than this fails with `MaxCallDepthExceeded`.
    pub max_call_depth: u32,
    /// Calls one module runs at once (default 256).
    pub max_concurrency: usize,
    /// What happens to a call beyond `max_concurrency` (default: rejected at once).
    pub saturation: Saturation,
    /// Arenas on loan (beyond the one each calling thread keeps for its next call) at
    /// which the pool reports full load (default 1024). The pool lends more past it; the
    /// figure only feeds backpressure.
    pub arena_soft_limit: usize,
    /// Deadline of a call that sets none (default: none).
    pub default_timeout: Option<Duration>,
    /// Bytes of persistent memory each loaded module gets, for state it keeps across
    /// calls (default 1 MiB; 0 for none).
    pub persistent_size: usize,
    /// Whether the runtime keeps its built-in figures per export (default: yes). Off,
    /// a call skips two clock reads and the per-export counters.
    pub builtin_metrics: bool,
    /// The most detailed module log level delivered (default: whatever the installed
    /// `tracing` subscriber enables). Modules drop more detailed records themselves.
    pub log_level: Option<tracing::Level>,
    /// Receives every module log record (beside `tracing`).
    pub log_sink: Option<Arc<dyn LogSink>>,
}

impl fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("arena_size", &self.arena_size)
            .field("max_concurrency", &self.max_concurrency)
            .field("saturation", &self.saturation)
            .field("max_call_depth", &self.max_call_depth)
            .field("default_timeout", &self.default_timeout)
            .field("log_level", &self.log_level)
            .field("log_sink", &self.log_sink.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            arena_size: 64 * 1024,
            arena_pool: 64,
            max_modules: 256,
            max_call_depth: 8,
            max_concurrency: 256,
            saturation: Saturation::Reject,
            arena_soft_limit: 1024,
            default_timeout: None,
            persistent_size: 1 << 20,
            builtin_metrics: true,
            log_level: None,
            log_sink: None,
        }
    }
}

impl RuntimeConfig {
    /// Sets [`max_concurrency`](RuntimeConfig::max_concurrency) and
    /// [`saturation`](RuntimeConfig::saturation).
    pub fn concurrency(mut self, max: usize, saturation: Saturation) -> Self {
        self.max_concurrency = max.max(1);
        self.saturation = saturation;
        self
    }

    /// Sets [`log_level`](RuntimeConfig::log_level).
    pub fn log_level(mut self, level: tracing::Level) -> Self {
        self.log_level = Some(level);
        self
    }

    /// Sets [`log_sink`](RuntimeConfig::log_sink).
    pub fn log_sink(mut self, sink: Arc<dyn LogSink>) -> Self {
        self.log_sink = Some(sink);
        self
    }

    /// Sets [`builtin_metrics`](RuntimeConfig::builtin_metrics).
    pub fn builtin_metrics(mut self, on: bool) -> Self {
        self.builtin_metrics = on;
        self
    }

    /// Sets [`default_timeout`](RuntimeConfig::default_timeout).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// Sets [`arena_size`](RuntimeConfig::arena_size).
    pub fn arena_size(mut self, bytes: usize) -> Self {
        self.arena_size = bytes;
        self
    }

    /// Sets [`max_call_depth`](RuntimeConfig::max_call_depth).
    pub fn max_call_depth(mut self, depth: u32) -> Self {
        self.max_call_depth = depth;
        self
    }
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// A call takes an arena from a lock-free pool and runs on the calling thread; no lock
/// is held while module code runs. Modules are never `dlclose`d: see
/// [`unload`](Runtime::unload).
#[derive(Debug, Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    id: u32,
    pub(crate) config: RuntimeConfig,
    resolver: Box<dyn Resolver>,
    /// One slot per module ever loaded; a slot is written once, so calls read it without
    /// a lock.
    slots: Box<[OnceLock<Module>]>,
    /// Serializes loads and unloads (never held during a call).
    loading: Mutex<usize>,
    /// Live modules by name, for nested calls.
    names: RwLock<HashMap<String, u32>>,
    pub(crate) pool: Arc<ArenaPool>,
    /// Times calls for the latency histogram: the CPU's time-stamp counter where it is
    /// invariant (about 9 ns a read against 21 for `Instant::now` on the machine in
    /// benches/README.md), calibrated once per process; the OS clock elsewhere.
    clock: quanta::Clock,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("id", &self.id)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

static NEXT_RUNTIME: AtomicU32 = AtomicU32::new(1);

impl Runtime {
    /// A runtime that loads modules from local paths, with the default settings.
    pub fn with_local_resolver() -> Runtime {
        Runtime::new(RuntimeConfig::default(), LocalResolver)
    }

    /// A runtime with `config` that finds modules through `resolver`.
    pub fn new(config: RuntimeConfig, resolver: impl Resolver + 'static) -> Runtime {
        let slots = (0..config.max_modules).map(|_| OnceLock::new()).collect();
        Runtime {
            inner: Arc::new(Inner {
                id: NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed),
                pool: ArenaPool::new(
                    config.arena_size,
                    config.arena_pool,
                    config.arena_soft_limit,
                ),
                config,
                resolver: Box::new(resolver),
                slots,
                loading: Mutex::new(0),
                names: RwLock::new(HashMap::new()),
                clock: quanta::Clock::new(),
            }),
        }
    }

    /// Loads a module under a name other than its crate name (the name nested calls use).
    pub fn load_as(&self, module: ModuleRef, name: &str) -> Result<ModuleHandle, RuntimeError> {
        self.inner.load(module, Some(name))
    }

    /// The module's name (what nested calls address it by) and version.
    pub fn module_name(&self, handle: ModuleHandle) -> Result<(String, String), RuntimeError> {
        let m = self.inner.module(handle)?;
        Ok((m.name.clone(), m.version.clone()))
    }

    /// The path the module was loaded from and the memlink-msdk version it was built with.
    pub fn module_origin(&self, handle: ModuleHandle) -> Result<(PathBuf, String), RuntimeError> {
        let m = self.inner.module(handle)?;
        Ok((m.path.clone(), m.sdk_version.clone()))
    }

    /// Calls a method with typed arguments and result: the arguments are encoded as the
    /// method expects (a tuple as a MessagePack array, or a single string/bytes argument
    /// raw) and the result decoded.
    ///
    /// ```no_run
    /// # use memlink_runtime::runtime::{Runtime, ModuleRuntime};
    /// # use memlink_runtime::resolver::ModuleRef;
    /// # let runtime = Runtime::with_local_resolver();
    /// # let handle = runtime.load(ModuleRef::parse("./libbasic.so")?)?;
    /// let sum: u32 = runtime.call_typed(handle, "add", &(2u32, 3u32))?;
    /// assert_eq!(sum, 5);
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
        R: serde::de::DeserializeOwned,
    {
        let module = self.inner.module(handle)?;
        let (_, m) = resolve(module, method)?;
        let codec = |e: ModuleError| RuntimeError::Codec {
            module: module.name.clone(),
            method: method.to_owned(),
            reason: match e {
                ModuleError::Serialize(m) => m,
                other => other.to_string(),
            },
        };
        let encoded = serialize::encode_as(m.args_format, args).map_err(codec)?;
        let out = self.call(handle, method, &encoded)?;
        serialize::decode_as(m.result_format, &out).map_err(codec)
    }
}

/// Per-call settings: the request's trace and span ids and its deadline.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct CallOptions {
    /// Trace id of the request (0: none); nested calls keep it.
    pub trace_id: u64,
    /// Span id of the caller (0: none).
    pub span_id: u64,
    /// When the call must be finished; the module sees the time left.
    pub deadline: Option<Instant>,
}

impl CallOptions {
    /// Sets the trace and span ids.
    pub fn trace(mut self, trace_id: u64, span_id: u64) -> Self {
        self.trace_id = trace_id;
        self.span_id = span_id;
        self
    }

    /// Sets the deadline to `timeout` from now.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.deadline = Instant::now().checked_add(timeout);
        self
    }

    /// Sets the deadline.
    pub fn deadline(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

impl Runtime {
    /// Every loaded module's figures: the built-ins per export, and the module's own
    /// metrics (read from the module now).
    pub fn metrics(&self) -> Vec<ModuleMetrics> {
        self.inner
            .live()
            .map(|(_, m)| crate::metrics::of_module(m))
            .collect()
    }

    /// [`metrics`](Runtime::metrics) in the Prometheus text exposition format.
    pub fn prometheus(&self) -> String {
        crate::metrics::prometheus(&self.metrics())
    }
}

/// A method resolved once by name, to be called many times without looking it up again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MethodRef {
    pub(crate) handle: ModuleHandle,
    pub(crate) index: u32,
}

impl MethodRef {
    /// The module the method belongs to.
    pub fn module(&self) -> ModuleHandle {
        self.handle
    }
}

impl Runtime {
    /// Calls `method` with encoded `args` and per-call `options`.
    pub fn call_with(
        &self,
        handle: ModuleHandle,
        method: &str,
        args: &[u8],
        options: &CallOptions,
    ) -> Result<CallOutput, RuntimeError> {
        let module = self.inner.module(handle)?;
        let (index, _) = resolve(module, method)?;
        self.invoke(handle, module, index, ArgsIn::Slice(args), options)
    }

    /// Resolves `method` of the module once, for [`call_method`](Runtime::call_method).
    pub fn method(&self, handle: ModuleHandle, method: &str) -> Result<MethodRef, RuntimeError> {
        let module = self.inner.module(handle)?;
        let (index, _) = resolve(module, method)?;
        Ok(MethodRef { handle, index })
    }

    /// Calls a method resolved with [`method`](Runtime::method): no name hashing, no
    /// search, straight to the module's table by index.
    pub fn call_method(
        &self,
        method: MethodRef,
        args: &[u8],
        options: &CallOptions,
    ) -> Result<CallOutput, RuntimeError> {
        let module = self.inner.module(method.handle)?;
        self.invoke(
            method.handle,
            module,
            method.index,
            ArgsIn::Slice(args),
            options,
        )
    }

    pub(crate) fn invoke(
        &self,
        handle: ModuleHandle,
        module: &Module,
        index: u32,
        args: ArgsIn<'_>,
        options: &CallOptions,
    ) -> Result<CallOutput, RuntimeError> {
        let default = self.inner.config.default_timeout;
        let meta = CallMeta {
            depth: 0,
            trace_id: options.trace_id,
            span_id: options.span_id,
            deadline: options
                .deadline
                .or_else(|| default.and_then(|t| Instant::now().checked_add(t))),
        };
        let method = || module.methods[index as usize].name.clone();
        self.inner
            .call_entered(module, index, args, meta, None)
            .map_err(|e| match e {
                Failure::Retired => RuntimeError::UnknownHandle(handle),
                Failure::Saturated => RuntimeError::Saturated {
                    module: module.name.clone(),
                    method: method(),
                    limit: self.inner.config.max_concurrency,
                },
                Failure::Module(source) => RuntimeError::Call {
                    module: module.name.clone(),
                    method: method(),
                    source,
                },
            })
    }
}

fn resolve<'m>(module: &'m Module, method: &str) -> Result<(u32, &'m Method), RuntimeError> {
    module
        .method(method)
        .ok_or_else(|| RuntimeError::UnknownMethod {
            module: module.name.clone(),
            method: method.to_owned(),
        })
}

impl ModuleRuntime for Runtime {
    fn load(&self, module: ModuleRef) -> Result<ModuleHandle, RuntimeError> {
        self.inner.load(module, None)
    }

    fn call(
        &self,
        handle: ModuleHandle,
        method: &str,
        args: &[u8],
    ) -> Result<CallOutput, RuntimeError> {
        self.call_with(handle, method, args, &CallOptions::default())
    }

    /// Retires the module: waits for the calls in flight, calls `memlink_shutdown` once
    /// and refuses further calls. The library itself stays mapped: `dlclose` on a Rust
    /// cdylib can crash the process later, when a thread-local destructor it registered
    /// runs after its code was unmapped. Loading the same file again initializes that
    /// same image again (its statics are not reset).
    fn unload(&self, handle: ModuleHandle) -> Result<(), RuntimeError> {
        self.inner.unload(handle)
    }

    fn methods(&self, handle: ModuleHandle) -> Result<Vec<Method>, RuntimeError> {
        Ok(self.inner.module(handle)?.methods.clone())
    }
}

/// Why a dispatched call did not produce output.
pub(crate) enum Failure {
    Retired,
    Saturated,
    Module(ModuleError),
}

impl Inner {
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

    /// Runs method `index` of `module`: admission, the call, the built-in figures.
    /// `parent` is the running call that makes this one, for a nested call: a module
    /// already on its chain is re-entered within the chain's slot.
    pub(crate) fn call_entered(
        &self,
        module: &Module,
        index: u32,
        args: ArgsIn<'_>,
        meta: CallMeta,
        parent: Option<&HostCall<'_>>,
    ) -> Result<CallOutput, Failure> {
        // What a timeout reports: the time the call had when it came in.
        let given = meta
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        let timed_out = || Failure::Module(ModuleError::Timeout(given.unwrap_or_default()));
        // A call already out of time is not started (the module would refuse it too).
        if given == Some(Duration::ZERO) {
            return Err(timed_out());
        }
        let reentrant = parent.is_some_and(|p| p.chain_holds(module));
        if !reentrant {
            match module.enter(self.config.saturation, meta.deadline) {
                Ok(()) => {}
                Err(NotEntered::Retired) => return Err(Failure::Retired),
                Err(NotEntered::Refused(Refused::Saturated)) => return Err(Failure::Saturated),
                Err(NotEntered::Refused(Refused::DeadlinePassed)) => return Err(timed_out()),
                Err(NotEntered::Refused(Refused::Closed)) => return Err(Failure::Retired),
            }
        }
        let start = self.config.builtin_metrics.then(|| self.clock.raw());
        let (result, arena_used, bytes_in) =
            call::dispatch(self, module, index, args, meta, parent);
        if !reentrant {
            module.leave();
        }
        if let Some(start) = start {
            let (status, bytes_out) = match &result {
                Ok(out) => (0, out.len()),
                Err(e) => (e.code(), e.payload().len()),
            };
            module.stats[index as usize].record(CallRecord {
                status,
                latency_ns: self.clock.delta_as_nanos(start, self.clock.raw()),
                bytes_in,
                bytes_out,
                arena_used,
            });
        }
        if let Err(ModuleError::Panic(message)) = &result {
            crate::log::panicked(
                &module.name,
                &module.methods[index as usize].name,
                message,
                &self.config,
            );
        }
        result.map_err(Failure::Module)
    }

    /// A call from one module to another, by name. With `typed`, `args` are MessagePack
    /// and are converted to the callee's argument format first.
    pub(crate) fn call_nested(
        &self,
        module: &str,
        method: &str,
        args: &[u8],
        typed: bool,
        caller: &HostCall<'_>,
    ) -> Result<(CallOutput, Format), ModuleError> {
        let meta = caller.nested_meta();
        if meta.depth > self.config.max_call_depth {
            return Err(ModuleError::MaxCallDepthExceeded);
        }
        let index = self
            .names
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(module)
            .copied();
        let target = index
            .and_then(|i| self.slots.get(i as usize).and_then(OnceLock::get))
            .ok_or_else(|| ModuleError::ModuleNotFound(module.to_owned()))?;
        let (i, m) = target.method(method).ok_or(ModuleError::InvalidMethod)?;
        let converted;
        let args = if typed {
            converted = serialize::convert_args(m.args_format, args.to_vec())?;
            &converted[..]
        } else {
            args
        };
        let out = self
            .call_entered(target, i, ArgsIn::Slice(args), meta, Some(caller))
            .map_err(|f| match f {
                Failure::Retired => ModuleError::ModuleNotFound(module.to_owned()),
                Failure::Saturated => ModuleError::CallFailed(format!(
                    "module `{module}` is saturated ({} calls in flight)",
                    self.config.max_concurrency
                )),
                Failure::Module(e) => e,
            })?;
        Ok((out, m.result_format))
    }

    fn load(&self, reference: ModuleRef, name: Option<&str>) -> Result<ModuleHandle, RuntimeError> {
        let path = self.resolver.resolve(&reference)?;
        self.install(name, || {
            if let Some((index, _)) = self.live().find(|(_, m)| m.path == path) {
                return Err(RuntimeError::AlreadyLoaded {
                    path: path.clone(),
                    handle: self.handle(index),
                });
            }
            Module::open(&path, self.config.max_concurrency)
        })
    }

    /// Installs the module `open` makes (called under the loading lock), under `name`
    /// or its own name, and initializes it.
    pub(crate) fn install(
        &self,
        name: Option<&str>,
        open: impl FnOnce() -> Result<Module, RuntimeError>,
    ) -> Result<ModuleHandle, RuntimeError> {
        let mut next = self.loading.lock().unwrap_or_else(|p| p.into_inner());
        if *next >= self.slots.len() {
            return Err(RuntimeError::TooManyModules {
                limit: self.slots.len(),
            });
        }
        let mut module = open()?;
        module.persistent = crate::module::PersistentRegion::new(self.config.persistent_size);
        if let Some(name) = name {
            module.name = name.to_owned();
        }
        let mut names = self.names.write().unwrap_or_else(|p| p.into_inner());
        if names.contains_key(&module.name) {
            return Err(RuntimeError::NameTaken { name: module.name });
        }
        init(&module, &self.config)?;
        let index = *next as u32;
        names.insert(module.name.clone(), index);
        let _ = self.slots[*next].set(module);
        *next += 1;
        Ok(self.handle(index))
    }

    fn unload(&self, handle: ModuleHandle) -> Result<(), RuntimeError> {
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

    pub(crate) fn live(&self) -> impl Iterator<Item = (u32, &Module)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.get().map(|m| (i as u32, m)))
            .filter(|(_, m)| !m.is_retired())
    }

    fn handle(&self, index: u32) -> ModuleHandle {
        ModuleHandle {
            runtime: self.id,
            index,
        }
    }
}

fn init(module: &Module, config: &RuntimeConfig) -> Result<(), RuntimeError> {
    let mut frame = InitFrame {
        size: size_of::<InitFrame>() as u32,
        abi_version: abi::ABI_VERSION,
        host: &HOST_API,
        max_log_level: crate::log::max_level(config),
        error: StrRef {
            ptr: core::ptr::null(),
            len: 0,
        },
    };
    // SAFETY: `init` is the module's entry point with the ABI's signature; the frame is
    // valid for the call and `HOST_API` is a static.
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

impl Drop for Inner {
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
