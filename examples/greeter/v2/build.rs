//! Names the module `greeter` whichever version this is: the runtime lets versions of
//! one module (one name) share a name, and tells them apart by version.

fn main() {
    println!("cargo:rustc-env=MEMLINK_MODULE_NAME=greeter");
    println!("cargo:rerun-if-changed=build.rs");
}
