//! The process boundary of the memlink daemon: what `memlink serve`, its worker and
//! `memlink-client` share.
//!
//! A client connects to the daemon's Unix socket and says [`Hello`](control::Hello).
//! The daemon answers with a [`Welcome`](control::Welcome) and the descriptor of a
//! [`Segment`]: shared memory, sealed against shrinking, holding the connection's
//! request slots and their data areas. From then on no byte of a call crosses the
//! socket:
//!
//! 1. the client takes a free slot, writes the module and method names, the deadline
//!    and the arguments into it, marks it submitted, and rings its worker's doorbell if
//!    the worker says it sleeps;
//! 2. the daemon's worker, spinning on the slots' states briefly and then asleep on the
//!    doorbell's futex, claims the slot, reads the arguments (in place for a trusted client, from a
//!    private copy otherwise), calls the module and writes the result into the slot's
//!    data area;
//! 3. the client, spinning briefly and then asleep on the slot's futex, reads the
//!    result where it lies.
//!
//! | module | holds |
//! |---|---|
//! | [`client`] | a client's end: the handshake, leased slots, a call's round trip |
//! | [`segment`] | the segment's layout, its creation (memfd) and mapping |
//! | [`slot`] | one slot's fields, the request read from it and the reply written to it |
//! | [`futex`] | waiting on and waking a 32-bit word shared between processes |
//! | [`fdpass`] | sending a descriptor over a Unix socket (`SCM_RIGHTS`) |
//! | [`peer`] | who is at the other end of a Unix socket (`SO_PEERCRED`) |
//! | [`control`] | the framed MessagePack messages on the sockets |
//! | [`failure`] | why a call failed, as the daemon tells the client |
//! | [`figures`] | what the daemon and its worker share: running calls, per-connection figures |
//! | [`clock`] | the monotonic clock both processes read deadlines from |
//!
//! Linux only: memfd, futexes and `SO_PEERCRED`.

#![warn(missing_docs)]

pub mod client;
pub mod clock;
pub mod control;
pub mod failure;
pub mod fdpass;
pub mod figures;
pub mod futex;
pub mod peer;
pub mod segment;
pub mod slot;

pub use failure::Failure;
pub use segment::{Geometry, Segment};
pub use slot::{Request, Slot, SlotState};

/// The protocol's version: a client and a daemon of different versions refuse each other.
///
/// 5: a slot carries the digest of the method a typed handle checked
/// ([`SlotFields::checked`](slot::SlotFields::checked)), and a call whose method changed
/// fails with [`Failure::MethodChanged`].
pub const PROTOCOL_VERSION: u32 = 5;

/// Longest path a Unix socket can be bound or connected at, in bytes: `sun_path` holds
/// 108, the last a terminating NUL.
pub const MAX_SOCKET_PATH: usize = 107;

/// Whether `path` can be a Unix socket's path at all, or why not: one too long, or one
/// that names no file (`dir/`, `..`), can never be bound or connected, so a daemon cannot
/// serve there and a client has nothing to wait for there.
pub fn check_socket_path(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(format!(
            "the socket path {} is {len} bytes; a Unix socket's path holds at most {MAX_SOCKET_PATH}",
            path.display()
        ));
    }
    if path.as_os_str().is_empty() {
        return Err("the socket path is empty".to_owned());
    }
    // `file_name` reads `dir/` as `dir`: the slash is looked at itself.
    if path.file_name().is_none() || path.as_os_str().as_bytes().ends_with(b"/") {
        return Err(format!(
            "the socket path {} names a directory, not a file: give the socket's own name in it (`memlink.sock`, say)",
            path.display()
        ));
    }
    Ok(())
}
