//! Typed handles through the real runtime and real modules: resolved once, their formats
//! checked against the caller's types when they are made, then called with values.

mod common;

use common::{load_all, module_path};
use memlink_example_types::zero_copy_types::Point;
use memlink_runtime::reload::ReloadPolicy;
use memlink_runtime::{
    CallOptions, ModuleError, ModuleRef, Rkyv, Runtime, RuntimeConfig, RuntimeError,
};
use serde::{Deserialize, Serialize};

/// The `basic` module's record, as a host declares it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct UserData {
    id: u32,
    name: String,
    score: u64,
}

#[test]
fn the_right_types_call_through_a_handle() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["basic"]);
    let add = rt.typed::<(u32, u32), u32>(h[0], "add").unwrap();
    assert_eq!(add.call(&(2, 3)).unwrap(), 5);
    assert_eq!(add.call(&(40, 2)).unwrap(), 42, "a handle is reused");
    // A raw method: one string argument in, the string out.
    let echo = rt.typed::<str, String>(h[0], "echo").unwrap();
    assert_eq!(echo.call("hello").unwrap(), "hello");
    // Bytes of every length, one byte too (serde writes it as an array of one integer).
    let process = rt.typed::<[u8], Vec<u8>>(h[0], "async_process").unwrap();
    for data in [&b""[..], b"q", b"qr", &[0xff; 300]] {
        let out = process.call(data).unwrap();
        assert_eq!(out.len(), data.len(), "{data:?}");
        let by_name: Vec<u8> = rt
            .call_typed(h[0], "async_process", &data.to_vec())
            .unwrap();
        assert_eq!(by_name, out, "{data:?}");
    }
    // No arguments.
    let ping = rt.typed::<(), String>(h[0], "ping").unwrap();
    assert_eq!(ping.call(&()).unwrap(), "pong");
    // A struct in and out.
    let process = rt
        .typed::<(UserData,), UserData>(h[0], "process_user")
        .unwrap();
    let out = process
        .call(&(UserData {
            id: 1,
            name: "ada".into(),
            score: 21,
        },))
        .unwrap();
    assert_eq!((out.name.as_str(), out.score), ("ADA", 42));
    // Options travel with the call.
    let info = rt
        .typed::<(), (f32, u64, u64, Option<u64>, u32, bool)>(h[0], "context_info")
        .unwrap();
    let seen = info
        .call_with(&(), &CallOptions::default().trace(7, 9))
        .unwrap();
    assert_eq!((seen.1, seen.2), (7, 9));
}

#[test]
fn the_wrong_types_are_errors_that_name_the_method() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["basic"]);
    // Arguments of the wrong type reach the module, which says what it expected.
    let add = rt.typed::<(String,), u32>(h[0], "add").unwrap();
    let err = add.call(&("two".to_owned(),)).unwrap_err();
    let Some(ModuleError::Serialize(message)) = err.module_error() else {
        panic!("expected a decode error from the module, got {err}");
    };
    assert!(message.starts_with("bad arguments"), "{message}");
    assert!(err.to_string().contains("basic::add"), "{err}");
    // A result of the wrong type is the host's decode error, naming the method.
    let add = rt.typed::<(u32, u32), String>(h[0], "add").unwrap();
    let err = add.call(&(2, 3)).unwrap_err();
    assert!(matches!(err, RuntimeError::Codec { .. }), "{err}");
    assert!(err.to_string().starts_with("basic::add: "), "{err}");
    // An archive type for a MessagePack result is refused before any call.
    let err = rt.typed::<(u32, u32), Rkyv<u32>>(h[0], "add").unwrap_err();
    assert!(
        matches!(err, RuntimeError::WrongFormat { part: "result", .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("basic::add: its result is msgpack, which this handle does not speak: "),
        "{err}"
    );
    // Integers for a method that takes bytes are refused before any call, even ones
    // that would fit in a byte. Before, `(2u32, 3u32)` reached `echo` as the bytes
    // `[2, 3]`: encoded, MessagePack cannot tell it from a `Vec<u8>`.
    let echo = rt.typed::<(u32, u32), Vec<u8>>(h[0], "echo").unwrap();
    let err = echo.call(&(2, 3)).unwrap_err();
    assert!(matches!(err, RuntimeError::Codec { .. }), "{err}");
    assert!(
        err.to_string().starts_with("basic::echo: ") && err.to_string().contains("one string"),
        "{err}"
    );
    let err = rt
        .call_typed::<_, Vec<u8>>(h[0], "echo", &vec![2u32, 3])
        .unwrap_err();
    assert!(matches!(err, RuntimeError::Codec { .. }), "{err}");
    let echoed: Vec<u8> = rt.call_typed(h[0], "echo", &vec![2u8, 3]).unwrap();
    assert_eq!(echoed, [2, 3]);
    // The module keeps serving.
    let sum: u32 = rt.call_typed(h[0], "add", &(1u32, 1u32)).unwrap();
    assert_eq!(sum, 2);
}

/// A result read as a type it is not says that it is the result, what it was read as
/// and what the export returns. Before, it was the decoder's words alone
/// (`basic::process_user: cannot decode MessagePack: wrong msgpack marker FixMap(3)`),
/// and a raw text result was reported as the list of bytes it was offered as last
/// (`... serialization error: ... wrong msgpack marker FixArray(4)`).
#[test]
fn a_result_read_as_the_wrong_type_names_the_type_and_the_export() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["basic"]);
    let user = UserData {
        id: 1,
        name: "ada".into(),
        score: 2,
    };
    let process = rt.typed::<(UserData,), u32>(h[0], "process_user").unwrap();
    let err = process.call(&(user,)).unwrap_err();
    assert!(matches!(err, RuntimeError::Codec { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with("basic::process_user: cannot read its result as `u32`: "),
        "{text}"
    );
    assert!(
        text.ends_with("(the export is `process_user(user: UserData) -> UserData`)"),
        "{text}"
    );
    // A raw result, text: reported as text, not as the bytes it is made of.
    let ping = rt.typed::<(), u64>(h[0], "ping").unwrap();
    let text = ping.call(&()).unwrap_err().to_string();
    assert!(
        text.starts_with(
            "basic::ping: cannot read its result as `u64`: the result is raw UTF-8 text: "
        ),
        "{text}"
    );
    assert!(
        text.ends_with("(the export is `ping() -> String`)"),
        "{text}"
    );
    assert!(!text.contains("FixArray"), "{text}");
    assert!(!text.contains("serialization error"), "{text}");
}

#[test]
fn a_method_taking_an_archive_refuses_a_messagepack_handle() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["zero_copy"]);
    let err = rt
        .typed::<(Vec<Point>,), (f32, f32, f32, u64)>(h[0], "centroid")
        .unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::WrongFormat {
                part: "arguments",
                format: memlink_runtime::Format::Archived,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("zero_copy::centroid"),
        "names the method: {text}"
    );
    assert!(text.contains("archived"), "names its format: {text}");
    assert!(
        text.contains("Runtime::archived"),
        "says what to use instead: {text}"
    );
    // What it says to use works.
    let centroid = rt
        .archived::<(Vec<Point>,), (f32, f32, f32, u64)>(h[0], "centroid")
        .unwrap();
    let p = Point {
        x: 1.0,
        y: 2.0,
        z: 3.0,
    };
    let (x, y, z, _) = centroid.call(&(vec![p, p],)).unwrap();
    assert_eq!((x, y, z), (1.0, 2.0, 3.0));
}

/// A handle made before a reload that changed its method (allowed by the policy) is
/// refused, naming the method and what it is now, instead of reading the new result
/// as the old type: `greeter` 2's `greet` returns the greeting's raw bytes, version 3's
/// the name's length as a number, which the handle read as the text "\u{3}". A change
/// of signature alone, the formats the same, is refused as well.
#[test]
fn a_typed_handle_refuses_a_method_a_reload_changed() {
    let greeter = |v: u32| ModuleRef::from_path(module_path(&format!("greeter_v{v}")));
    let rt = Runtime::with_local_resolver();
    let h = rt.load_as(greeter(2), "greeter").unwrap();
    let greet = rt.typed::<str, String>(h, "greet").unwrap();
    let add = rt.typed::<(u32, u32), u32>(h, "add").unwrap();
    assert_eq!(greet.call("ada").unwrap(), "hello, ada");

    let allowed = ReloadPolicy::default().allow_changes(true);
    rt.reload_with(h, greeter(3), &allowed).unwrap();
    let err = greet.call("ada").unwrap_err();
    let RuntimeError::MethodChanged {
        module,
        method,
        version,
        signature,
    } = &err
    else {
        panic!("expected the change to be refused, got {err:?}");
    };
    assert_eq!((module.as_str(), method.as_str()), ("greeter", "greet"));
    assert_eq!(*version, rt.module_info(h).unwrap().version);
    assert_eq!(signature.as_deref(), Some("greet(name: String) -> u32"));
    assert!(err.to_string().contains("make it again"), "{err}");
    assert!(
        err.to_string().contains("the module is now version"),
        "{err}"
    );
    // Made again, a handle reads what the method returns now.
    let greet = rt.typed::<str, u32>(h, "greet").unwrap();
    assert_eq!(greet.call("ada").unwrap(), 3);
    // `add` changed its types but not its formats (MessagePack in and out): the bytes
    // a handle made before sends still decode, but mean what the new signature says
    // (swapped parameters would be read swapped), so it is refused too. Before, the new
    // method ran with them.
    let err = add.call(&(2, 3)).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MethodChanged { method, signature, .. }
            if method == "add" && signature.as_deref() == Some("add(a: u64, b: u64) -> u64")),
        "expected the change to be refused, got {err:?}"
    );
    let add = rt.typed::<(u64, u64), u64>(h, "add").unwrap();
    assert_eq!(add.call(&(2, 3)).unwrap(), 5);
}

/// The same for an archived handle: `greeter` 3's `measure` takes version 2's
/// parameters swapped, an archive of `(Vec<u8>, String)` where version 2's is of
/// `(String, Vec<u8>)`. Before, the archive a handle made for version 2 wrote went to
/// it, and
/// the module's validation refused it in words about rkyv's layout (`subtree pointer
/// overran range`), not about the handle: the fingerprint checked when it was made is
/// checked again on each call.
#[test]
fn an_archived_handle_refuses_a_method_a_reload_changed() {
    let greeter = |v: u32| ModuleRef::from_path(module_path(&format!("greeter_v{v}")));
    let rt = Runtime::with_local_resolver();
    let h = rt.load_as(greeter(2), "greeter").unwrap();
    let measure = rt.archived::<(String, Vec<u8>), u64>(h, "measure").unwrap();
    let args = ("ab".to_owned(), vec![1, 2, 3]);
    assert_eq!(measure.call(&args).unwrap(), 2003);

    let allowed = ReloadPolicy::default().allow_changes(true);
    rt.reload_with(h, greeter(3), &allowed).unwrap();
    let err = measure.call(&args).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::MethodChanged { method, .. } if method == "measure"),
        "expected the change to be refused, got {err:?}"
    );
    // Made again for the new arguments, a handle calls it.
    let measure = rt.archived::<(Vec<u8>, String), u64>(h, "measure").unwrap();
    assert_eq!(
        measure.call(&(vec![1, 2, 3], "ab".to_owned())).unwrap(),
        2003
    );
}

/// One argument passed alone, not in a tuple of one: a typed handle says, before the
/// module sees it, to pass `(x,)`. Sent as it is by a plain call, the module says its
/// arguments are one array of the parameters; a struct sent as a map (read as the
/// arguments by name) is told to go inside an array.
#[test]
fn one_argument_alone_is_told_to_be_a_tuple_of_one() {
    let (rt, h) = load_all(RuntimeConfig::default(), &["basic"]);
    let h = h[0];
    let alone = rt.typed::<u32, u32>(h, "may_fail").unwrap();
    match alone.call(&5) {
        Err(RuntimeError::Codec { method, reason, .. }) => {
            assert_eq!(method, "may_fail");
            assert!(
                reason.contains("`u32`") && reason.contains("`(x,)`"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let tuple = rt.typed::<(u32,), u32>(h, "may_fail").unwrap();
    assert_eq!(tuple.call(&(5,)).unwrap(), 10);

    let said = |method: &str, args: Vec<u8>| match rt.call(h, method, &args) {
        Err(RuntimeError::Call {
            error: ModuleError::Serialize(m),
            ..
        }) => m,
        other => panic!("{method}: {other:?}"),
    };
    let m = said("may_fail", common::mp(&5u32));
    assert!(m.contains("one MessagePack array of the parameters"), "{m}");
    let user = UserData {
        id: 1,
        name: "ada".into(),
        score: 2,
    };
    let m = said("process_user", rmp_serde::to_vec_named(&user).unwrap());
    assert!(
        m.contains("unknown field") && m.contains("inside an array"),
        "{m}"
    );
    // Raw arguments are no MessagePack: a raw export's refusal says nothing of arrays.
    let m = said("echo", vec![0xff, 0xfe]);
    assert!(
        m.contains("not UTF-8") && !m.contains("MessagePack array"),
        "{m}"
    );
    // As one argument in a tuple, it is read as the struct.
    let m = rt
        .typed::<(UserData,), UserData>(h, "process_user")
        .unwrap();
    assert_eq!(m.call(&(user,)).unwrap().name, "ADA");
}

/// `(2, 3)` the first time it is serialized, `(100, 100)` after.
#[derive(Default)]
struct Once(std::cell::Cell<bool>);

impl serde::Serialize for Once {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.replace(true) {
            false => (2u64, 3u64).serialize(s),
            true => (100u64, 100u64).serialize(s),
        }
    }
}

/// `Runtime::call_typed` by name follows reloads that change the method's signature,
/// as a call by name does: a reload that lands between its look-up of the method and
/// the call makes it look again, and call with the arguments it encoded (the method
/// takes MessagePack in both versions). Before, such a call failed with
/// `MethodChanged`, telling the caller to make again a handle it never made.
#[test]
fn a_typed_call_by_name_follows_reloads_that_change_the_method() {
    let greeter = |v: u32| ModuleRef::from_path(module_path(&format!("greeter_v{v}")));
    let rt = Runtime::with_local_resolver();
    let h = rt.load_as(greeter(2), "greeter").unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let allowed = ReloadPolicy::default().allow_changes(true);
    std::thread::scope(|s| {
        let callers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    let mut calls = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // `add(u32, u32) -> u32` in version 2, `add(u64, u64) -> u64` in
                        // 3: the same answer from either, the arguments serialized once
                        // (a second run would send `(100, 100)`).
                        let sum: u64 = rt.call_typed(h, "add", &Once::default()).unwrap();
                        assert_eq!(sum, 5);
                        calls += 1;
                    }
                    calls
                })
            })
            .collect();
        for i in 0..60 {
            rt.reload_with(h, greeter(2 + i % 2), &allowed).unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for caller in callers {
            assert!(caller.join().unwrap() > 0);
        }
    });
}
