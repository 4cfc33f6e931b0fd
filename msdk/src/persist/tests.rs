//! Persistent-region tests; Miri runs them (`cargo +nightly miri test -p memlink-msdk --lib persist`).

use super::*;

#[repr(C, align(64))]
struct Block([u8; 64]);

/// A host-made region: zeroed, 64-aligned, with its generation set.
struct Region(Vec<Block>);

impl Region {
    fn new(bytes: usize, generation: u64) -> Region {
        let mut blocks: Vec<Block> = (0..bytes / 64).map(|_| Block([0; 64])).collect();
        let header = blocks.as_mut_ptr().cast::<PersistentHeader>();
        // SAFETY: the first block is a zeroed, 64-aligned `PersistentHeader`.
        unsafe { (*header).generation = generation };
        Region(blocks)
    }

    fn view(&mut self) -> Persistent<'_> {
        let len = self.0.len() * 64;
        // SAFETY: the blocks outlive the view and are only used through it.
        unsafe { Persistent::from_raw(self.0.as_mut_ptr().cast(), len) }.unwrap()
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
    assert!(
        invalid(p.get_slice(forge(good.offset, 9))).contains("not a u64"),
        "length differs"
    );
    let as_u32 = Ref::<[u32]> {
        offset: good.offset,
        generation: 3,
        len: 4,
        _type: PhantomData,
    };
    assert!(
        invalid(p.get_slice(as_u32)).contains("not a u32"),
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
    let base: *mut u8 = region.0.as_mut_ptr().cast();
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
