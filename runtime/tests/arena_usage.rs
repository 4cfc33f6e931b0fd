//! The `arena_usage` example: allocations in the call's arena, and its exhaustion.

mod common;

use common::{load, mp};
use memlink_runtime::ModuleError;

#[test]
fn arena_exports_compute_in_the_arena() {
    let (rt, h) = load("arena_usage");
    let v: u64 = rt.call_typed(h, "use_arena", &()).unwrap();
    assert_eq!(v, 42);
    let s: u64 = rt.call_typed(h, "sum_of_squares", &(4u32,)).unwrap();
    assert_eq!(s, 1 + 4 + 9);
    let r: String = rt.call_typed(h, "reverse_words", "one two three").unwrap();
    assert_eq!(r, "three two one");
}

#[test]
fn every_call_starts_with_an_empty_arena_of_the_configured_size() {
    let (rt, h) = load("arena_usage");
    for _ in 0..3 {
        let (cap, used, left): (usize, usize, usize) =
            rt.call_typed(h, "arena_stats", &(1000u32,)).unwrap();
        assert_eq!((cap, used, left), (64 * 1024, 1000, 64 * 1024 - 1000));
    }
}

#[test]
fn exhaustion_is_quota_exceeded_and_the_next_call_works() {
    let (rt, h) = load("arena_usage");
    let err = rt
        .call(h, "sum_of_squares", &mp(&(1_000_000u32,)))
        .unwrap_err();
    assert_eq!(err.module_error(), Some(&ModuleError::QuotaExceeded));
    let s: u64 = rt.call_typed(h, "sum_of_squares", &(3u32,)).unwrap();
    assert_eq!(s, 5);
}
