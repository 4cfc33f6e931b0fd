//! Arena operations checked against a model (see `memlink_fuzz::arena_ops`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memlink_fuzz::arena_ops::run(data));
