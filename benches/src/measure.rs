//! The report's timing method: warm up, size a batch to take about
//! [`Config::batch`], time many batches, and keep the median time per operation.
//!
//! The median of many short batches shrugs off what a shared 2-core machine does to a
//! run (a build on the other core, a preemption in one batch); the spread between the
//! quartiles says how noisy the run was.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long to measure each figure.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Running time before any batch counts (caches, branch predictors, the pool).
    pub warmup: Duration,
    /// Time spent in counted batches, per figure.
    pub budget: Duration,
    /// Target duration of one batch.
    pub batch: Duration,
    /// Batches timed at the least, whatever the budget.
    pub min_batches: usize,
}

impl Config {
    /// The default run: about 1.5 s per figure.
    pub fn full() -> Config {
        Config {
            warmup: Duration::from_millis(200),
            budget: Duration::from_millis(1300),
            batch: Duration::from_millis(2),
            min_batches: 31,
        }
    }

    /// `--quick`: about 0.15 s per figure.
    pub fn quick() -> Config {
        Config {
            warmup: Duration::from_millis(30),
            budget: Duration::from_millis(120),
            batch: Duration::from_millis(1),
            min_batches: 11,
        }
    }
}

/// One figure's measurement.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Median over the batches of nanoseconds per operation: the figure.
    pub median_ns: f64,
    /// Fastest batch, ns per operation.
    pub min_ns: f64,
    /// First and third quartiles of the batches, ns per operation.
    pub q1_ns: f64,
    /// See `q1_ns`.
    pub q3_ns: f64,
    /// Batches timed.
    pub batches: usize,
    /// Operations per batch.
    pub per_batch: u64,
}

impl Sample {
    /// Summarizes `per_op` (ns per operation, one value per batch of `per_batch`).
    pub fn of(mut per_op: Vec<f64>, per_batch: u64) -> Sample {
        per_op.sort_by(f64::total_cmp);
        let at = |q: f64| per_op[((per_op.len() - 1) as f64 * q).round() as usize];
        Sample {
            median_ns: at(0.5),
            min_ns: per_op[0],
            q1_ns: at(0.25),
            q3_ns: at(0.75),
            batches: per_op.len(),
            per_batch,
        }
    }

    /// Interquartile range over the median: how noisy the run was (0.02 is quiet).
    pub fn spread(&self) -> f64 {
        (self.q3_ns - self.q1_ns) / self.median_ns
    }
}

/// Measures `op`, one operation per call, its result `black_box`ed.
pub fn run<T>(cfg: &Config, mut op: impl FnMut() -> T) -> Sample {
    run_batches(cfg, u64::MAX, |n| {
        let start = Instant::now();
        for _ in 0..n {
            black_box(op());
        }
        start.elapsed()
    })
}

/// Measures an operation timed by `batch(n)`, which runs it `n` times and returns the
/// time they took (as criterion's `iter_custom`), with at most `max_per_batch` per batch.
pub fn run_batches(
    cfg: &Config,
    max_per_batch: u64,
    mut batch: impl FnMut(u64) -> Duration,
) -> Sample {
    // Size the batch: double until one takes the target time, warming up meanwhile.
    let mut n: u64 = 1;
    let start = Instant::now();
    loop {
        let took = batch(n);
        if took >= cfg.batch || n >= max_per_batch {
            if start.elapsed() >= cfg.warmup {
                break;
            }
            continue;
        }
        n = (n * 2).min(max_per_batch);
    }
    let mut per_op = Vec::new();
    let start = Instant::now();
    while per_op.len() < cfg.min_batches || start.elapsed() < cfg.budget {
        per_op.push(batch(n).as_nanos() as f64 / n as f64);
    }
    Sample::of(per_op, n)
}

/// Median of `values` (which it sorts).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
