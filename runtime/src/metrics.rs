//! Metrics: built-in figures for every export, and the modules' own metrics.
//!
//! The runtime counts, for every export, with no module code: calls, errors by status
//! (panics and timeouts among them), a latency histogram, bytes in and out and the
//! arena's high-water mark. Latency is sampled: one call in
//! [`RuntimeConfig::latency_sampling`](crate::RuntimeConfig::latency_sampling) is timed,
//! on average, at random spacings, and the histogram is scaled by that number, so its count and sum estimate every
//! call's; every other figure counts every call exactly. The counts are atomics split
//! into shards: a thread owns a
//! shard (of every export) for its lifetime and updates it with plain loads and stores,
//! no locked instruction and no cache line shared with another thread; threads beyond
//! the owned shards share the last one, with atomic read-modify-writes. A module's
//! own counters, gauges and histograms are read from the module when a snapshot is taken.
//! [`crate::Runtime::metrics`] returns both; [`crate::prometheus`] renders them in the
//! Prometheus text format.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use core::ffi::c_void;

use memlink_abi::{self as abi, MetricRecord, Status};

use crate::health::BreakerState;
use crate::shard::{SHARDS, SHARED};
pub use memlink_abi::{MetricValue, BUCKETS};

/// Statuses counted as errors: every non-`Ok` status the ABI defines.
const STATUSES: usize = 12;

/// The status of a call refused because its module was at its concurrency limit: no
/// status of the ABI (the module never saw the call), counted as errors labelled
/// `saturated`, in the slot after the ABI's.
pub(crate) const SATURATED: i32 = i32::MIN;

/// One shard of an export's figures, on cache lines of its own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Shard {
    calls: AtomicU64,
    /// Per status, then `saturated` ([`SATURATED`]).
    errors: [AtomicU64; STATUSES + 1],
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    latency: [AtomicU64; BUCKETS.len() + 1],
    latency_sum_ns: AtomicU64,
    arena_high_water: AtomicU64,
}

/// The built-in figures of one export.
#[derive(Debug)]
pub(crate) struct MethodStats {
    shards: Box<[Shard]>,
}

impl Default for MethodStats {
    fn default() -> Self {
        MethodStats {
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }
}

/// Adds `n` to a figure of shard `index`: a plain load and store in an owned shard (its
/// only writer is this thread), an atomic add in the shared one.
#[inline]
fn add(index: usize, figure: &AtomicU64, n: u64) {
    if index == SHARED {
        figure.fetch_add(n, Ordering::Relaxed);
    } else {
        figure.store(
            figure.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }
}

/// [`BUCKETS`] (upper bounds in microseconds) as whole half-nanoseconds, so a call's
/// bucket is found with integer compares (the smallest bounds are 1 and 2.5 ns).
const BOUNDS_HALF_NS: [u64; BUCKETS.len()] = {
    let mut out = [0; BUCKETS.len()];
    let mut i = 0;
    while i < BUCKETS.len() {
        // Every bound is a whole number of half-nanoseconds; + 0.5 rounds the product.
        out[i] = (BUCKETS[i] * 2000.0 + 0.5) as u64;
        i += 1;
    }
    out
};

/// The latency bucket of a call that took `ns`: the first whose bound it does not exceed
/// (`BUCKETS.len()` past the last).
fn bucket(ns: u64) -> usize {
    BOUNDS_HALF_NS.partition_point(|&b| b < ns.saturating_mul(2))
}

/// What one call did, for the built-in figures.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallRecord {
    /// The call's status code (0: success).
    pub(crate) status: i32,
    /// For a call that was timed: its latency, and how many calls it stands for (one
    /// call in that many is timed; see `RuntimeConfig::latency_sampling`).
    pub(crate) latency: Option<(u64, u32)>,
    pub(crate) bytes_in: usize,
    pub(crate) bytes_out: usize,
    pub(crate) arena_used: usize,
}

impl MethodStats {
    /// Counts a call refused before the module saw it, made from a thread whose shard is
    /// `shard`: a call, and an error of `status` (why it was refused).
    #[cold]
    #[inline(never)]
    pub(crate) fn refused(&self, shard: usize, status: i32) {
        self.record(
            shard,
            CallRecord {
                status,
                latency: None,
                bytes_in: 0,
                bytes_out: 0,
                arena_used: 0,
            },
        );
    }

    /// Counts one call made from a thread whose shard is `shard`. Always inlined: on
    /// the call path a success's record is mostly constants (status 0), which only an
    /// inlined copy folds.
    #[inline(always)]
    pub(crate) fn record(&self, shard: usize, r: CallRecord) {
        let s = &self.shards[shard];
        add(shard, &s.calls, 1);
        if r.status != 0 {
            let slot = match r.status {
                SATURATED => Some(STATUSES),
                code => usize::try_from(code)
                    .ok()
                    .filter(|&c| c > 0 && c <= STATUSES)
                    .map(|c| c - 1),
            };
            if let Some(slot) = slot {
                add(shard, &s.errors[slot], 1);
            }
        }
        add(shard, &s.bytes_in, r.bytes_in as u64);
        add(shard, &s.bytes_out, r.bytes_out as u64);
        if let Some((ns, weight)) = r.latency {
            // A timed call stands for the `weight` calls around it: the histogram is
            // scaled, so its count and sum estimate every call's.
            add(shard, &s.latency[bucket(ns)], u64::from(weight));
            add(
                shard,
                &s.latency_sum_ns,
                ns.saturating_mul(u64::from(weight)),
            );
        }
        let used = r.arena_used as u64;
        if used > s.arena_high_water.load(Ordering::Relaxed) {
            s.arena_high_water.fetch_max(used, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self, module: &str, method: &str) -> MethodMetrics {
        let sum = |f: &dyn Fn(&Shard) -> &AtomicU64| {
            self.shards
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .sum::<u64>()
        };
        let name = |i: usize| match i {
            STATUSES => "saturated",
            i => status_name(i as i32 + 1),
        };
        let errors = (0..=STATUSES)
            .map(|i| (name(i), sum(&|s: &Shard| &s.errors[i])))
            .filter(|(_, n)| *n > 0)
            .collect();
        let buckets: Vec<u64> = (0..=BUCKETS.len())
            .map(|i| sum(&|s: &Shard| &s.latency[i]))
            .collect();
        MethodMetrics {
            module: module.to_owned(),
            method: method.to_owned(),
            calls: sum(&|s| &s.calls),
            errors,
            bytes_in: sum(&|s| &s.bytes_in),
            bytes_out: sum(&|s| &s.bytes_out),
            latency_count: buckets.iter().sum(),
            latency_sum_micros: sum(&|s| &s.latency_sum_ns) as f64 / 1e3,
            latency_buckets: buckets,
            arena_high_water: self
                .shards
                .iter()
                .map(|s| s.arena_high_water.load(Ordering::Relaxed))
                .max()
                .unwrap_or(0),
        }
    }
}

/// The lower-case name of a status code, as metrics label it.
pub fn status_name(code: i32) -> &'static str {
    match Status::from_code(code) {
        Some(Status::Ok) => "ok",
        Some(Status::QuotaExceeded) => "quota_exceeded",
        Some(Status::CallFailed) => "call_failed",
        Some(Status::Timeout) => "timeout",
        Some(Status::Panic) => "panic",
        Some(Status::Serialize) => "serialize",
        Some(Status::ServiceUnavailable) => "service_unavailable",
        Some(Status::InvalidMethod) => "invalid_method",
        Some(Status::ModuleNotFound) => "module_not_found",
        Some(Status::MaxCallDepthExceeded) => "max_call_depth_exceeded",
        Some(Status::Failed) => "failed",
        Some(Status::Abi) => "abi",
        _ => "unknown",
    }
}

/// The built-in figures of one export.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MethodMetrics {
    /// The module's name.
    pub module: String,
    /// The export's name.
    pub method: String,
    /// Calls made: those that reached the module, and those refused before it saw them
    /// (each also an error: `saturated`, `service_unavailable`, `timeout`).
    pub calls: u64,
    /// Failed calls by status name (`panic`, `timeout`, `serialize`, …, and `saturated`
    /// for a call refused at the module's concurrency limit); absent: none.
    pub errors: Vec<(&'static str, u64)>,
    /// Argument bytes passed in.
    pub bytes_in: u64,
    /// Result (or error payload) bytes passed out.
    pub bytes_out: u64,
    /// Number of calls the latency histogram stands for. One call in
    /// `RuntimeConfig::latency_sampling` is timed and counted that many times, so this
    /// and the histogram are estimates; `calls` is exact. A call refused before the
    /// module saw it is in `calls` but never timed, so this falls short of `calls` by
    /// those even when every call is timed.
    pub latency_count: u64,
    /// Their sum, in microseconds.
    pub latency_sum_micros: f64,
    /// Latencies per bucket of [`BUCKETS`] (microseconds), not cumulative; the last entry
    /// counts those above every bound.
    pub latency_buckets: Vec<u64>,
    /// Most arena bytes one call used.
    pub arena_high_water: u64,
}

impl MethodMetrics {
    /// Failed calls with the status named `name`.
    pub fn errors_of(&self, name: &str) -> u64 {
        self.errors
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0, |(_, c)| *c)
    }
}

/// One module's figures: the built-ins per export and the module's own metrics.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ModuleMetrics {
    /// The module's name.
    pub module: String,
    /// Built-in figures, one entry per export.
    pub methods: Vec<MethodMetrics>,
    /// The module's own metrics, by name.
    pub custom: Vec<(String, MetricValue)>,
    /// Its circuit breaker's state, when the runtime has breakers (see
    /// [`crate::health`]).
    pub breaker: Option<BreakerState>,
    /// Times its breaker opened, its reloads' versions included.
    pub breaker_opened: u64,
}

std::thread_local! {
    /// The `ctx` of the `memlink_metrics` call this thread runs (null outside one): what
    /// [`collect`] takes a `ctx` to be before it writes through it.
    static READING: Cell<*mut c_void> = const { Cell::new(core::ptr::null_mut()) };
    /// Why [`collect`] skipped a record of the read this thread runs, if it did.
    static SKIPPED: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// A module's own metrics, read through its `memlink_metrics` export; a record skipped
/// is said once for the module (`told`).
pub(crate) fn read_custom(
    read: abi::MetricsFn,
    module: &str,
    told: &crate::log::Told,
) -> Vec<(String, MetricValue)> {
    let mut custom: Vec<(String, MetricValue)> = Vec::new();
    let ctx: *mut c_void = (&raw mut custom).cast();
    // Put back as it was, so a read inside another (a module reading a module's
    // metrics, through the host) leaves the outer one's `ctx` in place.
    let outer = READING.replace(ctx);
    let outer_skipped = SKIPPED.take();
    // SAFETY: the module's `memlink_metrics` with the ABI's signature; `collect` only
    // reads each record during its call, and writes through `ctx` only while this read
    // runs on this thread (`READING`), where `custom` is alive and not otherwise used.
    unsafe { read(collect, ctx) };
    READING.set(outer);
    if let Some(why) = SKIPPED.replace(outer_skipped) {
        told.metric_skipped(module, why);
    }
    custom
}

/// Notes why [`collect`] skipped a record (the first reason of the read).
fn skipped(why: &'static str) {
    if SKIPPED.get().is_none() {
        SKIPPED.set(Some(why));
    }
}

/// Copies one module metric into the `Vec` at `ctx`, if `ctx` is the one of the read
/// running on this thread. A module written to the ABI alone may keep the visitor and
/// its `ctx` and call it later, or from another thread: the `Vec` it pointed at is gone,
/// or in use by a read on another thread, so that `ctx` is compared, never written
/// through, and the record dropped.
///
/// # Safety
///
/// `record` must be null (skipped) or valid for this call.
unsafe extern "C" fn collect(ctx: *mut c_void, record: *const MetricRecord) {
    if ctx.is_null() || READING.get() != ctx {
        return;
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the `Vec` of the read running on this thread (checked above),
        // alive and used by nothing else until the module returns; the record is the
        // caller's contract. A null record is no reference (made into one, it aborted
        // the host: the check that a reference is not null cannot unwind).
        let (out, Some(r)) = (unsafe {
            (
                &mut *ctx.cast::<Vec<(String, MetricValue)>>(),
                record.as_ref(),
            )
        }) else {
            return skipped("it is null");
        };
        // SAFETY: the record's name is valid during this call.
        let Some(name) = (unsafe { r.name.as_str() }) else {
            return skipped("its name is not UTF-8, or null with a length");
        };
        let value = match r.kind {
            abi::METRIC_COUNTER => MetricValue::Counter(r.count),
            abi::METRIC_GAUGE => MetricValue::Gauge(r.value),
            abi::METRIC_HISTOGRAM
                if !r.buckets.is_null() && r.bucket_count == BUCKETS.len() + 1 =>
            {
                // SAFETY: `bucket_count` counts, valid during this call.
                let buckets =
                    unsafe { std::slice::from_raw_parts(r.buckets, r.bucket_count) }.to_vec();
                MetricValue::Histogram {
                    count: r.count,
                    sum: r.value,
                    buckets,
                }
            }
            abi::METRIC_HISTOGRAM => {
                return skipped(
                    "a histogram whose buckets are null or not 31 (BUCKETS and one above them)",
                )
            }
            _ => return skipped("its kind is none of counter (0), gauge (1) or histogram (2)"),
        };
        out.push((name.to_owned(), value));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: i32, latency_ns: u64) -> CallRecord {
        CallRecord {
            status,
            latency: Some((latency_ns, 1)),
            bytes_in: 3,
            bytes_out: 5,
            arena_used: latency_ns as usize,
        }
    }

    #[test]
    fn figures_add_up_across_owned_and_shared_shards() {
        // More threads alive at once than there are owned shards: some share the last.
        let threads = SHARDS as u64 + 4;
        let stats = MethodStats::default();
        let all_started = std::sync::Barrier::new(threads as usize);
        std::thread::scope(|s| {
            for t in 0..threads {
                let (stats, all_started) = (&stats, &all_started);
                s.spawn(move || {
                    all_started.wait();
                    for i in 0..1000 {
                        let shard = crate::thread::with(crate::thread::ThreadState::shard);
                        stats.record(
                            shard,
                            record(if i % 10 == 0 { 4 } else { 0 }, 1_000 * (t + 1)),
                        );
                    }
                });
            }
        });
        let m = stats.snapshot("m", "f");
        let calls = 1000 * threads;
        assert_eq!(
            (m.calls, m.bytes_in, m.bytes_out),
            (calls, 3 * calls, 5 * calls)
        );
        assert_eq!(m.errors, vec![("panic", calls / 10)]);
        assert_eq!(m.latency_count, calls);
        assert_eq!(m.arena_high_water, 1_000 * threads);
        let micros: u64 = (1..=threads).sum();
        assert!((m.latency_sum_micros - 1000.0 * micros as f64).abs() < 1e-6);
    }

    #[test]
    fn a_timed_call_stands_for_the_calls_around_it() {
        let stats = MethodStats::default();
        let shard = crate::thread::with(crate::thread::ThreadState::shard);
        for i in 0..64u64 {
            let latency = (i % 8 == 0).then_some((2_000, 8));
            stats.record(
                shard,
                CallRecord {
                    status: 0,
                    latency,
                    bytes_in: 1,
                    bytes_out: 1,
                    arena_used: 0,
                },
            );
        }
        let m = stats.snapshot("m", "f");
        assert_eq!(m.calls, 64, "every call is counted");
        assert_eq!(m.latency_count, 64, "8 timed calls, each standing for 8");
        assert!((m.latency_sum_micros - 64.0 * 2.0).abs() < 1e-9);
    }

    #[test]
    fn latency_buckets_are_inclusive_upper_bounds() {
        let micros = |ns: u64| BUCKETS.get(bucket(ns)).copied();
        assert_eq!(micros(0), Some(0.001));
        assert_eq!(micros(1), Some(0.001));
        assert_eq!(micros(2), Some(0.0025));
        assert_eq!(micros(3), Some(0.005));
        assert_eq!(micros(1_000), Some(1.0));
        assert_eq!(micros(1_001), Some(2.5));
        assert_eq!(micros(5_000_000_000), Some(5e6));
        assert_eq!(micros(5_000_000_001), None);
        assert_eq!(bucket(u64::MAX), BUCKETS.len());
    }
}
