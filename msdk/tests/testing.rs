//! `memlink_msdk::testing`: exports defined here are called through this binary's real
//! `memlink_call`, as a module's own tests call theirs.

use std::time::Duration;

use memlink_msdk::prelude::*;
use memlink_msdk::rkyv::{self, Archived};
use memlink_msdk::testing::{NestedRequest, TestContext};

#[memlink_export]
pub fn add(_ctx: &CallContext, a: u32, b: u32) -> Result<u32> {
    a.checked_add(b)
        .ok_or_else(|| ModuleError::Failed("the sum overflows".into()))
}

#[memlink_export]
pub fn shout(_ctx: &CallContext, text: String) -> Result<String> {
    Ok(text.to_uppercase())
}

#[memlink_export]
pub fn boom(_ctx: &CallContext, message: String) -> Result<u32> {
    panic!("{message}")
}

#[memlink_export]
pub fn total(_ctx: &CallContext, values: &Archived<Vec<u32>>) -> Result<u64> {
    Ok(values.iter().map(|v| u64::from(v.to_native())).sum())
}

/// Doubles through another module, and logs what it got.
#[memlink_export]
pub fn relay(ctx: &CallContext, x: u32) -> Result<u32> {
    let caller = ctx.module_caller().ok_or(ModuleError::ServiceUnavailable)?;
    let doubled: u32 = caller.call_typed("math", "double", &(x,))?;
    info("relayed", &[("doubled", &doubled.to_string())]);
    Ok(doubled)
}

/// Logs through the formatting macros as the README shows them, then through `log!`
/// with a level expression that counts how often it is evaluated.
#[memlink_export]
pub fn macro_logs(_ctx: &CallContext, rows: u32) -> Result<u32> {
    memlink_msdk::info!("{} rows", rows);
    memlink_msdk::warn!("{rows} rows, inline");
    let mut evaluated = 0u32;
    memlink_msdk::log!(
        {
            evaluated += 1;
            memlink_msdk::abi::level::ERROR
        },
        "counted"
    );
    Ok(evaluated)
}

#[memlink_export]
pub fn context(ctx: &CallContext) -> Result<(Option<u64>, u64, u64, f32)> {
    Ok((
        ctx.remaining_time().map(|d| d.as_millis() as u64),
        ctx.trace_id(),
        ctx.span_id(),
        ctx.backpressure(),
    ))
}

/// The message of the panic `f` fails the test with (the harness's own, not a module's
/// error): what the test's report would show.
fn failure_of<R>(f: impl FnOnce() -> R) -> String {
    let payload = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .err()
        .expect("the test fails");
    payload
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn messagepack_and_raw_exports_answer_and_their_errors_come_back() {
    let host = TestContext::new();
    assert_eq!(host.call_typed::<_, u32>("add", &(2u32, 3u32)).unwrap(), 5);
    // Arguments as a map keyed by name, as encoded bytes.
    let named =
        memlink_msdk::abi::msgpack::to_msgpack(&serde_json::json!({"a": 4, "b": 5})).unwrap();
    let out = host.call("add", &named).unwrap();
    assert_eq!(out, [9]);
    let err = host
        .call_typed::<_, u32>("add", &(u32::MAX, 1u32))
        .unwrap_err();
    assert_eq!(err, ModuleError::Failed("the sum overflows".into()));
    // Bad arguments are refused by the export's own decoding.
    let err = host.call("add", b"\x91\x01").unwrap_err();
    assert!(matches!(err, ModuleError::Serialize(_)), "{err:?}");
    assert_eq!(host.call("shout", b"hi").unwrap(), b"HI");
    assert_eq!(
        host.call_typed::<_, String>("shout", "typed").unwrap(),
        "TYPED"
    );
    assert_eq!(
        host.call("nope", b"").unwrap_err(),
        ModuleError::InvalidMethod
    );
}

#[test]
fn a_panic_is_caught_as_the_host_sees_it_and_the_module_keeps_answering() {
    let host = TestContext::new();
    let err = host.call_typed::<_, u32>("boom", "it broke").unwrap_err();
    match err {
        ModuleError::Panic(message) => assert!(message.contains("it broke"), "{message}"),
        other => panic!("expected a panic, got {other:?}"),
    }
    assert_eq!(host.call_typed::<_, u32>("add", &(1u32, 1u32)).unwrap(), 2);
}

#[test]
fn archives_are_read_in_place_and_validated() {
    let host = TestContext::new();
    let archive = rkyv::to_bytes::<rkyv::rancor::Error>(&(vec![1u32, 2, 3, 4],)).unwrap();
    let out = host.call("total", &archive).unwrap();
    assert_eq!(
        memlink_msdk::abi::msgpack::from_msgpack::<u64>(&out).unwrap(),
        10
    );
    // Bytes that are not such an archive are refused by validation.
    let err = host.call("total", &[0xff; 7]).unwrap_err();
    assert!(matches!(err, ModuleError::Serialize(_)), "{err:?}");
    // A typed call cannot make an archive, and says so.
    let err = host
        .call_typed::<_, u64>("total", &(vec![1u32],))
        .unwrap_err();
    assert!(err.to_string().contains("archive"), "{err}");
}

#[test]
fn nested_calls_reach_the_mock_and_logs_are_kept() {
    let host = TestContext::new().on_nested(|request: NestedRequest<'_>| {
        assert_eq!((request.module, request.method), ("math", "double"));
        assert!(request.typed);
        let (x,): (u32,) = memlink_msdk::abi::msgpack::from_msgpack(request.args)?;
        memlink_msdk::abi::msgpack::to_msgpack(&(x * 2))
    });
    assert_eq!(host.call_typed::<_, u32>("relay", &(21u32,)).unwrap(), 42);
    let logs = host.logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0].method, "relay");
    assert_eq!(logs[0].message, "relayed");
    assert_eq!(logs[0].fields, [("doubled".to_owned(), "42".to_owned())]);

    // The callee's error reaches the export as a host's would.
    let failing =
        TestContext::new().on_nested(|r| Err(ModuleError::ModuleNotFound(r.module.to_owned())));
    let err = failing.call_typed::<_, u32>("relay", &(1u32,)).unwrap_err();
    assert_eq!(err, ModuleError::ModuleNotFound("math".into()));
    // Without a mock, no module is there.
    let alone = TestContext::new();
    let err = alone.call_typed::<_, u32>("relay", &(1u32,)).unwrap_err();
    assert_eq!(err, ModuleError::ModuleNotFound("math".into()));
}

#[test]
fn deadline_trace_ids_and_backpressure_reach_the_export() {
    let host = TestContext::new()
        .deadline(Duration::from_secs(30))
        .trace(7, 8)
        .backpressure(0.25);
    let (left, trace, span, pressure): (Option<u64>, u64, u64, f32) =
        host.call_typed("context", &()).unwrap();
    assert!(left.is_some_and(|ms| ms > 0 && ms <= 30_000), "{left:?}");
    assert_eq!((trace, span, pressure), (7, 8, 0.25));
    let plain: (Option<u64>, u64, u64, f32) =
        TestContext::new().call_typed("context", &()).unwrap();
    assert_eq!(plain, (None, 0, 0, 0.0));
}

/// A panic in the test's own closure (a failed assertion in it) fails the test with its
/// message instead of aborting the test binary, and the module keeps answering.
#[test]
fn a_panic_in_the_nested_mock_fails_the_test_not_the_binary() {
    let host = TestContext::new().on_nested(|_| panic!("the mock's assertion"));
    let message = failure_of(|| host.call_typed::<_, u32>("relay", &(1u32,)));
    // With the closure's file and line: the hook prints nothing while a call runs, so
    // this report is the only one the test's assertion gets.
    assert!(
        message.contains("on_nested closure panicked: the mock's assertion (at ")
            && message.contains("tests/testing.rs:"),
        "{message}"
    );
    assert_eq!(host.call_typed::<_, u32>("add", &(1u32, 2u32)).unwrap(), 3);
}

/// An arena the process cannot allocate fails the test with a panic that names the
/// setting; `vec!` aborted the whole test binary ("memory allocation of ... failed").
#[test]
fn an_arena_the_process_cannot_allocate_fails_the_test_saying_so() {
    let host = TestContext::new().arena_size(1 << 62);
    let message = failure_of(|| host.call_typed::<_, u32>("add", &(1u32, 2u32)));
    assert!(
        message.contains(
            "TestContext cannot allocate the arena (`TestContext::arena_size`) of 4611686018427387904 bytes"
        ),
        "{message}"
    );
}

/// A panic payload that panics again when it is dropped.
struct PayloadBomb;

impl Drop for PayloadBomb {
    fn drop(&mut self) {
        panic!("the payload's own drop");
    }
}

/// A closure that panics with a payload whose drop panics too fails the test as any
/// other panic in it does. Before, the payload was dropped inside the host's
/// `extern "C"` service, where its panic could not unwind: the test binary aborted.
#[test]
fn a_mock_panic_whose_payload_panics_when_dropped_fails_the_test_not_the_binary() {
    let host = TestContext::new().on_nested(|_| std::panic::panic_any(PayloadBomb));
    let message = failure_of(|| host.call_typed::<_, u32>("relay", &(1u32,)));
    assert!(
        message.contains("on_nested closure panicked: panic with a non-string payload (at "),
        "{message}"
    );
    assert_eq!(host.call_typed::<_, u32>("add", &(1u32, 2u32)).unwrap(), 3);
}

/// The logging macros log what they format, at their level; `log!` evaluates its level
/// once. Before, it evaluated it once to test it and again to log with it.
#[test]
fn the_logging_macros_format_once_and_evaluate_their_level_once() {
    let host = TestContext::new();
    let evaluated: u32 = host.call_typed("macro_logs", &(12u32,)).unwrap();
    assert_eq!(evaluated, 1, "the level expression's evaluations");
    let seen: Vec<(u32, String)> = host
        .logs()
        .into_iter()
        .map(|l| (l.level, l.message))
        .collect();
    use memlink_msdk::abi::level;
    assert_eq!(
        seen,
        [
            (level::INFO, "12 rows".to_owned()),
            (level::WARN, "12 rows, inline".to_owned()),
            (level::ERROR, "counted".to_owned()),
        ]
    );
}
