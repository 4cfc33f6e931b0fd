//! Bugs that fuzzing found and that are not fixed yet.
//!
//! libFuzzer stops at the first crash, so while a bug waits for its fix every run would
//! find it again within seconds and explore nothing else. The harnesses therefore step
//! around each bug listed in [`OPEN`] (they skip the input that shows it; they never
//! accept it), unless `MEMLINK_FUZZ_STRICT` is `1` (no bug is stepped around) or names
//! the bug (comma-separated ids: hunt for those only). Each open bug keeps failing tests
//! in `tests/replay.rs`, which also replay `regressions/` strictly: the bug stays
//! visible until it is fixed. Fixing one means deleting its id from [`OPEN`].

use std::sync::OnceLock;

/// A recursive enum nested deeper than `serialize::MAX_DEPTH` decodes (rmp-serde does
/// not count enum variants against the depth limit), and deep enough it overflows the
/// stack.
pub const ENUM_DEPTH: &str = "enum-depth";

/// A newtype around `Option<Box<Self>>` recurses forever on any non-nil input
/// (rmp-serde keeps the marker across `deserialize_option`), overflowing the stack.
pub const OPTION_RECURSION: &str = "option-recursion";

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
