//! Arbitrary bytes decoded as export arguments (see `memlink_fuzz::msgpack_args`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memlink_fuzz::msgpack_args::run(data));
