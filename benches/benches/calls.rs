//! Exports called through the whole host path (`Runtime` to module and back, the output
//! dropped, which returns the arena to the pool), and a module calling another one.

use criterion::{criterion_group, criterion_main, Criterion};
use memlink_benches::fixture::Host;
use memlink_runtime::RuntimeConfig;

fn exports(c: &mut Criterion) {
    let h = Host::new().expect("build and load the example modules");
    let mut g = c.benchmark_group("export");
    g.bench_function("noop_by_id", |b| b.iter(|| h.noop_by_id()));
    let quiet = Host::with_config(RuntimeConfig::default().builtin_metrics(false))
        .expect("load the example modules");
    g.bench_function("noop_by_id_builtin_metrics_off", |b| {
        b.iter(|| quiet.noop_by_id())
    });
    g.bench_function("noop_by_name", |b| b.iter(|| h.noop_by_name()));
    g.bench_function("echo_hello_raw_by_name", |b| b.iter(|| h.echo_raw()));
    g.bench_function("echo_hello_raw_by_id", |b| b.iter(|| h.echo_raw_by_id()));
    g.bench_function("echo_hello_msgpack_by_name", |b| {
        b.iter(|| h.echo_msgpack())
    });
    g.bench_function("add_msgpack_preencoded_by_name", |b| {
        b.iter(|| h.add_msgpack())
    });
    g.bench_function("add_call_typed_encode_call_decode", |b| {
        b.iter(|| h.add_typed())
    });
    g.finish();

    let mut g = c.benchmark_group("nested");
    g.bench_function("echo_hello_direct", |b| b.iter(|| h.echo_raw()));
    g.bench_function("relay_to_echo_hello", |b| b.iter(|| h.relay_echo()));
    g.bench_function("relay_to_noop", |b| b.iter(|| h.relay_noop()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = exports
}
criterion_main!(benches);
