//! Persistent memory: state a module builds once and keeps across calls.
//!
//! The host gives every load of a module one persistent region (see
//! [`CallFrame::persistent`](crate::abi::CallFrame::persistent)). A call stores values in
//! it with [`Persistent::store`] and gets back a [`Ref`]: a small, copyable handle
//! (offset, generation, length) that the module may keep in a static, or hand to the host
//! and receive back later. Resolving a `Ref` checks everything a forged or stale handle
//! could get wrong before a byte is read:
//!
//! - the generation: a region belongs to one load, and a `Ref` kept in a static across
//!   an unload and reload of the same image refers to a region that is gone;
//! - the bounds and alignment of the offset;
//! - that a record of exactly that type and length starts there: every record's start
//!   is published in an atomic bitmap after the record is written, so a handle into the
//!   middle of data, or into a record still being written, is refused without reading it.
//!
//! Stored values are never moved, changed or freed while the region lives; references to
//! them live as long as the call ([`Persistent`] is tied to the call's lifetime).
//! Publish a `Ref` to other threads through something that synchronizes (a `Mutex`, a
//! `OnceLock`, an atomic with release/acquire), as for any shared data.
//!
//! Region layout: the [`PersistentHeader`], then one bit per 16 bytes of the region
//! (`AtomicU64` words), then records. A record is a 32-byte record header (the type's
//! whole `TypeId`, the number of values) followed by its data, aligned on its address to
//! its type (at least 16). The header counts values, not bytes: any number of zero-sized
//! values takes 0 bytes, so a byte length would let a forged handle read more of them
//! than were stored (one value of an uninhabited type out of an empty slice).

use core::any::TypeId;
use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU64, Ordering};
use std::fmt;

use crate::abi::PersistentHeader;
use crate::error::{ModuleError, Result};

/// Granule of the region: records start on multiples of it.
const GRANULE: usize = 16;
/// What precedes a record's data, written once before the record is published.
#[repr(C)]
#[derive(Clone, Copy)]
struct RecordHeader {
    /// The stored type, compared whole: a hash of it (64 bits of the `TypeId`, which
    /// is what `TypeId`'s `Hash` feeds a hasher) would let two types whose hashes
    /// collide read each other's bytes, and such a pair can be searched for offline.
    /// Compared within one build: a region serves one load, of one image.
    type_id: TypeId,
    /// How many values of it follow.
    count: u64,
}

/// Room a record's header takes: a whole number of granules, so data stays on one.
const RECORD_HEADER: usize = size_of::<RecordHeader>().next_multiple_of(GRANULE);

// The header sits `RECORD_HEADER` before data aligned to at least a granule.
const _: () = assert!(align_of::<RecordHeader>() <= GRANULE);

/// A handle to a value stored in the persistent region. `T` is the stored type (or
/// `[T]` for a slice).
pub struct Ref<T: ?Sized> {
    offset: u64,
    generation: u64,
    len: u64,
    _type: PhantomData<fn() -> *const T>,
}

impl<T: ?Sized> Clone for Ref<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: ?Sized> Copy for Ref<T> {}

impl<T: ?Sized> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.offset, self.generation, self.len) == (other.offset, other.generation, other.len)
    }
}

impl<T: ?Sized> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ref(offset {}, generation {}, len {})",
            self.offset, self.generation, self.len
        )
    }
}

impl<T: ?Sized> serde::Serialize for Ref<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> core::result::Result<S::Ok, S::Error> {
        (self.offset, self.generation, self.len).serialize(s)
    }
}

impl<'de, T: ?Sized> serde::Deserialize<'de> for Ref<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> core::result::Result<Self, D::Error> {
        let (offset, generation, len) = <(u64, u64, u64)>::deserialize(d)?;
        Ok(Ref {
            offset,
            generation,
            len,
            _type: PhantomData,
        })
    }
}

/// The persistent region, as one call sees it.
#[derive(Clone, Copy)]
pub struct Persistent<'a> {
    base: NonNull<u8>,
    len: usize,
    /// The header's `generation`, read once: the host never writes it again.
    generation: u64,
    /// The header's `used`, the allocation counter, only ever used atomically.
    used: &'a AtomicU64,
    _call: PhantomData<&'a [AtomicU64]>,
}

// SAFETY: the region is shared by every call on every thread by design: the header's
// counter and the bitmap are only used atomically, a record is written once, by the
// thread that reserved it, before it is published with Release, and read only after an
// Acquire load sees it published. Stored types are `Send + Sync`.
unsafe impl Send for Persistent<'_> {}
// SAFETY: as above.
unsafe impl Sync for Persistent<'_> {}

impl fmt::Debug for Persistent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Persistent")
            .field("generation", &self.generation())
            .field("capacity", &self.len)
            .field("used", &self.used())
            .finish()
    }
}

impl<'a> Persistent<'a> {
    /// The region at `ptr`, or `None` when it is null, misaligned or too small for its own
    /// header and bitmap.
    ///
    /// # Safety
    ///
    /// A non-null `ptr` must point to `len` bytes, valid for `'a`, that start with a
    /// [`PersistentHeader`] and that are only ever accessed through this module's
    /// protocol (atomics for the header and bitmap; records written once before they are
    /// published).
    pub unsafe fn from_raw(ptr: *mut u8, len: usize) -> Option<Persistent<'a>> {
        let base = NonNull::new(ptr)?;
        if base.as_ptr().addr() % align_of::<PersistentHeader>() != 0
            || len < data_start(len) + GRANULE
        {
            return None;
        }
        let header = base.as_ptr().cast::<PersistentHeader>();
        // SAFETY: aligned, in bounds (checked above), and a `PersistentHeader` by the
        // caller's contract, whose `generation` nobody writes any more (a plain read) and
        // whose `used` is only ever accessed atomically: an 8-aligned `u64` (the header is
        // 64-aligned), valid for `'a`, viewed as the atomic it is used as. No reference to
        // the header itself is made.
        let (generation, used) = unsafe {
            (
                (&raw const (*header).generation).read(),
                AtomicU64::from_ptr(&raw mut (*header).used),
            )
        };
        Some(Persistent {
            base,
            len,
            generation,
            used,
            _call: PhantomData,
        })
    }

    /// This region's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Size of the region in bytes.
    pub fn capacity(&self) -> usize {
        self.len
    }

    /// Bytes allocated so far (header and bitmap included).
    pub fn used(&self) -> usize {
        (self.used.load(Ordering::Relaxed) as usize).max(data_start(self.len))
    }

    /// Stores `value` and returns its handle; [`ModuleError::QuotaExceeded`] when the
    /// region is full.
    pub fn store<T: Copy + Send + Sync + 'static>(&self, value: T) -> Result<Ref<T>> {
        self.store_with::<T>(1, |dst| {
            // SAFETY: `dst` is valid, aligned and ours for one `T` (see `store_with`).
            unsafe { dst.write(value) }
        })
    }

    /// Stores a copy of `values` and returns its handle.
    pub fn store_slice<T: Copy + Send + Sync + 'static>(&self, values: &[T]) -> Result<Ref<[T]>> {
        let r = self.store_with::<T>(values.len(), |dst| {
            // SAFETY: `dst` is valid, aligned and ours for `values.len()` elements, and
            // cannot overlap `values`, which the caller borrows from elsewhere.
            unsafe { core::ptr::copy_nonoverlapping(values.as_ptr(), dst, values.len()) }
        })?;
        Ok(Ref {
            offset: r.offset,
            generation: r.generation,
            len: r.len,
            _type: PhantomData,
        })
    }

    /// Reserves a record for `n` values of `T`, lets `write` fill it, then publishes it.
    fn store_with<T: 'static>(&self, n: usize, write: impl FnOnce(*mut T)) -> Result<Ref<T>> {
        let bytes = size_of::<T>()
            .checked_mul(n)
            .ok_or(ModuleError::QuotaExceeded)?;
        let align = align_of::<T>().max(GRANULE);
        let start = data_start(self.len);
        let base = self.base.as_ptr().addr();
        let mut data = 0;
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                let from = (used as usize).max(start);
                // Aligned on the address, not on the offset: the host only promises a
                // 64-aligned region, and a type may need more (`#[repr(align(128))]`).
                // The base is 64-aligned and `align` at least 16, so the offset stays on
                // the 16-byte granule the bitmap counts in.
                let at = base
                    .checked_add(from)?
                    .checked_add(RECORD_HEADER)?
                    .checked_next_multiple_of(align)?;
                data = at - base;
                let end = data
                    .checked_add(bytes.max(1))?
                    .checked_next_multiple_of(GRANULE)?;
                (end <= self.len).then_some(end as u64)
            })
            .map_err(|_| ModuleError::QuotaExceeded)?;
        // SAFETY: the bump above gave this call `data - RECORD_HEADER .. end` alone,
        // inside the region (`data` is at least `start + RECORD_HEADER`); the header's
        // place is aligned for it (`data` is on a granule, `RECORD_HEADER` a multiple of
        // one, see the assertion on `RecordHeader`) and `data` for `T` (`align`);
        // nothing reads any of it before the bitmap bit is set below.
        unsafe {
            let record = self.base.as_ptr().add(data - RECORD_HEADER);
            record.cast::<RecordHeader>().write(RecordHeader {
                type_id: TypeId::of::<T>(),
                count: n as u64,
            });
            write(self.base.as_ptr().add(data).cast::<T>());
        }
        // Release: whoever sees the bit (Acquire) sees the record and its data.
        self.bitmap_word(data)
            .fetch_or(bit(data), Ordering::Release);
        Ok(Ref {
            offset: data as u64,
            generation: self.generation(),
            len: n as u64,
            _type: PhantomData,
        })
    }

    /// The value behind `r`, if `r` is a live handle to a `T` in this region.
    pub fn get<T: Copy + Send + Sync + 'static>(&self, r: Ref<T>) -> Result<&'a T> {
        let ptr = self.check::<T>(r.offset, r.generation, r.len, 1)?;
        // SAFETY: `check` proved a published record of one `T` starts there; it is never
        // written again while the region lives, which outlasts `'a`.
        Ok(unsafe { &*ptr })
    }

    /// The values behind `r`, if `r` is a live handle to a `[T]` in this region.
    pub fn get_slice<T: Copy + Send + Sync + 'static>(&self, r: Ref<[T]>) -> Result<&'a [T]> {
        let n = usize::try_from(r.len).map_err(|_| stale("its length is out of range"))?;
        let ptr = self.check::<T>(r.offset, r.generation, r.len, n)?;
        // SAFETY: as in `get`, for `n` elements.
        Ok(unsafe { core::slice::from_raw_parts(ptr, n) })
    }

    fn check<T: 'static>(
        &self,
        offset: u64,
        generation: u64,
        len: u64,
        n: usize,
    ) -> Result<*const T> {
        if generation != self.generation() {
            return Err(stale(&format!(
                "it belongs to generation {generation}, this region is generation {}",
                self.generation()
            )));
        }
        let offset = usize::try_from(offset).map_err(|_| stale("its offset is out of range"))?;
        let bytes = size_of::<T>()
            .checked_mul(n)
            .ok_or_else(|| stale("its length overflows"))?;
        // Every record holds at least one byte (see `store_with`), so a handle of a
        // zero-sized value or an empty slice must still start inside the region: an
        // offset of `len` would index the bitmap one word past its end.
        let placed = offset >= data_start(self.len) + RECORD_HEADER
            && offset < self.len
            && (self.base.as_ptr().addr() + offset).is_multiple_of(align_of::<T>().max(GRANULE));
        if !placed {
            return Err(stale(&format!(
                "offset {offset} is outside the region or misaligned"
            )));
        }
        if offset
            .checked_add(bytes.max(1))
            .is_none_or(|end| end > self.len)
        {
            return Err(stale(&format!(
                "its {bytes} bytes at offset {offset} run past the end of the region"
            )));
        }
        if self.bitmap_word(offset).load(Ordering::Acquire) & bit(offset) == 0 {
            return Err(stale(&format!("no value starts at offset {offset}")));
        }
        // SAFETY: the bit is set, so `store_with` wrote a `RecordHeader` there, in
        // bounds and aligned (`offset` is on a granule and at least `data_start +
        // RECORD_HEADER`, checked above), before it was published (Release/Acquire
        // above); it is never written again.
        let found = unsafe {
            self.base
                .as_ptr()
                .add(offset - RECORD_HEADER)
                .cast::<RecordHeader>()
                .read()
        };
        // The count, not the byte length: they differ for zero-sized values, of which a
        // record of none must not be read as one (see the module's documentation).
        if found.type_id != TypeId::of::<T>() {
            return Err(stale(&format!(
                "the value at offset {offset} is not of type `{}`",
                core::any::type_name::<T>()
            )));
        }
        if found.count != n as u64 || len != n as u64 {
            return Err(stale(&format!(
                "the value at offset {offset} holds {} of `{}`, the reference says {len}",
                found.count,
                core::any::type_name::<T>()
            )));
        }
        // SAFETY: in bounds, as checked.
        Ok(unsafe { self.base.as_ptr().add(offset) }
            .cast::<T>()
            .cast_const())
    }

    fn bitmap_word(&self, offset: usize) -> &'a AtomicU64 {
        let word = offset / GRANULE / 64;
        // SAFETY: the bitmap follows the header and has a bit for every granule of the
        // region (see `data_start`); every caller passes `offset < len` (`store_with`
        // reserved at least one byte there, `check` proved it), so the word is inside
        // the bitmap; words are 8-aligned (the header is 64 bytes) and only ever used
        // atomically.
        unsafe {
            &*self
                .base
                .as_ptr()
                .add(size_of::<PersistentHeader>())
                .cast::<AtomicU64>()
                .add(word)
        }
    }
}

/// Where records may begin: after the header and the bitmap.
fn data_start(len: usize) -> usize {
    let words = len.div_ceil(GRANULE).div_ceil(64);
    (size_of::<PersistentHeader>() + words * 8).next_multiple_of(GRANULE)
}

fn bit(offset: usize) -> u64 {
    1 << ((offset / GRANULE) % 64)
}

fn stale(why: &str) -> ModuleError {
    ModuleError::Failed(format!("invalid persistent reference: {why}"))
}

#[cfg(test)]
mod tests;
