//! Target `call_frames`: `memlink_call` with frames built from arbitrary input.
//!
//! The input is a [`FrameSpec`] (decoded with `arbitrary`) followed by the argument
//! bytes. The spec varies everything the ABI says the module must check (frame size,
//! method index and id, a null host or one whose service table is too short, and for
//! each memory region (arguments, arena, persistent region) a null pointer with a
//! non-zero length, a length past `isize::MAX`, a range that wraps around the address
//! space, the alignment, and regions that overlap) and everything it must cope with
//! (deadlines, depth, backpressure, a host that refuses output buffers, a persistent
//! region or none). Every pointer the harness claims is valid is valid for the bytes it
//! really has: a length that lies (past `isize::MAX`, or wrapping) is one of the things
//! the module must refuse before it reads a byte.
//!
//! After each call the harness checks what a host relies on: the status is a known
//! `Status`; output lies in the arena, at the start of the host's output buffer or (a
//! result of at most 16 bytes) in the frame's `small_out`; an
//! error payload decodes to the same variant; a frame the ABI calls malformed is
//! refused with `Abi` (or `InvalidMethod` for the method) and a message naming one of
//! its faults, without a byte written to its arena or persistent region; the arguments
//! are unchanged and nothing outside the arena was written; plus what each export
//! promises.

mod checks;
mod frame;
mod problems;
mod spec;

use arbitrary::{Arbitrary, Unstructured};
use memlink_msdk::abi::Status;

use self::frame::Memory;
use self::problems::problems;
pub use self::spec::{
    encode, AllocSpec, ArenaSpec, ArgsSpec, DepthSpec, FrameSpec, HostSpec, PersistentSpec, Size,
    Target, TimeoutSpec, OVERSIZED_ARENA_BACKING, PERSISTENT_LEN,
};
use crate::host::{self, Outcome, Place};

/// Runs one input: a spec, then the argument bytes.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(spec) = FrameSpec::arbitrary(&mut u) else {
        return;
    };
    let args = u.take_rest();
    call(&spec, args);
}

/// Builds the frame `spec` describes, calls `memlink_call` and checks the outcome.
pub fn call(spec: &FrameSpec, args: &[u8]) -> Outcome {
    let table = host::methods();
    let mut memory = Memory::new(spec);
    let (mut frame, sent) = frame::build(spec, table, args, &mut memory);
    let problems = problems(&frame);
    let resolved = table.get(sent.index as usize).filter(|m| m.id == sent.id);
    if problems.is_empty() && resolved.is_some_and(|m| !crate::exports::callable(&m.name)) {
        return host::Outcome {
            status: Status::Ok,
            output: Vec::new(),
            place: Place::Empty,
        };
    }
    let (args_ptr, args_real) = (sent.args_ptr, sent.args_real);
    // SAFETY: `args_ptr` is valid for reads of `args_real` bytes: the argument bytes,
    // or bytes of the arena (alive in `memory` until the end of this function), or none.
    let args_before = unsafe { copy_of(args_ptr, args_real) };
    // SAFETY: the frame keeps the host's promises wherever the ABI leaves the module
    // nothing to check: `args` (when non-null) points to bytes that stay unchanged, the
    // arena (when non-null) to bytes nobody else uses, the persistent region (when
    // non-null) to zeroed bytes that start with a header and live until after the call,
    // `host` is null or a static, and `host_call` is null or a `HostCall` alive on this
    // stack (in `memory`). What the module is required to check is left to it: null
    // pointers with a length, misaligned regions, lengths past `isize::MAX` or past the
    // end of the address space (which cover more than the real bytes behind them),
    // overlapping regions, a short frame and a short host table.
    let status = unsafe { host::call_running(&raw mut frame) };
    let outcome = host::collect(status, &frame, memory.arena.as_ref(), &memory.host_call);
    // SAFETY: as for `args_before`; the call has returned.
    let args_after = unsafe { copy_of(args_ptr, args_real) };
    checks::check_unharmed(&frame, &memory, &args_before, &args_after);
    let output_refused = sent.call_ptr.is_null() || memory.host_call.refused > 0;
    host::check_error_decodes(&outcome, output_refused);

    if !problems.is_empty() {
        // SAFETY: the arena's real bytes, alive in `memory.arena`; the call has returned.
        let arena_after = sent
            .real_arena
            .map(|(ptr, len)| unsafe { copy_of(ptr, len) });
        let arena_after = arena_after.as_deref();
        checks::check_refused(&problems, &frame, &outcome, &memory, &sent, arena_after);
        return outcome;
    }
    checks::check_answered(resolved, &frame, &sent, args, &outcome, output_refused);
    outcome
}

/// A copy of `len` bytes at `ptr`.
///
/// # Safety
///
/// `ptr` must be valid for reads of `len` bytes (any pointer when `len` is 0).
unsafe fn copy_of(ptr: *const u8, len: usize) -> Vec<u8> {
    if len == 0 {
        return Vec::new();
    }
    // SAFETY: the caller's contract; `len` is non-zero, so `ptr` is a real pointer.
    unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec()
}
