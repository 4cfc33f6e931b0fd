//! One call as the generated wrapper of an export sees it: its arguments, its context and
//! where its result goes.

use core::cell::Cell;
use core::ffi::c_void;
use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use memlink_abi::msgpack::Encoded;

use crate::abi::HostApi;
use crate::archive::{self, Archivable, Checkable};
use crate::context::CallContext;
use crate::error::{ModuleError, Result};
use crate::frame_ref::FrameRef;
use crate::serialize;
use crate::serialize::primitive::{Scalar, ScalarArgs};

/// A call in progress. `#[memlink_export]` generates a function that takes one of these,
/// decodes the arguments from it, runs the export and hands it the result.
#[derive(Debug)]
pub struct Invocation<'a> {
    ctx: CallContext<'a>,
    args: &'a [u8],
    /// The running call's frame (its host's services too), where the result's place is written as soon as it is
    /// known (see `crate::frame_ref`).
    frame: FrameRef<'a>,
    /// Whether the result was set.
    produced: Cell<bool>,
    /// Whether the call's own arguments were refused (an error the export returns
    /// otherwise, a nested call's included, is not about them).
    args_refused: Cell<bool>,
    budget: Option<std::time::Duration>,
}

impl<'a> Invocation<'a> {
    /// A call with `args` in `ctx`, whose output goes to the frame's `small_out`, the
    /// arena or through the host of `frame`, and whose place is written into `frame`. `budget` is the time the host gave the call,
    /// which a timeout reports.
    ///
    /// # Safety
    ///
    /// `frame.host_call()` must be the host's handle of the running call that the frame's
    /// host expects, valid for `'a`.
    pub(crate) unsafe fn new(
        ctx: CallContext<'a>,
        args: &'a [u8],
        frame: FrameRef<'a>,
        budget: Option<std::time::Duration>,
    ) -> Invocation<'a> {
        Invocation {
            ctx,
            args,
            frame,
            produced: Cell::new(false),
            args_refused: Cell::new(false),
            budget,
        }
    }

    /// The context passed to the export.
    pub fn context(&self) -> &CallContext<'a> {
        &self.ctx
    }

    /// The MessagePack arguments, decoded into the argument struct `T`.
    #[inline]
    pub fn decode_args<T: DeserializeOwned>(&self) -> Result<T> {
        serialize::decode_args(self.args).map_err(|e| self.refused(e))
    }

    /// Checks the arguments of an export that takes none. Nothing (what the runtime
    /// sends for no arguments), nil, `[]` and `{}` are accepted without running the
    /// decoder; anything else is decoded as `T`, for its error message.
    #[inline]
    pub fn decode_no_args<T: DeserializeOwned>(&self) -> Result<()> {
        match self.args {
            [] | [0xc0] | [0x90] | [0x80] => Ok(()),
            _ => self.decode_args::<T>().map(drop),
        }
    }

    /// The arguments of an export whose parameters are all scalars, read from the plain
    /// positional form without serde; `None` for any other encoding, which the caller
    /// then decodes with [`decode_args`](Invocation::decode_args) (see
    /// [`serialize::primitive`]).
    #[inline]
    pub fn scalar_args<T: ScalarArgs>(&self) -> Option<T> {
        T::read_args(self.args)
    }

    /// The raw argument bytes, for an export whose only argument is bytes-like.
    #[inline]
    pub fn raw_bytes(&self) -> &'a [u8] {
        self.args
    }

    /// The raw argument as UTF-8, for an export whose only argument is a string.
    ///
    /// Inlined, as the other steps of the wrapper are: a step the compiler keeps out of
    /// line takes the invocation's address, and the whole invocation then lives in
    /// memory instead of in registers.
    #[inline]
    pub fn raw_str(&self) -> Result<&'a str> {
        memlink_abi::text::utf8(self.args).map_err(|e| self.refused(not_utf8(e)))
    }

    /// Encodes `value` as MessagePack and makes it the call's result: straight into the
    /// call's arena, or through a buffer from the host when it does not fit there. The
    /// value's `Serialize` runs once: what does not fit the arena is kept on the heap as
    /// it is written, not written again (a value that can be serialized only once, one
    /// draining an iterator, was an empty list the second time).
    #[inline]
    pub fn encode_result<T: Serialize + ?Sized>(&self, value: &T) -> Result<()> {
        // What the arena could not hold: the whole encoding, or why there is none.
        let mut elsewhere = None;
        let in_arena = self.ctx.arena().alloc_rest_with(16, |rest| {
            kept_in_arena(
                memlink_abi::msgpack::encode_spilling(value, rest),
                &mut elsewhere,
            )
        });
        let (ptr, len) = match (in_arena, elsewhere) {
            (Some(bytes), _) => (bytes.as_ptr(), bytes.len()),
            (None, Some(encoded)) => {
                let bytes = encoded?;
                let host = (self.frame.host_api(), self.frame.host_call());
                (write_through_host(host.0, host.1, &bytes)?, bytes.len())
            }
            // The arena had no room at all, and the value was not serialized yet.
            (None, None) => {
                encode_through_host(value, self.frame.host_api(), self.frame.host_call())?
            }
        };
        self.set_place(ptr, len);
        Ok(())
    }

    /// Makes the MessagePack of a scalar (`()`, `bool`, an integer, a float) the call's
    /// result: the bytes `rmp-serde` would write, written without it.
    #[inline(always)]
    pub fn encode_scalar_result<T: Scalar>(&self, value: T) -> Result<()> {
        let (word, len) = value.encode();
        // `Scalar` is a public trait: a length it reports past the 9 bytes of a
        // MessagePack scalar would make the result's place claim bytes that are not the
        // value's.
        if len > 9 {
            return Err(ModuleError::Serialize(format!(
                "a scalar wrote {len} bytes, more than 9"
            )));
        }
        // The bytes go into the frame's `small_out` as one store from registers, where
        // the host copies them from: no block of the arena is taken for them, and
        // nothing written a byte or two at a time is read back as a block (`crate::block`).
        self.frame.set_small_out(word, len);
        self.produced.set(true);
        Ok(())
    }

    /// Makes `bytes`, as they are, the call's result. Bytes the export built in the
    /// call's arena stay where they are: the host reads them in place. Up to 16 bytes
    /// from anywhere else are put in the frame; more are copied into the arena.
    #[inline(always)]
    pub fn encode_raw_result(&self, bytes: &[u8]) -> Result<()> {
        if !bytes.is_empty() && self.ctx.arena().contains_slice(bytes) {
            self.set_place(bytes.as_ptr(), bytes.len());
            return Ok(());
        }
        // A few bytes from elsewhere go into the frame's `small_out` as one store, as a
        // scalar does (`encode_scalar_result`).
        if (1..=crate::abi::SMALL_OUT_LEN).contains(&bytes.len()) {
            self.frame
                .set_small_out(crate::block::gather(bytes), bytes.len());
            self.produced.set(true);
            return Ok(());
        }
        self.set_output(bytes)
    }

    /// The archived arguments, validated in place (see [`crate::archive`]).
    #[inline]
    pub fn access_archived<T>(&self) -> Result<&'a T::Archived>
    where
        T: rkyv::Archive,
        T::Archived: Checkable,
    {
        archive::check::<T>(self.args, archive::limits(), "archived arguments")
            .map_err(|e| self.refused(e))
    }

    /// Archives `value` as the call's result, straight into the call's arena (through a
    /// host buffer when it does not fit).
    pub fn encode_archived_result<T: Archivable>(&self, value: &T) -> Result<()> {
        let failed = |e| ModuleError::Serialize(format!("cannot archive the result: {e}"));
        // What the arena could not hold: the whole archive, or why there is none. The
        // value is archived once (see `encode_result`).
        let mut elsewhere = None;
        let in_arena = self
            .ctx
            .arena()
            .alloc_rest_with(archive::ARCHIVE_ALIGN, |rest| {
                kept_in_arena(
                    memlink_abi::archive::to_bytes_spilling(value, rest),
                    &mut elsewhere,
                )
            });
        match (in_arena, elsewhere) {
            (Some(bytes), _) => {
                self.set_place(bytes.as_ptr(), bytes.len());
                Ok(())
            }
            (None, Some(archived)) => self.set_output(&archived.map_err(failed)?),
            // The arena had no room at all, and the value was not archived yet.
            (None, None) => {
                let bytes = memlink_abi::archive::to_bytes(value).map_err(failed)?;
                self.set_output(&bytes)
            }
        }
    }

    /// Runs an async export's future to completion (see [`crate::executor`]), or
    /// cancels it with [`ModuleError::Timeout`] when the call's deadline passes first.
    pub fn block_on<F: Future>(&self, future: F) -> Result<F::Output> {
        crate::executor::block_on_until(future, self.ctx.deadline()).ok_or_else(|| self.timed_out())
    }

    /// The error of a call that ran out of time: it carries the time the call was given.
    pub(crate) fn timed_out(&self) -> ModuleError {
        ModuleError::Timeout(self.budget.unwrap_or_default())
    }

    /// Copies `bytes` into the arena when they fit, else into a buffer from the host.
    #[inline]
    fn set_output(&self, bytes: &[u8]) -> Result<()> {
        if let Some(slot) = self.ctx.arena().alloc_copy_aligned(bytes, 16) {
            self.set_place(slot.as_ptr(), slot.len());
            return Ok(());
        }
        let ptr = write_through_host(self.frame.host_api(), self.frame.host_call(), bytes)?;
        self.set_place(ptr, bytes.len());
        Ok(())
    }

    /// Makes the `len` bytes at `out` the call's result.
    #[inline(always)]
    fn set_place(&self, out: *const u8, len: usize) {
        self.frame.set_place(out, len);
        self.produced.set(true);
    }

    /// Whether the call's result was set.
    pub(crate) fn produced(&self) -> bool {
        self.produced.get()
    }

    /// `error`, refusing the call's own arguments: noted, so that the error is told with
    /// the argument and the export's signature.
    #[cold]
    fn refused(&self, error: ModuleError) -> ModuleError {
        self.args_refused.set(true);
        error
    }

    /// Whether the call's own arguments were refused.
    pub(crate) fn args_refused(&self) -> bool {
        self.args_refused.get()
    }
}

/// `value` encoded as MessagePack on the heap and copied into a buffer from `host`: a
/// result too large for the arena, or one that failed to serialize (the heap encoding
/// then gives the error). Returns where the result is and its length.
#[cold]
fn encode_through_host<T: Serialize + ?Sized>(
    value: &T,
    host: &HostApi,
    call: *mut c_void,
) -> Result<(*const u8, usize)> {
    let mut bytes = Vec::new();
    serialize::encode_into(value, &mut bytes)?;
    let ptr = write_through_host(host, call, &bytes)?;
    Ok((ptr, bytes.len()))
}

/// What the arena keeps of a result encoded into its rest (`alloc_rest_with`): its
/// length when it fit there; else nothing, and the whole encoding, spilled to the heap,
/// or why there is none, goes to `elsewhere`.
#[inline]
fn kept_in_arena<E>(
    encoded: core::result::Result<Encoded<'_>, E>,
    elsewhere: &mut Option<core::result::Result<Vec<u8>, E>>,
) -> Option<usize> {
    match encoded {
        Ok(Encoded::Within(bytes)) => Some(bytes.len()),
        Ok(Encoded::Spilled(bytes)) => {
            *elsewhere = Some(Ok(bytes));
            None
        }
        Err(e) => {
            *elsewhere = Some(Err(e));
            None
        }
    }
}

/// The error of a string argument that is not UTF-8.
#[cold]
fn not_utf8(e: core::str::Utf8Error) -> ModuleError {
    ModuleError::Serialize(format!(
        "bad arguments: the string argument is not UTF-8: {e}"
    ))
}

/// Copies `bytes` into a buffer the host allocates for the call's output.
pub(crate) fn write_through_host(
    host: &HostApi,
    host_call: *mut c_void,
    bytes: &[u8],
) -> Result<*const u8> {
    // SAFETY: `host_call` is the running call's handle (the caller's contract), which
    // is what `alloc_output` requires.
    let dst = unsafe { (host.alloc_output)(host_call, bytes.len()) };
    if dst.is_null() {
        return Err(ModuleError::QuotaExceeded);
    }
    // SAFETY: the host returned a buffer of `bytes.len()` writable bytes that belongs
    // to this call and cannot overlap `bytes`, which the module owns.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) };
    Ok(dst)
}
