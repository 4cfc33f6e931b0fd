//! What a module pays to record a metric or to log: exports of the `datasets` module
//! that make the same metric or log call `n` times in a loop, called with `n = N` and
//! with `n = 0`, on a runtime whose log level is INFO and whose log sink counts records
//! and drops them. The per-operation cost is `(call(N) - call(0)) / N`: the call itself
//! cancels out, and both are timed in the same run, interleaved.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use memlink_runtime::{
    CallOptions, LogEvent, LogSink, MethodRef, MetricValue, ModuleHandle, ModuleRef, Runtime,
    RuntimeConfig,
};

use crate::figures::Report;
use crate::fixture::mp;
use crate::measure::{Config, Sample};

/// Operations per measured call: enough that the call's own ~200 ns is under 1% of it
/// for the cheapest operation.
pub const N: u32 = 10_000;

/// Calls with `n = 0` timed together per measured pair: one is too short to time alone.
const EMPTY_CALLS: u32 = 32;

/// A log sink that counts records and drops them.
#[derive(Debug, Default)]
pub struct CountingSink(AtomicU64);

impl LogSink for CountingSink {
    fn record(&self, _event: &LogEvent<'_>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl CountingSink {
    /// Records seen so far.
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What is checked after a call with `n = 5`.
#[derive(Debug, Clone, Copy)]
enum Effect {
    /// The counter grew by 5.
    Counter(&'static str),
    /// The gauge reads 4 (the last value set).
    Gauge(&'static str),
    /// The histogram has 5 more observations.
    Histogram(&'static str),
    /// The sink received this many records.
    Records(u64),
}

/// One measured operation: its report key, the export that loops over it, what the
/// figure includes.
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// The report key.
    pub key: &'static str,
    /// The `datasets` export that makes the call `n` times.
    pub export: &'static str,
    /// What one operation includes.
    pub what: &'static str,
    effect: Effect,
}

const fn op(key: &'static str, export: &'static str, effect: Effect, what: &'static str) -> Op {
    Op {
        key,
        export,
        what,
        effect,
    }
}

/// The operations, in report order.
pub const OPS: &[Op] = &[
    op(
        "counter_increment_ns",
        "count",
        Effect::Counter("bench_hits"),
        "increment_counter(\"bench_hits\", 1): by name, a thread-local HashMap lookup \
         (SipHash of the name), one relaxed atomic add",
    ),
    op(
        "counter_handle_increment_ns",
        "count_handle",
        Effect::Counter("bench_hits_handle"),
        "static Counter handle .increment(1): an initialized OnceLock read, one relaxed \
         atomic add",
    ),
    op(
        "gauge_set_ns",
        "gauge",
        Effect::Gauge("bench_level"),
        "set_gauge(\"bench_level\", v): by name, the lookup, one relaxed store",
    ),
    op(
        "gauge_handle_set_ns",
        "gauge_handle",
        Effect::Gauge("bench_level_handle"),
        "static Gauge handle .set(v): one relaxed store",
    ),
    op(
        "histogram_observe_ns",
        "observe",
        Effect::Histogram("bench_latency"),
        "observe_histogram(\"bench_latency\", 42.0): by name, the lookup, a linear search \
         to bucket 15 of 31, three atomic updates (bucket add, sum CAS loop, count add)",
    ),
    op(
        "histogram_handle_observe_ns",
        "observe_handle",
        Effect::Histogram("bench_latency_handle"),
        "static Histogram handle .observe(42.0): as histogram_observe_ns without the lookup",
    ),
    op(
        "disabled_log_ns",
        "quiet_logs",
        Effect::Records(0),
        "debug(\"bench record\", &[(\"key\", \"value\")]) with the host at INFO: the \
         level check in the module (one relaxed load, a compare), nothing reaches the host",
    ),
    op(
        "disabled_log_macro_ns",
        "quiet_log_macros",
        Effect::Records(0),
        "memlink_msdk::debug!(\"bench record {}\", i) with the host at INFO: the level \
         check; the message is not formatted",
    ),
    op(
        "enabled_log_ns",
        "logs",
        Effect::Records(5),
        "info(\"bench record\", &[(\"key\", \"value\")]) delivered: the module builds the \
         record (a heap Vec for the field), the host's log callback (panic guard, sink Arc \
         clone, fields collected and formatted for tracing: four heap allocations), the \
         sink (one relaxed add), a tracing event with no subscriber installed",
    ),
];

/// A runtime at log level INFO with a [`CountingSink`], the `datasets` module loaded.
#[derive(Debug)]
pub struct Observability {
    /// The runtime.
    pub runtime: Runtime,
    /// The `datasets` module.
    pub module: ModuleHandle,
    /// The sink.
    pub sink: Arc<CountingSink>,
    args_n: Vec<u8>,
    args_0: Vec<u8>,
}

impl Observability {
    /// Builds and loads `datasets`, and checks that each operation does what it says.
    pub fn new() -> Result<Observability, String> {
        let path = crate::modules::example("datasets")?;
        let sink = Arc::new(CountingSink::default());
        let config = RuntimeConfig::default()
            .log_level(tracing::Level::INFO)
            .log_sink(sink.clone());
        let runtime = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
        let module = runtime
            .load(ModuleRef::from_path(&path))
            .map_err(|e| format!("load {}: {e}", path.display()))?;
        let obs = Observability {
            runtime,
            module,
            sink,
            args_n: mp(&(N,)),
            args_0: mp(&(0u32,)),
        };
        for op in OPS {
            obs.check(op)?;
        }
        Ok(obs)
    }

    /// The export of `op`, resolved.
    pub fn method(&self, op: &Op) -> Result<MethodRef, String> {
        self.runtime
            .method(self.module, op.export)
            .map_err(|e| e.to_string())
    }

    fn metric(&self, name: &str) -> Option<MetricValue> {
        let all = self.runtime.metrics();
        let module = all.iter().find(|m| m.module == "datasets")?;
        let (_, value) = module.custom.iter().find(|(n, _)| n == name)?;
        Some(value.clone())
    }

    fn check(&self, op: &Op) -> Result<(), String> {
        let m = self.method(op)?;
        let count = |v: Option<MetricValue>| match v {
            Some(MetricValue::Counter(n)) => n,
            Some(MetricValue::Histogram { count, .. }) => count,
            _ => 0,
        };
        let (metric_before, records_before) = match op.effect {
            Effect::Counter(name) | Effect::Histogram(name) => (count(self.metric(name)), 0),
            _ => (0, self.sink.count()),
        };
        self.runtime
            .call_method(m, &mp(&(5u32,)), &CallOptions::default())
            .map_err(|e| format!("{}: {e}", op.export))?;
        let ok = match op.effect {
            Effect::Counter(name) | Effect::Histogram(name) => {
                count(self.metric(name)) == metric_before + 5
            }
            Effect::Gauge(name) => self.metric(name) == Some(MetricValue::Gauge(4.0)),
            Effect::Records(n) => self.sink.count() == records_before + n,
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{}(5) did not have the effect {:?}",
                op.export, op.effect
            ))
        }
    }

    fn call(&self, m: MethodRef, args: &[u8]) {
        drop(
            self.runtime
                .call_method(m, args, &CallOptions::default())
                .expect("metrics/log export"),
        );
    }

    /// One pair: a call with `n = N` and [`EMPTY_CALLS`] with `n = 0`; the difference
    /// per operation in ns, and the `n = 0` call's own time.
    fn pair(&self, m: MethodRef) -> (f64, f64) {
        let start = Instant::now();
        self.call(m, &self.args_n);
        let full = start.elapsed();
        let start = Instant::now();
        for _ in 0..EMPTY_CALLS {
            self.call(m, &self.args_0);
        }
        let empty = start.elapsed() / EMPTY_CALLS;
        let per_op = (full.as_nanos() as f64 - empty.as_nanos() as f64) / f64::from(N);
        (per_op, empty.as_nanos() as f64)
    }

    /// The cost of one operation of `op`: the median over pairs, warmed up first.
    pub fn per_op(&self, cfg: &Config, m: MethodRef) -> Sample {
        let start = Instant::now();
        while start.elapsed() < cfg.warmup {
            self.pair(m);
        }
        let mut diffs = Vec::new();
        let start = Instant::now();
        while diffs.len() < cfg.min_batches || start.elapsed() < cfg.budget {
            diffs.push(self.pair(m).0);
        }
        Sample::of(diffs, u64::from(N))
    }

    /// For criterion's `iter_custom`: `iters` pairs, each a call with `n = N` less a call
    /// with `n = 0` (one iteration is `N` operations).
    pub fn time_pairs(&self, m: MethodRef, iters: u64) -> Duration {
        let mut total = Duration::ZERO;
        for _ in 0..iters {
            let (per_op, _) = self.pair(m);
            total += Duration::from_nanos((per_op.max(0.0) * f64::from(N)) as u64);
        }
        total
    }
}

/// Measures every operation of [`OPS`] into `report`.
pub fn figures(report: &mut Report, cfg: &Config) {
    let obs = match Observability::new() {
        Ok(obs) => obs,
        Err(e) => {
            eprintln!("  observability: skipped, {e}");
            return;
        }
    };
    // Each pair takes 0.1 to 10 ms: a third of the usual time per figure is plenty.
    let short = Config {
        warmup: cfg.warmup / 4,
        budget: cfg.budget / 3,
        ..*cfg
    };
    for op in OPS {
        match obs.method(op) {
            Ok(m) => report.ns(
                op.key,
                obs.per_op(&short, m),
                &format!(
                    "{}; (call {}(n={N}) - call(n=0)) / {N}, median of pairs",
                    op.what, op.export
                ),
            ),
            Err(e) => eprintln!("  {}: skipped, {e}", op.key),
        }
    }
    report.ratio(
        "counter_by_name_over_handle",
        "counter_increment_ns",
        "counter_handle_increment_ns",
    );
    report.ratio(
        "enabled_log_over_disabled_log",
        "enabled_log_ns",
        "disabled_log_ns",
    );
}
