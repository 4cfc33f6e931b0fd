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

/// The modules' own metrics, one family per name and kind, labelled by module.
fn custom(out: &mut String, modules: &[ModuleMetrics]) {
    for (family, name, kind) in custom_families(modules) {
        let _ = writeln!(
            out,
            "# HELP {family} Module metric `{}`.\n# TYPE {family} {kind}",
            escape_help(name)
        );
        for module in modules {
            let value = module
                .custom
                .iter()
                .find(|(n, v)| n == name && kind_of(v) == Some(kind));
            let Some((_, value)) = value else {
                continue;
            };
            let labels = format!("module=\"{}\"", escape(&module.module));
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

/// The Prometheus kind of a module's metric (`None` for a kind this renderer does not
/// know).
fn kind_of(value: &MetricValue) -> Option<&'static str> {
    match value {
        MetricValue::Counter(_) => Some("counter"),
        MetricValue::Gauge(_) => Some("gauge"),
        MetricValue::Histogram { .. } => Some("histogram"),
        _ => None,
    }
}

/// Each distinct name and kind of the modules' own metrics, in order, with the family
/// that exposes it: `memlink_module_<name>`, the name reduced to `[a-zA-Z0-9_]`. Names
/// a module may pick freely can reduce to the same family (`"a b"` and `"a_b"`), and one
/// name can be a counter in one module and a gauge in another; a family may be written
/// once, with one kind, so each later one of those takes a suffix of its own, the hash of
/// its name and kind: the same in every scrape.
fn custom_families(modules: &[ModuleMetrics]) -> Vec<(String, &str, &'static str)> {
    let mut keys: Vec<(&str, &'static str)> = modules
        .iter()
        .flat_map(|m| &m.custom)
        .filter_map(|(n, v)| Some((n.as_str(), kind_of(v)?)))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    // Every sample name written so far: a histogram `h` writes `h_bucket`, `h_sum` and
    // `h_count` too, which a counter named `h_count` must not repeat.
    let mut taken = std::collections::HashSet::new();
    let samples = |family: &str, kind: &str| -> Vec<String> {
        match kind {
            "histogram" => ["", "_bucket", "_sum", "_count"]
                .iter()
                .map(|end| format!("{family}{end}"))
                .collect(),
            _ => vec![family.to_owned()],
        }
    };
    keys.into_iter()
        .map(|(name, kind)| {
            let base = format!("memlink_module_{}", sanitize(name));
            let mut family = base.clone();
            let mut seed = 0u64;
            while samples(&family, kind).iter().any(|s| taken.contains(s)) {
                seed += 1;
                family = format!("{base}_{:08x}", fnv(&[name, kind], seed) as u32);
            }
            taken.extend(samples(&family, kind));
            (family, name, kind)
        })
        .collect()
}

/// FNV-1a over `parts` (each followed by a 0 byte), started from `seed`.
fn fnv(parts: &[&str], seed: u64) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325 ^ seed;
    for part in parts {
        for b in part.bytes().chain([0]) {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
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

/// A `HELP` text with `\` and newlines escaped, the two escapes the format has there.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
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
        assert_eq!(escape_help("a\\b\nc\"d"), "a\\\\b\\nc\"d");
    }

    fn module(name: &str, custom: Vec<(String, MetricValue)>) -> ModuleMetrics {
        ModuleMetrics {
            module: name.to_owned(),
            methods: Vec::new(),
            custom,
            breaker: None,
            breaker_opened: 0,
        }
    }

    #[test]
    fn names_that_reduce_alike_and_kinds_that_differ_get_families_of_their_own() {
        let a = module(
            "a",
            vec![
                ("has space".to_owned(), MetricValue::Counter(1)),
                ("has_space".to_owned(), MetricValue::Counter(2)),
                ("x".to_owned(), MetricValue::Counter(3)),
            ],
        );
        let b = module("b", vec![("x".to_owned(), MetricValue::Gauge(4.0))]);
        let (a2, b2) = (a.clone(), b.clone());
        let text = render(&[a, b]);
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        let mut families: Vec<&str> = types.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
        let all = families.len();
        families.sort_unstable();
        families.dedup();
        assert_eq!(families.len(), all, "each family is typed once: {types:?}");
        assert!(
            text.contains("# TYPE memlink_module_x counter\nmemlink_module_x{module=\"a\"} 3\n")
        );
        let gauge = types
            .iter()
            .find(|l| l.ends_with(" gauge") && l.contains("memlink_module_x_"))
            .expect(&text);
        let family = gauge.split(' ').nth(2).unwrap();
        assert!(
            text.contains(&format!("{family}{{module=\"b\"}} 4\n")),
            "{text}"
        );
        // The same suffixes in every scrape, whichever order the modules come in.
        assert_eq!(text, render(&[b2, a2]));
    }

    #[test]
    fn a_counter_named_like_a_histogram_s_samples_gets_a_family_of_its_own() {
        let histogram = MetricValue::Histogram {
            count: 1,
            sum: 1.0,
            buckets: vec![0; BUCKETS.len() + 1],
        };
        let m = module(
            "a",
            vec![
                ("h".to_owned(), histogram.clone()),
                ("h_count".to_owned(), MetricValue::Counter(1)),
                // Sorts before `h_b` as given, but reduces to what `h_b`'s samples use.
                ("h.b_count".to_owned(), MetricValue::Counter(2)),
                ("h_b".to_owned(), histogram),
            ],
        );
        let text = render(&[m]);
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap())
            .collect();
        let count = |name: &str| samples.iter().filter(|s| **s == name).count();
        assert_eq!(count("memlink_module_h_count"), 1, "{text}");
        assert_eq!(count("memlink_module_h_b_count"), 1, "{text}");
        assert_eq!(samples.len(), 2 * (BUCKETS.len() + 3) + 2, "{text}");
    }

    #[test]
    fn a_name_with_a_newline_stays_on_its_help_line() {
        let text = render(&[module(
            "a",
            vec![("x\ny".to_owned(), MetricValue::Counter(1))],
        )]);
        assert!(
            text.contains("# HELP memlink_module_x_y Module metric `x\\ny`.\n"),
            "{text}"
        );
        assert!(
            text.lines()
                .all(|l| l.starts_with('#') || l.starts_with("memlink_")),
            "{text}"
        );
    }
}
