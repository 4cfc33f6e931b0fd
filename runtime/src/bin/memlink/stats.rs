//! `memlink call --stats`: a short table of the exports that were called, from the
//! runtime's built-in figures (`--prometheus` prints those figures as they are).

use memlink_runtime::lifecycle::DEPENDENCIES;
use memlink_runtime::metrics::BUCKETS;
use memlink_runtime::{MethodMetrics, ModuleMetrics};

/// One line per export with at least one call: its calls, its errors by status, its
/// latency's median, 99th percentile and maximum, and the bytes it took and gave. The
/// runtime's own call of a module's `memlink_dependencies` at load is left out (it is
/// not one of the calls asked for), unless that export is `asked`.
///
/// Latencies come from the histogram, so each is the upper bound of its bucket (`≤`);
/// the CLI times every call (`latency_sampling` 1), so the counts behind them are exact.
pub(crate) fn table(modules: &[ModuleMetrics], asked: &str) -> String {
    let rows: Vec<[String; 8]> = modules
        .iter()
        .flat_map(|m| &m.methods)
        .filter(|m| m.calls > 0 && (m.method != DEPENDENCIES || m.method == asked))
        .map(row)
        .collect();
    let header = [
        "export", "calls", "errors", "p50", "p99", "max", "in", "out",
    ]
    .map(str::to_owned);
    let mut widths = header.each_ref().map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = r
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, w))| {
                // The export and its errors read left to right; figures line up right.
                if i == 0 || i == 2 {
                    format!("{cell:<w$}")
                } else {
                    format!("{cell:>w$}")
                }
            })
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    if rows.is_empty() {
        out += "(no export was called)\n";
    }
    out
}

fn row(m: &MethodMetrics) -> [String; 8] {
    let errors = if m.errors.is_empty() {
        "0".to_owned()
    } else {
        m.errors
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    [
        format!("{}::{}", m.module, m.method),
        m.calls.to_string(),
        errors,
        quantile(&m.latency_buckets, 0.50),
        quantile(&m.latency_buckets, 0.99),
        quantile(&m.latency_buckets, 1.0),
        bytes(m.bytes_in),
        bytes(m.bytes_out),
    ]
}

/// The bucket holding the `q` quantile of the latencies counted in `buckets`, as its
/// upper bound; `-` when none were timed.
fn quantile(buckets: &[u64], q: f64) -> String {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return "-".to_owned();
    }
    // The rank of the quantile, 1-based: the median of 3 is the 2nd, the max the last.
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (i, n) in buckets.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return match BUCKETS.get(i) {
                Some(&bound) => format!("≤{}", micros(bound)),
                None => format!(">{}", micros(BUCKETS[BUCKETS.len() - 1])),
            };
        }
    }
    "-".to_owned()
}

/// A duration given in microseconds, in the unit that reads best.
fn micros(us: f64) -> String {
    let (value, unit) = if us < 1.0 {
        (us * 1e3, "ns")
    } else if us < 1e3 {
        (us, "µs")
    } else if us < 1e6 {
        (us / 1e3, "ms")
    } else {
        (us / 1e6, "s")
    };
    format!("{}{unit}", trim(value))
}

fn bytes(n: u64) -> String {
    const KIB: f64 = 1024.0;
    let x = n as f64;
    if x < KIB {
        format!("{n} B")
    } else if x < KIB * KIB {
        format!("{} KiB", trim(x / KIB))
    } else if x < KIB * KIB * KIB {
        format!("{} MiB", trim(x / KIB / KIB))
    } else {
        format!("{} GiB", trim(x / KIB / KIB / KIB))
    }
}

/// At most one decimal, none when it is zero.
fn trim(x: f64) -> String {
    let s = format!("{x:.1}");
    s.strip_suffix(".0").map_or(s.clone(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(at: &[(usize, u64)]) -> Vec<u64> {
        let mut b = vec![0; BUCKETS.len() + 1];
        for &(i, n) in at {
            b[i] = n;
        }
        b
    }

    #[test]
    fn quantiles_are_the_bounds_of_the_buckets_that_hold_them() {
        // 98 calls at most 1 µs (bucket 9), one at most 25 µs (13), one past 5 s.
        let b = buckets(&[(9, 98), (13, 1), (BUCKETS.len(), 1)]);
        assert_eq!(quantile(&b, 0.5), "≤1µs");
        assert_eq!(quantile(&b, 0.99), "≤25µs");
        assert_eq!(quantile(&b, 1.0), ">5s");
        assert_eq!(quantile(&buckets(&[]), 0.5), "-");
        assert_eq!(quantile(&buckets(&[(0, 1)]), 0.99), "≤1ns");
        assert_eq!(quantile(&buckets(&[(19, 3)]), 0.5), "≤2.5ms");
    }

    #[test]
    fn sizes_read_in_their_unit() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64 MiB");
        assert_eq!(micros(0.25), "250ns");
        assert_eq!(micros(2.5e3), "2.5ms");
    }
}
