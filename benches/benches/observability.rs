//! A module's metric updates and log calls: each `datasets` export makes one such call
//! `n` times; an iteration is a call with `n = N` less a call with `n = 0`, so criterion's
//! time is that of `N` operations and its throughput is operations per second (what each
//! operation includes: `src/observability.rs`).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memlink_benches::observability::{Observability, N, OPS};

fn observability(c: &mut Criterion) {
    let obs = Observability::new().expect("build and load the datasets module");
    let mut g = c.benchmark_group("observability");
    g.throughput(Throughput::Elements(u64::from(N)));
    for op in OPS {
        let m = obs.method(op).expect("resolve the export");
        let name = op.key.trim_end_matches("_ns");
        g.bench_function(name, |b| b.iter_custom(|iters| obs.time_pairs(m, iters)));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = observability
}
criterion_main!(benches);
