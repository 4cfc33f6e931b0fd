//! `cargo bench -p memlink-msdk`: the figures the SDK's README quotes, measured here.
//!
//! - `echo_empty` and `echo_small`: an export called through the module's own entry
//!   point (`memlink_call`), the way a host calls it, with `TestContext` as the host (an
//!   arena it lends, the frame, the arguments' checks, the result copied into a `Vec`).
//!   The runtime's own figures, the call through a real host, are `memlink-benches`'
//!   report (`cargo run --release -p memlink-benches --bin report`).
//! - `alloc_u64` and `alloc_with`: the per-call arena, a round of `ROUND` allocations
//!   and one reset per iteration (criterion's throughput line is allocations a second).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memlink_msdk::arena::Arena;
use memlink_msdk::prelude::*;
use memlink_msdk::testing::TestContext;

/// The README's echo: a string in, the same string out (raw bytes both ways).
#[memlink_export]
pub fn echo(_ctx: &CallContext, input: String) -> Result<String> {
    Ok(input)
}

fn calls(c: &mut Criterion) {
    // The test host allocates and zeroes each call's arena: 64 KiB by default, about a
    // microsecond, more than the call. Echo's result goes back in the frame.
    let host = TestContext::new().arena_size(64);
    assert_eq!(host.call("echo", b"hello").unwrap(), b"hello");
    let mut g = c.benchmark_group("call");
    g.throughput(Throughput::Elements(1));
    g.bench_function("echo_empty", |b| {
        b.iter(|| host.call("echo", black_box(b"")))
    });
    g.bench_function("echo_small", |b| {
        b.iter(|| host.call("echo", black_box(b"hello")))
    });
    g.finish();
}

/// Allocations between two resets: every one bumps, none finds the arena full.
const ROUND: usize = 1000;

fn arena(c: &mut Criterion) {
    let mut memory = vec![0u64; ROUND];
    // SAFETY: `memory` is valid for reads and writes of its bytes, outlives the arena
    // (declared before it, dropped after), and is reached only through the arena.
    let mut arena = unsafe { Arena::new(memory.as_mut_ptr().cast(), memory.len() * 8) };
    let mut g = c.benchmark_group("arena");
    g.throughput(Throughput::Elements(ROUND as u64));
    g.bench_function("alloc_u64", |b| {
        b.iter(|| {
            for _ in 0..ROUND {
                black_box(arena.alloc::<u64>().expect("room for the round"));
            }
            arena.reset();
        })
    });
    g.bench_function("alloc_with", |b| {
        b.iter(|| {
            for _ in 0..ROUND {
                black_box(arena.alloc_with(|| 42u64).expect("room for the round"));
            }
            arena.reset();
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = calls, arena
}
criterion_main!(benches);
