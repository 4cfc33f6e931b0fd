//! The client's call surface against a real `memlink serve`: by name, typed, archived,
//! in-place buffers, batches, options, backpressure, and the same code run against the
//! in-process runtime.

mod common;

use std::time::Duration;

use common::{module_path, Daemon, Setup};
use memlink_client::{CallOptions, Caller, Client, ClientConfig, ModuleError, RuntimeError};
use memlink_example_types::zero_copy_types::Point;
use memlink_runtime::{ModuleRef, Runtime};

/// Code written once against `Caller`: the test runs it in process and through the
/// daemon, and the results agree.
fn exercise(caller: &impl Caller) -> Result<(u32, Vec<u8>, String), RuntimeError> {
    let basic = caller.module("basic")?;
    let sum: u32 = caller.call_typed(basic, "add", &(2u32, 3u32))?;
    let echoed = caller.call(basic, "echo", b"hello")?.to_vec();
    let failed = caller
        .call_typed::<_, ()>(basic, "fail", &("failed",))
        .unwrap_err();
    Ok((sum, echoed, failed.to_string()))
}

/// `modules` served by a daemon (running while the first is held), a client of it, and
/// a runtime with them loaded: the two callers of the same modules.
fn both_ways(modules: &[&str]) -> (Daemon, Client, Runtime) {
    let daemon = Daemon::start(Setup::modules(modules));
    let client = Client::connect(&daemon.socket).unwrap();
    let runtime = Runtime::with_local_resolver();
    for m in modules {
        runtime
            .load(ModuleRef::parse(module_path(m).to_str().unwrap()).unwrap())
            .unwrap();
    }
    (daemon, client, runtime)
}

#[test]
fn the_same_code_runs_in_process_and_through_the_daemon() {
    let (_daemon, client, runtime) = both_ways(&["basic"]);
    let here = exercise(&runtime).unwrap();
    let there = exercise(&client).unwrap();
    assert_eq!(here, there);
    assert_eq!(there.0, 5);
    assert_eq!(there.1, b"hello");
    assert!(there.2.contains("basic::fail failed"), "{}", there.2);
}

/// Code written once against `Caller` that shares a resolved module with other threads
/// and keys a map by it: both callers' handles allow it, and the trait says so (before,
/// `Caller::Module` was only `Copy + Debug`, and this did not build).
fn shared_across_threads<C: Caller + Sync>(caller: &C) -> Result<Vec<u32>, RuntimeError> {
    let basic = caller.module("basic")?;
    let mut seen = std::collections::HashMap::new();
    seen.insert(basic, "basic");
    std::thread::scope(|s| {
        let calls: Vec<_> = (0..4u32)
            .map(|i| s.spawn(move || caller.call_typed::<_, u32>(basic, "add", &(i, 1u32))))
            .collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    })
}

#[test]
fn generic_code_shares_a_module_handle_between_threads_on_both_callers() {
    let (_daemon, client, runtime) = both_ways(&["basic"]);
    let here = shared_across_threads(&runtime).unwrap();
    assert_eq!(here, [1, 2, 3, 4]);
    assert_eq!(shared_across_threads(&client).unwrap(), here);
}

#[test]
fn calls_by_name_and_typed_handles_give_the_runtime_errors() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let client = Client::connect(&daemon.socket).unwrap();
    assert_eq!(client.modules().unwrap(), ["basic"]);
    assert!(client.in_place().unwrap(), "same user: read in place");
    let basic = client.module("basic").unwrap();
    let methods = client.methods(basic).unwrap();
    let described = methods.iter().find(|m| m.name == "add").unwrap();
    assert_eq!(
        described.signature.as_deref(),
        Some("add(a: u32, b: u32) -> u32"),
        "the daemon passes on each method's signature"
    );
    let add = client.typed::<(u32, u32), u32>(basic, "add").unwrap();
    for i in 0..100 {
        assert_eq!(add.call(&(i, 1)).unwrap(), i + 1);
    }
    assert!(matches!(
        client.module("nope").unwrap_err(),
        RuntimeError::UnknownModule { name } if name == "nope"
    ));
    let err = client.call(basic, "nope", b"").unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnknownMethod { ref method, .. } if method == "nope"),
        "{err}"
    );
    let err = client
        .call_typed::<_, u32>(basic, "may_fail", &(101u32,))
        .unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::QuotaExceeded),
        "{err}"
    );
    let methods = client.methods(basic).unwrap();
    assert!(methods.iter().any(|m| m.name == "add" && m.arg_count == 2));
}

#[test]
fn deadlines_and_trace_ids_reach_the_module() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    let options = CallOptions::default()
        .trace(77, 88)
        .timeout(Duration::from_secs(5));
    let info = client
        .typed::<(), (f32, u64, u64, Option<u64>, u32, bool)>(basic, "context_info")
        .unwrap();
    let (_, trace, span, remaining, depth, _) = info.call_with(&(), &options).unwrap();
    assert_eq!((trace, span, depth), (77, 88, 0));
    let remaining = remaining.expect("the module sees the deadline");
    assert!(
        remaining > 3_000 && remaining <= 5_000,
        "{remaining} ms left"
    );
}

#[test]
fn archives_are_written_and_read_in_place_and_checked_by_type() {
    let daemon = Daemon::start(Setup::modules(&["zero_copy"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let zc = client.module("zero_copy").unwrap();
    let scale = client
        .archived::<(Vec<Point>, f32), Vec<Point>>(zc, "scale")
        .unwrap();
    let points = vec![
        Point {
            x: 1.0,
            y: 2.0,
            z: 3.0,
        },
        Point {
            x: -1.0,
            y: 0.5,
            z: 4.0,
        },
    ];
    let reply = scale.call(&(points, 2.0)).unwrap();
    let scaled = reply.get();
    assert_eq!(scaled.len(), 2);
    assert_eq!(scaled[1].y.to_native(), 1.0);
    assert_eq!(scaled[0].z.to_native(), 6.0);
    let err = client
        .archived::<(Vec<u32>, f32), Vec<Point>>(zc, "scale")
        .unwrap_err();
    assert!(matches!(err, RuntimeError::TypeMismatch { .. }), "{err}");
    let err = client
        .typed::<(Vec<Point>, f32), u32>(zc, "scale")
        .unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::WrongFormat {
                part: "arguments",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_arg_slot_is_filled_in_place_and_read_by_the_module_where_it_lies() {
    let daemon = Daemon::start(Setup::modules(&["zero_copy"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let zc = client.module("zero_copy").unwrap();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7) as u8).collect();
    let archive = rkyv::to_bytes::<rkyv::rancor::Error>(&(data.clone(),)).unwrap();
    let mut slot = client.arg_buffer(archive.len()).unwrap();
    assert!(slot.iter().all(|&b| b == 0), "zeroed when made");
    slot.copy_from_slice(&archive);
    let out = client
        .call_buffer(zc, "checksum", slot, &CallOptions::default())
        .unwrap();
    let here = Runtime::with_local_resolver();
    let h = here
        .load(ModuleRef::parse(module_path("zero_copy").to_str().unwrap()).unwrap())
        .unwrap();
    let expected = here.call(h, "checksum", &archive).unwrap();
    assert_eq!(&*out, &*expected);
    // A buffer larger than the slots grows the segment (up to the daemon's 256 MiB).
    let big = client.arg_buffer(10 << 20).unwrap();
    assert_eq!(big.len(), 10 << 20);
    assert!(client.segment_size().unwrap() >= 10 << 20);
    let err = client.arg_buffer(300 << 20).unwrap_err();
    assert!(err.to_string().contains("at most 268435456"), "{err}");
}

/// A client that asks for more shared memory than the daemon gives a connection gets
/// its segment cut down, and still grows it for a call that fits the daemon's limit.
/// Before, it floored each growth at the slots it had asked for, which no segment
/// within the limit holds: a 3 MiB call was refused as needing a slot of 128 MiB.
#[test]
fn a_client_asking_for_more_than_the_daemon_gives_still_grows_within_the_limit() {
    let daemon = Daemon::start(Setup {
        toml: "max_shm_per_client = 16777216".into(),
        ..Setup::modules(&["basic"])
    });
    let config = ClientConfig::default().slots(8).slot_size(128 << 20);
    let client = Client::with_config(&daemon.socket, config).unwrap();
    let basic = client.module("basic").unwrap();
    let given = client.segment_size().unwrap();
    assert!(given <= 16 << 20, "cut to the limit: {given}");
    let big: Vec<u8> = (0..3u32 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(&*client.call(basic, "echo", &big).unwrap(), &big[..]);
    let filled: Vec<u8> = client
        .call_typed(basic, "fill", &(7u8, 3u32 << 20))
        .or_else(|_| client.call_typed(basic, "fill", &(7u8, 3u32 << 20)))
        .unwrap();
    assert_eq!(filled.len(), 3 << 20);
}

#[test]
fn a_call_larger_than_the_slots_grows_the_segment_within_the_daemon_limit() {
    let daemon = Daemon::start(Setup {
        toml: "max_shm_per_client = 16777216".into(),
        ..Setup::modules(&["basic"])
    });
    let config = ClientConfig::default().slot_size(64 << 10);
    let client = Client::with_config(&daemon.socket, config).unwrap();
    let basic = client.module("basic").unwrap();
    let small = client.segment_size().unwrap();
    assert_eq!(small, 4096 + 8 * (64 << 10), "as asked: 8 slots of 64 KiB");
    assert_eq!(&*client.call(basic, "echo", b"small").unwrap(), b"small");

    // A result larger than its slot fails its call and grows the slots for the next.
    // The runtime returns such a result: the error says the method ran (calling again
    // runs it again) and that the next call gets it, not that the daemon could not take
    // the call.
    let err = client
        .call_typed::<_, Vec<u8>>(basic, "fill", &(7u8, 200_000u32))
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, RuntimeError::Daemon { .. })
            && text.contains("does not fit")
            && text.contains("basic::fill ran and its result was dropped")
            && text.contains("the slots grew to hold it")
            && !text.contains("could not take"),
        "{text}"
    );
    let filled: Vec<u8> = client
        .call_typed(basic, "fill", &(7u8, 200_000u32))
        .unwrap();
    assert!(filled.len() == 200_000 && filled.iter().all(|&b| b == 7));
    assert_eq!(client.segment_size().unwrap(), 4096 + 8 * (256 << 10));

    // Through a buffer, which stays in the slot it was made in, the error says to make
    // a new one: the slots grew, but every call through that buffer would fail the same
    // way (before, it said only that the slots grew for the calls after this one).
    let args = rmp_serde::to_vec(&(7u8, 300_000u32)).unwrap();
    let mut buffer = client.arg_buffer(args.len()).unwrap();
    buffer.copy_from_slice(&args);
    let err = client
        .call_slot(
            basic,
            "fill",
            &mut buffer,
            &memlink_client::CallOptions::default(),
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("this buffer stays in the old slots: make a new one with `arg_buffer`"),
        "{err}"
    );

    // 1 MiB: 8 slots of 1 MiB fit the 16 MiB limit.
    let mib: Vec<u8> = (0..1u32 << 20).map(|i| b'a' + (i % 26) as u8).collect();
    assert_eq!(&*client.call(basic, "echo", &mib).unwrap(), &mib[..]);
    assert_eq!(client.segment_size().unwrap(), 4096 + 8 * (1 << 20));

    // 5 MiB: one slot of 8 MiB would fit the limit, three of exactly 5 MiB do: more
    // calls in flight win over the rounded size.
    let five: Vec<u8> = (0..5u32 << 20).map(|i| b'a' + (i % 13) as u8).collect();
    let out = client.call(basic, "echo", &five).unwrap();
    assert_eq!(&*out, &five[..]);
    assert_eq!(client.segment_size().unwrap(), 4096 + 3 * (5 << 20));
    // A reply is read in place in its slot: the slot is free again once it drops.
    drop(out);
    // A batch on the grown connection holds as many calls as it has slots.
    let mut batch = client.batch();
    batch.push(basic, "echo", &five).unwrap();
    batch.push(basic, "echo", b"two").unwrap();
    batch.push(basic, "echo", b"three").unwrap();
    let err = batch.push(basic, "echo", b"four").unwrap_err();
    assert!(err.to_string().contains("at most 3"), "{err}");
    let results = batch.run();
    assert_eq!(&**results[0].as_ref().unwrap(), &five[..]);
    assert_eq!(&**results[2].as_ref().unwrap(), b"three");
    drop(results);

    // A typed handle's call grows it too: 6 MB of MessagePack, two slots of it.
    let add_all = client.typed::<(Vec<i64>,), i64>(basic, "sum").unwrap();
    assert_eq!(add_all.call(&(vec![1; 6_000_000],)).unwrap(), 6_000_000);
    let size = client.segment_size().unwrap();
    assert!(size > 2 * 6_000_000 && size <= 16 << 20, "{size}");

    // Past the daemon's limit: refused, naming both sizes; the client keeps serving.
    let huge = vec![b'x'; 20 << 20];
    let err = client.call(basic, "echo", &huge).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&(20u64 << 20).to_string()) && text.contains("16777216"),
        "{text}"
    );
    assert_eq!(&*client.call(basic, "echo", b"still").unwrap(), b"still");
    // A result past it: the call fails saying no connection can hold it, naming the
    // limit, every time (before, it said only that the slots were too small, and each
    // try ran the method again in vain).
    for _ in 0..2 {
        let err = client
            .call_typed::<_, Vec<u8>>(basic, "fill", &(1u8, 20_000_000u32))
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("20000000")
                && text.contains("no connection can hold it")
                && text.contains("basic::fill ran")
                && text.contains("16777216"),
            "{text}"
        );
        assert_eq!(
            text.matches("call through the daemon failed").count(),
            1,
            "{text}"
        );
    }
    assert_eq!(&*client.call(basic, "echo", b"still").unwrap(), b"still");
}

#[test]
fn a_batch_is_submitted_at_once_and_collected_in_order() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    let mut batch = client.batch();
    let words: Vec<String> = (0..8).map(|i| format!("word {i}")).collect();
    for w in &words {
        batch.push(basic, "echo", w.as_bytes()).unwrap();
    }
    assert!(batch
        .push(basic, "echo", b"one too many")
        .unwrap_err()
        .to_string()
        .contains("at most 8"));
    let results = batch.run();
    assert_eq!(results.len(), 8);
    for (r, w) in results.into_iter().zip(&words) {
        assert_eq!(&*r.unwrap(), w.as_bytes());
    }
    // The slots are free again.
    assert_eq!(&*client.call(basic, "echo", b"after").unwrap(), b"after");
}

/// A batch's calls share one connection, sized by its first call: a later call larger
/// than its slots is refused with what to do about it (the `Batch` docs' advice), and the
/// batch's calls still run. Before, the refusal told the user to connect with larger
/// slots, which a batch cannot.
#[test]
fn a_call_larger_than_a_batchs_slots_is_told_to_go_alone_or_first() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let client =
        Client::with_config(&daemon.socket, ClientConfig::default().slot_size(4096)).unwrap();
    let basic = client.module("basic").unwrap();
    let mut batch = client.batch();
    batch.push(basic, "echo", b"small").unwrap();
    let large = vec![7u8; 64 * 1024];
    let err = batch.push(basic, "echo", &large).unwrap_err().to_string();
    assert!(
        err.contains("basic::echo")
            && err.contains("65536 bytes")
            && err.contains("in a batch of its own, or first"),
        "{err}"
    );
    let results = batch.run();
    assert_eq!(results.len(), 1);
    assert_eq!(&*results.into_iter().next().unwrap().unwrap(), b"small");
    // First in a batch of its own, it grows the connection and runs.
    let mut alone = client.batch();
    alone.push(basic, "echo", &large).unwrap();
    let results = alone.run();
    assert_eq!(&*results.into_iter().next().unwrap().unwrap(), &large[..]);
}

/// A short call a batch holds behind a long one is handed to a helper of the worker
/// while the batch waits for the long one, as a short call from another thread is: it
/// answers before the batch's deadline, which the long one misses. Before, nobody woke
/// the sleeping helpers for it, and it waited for their next look, past the deadline.
#[test]
fn a_short_call_behind_a_long_one_in_a_batch_gets_a_helper() {
    let daemon = Daemon::start(Setup::modules(&["basic", "hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let basic = client.module("basic").unwrap();
    let hazards = client.module("hazards").unwrap();
    // The connection's helpers start, look once and go to sleep.
    assert_eq!(&*client.call(basic, "echo", b"warm").unwrap(), b"warm");
    std::thread::sleep(Duration::from_millis(100));
    for round in 0..3 {
        let mut batch = client
            .batch()
            .options(CallOptions::default().timeout(Duration::from_millis(300)));
        batch
            .push(hazards, "hold", &rmp_serde::to_vec(&(400u64,)).unwrap())
            .unwrap();
        batch.push(basic, "echo", b"short").unwrap();
        let results = batch.run();
        let long = results[0].as_ref().unwrap_err();
        assert!(
            matches!(long.module_error(), Some(ModuleError::Timeout(_))),
            "round {round}: {long}"
        );
        let short = results[1]
            .as_ref()
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        assert_eq!(&**short, b"short");
    }
}

#[test]
fn backpressure_is_readable_and_many_threads_share_a_client() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let client = Client::with_config(&daemon.socket, ClientConfig::default().slots(4)).unwrap();
    let basic = client.module("basic").unwrap();
    assert_eq!(client.backpressure(basic).unwrap(), 0.0);
    std::thread::scope(|s| {
        for t in 0..6u32 {
            let client = &client;
            s.spawn(move || {
                for i in 0..200 {
                    let sum: u32 = client.call_typed(basic, "add", &(t, i)).unwrap();
                    assert_eq!(sum, t + i);
                }
            });
        }
    });
    let out = client.call(basic, "echo", b"x").unwrap();
    assert!((0.0..=1.0).contains(&out.backpressure()));
}

#[test]
fn a_call_past_its_deadline_returns_at_the_deadline() {
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let hazards = client.module("hazards").unwrap();
    let hold = client.typed::<(u64,), u64>(hazards, "hold").unwrap();
    let options = CallOptions::default().timeout(Duration::from_millis(200));
    // The module would hold for a minute; the caller gets its timeout instead, saying
    // how much time the call had, while the module still runs.
    let err = hold.call_with(&(60_000,), &options).unwrap_err();
    match err.module_error() {
        Some(ModuleError::Timeout(given)) => assert!(*given <= Duration::from_millis(200)),
        _ => panic!("{err}"),
    }
}

/// What a call gave, as it prints: the bytes, or the error's variant, fields and text.
fn outcome<T: std::fmt::Debug>(result: Result<T, RuntimeError>) -> String {
    match result {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({e:?}): {e}"),
    }
}

/// The same calls, written once against `Caller`, each failure among them: what each
/// gave, by case.
fn every_outcome(c: &impl Caller) -> Vec<(&'static str, String)> {
    let mut out = vec![("unknown module", outcome(c.module("nope")))];
    for name in ["", "basic@>>1", "ba\nsic", "@^1"] {
        out.push(("malformed module name", outcome(c.module(name))));
    }
    let basic = c.module("basic").unwrap();
    let nested = c.module("nested_calls").unwrap();
    let raw = |method: &str, args: &[u8], options: &CallOptions| {
        outcome(
            c.call_with(basic, method, args, options)
                .map(|o| o.to_vec()),
        )
    };
    let none = CallOptions::default();
    let past = CallOptions::default().deadline(std::time::Instant::now() - Duration::from_secs(1));
    out.push(("unknown method", raw("nope", b"", &none)));
    out.push(("not MessagePack", raw("add", b"\xc1", &none)));
    out.push(("too few arguments", raw("add", b"\x91\x01", &none)));
    out.push(("raw result", raw("echo", b"hi", &none)));
    out.push(("empty result", raw("echo", b"", &none)));
    out.push(("unit result", raw("noop", b"", &none)));
    out.push(("not UTF-8", raw("echo", b"\xff", &none)));
    out.push(("deadline passed", raw("add", b"\x92\x01\x02", &past)));
    let traced = CallOptions::default().trace(7, 8).timeout(Duration::MAX);
    let seen = c
        .call_with(basic, "context_info", b"", &traced)
        .map(|o| rmp_serde::from_slice::<(f32, u64, u64, Option<u64>, u32, bool)>(&o).unwrap())
        .map(|(_, trace, span, left, depth, _)| (trace, span, left.is_some(), depth));
    out.push(("trace ids and Duration::MAX", outcome(seen)));
    for kind in [
        "quota",
        "call_failed",
        "timeout",
        "serialize",
        "unavailable",
        "invalid_method",
        "module_not_found",
        "depth",
        "other",
    ] {
        out.push((
            "module error",
            outcome(c.call_typed::<_, ()>(basic, "fail", &(kind,))),
        ));
    }
    out.push((
        "panic",
        outcome(c.call_typed::<_, u32>(basic, "boom", &("oh",))),
    ));
    out.push((
        "panic in decode",
        outcome(c.call_typed::<_, u32>(basic, "touchy", &(13u32,))),
    ));
    out.push((
        "wrong result type",
        outcome(c.call_typed::<_, String>(basic, "add", &(1u32, 2u32))),
    ));
    out.push((
        "arguments not encodable",
        outcome(c.call_typed::<_, String>(basic, "echo", &("a", "b"))),
    ));
    let large = c.call_typed::<_, Vec<u8>>(basic, "fill", &(1u8, 100_000u32));
    out.push(("large result", outcome(large.map(|v| v.len()))));
    let depth = c.call_typed::<_, u32>(nested, "bounce", &(100u32, "nested_calls", "nested_calls"));
    out.push(("depth limit", outcome(depth)));
    out.push(("backpressure", outcome(c.backpressure(basic))));
    out
}

#[test]
fn each_outcome_is_the_same_in_process_and_through_the_daemon() {
    let (_daemon, client, runtime) = both_ways(&["basic", "nested_calls"]);
    let here = every_outcome(&runtime);
    let there = every_outcome(&client);
    for ((case, a), (_, b)) in here.iter().zip(&there) {
        assert_eq!(a, b, "{case}");
    }
    assert_eq!(here.len(), there.len());
    // The cases reach what they name (a case that failed to reach it alike on both
    // sides would pass unseen).
    let text = format!("{here:?}");
    for seen in [
        "UnknownModule",
        "BadReference",
        "UnknownMethod",
        "Panic(",
        "Codec",
        "Timeout(0ns)",
        "MaxCallDepthExceeded",
        "Ok((7, 8, true, 0))",
        "Ok(100000)",
    ] {
        assert!(text.contains(seen), "{seen}: {text}");
    }
}

/// A method that takes an archive and returns MessagePack (`centroid`) is called with
/// its archive written in place and its result decoded, as `Runtime::archived` with a
/// serde result does, giving what the runtime gives (before: `Client::archived` refused
/// it for its result, saying to use `Client::typed`, which refused it for its arguments,
/// saying to use `Client::archived`).
#[test]
fn archived_arguments_with_a_decoded_result_agree_with_the_runtime() {
    let (_daemon, client, runtime) = both_ways(&["zero_copy"]);
    let points = vec![
        Point {
            x: 1.0,
            y: 2.0,
            z: 3.0,
        },
        Point {
            x: 3.0,
            y: 0.0,
            z: -1.0,
        },
    ];
    type Centroid = (f32, f32, f32, u64);
    let here = runtime
        .archived::<(Vec<Point>,), Centroid>(
            Caller::module(&runtime, "zero_copy").unwrap(),
            "centroid",
        )
        .unwrap()
        .call(&(points.clone(),))
        .unwrap();
    let zc = client.module("zero_copy").unwrap();
    let there = client
        .archived_decoded::<(Vec<Point>,), Centroid>(zc, "centroid")
        .unwrap()
        .call(&(points,))
        .unwrap();
    // The last is where the module read the points: in each process's own memory.
    assert_eq!((here.0, here.1, here.2), (there.0, there.1, there.2));
    assert_eq!((there.0, there.1, there.2), (2.0, 1.0, 1.0));
    let err = client
        .archived::<(Vec<Point>,), Centroid>(zc, "centroid")
        .unwrap_err();
    assert!(
        err.to_string().contains("Client::archived_decoded"),
        "{err}"
    );
    let err = client
        .archived_decoded::<(Vec<Point>, f32), Vec<u32>>(zc, "scale")
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::WrongFormat { part: "result", .. }),
        "{err}"
    );
    let err = client
        .archived_decoded::<(Vec<u32>,), Centroid>(zc, "centroid")
        .unwrap_err();
    assert!(matches!(err, RuntimeError::TypeMismatch { .. }), "{err}");
}

/// A method that takes MessagePack and returns an archive (`archived_sum`) is called with
/// its arguments encoded in place and its archive read where it lies, as
/// `Runtime::typed` with an `Rkyv<T>` result does (before: `Client::typed` refused it for
/// its result, saying to use `Client::archived`, which refused it for its arguments,
/// saying to use `Client::typed`).
#[test]
fn typed_arguments_with_an_archived_result_agree_with_the_runtime() {
    let (_daemon, client, runtime) = both_ways(&["hazards"]);
    let in_process = Caller::module(&runtime, "hazards").unwrap();
    let here = runtime
        .typed::<(u8, u8), memlink_runtime::Rkyv<u8>>(in_process, "archived_sum")
        .unwrap()
        .call(&(2, 3))
        .unwrap();
    let hazards = client.module("hazards").unwrap();
    let there = client
        .typed_archived::<(u8, u8), u8>(hazards, "archived_sum")
        .unwrap()
        .call(&(2, 3))
        .unwrap();
    assert_eq!((*here.get(), *there.get()), (5, 5));
    assert_eq!(here.bytes(), there.bytes());
    for err in [
        client
            .typed::<(u8, u8), u8>(hazards, "archived_sum")
            .unwrap_err(),
        client
            .archived::<(u8, u8), u8>(hazards, "archived_sum")
            .unwrap_err(),
    ] {
        assert!(err.to_string().contains("Client::typed_archived"), "{err}");
    }
    let err = client
        .typed_archived::<(u8, u8), u32>(hazards, "archived_sum")
        .unwrap_err();
    assert!(matches!(err, RuntimeError::TypeMismatch { .. }), "{err}");
    let err = client
        .typed_archived::<(u8, u8), u8>(hazards, "archived_sum_typed")
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::WrongFormat { part: "result", .. }),
        "{err}"
    );
}

/// An archived result that fails validation (nested deeper than a host reads) is refused
/// in the runtime's words: what it was read as, why, and the export (before: the client
/// said "serialization error: bad result: …", neither the type nor the export).
#[test]
fn an_archived_result_refused_is_told_as_the_runtime_tells_it() {
    use memlink_example_types::zero_copy_types::Chain;
    let (_daemon, client, runtime) = both_ways(&["hazards"]);
    let in_process = Caller::module(&runtime, "hazards").unwrap();
    let here = runtime
        .typed::<(u32,), memlink_runtime::Rkyv<Chain>>(in_process, "archived_chain")
        .unwrap();
    let hazards = client.module("hazards").unwrap();
    let there = client
        .typed_archived::<(u32,), Chain>(hazards, "archived_chain")
        .unwrap();
    assert!(here.call(&(10,)).is_ok() && there.call(&(10,)).is_ok());
    let reason = |e: RuntimeError| match e {
        RuntimeError::Codec { reason, .. } => reason,
        other => panic!("{other}"),
    };
    let here = reason(here.call(&(200,)).unwrap_err());
    let there = reason(there.call(&(200,)).unwrap_err());
    // The part after the type each reads it as.
    let why = |r: &str| r.split_once("`: ").map(|(_, why)| why.to_owned());
    assert_eq!(why(&here), why(&there), "{here}\n{there}");
    assert!(
        there.starts_with("cannot read its result as `memlink_client::typed::ArchivedReply<")
            && there.contains("bad archived result: validation failed: pointers nested deeper than the depth limit of 128")
            && there.contains("(the export is `archived_chain(n: u32)"),
        "{there}"
    );
}

/// An archived handle's call that a restarted daemon never took is sent once more on a
/// new connection, as a typed handle's is (before: the first archived call after the
/// restart failed with `DaemonGone`, "its socket closed before it took the call").
#[test]
fn an_archived_call_after_the_daemon_restarted_is_sent_again() {
    let mut daemon = Daemon::start(Setup::modules(&["zero_copy"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let zc = client.module("zero_copy").unwrap();
    let scale = client
        .archived::<(Vec<Point>, f32), Vec<Point>>(zc, "scale")
        .unwrap();
    let point = Point {
        x: 1.0,
        y: 2.0,
        z: 3.0,
    };
    assert_eq!(scale.call(&(vec![point], 2.0)).unwrap().get()[0].x, 2.0);
    assert!(daemon.terminate().success());
    let dir = std::mem::replace(&mut daemon.dir, common::scratch_dir());
    let _again = Daemon::start_in(dir, Setup::modules(&["zero_copy"]));
    assert_eq!(scale.call(&(vec![point], 3.0)).unwrap().get()[0].x, 3.0);
}

/// A module name longer than a call's slot carries (64 bytes) is one place the two
/// callers differ, as `Caller` and docs/daemon.md say: the runtime loads and calls a
/// module under it, the client refuses it with `RuntimeError::Daemon` naming the limit
/// (and `memlink serve` refuses to serve a module under it).
#[test]
fn a_module_name_past_64_bytes_works_in_process_and_is_refused_through_the_daemon() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let client = Client::connect(&daemon.socket).unwrap();
    let runtime = Runtime::with_local_resolver();
    let long = "b".repeat(65);
    let path = module_path("basic");
    let here = runtime
        .load_as(ModuleRef::parse(path.to_str().unwrap()).unwrap(), &long)
        .unwrap();
    assert_eq!(
        runtime
            .call_typed::<_, u32>(here, "add", &(2u32, 3u32))
            .unwrap(),
        5
    );
    match client.module(&long) {
        Err(RuntimeError::Daemon { reason }) => {
            assert!(
                reason.contains("(65 bytes) is longer than 64 bytes"),
                "{reason}"
            )
        }
        other => panic!("a 65-byte name through the daemon gave {other:?}"),
    }
}

/// An output is read in place in one of its connection's slots until it drops, as
/// `Caller`'s docs say: a client holding as many outputs as it has slots has none left
/// for its next call, which waits for one until its deadline, then times out; one
/// dropped serves the call after it.
#[test]
fn a_client_holding_an_output_in_every_slot_waits_for_one_to_drop() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let client = Client::with_config(&daemon.socket, ClientConfig::default().slots(2)).unwrap();
    let basic = client.module("basic").unwrap();
    let first = client.call(basic, "echo", b"one").unwrap();
    let second = client.call(basic, "echo", b"two").unwrap();
    let options = CallOptions::default().timeout(Duration::from_millis(300));
    let held = client
        .call_with(basic, "echo", b"three", &options)
        .map(|o| o.to_vec());
    let err = held.unwrap_err();
    assert!(
        matches!(err.module_error(), Some(ModuleError::Timeout(_))),
        "a call with every slot held gave {err:?}"
    );
    assert_eq!((&*first, &*second), (&b"one"[..], &b"two"[..]));
    drop(first);
    assert_eq!(&*client.call(basic, "echo", b"three").unwrap(), b"three");
}

/// A thread that holds every slot itself (argument buffers kept for reuse, outputs kept)
/// would wait for ever for a slot only it can free: with no call in flight for
/// `ClientConfig::slot_wait`, the wait ends with `RuntimeError::SlotsHeld`, which says
/// so. The client still serves once a slot is dropped.
#[test]
fn a_thread_holding_every_slot_itself_is_told_so_instead_of_waiting_for_ever() {
    let daemon = Daemon::start(Setup::modules(&["basic"]));
    let config = ClientConfig::default()
        .slots(2)
        .slot_wait(Duration::from_millis(200));
    let client = Client::with_config(&daemon.socket, config).unwrap();
    let basic = client.module("basic").unwrap();
    let buffer = client.arg_buffer(8).unwrap();
    let output = client.call(basic, "echo", b"kept").unwrap();
    let slots_held = |what: &str, result: Result<Vec<u8>, RuntimeError>| {
        let err = result.unwrap_err();
        assert!(
            matches!(err, RuntimeError::SlotsHeld { slots: 2 }),
            "{what} with every slot held by this thread gave {err:?}"
        );
        assert!(err.to_string().contains("2 slots is held"), "{err}");
    };
    slots_held(
        "a call",
        client.call(basic, "echo", b"x").map(|o| o.to_vec()),
    );
    slots_held("arg_buffer", client.arg_buffer(8).map(|b| b[..].to_vec()));
    let mut batch = client.batch();
    slots_held(
        "a batch's push",
        batch.push(basic, "echo", b"x").map(|()| Vec::new()),
    );
    drop(batch);
    assert_eq!(&*output, b"kept");
    drop(buffer);
    assert_eq!(&*client.call(basic, "echo", b"again").unwrap(), b"again");
}

/// A wait for a slot while a call is in flight is no slot held for ever: the call's end
/// frees it, so the wait lasts as long as the call, past `slot_wait`.
#[test]
fn a_wait_for_a_slot_a_call_in_flight_frees_lasts_past_slot_wait() {
    let daemon = Daemon::start(Setup::modules(&["basic", "hazards"]));
    let config = ClientConfig::default()
        .slots(1)
        .slot_wait(Duration::from_millis(100));
    let client = Client::with_config(&daemon.socket, config).unwrap();
    let hazards = client.module("hazards").unwrap();
    let basic = client.module("basic").unwrap();
    std::thread::scope(|s| {
        let long = s.spawn(|| client.call_typed::<_, u64>(hazards, "hold", &(600u64,)));
        daemon.wait_log("holding");
        // `hold` runs for 600 ms, six times `slot_wait`, in the one slot.
        let echoed = client.call(basic, "echo", b"after").map(|o| o.to_vec());
        assert_eq!(echoed.unwrap(), b"after");
        long.join().unwrap().unwrap();
    });
}

/// Typed arguments whose `Serialize` can run only once (they drain an iterator), too
/// long for the client's slot: written whole, from one run, to a slot that holds them.
/// Before, the slot's attempt ran it, and the arguments made apart were the empty list
/// the second run wrote, which the module counted as 0 with success.
#[test]
fn typed_arguments_that_can_be_serialized_only_once_are_sent_whole() {
    use std::cell::{Cell, RefCell};

    struct Drained(RefCell<Option<std::ops::Range<u64>>>, Cell<u32>);
    impl serde::Serialize for Drained {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.1.set(self.1.get() + 1);
            s.collect_seq(self.0.borrow_mut().take().unwrap_or(0..0))
        }
    }
    let daemon = Daemon::start(Setup::modules(&["hazards"]));
    let config = ClientConfig::default().slot_size(64 << 10);
    let client = Client::with_config(&daemon.socket, config).unwrap();
    let hazards = client.module("hazards").unwrap();
    for n in [10u64, 100_000] {
        let args = (Drained(RefCell::new(Some(0..n)), Cell::new(0)),);
        let counted: u64 = client.call_typed(hazards, "count_list", &args).unwrap();
        assert_eq!(counted, n);
        assert_eq!(args.0 .1.get(), 1, "serialized once");
    }
}
