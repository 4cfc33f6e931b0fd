//! Target `archive_access`: any bytes, checked as an archive of each archived argument
//! type the examples use (`(Vec<Point>,)`, `(Vec<Point>, f32)`, `(String, Vec<u8>)`,
//! `(Chain,)`, and this crate's `(Vec<Point>, String)`) with
//! `memlink_msdk::archive::check`, copied to a 16-byte boundary as the host places them.
//!
//! Checked for every input and every type (see [`crate::archives`]): failures are
//! `Serialize` with a reason; a validated archive is read in full, every byte inside the
//! buffer (under AddressSanitizer, a read outside it also aborts); it deserializes and
//! archives again to the same fields; the size limit, the depth limit and a misaligned
//! start (1 to 15 bytes off) on the same input are refused with their messages, and a
//! limit only ever refuses more.

use crate::archives::{examine_all, Probes};

/// Runs one input.
pub fn run(data: &[u8]) {
    examine_all(data, Probes::All);
}
