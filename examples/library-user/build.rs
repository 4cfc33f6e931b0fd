//! Names the module `calculator`: its exports come from this crate and from
//! `memlink-example-library`, and the name set here is what says which is the module.

fn main() {
    println!("cargo:rustc-env=MEMLINK_MODULE_NAME=calculator");
    println!("cargo:rerun-if-changed=build.rs");
}
