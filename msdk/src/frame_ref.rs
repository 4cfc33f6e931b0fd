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
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameRef<'a> {
    frame: NonNull<CallFrame>,
    _call: PhantomData<&'a CallFrame>,
}

impl<'a> FrameRef<'a> {
    /// The frame at `frame`.
    ///
    /// # Safety
    ///
    /// For `'a`: `frame` must be valid for reads and for writes of its `out`, `out_len`
    /// and `arena_used` fields, written by no one else, and reached through no reference
    /// (every access goes through this pointer or copies of it); and it must have passed
    /// `frame::is_sound`, so its host table is non-null and large enough.
    #[inline(always)]
    pub(crate) unsafe fn new(frame: NonNull<CallFrame>) -> FrameRef<'a> {
        FrameRef {
            frame,
            _call: PhantomData,
        }
    }

    /// The frame's address: for a reference made once nothing else reaches the frame
    /// (the call is over), or kept by a description of the call.
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
    pub(crate) fn set_output(self, out: *const u8, out_len: usize) {
        let frame = self.frame.as_ptr();
        // SAFETY: `new`'s contract: the output fields are the call's to write for `'a`,
        // through this pointer, which no reference to the frame overlaps.
        unsafe {
            (*frame).out = out;
            (*frame).out_len = out_len;
        }
    }

    /// Says how much of its arena the call used.
    #[inline(always)]
    pub(crate) fn set_arena_used(self, used: usize) {
        // SAFETY: as for `set_output`.
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
