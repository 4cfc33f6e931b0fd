//! # memlink-runtime
//!
//! The memlink host: loads modules built with memlink-msdk, checks their ABI and method
//! table, owns the arenas their calls use, and calls their exports by name from any
//! number of threads. The `memlink` binary in this package is its command-line face.
//!
//! - [`runtime`] — the [`Runtime`], the [`ModuleRuntime`] trait, handles;
//! - [`resolver`] — [`ModuleRef`] and how references become files;
//! - [`module`] — a loaded module and its method table;
//! - [`zero_copy`] — archived arguments written once into the module's arena;
//! - [`call`] — the call path and [`CallOutput`];
//! - [`arena`] — host-owned arena memory;
//! - [`admission`] — concurrency limits, saturation and backpressure;
//! - [`log`] and [`metrics`] — module logs and figures, for the host;
//! - [`error`] — [`RuntimeError`].
//!
//! Module logs are emitted as `tracing` events with the target `memlink::module` and the
//! fields `module`, `method`, `trace_id`, `span_id` and `fields`; install any `tracing`
//! subscriber *before* loading a module, since the module learns the level filter at load.

#![warn(missing_docs)]

pub mod admission;
pub mod arena;
pub mod call;
mod elf;
pub mod error;
#[doc(hidden)]
pub mod linked;
pub mod log;
pub mod metrics;
pub mod module;
pub mod resolver;
pub mod runtime;
pub mod zero_copy;

pub use admission::Saturation;
pub use call::CallOutput;
pub use error::RuntimeError;
pub use log::{LogEvent, LogSink};
pub use memlink_msdk::abi::Format;
pub use memlink_msdk::ModuleError;
pub use metrics::{MethodMetrics, MetricValue, ModuleMetrics};
pub use module::Method;
pub use resolver::ModuleRef;
pub use runtime::{CallOptions, MethodRef, ModuleHandle, ModuleRuntime, Runtime, RuntimeConfig};
pub use zero_copy::{ArchivedMethod, ArgBuffer};
