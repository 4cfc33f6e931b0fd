//! Calls into the real `basic` example module, loaded through the runtime.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{de, load, mp};
use memlink_runtime::{CallOptions, Format, ModuleError, ModuleRef, ModuleSettings, RuntimeError};
use serde::{Deserialize, Serialize};

fn module_error(r: Result<memlink_runtime::CallOutput, RuntimeError>) -> ModuleError {
    match r {
        Err(RuntimeError::Call { error, .. }) => error,
        Err(other) => panic!("expected a module error, got {other}"),
        Ok(out) => panic!("expected an error, got {:?}", out.as_bytes()),
    }
}

#[test]
fn raw_echo_returns_the_bytes() {
    let (rt, h) = load("basic");
    assert_eq!(rt.call(h, "echo", b"hello").unwrap(), b"hello");
    assert_eq!(rt.call(h, "echo", b"").unwrap(), b"");
}

#[test]
fn msgpack_arguments_as_array_map_or_typed() {
    let (rt, h) = load("basic");
    assert_eq!(de::<u32>(&rt.call(h, "add", &[0x92, 2, 3]).unwrap()), 5);
    let named: BTreeMap<&str, u32> = [("a", 40), ("b", 2)].into();
    assert_eq!(de::<u32>(&rt.call(h, "add", &mp(&named)).unwrap()), 42);
    assert_eq!(de::<u32>(&rt.call(h, "may_fail", &[0x91, 7]).unwrap()), 14);
    let sum: u32 = rt.call_typed(h, "add", &(2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
    let echoed: String = rt.call_typed(h, "echo", "typed").unwrap();
    assert_eq!(echoed, "typed");
    let total: i64 = rt.call_typed(h, "sum", &(vec![1i64, 2, 3],)).unwrap();
    assert_eq!(total, 6, "renamed export");
}

#[test]
fn zero_argument_exports_take_nothing_or_an_empty_array() {
    let (rt, h) = load("basic");
    assert_eq!(rt.call(h, "ping", b"").unwrap(), b"pong");
    assert_eq!(rt.call(h, "ping", &[0x90]).unwrap(), b"pong");
    let err = module_error(rt.call(h, "ping", &[0x91, 1]));
    assert!(matches!(err, ModuleError::Serialize(_)), "{err}");
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct UserData {
    id: u32,
    name: String,
    score: u64,
}

#[test]
fn structs_travel_both_ways() {
    let (rt, h) = load("basic");
    let user = UserData {
        id: 9,
        name: "ada".into(),
        score: 21,
    };
    let back: UserData = rt.call_typed(h, "process_user", &(&user,)).unwrap();
    assert_eq!(
        back,
        UserData {
            id: 9,
            name: "ADA".into(),
            score: 42
        }
    );
}

#[test]
fn every_error_variant_crosses_with_its_message() {
    let (rt, h) = load("basic");
    let cases = [
        ("quota", ModuleError::QuotaExceeded),
        (
            "call_failed",
            ModuleError::CallFailed("downstream refused".into()),
        ),
        ("timeout", ModuleError::Timeout(Duration::from_millis(250))),
        ("serialize", ModuleError::Serialize("bad shape".into())),
        ("unavailable", ModuleError::ServiceUnavailable),
        ("invalid_method", ModuleError::InvalidMethod),
        (
            "module_not_found",
            ModuleError::ModuleNotFound("ghost".into()),
        ),
        ("depth", ModuleError::MaxCallDepthExceeded),
        (
            "other",
            ModuleError::Failed("asked to fail with `other`".into()),
        ),
    ];
    for (kind, expected) in cases {
        assert_eq!(
            module_error(rt.call(h, "fail", kind.as_bytes())),
            expected,
            "{kind}"
        );
    }
    assert_eq!(
        module_error(rt.call(h, "may_fail", &mp(&(101,)))),
        ModuleError::QuotaExceeded
    );
    let err = rt.call(h, "add", &mp(&(u32::MAX, 1u32))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "basic::add failed: 4294967295 + 1 overflows u32"
    );
}

#[test]
fn a_panic_is_an_error_and_the_module_keeps_serving() {
    let (rt, h) = load("basic");
    for round in 0..50 {
        let err = module_error(rt.call(h, "boom", format!("kaboom {round}").as_bytes()));
        let ModuleError::Panic(message) = err else {
            panic!("expected a panic error, got {err}")
        };
        assert!(
            message.starts_with(&format!("kaboom {round} (at ")),
            "{message}"
        );
        assert!(
            message.contains("basic.rs"),
            "the location is included: {message}"
        );
        assert_eq!(
            de::<u32>(&rt.call(h, "add", &mp(&(round, 1))).unwrap()),
            round + 1
        );
    }
}

#[test]
fn panics_while_decoding_or_encoding_are_caught_too() {
    let (rt, h) = load("basic");
    let err = module_error(rt.call(h, "touchy", &mp(&(13u32,))));
    assert!(
        matches!(&err, ModuleError::Panic(m) if m.contains("unlucky argument")),
        "{err}"
    );
    assert_eq!(
        de::<u32>(&rt.call(h, "touchy", &mp(&(12u32,))).unwrap()),
        12
    );
    let err = module_error(rt.call(h, "explosive", b""));
    assert!(
        matches!(&err, ModuleError::Panic(m) if m.starts_with("cannot encode this")),
        "{err}"
    );
    assert_eq!(rt.call(h, "echo", b"still here").unwrap(), b"still here");
}

#[test]
fn unknown_methods_are_named() {
    let (rt, h) = load("basic");
    let err = rt.call(h, "nope", b"").unwrap_err();
    assert!(
        matches!(&err, RuntimeError::UnknownMethod { method, module } if method == "nope" && module == "basic")
    );
    assert_eq!(err.to_string(), "module `basic` has no method `nope`");
}

#[test]
fn every_method_is_found_by_its_name_and_no_near_miss_is() {
    // `basic`'s names are all at most 16 bytes (compared by their first and last eight
    // bytes); `datasets` has longer ones, compared whole.
    for module in ["basic", "datasets"] {
        let (rt, h) = load(module);
        let methods = rt.methods(h).unwrap();
        let names: Vec<&str> = methods.iter().map(|m| m.name.as_str()).collect();
        assert!(module == "basic" || names.iter().any(|n| n.len() > 16));
        for (i, name) in names.iter().enumerate() {
            let method = rt.method(h, name).unwrap_or_else(|e| panic!("{name}: {e}"));
            // The method at the name's own place in the table, with its id.
            let shown = format!("{method:?}");
            let (place, id) = (format!("index: {i},"), format!("id: {}", methods[i].id));
            assert!(
                shown.contains(&place) && shown.contains(&id),
                "{name}: {shown}"
            );
            let bytes = name.as_bytes();
            let mut near = vec![
                name[..name.len() - 1].to_owned(),
                format!("{name}_"),
                format!("_{name}"),
                name.to_uppercase(),
            ];
            // One byte changed at each position: the first, the middle (which the first
            // and last eight bytes of a longer name do not cover) and the last.
            for at in [0, bytes.len() / 2, bytes.len() - 1] {
                let mut changed = bytes.to_vec();
                changed[at] = if changed[at] == b'x' { b'y' } else { b'x' };
                near.push(String::from_utf8(changed).unwrap());
            }
            near.push(format!("{}é", &name[..name.len() - 1]));
            for miss in near.iter().filter(|m| !names.contains(&m.as_str())) {
                let err = rt.method(h, miss).unwrap_err();
                assert!(
                    matches!(&err, RuntimeError::UnknownMethod { method, .. } if method == miss),
                    "{miss}: {err}"
                );
                assert!(matches!(
                    rt.call(h, miss, b""),
                    Err(RuntimeError::UnknownMethod { .. })
                ));
            }
        }
        assert!(rt.method(h, "").is_err());
    }
}

#[test]
fn garbage_arguments_say_what_the_decoder_saw() {
    let (rt, h) = load("basic");
    for bad in [
        &b"\xc1"[..],
        b"\x92\x01",
        b"\x92\xa1x\x01",
        b"\x93\x01\x02\x03",
        b"\x92\x01\x02\xff",
    ] {
        let err = module_error(rt.call(h, "add", bad));
        let ModuleError::Serialize(m) = &err else {
            panic!("{bad:?} gave {err}")
        };
        assert!(m.starts_with("bad arguments: "), "{m}");
    }
    let named: BTreeMap<&str, u32> = [("a", 1), ("c", 2)].into();
    let err = module_error(rt.call(h, "add", &mp(&named)));
    assert!(err.to_string().contains("unknown field `c`"), "{err}");
    let err = module_error(rt.call(h, "echo", b"\xff\xfe"));
    assert!(err.to_string().contains("not UTF-8"), "{err}");
}

#[test]
fn results_of_any_size() {
    let (rt, h) = load("basic");
    let small = rt.call(h, "fill", &mp(&(7u8, 100u32))).unwrap();
    assert!(small.is_in_arena(), "a small result is read in place");
    assert_eq!(&small[..], &[7u8; 100][..]);
    let big = rt.call(h, "fill", &mp(&(9u8, 3_000_000u32))).unwrap();
    assert!(!big.is_in_arena(), "3 MB does not fit a 64 KiB arena");
    assert_eq!(big.len(), 3_000_000);
    assert!(big.iter().all(|&b| b == 9));
}

#[test]
fn the_context_reaches_the_module() {
    let (rt, h) = load("basic");
    let (pressure, trace, span, remaining, depth, caller): (f32, u64, u64, Option<u64>, u32, bool) =
        rt.call_typed(h, "context_info", &()).unwrap();
    assert_eq!(
        (pressure, trace, span, remaining, depth, caller),
        (0.0, 0, 0, None, 0, true)
    );
}

#[test]
fn call_options_reach_the_context() {
    let (rt, h) = load("basic");
    let options = CallOptions::default()
        .trace(7, 9)
        .timeout(Duration::from_secs(5));
    let out = rt.call_with(h, "context_info", b"", &options).unwrap();
    let (_, trace, span, remaining, _, _): (f32, u64, u64, Option<u64>, u32, bool) = de(&out);
    assert_eq!((trace, span), (7, 9));
    let remaining = remaining.expect("a deadline was set");
    assert!(
        (4_000..=5_000).contains(&remaining),
        "{remaining} ms left of 5 s"
    );
    let by_value = rt
        .call_with(h, "owned_context", &mp(&(3u8,)), &options)
        .unwrap();
    assert_eq!(
        de::<(u8, u64)>(&by_value),
        (3, 7),
        "a by-value context carries the same ids"
    );
}

/// A call with default options takes a path of its own (`CallMeta::PLAIN`); each option
/// alone sends a call down the other, and reaches the module.
#[test]
fn each_option_alone_reaches_the_context() {
    let (rt, h) = load("basic");
    let info = |options: &CallOptions| {
        let out = rt.call_with(h, "context_info", b"", options).unwrap();
        let (_, trace, span, remaining, depth, _): (f32, u64, u64, Option<u64>, u32, bool) =
            de(&out);
        (trace, span, remaining.is_some(), depth)
    };
    let mut span_only = CallOptions::default();
    span_only.span_id = 3;
    let mut deadline_only = CallOptions::default();
    deadline_only.deadline = Some(std::time::Instant::now() + Duration::from_secs(5));
    assert_eq!(info(&CallOptions::default()), (0, 0, false, 0));
    assert_eq!(info(&CallOptions::default().trace(5, 0)), (5, 0, false, 0));
    assert_eq!(info(&span_only), (0, 3, false, 0));
    assert_eq!(info(&deadline_only), (0, 0, true, 0));

    // A module with a default timeout of its own: default options take the other path
    // too, and the call has the module's deadline.
    let timed = rt
        .load_with(
            ModuleRef::from_path(common::module_copy("basic", "basic_default_timeout")),
            &ModuleSettings::default()
                .name("timed")
                .default_timeout(Duration::from_secs(5)),
        )
        .unwrap();
    let out = rt.call(timed, "context_info", b"").unwrap();
    let (_, _, _, remaining, _, _): (f32, u64, u64, Option<u64>, u32, bool) = de(&out);
    assert!(remaining.is_some_and(|ms| ms <= 5_000), "{remaining:?}");
}

#[test]
fn a_method_resolved_once_is_called_by_index() {
    let (rt, h) = load("basic");
    let add = rt.method(h, "add").unwrap();
    for i in 0..100u32 {
        let out = rt
            .call_method(add, &mp(&(i, i)), &CallOptions::default())
            .unwrap();
        assert_eq!(de::<u32>(&out), 2 * i);
    }
    assert!(matches!(
        rt.method(h, "nope"),
        Err(RuntimeError::UnknownMethod { .. })
    ));
    rt.unload(h).unwrap();
    assert!(matches!(
        rt.call_method(add, b"", &CallOptions::default()),
        Err(RuntimeError::UnknownHandle(_))
    ));
}

#[test]
fn async_exports_run_on_the_module_executor() {
    let (rt, h) = load("basic");
    let started = std::time::Instant::now();
    let out: Vec<u8> = rt
        .call_typed(h, "async_process", &(vec![1u8, 2, 3],))
        .unwrap();
    assert_eq!(out, vec![1, 2, 3]);
    assert!(
        started.elapsed() >= Duration::from_millis(10),
        "the tokio sleep really slept"
    );
}

#[test]
fn the_method_table_lists_every_export() {
    let (rt, h) = load("basic");
    let methods = rt.methods(h).unwrap();
    let find = |n: &str| {
        methods
            .iter()
            .find(|m| m.name == n)
            .unwrap_or_else(|| panic!("{n} missing"))
    };
    assert_eq!(find("echo").id, 0xd49d_d484);
    assert_eq!(find("add").id, 0x3b39_1274);
    assert_eq!(
        (find("echo").args_format, find("echo").result_format),
        (Format::Raw, Format::Raw)
    );
    assert_eq!(
        (find("add").args_format, find("add").arg_count),
        (Format::MessagePack, 2)
    );
    assert!(find("async_process").is_async && !find("add").is_async);
    assert!(
        methods.iter().any(|m| m.name == "sum") && !methods.iter().any(|m| m.name == "add_all")
    );
    assert!(
        methods.windows(2).all(|w| w[0].id < w[1].id),
        "sorted by id"
    );
}

#[test]
fn unload_retires_the_module_and_reload_works() {
    let (rt, h) = load("basic");
    rt.unload(h).unwrap();
    assert!(matches!(
        rt.call(h, "echo", b"x"),
        Err(RuntimeError::UnknownHandle(_))
    ));
    assert!(matches!(rt.unload(h), Err(RuntimeError::UnknownHandle(_))));
    let again = rt
        .load(memlink_runtime::ModuleRef::from_path(common::module_path(
            "basic",
        )))
        .unwrap();
    assert_ne!(again, h);
    assert_eq!(rt.call(again, "echo", b"back").unwrap(), b"back");
    let out: Vec<u8> = rt
        .call_typed(again, "async_process", &(vec![4u8],))
        .unwrap();
    assert_eq!(out, [4], "the async runtime restarts after a shutdown");
}

/// A handle, or a method resolved through one, used with another runtime is refused
/// saying so, on every path: by name, by method, typed, and for what is not a call.
/// Before, it read "no loaded module with handle ...", as for an unloaded module.
#[test]
fn handles_belong_to_their_runtime() {
    let (rt, h) = load("basic");
    let (other, _) = load("arena_usage");
    let add = rt.method(h, "add").unwrap();
    let foreign = |err: RuntimeError| {
        assert!(
            matches!(err, RuntimeError::OtherRuntimesHandle(x) if x == h),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "handle {h} is another runtime's: a handle is good only in the runtime that \
                 loaded its module"
            )
        );
    };
    foreign(other.call(h, "echo", b"x").unwrap_err());
    foreign(
        other
            .call_method(add, &mp(&(2u32, 3u32)), &CallOptions::default())
            .unwrap_err(),
    );
    foreign(
        other
            .call_typed::<_, u32>(h, "add", &(2u32, 3u32))
            .unwrap_err(),
    );
    foreign(other.method(h, "add").unwrap_err());
    foreign(other.module_info(h).unwrap_err());
    foreign(other.unload(h).unwrap_err());
    assert_eq!(rt.call(h, "echo", b"x").unwrap(), b"x");
}
