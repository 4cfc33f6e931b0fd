//! A result read in place in the shared segment, and arguments written there in place.

use std::fmt;
use std::ops::{Deref, DerefMut};

use memlink_ipc::client::{Lease, Reply};

/// The encoded result of a call, read where the daemon wrote it (in this connection's
/// segment). Its slot is free for another call once this drops: a thread holding as
/// many outputs as the connection has slots waits for one of them to drop before its
/// next call can start, until the call's deadline, or until
/// [`ClientConfig::slot_wait`](crate::ClientConfig::slot_wait) has passed with no call in
/// flight, when the call fails with `RuntimeError::SlotsHeld`.
pub struct RemoteOutput {
    pub(crate) reply: Reply,
}

impl RemoteOutput {
    /// The module's backpressure when the call ended, in `[0, 1]`, as the daemon saw it.
    pub fn backpressure(&self) -> f32 {
        self.reply.backpressure()
    }
}

/// What using, in a forked child, a buffer or an output its parent's client made says:
/// its slot is the parent's, which goes on using it (a read would see the parent's next
/// results, a write would change its arguments).
const INHERITED: &str = "memlink-client: this was made before the process forked, and its slot \
     belongs to the parent (which writes over it): make the call again in the child";

impl Deref for RemoteOutput {
    type Target = [u8];

    /// # Panics
    ///
    /// In a process forked after the call: the bytes lie in the parent's slot.
    fn deref(&self) -> &[u8] {
        assert!(!self.reply.inherited(), "{INHERITED}");
        &self.reply
    }
}

impl AsRef<[u8]> for RemoteOutput {
    fn as_ref(&self) -> &[u8] {
        self
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
        let mut d = f.debug_struct("RemoteOutput");
        if self.reply.inherited() {
            d.field("inherited", &true);
        } else {
            d.field("len", &self.len());
        }
        d.finish_non_exhaustive()
    }
}

/// Memory for `len` bytes of arguments in the shared segment, for the caller to write
/// in place (an archive, say) and hand to
/// [`Client::call_buffer`](crate::Client::call_buffer) or
/// [`Client::call_slot`](crate::Client::call_slot) of the client that made it
/// (another client refuses it): the daemon reads it where it lies, with no copy on this
/// side. It is zeroed when made.
///
/// A call through it that does not end with the daemon's answer while the daemon still
/// runs it (its deadline passed mid-call, or the daemon went away during it) leaves the
/// slot to the daemon: the buffer then reads as zeros, in this process's memory, and the
/// next call puts it back in the segment (on a new connection if the daemon was
/// restarted). A call the daemon never took is withdrawn instead, and the arguments
/// stay.
pub struct ArgSlot {
    /// The slot it lies in; `None` once a call left the slot to the daemon.
    pub(crate) lease: Option<Lease>,
    /// The buffer while it has no slot: zeros, or what was written since.
    pub(crate) spare: Vec<u8>,
    pub(crate) len: usize,
    /// The id of the client whose segment holds it.
    pub(crate) client: u64,
    /// The last reply was written over the arguments (it did not fit after them), and
    /// the buffer was not written since: sending it again would send the reply.
    pub(crate) overwritten: bool,
}

impl ArgSlot {
    /// A buffer in `lease`'s slot, of `len` bytes, made by client `client`.
    pub(crate) fn new(lease: Lease, len: usize, client: u64) -> ArgSlot {
        ArgSlot {
            lease: Some(lease),
            spare: Vec::new(),
            len,
            client,
            overwritten: false,
        }
    }

    /// Leaves the slot to the daemon, which still runs a call in it: the buffer goes on
    /// in private memory, zeroed.
    pub(crate) fn detach(&mut self) {
        self.lease = None;
        self.spare = vec![0; self.len];
        self.overwritten = false;
    }
}

impl ArgSlot {
    /// Whether its slot is the parent's of this process (made before a fork).
    pub(crate) fn inherited(&self) -> bool {
        self.lease.as_ref().is_some_and(Lease::inherited)
    }
}

impl Deref for ArgSlot {
    type Target = [u8];

    /// # Panics
    ///
    /// In a process forked after the buffer was made, while it lies in a slot: the slot
    /// is the parent's.
    fn deref(&self) -> &[u8] {
        assert!(!self.inherited(), "{INHERITED}");
        match &self.lease {
            Some(lease) => &lease.data()[..self.len],
            None => &self.spare,
        }
    }
}

impl DerefMut for ArgSlot {
    /// # Panics
    ///
    /// As [`Deref`]'s.
    fn deref_mut(&mut self) -> &mut [u8] {
        assert!(!self.inherited(), "{INHERITED}");
        let len = self.len;
        // Handed out to be written: what the caller sends next is theirs again.
        self.overwritten = false;
        match &mut self.lease {
            Some(lease) => &mut lease.data_mut()[..len],
            None => &mut self.spare,
        }
    }
}

impl fmt::Debug for ArgSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArgSlot")
            .field("len", &self.len)
            .field("in_segment", &self.lease.is_some())
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

/// Replies at most this long are copied onto the stack to be decoded; longer ones into a
/// `Vec`.
const STACK_COPY: usize = 256;

/// Runs `f` on a private copy of `shared`, bytes of a reply in the shared segment.
///
/// Every process of the daemon maps the segment, its workers included, where modules'
/// native code runs, so the bytes may change while they are read. What is decoded from
/// them is read once more after a check (a string checked as UTF-8, then copied), so it
/// is decoded from memory no other process can write: a module that rewrote its result
/// between the check and the copy would otherwise hand this process a `String` that is
/// not UTF-8.
pub(crate) fn decode_private<T>(shared: &[u8], f: impl FnOnce(&[u8]) -> T) -> T {
    if shared.len() <= STACK_COPY {
        let mut copy = [0u8; STACK_COPY];
        copy[..shared.len()].copy_from_slice(shared);
        f(&copy[..shared.len()])
    } else {
        let mut copy = Vec::with_capacity(shared.len());
        copy.extend_from_slice(shared);
        f(&copy)
    }
}

#[cfg(test)]
mod tests {
    use super::decode_private;

    #[test]
    fn a_private_copy_holds_the_same_bytes_whatever_their_length() {
        for len in [0, 1, 255, 256, 257, 4096] {
            let shared: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let copied = decode_private(&shared, |b| {
                assert_ne!(b.as_ptr(), shared.as_ptr(), "not a copy at {len}");
                b.to_vec()
            });
            assert_eq!(copied, shared, "at {len}");
        }
    }
}
