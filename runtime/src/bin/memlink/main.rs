//! `memlink`: inspect and call memlink modules from the command line.

use std::borrow::Cow;
use std::ffi::{OsStr, OsString};
use std::io::{IsTerminal, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};
use memlink_runtime::resolver::LocalResolver;
use memlink_runtime::{
    CallOptions, Format, Method, ModuleError, ModuleHandle, ModuleRef, Runtime, RuntimeConfig,
    RuntimeError,
};

mod json;
mod new;
mod remote;
mod serve;
mod stats;

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
    let args = Args::read(request.args, request.args_file, Some(remote::MAX_ARGS))?;
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
    let mut out = format!(
        "module {} {} ({sdk})\npath   {}\n",
        info.name,
        info.version,
        info.path.display()
    );
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
        "methods": methods,
    });
    Ok(format!("{value:#}\n"))
}

/// `--timeout`'s value: a number and its unit (`500ms`, `2s`, `1.5s`, `1m`). A unit is
/// required, since a bare `5` could be seconds or milliseconds; 0 is refused, since a
/// call given no time at all would fail before it starts.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    if text.starts_with('-') {
        return Err(format!(
            "`{text}` is negative: a timeout is a time from now, as `500ms`, `1.5s` or `1m`"
        ));
    }
    let digits = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() || fraction.contains('.') || number.ends_with('.') {
        return Err(format!(
            "`{text}` is not a duration: write a number and its unit, as `500ms`, `1.5s` or `1m`"
        ));
    }
    let unit_ns: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "" => {
            return Err(format!(
                "`{text}` has no unit: write `{text}s`, `{text}ms`, …"
            ))
        }
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}`: use ns, us, ms, s, m or h"
            ))
        }
    };
    let too_long = || format!("`{text}` is longer than a duration can be");
    // Whole nanoseconds: the digits past what a nanosecond holds are dropped.
    let mut ns = whole
        .parse::<u128>()
        .ok()
        .and_then(|w| w.checked_mul(unit_ns))
        .ok_or_else(too_long)?;
    let mut scale = unit_ns;
    for digit in fraction.bytes().map(|b| u128::from(b - b'0')) {
        scale /= 10;
        ns = ns.checked_add(digit * scale).ok_or_else(too_long)?;
    }
    if ns == 0 {
        return Err(format!(
            "a timeout of `{text}` is no time at all: every call would fail before it starts"
        ));
    }
    let secs = u64::try_from(ns / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (ns % 1_000_000_000) as u32))
}

/// A call's arguments as the command line gave them.
pub(crate) enum Args {
    /// Text: JSON for MessagePack methods, the bytes themselves for raw ones; `None`
    /// when omitted.
    Text(Option<OsString>),
    /// Encoded bytes read from a file, passed as they are.
    Encoded(Vec<u8>),
}

impl Args {
    /// The arguments: `text`, or the bytes of `file` (`-`: standard input), of at most
    /// `limit` bytes when one is given, else of at most [`STREAM_MAX_ARGS`] from what is
    /// not a regular file. Only that much (and one byte more, to tell) is read: a stream
    /// or a device (`/dev/zero`) has no length to check first, and read to its end it
    /// would fill the memory before any check.
    fn read(
        text: Option<OsString>,
        file: Option<PathBuf>,
        limit: Option<u64>,
    ) -> Result<Args, String> {
        let Some(path) = file else {
            return Ok(Args::Text(text));
        };
        let (reader, name): (Box<dyn std::io::Read>, String) = if path.as_os_str() == "-" {
            (
                Box::new(std::io::stdin().lock()),
                "standard input".to_owned(),
            )
        } else {
            let name = path.display().to_string();
            let file =
                std::fs::File::open(&path).map_err(|e| format!("cannot read {name}: {e}"))?;
            if file.metadata().is_ok_and(|m| m.is_file()) {
                return read_at_most(file, limit, &name, remote::too_long).map(Args::Encoded);
            }
            (Box::new(file), name)
        };
        match limit {
            Some(limit) => read_at_most(reader, Some(limit), &name, remote::too_long),
            None => read_at_most(reader, Some(STREAM_MAX_ARGS), &name, stream_too_long),
        }
        .map(Args::Encoded)
    }
}

/// Most bytes of arguments a local call reads from standard input, a pipe or a device:
/// as many as a call through a daemon carries.
const STREAM_MAX_ARGS: u64 = remote::MAX_ARGS;

/// Why arguments read from `name`, a stream, more than `limit` bytes are refused.
fn stream_too_long(name: &str, limit: u64) -> String {
    format!(
        "the arguments in {name} (--args-file) are more than {limit} bytes: memlink call reads \
         at most that much from standard input, a pipe or a device (a regular file is read \
         whole)"
    )
}

/// All of `reader`, or the error `too_long` words once it gives more than `limit` bytes.
fn read_at_most(
    mut reader: impl Read,
    limit: Option<u64>,
    name: &str,
    too_long: fn(&str, u64) -> String,
) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let read = match limit {
        Some(limit) => reader
            .by_ref()
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes),
        None => reader.read_to_end(&mut bytes),
    };
    read.map_err(|e| format!("cannot read {name}: {e}"))?;
    match limit {
        Some(limit) if bytes.len() as u64 > limit => Err(too_long(name, limit)),
        _ => Ok(bytes),
    }
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

/// What encoding arguments and rendering a result need to know of a method, from the
/// runtime's description or the daemon's.
pub(crate) struct Shape {
    name: String,
    args_format: Format,
    result_format: Format,
    arg_count: u16,
    args_type: Option<String>,
    result_type: Option<String>,
}

impl From<&Method> for Shape {
    fn from(m: &Method) -> Shape {
        Shape {
            name: m.name.clone(),
            args_format: m.args_format,
            result_format: m.result_format,
            arg_count: m.arg_count,
            args_type: m.args_type.as_ref().map(|t| t.name.clone()),
            result_type: m.result_type.as_ref().map(|t| t.name.clone()),
        }
    }
}

pub(crate) fn encode_args<'a>(method: &Shape, args: &'a Args) -> Result<Cow<'a, [u8]>, String> {
    let args = match args {
        // Lent as they are: a copy of a large file's bytes doubled what a call held, and
        // each call of a --repeat run made one.
        Args::Encoded(bytes) => return Ok(Cow::Borrowed(bytes)),
        Args::Text(text) => text.as_deref(),
    };
    match method.args_format {
        Format::Raw => return Ok(Cow::Borrowed(args.map_or(&[][..], OsStr::as_bytes))),
        Format::Archived => {
            let wants = method
                .args_type
                .as_ref()
                .map_or("an archive".to_owned(), |t| {
                    format!("an rkyv archive of `{t}`")
                });
            return Err(format!(
                "`{}` takes {wants}, which cannot be made from JSON: pass the archive's bytes \
                 with --args-file PATH, or call it from a host with `Runtime::archived` (which \
                 writes the archive for you)",
                method.name
            ));
        }
        _ => {}
    }
    let Some(text) = args else {
        return Ok(Cow::Borrowed(&[]));
    };
    let text = text.to_str().ok_or_else(|| {
        format!(
            "the arguments are not UTF-8, so not JSON, which `{}` takes: `{}` (pass encoded \
             bytes with --args-file PATH)",
            method.name,
            text.to_string_lossy()
        )
    })?;
    // Empty text is no arguments, as it is for a raw method (a script's `"$ARGS"` with
    // nothing in it): not JSON that ends before its value.
    if text.trim().is_empty() {
        return Ok(Cow::Borrowed(&[]));
    }
    let value = json::arguments(text).map_err(|e| match e {
        json::ArgumentsError::Json(e) => format!("arguments are not valid JSON: {e}"),
        json::ArgumentsError::KeyTwice(e) => format!("the arguments give a key twice: {e}"),
    })?;
    if let Some(number) = json::too_wide_integer(text) {
        return Err(format!(
            "the integer {number} in the arguments fits in no 64-bit integer, which is as wide \
             as MessagePack carries (-9223372036854775808 to 18446744073709551615): write it as \
             a float (`1e20`) if a float is meant"
        ));
    }
    let value = match value {
        v @ (serde_json::Value::Array(_) | serde_json::Value::Object(_)) => v,
        // `null` for a method of no arguments is none, as nil is on the wire (docs/abi.md).
        serde_json::Value::Null if method.arg_count == 0 => serde_json::Value::Array(vec![]),
        single if method.arg_count == 1 => serde_json::Value::Array(vec![single]),
        _ => {
            return Err(format!(
                "`{}` takes {} arguments: pass a JSON array or an object keyed by parameter name",
                method.name, method.arg_count
            ))
        }
    };
    rmp_serde::to_vec(&value)
        .map(Cow::Owned)
        .map_err(|e| format!("cannot encode the arguments: {e}"))
}

/// The result as it is printed: a raw one's bytes as they are (they need not be UTF-8,
/// and nothing is added to them, so that they can be written to a file or piped whole;
/// on a terminal a newline follows a result that does not end in one, where the prompt
/// would take the rest of its line), else a line of text.
pub(crate) fn render(method: &Shape, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = render_text(method, bytes)?;
    let raw = method.result_format == Format::Raw;
    if !raw || (std::io::stdout().is_terminal() && !out.ends_with(b"\n")) {
        out.push(b'\n');
    }
    Ok(out)
}

/// [`render`] without its newline.
fn render_text(method: &Shape, bytes: &[u8]) -> Result<Vec<u8>, String> {
    match method.result_format {
        Format::Raw => return Ok(bytes.to_vec()),
        Format::Archived => {
            let holds = method
                .result_type
                .as_ref()
                .map_or("a value".to_owned(), |t| format!("`{t}`"));
            // The handle that reads it is the one for the method's arguments.
            let (host, client) = match method.args_format {
                Format::Archived => ("`Runtime::archived`", "`Client::archived`"),
                _ => (
                    "`Runtime::typed` with an `Rkyv<T>` result",
                    "`Client::typed_archived`",
                ),
            };
            return Ok(format!(
                "<an rkyv archive of {holds}, {} bytes: read it from a host with {host} (a \
                 daemon's client: {client})>",
                bytes.len()
            )
            .into_bytes());
        }
        _ => {}
    }
    let json::Json(value) = memlink_abi::msgpack::from_msgpack(bytes)
        .map_err(|e| format!("the result cannot be read as MessagePack: {e}"))?;
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::{read_at_most, remote, stream_too_long};

    /// A stream is read to its limit and one byte past it, no further: here an endless
    /// one, which read whole would never end.
    #[test]
    fn a_stream_past_the_limit_is_refused_after_reading_one_byte_more() {
        let daemon = remote::too_long;
        let err = read_at_most(std::io::repeat(7), Some(16), "standard input", daemon).unwrap_err();
        assert!(
            err.contains("standard input") && err.contains("--args-file") && err.contains("16"),
            "{err}"
        );
        let err = read_at_most(&[1u8; 17][..], Some(16), "args.bin", daemon).unwrap_err();
        assert!(
            err.contains("args.bin") && err.contains("--daemon"),
            "{err}"
        );
        // A local call's stream says so, not that a daemon is involved.
        let err =
            read_at_most(std::io::repeat(7), Some(16), "/dev/zero", stream_too_long).unwrap_err();
        assert!(
            err.contains("/dev/zero") && err.contains("a regular file is read whole"),
            "{err}"
        );
        assert!(!err.contains("--daemon"), "{err}");
        assert_eq!(
            read_at_most(&[1u8; 16][..], Some(16), "args.bin", daemon).unwrap(),
            [1u8; 16]
        );
        assert_eq!(
            read_at_most(&[1u8; 17][..], None, "args.bin", daemon)
                .unwrap()
                .len(),
            17
        );
    }
}
