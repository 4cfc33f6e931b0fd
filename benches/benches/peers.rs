//! The same calls into WebAssembly with wasmtime (`src/peers.rs`): an empty export,
//! `add(2, 3)`, and a 5-byte echo through the guest's linear memory, to set next to
//! the `export` group of `calls.rs`.

use criterion::{criterion_group, criterion_main, Criterion};
use memlink_benches::peers::Wasmtime;

fn wasmtime(c: &mut Criterion) {
    let mut wasm = Wasmtime::new().expect("compile and check the wasm guest");
    let mut g = c.benchmark_group("wasmtime");
    g.bench_function("nop_typed", |b| b.iter(|| wasm.nop()));
    g.bench_function("add_typed", |b| b.iter(|| wasm.add()));
    g.bench_function("echo_hello_linear_memory", |b| b.iter(|| wasm.echo()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = wasmtime
}
criterion_main!(benches);
