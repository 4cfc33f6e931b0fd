//! The daemon's settings: a TOML file, or the command line's flags.
//!
//! ```toml
//! socket = "/run/memlink/memlink.sock"
//! metrics_addr = "127.0.0.1:9464"
//! trust = "same-user"          # or "nobody": copy every client's arguments
//!
//! watch = "/opt/modules/live" # optional: serve every module there, following changes
//!
//! [[modules]]
//! name = "basic"
//! path = "/opt/modules/libbasic.so"
//! max_concurrency = 8          # this module's own runtime settings
//! default_timeout_ms = 250
//! max_call_ms = 2000           # no client's call runs longer, whatever it asks
//!
//! [runtime]
//! max_concurrency = 64
//! default_timeout_ms = 5000
//! max_call_ms = 60000
//!
//! [[modules]]                  # a worker process of its own, with its own limits
//! name = "untrusted"
//! path = "/opt/modules/libuntrusted.so"
//! limits = { memory_bytes = 268435456, cpu_seconds = 60 }
//!
//! [limits]                     # every worker process's (setrlimit)
//! memory_bytes = 2147483648
//! cpu_seconds = 3600
//! open_files = 1024
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ModuleSettings, RuntimeConfig};

/// Everything `memlink serve` needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct DaemonConfig {
    /// Where the Unix socket is created: a file may leave it to `memlink serve
    /// --socket`.
    #[serde(default, with = "os_path")]
    pub socket: PathBuf,
    /// The socket's permission bits (default `0o600`: only the daemon's user connects).
    #[serde(default = "default_mode")]
    pub socket_mode: u32,
    /// The modules served.
    #[serde(default)]
    pub modules: Vec<ModuleEntry>,
    /// A directory whose modules are served too, kept in step with its files: a new
    /// file loads, a changed file hot-reloads, a removed file unloads (see
    /// `Runtime::watch`). Clients that connect later see the modules it added.
    #[serde(default, with = "os_path::option")]
    pub watch: Option<PathBuf>,
    /// Where to serve `/metrics` and `/health` over HTTP (none by default).
    #[serde(default)]
    pub metrics_addr: Option<String>,
    /// Whose arguments are read in place.
    #[serde(default)]
    pub trust: Trust,
    /// Limits of every worker process (a module's own `limits` lower them for its worker).
    #[serde(default)]
    pub limits: WorkerLimits,
    /// Most connections at once (default 1024, at most [`MAX_CONNECTIONS`]).
    #[serde(default = "default_connections")]
    pub max_connections: u32,
    /// Most shared memory one connection may ask for, in bytes (default 256 MiB).
    #[serde(default = "default_shm")]
    pub max_shm_per_client: u64,
    /// Most calls of one connection a worker runs at once (default 2): the thread serving
    /// the connection, and helpers that take the calls a client submits while another of
    /// its calls is in flight. 1 runs a connection's calls one after another.
    #[serde(default = "default_threads")]
    pub threads_per_connection: u32,
    /// How long past its deadline a call may run before the watchdog ends the worker
    /// (default 200 ms, at least [`MIN_GRACE_MS`]).
    #[serde(default = "default_grace")]
    pub watchdog_grace_ms: u64,
    /// The runtime's settings in the worker.
    #[serde(default)]
    pub runtime: RuntimeSettings,
}

/// A module to serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ModuleEntry {
    /// The name clients call it by (default: the module's own).
    #[serde(default)]
    pub name: Option<String>,
    /// Its shared library.
    #[serde(with = "os_path")]
    pub path: PathBuf,
    /// Its calls in flight at once, at least 1 (default: `[runtime] max_concurrency`).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// The deadline, in milliseconds, of its calls made without one (default:
    /// `[runtime] default_timeout_ms`). The watchdog holds such calls to it too.
    #[serde(default)]
    pub default_timeout_ms: Option<u64>,
    /// The most time, in milliseconds, any call to it is given, whatever deadline its
    /// client asks for (a later one or none is brought in to it); default: `[runtime]
    /// max_call_ms`. The watchdog holds calls to it too, so no client can hold a worker
    /// thread with this module's calls for longer (plus `watchdog_grace_ms`).
    #[serde(default)]
    pub max_call_ms: Option<u64>,
    /// Its persistent region's size in bytes (default: `[runtime] persistent_size`).
    #[serde(default)]
    pub persistent_size: Option<usize>,
    /// The worker process it runs in: modules naming the same worker share one, and
    /// `"main"` is the one serving every module without a worker of its own (see
    /// [`DaemonConfig::workers`]). Default: a worker of its own when it has `limits`,
    /// else `"main"`.
    #[serde(default)]
    pub worker: Option<String>,
    /// `setrlimit` limits for its worker process, over `[limits]`. A worker shared by
    /// several modules gets the lowest of each.
    #[serde(default)]
    pub limits: Option<WorkerLimits>,
}

impl ModuleEntry {
    /// The module at `path`, under `name` or its own, with the runtime's settings.
    pub fn new(name: Option<String>, path: impl Into<PathBuf>) -> ModuleEntry {
        ModuleEntry {
            name,
            path: path.into(),
            max_concurrency: None,
            default_timeout_ms: None,
            max_call_ms: None,
            persistent_size: None,
            worker: None,
            limits: None,
        }
    }

    /// The settings the runtime loads it with.
    pub fn settings(&self) -> ModuleSettings {
        ModuleSettings {
            name: self.name.clone(),
            max_concurrency: self.max_concurrency.map(|n| n.max(1)),
            default_timeout: self.default_timeout_ms.map(Duration::from_millis),
            max_call_time: self.max_call_ms.map(Duration::from_millis),
            persistent_size: self.persistent_size,
            private_copy: false,
        }
    }
}

/// The name of the worker that serves every module without one of its own.
pub const MAIN_WORKER: &str = "main";

/// Most worker processes a daemon runs: each has a bit in a segment's sleeper words.
pub const MAX_WORKERS: usize = 32;

/// One worker process, as [`DaemonConfig::workers`] plans it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkerPlan {
    /// Its name ([`MAIN_WORKER`] for the main one).
    pub name: String,
    /// The modules it loads.
    pub modules: Vec<ModuleEntry>,
    /// Its `setrlimit` limits.
    pub limits: WorkerLimits,
}

/// Whose arguments the worker reads in place in the shared segment.
///
/// A client can rewrite its segment while the worker reads it. Reading a validated
/// archive that then changes would be undefined behaviour in the worker, so arguments
/// are copied into the worker's private memory before they are validated, except for
/// clients trusted not to do that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trust {
    /// Clients running as the daemon's own user (checked with `SO_PEERCRED`), which could
    /// attach a debugger to the worker anyway, are read in place; others are copied.
    #[default]
    SameUser,
    /// Every client's arguments are copied first.
    Nobody,
}

/// `setrlimit` limits applied to each worker process before it loads a module.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerLimits {
    /// Address space, in bytes (`RLIMIT_AS`).
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// CPU time, in seconds (`RLIMIT_CPU`).
    #[serde(default)]
    pub cpu_seconds: Option<u64>,
    /// Open descriptors (`RLIMIT_NOFILE`).
    #[serde(default)]
    pub open_files: Option<u64>,
}

impl WorkerLimits {
    /// Each limit the lower of `self`'s and `other`'s (a limit beats none).
    pub fn lowest(&self, other: &WorkerLimits) -> WorkerLimits {
        let low = |a: Option<u64>, b: Option<u64>| match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        WorkerLimits {
            memory_bytes: low(self.memory_bytes, other.memory_bytes),
            cpu_seconds: low(self.cpu_seconds, other.cpu_seconds),
            open_files: low(self.open_files, other.open_files),
        }
    }
}

/// The fewest open descriptors a worker may be limited to: its standard streams, its two
/// sockets to the supervisor, its figures table, its modules' files while they load and a
/// segment per connection while it is mapped. Fewer, and it fails before it is ready.
pub const MIN_OPEN_FILES: u64 = 16;

/// The least address space a worker may be limited to: its code and libraries, a thread's
/// stack, its runtime and a module's persistent region take more than this before it
/// serves. Less, and it failed at start with an allocation error that named another
/// setting.
pub const MIN_MEMORY_BYTES: u64 = 32 << 20;

impl WorkerLimits {
    /// Refuses limits under which a worker could not start: no CPU time (`SIGXCPU` at
    /// once), too little memory, or fewer open files than it needs for itself.
    fn check(&self) -> Result<(), String> {
        if let Some(n) = self.memory_bytes.filter(|&n| n < MIN_MEMORY_BYTES) {
            return Err(format!(
                "`memory_bytes` is {n}: a worker needs at least {MIN_MEMORY_BYTES} (32 MiB) of address space for its own code, threads and runtime"
            ));
        }
        if self.cpu_seconds == Some(0) {
            return Err(
                "`cpu_seconds` is 0: the worker would be ended before it serves; it is at least 1"
                    .to_owned(),
            );
        }
        match self.open_files {
            Some(n) if n < MIN_OPEN_FILES => Err(format!(
                "`open_files` is {n}: a worker needs at least {MIN_OPEN_FILES} for its own sockets and files"
            )),
            _ => Ok(()),
        }
    }
}

/// How an error names a served module: its name, else its file.
fn entry_name(entry: &ModuleEntry) -> String {
    match &entry.name {
        Some(name) => format!("`{name}`"),
        None => entry.path.display().to_string(),
    }
}

/// The worker runtime's settings (see [`RuntimeConfig`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// [`RuntimeConfig::arena_size`].
    #[serde(default)]
    pub arena_size: Option<usize>,
    /// [`RuntimeConfig::max_concurrency`], at least 1.
    #[serde(default)]
    pub max_concurrency: Option<usize>,
    /// [`RuntimeConfig::default_timeout`], in milliseconds.
    #[serde(default)]
    pub default_timeout_ms: Option<u64>,
    /// [`RuntimeConfig::max_call_time`], in milliseconds: the most time any client's call
    /// is given, whatever deadline it asks for (default: no limit).
    #[serde(default)]
    pub max_call_ms: Option<u64>,
    /// [`RuntimeConfig::persistent_size`].
    #[serde(default)]
    pub persistent_size: Option<usize>,
    /// The least severe module log record forwarded to the daemon's log (`"error"`,
    /// `"warn"`, `"info"`, `"debug"`, `"trace"`); default: what the daemon's own
    /// logging shows.
    #[serde(default)]
    pub log_level: Option<String>,
}

/// A TOML error on one line, where it is (`line 1, column 10: invalid type: ...`):
/// its own text draws the line under a caret over several, which an error printed on one
/// line shows as escapes.
fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

/// A path as text when it is UTF-8, else as its bytes: a Linux path need not be UTF-8,
/// and the settings travel to each worker as MessagePack, which would refuse it as text.
/// A TOML file gives text.
mod os_path {
    use std::ffi::OsStr;
    use std::fmt;
    use std::os::unix::ffi::OsStrExt;
    use std::path::{Path, PathBuf};

    use serde::de::{self, Deserializer, Visitor};
    use serde::Serializer;

    pub fn serialize<S: Serializer>(path: &Path, out: S) -> Result<S::Ok, S::Error> {
        match path.to_str() {
            Some(text) => out.serialize_str(text),
            None => out.serialize_bytes(path.as_os_str().as_bytes()),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<PathBuf, D::Error> {
        input.deserialize_any(PathVisitor)
    }

    struct PathVisitor;

    impl Visitor<'_> for PathVisitor {
        type Value = PathBuf;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a path")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<PathBuf, E> {
            Ok(PathBuf::from(text))
        }

        fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<PathBuf, E> {
            Ok(PathBuf::from(OsStr::from_bytes(bytes)))
        }
    }

    /// The same for an optional path.
    pub mod option {
        use std::path::PathBuf;

        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        #[derive(Serialize, Deserialize)]
        #[serde(transparent)]
        struct Wrapped(#[serde(with = "super")] PathBuf);

        pub fn serialize<S: Serializer>(path: &Option<PathBuf>, out: S) -> Result<S::Ok, S::Error> {
            path.clone().map(Wrapped).serialize(out)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            input: D,
        ) -> Result<Option<PathBuf>, D::Error> {
            Ok(Option::<Wrapped>::deserialize(input)?.map(|w| w.0))
        }
    }
}

fn default_mode() -> u32 {
    0o600
}
/// Most connections a daemon may be set to serve at once (`max_connections`).
pub const MAX_CONNECTIONS: u32 = 1 << 16;

/// The least `watchdog_grace_ms` (see [`DaemonConfig::watchdog_grace_ms`]).
pub const MIN_GRACE_MS: u64 = 50;

fn default_connections() -> u32 {
    1024
}
fn default_shm() -> u64 {
    256 << 20
}
fn default_grace() -> u64 {
    200
}
fn default_threads() -> u32 {
    2
}

impl DaemonConfig {
    /// A daemon on `socket` serving nothing yet, with every default.
    pub fn new(socket: impl Into<PathBuf>) -> DaemonConfig {
        DaemonConfig {
            socket: socket.into(),
            socket_mode: default_mode(),
            modules: Vec::new(),
            watch: None,
            metrics_addr: None,
            trust: Trust::default(),
            limits: WorkerLimits::default(),
            max_connections: default_connections(),
            max_shm_per_client: default_shm(),
            threads_per_connection: default_threads(),
            watchdog_grace_ms: default_grace(),
            runtime: RuntimeSettings::default(),
        }
    }

    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<DaemonConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let config: DaemonConfig = toml::from_str(&text)
            .map_err(|e| format!("{}: {}", path.display(), toml_error(&text, &e)))?;
        config
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// Refuses settings under which nothing could be served: a limit of zero calls at
    /// once would start a daemon that reports serving and refuses every call as
    /// saturated; so would zero connections, a shared-memory limit below the smallest
    /// segment, a deadline of 0 or worker limits no worker starts under. Refused rather
    /// than raised, so the file says what runs.
    fn check(&self) -> Result<(), String> {
        self.check_calls()?;
        self.check_connections()?;
        self.limits.check().map_err(|e| format!("`[limits]` {e}"))?;
        for entry in &self.modules {
            if let Some(limits) = &entry.limits {
                limits
                    .check()
                    .map_err(|e| format!("the `limits` of module {} {e}", entry_name(entry)))?;
            }
        }
        // A client names the module in each call's slot, in at most `MAX_NAME` bytes: a
        // longer name (or none) could be served but never called.
        let max = memlink_ipc::slot::MAX_NAME;
        if let Some(name) = self
            .modules
            .iter()
            .filter_map(|m| m.name.as_ref())
            .find(|n| n.is_empty() || n.len() > max)
        {
            return Err(format!(
                "the module name {name:?} is {} bytes: a served module's name is 1 to {max} bytes, what a call's slot holds",
                name.len()
            ));
        }
        Ok(())
    }

    /// [`check`](DaemonConfig::check) of what each call may have: calls at once, a
    /// deadline.
    fn check_calls(&self) -> Result<(), String> {
        const ZERO: &str = "is 0, so every call would be refused as saturated; it is at least 1";
        if self.runtime.max_concurrency == Some(0) {
            return Err(format!("`[runtime] max_concurrency` {ZERO}"));
        }
        if let Some(entry) = self.modules.iter().find(|m| m.max_concurrency == Some(0)) {
            return Err(format!(
                "`max_concurrency` of module {} {ZERO}",
                entry_name(entry)
            ));
        }
        const NO_TIME: &str =
            "is 0, so every call would time out before it starts; leave it out for no deadline";
        if self.runtime.default_timeout_ms == Some(0) {
            return Err(format!("`[runtime] default_timeout_ms` {NO_TIME}"));
        }
        if let Some(entry) = self
            .modules
            .iter()
            .find(|m| m.default_timeout_ms == Some(0))
        {
            return Err(format!(
                "`default_timeout_ms` of module {} {NO_TIME}",
                entry_name(entry)
            ));
        }
        const NO_LIMIT: &str =
            "is 0, so every call would time out before it starts; leave it out for no limit";
        if self.runtime.max_call_ms == Some(0) {
            return Err(format!("`[runtime] max_call_ms` {NO_LIMIT}"));
        }
        if let Some(entry) = self.modules.iter().find(|m| m.max_call_ms == Some(0)) {
            return Err(format!(
                "`max_call_ms` of module {} {NO_LIMIT}",
                entry_name(entry)
            ));
        }
        // A call whose deadline passes as the worker takes it is refused at once, but
        // "at once" is a clock tick (the worker reads the coarse clock) and a thread the
        // scheduler may set aside: with less grace, the watchdog could see such a call,
        // which never ran, past its deadline and end the worker (a client could have it
        // ended, and other clients' calls failed, with calls it sent too late).
        if self.watchdog_grace_ms < MIN_GRACE_MS {
            return Err(format!(
                "`watchdog_grace_ms` is {}: it is at least {MIN_GRACE_MS}, so that a call refused at its deadline is refused before the watchdog could take it for one that overran it",
                self.watchdog_grace_ms
            ));
        }
        Ok(())
    }

    /// [`check`](DaemonConfig::check) of what a client's connection may have: the
    /// socket's mode, connections, shared memory, threads.
    fn check_connections(&self) -> Result<(), String> {
        // A mode written in decimal (`660`) reads as other bits than meant (`0o1224`):
        // only permission bits are a socket's mode.
        if self.socket_mode > 0o777 {
            return Err(format!(
                "`socket_mode` {} is {:#o}, which holds more than permission bits (a socket's mode is at most 0o777): write those bits in octal, as `0o660`",
                self.socket_mode, self.socket_mode
            ));
        }
        // The daemon's owner connects too (`memlink call --daemon`, its own clients): a
        // Unix socket is connected to only with write permission, so a mode that denies
        // the owner writing serves no one but root.
        if self.socket_mode & 0o200 == 0 {
            return Err(format!(
                "`socket_mode` {:#o} does not let the daemon's owner write to the socket, which connecting takes, so no client of that user could connect: give it 0o200 at least, as `0o600` or `0o660`",
                self.socket_mode
            ));
        }
        if self.max_connections == 0 {
            return Err(
                "`max_connections` is 0, so every client would be refused; it is at least 1"
                    .to_owned(),
            );
        }
        // Every worker's figures table has a row per connection, made at the start and
        // written whole when a worker dies: 10^8 took 24 GB and the OOM killer, 4*10^9
        // more than a minute without serving. No kernel with default settings serves so
        // many anyway: each connection maps a segment and starts a thread in every worker,
        // and `vm.max_map_count` (65530) bounds a process's mappings.
        if self.max_connections > MAX_CONNECTIONS {
            return Err(format!(
                "`max_connections` is {}: it is at most {MAX_CONNECTIONS} (each connection maps a segment and starts a thread in every worker, which a kernel's default `vm.max_map_count`, 65530, bounds below that)",
                self.max_connections
            ));
        }
        let smallest = memlink_ipc::Geometry::new(1, 1).map_or(0, |g| g.len());
        if self.max_shm_per_client < smallest {
            return Err(format!(
                "`max_shm_per_client` is {} bytes, less than the smallest segment ({smallest} bytes: one slot of one page), so every client would be refused",
                self.max_shm_per_client
            ));
        }
        // More threads than a connection has slots would never have a call to take.
        let slots = memlink_ipc::segment::MAX_SLOTS;
        if self.threads_per_connection == 0 || self.threads_per_connection > slots {
            return Err(format!(
                "`threads_per_connection` is {}: it is 1 to {slots}, the most calls one connection has in flight",
                self.threads_per_connection
            ));
        }
        Ok(())
    }

    /// The worker processes these settings ask for, the main worker first.
    ///
    /// The main worker serves every module without a worker of its own, the watched
    /// directory, and every call naming a module no worker serves. A module names its
    /// worker with `worker`; one with `limits` and no `worker` gets a worker of its own,
    /// named for the module (its `name`, else its file's stem). A worker's limits are
    /// `[limits]` lowered by each of its modules' own.
    pub fn workers(&self) -> Result<Vec<WorkerPlan>, String> {
        self.check()?;
        let mut plans = vec![WorkerPlan {
            name: MAIN_WORKER.to_owned(),
            modules: Vec::new(),
            limits: self.limits.clone(),
        }];
        for entry in &self.modules {
            let name = match (&entry.worker, &entry.limits) {
                (Some(worker), _) => worker.clone(),
                (None, Some(_)) => entry.name.clone().unwrap_or_else(|| {
                    entry
                        .path
                        .file_stem()
                        .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
                }),
                (None, None) => MAIN_WORKER.to_owned(),
            };
            let valid = |c: char| c.is_ascii_alphanumeric() || "_.-".contains(c);
            if name.is_empty() || name.len() > 64 || !name.chars().all(valid) {
                return Err(format!(
                    "{}: a worker's name is 1 to 64 letters, digits, `_`, `.` or `-`, not {name:?}",
                    entry.path.display()
                ));
            }
            if name == MAIN_WORKER && entry.worker.is_none() && entry.limits.is_some() {
                return Err(format!(
                    "{}: a module named `{MAIN_WORKER}` with limits of its own needs `worker = \"NAME\"`: \
                     `{MAIN_WORKER}` is the worker every other module shares",
                    entry.path.display()
                ));
            }
            let at = match plans.iter().position(|p| p.name == name) {
                Some(at) => at,
                None => {
                    plans.push(WorkerPlan {
                        name,
                        modules: Vec::new(),
                        limits: self.limits.clone(),
                    });
                    plans.len() - 1
                }
            };
            let plan = &mut plans[at];
            if let Some(own) = &entry.limits {
                plan.limits = plan.limits.lowest(own);
            }
            plan.modules.push(entry.clone());
        }
        if plans.len() > MAX_WORKERS {
            return Err(format!(
                "{} worker processes asked for (the main one, and one for each `worker` named and each module with `limits` of its own and no `worker`); at most {MAX_WORKERS}: name a shared `worker` for some modules",
                plans.len()
            ));
        }
        Ok(plans)
    }

    /// The settings one worker runs with: its own modules and limits; the watched
    /// directory is the main worker's.
    pub fn for_worker(&self, plan: &WorkerPlan) -> DaemonConfig {
        DaemonConfig {
            modules: plan.modules.clone(),
            limits: plan.limits.clone(),
            watch: self.watch.clone().filter(|_| plan.name == MAIN_WORKER),
            ..self.clone()
        }
    }

    /// The worker runtime's configuration.
    pub fn runtime_config(&self) -> RuntimeConfig {
        let mut config = RuntimeConfig::default();
        let r = &self.runtime;
        if let Some(v) = r.arena_size {
            config.arena_size = v;
        }
        if let Some(v) = r.max_concurrency {
            config.max_concurrency = v;
        }
        if let Some(ms) = r.default_timeout_ms {
            config.default_timeout = Some(Duration::from_millis(ms));
        }
        if let Some(ms) = r.max_call_ms {
            config.max_call_time = Some(Duration::from_millis(ms));
        }
        if let Some(v) = r.persistent_size {
            config.persistent_size = v;
        }
        if let Some(level) = r.log_level.as_deref().and_then(|l| l.parse().ok()) {
            config.log_level = Some(level);
        }
        config
    }
}

#[cfg(test)]
mod tests;
