//! Loading a module: `load` (resolve the path, dlopen, check the ABI and the method
//! table, `memlink_init`) and `unload` (retire, `memlink_shutdown`) per iteration.
//!
//! Unloading never dlcloses, so loading the same path again maps nothing new: it
//! re-inits the image already in memory. Timed on fresh runtimes of
//! `LOADS_PER_RUNTIME` cycles (a runtime has 256 module slots for its life); making
//! the runtimes is not timed.

use criterion::{criterion_group, criterion_main, Criterion};
use memlink_benches::fixture::{private_copy, time_load_unload, time_load_unload_with, Host};
use memlink_runtime::RuntimeConfig;

fn lifecycle(c: &mut Criterion) {
    // `h` keeps basic initialized, so cycles on its path leave the executor running.
    let h = Host::new().expect("build and load the example modules");
    let shared = h.basic_path.clone();
    let copy = private_copy(&shared).expect("copy basic");
    let mut g = c.benchmark_group("lifecycle");
    g.sample_size(30);
    g.bench_function("load_init_unload_image_held_elsewhere", |b| {
        b.iter_custom(|iters| time_load_unload(&shared, iters))
    });
    // The same without the 1 MiB zeroed persistent region a default runtime gives
    // each load.
    let mut bare = RuntimeConfig::default();
    bare.persistent_size = 0;
    g.bench_function(
        "load_init_unload_image_held_elsewhere_no_persistent_region",
        |b| b.iter_custom(|iters| time_load_unload_with(&bare, &shared, iters)),
    );
    // Nothing else holds the copy: each init starts the module's tokio runtime and each
    // shutdown stops it.
    g.bench_function("load_init_unload_executor_start_stop", |b| {
        b.iter_custom(|iters| time_load_unload(&copy, iters))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(4));
    targets = lifecycle
}
criterion_main!(benches);
