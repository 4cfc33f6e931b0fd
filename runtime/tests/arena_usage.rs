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

/// An `ArgBuffer` belongs to the runtime that made it: given by value to a call of another
/// runtime (whose arenas are of another size), it is lent for that call and goes back to
/// its own pool. Before, it joined the other runtime's pool, whose later calls then ran in
/// an arena of the wrong size, and whose next large `arg_buffer` panicked.
#[test]
fn an_argument_buffer_of_another_runtime_goes_back_to_its_own() {
    use memlink_runtime::{resolver::LocalResolver, CallOptions, Runtime, RuntimeConfig};
    let small = Runtime::new(RuntimeConfig::default().arena_size(4096), LocalResolver);
    let (rt, h) = load("arena_usage");
    let stats = rt.method(h, "arena_stats").unwrap();
    let args = mp(&(10u32,));
    for _ in 0..3 {
        let mut foreign = small.arg_buffer(args.len());
        foreign.copy_from_slice(&args);
        let out = rt
            .call_method(stats, foreign, &CallOptions::default())
            .unwrap();
        let (cap, used, _): (usize, usize, usize) = common::de(&out);
        assert_eq!((cap, used), (64 * 1024, 10), "the call's own arena, whole");
    }
    for _ in 0..3 {
        let (cap, ..): (usize, usize, usize) = rt.call_typed(h, "arena_stats", &(10u32,)).unwrap();
        assert_eq!(cap, 64 * 1024, "the runtime's arenas are all of its size");
    }
    // Larger than the other runtime's arenas, within this one's: one of its pool's.
    assert_eq!(rt.arg_buffer(10_000).len(), 10_000);
}

/// A runtime whose arena size no allocation can give (which its loads refuse, naming
/// the setting) still hands out argument buffers: one of the length asked for, zeroed,
/// which a call of another runtime takes. Before, `arg_buffer(16)` took an arena of that
/// size from the pool: it aborted the process when the allocator had no memory for it,
/// and panicked with "capacity overflow" for one past any allocation. Run in a child
/// process, which the abort ends.
#[test]
fn an_argument_buffer_of_a_runtime_whose_arenas_cannot_be_allocated_is_one_of_its_own() {
    common::in_child(
        "an_argument_buffer_of_a_runtime_whose_arenas_cannot_be_allocated_is_one_of_its_own",
        &[],
        || {
            use memlink_runtime::{resolver::LocalResolver, CallOptions, Runtime, RuntimeConfig};
            let (rt, h) = load("arena_usage");
            let reverse = rt.method(h, "reverse_words").unwrap();
            for size in [1usize << 50, usize::MAX / 2] {
                let config = RuntimeConfig::default().arena_size(size);
                let unusable = Runtime::new(config, LocalResolver);
                let mut buffer = unusable.arg_buffer(7);
                assert_eq!(*buffer, [0; 7], "arena size {size}");
                buffer.copy_from_slice(b"one two");
                let out = rt
                    .call_method(reverse, buffer, &CallOptions::default())
                    .unwrap();
                assert_eq!(&*out, b"two one", "arena size {size}");
            }
        },
    );
}
