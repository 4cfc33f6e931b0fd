//! Zero-copy vs MessagePack: the `datasets` module's exports called with their data read
//! in place and with the same data as MessagePack (operations in `src/zero_copy.rs` and
//! `src/sets.rs`, shared with the report, which says what each includes).
//!
//! `cargo bench -p memlink-benches --bench zero_copy -- bytes/1kib` runs one size; the
//! 64 MiB cases take a few seconds each even with 10 samples. All: about 3 minutes.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use memlink_benches::sets::{Args, SetCase};
use memlink_benches::zero_copy::{Reader, Warmth, ZeroCopy};
use memlink_msdk::archive::{Archivable, Checkable};

fn bytes(c: &mut Criterion, zc: &ZeroCopy) {
    for case in &zc.bytes {
        let mut g = c.benchmark_group(format!("bytes/{}", case.label));
        if case.data.len() > 4 << 20 {
            g.sample_size(10).warm_up_time(Duration::from_millis(100));
        }
        g.bench_function("zero_copy_call", |b| {
            b.iter_custom(|n| zc.time_zero_copy_calls(case, Reader::Peek, Warmth::Warm, n))
        });
        g.bench_function("zero_copy_borrowed", |b| {
            b.iter(|| zc.zero_copy_borrowed(case))
        });
        g.bench_function("zero_copy_cycle", |b| b.iter(|| zc.zero_copy_cycle(case)));
        g.bench_function("msgpack_encode_and_call", |b| {
            b.iter(|| zc.msgpack(case, Reader::Peek))
        });
        g.bench_function("msgpack_preencoded_call", |b| {
            b.iter(|| zc.msgpack_preencoded(case))
        });
        g.finish();
    }
}

fn set<T>(
    g: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>,
    zc: &ZeroCopy,
    set: &SetCase<T>,
) where
    Args<T>: Archivable + serde::Serialize + serde::de::DeserializeOwned + PartialEq,
    <Args<T> as memlink_msdk::rkyv::Archive>::Archived: Checkable,
{
    let rt = &zc.runtime;
    let name = set.name;
    g.bench_function(format!("{name}/validate"), |b| b.iter(|| set.validate()));
    g.bench_function(format!("{name}/msgpack_decode"), |b| {
        b.iter(|| set.msgpack_decode())
    });
    g.bench_function(format!("{name}/zero_copy_call"), |b| {
        b.iter(|| set.zero_copy_call(rt))
    });
    g.bench_function(format!("{name}/msgpack_call"), |b| {
        b.iter(|| set.msgpack_call(rt))
    });
    g.bench_function(format!("{name}/zero_copy_with_archiving"), |b| {
        b.iter(|| set.zero_copy_with_archiving())
    });
    g.bench_function(format!("{name}/msgpack_with_encoding"), |b| {
        b.iter(|| set.msgpack_with_encoding(rt))
    });
}

fn zero_copy(c: &mut Criterion) {
    let zc = ZeroCopy::new().expect("build and load the datasets module");
    bytes(c, &zc);
    let mut g = c.benchmark_group("sets");
    g.sample_size(20);
    set(&mut g, &zc, &zc.sets.log);
    set(&mut g, &zc, &zc.sets.mesh);
    set(&mut g, &zc, &zc.sets.minecraft);
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    targets = zero_copy
}
criterion_main!(benches);
