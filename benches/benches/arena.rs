//! The per-call arena against bumpalo. Each iteration is a round of `ARENA_ROUND`
//! allocations followed by one reset, so every allocation really bumps (none returns
//! early on a full arena, none makes bumpalo fetch a new chunk); criterion's throughput
//! line gives allocations per second, and time per iteration / `ARENA_ROUND` is the
//! time per allocation.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memlink_benches::fixture::{BumpRound, MemlinkRound, ARENA_ROUND};

fn arena(c: &mut Criterion) {
    let mut g = c.benchmark_group("arena_alloc_u64_round");
    g.throughput(Throughput::Elements(ARENA_ROUND as u64));
    let mut m = MemlinkRound::new();
    g.bench_function("memlink_alloc", |b| b.iter(|| m.alloc_round()));
    let mut bump = BumpRound::new();
    g.bench_function("bumpalo_alloc", |b| b.iter(|| bump.alloc_round()));
    g.finish();

    let mut g = c.benchmark_group("arena_alloc_with_u64_round");
    g.throughput(Throughput::Elements(ARENA_ROUND as u64));
    g.bench_function("memlink_alloc_with", |b| b.iter(|| m.alloc_with_round()));
    g.bench_function("bumpalo_alloc_with", |b| b.iter(|| bump.alloc_with_round()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = arena
}
criterion_main!(benches);
