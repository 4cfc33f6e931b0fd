//! Arbitrary bytes checked as archived arguments (see `memlink_fuzz::archive_access`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memlink_fuzz::archive_access::run(data));
