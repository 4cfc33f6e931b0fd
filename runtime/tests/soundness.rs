//! Soundness and liveness through the real runtime and real modules: what a careless
//! module author or a hostile caller can do must end in a named error, never in
//! undefined behaviour, a hang, or another caller's bytes.
//!
//! The frame-level cases (a hand-built frame handed to `memlink_call`) are in
//! `frames.rs`; files that are not modules in `bad_input.rs`.

mod common;

use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use common::{load_all, module_copy, module_path, mp, runtime_with_holding};
use memlink_runtime::{
    CallOptions, ModuleError, ModuleRef, Runtime, RuntimeConfig, RuntimeError, Saturation,
};

use common::HANG;

/// Runs `f` on a thread and returns its result, or fails the test if it hangs.
fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(HANG)
        .unwrap_or_else(|_| panic!("{what} never returned"))
}

/// Item 1: safe module code stores values of alignments from 128 bytes to 64 KiB in the
/// persistent region (which the host aligns to 64) and reads them back through a `&T`.
/// Each lands on an address aligned for its type. Before, the alignment was taken
/// within the region, so every alignment past the region's own gave a misaligned `&T`:
/// a debug build of the module traps it (aborting the host), a release build reads it as
/// undefined behaviour.
#[test]
fn values_aligned_past_the_persistent_region_are_stored_aligned() {
    let mut config = RuntimeConfig::default();
    config.persistent_size = 4 << 20;
    let (rt, h) = load_all(config, &["hazards"]);
    for pad in 0..3u8 {
        let seen: Vec<(u64, u64, bool)> = rt.call_typed(h[0], "store_aligned", &(pad,)).unwrap();
        assert_eq!(seen.len(), 5);
        for (align, misalignment, intact) in seen {
            assert_eq!(misalignment, 0, "aligned to {align} after {pad} bytes");
            assert!(intact, "the value aligned to {align} reads back");
        }
    }
}

/// A link of `hazards::FatLink`, as the host writes it.
#[derive(serde::Serialize)]
struct FatLink {
    pad: [[u64; 32]; 4],
    next: Option<Box<FatLink>>,
}

/// A chain of `links` links, each holding its depth (from 1) in every word.
pub(crate) fn fat_chain(links: u64) -> Vec<u8> {
    let mut chain = None;
    for depth in (1..=links).rev() {
        chain = Some(Box::new(FatLink {
            pad: [[depth; 32]; 4],
            next: chain,
        }));
    }
    mp(&(chain.expect("at least one link"),))
}

/// An argument within the decoder's nesting limits whose every level is large on the
/// stack (a safe module's recursive type, 100 levels) is refused, saying so, on a thread
/// whose stack is too small for it, and taken on one large enough; the module serves on.
/// Before, the levels were counted but not their bytes: the decoding overflowed the
/// calling thread's stack and the process aborted.
#[test]
fn an_argument_too_deep_for_the_threads_stack_is_refused_not_a_crash() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards"]);
    let rt = std::sync::Arc::new(rt);
    let args = std::sync::Arc::new(fat_chain(100));
    let hazards = h[0];
    let on_stack = |stack: usize| {
        let (rt, args) = (rt.clone(), args.clone());
        std::thread::Builder::new()
            .stack_size(stack)
            .spawn(move || {
                rt.call(hazards, "fat_chain_len", &args)
                    .map(|out| common::de::<u32>(&out))
            })
            .unwrap()
            .join()
            .expect("the calling thread ends")
    };
    // Smaller and smaller stacks: each call is taken or refused for its stack, never a
    // crash, and the smallest are refused (a release build's levels are smaller than a
    // debug build's, so which stack first refuses depends on the build).
    let mut refused = 0;
    for stack in [256 * 1024, 192 * 1024, 160 * 1024] {
        match on_stack(stack) {
            Ok(links) => assert_eq!(links, 100),
            Err(RuntimeError::Call {
                error: ModuleError::Serialize(why),
                ..
            }) => {
                assert!(
                    why.contains("values nest deeper than this thread's stack can decode"),
                    "{why}"
                );
                refused += 1;
            }
            Err(other) => panic!("on {} KiB: {other}", stack / 1024),
        }
    }
    assert!(refused > 0, "no stack was too small");
    assert_eq!(on_stack(16 * 1024 * 1024).unwrap(), 100);
    // Five links, few enough for the decoder's fast path (which before looked at no
    // stack, and overflowed a thread of 128 KiB): taken or refused for the stack.
    let short = std::sync::Arc::new(fat_chain(5));
    let (rt, short) = (rt.clone(), short.clone());
    let five = std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            rt.call(hazards, "fat_chain_len", &short)
                .map(|out| common::de::<u32>(&out))
        })
        .unwrap()
        .join()
        .expect("the calling thread ends");
    match five {
        Ok(links) => assert_eq!(links, 5),
        Err(e) => assert!(
            e.to_string()
                .contains("values nest deeper than this thread's stack can decode"),
            "{e}"
        ),
    }
}

/// Item 2: with `Saturation::Wait` and one slot, a module that calls itself (directly,
/// or through another module) runs within the slot its chain holds. Before, the nested
/// call waited for that slot: until its deadline (`Timeout(0)`), or forever.
#[test]
fn a_module_reentering_itself_never_waits_for_its_own_slot() {
    let config = RuntimeConfig::default().concurrency(1, Saturation::Wait);
    let (rt, h) = load_all(config, &["nested_calls"]);
    let deadline = CallOptions::default().timeout(Duration::from_secs(30));
    let depth = rt
        .call_with(
            h[0],
            "bounce",
            &mp(&(3u32, "nested_calls", "nested_calls")),
            &deadline,
        )
        .unwrap();
    assert_eq!(common::de::<u32>(&depth), 3);
    // Without a deadline: a hang would never end, so it runs under a watch.
    let depth: u32 = within("a re-entrant call without a deadline", move || {
        rt.call_typed(h[0], "bounce", &(2u32, "nested_calls", "nested_calls"))
            .unwrap()
    });
    assert_eq!(depth, 2);
}

/// Item 2, across modules: `a` calls `b`, which calls `a` again, each module allowed one
/// call at a time.
#[test]
fn a_chain_through_another_module_reenters_within_its_slot() {
    let config = RuntimeConfig::default().concurrency(1, Saturation::Wait);
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let a = rt
        .load_as(ModuleRef::from_path(module_path("nested_calls")), "a")
        .unwrap();
    rt.load_as(
        ModuleRef::from_path(module_copy("nested_calls", "nested_calls_b")),
        "b",
    )
    .unwrap();
    let depth: u32 = within("a chain a -> b -> a", move || {
        rt.call_typed(a, "bounce", &(4u32, "a", "b")).unwrap()
    });
    assert_eq!(depth, 4);
}

/// Item 2, unloading: `unload` runs while a call is in flight whose module then calls
/// itself. The re-entrant call completes, the unload completes after it, and a load on
/// the same runtime meanwhile is not held up by the unload's wait. Before, the nested
/// call waited for the slot the drain had taken, the drain for the call, and every load
/// for the lock the unload held.
#[test]
fn unloading_during_a_reentrant_call_lets_it_finish_and_loads_go_on() {
    let config = RuntimeConfig::default().concurrency(1, Saturation::Wait);
    let (rt, holding) = runtime_with_holding(config);
    let path = module_copy("hazards", "hazards_unload");
    let h = rt.load(ModuleRef::from_path(path)).unwrap();
    let name = rt.module_info(h).unwrap().name;
    let caller = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.call_typed::<_, u64>(h, "reenter_after", &(300u64, name)))
    };
    holding.recv_timeout(HANG).expect("the call started");
    let unloading = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.unload(h))
    };
    // The unload is waiting for the call now (or soon): another module loads meanwhile.
    let other = within("a load while an unload waits", {
        let rt = rt.clone();
        move || rt.load(ModuleRef::from_path(module_path("basic")))
    })
    .unwrap();
    let sum: u32 = rt.call_typed(other, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
    let count = within("the re-entrant call", move || caller.join().unwrap()).unwrap();
    assert!(count >= 1, "the nested call ran: {count}");
    within("the unload", move || unloading.join().unwrap()).unwrap();
    assert!(matches!(
        rt.call(h, "count", b""),
        Err(RuntimeError::UnknownHandle(_))
    ));
}

/// Item 3: memory handed to a caller to fill holds none of an earlier call's bytes.
/// Before, `arg_buffer` returned the pooled arena as the last call left it: another
/// caller's result, readable through `Deref`.
#[test]
fn a_fresh_arg_buffer_holds_no_earlier_callers_bytes() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["basic"]);
    let secret = "TOPSECRET-of-caller-A ".repeat(8);
    let out = rt.call(h[0], "echo", secret.as_bytes()).unwrap();
    assert_eq!(out, secret.as_bytes());
    drop(out);
    let buffer = rt.arg_buffer(RuntimeConfig::default().arena_size);
    assert!(
        buffer.iter().all(|&b| b == 0),
        "the buffer holds an earlier call's bytes"
    );
}

/// Item 6: a handle to a zero-sized value at the very end of the region (a caller can
/// forge one: `Ref` is `Deserialize`) is out of bounds. Before, it passed the bounds
/// check and its bitmap lookup read one word past the bitmap.
#[test]
fn a_forged_empty_handle_at_the_regions_end_is_refused() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards"]);
    let (_, generation, _): (u64, u64, u64) = rt.call_typed(h[0], "unit_ref", &()).unwrap();
    let end = RuntimeConfig::default().persistent_size as u64;
    let err = rt
        .call_typed::<_, ()>(h[0], "get_unit", &((end, generation, 0u64),))
        .unwrap_err();
    let Some(ModuleError::Failed(message)) = err.module_error() else {
        panic!("expected a refused handle, got {err}");
    };
    assert!(message.contains("outside the region"), "{message}");
    let ok: (u64, u64, u64) = rt.call_typed(h[0], "unit_ref", &()).unwrap();
    rt.call_typed::<_, ()>(h[0], "get_unit", &(ok,)).unwrap();
}

/// Item 7: a call refused at its deadline while it waits for a slot reports the time it
/// was given, as the ABI says of `Timeout`. Before, it reported what was left: about 0.
#[test]
fn a_call_refused_at_its_deadline_reports_the_time_it_was_given() {
    let config = RuntimeConfig::default().concurrency(1, Saturation::Wait);
    let (rt, holding) = runtime_with_holding(config);
    let h = rt
        .load(ModuleRef::from_path(module_copy("hazards", "hazards_wait")))
        .unwrap();
    let holder = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.call_typed::<_, u64>(h, "hold", &(1500u64,)))
    };
    holding.recv_timeout(HANG).expect("the slot is held");
    let given = Duration::from_millis(200);
    let err = rt
        .call_with(h, "count", b"", &CallOptions::default().timeout(given))
        .unwrap_err();
    let Some(ModuleError::Timeout(reported)) = err.module_error() else {
        panic!("expected a timeout, got {err}");
    };
    assert!(
        *reported <= given && *reported > given / 2,
        "reported {reported:?} for a call given {given:?}"
    );
    holder.join().unwrap().unwrap();
}

/// Item 7: a panic the export caught itself does not lend its message to a later panic
/// on the same thread. Before, the hook's record of it stayed and named the next panic
/// whose hook did not run (`resume_unwind`).
#[test]
fn a_caught_panic_does_not_name_a_later_one() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards"]);
    assert!(rt
        .call_typed::<_, bool>(h[0], "swallow_panic", &())
        .unwrap());
    let err = rt.call(h[0], "resume_panic", b"").unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::Panic(
            "panic with a non-string payload".into()
        ))
    );
}

/// Item 5: a panic that cannot unwind aborts the process (the host, here the `memlink`
/// command); before it does, the module writes the export's name and every panic message
/// of the call to stderr. Before, stderr said only "thread caused non-unwinding panic".
#[test]
fn a_panic_that_cannot_unwind_prints_its_message_before_the_abort() {
    let module = module_path("hazards");
    for (export, says) in [
        (
            "abort_in_drop",
            &[
                "the first panic of abort_in_drop",
                "the guard's drop panicked too",
            ][..],
        ),
        (
            "panic_in_extern_c",
            &["a panic inside an extern \"C\" function"][..],
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_memlink"))
            .arg("call")
            .arg(&module)
            .arg(export)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{export}: the process aborts");
        assert!(
            stderr.contains(&format!(
                "module `hazards` panicked in export `{export}` in a way that cannot unwind"
            )),
            "{export}: {stderr}"
        );
        for message in says {
            assert!(
                stderr.contains(message),
                "{export}: `{message}` in {stderr}"
            );
        }
    }
}

/// A chain that holds a module's only slot and reaches, by name, the version a reload put
/// in its place, re-enters it within the chain's slot: the versions share the module's
/// one limit, so a call from elsewhere meanwhile, into either version, waits for the slot
/// the chain holds and gives up at its deadline; the chain's nested call runs in the new
/// version (a fresh image, whose count starts at 0) and does not wait for itself; and
/// the reload returns once the chain has. Before re-entry followed the module's lineage,
/// the chain waited for the new version's slot; when that slot's holder waited for the
/// chain, neither went on, and with no deadline the reload's drain waited forever too.
#[test]
fn a_chain_that_reaches_the_version_a_reload_put_in_place_re_enters_it() {
    let config = RuntimeConfig::default().concurrency(1, Saturation::Wait);
    let (rt, holding) = runtime_with_holding(config);
    let path = module_copy("hazards", "hazards_reload_chain");
    let h = rt.load(ModuleRef::from_path(&path)).unwrap();
    let name = rt.module_info(h).unwrap().name;
    // In the first version: holds its slot, then (well after the reload below) calls
    // `count` by the module's name, which by then names the second version.
    let chain = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.call_typed::<_, u64>(h, "reenter_after", &(3000u64, name)))
    };
    holding.recv_timeout(HANG).expect("the chain started");
    // The reload returns once the first version's calls are done: from a thread of its own.
    let reloading = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.reload(h, ModuleRef::from_path(&path)))
    };
    let short = CallOptions::default().timeout(Duration::from_millis(50));
    let waited = rt.call_with(h, "count", &mp(&()), &short);
    assert!(
        matches!(
            &waited,
            Err(memlink_runtime::RuntimeError::Call {
                error: memlink_runtime::ModuleError::Timeout(_),
                ..
            })
        ),
        "a call ran beside the chain holding the module's one slot: {waited:?}"
    );
    assert!(
        !chain.is_finished(),
        "the chain's wait outlasts a reload on any machine this runs on"
    );
    let count = within("the chain", move || chain.join().unwrap()).unwrap();
    assert_eq!(count, 1, "the chain's `count` ran in the new version");
    within("the reload", move || reloading.join().unwrap()).unwrap();
}

/// Host code run inside a call (a log sink here; an interceptor of a nested call alike)
/// that calls the runtime makes a call of the running call's chain: it re-enters the
/// module the chain holds instead of waiting for the slot its own call holds, and calls
/// made this way that loop (the sink's call logs, which calls again) end at the depth
/// limit. Before, the first such call waited forever for its own call's slot.
#[test]
fn a_call_made_by_a_log_sink_inside_a_call_is_part_of_its_chain() {
    use std::sync::{Arc, Mutex, OnceLock};

    /// On each `holding` record, calls `hold(0)` of the module, which logs `holding`
    /// again; keeps how each of those calls went.
    #[derive(Default)]
    struct CallsBack {
        target: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        outcomes: Mutex<Vec<Result<u64, String>>>,
    }
    impl memlink_runtime::LogSink for CallsBack {
        fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
            let Some((rt, h)) = self.target.get() else {
                return;
            };
            if event.message != "holding" {
                return;
            }
            let outcome = rt
                .call_typed::<_, u64>(*h, "hold", &(0u64,))
                .map_err(|e| e.to_string());
            self.outcomes.lock().unwrap().push(outcome);
        }
    }

    let sink = Arc::new(CallsBack::default());
    let config = RuntimeConfig::default()
        .concurrency(1, Saturation::Wait)
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load(ModuleRef::from_path(module_copy(
            "hazards",
            "hazards_sink_calls",
        )))
        .unwrap();
    let _ = sink.target.set((rt.clone(), h));
    let held: u64 = within("a call whose log sink calls the module", move || {
        rt.call_typed(h, "hold", &(1u64,)).unwrap()
    });
    assert_eq!(held, 1);
    ended_at_the_depth_limit(&sink.outcomes.lock().unwrap());
}

/// A copy of `hazards` loaded as `copy` by a runtime of `config` whose records of
/// level INFO and above go to `sink`.
fn hazards_logging_to(
    copy: &str,
    config: RuntimeConfig,
    sink: std::sync::Arc<dyn memlink_runtime::LogSink>,
) -> (Runtime, memlink_runtime::ModuleHandle) {
    let config = config.log_level(tracing::Level::INFO).log_sink(sink);
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load(ModuleRef::from_path(module_copy("hazards", copy)))
        .unwrap();
    (rt, h)
}

/// The outcomes of a loop of calls that the depth limit ends, innermost first: depths 1
/// to the default limit ran, and the one past it, the innermost and so the first to
/// finish, was refused, which ended the loop.
fn ended_at_the_depth_limit(outcomes: &[Result<u64, String>]) {
    let max = RuntimeConfig::default().max_call_depth as usize;
    assert_eq!(outcomes.len(), max + 1, "{outcomes:?}");
    let refused = outcomes[0].as_ref().unwrap_err();
    assert!(refused.contains("call depth"), "{refused}");
    assert!(outcomes[1..].iter().all(|o| o == &Ok(0)), "{outcomes:?}");
}

/// Log sinks of two runtimes, each calling a module of the other on every record of its
/// own: the calls are one chain, one level deeper each hop, whichever runtime they go
/// through, and the depth limit ends it. Before, a sink's call through another runtime
/// started a chain of its own, at depth 0: the ping-pong never ended, and the stack
/// overflowed (the sinks here give up after 64 hops, so that the test fails instead).
#[test]
fn log_sinks_of_two_runtimes_calling_each_other_end_at_the_depth_limit() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    /// Hops made by the two sinks together, and how each of their calls went.
    #[derive(Default)]
    struct Hops {
        made: AtomicUsize,
        outcomes: Mutex<Vec<Result<u64, String>>>,
    }
    /// On each `holding` record, calls `hold(0)` of the other runtime's module, which
    /// logs `holding` there.
    struct CallsOther {
        other: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        hops: Arc<Hops>,
    }
    impl memlink_runtime::LogSink for CallsOther {
        fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
            let Some((rt, h)) = self.other.get() else {
                return;
            };
            if event.message != "holding" || self.hops.made.fetch_add(1, Ordering::Relaxed) >= 64 {
                return;
            }
            let outcome = rt
                .call_typed::<_, u64>(*h, "hold", &(0u64,))
                .map_err(|e| e.to_string());
            self.hops.outcomes.lock().unwrap().push(outcome);
        }
    }

    let hops = Arc::new(Hops::default());
    let runtime = |copy: &str| {
        let sink = Arc::new(CallsOther {
            other: OnceLock::new(),
            hops: Arc::clone(&hops),
        });
        let (rt, h) = hazards_logging_to(copy, RuntimeConfig::default(), sink.clone());
        (rt, h, sink)
    };
    let (a, ha, to_b) = runtime("hazards_sinks_a");
    let (b, hb, to_a) = runtime("hazards_sinks_b");
    let _ = to_b.other.set((b.clone(), hb));
    let _ = to_a.other.set((a.clone(), ha));
    let first = a.clone();
    let held: u64 = within("sinks of two runtimes calling each other", move || {
        first.call_typed(ha, "hold", &(1u64,)).unwrap()
    });
    assert_eq!(held, 1);
    // The runtimes alternate, one level deeper each hop.
    ended_at_the_depth_limit(&hops.outcomes.lock().unwrap());
    // Both runtimes serve on, their sinks' chains over.
    hops.made.store(64, Ordering::Relaxed);
    assert_eq!(a.call_typed::<_, u64>(ha, "hold", &(0u64,)).unwrap(), 0);
    assert_eq!(b.call_typed::<_, u64>(hb, "hold", &(0u64,)).unwrap(), 0);
}

/// A module of one slot (`Saturation::Wait`) whose record's sink calls another
/// runtime's module, whose sink calls the first module back: the call back is part of
/// the chain that holds the first module's slot, and re-enters it, as a sink's call
/// through the module's own runtime does (a sink runs as host code of a call that holds
/// its slot, `crate::chain`). Before, it waited for the slot its own chain held, for
/// ever: the call path found the chain's calls only among those of the runtime it
/// called through.
#[test]
fn a_sink_call_back_through_another_runtime_re_enters_the_module_its_chain_holds() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    /// On the first `holding` record, calls `hold(0)` of the other runtime's module.
    #[derive(Default)]
    struct CallsOther {
        other: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        called: AtomicBool,
        outcomes: Mutex<Vec<Result<u64, String>>>,
    }
    impl memlink_runtime::LogSink for CallsOther {
        fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
            let Some((rt, h)) = self.other.get() else {
                return;
            };
            if event.message != "holding" || self.called.swap(true, Ordering::Relaxed) {
                return;
            }
            let outcome = rt
                .call_typed::<_, u64>(*h, "hold", &(0u64,))
                .map_err(|e| e.to_string());
            self.outcomes.lock().unwrap().push(outcome);
        }
    }

    let runtime = |copy: &str| {
        let sink = Arc::new(CallsOther::default());
        let one_slot = RuntimeConfig::default().concurrency(1, Saturation::Wait);
        let (rt, h) = hazards_logging_to(copy, one_slot, sink.clone());
        (rt, h, sink)
    };
    let (a, ha, to_b) = runtime("hazards_back_a");
    let (b, hb, to_a) = runtime("hazards_back_b");
    let _ = to_b.other.set((b, hb));
    let _ = to_a.other.set((a.clone(), ha));
    let held: u64 = within("a call back through another runtime's sink", move || {
        a.call_typed(ha, "hold", &(1u64,)).unwrap()
    });
    assert_eq!(held, 1);
    assert_eq!(*to_b.outcomes.lock().unwrap(), vec![Ok(0)]);
    assert_eq!(*to_a.outcomes.lock().unwrap(), vec![Ok(0)]);
}

/// A chain that leaves its runtime through a log sink and comes back through another
/// runtime's sink: host -> `x` -> `z` (whose record `hold` logs goes to the first sink)
/// -> the other runtime's `y` (whose record goes to the second sink) -> `x` again. `x`
/// holds its only slot for the chain; the call back re-enters it, and an unload or reload
/// of it from there is refused with `InsideCall`. Before, the chain above the logging
/// module was lost at the other runtime: the call waited for `x`'s slot, and the unload
/// for `x`'s call, both for ever.
#[test]
fn a_chain_back_through_another_runtime_holds_the_modules_above_the_one_that_logged() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    /// On the first `holding` record of module `from`, runs `act`.
    struct OnHolding {
        from: &'static str,
        done: AtomicBool,
        act: OnceLock<Box<dyn Fn() -> Vec<String> + Send + Sync>>,
        outcomes: Mutex<Vec<String>>,
    }
    impl memlink_runtime::LogSink for OnHolding {
        fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
            if event.module != self.from || event.message != "holding" {
                return;
            }
            let Some(act) = self.act.get() else { return };
            if !self.done.swap(true, Ordering::SeqCst) {
                let outcomes = act();
                self.outcomes.lock().unwrap().extend(outcomes);
            }
        }
    }
    let sink = |from| {
        Arc::new(OnHolding {
            from,
            done: AtomicBool::new(false),
            act: OnceLock::new(),
            outcomes: Mutex::new(Vec::new()),
        })
    };
    let (first, second) = (sink("z"), sink("y"));
    let one_slot = RuntimeConfig::default()
        .concurrency(1, Saturation::Wait)
        .log_level(tracing::Level::INFO);
    let rt1 = Runtime::new(
        one_slot.clone().log_sink(first.clone()),
        memlink_runtime::resolver::LocalResolver,
    );
    let x_file = module_copy("hazards", "hazards_chain_x");
    let x = rt1
        .load_as(ModuleRef::from_path(x_file.clone()), "x")
        .unwrap();
    let z_file = module_copy("hazards", "hazards_chain_z");
    rt1.load_as(ModuleRef::from_path(z_file), "z").unwrap();
    let rt2 = Runtime::new(
        one_slot.log_sink(second.clone()),
        memlink_runtime::resolver::LocalResolver,
    );
    let y_file = module_copy("hazards", "hazards_chain_y");
    let y = rt2.load_as(ModuleRef::from_path(y_file), "y").unwrap();
    let (to_y, back) = (rt2.clone(), rt1.clone());
    let _ = first.act.set(Box::new(move || {
        vec![format!(
            "{:?}",
            to_y.call_typed::<_, u64>(y, "hold", &(0u64,))
        )]
    }));
    let _ = second.act.set(Box::new(move || {
        vec![
            format!("{:?}", back.call_typed::<_, u64>(x, "count", &())),
            format!("{:?}", back.unload(x)),
            format!("{:?}", back.reload(x, ModuleRef::from_path(x_file.clone()))),
        ]
    }));
    let chain = rt1.clone();
    let out: String = within("a chain back through another runtime's sink", move || {
        chain
            .call_typed(x, "around_nested", &("z", "hold", mp(&(0u64,)), ""))
            .unwrap()
    });
    assert_eq!(out, "1 bytes", "z's `hold` result, 0 in MessagePack");
    assert_eq!(*first.outcomes.lock().unwrap(), vec!["Ok(0)".to_owned()]);
    let back = second.outcomes.lock().unwrap().clone();
    assert_eq!(back.len(), 3, "{back:?}");
    assert!(back[0].starts_with("Ok("), "x re-entered: {back:?}");
    for (outcome, action) in back[1..].iter().zip(["unload", "reload"]) {
        assert!(
            outcome.contains("InsideCall") && outcome.contains(action),
            "{outcome}"
        );
    }
    rt1.unload(x).unwrap();
}

/// The same for an interceptor: one that calls the runtime from `before` while a module's
/// nested call is being made, on a module that holds its only slot for the call that
/// makes it. Before, the interceptor's call waited forever for that slot.
#[test]
fn a_call_made_by_an_interceptor_of_a_nested_call_is_part_of_its_chain() {
    use memlink_runtime::intercept::{CallInfo, Interceptor};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};

    /// Before the nested `count`, calls `count` itself, once.
    #[derive(Default)]
    struct CallsFromBefore {
        target: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        called: AtomicBool,
        outcome: Mutex<Option<Result<u64, String>>>,
    }
    impl std::fmt::Debug for CallsFromBefore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("CallsFromBefore")
        }
    }
    impl Interceptor for CallsFromBefore {
        fn before(&self, call: &CallInfo<'_>, _args: &[u8]) -> Result<(), ModuleError> {
            let nested_count = call.depth == 1 && call.method == "count";
            if nested_count && !self.called.swap(true, Ordering::SeqCst) {
                let (rt, h) = self.target.get().expect("set before the call");
                let outcome = rt
                    .call_typed::<_, u64>(*h, "count", &())
                    .map_err(|e| e.to_string());
                *self.outcome.lock().unwrap() = Some(outcome);
            }
            Ok(())
        }
    }

    let hook = Arc::new(CallsFromBefore::default());
    let config = RuntimeConfig::default()
        .concurrency(1, Saturation::Wait)
        .interceptor(hook.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load(ModuleRef::from_path(module_copy(
            "hazards",
            "hazards_hook_calls",
        )))
        .unwrap();
    let name = rt.module_info(h).unwrap().name;
    let _ = hook.target.set((rt.clone(), h));
    let args = mp(&(name, "count", mp(&()), ""));
    let out = within(
        "a nested call whose interceptor calls the module",
        move || rt.call(h, "around_nested", &args).unwrap().to_vec(),
    );
    // The nested `count` ran after the interceptor's: the second.
    assert_eq!(String::from_utf8_lossy(&out), "1 bytes");
    assert_eq!(*hook.outcome.lock().unwrap(), Some(Ok(1)));
}

/// A call a log sink makes inside a call carries that call's trace and ends by its
/// deadline, as a module's nested call does: here the sink asks `context_info` what it
/// sees, with no options of its own. Before, it carried no trace and no deadline.
#[test]
fn a_call_made_by_a_log_sink_carries_the_running_calls_trace_and_deadline() {
    use std::sync::{Arc, Mutex, OnceLock};

    type Seen = (f32, u64, u64, Option<u64>, u32, bool);
    /// On the first record, calls `context_info` of the module and keeps its answer.
    #[derive(Default)]
    struct AsksContext {
        target: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        seen: Mutex<Option<Result<Seen, String>>>,
    }
    impl memlink_runtime::LogSink for AsksContext {
        fn record(&self, _event: &memlink_runtime::LogEvent<'_>) {
            let Some((rt, h)) = self.target.get() else {
                return;
            };
            let mut seen = self.seen.lock().unwrap();
            if seen.is_none() {
                let asked = rt.call_typed::<_, Seen>(*h, "context_info", &());
                *seen = Some(asked.map_err(|e| e.to_string()));
            }
        }
    }

    let sink = Arc::new(AsksContext::default());
    let config = RuntimeConfig::default()
        .log_level(tracing::Level::INFO)
        .log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load(ModuleRef::from_path(module_copy(
            "basic",
            "basic_sink_context",
        )))
        .unwrap();
    let _ = sink.target.set((rt.clone(), h));
    let options = CallOptions::default()
        .trace(77, 5)
        .timeout(Duration::from_secs(600));
    rt.call_with(h, "chatty", &mp(&(1u32,)), &options).unwrap();
    let seen = sink
        .seen
        .lock()
        .unwrap()
        .clone()
        .expect("the sink was called");
    let (_, trace_id, span_id, remaining_ms, depth, _) = seen.unwrap();
    assert_eq!((trace_id, span_id, depth), (77, 5, 1));
    let remaining = remaining_ms.expect("the chain's deadline");
    assert!(remaining <= 600_000, "{remaining} ms");
}

/// A call an interceptor makes is part of the intercepted call's chain, one level
/// deeper, so an interceptor that calls a module on every call (which intercepts that
/// call too) stops at `max_call_depth`. Before, no module ran while an interceptor did,
/// so its call started a chain of its own at depth 0: the loop never ended, and the
/// stack overflowed, aborting the host.
#[test]
fn calls_interceptors_make_are_one_level_deeper_and_a_loop_of_them_ends() {
    use memlink_runtime::intercept::{CallInfo, Interceptor};
    use std::sync::{Arc, Mutex, OnceLock};

    /// Before each call of `noop`, calls `noop` again, and keeps the depths it saw.
    #[derive(Default)]
    struct CallsAgain {
        target: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        depths: Mutex<Vec<u32>>,
    }
    impl std::fmt::Debug for CallsAgain {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("CallsAgain")
        }
    }
    impl Interceptor for CallsAgain {
        fn before(&self, call: &CallInfo<'_>, _args: &[u8]) -> Result<(), ModuleError> {
            if call.method == "noop" {
                self.depths.lock().unwrap().push(call.depth);
                let (rt, h) = self.target.get().expect("set before the call");
                let again = rt.call(*h, "noop", b"");
                if call.depth == 8 {
                    // The ninth level is past the limit: refused before it starts.
                    assert!(matches!(
                        again.unwrap_err().module_error(),
                        Some(ModuleError::MaxCallDepthExceeded)
                    ));
                }
            }
            Ok(())
        }
    }

    let hook = Arc::new(CallsAgain::default());
    let config = RuntimeConfig::default().interceptor(hook.clone());
    assert_eq!(config.max_call_depth, 8);
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load(ModuleRef::from_path(module_copy(
            "basic",
            "basic_hook_loop",
        )))
        .unwrap();
    let _ = hook.target.set((rt.clone(), h));
    let traced = CallOptions::default().trace(42, 7);
    within(
        "an interceptor calling the module it intercepts",
        move || {
            rt.call_with(h, "noop", b"", &traced).unwrap();
        },
    );
    assert_eq!(*hook.depths.lock().unwrap(), (0..=8).collect::<Vec<u32>>());
}

/// The record of a caught panic carries the call's trace, and a sink that makes a call
/// on it makes it within that call's chain, one level deeper: a sink that calls an
/// export which panics, on every panic record, stops at `max_call_depth`. Before, the
/// record carried no trace, and its sink ran after the call had left its module, so its
/// call started a chain of its own: the loop never ended, and the stack overflowed.
#[test]
fn a_sink_calling_on_a_panic_record_is_one_level_deeper_and_its_loop_ends() {
    use std::sync::{Arc, Mutex, OnceLock};

    /// On each panic record, keeps its trace and calls `boom` again.
    #[derive(Default)]
    struct Alerts {
        target: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        traces: Mutex<Vec<(u64, u64)>>,
    }
    impl memlink_runtime::LogSink for Alerts {
        fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
            if !event.message.starts_with("panicked: ") {
                return;
            }
            self.traces
                .lock()
                .unwrap()
                .push((event.trace_id, event.span_id));
            let (rt, h) = self.target.get().expect("set before the call");
            let again = rt.call(*h, "boom", b"again");
            assert!(again.is_err(), "boom always panics");
        }
    }

    let sink = Arc::new(Alerts::default());
    let config = RuntimeConfig::default().log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load(ModuleRef::from_path(module_copy(
            "basic",
            "basic_sink_loop",
        )))
        .unwrap();
    let _ = sink.target.set((rt.clone(), h));
    let traced = CallOptions::default().trace(42, 7);
    let failed = within("a sink calling an export that panics", move || {
        rt.call_with(h, "boom", b"first", &traced)
            .unwrap_err()
            .to_string()
    });
    assert!(failed.contains("panicked"), "{failed}");
    // The first call and one per level down to the limit (8): nine panics, each recorded
    // with the first call's trace.
    assert_eq!(*sink.traces.lock().unwrap(), vec![(42, 7); 9]);
}

/// The same loop, started from a thread-local's destructor after the runtime's own
/// thread state is gone, ends at the depth limit as it does on a live thread: the
/// thread's calls are kept apart from its state, in a thread-local with no destructor
/// (`crate::chain`). Before, each call there ran on a stand-in state of its own, the
/// record's call was no chain the sink's call could join, and the loop ran until the
/// stack overflowed (SIGSEGV). The sink here gives up after 64 panics, so that the test
/// fails instead.
#[test]
fn a_sink_calling_on_a_panic_record_from_a_thread_local_destructor_ends_at_the_depth_limit() {
    common::in_child(
        "a_sink_calling_on_a_panic_record_from_a_thread_local_destructor_ends_at_the_depth_limit",
        &[],
        || {
            use std::sync::atomic::{AtomicUsize, Ordering};
            use std::sync::{Arc, Mutex, OnceLock};

            use memlink_runtime::ModuleHandle;

            /// On each panic record, calls `boom` again, up to 64 times.
            #[derive(Default)]
            struct Again {
                target: OnceLock<(Runtime, ModuleHandle)>,
                records: AtomicUsize,
            }
            impl memlink_runtime::LogSink for Again {
                fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
                    if !event.message.starts_with("panicked: ")
                        || self.records.fetch_add(1, Ordering::Relaxed) >= 64
                    {
                        return;
                    }
                    let (rt, h) = self.target.get().expect("set before the calls");
                    assert!(rt.call(*h, "boom", b"again").is_err(), "boom always panics");
                }
            }
            /// Calls `boom` when dropped.
            struct CallsOnDrop(Arc<Mutex<Option<(Runtime, ModuleHandle)>>>);
            impl Drop for CallsOnDrop {
                fn drop(&mut self) {
                    let held = self.0.lock().unwrap();
                    let (rt, h) = held.as_ref().unwrap();
                    assert!(rt.call(*h, "boom", b"first").is_err(), "boom always panics");
                }
            }
            thread_local! {
                static GUARD: std::cell::RefCell<Option<CallsOnDrop>> = const { std::cell::RefCell::new(None) };
            }
            let sink = Arc::new(Again::default());
            let held = Arc::new(Mutex::new(None));
            let (h_held, h_sink) = (Arc::clone(&held), Arc::clone(&sink));
            std::thread::spawn(move || {
                // Registered first, so destroyed last: after the runtime's state, which
                // the call below sets up on this thread.
                GUARD.with(|g| *g.borrow_mut() = Some(CallsOnDrop(Arc::clone(&h_held))));
                let config = RuntimeConfig::default().log_sink(h_sink.clone());
                let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
                let h = rt
                    .load(ModuleRef::from_path(module_copy(
                        "basic",
                        "basic_sink_loop_tls",
                    )))
                    .unwrap();
                let _ = h_sink.target.set((rt.clone(), h));
                assert!(rt.call(h, "boom", b"live").is_err());
                // On a live thread: the first call and one per level down to the limit.
                let max = RuntimeConfig::default().max_call_depth as usize;
                assert_eq!(h_sink.records.swap(0, Ordering::Relaxed), max + 1);
                *h_held.lock().unwrap() = Some((rt, h));
            })
            .join()
            .unwrap();
            let max = RuntimeConfig::default().max_call_depth as usize;
            assert_eq!(sink.records.load(Ordering::Relaxed), max + 1);
        },
    );
}

/// An interceptor's `after` runs once the call is over: a call it makes is not bound
/// by the deadline of the call it saw end, so an audit of a call that timed out can
/// still call a module. (`before`'s calls spend the call's time, and end by its
/// deadline.)
#[test]
fn an_after_hook_calls_for_a_call_that_timed_out() {
    use memlink_runtime::intercept::{CallInfo, Interceptor, Outcome};
    use std::sync::{Arc, Mutex, OnceLock};

    /// After each `echo_after`, asks the module how long its own call has.
    #[derive(Default)]
    struct Audit {
        target: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        seen: Mutex<Vec<Result<Option<u64>, String>>>,
    }
    impl std::fmt::Debug for Audit {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Audit")
        }
    }
    impl Interceptor for Audit {
        fn after(&self, call: &CallInfo<'_>, _outcome: &Outcome<'_>) {
            if call.method == "echo_after" {
                let (rt, h) = self.target.get().expect("set before the call");
                let left = rt.call_typed::<_, Option<u64>>(*h, "time_left", &());
                self.seen
                    .lock()
                    .unwrap()
                    .push(left.map_err(|e| e.to_string()));
            }
        }
    }

    let hook = Arc::new(Audit::default());
    let config = RuntimeConfig::default().interceptor(hook.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load(ModuleRef::from_path(module_copy(
            "async_echo",
            "async_echo_audit",
        )))
        .unwrap();
    let _ = hook.target.set((rt.clone(), h));
    let options = CallOptions::default().timeout(Duration::from_millis(30));
    let err = rt
        .call_with(h, "echo_after", &mp(&(2_000u64, [1u8])), &options)
        .unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Timeout(_))),
        "{err}"
    );
    assert_eq!(*hook.seen.lock().unwrap(), vec![Ok(None)]);
}

/// A sink given the record of a caught panic runs in that call's host code: an unload
/// of the module from it is refused, not a wait for the call it runs in. Before, the
/// record came after the call had left its module and the unload waited for good.
#[test]
fn a_sink_given_a_panic_may_not_unload_the_module_it_runs_for() {
    use std::sync::{Arc, Mutex, OnceLock};

    /// On a panic record, tries to unload the module.
    #[derive(Default)]
    struct Unloads {
        target: OnceLock<(Runtime, memlink_runtime::ModuleHandle)>,
        tried: Mutex<Option<String>>,
    }
    impl memlink_runtime::LogSink for Unloads {
        fn record(&self, event: &memlink_runtime::LogEvent<'_>) {
            if event.message.starts_with("panicked: ") {
                let (rt, h) = self.target.get().expect("set before the call");
                let tried = rt.unload(*h).map_err(|e| e.to_string());
                *self.tried.lock().unwrap() = Some(format!("{tried:?}"));
            }
        }
    }

    let sink = Arc::new(Unloads::default());
    let config = RuntimeConfig::default().log_sink(sink.clone());
    let rt = Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let h = rt
        .load(ModuleRef::from_path(module_copy(
            "basic",
            "basic_sink_unloads",
        )))
        .unwrap();
    let _ = sink.target.set((rt.clone(), h));
    let rt2 = rt.clone();
    within(
        "a sink unloading the module whose panic it records",
        move || {
            assert!(rt2.call(h, "boom", b"x").is_err());
        },
    );
    let tried = sink.tried.lock().unwrap().clone().unwrap();
    assert!(tried.contains("inside a call"), "{tried}");
    assert_eq!(rt.call(h, "echo", b"still").unwrap(), b"still");
}
