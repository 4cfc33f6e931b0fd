//! The daemon: `memlink serve` serves loaded modules to other processes through shared
//! memory (see `docs/daemon.md`).
//!
//! Two processes make a daemon. The **supervisor** ([`serve`]) owns the socket, the
//! connections and their segments; it never runs module code. The **worker**
//! ([`run_worker`], the same executable started again) loads the modules and serves
//! every connection's slots. A module that crashes or hangs costs the worker: the
//! supervisor fails the calls that were running with the reason, starts a new worker,
//! and hands it every connection, so clients keep their segments.
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | the daemon's settings (command line or TOML) |
//! | `supervisor` | the socket, handshakes, connections, the worker's life, the watchdog |
//! | `worker` | the worker process: modules, and a thread serving each connection |
//! | `http` | the metrics and health endpoint |

pub mod config;
mod http;
mod supervisor;
mod worker;

pub use config::{DaemonConfig, ModuleEntry, Trust, WorkerLimits};
pub use supervisor::serve;
pub use worker::run as run_worker;

/// The hidden subcommand of the `memlink` executable that starts a worker.
pub const WORKER_SUBCOMMAND: &str = "__worker";
