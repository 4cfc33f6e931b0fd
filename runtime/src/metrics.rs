//! Metrics: built-in figures for every export, and the modules' own metrics.
//!
//! The runtime counts, for every export, with no module code: calls, errors by status
//! (panics and timeouts among them), a latency histogram, bytes in and out and the
//! arena's high-water mark. The counts are atomics split into shards: a thread owns a
//! shard (of every export) for its lifetime and updates it with plain loads and stores,
//! no locked instruction and no cache line shared with another thread; threads beyond
//! the owned shards share the last one, with atomic read-modify-writes. A module's
//! own counters, gauges and histograms are read from the module when a snapshot is taken.
//! [`crate::Runtime::metrics`] returns both; [`crate::Runtime::prometheus`] renders them
//! in the Prometheus text format.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use core::ffi::c_void;

use memlink_msdk::abi::{self, MetricRecord, Status};

use crate::module::Module;
pub use memlink_msdk::metrics::{MetricValue, BUCKETS};

/// Shards per export: threads own the first `SHARDS - 1`, one each; the last is shared
/// by any thread beyond those.
pub(crate) const SHARDS: usize = 16;
/// The shard of threads that own none.
const SHARED: usize = SHARDS - 1;
/// Statuses counted as errors: every non-`Ok` status the ABI defines.
const STATUSES: usize = 12;

/// One shard of an export's figures, on cache lines of its own.
#[repr(align(128))]
#[derive(Debug, Default)]
struct Shard {
    calls: AtomicU64,
    errors: [AtomicU64; STATUSES],
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

/// Which owned shards a live thread holds.
static CLAIMED: [AtomicBool; SHARED] = [const { AtomicBool::new(false) }; SHARED];

/// This thread's shard, and whether it owns it; released when the thread exits.
struct Slot(usize);

impl Slot {
    fn claim() -> Slot {
        let free = CLAIMED.iter().position(|c| {
            // Acquire: the shard's last owner's stores happen before ours.
            c.compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        });
        Slot(free.unwrap_or(SHARED))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(claim) = CLAIMED.get(self.0) {
            // Release: the next owner sees every figure this thread stored.
            claim.store(false, Ordering::Release);
        }
    }
}

thread_local! {
    static SLOT: Slot = Slot::claim();
}

/// This thread's shard; [`SHARED`] when it owns none (or is exiting).
pub(crate) fn shard_index() -> usize {
    SLOT.try_with(|s| s.0).unwrap_or(SHARED)
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
    pub(crate) latency_ns: u64,
    pub(crate) bytes_in: usize,
    pub(crate) bytes_out: usize,
    pub(crate) arena_used: usize,
}

impl MethodStats {
    pub(crate) fn record(&self, r: CallRecord) {
        let i = shard_index();
        let s = &self.shards[i];
        add(i, &s.calls, 1);
        if let Some(slot) = usize::try_from(r.status)
            .ok()
            .filter(|&c| c > 0 && c <= STATUSES)
        {
            add(i, &s.errors[slot - 1], 1);
        }
        add(i, &s.bytes_in, r.bytes_in as u64);
        add(i, &s.bytes_out, r.bytes_out as u64);
        let bucket = bucket(r.latency_ns);
        add(i, &s.latency[bucket], 1);
        add(i, &s.latency_sum_ns, r.latency_ns);
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
        let errors = (0..STATUSES)
            .map(|i| (status_name(i as i32 + 1), sum(&|s: &Shard| &s.errors[i])))
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
    /// Calls that reached the module.
    pub calls: u64,
    /// Failed calls by status name (`panic`, `timeout`, `serialize`, …); absent: none.
    pub errors: Vec<(&'static str, u64)>,
    /// Argument bytes passed in.
    pub bytes_in: u64,
    /// Result (or error payload) bytes passed out.
    pub bytes_out: u64,
    /// Number of latencies recorded.
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
}

/// A module's figures: its exports' built-ins and, through its `memlink_metrics`
/// export, its own metrics.
pub(crate) fn of_module(module: &Module) -> ModuleMetrics {
    let methods = module
        .methods
        .iter()
        .zip(module.stats.iter())
        .map(|(m, s)| s.snapshot(&module.name, &m.name))
        .collect();
    let mut custom: Vec<(String, MetricValue)> = Vec::new();
    if let Some(read) = module.entry.metrics {
        // SAFETY: the module's `memlink_metrics` with the ABI's signature; `collect`
        // only reads each record during its call, and `custom` outlives the call.
        unsafe { read(collect, (&raw mut custom).cast()) };
    }
    ModuleMetrics {
        module: module.name.clone(),
        methods,
        custom,
    }
}

/// Copies one module metric into the `Vec` at `ctx`.
///
/// # Safety
///
/// `ctx` must be the `Vec<(String, MetricValue)>` `of_module` passed; `record` must be
/// valid for this call.
unsafe extern "C" fn collect(ctx: *mut c_void, record: *const MetricRecord) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: the caller's contract.
        let (out, r) = unsafe { (&mut *ctx.cast::<Vec<(String, MetricValue)>>(), &*record) };
        // SAFETY: the record's name is valid during this call.
        let Some(name) = (unsafe { r.name.as_str() }) else {
            return;
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
            _ => return,
        };
        out.push((name.to_owned(), value));
    }));
}

/// Renders `modules` in the Prometheus text exposition format (version 0.0.4).
pub fn prometheus(modules: &[ModuleMetrics]) -> String {
    let mut out = String::new();
    let methods: Vec<&MethodMetrics> = modules.iter().flat_map(|m| &m.methods).collect();
    let family = |out: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    let labels = |m: &MethodMetrics| {
        format!(
            "module=\"{}\",method=\"{}\"",
            escape(&m.module),
            escape(&m.method)
        )
    };
    family(
        &mut out,
        "memlink_calls_total",
        "counter",
        "Calls per export.",
    );
    for m in &methods {
        let _ = writeln!(out, "memlink_calls_total{{{}}} {}", labels(m), m.calls);
    }
    family(
        &mut out,
        "memlink_errors_total",
        "counter",
        "Failed calls per export, by status.",
    );
    for m in &methods {
        for (status, n) in &m.errors {
            let _ = writeln!(
                out,
                "memlink_errors_total{{{},status=\"{status}\"}} {n}",
                labels(m)
            );
        }
    }
    for (name, help, get) in [
        (
            "memlink_bytes_in_total",
            "Argument bytes per export.",
            (|m: &MethodMetrics| m.bytes_in) as fn(&MethodMetrics) -> u64,
        ),
        ("memlink_bytes_out_total", "Result bytes per export.", |m| {
            m.bytes_out
        }),
    ] {
        family(&mut out, name, "counter", help);
        for m in &methods {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(m), get(m));
        }
    }
    family(
        &mut out,
        "memlink_arena_high_water_bytes",
        "gauge",
        "Most arena bytes one call used.",
    );
    for m in &methods {
        let _ = writeln!(
            out,
            "memlink_arena_high_water_bytes{{{}}} {}",
            labels(m),
            m.arena_high_water
        );
    }
    family(
        &mut out,
        "memlink_call_duration_microseconds",
        "histogram",
        "Call latency per export.",
    );
    for m in &methods {
        histogram(
            &mut out,
            "memlink_call_duration_microseconds",
            &labels(m),
            &m.latency_buckets,
            m.latency_sum_micros,
        );
    }
    custom(&mut out, modules);
    out
}

/// The modules' own metrics, one family per name, labelled by module.
fn custom(out: &mut String, modules: &[ModuleMetrics]) {
    let mut names: Vec<&str> = modules
        .iter()
        .flat_map(|m| m.custom.iter().map(|(n, _)| n.as_str()))
        .collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let family = format!("memlink_module_{}", sanitize(name));
        let mut typed = false;
        for module in modules {
            let Some((_, value)) = module.custom.iter().find(|(n, _)| n == name) else {
                continue;
            };
            let labels = format!("module=\"{}\"", escape(&module.module));
            let kind = match value {
                MetricValue::Counter(_) => "counter",
                MetricValue::Gauge(_) => "gauge",
                _ => "histogram",
            };
            if !typed {
                let _ = writeln!(
                    out,
                    "# HELP {family} Module metric `{name}`.\n# TYPE {family} {kind}"
                );
                typed = true;
            }
            match value {
                MetricValue::Counter(n) => {
                    let _ = writeln!(out, "{family}{{{labels}}} {n}");
                }
                MetricValue::Gauge(v) => {
                    let _ = writeln!(out, "{family}{{{labels}}} {}", float(*v));
                }
                MetricValue::Histogram { sum, buckets, .. } => {
                    histogram(out, &family, &labels, buckets, *sum)
                }
                _ => {}
            }
        }
    }
}

/// Cumulative buckets, then sum and count, as the format wants them.
fn histogram(out: &mut String, name: &str, labels: &str, buckets: &[u64], sum: f64) {
    let mut cumulative = 0;
    for (i, n) in buckets.iter().enumerate() {
        cumulative += n;
        let le = BUCKETS
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| float(*b));
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", float(sum));
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

fn float(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else if v.is_nan() {
        "NaN".to_owned()
    } else if v > 0.0 {
        "+Inf".to_owned()
    } else {
        "-Inf".to_owned()
    }
}

/// A metric name of only `[a-zA-Z0-9_]`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(status: i32, latency_ns: u64) -> CallRecord {
        CallRecord {
            status,
            latency_ns,
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
                        stats.record(record(if i % 10 == 0 { 4 } else { 0 }, 1_000 * (t + 1)));
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

    #[test]
    fn names_and_labels_are_made_safe() {
        assert_eq!(sanitize("req.latency-ms"), "req_latency_ms");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(float(f64::INFINITY), "+Inf");
    }
}
