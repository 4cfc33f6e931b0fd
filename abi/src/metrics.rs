//! A module's own metrics, as the host reads them through `memlink_metrics`, and the
//! histogram bounds both sides use.

use crate::text::StrRef;

/// `MetricRecord::kind` of a counter.
pub const METRIC_COUNTER: u32 = 0;
/// `MetricRecord::kind` of a gauge.
pub const METRIC_GAUGE: u32 = 1;
/// `MetricRecord::kind` of a histogram.
pub const METRIC_HISTOGRAM: u32 = 2;

/// One metric of a module, as [`MetricsFn`](crate::MetricsFn) reports it.
#[repr(C)]
#[derive(Debug)]
pub struct MetricRecord {
    /// The metric's name.
    pub name: StrRef,
    /// `METRIC_*`.
    pub kind: u32,
    /// Reserved, zero.
    pub reserved: u32,
    /// A counter's count, or a histogram's number of observations.
    pub count: u64,
    /// A gauge's value, or a histogram's sum of observations.
    pub value: f64,
    /// A histogram's upper bucket bounds, ascending (`+Inf` implied after the last):
    /// [`BUCKETS`], the one set every histogram uses (30 values, which docs/abi.md lists
    /// for C). The runtime does not read them: it takes the buckets as counted against
    /// its own `BUCKETS`, so a histogram of other bounds is exposed under the wrong ones.
    pub bounds: *const f64,
    /// A histogram's observations per bucket (not cumulative): `bucket_count` entries,
    /// the last for values above every bound. Not null, or the histogram is skipped.
    pub buckets: *const u64,
    /// Entries in `buckets` (`bounds` has one fewer): 31, one per bound of [`BUCKETS`]
    /// and one above them; the runtime skips a histogram with any other count.
    pub bucket_count: usize,
}

/// Upper bounds of histogram buckets: 1-2.5-5 steps over ten decades, so one set serves
/// milliseconds, bytes and counts alike.
pub const BUCKETS: [f64; 30] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0,
    100.0, 250.0, 500.0, 1e3, 2.5e3, 5e3, 1e4, 2.5e4, 5e4, 1e5, 2.5e5, 5e5, 1e6, 2.5e6, 5e6,
];

/// The current value of one metric.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetricValue {
    /// A monotonically increasing count.
    Counter(u64),
    /// The last value set.
    Gauge(f64),
    /// Observations: how many, their sum, and how many fell in each of [`BUCKETS`]
    /// (one more entry, for values above every bound).
    Histogram {
        /// Number of observations.
        count: u64,
        /// Sum of the observed values.
        sum: f64,
        /// Observations per bucket, not cumulative.
        buckets: Vec<u64>,
    },
}
