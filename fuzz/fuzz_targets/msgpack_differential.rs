//! Any bytes decoded by the direct MessagePack reader and by rmp-serde alone, which must
//! agree (see `memlink_fuzz::msgpack_differential`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memlink_fuzz::msgpack_differential::run(data));
