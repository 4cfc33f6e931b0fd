//! The shared segment of one connection: its layout, creation and mapping.
//!
//! ```text
//! 0                 Header (doorbells, flags)                     320 bytes
//! 320               slot table: `slots` x `SlotFields`            256 bytes each
//! data_offset       data areas: `slots` x `slot_size`, page-aligned
//! ```
//!
//! The daemon creates the segment as a memfd sealed against shrinking and growing (and
//! against further seals), so no process holding the descriptor can cut the mapping
//! short under another and turn a read into `SIGBUS`. The geometry travels beside the
//! descriptor in the control messages and is never read back from the shared bytes,
//! which the other side can rewrite at will.

#[cfg(not(miri))]
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[cfg(not(miri))]
use memmap2::{MmapOptions, MmapRaw};
#[cfg(not(miri))]
use rustix::fs::{
    fcntl_add_seals, fcntl_get_seals, ftruncate, memfd_create, MemfdFlags, SealFlags,
};
use serde::{Deserialize, Serialize};

use crate::futex;
use crate::slot::{Name, Slot, SlotFields};

#[cfg(any(miri, test))]
mod heap;
#[cfg(miri)]
pub(crate) use heap::{map_sealed, sealed_memfd};

/// The memory a segment (or the figures table) lies in: a shared mapping of its memfd,
/// or under Miri, which can neither make a memfd nor map one, a heap allocation laid
/// out the same (see `heap`).
#[cfg(not(miri))]
pub(crate) type Shared = MmapRaw;
#[cfg(miri)]
pub(crate) type Shared = heap::Shared;

/// Most slots a segment may have (calls one connection can have in flight at once).
pub const MAX_SLOTS: u32 = 64;
/// Largest data area of one slot (the largest arguments or result of one call): 1 GiB.
pub const MAX_SLOT_SIZE: u64 = 1 << 30;
const PAGE: u64 = 4096;
const HEADER_SIZE: u64 = 320;

/// How a segment is cut: how many slots, and how many bytes of data each has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Geometry {
    /// Slots (calls in flight at once), 1 to [`MAX_SLOTS`].
    pub slots: u32,
    /// Bytes of each slot's data area, a multiple of 4096, at most [`MAX_SLOT_SIZE`].
    pub slot_size: u64,
}

impl Geometry {
    /// `slots` slots of at least `slot_size` bytes (rounded up to a page), or why not.
    pub fn new(slots: u32, slot_size: u64) -> Result<Geometry, String> {
        if slots == 0 || slots > MAX_SLOTS {
            return Err(format!("{slots} slots: a segment has 1 to {MAX_SLOTS}"));
        }
        if slot_size == 0 || slot_size > MAX_SLOT_SIZE {
            return Err(format!(
                "slots of {slot_size} bytes: a slot holds 1 to {MAX_SLOT_SIZE} bytes"
            ));
        }
        Ok(Geometry {
            slots,
            slot_size: slot_size.div_ceil(PAGE) * PAGE,
        })
    }

    /// Checks a geometry that came from elsewhere (a control message).
    pub fn checked(self) -> Result<Geometry, String> {
        let g = Geometry::new(self.slots, self.slot_size)?;
        if g != self {
            return Err(format!(
                "slot size {} is not a multiple of 4096",
                self.slot_size
            ));
        }
        Ok(g)
    }

    /// Where the data areas start.
    pub fn data_offset(&self) -> u64 {
        (HEADER_SIZE + u64::from(self.slots) * SlotFields::SIZE).div_ceil(PAGE) * PAGE
    }

    /// The segment's size in bytes.
    pub fn len(&self) -> u64 {
        self.data_offset() + u64::from(self.slots) * self.slot_size
    }

    /// Whether the segment would be empty (never, for a checked geometry).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This geometry cut down to fit within `limit` bytes: as many of its slots as can
    /// each have a page, each as large as the limit lets it be (never larger than here);
    /// itself when it fits already, `None` when not even one slot of a page fits.
    pub fn within(self, limit: u64) -> Option<Geometry> {
        if self.len() <= limit {
            return Some(self);
        }
        (1..=self.slots).rev().find_map(|slots| {
            let data_offset = Geometry {
                slots,
                slot_size: 0,
            }
            .data_offset();
            let each = limit.checked_sub(data_offset)? / u64::from(slots) / PAGE * PAGE;
            (each >= PAGE).then(|| Geometry {
                slots,
                slot_size: each.min(self.slot_size),
            })
        })
    }

    /// The geometry a segment grows to so that one slot holds `len` bytes: as many of
    /// `slots` slots as keep the whole within `limit` bytes, each of `len` rounded up to
    /// a power of two (so a run of growing calls connects again only a few times) unless
    /// that leaves fewer slots than `len` itself would; or why no segment within `limit`
    /// holds `len` bytes.
    pub fn to_fit(len: u64, slots: u32, limit: u64) -> Result<Geometry, String> {
        if len > MAX_SLOT_SIZE {
            return Err(format!(
                "{len} bytes do not fit a slot: a slot holds at most {MAX_SLOT_SIZE} bytes"
            ));
        }
        // The most slots of `size` bytes within the limit.
        let most = |size: u64| {
            (1..=slots.clamp(1, MAX_SLOTS))
                .rev()
                .find_map(|n| Geometry::new(n, size).ok().filter(|g| g.len() <= limit))
        };
        let exact = most(len.max(1));
        let rounded = len
            .checked_next_power_of_two()
            .filter(|&s| s <= MAX_SLOT_SIZE)
            .and_then(most);
        match (rounded, exact) {
            (Some(r), Some(e)) if r.slots >= e.slots => Ok(r),
            (_, Some(e)) => Ok(e),
            // The segment's header and slot table come out of the same limit: without
            // them the refusal of a length under the limit read as a contradiction.
            _ => Err(format!(
                "{len} bytes need a slot of that size, and a segment holding it {} bytes with its header and slot table; the daemon gives a connection at most {limit} bytes of shared memory",
                Geometry::new(1, len.max(1)).map_or(len, |g| g.len())
            )),
        }
    }
}

/// Most worker processes a daemon runs: each has a doorbell, a helpers' word and sleeper
/// bits in every segment's header.
pub const MAX_WORKERS: usize = 32;

/// The segment's first 320 bytes: what is per connection rather than per slot.
#[repr(C, align(64))]
#[derive(Debug)]
pub struct Header {
    /// One word per worker process of the daemon, by its number: bumped by the client
    /// after it submits calls to that worker's modules while the worker sleeps
    /// ([`Header::ring_if_sleeping`]), and by the daemon to stop it; slept on by that worker's
    /// thread for this connection, so a call wakes only the worker that serves it
    /// ([`Header::doorbell`]).
    pub doorbells: [AtomicU32; MAX_WORKERS],
    /// One bit per worker process of the daemon, set while its thread for this connection
    /// is (about to be) asleep on its doorbell, so a client only makes the wake syscall
    /// when one sleeps. A bit, not a count: a worker killed asleep leaves its bit set,
    /// and its replacement (the same bit) clears it when it first wakes.
    pub worker_waiting: AtomicU32,
    /// Set by the daemon when it stops serving this connection.
    pub closed: AtomicU32,
    /// The daemon's backpressure for this connection, an `f32` in [0, 1] as bits.
    pub backpressure: AtomicU32,
    /// One word per worker process, by its number: bumped by a client whose call to
    /// that worker is still not taken after its spin while another of its calls is in
    /// flight on this connection. The futex word that worker's helper threads sleep on,
    /// so a call is not held up behind a long one, and other workers' helpers sleep on
    /// ([`Header::call_helpers`]).
    pub overflows: [AtomicU32; MAX_WORKERS],
    /// One bit per worker process, set while a helper thread of its is (about to be)
    /// asleep on its `overflows` word (as for `worker_waiting`).
    pub helpers_waiting: AtomicU32,
}

/// The waker's half of a futex word with sleeper bits: `word` is bumped before the
/// sleepers' bits are read, and a sleeper sets its bit before it reads the word a last
/// time ([`sleep`]), so one of the two sees the other; the system call is made only when
/// worker `worker`'s bit is set.
fn bump(word: &AtomicU32, sleepers: &AtomicU32, worker: usize) {
    word.fetch_add(1, Ordering::SeqCst);
    if sleepers.load(Ordering::SeqCst) & Header::worker_bit(worker) != 0 {
        futex::wake_all(word);
    }
}

/// The sleeper's half (see [`bump`]): worker `worker`'s bit set in `sleepers` while it
/// sleeps on `word`, unless the word has moved on from `seen` or `ready` (asked after the
/// bit is set) says there is work.
fn sleep(
    word: &AtomicU32,
    sleepers: &AtomicU32,
    worker: usize,
    seen: u32,
    timeout: Duration,
    ready: impl FnOnce() -> bool,
) {
    let bit = Header::worker_bit(worker);
    sleepers.fetch_or(bit, Ordering::SeqCst);
    if !ready() && word.load(Ordering::SeqCst) == seen {
        futex::wait(word, seen, Some(timeout));
    }
    sleepers.fetch_and(!bit, Ordering::SeqCst);
}

impl Header {
    /// Worker `worker`'s doorbell (numbers past [`MAX_WORKERS`] wrap around: a number
    /// comes from the other process, and a wrong bell costs a wakeup, not memory).
    pub fn doorbell(&self, worker: usize) -> &AtomicU32 {
        &self.doorbells[worker % MAX_WORKERS]
    }

    /// Worker `worker`'s bit in the sleeper words.
    pub fn worker_bit(worker: usize) -> u32 {
        1 << (worker % MAX_WORKERS)
    }

    /// Rings worker `worker`'s doorbell, and wakes its thread if it sleeps there: a
    /// system call only then (see [`wait_doorbell`](Header::wait_doorbell)). For a
    /// change the worker must see even while it spins (stopping, draining).
    pub fn ring(&self, worker: usize) {
        bump(self.doorbell(worker), &self.worker_waiting, worker);
    }

    /// Wakes worker `worker`'s thread for calls just submitted, if it sleeps on its
    /// doorbell or is about to; a worker that spins looks at the slots, and finds them
    /// without a ring. A busy connection so writes no shared word but the slot's.
    ///
    /// The slots' states must be stored sequentially consistent before this is called:
    /// the sleeper sets its bit, then looks at the slots again
    /// ([`wait_doorbell`](Header::wait_doorbell)'s `ready`), so either that look sees the
    /// calls or this sees the bit.
    pub fn ring_if_sleeping(&self, worker: usize) {
        if self.worker_waiting.load(Ordering::SeqCst) & Header::worker_bit(worker) != 0 {
            self.ring(worker);
        }
    }

    /// Sleeps worker `worker`'s thread on its doorbell, with its bit set in
    /// `worker_waiting`, unless `ready`, a last look at the slots made after the bit is
    /// set, finds work (see [`ring_if_sleeping`](Header::ring_if_sleeping)) or the bell
    /// rings meanwhile; returns when it is rung, or after `timeout`.
    pub fn wait_doorbell(&self, worker: usize, timeout: Duration, ready: impl FnOnce() -> bool) {
        let bell = self.doorbell(worker);
        // Read before the bit is set: a ring after it moves the bell past this.
        let seen = bell.load(Ordering::SeqCst);
        sleep(bell, &self.worker_waiting, worker, seen, timeout, ready);
    }

    /// Worker `worker`'s helpers' word (numbers wrap around, as for
    /// [`doorbell`](Header::doorbell)).
    pub fn overflow(&self, worker: usize) -> &AtomicU32 {
        &self.overflows[worker % MAX_WORKERS]
    }

    /// Bumps worker `worker`'s helpers' word, and wakes its helpers if one sleeps there
    /// (as [`ring`](Header::ring) does the doorbell).
    pub fn call_helpers(&self, worker: usize) {
        bump(self.overflow(worker), &self.helpers_waiting, worker);
    }

    /// Sleeps a helper of worker `worker` on its helpers' word (as
    /// [`wait_doorbell`](Header::wait_doorbell) does on the doorbell). Another helper of
    /// the worker may still sleep with the bit cleared when this one wakes: it is this
    /// one's turn to look, and it sets the bit again before it sleeps.
    pub fn wait_helpers_call(&self, worker: usize, seen: u32, timeout: Duration) {
        // A client bumps the word for every call it wants helped: no last look.
        sleep(
            self.overflow(worker),
            &self.helpers_waiting,
            worker,
            seen,
            timeout,
            || false,
        );
    }

    /// Rings every worker's doorbell: for a call whose worker the ringer does not know
    /// (one given back by a worker it is not for).
    pub fn ring_all(&self) {
        for worker in 0..MAX_WORKERS {
            self.ring(worker);
        }
    }
}

/// One connection's shared memory, mapped into this process.
#[derive(Debug)]
pub struct Segment {
    map: Shared,
    geometry: Geometry,
}

// SAFETY (of the layout): `Header` and `SlotFields` are `repr(C)` structs of atomics
// only, so every bit pattern, including the zeroes a fresh memfd reads as, is a valid
// value, and concurrent access from other processes through atomics is what they are
// for.
const _: () = assert!(std::mem::size_of::<Header>() as u64 == HEADER_SIZE);

impl Segment {
    /// A new segment of `geometry`, zeroed and sealed, and its descriptor to pass on.
    pub fn create(geometry: Geometry) -> io::Result<(Segment, OwnedFd)> {
        let geometry = geometry.checked().map_err(io::Error::other)?;
        let fd = sealed_memfd("memlink-segment", geometry.len())?;
        let segment = Segment::map(&fd, geometry)?;
        Ok((segment, fd))
    }

    /// Maps the segment `fd` refers to, after checking it is at least `geometry`'s size
    /// and sealed against shrinking (so it cannot be cut short while mapped).
    pub fn map(fd: &OwnedFd, geometry: Geometry) -> io::Result<Segment> {
        let geometry = geometry.checked().map_err(io::Error::other)?;
        let map = map_sealed(fd, geometry.len())?;
        Ok(Segment { map, geometry })
    }

    /// The segment's geometry.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// The connection's header.
    pub fn header(&self) -> &Header {
        // SAFETY: the mapping is at least `data_offset` (> 64) bytes long and page
        // aligned, so the header is in bounds and aligned; it lives as long as `self`;
        // every bit pattern is a valid `Header` of atomics (see the layout note above),
        // and other processes only touch it through atomics.
        unsafe { &*self.map.as_mut_ptr().cast::<Header>() }
    }

    /// Claims `slot`, one of this segment's, if it holds a submitted call that `ours`
    /// says is the claimer's, given the module name the slot holds (or why it holds
    /// none). The name is read before the claim and again after it: the client may have
    /// reused the slot for another module between the two (the state word has no
    /// generation). A call that turns out not to be the claimer's is given back,
    /// submitted, and every worker is rung, since which one it is for is another's to
    /// know.
    pub fn claim_if(&self, slot: &Slot<'_>, ours: impl Fn(Result<Name, String>) -> bool) -> bool {
        let Some(name) = slot.submitted_module() else {
            return false;
        };
        if !(ours(name) && slot.claim()) {
            return false;
        }
        if ours(slot.module_name()) {
            return true;
        }
        slot.unclaim();
        self.header().ring_all();
        false
    }

    /// Whether a slot holds a submitted call that `ours` says is the caller's (by its
    /// module name, as for [`claim_if`](Segment::claim_if)): a worker's last look at the
    /// slots before it sleeps (see [`Header::ring_if_sleeping`]).
    pub fn any_submitted(&self, ours: impl Fn(Result<Name, String>) -> bool) -> bool {
        (0..self.geometry.slots)
            .filter_map(|i| self.slot(i)?.submitted_module())
            .any(ours)
    }

    /// Slot `index`, or `None` past the last.
    pub fn slot(&self, index: u32) -> Option<Slot<'_>> {
        if index >= self.geometry.slots {
            return None;
        }
        let base = self.map.as_mut_ptr();
        let fields_at = HEADER_SIZE + u64::from(index) * SlotFields::SIZE;
        let data_at = self.geometry.data_offset() + u64::from(index) * self.geometry.slot_size;
        // SAFETY: both offsets are inside the mapping by the geometry's arithmetic
        // (`index < slots`), the fields are 64-aligned (the header is 64 bytes and each
        // entry 256), and the data area of `slot_size` bytes ends at or before the
        // mapping's end; the `Slot` borrows `self`, so the mapping outlives it.
        unsafe {
            let fields = &*base.add(fields_at as usize).cast::<SlotFields>();
            Some(Slot::new(
                fields,
                base.add(data_at as usize),
                self.geometry.slot_size as usize,
            ))
        }
    }

    /// Bytes of the mapping this process has touched is not knowable here; this is the
    /// mapping's length, which costs nothing until pages are written.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the mapping is empty (never).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }
}

/// A memfd of `len` zero bytes, sealed against shrinking, growing and further seals.
#[cfg(not(miri))]
pub(crate) fn sealed_memfd(name: &str, len: u64) -> io::Result<OwnedFd> {
    let fd = memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)?;
    ftruncate(&fd, len).map_err(|e| past_file_size_limit(e, len))?;
    fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)?;
    Ok(fd)
}

/// `e`, a failure to give a memfd `len` bytes, in words that name the limit when it is
/// the process's file-size limit (`EFBIG`, with `SIGXFSZ` ignored, as the daemon has it:
/// its default action would have killed the process) that refused them.
#[cfg(not(miri))]
fn past_file_size_limit(e: rustix::io::Errno, len: u64) -> io::Error {
    if e != rustix::io::Errno::FBIG {
        return e.into();
    }
    let limit = rustix::process::getrlimit(rustix::process::Resource::Fsize).current;
    let limit = limit.map_or_else(|| "none".to_owned(), |l| format!("{l} bytes"));
    io::Error::other(format!(
        "{len} bytes of shared memory are past this process's file-size limit \
         (RLIMIT_FSIZE, `ulimit -f`: {limit})"
    ))
}

/// Maps `len` bytes of `fd`, shared, after checking it is sealed against shrinking and at
/// least that long (so no access through the mapping can fault).
#[cfg(not(miri))]
pub(crate) fn map_sealed(fd: &OwnedFd, len: u64) -> io::Result<MmapRaw> {
    // The system's words alone ("Invalid argument", "Operation not permitted") say
    // nothing of which descriptor, or what it should have been.
    let seals = fcntl_get_seals(fd).map_err(|e| {
        io::Error::other(format!(
            "the descriptor is no sealable shared memory (a memfd): {e}"
        ))
    })?;
    if !seals.contains(SealFlags::SHRINK) {
        return Err(io::Error::other(
            "the memory is not sealed against shrinking",
        ));
    }
    let file = File::from(fd.try_clone()?);
    let size = file.metadata()?.len();
    if size < len {
        return Err(io::Error::other(format!(
            "the memory has {size} bytes, {len} are needed"
        )));
    }
    if seals.intersects(SealFlags::WRITE | SealFlags::FUTURE_WRITE) {
        return Err(io::Error::other(
            "the memory is sealed against writes, and a segment is written by both sides",
        ));
    }
    let len = usize::try_from(len).map_err(io::Error::other)?;
    // This process's own limits (its address space, its count of mappings): the
    // system's error, of its own kind, which is not the descriptor's fault.
    MmapOptions::new()
        .len(len)
        .map_raw(&file)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot map the segment: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::{SlotState, Submit, Waited};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn a_geometry_is_cut_down_to_a_limit_keeping_its_slots_where_it_can() {
        let asked = Geometry::new(8, 1 << 20).unwrap();
        assert_eq!(asked.within(asked.len()), Some(asked));
        // 4 MiB: the eight slots, each as large as fits.
        let cut = asked.within(4 << 20).unwrap();
        assert_eq!(cut.slots, 8);
        assert!(
            cut.len() <= 4 << 20 && cut.slot_size.is_multiple_of(PAGE),
            "{cut:?}"
        );
        assert!(Geometry::new(8, cut.slot_size + PAGE).unwrap().len() > 4 << 20);
        // 8 KiB, the smallest limit a daemon takes: one slot of a page.
        assert_eq!(asked.within(8192), Some(Geometry::new(1, PAGE).unwrap()));
        assert_eq!(asked.within(4096), None);
        // Never larger than asked.
        let small = Geometry::new(2, PAGE).unwrap();
        assert_eq!(small.within(1 << 30), Some(small));
    }

    /// A worker that never spins: it sleeps on its doorbell as soon as it finds nothing,
    /// for a minute unless rung, so a call whose ring was skipped would wait that minute.
    /// A client rings only when the worker says it sleeps; thousands of calls, some
    /// made just as the worker goes to sleep, each come back within its 10 s deadline.
    #[test]
    fn a_call_submitted_as_the_worker_falls_asleep_is_never_left_unrung() {
        let (segment, _fd) = Segment::create(Geometry::new(2, 4096).unwrap()).unwrap();
        let segment = Arc::new(segment);
        let stop = Arc::new(AtomicBool::new(false));
        let worker = {
            let (segment, stop) = (Arc::clone(&segment), Arc::clone(&stop));
            std::thread::spawn(move || {
                let header = segment.header();
                while !stop.load(Ordering::SeqCst) {
                    for i in 0..segment.geometry().slots {
                        let slot = segment.slot(i).unwrap();
                        if slot.claim() {
                            slot.finish_ok(b"done", 0.0);
                        }
                    }
                    header.wait_doorbell(0, Duration::from_secs(60), || {
                        stop.load(Ordering::SeqCst) || segment.any_submitted(|_| true)
                    });
                }
            })
        };
        let slot = segment.slot(0).unwrap();
        // Miri runs a round hundreds of times slower: there 300 (each gap below six
        // times) take a few seconds.
        let rounds = if cfg!(miri) { 300 } else { 3000u32 };
        for round in 0..rounds {
            slot.submit(&Submit::call("m", "f"));
            segment.header().ring_if_sleeping(0);
            let deadline = Instant::now() + Duration::from_secs(10);
            let waited = slot.wait_done(
                Some(deadline),
                Duration::ZERO,
                Duration::from_secs(1),
                || true,
            );
            assert_eq!(waited, Waited::Done, "call {round} was not answered");
            assert_eq!(slot.state(), Some(SlotState::Done));
            // Gaps of a few microseconds, so calls land on every step of the
            // worker's way to sleep.
            let gap = Instant::now() + Duration::from_nanos(u64::from(round % 50) * 200);
            while Instant::now() < gap {
                std::hint::spin_loop();
            }
        }
        stop.store(true, Ordering::SeqCst);
        segment.header().ring(0);
        worker.join().unwrap();
    }

    #[test]
    fn geometry_rounds_to_pages_and_refuses_the_impossible() {
        let g = Geometry::new(4, 100).unwrap();
        assert_eq!(g.slot_size, 4096);
        assert_eq!(g.data_offset(), 4096);
        assert_eq!(g.len(), 4096 + 4 * 4096);
        assert!(Geometry::new(0, 4096).is_err());
        assert!(Geometry::new(MAX_SLOTS + 1, 4096).is_err());
        assert!(Geometry::new(1, MAX_SLOT_SIZE + 1).is_err());
        assert!(Geometry {
            slots: 1,
            slot_size: 100
        }
        .checked()
        .is_err());
    }

    #[test]
    fn a_segment_grows_to_fit_within_the_limit() {
        // Room for all slots: a power of two.
        let g = Geometry::to_fit(3 << 20, 8, 1 << 30).unwrap();
        assert_eq!((g.slots, g.slot_size), (8, 4 << 20));
        // Fewer slots when all of them would pass the limit, and the exact size when the
        // power of two would leave fewer (3 of 3 MiB, not 2 of 4 MiB, within 10 MiB).
        let g = Geometry::to_fit(3 << 20, 8, 10 << 20).unwrap();
        assert_eq!((g.slots, g.slot_size), (3, 3 << 20));
        assert!(g.len() <= 10 << 20);
        let g = Geometry::to_fit(3 << 20, 2, 10 << 20).unwrap();
        assert_eq!(
            (g.slots, g.slot_size),
            (2, 4 << 20),
            "as many slots, rounded up"
        );
        assert_eq!(Geometry::to_fit(0, 2, 1 << 20).unwrap().slots, 2);
        // The exact size when the power of two does not fit even alone.
        let g = Geometry::to_fit(5 << 20, 8, 6 << 20).unwrap();
        assert_eq!((g.slots, g.slot_size), (1, 5 << 20));
        // Past the limit, or past what a slot can hold: why, with the figures.
        let e = Geometry::to_fit(7 << 20, 8, 6 << 20).unwrap_err();
        assert!(
            e.contains(&format!("{}", 7 << 20)) && e.contains(&format!("{}", 6 << 20)),
            "{e}"
        );
        let e = Geometry::to_fit(MAX_SLOT_SIZE + 1, 1, u64::MAX).unwrap_err();
        assert!(e.contains("at most"), "{e}");
    }

    #[test]
    fn two_mappings_of_one_segment_see_each_other() {
        let g = Geometry::new(2, 4096).unwrap();
        let (a, fd) = Segment::create(g).unwrap();
        let b = Segment::map(&fd, g).unwrap();
        a.header().doorbell(3).store(5, Ordering::Release);
        assert_eq!(b.header().doorbell(3).load(Ordering::Acquire), 5);
        assert!(a.slot(2).is_none());
        let sa = a.slot(1).unwrap();
        let sb = b.slot(1).unwrap();
        sa.write_data(0, b"across");
        let mut got = [0u8; 6];
        sb.copy_data(0, &mut got);
        assert_eq!(&got, b"across");
    }

    #[test]
    #[cfg_attr(miri, ignore = "memfd seals are the kernel's, and Miri has no memfd")]
    fn a_segment_cannot_be_shrunk_or_mapped_larger_than_it_is() {
        use rustix::fs::{ftruncate, memfd_create, MemfdFlags};
        let g = Geometry::new(1, 4096).unwrap();
        let (_a, fd) = Segment::create(g).unwrap();
        assert!(ftruncate(&fd, 10).is_err(), "sealed against shrinking");
        let bigger = Geometry::new(8, 4096).unwrap();
        assert!(Segment::map(&fd, bigger).is_err());
        let plain = memfd_create("plain", MemfdFlags::CLOEXEC).unwrap();
        ftruncate(&plain, g.len()).unwrap();
        assert!(
            Segment::map(&plain, g).is_err(),
            "an unsealed memfd is refused"
        );
    }
}
