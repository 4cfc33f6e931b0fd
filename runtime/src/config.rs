//! [`RuntimeConfig`]: the settings of a runtime; [`ModuleSettings`]: those one module
//! may have of its own.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::admission::Saturation;
use crate::cache::CacheConfig;
use crate::health::BreakerConfig;
use crate::intercept::Interceptor;
use crate::log::LogSink;

/// The most modules a runtime holds at once, whatever
/// [`RuntimeConfig::max_modules`] says: far more than the dynamic loader is asked to hold
/// in practice, for a few bytes a slot.
pub(crate) const MOST_MODULES: usize = 1 << 16;

/// The most idle arenas a runtime keeps, whatever [`RuntimeConfig::arena_pool`] says:
/// 4 GiB of them at the default arena size.
pub(crate) const MOST_IDLE_ARENAS: usize = 1 << 16;

/// The sparsest latency sampling, whatever [`RuntimeConfig::latency_sampling`] says: a
/// timed call counts this many times its latency in a 64-bit sum of nanoseconds, which
/// `u32::MAX` times a call of five seconds overflowed.
pub(crate) const SPARSEST_SAMPLING: u32 = 1 << 16;

/// Settings of a [`Runtime`](crate::Runtime).
#[derive(Clone)]
#[non_exhaustive]
pub struct RuntimeConfig {
    /// Bytes of arena each call gets (default 64 KiB): the module's scratch space, where
    /// a result it builds there stays. Arguments written into an arena take its first
    /// bytes, rounded up to 64, and the module's scratch is the rest: an [`ArgBuffer`]
    /// of at most this size given by value, and the archive
    /// [`ArchivedMethod::call`](crate::ArchivedMethod::call) writes when it fits.
    /// Arguments lent for the call (`&ArgBuffer`, a slice) leave the arena whole.
    ///
    /// [`ArgBuffer`]: crate::ArgBuffer
    pub arena_size: usize,
    /// Idle arenas kept for reuse (default 64, at most 65 536: more is taken as 65 536).
    /// The pool makes room for them all up front, a few bytes each.
    pub arena_pool: usize,
    /// Most modules one runtime holds at once (default 256, at most 65 536: more is taken
    /// as 65 536); an unload frees its slot for a later load. Every slot is made with the
    /// runtime, so a limit meant as "no limit" (`usize::MAX`) cannot be taken as it is.
    pub max_modules: usize,
    /// Deepest chain of module-to-module calls (default 8): a call from the host is depth
    /// 0, and a nested call deeper than this fails with `MaxCallDepthExceeded`. Every
    /// level of a chain runs on the calling thread's stack, so a deep limit needs a stack
    /// to match (a chain of 256 calls between two modules passing strings takes more than
    /// a 2 MiB thread stack in a debug build): whatever the limit, a nested call made
    /// with less than 256 KiB of the thread's stack left fails with `CallFailed`, saying
    /// so, rather than overflow it.
    pub max_call_depth: u32,
    /// Calls one module runs at once (default 256; 0, which no call could pass, is taken
    /// as 1).
    pub max_concurrency: usize,
    /// What happens to a call beyond `max_concurrency` (default: rejected at once).
    pub saturation: Saturation,
    /// Arenas on loan (beyond the one each calling thread keeps for its next call) at
    /// which the pool reports full load (default 1024). The pool lends more past it; the
    /// figure only feeds backpressure.
    pub arena_soft_limit: usize,
    /// Deadline of a call from the host that sets none (default: none), counted from
    /// when the call comes in. A module loaded with its own
    /// ([`ModuleSettings::default_timeout`]) uses that instead, and a call that sets a
    /// deadline (`CallOptions::deadline`) uses its own, even a later one. A timeout longer
    /// than the clock can count from now (`Duration::MAX`) gives no deadline at all (the
    /// module sees none), where `CallOptions::timeout(Duration::MAX)` gives the latest
    /// one the clock holds. A module's nested call keeps its caller's deadline, this
    /// one's or none: it is part of its caller's call, whose time it spends. A timeout of
    /// 0, which every call would meet before it starts, is refused at load
    /// ([`RuntimeError::BadSetting`](crate::RuntimeError::BadSetting)).
    pub default_timeout: Option<Duration>,
    /// The most time a call to a module is given (default: no limit), counted from when
    /// the call comes in: a call whose deadline is later, or that has none (its own, the
    /// default's, a daemon client's), gets this one instead. Unlike
    /// [`default_timeout`](RuntimeConfig::default_timeout), a caller cannot extend it: it
    /// is for hosts that take calls from code they do not control (a daemon's clients,
    /// say), so that none can hold a module's slot, or a worker thread, for longer. It
    /// holds for every call into the module, a module's nested call included (which then
    /// ends by the earlier of its caller's deadline and this one). A module loaded with its
    /// own ([`ModuleSettings::max_call_time`]) uses that instead. `Duration::MAX` is no
    /// limit; 0 is refused at load, as a default timeout of 0 is.
    pub max_call_time: Option<Duration>,
    /// Bytes of persistent memory each loaded module gets, for state it keeps across
    /// calls (default 1 MiB; 0 for none).
    pub persistent_size: usize,
    /// Whether the runtime keeps its built-in figures per export (default: yes). Off,
    /// a call skips the per-export counters and the latency timing: `Runtime::metrics`
    /// reports them as 0, and `Runtime::prometheus` leaves their families out (its zeros
    /// would read as exports never called).
    pub builtin_metrics: bool,
    /// One call in this many is timed for the latency histogram, on average (default 32;
    /// 1 times every call), a thread's first call as any other, so a thread that makes
    /// one call times it one time in this many. A timed call is counted that many times
    /// in the histogram, which so estimates every call's latency; call, error and byte
    /// counts are exact. The calls between two timed ones vary at random, from none to
    /// twice this less two, across every export a thread calls, so that exports called
    /// in a fixed cycle are timed alike. Timing a call reads the clock twice, which
    /// costs more than the rest of a small call's bookkeeping. 0 is taken as 1, and more
    /// than 65 536 as 65 536: a timed call adds this many times its latency to the
    /// histogram's sum, which 65 536 keeps inside 64 bits for 78 hours of timed calls.
    pub latency_sampling: u32,
    /// The most detailed module log level delivered (default: whatever the installed
    /// `tracing` subscriber enables). Modules drop more detailed records themselves.
    pub log_level: Option<tracing::Level>,
    /// Receives every module log record made in one of this runtime's calls, up to
    /// `log_level` (beside `tracing`). A record made outside any call (from a module's
    /// `memlink_init` or its own threads) belongs to no runtime, and goes to `tracing`
    /// alone.
    pub log_sink: Option<Arc<dyn LogSink>>,
    /// See every call before and after it runs: each `before` in the order they were
    /// added, then each `after` in the same order (default: none; see
    /// [`crate::intercept`]).
    pub interceptors: Vec<Arc<dyn Interceptor>>,
    /// Every module's circuit breaker (default: none; see [`crate::health`]).
    pub breaker: Option<BreakerConfig>,
    /// The cache of pure methods' results (default: none; see [`crate::cache`]).
    pub result_cache: Option<CacheConfig>,
}

impl fmt::Debug for RuntimeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeConfig")
            .field("arena_size", &self.arena_size)
            .field("arena_pool", &self.arena_pool)
            .field("arena_soft_limit", &self.arena_soft_limit)
            .field("max_modules", &self.max_modules)
            .field("persistent_size", &self.persistent_size)
            .field("builtin_metrics", &self.builtin_metrics)
            .field("latency_sampling", &self.latency_sampling)
            .field("max_concurrency", &self.max_concurrency)
            .field("saturation", &self.saturation)
            .field("max_call_depth", &self.max_call_depth)
            .field("default_timeout", &self.default_timeout)
            .field("max_call_time", &self.max_call_time)
            .field("log_level", &self.log_level)
            .field("log_sink", &self.log_sink.is_some())
            .field("interceptors", &self.interceptors)
            .field("breaker", &self.breaker)
            .field("result_cache", &self.result_cache)
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
            max_call_time: None,
            persistent_size: 1 << 20,
            builtin_metrics: true,
            latency_sampling: 32,
            log_level: None,
            log_sink: None,
            interceptors: Vec::new(),
            breaker: None,
            result_cache: None,
        }
    }
}

impl RuntimeConfig {
    /// The settings as a runtime keeps them: the fields are public, so a limit of 0 calls
    /// at once (every call would wait, or be refused, for good) and sampling 1 call in 0
    /// are made 1, as [`concurrency`](RuntimeConfig::concurrency) and
    /// [`latency_sampling`](RuntimeConfig::latency_sampling) make them; and
    /// `max_modules` and `arena_pool` are made at most [`MOST_MODULES`] and
    /// [`MOST_IDLE_ARENAS`], since the runtime makes room for every module and every idle
    /// arena up front (room for `usize::MAX` of them panicked in `Runtime::new`); and
    /// `latency_sampling` at most [`SPARSEST_SAMPLING`].
    pub(crate) fn normalized(mut self) -> Self {
        self.max_concurrency = self.max_concurrency.max(1);
        self.latency_sampling = self.latency_sampling.clamp(1, SPARSEST_SAMPLING);
        self.max_modules = self.max_modules.min(MOST_MODULES);
        self.arena_pool = self.arena_pool.min(MOST_IDLE_ARENAS);
        self
    }

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

    /// Sets [`latency_sampling`](RuntimeConfig::latency_sampling) (from 1 to 65 536).
    pub fn latency_sampling(mut self, every: u32) -> Self {
        self.latency_sampling = every.clamp(1, SPARSEST_SAMPLING);
        self
    }

    /// Sets [`default_timeout`](RuntimeConfig::default_timeout).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// Sets [`max_call_time`](RuntimeConfig::max_call_time).
    pub fn max_call_time(mut self, limit: Duration) -> Self {
        self.max_call_time = Some(limit);
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

    /// Adds an interceptor, after those already added (see [`crate::intercept`]).
    pub fn interceptor(mut self, interceptor: Arc<dyn Interceptor>) -> Self {
        self.interceptors.push(interceptor);
        self
    }

    /// Gives every module a circuit breaker (see [`crate::health`]).
    pub fn breaker(mut self, breaker: BreakerConfig) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Caches the results of methods marked pure (see [`crate::cache`]).
    pub fn result_cache(mut self, cache: CacheConfig) -> Self {
        self.result_cache = Some(cache);
        self
    }

    /// Sets [`max_modules`](RuntimeConfig::max_modules).
    pub fn max_modules(mut self, modules: usize) -> Self {
        self.max_modules = modules;
        self
    }

    /// Sets [`persistent_size`](RuntimeConfig::persistent_size).
    ///
    /// ```
    /// use memlink_runtime::RuntimeConfig;
    ///
    /// // Modules that keep no state, and a smaller pool of idle arenas.
    /// let config = RuntimeConfig::default().persistent_size(0).arena_pool(8);
    /// assert_eq!((config.persistent_size, config.arena_pool), (0, 8));
    /// ```
    pub fn persistent_size(mut self, bytes: usize) -> Self {
        self.persistent_size = bytes;
        self
    }

    /// Sets [`arena_pool`](RuntimeConfig::arena_pool).
    pub fn arena_pool(mut self, arenas: usize) -> Self {
        self.arena_pool = arenas;
        self
    }

    /// Sets [`arena_soft_limit`](RuntimeConfig::arena_soft_limit).
    pub fn arena_soft_limit(mut self, arenas: usize) -> Self {
        self.arena_soft_limit = arenas;
        self
    }
}

/// Settings of one module, given when it is loaded ([`Runtime::load_with`]); each one
/// left `None` is the runtime's ([`RuntimeConfig`]).
///
/// [`Runtime::load_with`]: crate::Runtime::load_with
///
/// ```
/// # use std::time::Duration;
/// use memlink_runtime::config::ModuleSettings;
///
/// let settings = ModuleSettings::default()
///     .name("resize")
///     .max_concurrency(4)
///     .default_timeout(Duration::from_millis(250));
/// assert_eq!(settings.max_concurrency, Some(4));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ModuleSettings {
    /// The name calls use for it (default: its crate's name); not empty, with no `@`
    /// (which separates a name from a version requirement) and no control character.
    pub name: Option<String>,
    /// Its calls in flight at once ([`RuntimeConfig::max_concurrency`]).
    pub max_concurrency: Option<usize>,
    /// The deadline of its calls from the host made without one
    /// ([`RuntimeConfig::default_timeout`]; a nested call into it keeps its caller's). A
    /// timeout of 0 is refused, as the runtime's is.
    pub default_timeout: Option<Duration>,
    /// The most time any call to it is given, which no caller can extend
    /// ([`RuntimeConfig::max_call_time`]). 0 is refused, as the runtime's is.
    pub max_call_time: Option<Duration>,
    /// Its persistent region's size ([`RuntimeConfig::persistent_size`]).
    pub persistent_size: Option<usize>,
    /// Whether it is loaded from a private copy of its file (default: no, the file
    /// itself), so the file can be rewritten in place while the module runs: the loader
    /// maps a library's file, and a file rewritten under a running image crashes it. A
    /// reload always loads a private copy, and so does a load of a path the loader
    /// mapped another file from before (it would return that file's image). A private
    /// copy is an image of its own, with statics of its own: a file already loaded loads
    /// again from one beside itself, under another name ([`ModuleSettings::name`]).
    pub private_copy: bool,
}

impl ModuleSettings {
    /// Sets [`name`](ModuleSettings::name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets [`max_concurrency`](ModuleSettings::max_concurrency) (at least 1).
    pub fn max_concurrency(mut self, calls: usize) -> Self {
        self.max_concurrency = Some(calls.max(1));
        self
    }

    /// Sets [`default_timeout`](ModuleSettings::default_timeout).
    pub fn default_timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// Sets [`max_call_time`](ModuleSettings::max_call_time).
    pub fn max_call_time(mut self, limit: Duration) -> Self {
        self.max_call_time = Some(limit);
        self
    }

    /// Sets [`private_copy`](ModuleSettings::private_copy).
    pub fn private_copy(mut self, copy: bool) -> Self {
        self.private_copy = copy;
        self
    }

    /// Sets [`persistent_size`](ModuleSettings::persistent_size).
    pub fn persistent_size(mut self, bytes: usize) -> Self {
        self.persistent_size = Some(bytes);
        self
    }
}
