//! Names the module `greeter`, whichever version (v1, v2, v3) is built: the runtime
//! lets versions of one module share a name, and tells them apart by version.

fn main() {
    println!("cargo:rustc-env=MEMLINK_MODULE_NAME=greeter");
    println!("cargo:rerun-if-changed=../build.rs");
}
