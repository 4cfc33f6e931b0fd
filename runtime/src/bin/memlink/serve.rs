//! `memlink serve`, and the worker process it starts.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;

use memlink_runtime::daemon::{self, DaemonConfig, ModuleEntry, Trust};

/// Flags of `memlink serve`; they override the `--config` file's settings.
#[derive(clap::Args)]
pub struct Args {
    /// The Unix socket to serve on (created mode 0600, or the `--config` file's
    /// `socket_mode`).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// A TOML file of settings (see `docs/daemon.md`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Serve `/metrics` (Prometheus) and `/health` over HTTP at this address.
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<String>,
    /// Serve every module in this directory too, following it: a new file loads, a
    /// changed file hot-reloads, a removed file unloads.
    #[arg(long, value_name = "DIR")]
    watch: Option<PathBuf>,
    /// Whose arguments are read in place: `same-user` (default) or `nobody`.
    #[arg(long, value_parser = ["same-user", "nobody"])]
    trust: Option<String>,
    /// Modules to serve: `PATH`, or `NAME=PATH` to serve it under another name.
    modules: Vec<OsString>,
}

pub fn run(args: Args) -> Result<(), String> {
    let mut config = match &args.config {
        Some(path) => DaemonConfig::from_file(path)?,
        None => DaemonConfig::new(PathBuf::new()),
    };
    if let Some(socket) = args.socket {
        config.socket = socket;
    }
    if config.socket.as_os_str().is_empty() {
        return Err("no socket: pass --socket PATH or set `socket` in the --config file".into());
    }
    if args.metrics_addr.is_some() {
        config.metrics_addr = args.metrics_addr;
    }
    match args.trust.as_deref() {
        Some("nobody") => config.trust = Trust::Nobody,
        Some(_) => config.trust = Trust::SameUser,
        None => {}
    }
    for module in args.modules {
        config.modules.push(module_entry(module)?);
    }
    if args.watch.is_some() {
        config.watch = args.watch;
    }
    if config.modules.is_empty() && config.watch.is_none() {
        return Err(
            "no modules to serve: name them after the flags, or in the --config file, or watch a directory (--watch DIR)".into(),
        );
    }
    daemon::serve(config)
}

/// A module named on the command line: `PATH`, or `NAME=PATH` when what comes before the
/// first `=` holds no `/`. The path is taken as bytes (it need not be UTF-8); a name is
/// what clients call the module by, so it is text.
fn module_entry(module: OsString) -> Result<ModuleEntry, String> {
    let bytes = module.as_bytes();
    let Some(eq) = bytes.iter().position(|&b| b == b'=') else {
        return Ok(ModuleEntry::new(None, module));
    };
    let (name, path) = (&bytes[..eq], &bytes[eq + 1..]);
    if name.contains(&b'/') {
        return Ok(ModuleEntry::new(None, module));
    }
    let name = std::str::from_utf8(name).map_err(|_| {
        format!(
            "module name `{}` is not UTF-8: name it in UTF-8 (`NAME=PATH`)",
            String::from_utf8_lossy(name)
        )
    })?;
    Ok(ModuleEntry::new(
        Some(name.to_owned()),
        PathBuf::from(OsStr::from_bytes(path)),
    ))
}

/// Runs the worker when this process was started as one (`memlink __worker
/// --control-fd N`), and returns its exit code; `None` otherwise.
pub fn worker_if_asked() -> Option<ExitCode> {
    // `args_os`: this runs before every subcommand, whose arguments (paths among them)
    // need not be UTF-8; `args` would panic on them.
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().map(OsString::as_os_str) != Some(OsStr::new(daemon::WORKER_SUBCOMMAND)) {
        return None;
    }
    // The supervisor's own invocation is UTF-8; anything else is not one.
    let args: Option<Vec<String>> = args.into_iter().map(|a| a.into_string().ok()).collect();
    let Some(fd) = args.and_then(|args| daemon::worker_control_fd(&args)) else {
        let _ = writeln!(
            std::io::stderr(),
            "error: the worker is started by `memlink serve`, with --control-fd N"
        );
        return Some(ExitCode::FAILURE);
    };
    // SAFETY: this runs first thing in `main`, before any subcommand (which is how the
    // supervisor starts a worker): nothing in the process has taken `fd`, which the
    // supervisor handed to it alone.
    let control = match unsafe { daemon::take_worker_control(fd) } {
        Ok(control) => control,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: memlink worker: {e}");
            return Some(ExitCode::FAILURE);
        }
    };
    init_worker_logging();
    Some(match daemon::run_worker(control) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: memlink worker: {e}");
            ExitCode::FAILURE
        }
    })
}

/// The worker's own records (warnings and errors) go to the daemon's stderr, which it
/// inherits; module records, and what the watch of a directory did (each step is told
/// to the daemon as an event), are forwarded to the daemon instead, so they are not
/// written here a second time. A directory a watched link leads into that cannot be
/// followed is told in the log alone, so it is written here.
fn init_worker_logging() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = Targets::new()
        .with_default(LevelFilter::WARN)
        .with_target("memlink::module", LevelFilter::OFF)
        .with_target("memlink::panic", LevelFilter::OFF)
        .with_target("memlink::watch", LevelFilter::OFF)
        .with_target("memlink::watch::links", LevelFilter::WARN);
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    tracing_subscriber::registry().with(filter).with(fmt).init();
}
