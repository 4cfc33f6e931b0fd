//! Target `archived_call`: hostile archives through `memlink_call`, to an export that
//! reads its arguments in place (`archived_points`, see [`crate::exports`]).
//!
//! The input is one byte of misalignment (modulo 16), the arena's length (`u16`,
//! little-endian), then the argument bytes, which the harness places that many bytes
//! past a 16-byte boundary (the runtime places them on one) and passes in an otherwise
//! well-formed frame. The host's checks of `call_frames` apply, and:
//! - the status is `Ok` or `Serialize`, never a crash;
//! - a misaligned, non-empty archive is refused with the alignment message;
//! - an accepted archive is one `archive::check` accepts, and the export's digest of its
//!   fields is the harness's own (`call_frames::check_export`).

use memlink_msdk::abi::Status;
use memlink_msdk::archive::ARCHIVE_ALIGN;
use memlink_msdk::ModuleError;

use crate::archives::placed;
use crate::call_frames::{self, ArenaSpec, FrameSpec};

/// The export this target calls.
pub const EXPORT: &str = "archived_points";

/// Runs one input.
pub fn run(data: &[u8]) {
    let [misalign, lo, hi, args @ ..] = data else {
        return;
    };
    call(
        usize::from(*misalign) % ARCHIVE_ALIGN,
        u16::from_le_bytes([*lo, *hi]),
        args,
    );
}

/// Calls the export with `args` placed `misalign` bytes past a 16-byte boundary and an
/// arena of `arena` bytes.
pub fn call(misalign: usize, arena: u16, args: &[u8]) -> Status {
    let spec = FrameSpec {
        arena: ArenaSpec::Aligned(arena),
        ..FrameSpec::for_method(EXPORT)
    };
    let buf = placed(args, misalign);
    let outcome = call_frames::call(&spec, &buf[misalign..]);
    assert!(
        matches!(outcome.status, Status::Ok | Status::Serialize),
        "{EXPORT} with {} argument bytes {misalign} bytes off: {outcome:?}",
        args.len()
    );
    if misalign != 0 && !args.is_empty() {
        let refused = match outcome.error() {
            Some(ModuleError::Serialize(m)) => m.contains(&format!(
                "{misalign} bytes past a {ARCHIVE_ALIGN}-byte boundary"
            )),
            _ => false,
        };
        assert!(refused, "{EXPORT}, {misalign} bytes off: {outcome:?}");
    }
    outcome.status
}

/// Writes the bytes [`run`] decodes into these values, for seed inputs.
pub fn encode(misalign: u8, arena: u16, args: &[u8]) -> Vec<u8> {
    let mut out = vec![misalign];
    out.extend_from_slice(&arena.to_le_bytes());
    out.extend_from_slice(args);
    out
}
