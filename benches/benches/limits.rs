//! The limits the call path is compared with: calls with no memlink in them.

use criterion::{criterion_group, criterion_main, Criterion};
use memlink_benches::fixture::{call_rust_direct, call_rust_pointer, Baseline};

fn limits(c: &mut Criterion) {
    let base = Baseline::load().expect("build and load the baseline library");
    let mut g = c.benchmark_group("limit");
    g.bench_function("extern_c_noop_via_dlsym_pointer", |b| {
        b.iter(|| base.call_noop())
    });
    g.bench_function("extern_c_add_via_dlsym_pointer", |b| {
        b.iter(|| base.call_add())
    });
    g.bench_function("rust_direct_call_add", |b| b.iter(call_rust_direct));
    g.bench_function("rust_fn_pointer_noop", |b| b.iter(call_rust_pointer));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = limits
}
criterion_main!(benches);
