//! Who is at the other end of a Unix socket, as the kernel says (`SO_PEERCRED`).
//!
//! Read here with `getsockopt` into `libc::ucred` rather than through rustix, whose
//! `UCred` holds the process id as a non-zero `Pid`: the kernel answers 0 for a peer whose
//! process has no id in the reader's pid namespace (a client on the host of a daemon run
//! in a container, the socket bind-mounted in), and a zero there is undefined behaviour.
//! In practice it read as an error, "Success (os error 0)", and the daemon refused such
//! clients.

use std::io;
use std::os::fd::{AsFd, AsRawFd};

/// A socket's peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Its user id.
    pub uid: u32,
    /// Its process id in this process's pid namespace, or `None` when it has none there.
    pub pid: Option<i32>,
}

/// The credentials of the process that connected the other end of `socket` (a connected
/// Unix stream socket).
pub fn peer(socket: impl AsFd) -> io::Result<Peer> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: the descriptor is borrowed open for the call; `cred` is a plain C struct
    // of integers, valid for writes of `len` bytes (its size), for which any bytes the
    // kernel writes are a valid value; `len` is valid for reads and writes.
    let done = unsafe {
        libc::getsockopt(
            socket.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&raw mut cred).cast::<libc::c_void>(),
            &raw mut len,
        )
    };
    if done != 0 {
        return Err(io::Error::last_os_error());
    }
    if len as usize != size_of::<libc::ucred>() {
        return Err(io::Error::other(format!(
            "the kernel gave {len} bytes of credentials, not {}",
            size_of::<libc::ucred>()
        )));
    }
    Ok(Peer {
        uid: cred.uid,
        pid: (cred.pid > 0).then_some(cred.pid),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no getsockopt")]
    fn a_connected_peer_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let me = peer(&a).unwrap();
        assert_eq!(me.uid, rustix::process::getuid().as_raw());
        assert_eq!(me.pid, Some(std::process::id() as i32));
    }
}
