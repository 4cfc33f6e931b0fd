//! The family a module's own metric is exposed under, from one scrape to the next,
//! through the real runtime and the `hazards` fixture.

mod common;

use common::module_copy;
use memlink_runtime::{ModuleHandle, ModuleRef, Runtime, RuntimeConfig};

/// A runtime with a copy of `hazards` of its own loaded as `name` (the tests that load
/// `hazards` share its image, and so its registry of metrics).
fn own_hazards(name: &str) -> (Runtime, ModuleHandle) {
    let rt = Runtime::new(
        RuntimeConfig::default(),
        memlink_runtime::resolver::LocalResolver,
    );
    let h = rt
        .load_as(ModuleRef::from_path(module_copy("hazards", name)), name)
        .unwrap();
    (rt, h)
}

fn record(rt: &Runtime, h: ModuleHandle, name: &str, kind: u8, value: f64) {
    let n: u32 = rt
        .call_typed(
            h,
            "record_metrics",
            &(vec![(name.to_owned(), kind, value)],),
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// The sample of `family` labelled with the module `module`, if the text has one.
fn sample<'t>(text: &'t str, family: &str, module: &str) -> Option<&'t str> {
    let prefix = format!("{family}{{module=\"{module}\"}} ");
    text.lines().find_map(|l| l.strip_prefix(prefix.as_str()))
}

/// A metric keeps its family when a later one's name reduces to the same: `cache_hits`
/// was `memlink_module_cache_hits_total`, and stays so once `cache hits` is recorded too, which is named
/// apart. Before, the family went to whichever name sorted first, so the series
/// `memlink_module_cache_hits_total` went on with `cache hits`' count (7 after 2:
/// a jump, where `cache_hits` had not moved) and `cache_hits` moved to a family of a new name.
#[test]
fn a_metric_keeps_its_family_when_a_later_name_reduces_to_it() {
    let (rt, h) = own_hazards("hazards_family_kept");
    record(&rt, h, "cache_hits", 0, 2.0);
    let first = rt.prometheus();
    let module = "hazards_family_kept";
    assert_eq!(
        sample(&first, "memlink_module_cache_hits_total", module),
        Some("2"),
        "{first}"
    );
    record(&rt, h, "cache hits", 0, 7.0);
    let second = rt.prometheus();
    assert_eq!(
        sample(&second, "memlink_module_cache_hits_total", module),
        Some("2"),
        "{second}"
    );
    let apart: Vec<&str> = second
        .lines()
        .filter(|l| l.starts_with("memlink_module_cache_hits_") && l.ends_with(" 7"))
        .collect();
    assert_eq!(apart.len(), 1, "{second}");
    common::promtool::promtool_accepts(&second);
    // And it stays so.
    assert_eq!(rt.prometheus(), second);
}

/// One name as two kinds in two modules: the first kind seen keeps the family whatever
/// module comes later. Before, a gauge `x` of a module loaded after another's
/// histogram `x` took `memlink_module_x` from it (gauge sorts before histogram), and the
/// family changed its type between two scrapes.
#[test]
fn a_family_keeps_its_type_when_another_module_uses_the_name_as_another_kind() {
    let rt = Runtime::new(
        RuntimeConfig::default(),
        memlink_runtime::resolver::LocalResolver,
    );
    let load = |name: &str| {
        rt.load_as(ModuleRef::from_path(module_copy("hazards", name)), name)
            .unwrap()
    };
    let first = load("hazards_kind_first");
    record(&rt, first, "x", 2, 1.0);
    let before = rt.prometheus();
    assert!(
        before.contains("# TYPE memlink_module_x histogram\n"),
        "{before}"
    );
    let second = load("hazards_kind_second");
    record(&rt, second, "x", 1, 3.0);
    let after = rt.prometheus();
    assert!(
        after.contains("# TYPE memlink_module_x histogram\n"),
        "{after}"
    );
    assert!(
        after.contains("memlink_module_x_count{module=\"hazards_kind_first\"} 1\n"),
        "{after}"
    );
    let gauge = after
        .lines()
        .find_map(|l| {
            l.strip_prefix("# TYPE memlink_module_x_")?
                .strip_suffix(" gauge")
        })
        .unwrap_or_else(|| panic!("{after}"));
    assert_eq!(
        sample(
            &after,
            &format!("memlink_module_x_{gauge}"),
            "hazards_kind_second"
        ),
        Some("3"),
        "{after}"
    );
    common::promtool::promtool_accepts(&after);
}

/// A runtime that keeps no built-in figures (`builtin_metrics(false)`) leaves their
/// families out of its exposition: before, every export showed 0 calls, which reads as
/// an export never called. The module's own metrics are there still.
#[test]
fn a_runtime_without_builtin_figures_exposes_none() {
    let rt = Runtime::new(
        RuntimeConfig::default().builtin_metrics(false),
        memlink_runtime::resolver::LocalResolver,
    );
    let name = "hazards_no_builtin";
    let h = rt
        .load_as(ModuleRef::from_path(module_copy("hazards", name)), name)
        .unwrap();
    record(&rt, h, "seen", 0, 3.0);
    let text = rt.prometheus();
    for family in [
        "memlink_calls_total",
        "memlink_errors_total",
        "memlink_call_duration_seconds",
        "memlink_bytes_in_total",
        "memlink_arena_high_water_bytes",
    ] {
        assert!(!text.contains(family), "{family} in:\n{text}");
    }
    assert_eq!(sample(&text, "memlink_module_seen_total", name), Some("3"));
    common::promtool::promtool_accepts(&text);
}
