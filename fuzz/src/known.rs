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

/// `archive::check` with `Limits { max_depth: 0, .. }` follows pointers without any
/// limit: it passes `NonZeroUsize::new(0)`, which is `None`, and rkyv reads `None` as
/// "no limit". A deep archive (a long `Chain`) then overflows the stack during
/// validation. (`set_limits` clamps 0 to 1, so the module-wide limit is not affected.)
pub const ARCHIVE_DEPTH_ZERO: &str = "archive-depth-zero";

/// `Limits::max_depth` is documented as the deepest nesting of pointers, but counts rkyv
/// subtree levels: the root is one, and rkyv refuses the push that brings the count to
/// 0. So `max_depth: d` admits pointers nested `d - 2` deep: 1 refuses every archive,
/// 2 every archive with a vector or string, and the default 128 admits 126.
pub const ARCHIVE_DEPTH_COUNT: &str = "archive-depth-count";

/// An archive refused for nesting deeper than the depth limit is refused as
/// "validation failed: `Option` is `None`, expected `Some`": rancor prints the trace that
/// names the cause ("pushed a subtree range that exceeded the maximum subtree depth")
/// only in alternate form, and `check` does not ask for it.
pub const ARCHIVE_DEPTH_MESSAGE: &str = "archive-depth-message";

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
