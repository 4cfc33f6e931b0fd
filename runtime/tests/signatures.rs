//! Unusual but valid export signatures (the `signatures` fixture) called by name through
//! the real runtime, with MessagePack bytes (arrays and maps keyed by parameter name)
//! and typed arguments.

mod common;

use common::{de, load, mp};
use memlink_runtime::{Format, ModuleError, RuntimeError};

#[test]
fn patterns_and_raw_identifiers() {
    let (rt, h) = load("signatures");
    let got: u32 = rt
        .call_typed(h, "patterns", &((1u32, 2u32), 3u32, 99u32))
        .unwrap();
    assert_eq!(got, 33);
    // By name: a destructured or `_` parameter is keyed by its position.
    let named = mp(&serde_json::json!({"arg0": [4, 5], "x": 1, "arg2": 0}));
    assert_eq!(de::<u32>(&rt.call(h, "patterns", &named).unwrap()), 19);
    // `r#type` is exported as `type`, its `r#fn` and `r#match` keyed without the `r#`.
    let got: String = rt.call_typed(h, "type", &(7u32, "x")).unwrap();
    assert_eq!(got, "7:x");
    let named = mp(&serde_json::json!({"fn": 8, "match": "y"}));
    // A `String` result leaves as raw bytes.
    assert_eq!(rt.call(h, "type", &named).unwrap(), b"8:y");
}

#[test]
fn twelve_arguments_and_none() {
    let (rt, h) = load("signatures");
    let args = (
        1u8, 2u16, 3u32, 4u64, -5i8, -6i16, -7i32, -8i64, 0.5f32, 1.5f64, true, "twelve",
    );
    let got: String = rt.call_typed(h, "twelve", &args).unwrap();
    assert_eq!(got, "1 2 3 4 -5 -6 -7 -8 0.5 1.5 true twelve");
    let () = rt.call_typed(h, "nothing", &()).unwrap();
    assert_eq!(de::<()>(&rt.call(h, "nothing", &[0x90]).unwrap()), ());
}

#[test]
fn borrowed_arguments() {
    let (rt, h) = load("signatures");
    assert_eq!(rt.call(h, "same_bytes", b"as is").unwrap(), b"as is");
    let views = rt
        .archived::<(String, Vec<u8>), (u64, u64)>(h, "views")
        .unwrap();
    assert_eq!(views.call(&("four".into(), vec![1, 2])).unwrap(), (4, 2));
}

#[test]
fn a_mut_byte_slice_result_leaves_raw_as_a_shared_one_does() {
    let (rt, h) = load("signatures");
    let methods = rt.methods(h).unwrap();
    let method = methods.iter().find(|m| m.name == "arena_bytes").unwrap();
    assert_eq!(method.result_format, Format::Raw);
    assert_eq!(rt.call(h, "arena_bytes", &mp(&(3u8,))).unwrap(), [1, 2, 3]);
    let got: Vec<u8> = rt.call_typed(h, "arena_bytes", &(2u8,)).unwrap();
    assert_eq!(got, [1, 2]);
}

#[test]
fn options_impl_results_and_own_errors() {
    let (rt, h) = load("signatures");
    let got: Option<u64> = rt.call_typed(h, "maybe", &(Some("abc"),)).unwrap();
    assert_eq!(got, Some(3));
    let got: Option<u64> = rt.call_typed(h, "maybe", &(None::<String>,)).unwrap();
    assert_eq!(got, None);
    let got: u32 = rt.call_typed(h, "small", &(3u32,)).unwrap();
    assert_eq!(got, 3);
    match rt.call_typed::<_, u32>(h, "small", &(11u32,)) {
        Err(RuntimeError::Call {
            error: ModuleError::Failed(message),
            ..
        }) => assert_eq!(message, "too big: 11"),
        other => panic!("expected the module's own error, got {other:?}"),
    }
}

#[test]
fn names_visibility_and_places() {
    let (rt, h) = load("signatures");
    let got: u8 = rt.call_typed(h, "const private", &(5u8,)).unwrap();
    assert_eq!(got, 5);
    assert_eq!(rt.call(h, "memlink_call", b"").unwrap(), b"mine");
    let got: u32 = rt.call_typed(h, "memlink_init", &()).unwrap();
    assert_eq!(got, 1);
    for name in ["alias_a", "alias_b"] {
        let got: u32 = rt.call_typed(h, name, &(1u32,)).unwrap();
        assert_eq!(got, 2, "{name}");
    }
    let got: u32 = rt.call_typed(h, "nested", &(21u32,)).unwrap();
    assert_eq!(got, 42);
    let got: u32 = rt.call_typed(h, "local", &()).unwrap();
    assert_eq!(got, 42);
}

#[test]
fn a_signature_too_long_for_one_printed_line_is_recorded_on_one() {
    // The compiler breaks a long type's printed tokens into lines; the module recorded
    // them so, and every host refused the whole module for a control character.
    let (rt, h) = load("signatures");
    let methods = rt.methods(h).unwrap();
    let method = methods.iter().find(|m| m.name == "long_types").unwrap();
    let signature = method.signature.as_deref().unwrap();
    assert!(!signature.chars().any(char::is_control), "{signature:?}");
    assert!(
        signature.starts_with(
            "long_types(docs: Vec<(String, std::collections::BTreeMap<String, Vec<u32>>"
        ),
        "{signature:?}"
    );
    type Doc = (
        String,
        std::collections::BTreeMap<String, Vec<u32>>,
        Option<(u64, u64)>,
        std::collections::BTreeMap<char, Vec<String>>,
    );
    let doc: Doc = (
        "d".into(),
        Default::default(),
        None,
        [('a', vec!["x".to_owned(), "y".to_owned()])].into(),
    );
    type Words = std::collections::BTreeMap<String, Vec<(u64, Option<String>)>>;
    let (count, _): (u32, Words) = rt
        .call_typed(h, "long_types", &(vec![doc.clone(), doc],))
        .unwrap();
    assert_eq!(count, 2004);
}
