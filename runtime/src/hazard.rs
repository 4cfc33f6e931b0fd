//! Hazard pointers: how a call from the host holds its module without a locked
//! instruction.
//!
//! A call must keep its module's memory alive while it runs, and a reload or an unload
//! must free that memory once no call can see it. An `Arc` (or `arc_swap`'s guard) does
//! it with read-modify-write instructions on every call, a few nanoseconds each, and
//! each pulls a cache line that other threads write. Here a thread that owns a shard
//! (`crate::thread`) announces the module it is about to use in that shard's hazard
//! cell with a plain store, then reads the module's slot again: if the slot still holds
//! it, the module stays alive until the cell is cleared, because whoever takes a module
//! out of its slot waits, before freeing it, until no cell names it ([`wait_unpinned`]).
//!
//! The two sides need a full barrier between their store and their load (the reader
//! between announcing and re-reading the slot, the writer between emptying the slot and
//! reading the cells). Calls are many and module changes are rare, so the cost is put on
//! the writer, with the process's asymmetric barriers (`crate::barrier`).
//!
//! A shard has [`CELLS`] cells, so that a call and the nested calls it makes into other
//! modules each hold their own. A thread on the shared shard, or one whose cells are all
//! taken, pins nothing and takes the `arc_swap` path instead.
//!
//! Pinning is not async-signal-safe: a call made from a signal handler that interrupts
//! a pin on the same thread could take the same cell. No call of the runtime is made
//! from a signal handler.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

use crate::barrier::Barriers;
use crate::shard::SHARED;

/// The cells of a shard: as many pointers as its thread can hold at once.
pub(crate) const CELLS: usize = 4;

/// One shard's cells, on cache lines of their own: only the shard's owner writes them,
/// and a reload or unload reads them.
#[repr(align(128))]
struct Cells([AtomicPtr<()>; CELLS]);

/// The cells of the owned shards.
static SHARDS: [Cells; SHARED] =
    [const { Cells([const { AtomicPtr::new(core::ptr::null_mut()) }; CELLS]) }; SHARED];

/// A pointer announced in the calling thread's cell, and found still in its slot after:
/// what it points to is not freed until this is dropped. Not `Send`: the cell is the
/// thread's.
#[derive(Debug)]
pub(crate) struct Pinned<T> {
    cell: &'static AtomicPtr<()>,
    ptr: *const T,
}

impl<T> Pinned<T> {
    /// The pinned pointer.
    #[inline]
    pub(crate) fn get(&self) -> *const T {
        self.ptr
    }
}

impl<T> Drop for Pinned<T> {
    #[inline]
    fn drop(&mut self) {
        // Release: everything the thread did with the pointee happens before a writer
        // that reads the cell empty frees it.
        self.cell.store(core::ptr::null_mut(), Ordering::Release);
    }
}

/// Pins the pointer `slot` holds, from a thread that owns `shard`: `None` when the
/// slot is empty, the shard is the shared one, the thread's cells all hold a pointer,
/// or the slot changed while it was being pinned (take the locked path then).
///
/// The caller must own `shard` for as long as the result lives (a thread's own shard,
/// from `ThreadState::shard`, on that thread): two threads writing one cell would clear
/// each other's pin. That is not a safety contract of this function, which is safe to
/// call with any shard, but of what the pin promises: the writers of `slot` must free
/// what it held only after [`wait_unpinned`].
#[inline]
pub(crate) fn pin<T>(shard: usize, slot: &AtomicPtr<T>, barriers: Barriers) -> Option<Pinned<T>> {
    // Relaxed: only this thread writes its cells.
    let cell = SHARDS
        .get(shard)?
        .0
        .iter()
        .find(|c| c.load(Ordering::Relaxed).is_null())?;
    let ptr = slot.load(Ordering::Acquire);
    if ptr.is_null() {
        return None;
    }
    cell.store(ptr.cast(), Ordering::Relaxed);
    let mut pinned = Pinned { cell, ptr };
    barriers.light();
    // Acquire: the pointee was published with a release store into the slot.
    let again = slot.load(Ordering::Acquire);
    if again != ptr {
        return None;
    }
    // The second reading's pointer, equal in address: should the first pointee have
    // been freed and another put at its address meanwhile, this one is the pointer to
    // what the slot holds now.
    pinned.ptr = again;
    Some(pinned)
}

/// Returns `true` once no thread holds `ptr` pinned. Call it after taking `ptr` out of
/// every slot a reader could pin it from, and before freeing what it points to: a reader
/// that pins it afterwards finds the slot changed and lets it go. `false`, at once, when
/// the barrier could not be run: then it must never be freed.
#[must_use]
pub(crate) fn wait_unpinned<T>(ptr: *const T, barriers: Barriers) -> bool {
    if !barriers.heavy() {
        return false;
    }
    let mut pause = Duration::from_micros(1);
    // Acquire: pairs with the release that cleared the cell, so the reader's use of the
    // pointee happens before the caller frees it.
    while SHARDS
        .iter()
        .flat_map(|s| &s.0)
        .any(|c| c.load(Ordering::Acquire) == ptr.cast_mut().cast())
    {
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(1));
    }
    true
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use super::*;

    /// The calling thread's own shard, as a call would use it.
    fn own_shard() -> usize {
        crate::thread::with(|t| t.shard())
    }

    #[test]
    fn a_pin_holds_the_slot_pointer_until_dropped() {
        let value = 7u64;
        let slot = AtomicPtr::new((&raw const value).cast_mut());
        let barriers = Barriers::of_process();
        let a = own_shard();
        if a == SHARED {
            return; // every owned shard is taken by other test threads: nothing to pin
        }
        let pinned = pin(a, &slot, barriers).expect("pinned");
        assert_eq!(pinned.get(), &raw const value);
        let more: Vec<_> = (1..CELLS)
            .map(|_| pin(a, &slot, barriers).expect("a cell of its own"))
            .collect();
        assert!(
            pin(a, &slot, barriers).is_none(),
            "a thread holds {CELLS} pointers at most"
        );
        drop(more);
        assert!(
            pin(SHARED, &slot, barriers).is_none(),
            "the shared shard pins nothing"
        );
        drop(pinned);
        assert!(pin(a, &slot, barriers).is_some(), "the cell is free again");
        slot.store(core::ptr::null_mut(), Ordering::Release);
        assert!(pin(a, &slot, barriers).is_none(), "an empty slot");
    }

    /// A writer that empties the slot waits for the reader holding the pointer, and
    /// only for it: the reader still reads its value when the writer returns from
    /// nothing but the wait.
    #[test]
    fn a_writer_waits_for_the_pin_it_must_not_free_under() {
        let barriers = Barriers::of_process();
        let boxed = Box::into_raw(Box::new(42u64));
        let slot = Arc::new(AtomicPtr::new(boxed));
        let pinned_now = Arc::new(AtomicBool::new(false));
        let release = Arc::new(AtomicBool::new(false));
        let reader = {
            let (slot, pinned_now, release) = (slot.clone(), pinned_now.clone(), release.clone());
            std::thread::spawn(move || {
                // Every owned shard taken by other test threads: nothing to pin, and
                // nothing to wait for.
                let pinned = pin(own_shard(), &slot, barriers)?;
                pinned_now.store(true, Ordering::Release);
                while !release.load(Ordering::Acquire) {
                    std::thread::yield_now();
                }
                // SAFETY: pinned while the slot held it; the writer frees it only after
                // `wait_unpinned`, which returns once this pin is dropped.
                let read = unsafe { *pinned.get() };
                drop(pinned);
                Some(read)
            })
        };
        while !pinned_now.load(Ordering::Acquire) {
            if reader.is_finished() {
                assert_eq!(reader.join().unwrap(), None);
                // SAFETY: never pinned; the slot still owns it.
                drop(unsafe { Box::from_raw(slot.load(Ordering::Relaxed)) });
                return;
            }
            std::thread::yield_now();
        }
        let taken = slot.swap(core::ptr::null_mut(), Ordering::AcqRel);
        // The waiter compares addresses only: it gets the address, not the pointer.
        let waiter = std::thread::spawn({
            let taken = taken.addr();
            move || {
                assert!(wait_unpinned(
                    core::ptr::without_provenance::<u64>(taken),
                    barriers
                ))
            }
        });
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !waiter.is_finished(),
            "the writer waits while the pin lives"
        );
        release.store(true, Ordering::Release);
        assert_eq!(reader.join().unwrap(), Some(42));
        waiter.join().unwrap();
        // SAFETY: out of the slot, and no pin holds it any more.
        drop(unsafe { Box::from_raw(taken) });
    }
}
