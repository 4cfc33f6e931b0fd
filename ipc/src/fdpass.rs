//! Passing a descriptor over a Unix socket (`SCM_RIGHTS`), with the bytes it goes with.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::net::sockopt::{set_socket_timeout, Timeout};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Sends all of `bytes`, with `fd` attached to the first of them.
pub fn send(socket: impl AsFd, bytes: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let socket = socket.as_fd();
    let mut sent = 0;
    let fds = fd.map(|f| [f]);
    while sent < bytes.len() {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        if sent == 0 {
            if let Some(fds) = &fds {
                if !control.push(SendAncillaryMessage::ScmRights(fds)) {
                    return Err(io::Error::other("no room for the descriptor"));
                }
            }
        }
        let n = match sendmsg(
            socket,
            &[IoSlice::new(&bytes[sent..])],
            &mut control,
            SendFlags::NOSIGNAL,
        ) {
            Ok(n) => n,
            // A signal caught by a handler without SA_RESTART (Rust's own for SIGSEGV and
            // SIGBUS, or one a module installs) is no failure of the socket: nothing
            // was sent, so the same bytes (and descriptor) go again.
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        sent += n;
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes, and the descriptor sent with them if there was one.
///
/// A peer that closes before `buf` is full gives `UnexpectedEof`; more descriptors than
/// one are closed and refused.
pub fn recv_exact(socket: impl AsFd, buf: &mut [u8]) -> io::Result<Option<OwnedFd>> {
    recv_exact_within(socket.as_fd(), buf, None)
}

/// [`recv_exact`] with one deadline for all of `buf`: a peer that trickles its bytes
/// cannot stretch the wait, as it could a read timeout that each read starts afresh. Past
/// `deadline` the error is `TimedOut`. It sets the socket's receive timeout.
pub fn recv_exact_by(
    socket: impl AsFd,
    buf: &mut [u8],
    deadline: Instant,
) -> io::Result<Option<OwnedFd>> {
    recv_exact_within(socket.as_fd(), buf, Some(deadline))
}

fn recv_exact_within(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
    deadline: Option<Instant>,
) -> io::Result<Option<OwnedFd>> {
    let mut got = 0;
    let mut fd = None;
    while got < buf.len() {
        if let Some(deadline) = deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            // A zero timeout would mean none: at least a microsecond.
            let left = left.max(Duration::from_micros(1));
            set_socket_timeout(socket, Timeout::Recv, Some(left))?;
        }
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = match recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut buf[got..])],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Ok(msg) => msg,
            // A signal caught by a handler without SA_RESTART interrupted the wait: read
            // on (a worker took this for its supervisor gone, and ended).
            Err(rustix::io::Errno::INTR) => continue,
            // The receive timeout, set to what was left of the deadline, ran out.
            Err(e) if e == rustix::io::Errno::AGAIN && deadline.is_some() => {
                return Err(io::ErrorKind::TimedOut.into())
            }
            Err(e) => return Err(e.into()),
        };
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(rights) = message {
                for received in rights {
                    if fd.is_some() {
                        // Dropping closes it: a peer sends at most one per message.
                        drop(received);
                        return Err(io::Error::other("more than one descriptor received"));
                    }
                    fd = Some(received);
                }
            }
        }
        // A descriptor was sent and none came: the kernel could not give this process
        // one more (its open-file limit reached, most likely; or a security module
        // refused it), and said so by cutting the message's control part. The peer is
        // not at fault, and the message is not whole.
        if fd.is_none() && msg.flags.contains(rustix::net::ReturnFlags::CTRUNC) {
            return Err(io::Error::new(
                io::ErrorKind::QuotaExceeded,
                "the descriptor sent with the message could not be received: this process \
                 may open no more files (its limit, RLIMIT_NOFILE or `ulimit -n`, reached?)",
            ));
        }
        if msg.bytes == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += msg.bytes;
    }
    Ok(fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::unix::net::UnixStream;

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no memfd, sendmsg or recvmsg (SCM_RIGHTS)")]
    fn a_descriptor_crosses_with_its_bytes() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut file = std::fs::File::from(
            rustix::fs::memfd_create("t", rustix::fs::MemfdFlags::CLOEXEC).unwrap(),
        );
        file.write_all(b"shared").unwrap();
        send(&a, b"hello", Some(file.as_fd())).unwrap();
        let mut buf = [0u8; 5];
        let fd = recv_exact(&b, &mut buf).unwrap().expect("a descriptor");
        assert_eq!(&buf, b"hello");
        let mut got = std::fs::File::from(fd);
        got.rewind().unwrap();
        let mut text = String::new();
        got.read_to_string(&mut text).unwrap();
        assert_eq!(text, "shared");
        send(&a, b"x", None).unwrap();
        let mut one = [0u8; 1];
        assert!(recv_exact(&b, &mut one).unwrap().is_none());
        drop(a);
        assert_eq!(
            recv_exact(&b, &mut one).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no sendmsg, recvmsg or socket timeouts")]
    fn a_deadline_holds_for_all_the_bytes_however_they_trickle() {
        let (a, b) = UnixStream::pair().unwrap();
        let deadline = Instant::now() + Duration::from_millis(300);
        let trickle = std::thread::spawn(move || {
            // A byte every 100 ms, each well within what is left of the deadline at
            // first: 20 of them would take two seconds.
            for _ in 0..20 {
                if send(&a, b"x", None).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let mut buf = [0u8; 20];
        let err = recv_exact_by(&b, &mut buf, deadline).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        drop(b);
        trickle.join().unwrap();
    }
}
