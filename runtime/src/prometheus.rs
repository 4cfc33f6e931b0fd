//! The Prometheus text exposition format (version 0.0.4) of the runtime's figures.

use std::fmt::Write as _;

use crate::health::BreakerState;
use crate::metrics::{MethodMetrics, MetricValue, ModuleMetrics, BUCKETS};

/// Renders `modules` in the Prometheus text exposition format (version 0.0.4).
pub fn render(modules: &[ModuleMetrics]) -> String {
    let mut out = String::new();
    let methods: Vec<&MethodMetrics> = modules.iter().flat_map(|m| &m.methods).collect();
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
        "memlink_call_duration_seconds",
        "histogram",
        "Call latency per export in seconds, from sampled calls scaled to every call.",
    );
    for m in &methods {
        histogram(
            &mut out,
            "memlink_call_duration_seconds",
            &labels(m),
            &m.latency_buckets,
            m.latency_sum_micros / 1e6,
            1e-6,
        );
    }
    breakers(&mut out, modules);
    custom(&mut out, modules);
    out
}

/// A metric family's `HELP` and `TYPE` lines (the daemon's own families too).
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Each module's circuit breaker, when the runtime has breakers.
fn breakers(out: &mut String, modules: &[ModuleMetrics]) {
    let with: Vec<(&ModuleMetrics, BreakerState)> = modules
        .iter()
        .filter_map(|m| Some((m, m.breaker?)))
        .collect();
    if with.is_empty() {
        return;
    }
    family(
        out,
        "memlink_breaker_state",
        "gauge",
        "Circuit breaker per module: 0 closed, 1 open, 2 half-open.",
    );
    for (m, state) in &with {
        let _ = writeln!(
            out,
            "memlink_breaker_state{{module=\"{}\"}} {}",
            escape(&m.module),
            state.gauge()
        );
    }
    family(
        out,
        "memlink_breaker_opened_total",
        "counter",
        "Times the module's breaker opened.",
    );
    for (m, _) in &with {
        let _ = writeln!(
            out,
            "memlink_breaker_opened_total{{module=\"{}\"}} {}",
            escape(&m.module),
            m.breaker_opened
        );
    }
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
                    histogram(out, &family, &labels, buckets, *sum, 1.0)
                }
                _ => {}
            }
        }
    }
}

/// Cumulative buckets, then sum and count, as the format wants them. `unit` is what a
/// bound of [`BUCKETS`] stands for in the family's unit: the built-in latency is kept in
/// microseconds and exposed in seconds, Prometheus' base unit (`1e-6`); a module's own
/// histogram is exposed in whatever unit it observes (`1.0`).
fn histogram(out: &mut String, name: &str, labels: &str, buckets: &[u64], sum: f64, unit: f64) {
    let mut cumulative = 0;
    for (i, n) in buckets.iter().enumerate() {
        cumulative += n;
        let le = BUCKETS
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| float(*b * unit));
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

    #[test]
    fn names_and_labels_are_made_safe() {
        assert_eq!(sanitize("req.latency-ms"), "req_latency_ms");
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(float(f64::INFINITY), "+Inf");
    }
}
