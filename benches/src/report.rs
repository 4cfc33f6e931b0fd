//! The one-run report: each headline figure measured once in this process, printed as a
//! `key=value` line on stdout as soon as it is known (how it was measured goes to
//! stderr), and the ratios computed from figures of this same run.

use std::time::Duration;

use memlink_abi::Status;
use memlink_runtime::RuntimeConfig;

use crate::boundary::Boundary;
use crate::fixture::{
    call_rust_direct, call_rust_pointer, time_load_unload, Baseline, BumpRound, Host, MemlinkRound,
    ARENA_ROUND,
};
use crate::measure::{self, Config, Sample};
use crate::{alloc_count, threads};

pub use crate::figures::Report;

/// What the report measures with.
#[derive(Debug)]
pub struct Fixtures {
    /// The runtime and its modules.
    pub host: Host,
    /// The plain `extern "C"` functions.
    pub baseline: Baseline,
}

/// Runs every group of figures.
pub fn run_all(report: &mut Report, cfg: &Config, fx: &Fixtures) {
    run_groups(report, cfg, fx, GROUPS);
}

/// The groups of figures, in the order [`run_all`] measures them.
pub const GROUPS: &[&str] = &[
    "limits",
    "exports",
    "peers",
    "arena",
    "threads",
    "lifecycle",
    "nested",
    "zero_copy",
    "observability",
    "allocations",
    "daemon",
];

/// Runs the named groups (of [`GROUPS`]), then the ratios their figures allow.
pub fn run_groups(report: &mut Report, cfg: &Config, fx: &Fixtures, groups: &[&str]) {
    for group in groups {
        match *group {
            "limits" => limits(report, cfg, fx),
            "exports" => exports(report, cfg, fx),
            "peers" => peers(report, cfg),
            "arena" => arena(report, cfg),
            "threads" => scaling(report, cfg, fx),
            "lifecycle" => lifecycle(report, cfg, fx),
            "nested" => nested(report, cfg, fx),
            "zero_copy" => crate::zero_copy::figures(report, cfg),
            "observability" => crate::observability::figures(report, cfg),
            "allocations" => allocations(report, fx),
            "daemon" => crate::daemon::figures(report, cfg),
            other => eprintln!("  no group named `{other}` (groups: {})", GROUPS.join(" ")),
        }
    }
    ratios(report);
}

/// The limits: no memlink at all.
pub fn limits(report: &mut Report, cfg: &Config, fx: &Fixtures) {
    let b = fx.baseline;
    report.ns(
        "raw_extern_ns",
        measure::run(cfg, || b.call_noop()),
        "empty extern \"C\" fn through its dlsym pointer",
    );
    report.ns(
        "raw_extern_add_ns",
        measure::run(cfg, || b.call_add()),
        "extern \"C\" add(2, 3) through its dlsym pointer",
    );
    report.ns(
        "rust_direct_ns",
        measure::run(cfg, call_rust_direct),
        "direct call of an #[inline(never)] Rust add, black_boxed",
    );
    report.ns(
        "rust_fn_pointer_ns",
        measure::run(cfg, call_rust_pointer),
        "empty Rust fn through a black_boxed fn pointer",
    );
}

/// `basic::noop` called straight through the module's entry point, beside the same call
/// through the runtime: the module's side of a call, and what the runtime adds to it.
fn boundary(report: &mut Report, cfg: &Config, h: &Host) {
    let mut b = match Boundary::load(&h.basic_path, "noop") {
        Ok(b) => b,
        Err(e) => return eprintln!("  module_boundary_noop_ns: skipped, {e}"),
    };
    // `()` comes back as MessagePack's nil: one byte.
    let (status, len) = b.call(b"");
    if status != Status::Ok as i32 || len != 1 {
        return eprintln!(
            "  module_boundary_noop_ns: skipped, noop gave status {status}, {len} bytes"
        );
    }
    report.ns(
        "module_boundary_noop_ns",
        measure::run(cfg, || b.call(b"")),
        "basic::noop through its own entry point (ModuleInfo::method_calls), a frame filled on the stack each call: no runtime (no admission, arena pool, deadline, metrics, output copy)",
    );
    if let (Some(through), Some(alone)) = (
        report.get("export_noargs_by_id_ns"),
        report.get("module_boundary_noop_ns"),
    ) {
        eprintln!("  runtime_side_noop_ns: what the runtime adds to the module's side of a call (the two figures above)");
        report.value("runtime_side_noop_ns", through - alone);
    }
}

/// What the built-in figures cost a no-op call: the runtime with them (`on`) against one
/// without (`off`), in five rounds of the two one after the other (each a fifth of a
/// figure's time), the median of the rounds' differences. Two figures measured seconds
/// apart differ by the machine's drift as much as by the figures (a difference of the
/// two full figures ran from -3 to 3.6 ns over the runs); within a round both sides see
/// the same machine.
fn builtin_metrics(report: &mut Report, cfg: &Config, on: &Host, off: &Host) {
    let round = Config {
        warmup: cfg.warmup / 5,
        budget: cfg.budget / 5,
        ..*cfg
    };
    let mut differences: Vec<f64> = (0..5)
        .map(|_| {
            let with = measure::run(&round, || on.noop_by_id()).median_ns;
            let without = measure::run(&round, || off.noop_by_id()).median_ns;
            with - without
        })
        .collect();
    differences.sort_by(f64::total_cmp);
    eprintln!(
        "  builtin_metrics_ns: export_noargs_by_id_ns on a runtime with built-in metrics minus one without, median of 5 interleaved rounds (each round's difference: {})",
        differences
            .iter()
            .map(|d| format!("{d:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    report.value("builtin_metrics_ns", differences[2]);
}

/// Exports called through the runtime.
pub fn exports(report: &mut Report, cfg: &Config, fx: &Fixtures) {
    let h = &fx.host;
    report.ns(
        "export_noargs_by_id_ns",
        measure::run(cfg, || h.noop_by_id()),
        "basic::noop, call_method(m, b\"\", &CallOptions::default()), output dropped",
    );
    boundary(report, cfg, h);
    match Host::with_config(RuntimeConfig::default().builtin_metrics(false)) {
        Ok(quiet) => {
            report.ns(
                "export_noargs_by_id_no_metrics_ns",
                measure::run(cfg, || quiet.noop_by_id()),
                "as export_noargs_by_id_ns, on a runtime with builtin_metrics off",
            );
            builtin_metrics(report, cfg, h, &quiet);
        }
        Err(e) => eprintln!("  export_noargs_by_id_no_metrics_ns: skipped, {e}"),
    }
    let hooked = RuntimeConfig::default().interceptor(std::sync::Arc::new(NoopInterceptor));
    match Host::with_config(hooked) {
        Ok(hooked) => {
            report.ns(
                "export_noargs_by_id_intercepted_ns",
                measure::run(cfg, || hooked.noop_by_id()),
                "as export_noargs_by_id_ns, on a runtime with one interceptor that does nothing",
            );
            if let (Some(with), Some(without)) = (
                report.get("export_noargs_by_id_intercepted_ns"),
                report.get("export_noargs_by_id_ns"),
            ) {
                eprintln!("  interceptor_noop_added_ns: what one installed no-op interceptor adds to a call (the two figures above)");
                report.value("interceptor_noop_added_ns", with - without);
            }
        }
        Err(e) => eprintln!("  export_noargs_by_id_intercepted_ns: skipped, {e}"),
    }
    report.ns(
        "export_noargs_by_name_ns",
        measure::run(cfg, || h.noop_by_name()),
        "basic::noop, call(h, \"noop\", b\"\"), output dropped",
    );
    report.ns(
        "echo_small_raw_ns",
        measure::run(cfg, || h.echo_raw()),
        "basic::echo, call(h, \"echo\", b\"hello\"), output dropped",
    );
    report.ns(
        "echo_small_raw_by_id_ns",
        measure::run(cfg, || h.echo_raw_by_id()),
        "basic::echo by id with b\"hello\", output dropped",
    );
    report.ns(
        "echo_small_msgpack_ns",
        measure::run(cfg, || h.echo_msgpack()),
        "datasets::echo_msgpack by name, pre-encoded [\"hello\"], result left encoded",
    );
    report.ns(
        "add_msgpack_ns",
        measure::run(cfg, || h.add_msgpack()),
        "basic::add by name, pre-encoded [2, 3], result left encoded",
    );
    report.ns(
        "add_typed_ns",
        measure::run(cfg, || h.add_typed()),
        "basic::add through its typed handle (made once): encode (2, 3), call, decode u32",
    );
    report.ns(
        "add_call_typed_by_name_ns",
        measure::run(cfg, || h.add_call_typed()),
        "basic::add through call_typed(h, \"add\", &(2, 3)): resolved by name each call",
    );
}

/// An interceptor that does nothing: what installing one costs a call.
#[derive(Debug)]
struct NoopInterceptor;

impl memlink_runtime::intercept::Interceptor for NoopInterceptor {}

/// The same calls into WebAssembly with wasmtime ([`crate::peers`]), if the package was
/// built with its `peers` feature.
pub fn peers(report: &mut Report, cfg: &Config) {
    #[cfg(feature = "peers")]
    crate::peers::figures(report, cfg);
    #[cfg(not(feature = "peers"))]
    {
        let _ = (report, cfg);
        eprintln!("  peers: not built (memlink-benches without its `peers` feature), skipped");
    }
}

/// The arena against bumpalo, per allocation.
pub fn arena(report: &mut Report, cfg: &Config) {
    let per_alloc = |s: Sample| {
        let n = ARENA_ROUND as f64;
        Sample {
            median_ns: s.median_ns / n,
            min_ns: s.min_ns / n,
            q1_ns: s.q1_ns / n,
            q3_ns: s.q3_ns / n,
            ..s
        }
    };
    let round = format!("per allocation, rounds of {ARENA_ROUND} then reset");
    let mut m = MemlinkRound::new();
    report.ns(
        "alloc_u64_ns",
        per_alloc(measure::run(cfg, || m.alloc_round())),
        &format!("Arena::alloc::<u64>(), {round}"),
    );
    report.ns(
        "alloc_with_u64_ns",
        per_alloc(measure::run(cfg, || m.alloc_with_round())),
        &format!("Arena::alloc_with(|| 42u64), {round}"),
    );
    let mut b = BumpRound::new();
    report.ns(
        "bumpalo_alloc_u64_ns",
        per_alloc(measure::run(cfg, || b.alloc_round())),
        &format!("Bump::alloc(0u64), {round}"),
    );
    report.ns(
        "bumpalo_alloc_with_u64_ns",
        per_alloc(measure::run(cfg, || b.alloc_with_round())),
        &format!("Bump::alloc_with(|| 42u64), {round}"),
    );
}

/// Throughput of 1, 2 and all-cores threads calling one module, the scaling ratio, and
/// the two controls of [`threads`].
pub fn scaling(report: &mut Report, cfg: &Config, fx: &Fixtures) {
    let counts = threads::counts();
    let (rounds, run) = if cfg.budget >= Duration::from_secs(1) {
        (5, Duration::from_millis(300))
    } else {
        (3, Duration::from_millis(60))
    };
    // One runtime per thread for the first control, each with its own modules loaded.
    let own: Vec<Host> = match (0..2).map(|_| Host::new()).collect() {
        Ok(hosts) => hosts,
        Err(e) => {
            eprintln!("  threads_*: skipped, {e}");
            return;
        }
    };
    let shared = |_: usize| drop(fx.host.noop_by_id());
    let separate = |i: usize| drop(own[i].noop_by_id());
    let b = fx.baseline;
    let machine = |_: usize| {
        b.call_add();
    };
    // Every round measures every case, so a burst of outside load hits all of them
    // rather than one.
    let mut cases: Vec<Case<'_>> = counts
        .iter()
        .map(|&n| Case::new(format!("threads_{n}_calls_per_sec"), n, &shared))
        .collect();
    cases.push(Case::new(
        "threads_2_own_runtimes_calls_per_sec".into(),
        2,
        &separate,
    ));
    cases.push(Case::new(
        "machine_1_thread_ops_per_sec".into(),
        1,
        &machine,
    ));
    cases.push(Case::new(
        "machine_2_threads_ops_per_sec".into(),
        2,
        &machine,
    ));
    for _ in 0..rounds {
        for case in cases.iter_mut() {
            let rate = threads::ops_per_sec(case.threads, run, case.op);
            case.rates.push(rate);
        }
    }
    eprintln!(
        "  threads_*: basic::noop by id from N threads sharing one Runtime (own_runtimes: one Runtime per thread; machine_*: extern \"C\" add in the same loop); median of {rounds} runs of {} ms",
        run.as_millis()
    );
    for case in cases.iter_mut() {
        report.value(&case.key, measure::median(&mut case.rates));
    }
    report.ratio(
        "threads_scaling_ratio",
        "threads_2_calls_per_sec",
        "threads_1_calls_per_sec",
    );
    let cores = *counts.last().unwrap_or(&1);
    if cores > 2 {
        report.ratio(
            "threads_all_cores_scaling_ratio",
            &format!("threads_{cores}_calls_per_sec"),
            "threads_1_calls_per_sec",
        );
    }
    report.ratio(
        "threads_own_runtimes_scaling_ratio",
        "threads_2_own_runtimes_calls_per_sec",
        "threads_1_calls_per_sec",
    );
    report.ratio(
        "machine_scaling_ratio",
        "machine_2_threads_ops_per_sec",
        "machine_1_thread_ops_per_sec",
    );
    // How much of what the machine's cores give the shared runtime keeps (1: all).
    report.ratio(
        "threads_scaling_vs_machine",
        "threads_scaling_ratio",
        "machine_scaling_ratio",
    );
}

/// One thread-scaling measurement: its key, thread count, operation and rates.
struct Case<'a> {
    key: String,
    threads: usize,
    op: &'a (dyn Fn(usize) + Sync),
    rates: Vec<f64>,
}

impl<'a> Case<'a> {
    fn new(key: String, threads: usize, op: &'a (dyn Fn(usize) + Sync)) -> Case<'a> {
        Case {
            key,
            threads,
            op,
            rates: Vec::new(),
        }
    }
}

/// Reloads measured for `reload_ns`: each maps an image that stays mapped, so few.
const RELOADS: usize = 100;

/// Loading, unloading and reloading a module.
pub fn lifecycle(report: &mut Report, cfg: &Config, fx: &Fixtures) {
    let path = fx.host.basic_path.clone();
    // `fx.host` has `basic` loaded, so this image's init count never drops to zero:
    // a cycle does not start and stop the module's async executor.
    report.ns(
        "load_init_unload_shared_ns",
        measure::run_batches(cfg, crate::fixture::LOADS_PER_RUNTIME, |n| {
            time_load_unload(&path, n)
        }),
        "load + memlink_init + unload of basic (already mapped) while another runtime keeps it initialized",
    );
    // The same without the persistent region each load allocates (1 MiB, zeroed).
    let mut bare = RuntimeConfig::default();
    bare.persistent_size = 0;
    report.ns(
        "load_init_unload_no_persistent_ns",
        measure::run_batches(cfg, crate::fixture::LOADS_PER_RUNTIME, |n| {
            crate::fixture::time_load_unload_with(&bare, &path, n)
        }),
        "as load_init_unload_shared_ns, with persistent_size = 0",
    );
    if let Some(kib) = crate::fixture::rss_growth_per_cycle(&path, 10_000) {
        eprintln!("  load_unload_rss_kib_per_cycle: resident memory left by one load + unload of basic, over 10,000 cycles on one runtime");
        report.value("load_unload_rss_kib_per_cycle", kib);
    }
    match crate::fixture::reload_figures(&path, RELOADS) {
        Ok((times, rss)) => {
            report.ns(
                "reload_ns",
                Sample::of(times, 1),
                "Runtime::reload of basic from its file (a fresh image each time) until the first call the new image answers",
            );
            if let Some(kib) = rss {
                eprintln!("  reload_rss_kib_per_cycle: resident memory one reload of basic leaves behind (the new image's mapping; no image is ever unmapped), over {RELOADS} reloads");
                report.value("reload_rss_kib_per_cycle", kib);
            }
        }
        Err(e) => eprintln!("  reload_ns: skipped, {e}"),
    }
    // A copy of the file is a separate image that nothing else holds: each cycle's init
    // starts the module's tokio runtime (one worker thread) and its shutdown stops it.
    let copy = match crate::fixture::private_copy(&path) {
        Ok(copy) => copy,
        Err(e) => {
            eprintln!("  load_init_unload_ns: skipped, {e}");
            return;
        }
    };
    report.ns(
        "load_init_unload_ns",
        measure::run_batches(cfg, crate::fixture::LOADS_PER_RUNTIME, |n| {
            time_load_unload(&copy, n)
        }),
        "load + memlink_init + unload of a copy of basic nobody else holds (starts and stops its executor)",
    );
}

/// A module calling another through the host.
pub fn nested(report: &mut Report, cfg: &Config, fx: &Fixtures) {
    let h = &fx.host;
    report.ns(
        "nested_relay_echo_ns",
        measure::run(cfg, || h.relay_echo()),
        "nested_calls::relay(\"basic\", \"echo\", b\"hello\") by name",
    );
    report.ns(
        "nested_relay_noop_ns",
        measure::run(cfg, || h.relay_noop()),
        "nested_calls::relay(\"basic\", \"noop\", []) by name",
    );
    report.ns(
        "nested_borrowed_relay_echo_ns",
        measure::run(cfg, || h.relay_borrowed_echo()),
        "nested_calls::relay_borrowed(\"basic\", \"echo\", b\"hello\") by name: a sync relay borrowing its arguments",
    );
    report.ns(
        "nested_in_arena_relay_echo_ns",
        measure::run(cfg, || h.relay_in_arena_echo()),
        "nested_calls::relay_in_arena(\"basic\", \"echo\", b\"hello\") by name: relay_borrowed, the result lent to it and kept in its arena",
    );
    let direct = report.get("echo_small_raw_ns");
    for (relay, added) in [
        ("nested_relay_echo_ns", "nested_added_ns"),
        ("nested_borrowed_relay_echo_ns", "nested_borrowed_added_ns"),
        ("nested_in_arena_relay_echo_ns", "nested_in_arena_added_ns"),
    ] {
        if let (Some(relay), Some(direct)) = (report.get(relay), direct) {
            report.value(added, relay - direct);
        }
    }
}

/// Host-side heap allocations per call (the module's own are counted under callgrind).
pub fn allocations(report: &mut Report, fx: &Fixtures) {
    if !alloc_count::installed() {
        eprintln!("  host_allocs_*: skipped, the counting allocator is not installed");
        return;
    }
    let h = &fx.host;
    let n = 1000;
    eprintln!("  host_allocs_*: heap allocations in the host per call, over {n} calls");
    report.value(
        "host_allocs_noargs_by_id",
        alloc_count::per_call(n, || h.noop_by_id()),
    );
    report.value(
        "host_allocs_noargs_by_name",
        alloc_count::per_call(n, || h.noop_by_name()),
    );
    report.value(
        "host_allocs_echo_small_raw",
        alloc_count::per_call(n, || h.echo_raw()),
    );
    report.value(
        "host_allocs_add_typed",
        alloc_count::per_call(n, || h.add_typed()),
    );
    report.value(
        "host_allocs_nested_relay_echo",
        alloc_count::per_call(n, || h.relay_echo()),
    );
}

/// Ratios of figures of this run.
pub fn ratios(report: &mut Report) {
    // The daemon: against the in-process call and the Unix-socket baseline.
    report.ratio(
        "daemon_noargs_over_in_process",
        "daemon_noargs_ns",
        "export_noargs_by_name_ns",
    );
    report.ratio(
        "socket_over_daemon_noargs",
        "socket_msgpack_noargs_ns",
        "daemon_noargs_ns",
    );
    report.ratio(
        "socket_over_daemon_noargs_sleeping",
        "socket_msgpack_noargs_sleeping_ns",
        "daemon_noargs_sleeping_ns",
    );
    report.ratio(
        "daemon_zero_copy_64mib_over_1kib",
        "daemon_zero_copy_64mib_ns",
        "daemon_zero_copy_1kib_ns",
    );
    report.ratio(
        "daemon_untrusted_64mib_over_memcpy",
        "daemon_untrusted_64mib_ns",
        "memcpy_64mib_ns",
    );
    report.ratio(
        "socket_over_daemon_1mib",
        "socket_msgpack_1mib_ns",
        "daemon_zero_copy_1mib_ns",
    );
    report.ratio(
        "daemon_clients_scaling",
        "daemon_clients_2_calls_per_sec",
        "daemon_clients_1_calls_per_sec",
    );
    report.ratio(
        "pingpong_pairs_scaling",
        "pingpong_pairs_2_per_sec",
        "pingpong_pairs_1_per_sec",
    );
    report.ratio(
        "daemon_sleeping_over_futex_wake",
        "daemon_noargs_sleeping_ns",
        "futex_wake_sleeping_ns",
    );
    report.ratio(
        "daemon_flood_ratio",
        "daemon_latency_flooded_ns",
        "daemon_latency_quiet_ns",
    );
    report.ratio(
        "daemon_batch_saving",
        "daemon_noargs_ns",
        "daemon_batch8_per_call_ns",
    );
    report.ratio(
        "noargs_by_id_over_raw_extern",
        "export_noargs_by_id_ns",
        "raw_extern_ns",
    );
    report.ratio(
        "noargs_by_name_over_by_id",
        "export_noargs_by_name_ns",
        "export_noargs_by_id_ns",
    );
    report.ratio(
        "echo_small_raw_over_raw_extern",
        "echo_small_raw_ns",
        "raw_extern_ns",
    );
    report.ratio(
        "add_typed_over_add_msgpack",
        "add_typed_ns",
        "add_msgpack_ns",
    );
    // memlink against wasmtime, the same call each (the `exports` and `peers` groups).
    report.ratio(
        "noargs_over_wasmtime_nop",
        "export_noargs_by_id_ns",
        "wasmtime_nop_ns",
    );
    report.ratio(
        "echo_over_wasmtime_echo",
        "echo_small_raw_ns",
        "wasmtime_echo_ns",
    );
    report.ratio("add_over_wasmtime_add", "add_msgpack_ns", "wasmtime_add_ns");
    // Like for like with wasmtime's typed handle, which takes and returns the integers
    // themselves: memlink's typed handle, encoding the arguments and decoding the result
    // on the host (`add_msgpack_ns`, the target, takes them encoded once).
    report.ratio(
        "add_typed_over_wasmtime_add",
        "add_typed_ns",
        "wasmtime_add_ns",
    );
    // The echo by handle, as the no-op is (`echo_small_raw_ns` is by name).
    report.ratio(
        "echo_by_id_over_wasmtime_echo",
        "echo_small_raw_by_id_ns",
        "wasmtime_echo_ns",
    );
    report.ratio(
        "alloc_u64_over_bumpalo",
        "alloc_u64_ns",
        "bumpalo_alloc_u64_ns",
    );
    report.ratio(
        "alloc_with_u64_over_bumpalo",
        "alloc_with_u64_ns",
        "bumpalo_alloc_with_u64_ns",
    );
    report.ratio(
        "nested_relay_echo_over_echo",
        "nested_relay_echo_ns",
        "echo_small_raw_ns",
    );
}
