//! The types the example modules exchange with their hosts.
//!
//! An archived argument is read in place and checked against its type's identity (name,
//! archived size and alignment, rkyv format): host and module must use one definition,
//! so they share it through a crate like this one, which depends on neither the SDK nor
//! the runtime. [`zero_copy_types`] serves the `zero_copy` module; [`datasets`] the
//! `datasets` module and the benchmarks that compare its archived and MessagePack
//! exports.

pub mod datasets;
pub mod zero_copy_types;
