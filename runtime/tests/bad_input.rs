//! Bad input through the real runtime and the real example modules: for every way an
//! export takes its arguments (MessagePack with several arguments, one struct, none;
//! raw `String`, `&str`, `Vec<u8>`), arguments that are truncated, empty, oversized,
//! garbage, nested 100,000 deep, of the wrong type or followed by extra bytes; unknown
//! methods; handles of unloaded modules; files that are not modules.
//!
//! Each case must give its own error (the variant and the words that say what was
//! wrong), and after every bad call a good call on the same module must still work:
//! one caller's bad bytes never cost another caller anything.

mod common;

use std::fmt;
use std::path::{Path, PathBuf};

use common::{de, fixture, in_child, load, module_path, mp};
use memlink_abi::method_id;
use memlink_runtime::{CallOptions, ModuleError, ModuleHandle, ModuleRef, Runtime, RuntimeError};
use serde::{Deserialize, Serialize};

/// 16 MiB: far past the 64 KiB arena, and past anything a caller should send.
const OVERSIZED: usize = 16 << 20;

/// What a call must produce.
enum Expect {
    /// Success, with exactly these bytes.
    Bytes(Vec<u8>),
    /// `ModuleError::Serialize` whose message contains each of these.
    Serialize(&'static [&'static str]),
    /// `ModuleError::QuotaExceeded`.
    Quota,
}

impl fmt::Debug for Expect {
    // Only lengths: some expected outputs are 16 MiB.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Bytes(b) => write!(f, "Ok({} bytes)", b.len()),
            Expect::Serialize(words) => write!(f, "Serialize({words:?})"),
            Expect::Quota => f.write_str("QuotaExceeded"),
        }
    }
}

/// One bad input for one method.
struct Case {
    name: &'static str,
    args: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, args: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        args: args.into(),
        expect,
    }
}

/// Deterministic junk (xorshift), so a failure reproduces.
fn junk(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// `depth` nested one-element arrays around a 1: `[[[...[1]...]]]`.
fn nested(depth: usize) -> Vec<u8> {
    let mut bytes = vec![0x91; depth];
    bytes.push(0x01);
    bytes
}

fn with_trailing(mut bytes: Vec<u8>, extra: &[u8]) -> Vec<u8> {
    bytes.extend_from_slice(extra);
    bytes
}

/// Runs every case against `method`, checking a good call after each.
fn run_cases(rt: &Runtime, h: ModuleHandle, method: &str, cases: Vec<Case>) {
    for c in cases {
        let got = rt.call(h, method, &c.args);
        let what = format!("{method}/{} ({} argument bytes)", c.name, c.args.len());
        match (&c.expect, got) {
            (Expect::Bytes(want), Ok(out)) => assert!(
                out.as_bytes() == &want[..],
                "{what}: got {} bytes, expected {}",
                out.len(),
                want.len()
            ),
            (Expect::Serialize(words), Err(err)) => {
                let Some(ModuleError::Serialize(message)) = err.module_error() else {
                    panic!("{what}: expected a Serialize error, got {err}")
                };
                for w in *words {
                    assert!(
                        message.contains(w),
                        "{what}: `{message}` does not say `{w}`"
                    );
                }
                assert!(
                    err.to_string().contains(&format!("::{method} failed")),
                    "{what}: the error names the method: {err}"
                );
            }
            (Expect::Quota, Err(err)) => {
                assert_eq!(
                    err.module_error(),
                    Some(&ModuleError::QuotaExceeded),
                    "{what}"
                )
            }
            (expect, Ok(out)) => panic!("{what}: expected {expect:?}, got {} bytes", out.len()),
            (expect, Err(err)) => panic!("{what}: expected {expect:?}, got {err}"),
        }
        still_serving(rt, h);
    }
}

/// A good call on the module behind `h` works.
fn still_serving(rt: &Runtime, h: ModuleHandle) {
    match rt.module_info(h).unwrap().name.as_str() {
        "basic" => {
            assert_eq!(
                de::<u32>(&rt.call(h, "add", &mp(&(2u32, 3u32))).unwrap()),
                5
            );
            assert_eq!(rt.call(h, "echo", b"still here").unwrap(), b"still here");
        }
        "arena_usage" => {
            let out = rt.call(h, "reverse_words", b"still here").unwrap();
            assert_eq!(out, b"here still");
        }
        other => panic!("no good call known for `{other}`"),
    }
}

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct UserData {
    id: u32,
    name: String,
    score: u64,
}

fn user() -> UserData {
    UserData {
        id: 9,
        name: "ada".into(),
        score: 21,
    }
}

/// Cases every MessagePack export shares; `deep_says` is what the decoder says about
/// 100,000 nested arrays (it stops at the first level that cannot be the argument).
fn msgpack_cases(deep_says: &'static str) -> Vec<Case> {
    vec![
        case(
            "oversized junk",
            junk(OVERSIZED),
            Expect::Serialize(&["bad arguments: ", "invalid type: integer `11`"]),
        ),
        case(
            "reserved marker",
            [0xc1],
            Expect::Serialize(&["bad arguments: ", "found a reserved marker where the type takes another kind of value (MessagePack Reserved)"]),
        ),
        case(
            "100,000 deep",
            nested(100_000),
            Expect::Serialize(match deep_says {
                "marker" => &["bad arguments: ", "found an array where the type takes another kind of value (MessagePack FixArray(1))"],
                _ => &["bad arguments: ", "array had incorrect length, expected 0"],
            }),
        ),
        case(
            "a string instead of arguments",
            mp(&"hello"),
            Expect::Serialize(&["bad arguments: ", "invalid type: string \"hello\""]),
        ),
    ]
}

#[test]
fn msgpack_with_two_arguments() {
    let (rt, h) = load("basic");
    // A value cut short: rmp-serde's words for it are an I/O error's.
    let cut_short = &["bad arguments: ", "end before the value does"];
    let mut cases = msgpack_cases("marker");
    cases.extend([
        case("truncated", [0x92, 0x02], Expect::Serialize(cut_short)),
        case(
            "truncated number",
            [0x92, 0x02, 0xce, 0x00],
            Expect::Serialize(cut_short),
        ),
        case(
            "empty",
            [],
            Expect::Serialize(&["bad arguments: ", "invalid length 0"]),
        ),
        case(
            "strings for numbers",
            mp(&("x", "y")),
            // rmp-serde's wording names neither the argument nor the type it wanted; the
            // argument's name before it and the export's signature after it do.
            Expect::Serialize(&[
                "bad arguments: argument `a`: ",
                "found a string where the type takes another kind of value (MessagePack FixStr(1))",
                " (the export is `add(a: u32, b: u32) -> u32`)",
            ]),
        ),
        case(
            "negative",
            mp(&(-1i64, 2u32)),
            Expect::Serialize(&["invalid value: integer `-1`, expected u32"]),
        ),
        case(
            "too large",
            mp(&(2u32, 1u64 << 32)),
            Expect::Serialize(&[
                "argument `b`: ",
                "invalid value: integer `4294967296`, expected u32",
            ]),
        ),
        case(
            "three arguments",
            mp(&(1u32, 2u32, 3u32)),
            Expect::Serialize(&["bad arguments: ", "array had incorrect length, expected 2"]),
        ),
        case(
            "unknown name",
            mp(&std::collections::BTreeMap::from([("a", 1u32), ("zz", 2)])),
            Expect::Serialize(&["unknown field `zz`"]),
        ),
        case(
            "trailing bytes",
            with_trailing(mp(&(2u32, 3u32)), &[0xc0]),
            Expect::Serialize(&["1 trailing bytes"]),
        ),
    ]);
    run_cases(&rt, h, "add", cases);
}

#[test]
fn msgpack_with_one_struct() {
    let (rt, h) = load("basic");
    let good = mp(&(user(),));
    // An unknown field of the struct is skipped with `IgnoredAny`, which descends into
    // its value: the one path where nesting reaches the decoder's depth limit.
    let mut deep_field = vec![0x91, 0x81, 0xa3, b'z', b'z', b'z'];
    deep_field.extend(nested(100_000));
    let mut cases = msgpack_cases("marker");
    cases.extend([
        case(
            "truncated",
            good[..good.len() - 3].to_vec(),
            Expect::Serialize(&["bad arguments: ", "end before the value does"]),
        ),
        case(
            "empty",
            [],
            Expect::Serialize(&["bad arguments: ", "invalid length 0"]),
        ),
        case(
            "100,000 deep in an unknown field",
            deep_field,
            Expect::Serialize(&[
                "bad arguments: ",
                "nest deeper than the 128 levels a decoder accepts",
            ]),
        ),
        case(
            "wrong field types",
            mp(&(("nine", 1u8, -1i8),)),
            Expect::Serialize(&[
                "bad arguments: ",
                "found a string where the type takes another kind of value (MessagePack FixStr(4))",
            ]),
        ),
        case(
            "the struct's fields without the struct",
            mp(&(9u32, "ada", 21u64)),
            Expect::Serialize(&["bad arguments: ", "invalid type: integer `9`"]),
        ),
        case(
            "trailing bytes",
            with_trailing(good.clone(), &[0x00, 0x00]),
            Expect::Serialize(&["2 trailing bytes"]),
        ),
    ]);
    run_cases(&rt, h, "process_user", cases);
    let back: UserData = de(&rt.call(h, "process_user", &good).unwrap());
    let expected = UserData {
        id: 9,
        name: "ADA".into(),
        score: 42,
    };
    assert_eq!(back, expected, "a struct result travels as a map");
}

#[test]
fn msgpack_with_no_arguments() {
    let (rt, h) = load("basic");
    let one_too_many = &["bad arguments: ", "array had incorrect length, expected 0"];
    let mut cases = msgpack_cases("length");
    cases.extend([
        case("empty", [], Expect::Bytes(b"pong".to_vec())),
        case("nil", [0xc0], Expect::Bytes(b"pong".to_vec())),
        case("truncated", [0x91], Expect::Serialize(one_too_many)),
        case("an argument", mp(&(1u8,)), Expect::Serialize(one_too_many)),
        case(
            "a named argument",
            mp(&std::collections::BTreeMap::from([("x", 1u8)])),
            Expect::Serialize(&["unknown field `x`"]),
        ),
        case(
            "trailing bytes",
            [0x90, 0x01],
            Expect::Serialize(&["1 trailing bytes"]),
        ),
    ]);
    run_cases(&rt, h, "ping", cases);
}

/// Cases for a raw string argument: only UTF-8 matters, and framing is not checked
/// (there is none), so MessagePack or trailing bytes are just more text.
fn raw_string_cases() -> Vec<Case> {
    let not_utf8 = || Expect::Serialize(&["bad arguments: ", "not UTF-8"]);
    vec![
        case("truncated character", *b"h\xc3", not_utf8()),
        case("oversized junk", junk(OVERSIZED), not_utf8()),
        case("garbage", [0xff, 0xfe, 0xfd], not_utf8()),
        case("100,000 deep", nested(100_000), not_utf8()),
        case("MessagePack instead of text", mp(&"hello"), not_utf8()),
    ]
}

#[test]
fn raw_string_argument() {
    let (rt, h) = load("basic");
    let mut cases = raw_string_cases();
    let text = "lorem ipsum ".repeat(OVERSIZED / 12);
    cases.extend([
        case("empty", [], Expect::Bytes(Vec::new())),
        case(
            "oversized text comes back whole",
            text.clone(),
            Expect::Bytes(text.into_bytes()),
        ),
        case(
            "trailing bytes are text",
            *b"hello\0\0",
            Expect::Bytes(b"hello\0\0".to_vec()),
        ),
    ]);
    run_cases(&rt, h, "echo", cases);
}

#[test]
fn raw_str_argument() {
    let (rt, h) = load("arena_usage");
    let mut cases = raw_string_cases();
    cases.extend([
        case("empty", [], Expect::Bytes(Vec::new())),
        // 16 MiB of two-letter words: 5.6 million `&str`s do not fit a 64 KiB arena.
        case("oversized text", "ab ".repeat(OVERSIZED / 3), Expect::Quota),
        case(
            "trailing bytes are text",
            *b"one two\0",
            Expect::Bytes(b"two\0 one".to_vec()),
        ),
    ]);
    run_cases(&rt, h, "reverse_words", cases);
}

/// A decode error names the export whose arguments were wrong. The generated argument
/// struct is renamed to "arguments of `add`", but serde's messages use the Rust type
/// name for what they expected unless `#[serde(expecting = "...")]` says otherwise, so
/// today the caller reads "expected struct __MemlinkArgs", a name from the macro's
/// insides.
#[test]
fn a_negative_integer_is_no_u128_argument() {
    let (rt, h) = load("hazards");
    let err = rt.call(h, "ones", &mp(&(-1i64,))).unwrap_err();
    let Some(ModuleError::Serialize(m)) = err.module_error() else {
        panic!("{err}")
    };
    assert!(
        m.contains("argument `value`") && m.contains("integer `-1`"),
        "{m}"
    );
    // Every u128, from an integer or as the 16 bytes a Rust caller's encoder writes.
    for (value, ones) in [(5u128, 2u32), (u128::MAX, 128)] {
        let out = rt.call(h, "ones", &mp(&(value,))).unwrap();
        assert_eq!(de::<u32>(&out), ones);
    }
    let out = rt.call(h, "ones", &mp(&(u64::MAX,))).unwrap();
    assert_eq!(de::<u32>(&out), 64);
}

#[test]
fn decode_errors_name_the_export_not_a_generated_struct() {
    let (rt, h) = load("basic");
    for (method, args) in [
        ("add", vec![]),
        ("add", mp(&"hello")),
        ("process_user", vec![]),
    ] {
        let err = rt.call(h, method, &args).unwrap_err();
        let Some(ModuleError::Serialize(m)) = err.module_error() else {
            panic!("{method}: {err}")
        };
        assert!(
            !m.contains("__Memlink") && m.contains(&format!("arguments of `{method}`")),
            "{method}: {m}"
        );
    }
}

#[test]
fn raw_bytes_argument_takes_anything() {
    let (rt, h) = load("basic");
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("truncated", vec![0x92, 0x02]),
        ("oversized junk", junk(OVERSIZED)),
        ("garbage", vec![0xc1, 0xff, 0x00]),
        ("100,000 deep", nested(100_000)),
        ("MessagePack", mp(&(1u32, "x"))),
        ("trailing bytes", with_trailing(mp(&(1u8,)), &[0, 0, 0])),
    ];
    // `Vec<u8>` in and out: the bytes come back as they went, whatever they are.
    let cases = inputs
        .into_iter()
        .map(|(name, bytes)| case(name, bytes.clone(), Expect::Bytes(bytes)))
        .collect();
    run_cases(&rt, h, "async_process", cases);
}

#[test]
fn unknown_methods_are_refused_by_name() {
    let (rt, h) = load("basic");
    assert_eq!(
        method_id("atl3ouu"),
        method_id("add"),
        "a name whose FNV-1a id collides with `add`"
    );
    let long = "m".repeat(10_000);
    for name in [
        "nope",
        "",
        "ADD",
        "add ",
        "add\0",
        "a\nb",
        "atl3ouu",
        "reverse_words",
        long.as_str(),
    ] {
        let what = format!("method {:?}", &name[..name.len().min(20)]);
        for err in [
            rt.call(h, name, b"").unwrap_err(),
            rt.method(h, name).unwrap_err(),
            rt.call_typed::<_, u32>(h, name, &(2u32, 3u32)).unwrap_err(),
        ] {
            let RuntimeError::UnknownMethod { module, method } = &err else {
                panic!("{what}: {err}")
            };
            assert_eq!(
                (module.as_str(), method.as_str()),
                ("basic", name),
                "{what}"
            );
            // The name shown escaped: a line break in it does not break the line.
            assert_eq!(
                err.to_string(),
                format!("module `basic` has no method `{}`", name.escape_debug())
            );
            assert!(!err.to_string().contains('\n'), "{what}");
        }
        still_serving(&rt, h);
    }
}

#[test]
fn a_handle_after_unload_is_unknown_everywhere() {
    let (rt, h) = load("basic");
    let add = rt.method(h, "add").unwrap();
    let other = rt
        .load(ModuleRef::from_path(module_path("arena_usage")))
        .unwrap();
    rt.unload(h).unwrap();
    let expect_unknown = |err: RuntimeError| {
        assert!(
            matches!(err, RuntimeError::UnknownHandle(x) if x == h),
            "{err}"
        );
        assert_eq!(err.to_string(), format!("no loaded module with handle {h}"));
    };
    expect_unknown(rt.call(h, "add", &mp(&(2u32, 3u32))).unwrap_err());
    expect_unknown(
        rt.call_typed::<_, u32>(h, "add", &(2u32, 3u32))
            .unwrap_err(),
    );
    expect_unknown(
        rt.call_with(h, "echo", b"x", &CallOptions::default())
            .unwrap_err(),
    );
    expect_unknown(
        rt.call_method(add, &mp(&(2u32, 3u32)), &CallOptions::default())
            .unwrap_err(),
    );
    expect_unknown(rt.method(h, "add").unwrap_err());
    expect_unknown(rt.methods(h).unwrap_err());
    expect_unknown(rt.unload(h).unwrap_err());
    still_serving(&rt, other);
}

/// A runtime that has just refused `path` still loads and calls a real module.
fn refused(path: &Path) -> RuntimeError {
    let rt = Runtime::with_local_resolver();
    let err = rt.load(ModuleRef::from_path(path)).unwrap_err();
    let h = rt
        .load(ModuleRef::from_path(module_path("basic")))
        .unwrap_or_else(|e| panic!("loading basic after refusing {}: {e}", path.display()));
    still_serving(&rt, h);
    err
}

fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = common::workspace().join("target/test-fixtures/bad_input");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn assert_not_a_library(err: &RuntimeError, loader_says: &str) {
    assert!(
        matches!(err, RuntimeError::NotALibrary { .. }),
        "expected NotALibrary, got {err}"
    );
    let text = err.to_string();
    assert!(text.contains("is not a loadable shared library"), "{text}");
    assert!(text.contains(loader_says), "the loader's reason: {text}");
}

#[test]
fn a_file_that_is_not_a_module() {
    // Long enough to hold an ELF header: the loader reads it and finds no ELF magic.
    let text = scratch_file(
        "libtext.so",
        "not a library, just text\n".repeat(10).as_bytes(),
    );
    assert_not_a_library(&refused(&text), "invalid ELF header");

    let err = refused(&fixture("not_a_module"));
    assert!(
        matches!(
            err,
            RuntimeError::NotAModule {
                missing: "memlink_abi_version",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("is not a memlink module: it does not export `memlink_abi_version`"),
        "{err}"
    );
}

/// A device is not a library: the check before the loader reads file headers only, and
/// only from a regular file. Before, it read the whole file into memory: `/dev/zero`
/// grew the host until it ran out of memory.
#[test]
fn a_device_is_refused_before_a_byte_is_read() {
    let err = refused(Path::new("/dev/zero"));
    assert_not_a_library(&err, "it is not a regular file");
}

/// A FIFO is not a library either, and opening one for reading waits for a writer: the
/// runtime refuses it without opening it that way. Before, the load blocked in `open`
/// for good. The load runs on a thread of its own, so that a regression fails this test
/// (after a writer is brought to release it) instead of hanging it.
#[test]
fn a_fifo_is_refused_without_waiting_for_a_writer() {
    let dir = common::workspace().join("target/test-fixtures/bad_input");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join(format!("libfifo-{}.so", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", fifo.display());
    let (tx, rx) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || tx.send(refused(&path)).unwrap());
    let outcome = rx.recv_timeout(std::time::Duration::from_secs(20));
    if outcome.is_err() {
        // Let the blocked load go before failing.
        let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
    }
    std::fs::remove_file(&fifo).unwrap();
    let err = outcome.expect("the load of a FIFO returned instead of waiting for a writer");
    assert_not_a_library(&err, "it is not a regular file");
}

/// A module description whose method count is garbage is refused before the runtime
/// reads the table or allocates for it. Before, the count reached `from_raw_parts` and
/// `Vec::with_capacity` as it was.
#[test]
fn a_method_count_past_any_real_module_is_refused() {
    let err = refused(&fixture("huge_method_count"));
    assert!(
        matches!(&err, RuntimeError::InvalidModule { reason, .. }
            if reason.contains("claims 288230376151711743 methods, more than the 65536")),
        "{err}"
    );
}

#[test]
fn an_empty_file() {
    let empty = scratch_file("libempty.so", b"");
    assert_not_a_library(&refused(&empty), "file too short");
}

/// A copy of libbasic.so cut after `cut` bytes. Inside the ELF header the loader
/// refuses it ("file too short"); inside the program headers it cannot read them; past
/// the headers but inside the loaded segments (here 16 KiB, 1 MiB), glibc 2.36's
/// `dlopen` would map the segments and read the dynamic section past the end of the
/// file: SIGBUS, and the host dies. The runtime refuses such a file before `dlopen` (it
/// checks that every `PT_LOAD` segment lies inside the file). The loads run in a child
/// process, so that a regression kills the child and fails this test rather than taking
/// the whole test binary down. A cut only through the debug sections at the end is
/// refused too (for the section header table the linker writes last), so a copy still
/// being written is never loaded.
#[test]
fn a_truncated_copy_of_a_real_module() {
    for (cut, loader_says) in [
        // Too short for a program header table: the loader's own words.
        (32, "file too short"),
        // Headers present, segments cut off: the runtime's check refuses it.
        (64, "truncated"),
        (16 * 1024, "truncated"),
        (1 << 20, "truncated"),
    ] {
        in_child(
            "a_truncated_copy_loads_in_a_child",
            &[
                ("MEMLINK_CUT", cut.to_string()),
                ("MEMLINK_LOADER_SAYS", loader_says.to_owned()),
            ],
            || {},
        );
    }
}

/// The child half of `a_truncated_copy_of_a_real_module` (does nothing on its own).
#[test]
fn a_truncated_copy_loads_in_a_child() {
    let (Ok(cut), Ok(loader_says)) = (
        std::env::var("MEMLINK_CUT"),
        std::env::var("MEMLINK_LOADER_SAYS"),
    ) else {
        return;
    };
    let whole = std::fs::read(module_path("basic")).unwrap();
    let cut: usize = cut.parse().unwrap();
    assert!(
        cut < whole.len() / 2,
        "the cut is inside the loaded segments"
    );
    let path = scratch_file(&format!("libbasic_cut_{cut}.so"), &whole[..cut]);
    assert_not_a_library(&refused(&path), &loader_says);
}

#[test]
fn a_module_built_for_another_abi_version() {
    let err = refused(&fixture("abi_v999"));
    assert!(
        matches!(
            err,
            RuntimeError::AbiMismatch {
                module: 999,
                host: memlink_abi::ABI_VERSION,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!(
            "was built for memlink ABI 999, this runtime speaks ABI {}",
            memlink_abi::ABI_VERSION
        )),
        "{err}"
    );
    // A module newer than the runtime: a newer runtime is the other way out.
    assert!(
        err.to_string()
            .ends_with(", or run it with a runtime of the module's memlink"),
        "{err}"
    );
}

#[test]
fn references_that_name_no_file() {
    let dir = common::workspace().join("target/test-fixtures");
    std::fs::create_dir_all(&dir).unwrap();
    let err = refused(&dir);
    assert!(
        matches!(&err, RuntimeError::BadReference { reason, .. } if reason.contains("directory")),
        "{err}"
    );
    let err = refused(Path::new("/no/such/libmodule.so"));
    assert!(matches!(err, RuntimeError::FileNotFound { .. }), "{err}");
    assert_eq!(err.to_string(), "no module file at /no/such/libmodule.so");
}
