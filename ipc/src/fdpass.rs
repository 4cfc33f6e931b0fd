//! Passing a descriptor over a Unix socket (`SCM_RIGHTS`), with the bytes it goes with.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

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
        let n = sendmsg(
            socket,
            &[IoSlice::new(&bytes[sent..])],
            &mut control,
            SendFlags::NOSIGNAL,
        )?;
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
    let socket = socket.as_fd();
    let mut got = 0;
    let mut fd = None;
    while got < buf.len() {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = recvmsg(
            socket,
            &mut [IoSliceMut::new(&mut buf[got..])],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        )?;
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
}
