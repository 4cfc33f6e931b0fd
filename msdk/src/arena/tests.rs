//! Arena tests; Miri runs them (`cargo +nightly miri test -p memlink-msdk --lib arena`).

use super::*;

/// Host-side memory for an arena: 16-byte aligned, as the runtime provides it.
struct Region(Vec<u128>);

impl Region {
    fn new(bytes: usize) -> Region {
        Region(vec![0; bytes.div_ceil(16)])
    }

    fn arena(&mut self) -> Arena {
        let len = self.0.len() * 16;
        // SAFETY: the vector outlives every arena made in these tests and is not touched
        // while the arena is alive.
        unsafe { Arena::new(self.0.as_mut_ptr().cast(), len) }
    }
}

#[test]
fn alloc_gives_default_initialized_values() {
    let mut r = Region::new(64);
    let arena = r.arena();
    let a = arena.alloc::<u64>().unwrap();
    assert_eq!(*a, 0);
    *a = 42;
    let b = arena.alloc::<(u8, u32)>().unwrap();
    assert_eq!(*b, (0, 0));
    assert_eq!(*a, 42, "a later allocation must not overlap an earlier one");
}

#[test]
fn seed_pattern_writes_through_the_slot() {
    let mut r = Region::new(64);
    let arena = r.arena();
    let slot = arena.alloc::<u64>().unwrap();
    // SAFETY: `slot` is a valid, aligned `&mut u64`; `u64` has no drop glue to skip.
    unsafe { std::ptr::write(slot, 42) };
    assert_eq!(*slot, 42);
}

#[test]
fn alignment_is_on_the_absolute_address() {
    let mut r = Region::new(256);
    let arena = r.arena();
    arena.alloc_bytes(1).unwrap();
    for align in [2usize, 4, 8, 16, 32, 64] {
        let s = arena.alloc_bytes_aligned(3, align).unwrap();
        assert_eq!(s.as_ptr().addr() % align, 0, "align {align}");
    }
    let v = arena.alloc_with(|| 7u128).unwrap();
    assert_eq!((v as *mut u128).addr() % mem_align::<u128>(), 0);
}

fn mem_align<T>() -> usize {
    core::mem::align_of::<T>()
}

#[test]
fn alignment_holds_when_the_region_itself_is_misaligned() {
    let mut r = Region::new(64);
    let base: *mut u8 = r.0.as_mut_ptr().cast();
    // SAFETY: bytes 1..63 of a 64-byte region are valid and used by no one else.
    let arena = unsafe { Arena::new(base.add(1), 62) };
    let x = arena.alloc::<u64>().unwrap();
    assert_eq!((x as *mut u64).addr() % 8, 0);
    assert_eq!(
        arena.used(),
        8 + 7,
        "the u64, then 7 bytes of padding up to the end"
    );
}

#[test]
fn exhaustion_is_none_and_leaves_the_arena_usable() {
    let mut r = Region::new(32);
    let arena = r.arena();
    assert!(arena.alloc_bytes(24).is_some());
    assert!(arena.alloc::<u128>().is_none(), "16 bytes do not fit in 8");
    assert_eq!(arena.used(), 24, "a failed allocation uses nothing");
    assert!(arena.alloc::<u64>().is_some());
    assert_eq!(arena.remaining(), 0);
    assert!(arena.alloc::<u8>().is_none());
    assert!(
        arena.alloc_bytes(usize::MAX).is_none(),
        "overflow is a failure, not a wrap"
    );
    assert!(
        arena.alloc_bytes_aligned(1, 3).is_none(),
        "3 is not a power of two"
    );
}

#[test]
fn alloc_with_does_not_run_the_closure_without_room() {
    let arena = Arena::empty();
    let mut ran = false;
    assert!(arena
        .alloc_with(|| {
            ran = true;
            1u32
        })
        .is_none());
    assert!(!ran);
}

#[test]
fn zero_sized_allocations_need_no_room() {
    let arena = Arena::empty();
    assert!(arena.alloc::<()>().is_some());
    assert_eq!(arena.alloc_bytes(0).unwrap().len(), 0);
    assert_eq!(arena.alloc_slice_copy::<u64>(&[]).unwrap().len(), 0);
    assert_eq!(arena.used(), 0);
}

#[test]
fn slices_and_strings_are_copied_intact() {
    let mut r = Region::new(256);
    let arena = r.arena();
    let bytes = arena.alloc_bytes(5).unwrap();
    assert_eq!(bytes, &[0; 5]);
    bytes.copy_from_slice(b"hello");
    let nums = arena.alloc_slice_copy(&[1u32, 2, 3]).unwrap();
    nums[1] = 20;
    let s = arena.alloc_str("héllo").unwrap();
    s.make_ascii_uppercase();
    let sq = arena.alloc_slice_fill_with(4, |i| (i * i) as u16).unwrap();
    assert_eq!(bytes, b"hello");
    assert_eq!(nums, &[1, 20, 3]);
    assert_eq!(s, "HéLLO");
    assert_eq!(sq, &[0, 1, 4, 9]);
}

#[test]
fn reset_makes_the_region_reusable() {
    let mut r = Region::new(32);
    let mut arena = r.arena();
    let first = arena.alloc::<u64>().unwrap() as *mut u64;
    arena.alloc_bytes(24).unwrap();
    assert!(arena.alloc::<u8>().is_none());
    arena.reset();
    assert_eq!(arena.used(), 0);
    let again = arena.alloc::<u64>().unwrap();
    assert_eq!(
        *again, 0,
        "reset memory is initialized again before it is handed out"
    );
    assert_eq!(again as *mut u64, first);
}

#[test]
fn contains_knows_the_region() {
    let mut r = Region::new(32);
    let arena = r.arena();
    let x = arena.alloc::<u32>().unwrap() as *const u32;
    assert!(arena.contains(x.cast()));
    let outside = 5u8;
    assert!(!arena.contains(&outside));
}

/// Counts drops, to show the arena never drops what it holds.
struct Tracked<'a>(&'a std::cell::Cell<u32>);

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

#[test]
fn a_panicking_fill_leaks_but_stays_sound() {
    let drops = std::cell::Cell::new(0);
    let mut r = Region::new(256);
    let arena = r.arena();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        arena.alloc_slice_fill_with(4, |i| {
            assert!(i < 2, "stop");
            Tracked(&drops)
        })
    }));
    assert!(result.is_err());
    assert_eq!(
        drops.get(),
        0,
        "the two written elements are leaked, not dropped"
    );
    assert!(
        arena.alloc::<u64>().is_some(),
        "the arena keeps working after the panic"
    );
}

#[test]
fn alloc_rest_with_keeps_what_was_written() {
    let mut r = Region::new(128);
    let base: *mut u8 = r.0.as_mut_ptr().cast();
    // SAFETY: bytes 1..128 of the region are valid and used by no one else.
    let arena = unsafe { Arena::new(base.add(1), 127) };
    arena.alloc_bytes(3).unwrap();
    let kept = arena
        .alloc_rest_with(16, |rest| {
            assert_eq!(
                rest.len(),
                128 - 16 - 3,
                "the free space, from the first 16-byte boundary up to the top allocations"
            );
            for (i, b) in rest[..5].iter_mut().enumerate() {
                b.write(i as u8);
            }
            Some(5)
        })
        .unwrap();
    assert_eq!(kept, &[0, 1, 2, 3, 4]);
    assert_eq!(kept.as_ptr().addr() % 16, 0);
    assert!(arena.contains_slice(kept));
    assert_eq!(
        arena.used(),
        3 + 15 + 5,
        "the top 3, the padding, the 5 kept"
    );
    assert!(arena.alloc_rest_with(16, |_| None).is_none());
    assert_eq!(arena.used(), 3 + 15 + 5, "a refused fill allocates nothing");
    assert!(
        arena
            .alloc_rest_with(16, |rest| Some(rest.len() + 1))
            .is_none(),
        "cannot claim more than exists"
    );
    let next = arena.alloc::<u64>().unwrap() as *mut u64;
    assert!(
        next.addr() >= kept.as_ptr().addr() + 5,
        "later allocations do not overlap it"
    );
}

#[test]
fn a_copy_lands_aligned_with_the_bytes_and_never_over_an_earlier_allocation() {
    let mut r = Region::new(64);
    let arena = r.arena();
    let first = arena.alloc_bytes(3).unwrap();
    first.copy_from_slice(b"abc");
    let copy = arena.alloc_copy_aligned(b"hello", 16).unwrap();
    assert_eq!(copy, b"hello");
    assert_eq!(copy.as_ptr().addr() % 16, 0);
    assert_eq!(first, b"abc", "the copy did not overlap the earlier bytes");
    assert!(arena.alloc_copy_aligned(&[7; 64], 16).is_none(), "no room");
    assert!(
        arena.alloc_copy_aligned(b"x", 3).is_none(),
        "not a power of two"
    );
    assert_eq!(arena.alloc_copy_aligned(b"", 16).unwrap(), b"");
}
