//! # memlink-client
//!
//! Calls the modules a memlink daemon (`memlink serve`) serves, from another process,
//! through shared memory: arguments are written into a segment the daemon maps, read
//! there by the module (validated, and copied first unless the daemon trusts this
//! client), and the result is read where the daemon wrote it: its bytes in place, what
//! is decoded from it (MessagePack, a checked archive) from a private copy, as the
//! daemon's workers, where modules run, map the segment too.
//!
//! The call surface is the in-process runtime's: the same [`Caller`] trait, the same
//! [`CallOptions`] (deadline, trace ids) and the same [`RuntimeError`] values, plus
//! [`RuntimeError::DaemonGone`], [`RuntimeError::WorkerDied`] and
//! [`RuntimeError::Daemon`]: a request the daemon's shared memory cannot carry (a module
//! or method name past 64 bytes, a result larger than the connection's slots) or that a
//! worker could not serve, saying why. Code written against `Caller` runs against a
//! `Runtime` or a [`Client`]; only how the caller is made differs, and what
//! [`Caller`]'s docs list.
//!
//! A call blocks the calling thread until its result comes, or its deadline passes (the
//! wait ends there): from async code (a tokio service), call where blocking is allowed
//! (`tokio::task::spawn_blocking`, or `tokio::task::block_in_place` on a multi-thread
//! runtime), not straight on an executor's worker.
//!
//! ```no_run
//! use memlink_client::Client;
//!
//! let client = Client::connect("/run/memlink.sock")?;
//! let basic = client.module("basic")?;
//! let sum: u32 = client.call_typed(basic, "add", &(2u32, 3u32))?;
//! assert_eq!(sum, 5);
//! let echoed = client.call(basic, "echo", b"hello")?;
//! assert_eq!(&*echoed, b"hello");
//! # Ok::<(), memlink_client::RuntimeError>(())
//! ```
//!
//! | module | holds |
//! |---|---|
//! | [`client`] | [`Client`], its settings, connecting and reconnecting, calls by name |
//! | [`output`] | [`RemoteOutput`] (a result read in place) and [`ArgSlot`] (arguments written in place) |
//! | [`typed`] | typed handles: [`RemoteTyped`] (serde values), [`RemoteArchived`] (archives), [`RemoteArchivedDecoded`] (archived arguments, a serde result) and [`RemoteTypedArchived`] (serde arguments, an archived result) |
//! | [`batch`] | [`Batch`]: many calls submitted with one wakeup |
//! | `send` | how a typed or archived handle's call reaches the daemon: its arguments written into a slot, or apart, and sent once more when the daemon never took it |
//! | `error` | how the daemon's failures become [`RuntimeError`]s |

#![warn(missing_docs)]

pub mod batch;
pub mod client;
mod error;
pub mod output;
mod send;
pub mod typed;

pub use batch::Batch;
pub use client::{Client, ClientConfig, RemoteModule};
pub use memlink_ipc::control::MethodInfo;
pub use memlink_runtime::{CallOptions, Caller, ModuleError, RuntimeError};
pub use output::{ArgSlot, RemoteOutput, SlotReply};
pub use typed::{
    ArchivedReply, RemoteArchived, RemoteArchivedDecoded, RemoteTyped, RemoteTypedArchived,
};
