//! Shards: a thread owns one of [`SHARDS`] - 1 shards of every module's admission slots
//! and figures for its lifetime (see `crate::thread`), and threads beyond those share
//! the last. Each shard sits on cache lines of its own.

/// Shards: threads own the first `SHARDS - 1`, one each; the last is shared by any
/// thread beyond those.
pub(crate) const SHARDS: usize = 16;
/// The shard of threads that own none.
pub(crate) const SHARED: usize = SHARDS - 1;
