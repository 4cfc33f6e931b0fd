//! The argument and result shapes the docs promise, through the real runtime and the
//! `shapes` fixture.

mod common;

use std::collections::{BTreeMap, HashMap};

use memlink_runtime::{CallOptions, ModuleError, Rkyv};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
enum Shape {
    Unit,
    Newtype(u32),
    Tuple(u8, String),
    Struct { a: u32, b: Option<String> },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type")]
enum Tagged {
    A { x: u32 },
    B { name: String },
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
enum Untagged {
    N(u64),
    S(String),
    L(Vec<u8>),
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Flat {
    id: u32,
    #[serde(flatten)]
    extra: HashMap<String, String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Inner {
    v: Option<f64>,
    tags: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
struct Outer {
    name: String,
    groups: Vec<HashMap<String, Vec<Option<Inner>>>>,
    pair: (i8, Shape),
    unit: (),
}

/// Serde types through MessagePack, both ways: enums of every kind (internally tagged
/// and untagged too), flattened and defaulted structs, maps, tuples, unit, 128-bit
/// integers, options, nested collections; raw and arena results; an archived result.
#[test]
fn serde_shapes_round_trip() {
    let (rt, h) = common::load("shapes");
    for s in [
        Shape::Unit,
        Shape::Newtype(7),
        Shape::Tuple(1, "x".into()),
        Shape::Struct { a: 2, b: None },
        Shape::Struct {
            a: 3,
            b: Some("b".into()),
        },
    ] {
        let back: Shape = rt.call_typed(h, "enum_echo", &(&s,)).unwrap();
        assert_eq!(back, s);
        let m = rt.typed::<(Shape,), Shape>(h, "enum_echo").unwrap();
        assert_eq!(m.call(&(s.clone(),)).unwrap(), s);
    }
    let v = vec![Shape::Unit, Shape::Newtype(1)];
    let back: Vec<Shape> = rt.call_typed(h, "enums", &(&v,)).unwrap();
    assert_eq!(back, v);
    for t in [Tagged::A { x: 1 }, Tagged::B { name: "n".into() }] {
        let back: Tagged = rt.call_typed(h, "tagged", &(&t,)).unwrap();
        assert_eq!(back, t);
    }
    for u in [
        Untagged::N(5),
        Untagged::S("s".into()),
        Untagged::L(vec![1, 2]),
    ] {
        let back: Untagged = rt.call_typed(h, "untagged", &(&u,)).unwrap();
        assert_eq!(back, u);
    }
    let f = Flat {
        id: 1,
        extra: HashMap::from([("k".to_owned(), "v".to_owned())]),
    };
    let back: Flat = rt.call_typed(h, "flat", &(&f,)).unwrap();
    assert_eq!(back, f);
    let back: BTreeMap<u32, String> = rt
        .call_typed(
            h,
            "maps",
            &(
                HashMap::from([("a".to_owned(), 1u32)]),
                HashMap::from([(2u32, "b".to_owned())]),
            ),
        )
        .unwrap();
    assert_eq!(back, BTreeMap::from([(1, "a".into()), (2, "b".into())]));
    type T = ((), (u8,), [u16; 3], (String, bool));
    let back: T = rt
        .call_typed(h, "tuples", &((9u8, ("s".to_owned(), true)), ()))
        .unwrap();
    assert_eq!(back, ((), (9,), [1, 2, 3], ("s".into(), true)));
    let back: (u128, i128, char) = rt
        .call_typed(h, "wide", &(u128::MAX, i128::MIN, 'é'))
        .unwrap();
    assert_eq!(back, (u128::MAX, i128::MIN, 'é'));
    let back: Option<u32> = rt.call_typed(h, "opt", &(None::<u32>,)).unwrap();
    assert_eq!(back, None);
    let back: Option<u32> = rt.call_typed(h, "opt", &(Some(1u32),)).unwrap();
    assert_eq!(back, Some(2));
    let back: (Option<u32>, Option<String>) =
        rt.call_typed(h, "opt2", &(None::<u32>, Some("y"))).unwrap();
    assert_eq!(back, (None, Some("y".into())));
    let (): () = rt.call_typed(h, "unit_arg", &((),)).unwrap();
    let back: u64 = rt.call_typed(h, "one_u64", &(u64::MAX,)).unwrap();
    assert_eq!(back, u64::MAX.wrapping_mul(3));
    let back: u32 = rt.call_typed(h, "one_vec", &(vec![1u32, 2, 3],)).unwrap();
    assert_eq!(back, 6);
    let back: Vec<u8> = rt.call_typed(h, "bytes_len", &[1u8, 2, 3][..]).unwrap();
    assert_eq!(back, [3, 2, 1]);
    let back: Option<Vec<u8>> = rt
        .call_typed(h, "opt_bytes", &(Some(vec![1u8, 2]),))
        .unwrap();
    assert_eq!(back, Some(vec![1, 2]));
    let back: String = rt.call_typed(h, "str_and_num", &("ab", 3u32)).unwrap();
    assert_eq!(back, "ababab");
    let back: (f32, f64) = rt.call_typed(h, "floats", &(1.5f32, f64::NAN)).unwrap();
    assert!(back.0 == 1.5 && back.1.is_nan());
    let o = Outer {
        name: "o".into(),
        groups: vec![HashMap::from([(
            "g".to_owned(),
            vec![
                None,
                Some(Inner {
                    v: Some(1.5),
                    tags: vec!["t".into()],
                }),
            ],
        )])],
        pair: (-1, Shape::Tuple(2, "z".into())),
        unit: (),
    };
    let back: Outer = rt.call_typed(h, "nested", &(&o,)).unwrap();
    assert_eq!(back, o);
    let back: String = rt.call_typed(h, "arena_str", "hi").unwrap();
    assert_eq!(back, "HI");
    let out = rt.call(h, "arena_str", b"hi").unwrap();
    assert_eq!(&*out, b"HI");
    let m = rt
        .typed::<(u32,), Rkyv<Vec<memlink_example_types::zero_copy_types::Point>>>(h, "points_rkyv")
        .unwrap();
    let pts = m.call(&(3,)).unwrap();
    assert_eq!(pts.get().len(), 3);
    assert_eq!(pts.get()[2].x.to_native(), 2.0);
}

/// An export's error and panic reach the host with their messages, wherever the panic
/// is (the function, its result's encoding, its argument's decoding, after an await);
/// the context reports the deadline given; a call of another module answers.
#[test]
fn errors_panics_and_context() {
    let (rt, h) = common::load("shapes");
    let err = rt.call(h, "fail_with", b"boom").unwrap_err();
    assert_eq!(
        err.module_error(),
        Some(&ModuleError::Failed("boom".into()))
    );
    let panicked = |method: &str, args: &[u8], words: &str| {
        let err = rt.call(h, method, args).unwrap_err();
        assert!(
            matches!(err.module_error(), Some(ModuleError::Panic(m)) if m.contains(words)),
            "{method}: {err}"
        );
    };
    panicked("panics", b"kaboom", "kaboom");
    panicked("panic_any_int", &common::mp(&()), "non-string payload");
    panicked("bad_ser", &common::mp(&()), "serialize panicked");
    panicked("bad_de", &common::mp(&(1u8,)), "deserialize panicked");
    panicked("async_panic", &common::mp(&(1u64,)), "late panic");
    let joined: String = rt.call_typed(h, "spawn_panic", &()).unwrap();
    assert!(joined.starts_with("join error"), "{joined}");
    let (left, expired, p): (Option<u64>, bool, f32) =
        rt.call_typed(h, "deadline_ms", &()).unwrap();
    assert_eq!((left, expired, p), (None, false, 0.0));
    let options = CallOptions::default().timeout(std::time::Duration::from_secs(30));
    let out = rt
        .call_with(h, "deadline_ms", &common::mp(&()), &options)
        .unwrap();
    let (left, expired, _): (Option<u64>, bool, f32) = common::de(&out);
    assert!(left.is_some_and(|l| l <= 30_000) && !expired, "{left:?}");
    let basic = memlink_runtime::ModuleRef::from_path(common::module_path("basic"));
    rt.load(basic).unwrap();
    let sum: u32 = rt.call_typed(h, "relay", &("basic", 2u32, 3u32)).unwrap();
    assert_eq!(sum, 5);
    let big: Vec<u64> = rt.call_typed(h, "big_vec", &(100_000u32,)).unwrap();
    assert_eq!(big.len(), 100_000);
}

/// Borrowed views beside each other: strings and an archived vector.
#[test]
fn archived_views() {
    use memlink_example_types::zero_copy_types::Point;
    let (rt, h) = common::load("shapes");
    let m = rt
        .archived::<(String, String), String>(h, "two_strs")
        .unwrap();
    assert_eq!(m.call(&("a".into(), "b".into())).unwrap(), "a+b");
    let m = rt
        .archived::<(String, Vec<Point>), String>(h, "sum_points")
        .unwrap();
    let p = Point {
        x: 1.0,
        y: 2.0,
        z: 3.0,
    };
    assert_eq!(m.call(&("l".into(), vec![p, p])).unwrap(), "l:2");
}

/// Typed handles from threads at once, with deadlines, beside panicking calls.
#[test]
fn typed_calls_from_threads() {
    let (rt, h) = common::load("shapes");
    let threads: Vec<_> = (0..4u64)
        .map(|i| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let m = rt.typed::<(u64,), u64>(h, "one_u64").unwrap();
                let o = CallOptions::default().timeout(std::time::Duration::from_secs(30));
                for n in 0..500u64 {
                    assert_eq!(m.call_with(&(n + i,), &o).unwrap(), (n + i) * 3);
                    if n % 50 == 0 {
                        assert!(rt.call(h, "panics", b"p").is_err());
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

/// Archived arguments of every shape side by side, and zero-sized archives, which rkyv
/// writes as no bytes at all: `((),)` as arguments and `Rkyv<()>` as a result are read
/// as they were written. Before, the module refused such arguments and the host such a
/// result, each with "the archive is empty", though the host's own handle wrote them.
#[test]
fn archived_shapes() {
    use memlink_example_types::zero_copy_types::Point;
    let (rt, h) = common::load("shapes");
    let p = Point {
        x: 1.5,
        y: 0.0,
        z: 0.0,
    };
    type A = (String, Option<Point>, (u32, String), u64, [u8; 4], ());
    let m = rt.archived::<A, String>(h, "arch_mix").unwrap();
    let out = m
        .call(&("s".into(), Some(p), (3, "t".into()), 9, [1, 2, 3, 4], ()))
        .unwrap();
    assert_eq!(out, "s|Some(1.5)|3:t|9|[1, 2, 3, 4]");
    let out = m
        .call(&(String::new(), None, (0, String::new()), 0, [0; 4], ()))
        .unwrap();
    assert_eq!(out, "|None|0:|0|[0, 0, 0, 0]");
    let m = rt.typed::<(), Rkyv<()>>(h, "unit_rkyv").unwrap();
    let () = m.call(&()).unwrap().get();
    // A zero-sized root is archived as no bytes; its reference is aligned for its type
    // (an empty output's bytes lie anywhere: before, the root was read from address 1).
    let m = rt
        .typed::<(), Rkyv<[u64; 0]>>(h, "empty_words_rkyv")
        .unwrap();
    let out = m.call(&()).unwrap();
    let root: &[_; 0] = out.get();
    assert_eq!((root as *const [_; 0]).addr() % align_of::<[u64; 0]>(), 0);
    assert!(out.bytes().is_empty());
    let m = rt.archived::<((),), u32>(h, "arch_unit").unwrap();
    assert_eq!(m.call(&((),)).unwrap(), 7);
    let m = rt
        .archived::<(String, Vec<Point>), String>(h, "arch_async")
        .unwrap();
    assert_eq!(m.call(&("l".into(), vec![p; 3])).unwrap(), "l:3");
    let o = CallOptions::default().timeout(std::time::Duration::from_secs(20));
    assert_eq!(m.call_with(&("l".into(), vec![]), &o).unwrap(), "l:0");
}

/// State that crosses a reload as a value of the module's own: `memlink_save_state`
/// returns it, and `memlink_restore_state` takes it as its one parameter, as a raw pair
/// does with bytes. Before, the saved value's MessagePack was handed over as the whole
/// argument list, so the reload was refused: `unknown field `count`, expected `state``
/// (a struct's fields read as parameter names), and a number was no argument list at
/// all.
#[test]
fn a_value_saved_for_a_reload_is_restored_as_the_one_argument() {
    use memlink_runtime::reload::ReloadPolicy;
    use memlink_runtime::{ModuleRef, Runtime};

    // A copy of its own: the reload's new image starts with fresh statics, and this one
    // is the test's alone.
    let path = common::module_copy("shapes", "shapes_state");
    let rt = Runtime::with_local_resolver();
    let h = rt.load(ModuleRef::from_path(&path)).unwrap();
    let carry = ReloadPolicy::default().carry_state(true);
    let reloaded = rt
        .reload_with(h, ModuleRef::from_path(&path), &carry)
        .unwrap();
    assert!(reloaded.state_carried.is_some());
    let restored: u64 = rt.call_typed(h, "restored", &()).unwrap();
    assert_eq!(restored, 42, "the saved count, plus the one restore adds");
}
