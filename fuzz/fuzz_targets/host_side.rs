//! The runtime's host side with a hostile module (see `memlink_fuzz::host_side`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    memlink_fuzz::host_side::run(data);
});
