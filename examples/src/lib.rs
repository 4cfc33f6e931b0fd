//! Example memlink modules. Each file at the root of this package is one module, built
//! as a cdylib with `cargo build -p memlink-examples --example NAME`.
//!
//! This library holds the types modules and their hosts share: an archived argument is
//! checked against the type's identity, so both sides use one definition.
//! [`zero_copy_types`] serves the `zero_copy` module; [`datasets`] the `datasets` module
//! and the benchmarks (memlink-benches) that compare its archived and MessagePack exports.

pub mod datasets;
pub mod zero_copy_types;
