//! `memlink_call` with arbitrary frames (see `memlink_fuzz::call_frames`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    memlink_fuzz::call_frames::run(data);
});
