//! Genuine archives with one byte changed (see `memlink_fuzz::archive_mutation`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memlink_fuzz::archive_mutation::run(data));
