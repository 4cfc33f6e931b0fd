//! Persistent-region tests; Miri runs them (`cargo +nightly miri test -p memlink-msdk --lib persist`).

use super::*;

#[repr(C, align(64))]
struct Block([u8; 64]);

/// A host-made region: zeroed, 64-aligned, with its generation set.
struct Region {
    blocks: Vec<Block>,
    /// The block the region starts at.
    first: usize,
}

impl Region {
    fn new(bytes: usize, generation: u64) -> Region {
        Region::starting_at(bytes, generation, |_| true)
    }

    /// A region of `bytes` whose start is 64 past a 128-byte boundary: aligned as the
    /// host promises (64) and no more, so an offset aligned within the region is not an
    /// address aligned for a type that needs 128.
    fn off_128(bytes: usize, generation: u64) -> Region {
        Region::starting_at(bytes, generation, |addr| addr % 128 == 64)
    }

    /// `bytes` of region starting at the first of two blocks whose address `good` takes.
    fn starting_at(bytes: usize, generation: u64, good: impl Fn(usize) -> bool) -> Region {
        let mut blocks: Vec<Block> = (0..bytes / 64 + 1).map(|_| Block([0; 64])).collect();
        let first = usize::from(!good(blocks.as_ptr().addr()));
        assert!(
            good(blocks[first..].as_ptr().addr()),
            "one of two blocks fits"
        );
        let header = blocks[first..].as_mut_ptr().cast::<PersistentHeader>();
        // SAFETY: the block is a zeroed, 64-aligned `PersistentHeader`.
        unsafe { (*header).generation = generation };
        blocks.truncate(first + bytes / 64);
        Region { blocks, first }
    }

    fn base(&mut self) -> *mut u8 {
        self.blocks[self.first..].as_mut_ptr().cast()
    }

    fn view(&mut self) -> Persistent<'_> {
        let len = (self.blocks.len() - self.first) * 64;
        // SAFETY: the blocks outlive the view and are only used through it.
        unsafe { Persistent::from_raw(self.base(), len) }.unwrap()
    }
}

fn invalid(r: Result<impl Sized>) -> String {
    match r {
        Err(ModuleError::Failed(m)) => m,
        Err(other) => panic!("expected an invalid-reference error, got {other}"),
        Ok(_) => panic!("expected an error"),
    }
}

#[test]
fn stored_values_come_back() {
    let mut region = Region::new(4096, 7);
    let p = region.view();
    let a = p.store(42u64).unwrap();
    let b = p.store_slice(&[1u16, 2, 3]).unwrap();
    let c = p.store((1u8, 2.5f64)).unwrap();
    assert_eq!(*p.get(a).unwrap(), 42);
    assert_eq!(p.get_slice(b).unwrap(), &[1, 2, 3]);
    assert_eq!(*p.get(c).unwrap(), (1, 2.5));
    assert_eq!(
        p.get_slice(p.store_slice::<u32>(&[]).unwrap()).unwrap(),
        &[] as &[u32]
    );
}

#[test]
fn a_ref_from_another_generation_is_stale() {
    let mut old = Region::new(4096, 1);
    let r = old.view().store(5u32).unwrap();
    let mut new = Region::new(4096, 2);
    let p = new.view();
    p.store(9u32).unwrap();
    let text = invalid(p.get(r));
    assert!(
        text.contains("generation 1, this region is generation 2"),
        "{text}"
    );
}

#[test]
fn forged_refs_are_refused_without_reading_foreign_memory() {
    let mut region = Region::new(4096, 3);
    let p = region.view();
    let good = p.store_slice(&[10u64, 20, 30, 40]).unwrap();
    let forge = |offset: u64, len: u64| Ref::<[u64]> {
        offset,
        generation: 3,
        len,
        _type: PhantomData,
    };
    assert!(invalid(p.get_slice(forge(1 << 40, 1))).contains("outside the region"));
    assert!(invalid(p.get_slice(forge(good.offset + 8, 1))).contains("misaligned"));
    assert!(invalid(p.get_slice(forge(good.offset + 16, 1))).contains("no value starts"));
    assert!(invalid(p.get_slice(forge(4096 - 16, 1))).contains("no value starts"));
    // A length the region has no room for is told as such, not as a bad offset.
    assert!(invalid(p.get_slice(forge(good.offset, 1 << 40))).contains("run past the end"));
    assert!(invalid(p.get_slice(forge(good.offset, u64::MAX))).contains("overflows"));
    assert!(
        invalid(p.get_slice(forge(good.offset, 9)))
            .contains("holds 4 of `u64`, the reference says 9"),
        "length differs"
    );
    let as_u32 = Ref::<[u32]> {
        offset: good.offset,
        generation: 3,
        len: 4,
        _type: PhantomData,
    };
    assert!(
        invalid(p.get_slice(as_u32)).contains("is not of type `u32`"),
        "type differs"
    );
    assert_eq!(p.get_slice(good).unwrap(), &[10, 20, 30, 40]);
}

#[test]
fn a_full_region_is_quota_exceeded_and_stays_usable() {
    let mut region = Region::new(1024, 1);
    let p = region.view();
    assert_eq!(
        p.store([0u8; 2048]).unwrap_err(),
        ModuleError::QuotaExceeded
    );
    let small = p.store(1u8).unwrap();
    let mut last = small;
    while let Ok(r) = p.store(2u8) {
        last = r;
    }
    assert!(p.used() <= p.capacity());
    assert_eq!((*p.get(small).unwrap(), *p.get(last).unwrap()), (1, 2));
}

#[test]
fn threads_store_concurrently_and_read_each_others_values() {
    let mut region = Region::new(1 << 16, 1);
    let p = region.view();
    let published = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let published = &published;
            s.spawn(move || {
                for i in 0..8 {
                    let r = p.store(t * 100 + i).unwrap();
                    published.lock().unwrap().push((t * 100 + i, r));
                }
            });
        }
    });
    let all = published.into_inner().unwrap();
    assert_eq!(all.len(), 32);
    for (value, r) in all {
        assert_eq!(*p.get(r).unwrap(), value);
    }
}

#[test]
fn refs_round_trip_through_serde() {
    let mut region = Region::new(4096, 1);
    let p = region.view();
    let r = p.store(77i32).unwrap();
    let json = serde_json::to_string(&r).unwrap();
    let back: Ref<i32> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, r);
    assert_eq!(*p.get(back).unwrap(), 77);
}

#[test]
fn a_region_too_small_or_misaligned_is_none() {
    let mut region = Region::new(128, 1);
    let base = region.base();
    // SAFETY: the pointers are in bounds; `from_raw` refuses them before any access.
    unsafe {
        assert!(
            Persistent::from_raw(base, 64).is_none(),
            "no room after the header"
        );
        assert!(
            Persistent::from_raw(base.add(16), 64).is_none(),
            "misaligned"
        );
        assert!(Persistent::from_raw(core::ptr::null_mut(), 0).is_none());
    }
}

/// A value that needs more alignment than the region's 64 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C, align(128))]
struct Wide(u64);

#[test]
fn values_aligned_past_the_region_are_stored_at_an_aligned_address() {
    let mut region = Region::off_128(1 << 14, 1);
    let p = region.view();
    assert_eq!(
        p.base.as_ptr().addr() % 128,
        64,
        "the region is only 64-aligned"
    );
    let published = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for t in 0..3u64 {
            let (published, p) = (&published, p);
            s.spawn(move || {
                for i in 0..4 {
                    p.store(7u8).unwrap();
                    let r = p.store(Wide(t * 10 + i)).unwrap();
                    published.lock().unwrap().push((t * 10 + i, r));
                }
            });
        }
    });
    for (value, r) in published.into_inner().unwrap() {
        let got = p.get(r).unwrap();
        assert_eq!(core::ptr::from_ref(got).addr() % 128, 0, "aligned for Wide");
        assert_eq!(*got, Wide(value));
    }
    let slice = p.store_slice(&[Wide(1), Wide(2)]).unwrap();
    let got = p.get_slice(slice).unwrap();
    assert_eq!(got.as_ptr().addr() % 128, 0);
    assert_eq!(got, &[Wide(1), Wide(2)]);
}

#[test]
fn a_handle_misaligned_on_its_address_is_refused() {
    let mut region = Region::off_128(4096, 2);
    let p = region.view();
    let good = p.store(Wide(5)).unwrap();
    // 64 bytes earlier is 16-aligned within the region but not 128-aligned in memory.
    let forged = Ref::<Wide> {
        offset: good.offset - 64,
        ..good
    };
    assert!(invalid(p.get(forged)).contains("misaligned"));
}

#[test]
fn an_empty_value_at_the_end_of_the_region_is_outside_it() {
    // 4096 bytes: a multiple of 1024, so `offset == len` would name the bitmap word
    // just past the bitmap's end (the first record's header).
    let mut region = Region::new(4096, 4);
    let p = region.view();
    let unit = p.store(()).unwrap();
    assert_eq!(*p.get(unit).unwrap(), ());
    p.store(0xffff_ffff_ffff_ffffu64).unwrap();
    let at_end = Ref::<()> {
        offset: 4096,
        ..unit
    };
    assert!(invalid(p.get(at_end)).contains("outside the region"));
    let empty = Ref::<[u64]> {
        offset: 4096,
        generation: 4,
        len: 0,
        _type: PhantomData,
    };
    assert!(invalid(p.get_slice(empty)).contains("outside the region"));
}

/// A type no value of which exists: a `&Never` is undefined behaviour to read (`match
/// *r {}`), so the region must never hand one out.
#[derive(Clone, Copy)]
enum Never {}

/// A caller forges a longer handle to zero-sized values (`Ref` is `Deserialize`). Every
/// length of them takes 0 bytes, so a record that knew only its byte length matched any
/// length: an empty `[Never]`, stored without a value, read back as one `Never`, and a
/// zero-sized type whose values are tokens (a proof its constructor ran) was conjured
/// out of an empty slice.
#[test]
fn a_forged_length_of_zero_sized_values_is_refused() {
    let mut region = Region::new(4096, 5);
    let p = region.view();
    let empty = p.store_slice::<Never>(&[]).unwrap();
    assert!(p.get_slice(empty).unwrap().is_empty());
    let forge = |len: u64| format!("[{},5,{len}]", empty.offset);
    let longer: Ref<[Never]> = serde_json::from_str(&forge(1)).unwrap();
    assert!(invalid(p.get_slice(longer)).contains("holds 0 of"));
    let one: Ref<Never> = serde_json::from_str(&forge(1)).unwrap();
    assert!(invalid(p.get(one)).contains("the reference says 1"));

    let units = p.store_slice(&[(); 3]).unwrap();
    let forge = |len: u64| format!("[{},5,{len}]", units.offset);
    let more: Ref<[()]> = serde_json::from_str(&forge(4)).unwrap();
    assert!(invalid(p.get_slice(more)).contains("holds 3 of `()`, the reference says 4"));
    let fewer: Ref<[()]> = serde_json::from_str(&forge(2)).unwrap();
    assert!(invalid(p.get_slice(fewer)).contains("the reference says 2"));
    assert_eq!(p.get_slice(units).unwrap().len(), 3);
}

/// The smallest region the SDK uses is 96 bytes (the header, its bitmap and one record),
/// as `CallContext::persistent` and docs/abi.md say; one byte less is none.
#[test]
fn a_region_under_96_bytes_is_none() {
    let mut region = Region::new(128, 7);
    let base = region.base();
    // SAFETY: the region holds 128 bytes, more than either length, and is used only here.
    let (short, least) = unsafe {
        (
            Persistent::from_raw(base, 95).is_none(),
            Persistent::from_raw(base, 96).is_some(),
        )
    };
    assert!(short && least);
}
