//! Shared memory as Miri can run it: Miri has no `memfd_create` and cannot map a file,
//! so under Miri a segment's (or the figures table's) memory is a heap allocation laid
//! out as the mapping is (zeroed, page-aligned, as long as the memfd), and its
//! descriptor is a socket that stands for it. A registry by descriptor number lets
//! [`map_sealed`] find the memory again, so two "mappings" of one descriptor share
//! their bytes (at one address, where the kernel would give two).
//!
//! Compiled in tests too (not only under Miri) so that it is linted and its own tests
//! run without Miri.

use std::alloc::{self, Layout};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::ptr::NonNull;
use std::sync::{Arc, Mutex};

/// The alignment of a mapping, which the layout's own alignments rely on.
const PAGE: usize = 4096;

/// A zeroed, page-aligned allocation, freed when the last [`Shared`] of it (or the
/// registry's entry) drops.
#[derive(Debug)]
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: `Block` owns its allocation, which is only ever reached through raw pointers
// and the atomics or `unsafe` views built on them, as a shared mapping is; nothing in it
// is tied to the thread that allocated it.
unsafe impl Send for Block {}
// SAFETY: as for `Send`: `&Block` gives out only the raw pointer.
unsafe impl Sync for Block {}

impl Drop for Block {
    fn drop(&mut self) {
        // SAFETY: `ptr` was returned by `alloc_zeroed` with this `layout` (see
        // `sealed_memfd`), and is freed only here, once, when the last owner drops.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// The heap's stand-in for a shared mapping: what `MmapRaw` offers the segment.
#[derive(Debug)]
pub(crate) struct Shared {
    block: Arc<Block>,
    len: usize,
}

impl Shared {
    /// The first byte, valid for reads and writes of [`len`](Shared::len) bytes while
    /// `self` lives.
    pub(crate) fn as_mut_ptr(&self) -> *mut u8 {
        self.block.ptr.as_ptr()
    }

    /// Bytes "mapped".
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// The memory each live stand-in descriptor refers to, by number. A number closed and
/// given to a new stand-in is replaced; one closed and reused by another kind of
/// descriptor still finds the old memory (the tests map only live stand-ins).
static MEMFDS: Mutex<Vec<(RawFd, Arc<Block>)>> = Mutex::new(Vec::new());

fn memfds() -> std::sync::MutexGuard<'static, Vec<(RawFd, Arc<Block>)>> {
    MEMFDS.lock().unwrap_or_else(|p| p.into_inner())
}

/// `len` zero bytes on the heap and a descriptor standing for them (the name is the
/// memfd's, unused here). The seals are the kernel's business: nothing here can shrink.
pub(crate) fn sealed_memfd(_name: &str, len: u64) -> io::Result<OwnedFd> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    let layout = Layout::from_size_align(len.max(1), PAGE).map_err(io::Error::other)?;
    // SAFETY: the layout's size is at least 1.
    let ptr = unsafe { alloc::alloc_zeroed(layout) };
    let ptr = NonNull::new(ptr).ok_or(io::ErrorKind::OutOfMemory)?;
    let block = Arc::new(Block { ptr, layout });
    // Any descriptor Miri can make will do; its number is the key.
    let (fd, _other) = UnixStream::pair()?;
    let fd = OwnedFd::from(fd);
    let mut memfds = memfds();
    memfds.retain(|(n, _)| *n != fd.as_raw_fd());
    memfds.push((fd.as_raw_fd(), block));
    Ok(fd)
}

/// The memory `fd` stands for, if it is at least `len` bytes long.
pub(crate) fn map_sealed(fd: &OwnedFd, len: u64) -> io::Result<Shared> {
    let memfds = memfds();
    let Some((_, block)) = memfds.iter().find(|(n, _)| *n == fd.as_raw_fd()) else {
        return Err(io::Error::other(
            "not a descriptor of sealed_memfd (under Miri, the only memory there is)",
        ));
    };
    let size = block.layout.size() as u64;
    if size < len {
        return Err(io::Error::other(format!(
            "the memory has {size} bytes, {len} are needed"
        )));
    }
    Ok(Shared {
        block: Arc::clone(block),
        len: len as usize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_maps_of_a_descriptor_share_zeroed_page_aligned_bytes() {
        let fd = sealed_memfd("t", 3 * PAGE as u64).unwrap();
        let a = map_sealed(&fd, 3 * PAGE as u64).unwrap();
        let b = map_sealed(&fd, PAGE as u64).unwrap();
        assert_eq!((a.len(), b.len()), (3 * PAGE, PAGE));
        assert!(a.as_mut_ptr().cast::<[u8; PAGE]>().is_aligned());
        let mut first = [1u8; 8];
        // SAFETY: both ranges are inside the allocation, which `a` keeps alive, and
        // nothing else touches it.
        unsafe {
            std::ptr::copy_nonoverlapping(a.as_mut_ptr().add(3 * PAGE - 8), first.as_mut_ptr(), 8);
            a.as_mut_ptr().write(7);
        }
        assert_eq!(first, [0; 8], "zeroed");
        // SAFETY: as above, through the other "mapping".
        assert_eq!(unsafe { b.as_mut_ptr().read() }, 7);
        assert!(
            map_sealed(&fd, 4 * PAGE as u64).is_err(),
            "larger than it is"
        );
    }
}
