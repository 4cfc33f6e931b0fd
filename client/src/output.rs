//! A result read in place in the shared segment, and arguments written there in place.

use std::fmt;
use std::ops::{Deref, DerefMut};

use memlink_ipc::client::{Lease, Reply};

/// The encoded result of a call, read where the daemon wrote it (in this connection's
/// segment). Its slot is free for another call once this drops: a thread holding as
/// many outputs as the connection has slots waits for one of them to drop before its
/// next call can start (until the call's deadline, when it has one).
pub struct RemoteOutput {
    pub(crate) reply: Reply,
}

impl RemoteOutput {
    /// The module's backpressure when the call ended, in `[0, 1]`, as the daemon saw it.
    pub fn backpressure(&self) -> f32 {
        self.reply.backpressure()
    }
}

impl Deref for RemoteOutput {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.reply
    }
}

impl AsRef<[u8]> for RemoteOutput {
    fn as_ref(&self) -> &[u8] {
        &self.reply
    }
}

impl PartialEq<[u8]> for RemoteOutput {
    fn eq(&self, other: &[u8]) -> bool {
        **self == *other
    }
}

impl<const N: usize> PartialEq<&[u8; N]> for RemoteOutput {
    fn eq(&self, other: &&[u8; N]) -> bool {
        **self == other[..]
    }
}

impl fmt::Debug for RemoteOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteOutput")
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// Memory for `len` bytes of arguments in the shared segment, for the caller to write
/// in place (an archive, say) and hand to
/// [`Client::call_buffer`](crate::Client::call_buffer) of the client that made it
/// (another client refuses it): the daemon reads it where it lies, with no copy on this
/// side. It is zeroed when made.
pub struct ArgSlot {
    pub(crate) lease: Lease,
    pub(crate) len: usize,
    /// The id of the client whose segment holds it.
    pub(crate) client: u64,
}

impl Deref for ArgSlot {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.lease.data()[..self.len]
    }
}

impl DerefMut for ArgSlot {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        &mut self.lease.data_mut()[..len]
    }
}

impl fmt::Debug for ArgSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgSlot")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// The reply of [`Client::call_slot`](crate::Client::call_slot), read in place; the
/// buffer it borrows holds the arguments again once it drops.
#[derive(Debug)]
pub struct SlotReply<'s> {
    pub(crate) bytes: &'s [u8],
}

impl Deref for SlotReply<'_> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes
    }
}
