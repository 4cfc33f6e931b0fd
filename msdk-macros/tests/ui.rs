//! Compile-time behaviour of `#[memlink_export]`: what it accepts, and the errors (their
//! words and the tokens they point at) for what it rejects.
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p
//! memlink-msdk-macros --test ui`, then read the `.stderr` files before committing them.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/*.rs");
}
