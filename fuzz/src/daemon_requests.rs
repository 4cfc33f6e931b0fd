//! The daemon's request parsing: what a client can put on the socket and in its segment.
//!
//! The first byte chooses what the rest is:
//! - `0`: bytes on a client's socket, read as the daemon reads a hello (framed
//!   MessagePack through `control::recv`);
//! - `1`: the fields of a slot as a hostile client leaves them (state, op, name lengths
//!   and words, argument length, checked digest), claimed and read as the worker does;
//! - anything else: bytes in a reply's data area, read as the client reads a failure.
//!
//! Promises checked: no panic; a request read as valid names at most `MAX_NAME` bytes of
//! UTF-8 and arguments inside the slot's data area; a refused one says what was wrong.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;

use memlink_ipc::control::{self, Hello};
use memlink_ipc::slot::MAX_NAME;
use memlink_ipc::{Failure, Geometry, Segment};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode {
        0 => hello(rest),
        1 => slot(rest),
        _ => {
            let _ = Failure::decode(rest).to_string();
        }
    }
}

fn hello(bytes: &[u8]) {
    let (mut a, b) = UnixStream::pair().expect("a socket pair");
    // A socket buffer holds far more than a fuzz input; the writer then hangs up, so the
    // reader sees the bytes and then the end, as from a client that sent them and quit.
    a.write_all(bytes).expect("write to the pair");
    drop(a);
    match control::recv::<Hello>(&b) {
        Ok((hello, fd)) => {
            assert!(fd.is_none(), "no descriptor was sent");
            // What the daemon checks next must not panic either.
            let _ = hello.geometry.checked();
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
}

fn word(bytes: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    for (i, b) in w.iter_mut().enumerate() {
        *b = bytes.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(w)
}

fn slot(bytes: &[u8]) {
    let (segment, _fd) =
        Segment::create(Geometry::new(1, 4096).expect("geometry")).expect("a segment");
    let slot = segment.slot(0).expect("slot 0");
    let f = slot.fields();
    f.op.store(word(bytes, 0) as u32, Ordering::Relaxed);
    f.module_len.store(word(bytes, 4) as u32, Ordering::Relaxed);
    f.method_len.store(word(bytes, 8) as u32, Ordering::Relaxed);
    f.args_len.store(word(bytes, 12), Ordering::Relaxed);
    f.deadline_ns.store(word(bytes, 20), Ordering::Relaxed);
    for (i, w) in f.names.iter().enumerate() {
        w.store(word(bytes, 28 + 8 * i), Ordering::Relaxed);
    }
    f.state
        .store(word(bytes, 156) as u32 % 5, Ordering::Relaxed);
    // The checked method's digest: any word is one, read once like the others.
    f.checked.store(word(bytes, 164), Ordering::Relaxed);
    if !slot.claim() {
        return;
    }
    match slot.read_request() {
        Ok(r) => {
            assert!(
                r.args_len <= slot.capacity(),
                "arguments inside the data area"
            );
            assert!(r.module.as_str().len() <= MAX_NAME && r.method.as_str().len() <= MAX_NAME);
            let mut copy = vec![0u8; r.args_len];
            slot.copy_data(0, &mut copy);
        }
        Err(failure) => {
            let text = failure.to_string();
            assert!(text.starts_with("malformed request: "), "{text}");
            slot.finish_failure(&failure, 0.0);
            assert_eq!(
                slot.reply().expect_err("a failure"),
                failure,
                "the failure round-trips"
            );
        }
    }
}
