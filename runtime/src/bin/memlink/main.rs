//! `memlink`: inspect and call memlink modules from the command line.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};
use memlink_runtime::resolver::LocalResolver;
use memlink_runtime::{
    CallOptions, ModuleError, ModuleHandle, ModuleRef, Runtime, RuntimeConfig, RuntimeError,
};

mod args;
mod json;
mod new;
mod remote;
mod serve;
mod shape;
mod stats;

use args::{parse_timeout, Args};
use shape::{encode_args, render, Shape};

#[derive(Parser)]
#[command(name = "memlink", version, about = "Inspect and call memlink modules")]
struct Cli {
    /// Show module logs on stderr: -v info, -vv debug, -vvv trace (errors and warnings
    /// always show, unless a daemon's `[runtime] log_level` keeps fewer: the stricter of
    /// the two holds); with `call --daemon`, the daemon's log has them instead.
    #[arg(short, long, action = ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List a module's methods: their signatures, ids and formats; or, with --daemon,
    /// what a daemon serves.
    Inspect {
        /// Path of the module's shared library; with --daemon, the name the daemon
        /// serves a module under (every module it serves when left out).
        #[arg(required_unless_present = "daemon")]
        module: Option<OsString>,
        /// Print the same as JSON, for tools.
        #[arg(long)]
        json: bool,
        /// Load this module first, for the module to call (repeatable; each is loaded
        /// after the ones it calls).
        #[arg(long = "with", value_name = "PATH", conflicts_with = "daemon")]
        with: Vec<OsString>,
        /// List what the daemon serving on this socket serves now: its modules (or
        /// MODULE alone) and their methods. The daemon does not tell methods' ids, nor
        /// whether they are async (but by their signatures), nor modules' versions or
        /// files.
        #[arg(long, value_name = "SOCKET")]
        daemon: Option<PathBuf>,
        /// With --daemon: wait this long at most for the daemon's answers (`500ms`,
        /// `2s`; 10 s unless given).
        // A negative value reaches the parser, which says what is wrong with it, rather
        // than being taken for an unknown flag.
        #[arg(long, value_name = "DURATION", value_parser = parse_timeout, requires = "daemon", allow_negative_numbers = true)]
        timeout: Option<Duration>,
    },
    /// Call a method and print its result.
    ///
    /// MessagePack methods take JSON: an array of the arguments (`[2, 3]`), an object
    /// keyed by parameter name (`{"a": 2, "b": 3}`), or, for a method with one argument,
    /// that argument alone (`7`); an array or object is always read as the arguments, so
    /// one argument that is itself a list or a struct goes inside one (`[[1, 2, 3]]`,
    /// `{"user": {"id": 1}}`). Raw methods take the text as it is and print their
    /// result's bytes as they are (nothing added to them, but a newline on a terminal or
    /// before the figures of --stats or --prometheus).
    Call(CallArgs),
    /// Serve modules to other processes through shared memory (the memlink daemon).
    ///
    /// Runs in the foreground and logs to stderr; SIGTERM or SIGINT stop it after the
    /// calls in flight finish. Modules run in a worker process that is started again if
    /// a module crashes it.
    Serve(serve::Args),
    /// Make a workspace for a new module: the module, the types it shares with its
    /// hosts, and a host with a test that builds the module and calls it.
    New(new::Args),
}

/// `memlink call`'s arguments.
#[derive(clap::Args)]
struct CallArgs {
    /// Path of the module's shared library.
    module: OsString,
    /// Name of the method.
    method: String,
    /// The arguments (JSON, or text for raw methods); none if omitted or empty.
    // Hyphen values: a negative number (`-5`) or text that starts with `-` are arguments,
    // not flags (`-hello` was read as `-h`, printed the help and exited 0 without a
    // call); memlink's own flags (`-v`, `--stats`) stay flags.
    #[arg(conflicts_with = "args_file", allow_hyphen_values = true)]
    // `OsString`: a raw method's text is bytes, which need not be UTF-8 (JSON must be, and
    // is checked when it is read as JSON).
    args: Option<OsString>,
    /// Read the arguments' encoded bytes from this file (`-`: standard input) and pass
    /// them as they are: an rkyv archive for a method that takes one, MessagePack, or
    /// raw bytes. With --daemon at most 1 GiB (a call's slot) is read, and more is
    /// refused; without, all of a regular file, which the module is lent where it lies,
    /// and at most 1 GiB of standard input, a pipe or a device.
    #[arg(long, value_name = "PATH")]
    args_file: Option<PathBuf>,
    /// Call this many times, at least once (the result printed is the last one's; the
    /// first call that fails ends the run, and its error is printed).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..), allow_negative_numbers = true)]
    repeat: u32,
    /// Give each call this long (`500ms`, `1.5s`, `1m`; units `ns`, `us`, `ms`, `s`, `m`,
    /// `h`): the call's deadline, which a method reads from its context. A call past it
    /// fails with the runtime's timeout error: an async method is cancelled there, a sync
    /// one cannot be stopped and fails once it returns (with --daemon, the wait for it
    /// ends at the deadline, and so do the waits for the daemon's welcome and for the
    /// module's method list, which come first; without --timeout those two wait 10 s).
    // A negative value reaches the parser (see `inspect`'s).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout, allow_negative_numbers = true)]
    timeout: Option<Duration>,
    /// Print a table of the exports called afterwards (on standard output, after the
    /// result): calls, errors by status, latency (median, 99th percentile, maximum) and
    /// bytes in and out.
    #[arg(long)]
    stats: bool,
    /// Print the runtime's and the module's metrics as Prometheus text afterwards (on
    /// standard output, after the result).
    #[arg(long)]
    prometheus: bool,
    /// Call through the daemon serving on this socket: MODULE is then the name the
    /// daemon serves the module under, and its logs go to the daemon's log (`memlink
    /// serve -v`), not to this stderr, whatever -v says.
    #[arg(long, value_name = "SOCKET")]
    daemon: Option<PathBuf>,
    /// With --daemon: room for a result of this many bytes. The call's slot holds the
    /// larger of its arguments and this (1 MiB unless given; at most 1 GiB, and at most
    /// what the daemon's `max_shm_per_client` allows a connection, 256 MiB by default); a
    /// larger result is dropped after the method ran, and the error says what to do.
    #[arg(long, value_name = "BYTES", requires = "daemon")]
    result_bytes: Option<u64>,
    /// Load this module first, for the module to call (repeatable; each is loaded
    /// after the ones it calls).
    #[arg(long = "with", value_name = "PATH")]
    with: Vec<OsString>,
}

fn main() -> ExitCode {
    if let Some(code) = serve::worker_if_asked() {
        return code;
    }
    let cli = Cli::parse();
    let named_remotely = match &cli.command {
        Command::Call(CallArgs {
            module,
            daemon: Some(_),
            ..
        }) => Some(module),
        Command::Inspect {
            module: Some(module),
            daemon: Some(_),
            ..
        } => Some(module),
        _ => None,
    };
    if let Some(module) = named_remotely {
        if module.to_str().is_none() {
            // A usage error, like clap's own for other arguments that are not UTF-8.
            Cli::command()
                .error(
                    clap::error::ErrorKind::InvalidUtf8,
                    format!(
                        "with --daemon, MODULE is the name the daemon serves it under, which is UTF-8; `{}` is not",
                        module.to_string_lossy()
                    ),
                )
                .exit();
        }
    }
    // The daemon reports what it does at info level unless asked for more.
    let floor = u8::from(matches!(cli.command, Command::Serve(_)));
    init_logging(cli.verbose.max(floor));
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // Not `eprintln!`: a stderr that cannot be written to would make it panic.
            // On one line, its control characters escaped: an error often quotes a
            // module's text (a failure's message, a panic's), which the module may have
            // from its caller, and a terminal would run an escape sequence in it, or show
            // a line break in it as a line of the command's own.
            let message = memlink_runtime::log::OneLine(&message);
            let _ = writeln!(std::io::stderr(), "error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Writes `bytes` to stdout and flushes them: an error (a full disk, a reader that went
/// away, as with `| head -1`) is reported, not a panic as `print!` would make it.
pub(crate) fn write_out(bytes: &[u8]) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| format!("cannot write the output: {e}"))
}

pub(crate) fn init_logging(verbose: u8) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let level = match verbose {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    };
    // A failed call is reported on one line already; the runtime's own record of a caught
    // panic is shown only when asked for more.
    let panics = if verbose == 0 {
        LevelFilter::OFF
    } else {
        LevelFilter::ERROR
    };
    let filter = Targets::new()
        .with_default(level)
        .with_target("memlink::panic", panics);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    tracing_subscriber::registry().with(filter).with(fmt).init();
}

fn run(command: Command) -> Result<(), String> {
    // Every call is timed, so `--stats` reports the calls made, not a sample of them.
    let config = RuntimeConfig::default().latency_sampling(1);
    let runtime = Runtime::new(config, LocalResolver);
    match command {
        Command::Inspect {
            module,
            json,
            daemon: Some(socket),
            timeout,
            ..
        } => {
            let module = module.as_deref().map(OsStr::to_string_lossy);
            let timeout = timeout.unwrap_or(remote::SETUP_TIMEOUT);
            write_out(remote::inspect(&socket, module.as_deref(), json, timeout)?.as_bytes())
        }
        Command::Inspect {
            module, json, with, ..
        } => {
            // Required by the arguments' rules unless --daemon is given.
            let module = module.ok_or("no module given")?;
            let handle = load_with(&runtime, &with, &module)?;
            let text = if json {
                inspect_json(&runtime, handle)
            } else {
                inspect(&runtime, handle)
            };
            write_out(text.map_err(|e| e.to_string())?.as_bytes())
        }
        Command::Call(mut request) => match request.daemon.take() {
            Some(socket) => call_remote(&socket, request),
            None => call_local(&runtime, request),
        },
        Command::Serve(args) => serve::run(args),
        Command::New(args) => new::run(args),
    }
}

/// `memlink call --daemon SOCKET`: calls through the daemon serving on `socket`, where
/// `request.module` is the name it serves the module under.
fn call_remote(socket: &Path, request: CallArgs) -> Result<(), String> {
    if request.stats || request.prometheus {
        return Err("--stats and --prometheus read the runtime in this process; read a daemon's from its --metrics-addr".into());
    }
    if !request.with.is_empty() {
        return Err("--with loads modules in this process; a daemon calls the modules it serves (list them in its configuration)".into());
    }
    let module = request.module.to_string_lossy();
    // A file too large to send is refused before it is read.
    if let Some(len) = request
        .args_file
        .as_ref()
        .and_then(|path| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .filter(|&len| len > remote::MAX_ARGS)
    {
        return Err(remote::too_large(len));
    }
    let args = Args::read(
        request.args,
        request.args_file,
        Some((remote::MAX_ARGS, remote::too_long)),
    )?;
    // One connection for the run: a --repeat run times calls, not connections.
    let remote = remote::Remote::connect(
        socket,
        (&module, &request.method),
        &args,
        request.result_bytes,
        request.timeout,
    )?;
    let mut out = Vec::new();
    for _ in 0..request.repeat {
        out = remote.call(request.timeout)?;
    }
    write_out(&out)
}

/// `memlink call` without `--daemon`: loads the module into `runtime` and calls it here,
/// then prints the result and the figures asked for.
fn call_local(runtime: &Runtime, request: CallArgs) -> Result<(), String> {
    let handle = load_with(runtime, &request.with, &request.module)?;
    // No limit on a regular file: the arguments are lent to the module where they are
    // read, as long as memory holds them, and a method may take any length. A stream or
    // a device has no end to count on (`/dev/zero`), and is read up to a limit.
    let args = Args::read(request.args, request.args_file, None)?;
    let calls = (0..request.repeat).try_fold(Vec::new(), |_, _| {
        call(runtime, handle, &request.method, &args, request.timeout)
    });
    let mut text = Vec::new();
    if let Ok(out) = &calls {
        text.extend_from_slice(out);
    }
    // A raw result is written as it is, with no newline of its own; the figures after it
    // start on a line of their own (a Prometheus reader needs `# HELP` at a line's start).
    if (request.stats || request.prometheus) && !text.is_empty() && !text.ends_with(b"\n") {
        text.push(b'\n');
    }
    // The figures are printed after a failed call too: they count the failure.
    if request.stats {
        text.extend_from_slice(stats::table(&runtime.metrics(), &request.method).as_bytes());
    }
    if request.prometheus {
        text.extend_from_slice(runtime.prometheus().as_bytes());
    }
    let written = write_out(&text);
    // A failed call is the error to report, written or not.
    calls?;
    written
}

/// What a load's error `e` tells the user. A module that calls one not loaded is told how
/// to give it; and when the one loaded under that name is of a version the call does not
/// admit (`greeter@^1` with greeter 3.0.0 given by `--with`), that is said: "not loaded,
/// give its file" alone sent the user to give again the file they gave.
fn missing(runtime: &Runtime, e: &RuntimeError) -> String {
    if let RuntimeError::FileNotFound { path } = e {
        return with_rlib_hint(e, path);
    }
    let RuntimeError::MissingDependency { dependency, .. } = e else {
        return e.to_string();
    };
    let (name, requirement) = dependency
        .split_once('@')
        .unwrap_or((dependency.as_str(), ""));
    let loaded: Vec<String> = runtime
        .modules()
        .into_iter()
        .filter(|(_, info)| info.name == name)
        .map(|(_, info)| info.version)
        .collect();
    if loaded.is_empty() || requirement.is_empty() {
        return format!("{e} (give its file with --with PATH)");
    }
    // A version that is not semver ("1.0", which a C module may well give) is admitted
    // by no requirement: saying `^1` does not admit 1.0 would send the user looking for
    // another file, where the module's own version is what to fix.
    let unversioned: Vec<&str> = loaded
        .iter()
        .filter(|v| semver::Version::parse(v).is_err())
        .map(String::as_str)
        .collect();
    if !unversioned.is_empty() {
        return format!(
            "{e}; `{name}` {} is loaded, which is no semver version (MAJOR.MINOR.PATCH, \
             as `1.0.0`) and so admitted by no requirement (give it such a version, or \
             call `{name}` without one)",
            unversioned.join(", ")
        );
    }
    format!(
        "{e}; `{name}` {} is loaded, which `{requirement}` does not admit (give the file of a \
         version it admits with --with PATH)",
        loaded.join(", ")
    )
}

/// `e`, a missing `path`, with a word on the Rust library beside it when there is one
/// (`libmylib.rlib` where `libmylib.so` was asked for): the crate was built without
/// `crate-type = ["cdylib"]`, which "no module file" alone does not say.
fn with_rlib_hint(e: &RuntimeError, path: &Path) -> String {
    let rlib = path.with_extension("rlib");
    if path.extension().is_some() && rlib.is_file() {
        return format!(
            "{e} ({} is there: a module's crate is built as a shared library, with \
             `crate-type = [\"cdylib\"]` under `[lib]` in its Cargo.toml)",
            rlib.display()
        );
    }
    e.to_string()
}

fn load_ref(runtime: &Runtime, module: &OsStr) -> Result<ModuleHandle, RuntimeError> {
    let reference = match module.to_str() {
        Some(text) => ModuleRef::parse(text)?,
        // A file name need not be UTF-8 on Linux; a module's name (`name@version`) is, so
        // anything else is a path.
        None => ModuleRef::from_path(module),
    };
    runtime.load(reference)
}

/// Loads the modules of `--with` and the `main` one, each after the modules it calls,
/// whatever order they are given in: each round loads every module whose calls are
/// loaded, until all are, or a round loads none, whose first refusal is the error. The
/// main module's handle. (The main module is among them: a `--with` module that calls
/// it was refused before, told to give with `--with` the file given already.)
fn load_with(runtime: &Runtime, with: &[OsString], main: &OsStr) -> Result<ModuleHandle, String> {
    let mut pending: Vec<&OsStr> = with.iter().map(OsString::as_os_str).collect();
    pending.push(main);
    let mut handle = None;
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = None;
        let mut error = None;
        pending.retain(|module| match load_ref(runtime, module) {
            Ok(h) => {
                if std::ptr::eq(*module, main) {
                    handle = Some(h);
                }
                false
            }
            Err(e @ RuntimeError::MissingDependency { .. }) => {
                waiting.get_or_insert(e);
                true
            }
            Err(e) => {
                error.get_or_insert(e);
                true
            }
        });
        // A round that loaded nothing would load nothing again.
        let stuck = pending.len() == before;
        if let Some(e) = error.or(waiting.filter(|_| stuck)) {
            return Err(missing(runtime, &e));
        }
    }
    handle.ok_or_else(|| "the module was not loaded".to_owned())
}

fn inspect(runtime: &Runtime, handle: ModuleHandle) -> Result<String, RuntimeError> {
    let info = runtime.module_info(handle)?;
    let methods = runtime.methods(handle)?;
    // What built it: the SDK's version for a Rust module, a C module's text of its own.
    let sdk = match info.sdk_version.parse::<semver::Version>() {
        Ok(_) => format!("memlink-msdk {}", info.sdk_version),
        Err(_) => format!("sdk: {}", info.sdk_version),
    };
    // The path escaped as a log line's text is: a newline in a file's name (any byte but
    // `/` and NUL may be in one) would print a line of its own, an escape a terminal's.
    let path = info.path.to_string_lossy();
    let mut out = format!(
        "module {} {} ({sdk})\npath   {}\n",
        info.name,
        info.version,
        memlink_runtime::log::OneLine(&path)
    );
    // Said only of such a module: the usual one's panics fail their calls, as documented.
    if info.aborts_on_panic {
        out += "panics end the process: built with panic = \"abort\"\n";
    }
    out += &format!("{} methods:\n", methods.len());
    out += &format!(
        "  {:<24} {:<10} {:<8} {:<8} {:>4}  {:<5}  signature\n",
        "name", "id", "args", "result", "argc", "kind"
    );
    for m in &methods {
        out += &format!(
            "  {:<24} {:#010x} {:<8} {:<8} {:>4}  {:<5}  {}\n",
            m.name,
            m.id,
            m.args_format.name(),
            m.result_format.name(),
            m.arg_count,
            if m.is_async { "async" } else { "sync" },
            m.signature.as_deref().unwrap_or("(not recorded)")
        );
    }
    Ok(out)
}

/// What `inspect` prints, as one JSON object (and a newline).
fn inspect_json(runtime: &Runtime, handle: ModuleHandle) -> Result<String, RuntimeError> {
    let info = runtime.module_info(handle)?;
    let archive = |t: &Option<memlink_runtime::ArchivedType>| {
        t.as_ref().map(|t| {
            serde_json::json!({ "type": t.name, "fingerprint": format!("{:#018x}", t.fingerprint) })
        })
    };
    let methods: Vec<serde_json::Value> = runtime
        .methods(handle)?
        .iter()
        .map(|m| {
            serde_json::json!({
                "name": m.name,
                "id": m.id,
                "signature": m.signature,
                "args": m.args_format.name(),
                "result": m.result_format.name(),
                "arg_count": m.arg_count,
                "async": m.is_async,
                "args_type": archive(&m.args_type),
                "result_type": archive(&m.result_type),
            })
        })
        .collect();
    let value = serde_json::json!({
        "module": info.name,
        "version": info.version,
        "sdk_version": info.sdk_version,
        // JSON text is UTF-8 and a path need not be (serializing one that is not fails):
        // one that is not is written with U+FFFD for the bytes that are not, as the text
        // listing shows it.
        "path": info.path.to_string_lossy(),
        "aborts_on_panic": info.aborts_on_panic,
        "methods": methods,
    });
    Ok(format!("{value:#}\n"))
}

fn call(
    runtime: &Runtime,
    handle: ModuleHandle,
    method: &str,
    args: &Args,
    timeout: Option<Duration>,
) -> Result<Vec<u8>, String> {
    let methods = runtime.methods(handle).map_err(|e| e.to_string())?;
    let Some(m) = methods.iter().find(|m| m.name == method) else {
        // Let the runtime word the error, naming the module.
        return runtime
            .call(handle, method, b"")
            .map(|_| Vec::new())
            .map_err(|e| e.to_string());
    };
    let shape = Shape::from(m);
    let encoded = encode_args(&shape, args)?;
    // Each call of a --repeat run has the whole timeout: its deadline is taken as it starts.
    let options = match timeout {
        Some(timeout) => CallOptions::default().timeout(timeout),
        None => CallOptions::default(),
    };
    let out = runtime
        .call_with(handle, method, &encoded, &options)
        .map_err(|e| match &e {
            // A nested call to a module this run did not load: the run loads only what
            // it is given.
            RuntimeError::Call {
                error: ModuleError::ModuleNotFound(name),
                ..
            } => format!(
                "{e} (a module this one calls is loaded with --with PATH: `{name}` was not)"
            ),
            // The method asked for is there (looked up above): a call it made named one
            // its callee lacks, which the error, with no payload, does not say.
            RuntimeError::Call {
                error: ModuleError::InvalidMethod,
                ..
            } => format!("{e} (the method is there: most likely a module-to-module call it made named a method its callee lacks)"),
            _ => e.to_string(),
        })?;
    render(&shape, &out)
}
