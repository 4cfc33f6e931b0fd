//! Example memlink modules. Each file at the root of this package is one module, built
//! as a cdylib with `cargo build -p memlink-examples --example NAME`.
//!
//! This library holds the types the `zero_copy` module and its hosts share: an archived
//! argument is checked against the type's identity, so both sides use one definition.

pub mod zero_copy_types;
