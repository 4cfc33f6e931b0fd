//! Fuzz harnesses for memlink-msdk, shared by the libFuzzer targets in `fuzz_targets/`
//! and by `tests/replay.rs`, which replays the corpus and every regression on stable
//! with `cargo test`.
//!
//! Each target is one `run(&[u8])` function here, so a file from `corpus/` or
//! `regressions/` means the same thing to the fuzzer and to the tests:
//!
//! - [`msgpack_args::run`]: arbitrary bytes decoded as the arguments of example-like
//!   signatures through `memlink_msdk::serialize::from_msgpack`;
//! - [`msgpack_differential::run`]: arbitrary bytes decoded as one type by
//!   `memlink_abi::msgpack::from_msgpack` (its direct reader first) and by rmp-serde
//!   alone, which must give the same value or both refuse;
//! - [`call_frames::run`]: arbitrary `CallFrame`s through `memlink_call`, against the
//!   exports in [`exports`] and a real host ([`host`]);
//! - [`arena_ops::run`]: sequences of arena operations checked against a model;
//! - [`archive_access::run`]: arbitrary bytes checked as archives of the examples'
//!   archived argument types with `memlink_msdk::archive::check`, and read in full when
//!   they validate ([`archives`]);
//! - [`archive_mutation::run`]: genuine archives with one byte changed, the same checks;
//! - [`archived_call::run`]: hostile archives, aligned or not, through `memlink_call` to
//!   an export that reads its arguments in place;
//! - [`host_side::run`]: the runtime's own call path and host services, with a module
//!   that hands back any status and output and calls the services with any values;
//! - [`daemon_requests::run`]: what a client of the daemon puts on its socket and in its
//!   segment's slots, read as the daemon reads them.
//!
//! A panic anywhere in a harness is a finding: cargo-fuzz builds with `panic = "abort"`,
//! and the harnesses assert the ABI's promises (see each module).

pub mod archive_access;
pub mod archive_mutation;
pub mod archived_call;
pub mod archives;
pub mod arena_ops;
pub mod call_frames;
pub mod daemon_requests;
pub mod depth;
pub mod exports;
pub mod host;
pub mod host_side;
pub mod known;
pub mod msgpack_args;
pub mod msgpack_differential;
pub mod seeds;
pub mod types;
