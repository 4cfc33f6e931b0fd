//! Calls from one module to another, through the host.

use core::ffi::c_void;
use std::fmt;

use crate::abi::{Format, HostApi, NestedCall, Status, StrRef, NESTED_TYPED};
use crate::error::{ModuleError, Result};

/// Calls other modules loaded in the same host. Get one from
/// [`CallContext::module_caller`](crate::CallContext::module_caller).
///
/// The nested call runs on the calling thread, through the host, which gives the callee
/// the caller's trace id, the time left before the caller's deadline and a call depth one
/// deeper (the host refuses calls past its depth limit with
/// [`ModuleError::MaxCallDepthExceeded`]).
pub struct ModuleCaller {
    host: *const HostApi,
    call: *mut c_void,
}

impl ModuleCaller {
    /// A caller for the host call `call`.
    ///
    /// # Safety
    ///
    /// `host` must point to a [`HostApi`] whose `call_module` is valid, and `call` must be
    /// the host's handle of a call that is running on this thread and outlives the
    /// caller.
    pub(crate) unsafe fn new(host: *const HostApi, call: *mut c_void) -> ModuleCaller {
        ModuleCaller { host, call }
    }

    /// The host's load on the running call's module (`HostApi::backpressure`).
    pub(crate) fn backpressure(&self) -> f32 {
        // SAFETY: `new`'s contract: `host` is a valid `HostApi` (the module checked its
        // size at init, so `backpressure` is within it) and `call` is this thread's
        // running call.
        unsafe { ((*self.host).backpressure)(self.call) }
    }

    /// Calls `method` of the module loaded under the name `module` with encoded `args`
    /// and returns its encoded result.
    ///
    /// Errors: [`ModuleError::ModuleNotFound`] for an unknown module,
    /// [`ModuleError::InvalidMethod`] for an unknown method, the callee's own error, or
    /// [`ModuleError::CallFailed`] when the host cannot make the call.
    pub async fn call(&self, module: &str, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        self.call_blocking(module, method, args)
    }

    /// [`call`](ModuleCaller::call) without a future, for sync exports.
    pub fn call_blocking(&self, module: &str, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        self.send(module, method, args, 0).map(|(out, _)| out)
    }

    /// Calls `method` of `module` with typed arguments and result, encoded and decoded as
    /// the callee's formats require (as the host's `call_typed` does):
    ///
    /// ```no_run
    /// # use memlink_msdk::prelude::*;
    /// # fn f(ctx: &CallContext) -> Result<u32> {
    /// let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    /// let sum: u32 = caller.call_typed("basic", "add", &(2u32, 3u32))?;
    /// # Ok(sum) }
    /// ```
    pub fn call_typed<A, R>(&self, module: &str, method: &str, args: &A) -> Result<R>
    where
        A: serde::Serialize + ?Sized,
        R: serde::de::DeserializeOwned,
    {
        // Arguments that fit are encoded on the stack (not zeroed: the encoder writes
        // every byte it hands back): nothing is allocated for them.
        let mut stack = [core::mem::MaybeUninit::uninit(); 256];
        let heap;
        let packed = match memlink_abi::msgpack::encode_as_into_uninit(
            Format::MessagePack,
            args,
            &mut stack,
        ) {
            Some(bytes) => bytes,
            None => {
                heap = crate::serialize::to_msgpack(args)?;
                &heap[..]
            }
        };
        let (out, format) = self.send(module, method, packed, NESTED_TYPED)?;
        let format = Format::from_u8(format)
            .ok_or_else(|| ModuleError::Abi(format!("unknown result format {format}")))?;
        memlink_abi::msgpack::decode_as(format, &out)
    }

    fn send(&self, module: &str, method: &str, args: &[u8], flags: u32) -> Result<(Vec<u8>, u8)> {
        let mut out: Vec<u8> = Vec::new();
        let mut request = NestedCall {
            size: size_of::<NestedCall>() as u32,
            flags,
            module: StrRef::new(module),
            method: StrRef::new(method),
            args: args.as_ptr(),
            args_len: args.len(),
            sink: collect_output,
            sink_ctx: (&raw mut out).cast(),
            result_format: Format::MessagePack as u8,
        };
        // SAFETY: `new`'s contract makes `host` valid while this call runs; `request`
        // and `out` live on this stack frame until `call_module` returns, which is the
        // only time the host may use them.
        let code = unsafe { ((*self.host).call_module)(self.call, &mut request) };
        match Status::from_code(code) {
            Some(Status::Ok) => Ok((out, request.result_format)),
            _ => Err(ModuleError::from_status(code, &out)),
        }
    }
}

/// The sink handed to the host: copies the callee's output into the `Vec` at `ctx`.
unsafe extern "C" fn collect_output(ctx: *mut c_void, ptr: *const u8, len: usize) {
    if ctx.is_null() || (ptr.is_null() && len > 0) {
        return;
    }
    // SAFETY: `ctx` is the `&mut Vec<u8>` that `call_blocking` passed, alive and not
    // otherwise borrowed while the host runs; the host guarantees `len` readable bytes at
    // `ptr` for the duration of this function.
    unsafe {
        let out = &mut *ctx.cast::<Vec<u8>>();
        if len > 0 {
            let bytes = core::slice::from_raw_parts(ptr, len);
            // The host hands the output over once: allocated at its size, without the
            // growth path an empty `Vec` takes on `extend_from_slice`.
            if out.is_empty() {
                *out = bytes.to_vec();
            } else {
                out.extend_from_slice(bytes);
            }
        }
    }
}

impl fmt::Debug for ModuleCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleCaller").finish_non_exhaustive()
    }
}
