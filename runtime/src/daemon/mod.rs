//! The daemon: `memlink serve` serves loaded modules to other processes through shared
//! memory (see `docs/daemon.md`).
//!
//! Processes make a daemon. The **supervisor** ([`serve`]) owns the socket, the
//! connections and their segments; it never runs module code. Each **worker**
//! ([`run_worker`], the same executable started again) loads a group of modules with
//! limits of its own (one group, `main`, unless the settings ask for more; see
//! [`DaemonConfig::workers`]) and serves every connection's calls to them. A module that
//! crashes or hangs costs its worker only: the supervisor fails the calls that worker
//! was running with the reason, starts a new one, and hands it every connection, so
//! clients keep their segments and other workers' calls go on.
//!
//! | module | holds |
//! |---|---|
//! | [`config`] | the daemon's settings (command line or TOML) |
//! | `state` | what the supervisor's threads share: connections, each worker's link and figures |
//! | `supervisor` | the socket, the accept loop, a connection's life until its client hangs up |
//! | `handshake` | a client's hello checked, its row and segment given, the welcome |
//! | `stops` | the stop signals, and the accept loop woken and the socket removed |
//! | `socket_file` | the socket's lock file and the socket bound with its mode, no link followed |
//! | `workers` | the worker processes' lives: start, restart, fail their calls, the watchdog |
//! | `copies` | the directory the workers make their private copies of modules in |
//! | `orphan` | a worker whose supervisor is gone, which ends itself, bounded |
//! | `late` | when a call is late: the watchdog's rule, which an orphan applies too |
//! | `opening` | the watched files that took a worker down as it loaded them, left alone after |
//! | `stand_in` | answers a connection's calls for a worker that could not take it |
//! | `worker` | a worker process: its limits, its modules, the connections it is handed |
//! | `upward` | what a worker sends its supervisor: messages, and its modules' log records |
//! | `connection` | a connection's serving thread in a worker, and its helpers |
//! | `exposition` | the Prometheus text: every worker's, merged, and the daemon's own |
//! | `families` | the names the merges gave the workers' families, kept between scrapes |
//! | `http` | the metrics and health endpoint |
//! | `flight` | one exposition rendered for the scrapes that come together |

pub mod config;
mod connection;
mod copies;
mod exposition;
mod families;
mod flight;
mod handshake;
mod http;
mod late;
mod opening;
mod orphan;
mod socket_file;
mod stand_in;
mod state;
mod stops;
mod supervisor;
mod upward;
mod worker;
mod workers;

pub use config::{DaemonConfig, ModuleEntry, Trust, WorkerLimits, WorkerPlan, MAIN_WORKER};
pub use supervisor::serve;
pub use worker::{
    control_fd as worker_control_fd, run as run_worker, take_control_fd as take_worker_control,
};

/// The hidden subcommand of the `memlink` executable that starts a worker.
pub const WORKER_SUBCOMMAND: &str = "__worker";
