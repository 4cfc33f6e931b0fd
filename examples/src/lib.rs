//! Example memlink modules. Each file at the root of this package is one module, built
//! as a cdylib with `cargo build -p memlink-examples --example NAME`.
//!
//! The types the modules share with their hosts live in `memlink-example-types`
//! (`examples/types/`), which depends on neither the SDK nor the runtime; they are
//! re-exported here for the modules.

pub use memlink_example_types::{datasets, zero_copy_types};
