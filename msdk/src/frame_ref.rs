//! The running call's frame, reached through the host's pointer for the whole call.
//!
//! The boundary reads the call's description from the frame and writes the result's
//! place into it. Both go through the one pointer the host passed, never through a
//! reference held across the call: a shared reference to the frame would forbid the
//! writes while it lives, and keeping the outcome elsewhere (a local, the invocation)
//! and copying it into the frame at the end puts two more trips through memory on the
//! path from the export's result to the host, which a call of a few dozen nanoseconds
//! feels: about 6 of 43 ns for a call with no arguments (`report --profile noop_by_id`,
//! timed over 20 and 60 million calls), against copying the result through a local.

use core::ffi::c_void;
use core::marker::PhantomData;
use core::ptr::NonNull;

use crate::abi::{CallFrame, HostApi};

/// A method per field of the frame, each reading that field through the frame's pointer.
macro_rules! read {
    ($($(#[$doc:meta])* $field:ident: $ty:ty,)*) => {
        $(
            $(#[$doc])*
            #[inline(always)]
            pub(crate) fn $field(self) -> $ty {
                // SAFETY: `FrameRef::new`'s contract: the frame is valid for reads for
                // `'a`; reading one field through the pointer makes no reference to
                // the frame.
                unsafe { (*self.frame.as_ptr()).$field }
            }
        )*
    };
}

/// The frame of the call running on this thread, for `'a`.
///
/// Not `Send` or `Sync` (it holds a raw pointer): it stays on the thread of its call.
#[derive(Clone, Copy)]
pub(crate) struct FrameRef<'a> {
    frame: NonNull<CallFrame>,
    _call: PhantomData<&'a CallFrame>,
}

impl<'a> FrameRef<'a> {
    /// The frame at `frame`.
    ///
    /// # Safety
    ///
    /// For `'a`: `frame` must be valid for reads and for writes of its `out`, `out_len`,
    /// `arena_used` and `small_out` fields, and written by no one else (the host leaves
    /// the frame alone until the call returns); no reference to the frame may be live
    /// while this pointer or a copy of it is used; and it must have passed
    /// `frame::is_sound`, so its host table is non-null and large enough.
    #[inline(always)]
    pub(crate) unsafe fn new(frame: NonNull<CallFrame>) -> FrameRef<'a> {
        FrameRef {
            frame,
            _call: PhantomData,
        }
    }

    /// The frame's address: what a recorded panic is tagged with and the call's end
    /// forgets (`crate::panic`).
    pub(crate) fn as_mut_ptr(self) -> *mut CallFrame {
        self.frame.as_ptr()
    }

    /// The host's service table, checked by `frame::is_sound`.
    #[inline(always)]
    pub(crate) fn host_api(self) -> &'a HostApi {
        // SAFETY: `new`'s contract: the frame passed `is_sound`, which found the table
        // non-null and large enough, and the host keeps it valid for the call.
        unsafe { &*self.host() }
    }

    /// Says where the call's result is (and makes the call's result present).
    #[inline(always)]
    pub(crate) fn set_place(self, out: *const u8, out_len: usize) {
        let frame = self.frame.as_ptr();
        // SAFETY: `new`'s contract: the output fields are the call's to write for `'a`,
        // through this pointer, which no reference to the frame overlaps.
        unsafe {
            (*frame).out = out;
            (*frame).out_len = out_len;
        }
    }

    /// Makes the first `len` bytes of `word` (little-endian) the call's result, written
    /// into the frame's `small_out` with one store: no block of the arena is taken, and
    /// the host copies the value out of the frame it owns.
    ///
    /// `len` is at most `SMALL_OUT_LEN`, which a `u128` holds.
    #[inline(always)]
    pub(crate) fn set_small_out(self, word: u128, len: usize) {
        debug_assert!(len <= crate::abi::SMALL_OUT_LEN);
        let frame = self.frame.as_ptr();
        // SAFETY: `new`'s contract: `small_out` and the output fields are the call's to
        // write for `'a`, through this pointer, which no reference to the frame
        // overlaps; `small_out` is 16 bytes, what `block::store` writes (at any
        // alignment).
        unsafe {
            let small = (&raw mut (*frame).small_out).cast::<u8>();
            crate::block::store(small, word);
            (*frame).out = small.cast_const();
            (*frame).out_len = len;
        }
    }

    /// Says how much of its arena the call used.
    #[inline(always)]
    pub(crate) fn set_arena_used(self, used: usize) {
        // SAFETY: as for `set_place`.
        unsafe { (*self.frame.as_ptr()).arena_used = used };
    }

    read! {
        /// The method's index in the module's table.
        method_index: u32,
        /// The method's wire id, which must match the index's.
        method_id: u32,
        /// The arguments' address (null when there are none).
        args: *const u8,
        args_len: usize,
        /// The call's scratch arena.
        arena: *mut u8,
        arena_len: usize,
        /// The time the call has, or `NO_DEADLINE`.
        timeout_ns: u64,
        trace_id: u64,
        span_id: u64,
        depth: u32,
        flags: u32,
        backpressure: f32,
        host: *const HostApi,
        host_call: *mut c_void,
        persistent: *mut u8,
        persistent_len: usize,
    }
}

impl core::fmt::Debug for FrameRef<'_> {
    /// The call's description, as a context printed with it shows it.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameRef")
            .field("method_index", &self.method_index())
            .field("method_id", &self.method_id())
            .field("depth", &self.depth())
            .field("trace_id", &self.trace_id())
            .field("span_id", &self.span_id())
            .field("args_len", &self.args_len())
            .field("arena_len", &self.arena_len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arena::Arena;
    use crate::caller::ModuleCaller;
    use crate::context::CallContext;
    use crate::request::Invocation;

    /// The boundary's use of a frame, step by step as `memlink_call` takes them: the
    /// context reads the call's description and the invocation writes the result's
    /// place, all through copies of one pointer, while both live. Miri runs it: a
    /// reference to the frame held across the call would make the writes undefined.
    #[test]
    fn a_call_reads_its_frame_and_writes_its_result_through_one_pointer() {
        #[repr(C, align(16))]
        struct Aligned([u8; 64]);
        let mut arena_bytes = Aligned([0; 64]);
        let args = [0x91u8, 0x05];
        let mut frame = crate::test_host::call_frame(&args, &mut arena_bytes.0);
        (frame.method_index, frame.method_id, frame.backpressure) = (3, 0xfeed, 0.25);
        // SAFETY: the host table is valid (a static of the tests).
        assert!(unsafe { crate::frame::is_sound(&frame) });
        // SAFETY: the frame is a local, reached only through this pointer until the
        // last use of `f`, with its regions live and apart (checked just above).
        let f = unsafe { FrameRef::new(NonNull::from(&mut frame)) };
        f.set_place(core::ptr::null(), 0);
        f.set_arena_used(0);
        assert_eq!((f.method_index(), f.method_id()), (3, 0xfeed));
        // SAFETY: the arena region is the local buffer, ours for the test.
        let arena = unsafe { Arena::new(f.arena(), f.arena_len()) };
        // SAFETY: the host table is valid; its services are never called here.
        let caller = unsafe { ModuleCaller::new(f.host(), f.host_call()) };
        // SAFETY: the frame passed the checks it would (no persistent region).
        let ctx = unsafe { CallContext::for_call(&arena, f, None, &caller) };
        // SAFETY: the call handle is never used (no service is called).
        let invocation = unsafe { Invocation::new(ctx, &args, f, None) };
        let ctx = invocation.context();
        assert_eq!((ctx.trace_id(), ctx.span_id(), ctx.call_depth()), (7, 9, 2));
        assert_eq!(ctx.backpressure(), 0.25);
        assert!(ctx.persistent().is_none());
        assert!(!invocation.produced());
        invocation.encode_scalar_result(5u32).unwrap();
        // The description is still read through the pointer after the write.
        assert_eq!(invocation.context().trace_id(), 7);
        f.set_arena_used(arena.used());
        assert!(invocation.produced());
        let (out, out_len, used) = (frame.out, frame.out_len, frame.arena_used);
        assert_eq!(out_len, 1);
        assert_eq!(used, 0, "a scalar takes no block of the arena");
        assert_eq!(
            out,
            frame.small_out.as_ptr(),
            "a scalar is put in the frame"
        );
        assert_eq!(frame.small_out[0], 0x05);
    }
}
