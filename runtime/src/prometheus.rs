//! The Prometheus text exposition format (version 0.0.4) of the runtime's figures.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::health::BreakerState;
use crate::metrics::{MethodMetrics, MetricValue, ModuleMetrics, BUCKETS};

/// Renders `modules` in the Prometheus text exposition format (version 0.0.4).
///
/// Each call names the modules' own metrics afresh: a name that reduces to another's
/// family gets the family or a suffix by the names there are now. A runtime's own
/// exposition ([`crate::Runtime::prometheus`]) keeps each one's family from one scrape
/// to the next.
pub fn render(modules: &[ModuleMetrics]) -> String {
    render_with(modules, &mut Families::default(), true)
}

/// The families the modules' own metrics were given, kept by a runtime for its life so
/// that each keeps its family from one scrape to the next: a metric whose name reduces
/// to one given already (`cache hits` after `cache_hits`), or a name used as another
/// kind by a module loaded later, is named apart, rather than taking the family from
/// the one that had it (a series of one metric going on with another's values, or a
/// family changing its type between scrapes). It grows by each name and kind seen once.
#[derive(Debug, Default)]
pub(crate) struct Families {
    /// Each name's families, by kind.
    given: HashMap<String, Vec<(&'static str, String)>>,
    /// Every sample name those families write.
    taken: HashSet<String>,
}

/// [`render`], with the modules' own metrics named as `families` has them, those it
/// does not have yet added to it.
pub(crate) fn render_with(
    modules: &[ModuleMetrics],
    families: &mut Families,
    builtin: bool,
) -> String {
    let mut out = String::new();
    if builtin {
        builtin_families(&mut out, modules);
    }
    breakers(&mut out, modules);
    custom(&mut out, modules, families);
    out
}

/// The runtime's own figures of each export: left out of a runtime that keeps none
/// (`RuntimeConfig::builtin_metrics` off), whose zeros would read as exports never
/// called.
fn builtin_families(out: &mut String, modules: &[ModuleMetrics]) {
    let methods: Vec<&MethodMetrics> = modules.iter().flat_map(|m| &m.methods).collect();
    let labels = |m: &MethodMetrics| {
        format!(
            "module=\"{}\",method=\"{}\"",
            escape(&m.module),
            escape(&m.method)
        )
    };
    family(out, "memlink_calls_total", "counter", "Calls per export.");
    for m in &methods {
        let _ = writeln!(out, "memlink_calls_total{{{}}} {}", labels(m), m.calls);
    }
    family(
        out,
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
        (
            "memlink_bytes_out_total",
            "Result and error payload bytes per export.",
            |m| m.bytes_out,
        ),
    ] {
        family(out, name, "counter", help);
        for m in &methods {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(m), get(m));
        }
    }
    family(
        out,
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
        out,
        "memlink_call_duration_seconds",
        "histogram",
        "Call latency per export in seconds, from sampled calls scaled to every call.",
    );
    for m in &methods {
        histogram(
            out,
            "memlink_call_duration_seconds",
            &labels(m),
            &m.latency_buckets,
            m.latency_sum_micros / 1e6,
            -6,
        );
    }
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
fn custom(out: &mut String, modules: &[ModuleMetrics], families: &mut Families) {
    // Each name and kind's values, by module in order (a module's first, should it
    // repeat one), gathered in one pass: looking each family up in every module's list
    // made a scrape quadratic in the number of metrics (a module with a metric per user
    // took seconds, then minutes).
    let mut values: HashMap<(&str, &str), Vec<(usize, &MetricValue)>> = HashMap::new();
    for (i, module) in modules.iter().enumerate() {
        for (name, value) in &module.custom {
            let Some(kind) = kind_of(value) else {
                continue;
            };
            let of_name = values.entry((name.as_str(), kind)).or_default();
            if of_name.last().is_none_or(|(m, _)| *m != i) {
                of_name.push((i, value));
            }
        }
    }
    for (family, name, kind) in custom_families(modules, families) {
        let _ = writeln!(
            out,
            "# HELP {family} {MODULE_METRIC}{}`.\n# TYPE {family} {kind}",
            escape_help(name)
        );
        for (i, value) in values.get(&(name, kind)).into_iter().flatten() {
            let labels = format!("module=\"{}\"", escape(&modules[*i].module));
            match value {
                MetricValue::Counter(n) => {
                    let _ = writeln!(out, "{family}{{{labels}}} {n}");
                }
                MetricValue::Gauge(v) => {
                    let _ = writeln!(out, "{family}{{{labels}}} {}", float(*v));
                }
                MetricValue::Histogram { sum, buckets, .. } => {
                    histogram(out, &family, &labels, buckets, *sum, 0)
                }
                _ => {}
            }
        }
    }
}

/// How the `HELP` text of a module's own metric begins, its name following: by it the
/// daemon tells which metric a worker's family is, whatever that worker's runtime named
/// the family.
pub(crate) const MODULE_METRIC: &str = "Module metric `";

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
/// that exposes it: the one `families` gave it, else `memlink_module_<name>` as [`stem`]
/// makes it lint-clean, a counter's ending in `_total`. Names a module may pick freely
/// can reduce to the same family (`"a b"` and `"a_b"`), and one name can be a gauge in
/// one module and a histogram in another; a family may be written once, with one kind,
/// so each one of those after the first (given earlier, else first in order) takes a
/// suffix of its own (before a counter's `_total`), the hash of its name and kind.
fn custom_families<'m>(
    modules: &'m [ModuleMetrics],
    families: &mut Families,
) -> Vec<(String, &'m str, &'static str)> {
    let mut keys: Vec<(&str, &'static str)> = modules
        .iter()
        .flat_map(|m| &m.custom)
        .filter_map(|(n, v)| Some((n.as_str(), kind_of(v)?)))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.into_iter()
        .map(|(name, kind)| {
            let given = families
                .given
                .get(name)
                .and_then(|kinds| kinds.iter().find(|(k, _)| *k == kind));
            if let Some((_, family)) = given {
                return (family.clone(), name, kind);
            }
            // Every sample name given: a histogram `h` writes `h_bucket`, `h_sum` and
            // `h_count` too, which a histogram named `h_count` must not repeat.
            let family = named_apart(&stem(name, kind), kind, &[name, kind], |s| {
                families.taken.contains(s)
            });
            families.taken.extend(sample_names(&family, kind));
            families
                .given
                .entry(name.to_owned())
                .or_default()
                .push((kind, family.clone()));
            (family, name, kind)
        })
        .collect()
}

/// The names a family of `kind` named `family` writes its samples under.
pub(crate) fn sample_names(family: &str, kind: &str) -> Vec<String> {
    let ends: &[&str] = match kind {
        "histogram" => &["", "_bucket", "_sum", "_count"],
        "summary" => &["", "_sum", "_count"],
        _ => &[""],
    };
    ends.iter().map(|end| format!("{family}{end}")).collect()
}

/// `family` for a family of `kind` if none of its samples' names is `taken`, else
/// `family` with a suffix (before a counter's `_total`), the hash of `hashed`: the same
/// in every scrape.
pub(crate) fn named_apart(
    family: &str,
    kind: &str,
    hashed: &[&str],
    taken: impl Fn(&str) -> bool,
) -> String {
    let clashes = |candidate: &str| sample_names(candidate, kind).iter().any(|n| taken(n));
    let (body, end) = match family.strip_suffix("_total") {
        Some(body) if kind == "counter" => (body, "_total"),
        _ => (family, ""),
    };
    let mut candidate = family.to_owned();
    let mut seed = 0;
    while clashes(&candidate) {
        seed += 1;
        candidate = format!("{body}_{:08x}{end}", fnv(hashed, seed) as u32);
    }
    candidate
}

/// Abbreviated units, which `promtool check metrics` refuses as a word of a name.
const UNIT_ABBREVIATIONS: [&str; 14] = [
    "s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d",
];

/// Units `promtool` knows, with their base units: a word that is one of them, other than
/// a base unit itself, or a base unit with a prefix, is refused.
const UNITS: [(&str, &str); 24] = [
    ("amperes", "amperes"),
    ("bytes", "bytes"),
    ("celsius", "celsius"),
    ("grams", "grams"),
    ("joules", "joules"),
    ("kelvin", "kelvin"),
    ("meters", "meters"),
    ("metres", "metres"),
    ("seconds", "seconds"),
    ("volts", "volts"),
    ("minutes", "seconds"),
    ("hours", "seconds"),
    ("days", "seconds"),
    ("weeks", "seconds"),
    ("kelvins", "kelvin"),
    ("fahrenheit", "celsius"),
    ("rankine", "celsius"),
    ("inches", "meters"),
    ("yards", "meters"),
    ("miles", "meters"),
    ("bits", "bytes"),
    ("calories", "joules"),
    ("pounds", "grams"),
    ("ounces", "grams"),
];

/// The prefixes `promtool` recognizes before a unit.
const UNIT_PREFIXES: [&str; 18] = [
    "pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega",
    "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi",
];

/// Whether `word`, a word of a metric name, is one `promtool check metrics` refuses
/// there, in any case: an abbreviated unit, a unit other than a base one, a metric type;
/// as the last word, a suffix that belongs to other kinds (`previous` is the word
/// before). A word longer than any of those is not looked at further.
fn refused(word: &str, previous: &str, last: bool, kind: &str) -> bool {
    // The longest refused word: the longest prefix and the longest unit.
    const LONGEST: usize = 5 + 10;
    if word.len() > LONGEST {
        return false;
    }
    let lower = word.to_ascii_lowercase();
    let word = lower.as_str();
    let unit = |w: &str| UNITS.iter().find(|(u, _)| *u == w).map(|(_, base)| *base);
    let non_base = unit(word).is_some_and(|base| base != word)
        || UNIT_PREFIXES.iter().any(|p| {
            word.strip_prefix(p)
                .is_some_and(|rest| unit(rest).is_some())
        });
    UNIT_ABBREVIATIONS.contains(&word)
        || non_base
        || ["counter", "gauge", "histogram", "summary"].contains(&word)
        || (last
            && match kind {
                "gauge" => ["total", "bucket", "count", "sum"].contains(&word),
                "histogram" => {
                    word == "total"
                        || (word == "seconds" && previous.eq_ignore_ascii_case("timestamp"))
                }
                _ => false,
            })
}

/// The family name of a module's metric `name` of `kind`, before a suffix that tells it
/// from another family: `memlink_module_<name>`, every character but an ASCII letter,
/// digit or `_` made `_`, that `promtool check metrics` accepts (its lint included) as a
/// family of that kind. A name it already accepts is kept as it is; else
/// - a lower-case letter followed by an upper-case one gets a `_` between (camelCase);
/// - a word (between `_`) it refuses (an abbreviated unit such as `ms`, a unit it wants in
///   base units such as `minutes` or `milliseconds`, a type name such as `gauge`, and as
///   a gauge's or histogram's last word `total`, as a gauge's `bucket`, `count` or `sum`)
///   is joined, in lower case, to the word before it: `latency_ms` becomes `latencyms`
///   (the name's first word to the word after it, or to `value`: `ms_latency` becomes
///   `mslatency`, `ms` `msvalue`);
/// - a counter ends in `_total`, added when the name does not.
fn stem(name: &str, kind: &str) -> String {
    let mut flat = String::from("memlink_module_");
    let mut lower_before = false;
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        };
        if lower_before && c.is_ascii_uppercase() {
            flat.push('_');
        }
        lower_before = c.is_ascii_lowercase();
        flat.push(c);
    }
    // Words are kept on a stack, each refused one joined to the one below, which may
    // then be refused in turn (`` and `s` make `s`). The prefix's two words (`memlink`,
    // `module`) never take one: the name's first word, refused, is joined to the word
    // after it instead (`ms_latency` makes `mslatency`), and to `value` when it is the
    // only one (`ms` makes `msvalue`), so every family starts `memlink_module_`. Each
    // word is looked at a bounded number of times: linear in the name, whatever it is.
    const PREFIX: usize = 2;
    let refused_top = |words: &[String], last: bool| match words {
        [.., previous, top] => refused(top, previous, last, kind),
        _ => false,
    };
    let join_top = |words: &mut Vec<String>| {
        if let (Some(top), Some(below)) = (words.pop(), words.last_mut()) {
            below.push_str(&top.to_ascii_lowercase());
        }
    };
    let mut words: Vec<String> = Vec::new();
    let mut carried: Option<String> = None;
    let settle = |words: &mut Vec<String>, last: bool, carried: &mut Option<String>| {
        while refused_top(words, last) {
            if words.len() > PREFIX + 1 {
                join_top(words);
            } else {
                *carried = words.pop();
                break;
            }
        }
    };
    for (i, word) in flat.split('_').enumerate() {
        let word = match carried.take() {
            Some(first) => first + &word.to_ascii_lowercase(),
            None => word.to_owned(),
        };
        words.push(word);
        // The prefix's own words are not looked at.
        if i >= PREFIX {
            settle(&mut words, false, &mut carried);
        }
    }
    if let Some(first) = carried.take() {
        words.push(first + "value");
    }
    settle(&mut words, true, &mut carried);
    if let Some(first) = carried {
        words.push(first + "value");
    }
    let mut stem = words.join("_");
    if kind == "counter" && !stem.ends_with("_total") {
        stem.push_str("_total");
    }
    stem
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

/// Cumulative buckets, then sum and count, as the format wants them. A bound of
/// [`BUCKETS`] times `10^exponent` is the bound in the family's unit: the built-in
/// latency is kept in microseconds and exposed in seconds, Prometheus' base unit (`-6`);
/// a module's own histogram is exposed in whatever unit it observes (`0`).
fn histogram(out: &mut String, name: &str, labels: &str, buckets: &[u64], sum: f64, exponent: i32) {
    let mut cumulative = 0u64;
    for (i, n) in buckets.iter().enumerate() {
        // A module in C reports its buckets as it likes: counts that add up past
        // `u64::MAX` stop there, rather than panicking the host (or, wrapped, falling,
        // which no scraper takes).
        cumulative = cumulative.saturating_add(*n);
        let le = BUCKETS
            .get(i)
            .map_or_else(|| "+Inf".to_owned(), |b| float(scaled(*b, exponent)));
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", float(sum));
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

/// `bound * 10^exponent`, the double nearest that decimal: scaled through its decimal
/// digits, not multiplied, so a bound reads as its digits (2.5 µs is `le="0.0000025"`,
/// where `2.5 * 1e-6` prints `0.0000024999999999999998`).
fn scaled(bound: f64, exponent: i32) -> f64 {
    format!("{bound}e{exponent}").parse().unwrap_or(bound)
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
        assert_eq!(
            stem("req.latency-ms", "gauge"),
            "memlink_module_req_latencyms"
        );
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
        let histogram = MetricValue::Histogram {
            count: 1,
            sum: 1.0,
            buckets: vec![0; BUCKETS.len() + 1],
        };
        let a = module(
            "a",
            vec![
                ("has space".to_owned(), MetricValue::Counter(1)),
                ("has_space".to_owned(), MetricValue::Counter(2)),
                ("x".to_owned(), MetricValue::Gauge(3.0)),
            ],
        );
        let b = module("b", vec![("x".to_owned(), histogram)]);
        let (a2, b2) = (a.clone(), b.clone());
        let text = render(&[a, b]);
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE")).collect();
        let mut families: Vec<&str> = types.iter().map(|l| l.split(' ').nth(2).unwrap()).collect();
        let all = families.len();
        families.sort_unstable();
        families.dedup();
        assert_eq!(families.len(), all, "each family is typed once: {types:?}");
        assert!(text.contains("# TYPE memlink_module_x gauge\nmemlink_module_x{module=\"a\"} 3\n"));
        let histogram = types
            .iter()
            .find(|l| l.ends_with(" histogram") && l.contains("memlink_module_x_"))
            .expect(&text);
        let family = histogram.split(' ').nth(2).unwrap();
        assert!(
            text.contains(&format!("{family}_count{{module=\"b\"}} 0\n")),
            "{text}"
        );
        // The suffix of a counter goes before its `_total`.
        let counters: Vec<&str> = types
            .iter()
            .filter(|l| l.contains("has_space"))
            .map(|l| l.split(' ').nth(2).unwrap())
            .collect();
        assert_eq!(counters.len(), 2, "{text}");
        assert!(
            counters.iter().all(|c| c.ends_with("_total")),
            "{counters:?}"
        );
        // The same suffixes in every scrape, whichever order the modules come in.
        assert_eq!(text, render(&[b2, a2]));
    }

    #[test]
    fn a_histogram_named_like_another_s_samples_gets_a_family_of_its_own() {
        let histogram = MetricValue::Histogram {
            count: 1,
            sum: 1.0,
            buckets: vec![0; BUCKETS.len() + 1],
        };
        let m = module(
            "a",
            vec![
                ("lat".to_owned(), histogram.clone()),
                ("lat_count".to_owned(), MetricValue::Counter(1)),
                ("lat_count".to_owned(), histogram),
            ],
        );
        let text = render(&[m]);
        let samples: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(['{', ' ']).next().unwrap())
            .collect();
        let count = |name: &str| samples.iter().filter(|s| **s == name).count();
        assert_eq!(count("memlink_module_lat_count"), 1, "{text}");
        assert_eq!(count("memlink_module_lat_count_total"), 1, "{text}");
        assert_eq!(samples.len(), 2 * (BUCKETS.len() + 3) + 1, "{text}");
    }

    #[test]
    fn a_name_with_a_newline_stays_on_its_help_line() {
        let text = render(&[module(
            "a",
            vec![("x\ny".to_owned(), MetricValue::Counter(1))],
        )]);
        assert!(
            text.contains("# HELP memlink_module_x_y_total Module metric `x\\ny`.\n"),
            "{text}"
        );
        assert!(
            text.lines()
                .all(|l| l.starts_with('#') || l.starts_with("memlink_")),
            "{text}"
        );
    }

    /// What `promtool check metrics` lints (its exit status fails on it): a counter
    /// without `_total`, a gauge with it, camelCase, an abbreviated or non-base unit, a
    /// type name, a gauge named like a histogram's samples. Names it accepts are kept.
    #[test]
    fn family_names_are_ones_promtool_accepts() {
        for (name, kind, family) in [
            ("observed_total", "counter", "memlink_module_observed_total"),
            ("last_batch", "gauge", "memlink_module_last_batch"),
            ("batch_size", "histogram", "memlink_module_batch_size"),
            (
                "latency_seconds",
                "histogram",
                "memlink_module_latency_seconds",
            ),
            ("requests", "counter", "memlink_module_requests_total"),
            ("cache_hits", "counter", "memlink_module_cache_hits_total"),
            ("cacheHits", "counter", "memlink_module_cache_Hits_total"),
            ("latency_ms", "histogram", "memlink_module_latencyms"),
            ("uptime_minutes", "gauge", "memlink_module_uptimeminutes"),
            (
                "read_kilobytes",
                "counter",
                "memlink_module_readkilobytes_total",
            ),
            ("depth_total", "gauge", "memlink_module_depthtotal"),
            ("x_bucket", "gauge", "memlink_module_xbucket"),
            ("x_count", "gauge", "memlink_module_xcount"),
            ("x_count", "histogram", "memlink_module_x_count"),
            ("x_total", "histogram", "memlink_module_xtotal"),
            (
                "hits_counter",
                "counter",
                "memlink_module_hitscounter_total",
            ),
            (
                "queue_gauge_value",
                "gauge",
                "memlink_module_queuegauge_value",
            ),
            ("size_MB", "gauge", "memlink_module_sizemb"),
            ("a__ms", "gauge", "memlink_module_ams"),
            // The name's first word is never joined to the prefix's `module`.
            ("s", "gauge", "memlink_module_svalue"),
            ("ms", "counter", "memlink_module_msvalue_total"),
            ("ms_latency", "counter", "memlink_module_mslatency_total"),
            ("h_x", "gauge", "memlink_module_hx"),
            ("kb_read", "gauge", "memlink_module_kbread"),
            ("minutes_waited", "gauge", "memlink_module_minuteswaited"),
            ("count", "gauge", "memlink_module_countvalue"),
            ("total", "histogram", "memlink_module_totalvalue"),
            ("seconds", "counter", "memlink_module_seconds_total"),
            ("", "counter", "memlink_module__total"),
            (
                "last_timestamp_seconds",
                "histogram",
                "memlink_module_last_timestampseconds",
            ),
        ] {
            assert_eq!(stem(name, kind), family, "{name:?} as a {kind}");
        }
    }

    /// A name of many refused words (each joined to the one before, which may then be
    /// refused in turn) is named whole. (The words are kept on a stack, each looked at a
    /// bounded number of times, so this is linear in the name; joining them again from
    /// the start each time took a minute here.)
    #[test]
    fn a_long_name_of_refused_words_is_named_whole() {
        let name = "_s".repeat(200_000);
        let family = stem(&name, "gauge");
        let rest = family.strip_prefix("memlink_module_").unwrap_or_default();
        assert!(
            rest.len() == 200_000 && rest.bytes().all(|b| b == b's'),
            "{}",
            &family[..40]
        );
    }

    #[test]
    fn bucket_bounds_read_as_their_digits() {
        let mut out = String::new();
        let buckets = vec![1; BUCKETS.len() + 1];
        histogram(&mut out, "h", "m=\"a\"", &buckets, 1.0, -6);
        let bounds: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(bounds.len(), BUCKETS.len() + 1, "{out}");
        // Each bound is its microsecond figure's digits moved six places: 1 ns is 0.000000001 s.
        assert_eq!(bounds[0], "0.000000001", "{out}");
        assert_eq!(bounds[1], "0.0000000025", "{out}");
        assert_eq!(bounds[10], "0.0000025", "{out}");
        assert_eq!(bounds[BUCKETS.len() - 1], "5", "{out}");
        assert_eq!(bounds[BUCKETS.len()], "+Inf", "{out}");
        for (bound, micros) in bounds.iter().zip(BUCKETS) {
            let seconds: f64 = bound.parse().expect("a number");
            assert!(
                (seconds * 1e6 - micros).abs() <= micros * 1e-12,
                "{bound} for {micros}"
            );
            assert!(bound.len() <= 13, "{bound}: digits past the bound's own");
        }
        let mut own = String::new();
        histogram(&mut own, "h", "m=\"a\"", &buckets, 1.0, 0);
        assert!(
            own.contains("le=\"0.0025\"") && own.contains("le=\"5000000\""),
            "{own}"
        );
    }
}
