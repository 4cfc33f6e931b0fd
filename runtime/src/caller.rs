//! [`Caller`]: the call surface the in-process [`Runtime`] and a daemon's client
//! (`memlink-client`) share, so code written against one runs against the other.

use std::fmt::Debug;
use std::hash::Hash;
use std::ops::Deref;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{CallOptions, CallOutput, ModuleHandle, Runtime, RuntimeError};

/// Calls modules by name: in this process ([`Runtime`]) or in a daemon's
/// (`memlink_client::Client`). Only how the caller is obtained differs: the same call
/// gives the same result, or the same error, from either, but for what the daemon's
/// shared memory adds (documented on the client):
///
/// - an output of a client is read in place in one of its connection's slots
///   (`ClientConfig::slots`, 8 by default) until it drops: a thread that holds that many
///   outputs waits for one to drop before its next call starts, until the call's
///   deadline, or until no call has been in flight for `ClientConfig::slot_wait` (5 s by
///   default), when it fails with [`RuntimeError::SlotsHeld`]. Drop or copy outputs
///   before making more calls than that
///   (`client/tests/calls.rs::a_client_holding_an_output_in_every_slot_waits_for_one_to_drop`).
/// - a result larger than a client's slots (`ClientConfig::slot_size`, 1 MiB at first)
///   fails its call with [`RuntimeError::Daemon`] saying so, after the method ran; the
///   slots grow for the calls after it.
/// - a call past its deadline returns at the deadline through a client; in this process
///   a method that does not stop at the deadline is waited for, then reported as timed
///   out. Both give `ModuleError::Timeout`.
/// - a module or method name is at most 64 bytes through a client (what a call's slot
///   carries): a longer one fails with [`RuntimeError::Daemon`] saying so, and a daemon
///   serves no module under one, where a [`Runtime`] loads (`Runtime::load_as`) and
///   calls a module under a longer name, and calls an export of a longer name.
///
/// ```no_run
/// use memlink_runtime::{Caller, RuntimeError};
///
/// fn sum(caller: &impl Caller) -> Result<u32, RuntimeError> {
///     let basic = caller.module("basic")?;
///     let echoed = caller.call(basic, "echo", b"hi")?;
///     assert_eq!(&*echoed, b"hi");
///     caller.call_typed(basic, "add", &(2u32, 3u32))
/// }
/// ```
pub trait Caller {
    /// A module, resolved by name once. It can be shared with other threads, and kept as
    /// a key, as both callers' handles can.
    type Module: Copy + Debug + Eq + Hash + Send + Sync;
    /// A call's encoded result.
    type Output<'c>: Deref<Target = [u8]>
    where
        Self: 'c;

    /// The module loaded (or served) under `name`.
    fn module(&self, name: &str) -> Result<Self::Module, RuntimeError>;

    /// Calls `method` with encoded `args` and per-call `options` (deadline, trace ids).
    fn call_with<'c>(
        &'c self,
        module: Self::Module,
        method: &str,
        args: &[u8],
        options: &CallOptions,
    ) -> Result<Self::Output<'c>, RuntimeError>;

    /// Calls `method` with encoded `args` and the default options.
    fn call<'c>(
        &'c self,
        module: Self::Module,
        method: &str,
        args: &[u8],
    ) -> Result<Self::Output<'c>, RuntimeError> {
        self.call_with(module, method, args, &CallOptions::default())
    }

    /// Calls `method` with typed arguments, encoded for its format, and decodes the
    /// result as `R`; the formats are checked as for `Runtime::typed`.
    fn call_typed<A, R>(
        &self,
        module: Self::Module,
        method: &str,
        args: &A,
    ) -> Result<R, RuntimeError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned;

    /// How loaded the module is, in `[0, 1]` (see `Runtime::backpressure`).
    fn backpressure(&self, module: Self::Module) -> Result<f32, RuntimeError>;
}

/// The error [`Caller::module`] gives for `name` when it can name no module however the
/// modules change (empty, holding a control character, a requirement after its `@`
/// that is not semver), worded as [`Runtime::handle_of`] words it; `None` for a name
/// that could name one. `memlink-client` refuses such a name with it, before asking its
/// daemon, so both callers give the same error.
#[doc(hidden)]
pub fn malformed_module_name(name: &str) -> Option<RuntimeError> {
    crate::names::malformed(name).map(|reason| RuntimeError::BadReference {
        reference: name.to_owned(),
        reason,
    })
}

impl Caller for Runtime {
    type Module = ModuleHandle;
    type Output<'c> = CallOutput;

    fn module(&self, name: &str) -> Result<ModuleHandle, RuntimeError> {
        self.handle_of(name)
    }

    fn call_with(
        &self,
        module: ModuleHandle,
        method: &str,
        args: &[u8],
        options: &CallOptions,
    ) -> Result<CallOutput, RuntimeError> {
        Runtime::call_with(self, module, method, args, options)
    }

    fn call_typed<A, R>(
        &self,
        module: ModuleHandle,
        method: &str,
        args: &A,
    ) -> Result<R, RuntimeError>
    where
        A: Serialize + ?Sized,
        R: DeserializeOwned,
    {
        Runtime::call_typed::<A, R>(self, module, method, args)
    }

    fn backpressure(&self, module: ModuleHandle) -> Result<f32, RuntimeError> {
        Runtime::backpressure(self, module)
    }
}
