//! The zero-copy (rkyv) vs MessagePack set: not measured yet, it comes with its own
//! issue. This is where its operations go, so that the report and a criterion bench
//! (`benches/zero_copy.rs`, registered in Cargo.toml) share them, like [`crate::fixture`].
//!
//! The report keys it will fill:
//!
//! - `zero_copy_1kib_ns`, `zero_copy_64mib_ns`: a call whose archived argument is read in
//!   place (validated, not copied);
//! - `msgpack_64mib_ns`: the same data through MessagePack;
//! - `log_validate_ns`, `log_msgpack_decode_ns`: the `log` set of
//!   rust_serialization_benchmark (10,000 records), validated as an archive vs decoded.

use crate::measure::Config;
use crate::report::Report;

/// The keys of this set, in the order the report prints them.
pub const KEYS: &[&str] = &[
    "zero_copy_1kib_ns",
    "zero_copy_64mib_ns",
    "msgpack_64mib_ns",
    "log_validate_ns",
    "log_msgpack_decode_ns",
];

/// Measures the zero-copy set into `report`. Records nothing until the set exists.
pub fn figures(report: &mut Report, cfg: &Config) {
    let _ = (report, cfg);
}
