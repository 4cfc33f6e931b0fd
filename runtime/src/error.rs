//! Errors the runtime reports.

use std::fmt;
use std::path::PathBuf;

use memlink_abi::{Format, ModuleError};

use crate::handle::ModuleHandle;

/// What went wrong, in a form that names the module, the method and the reason.
#[derive(Debug)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A module reference that cannot name a file (empty, or a directory), or a name
    /// whose version requirement is not semver (`basic@>>1`).
    BadReference {
        /// The reference as given.
        reference: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// No file at the path.
    ///
    /// A reference without `@` is a path, a bare word a file in the current directory: a
    /// module by name is `NAME@REQUIREMENT` (`greeter@*`), found by a
    /// [`DirectoryResolver`](crate::resolver::DirectoryResolver).
    FileNotFound {
        /// The path looked at.
        path: PathBuf,
    },
    /// A watched directory went: removed, moved away or replaced by something else (see
    /// `crate::watch`).
    WatchedDirectoryGone {
        /// The directory.
        dir: PathBuf,
    },
    /// A directory cannot be watched: it cannot be read, or the platform refused to
    /// follow it (its limit of watches reached, say).
    CannotWatch {
        /// The directory.
        dir: PathBuf,
        /// Why (the system's words).
        reason: String,
    },
    /// A reference by name that no module file answers: the module has no file where
    /// its resolver looks, or none of a version the reference accepts.
    NoSuchVersion {
        /// The reference, with its requirement as semver reads it (`greeter@^1.2` for
        /// `greeter@1.2`, which means the same).
        reference: String,
        /// Where its files were looked for.
        dir: PathBuf,
        /// The versions there are, lowest first (none: the module has no file there).
        versions: Vec<String>,
        /// Files named for the module whose version is no semver version
        /// (`greeter@1.0.so`, `greeter@v1.4.2.so`): no version can be read from their
        /// names, so no reference finds them.
        passed_by: Vec<PathBuf>,
    },
    /// The file exists but is not a shared library that can be loaded safely.
    NotALibrary {
        /// The file.
        path: PathBuf,
        /// What is wrong with it (the dynamic loader's words, when it refused).
        reason: String,
    },
    /// No more module images can be mapped in this process: each one keeps what it took
    /// from the process (its thread-local keys) for good, as an image is never unmapped.
    NoRoomForImage {
        /// The file.
        path: PathBuf,
        /// What ran out.
        reason: String,
    },
    /// A shared library without the memlink entry points.
    NotAModule {
        /// The file.
        path: PathBuf,
        /// The first missing symbol.
        missing: &'static str,
    },
    /// The module speaks another version of the ABI.
    AbiMismatch {
        /// The file.
        path: PathBuf,
        /// The module's version.
        module: u32,
        /// The runtime's version.
        host: u32,
    },
    /// The module's description or method table is malformed.
    InvalidModule {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The module refused to initialize.
    InitFailed {
        /// The module's name.
        module: String,
        /// The module's message.
        message: String,
    },
    /// The file is already loaded and not unloaded: a file is loaded once in a runtime
    /// (loaded again with
    /// [`ModuleSettings::private_copy`](crate::ModuleSettings::private_copy), a copy of
    /// it loads beside it, under another name).
    AlreadyLoaded {
        /// The file.
        path: PathBuf,
        /// The name it is loaded under.
        name: String,
        /// The handle it is loaded under.
        handle: ModuleHandle,
    },
    /// Asked for from inside a call to the module (by a log sink or an interceptor while
    /// the call runs, say), what would wait for that call to end: it waits for the
    /// module's calls, that call among them.
    InsideCall {
        /// The module.
        module: String,
        /// What was asked for (`unload`, `reload`).
        action: &'static str,
    },
    /// Asked for from code a load runs before it ends (a log sink given a record the
    /// module logs from its `memlink_dependencies` export): the load holds what a load,
    /// an unload or a reload of its runtime waits for, until it returns. One of another
    /// runtime is made, unless it would wait in a loop: for a load that waits, in turn,
    /// for this one (two runtimes' sinks loading into each other from inside their
    /// loads), or for a call whose code waits for this load (an unload of a module whose
    /// running call's sink loads into this runtime).
    InsideLoad {
        /// The module being loaded.
        loading: String,
        /// What was asked for (`load`, `unload`, `reload`).
        action: &'static str,
    },
    /// A load, unload or reload asked for by host code that a reload runs (a log sink
    /// given the new version's records, say) that would wait in a loop: for a lock whose
    /// holder waits, in turn, for the reload's.
    InsideReload {
        /// The module being reloaded.
        reloading: String,
        /// What was asked for (`load`, `unload`, `reload`).
        action: &'static str,
    },
    /// A load, unload or reload asked for from inside a call to `module` (by a log sink
    /// or an interceptor while the call runs, say) that would wait in a loop: for a lock
    /// held by a thread whose unload or reload of `module` waits, in turn, for the call
    /// to end.
    InsideAwaitedCall {
        /// The module whose call runs.
        module: String,
        /// What was asked for (`load`, `unload`, `reload`).
        action: &'static str,
    },
    /// A reference by name and version that two module files answer alike (`greeter@1`
    /// with `greeter@1.4.2.so` and `libgreeter@1.4.2.so` beside it): remove or rename
    /// one.
    Ambiguous {
        /// The reference.
        reference: String,
        /// The files that answer it.
        files: Vec<PathBuf>,
    },
    /// Another loaded module has the name.
    NameTaken {
        /// The name.
        name: String,
    },
    /// The runtime cannot hold more modules.
    TooManyModules {
        /// The limit.
        limit: usize,
    },
    /// No module with the handle (never loaded here, or unloaded since).
    UnknownHandle(ModuleHandle),
    /// A handle that another runtime made (a handle, or a method resolved through one,
    /// is good only in the runtime that loaded its module).
    OtherRuntimesHandle(ModuleHandle),
    /// A runtime used in a process forked from the one that made it: the threads its
    /// calls, loads and modules depend on did not come with the fork (see
    /// [`Runtime`](crate::Runtime), "Across `fork()`"). The child makes a runtime of its own.
    Forked {
        /// The process that made the runtime.
        made_in: u32,
    },
    /// No module of that name is loaded (or served, through a daemon).
    UnknownModule {
        /// The name asked for.
        name: String,
    },
    /// A call through a daemon that failed outside the module: the daemon refused it,
    /// its reply could not be read or held (a result larger than the client's slots is
    /// dropped after the method ran), or the client could not send it (a method name
    /// too long, a segment the daemon's limit cannot grow to): `reason` says which.
    Daemon {
        /// What went wrong.
        reason: String,
    },
    /// The daemon cannot be reached: nothing listens at its socket, the connection
    /// closed, or it did not answer.
    DaemonGone {
        /// What was seen.
        reason: String,
    },
    /// A call through a daemon found every slot of its client's connection held by an
    /// output or an argument buffer not yet dropped, and no call in flight to free one,
    /// for as long as the client waits for that (`memlink_client::ClientConfig::slot_wait`).
    SlotsHeld {
        /// The connection's slots.
        slots: u32,
    },
    /// The daemon's worker process running the call died (a crash of a module, or the
    /// watchdog ending a call past its deadline); the daemon starts a new one.
    WorkerDied {
        /// How it died.
        reason: String,
    },
    /// The module has no method of that name.
    UnknownMethod {
        /// The module's name.
        module: String,
        /// The method asked for.
        method: String,
    },
    /// A method handle resolved on an earlier version of the module names a method a
    /// reload took away (the version loaded now lacks it).
    MethodRemoved {
        /// The module's name.
        module: String,
        /// The method's name, as the version it was resolved on exported it (`None`
        /// only if no version this runtime loaded said it).
        method: Option<String>,
        /// The method's id.
        id: u32,
        /// The version loaded now.
        version: String,
    },
    /// A typed or archived handle resolved on an earlier version of the module names a
    /// method a reload (allowed to change exports) changed: its arguments' or result's
    /// format or archive type, or the signature the module records, is no longer the one
    /// the handle checked when it was made.
    MethodChanged {
        /// The module's name.
        module: String,
        /// The method.
        method: String,
        /// The version loaded now.
        version: String,
        /// The method's signature in that version, when the module records it.
        signature: Option<String>,
    },
    /// The module is running as many calls as it may, and the runtime is set to refuse
    /// more (`Saturation::Reject`).
    Saturated {
        /// The module's name.
        module: String,
        /// The method asked for.
        method: String,
        /// The module's concurrency limit.
        limit: usize,
    },
    /// The method ran and returned an error (or panicked).
    Call {
        /// The module's name.
        module: String,
        /// The method.
        method: String,
        /// The module's error.
        error: ModuleError,
    },
    /// A typed archived call passed (or expected) a type other than the method's.
    TypeMismatch {
        /// The module's name.
        module: String,
        /// The method.
        method: String,
        /// The type the module's method table names.
        expected: String,
        /// The type the caller used.
        got: String,
    },
    /// A typed handle was asked for a method whose arguments or result are in a format
    /// that handle cannot encode or decode (a MessagePack handle for a method that takes
    /// an archive, say).
    WrongFormat {
        /// The module's name.
        module: String,
        /// The method.
        method: String,
        /// Whether it is the arguments (`"arguments"`) or the result (`"result"`).
        part: &'static str,
        /// The method's format for that part.
        format: Format,
        /// What to use instead.
        instead: &'static str,
    },
    /// The module declares that it calls a module that is not loaded (see
    /// `crate::lifecycle`).
    MissingDependency {
        /// The module refused.
        module: String,
        /// What it needs, as it names it (`greeter@^1`).
        dependency: String,
    },
    /// A reload was refused; the old version serves on.
    ReloadRefused {
        /// The module's name.
        module: String,
        /// Why.
        reason: String,
    },
    /// A reference by name led to a file whose module is not what it asked for: another
    /// module, or a version the requirement does not match (the file's name says one
    /// thing, the module it holds another).
    WrongFile {
        /// The reference, as given.
        reference: String,
        /// The file it led to.
        path: PathBuf,
        /// The module the file holds: its own name and version.
        found: String,
    },
    /// A reload was given a file of another module: a reload takes a version of the
    /// same module (its own name, as its file declares it); the old version serves on.
    OtherModule {
        /// The module's name.
        module: String,
        /// The name the module in the file has.
        found: String,
        /// The module's own name, which the file's module lacks.
        expected: String,
    },
    /// A handle or buffer of another daemon client (or one its client never issued), used
    /// with this one: what [`UnknownHandle`](RuntimeError::UnknownHandle) is to a runtime.
    ForeignHandle {
        /// The handle or buffer, as it prints.
        handle: String,
        /// Why it is refused, and what to use instead.
        reason: &'static str,
    },
    /// A setting no connection, runtime or module could work with, refused before
    /// anything was asked of a daemon or a module's library was opened.
    BadSetting {
        /// The setting (`ClientConfig::slots`, `ModuleSettings::name = ""`).
        setting: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A typed call could not encode its arguments or decode the result.
    Codec {
        /// The module's name.
        module: String,
        /// The method.
        method: String,
        /// What went wrong.
        reason: String,
    },
}

impl RuntimeError {
    /// The same error, naming `to` where it named the file at `from` (a reload loads a
    /// private copy of the file the host named): in its path, and in its reason (the
    /// dynamic loader's words name the file it opened).
    pub(crate) fn for_path(mut self, from: &std::path::Path, to: &std::path::Path) -> Self {
        use RuntimeError::*;
        match &mut self {
            NotALibrary { path, reason }
            | InvalidModule { path, reason }
            | NoRoomForImage { path, reason }
                if path == from =>
            {
                to.clone_into(path);
                let (from, to) = (from.to_string_lossy(), to.to_string_lossy());
                *reason = reason.replace(&*from, &to);
            }
            NotAModule { path, .. } | AbiMismatch { path, .. } if path == from => {
                to.clone_into(path);
            }
            _ => {}
        }
        self
    }

    /// The module's error, when the call reached the module and it failed.
    pub fn module_error(&self) -> Option<&ModuleError> {
        match self {
            RuntimeError::Call { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use RuntimeError::*;
        match self {
            BadReference { reference, reason } => {
                write!(f, "bad module reference `{reference}`: {reason}")
            }
            CannotWatch { dir, reason } => {
                write!(f, "cannot watch {}: {reason}", dir.display())
            }
            WatchedDirectoryGone { dir } => write!(
                f,
                "the watched directory {} is gone (removed, moved away or replaced by \
                 something else): modules whose files were removed first (as `rm -r` \
                 removes them) are unloaded, the others stay loaded, and the watch resumes \
                 when a directory is there again",
                dir.display()
            ),
            NoSuchVersion {
                reference,
                dir,
                versions,
                passed_by,
            } if versions.is_empty() => {
                write!(
                    f,
                    "no file of the module `{reference}` asks for in {} (a module's files are named `NAME@VERSION.so`)",
                    dir.display()
                )?;
                passed_over(f, passed_by)
            }
            NoSuchVersion {
                reference,
                versions,
                passed_by,
                ..
            } => {
                write!(
                    f,
                    "no version of the module matches `{reference}`: there are {}",
                    versions.join(", ")
                )?;
                passed_over(f, passed_by)?;
                if let Some((name, pre)) = passed_prerelease(reference, versions) {
                    write!(
                        f,
                        " ({pre} is a prerelease, which a requirement matches only when it \
                         names a prerelease of the same version: `{name}@={pre}`, \
                         `{name}@>={pre}`)"
                    )?;
                }
                Ok(())
            }
            FileNotFound { path } => {
                write!(f, "no module file at {}", path.display())?;
                // A bare word is a file in the current directory, not a module's name.
                let bare = path.extension().is_none() && path.components().count() == 1;
                if bare {
                    let word = path.display();
                    write!(
                        f,
                        " (a bare word is a file in this directory: give the library's path, as \
                         `./lib{word}.so`; a module by name, `{word}@*`, needs a resolver that \
                         keeps modules by name)"
                    )?;
                }
                // `my_module.so` where cargo wrote `libmy_module.so`.
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !bare && name.ends_with(".so") && !name.starts_with("lib") {
                    let cargo = name.replace('-', "_");
                    write!(f, " (cargo names a module's library `lib{cargo}`)")?;
                }
                Ok(())
            }
            NotALibrary { path, reason, .. } => {
                write!(f, "{} is not a loadable shared library: {reason}", path.display())
            }
            NoRoomForImage { path, reason } => {
                write!(f, "cannot load {}: {reason}", path.display())
            }
            NotAModule { path, missing } => write!(
                f,
                "{} is not a memlink module: it does not export `{missing}` (build it as a cdylib with memlink-msdk, or, in C, define what include/memlink.h declares)",
                path.display()
            ),
            AbiMismatch { path, module, host } => {
                write!(
                    f,
                    "{} was built for memlink ABI {module}, this runtime speaks ABI {host}: rebuild the module against the memlink-msdk of this runtime's memlink (in C, its include/memlink.h)",
                    path.display()
                )?;
                // A module newer than the host may rather call for a newer host.
                if module > host {
                    f.write_str(", or run it with a runtime of the module's memlink")?;
                }
                Ok(())
            }
            InvalidModule { path, reason } => {
                write!(f, "{} is not a valid memlink module: {reason}", path.display())
            }
            InitFailed { module, message } => {
                write!(f, "module `{module}` failed to initialize: {message}")
            }
            AlreadyLoaded { path, name, handle } => write!(
                f,
                "{} is already loaded as `{name}` (handle {handle})",
                path.display()
            ),
            InsideCall { module, action } => write!(
                f,
                "cannot {action} `{module}` from inside a call to it"
            ),
            InsideLoad { loading, action } => write!(
                f,
                "cannot {action} a module from inside the load of `{loading}`"
            ),
            InsideReload { reloading, action } => write!(
                f,
                "cannot {action} a module from inside the reload of `{reloading}`"
            ),
            InsideAwaitedCall { module, action } => write!(
                f,
                "cannot {action} a module from inside a call to `{module}`: it would wait, \
                 through other threads, for an unload or reload of `{module}` that waits for \
                 this call"
            ),
            Ambiguous { reference, files } => {
                write!(f, "`{reference}` is ambiguous: ")?;
                for (i, file) in files.iter().enumerate() {
                    let sep = if i == 0 { "" } else { " and " };
                    write!(f, "{sep}{}", file.display())?;
                }
                write!(f, " are the same version of the module: remove or rename one")
            }
            NameTaken { name } => write!(f, "a module named `{name}` is already loaded"),
            TooManyModules { limit } => write!(f, "the runtime holds at most {limit} modules"),
            UnknownHandle(h) => write!(f, "no loaded module with handle {h}"),
            OtherRuntimesHandle(h) => write!(
                f,
                "handle {h} is another runtime's: a handle is good only in the runtime that \
                 loaded its module"
            ),
            Forked { made_in } => write!(
                f,
                "this runtime was made by process {made_in}, which this one was forked from: \
                 a forked child cannot use it (the threads its calls, loads and modules \
                 rely on did not come with the fork); make a `Runtime` of the child's own"
            ),
            UnknownModule { name } => write!(f, "no module named `{name}` is loaded"),
            Daemon { reason } => write!(f, "call through the daemon failed: {reason}"),
            DaemonGone { reason } => write!(f, "the daemon cannot be reached: {reason}"),
            SlotsHeld { slots } => write!(
                f,
                "every one of the client's {slots} slots is held by an output or an argument \
                 buffer not yet dropped, and no call in flight would free one: drop one, or \
                 connect with more slots (ClientConfig::slots)"
            ),
            WorkerDied { reason } => {
                write!(f, "the daemon's worker running the call died: {reason}")
            }
            // The name as the caller gave it, which may hold anything: control characters
            // shown escaped, so the message stays one line.
            UnknownMethod { module, method } => {
                write!(f, "module `{module}` has no method `{}`", method.escape_debug())
            }
            MethodRemoved { module, method, id, version } => {
                match method {
                    Some(name) => write!(f, "module `{module}` has no method `{name}` any more")?,
                    None => write!(f, "module `{module}` has no method of id {id:#010x} any more")?,
                }
                write!(f, ": a reload to version {version} removed it")
            }
            MethodChanged { module, method, version, signature } => {
                // A reload in process; through a daemon, a reload or a restart of it.
                write!(f, "{module}::{method} changed since this handle was made: the module is now version {version}")?;
                if let Some(signature) = signature {
                    write!(f, " (now `{signature}`)")?;
                }
                write!(
                    f,
                    ": the handle was made for the earlier version's arguments and result; make it again"
                )
            }
            Saturated { module, method, limit } => write!(
                f,
                "{module}::{method} refused: the module is saturated (at its limit of {})",
                in_flight(*limit)
            ),
            Call { module, method, error } => write!(f, "{module}::{method} failed: {error}"),
            WrongFormat { module, method, part, format, instead } => {
                // `part` is "arguments" or "result": one verb for each.
                let verb = if part.ends_with('s') { "are" } else { "is" };
                write!(
                    f,
                    "{module}::{method}: its {part} {verb} {}, which this handle does not speak: {instead}",
                    format.name()
                )
            }
            TypeMismatch { module, method, expected, got } => write!(
                f,
                "{module}::{method}: type mismatch: the module's archive holds `{expected}`, the caller's `{got}`"
            ),
            // A module that names itself answers its own name, at its own version: what
            // is missing then is another version, or a requirement it meets.
            MissingDependency { module, dependency }
                if dependency.split_once('@').is_some_and(|(name, _)| name == module) =>
            {
                write!(
                    f,
                    "module `{module}` calls `{dependency}`, its own name at a version this one \
                     is not, and no such version is loaded: load one first, or declare a \
                     requirement its own version meets"
                )
            }
            MissingDependency { module, dependency } => write!(
                f,
                "module `{module}` calls `{dependency}`, which is not loaded: load it first"
            ),
            ReloadRefused { module, reason } => {
                write!(f, "reload of module `{module}` refused: {reason}")
            }
            WrongFile {
                reference,
                path,
                found,
            } => write!(
                f,
                "`{reference}` led to {}, which holds {found}: a module file's name must give \
                 its module's own name and version",
                path.display()
            ),
            OtherModule {
                module,
                found,
                expected,
            } => write!(
                f,
                "reload of module `{module}` refused: the file holds module `{found}`, not a \
                 version of `{expected}` (load it beside instead)"
            ),
            ForeignHandle { handle, reason } => write!(f, "{handle} is not this client's: {reason}"),
            BadSetting { setting, reason } => write!(f, "bad setting `{setting}`: {reason}"),
            Codec { module, method, reason } => write!(f, "{module}::{method}: {reason}"),
        }
    }
}

// Every variant prints what it carries (the module's error, the loader's reason), so
// none returns it again as a source: a reporter walking the chain would print it twice.
impl std::error::Error for RuntimeError {}

/// Names the files a resolver passed by for a version that is no semver version, if any.
fn passed_over(f: &mut fmt::Formatter<'_>, files: &[PathBuf]) -> fmt::Result {
    if files.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    write!(
        f,
        "; passed by, their version being no semver version (MAJOR.MINOR.PATCH, as in \
         `NAME@1.4.2.so`): {}",
        named.join(", ")
    )
}

/// The name and the highest of `versions` that `reference` (`name@requirement`) passed
/// by only for being a prerelease (`^2` and `2.0.0-rc.1`: Cargo's rule), if any: what a
/// reader of "no version matches `greeter@^2`: there are 2.0.0-rc.1" would ask about.
#[cold]
fn passed_prerelease<'a>(reference: &'a str, versions: &[String]) -> Option<(&'a str, String)> {
    let (name, requirement) = reference.split_once('@')?;
    let requirement = crate::names::parse_requirement(requirement).ok()?;
    versions.iter().rev().find_map(|v| {
        let mut release = semver::Version::parse(v).ok()?;
        if release.pre.is_empty() {
            return None;
        }
        release.pre = semver::Prerelease::EMPTY;
        requirement.matches(&release).then(|| (name, v.clone()))
    })
}

/// `n` calls in flight, in words: "1 call in flight", "2 calls in flight".
pub(crate) fn in_flight(n: usize) -> String {
    let calls = if n == 1 { "call" } else { "calls" };
    format!("{n} {calls} in flight")
}
