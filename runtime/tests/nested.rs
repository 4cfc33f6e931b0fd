//! Module-to-module calls through the host, with real modules on both ends.

mod common;

use std::time::Duration;

use common::{de, load_all, mp};
use memlink_runtime::{
    CallOptions, ModuleError, ModuleRef, RuntimeConfig, RuntimeError, Saturation,
};

fn relay_args(module: &str, method: &str, args: &[u8]) -> Vec<u8> {
    mp(&(module, method, serde_bytes_vec(args)))
}

/// `Vec<u8>` as serde encodes it (a sequence), which is what `relay` declares.
fn serde_bytes_vec(b: &[u8]) -> Vec<u8> {
    b.to_vec()
}

fn nested_error(r: Result<memlink_runtime::CallOutput, RuntimeError>) -> ModuleError {
    r.err()
        .and_then(|e| e.module_error().cloned())
        .expect("a module error")
}

#[test]
fn a_nested_call_returns_the_callees_actual_bytes() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["nested_calls", "basic"]);
    let out = rt
        .call(h[0], "relay", &relay_args("basic", "echo", b"xyz"))
        .unwrap();
    assert_eq!(out, b"xyz");
    // An empty output, which the sink gets as no bytes.
    let out = rt
        .call(h[0], "relay", &relay_args("basic", "echo", b""))
        .unwrap();
    assert_eq!(out, b"");
    let out = rt
        .call(
            h[0],
            "relay",
            &relay_args("basic", "add", &mp(&(2u32, 3u32))),
        )
        .unwrap();
    assert_eq!(de::<u32>(&out), 5, "the callee's MessagePack, untouched");
    let big = rt
        .call(
            h[0],
            "relay",
            &relay_args("basic", "fill", &mp(&(1u8, 200_000u32))),
        )
        .unwrap();
    assert_eq!(big.len(), 200_000);
    let sum: u32 = rt
        .call_typed(h[0], "add_via", &("basic", 40u32, 2u32))
        .unwrap();
    assert_eq!(sum, 42, "typed nested call");
    // The synchronous relay that borrows its arguments, read in place as an archive.
    let relay = rt
        .archived::<(String, String, Vec<u8>), Vec<u8>>(h[0], "relay_borrowed")
        .unwrap();
    let args = ("basic".to_owned(), "echo".to_owned(), b"in place".to_vec());
    assert_eq!(relay.call(&args).unwrap(), b"in place");
    let args = ("basic".to_owned(), "nope".to_owned(), Vec::new());
    assert!(matches!(
        relay.call(&args).unwrap_err().module_error(),
        Some(ModuleError::InvalidMethod)
    ));
}

/// Counts the calls it sees: a runtime with it takes the guarded path, which makes a
/// whole output before lending it.
#[derive(Debug, Default)]
struct Counting(std::sync::atomic::AtomicUsize);

impl memlink_runtime::intercept::Interceptor for Counting {
    fn before(
        &self,
        _: &memlink_runtime::intercept::CallInfo<'_>,
        _: &[u8],
    ) -> Result<(), ModuleError> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

#[test]
fn a_result_lent_to_the_caller_is_read_where_the_callee_left_it() {
    lent_results(RuntimeConfig::default());
    let counting = std::sync::Arc::new(Counting::default());
    lent_results(RuntimeConfig::default().interceptor(counting.clone()));
    let seen = counting.0.load(std::sync::atomic::Ordering::Relaxed);
    // Ten relays, and eight nested calls that reached a module (not `ghost`, not `nope`).
    assert_eq!(
        seen, 18,
        "the interceptor saw the relays and their nested calls"
    );
}

fn lent_results(config: RuntimeConfig) {
    let (rt, h) = load_all(config, &["nested_calls", "basic"]);
    // `relay_in_arena` copies the lent bytes into its own arena and returns them there.
    let relay = rt
        .archived::<(String, String, Vec<u8>), Vec<u8>>(h[0], "relay_in_arena")
        .unwrap();
    let call = |module: &str, method: &str, args: &[u8]| {
        relay.call(&(module.to_owned(), method.to_owned(), args.to_vec()))
    };
    assert_eq!(call("basic", "echo", b"lent").unwrap(), b"lent");
    assert_eq!(call("basic", "echo", b"").unwrap(), b"", "an empty result");
    let sum = call("basic", "add", &mp(&(2u32, 3u32))).unwrap();
    assert_eq!(de::<u32>(&sum), 5, "the callee's MessagePack, untouched");
    // 40,000 bytes fit the caller's 64 KiB arena; 200,000 do not.
    let big = call("basic", "fill", &mp(&(7u8, 40_000u32))).unwrap();
    assert!(
        big.len() == 40_000 && big.iter().all(|&b| b == 7),
        "fill returns its bytes raw"
    );
    let error = |r: Result<Vec<u8>, RuntimeError>| r.unwrap_err().module_error().cloned();
    assert_eq!(
        error(call("basic", "fill", &mp(&(7u8, 200_000u32)))),
        Some(ModuleError::QuotaExceeded),
        "a result the caller's arena cannot hold"
    );
    // Errors arrive as their variants, and the reader does not run on them.
    assert_eq!(
        error(call("ghost", "echo", b"")),
        Some(ModuleError::ModuleNotFound("ghost".into()))
    );
    assert_eq!(
        error(call("basic", "nope", b"")),
        Some(ModuleError::InvalidMethod)
    );
    assert_eq!(
        error(call("basic", "fail", b"quota")),
        Some(ModuleError::QuotaExceeded)
    );
    assert!(matches!(
        error(call("basic", "boom", b"deep")),
        Some(ModuleError::Panic(m)) if m.starts_with("deep")
    ));
    assert_eq!(call("basic", "echo", b"still").unwrap(), b"still");
}

#[test]
fn a_panic_while_reading_a_lent_result_is_the_callers_panic() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards", "basic"]);
    let panicky = rt
        .archived::<(String, String), u32>(h[0], "panic_reading_nested")
        .unwrap();
    let call = |method: &str| panicky.call(&("basic".to_owned(), method.to_owned()));
    let err = call("ping").unwrap_err();
    assert!(
        matches!(
            err.module_error(),
            Some(ModuleError::Panic(m))
                if m.starts_with("read 4 bytes, then gave up") && m.contains("hazards.rs")
        ),
        "the panic, recorded where it happened: {err}"
    );
    // From an async export, the panic unwinds through the module's executor too.
    let err = rt
        .call_typed::<_, u32>(h[0], "panic_reading_nested_async", &("basic", "ping"))
        .unwrap_err();
    assert!(
        matches!(
            err.module_error(),
            Some(ModuleError::Panic(m)) if m.starts_with("read 4 bytes, then gave up")
        ),
        "{err}"
    );
    // Both modules keep serving.
    assert_eq!(
        rt.call_typed::<_, String>(h[1], "ping", &()).unwrap(),
        "pong"
    );
    let err = call("nope").unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::InvalidMethod)),
        "the reader does not run on an error: {err}"
    );
}

/// A panic a module passes on from its nested call is logged once, as the callee's, where
/// it happened: not again as the panic of each module of the chain that passed it on
/// (the caller gets the `Panic` all the same). A panic of the caller's own, after a
/// nested call that panicked, is still its own. Before, the relay's record said
/// "panicked" of an export that never did.
#[test]
fn a_panic_passed_on_from_a_nested_call_is_logged_once_as_the_callees() {
    use memlink_runtime::{LogEvent, LogSink};
    struct Panics(std::sync::Mutex<Vec<String>>);
    impl LogSink for Panics {
        fn record(&self, e: &LogEvent<'_>) {
            if e.message.starts_with("panicked") {
                let mut seen = self.0.lock().unwrap();
                seen.push(format!("{}::{}", e.module, e.method));
            }
        }
    }
    let sink = std::sync::Arc::new(Panics(Default::default()));
    let config = RuntimeConfig::default().log_sink(sink.clone());
    let (rt, h) = load_all(config, &["nested_calls", "basic", "hazards"]);
    let borrowed = rt
        .archived::<(String, String, Vec<u8>), Vec<u8>>(h[0], "relay_borrowed")
        .unwrap();
    for relay in ["relay", "relay_borrowed"] {
        let err = match relay {
            "relay" => nested_error(rt.call(h[0], relay, &relay_args("basic", "boom", b"deep"))),
            _ => {
                let args = ("basic".to_owned(), "boom".to_owned(), b"deep".to_vec());
                borrowed
                    .call(&args)
                    .unwrap_err()
                    .module_error()
                    .cloned()
                    .unwrap()
            }
        };
        assert!(
            matches!(&err, ModuleError::Panic(m) if m.starts_with("deep")),
            "{err:?}"
        );
        assert_eq!(
            std::mem::take(&mut *sink.0.lock().unwrap()),
            ["basic::boom"],
            "{relay}"
        );
    }
    // The caller's own panic, after a nested call that panicked, is its own.
    let err = rt
        .call_typed::<_, String>(
            h[2],
            "around_nested",
            &("basic", "boom", b"deep".to_vec(), "mine"),
        )
        .unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Panic(m)) if m.starts_with("mine")),
        "{err}"
    );
    assert_eq!(
        std::mem::take(&mut *sink.0.lock().unwrap()),
        ["basic::boom", "hazards::around_nested"]
    );
}

#[test]
fn each_nested_error_arrives_as_its_variant() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["nested_calls", "basic"]);
    let relay =
        |m: &str, f: &str, a: &[u8]| nested_error(rt.call(h[0], "relay", &relay_args(m, f, a)));
    assert_eq!(
        relay("ghost", "echo", b""),
        ModuleError::ModuleNotFound("ghost".into())
    );
    assert_eq!(relay("basic", "nope", b""), ModuleError::InvalidMethod);
    // A version requirement that is not semver says so, where `basic@99` is not found.
    assert_eq!(
        relay("basic@>>1", "echo", b""),
        ModuleError::CallFailed(
            "module `basic@>>1`: what follows `@` is not a semver requirement (say `1.2`, `^2`, `=1.4.2`)"
                .into()
        )
    );
    assert_eq!(
        relay("basic@99", "echo", b""),
        ModuleError::ModuleNotFound("basic@99".into())
    );
    // So does a name no module could be loaded under (docs/abi.md, `call_module`).
    assert_eq!(
        relay("", "echo", b""),
        ModuleError::CallFailed("module ``: a module's name cannot be empty".into())
    );
    assert_eq!(relay("basic", "fail", b"quota"), ModuleError::QuotaExceeded);
    assert!(
        matches!(relay("basic", "boom", b"deep"), ModuleError::Panic(m) if m.starts_with("deep"))
    );
    assert!(matches!(
        relay("basic", "add", b"\xc1"),
        ModuleError::Serialize(_)
    ));
    // The callee's refusal of its arguments is the callee's, told with its signature
    // alone. Before, the caller added its own, as if its (good) arguments were wrong.
    assert_eq!(
        relay("basic", "add", &mp(&("two", 3u32))),
        ModuleError::Serialize(
            "bad arguments: argument `a`: cannot decode MessagePack: found a string where the type takes another kind of value (MessagePack FixStr(3)) (the export is `add(a: u32, b: u32) -> u32`)"
                .into()
        )
    );
    // The caller's own arguments refused are told with its signature.
    let ModuleError::Serialize(own) = nested_error(rt.call(h[0], "relay", &mp(&(1u8,)))) else {
        panic!("a serialize error")
    };
    assert!(
        own.ends_with(
            "(the export is `async relay(module: String, method: String, args: Vec<u8>) -> Vec<u8>`)"
        ),
        "{own}"
    );
    // The caller keeps serving after every one of them.
    assert_eq!(
        rt.call(h[0], "relay", &relay_args("basic", "echo", b"ok"))
            .unwrap(),
        b"ok"
    );
}

/// A typed nested call whose result does not fit the type the caller reads it as (greeter
/// 3's `add` sums to a `u64`, `add_via` reads a `u32`) names the callee and the type.
/// Before, the decoder's words alone reached the host as `add_via`'s own serialization
/// error, as if its arguments or its result were wrong.
#[test]
fn a_typed_nested_result_that_does_not_read_names_the_callee_and_the_type() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["nested_calls", "greeter_v3"]);
    let fits: u32 = rt
        .call_typed(h[0], "add_via", &("greeter", 2u32, 3u32))
        .unwrap();
    assert_eq!(fits, 5);
    let too_wide = rt.call_typed::<_, u32>(h[0], "add_via", &("greeter", u32::MAX, 1u32));
    let Some(ModuleError::Serialize(message)) =
        too_wide.as_ref().err().and_then(|e| e.module_error())
    else {
        panic!("a serialize error, got {too_wide:?}")
    };
    assert_eq!(
        message,
        "the result of nested call `greeter::add` cannot be read as `u32`: cannot decode MessagePack: invalid value: integer `4294967296`, expected u32"
    );
}

#[test]
fn a_saturated_callee_is_call_failed() {
    let config = RuntimeConfig::default().concurrency(1, Saturation::Reject);
    let (rt, holding) = common::runtime_with_holding(config);
    let relay = rt
        .load(ModuleRef::from_path(common::module_path("nested_calls")))
        .unwrap();
    let callee = rt
        .load_as(
            ModuleRef::from_path(common::module_copy("hazards", "hazards_saturated")),
            "hazards",
        )
        .unwrap();
    // Another call holds the callee's only slot, so the relay's call into it is refused.
    let holder = {
        let rt = rt.clone();
        std::thread::spawn(move || rt.call_typed::<_, u64>(callee, "hold", &(1000u64,)))
    };
    holding
        .recv_timeout(common::HANG)
        .expect("the slot is held");
    let err = nested_error(rt.call(relay, "relay", &relay_args("hazards", "count", b"")));
    assert!(
        matches!(&err, ModuleError::CallFailed(m) if m.contains("saturated")),
        "{err}"
    );
    holder.join().unwrap().unwrap();
    // A module calling itself is not another call: it runs within its chain's slot.
    let out = rt
        .call(
            relay,
            "relay",
            &relay_args(
                "nested_calls",
                "relay",
                &relay_args("hazards", "count", b""),
            ),
        )
        .unwrap();
    assert!(!out.is_empty());
}

#[test]
fn nested_calls_inherit_trace_deadline_and_depth() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["nested_calls", "basic"]);
    let options = CallOptions::default()
        .trace(42, 7)
        .timeout(Duration::from_secs(10));
    let out = rt
        .call_with(
            h[0],
            "relay",
            &relay_args("basic", "context_info", b""),
            &options,
        )
        .unwrap();
    let (_, trace, _, remaining, depth, _): (f32, u64, u64, Option<u64>, u32, bool) = de(&out);
    assert_eq!((trace, depth), (42, 1));
    assert!(
        remaining.is_some_and(|ms| ms <= 10_000 && ms > 9_000),
        "{remaining:?}"
    );
}

#[test]
fn a_nested_call_times_out_with_its_caller() {
    let rt = memlink_runtime::Runtime::with_local_resolver();
    let relay = rt
        .load(ModuleRef::from_path(common::module_path("nested_calls")))
        .unwrap();
    // A private copy: the cancellation count is the image's.
    let copy = common::module_copy("async_echo", "async_echo_nested_timeout");
    let callee = rt
        .load_as(ModuleRef::from_path(copy), "async_echo")
        .unwrap();
    let options = CallOptions::default().timeout(Duration::from_millis(50));
    let args = relay_args("async_echo", "echo_after", &mp(&(5_000u64, vec![1u8])));
    let err = rt.call_with(relay, "relay", &args, &options).unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Timeout(_))),
        "{err}"
    );
    let cancelled: u64 = rt.call_typed(callee, "cancelled", &()).unwrap();
    assert_eq!(
        cancelled, 1,
        "the callee's 5 s sleep was cancelled at the caller's deadline"
    );
}

/// Two copies of `nested_calls`, loaded as `left` and `right`.
fn two_bouncers(max_depth: u32) -> (memlink_runtime::Runtime, memlink_runtime::ModuleHandle) {
    two_bouncers_with(RuntimeConfig::default().max_call_depth(max_depth))
}

/// [`two_bouncers`] on a runtime of `config`.
fn two_bouncers_with(
    config: RuntimeConfig,
) -> (memlink_runtime::Runtime, memlink_runtime::ModuleHandle) {
    let rt = memlink_runtime::Runtime::new(config, memlink_runtime::resolver::LocalResolver);
    let left = rt
        .load_as(
            ModuleRef::from_path(common::module_path("nested_calls")),
            "left",
        )
        .unwrap();
    rt.load_as(
        ModuleRef::from_path(common::module_copy("nested_calls", "nested_calls_right")),
        "right",
    )
    .unwrap();
    (rt, left)
}

#[test]
fn a_calls_b_calls_a_without_deadlock() {
    let (rt, left) = two_bouncers(8);
    for n in 0..=8u32 {
        let depth: u32 = rt
            .call_typed(left, "bounce", &(n, "left", "right"))
            .unwrap();
        assert_eq!(depth, n, "left → right → left … {n} hops");
    }
}

#[test]
fn a_cycle_ends_at_the_depth_limit() {
    let (rt, left) = two_bouncers(3);
    let depth: u32 = rt
        .call_typed(left, "bounce", &(3u32, "left", "right"))
        .unwrap();
    assert_eq!(depth, 3);
    let err = rt
        .call(left, "bounce", &mp(&(1_000u32, "left", "right")))
        .unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::MaxCallDepthExceeded),
        "{err}"
    );
    let depth: u32 = rt
        .call_typed(left, "bounce", &(1u32, "left", "right"))
        .unwrap();
    assert_eq!(depth, 1, "both modules keep serving");
}

/// A typed nested call of a method whose result is an archive is refused, saying so
/// (before: the archive's bytes were read as MessagePack, and the archive of a `u8` under
/// 128, one byte, decoded to it by accident; another archive to another value).
#[test]
fn a_typed_nested_call_refuses_an_archived_result() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards"]);
    let archived = rt.call(h[0], "archived_sum", &mp(&(2u8, 3u8))).unwrap();
    assert_eq!(&archived[..], [5], "the archive of a u8 is the byte itself");
    let typed: Result<u8, RuntimeError> =
        rt.call_typed(h[0], "archived_sum_typed", &("hazards", 2u8, 3u8));
    let err = typed.unwrap_err();
    let said = err.module_error().cloned();
    assert!(
        matches!(&said, Some(ModuleError::Serialize(m)) if m.contains("the result is an rkyv archive")),
        "{err}"
    );
}

/// A module's typed nested call of a method that takes raw arguments: a string reaches it
/// as its bytes, and a pair of integers is refused as the wrong type, as a typed call
/// from the host refuses it (before, its encoding `[2, 3]` reached `echo` as the bytes 2
/// and 3). Both modules go on serving.
#[test]
fn a_typed_nested_call_of_a_raw_method_takes_text_and_refuses_integers() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["hazards", "basic"]);
    let echoed: String = rt
        .call_typed(h[0], "echo_text_typed", &("basic", "hello"))
        .unwrap();
    assert_eq!(echoed, "hello");
    let err = rt
        .call_typed::<_, String>(h[0], "echo_pair_typed", &("basic", 2u32, 3u32))
        .unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Serialize(m))
            if m.contains("takes one string or byte argument")),
        "{err}"
    );
    let again: String = rt
        .call_typed(h[0], "echo_text_typed", &("basic", "again"))
        .unwrap();
    assert_eq!(again, "again");
    assert_eq!(rt.call(h[1], "echo", b"direct").unwrap(), b"direct"[..]);
}

/// Calls made from a thread-local's destructor, after the runtime's own thread state is
/// gone, run as any other: a module's nested call is made, and its log records reach
/// the runtime's sink (the host's services find the running call in a thread-local with
/// no destructor, `crate::chain`). Before, the services read the thread-local that was
/// gone, and `add_via`'s nested call failed with "the call handle is null, or not a call
/// running on this thread", a call that ran on that very thread.
#[test]
fn nested_calls_and_log_records_work_from_a_thread_local_destructor() {
    common::in_child(
        "nested_calls_and_log_records_work_from_a_thread_local_destructor",
        &[],
        || {
            use memlink_runtime::{LogEvent, LogSink, Runtime};
            use std::sync::{Arc, Mutex};

            /// Keeps each record's message.
            #[derive(Default)]
            struct Kept(Mutex<Vec<String>>);
            impl LogSink for Kept {
                fn record(&self, event: &LogEvent<'_>) {
                    self.0.lock().unwrap().push(event.message.to_owned());
                }
            }
            type Held = Arc<Mutex<Option<Runtime>>>;
            /// Makes a nested call and a call that logs when dropped, keeping how they went.
            struct CallsOnDrop(Held, Arc<Mutex<Vec<String>>>);
            impl Drop for CallsOnDrop {
                fn drop(&mut self) {
                    let held = self.0.lock().unwrap();
                    let rt = held.as_ref().unwrap();
                    let nested = rt.handle_of("nested_calls").unwrap();
                    let basic = rt.handle_of("basic").unwrap();
                    let sum = rt.call_typed::<_, u32>(nested, "add_via", &("basic", 2u32, 3u32));
                    let logged = rt.call_typed::<_, ()>(basic, "chatty", &(1u32,));
                    let mut seen = self.1.lock().unwrap();
                    seen.push(format!("{sum:?}"));
                    seen.push(format!("{logged:?}"));
                }
            }
            thread_local! {
                static GUARD: std::cell::RefCell<Option<CallsOnDrop>> = const { std::cell::RefCell::new(None) };
            }
            let held: Held = Arc::new(Mutex::new(None));
            let seen = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::new(Kept::default());
            let (h_held, h_seen, h_sink) = (Arc::clone(&held), Arc::clone(&seen), sink.clone());
            std::thread::spawn(move || {
                // Registered first, so destroyed last: after the runtime's state, which
                // the calls below set up on this thread.
                GUARD.with(|g| *g.borrow_mut() = Some(CallsOnDrop(h_held.clone(), h_seen)));
                let config = RuntimeConfig::default()
                    .log_level(tracing::Level::INFO)
                    .log_sink(h_sink);
                let (rt, handles) = load_all(config, &["basic", "nested_calls"]);
                let sum = rt.call_typed::<_, u32>(handles[1], "add_via", &("basic", 2u32, 3u32));
                assert_eq!(sum.unwrap(), 5);
                *h_held.lock().unwrap() = Some(rt);
            })
            .join()
            .unwrap();
            assert_eq!(*seen.lock().unwrap(), ["Ok(5)", "Ok(())"]);
            // `chatty` logs "an error", "a warning" and "some information" at INFO.
            let records = sink.0.lock().unwrap();
            assert_eq!(
                records.iter().filter(|m| m.as_str() == "an error").count(),
                1,
                "{records:?}"
            );
        },
    );
}

/// A chain of nested calls deeper than the calling thread's stack can hold ends in an
/// error saying so, whatever the depth limit: here a limit of a million, and two modules
/// bouncing calls 100,000 times. Before, the depth limit alone held, and the stack
/// overflowed, aborting the process.
#[test]
fn a_chain_too_deep_for_the_threads_stack_is_refused_before_it_overflows() {
    // In a child process: before, the process died.
    common::in_child(
        "a_chain_too_deep_for_the_threads_stack_is_refused_before_it_overflows",
        &[],
        || {
            let (rt, left) = two_bouncers(1_000_000);
            let err = rt
                .call(left, "bounce", &mp(&(100_000u32, "left", "right")))
                .unwrap_err();
            assert!(
                matches!(err.module_error(), Some(ModuleError::CallFailed(m))
                    if m.contains("the host thread's stack has")),
                "{err}"
            );
            let depth: u32 = rt
                .call_typed(left, "bounce", &(3u32, "left", "right"))
                .unwrap();
            assert_eq!(depth, 3, "both modules keep serving");
        },
    );
}

/// A call whose arena cannot be allocated (the memory is exhausted; here, the address
/// space is limited) fails with `QuotaExceeded`, and the host serves on. Each level of a
/// nested chain takes an arena, which the check at load (that one arena can be had)
/// cannot promise: before, the allocation's failure aborted the host.
#[cfg(target_os = "linux")]
#[test]
fn a_call_that_can_have_no_arena_fails_and_the_host_serves_on() {
    common::in_child(
        "a_call_that_can_have_no_arena_fails_and_the_host_serves_on",
        &[],
        || {
            let (rt, left) = two_bouncers_with(
                RuntimeConfig::default()
                    .max_call_depth(30)
                    .arena_size(128 << 20),
            );
            let depth: u32 = rt
                .call_typed(left, "bounce", &(2u32, "left", "right"))
                .unwrap();
            assert_eq!(depth, 2);
            // The address space the process has now, and 1 GiB more: room for a few
            // arenas of 128 MiB, not for thirty.
            common::limit_address_space(1 << 30);
            let err = rt
                .call_typed::<_, u32>(left, "bounce", &(30u32, "left", "right"))
                .unwrap_err();
            assert_eq!(
                err.module_error(),
                Some(&ModuleError::QuotaExceeded),
                "{err}"
            );
            // The arenas of the chain are back: it serves on.
            let depth: u32 = rt
                .call_typed(left, "bounce", &(2u32, "left", "right"))
                .unwrap();
            assert_eq!(depth, 2);
        },
    );
}
