//! The one-run report of memlink's headline figures.
//!
//! ```sh
//! cargo run --release -p memlink-benches --bin report            # about 45 s
//! cargo run --release -p memlink-benches --bin report -- --quick # about 5 s
//! ```
//!
//! Prints one `key=value` line per figure on stdout (nanoseconds per call, calls per
//! second, or a ratio); what each figure timed and how noisy it was goes to stderr.
//! `--only lifecycle,nested` measures some groups only.
//!
//! `--profile OP [--iters N]` runs one operation N times inside the function
//! `memlink_bench_profile_loop`, for a profiler to isolate:
//!
//! ```sh
//! valgrind --tool=callgrind --toggle-collect=memlink_bench_profile_loop \
//!     target/release/report --profile noop_by_id --iters 100000
//! ```

use std::hint::black_box;
use std::process::ExitCode;

use memlink_benches::alloc_count::{self, CountingAlloc};
use memlink_benches::boundary::Boundary;
use memlink_benches::fixture::{time_load_unload_with, Baseline, BumpRound, Host, MemlinkRound};
use memlink_benches::measure::Config;
use memlink_benches::report::{self, Fixtures, Report};
use memlink_runtime::RuntimeConfig;

/// Counts host allocations for the `host_allocs_*` figures; it adds one thread-local
/// increment to each allocation, and nothing to code that does not allocate.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

const USAGE: &str =
    "usage: report [--quick] [--only GROUP,GROUP...] | report --profile OP [--iters N]
GROUP: limits exports peers arena threads lifecycle nested zero_copy observability allocations
       daemon
OP: raw_extern boundary_noop noop_by_id noop_by_name echo_raw echo_raw_by_id echo_msgpack
    add_msgpack add_typed relay_echo relay_borrowed_echo relay_in_arena_echo
    load_unload_shared load_unload_no_persistent
    alloc_round bumpalo_round wasmtime_nop wasmtime_add wasmtime_echo";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The `daemon` group runs this executable again as the daemon, its worker, the
    // baseline's server and client processes.
    if let Some(code) = memlink_benches::daemon::role(&args) {
        return code;
    }
    let mut quick = false;
    let mut profile = None;
    let mut only: Option<String> = None;
    let mut iters: u64 = 100_000;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--profile" => profile = it.next().cloned(),
            "--only" => only = it.next().cloned(),
            "--iters" => match it.next().and_then(|n| n.parse().ok()) {
                Some(n) => iters = n,
                None => return usage(),
            },
            // `cargo bench` passes `--bench` to every target it runs.
            "--bench" => {}
            _ => return usage(),
        }
    }
    if let Some(op) = profile {
        return run_profile(&op, iters);
    }
    let cfg = if quick {
        Config::quick()
    } else {
        Config::full()
    };
    eprintln!("building the example modules (release) and the baseline library...");
    let fixtures = match fixtures() {
        Ok(f) => f,
        Err(e) => return fail(&e),
    };
    let started = std::time::Instant::now();
    let mut report = Report::new();
    match &only {
        Some(groups) => {
            let groups: Vec<&str> = groups.split(',').collect();
            report::run_groups(&mut report, &cfg, &fixtures, &groups);
        }
        None => report::run_all(&mut report, &cfg, &fixtures),
    }
    eprintln!(
        "measured {} figures in {:.1} s",
        report.entries().len(),
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::FAILURE
}

fn fixtures() -> Result<Fixtures, String> {
    Ok(Fixtures {
        baseline: Baseline::load()?,
        host: Host::new()?,
    })
}

/// The loop a profiler isolates (callgrind's `--toggle-collect`): it only calls `op`,
/// so its inclusive cost divided by the iterations is the operation's cost, plus the
/// few instructions of one indirect call.
#[no_mangle]
#[inline(never)]
fn memlink_bench_profile_loop(iters: u64, op: &mut dyn FnMut()) {
    for _ in 0..iters {
        op();
    }
}

fn run_profile(op: &str, iters: u64) -> ExitCode {
    let mut op: Box<dyn FnMut()> = match op {
        "alloc_round" => {
            let mut m = MemlinkRound::new();
            Box::new(move || m.alloc_round())
        }
        "bumpalo_round" => {
            let mut bump = BumpRound::new();
            Box::new(move || bump.alloc_round())
        }
        "boundary_noop" => {
            let mut b = match memlink_benches::modules::example("basic")
                .and_then(|path| Boundary::load(&path, "noop"))
            {
                Ok(b) => b,
                Err(e) => return fail(&e),
            };
            Box::new(move || {
                black_box(b.call(b""));
            })
        }
        "raw_extern" => match Baseline::load() {
            Ok(b) => Box::new(move || b.call_noop()),
            Err(e) => return fail(&e),
        },
        "wasmtime_nop" | "wasmtime_add" | "wasmtime_echo" => match peer_op(op) {
            Ok(op) => op,
            Err(e) => return fail(&e),
        },
        op => {
            let h = match Host::new() {
                Ok(h) => h,
                Err(e) => return fail(&e),
            };
            match op {
                "noop_by_id" => Box::new(move || drop(black_box(h.noop_by_id()))),
                "noop_by_name" => Box::new(move || drop(black_box(h.noop_by_name()))),
                "echo_raw" => Box::new(move || drop(black_box(h.echo_raw()))),
                "echo_raw_by_id" => Box::new(move || drop(black_box(h.echo_raw_by_id()))),
                "echo_msgpack" => Box::new(move || drop(black_box(h.echo_msgpack()))),
                "add_msgpack" => Box::new(move || drop(black_box(h.add_msgpack()))),
                "add_typed" => Box::new(move || {
                    black_box(h.add_typed());
                }),
                "relay_echo" => Box::new(move || drop(black_box(h.relay_echo()))),
                "relay_borrowed_echo" => Box::new(move || drop(black_box(h.relay_borrowed_echo()))),
                "relay_in_arena_echo" => Box::new(move || drop(black_box(h.relay_in_arena_echo()))),
                // One cycle per call on a fresh runtime (its creation included): `h`
                // keeps the image initialized, as in `load_init_unload_shared_ns`.
                "load_unload_shared" | "load_unload_no_persistent" => {
                    let path = h.basic_path.clone();
                    let mut config = RuntimeConfig::default();
                    if op == "load_unload_no_persistent" {
                        config.persistent_size = 0;
                    }
                    Box::new(move || {
                        let _ = &h;
                        black_box(time_load_unload_with(&config, &path, 1));
                    })
                }
                _ => return usage(),
            }
        }
    };
    // Warm up outside the profiled loop: first-call costs (the pool's first arena, the
    // module's scratch buffer, lazy statics) are not the steady state.
    let warmup = iters.min(10_000);
    for _ in 0..warmup {
        op();
    }
    let before = alloc_count::allocations();
    memlink_bench_profile_loop(iters, &mut *op);
    let allocs = alloc_count::allocations() - before;
    println!("profiled={iters}");
    println!("warmup={warmup}");
    println!("host_allocs_per_iter={:.3}", allocs as f64 / iters as f64);
    ExitCode::SUCCESS
}

/// A `wasmtime_*` operation of the `peers` group, on a guest of its own.
#[cfg(feature = "peers")]
fn peer_op(op: &str) -> Result<Box<dyn FnMut()>, String> {
    let mut wasm = memlink_benches::peers::Wasmtime::new()?;
    Ok(match op {
        "wasmtime_nop" => Box::new(move || wasm.nop()),
        "wasmtime_add" => Box::new(move || {
            black_box(wasm.add());
        }),
        "wasmtime_echo" => Box::new(move || drop(black_box(wasm.echo()))),
        other => return Err(format!("no operation `{other}`")),
    })
}

#[cfg(not(feature = "peers"))]
fn peer_op(op: &str) -> Result<Box<dyn FnMut()>, String> {
    Err(format!(
        "{op}: the peers group was not built (memlink-benches without its `peers` feature)"
    ))
}

fn fail(e: &str) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}
