//! Benchmarks of memlink's hot paths, next to the limits and the alternatives (see
//! README.md in this directory).
//!
//! The criterion benches (`benches/*.rs`) and the one-run report (`src/bin/report.rs`)
//! both measure the operations defined in [`fixture`], so a figure means the same in
//! both places.

pub mod alloc_count;
pub mod boundary;
pub mod daemon;
pub mod figures;
pub mod fixture;
pub mod measure;
pub mod modules;
pub mod observability;
#[cfg(feature = "peers")]
pub mod peers;
pub mod report;
pub mod sets;
pub mod threads;
pub mod wake;
pub mod zero_copy;
