//! Hostile archives through `memlink_call` (see `memlink_fuzz::archived_call`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memlink_fuzz::archived_call::run(data));
