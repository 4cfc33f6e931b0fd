//! Many threads calling `basic::noop` by id through one shared `Runtime`. An iteration is
//! one call; the threads split the iterations and the wall time of the whole group is
//! measured, so time per iteration is the inverse of the group's calls per second.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use memlink_benches::fixture::Host;
use memlink_benches::threads;

fn scaling(c: &mut Criterion) {
    let h = Host::new().expect("build and load the example modules");
    let mut g = c.benchmark_group("threads_noop_by_id");
    g.throughput(Throughput::Elements(1));
    for n in threads::counts() {
        g.bench_function(format!("{n}_threads"), |b| {
            b.iter_custom(|iters| threads::time_calls(&h, n, iters))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = scaling
}
criterion_main!(benches);
