//! Counters, gauges and histograms recorded by a module, read by the host.
//!
//! ```
//! use memlink_msdk::metrics::{increment_counter, observe_histogram, set_gauge, snapshot, MetricValue};
//! increment_counter("requests_total", 1);
//! set_gauge("queue_depth", 3.0);
//! observe_histogram("request_latency", 42.0);
//! let all = snapshot();
//! assert!(all.iter().any(|(name, v)| name == "requests_total" && *v == MetricValue::Counter(1)));
//! ```
//!
//! Values live in the module as atomics; the host reads them when it wants a snapshot
//! (through the `memlink_metrics` export), so recording never calls the host. The
//! functions above find a metric by name through a per-thread cache (no lock once a
//! thread has seen the name); a static handle skips even that:
//!
//! ```
//! use memlink_msdk::metrics::Counter;
//! static HITS: Counter = Counter::new("cache_hits");
//! HITS.increment(1);
//! ```
//!
//! A name keeps the kind it was first used with; updates of another kind are ignored.

use core::ffi::c_void;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::abi::{self, MetricRecord, StrRef};

pub use memlink_abi::{MetricValue, BUCKETS};

/// The kind of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric's storage, registered once and never freed.
#[derive(Debug)]
struct Metric {
    name: String,
    kind: Kind,
    /// Counter: the count. Gauge: the value's bits. Histogram: the count.
    value: AtomicU64,
    /// Histogram: the sum's bits.
    sum: AtomicU64,
    /// Histogram: observations per bucket, the last above every bound.
    buckets: Box<[AtomicU64]>,
}

impl Metric {
    fn new(name: &str, kind: Kind) -> Metric {
        let n = if kind == Kind::Histogram {
            BUCKETS.len() + 1
        } else {
            0
        };
        Metric {
            name: name.to_owned(),
            kind,
            value: AtomicU64::new(if kind == Kind::Gauge {
                0f64.to_bits()
            } else {
                0
            }),
            sum: AtomicU64::new(0f64.to_bits()),
            buckets: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn add(&self, n: u64) {
        if self.kind == Kind::Counter {
            self.value.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn set(&self, v: f64) {
        if self.kind == Kind::Gauge {
            self.value.store(v.to_bits(), Ordering::Relaxed);
        }
    }

    fn observe(&self, v: f64) {
        if self.kind != Kind::Histogram {
            return;
        }
        let i = BUCKETS
            .iter()
            .position(|&b| v <= b)
            .unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        // A float sum has no atomic add: compare-and-swap until it sticks.
        let _ = self
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + v).to_bits())
            });
        self.value.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self) -> MetricValue {
        match self.kind {
            Kind::Counter => MetricValue::Counter(self.value.load(Ordering::Relaxed)),
            Kind::Gauge => MetricValue::Gauge(f64::from_bits(self.value.load(Ordering::Relaxed))),
            Kind::Histogram => MetricValue::Histogram {
                count: self.value.load(Ordering::Relaxed),
                sum: f64::from_bits(self.sum.load(Ordering::Relaxed)),
                buckets: self
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect(),
            },
        }
    }
}

/// Every metric, in registration order, and by name; the mutex guards registration only.
/// By name: a module that makes a name per user registers many, and finding each new one
/// by a scan made registration quadratic (seconds at 20 000 names, minutes past 100 000),
/// with the lock held, a scrape waiting on it.
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    all: Vec::new(),
    by_name: BTreeMap::new(),
});

struct Registry {
    all: Vec<&'static Metric>,
    by_name: BTreeMap<&'static str, &'static Metric>,
}

thread_local! {
    /// This thread's view of the registry, by name: a hit costs a hash, no lock.
    static CACHE: RefCell<HashMap<String, &'static Metric>> = RefCell::new(HashMap::new());
}

/// The metric `name`, registering it with `kind` on first use.
///
/// Without the cache (a thread-local destructor that records a metric after the cache's
/// own destructor ran, or a recording made while the cache is borrowed) the registry is
/// asked: `with` or `borrow` would panic there, and a panic in a thread-local destructor
/// aborts the process, the host with it.
fn lookup(name: &str, kind: Kind) -> &'static Metric {
    let cached = CACHE.try_with(|c| c.try_borrow().ok()?.get(name).copied());
    if let Ok(Some(m)) = cached {
        return m;
    }
    let m = register(name, kind);
    let _ = CACHE.try_with(|c| {
        if let Ok(mut cache) = c.try_borrow_mut() {
            cache.insert(name.to_owned(), m);
        }
    });
    m
}

fn register(name: &str, kind: Kind) -> &'static Metric {
    // A panic while the lock is held leaves the registry usable (only a failed
    // allocation could panic, between the two entries).
    let mut registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = registry.by_name.get(name) {
        return m;
    }
    let m: &'static Metric = Box::leak(Box::new(Metric::new(name, kind)));
    registry.all.push(m);
    registry.by_name.insert(m.name.as_str(), m);
    m
}

/// Adds `n` to the counter `name`. A counter is a `u64`: past `u64::MAX` it wraps
/// around, which Prometheus reads as the counter's reset.
pub fn increment_counter(name: &str, n: u64) {
    lookup(name, Kind::Counter).add(n);
}

/// Sets the gauge `name` to `value`.
pub fn set_gauge(name: &str, value: f64) {
    lookup(name, Kind::Gauge).set(value);
}

/// Records one observation of `value` in the histogram `name`.
pub fn observe_histogram(name: &str, value: f64) {
    lookup(name, Kind::Histogram).observe(value);
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name {
            name: &'static str,
            metric: OnceLock<&'static Metric>,
        }

        impl $name {
            /// A handle for the metric `name`, registered on first use.
            pub const fn new(name: &'static str) -> $name {
                $name { name, metric: OnceLock::new() }
            }

            fn get(&self) -> &'static Metric {
                self.metric.get_or_init(|| register(self.name, $kind))
            }
        }
    };
}

handle!(
    /// A counter found once: `static C: Counter = Counter::new("name");`.
    Counter,
    Kind::Counter
);
handle!(
    /// A gauge found once.
    Gauge,
    Kind::Gauge
);
handle!(
    /// A histogram found once.
    Histogram,
    Kind::Histogram
);

impl Counter {
    /// Adds `n`, wrapping around past `u64::MAX` (see [`increment_counter`]).
    pub fn increment(&self, n: u64) {
        self.get().add(n);
    }
}

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: f64) {
        self.get().set(value);
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, value: f64) {
        self.get().observe(value);
    }
}

/// Every metric recorded so far, in registration order.
pub fn snapshot() -> Vec<(String, MetricValue)> {
    let registry = REGISTRY.lock().unwrap_or_else(|p| p.into_inner());
    registry
        .all
        .iter()
        .map(|m| (m.name.clone(), m.read()))
        .collect()
}

/// Reports every metric to the host (the `memlink_metrics` entry point).
///
/// # Safety
///
/// `visit` must be safe to call with `ctx` and a record valid for that call.
pub(crate) unsafe fn visit_all(
    visit: unsafe extern "C" fn(*mut c_void, *const MetricRecord),
    ctx: *mut c_void,
) {
    for (name, value) in snapshot() {
        let (kind, count, value, buckets) = match value {
            MetricValue::Counter(n) => (abi::METRIC_COUNTER, n, 0.0, Vec::new()),
            MetricValue::Gauge(v) => (abi::METRIC_GAUGE, 0, v, Vec::new()),
            MetricValue::Histogram {
                count,
                sum,
                buckets,
            } => (abi::METRIC_HISTOGRAM, count, sum, buckets),
            // `snapshot` makes only the kinds above; a kind added to the ABI later has no
            // record to send from this SDK.
            _ => continue,
        };
        let record = MetricRecord {
            name: StrRef::new(&name),
            kind,
            reserved: 0,
            count,
            value,
            bounds: BUCKETS.as_ptr(),
            buckets: buckets.as_ptr(),
            bucket_count: buckets.len(),
        };
        // SAFETY: the caller's contract; `record` and what it points to live until
        // `visit` returns.
        unsafe { visit(ctx, &record) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(name: &str) -> Option<MetricValue> {
        snapshot()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    #[test]
    fn each_kind_aggregates() {
        increment_counter("t_calls", 2);
        increment_counter("t_calls", 3);
        set_gauge("t_depth", 1.0);
        set_gauge("t_depth", 4.5);
        observe_histogram("t_lat", 0.02);
        observe_histogram("t_lat", 30.0);
        observe_histogram("t_lat", 1e9);
        assert_eq!(get("t_calls"), Some(MetricValue::Counter(5)));
        assert_eq!(get("t_depth"), Some(MetricValue::Gauge(4.5)));
        let Some(MetricValue::Histogram {
            count,
            sum,
            buckets,
        }) = get("t_lat")
        else {
            panic!()
        };
        assert_eq!((count, sum), (3, 1e9 + 30.02));
        assert_eq!(buckets.len(), BUCKETS.len() + 1);
        assert_eq!(buckets[4], 1, "0.02 falls in the 0.025 bucket");
        assert_eq!(buckets[14], 1, "30 falls in the 50 bucket");
        assert_eq!(buckets[BUCKETS.len()], 1, "1e9 is above every bound");
        set_gauge("t_calls", 9.0);
        assert_eq!(
            get("t_calls"),
            Some(MetricValue::Counter(5)),
            "kinds do not mix"
        );
    }

    #[test]
    fn handles_and_names_share_one_metric_across_threads() {
        static C: Counter = Counter::new("t_shared");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        C.increment(1);
                        increment_counter("t_shared", 1);
                    }
                });
            }
        });
        assert_eq!(get("t_shared"), Some(MetricValue::Counter(8000)));
    }
}
