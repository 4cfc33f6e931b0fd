//! [`Caller`]: the call surface the in-process [`Runtime`] and a daemon's client
//! (`memlink-client`) share, so code written against one runs against the other.

use std::fmt::Debug;
use std::ops::Deref;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{CallOptions, CallOutput, ModuleHandle, Runtime, RuntimeError};

/// Calls modules by name: in this process ([`Runtime`]) or in a daemon's
/// (`memlink_client::Client`). Only how the caller is obtained differs.
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
    /// A module, resolved by name once.
    type Module: Copy + Debug;
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
