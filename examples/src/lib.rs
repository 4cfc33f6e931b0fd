//! Example memlink modules. Each file at the root of this package is one module, built
//! as a cdylib with `cargo build -p memlink-examples --example NAME`.
