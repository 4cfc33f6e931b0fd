//! The zero-copy vs MessagePack set: the same exports of the `datasets` example module
//! called with arguments read in place (raw bytes or an rkyv archive) and with the same
//! data as MessagePack, for byte buffers of 64 B to 64 MiB and for the record sets of
//! [`crate::sets`]. Defined once here for the report ([`figures`]) and criterion
//! (`benches/zero_copy.rs`).
//!
//! A byte buffer's zero-copy call is timed from `call_buffer` until the output is back:
//! the host writing its bytes into the buffer (its data, produced once whichever way it
//! travels) and dropping the output (which releases the buffer) are outside the timer;
//! the `zero_copy_cycle_*` figures time getting the buffer, the call and the release.

use std::hint::black_box;
use std::time::{Duration, Instant};

use memlink_example_types::datasets::{self, BytesRef};
use memlink_runtime::resolver::LocalResolver;
use memlink_runtime::{
    ArgBuffer, CallOptions, CallOutput, MethodRef, ModuleHandle, ModuleRef, Runtime, RuntimeConfig,
};

use crate::figures::Report;
use crate::fixture::mp;
use crate::measure::{self, Config, Sample};
use crate::sets::{SetCase, Sets};

/// The byte buffer sizes, by the label their report keys carry.
pub const BYTE_SIZES: &[(&str, usize)] = &[
    ("64b", 64),
    ("1kib", 1 << 10),
    ("4kib", 4 << 10),
    ("1mib", 1 << 20),
    ("64mib", 64 << 20),
];

/// The keys the zero-copy issue asks for; the report says if one is missing.
pub const REQUIRED_KEYS: &[&str] = &[
    "zero_copy_1kib_ns",
    "zero_copy_64mib_ns",
    "msgpack_64mib_ns",
    "log_validate_ns",
    "log_msgpack_decode_ns",
];

/// One buffer size: the bytes, their MessagePack form and the right answers.
#[derive(Debug)]
pub struct ByteCase {
    /// `64b`, `1kib`, ...: the infix of its report keys.
    pub label: &'static str,
    /// The bytes (a fixed pattern).
    pub data: Vec<u8>,
    /// `[bin]`: the bytes as the one argument of a MessagePack export, pre-encoded.
    pub packed: Vec<u8>,
    /// What `bytes_peek` must return, encoded.
    pub peek: Vec<u8>,
    /// What `bytes_sum` must return, encoded.
    pub sum: Vec<u8>,
}

impl ByteCase {
    fn new(label: &'static str, len: usize) -> ByteCase {
        let mut data = vec![0; len];
        datasets::fill_bytes(&mut data);
        ByteCase {
            label,
            packed: mp(&(BytesRef(&data),)),
            peek: mp(&datasets::peek(&data)),
            sum: mp(&datasets::byte_sum(&data)),
            data,
        }
    }

    /// The buffer's first, middle and last positions: what `bytes_peek` reads.
    fn probes(&self) -> [usize; 3] {
        let n = self.data.len();
        [0, n / 2, n - 1]
    }
}

/// The cache state a zero-copy call is timed in (see [`ZeroCopy::time_zero_copy_calls`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmth {
    /// The call path warmed by an untimed small call after the filling.
    Warm,
    /// Right after the host wrote the buffer.
    AfterFill,
}

/// Which export of a pair: the one that looks at three bytes, or the one that reads all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reader {
    /// `bytes_peek`: the length and three bytes, so the figure is the cost of passing.
    Peek,
    /// `bytes_sum`: every byte.
    Sum,
}

/// A default runtime with the `datasets` module loaded (release build), the byte cases
/// and the record sets, every operation checked.
#[derive(Debug)]
pub struct ZeroCopy {
    /// The runtime.
    pub runtime: Runtime,
    /// The `datasets` module.
    pub module: ModuleHandle,
    /// The byte buffers, in the order of [`BYTE_SIZES`].
    pub bytes: Vec<ByteCase>,
    /// The record sets.
    pub sets: Sets,
    peek: MethodRef,
    peek_msgpack: MethodRef,
    sum: MethodRef,
    sum_msgpack: MethodRef,
    /// What one `Instant::now()` adds to a timed region, subtracted from per-call timings.
    pub timer_ns: f64,
    /// The runtime's arena size: argument buffers up to it are arenas from the pool.
    arena_size: usize,
}

impl ZeroCopy {
    /// Builds the example modules, loads `datasets`, makes the data and checks each
    /// operation once (right result, no error).
    pub fn new() -> Result<ZeroCopy, String> {
        let path = crate::modules::example("datasets")?;
        let config = RuntimeConfig::default();
        let arena_size = config.arena_size;
        let runtime = Runtime::new(config, LocalResolver);
        let module = runtime
            .load(ModuleRef::from_path(&path))
            .map_err(|e| format!("load {}: {e}", path.display()))?;
        let method = |name| runtime.method(module, name).map_err(|e| e.to_string());
        let zc = ZeroCopy {
            peek: method("bytes_peek")?,
            peek_msgpack: method("bytes_peek_msgpack")?,
            sum: method("bytes_sum")?,
            sum_msgpack: method("bytes_sum_msgpack")?,
            bytes: BYTE_SIZES
                .iter()
                .map(|&(label, len)| ByteCase::new(label, len))
                .collect(),
            sets: Sets::new(&runtime, module)?,
            timer_ns: timer_overhead_ns(),
            arena_size,
            runtime,
            module,
        };
        zc.check()?;
        Ok(zc)
    }

    /// The byte case labelled `label`.
    pub fn case(&self, label: &str) -> &ByteCase {
        self.bytes
            .iter()
            .find(|c| c.label == label)
            .expect("a label of BYTE_SIZES")
    }

    fn check(&self) -> Result<(), String> {
        for case in &self.bytes {
            let expect = |what: &str, got: &[u8], want: &[u8]| {
                if got == want {
                    Ok(())
                } else {
                    Err(format!(
                        "{} bytes, {what}: returned {got:?}, expected {want:?}",
                        case.label
                    ))
                }
            };
            for (reader, want) in [(Reader::Peek, &case.peek), (Reader::Sum, &case.sum)] {
                let out = self.zero_copy_call(self.filled(case), reader);
                expect("zero-copy call", &out, want)?;
                expect("MessagePack", &self.msgpack(case, reader), want)?;
            }
            expect("zero-copy cycle", &self.zero_copy_cycle(case), &case.peek)?;
            expect(
                "borrowed zero-copy",
                &self.zero_copy_borrowed(case),
                &case.peek,
            )?;
            let out = self.msgpack_preencoded(case);
            expect("pre-encoded MessagePack", &out, &case.peek)?;
        }
        Ok(())
    }

    fn method(&self, reader: Reader, msgpack: bool) -> MethodRef {
        match (reader, msgpack) {
            (Reader::Peek, false) => self.peek,
            (Reader::Peek, true) => self.peek_msgpack,
            (Reader::Sum, false) => self.sum,
            (Reader::Sum, true) => self.sum_msgpack,
        }
    }

    /// An argument buffer holding the case's bytes, written by the host in place.
    pub fn filled(&self, case: &ByteCase) -> ArgBuffer {
        let mut buf = self.runtime.arg_buffer(case.data.len());
        buf.copy_from_slice(&case.data);
        buf
    }

    /// `call_buffer` of a filled buffer to `bytes_peek` or `bytes_sum`.
    #[inline]
    pub fn zero_copy_call(&self, buf: ArgBuffer, reader: Reader) -> CallOutput {
        self.runtime
            .call_method(self.method(reader, false), buf, &CallOptions::default())
            .expect("zero-copy call")
    }

    /// Times `iters` zero-copy calls, each on a freshly filled buffer: only the calls
    /// count (filling and dropping the output are not timed), less the timer's own
    /// cost. For criterion's `iter_custom` and the report alike.
    ///
    /// `Warmth::Warm` makes an untimed call between the filling and the timed call, with
    /// a small buffer taking the same path (in an arena, or just over an arena's size so
    /// it has memory of its own): writing a buffer larger than the last-level cache
    /// evicts the call path's code and data, and this puts them back, so every size is
    /// timed in the same state and the figure shows what the size itself costs (the
    /// bytes the export reads may still be out of cache). `Warmth::AfterFill` times the
    /// call right after the host wrote its bytes.
    pub fn time_zero_copy_calls(
        &self,
        case: &ByteCase,
        reader: Reader,
        warmth: Warmth,
        iters: u64,
    ) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let buf = self.filled(case);
            if warmth == Warmth::Warm {
                self.warm_up(case, reader);
            }
            let start = Instant::now();
            let out = self.zero_copy_call(buf, reader);
            total += start.elapsed();
            drop(black_box(out));
        }
        let timer = Duration::from_nanos((self.timer_ns * iters as f64) as u64);
        total.saturating_sub(timer)
    }

    /// The control of [`time_zero_copy_calls`](ZeroCopy::time_zero_copy_calls): the same
    /// buffer filled and the same untimed call made, then the three bytes `bytes_peek`
    /// reads are read by the host itself, timed. What touching those bytes costs in that
    /// state (cache and TLB misses, page walks) with no memlink at all.
    pub fn time_page_walks(&self, case: &ByteCase, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let buf = self.filled(case);
            self.warm_up(case, Reader::Peek);
            let start = Instant::now();
            let mut read = 0u8;
            for i in case.probes() {
                read ^= black_box(&buf)[i];
            }
            black_box(read);
            total += start.elapsed();
        }
        let timer = Duration::from_nanos((self.timer_ns * iters as f64) as u64);
        total.saturating_sub(timer)
    }

    /// Times `iters` zero-copy calls on one buffer kept and lent by reference (written
    /// once, with fresh probe bytes before each call, never zeroed or allocated again),
    /// each after the same untimed warming call as
    /// [`time_zero_copy_calls`](ZeroCopy::time_zero_copy_calls).
    pub fn time_reused_calls(&self, buf: &mut ArgBuffer, case: &ByteCase, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for round in 0..iters {
            for i in case.probes() {
                buf[i] = case.data[i].wrapping_add(round as u8);
            }
            self.warm_up(case, Reader::Peek);
            let start = Instant::now();
            let out = self
                .runtime
                .call_method(self.peek, &*buf, &CallOptions::default())
                .expect("zero-copy call on a lent buffer");
            total += start.elapsed();
            drop(black_box(out));
        }
        let timer = Duration::from_nanos((self.timer_ns * iters as f64) as u64);
        total.saturating_sub(timer)
    }

    /// The untimed call `Warmth::Warm` makes before a timed one: a small buffer taking
    /// the same path (in an arena, or just over an arena's size).
    fn warm_up(&self, case: &ByteCase, reader: Reader) {
        let len = if case.data.len() > self.arena_size {
            self.arena_size + 1
        } else {
            64
        };
        let small = self.runtime.arg_buffer(len);
        drop(black_box(self.zero_copy_call(small, reader)));
    }

    /// `call_method` of `bytes_peek` with the host's own bytes, borrowed for the call:
    /// the module reads them where the host keeps them, and nothing is allocated or
    /// written per call (raw byte arguments need no alignment). Output dropped by the
    /// caller.
    #[inline]
    pub fn zero_copy_borrowed(&self, case: &ByteCase) -> CallOutput {
        self.runtime
            .call_method(self.peek, &case.data, &CallOptions::default())
            .expect("zero-copy call")
    }

    /// The whole zero-copy cycle but the data: `arg_buffer(len)`, the three bytes that
    /// `bytes_peek` reads written, `call_buffer`, and the output (with the buffer)
    /// dropped by the caller.
    #[inline]
    pub fn zero_copy_cycle(&self, case: &ByteCase) -> CallOutput {
        let mut buf = self.runtime.arg_buffer(case.data.len());
        for i in case.probes() {
            buf[i] = case.data[i];
        }
        self.zero_copy_call(buf, Reader::Peek)
    }

    /// `arg_buffer(len)` dropped unused: getting and giving back the argument memory.
    #[inline]
    pub fn arg_buffer_only(&self, case: &ByteCase) -> usize {
        let buf = self.runtime.arg_buffer(case.data.len());
        black_box(buf.as_ptr()).addr()
    }

    /// The bytes encoded as a MessagePack `bin` (`serialize::to_msgpack`, as
    /// `call_typed` encodes), then the MessagePack export by id, which decodes them
    /// into a `Vec<u8>`.
    #[inline]
    pub fn msgpack(&self, case: &ByteCase, reader: Reader) -> CallOutput {
        let packed = memlink_msdk::serialize::to_msgpack(&(BytesRef(&case.data),))
            .expect("encode MessagePack");
        self.runtime
            .call_method(self.method(reader, true), &packed, &CallOptions::default())
            .expect("MessagePack call")
    }

    /// `bytes_peek_msgpack` with the arguments encoded beforehand: the module's decode
    /// and the call only.
    #[inline]
    pub fn msgpack_preencoded(&self, case: &ByteCase) -> CallOutput {
        self.runtime
            .call_method(self.peek_msgpack, &case.packed, &CallOptions::default())
            .expect("MessagePack call")
    }
}

/// What `Instant::now()` costs, as it shows in a region timed with two of them: the
/// median of many back-to-back pairs.
pub fn timer_overhead_ns() -> f64 {
    let mut pairs: Vec<f64> = (0..10_001)
        .map(|_| Instant::now().elapsed().as_nanos() as f64)
        .collect();
    measure::median(&mut pairs)
}

/// Shorter runs than the rest of the report: these operations are slower and many.
fn short(cfg: &Config) -> Config {
    Config {
        warmup: cfg.warmup / 4,
        budget: cfg.budget * 3 / 10,
        batch: cfg.batch,
        min_batches: (cfg.min_batches / 2).max(5),
    }
}

/// One operation per batch and a fixed number of batches (`full`, or 3 for `--quick`),
/// for 64 MiB operations (tens of ms each, or a few hundred ns after tens of ms of
/// untimed preparation).
fn huge(cfg: &Config, full: usize) -> Config {
    Config {
        warmup: Duration::ZERO,
        budget: Duration::ZERO,
        batch: Duration::from_nanos(1),
        min_batches: if cfg.budget >= Duration::from_secs(1) {
            full
        } else {
            3
        },
    }
}

/// Measures the zero-copy set into `report`: byte buffers, record sets, ratios.
pub fn figures(report: &mut Report, cfg: &Config) {
    let zc = match ZeroCopy::new() {
        Ok(zc) => zc,
        Err(e) => {
            eprintln!("  zero_copy: skipped, {e}");
            return;
        }
    };
    eprintln!(
        "  zero_copy: timer overhead {:.1} ns, subtracted from per-call timings",
        zc.timer_ns
    );
    for case in &zc.bytes {
        byte_figures(report, cfg, &zc, case);
    }
    let sets = &zc.sets;
    set_figures(report, cfg, &zc.runtime, &sets.log);
    set_figures(report, cfg, &zc.runtime, &sets.mesh);
    set_figures(report, cfg, &zc.runtime, &sets.minecraft);
    ratios(report);
    for key in REQUIRED_KEYS {
        if report.get(key).is_none() {
            eprintln!("  zero_copy: {key} was not measured");
        }
    }
}

fn byte_figures(report: &mut Report, cfg: &Config, zc: &ZeroCopy, case: &ByteCase) {
    let len = case.data.len();
    let big = len > 4 << 20;
    let c = if big { huge(cfg, 9) } else { short(cfg) };
    // Filling a buffer costs far more than the call once it is large: bound how many
    // fills one batch makes.
    let per_batch = if big {
        1
    } else if len > 64 << 10 {
        8
    } else {
        u64::MAX
    };
    let label = case.label;
    // The 64 MiB call is a few hundred ns measured one at a time: more samples.
    let call_cfg = if big { huge(cfg, 31) } else { c };
    let calls = |reader, warmth| {
        measure::run_batches(&call_cfg, per_batch, |n| {
            zc.time_zero_copy_calls(case, reader, warmth, n)
        })
    };
    let key = |what: &str| format!("{what}_{label}_ns");
    report.ns(
        &key("zero_copy"),
        calls(Reader::Peek, Warmth::Warm),
        &format!("bytes_peek by id via call_buffer, {len} bytes already written in the arg buffer, call path warmed by an untimed call; output dropped untimed"),
    );
    report.ns(
        &key("page_walk"),
        measure::run_batches(&call_cfg, per_batch, |n| zc.time_page_walks(case, n)),
        "control, no memlink: the buffer filled and the same untimed call made as for zero_copy_SIZE_ns, then the 3 bytes bytes_peek reads read by the host, timed",
    );
    let mut kept = zc.filled(case);
    report.ns(
        &key("zero_copy_reused"),
        measure::run_batches(&call_cfg, per_batch, |n| {
            zc.time_reused_calls(&mut kept, case, n)
        }),
        "bytes_peek by id via call_method(&buf): one arg buffer kept and lent by reference (written once, 3 bytes rewritten per call, never zeroed again), warmed as zero_copy_SIZE_ns",
    );
    drop(kept);
    report.ns(
        &key("zero_copy_borrowed"),
        measure::run(&short(cfg), || zc.zero_copy_borrowed(case)),
        "bytes_peek by id via call_method with the host's own bytes (borrowed, nothing allocated or written), output dropped",
    );
    report.ns(
        &key("zero_copy_cycle"),
        measure::run(&c, || zc.zero_copy_cycle(case)),
        "arg_buffer(len) + 3 bytes written + call_buffer(bytes_peek) + output (and buffer) dropped",
    );
    report.ns(
        &key("msgpack"),
        measure::run(&c, || zc.msgpack(case, Reader::Peek)),
        "encode the bytes as a MessagePack bin + bytes_peek_msgpack by id (decodes a Vec<u8>) + output dropped",
    );
    report.ns(
        &key("msgpack_preencoded"),
        measure::run(&c, || zc.msgpack_preencoded(case)),
        "bytes_peek_msgpack by id with pre-encoded arguments, output dropped",
    );
    if big {
        big_byte_figures(report, cfg, zc, case);
    }
}

/// The 64 MiB extras: the cold call, the argument memory alone, and reading every byte.
fn big_byte_figures(report: &mut Report, cfg: &Config, zc: &ZeroCopy, case: &ByteCase) {
    let label = case.label;
    let c = &huge(cfg, 9);
    let calls = |reader, warmth, samples| {
        let c = huge(cfg, samples);
        measure::run_batches(&c, 1, |n| zc.time_zero_copy_calls(case, reader, warmth, n))
    };
    report.ns(
        &format!("zero_copy_after_fill_{label}_ns"),
        calls(Reader::Peek, Warmth::AfterFill, 31),
        "as zero_copy_SIZE_ns, timed right after the host wrote the buffer (the call path's code and data evicted by that write)",
    );
    report.ns(
        &format!("arg_buffer_{label}_ns"),
        measure::run(c, || zc.arg_buffer_only(case)),
        "arg_buffer(len) dropped unused: allocate (zeroed) and free the argument memory",
    );
    report.ns(
        &format!("zero_copy_sum_{label}_ns"),
        calls(Reader::Sum, Warmth::Warm, 9),
        "bytes_sum (reads every byte in place) via call_buffer, buffer already written",
    );
    report.ns(
        &format!("msgpack_sum_{label}_ns"),
        measure::run(c, || zc.msgpack(case, Reader::Sum)),
        "encode as a bin + bytes_sum_msgpack by id (decodes, then reads every byte)",
    );
}

fn set_figures<T>(report: &mut Report, cfg: &Config, runtime: &Runtime, set: &SetCase<T>)
where
    crate::sets::Args<T>: memlink_msdk::archive::Archivable
        + serde::Serialize
        + serde::de::DeserializeOwned
        + PartialEq,
    <crate::sets::Args<T> as memlink_msdk::rkyv::Archive>::Archived:
        memlink_msdk::archive::Checkable,
{
    let c = short(cfg);
    let name = set.name;
    let records = set.args.0.len();
    report.value(&format!("{name}_archive_bytes"), set.archive.len() as f64);
    report.value(&format!("{name}_msgpack_bytes"), set.packed.len() as f64);
    let mut ns = |key: &str, sample: Sample, what: &str| {
        report.ns(
            &format!("{name}_{key}_ns"),
            sample,
            &format!("{} ({records} records)", what.replace("NAME", name)),
        );
    };
    ns(
        "validate",
        measure::run(&c, || set.validate()),
        "memlink_msdk::archive::access of the archive, in the host",
    );
    ns(
        "msgpack_decode",
        measure::run(&c, || set.msgpack_decode()),
        "rmp_serde::from_slice of the compact MessagePack into owned records, dropped",
    );
    ns(
        "msgpack_decode_msdk",
        measure::run(&c, || set.msgpack_decode_msdk()),
        "memlink_msdk::serialize::from_msgpack (the decoder exports run), dropped",
    );
    ns(
        "zero_copy_call",
        measure::run(&c, || set.zero_copy_call(runtime)),
        "NAME_checksum by id, pre-built archive read in place: validate + checksum",
    );
    ns(
        "msgpack_call",
        measure::run(&c, || set.msgpack_call(runtime)),
        "NAME_checksum_msgpack by id, pre-encoded: decode + checksum",
    );
    ns(
        "zero_copy_with_archiving",
        measure::run(&c, || set.zero_copy_with_archiving()),
        "ArchivedMethod::call: archive on the host + call",
    );
    ns(
        "msgpack_with_encoding",
        measure::run(&c, || set.msgpack_with_encoding(runtime)),
        "serialize::to_msgpack (structs as maps) + call by id",
    );
}

/// Ratios of this group's byte figures: (key, numerator, denominator).
const BYTE_RATIOS: &[(&str, &str, &str)] = &[
    (
        "page_walk_64mib_over_1kib",
        "page_walk_64mib_ns",
        "page_walk_1kib_ns",
    ),
    (
        "zero_copy_reused_64mib_over_1kib",
        "zero_copy_reused_64mib_ns",
        "zero_copy_reused_1kib_ns",
    ),
    (
        "zero_copy_64mib_over_1kib",
        "zero_copy_64mib_ns",
        "zero_copy_1kib_ns",
    ),
    (
        "zero_copy_after_fill_64mib_over_zero_copy_1kib",
        "zero_copy_after_fill_64mib_ns",
        "zero_copy_1kib_ns",
    ),
    (
        "zero_copy_borrowed_64mib_over_1kib",
        "zero_copy_borrowed_64mib_ns",
        "zero_copy_borrowed_1kib_ns",
    ),
    (
        "zero_copy_cycle_64mib_over_1kib",
        "zero_copy_cycle_64mib_ns",
        "zero_copy_cycle_1kib_ns",
    ),
    (
        "msgpack_64mib_over_zero_copy_64mib",
        "msgpack_64mib_ns",
        "zero_copy_64mib_ns",
    ),
    (
        "msgpack_64mib_over_zero_copy_borrowed_64mib",
        "msgpack_64mib_ns",
        "zero_copy_borrowed_64mib_ns",
    ),
    (
        "msgpack_64mib_over_zero_copy_cycle_64mib",
        "msgpack_64mib_ns",
        "zero_copy_cycle_64mib_ns",
    ),
    (
        "msgpack_sum_64mib_over_zero_copy_sum_64mib",
        "msgpack_sum_64mib_ns",
        "zero_copy_sum_64mib_ns",
    ),
    (
        "msgpack_1kib_over_zero_copy_1kib",
        "msgpack_1kib_ns",
        "zero_copy_1kib_ns",
    ),
];

/// Ratios of each record set's figures: (key suffix, numerator, denominator) after the
/// set's name.
const SET_RATIOS: &[(&str, &str, &str)] = &[
    ("decode_over_validate", "msgpack_decode_ns", "validate_ns"),
    (
        "msgpack_call_over_zero_copy_call",
        "msgpack_call_ns",
        "zero_copy_call_ns",
    ),
    (
        "msgpack_with_encoding_over_zero_copy_with_archiving",
        "msgpack_with_encoding_ns",
        "zero_copy_with_archiving_ns",
    ),
];

/// Ratios of this group's figures, all from this run.
fn ratios(report: &mut Report) {
    for (key, n, d) in BYTE_RATIOS {
        report.ratio(key, n, d);
    }
    // What 64 MiB adds over 1 KiB, beside what the control says touching the same bytes
    // adds without memlink: the remainder is the runtime's.
    let added = |what: &str| {
        Some(report.get(&format!("{what}_64mib_ns"))? - report.get(&format!("{what}_1kib_ns"))?)
    };
    if let (Some(call), Some(walk)) = (added("zero_copy"), added("page_walk")) {
        report.value("zero_copy_64mib_added_ns", call);
        report.value("page_walk_64mib_added_ns", walk);
        report.value("zero_copy_64mib_added_beyond_page_walks_ns", call - walk);
    }
    for set in ["log", "mesh", "minecraft"] {
        for (key, n, d) in SET_RATIOS {
            let at = |k: &str| format!("{set}_{k}");
            report.ratio(&at(key), &at(n), &at(d));
        }
    }
}
