//! The figures of one report run: each recorded and printed as `key=value` as soon as it
//! is known, and read back for the ratios. Every group writes into a [`Report`]; the
//! `report` module decides which groups run.

use std::io::Write;

use crate::measure::Sample;

/// The figures of one run, in the order they were measured.
#[derive(Debug, Default)]
pub struct Report {
    entries: Vec<(String, f64)>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Report {
        Report::default()
    }

    /// Records and prints `key=value`.
    pub fn value(&mut self, key: &str, value: f64) {
        let text = if value.abs() >= 1000.0 {
            format!("{value:.0}")
        } else {
            format!("{value:.2}")
        };
        println!("{key}={text}");
        let _ = std::io::stdout().flush();
        self.entries.push((key.to_owned(), value));
    }

    /// Records a timed figure (its median, ns per operation) and says on stderr what it
    /// timed and how noisy it was.
    pub fn ns(&mut self, key: &str, sample: Sample, what: &str) {
        eprintln!(
            "  {key}: {what}; median of {} batches of {} (min {:.2}, quartiles {:.2}..{:.2}, spread {:.1}%)",
            sample.batches,
            sample.per_batch,
            sample.min_ns,
            sample.q1_ns,
            sample.q3_ns,
            sample.spread() * 100.0
        );
        self.value(key, sample.median_ns);
    }

    /// A recorded value.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Records `key = numerator / denominator`, both figures of this run (skipped if one
    /// of them was not measured).
    pub fn ratio(&mut self, key: &str, numerator: &str, denominator: &str) {
        if let (Some(n), Some(d)) = (self.get(numerator), self.get(denominator)) {
            self.value(key, n / d);
        }
    }

    /// Every recorded `(key, value)`.
    pub fn entries(&self) -> &[(String, f64)] {
        &self.entries
    }
}
