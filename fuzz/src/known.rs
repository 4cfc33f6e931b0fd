//! Bugs that fuzzing found, and the ones not fixed yet ([`OPEN`]).
//!
//! libFuzzer stops at the first crash, so while a bug waits for its fix every run would
//! find it again within seconds and explore nothing else. The harnesses therefore step
//! around each bug listed in [`OPEN`] (they skip the input that shows it; they never
//! accept it), unless `MEMLINK_FUZZ_STRICT` is `1` (no bug is stepped around) or names
//! the bug (comma-separated ids: hunt for those only). Each open bug keeps failing tests
//! in `tests/replay.rs`, which also replay `regressions/` strictly: the bug stays
//! visible until it is fixed. Fixing one means deleting its id from [`OPEN`].

use std::sync::OnceLock;

// The bugs fuzzing has found, by id. All are fixed (each has a regression test in
// `tests/replay.rs`); the ids stay so that the harnesses' checks name what they guard,
// and a bug that comes back can be stepped around again by listing its id in `OPEN`.

/// Found and fixed: a recursive enum nested deeper than `serialize::MAX_DEPTH` decoded
/// (rmp-serde did not count enum variants against the depth limit), and deep enough it
/// overflowed the stack. The decoder now counts every nested step.
pub const ENUM_DEPTH: &str = "enum-depth";

/// Found and fixed: a newtype around `Option<Box<Self>>` recursed forever on any non-nil
/// input (rmp-serde kept the marker across `deserialize_option`).
pub const OPTION_RECURSION: &str = "option-recursion";

/// Found and fixed: `archive::check` with `Limits { max_depth: 0, .. }` followed
/// pointers without any limit (rkyv reads a depth of `None` as "no limit"). A depth of
/// 0 now admits no pointers at all.
pub const ARCHIVE_DEPTH_ZERO: &str = "archive-depth-zero";

/// Found and fixed: `Limits::max_depth` counted rkyv subtree levels rather than nested
/// pointers, admitting `d - 2`. It now admits exactly `d` nested pointers.
pub const ARCHIVE_DEPTH_COUNT: &str = "archive-depth-count";

/// Found and fixed: an archive refused for nesting too deep was refused as "validation
/// failed: `Option` is `None`, expected `Some`". It now says the depth limit was passed.
pub const ARCHIVE_DEPTH_MESSAGE: &str = "archive-depth-message";

/// Found and fixed: a string of 16 bytes that are not UTF-8 decoded as a `u128`
/// (`from_msgpack` read a `u128` through `deserialize_any`, where rmp-serde hands such a
/// string to `visit_bytes` as it does a binary); rmp-serde alone refuses it.
pub const U128_FROM_STRING: &str = "u128-from-string";

/// Bugs found and not fixed yet.
pub const OPEN: &[&str] = &[];

/// Whether the harnesses step around the bug `id`: it is open and the run is not
/// strict about it.
pub fn tolerated(id: &str) -> bool {
    static STRICT: OnceLock<String> = OnceLock::new();
    let strict = STRICT.get_or_init(|| std::env::var("MEMLINK_FUZZ_STRICT").unwrap_or_default());
    let hunted = strict == "1" || strict.split(',').any(|s| s.trim() == id);
    OPEN.contains(&id) && !hunted
}
