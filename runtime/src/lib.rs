//! # memlink-runtime
//!
//! The memlink host: loads modules built with memlink-msdk (or written in C against
//! `memlink.h`), checks their ABI and method table, owns the arenas their calls use, and
//! calls their exports by name from any number of threads. The `memlink` binary in this
//! package (feature `cli`, on by default) is its command-line face.
//!
//! The host's API:
//!
//! - [`runtime`]: the [`Runtime`], with every operation on it, and [`ModuleRuntime`];
//! - [`config`]: [`RuntimeConfig`]; [`options`]: [`CallOptions`];
//! - [`handle`]: [`ModuleHandle`] and [`MethodRef`];
//! - [`typed`]: [`TypedMethod`], calls with typed values; [`archived`]:
//!   [`ArchivedMethod`], zero-copy calls;
//! - [`args`]: [`ArgBuffer`] and [`CallArgs`], argument memory; [`output`]:
//!   [`CallOutput`], a result read in place;
//! - [`resolver`]: [`ModuleRef`] and how references become files;
//! - [`lifecycle`]: the exports a module offers for its own lifecycle (its
//!   dependencies, its state across a reload, its health);
//! - [`reload`]: [`ReloadPolicy`], what a [`Runtime::reload`] may change and carry;
//! - [`describe`]: what a module's table says of each [`Method`];
//! - [`log`], [`metrics`] and [`prometheus`]: module logs and figures, for the host;
//! - [`health`]: circuit breakers and [`Health`](health::Health) checks;
//! - [`cache`]: the result cache for methods marked pure;
//! - [`intercept`]: [`Interceptor`](intercept::Interceptor)s, host code around every call;
//! - [`admission`]: [`Saturation`], what happens to calls past a module's limit;
//! - [`error`]: the [`RuntimeError`] every operation may return;
//! - [`caller`]: [`Caller`], the call surface this runtime and `memlink-client` share;
//! - [`watch`] (feature `watch`): a directory of modules, kept loaded as it changes;
//! - [`daemon`] (feature `daemon`): `memlink serve`, modules served to other processes.
//!
//! And how a call is made, lowest layer first: [`buffer`] (aligned memory), `pool`
//! (arenas of one size) and `lease` (an arena on loan for a call), `shard` and `thread`
//! (what the runtime keeps per calling thread), `chain` (the calls a thread runs, kept
//! until it ends), `stack` (how much of a thread's stack a nested call leaves), `module`
//! (a loaded library) and `method_index` (its methods by name), `barrier` (full barriers
//! paid by the rare side)
//! and `hazard` (holding a module for a call without a locked instruction), `registry`
//! (the runtime's modules) and `locks` (the locks its loads and reloads hold while module
//! code runs, and the waits refused for closing a loop), `deadline`, `host_call` and `host_api` (the services a
//! module calls back), `backpressure`, `invoke` (one run of a method: admission, frame,
//! entry point, output), `guarded` (the same behind interceptors, the result cache and
//! the breaker) and `call` (the callers' entry points); `fork` tells a process forked
//! from one that had a runtime, which must not use what it inherited; `written` tells a
//! private copy of a module whose file was written while it was copied.
//!
//! Module logs are emitted as `tracing` events with the target `memlink::module` and the
//! fields `module`, `method`, `trace_id`, `span_id` and `fields`; install any `tracing`
//! subscriber *before* loading a module, since the module learns the level filter at load.

#![warn(missing_docs)]

pub mod admission;
pub mod archived;
pub mod args;
mod backpressure;
mod barrier;
pub mod buffer;
pub mod cache;
mod call;
pub mod caller;
mod chain;
pub mod config;
#[cfg(feature = "daemon")]
pub mod daemon;
mod deadline;
pub mod describe;
mod elf;
pub mod error;
mod fork;
mod guarded;
pub mod handle;
mod hazard;
pub mod health;
mod host_api;
mod host_call;
mod images;
pub mod intercept;
mod invoke;
mod lease;
pub mod lifecycle;
#[doc(hidden)]
pub mod linked;
mod locks;
pub mod log;
mod meta;
mod method_index;
pub mod metrics;
mod module;
mod names;
pub mod options;
pub mod output;
mod pool;
pub mod prometheus;
mod registry;
pub mod reload;
pub mod resolver;
pub mod runtime;
mod shard;
mod stack;
mod targets;
mod thread;
pub mod typed;
#[cfg(feature = "watch")]
pub mod watch;
mod written;

pub use admission::Saturation;
pub use archived::ArchivedMethod;
pub use args::{ArgBuffer, CallArgs};
pub use caller::Caller;
pub use config::{ModuleSettings, RuntimeConfig};
pub use describe::{ArchivedType, Method};
pub use error::RuntimeError;
pub use handle::{MethodRef, ModuleHandle};
pub use log::{LogEvent, LogSink};
pub use memlink_abi::{Format, ModuleError};
pub use metrics::{MethodMetrics, MetricValue, ModuleMetrics};
pub use options::CallOptions;
pub use output::CallOutput;
pub use reload::{ReloadPolicy, Reloaded};
pub use resolver::ModuleRef;
pub use runtime::{ModuleInfo, ModuleRuntime, Runtime};
pub use typed::{ArchivedOutput, Rkyv, TypedMethod, TypedResult};
