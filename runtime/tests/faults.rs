//! Faults under load: thousands of panics in a row (with memory measured), two threads
//! of mixed success, module errors and panics with every outcome counted, arena
//! exhaustion in the middle of a call, and a module whose `memlink_init` refuses.
//!
//! The tests take one lock each, so the memory measured by one is not another's.

mod common;

use std::sync::Mutex;
use std::time::Instant;

use common::{de, load, mp};
use memlink_runtime::{ModuleError, ModuleRef, Runtime, RuntimeConfig, RuntimeError};

/// Serializes the tests of this file (see the module docs).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner())
}

/// Resident memory of this process, from `/proc/self/status`.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line in kB");
    kib * 1024
}

fn expect_panic(rt: &Runtime, h: memlink_runtime::ModuleHandle, message: &str) {
    let err = rt.call(h, "boom", message.as_bytes()).unwrap_err();
    let Some(ModuleError::Panic(m)) = err.module_error() else {
        panic!("expected a panic error for `{message}`, got {err}")
    };
    assert!(m.starts_with(&format!("{message} (at ")), "{m}");
    assert!(m.contains("basic.rs"), "the panic's location: {m}");
}

/// Growth allowed across 10,000 panics. Everything a panic allocates (the payload, the
/// message with its location, the error's `String` on each side of the boundary) is
/// freed by the next call, so after a warm-up the allocator reuses the same memory and
/// RSS stays flat: the measured growth here is zero to a few pages. A leak of just the
/// message (about 60 bytes, 80 with the allocator's header) per panic would add 800 KB
/// over 10,000 panics; the bound sits above page-granular noise and well below what any
/// per-panic leak adds.
const PANIC_RSS_BOUND: u64 = 512 * 1024;

#[test]
fn ten_thousand_panics_in_a_row_leak_nothing_and_the_module_keeps_serving() {
    let _serial = serial();
    let (rt, h) = load("basic");
    // Warm-up: thread-local buffers, the hook, the allocator's free lists.
    for i in 0..1_000 {
        expect_panic(&rt, h, &format!("warm-up {i}"));
        assert_eq!(rt.call(h, "echo", b"ok").unwrap(), b"ok");
    }
    let before = rss_bytes();
    for i in 0..10_000 {
        expect_panic(&rt, h, &format!("panic number {i:05}"));
    }
    for i in 0..100u32 {
        assert_eq!(
            de::<u32>(&rt.call(h, "add", &mp(&(i, 1u32))).unwrap()),
            i + 1
        );
    }
    let after = rss_bytes();
    let growth = after.saturating_sub(before);
    eprintln!(
        "RSS around 10,000 panics: {} KiB before, {} KiB after, growth {} KiB (bound {} KiB)",
        before / 1024,
        after / 1024,
        growth / 1024,
        PANIC_RSS_BOUND / 1024
    );
    assert!(
        growth < PANIC_RSS_BOUND,
        "RSS grew by {growth} bytes over 10,000 panics"
    );
}

/// Calls per thread in the mixed load test: `MEMLINK_LOAD_CALLS`, 50,000 by default
/// (the 500,000 takes about ten times as long: run it by hand).
fn load_calls() -> u64 {
    std::env::var("MEMLINK_LOAD_CALLS")
        .ok()
        .map(|v| v.parse().expect("MEMLINK_LOAD_CALLS is a number"))
        .unwrap_or(50_000)
}

/// What one thread saw, by kind of outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    ok: u64,
    quota: u64,
    failed: u64,
    panicked: u64,
}

/// Call `i` of thread `t`: one of four kinds, each checked in full.
fn mixed_call(rt: &Runtime, h: memlink_runtime::ModuleHandle, t: u32, i: u64, tally: &mut Tally) {
    match i % 4 {
        0 => {
            let (a, b) = (i as u32, t);
            let sum: u32 = de(&rt.call(h, "add", &mp(&(a, b))).unwrap());
            assert_eq!(sum, a + b);
            tally.ok += 1;
        }
        1 => {
            let err = rt.call(h, "may_fail", &mp(&(101 + i % 1000,))).unwrap_err();
            assert_eq!(
                err.module_error(),
                Some(&ModuleError::QuotaExceeded),
                "{err}"
            );
            tally.quota += 1;
        }
        2 => {
            let err = rt
                .call(h, "fail", format!("t{t}-{i}").as_bytes())
                .unwrap_err();
            assert_eq!(
                err.module_error(),
                Some(&ModuleError::Failed(format!(
                    "asked to fail with `t{t}-{i}`"
                ))),
                "{err}"
            );
            tally.failed += 1;
        }
        _ => {
            expect_panic(rt, h, &format!("t{t}-{i}"));
            tally.panicked += 1;
        }
    }
}

#[test]
fn two_threads_of_mixed_calls_every_outcome_counted() {
    let _serial = serial();
    let (rt, h) = load("basic");
    let calls = load_calls();
    let started = Instant::now();
    let threads: Vec<_> = (0..2u32)
        .map(|t| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                for i in 0..calls {
                    mixed_call(&rt, h, t, i, &mut tally);
                }
                tally
            })
        })
        .collect();
    let tallies: Vec<Tally> = threads
        .into_iter()
        .map(|t| t.join().expect("no thread panicked"))
        .collect();
    let elapsed = started.elapsed();
    // Kind k gets the calls i with i % 4 == k: ceil((calls - k) / 4) of them.
    let of_kind = |k: u64| (calls + 3 - k) / 4;
    let expected = Tally {
        ok: of_kind(0),
        quota: of_kind(1),
        failed: of_kind(2),
        panicked: of_kind(3),
    };
    for (t, tally) in tallies.iter().enumerate() {
        assert_eq!(*tally, expected, "thread {t}");
        assert_eq!(
            tally.ok + tally.quota + tally.failed + tally.panicked,
            calls,
            "thread {t}: every call has exactly one outcome"
        );
    }
    eprintln!(
        "2 threads x {calls} mixed calls in {:.2?} ({:.0} calls/s): {:?} per thread",
        elapsed,
        (2 * calls) as f64 / elapsed.as_secs_f64(),
        expected
    );
    assert_eq!(
        rt.call(h, "echo", b"after the storm").unwrap(),
        b"after the storm"
    );
}

#[test]
fn arena_exhaustion_mid_call_is_quota_exceeded_and_the_next_call_has_a_fresh_arena() {
    let _serial = serial();
    let (rt, h) = load("arena_usage");
    let quota = |method: &str, args: Vec<u8>| {
        let err = rt.call(h, method, &args).unwrap_err();
        assert_eq!(
            err.module_error(),
            Some(&ModuleError::QuotaExceeded),
            "{method}: {err}"
        );
        assert_eq!(
            err.to_string(),
            format!("arena_usage::{method} failed: quota exceeded")
        );
    };
    // 8 MB and 32 GB of squares for a 64 KiB arena; a whole arena plus one byte.
    quota("sum_of_squares", mp(&(1_000_000u32,)));
    quota("sum_of_squares", mp(&(u32::MAX,)));
    quota("arena_stats", mp(&(64 * 1024 + 1u32,)));
    // Many words: each `&str` takes 16 bytes of arena.
    quota("reverse_words", "w ".repeat(10_000).into_bytes());
    for _ in 0..3 {
        let s: u64 = rt.call_typed(h, "sum_of_squares", &(3u32,)).unwrap();
        assert_eq!(s, 5);
        let (cap, used, left): (usize, usize, usize) =
            rt.call_typed(h, "arena_stats", &(1000u32,)).unwrap();
        assert_eq!(
            (cap, used, left),
            (64 * 1024, 1000, 64 * 1024 - 1000),
            "the exhausted arenas went back to the pool empty"
        );
        quota("sum_of_squares", mp(&(10_000u32,)));
    }

    // A tiny arena: the same calls fail sooner, and results that do not fit it still
    // arrive through the host's output buffer.
    let rt = Runtime::new(
        RuntimeConfig::default().arena_size(256),
        memlink_runtime::resolver::LocalResolver,
    );
    let small = rt
        .load(ModuleRef::from_path(common::module_path("arena_usage")))
        .unwrap();
    let err = rt
        .call(small, "sum_of_squares", &mp(&(33u32,)))
        .unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::QuotaExceeded),
        "{err}"
    );
    let s: u64 = rt.call_typed(small, "sum_of_squares", &(32u32,)).unwrap();
    assert_eq!(
        s,
        (0..32u64).map(|i| i * i).sum::<u64>(),
        "32 squares fill 256 bytes"
    );
    let text = "word ".repeat(100);
    let out = rt.call(small, "reverse_words", text.trim_end().as_bytes());
    assert!(
        matches!(&out, Err(e) if e.module_error() == Some(&ModuleError::QuotaExceeded)),
        "100 words need 1,600 bytes of a 256-byte arena"
    );
    let out = rt.call(small, "reverse_words", b"a b c d e f g h").unwrap();
    assert_eq!(out, b"h g f e d c b a");
}

#[test]
fn a_module_whose_init_fails_is_refused_with_its_message() {
    let _serial = serial();
    let path = common::fixture("init_fails");
    let rt = Runtime::with_local_resolver();
    for attempt in 0..2 {
        let err = rt.load(ModuleRef::from_path(&path)).unwrap_err();
        let RuntimeError::InitFailed { module, message } = &err else {
            panic!("attempt {attempt}: expected InitFailed, got {err}")
        };
        assert_eq!(module, "init_fails");
        assert_eq!(
            message,
            "cannot start: the licence file /etc/init_fails/licence is missing"
        );
        assert_eq!(
            err.to_string(),
            format!("module `init_fails` failed to initialize: {message}")
        );
    }
    // The refused module holds no name and no slot: the runtime goes on loading.
    let h = rt
        .load(ModuleRef::from_path(common::module_path("basic")))
        .unwrap();
    assert_eq!(rt.call(h, "echo", b"fine").unwrap(), b"fine");
    let err = rt
        .load_as(ModuleRef::from_path(&path), "renamed")
        .unwrap_err();
    assert!(
        matches!(&err, RuntimeError::InitFailed { module, .. } if module == "renamed"),
        "{err}"
    );
}
