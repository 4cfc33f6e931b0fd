//! Counters, gauges and histograms recorded by a module.
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
//! Values are kept in the module, per metric name, and read with [`snapshot`].

use std::collections::BTreeMap;
use std::sync::Mutex;

/// The current value of one metric.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetricValue {
    /// A monotonically increasing count.
    Counter(u64),
    /// The last value set.
    Gauge(f64),
    /// Observations: how many, their sum, smallest and largest.
    Histogram {
        /// Number of observations.
        count: u64,
        /// Sum of the observed values.
        sum: f64,
        /// Smallest observed value.
        min: f64,
        /// Largest observed value.
        max: f64,
    },
}

static METRICS: Mutex<BTreeMap<String, MetricValue>> = Mutex::new(BTreeMap::new());

fn update(name: &str, f: impl FnOnce(Option<&mut MetricValue>) -> Option<MetricValue>) {
    // A panic while the lock is held cannot leave a value half-updated (each update is
    // one assignment), so a poisoned lock is still consistent.
    let mut map = METRICS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(new) = f(map.get_mut(name)) {
        map.insert(name.to_owned(), new);
    }
}

/// Adds `n` to the counter `name`. A name already used by another kind of metric is
/// left as it is.
pub fn increment_counter(name: &str, n: u64) {
    update(name, |v| match v {
        Some(MetricValue::Counter(c)) => {
            *c = c.saturating_add(n);
            None
        }
        Some(_) => None,
        None => Some(MetricValue::Counter(n)),
    });
}

/// Sets the gauge `name` to `value`.
pub fn set_gauge(name: &str, value: f64) {
    update(name, |v| match v {
        Some(MetricValue::Gauge(g)) => {
            *g = value;
            None
        }
        Some(_) => None,
        None => Some(MetricValue::Gauge(value)),
    });
}

/// Records one observation of `value` in the histogram `name`.
pub fn observe_histogram(name: &str, value: f64) {
    update(name, |v| match v {
        Some(MetricValue::Histogram {
            count,
            sum,
            min,
            max,
        }) => {
            *count += 1;
            *sum += value;
            *min = min.min(value);
            *max = max.max(value);
            None
        }
        Some(_) => None,
        None => Some(MetricValue::Histogram {
            count: 1,
            sum: value,
            min: value,
            max: value,
        }),
    });
}

/// Every metric recorded so far, sorted by name.
pub fn snapshot() -> Vec<(String, MetricValue)> {
    let map = METRICS.lock().unwrap_or_else(|p| p.into_inner());
    map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
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
        observe_histogram("t_lat", 10.0);
        observe_histogram("t_lat", 30.0);
        assert_eq!(get("t_calls"), Some(MetricValue::Counter(5)));
        assert_eq!(get("t_depth"), Some(MetricValue::Gauge(4.5)));
        assert_eq!(
            get("t_lat"),
            Some(MetricValue::Histogram {
                count: 2,
                sum: 40.0,
                min: 10.0,
                max: 30.0
            })
        );
        set_gauge("t_calls", 9.0);
        assert_eq!(
            get("t_calls"),
            Some(MetricValue::Counter(5)),
            "kinds do not mix"
        );
    }
}
