//! What a client of the daemon puts on its socket and in its slots (see
//! `memlink_fuzz::daemon_requests`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| memlink_fuzz::daemon_requests::run(data));
